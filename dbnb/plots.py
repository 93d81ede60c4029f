r"""Figures and tables of the Letter, drawn from result objects.

One function per figure. Each takes a result (:class:`~dbnb.potential.PotentialFit`,
:class:`~dbnb.balance.PairCheck`, ...) and a few keyword-only style options, draws into ``ax``
when one is given (else into a new figure) and returns the :class:`matplotlib.figure.Figure`.
Nothing here reads files, fits potentials or calls models.

=============================  ===========================================================
function                       the Letter's item
=============================  ===========================================================
:func:`fig01_schematic`        Fig. 1: states on a potential landscape, Eq. 5
:func:`fig02_transition_diagram`  Figs. 2, 6: levels at ``beta V``, arrows ``T(g<-f)``
:func:`fig_triplets`           Figs. 3, 8: closed 3-cycles, forward vs backward (Eq. 7)
:func:`fig_pairs`              Figs. 4, 7, 9: log ratio vs ``beta dV`` (Eq. 5)
:func:`fig_potential_vs_score` Fig. 5: potential vs log10 MSE, up/down transitions
:func:`fig10_one_way`          Fig. 10: one-way pairs vs the Eq. 25 bound
:func:`fig11_potential_histogram`  Fig. 11: histogram of ``beta V`` with a Gaussian
:func:`fig12_majority_vote`    Fig. 12: majority-vote ratio vs power law (Eqs. 29-30)
:func:`table1_examples` ...    Tables I-IV as DataFrames
=============================  ===========================================================

Every figure function takes ``caption``: ``None`` writes an automatic provenance line (data
source, estimator, counts) above the axes, a string writes that string, ``""`` writes none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import balance
from .balance import OneWayCheck, PairCheck, PotentialDistribution, ScoreGraph, TripletCheck
from .counts import TransitionCounts
from .potential import PotentialFit

try:  # matplotlib is needed only to draw
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch, Rectangle
    from matplotlib.transforms import blended_transform_factory

    _MPL_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - exercised only without matplotlib
    _MPL_ERROR = _exc

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "fig01_schematic",
    "fig02_transition_diagram",
    "fig_pairs",
    "fig_triplets",
    "fig_potential_vs_score",
    "fig10_one_way",
    "fig11_potential_histogram",
    "fig12_majority_vote",
    "fig_exact_comparison",
    "table1_examples",
    "table2_counts",
    "table3_statistics",
    "table4_action_scale",
]

#: One palette for every figure (seaborn's "colorblind").
PALETTE = {
    "data": "#0173B2",
    "theory": "#D55E00",
    "down": "#029E73",
    "up": "#D55E00",
    "flat": "#949494",
    "accent": "#DE8F05",
    "level": "0.15",
    "error": "0.75",
    "caption": "0.35",
}

_BASE_RC = {
    "font.size": 8,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "axes.unicode_minus": True,
    "savefig.dpi": 200,
    "figure.dpi": 100,
}


def _style_rc() -> dict[str, Any]:
    """seaborn's ``ticks`` style in the ``paper`` context when seaborn is there, else ours."""
    rc: dict[str, Any] = {}
    try:
        import seaborn as sns

        rc.update(sns.axes_style("ticks"))
        rc.update(sns.plotting_context("paper"))
    except ImportError:  # seaborn is optional
        pass
    rc.update(_BASE_RC)
    valid = set(mpl.rcParams.keys())
    return {k: v for k, v in rc.items() if k in valid}


