r"""Detailed-balance diagnostics (the Letter's Eqs. 4, 5, 7, 25, 28-30; METHOD §3, §5).

Every check is a pure function of a fitted potential (:class:`~dbnb.potential.PotentialFit`)
or a transition kernel (:class:`~dbnb.kernels.TransitionKernel`) and returns a small frozen
result with named array fields, summary properties and a ``.to_frame()``:

=========================  ===================================================  ===========
function                   what it compares                                     figures
=========================  ===================================================  ===========
:func:`pairs`              ``log T(g<-f)/T(f<-g)`` vs ``beta(V(f) - V(g))``     4, 7, 9
:func:`triplets`           ``sum log T`` around a 3-cycle, forward vs backward  3, 8
:func:`one_way_pairs`      fitted ``beta dV`` vs the Eq. 25 lower bound         10
:func:`potential_distribution`  histogram of ``beta V`` + Gaussian, Eq. 28      11, Table IV
:func:`majority_vote`      ``T_{M,n} = I_T(n, M - n + 1)`` (Eqs. 29-30)          12
:func:`potential_vs_score` subgraph of the most visited states, up/down shares  5
=========================  ===================================================  ===========

Conventions: ``T[g, f] = T(g <- f)`` (column = source), potentials are ``beta V``, logs are
natural. Error bars are Poisson, statistical only: the variance of ``log T = log N - log N0``
is taken as ``1/N + 1/N0`` (METHOD §3). Empty checks (nothing measured) are not errors: they
return a result with zero rows and NaN summary statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

from .counts import entries
from .kernels import TransitionKernel
from .potential import PotentialFit

__all__ = [
    "PairCheck",
    "TripletCheck",
    "OneWayCheck",
    "PotentialDistribution",
    "ScoreGraph",
    "pairs",
    "triplets",
    "one_way_pairs",
    "potential_distribution",
    "action_scale_table",
    "expected_min_action",
    "majority_vote",
    "majority_vote_ratio",
    "potential_vs_score",
    "compare_to_exact",
    "transition_check",
    "ExactComparison",
    "enumerate_triangles",
]


# ---------------------------------------------------------------------------- helpers
def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _kernel_of(obj: PotentialFit | TransitionKernel) -> TransitionKernel:
    if isinstance(obj, PotentialFit):
        return obj.transitions
    if isinstance(obj, TransitionKernel):
        return obj
    raise TypeError(f"expected a PotentialFit or TransitionKernel, got {type(obj).__name__}")


def _check_fit(fit: PotentialFit) -> None:
    if not isinstance(fit, PotentialFit):
        raise TypeError(f"expected a PotentialFit, got {type(fit).__name__}")


def _relative_array(fit: PotentialFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(relative beta V, component, beta V)`` as arrays in the kernel's state order."""
    idx = pd.Index(fit.transitions.states)
    rel = fit.relative.reindex(idx).to_numpy(dtype=float)
    comp = fit.component.reindex(idx).to_numpy()
    pot = fit.potential.reindex(idx).to_numpy(dtype=float)
    return rel, comp, pot


def _count_matrix(kernel: TransitionKernel) -> sp.csr_array:
    """``N[g, f]`` on the kernel's support (diagonal removed), aligned with ``kernel.matrix``."""
    f, g, _, n = kernel.edges()
    k = kernel.n_states
    return sp.csr_array((n.astype(float), (g, f)), shape=(k, k))


class _EdgeTable:
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


def _sigma_fraction(resid: np.ndarray, sigma: np.ndarray, k: float) -> float:
    if resid.size == 0:
        return float("nan")
    return float(np.mean(np.abs(resid) <= k * sigma))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def _sample(n: int, size: int | float | None, seed: int) -> np.ndarray:
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


