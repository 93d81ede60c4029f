r"""Fig. 12: the ratio after a majority vote against the base ratio (Eqs. 29-30)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..diagnostics import MajorityVoteCurves
from ._style import get_axes, plotting_function, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@plotting_function
def fig12_majority_vote(
    curves: MajorityVoteCurves,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (3.6, 2.8),
    caption: str | None = "",
) -> Figure:
    r"""Fig. 12: ratio after an ``n``-of-``M`` majority vote vs the base ratio (Eqs. 29-30).

    Draws :func:`dbnb.diagnostics.majority_vote_curves`: ``T_{M,n}(rb) / T_{M,n}(b)`` against
    ``r`` (log-log), one colour per ``n`` and one line style per ``b = T(f<-g)``, with the
    small-``T`` power law ``r^n`` (black dotted): the potential scales by ``n``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = get_axes(ax, figsize)
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", "-."]
    r_all = curves.base_ratio
    for i, n in enumerate(curves.ns):
        color = cmap(0.1 + 0.75 * i / max(len(curves.ns) - 1, 1))
        ax.plot(r_all, curves.power_law[i], color="k", ls=":", lw=0.9, zorder=1,
                gid="power_law")
        for j, b in enumerate(curves.t_backward):
            ok = np.isfinite(curves.voted[i, j])
            ax.plot(r_all[ok], curves.voted[i, j][ok], color=color, ls=styles[j % len(styles)],
                    lw=1.3, gid=f"ratio:n={n},T={b:g}")
        ax.text(curves.max_ratio * 1.05, curves.power_law[i, -1], f"$n$ = {n}", color=color,
                va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    handles = [Line2D([], [], color="0.3", ls=styles[j % len(styles)],
                      label=rf"$T(f\leftarrow g)$ = {b:g}")
               for j, b in enumerate(curves.t_backward)]
    handles.append(Line2D([], [], color="k", ls=":", label=r"power law $(a/b)^n$"))
    ax.legend(handles=handles, loc="upper left", title=f"$M$ = {curves.m}", title_fontsize=9)
    ax.set_xlim(1.0, curves.max_ratio * 1.6)
    ax.set_xlabel(r"base ratio $a/b = T(g\leftarrow f)/T(f\leftarrow g)$")
    ax.set_ylabel(r"$T_{M,n}(g\leftarrow f)/T_{M,n}(f\leftarrow g)$")
    write_caption(ax, caption, "")
    return fig