def _plotting_function(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Check matplotlib is importable and draw inside the package style."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _MPL_ERROR is not None:
            raise ImportError(
                f"dbnb.plots.{func.__name__} needs matplotlib; install it with "
                f"`pip install matplotlib` (import failed: {_MPL_ERROR})"
            ) from _MPL_ERROR
        with mpl.rc_context(_style_rc()):
            return func(*args, **kwargs)

    return wrapper


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return ax.figure, ax


def _caption(ax: Axes, caption: str | None, auto: str) -> None:
    text = auto if caption is None else caption
    if text:
        import textwrap

        # Wrap to the axes' width (about 0.55 em per character at 6 pt), so that a long
        # provenance line never widens a saved figure.
        width_in = ax.get_position().width * ax.figure.get_figwidth()
        chars = max(30, int(width_in * 72 / (6 * 0.55)))
        text = "\n".join(textwrap.wrap(text, chars))
        ax.text(
            0.0, 1.02, text, transform=ax.transAxes, ha="left", va="bottom",
            fontsize=6, color=PALETTE["caption"], gid="caption",
        )


def _provenance(source: str, *parts: str) -> str:
    items = [source or "unnamed data", *[p for p in parts if p]]
    return "; ".join(items)


def _stats_box(ax: Axes, lines: Sequence[str], loc: str = "lower right") -> None:
    x, ha = (0.97, "right") if "right" in loc else (0.03, "left")
    y, va = (0.04, "bottom") if "lower" in loc else (0.96, "top")
    ax.text(
        x, y, "\n".join(lines), transform=ax.transAxes, ha=ha, va=va, fontsize=7,
        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.6", lw=0.5, alpha=0.9),
        gid="stats",
    )


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            color=PALETTE["caption"], gid="empty")


def _diagonal(ax: Axes, lo: float, hi: float, label: str, offset: float = 0.0, **kw) -> None:
    style = dict(color=PALETTE["theory"], ls="--", lw=1.2, zorder=5)
    style.update(kw)
    ax.plot([lo, hi], [lo + offset, hi + offset], label=label, gid="diagonal", **style)


