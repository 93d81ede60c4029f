"""V of one kernel against V of another (:func:`dbnb.comparison.compare`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._style import PALETTE, diagonal, fmt, get_axes, plotting_function, stats_box, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..comparison import Comparison

__all__ = ["potential_comparison"]


@plotting_function
def potential_comparison(result: Comparison, *, ax: Axes | None = None,
                         caption: str | None = None) -> Figure:
    """Scatter of ``s V_A`` against ``V_B`` on the common states, with the numbers.

    Parameters
    ----------
    result : dbnb.comparison.Comparison
    ax : matplotlib Axes, optional
        Draw here (default: a new figure).
    caption : str, optional
        Text above the axes (``None``: automatic; ``""``: none).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = get_axes(ax, (3.4, 3.2))
    a, b = result.names
    st = list(result.states)
    va = result.scale * result.fit_a.potential[st].to_numpy()
    vb = result.fit_b.potential[st].to_numpy()
    ax.scatter(va, vb, s=10, color=PALETTE["data"], alpha=0.8, lw=0, gid="states")
    lo, hi = float(np.min([va, vb])), float(np.max([va, vb]))
    diagonal(ax, lo, hi, "equal")
    ax.set_xlabel(f"{fmt(result.scale)} x beta V ({a})")
    ax.set_ylabel(f"beta V ({b})")
    r, rlo, rhi = result.pearson
    rs, slo, shi = result.spearman
    stats_box(ax, [f"Pearson {fmt(r)} [{fmt(rlo)}, {fmt(rhi)}]",
                   f"Spearman {fmt(rs)} [{fmt(slo)}, {fmt(shi)}]",
                   f"R2 own {fmt(result.r2_own)}, cross {fmt(result.r2_cross)}",
                   f"R2 popularity only {fmt(result.r2_popularity)}"])
    write_caption(ax, caption, f"{len(st)} common states; {a} vs {b}")
    return fig