# ---------------------------------------------------------------------------- pairs (Eq. 5)
@dataclass(frozen=True, eq=False)
class PairCheck:
    r"""Pairs measured both ways: the two sides of Eq. 5.

    One row per unordered pair ``{f, g}`` (oriented ``f < g`` by state index):
    ``x = beta(V(f) - V(g))`` from the fit and ``y = log T(g<-f) / T(f<-g)`` from the counts,
    with the Poisson error ``sigma`` of ``y``.

    Attributes
    ----------
    states : tuple of str
        The kernel's state labels (``f``, ``g`` index into it).
    f, g : numpy.ndarray of int
        Pair members.
    x, y, sigma : numpy.ndarray
        ``beta dV``, log ratio and its error
        ``sqrt(1/N(g<-f) + 1/N0(f) + 1/N(f<-g) + 1/N0(g))``.
    n_forward, n_backward : numpy.ndarray
        ``N(g<-f)``, ``N(f<-g)``.
    threshold : float
        Pairs with ``|x| > threshold`` were excluded.
    n_excluded : int
        How many pairs measured both ways the threshold removed.
    kernel, estimator, source : str
        Provenance: action kernel ``K``, ``N0`` estimator, data source.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    n_forward: np.ndarray
    n_backward: np.ndarray
    threshold: float
    n_excluded: int
    kernel: str = ""
    estimator: str = ""
    source: str = ""

    @property
    def n_pairs(self) -> int:
        return int(self.x.size)

    @property
    def residual(self) -> np.ndarray:
        """``y - x``: the violation of Eq. 5 per pair."""
        return self.y - self.x

    @property
    def within_1sigma(self) -> float:
        """Fraction of pairs with ``|y - x| <= sigma`` (NaN without pairs)."""
        return _sigma_fraction(self.residual, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return _sigma_fraction(self.residual, self.sigma, 2.0)

    @property
    def chi2(self) -> float:
        """``sum ((y - x) / sigma)^2``."""
        return float(np.sum((self.residual / self.sigma) ** 2))

    @property
    def chi2_per_pair(self) -> float:
        r"""``chi2 / n_pairs``: the number of degrees of freedom is taken as the number of pairs.

        The potential is fitted to *all* transitions (most of them one-way), not to these
        pairs, so no parameters are subtracted; this is what the Letter's "χ²/ndf" means too.
        """
        return self.chi2 / self.n_pairs if self.n_pairs else float("nan")

    @property
    def pearson_r(self) -> float:
        return _pearson(self.x, self.y)

    @property
    def slope(self) -> float:
        """Ordinary least-squares slope of ``y`` on ``x`` (1 under detailed balance)."""
        return _slope(self.x, self.y)

    @property
    def r_squared(self) -> float:
        """``1 - sum (y - x)^2 / sum (y - mean y)^2``: the share of the log-ratio variance the
        potential explains (about the diagonal ``y = x``, not a regression line)."""
        if self.n_pairs < 2:
            return float("nan")
        return float(1 - np.sum(self.residual**2) / np.sum((self.y - self.y.mean()) ** 2))

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_pairs": self.n_pairs,
                "n_excluded": self.n_excluded,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "chi2_per_pair": self.chi2_per_pair,
                "pearson_r": self.pearson_r,
                "slope": self.slope,
            },
            name="pairs",
        )

    def sample(self, fraction: float | int | None = 0.2, *, seed: int = 42) -> np.ndarray:
        """Row indices of a reproducible random subset (the Letter plots 1/5 or 1/10, seed 42)."""
        return _sample(self.n_pairs, fraction, seed)

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "beta_dV": self.x,
                "log_ratio": self.y,
                "sigma": self.sigma,
                "N_forward": self.n_forward,
                "N_backward": self.n_backward,
            }
        )


def pairs(fit: PotentialFit, *, exclude_above: float | None = None) -> PairCheck:
    r"""Check Eq. 5 on every pair measured both ways (Figs. 4, 7, 9).

    For each unordered pair ``{f, g}`` of fitted states with ``N(g<-f) > 0`` and
    ``N(f<-g) > 0``

    .. math::

        x = \beta V(f) - \beta V(g), \qquad
        y = \log \frac{T(g \leftarrow f)}{T(f \leftarrow g)}, \qquad
        \sigma_y^2 = \frac{1}{N(g \leftarrow f)} + \frac{1}{N_0(f)}
                   + \frac{1}{N(f \leftarrow g)} + \frac{1}{N_0(g)},

    and detailed balance (Eq. 5) says ``y = x``.

    Parameters
    ----------
    fit : PotentialFit
        The least-action fit. ``x`` uses ``fit.relative`` (potential within each state's own
        strongly connected component); a pair measured both ways always lies inside one SCC,
        so ``x`` is finite even outside the main component.
    exclude_above : float, optional
        Drop pairs with ``|x|`` above this. Default: the Letter's rule, ``log`` of the total
        number of recorded transitions between fitted states
        (``fit.transitions.counts.n_samples``). Pass ``numpy.inf`` to keep every pair.

    Returns
    -------
    PairCheck
        Zero rows (and NaN fractions) when no pair is measured both ways.
    """
    _check_fit(fit)
    tk = fit.transitions
    rel, comp, _ = _relative_array(fit)
    t = sp.csr_array(tk.matrix)
    # Mutual edges: T[g, f] * T[f, g] > 0; keep the lower triangle (row g > column f).
    mutual = sp.tril(t.multiply(t.T), k=-1, format="coo")
    f0 = mutual.col.astype(np.int64)
    g0 = mutual.row.astype(np.int64)
    order = np.lexsort((g0, f0))
    f0, g0 = f0[order], g0[order]
    same = comp[f0] == comp[g0]  # always true for mutual edges; kept as a guard
    f0, g0 = f0[same], g0[same]
    table = _EdgeTable(tk)
    t_fw, n_fw = table(f0, g0)
    t_bw, n_bw = table(g0, f0)
    n0 = np.asarray(tk.n0, dtype=float)
    x = rel[f0] - rel[g0]
    y = np.log(t_fw) - np.log(t_bw)
    sigma = np.sqrt(1.0 / n_fw + 1.0 / n0[f0] + 1.0 / n_bw + 1.0 / n0[g0])
    if exclude_above is None:
        total = tk.counts.n_samples
        threshold = float(np.log(total)) if total > 0 else np.inf
    else:
        threshold = float(exclude_above)
        if np.isnan(threshold) or threshold < 0:
            raise ValueError(f"exclude_above must be >= 0 (or inf), got {exclude_above!r}")
    keep = np.abs(x) <= threshold
    arrays = [a[keep] for a in (f0, g0, x, y, sigma, n_fw, n_bw)]
    arrays[5] = arrays[5].astype(np.int64)
    arrays[6] = arrays[6].astype(np.int64)
    _frozen(*arrays)
    return PairCheck(
        tk.states,
        *arrays,
        threshold=threshold,
        n_excluded=int((~keep).sum()),
        kernel=fit.kernel,
        estimator=tk.method,
        source=tk.counts.source,
    )


# ---------------------------------------------------------------------------- triplets (Eq. 7)
def enumerate_triangles(adjacency: sp.spmatrix | sp.sparray | np.ndarray) -> np.ndarray:
    """All triangles of an undirected graph, each once, as rows ``(i, j, k)`` with ``i < j < k``.

    ``adjacency`` is read as undirected (``A + A.T``); the diagonal is ignored. Each edge is
    oriented from the endpoint of lower (degree, index) rank to the higher one, so every node
    has at most ``O(sqrt(m))`` higher-ranked neighbours and the wedge count is ``O(m^1.5)``;
    the closing edges are looked up by binary search in sorted edge keys. No Python loop.
    """
    a = sp.coo_array(adjacency)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"adjacency must be square, got shape {a.shape}")
    r, c = a.row.astype(np.int64), a.col.astype(np.int64)
    off = (r != c) & (a.data != 0)
    r, c = r[off], c[off]
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    key = np.unique(lo * n + hi)
    lo, hi = key // n, key % n
    if key.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    deg = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), deg))] = np.arange(n)
    swap = rank[lo] > rank[hi]
    src = np.where(swap, hi, lo)
    dst = np.where(swap, lo, hi)
    order = np.argsort(src * n + dst)
    src, dst = src[order], dst[order]
    okey = src * n + dst  # sorted keys of oriented edges
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
    # Wedges u -> v -> w along oriented edges: for each edge (u, v), every out-neighbour w of v.
    width = indptr[dst + 1] - indptr[dst]
    total = int(width.sum())
    if total == 0:
        return np.zeros((0, 3), dtype=np.int64)
    u = np.repeat(src, width)
    v = np.repeat(dst, width)
    start = np.repeat(indptr[dst], width)
    offset = np.arange(total) - np.repeat(np.cumsum(width) - width, width)
    w = dst[start + offset]
    q = u * n + w
    pos = np.searchsorted(okey, q)
    pos = np.minimum(pos, okey.size - 1)
    closed = okey[pos] == q
    tri = np.sort(np.column_stack([u[closed], v[closed], w[closed]]), axis=1)
    tri = tri[np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))]
    return tri


@dataclass(frozen=True, eq=False)
class TripletCheck:
    r"""Closed 3-cycles measured in both directions: Kolmogorov's criterion (Figs. 3, 8).

    One row per unordered triangle ``{i, j, k}`` (``i < j < k``); *forward* is the cycle
    ``i -> j -> k -> i``, *backward* the reverse.

    Attributes
    ----------
    states : tuple of str
    i, j, k : numpy.ndarray of int
    forward, backward : numpy.ndarray
        ``log T(j<-i) + log T(k<-j) + log T(i<-k)`` and
        ``log T(i<-j) + log T(j<-k) + log T(k<-i)``.
    sigma_forward, sigma_backward : numpy.ndarray
        Quadrature sums of ``1/N + 1/N0(source)`` over the three transitions of each direction.
    min_count : int
    estimator, source : str
    """

    states: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    sigma_forward: np.ndarray
    sigma_backward: np.ndarray
    min_count: int
    estimator: str = ""
    source: str = ""

    @property
    def n_triplets(self) -> int:
        return int(self.forward.size)

    @property
    def sigma(self) -> np.ndarray:
        """Error of ``forward - backward``: quadrature over all six transitions."""
        return np.hypot(self.sigma_forward, self.sigma_backward)

    @property
    def residual(self) -> np.ndarray:
        """``forward - backward``: the cycle affinity (0 under detailed balance)."""
        return self.forward - self.backward

    @property
    def within_1sigma(self) -> float:
        return _sigma_fraction(self.residual, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return _sigma_fraction(self.residual, self.sigma, 2.0)

    @property
    def chi2(self) -> float:
        return float(np.sum((self.residual / self.sigma) ** 2))

    @property
    def chi2_per_triplet(self) -> float:
        """``chi2 / n_triplets`` (no fitted parameters enter the triplet check)."""
        return self.chi2 / self.n_triplets if self.n_triplets else float("nan")

    @property
    def rms_affinity(self) -> float:
        """Root mean square of ``forward - backward`` (natural-log units): the typical cycle
        affinity, 0 under detailed balance; the statistic for an exactly known kernel."""
        if not self.n_triplets:
            return float("nan")
        return float(np.sqrt(np.mean(self.residual**2)))

    @property
    def pearson_r(self) -> float:
        return _pearson(self.forward, self.backward)

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_triplets": self.n_triplets,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "chi2_per_triplet": self.chi2_per_triplet,
                "pearson_r": self.pearson_r,
            },
            name="triplets",
        )

    def sample(self, fraction: float | int | None = 0.2, *, seed: int = 42) -> np.ndarray:
        return _sample(self.n_triplets, fraction, seed)

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "i": s[self.i],
                "j": s[self.j],
                "k": s[self.k],
                "forward": self.forward,
                "backward": self.backward,
                "sigma_forward": self.sigma_forward,
                "sigma_backward": self.sigma_backward,
            }
        )


def triplets(data: PotentialFit | TransitionKernel, *, min_count: int = 1) -> TripletCheck:
    r"""Compare the two directions of every measured 3-cycle (Kolmogorov criterion, Figs. 3, 8).

    Under detailed balance every closed path has equal forward and backward products of
    ``T`` (the potential cancels around the loop), so

    .. math::

        \log T(j \leftarrow i) + \log T(k \leftarrow j) + \log T(i \leftarrow k)
        = \log T(i \leftarrow j) + \log T(j \leftarrow k) + \log T(k \leftarrow i).

    Parameters
    ----------
    data : PotentialFit or TransitionKernel
        Only the kernel is used (no potential enters).
    min_count : int
        Each of the six directed transitions must have ``N >= min_count`` (the Letter uses 2
        for IdeaSearchFitter, "each transition seen at least twice").

    Returns
    -------
    TripletCheck
        Errors: ``var(log T) = 1/N + 1/N0(source)`` per transition, added in quadrature over
        the three transitions of each direction (``sigma_forward``, ``sigma_backward``) and
        over all six for the difference (``sigma``).
    """
    tk = _kernel_of(data)
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    nmat = _count_matrix(tk)
    strong = sp.csr_array(nmat >= min_count, dtype=float)
    mutual = strong.multiply(strong.T)
    tri = enumerate_triangles(mutual)
    i, j, k = tri[:, 0], tri[:, 1], tri[:, 2]
    table = _EdgeTable(tk)
    n0 = np.asarray(tk.n0, dtype=float)

    def look(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, cnt = table(src, dst)
        return np.log(t), 1.0 / cnt + 1.0 / n0[src]

    legs_f = [look(i, j), look(j, k), look(k, i)]
    legs_b = [look(j, i), look(k, j), look(i, k)]
    fw = sum(lt for lt, _ in legs_f) if tri.size else np.zeros(0)
    bw = sum(lt for lt, _ in legs_b) if tri.size else np.zeros(0)
    sf = np.sqrt(sum(v for _, v in legs_f)) if tri.size else np.zeros(0)
    sb = np.sqrt(sum(v for _, v in legs_b)) if tri.size else np.zeros(0)
    arrays = [np.ascontiguousarray(a) for a in (i, j, k, fw, bw, sf, sb)]
    _frozen(*arrays)
    return TripletCheck(
        tk.states, *arrays, min_count=int(min_count), estimator=tk.method, source=tk.counts.source
    )


# ---------------------------------------------------------------------------- one-way (Eq. 25)
@dataclass(frozen=True, eq=False)
class OneWayCheck:
    r"""Pairs seen one way only, against the Eq. 25 lower bound (Fig. 10).

    Attributes
    ----------
    states : tuple of str
    f, g : numpy.ndarray of int
        ``f -> g`` observed, ``g -> f`` never.
    dv : numpy.ndarray
        Fitted ``beta V(f) - beta V(g)``: from ``fit.relative`` when ``f`` and ``g`` share an
        SCC, else from ``fit.potential`` (``+inf``, ``-inf`` or NaN).
    bound : numpy.ndarray
        ``log( (N(g<-f) / N(f)) / (1 / N(g)) ) = log N(g<-f) + log N(g) - log N(f)``.
    n_forward : numpy.ndarray
        ``N(g<-f)``.
    same_component : numpy.ndarray of bool
    percentile : float
        Which percentile of ``dv - bound`` :attr:`offset` reports.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    dv: np.ndarray
    bound: np.ndarray
    n_forward: np.ndarray
    same_component: np.ndarray
    percentile: float = 90.0
    estimator: str = ""
    source: str = ""

    @property
    def n_pairs(self) -> int:
        return int(self.dv.size)

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.dv)

    @property
    def n_finite(self) -> int:
        return int(self.finite.sum())

    @property
    def fraction_satisfied(self) -> float:
        """Fraction of pairs with a non-NaN ``dv`` for which ``dv >= bound`` (``+inf`` counts)."""
        ok = ~np.isnan(self.dv)
        if not ok.any():
            return float("nan")
        return float(np.mean(self.dv[ok] >= self.bound[ok]))

    @property
    def offset(self) -> float:
        """The ``percentile``-th percentile of ``dv - bound`` over finite ``dv``.

        Fig. 10 draws the line ``dv = bound + offset``.
        """
        d = (self.dv - self.bound)[self.finite]
        return float(np.percentile(d, self.percentile)) if d.size else float("nan")

    def sample(self, size: int | float | None = 500, *, seed: int = 42) -> np.ndarray:
        """Indices of ``size`` random pairs with finite ``dv`` (the Letter shows 500)."""
        fin = np.flatnonzero(self.finite)
        return fin[_sample(fin.size, size, seed)]

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_pairs": self.n_pairs,
                "n_finite": self.n_finite,
                "fraction_satisfied": self.fraction_satisfied,
                f"offset_p{self.percentile:g}": self.offset,
            },
            name="one_way",
        )

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "beta_dV": self.dv,
                "bound": self.bound,
                "N_forward": self.n_forward,
                "same_component": self.same_component,
            }
        )