def _fmt(x: float, spec: str = ".2f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


# ---------------------------------------------------------------------------- Fig. 1
@_plotting_function
def fig01_schematic(*, ax: Axes | None = None, figsize: tuple[float, float] = (4.2, 2.8),
                    caption: str | None = "") -> Figure:
    r"""Fig. 1: states on a potential landscape, transitions both ways, and Eq. 5.

    A drawing, no data: four states sit on a curve ``beta V(x)``; a pair ``f, g`` is joined by
    a thick downhill arrow ``T(g <- f)`` and a thin uphill arrow ``T(f <- g)``.
    """
    fig, ax = _axes(ax, figsize)
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
    ax.text(xs[-1], ys[-1] - 0.35, "goal", ha="center", va="top", fontsize=7,
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
    ax.text(mid, top + 1.55, r"$T(g\leftarrow f)$", ha="center", fontsize=7,
            color=PALETTE["down"])
    ax.text(mid + 0.35, top + 0.55, r"$T(f\leftarrow g)$", ha="left", va="center", fontsize=7,
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
    _caption(ax, caption, "")
    return fig


# ---------------------------------------------------------------------------- Figs. 2, 6
def _dag_depth(fit: PotentialFit, sign: int) -> pd.Series:
    """Longest path (in SCC hops) from each upstream (``sign=+1``) or downstream (``-1``)
    state to the main component along the condensation DAG."""
    tk = fit.transitions
    comp = fit.component.reindex(pd.Index(tk.states)).to_numpy()
    f, g, _, _ = tk.edges()
    cross = comp[f] != comp[g]
    a, b = (comp[f][cross], comp[g][cross]) if sign > 0 else (comp[g][cross], comp[f][cross])
    depth = np.full(comp.max() + 1, -np.inf)
    depth[0] = 0.0
    for _ in range(comp.max() + 1):  # Bellman-Ford on a DAG: at most #components rounds
        new = depth.copy()
        np.maximum.at(new, a, depth[b] + 1)
        if np.array_equal(new, depth):
            break
        depth = new
    return pd.Series(depth[comp], index=pd.Index(tk.states))


def _total_calls(counts: TransitionCounts) -> float:
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
    pot = fit.potential.reindex(pd.Index(fit.transitions.states))
    finite = pot[np.isfinite(pot)]
    if inf_level is None:
        inf_level = float(np.log(max(_total_calls(fit.transitions.counts), 2.0)))
        if len(finite):
            inf_level = max(inf_level, float(finite.max()) + 1.0)
    levels = finite.astype(float).copy()
    for sign in (+1, -1):
        sel = pot[pot == sign * np.inf].index
        if not len(sel):
            continue
        depth = _dag_depth(fit, sign)[sel]
        rel = fit.relative[sel]
        key = pd.DataFrame({"depth": depth, "rel": sign * rel, "i": np.arange(len(sel))})
        order = key.sort_values(["depth", "rel", "i"]).index
        ys = sign * (inf_level + inf_spacing * (1 + np.arange(len(order))))
        levels = pd.concat([levels, pd.Series(ys, index=order)])
    return levels, float(inf_level)


@_plotting_function
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
    fig, ax = _axes(ax, figsize)
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
                    va="center", fontsize=7, annotation_clip=False,
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
                        ha="left", va="center", fontsize=6.5, zorder=4,
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
    auto = _provenance(
        tk.counts.source, f"estimator {tk.method}", f"{tk.n_states} states",
        f"{tk.counts.n_samples} transitions",
        f"{n_unrel} unrelated states not drawn" if n_unrel else "",
    )
    _caption(ax, caption, auto)
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
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    ax.add_patch(Rectangle((-0.02, y - 0.12), 0.04, 0.24, transform=trans, fc="white",
                           ec="none", clip_on=False, zorder=9, gid="break"))
    dy = 0.18
    for off in (-0.09, 0.09):
        ax.plot([-0.018, 0.018], [y + off - dy / 2, y + off + dy / 2], transform=trans,
                color="k", lw=0.8, clip_on=False, zorder=10, gid="break")
    ax.plot([0, 1], [y, y], transform=trans, color="0.6", lw=0.5, ls=(0, (2, 2)), zorder=1,
            gid="break")


# ---------------------------------------------------------------------------- Figs. 4, 7, 9
@_plotting_function
def fig_pairs(
    check: PairCheck,
    *,
    ax: Axes | None = None,
    fraction: float | None = 0.2,
    seed: int = 42,
    symmetrize: bool = True,
    errors: bool = True,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Figs. 4, 7, 9: ``log T(g<-f)/T(f<-g)`` against ``beta [V(f) - V(g)]`` (Eq. 5).

    ``errors=False`` is for exactly known kernels: no error bars, and the box reports
    ``R^2`` of the log ratios about the diagonal instead of counting statistics.

    Error bars for a random ``fraction`` of the pairs (seed ``seed``; the Letter shows 1/5 for
    words and 1/10 for IdeaSearchFitter); the statistics in the box use all pairs. With
    ``symmetrize`` each shown pair is drawn in a random orientation (``(x, y) -> (-x, -y)``:
    a pair has no preferred order) so both halves of the diagonal are populated.
    """
    fig, ax = _axes(ax, figsize)
    idx = check.sample(fraction, seed=seed)
    x, y, s = check.x[idx], check.y[idx], check.sigma[idx]
    if symmetrize and idx.size:
        flip = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=idx.size)
        x, y = x * flip, y * flip
    if check.n_pairs:
        ax.errorbar(x, y, yerr=s if errors else None, fmt="o", ms=3, color=PALETTE["data"],
                    alpha=0.75,
                    ecolor=PALETTE["error"], elinewidth=0.8, capsize=1.2, zorder=3,
                    label=f"pairs ({idx.size} of {check.n_pairs} shown)")
        lim = float(np.nanmax(np.abs(np.concatenate([x, y])))) + 1.0 if idx.size else 1.0
        _diagonal(ax, -lim, lim, "detailed balance (Eq. 5)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim * 1.25)
        ax.legend(loc="upper left")
        _stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            f"$r$ = {_fmt(check.pearson_r, '.3f')}",
            rf"$\chi^2/N$ = {_fmt(check.chi2_per_pair)}",
            rf"within $1\sigma$: {_fmt(100 * check.within_1sigma, '.0f')}%",
            rf"within $2\sigma$: {_fmt(100 * check.within_2sigma, '.0f')}%",
        ] if errors else [
            f"$N$ = {check.n_pairs}",
            f"$r$ = {_fmt(check.pearson_r, '.3f')}",
            f"$R^2$ about the diagonal = {_fmt(check.r_squared, '.3f')}",
        ])
    else:
        _empty(ax, "no pair measured both ways")
    ax.set_xlabel(r"$\beta\,[V(f)-V(g)]$")
    ax.set_ylabel(r"$\log\,T(g\leftarrow f)/T(f\leftarrow g)$")
    auto = _provenance(check.source, f"K = {check.kernel}" if check.kernel else "",
                       f"estimator {check.estimator}" if check.estimator else "",
                       f"|βΔV| ≤ {check.threshold:.1f}")
    _caption(ax, caption, auto)
    return fig


# ---------------------------------------------------------------------------- Figs. 3, 8
@_plotting_function
def fig_triplets(
    check: TripletCheck,
    *,
    ax: Axes | None = None,
    fraction: float | None = 0.2,
    seed: int = 42,
    errors: bool = True,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Figs. 3 and 8: ``sum log T`` around each 3-cycle, forward against backward (Eq. 7).

    Detailed balance puts every cycle on the diagonal (Kolmogorov's criterion). Error bars are
    the quadrature sums of ``1/N + 1/N0`` over the three legs of each direction.
    ``errors=False`` is for exactly known kernels: no error bars, and the box reports the rms
    cycle affinity ``forward - backward`` instead of counting statistics.
    """
    fig, ax = _axes(ax, figsize)
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
        _diagonal(ax, lo, hi, "detailed balance")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi + 0.25 * (hi - lo))
        ax.legend(loc="upper left")
        _stats_box(ax, [
            f"$N$ = {check.n_triplets}",
            rf"$\chi^2/N$ = {_fmt(check.chi2_per_triplet)}",
            rf"within $1\sigma$: {_fmt(100 * check.within_1sigma, '.0f')}%",
        ] if errors else [
            f"$N$ = {check.n_triplets}",
            f"$r$ = {_fmt(check.pearson_r, '.3f')}",
            f"rms affinity = {_fmt(check.rms_affinity, '.2f')}",
        ])
    else:
        _empty(ax, "no closed 3-cycle measured both ways")
    ax.set_xlabel(r"$\sum\log T$ (forward $f\to g\to h\to f$)")
    ax.set_ylabel(r"$\sum\log T$ (backward)")
    auto = _provenance(check.source, f"estimator {check.estimator}" if check.estimator else "",
                       f"every leg N ≥ {check.min_count}")
    _caption(ax, caption, auto)
    return fig


@_plotting_function
def fig_exact_comparison(
    check: balance.ExactComparison,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (3.4, 2.8),
    caption: str | None = None,
) -> Figure:
    r"""Sampled pair log-ratios against the exact ones (beyond the Letter).

    ``log T(g<-f)/T(f<-g)`` from the sampled counts (with the Poisson error of Eq. 5's check)
    against the same ratio from an exactly known kernel; honest error bars put about 68 % of
    the pairs within one sigma of the diagonal.
    """
    fig, ax = _axes(ax, figsize)
    if check.n_pairs:
        ax.errorbar(check.y_exact, check.y, yerr=check.sigma, fmt="o", ms=3,
                    color=PALETTE["data"], alpha=0.75, ecolor=PALETTE["error"],
                    elinewidth=0.8, capsize=1.2, zorder=3, label=f"pairs ({check.n_pairs})")
        both = np.concatenate([check.y, check.y_exact])
        lo, hi = float(both.min()) - 0.5, float(both.max()) + 0.5
        _diagonal(ax, lo, hi, "sampled = exact")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi + 0.2 * (hi - lo))
        ax.legend(loc="upper left")
        _stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            rf"within $1\sigma$: {_fmt(100 * check.within_1sigma, '.0f')}%",
            rf"within $2\sigma$: {_fmt(100 * check.within_2sigma, '.0f')}%",
            rf"mean $z$ = {_fmt(float(np.mean(check.z)))}",
        ])
    else:
        _empty(ax, "no pair measured both ways")
    ax.set_xlabel(r"exact $\log T(g\leftarrow f)/T(f\leftarrow g)$")
    ax.set_ylabel(r"sampled $\log T(g\leftarrow f)/T(f\leftarrow g)$")
    _caption(ax, caption, "sampled counts vs exact token-probability kernel")
    return fig


