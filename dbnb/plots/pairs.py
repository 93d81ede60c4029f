r"""Figs. 4, 7, 9: pairs measured both ways against Eq. 5; and sampled vs exact pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import ExactComparison, PairCheck
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
def fig_pairs(
    check: PairCheck,
    *,
    ax: Axes | None = None,
    fraction: float | None = 0.2,
    seed: int = 42,
    symmetrize: bool = True,
    errors: bool | None = None,
    figsize: tuple[float, float] = (3.4, 2.6),
    caption: str | None = None,
) -> Figure:
    r"""Figs. 4, 7, 9: ``log T(g<-f)/T(f<-g)`` against ``beta [V(f) - V(g)]`` (Eq. 5).

    ``errors=False`` is for exactly known kernels: no error bars, and the box reports
    ``R^2`` of the log ratios about the diagonal instead of counting statistics. The default
    ``None`` draws errors unless the check has none (a kernel without sampling noise). The box
    gives ``chi^2/dof`` with its degrees of freedom (:attr:`PairCheck.dof`) and the authors'
    unweighted statistic (:attr:`PairCheck.letter_chi2_ndf`) under its own name.

    Error bars for a random ``fraction`` of the pairs (seed ``seed``; the Letter shows 1/5 for
    words and 1/10 for IdeaSearchFitter); the statistics in the box use all pairs. With
    ``symmetrize`` each shown pair is drawn in a random orientation (``(x, y) -> (-x, -y)``:
    a pair has no preferred order) so both halves of the diagonal are populated.
    """
    fig, ax = get_axes(ax, figsize)
    if errors is None:
        errors = check.design != "none"
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
        diagonal(ax, -lim, lim, "detailed balance (Eq. 5)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim * 1.25)
        ax.legend(loc="upper left")
        stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            f"$r$ = {fmt(check.pearson_r, '.3f')}",
            rf"$\chi^2$/dof = {fmt(check.chi2_per_dof)} (dof {check.dof})",
            rf"Letter's $\chi^2$/ndf = {fmt(check.letter_chi2_ndf)}",
            rf"within $1\sigma$: {fmt(100 * check.within_1sigma, '.0f')}%",
            rf"within $2\sigma$: {fmt(100 * check.within_2sigma, '.0f')}%",
        ] if errors else [
            f"$N$ = {check.n_pairs}",
            f"$r$ = {fmt(check.pearson_r, '.3f')}",
            f"$R^2$ about the diagonal = {fmt(check.r_squared, '.3f')}",
        ])
    else:
        write_empty(ax, "no pair measured both ways")
    ax.set_xlabel(r"$\beta\,[V(f)-V(g)]$")
    ax.set_ylabel(r"$\log\,T(g\leftarrow f)/T(f\leftarrow g)$")
    auto = provenance(check.source, f"K = {check.violation}" if check.violation else "",
                      f"estimator {check.estimator}" if check.estimator else "",
                      f"errors {check.design}" if errors and check.design else "",
                      f"|βΔV| ≤ {check.threshold:.1f}")
    write_caption(ax, caption, auto)
    return fig


@plotting_function
def fig_exact_comparison(
    check: ExactComparison,
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
    fig, ax = get_axes(ax, figsize)
    if check.n_pairs:
        ax.errorbar(check.y_exact, check.y, yerr=check.sigma, fmt="o", ms=3,
                    color=PALETTE["data"], alpha=0.75, ecolor=PALETTE["error"],
                    elinewidth=0.8, capsize=1.2, zorder=3, label=f"pairs ({check.n_pairs})")
        both = np.concatenate([check.y, check.y_exact])
        lo, hi = float(both.min()) - 0.5, float(both.max()) + 0.5
        diagonal(ax, lo, hi, "sampled = exact")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi + 0.2 * (hi - lo))
        ax.legend(loc="upper left")
        stats_box(ax, [
            f"$N$ = {check.n_pairs}",
            rf"within $1\sigma$: {fmt(100 * check.within_1sigma, '.0f')}%",
            rf"within $2\sigma$: {fmt(100 * check.within_2sigma, '.0f')}%",
            rf"mean $z$ = {fmt(float(np.mean(check.z)))}",
        ])
    else:
        write_empty(ax, "no pair measured both ways")
    ax.set_xlabel(r"exact $\log T(g\leftarrow f)/T(f\leftarrow g)$")
    ax.set_ylabel(r"sampled $\log T(g\leftarrow f)/T(f\leftarrow g)$")
    write_caption(ax, caption, "sampled counts vs exact token-probability kernel")
    return fig