def one_way_pairs(fit: PotentialFit, *, percentile: float = 90.0) -> OneWayCheck:
    r"""Pairs with ``f -> g`` measured and ``g -> f`` never, against Eq. 25 (Fig. 10).

    With ``N(g <- f)`` observed and ``N(f <- g) = 0`` out of ``N(g)`` trials, the unseen
    ``T(f <- g)`` is below about ``1/N(g)``, so

    .. math::

        \beta V(f) - \beta V(g) = \log\frac{T(g\leftarrow f)}{T(f\leftarrow g)}
        > \log\frac{N(g\leftarrow f)/N(f)}{1/N(g)}.   \qquad (25)

    ``N(x)``, the number of transitions out of ``x``, is the kernel's ``N0(x)``
    (``fit.transitions.n0``), so the bound uses the same estimator as the fit.

    Parameters
    ----------
    fit : PotentialFit
    percentile : float
        Percentile of ``dv - bound`` reported as :attr:`OneWayCheck.offset` (default 90).
    """
    _check_fit(fit)
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
    tk = fit.transitions
    rel, comp, pot = _relative_array(fit)
    t = sp.csr_array(tk.matrix)
    support = sp.csr_array((t != 0).astype(np.int8))
    one_way = (support - support.multiply(support.T)).tocoo()  # T[g, f] > 0, T[f, g] == 0
    g0 = one_way.row.astype(np.int64)
    f0 = one_way.col.astype(np.int64)
    sel = one_way.data > 0
    f0, g0 = f0[sel], g0[sel]
    order = np.lexsort((g0, f0))
    f0, g0 = f0[order], g0[order]
    _, n_fw = _EdgeTable(tk)(f0, g0)
    n0 = np.asarray(tk.n0, dtype=float)
    bound = np.log(n_fw) + np.log(n0[g0]) - np.log(n0[f0])
    same = comp[f0] == comp[g0]
    with np.errstate(invalid="ignore"):
        dv = np.where(same, rel[f0] - rel[g0], pot[f0] - pot[g0])
    arrays = [f0, g0, dv, bound, n_fw.astype(np.int64), same]
    _frozen(*arrays)
    return OneWayCheck(
        tk.states,
        *arrays,
        percentile=float(percentile),
        estimator=tk.method,
        source=tk.counts.source,
    )


