r"""Is it detailed balance? Calibration of the tests and the Hodge split of every data set.

* :func:`fig_p_values`: histogram of p-values over synthetic chains against the uniform
  density (:class:`dbnb.calibration.NullPValues`);
* :func:`fig_power`: rejection rate against the curl drive (:func:`dbnb.calibration.power`);
* :func:`fig_coverage`: standardised errors of the likelihood potentials against N(0, 1)
  (:class:`dbnb.calibration.Coverage`);
* :func:`fig_hodge_fractions`: gradient / curl / harmonic shares of the log-ratio flow, one
  bar per data set (:class:`dbnb.verdict.Verdict`), undefined ones said in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..calibration import Coverage, NullPValues
from ..verdict import Verdict, format_p
from ._style import (
    PALETTE,
    fmt,
    get_axes,
    plotting_function,
    stats_box,
    write_caption,
    write_empty,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["fig_coverage", "fig_hodge_fractions", "fig_p_values", "fig_power"]

#: Colours of the three Hodge parts.
HODGE_COLOURS = {"gradient": PALETTE["data"], "curl": PALETTE["theory"],
                 "harmonic": PALETTE["accent"]}


@plotting_function
def fig_p_values(
    null: NullPValues,
    *,
    kind: str = "reported",
    ax: Axes | None = None,
    bins: int = 10,
    alpha: float = 0.05,
    figsize: tuple[float, float] = (3.2, 2.4),
    caption: str | None = None,
) -> Figure:
    """Histogram of the p-values (density) with the uniform density 1 of a calibrated test.

    ``kind``: ``"reported"`` (bootstrap when run), ``"chi2"`` or ``"bootstrap"``.
    """
    fig, ax = get_axes(ax, figsize)
    p = null._pick(kind)
    p = p[np.isfinite(p)]
    name = {"reported": "bootstrap" if null.n_bootstrap else "chi2"}.get(kind, kind)
    if p.size:
        ax.hist(p, bins=bins, range=(0, 1), density=True, color=PALETTE["data"], alpha=0.75,
                edgecolor="white", lw=0.4, label=f"{p.size} chains")
        ax.axhline(1.0, color=PALETTE["theory"], ls="--", lw=1.2, label="uniform")
        ax.legend(loc="upper right")
        stats_box(ax, [f"rejected at {alpha:g}: {fmt(null.rejection_rate(alpha, kind), '.1%')}",
                       f"KS vs uniform: p = {fmt(null.uniformity(kind), '.2g')}"],
                  loc="upper left")
        top = np.histogram(p, bins=bins, range=(0, 1), density=True)[0].max()
        ax.set_ylim(0, max(2.0, top * 1.45))
    else:
        write_empty(ax, "no defined test")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"p-value ({name})")
    ax.set_ylabel("density")
    write_caption(ax, caption, null.description)
    return fig


@plotting_function
def fig_power(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (3.2, 2.4),
    caption: str | None = None,
) -> Figure:
    """Rejection rate against the drive (a table from :func:`dbnb.calibration.power`)."""
    fig, ax = get_axes(ax, figsize)
    alpha = float(table.attrs.get("alpha", 0.05))
    x = table.index.to_numpy(dtype=float)
    ax.plot(x, table["rejected"], "o-", color=PALETTE["data"], ms=3.5, label="reported p")
    if "rejected_chi2" in table and not np.allclose(table["rejected_chi2"], table["rejected"],
                                                     equal_nan=True):
        ax.plot(x, table["rejected_chi2"], "s--", color=PALETTE["flat"], ms=3, label="chi2 p")
    ax.axhline(alpha, color=PALETTE["theory"], ls=":", lw=1.0, label=f"level {alpha:g}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("curl drive $d$ (cycle affinity of every triangle)")
    ax.set_ylabel("fraction rejected")
    ax.legend(loc="center right")
    write_caption(ax, caption, str(table.attrs.get("description", "")))
    return fig


@plotting_function
def fig_coverage(
    cov: Coverage,
    *,
    ax: Axes | None = None,
    bins: int = 30,
    figsize: tuple[float, float] = (3.2, 2.4),
    caption: str | None = None,
) -> Figure:
    r"""Histogram of ``(beta V_hat - beta V) / stderr`` against the standard normal density."""
    from scipy.stats import norm

    fig, ax = get_axes(ax, figsize)
    z = cov.z[np.isfinite(cov.z)]
    if z.size:
        lim = max(4.0, float(np.quantile(np.abs(z), 0.995)))
        ax.hist(z, bins=bins, range=(-lim, lim), density=True, color=PALETTE["data"],
                alpha=0.75, edgecolor="white", lw=0.4, label=f"{z.size} states")
        xs = np.linspace(-lim, lim, 300)
        ax.plot(xs, norm.pdf(xs), color=PALETTE["theory"], ls="--", lw=1.2, label="N(0, 1)")
        ax.legend(loc="upper right")
        stats_box(ax, [f"coverage {fmt(cov.coverage, '.1%')} (nominal {cov.level:.0%})",
                       f"sd of z {fmt(float(np.std(z)), '.2f')}"], loc="upper left")
        ax.set_ylim(0, 0.65)
    else:
        write_empty(ax, "no interval")
    ax.set_xlabel(r"$(\beta\hat V - \beta V_{\mathrm{true}})\,/\,\mathrm{s.e.}$")
    ax.set_ylabel("density")
    write_caption(ax, caption, cov.description)
    return fig


@plotting_function
def fig_hodge_fractions(
    verdicts: Mapping[str, Verdict],
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    caption: str | None = None,
) -> Figure:
    """Gradient, curl and harmonic shares of the log-ratio flow, one bar per data set.

    Data sets whose split is undefined (no pair seen both ways, or no cycle among them) get
    no bar but the reason in words; exact kernels are marked "no noise".
    """
    names = list(verdicts)
    fig, ax = get_axes(ax, figsize or (5.2, 0.34 * max(len(names), 2) + 0.9))
    y = np.arange(len(names))[::-1]
    drawn = set()
    for yi, name in zip(y, names, strict=True):
        v = verdicts[name]
        h = v.hodge
        if h is None or h.dof == 0:
            why = "no pair seen both ways" if h is None else "no cycle among the two-way pairs"
            ax.text(0.01, yi, f"undefined: {why}", va="center", ha="left", fontsize=9,
                    color=PALETTE["caption"], gid=f"undefined:{name}")
            continue
        left = 0.0
        for part in ("gradient", "curl", "harmonic"):
            w = float(getattr(h, f"{part}_fraction"))
            ax.barh(yi, w, left=left, color=HODGE_COLOURS[part], height=0.7,
                    label=part if part not in drawn else None, gid=f"bar:{name}:{part}")
            drawn.add(part)
            left += w
        note = "no noise" if v.noise_free else (
            format_p(v.test.p_value, v.test.n_bootstrap)
            if v.test is not None and v.status != "undefined" else "balance untestable")
        ax.text(1.01, yi, f"{h.gradient_fraction:.2f}  {note}", va="center", ha="left",
                fontsize=9, clip_on=False)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("share of the log-ratio flow $|y|^2_w$")
    if drawn:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    write_caption(ax, caption, "")
    return fig
