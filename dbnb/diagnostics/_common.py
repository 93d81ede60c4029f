"""What every check shares: input checks, edge look-up, coverage and summary statistics.

Private to :mod:`dbnb.diagnostics`; each helper is written once here and used by the checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from ..kernels import DESIGNS, TransitionKernel
from ..potential import PotentialFit


def freeze(*arrays: np.ndarray) -> None:
    """Make the arrays of a result read-only."""
    for a in arrays:
        a.setflags(write=False)


def as_kernel(obj: PotentialFit | TransitionKernel) -> TransitionKernel:
    """The transition kernel of a fit, or the kernel itself."""
    if isinstance(obj, PotentialFit):
        return obj.transitions
    if isinstance(obj, TransitionKernel):
        return obj
    raise TypeError(f"expected a PotentialFit or TransitionKernel, got {type(obj).__name__}")


def require_fit(fit: PotentialFit) -> None:
    if not isinstance(fit, PotentialFit):
        raise TypeError(f"expected a PotentialFit, got {type(fit).__name__}")


def potential_arrays(fit: PotentialFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(relative beta V, component, beta V)`` as arrays in the kernel's state order."""
    idx = pd.Index(fit.transitions.states)
    rel = fit.relative.reindex(idx).to_numpy(dtype=float)
    comp = fit.component.reindex(idx).to_numpy()
    pot = fit.potential.reindex(idx).to_numpy(dtype=float)
    return rel, comp, pot


def mutual_pairs(kernel: TransitionKernel) -> tuple[np.ndarray, np.ndarray]:
    """Pairs measured both ways (``T(g<-f) T(f<-g) > 0``), each once, as ``(a, b)`` with
    ``a < b``, sorted by ``a`` then ``b``."""
    t = sp.csr_array(kernel.matrix)
    mutual = sp.tril(t.multiply(t.T), k=-1, format="coo")  # row > column
    a = mutual.col.astype(np.int64)
    b = mutual.row.astype(np.int64)
    order = np.lexsort((b, a))
    return a[order], b[order]


class EdgeTable:
    """Vectorised look-up of ``T(g <- f)``, ``N(g <- f)`` by sorted keys ``g * n + f``."""

    def __init__(self, kernel: TransitionKernel) -> None:
        f, g, t, cnt = kernel.edges()
        self.n = kernel.n_states
        key = g * self.n + f
        order = np.argsort(key)
        self.key = key[order]
        self.t = np.asarray(t, dtype=float)[order]
        self.count = np.asarray(cnt, dtype=float)[order]

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(T(dst <- src), N(dst <- src))``; every queried transition must exist."""
        q = np.asarray(dst, dtype=np.int64) * self.n + np.asarray(src, dtype=np.int64)
        pos = np.searchsorted(self.key, q)
        if q.size and (pos.max() >= self.key.size or np.any(self.key[pos] != q)):
            raise KeyError("queried a transition that was not measured")
        return self.t[pos], self.count[pos]


def check_design(kernel: TransitionKernel, design: str | None) -> str:
    """The sampling design of a check's error bars: ``design``, default the kernel's; a
    kernel without sampling noise has ``"none"`` whatever is asked (its counts are not data).
    """
    if design is None or kernel.noise_free:
        return kernel.design
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS} or None, got {design!r}")
    return design


def free_potentials(a: np.ndarray, b: np.ndarray) -> int:
    """Potentials the pairs ``(a[e], b[e])`` determine: states in the pairs minus connected
    components of the pair graph (one constant per component is a gauge)."""
    if a.size == 0:
        return 0
    states, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = states.size
    adj = sp.csr_array((np.ones(a.size), (inv[: a.size], inv[a.size:])), shape=(k, k))
    n_comp, _ = csgraph.connected_components(adj, directed=False)
    return int(k - n_comp)


def sigma_fraction(resid: np.ndarray, sigma: np.ndarray, k: float) -> float:
    """Fraction of ``|resid| <= k sigma``; NaN when empty or when an error bar is undefined
    (NaN sigma: a kernel without sampling noise has no coverage)."""
    if resid.size == 0 or np.isnan(sigma).any():
        return float("nan")
    return float(np.mean(np.abs(resid) <= k * sigma))


def pearson_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (NaN for fewer than two points or a constant side)."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``x`` (NaN for fewer than two points or constant x)."""
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def sample_rows(n: int, size: int | float | None, seed: int) -> np.ndarray:
    """Sorted indices of a reproducible random subset: an int is a number of rows, a float a
    fraction in ``[0, 1]`` (``1.0`` = all), ``None`` all."""
    if isinstance(size, bool):
        raise ValueError(f"sample size must be an int, a fraction or None, got {size!r}")
    if isinstance(size, (float, np.floating)) and not 0.0 <= size <= 1.0:
        raise ValueError(f"a sample fraction must be in [0, 1], got {size!r}; pass an int "
                         "for a number of rows")
    if size is None or n == 0:
        return np.arange(n)
    k = int(n * size) if isinstance(size, (float, np.floating)) else int(size)
    if k < 0:
        raise ValueError(f"sample size must be non-negative, got {size!r}")
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False))


def summary_series(values: dict, name: str) -> pd.Series:
    """One result's headline numbers as a Series that keeps counts as integers (object dtype:
    a float Series would print ``135`` as ``135.000000``)."""
    return pd.Series({k: int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                      else float(v) if isinstance(v, (float, np.floating)) else v
                      for k, v in values.items()}, name=name, dtype=object)