# ---------------------------------------------------------------------------- Eq. 28
def expected_min_action(sigma, *, form: Literal["exact", "asymptotic"] = "exact"):
    r"""Expected minimum action for a Gaussian density of states of width ``sigma`` (Eq. 28).

    ``"exact"``: :math:`e^{\sigma^2}\operatorname{erfc}(\sigma)`, evaluated as
    ``scipy.special.erfcx`` (no overflow); ``"asymptotic"``: :math:`1/(\sigma\sqrt{\pi})`,
    its large-``sigma`` limit (the form in the Letter's Table IV). Normalised so that
    ``sigma = 0`` gives ``K(0) = 1``.
    """
    s = np.asarray(sigma, dtype=float)
    if np.any(s < 0):
        raise ValueError("sigma must be non-negative")
    if form == "exact":
        out = special.erfcx(s)
    elif form == "asymptotic":
        with np.errstate(divide="ignore"):
            out = 1.0 / (s * np.sqrt(np.pi))
    else:
        raise ValueError(f"form must be 'exact' or 'asymptotic', got {form!r}")
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True, eq=False)
class PotentialDistribution:
    r"""Distribution of fitted ``beta V`` and the action scale of Supplement D (Fig. 11).

    Attributes
    ----------
    values : numpy.ndarray
        Finite ``beta V`` of the states sampled at least ``min_calls`` times.
    states : tuple of str
        Their labels.
    mu, sigma : float
        Gaussian maximum-likelihood fit: sample mean and ``ddof=0`` standard deviation
        (what :func:`scipy.stats.norm.fit` returns).
    actual_action : float
        The fit's minimised action ``S``.
    min_calls : int
    source : str
    """

    values: np.ndarray
    states: tuple[str, ...]
    mu: float
    sigma: float
    actual_action: float
    min_calls: int
    kernel: str = ""
    source: str = ""

    @property
    def n_states(self) -> int:
        return int(self.values.size)

    @property
    def expected_action(self) -> float:
        """``exp(sigma^2) erfc(sigma)`` (Eq. 28)."""
        return expected_min_action(self.sigma, form="exact") if self.n_states else float("nan")

    @property
    def expected_action_asymptotic(self) -> float:
        """``1 / (sigma sqrt(pi))``, the large-``sigma`` form used in Table IV."""
        if not self.n_states:
            return float("nan")
        return expected_min_action(self.sigma, form="asymptotic")

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_states": self.n_states,
                "mu": self.mu,
                "sigma": self.sigma,
                "expected_action": self.expected_action,
                "expected_action_asymptotic": self.expected_action_asymptotic,
                "actual_action": self.actual_action,
            },
            name="potential_distribution",
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"beta_V": self.values}, index=pd.Index(self.states, name="state"))


