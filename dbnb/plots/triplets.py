r"""Figs. 3, 8: closed 3-cycles, forward against backward (Eq. 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import TripletCheck
from ._style import (
    PALETTE,
    diagonal,
    fmt,
    get_axes,
    plotting_function,
    provenance,
    stats_box,
    write_caption,
    write_empty,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@plotting_function
def fig_triplets(
    check: TripletCheck,
    *,
    ax: Axes | None = None,
    fraction: float | None = 0.2,
    seed: int = 42,
    errors: bool | None = None,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Figs. 3 and 8: ``sum log T`` around each 3-cycle, forward against backward (Eq. 7).

    Detailed balance puts every cycle on the diagonal (Kolmogorov's criterion). Error bars are
    the quadrature sums of :func:`dbnb.kernels.log_t_variance` over the three legs of each
    direction; the coverage in the box uses the error of the affinity, in which the ``N0``
    terms cancel. The box's mean ``z^2`` is descriptive: triangles overlap, so it has no
    reference distribution. ``errors=False`` is for exactly known kernels: no error bars, and
    the box reports the rms cycle affinity ``forward - backward`` instead of counting
    statistics; the default ``None`` draws errors unless the check has none.
    """
    fig, ax = get_axes(ax, figsize)
    if errors is None:
        errors = check.design != "none"
    idx = check.sample(fraction, seed=seed)
    if check.n_triplets:
        fw, bw = check.forward[idx], check.backward[idx]
        ax.errorbar(fw, bw, xerr=check.sigma_forward[idx] if errors else None,
                    yerr=check.sigma_backward[idx] if errors else None,
                    fmt="o", ms=3, color=PALETTE["data"], alpha=0.75, ecolor=PALETTE["error"],
                    elinewidth=0.8, capsize=1.2, zorder=3,
                    label=f"3-cycles ({idx.size} of {check.n_triplets} shown)")
        both = np.concatenate([check.forward, check.backward])
        lo, hi = float(both.min()) - 1.0, float(both.max()) + 1.0
        diagonal(ax, lo, hi, "detailed balance")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi + 0.25 * (hi - lo))
        ax.legend(loc="upper left")
        stats_box(ax, [
            f"$N$ = {check.n_triplets}",
            rf"mean $z^2$ = {fmt(check.mean_z2)} (overlapping)",
            rf"within $1\sigma$: {fmt(100 * check.within_1sigma, '.0f')}%",
        ] if errors else [
            f"$N$ = {check.n_triplets}",
            f"$r$ = {fmt(check.pearson_r, '.3f')}",
            f"rms affinity = {fmt(check.rms_affinity, '.2f')}",
        ])
    else:
        write_empty(ax, "no closed 3-cycle measured both ways")
    ax.set_xlabel(r"$\sum\log T$ (forward $f\to g\to h\to f$)")
    ax.set_ylabel(r"$\sum\log T$ (backward)")
    auto = provenance(check.source, f"estimator {check.estimator}" if check.estimator else "",
                      f"every leg N ≥ {check.min_count}")
    write_caption(ax, caption, auto)
    return fig
