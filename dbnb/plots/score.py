r"""Fig. 5: potential against score for the most visited states."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import ScoreGraph
from ._style import PALETTE, fmt, get_axes, plotting_function, provenance, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@plotting_function
def fig_potential_vs_score(
    graph: ScoreGraph,
    *,
    ax: Axes | None = None,
    logx: bool = True,
    cmap: str = "viridis_r",
    colorbar: bool = True,
    figsize: tuple[float, float] = (5.2, 3.0),
    caption: str | None = None,
) -> Figure:
    r"""Fig. 5: potential against ``log10`` score (MSE) for the most visited states.

    Nodes at ``(log10 score, beta V)``, coloured by the score; transitions with
    ``T > min_T`` as curved arrows, green going down in ``V``, red up, grey flat
    (``|dV| <= tol``), width growing with ``T``. The legend gives the shares of distinct
    transitions (and of recorded samples) in each direction.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    fig, ax = get_axes(ax, figsize)
    sc = np.asarray(graph.score, dtype=float)
    if logx:
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = np.where(sc > 0, np.log10(sc), np.nan)
    else:
        xv = sc
    yv = np.asarray(graph.potential, dtype=float)
    colors = {-1: PALETTE["down"], 1: PALETTE["up"], 0: PALETTE["flat"]}
    ok = np.isfinite(xv[graph.f]) & np.isfinite(xv[graph.g])
    for e in np.flatnonzero(ok):
        a, b = graph.f[e], graph.g[e]
        d = int(graph.direction[e])
        ax.add_patch(FancyArrowPatch(
            (xv[a], yv[a]), (xv[b], yv[b]), connectionstyle="arc3,rad=0.18",
            arrowstyle="-|>", mutation_scale=5, lw=0.3 + 1.5 * float(graph.t[e]),
            color=colors[d], alpha=0.55, shrinkA=3, shrinkB=3, zorder=2,
            gid=f"arrow:{['down', 'flat', 'up'][d + 1]}",
        ))
    pts = ax.scatter(xv, yv, c=xv, cmap=cmap, s=22, edgecolor="k", linewidth=0.4, zorder=4)
    if colorbar and len(xv):
        cb = fig.colorbar(pts, ax=ax, pad=0.02)
        cb.set_label((r"$\log_{10}$ " if logx else "") + graph.score_name)
    sh, shw = graph.shares(), graph.shares(weighted=True)
    handles = [
        Line2D([], [], color=colors[d], lw=1.5,
               label=f"{name} {fmt(100 * sh[name], '.1f')}% ({fmt(100 * shw[name], '.1f')}%)")
        for d, name in ((-1, "down"), (1, "up"), (0, "flat"))
    ]
    ax.legend(handles=handles, loc="upper center", ncol=3, handlelength=1.2,
              columnspacing=1.0, title="share of transitions (of samples)", title_fontsize=9)
    ax.set_xlabel((r"$\log_{10}$ " if logx else "") + graph.score_name)
    ax.set_ylabel(r"potential $\beta V$")
    if len(xv) and np.isfinite(xv).any():
        pad = 0.05 * (np.nanmax(xv) - np.nanmin(xv) or 1.0)
        ax.set_xlim(np.nanmin(xv) - pad, np.nanmax(xv) + pad)
        ypad = 0.06 * (np.ptp(yv) or 1.0)
        ax.set_ylim(yv.min() - ypad, yv.max() + 5 * ypad)
    auto = provenance(graph.source, f"{len(graph.states)} most visited states",
                      f"{graph.n_transitions} transitions with T > {graph.min_T:g}")
    write_caption(ax, caption, auto)
    return fig