def potential_distribution(fit: PotentialFit, *, min_calls: int = 2) -> PotentialDistribution:
    """Histogram data and Gaussian fit of ``beta V`` (Fig. 11, Table IV).

    Uses the finite entries of ``fit.potential`` (the main component; the gauge shifts ``mu``
    but not ``sigma``) of states that appear as a source at least ``min_calls`` times
    (self-transitions included, ``counts.observed_calls()``), the Letter's "sampled at
    least twice". ``mu`` and ``sigma`` are NaN when fewer than two states qualify.
    """
    _check_fit(fit)
    if min_calls < 0:
        raise ValueError(f"min_calls must be >= 0, got {min_calls!r}")
    tk = fit.transitions
    pot = fit.potential.reindex(pd.Index(tk.states)).to_numpy(dtype=float)
    keep = np.isfinite(pot) & (tk.counts.observed_calls() >= min_calls)
    values = pot[keep].copy()
    if values.size >= 2:
        mu, sigma = float(values.mean()), float(values.std())  # Gaussian ML fit (ddof = 0)
    else:
        mu = sigma = float("nan")
    _frozen(values)
    labels = tuple(np.array(tk.states, dtype=object)[keep])
    return PotentialDistribution(
        values, labels, mu, sigma, float(fit.action), int(min_calls),
        kernel=fit.kernel, source=tk.counts.source,
    )


