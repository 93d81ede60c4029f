r"""The stationary distribution against the potential: :math:`\log\pi` vs :math:`-\beta V`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..diagnostics import StationaryCheck
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
def fig_stationary(
    check: StationaryCheck,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (3.4, 2.8),
    caption: str | None = None,
) -> Figure:
    r"""``log pi`` of the kernel's stationary distribution against ``-beta V`` of the fit,
    both centred; on the diagonal when :math:`\pi \propto e^{-\beta V}` (detailed balance)."""
    fig, ax = get_axes(ax, figsize)
    if check.n_states:
        x = check.minus_beta_v - check.minus_beta_v.mean()
        y = check.log_pi - check.log_pi.mean()
        ax.plot(x, y, "o", ms=3, color=PALETTE["data"], alpha=0.75, zorder=3,
                label=f"{check.n_states} states")
        lo = float(min(x.min(), y.min())) - 0.5
        hi = float(max(x.max(), y.max())) + 0.5
        diagonal(ax, lo, hi, r"$\pi \propto e^{-\beta V}$")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi + 0.2 * (hi - lo))
        ax.legend(loc="upper left")
        stats_box(ax, [f"slope {fmt(check.slope, '.3f')}",
                       f"rms dev. {fmt(check.rms_deviation, '.2g')}"])
    else:
        write_empty(ax, "no state in the main component")
    ax.set_xlabel(r"$-\beta V$ (least action, centred)")
    ax.set_ylabel(r"$\log \pi$ (centred)")
    write_caption(ax, caption, provenance(check.source, "main component"))
    return fig
