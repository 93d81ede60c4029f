"""Transition-kernel estimators: from counts ``N(g <- f)`` to ``T(g <- f)``.

Every estimator divides a count by a number of calls ``N0(f)``; they differ in what ``N0`` is
and which states they keep (the Letter's METHOD §4):

======================  ==================================================  ====================
method                  ``N0(f)``                                           states kept
======================  ==================================================  ====================
``"exact"`` (Eq. 6)     calls made from ``f`` (escapes, self-loops incl.)    ``N0 >= 1``
``"fixed"`` (Eq. 18)    a nominal number per state; ``T = min(N/N0, 1)``      sampled as a source
``"outcount"`` (Eq. 24) ``sum_{g != f} N(g <- f)`` (escapes ignored)          ``N0 > 1``
``"low_reject"``        appearances of ``f`` as a source, self-loops incl.   ``N0 > 1``
``"high_reject"``       total recorded transitions / number of states        all
======================  ==================================================  ====================

``"low_reject"`` and ``"high_reject"`` are the options of the authors' analysis code; their
``low_reject`` counts self-transitions in ``N0`` while Eq. 24 as printed does not. Self-loops
never enter ``T`` (a state cannot be compared with itself), and only transitions between kept
states are kept.

Errors. :func:`log_t_variance` is the one counting error of ``log T`` that every error bar
uses; it depends on how ``N0`` relates to the counts, the kernel's
:attr:`TransitionKernel.design`:

=================  ===============================================  ==============
design             ``N0(f)``                                        ``var log T``
=================  ===============================================  ==============
``"multinomial"``  calls recorded (``"exact"``; ``"fixed"`` with    ``1/N - 1/N0``
                   recorded calls), or a sum of outcomes that
                   includes ``N`` (``"outcount"``, ``"low_reject"``)
``"nominal"``      a constant: a design number (``"fixed"`` with a  ``1/N``
                   nominal ``N0``, Table II), ``"high_reject"``'s
                   average
``"letter"``       the Letter's form (METHOD §3): ``N0`` read as    ``1/N + 1/N0``
                   an independent Poisson count; only to redraw
                   the Letter's figures
``"none"``         no sampling noise (``noise_free``: exact         NaN (no bar)
                   log-probabilities, a synthetic chain's true
                   kernel)
=================  ===============================================  ==============
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit, logit

from .counts import TransitionCounts, entries

__all__ = ["TransitionKernel", "as_kernel", "estimate_kernel", "log_t_variance",
           "log_ratio_interval", "stationary_distribution", "ESTIMATORS", "DESIGNS",
           "INTERVAL_METHODS"]

Estimator = Literal["auto", "exact", "fixed", "outcount", "low_reject", "high_reject"]
ESTIMATORS = ("exact", "fixed", "outcount", "low_reject", "high_reject")
#: Sampling designs of :func:`log_t_variance` (see the module docstring).
DESIGNS = ("multinomial", "nominal", "letter", "none")

_DEFAULT_MIN_CALLS = {"exact": 1, "fixed": 1, "outcount": 2, "low_reject": 2, "high_reject": 0}


@dataclass(frozen=True, eq=False, repr=False)
class TransitionKernel:
    """An estimated transition kernel ``T(g <- f)`` over the kept states.

    Attributes
    ----------
    counts : TransitionCounts
        The counts restricted to the kept states, self-loops still on the diagonal.
    matrix : scipy.sparse.csr_array
        ``matrix[g, f] = T(g <- f)`` for ``f != g`` (no diagonal).
    n0 : numpy.ndarray
        The ``N0(f)`` used for each kept state.
    method : str
        Which estimator made it (see the module docstring).
    noise_free : bool
        ``True`` for a kernel known without sampling noise (exact token log-probabilities, a
        synthetic chain's true kernel): its ``counts`` only mark the support or round the
        probabilities for tables and are not data, so no error bar is computed from them
        (:attr:`design` ``"none"``).
    """

    counts: TransitionCounts
    matrix: sp.csr_array
    n0: np.ndarray
    method: str
    noise_free: bool = False

    @property
    def states(self) -> tuple[str, ...]:
        return self.counts.states

    @property
    def n_states(self) -> int:
        return self.counts.n_states

    @property
    def design(self) -> str:
        """How ``N0`` relates to the counts, which sets the error of ``log T``
        (:func:`log_t_variance`): ``"multinomial"``, ``"nominal"`` or ``"none"`` (see the
        module docstring). Never ``"letter"``: that form is chosen explicitly."""
        if self.noise_free:
            return "none"
        if self.method in ("exact", "outcount", "low_reject"):
            return "multinomial"
        calls = self.counts.calls
        if (self.method == "fixed" and self.counts.calls_kind == "exact" and calls is not None
                and np.array_equal(self.n0, calls)):
            return "multinomial"
        return "nominal"

    def __repr__(self) -> str:
        exact = ", noise-free" if self.noise_free else ""
        return (
            f"TransitionKernel({self.method!r}, {self.n_states} states, "
            f"{self.matrix.nnz} transitions{exact})"
        )

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Arrays ``(f, g, T(g <- f), N(g <- f))`` over the transitions ``f != g``."""
        coo = self.matrix.tocoo()
        g, f, t = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
        n = entries(self.counts.matrix, g, f).astype(np.int64)
        return f, g, t, n

    def to_frame(self) -> pd.DataFrame:
        """Long table ``source, target, T, N, N0_source``."""
        f, g, t, n = self.edges()
        s = np.array(self.states, dtype=object)
        n0 = self.n0[f]
        if np.all(n0 == np.round(n0)):   # counted calls print as 4000, not 4000.0
            n0 = n0.astype(np.int64)
        return pd.DataFrame(
            {"source": s[f], "target": s[g], "T": t, "N": n, "N0_source": n0}
        )

    def escape_probability(self) -> pd.Series:
        """``1 - sum_{g != f} T(g <- f)`` per state (escapes and self-loops)."""
        out = np.asarray(self.matrix.sum(axis=0)).ravel()
        return pd.Series(1.0 - out, index=self.counts.index, name="escape")


def as_kernel(data, estimator: Estimator = "auto", *, min_calls: int | None = None,
              n0: float | None = None, name: str = "data") -> TransitionKernel:
    """``data`` as a kernel: a :class:`TransitionKernel` as it is, counts through
    :func:`estimate_kernel`; anything else is a TypeError naming the argument."""
    if isinstance(data, TransitionKernel):
        return data
    if isinstance(data, TransitionCounts):
        return estimate_kernel(data, estimator, min_calls=min_calls, n0=n0)
    raise TypeError(f"{name} must be TransitionCounts or TransitionKernel, got "
                    f"{type(data).__name__}")


def estimate_kernel(
    counts: TransitionCounts,
    method: Estimator = "auto",
    *,
    min_calls: int | None = None,
    n0: float | None = None,
) -> TransitionKernel:
    """Estimate ``T(g <- f) = N(g <- f) / N0(f)`` with the chosen convention for ``N0``.

    Parameters
    ----------
    counts : TransitionCounts
        The observations.
    method : {"auto", "exact", "fixed", "outcount", "low_reject", "high_reject"}
        ``"auto"`` picks ``"exact"`` when every call was recorded (``calls_kind="exact"``),
        ``"fixed"`` when ``N0`` is a nominal design number, and ``"outcount"`` (Eq. 24)
        when only transitions are known.
    min_calls : int, optional
        Keep a state only if its ``N0`` (for ``"fixed"``: its recorded calls) is at least this.
        Defaults: 1 for exact and fixed, 2 (i.e. ``N0 > 1``) for outcount and low_reject,
        0 for high_reject.
    n0 : float, optional
        The nominal ``N0`` for ``"fixed"`` when the counts carry none (Table II: 4000).

    Returns
    -------
    TransitionKernel

    Examples
    --------
    >>> c = TransitionCounts.from_pairs(list("AAAB"), list("BBCA"))
    >>> k = estimate_kernel(c)          # out-counts: N0(A) = 3, N0(B) = 1 -> B dropped
    >>> k.states, k.method
    (('A',), 'outcount')
    """
    if not isinstance(counts, TransitionCounts):
        raise TypeError(f"counts must be a TransitionCounts, got {type(counts).__name__}")
    if counts.n_states == 0 or counts.n_samples == 0:
        raise ValueError(f"no transitions to estimate a kernel from ({counts!r})")
    if method == "auto":
        method = {"exact": "exact", "nominal": "fixed", None: "outcount"}[counts.calls_kind]
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS} or 'auto'")
    if min_calls is None:
        min_calls = _DEFAULT_MIN_CALLS[method]
    if min_calls < 0:
        raise ValueError(f"min_calls must be >= 0, got {min_calls}")

    observed = counts.observed_calls()
    if method == "exact":
        if counts.calls_kind != "exact":
            raise ValueError(
                "estimator 'exact' (Eq. 6) needs every call recorded (calls_kind='exact'); "
                f"these counts have calls_kind={counts.calls_kind!r}. Use 'fixed' or 'outcount'."
            )
        n0_all = counts.calls.astype(float)
        keep = n0_all >= min_calls
    elif method == "fixed":
        if n0 is not None:
            if not np.isfinite(n0) or n0 <= 0:
                raise ValueError(f"n0 must be a positive number, got {n0!r}")
            n0_all = np.full(counts.n_states, float(n0))
        elif counts.calls is not None:
            n0_all = counts.calls.astype(float)
        else:
            raise ValueError("estimator 'fixed' (Eq. 18) needs N0: pass n0= or counts with calls")
        keep = observed >= min_calls
    elif method == "outcount":
        n0_all = counts.out_counts().astype(float)
        keep = n0_all >= min_calls
    elif method == "low_reject":
        n0_all = observed.astype(float)
        keep = n0_all >= min_calls
    else:  # high_reject
        n0_all = np.full(counts.n_states, counts.n_samples / counts.n_states)
        keep = observed >= min_calls
    keep &= n0_all > 0
    if not keep.any():
        raise ValueError(
            f"estimator {method!r} with min_calls={min_calls} keeps no state of {counts!r}"
        )
    sub = counts.submodel(keep)
    n0_kept = n0_all[keep]
    f, g, c = sub.edges()
    t = c / n0_kept[f]
    if method == "fixed":
        t = np.minimum(t, 1.0)
    n = sub.n_states
    mat = sp.csr_array((t, (g, f)), shape=(n, n))
    n0_kept = n0_kept.copy()
    n0_kept.setflags(write=False)
    return TransitionKernel(counts=sub, matrix=mat, n0=n0_kept, method=method)