# ---------------------------------------------------------------------------- Fig. 5
@_plotting_function
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
    fig, ax = _axes(ax, figsize)
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
               label=f"{name} {_fmt(100 * sh[name], '.1f')}% ({_fmt(100 * shw[name], '.1f')}%)")
        for d, name in ((-1, "down"), (1, "up"), (0, "flat"))
    ]
    ax.legend(handles=handles, loc="upper center", ncol=3, handlelength=1.2,
              columnspacing=1.0, title="share of transitions (of samples)", title_fontsize=7)
    ax.set_xlabel((r"$\log_{10}$ " if logx else "") + graph.score_name)
    ax.set_ylabel(r"potential $\beta V$")
    if len(xv) and np.isfinite(xv).any():
        pad = 0.05 * (np.nanmax(xv) - np.nanmin(xv) or 1.0)
        ax.set_xlim(np.nanmin(xv) - pad, np.nanmax(xv) + pad)
        ypad = 0.06 * (np.ptp(yv) or 1.0)
        ax.set_ylim(yv.min() - ypad, yv.max() + 5 * ypad)
    auto = _provenance(graph.source, f"{len(graph.states)} most visited states",
                       f"{graph.n_transitions} transitions with T > {graph.min_T:g}")
    _caption(ax, caption, auto)
    return fig


