r"""Fig. 10: pairs seen one way only, against the Eq. 25 bound."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import OneWayCheck
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
def fig10_one_way(
    check: OneWayCheck,
    *,
    ax: Axes | None = None,
    n: int | None = 500,
    seed: int = 42,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Fig. 10: fitted ``beta [V(f) - V(g)]`` of one-way pairs against the Eq. 25 bound.

    ``n`` random pairs with finite ``dV`` (seed ``seed``); the Letter's bound ``y = x`` and
    the line ``y = x + q`` where ``q`` is the ``check.percentile``-th percentile of ``dV -
    bound``. The box gives the share above Eq. 25 and above the real lower bound at
    ``check.level`` (:attr:`dbnb.diagnostics.OneWayCheck.lower_bound`).
    """
    fig, ax = get_axes(ax, figsize)
    idx = check.sample(n, seed=seed)
    if idx.size:
        bx, dv = check.bound[idx], check.dv[idx]
        ax.scatter(bx, dv, s=7, color=PALETTE["data"], alpha=0.6, lw=0, zorder=3,
                   label=f"one-way pairs ({idx.size} of {check.n_pairs} shown)")
        xpad = 0.1 * (np.ptp(bx) or 1.0)
        xlo, xhi = float(bx.min()) - xpad, float(bx.max()) + xpad
        ylo = min(float(dv.min()), xlo)
        yhi = max(float(dv.max()), xhi + check.offset)
        diagonal(ax, xlo, xhi, "Eq. 25 bound")
        diagonal(ax, xlo, xhi, f"{check.percentile:g}th percentile", offset=check.offset,
                 color=PALETTE["accent"], ls=":")
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo - 0.5, yhi + 0.35 * (yhi - ylo + 1.0))
        ax.legend(loc="upper left")
        stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            rf"$\beta\Delta V \geq$ Eq. 25: {fmt(100 * check.fraction_satisfied, '.0f')}%",
            rf"$\geq$ {100 * check.level:g}% lower bound: "
            rf"{fmt(100 * check.fraction_above_lower, '.0f')}%",
        ])
    else:
        write_empty(ax, "no one-way pair with a finite potential difference")
    ax.set_xlabel(r"bound $\log\,[N(g\leftarrow f)\,N(g)/N(f)]$")
    ax.set_ylabel(r"$\beta\,[V(f)-V(g)]$")
    auto = provenance(check.source, f"estimator {check.estimator}" if check.estimator else "")
    write_caption(ax, caption, auto)
    return fig
