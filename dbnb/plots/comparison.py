"""One potential for many kernels? (:func:`dbnb.comparison.compare`).

``fig_potential_comparison`` draws one comparison (``s V_A`` against ``V_B`` per state);
``fig_comparison_summary`` many (models, prompt wordings, temperatures) side by side: the
correlation of the potentials with its interval and the three ``R2`` of ``B``'s log-ratios
(own potential, ``A``'s potential, ``B``'s popularity only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._style import PALETTE, diagonal, fmt, get_axes, plotting_function, stats_box, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..comparison import Comparison

__all__ = ["fig_potential_comparison", "fig_comparison_summary"]


@plotting_function
def fig_potential_comparison(result: Comparison, *, ax: Axes | None = None,
                             caption: str | None = None) -> Figure:
    """Scatter of ``s beta V_A`` against ``beta V_B`` on the common states, with the numbers.

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
    ax.scatter(va, vb, s=12, color=PALETTE["data"], alpha=0.8, lw=0, gid="states")
    lo, hi = float(np.min([va, vb])), float(np.max([va, vb]))
    diagonal(ax, lo, hi, "equal")
    ax.set_xlabel(f"{fmt(result.scale)} x beta V ({a})")
    ax.set_ylabel(f"beta V ({b})")
    r, rlo, rhi = result.pearson
    rs, slo, shi = result.spearman
    stats_box(ax, [f"Pearson {fmt(r)} [{fmt(rlo)}, {fmt(rhi)}]",
                   f"Spearman {fmt(rs)} [{fmt(slo)}, {fmt(shi)}]",
                   f"R2 of {b}: own {fmt(result.r2_own)}, {a}'s V {fmt(result.r2_cross)}",
                   f"popularity only {fmt(result.r2_popularity)}"])
    write_caption(ax, caption, f"{len(st)} common states, {len(result.fit_b.pairs)} two-way "
                  f"pairs of {b}; {int(100 * result.level)} % intervals")
    return fig


@plotting_function
def fig_comparison_summary(results: Sequence[Comparison], *, ax: Axes | None = None,
                           caption: str | None = None) -> Figure:
    """Many comparisons side by side: correlation of the potentials and the ``R2`` of ``B``.

    Parameters
    ----------
    results : sequence of dbnb.comparison.Comparison
        One row each (labelled ``A vs B``).
    ax : matplotlib Axes, optional
        Draw here (default: a new figure).
    caption : str, optional
        Text above the axes (``None``: automatic; ``""``: none).

    Returns
    -------
    matplotlib.figure.Figure
        Points per comparison at ``y = row``: Pearson ``r`` of the potentials and ``r`` beyond
        popularity, each with its interval, and ``R2`` of ``B``'s pair log-ratios under ``B``'s
        own potential, under ``A``'s (scaled) and under ``B``'s popularity alone.
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: nothing to draw")
    fig, ax = get_axes(ax, (4.4, 0.5 * len(results) + 1.6))
    y = np.arange(len(results))[::-1].astype(float)
    for key, dy, color, marker, label in [
        ("pearson", 0.0, "0.1", "o", "Pearson r of the potentials"),
        ("beyond_popularity", -0.2, PALETTE["accent"], "o", "r beyond popularity"),
    ]:
        r, lo, hi = (np.array([getattr(c, key)[i] for c in results]) for i in range(3))
        err = np.clip([r - lo, hi - r], 0.0, None)  # rounding at |r| = 1
        ax.errorbar(r, y + dy, xerr=err, fmt=marker, color=color, ms=5, capsize=3,
                    label=label, gid=key, mfc=color if key == "pearson" else "white")
    for key, dy, color, marker, label in [
        ("r2_own", 0.3, PALETTE["flat"], "s", "R2 of B: own potential"),
        ("r2_cross", 0.2, PALETTE["data"], "D", "R2 of B: A's potential"),
        ("r2_popularity", 0.1, PALETTE["theory"], "v", "R2 of B: popularity only"),
    ]:
        ax.plot([getattr(c, key) for c in results], y + dy, marker, color=color, ms=5,
                ls="none", label=label, gid=key)
    ax.set_yticks(y, [f"{c.names[0]}\nvs {c.names[1]}" for c in results])
    low = np.nanmin([min(c.pearson[1], c.beyond_popularity[1]) for c in results] + [0.0])
    ax.set_xlim(low - 0.05, 1.05)
    ax.set_ylim(-0.6, len(results) - 0.4)
    ax.axvline(0, color=PALETTE["error"], lw=0.8)
    ax.set_xlabel("correlation  /  R2")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    write_caption(ax, caption, f"{len(results)} comparisons; "
                  f"{int(100 * results[0].level)} % intervals (Fisher z)")
    return fig