# ---------------------------------------------------------------------------- Fig. 10
@_plotting_function
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

    ``n`` random pairs with finite ``dV`` (seed ``seed``); the bound ``y = x`` and the line
    ``y = x + q`` where ``q`` is the ``check.percentile``-th percentile of ``dV - bound``.
    """
    fig, ax = _axes(ax, figsize)
    idx = check.sample(n, seed=seed)
    if idx.size:
        bx, dv = check.bound[idx], check.dv[idx]
        ax.scatter(bx, dv, s=7, color=PALETTE["data"], alpha=0.6, lw=0, zorder=3,
                   label=f"one-way pairs ({idx.size} of {check.n_pairs} shown)")
        xpad = 0.1 * (np.ptp(bx) or 1.0)
        xlo, xhi = float(bx.min()) - xpad, float(bx.max()) + xpad
        ylo = min(float(dv.min()), xlo)
        yhi = max(float(dv.max()), xhi + check.offset)
        _diagonal(ax, xlo, xhi, "Eq. 25 bound")
        _diagonal(ax, xlo, xhi, f"{check.percentile:g}th percentile", offset=check.offset,
                  color=PALETTE["accent"], ls=":")
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo - 0.5, yhi + 0.35 * (yhi - ylo + 1.0))
        ax.legend(loc="upper left")
        _stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            rf"$\beta\Delta V \geq$ bound: {_fmt(100 * check.fraction_satisfied, '.0f')}%",
        ])
    else:
        _empty(ax, "no one-way pair with a finite potential difference")
    ax.set_xlabel(r"bound $\log\,[N(g\leftarrow f)\,N(g)/N(f)]$")
    ax.set_ylabel(r"$\beta\,[V(f)-V(g)]$")
    auto = _provenance(check.source, f"estimator {check.estimator}" if check.estimator else "")
    _caption(ax, caption, auto)
    return fig


# ---------------------------------------------------------------------------- Fig. 11
@_plotting_function
def fig11_potential_histogram(
    dist: PotentialDistribution,
    *,
    ax: Axes | None = None,
    bins: int | str = 40,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Fig. 11: histogram of ``beta V`` with its Gaussian fit (Supplement D, Eq. 28)."""
    fig, ax = _axes(ax, figsize)
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
        _stats_box(ax, [
            rf"$\mu$ = {_fmt(dist.mu)}, $\sigma$ = {_fmt(dist.sigma)}",
            rf"$S_{{\min}}$ Eq. 28: {_fmt(dist.expected_action, '.3f')}",
            rf"  large $\sigma$: {_fmt(dist.expected_action_asymptotic, '.3f')}",
            rf"$S_{{\min}}$ fit: {_fmt(dist.actual_action, '.3f')}",
        ], loc="upper left")
        ax.set_ylim(0, max(counts.max(), 1) * 1.6)
    else:
        _empty(ax, "no finite potential")
    ax.set_xlabel(r"$\beta V(f)$")
    ax.set_ylabel("states")
    auto = _provenance(dist.source, f"K = {dist.kernel}" if dist.kernel else "",
                       f"states sampled ≥ {dist.min_calls}×")
    _caption(ax, caption, auto)
    return fig


