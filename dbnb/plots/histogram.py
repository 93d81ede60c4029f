r"""Fig. 11: histogram of the fitted potential with its Gaussian (Eq. 28)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import PotentialDistribution
from ._style import (
    PALETTE,
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
def fig11_potential_histogram(
    dist: PotentialDistribution,
    *,
    ax: Axes | None = None,
    bins: int | str = 40,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Fig. 11: histogram of ``beta V`` with its Gaussian fit (Supplement D, Eq. 28).

    The box gives the Letter's raw numbers (``sigma``, Eq. 28 at it, the fit's action) and the
    comparison Eq. 28 supports: the action over the flat action of the same kernel against
    Eq. 28 at the noise-corrected ``sigma`` (:class:`dbnb.diagnostics.PotentialDistribution`).
    """
    fig, ax = get_axes(ax, figsize)
    v = dist.values
    if v.size:
        counts, edges, _ = ax.hist(v, bins=bins, color=PALETTE["data"], alpha=0.75,
                                   edgecolor="white", lw=0.4, label=f"data ($N$ = {v.size})")
        if np.isfinite(dist.sigma) and dist.sigma > 0:
            width = float(np.mean(np.diff(edges)))
            xs = np.linspace(edges[0] - width, edges[-1] + width, 300)
            from scipy.stats import norm

            ax.plot(xs, v.size * width * norm.pdf(xs, dist.mu, dist.sigma),
                    color=PALETTE["theory"], ls="--", lw=1.3,
                    label="Gaussian fit")
        ax.legend(loc="upper right")
        stats_box(ax, [
            rf"$\mu$ = {fmt(dist.mu)}, $\sigma$ = {fmt(dist.sigma)}",
            rf"$S_{{\min}}$ Eq. 28: {fmt(dist.expected_action, '.3f')}",
            rf"  large $\sigma$: {fmt(dist.expected_action_asymptotic, '.3f')}",
            rf"$S_{{\min}}$ fit: {fmt(dist.actual_action, '.3f')}",
            rf"$S_{{\min}}/S_{{V=0}}$ fit: {fmt(dist.normalised_action, '.3f')}",
            rf"  Eq. 28 at $\sigma_{{\rm corr}}$ = {fmt(dist.sigma_corrected)}: "
            rf"{fmt(dist.expected_normalised_action, '.3f')}",
        ], loc="upper left")
        ax.set_ylim(0, max(counts.max(), 1) * 1.6)
    else:
        write_empty(ax, "no finite potential")
    ax.set_xlabel(r"$\beta V(f)$")
    ax.set_ylabel("states")
    auto = provenance(dist.source, f"K = {dist.violation}" if dist.violation else "",
                      f"states sampled ≥ {dist.min_calls}×")
    write_caption(ax, caption, auto)
    return fig