def log_t_variance(n, n0, design: str):
    r"""Counting variance of an estimated ``log T(g <- f) = log N(g <- f) - log N0(f)``.

    The error bar of every side of Eq. 5 (and of the cycle sums of Eq. 7), to first order in
    ``1/N`` (delta method), under the sampling design that produced ``N0``:

    .. math::

        \operatorname{var} \log \hat T(g \leftarrow f) =
        \begin{cases}
        1/N - 1/N_0 = (1 - T) / (N_0 T) & \text{multinomial: } N_0 \text{ calls recorded}, \\
        1/N & \text{nominal: } N_0 \text{ a constant}, \\
        1/N + 1/N_0 & \text{letter: the Letter's METHOD §3}.
        \end{cases}

    With ``N0`` calls fixed by design, ``N ~ Binomial(N0, T)`` and ``log N0`` has no variance:
    ``var log N = (1 - T)/(N0 T)``. The same holds when ``N0`` is the sum of the outcomes
    (Eq. 24's out-count): ``N`` is one of its terms, and the covariance removes ``2/N0`` from
    ``1/N + 1/N0``. The Letter's ``+ 1/N0`` treats ``N0`` as an independent count, which no
    estimator of :func:`estimate_kernel` makes; it is kept, named, to redraw the Letter's
    figures. Statistical error only; a large-count approximation.

    Parameters
    ----------
    n : array_like
        Counts ``N(g <- f)`` of the transitions (positive).
    n0 : array_like
        ``N0(f)`` of their source states, broadcast against ``n``.
    design : {"multinomial", "nominal", "letter", "none"}
        Usually the kernel's :attr:`TransitionKernel.design`; ``"none"`` (a kernel without
        sampling noise) gives NaN: there is no error bar.

    Returns
    -------
    numpy.ndarray or numpy.float64
        The variance, elementwise.

    Examples
    --------
    >>> round(float(log_t_variance(10, 100, "multinomial")), 12)
    0.09
    >>> log_t_variance(np.array([4, 10]), np.array([100, 100]), "letter").tolist()
    [0.26, 0.11]
    >>> float(log_t_variance(10, 100, "nominal")), bool(np.isnan(log_t_variance(10, 100, "none")))
    (0.1, True)
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    n = np.asarray(n, dtype=float)
    n0 = np.asarray(n0, dtype=float)
    if design == "none":
        return np.full(np.broadcast(n, n0).shape, np.nan)[()]
    if design == "nominal":
        return (1.0 / n + 0.0 * n0)[()]
    sign = -1.0 if design == "multinomial" else 1.0
    return 1.0 / n + sign / n0


#: Methods of :func:`log_ratio_interval`.
INTERVAL_METHODS = ("clopper-pearson", "mid-p")


def _binomial_limit(y, m, alpha, side: str, mid: bool) -> np.ndarray:
    """The ``side`` ("low" or "high") confidence limit on a binomial ``p`` from ``y`` of ``m``
    at tail probability ``alpha`` (exact, or mid-p), elementwise; 0 / 1 at the boundary."""
    y = np.asarray(y, dtype=float)
    m = np.asarray(m, dtype=float)
    if not mid:  # Clopper-Pearson: the beta quantiles
        with np.errstate(invalid="ignore"):
            if side == "low":
                return np.where(y > 0, stats.beta.ppf(alpha, np.maximum(y, 1), m - y + 1), 0.0)
            return np.where(y < m, stats.beta.ppf(1 - alpha, y + 1, np.maximum(m - y, 1)), 1.0)
    # mid-p: P(Y > y) + P(Y = y)/2 = alpha (low), P(Y < y) + P(Y = y)/2 = alpha (high), by
    # bisection in logit p (both tails are monotone in p)
    lo = np.full(y.shape, -60.0)
    hi = np.full(y.shape, 60.0)
    for _ in range(80):
        mid_z = 0.5 * (lo + hi)
        p = expit(mid_z)
        half = 0.5 * stats.binom.pmf(y, m, p)
        if side == "low":
            too_high = stats.binom.sf(y, m, p) + half > alpha  # tail grows with p
        else:
            too_high = stats.binom.cdf(y - 1, m, p) + half < alpha  # tail shrinks with p
        hi = np.where(too_high, mid_z, hi)
        lo = np.where(too_high, lo, mid_z)
    out = expit(0.5 * (lo + hi))
    if side == "low":
        return np.where(y > 0, out, 0.0)
    return np.where(y < m, out, 1.0)


def log_ratio_interval(n_forward, n_backward, n0_source, n0_target, *, level: float = 0.95,
                       method: str = "clopper-pearson") -> tuple[np.ndarray, np.ndarray]:
    r"""Confidence interval for a pair's log-ratio ``log T(g <- f) / T(f <- g)`` (Eq. 5) that
    is honest at small counts: exact given the pair's total.

    Given ``m = N(g <- f) + N(f <- g)``, counts of independent Poisson (or rare multinomial)
    calls split binomially,

    .. math::

        N(g \leftarrow f) \mid m \sim \mathrm{Binomial}(m, p), \qquad
        \operatorname{logit} p = \log \frac{T(g \leftarrow f)}{T(f \leftarrow g)}
                               + \log \frac{N_0(f)}{N_0(g)},

    so limits ``[p_L, p_U]`` on the proportion map to ``[logit p_L, logit p_U] -
    log N0(f)/N0(g)`` on the log-ratio. Unlike the delta-method bar ``y +- z sqrt(var)``
    (:func:`log_t_variance`) it needs no pair to be seen both ways, so nothing is selected on
    the outcome: a pair seen one way gets a one-sided interval (``+inf`` or ``-inf`` at the end
    of the unseen direction), a pair never seen (``m = 0``) is undefined (NaN).

    Parameters
    ----------
    n_forward, n_backward : array_like
        ``N(g <- f)`` and ``N(f <- g)`` (non-negative counts).
    n0_source, n0_target : array_like
        ``N0(f)`` and ``N0(g)`` (positive), broadcast against the counts.
    level : float
        Two-sided confidence level; each end is a one-sided bound at ``(1 + level) / 2``
        (so the finite end of a one-way pair's interval is a ``(1 + level)/2`` bound; the
        one-sided ``level`` bound is :attr:`dbnb.diagnostics.OneWayCheck.lower_bound`).
    method : {"clopper-pearson", "mid-p"}
        ``"clopper-pearson"``: exact limits, coverage at least ``level`` for every true
        ratio and every ``m`` (conservative: the split is discrete). ``"mid-p"``: half the
        probability of the observed split counted in each tail; coverage close to ``level``
        on average, not guaranteed.

    Returns
    -------
    low, high : numpy.ndarray
        In units of the log-ratio (``beta dV``); ``-inf``/``+inf`` on an unseen side, NaN
        where ``m = 0``.

    Notes
    -----
    Exact under Poisson sampling; with a fixed number of calls per source the split given
    ``m`` is Fisher's noncentral hypergeometric rather than binomial, which differs at order
    ``T`` (small where counts are small, the regime this interval is for).

    Examples
    --------
    >>> low, high = log_ratio_interval(3, 0, 100, 100)   # seen 3 times one way, never back
    >>> round(float(low), 4), float(high)                 # logit(0.025 ** (1/3))
    (-0.8837, inf)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    y, x, n0f, n0g = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (
        n_forward, n_backward, n0_source, n0_target)))
    if np.any(y < 0) or np.any(x < 0):
        bad = np.concatenate([y[y < 0], x[x < 0]])[:3]
        raise ValueError(f"counts must be non-negative, got {bad.tolist()}")
    if np.any(~(n0f > 0)) or np.any(~(n0g > 0)):
        bad = np.concatenate([n0f[~(n0f > 0)], n0g[~(n0g > 0)]])[:3]
        raise ValueError(f"N0 must be positive, got {bad.tolist()}")
    m = y + x
    alpha = (1 - level) / 2
    mid = method == "mid-p"
    p_lo = _binomial_limit(y, m, alpha, "low", mid)
    p_hi = _binomial_limit(y, m, alpha, "high", mid)
    off = np.log(n0f) - np.log(n0g)
    with np.errstate(divide="ignore"):
        low = logit(p_lo) - off
        high = logit(p_hi) - off
    undefined = m == 0
    low = np.where(undefined, np.nan, low)
    high = np.where(undefined, np.nan, high)
    return low[()], high[()]


