"""What every figure shares: the palette, the rc style, axes, captions and annotation boxes."""

from __future__ import annotations

import contextlib
import functools
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

try:  # matplotlib is needed only to draw
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    _MPL_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - exercised only without matplotlib
    _MPL_ERROR = _exc

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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

#: Font size of captions and annotation boxes: readable on a projector.
CAPTION_PT = 9

#: Every figure's nominal size is scaled by this, room for the projector-sized fonts.
FIGSIZE_SCALE = 1.35

_BASE_RC = {
    "font.size": 10,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "axes.unicode_minus": True,
    "savefig.dpi": 200,
    "figure.dpi": 150,
}


def style_rc() -> dict[str, Any]:
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


@contextlib.contextmanager
def _style_keys(rc: dict[str, Any]):
    """Set ``rc`` and restore afterwards only those keys.

    ``mpl.rc_context`` restores *every* rcParam on exit, including what a backend changed
    meanwhile: under Jupyter's inline backend the first figure of a session switches inline
    display on inside the context, and leaving the context switched it off again, so every
    later figure was dropped. Touching only the style keys leaves backend state alone.
    """
    saved = {k: mpl.rcParams[k] for k in rc}
    try:
        mpl.rcParams.update(rc)
        yield
    finally:
        mpl.rcParams.update(saved)


def plotting_function(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Check matplotlib is importable and draw inside the package style."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _MPL_ERROR is not None:
            raise ImportError(
                f"dbnb.plots.{func.__name__} needs matplotlib; install it with "
                f"`pip install matplotlib` (import failed: {_MPL_ERROR})"
            ) from _MPL_ERROR
        with _style_keys(style_rc()):
            return func(*args, **kwargs)

    return wrapper


def get_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new figure of ``figsize``."""
    if ax is None:
        size = (figsize[0] * FIGSIZE_SCALE, figsize[1] * FIGSIZE_SCALE)
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    if not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return ax.figure, ax


def write_caption(ax: Axes, text: str | None, auto: str) -> None:
    """Write ``text`` above the axes (``None``: the automatic ``auto``; ``""``: nothing)."""
    text = auto if text is None else text
    if text:
        # Wrap to the axes' width (about 0.55 em per character), so that a long
        # provenance line never widens a saved figure.
        width_in = ax.get_position().width * ax.figure.get_figwidth()
        chars = max(30, int(width_in * 72 / (CAPTION_PT * 0.55)))
        text = "\n".join(textwrap.wrap(text, chars))
        ax.text(
            0.0, 1.02, text, transform=ax.transAxes, ha="left", va="bottom",
            fontsize=CAPTION_PT, color=PALETTE["caption"], gid="caption",
        )


def provenance(source: str, *parts: str) -> str:
    """``source; part; ...`` with the empty parts left out."""
    items = [source or "unnamed data", *[p for p in parts if p]]
    return "; ".join(items)


def stats_box(ax: Axes, lines: Sequence[str], loc: str = "lower right") -> None:
    x, ha = (0.97, "right") if "right" in loc else (0.03, "left")
    y, va = (0.04, "bottom") if "lower" in loc else (0.96, "top")
    ax.text(
        x, y, "\n".join(lines), transform=ax.transAxes, ha=ha, va=va, fontsize=CAPTION_PT,
        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.6", lw=0.5, alpha=0.9),
        gid="stats",
    )


def write_empty(ax: Axes, message: str) -> None:
    """Say in the axes why nothing is drawn."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            color=PALETTE["caption"], gid="empty")


def diagonal(ax: Axes, lo: float, hi: float, label: str, offset: float = 0.0, **kw) -> None:
    """The line ``y = x + offset`` from ``lo`` to ``hi``."""
    style = dict(color=PALETTE["theory"], ls="--", lw=1.2, zorder=5)
    style.update(kw)
    ax.plot([lo, hi], [lo + offset, hi + offset], label=label, gid="diagonal", **style)


def fmt(x: float, spec: str = ".2f") -> str:
    """``x`` formatted, ``n/a`` when missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)