# ---------------------------------------------------------------------------- Fig. 12
@_plotting_function
def fig12_majority_vote(
    *,
    M: int = 10,  # noqa: N803 (the Letter's symbol)
    ns: Sequence[int] = (5, 7, 9),
    t_backward: Sequence[float] = (0.005, 0.02, 0.08),
    max_ratio: float = 10.0,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (3.6, 2.8),
    caption: str | None = "",
) -> Figure:
    r"""Fig. 12: ratio after an ``n``-of-``M`` majority vote vs the base ratio (Eqs. 29-30).

    For ``T(f<-g) = b`` in ``t_backward`` and ``T(g<-f) = r b`` with ``1 <= r <= max_ratio``
    (capped at ``T <= 1``), plot ``T_{M,n}(rb) / T_{M,n}(b)`` against ``r`` (log-log), with the
    small-``T`` power law ``r^n`` (black dotted): the potential scales by ``n``.
    """
    fig, ax = _axes(ax, figsize)
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", "-."]
    for i, n in enumerate(ns):
        color = cmap(0.1 + 0.75 * i / max(len(ns) - 1, 1))
        r_all = np.geomspace(1.0, max_ratio, 100)
        ax.plot(r_all, r_all ** n, color="k", ls=":", lw=0.9, zorder=1,
                gid="power_law")
        for j, b in enumerate(t_backward):
            r = r_all[r_all * b <= 1.0]
            ratio, _ = balance.majority_vote_ratio(r * b, b, M, n)
            ax.plot(r, ratio, color=color, ls=styles[j % len(styles)], lw=1.3,
                    gid=f"ratio:n={n},T={b:g}")
        ax.text(max_ratio * 1.05, max_ratio ** n, f"$n$ = {n}", color=color, va="center",
                fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    handles = [Line2D([], [], color="0.3", ls=styles[j % len(styles)],
                      label=rf"$T(f\leftarrow g)$ = {b:g}") for j, b in enumerate(t_backward)]
    handles.append(Line2D([], [], color="k", ls=":", label=r"power law $(a/b)^n$"))
    ax.legend(handles=handles, loc="upper left", title=f"$M$ = {M}", title_fontsize=7)
    ax.set_xlim(1.0, max_ratio * 1.6)
    ax.set_xlabel(r"base ratio $a/b = T(g\leftarrow f)/T(f\leftarrow g)$")
    ax.set_ylabel(r"$T_{M,n}(g\leftarrow f)/T_{M,n}(f\leftarrow g)$")
    _caption(ax, caption, "")
    return fig


# ---------------------------------------------------------------------------- tables
def table1_examples(fit: PotentialFit, n: int = 5, *,
                    counts: TransitionCounts | None = None) -> pd.DataFrame:
    """Table I: ``n`` example states with their ``beta V``, spread evenly over the finite range
    (by rank, highest first); with ``counts``, also their ``mse`` and ``score`` metadata (when
    present) and ``N0``."""
    v = fit.potential[np.isfinite(fit.potential)].sort_values(ascending=False)
    if not len(v):
        return pd.DataFrame({"beta_V": pd.Series(dtype=float)})
    pos = np.unique(np.round(np.linspace(0, len(v) - 1, min(n, len(v)))).astype(int))
    out = v.iloc[pos].rename("beta_V").to_frame()
    if counts is not None:
        for col in ("mse", "score"):
            if col in counts.metadata.columns:
                out[col] = counts.metadata[col].reindex(out.index).to_numpy()
        if counts.calls is not None:
            out["N0"] = pd.Series(counts.calls, index=counts.index).reindex(out.index).to_numpy()
    return out


def table2_counts(counts: TransitionCounts) -> pd.DataFrame:
    """Table II: dense counts, one row per source (from) and one column per target (to),
    plus an ``escape`` column when escapes are known."""
    df = counts.to_dense_frame()
    df.index.name = "from \\ to"
    return df


def table3_statistics(counts: Mapping[str, TransitionCounts]) -> pd.DataFrame:
    """Table III: database statistics (:meth:`TransitionCounts.statistics`) per data set."""
    rows = {name: c.statistics() for name, c in counts.items()}
    return pd.DataFrame(rows).T.rename_axis("data set")


def table4_action_scale(fits: Mapping[str, PotentialFit], *, min_calls: int = 2) -> pd.DataFrame:
    """Table IV: ``sigma``, expected minimum action (Eq. 28, both forms) and actual action."""
    return balance.action_scale_table(dict(fits), min_calls=min_calls)