def action_scale_table(fits: dict[str, PotentialFit], *, min_calls: int = 2) -> pd.DataFrame:
    """The Letter's Table IV: per agent, ``sigma``, expected minimum action (exact Eq. 28 and
    its large-``sigma`` form) and the actual minimum action of the fit."""
    rows = []
    for name, fit in fits.items():
        d = potential_distribution(fit, min_calls=min_calls)
        rows.append(
            {
                "agent": name,
                "sigma": d.sigma,
                "expected_min_action_exact": d.expected_action,
                "expected_min_action_asymptotic": d.expected_action_asymptotic,
                "actual_min_action": d.actual_action,
                "n_states": d.n_states,
            }
        )
    cols = [
        "agent", "sigma", "expected_min_action_exact", "expected_min_action_asymptotic",
        "actual_min_action", "n_states",
    ]
    return pd.DataFrame(rows, columns=cols).set_index("agent")


# ---------------------------------------------------------------------------- Eqs. 29-30
def majority_vote(t, m: int, n: int):
    r"""Kernel after an ``n``-of-``m`` majority vote (Eqs. 29-30).

    .. math::

        T_{M,n} = \sum_{k=n}^{M} \binom{M}{k} T^k (1-T)^{M-k} = I_T(n, M - n + 1),

    the regularised incomplete beta function (:func:`scipy.special.betainc`). Vectorised over
    ``t``; ``1 <= n <= m`` (a majority needs ``n > m / 2``, but the formula holds for any
    ``n``).
    """
    m_, n_ = int(m), int(n)
    if m_ != m or n_ != n or m_ < 1 or not 1 <= n_ <= m_:
        raise ValueError(f"need integers 1 <= n <= M, got M={m!r}, n={n!r}")
    tt = np.asarray(t, dtype=float)
    if np.any((tt < 0) | (tt > 1)):
        raise ValueError("T must lie in [0, 1]")
    out = special.betainc(n_, m_ - n_ + 1, tt)
    return float(out) if np.ndim(out) == 0 else out


