"""A picture of the kernel: ``T(g <- f)`` as a heatmap, rows = targets, columns = sources."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._style import get_axes, plotting_function, write_caption

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..kernels import TransitionKernel

__all__ = ["fig_kernel_heatmap"]


@plotting_function
def fig_kernel_heatmap(kernel: TransitionKernel, *, max_states: int = 40, log: bool = False,
                       ax: Axes | None = None, caption: str | None = None) -> Figure:
    """Heatmap of ``T(g <- f)``: column = source ``f``, row = target ``g`` (dbnb's
    ``matrix[g, f]`` convention), so each column sums to one minus the escape probability.

    Parameters
    ----------
    kernel : dbnb.kernels.TransitionKernel
    max_states : int
        Show at most this many states (the first ones, in the kernel's order).
    log : bool
        Colour by ``log10 T`` (zeros left blank) instead of ``T``.
    ax : matplotlib Axes, optional
        Draw here (default: a new figure).
    caption : str, optional
        Text above the axes (``None``: automatic; ``""``: none).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = min(kernel.n_states, max_states)
    fig, ax = get_axes(ax, (3.6, 3.2))
    t = kernel.matrix.toarray()[:n, :n]
    if log:
        shown = np.where(t > 0, np.log10(np.where(t > 0, t, 1.0)), np.nan)
        label = "log10 T(g <- f)"
    else:
        shown = np.where(t > 0, t, np.nan)
        label = "T(g <- f)"
    im = ax.imshow(shown, cmap="viridis", aspect="equal", interpolation="nearest", gid="kernel")
    fig.colorbar(im, ax=ax, label=label, shrink=0.85)
    names = list(kernel.states[:n])
    if n <= 12:
        ax.set_xticks(range(n), names, rotation=90)
        ax.set_yticks(range(n), names)
    ax.set_xlabel("source f (column)")
    ax.set_ylabel("target g (row)")
    more = f", first {n} of {kernel.n_states} states" if n < kernel.n_states else ""
    write_caption(ax, caption, f"{kernel.method} kernel{more}; blank = no transition seen")
    return fig
