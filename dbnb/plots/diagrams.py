r"""Drawings of states on the potential: Fig. 1 (schematic), Figs. 2 and 6 (transition diagrams)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..counts import TransitionCounts
from ..graph import dag_depth
from ..potential import PotentialFit
from ._style import PALETTE, get_axes, plotting_function, provenance, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@plotting_function
def fig01_schematic(*, ax: Axes | None = None, figsize: tuple[float, float] = (4.2, 2.8),
                    caption: str | None = "") -> Figure:
    r"""Fig. 1: states on a potential landscape, transitions both ways, and Eq. 5.

    A drawing, no data: four states sit on a curve ``beta V(x)``; a pair ``f, g`` is joined by
    a thick downhill arrow ``T(g <- f)`` and a thin uphill arrow ``T(f <- g)``.
    """
    from matplotlib.patches import Circle, FancyArrowPatch

    fig, ax = get_axes(ax, figsize)
    x = np.linspace(0, 10, 400)

    def land(z):
        return 4.2 - 0.38 * z + 0.9 * np.sin(1.25 * z) + 0.012 * (z - 5) ** 3

    ax.plot(x, land(x), color=PALETTE["level"], lw=1.4, gid="landscape")
    ax.fill_between(x, land(x), land(x).min() - 1.2, color=PALETTE["data"], alpha=0.06, lw=0)
    xs = np.array([1.0, 3.7, 6.2, 8.9])
    names = ["f", "g", "h", "goal"]
    ys = land(xs)
    for xi, yi, nm in zip(xs, ys, names, strict=True):
        ax.add_patch(Circle((xi, yi + 0.32), 0.3, fc="white", ec=PALETTE["data"], lw=1.4,
                            zorder=6, gid=f"state:{nm}"))
        ax.text(xi, yi + 0.32, nm if len(nm) == 1 else "", ha="center", va="center",
                fontsize=9, style="italic", zorder=7)
    ax.text(xs[-1], ys[-1] - 0.35, "goal", ha="center", va="top", fontsize=9,
            color=PALETTE["caption"])
    for a in range(3):
        b = a + 1
        p, q = (xs[a] + 0.15, ys[a] + 0.68), (xs[b] - 0.15, ys[b] + 0.68)
        hi_, lo_ = (p, q) if ys[a] > ys[b] else (q, p)  # downhill runs hi_ -> lo_

        def rad(start, end, r):  # arc above the chord whichever way the arrow runs
            return -r if end[0] > start[0] else r

        ax.add_patch(FancyArrowPatch(hi_, lo_, connectionstyle=f"arc3,rad={rad(hi_, lo_, 0.5)}",
                                     arrowstyle="-|>", mutation_scale=9, lw=2.0,
                                     color=PALETTE["down"], zorder=4, shrinkA=2, shrinkB=2))
        ax.add_patch(FancyArrowPatch(lo_, hi_, connectionstyle=f"arc3,rad={rad(lo_, hi_, 0.2)}",
                                     arrowstyle="-|>", mutation_scale=7, lw=0.8,
                                     color=PALETTE["up"], zorder=4, shrinkA=2, shrinkB=2))
    mid = 0.5 * (xs[0] + xs[1])
    top = max(ys[0], ys[1])
    ax.text(mid, top + 1.55, r"$T(g\leftarrow f)$", ha="center", fontsize=9,
            color=PALETTE["down"])
    ax.text(mid + 0.35, top + 0.55, r"$T(f\leftarrow g)$", ha="left", va="center", fontsize=9,
            color=PALETTE["up"])
    ax.text(
        9.9, land(x).max() + 1.5,
        r"$\dfrac{T(g\leftarrow f)}{T(f\leftarrow g)} = e^{\beta\,[V(f)-V(g)]}$",
        ha="right", va="top", fontsize=9,
        bbox=dict(boxstyle="round,pad=0.4", fc="white", ec="0.6", lw=0.5),
    )
    ax.set_xlim(0, 10)
    ax.set_ylim(land(x).min() - 1.2, land(x).max() + 1.9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("state space")
    ax.set_ylabel(r"potential $\beta V$")
    write_caption(ax, caption, "")
    return fig


def _total_calls(counts: TransitionCounts) -> float:
    """Calls made in the run: recorded calls, else transitions plus escapes."""
    if counts.calls is not None:
        return float(np.sum(counts.calls))
    esc = 0 if counts.escapes is None else int(np.sum(counts.escapes))
    return float(counts.n_samples + esc)


def diagram_levels(
    fit: PotentialFit, *, inf_level: float | None = None, inf_spacing: float = 1.2
) -> tuple[pd.Series, float]:
    """y position of every drawable state in the transition diagram, and the break level.

    Finite ``beta V`` are drawn at their value. ``+inf`` states are stacked above the break
    ``inf_level`` (default: ``log`` of the total number of calls, the Letter's
    ``log(20000) ~ 9.9``; at least 1 above the highest finite level), one per
    ``inf_spacing``, deeper in the condensation DAG higher; ``-inf`` states mirror this below
    ``-inf_level``. NaN (unrelated) states are left out.
    """
    tk = fit.transitions
    states = pd.Index(tk.states)
    pot = fit.potential.reindex(states)
    finite = pot[np.isfinite(pot)]
    if inf_level is None:
        inf_level = float(np.log(max(_total_calls(tk.counts), 2.0)))
        if len(finite):
            inf_level = max(inf_level, float(finite.max()) + 1.0)
    levels = finite.astype(float).copy()
    labels = fit.component.reindex(states).to_numpy()
    f, g, _, _ = tk.edges()
    for sign in (+1, -1):
        sel = pot[pot == sign * np.inf].index
        if not len(sel):
            continue
        hops = dag_depth(labels, f, g, upstream=sign > 0)  # component hops to the main one
        depth = pd.Series(hops, index=states)[sel]
        rel = fit.relative[sel]
        key = pd.DataFrame({"depth": depth, "rel": sign * rel, "i": np.arange(len(sel))})
        order = key.sort_values(["depth", "rel", "i"]).index
        ys = sign * (inf_level + inf_spacing * (1 + np.arange(len(order))))
        levels = pd.concat([levels, pd.Series(ys, index=order)])
    return levels, float(inf_level)


@plotting_function
def fig02_transition_diagram(
    fit: PotentialFit,
    *,
    ax: Axes | None = None,
    min_T: float = 0.0,  # noqa: N803
    annotate: bool = True,
    inf_level: float | None = None,
    inf_spacing: float = 1.2,
    figsize: tuple[float, float] = (5.0, 3.4),
    caption: str | None = None,
) -> Figure:
    r"""Figs. 2 and 6: transition diagram ordered by the potential.

    One horizontal line per state at ``y = beta V`` (``gid="level:<state>"``), an arrow
    ``f -> g`` for every transition with ``T(g<-f) > min_T``, line width growing with ``T``
    and labelled with ``T`` when ``annotate``. States at ``+inf`` are stacked above a break
    mark at ``inf_level`` (see :func:`diagram_levels`) and ticked ``+∞``; ``-inf`` below.
    """
    from matplotlib.patches import FancyArrowPatch

    fig, ax = get_axes(ax, figsize)
    tk = fit.transitions
    levels, brk = diagram_levels(fit, inf_level=inf_level, inf_spacing=inf_spacing)
    x0, x1 = 0.0, 1.0
    lo = min(levels.min(), 0.0) - 0.6
    hi = max(levels.max(), 0.0) + 0.6
    label_y = _spread(levels, 0.045 * (hi - lo))
    for state, y in levels.items():
        ax.plot([x0, x1], [y, y], color=PALETTE["level"], lw=1.0, solid_capstyle="butt",
                gid=f"level:{state}", zorder=2)
        ax.annotate(f"{state}", (x1, y), xytext=(x1 + 0.03, label_y[state]), ha="left",
                    va="center", fontsize=9, annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", lw=0.4, color=PALETTE["caption"],
                                    shrinkA=0, shrinkB=0)
                    if abs(label_y[state] - y) > 1e-9 else None)
    f, g, t, _ = tk.edges()
    s = np.array(tk.states, dtype=object)
    drawn = np.array([(a in levels.index) and (b in levels.index) for a, b in zip(s[f], s[g],
                                                                                 strict=True)],
                     dtype=bool)
    keep = drawn & (t > min_T)
    f, g, t = f[keep], g[keep], t[keep]
    yf = levels.reindex(s[f]).to_numpy(dtype=float)
    yg = levels.reindex(s[g]).to_numpy(dtype=float)
    order = np.lexsort((yg, -yf)) if f.size else np.zeros(0, int)
    xs = np.linspace(0.06, 0.90, f.size + 2)[1:-1] if f.size else np.zeros(0)
    for x, e in zip(xs, order, strict=True):
        color = PALETTE["level"]
        lw = 0.6 + 2.6 * float(min(t[e], 1.0)) ** 0.5
        ax.add_patch(FancyArrowPatch(
            (x, yf[e]), (x, yg[e]), arrowstyle="-|>", mutation_scale=5 + 1.5 * lw, lw=lw,
            color=color, shrinkA=0, shrinkB=0.5, zorder=3, gid=f"arrow:{s[f[e]]}->{s[g[e]]}",
        ))
        if annotate:
            ym = 0.5 * (yf[e] + yg[e])
            ax.annotate(f"{t[e]:.2f}", (x, ym), xytext=(2 + lw, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=9, zorder=4,
                        bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.85))
    # axis: finite ticks at their values, +/- inf as a band above/below the break
    finite = np.sort(levels[np.abs(levels) < brk].to_numpy())
    ticks, labels = [], []
    for v in finite:  # label a tick only if it does not collide with the previous label
        if not ticks or v - ticks[-1] >= 0.045 * (hi - lo):
            ticks.append(float(v))
            labels.append(f"{v:.1f}")
    for sign, label in ((+1, "+∞"), (-1, "−∞")):
        band = levels[sign * levels > brk]
        if len(band):
            ticks.append(float(band.mean()))
            labels.append(label)
            _break_mark(ax, sign * brk)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(lo, hi)
    ax.set_xlim(-0.02, 1.0)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.set_ylabel(r"potential $\beta V$")
    n_unrel = int((fit.status == "unrelated").sum())
    auto = provenance(
        tk.counts.source, f"estimator {tk.method}", f"{tk.n_states} states",
        f"{tk.counts.n_samples} transitions",
        f"{n_unrel} unrelated states not drawn" if n_unrel else "",
    )
    write_caption(ax, caption, auto)
    return fig


def _spread(levels: pd.Series, gap: float) -> pd.Series:
    """Label heights: the levels, pushed upwards to be at least ``gap`` apart (order kept)."""
    order = levels.sort_values()
    y = order.to_numpy(dtype=float).copy()
    for i in range(1, y.size):
        y[i] = max(y[i], y[i - 1] + gap)
    return pd.Series(y, index=order.index).reindex(levels.index)


def _break_mark(ax: Axes, y: float) -> None:
    """A '//' mark on the y axis at data height ``y`` (the break before ±inf)."""
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transAxes, ax.transData)
    ax.add_patch(Rectangle((-0.02, y - 0.12), 0.04, 0.24, transform=trans, fc="white",
                           ec="none", clip_on=False, zorder=9, gid="break"))
    dy = 0.18
    for off in (-0.09, 0.09):
        ax.plot([-0.018, 0.018], [y + off - dy / 2, y + off + dy / 2], transform=trans,
                color="k", lw=0.8, clip_on=False, zorder=10, gid="break")
    ax.plot([0, 1], [y, y], transform=trans, color="0.6", lw=0.5, ls=(0, (2, 2)), zorder=1,
            gid="break")