def majority_vote_ratio(t_forward, t_backward, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""``T_{M,n}(a) / T_{M,n}(b)`` and its small-``T`` power law ``(a / b)^n`` (Fig. 12).

    Returns ``(ratio, power_law)`` broadcast over ``t_forward`` (``a``) and ``t_backward``
    (``b``). For small ``T``, ``I_T(n, M-n+1) ~ C(M, n) T^n``, so the potential read off a
    majority-voted agent is ``n`` times the original one.
    """
    a = np.asarray(t_forward, dtype=float)
    b = np.asarray(t_backward, dtype=float)
    ratio = np.asarray(majority_vote(a, m, n)) / np.asarray(majority_vote(b, m, n))
    return ratio, (a / b) ** int(n)


# ---------------------------------------------------------------------------- Fig. 5
@dataclass(frozen=True, eq=False)
class ScoreGraph:
    """The subgraph of Fig. 5: most visited states, their score and potential, strong edges.

    Attributes
    ----------
    states : tuple of str
        The selected states (``f``, ``g`` index into it).
    potential, score, calls : numpy.ndarray
        ``beta V``, score (e.g. MSE) and ``N0`` of each selected state.
    f, g : numpy.ndarray of int
        Transitions ``f -> g`` with ``T(g<-f) > min_T`` between selected states.
    t, n : numpy.ndarray
        ``T(g<-f)`` and ``N(g<-f)``.
    direction : numpy.ndarray of int
        ``-1`` down (``V(g) < V(f) - tol``), ``+1`` up, ``0`` flat (``|dV| <= tol``).
    min_T, tol : float
    """

    states: tuple[str, ...]
    potential: np.ndarray
    score: np.ndarray
    calls: np.ndarray
    f: np.ndarray
    g: np.ndarray
    t: np.ndarray
    n: np.ndarray
    direction: np.ndarray
    min_T: float
    tol: float
    score_name: str = "score"
    source: str = ""

    @property
    def n_transitions(self) -> int:
        return int(self.f.size)

    @property
    def n_samples(self) -> int:
        """Recorded transitions (with multiplicity) along the kept edges."""
        return int(self.n.sum())

    def shares(self, *, weighted: bool = False) -> pd.Series:
        """Shares of transitions going down / up / flat in ``V``.

        ``weighted=False`` counts distinct transitions; ``weighted=True`` counts recorded
        samples (each edge weighted by ``N(g<-f)``).
        """
        w = self.n.astype(float) if weighted else np.ones(self.n_transitions)
        tot = w.sum()
        vals = [w[self.direction == d].sum() / tot if tot else np.nan for d in (-1, 1, 0)]
        return pd.Series(vals, index=["down", "up", "flat"], name="share")

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "T": self.t,
                "N": self.n,
                "dV": self.potential[self.g] - self.potential[self.f],
                "direction": pd.Categorical.from_codes(self.direction + 1, ["down", "flat", "up"]),
            }
        )

    def nodes(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"beta_V": self.potential, self.score_name: self.score, "N0": self.calls},
            index=pd.Index(self.states, name="state"),
        )


def potential_vs_score(
    fit: PotentialFit,
    score: pd.Series,
    *,
    n_states: int = 70,
    min_T: float = 0.05,  # noqa: N803 (the Letter's symbol)
    tol: float = 1e-6,
) -> ScoreGraph:
    """The Fig. 5 subgraph: potential against a per-state score, and where transitions go.

    Parameters
    ----------
    fit : PotentialFit
    score : pandas.Series
        Per-state values (e.g. MSE) indexed by state label. States without a finite score, or
        without a finite ``beta V`` (outside the main component), are excluded.
    n_states : int
        Keep the ``n_states`` eligible states with the most calls ``N0`` (ties: state order).
    min_T : float
        Keep transitions with ``T(g<-f) > min_T`` between kept states.
    tol : float
        A transition is "flat" when ``|beta V(g) - beta V(f)| <= tol``.
    """
    _check_fit(fit)
    if not isinstance(score, pd.Series):
        raise TypeError(
            f"score must be a pandas Series indexed by state, got {type(score).__name__}"
        )
    if n_states < 1:
        raise ValueError(f"n_states must be >= 1, got {n_states!r}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    tk = fit.transitions
    idx = pd.Index(tk.states)
    pot = fit.potential.reindex(idx).to_numpy(dtype=float)
    sc = pd.to_numeric(score.reindex(idx), errors="coerce").to_numpy(dtype=float)
    calls = np.asarray(tk.n0, dtype=float)
    eligible = np.flatnonzero(np.isfinite(pot) & np.isfinite(sc))
    order = eligible[np.lexsort((eligible, -calls[eligible]))][:n_states]
    sel = np.sort(order)
    pos = np.full(tk.n_states, -1, dtype=np.int64)
    pos[sel] = np.arange(sel.size)
    f, g, t, n = tk.edges()
    keep = (pos[f] >= 0) & (pos[g] >= 0) & (t > min_T)
    f, g, t, n = pos[f[keep]], pos[g[keep]], t[keep], n[keep]
    v = pot[sel]
    dv = v[g] - v[f]
    direction = np.where(np.abs(dv) <= tol, 0, np.sign(dv)).astype(np.int64)
    arrays = [v, sc[sel], calls[sel], f, g, t, n, direction]
    _frozen(*arrays)
    return ScoreGraph(
        tuple(idx[sel]),
        *arrays,
        min_T=float(min_T),
        tol=float(tol),
        score_name=str(score.name) if score.name is not None else "score",
        source=tk.counts.source,
    )


# ---------------------------------------------------------------------------- sampled vs exact
@dataclass(frozen=True, eq=False)
class ExactComparison:
    r"""Sampled pair log-ratios against an exactly known kernel.

    For every pair measured both ways in the sample, ``y = log T(g<-f)/T(f<-g)`` from the
    counts, its Poisson error ``sigma`` (as in :class:`PairCheck`), and the exact value
    ``y_exact`` from the exact kernel. If the error bars are honest, ``z = (y - y_exact) /
    sigma`` is roughly standard normal: about 68 % of pairs within 1 sigma and 95 % within 2.
    The Poisson error is a large-count approximation; pairs with small counts have skewed
    errors, which ``by_min_count`` shows.

    Attributes
    ----------
    states : tuple of str
        The pair labels refer to these (the sampled kernel's states).
    f, g : numpy.ndarray of int
        Pair members (``f < g``).
    y, sigma, y_exact : numpy.ndarray
        Sampled log ratio, its error, exact log ratio.
    n_min : numpy.ndarray
        ``min(N(g<-f), N(f<-g))`` per pair.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    y_exact: np.ndarray
    n_min: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.y.size)

    @property
    def z(self) -> np.ndarray:
        return (self.y - self.y_exact) / self.sigma

    @property
    def within_1sigma(self) -> float:
        return _sigma_fraction(self.y - self.y_exact, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return _sigma_fraction(self.y - self.y_exact, self.sigma, 2.0)

    def by_min_count(self, edges: Sequence[int] = (1, 2, 5, 10, 20)) -> pd.DataFrame:
        """Coverage per bin of the smaller count of the pair."""
        rows = []
        bounds = [*edges, np.inf]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            m = (self.n_min >= lo) & (self.n_min < hi)
            r = self.y[m] - self.y_exact[m]
            rows.append({
                "min count": f"{lo}-{hi - 1:g}" if np.isfinite(hi) else f">={lo}",
                "pairs": int(m.sum()),
                "within 1 sigma": _sigma_fraction(r, self.sigma[m], 1.0),
                "within 2 sigma": _sigma_fraction(r, self.sigma[m], 2.0),
                "mean z": float(np.mean(r / self.sigma[m])) if m.any() else float("nan"),
            })
        return pd.DataFrame(rows).set_index("min count")

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_pairs": self.n_pairs,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "mean_z": float(np.mean(self.z)) if self.n_pairs else float("nan"),
                "std_z": float(np.std(self.z)) if self.n_pairs else float("nan"),
            },
            name="sampled vs exact",
        )

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame({"f": s[self.f], "g": s[self.g], "log_ratio": self.y,
                             "sigma": self.sigma, "log_ratio_exact": self.y_exact,
                             "z": self.z, "N_min": self.n_min})