#: Largest set of states :func:`stationary_distribution` solves for (a dense solve).
STATIONARY_MAX = 5000


def stationary_distribution(kernel: TransitionKernel,
                            states: list[str] | tuple[str, ...] | None = None) -> pd.Series:
    r"""The stationary distribution :math:`\pi` of the chain a kernel drives, on a strongly
    connected set of states.

    The chain moves ``f -> g`` with probability ``T(g <- f)`` and otherwise stays at ``f``: an
    escape (a reply that is no state), a self-reply, or a move out of ``states`` leaves the
    agent where it is. ``pi`` solves ``pi(g) = sum_f P(g <- f) pi(f)``, ``sum pi = 1``. Under
    detailed balance inside ``states`` it is :math:`\pi \propto e^{-\beta V}` exactly (the
    diagonal does not enter ``pi(f) T(g<-f) = pi(g) T(f<-g)``); a kernel with cycle currents
    has a ``pi`` no potential gives.

    Parameters
    ----------
    kernel : TransitionKernel
    states : sequence of str, optional
        A strongly connected set of the kernel's states (default: its main strongly connected
        component, :func:`dbnb.graph.strong_components`); on a set that is not, ``pi`` is not
        unique.

    Returns
    -------
    pandas.Series
        ``pi`` indexed by state, summing to 1.

    Raises
    ------
    ValueError
        When ``states`` is not strongly connected, names unknown states, or is larger than
        :data:`STATIONARY_MAX`.

    Examples
    --------
    >>> from dbnb import synthetic
    >>> chain = synthetic.reversible_chain(10, degree=4, seed=0)
    >>> pi = stationary_distribution(chain.kernel())
    >>> v = chain.true_potential()[pi.index]
    >>> bool(np.allclose(np.log(pi) - np.log(pi).mean(), -(v - v.mean())))
    True
    """
    from . import graph

    t = sp.csr_array(kernel.matrix)
    index = list(kernel.states)
    if states is None:
        comp = graph.strong_components(t.T)
        keep = np.flatnonzero(comp == 0)
    else:
        pos = {s: i for i, s in enumerate(index)}
        unknown = [s for s in states if s not in pos]
        if unknown:
            raise ValueError(f"states not in the kernel: {unknown[:5]}")
        keep = np.array(sorted({pos[s] for s in states}), dtype=np.int64)
    if keep.size > STATIONARY_MAX:
        raise ValueError(f"{keep.size} states: more than STATIONARY_MAX = {STATIONARY_MAX}")
    p = t[keep][:, keep].toarray()
    np.fill_diagonal(p, 0.0)
    if keep.size > 1 and np.unique(graph.strong_components(sp.csr_array(p.T > 0))).size > 1:
        raise ValueError("states are not strongly connected: the stationary distribution is "
                         "not unique (pass one strongly connected component)")
    p[np.diag_indices_from(p)] = 1.0 - p.sum(axis=0)
    a = p - np.eye(keep.size)
    a[-1] = 1.0
    b = np.zeros(keep.size)
    b[-1] = 1.0
    pi = np.clip(np.linalg.solve(a, b), 0.0, None)
    return pd.Series(pi / pi.sum(), index=[index[i] for i in keep], name="pi")