def compare_to_exact(sampled: TransitionKernel, exact: TransitionKernel) -> ExactComparison:
    """Do the pair error bars of the sampled kernel cover the exact log ratios?

    Parameters
    ----------
    sampled : TransitionKernel
        Estimated from counts with exact ``N0`` (``estimate_kernel(counts, "exact")``).
    exact : TransitionKernel
        The exact kernel over (at least) the same states, e.g. from token log-probabilities
        (:mod:`dbnb.exact`) or a synthetic chain. States are matched by label.

    Returns
    -------
    ExactComparison
        Pairs measured both ways in ``sampled`` whose exact probabilities are both positive.
    """
    for name, k in (("sampled", sampled), ("exact", exact)):
        if not isinstance(k, TransitionKernel):
            raise TypeError(f"{name} must be a TransitionKernel, got {type(k).__name__}")
    t = sp.csr_array(sampled.matrix)
    mutual = sp.triu(sp.csr_array(t.multiply(t.T)), k=1).tocoo()
    a, b = mutual.row.astype(np.int64), mutual.col.astype(np.int64)  # a < b
    # T[g, f]: with f = b, g = a the forward transition is T[a, b] (b -> a)
    f, g = b, a
    order = np.argsort(f * sampled.n_states + g)
    f, g = f[order], g[order]
    nmat = sp.csr_array(sampled.counts.matrix)
    n_fg = entries(nmat, g, f).astype(float)  # N(g <- f)
    n_gf = entries(nmat, f, g).astype(float)  # N(f <- g)
    n0 = np.asarray(sampled.n0, dtype=float)
    y = np.log(entries(t, g, f)) - np.log(entries(t, f, g))
    sigma = np.sqrt(1 / n_fg + 1 / n0[f] + 1 / n_gf + 1 / n0[g])
    pos = pd.Index(exact.states).get_indexer(np.array(sampled.states, dtype=object))
    ok = (pos[f] >= 0) & (pos[g] >= 0)
    te = sp.csr_array(exact.matrix)
    ef, eg = pos[f[ok]], pos[g[ok]]
    fwd = entries(te, eg, ef)
    bwd = entries(te, ef, eg)
    good = (fwd > 0) & (bwd > 0)
    sel = np.flatnonzero(ok)[good]
    y_exact = np.log(fwd[good]) - np.log(bwd[good])
    arrays = (f[sel], g[sel], y[sel], sigma[sel], y_exact, np.minimum(n_fg, n_gf)[sel])
    _frozen(*arrays)
    return ExactComparison(tuple(sampled.states), *arrays)


def transition_check(sampled: TransitionKernel, exact: TransitionKernel, *,
                     min_expected: float = 5.0) -> pd.Series:
    r"""Per-transition counting check of sampled counts against an exact kernel.

    For every transition ``f -> g`` (``f != g``, both sampled states) whose expected count
    ``E = N0(f) T_exact(g<-f)`` is at least ``min_expected``, ``z = (N(g<-f) - E) /
    sqrt(E (1 - T_exact))`` (binomial). Returns the number of transitions, ``chi2 = sum z^2``,
    ``chi2 / dof`` (dof = number of transitions), its p-value, the mean and spread of ``z``,
    and the fractions within 1 and 2.
    """
    from scipy import stats

    pos = pd.Index(exact.states).get_indexer(np.array(sampled.states, dtype=object))
    have = np.flatnonzero(pos >= 0)
    te = sp.csr_array(exact.matrix)[pos[have]][:, pos[have]].toarray()  # T[g, f]
    n0 = np.asarray(sampled.n0, dtype=float)[have]
    counts = sp.csr_array(sampled.counts.matrix)[have][:, have].toarray()
    np.fill_diagonal(te, 0.0)
    expected = te * n0[None, :]
    sel = expected >= min_expected
    e, t, n = expected[sel], te[sel], counts[sel]
    z = (n - e) / np.sqrt(e * (1.0 - t))
    chi2 = float(np.sum(z**2))
    dof = int(z.size)
    return pd.Series(
        {
            "transitions": dof,
            "chi2": chi2,
            "chi2_per_dof": chi2 / dof if dof else float("nan"),
            "p_value": float(stats.chi2.sf(chi2, dof)) if dof else float("nan"),
            "mean_z": float(np.mean(z)) if dof else float("nan"),
            "std_z": float(np.std(z)) if dof else float("nan"),
            "within_1": float(np.mean(np.abs(z) <= 1)) if dof else float("nan"),
            "within_2": float(np.mean(np.abs(z) <= 2)) if dof else float("nan"),
        },
        name="transitions vs exact",
    )
