r"""Synthetic agents with a known answer: Markov chains for testing and benchmarking the fit.

A :class:`SyntheticChain` is a transition kernel ``T(g <- f)`` over labelled states
(``"s0000"``, ``"s0001"``, ...), stored as a sparse matrix with the Letter's convention
``matrix[g, f] = T(g <- f)`` (column = source). Columns sum to at most 1; the remainder
``1 - sum_g T(g <- f)`` is the probability that a call from ``f`` *escapes* (the reply is
rejected, or the proposal was refused). There is no diagonal: a state is never compared with
itself.

Potentials are dimensionless, in units of ``1/beta``: every ``potential`` here is ``beta V``.

* :func:`reversible_chain` builds a Metropolis chain on a random connected graph with a known
  potential. It obeys detailed balance exactly:
  ``log T(g <- f) / T(f <- g) = beta V(f) - beta V(g)`` for every edge.
* :func:`driven_chain` adds a non-conservative drive of strength ``drive`` that breaks detailed
  balance: ``log T(g <- f) / T(f <- g) = beta V(f) - beta V(g) + drive * A[g, f]`` with an
  antisymmetric orientation ``A = +-1`` whose circulation around every triangle is ``+-1``.
* :func:`popularity_chain` is the null model of "the prompt matters": every reply ignores
  the prompt, ``T(g <- f) = (1 - escape) p(g)``. It is in detailed balance by construction,
  with ``beta V = -log p``.
* :func:`sample_fixed_design` draws a fixed number of calls per state (exact ``N0``);
  :func:`sample_letter_schedule` follows the Letter's design (each call picks its prompt
  uniformly among the states found so far, starting from one state:
  :func:`dbnb.schedules.letter_schedule`).
* :meth:`SyntheticChain.kernel` (or :func:`true_kernel`) gives the true kernel as a
  :class:`~dbnb.kernels.TransitionKernel`, for fits without sampling noise.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from .counts import TransitionCounts
from .kernels import TransitionKernel
from .schedules import letter_schedule

__all__ = [
    "SyntheticChain",
    "reversible_chain",
    "driven_chain",
    "popularity_chain",
    "true_kernel",
    "sample_fixed_design",
    "sample_letter_schedule",
]

SeedLike = int | np.random.Generator | None

#: Largest padded (states x outcomes) table that sample_fixed_design draws in one call.
_MAX_DENSE_OUTCOMES = 20_000_000


# ---------------------------------------------------------------------------- validation
def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name: str, *, low: float, high: float = np.inf,
                include_high: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    above = value > high if include_high else value >= high
    if value < low or above:
        bracket = "]" if include_high else ")"
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}{bracket}, got {value!r}")
    return value


def _labels(n: int) -> tuple[str, ...]:
    width = max(4, len(str(n - 1)))
    return tuple(f"s{i:0{width}d}" for i in range(n))


# ---------------------------------------------------------------------------- the chain
@dataclass(frozen=True, eq=False, repr=False)
class SyntheticChain:
    """A Markov chain with a known transition kernel (and, when it exists, a known potential).

    Attributes
    ----------
    states : tuple of str
        State labels; ``states[i]`` labels row and column ``i`` of ``matrix``.
    matrix : scipy.sparse.csc_array
        ``matrix[g, f] = T(g <- f)``, the exact probability that one call from ``f`` yields
        ``g`` (column = source). No diagonal; columns sum to ``<= 1``, the remainder being the
        escape probability.
    potential : numpy.ndarray or None
        ``beta V`` per state (dimensionless). For a reversible chain it is the detailed-balance
        potential, ``log T(g <- f) / T(f <- g) = potential[f] - potential[g]``. For a driven
        chain it is the conservative part of the construction (the detailed-balance part of
        the log-ratios; the drive adds ``drive * orientation[g, f]``). ``None`` when unknown.
    description : str
        How the chain was built (shown in benchmark output and figure captions).
    drive : float
        Strength of the non-conservative drive (0 for a reversible chain).
    orientation : scipy.sparse.csr_array or None
        The antisymmetric ``A[g, f] = +-1`` on the edges used by the drive.
    """

    states: tuple[str, ...]
    matrix: sp.csc_array
    potential: np.ndarray | None
    description: str = ""
    drive: float = 0.0
    orientation: sp.csr_array | None = None

    def __post_init__(self) -> None:
        states = tuple(self.states)
        n = len(states)
        m = sp.csc_array(self.matrix, dtype=float)
        if m.shape != (n, n):
            raise ValueError(f"matrix has shape {m.shape}; expected ({n}, {n}) for {n} states")
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        if m.nnz and (not np.isfinite(m.data).all() or m.data.min() < 0):
            raise ValueError("matrix entries must be finite probabilities >= 0")
        if m.diagonal().any():
            raise ValueError("matrix must have no diagonal (self-transitions never enter T)")
        colsum = np.asarray(m.sum(axis=0)).ravel()
        if (colsum > 1 + 1e-12).any():
            i = int(np.argmax(colsum))
            raise ValueError(f"column {states[i]!r} of matrix sums to {colsum[i]!r} > 1")
        for arr in (m.data, m.indices, m.indptr):
            arr.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "matrix", m)
        if self.potential is not None:
            v = np.array(self.potential, dtype=float)
            if v.shape != (n,) or not np.isfinite(v).all():
                raise ValueError(f"potential must be {n} finite numbers, got shape {v.shape}")
            v.setflags(write=False)
            object.__setattr__(self, "potential", v)

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_transitions(self) -> int:
        """Directed transitions ``f != g`` with ``T(g <- f) > 0``."""
        return int(self.matrix.nnz)

    @property
    def index(self) -> pd.Index:
        return pd.Index(self.states, name="state")

    def escape_probability(self) -> np.ndarray:
        """``1 - sum_g T(g <- f)`` per source state ``f``."""
        return np.clip(1.0 - np.asarray(self.matrix.sum(axis=0)).ravel(), 0.0, 1.0)

    def true_potential(self) -> pd.Series:
        """The known ``beta V`` as a Series indexed by state (gauge: min = 0)."""
        if self.potential is None:
            raise ValueError(f"{self!r} has no known potential")
        v = self.potential - self.potential.min()
        return pd.Series(v, index=self.index, name="beta_V_true")

    def kernel(self) -> TransitionKernel:
        """The exact kernel as a :class:`~dbnb.kernels.TransitionKernel` (method ``"exact"``).

        Fitting it gives the potential without sampling noise. See :func:`true_kernel` for
        what its ``counts`` and ``n0`` hold.
        """
        return true_kernel(self.matrix, self.states, source=self.description)

    def __repr__(self) -> str:
        return (
            f"SyntheticChain({self.n_states} states, {self.n_transitions} transitions, "
            f"drive={self.drive:g}: {self.description})"
        )


def true_kernel(
    matrix, states: tuple[str, ...] | list[str] | None = None, *, source: str = "exact kernel"
) -> TransitionKernel:
    """Wrap an exact ``T[g, f] = T(g <- f)`` as a :class:`~dbnb.kernels.TransitionKernel`.

    Parameters
    ----------
    matrix : (n, n) sparse or dense array
        Exact transition probabilities, column = source; the diagonal is ignored.
    states : sequence of str, optional
        Labels; default ``"s0000"``, ``"s0001"``, ...
    source : str
        Stored as the ``source`` of the attached counts.

    Returns
    -------
    TransitionKernel
        ``method="exact"``, ``noise_free=True``; ``n0`` is ``+inf`` for every state (an exact
        kernel is the limit of infinitely many calls); ``counts.matrix`` marks the support
        with one count per transition (it is not data: the checks compute no counting error
        from it, see :attr:`~dbnb.kernels.TransitionKernel.design`).
    """
    m = sp.csr_array(matrix, dtype=float)
    n = m.shape[0]
    if m.shape != (n, n):
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    m = m.tolil()
    m.setdiag(0)
    m = sp.csr_array(m)
    m.eliminate_zeros()
    if m.nnz and (m.data < 0).any():
        raise ValueError("matrix entries must be probabilities >= 0")
    labels = _labels(n) if states is None else tuple(states)
    support = sp.csr_array((np.ones(m.nnz, dtype=np.int64), m.indices, m.indptr), shape=(n, n))
    counts = TransitionCounts(states=labels, matrix=support, source=source)
    n0 = np.full(n, np.inf)
    n0.setflags(write=False)
    return TransitionKernel(counts=counts, matrix=m, n0=n0, method="exact", noise_free=True)


# ---------------------------------------------------------------------------- graphs
def _random_connected_graph(n: int, degree: float, rng: np.random.Generator) -> np.ndarray:
    """Undirected edges ``(u, v)``, ``u < v``, of a connected graph with mean degree ~``degree``.

    A random recursive tree (state ``i`` attaches to a uniform earlier state) makes it
    connected; uniformly random extra pairs bring the mean degree up to ``degree``.
    """
    parent = np.floor(rng.random(n - 1) * np.arange(1, n)).astype(np.int64)
    child = np.arange(1, n, dtype=np.int64)
    keys = parent * n + child  # parent < child
    n_pairs = n * (n - 1) // 2
    target = min(n_pairs, max(n - 1, int(round(degree * n / 2))))
    extra = target - (n - 1)
    if extra > 0:
        if n_pairs <= 2_000_000:
            u, v = np.triu_indices(n, k=1)
            candidates = np.setdiff1d(u.astype(np.int64) * n + v, keys, assume_unique=True)
            keys = np.concatenate([keys, rng.choice(candidates, size=extra, replace=False)])
        else:
            chosen = keys
            while chosen.size < target:
                m = int(1.2 * (target - chosen.size)) + 16
                a = rng.integers(0, n, size=m)
                b = rng.integers(0, n, size=m)
                ok = a != b
                new = np.minimum(a, b)[ok] * n + np.maximum(a, b)[ok]
                new = np.setdiff1d(np.unique(new), chosen, assume_unique=True)
                new = rng.permutation(new)[: target - chosen.size]
                chosen = np.concatenate([chosen, new])
            keys = chosen
    keys = np.sort(keys)
    return np.stack([keys // n, keys % n], axis=1)


def _build(n_states, degree, sigma, escape, drive, seed, kind: str) -> SyntheticChain:
    n = _check_int(n_states, "n_states", 2)
    degree = _check_real(degree, "degree", low=1.0)
    if degree > n - 1:
        raise ValueError(f"degree must be <= n_states - 1 = {n - 1}, got {degree!r}")
    sigma = _check_real(sigma, "sigma", low=0.0)
    escape = _check_real(escape, "escape", low=0.0, high=1.0, include_high=False)
    drive = _check_real(drive, "drive", low=0.0)
    rng = np.random.default_rng(seed)

    edges = _random_connected_graph(n, degree, rng)
    v = sigma * rng.standard_normal(n)
    u, w = edges[:, 0], edges[:, 1]
    deg = np.bincount(np.concatenate([u, w]), minlength=n)
    # Symmetric proposal q(g|f) = q(f|g) = (1 - escape) / max(deg f, deg g): columns sum <= 1.
    q = (1.0 - escape) / np.maximum(deg[u], deg[w])
    src = np.concatenate([u, w])  # f
    dst = np.concatenate([w, u])  # g
    qq = np.concatenate([q, q])
    # Metropolis acceptance min(1, exp(V(f) - V(g))), so T(g<-f)/T(f<-g) = exp(V(f) - V(g)).
    t = qq * np.exp(np.minimum(0.0, v[src] - v[dst]))
    orientation = None
    potential = v
    if kind == "driven":
        # A[g, f] = sign(r(g) - r(f)) for a random ranking r: antisymmetric, circulation
        # +-1 around every triangle, so the drive cannot be absorbed into a potential.
        rank = rng.permutation(n)
        a = np.sign(rank[dst] - rank[src]).astype(float)
        orientation = sp.csr_array((a, (dst, src)), shape=(n, n))
        if drive > 0:
            t = t * np.exp(0.5 * drive * a)
            colsum = np.bincount(src, weights=t, minlength=n)
            # Per-column rescaling keeps columns <= 1 - escape; it is a gradient term
            # (log c(f) - log c(g) in the log-ratio), so it shifts the conservative part only.
            c = np.minimum(1.0, (1.0 - escape) / np.where(colsum > 0, colsum, 1.0))
            t = t * c[src]
            potential = v + np.log(c)
    matrix = sp.csc_array((t, (dst, src)), shape=(n, n))
    desc = (
        f"{kind} Metropolis chain: {n} states, {edges.shape[0]} edges (mean degree "
        f"{2 * edges.shape[0] / n:.2f}), sigma={sigma:g}, escape>={escape:g}"
        + (f", drive={drive:g}" if kind == "driven" else "")
        + f", seed={seed!r}"
    )
    return SyntheticChain(
        states=_labels(n),
        matrix=matrix,
        potential=potential,
        description=desc,
        drive=drive,
        orientation=orientation,
    )


def reversible_chain(
    n_states: int,
    degree: float = 4.0,
    sigma: float = 1.0,
    escape: float = 0.1,
    seed: SeedLike = None,
) -> SyntheticChain:
    """A Metropolis chain obeying detailed balance with a known Gaussian potential.

    Parameters
    ----------
    n_states : int
        Number of states, ``>= 2``.
    degree : float
        Target mean number of neighbours, in ``[1, n_states - 1]``. The graph is a random
        recursive tree (so it is connected) plus uniformly random extra edges.
    sigma : float
        Standard deviation of the potential: ``beta V ~ N(0, sigma^2)`` independently.
    escape : float
        In ``[0, 1)``: at least this fraction of the calls from every state escapes. The
        symmetric proposal is ``q(g|f) = (1 - escape) / max(deg f, deg g)``.
    seed : int, numpy.random.Generator or None
        Random seed (the same seed gives the same chain).

    Returns
    -------
    SyntheticChain
        ``T(g <- f) = q(g|f) * min(1, exp(beta V(f) - beta V(g)))``, hence
        ``log T(g <- f) / T(f <- g) = beta V(f) - beta V(g)`` exactly on every edge.

    Examples
    --------
    >>> chain = reversible_chain(50, degree=4, sigma=1.0, seed=1)
    >>> chain.n_states, chain.n_transitions
    (50, 200)
    """
    return _build(n_states, degree, sigma, escape, 0.0, seed, "reversible")


def driven_chain(
    n_states: int,
    degree: float = 4.0,
    sigma: float = 1.0,
    escape: float = 0.1,
    drive: float = 1.0,
    seed: SeedLike = None,
) -> SyntheticChain:
    """A chain that violates detailed balance by a non-conservative drive of tunable strength.

    The reversible chain of :func:`reversible_chain` (same arguments, same seed: same graph
    and potential) with ``T(g <- f)`` multiplied by ``exp(drive/2 * A[g, f])``, where
    ``A[g, f] = sign(r(g) - r(f)) = -A[f, g]`` for a random ranking ``r`` of the states.
    Columns whose sum would exceed ``1 - escape`` are rescaled by ``c(f) <= 1``. Then

        ``log T(g <- f) / T(f <- g) = U(f) - U(g) + drive * A[g, f]``

    with ``U = beta V + log c`` (stored as ``potential``), and the log-ratios summed around
    any triangle (the Kolmogorov cycle affinity) are ``+-drive``.

    Parameters
    ----------
    drive : float
        Strength ``>= 0`` of the drive, in units of ``1/beta``; ``drive=0`` gives exactly
        the reversible chain.
    n_states, degree, sigma, escape, seed
        As for :func:`reversible_chain`.

    Returns
    -------
    SyntheticChain
    """
    return _build(n_states, degree, sigma, escape, drive, seed, "driven")


def popularity_chain(
    n_states: int,
    sigma: float = 1.0,
    escape: float = 0.1,
    seed: SeedLike = None,
) -> SyntheticChain:
    """A kernel whose reply ignores the prompt: ``T(g <- f) = (1 - escape) p(g)``, ``g != f``.

    The popularity-only control of the model hierarchy (:mod:`dbnb.hierarchy`). It obeys
    detailed balance exactly, ``T(g <- f) / T(f <- g) = p(g) / p(f)``, with
    ``beta V = -log p``, although nothing about the prompt is learned: a test of detailed
    balance alone cannot tell it from an agent that has a potential.

    Parameters
    ----------
    n_states : int
        Number of states, ``>= 2``; every pair is connected.
    sigma : float
        Spread of ``log p``: ``p ∝ exp(sigma z)``, ``z`` standard normal.
    escape : float
        In ``[0, 1)``: the reply mass not spread over the other states is at least this (the
        self-reply ``p(f)`` is an escape too).
    seed : int, numpy.random.Generator or None

    Returns
    -------
    SyntheticChain
        ``potential = -log p``.

    Examples
    --------
    >>> chain = popularity_chain(5, seed=0)
    >>> chain.n_transitions
    20
    """
    n = _check_int(n_states, "n_states", 2)
    sigma = _check_real(sigma, "sigma", low=0.0)
    escape = _check_real(escape, "escape", low=0.0, high=1.0, include_high=False)
    rng = np.random.default_rng(seed)
    logp = sigma * rng.standard_normal(n)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    t = np.tile(((1.0 - escape) * p)[:, None], (1, n))
    np.fill_diagonal(t, 0.0)
    return SyntheticChain(
        states=_labels(n), matrix=sp.csc_array(t), potential=-np.log(p),
        description=f"popularity-only kernel T(g<-f) = p(g): {n} states, sigma={sigma:g}, "
        f"escape>={escape:g}, seed={seed!r}",
    )


# ---------------------------------------------------------------------------- sampling
def _metadata(chain: SyntheticChain, idx: np.ndarray) -> pd.DataFrame:
    labels = [chain.states[i] for i in idx]
    meta = pd.DataFrame(index=pd.Index(labels, name="state"))
    if chain.potential is not None:
        meta["beta_V_true"] = chain.potential[idx]
    return meta


def sample_fixed_design(
    chain: SyntheticChain,
    calls_per_state: int | np.ndarray,
    seed: SeedLike = None,
) -> TransitionCounts:
    """Make ``calls_per_state`` calls from every state; record every reply and escape.

    Parameters
    ----------
    chain : SyntheticChain
    calls_per_state : int or (n_states,) array of int
        ``N0(f)``, the calls made from each state (``>= 0``).
    seed : int, numpy.random.Generator or None

    Returns
    -------
    TransitionCounts
        Over all states of the chain, with ``calls = N0`` (``calls_kind="exact"``),
        ``escapes`` and a ``beta_V_true`` metadata column when the potential is known.
        Outcomes of the calls from each state are one multinomial draw over its targets and
        the escape.
    """
    if not isinstance(chain, SyntheticChain):
        raise TypeError(f"chain must be a SyntheticChain, got {type(chain).__name__}")
    n = chain.n_states
    calls = np.asarray(calls_per_state)
    if calls.ndim == 0:
        calls = np.full(n, calls)
    if calls.shape != (n,) or not np.issubdtype(calls.dtype, np.integer) or (calls < 0).any():
        raise ValueError(
            f"calls_per_state must be an integer >= 0 or {n} of them, got {calls_per_state!r:.80}"
        )
    calls = calls.astype(np.int64)
    rng = np.random.default_rng(seed)
    m = chain.matrix  # csc: column f holds its targets
    outdeg = np.diff(m.indptr)
    k = int(outdeg.max()) if n else 0
    escape = chain.escape_probability()
    if n * (k + 1) <= _MAX_DENSE_OUTCOMES:
        # One vectorised multinomial over a padded (state, outcome) table; last = escape.
        pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], outdeg)
        pvals = np.zeros((n, k + 1))
        pvals[np.repeat(np.arange(n), outdeg), pos] = m.data
        pvals[:, k] = escape
        pvals /= np.maximum(pvals.sum(axis=1, keepdims=True), 1.0)  # guard rounding > 1
        draws = rng.multinomial(calls, pvals)
        data = draws[np.repeat(np.arange(n), outdeg), pos]
        n_escape = draws[:, k]
    else:  # a hub makes the padded table too big: one multinomial per state
        data = np.empty(m.nnz, dtype=np.int64)
        n_escape = np.empty(n, dtype=np.int64)
        for f in range(n):
            lo, hi = m.indptr[f], m.indptr[f + 1]
            p = np.append(m.data[lo:hi], escape[f])
            d = rng.multinomial(calls[f], p / max(p.sum(), 1.0))
            data[lo:hi] = d[:-1]
            n_escape[f] = d[-1]
    counts = sp.csc_array((data, m.indices.copy(), m.indptr.copy()), shape=(n, n))
    return TransitionCounts(
        states=chain.states,
        matrix=counts,
        calls=calls,
        calls_kind="exact",
        escapes=n_escape,
        metadata=_metadata(chain, np.arange(n)),
        source=f"fixed design, {int(calls.sum())} calls: {chain.description}",
    )


def sample_letter_schedule(
    chain: SyntheticChain,
    n_calls: int,
    start: int | str = 0,
    seed: SeedLike = None,
) -> TransitionCounts:
    """The Letter's design: each call picks its prompt uniformly among the states found so far.

    The search starts from ``start`` (the only state found at first); a reply that is a new
    state adds it to the pool. Every call is recorded, escapes included, so ``N0`` is exact.

    Parameters
    ----------
    chain : SyntheticChain
    n_calls : int
        Total number of calls, ``>= 1``.
    start : int or str
        Index or label of the first state (the Letter's BUZZY).
    seed : int, numpy.random.Generator or None

    Returns
    -------
    TransitionCounts
        Over the states found, in order of discovery (``metadata["first_seen"]``, the call
        index at which a state was found, 0 for ``start``), with ``calls`` (exact),
        ``escapes`` and ``beta_V_true`` when the potential is known.
    """
    if not isinstance(chain, SyntheticChain):
        raise TypeError(f"chain must be a SyntheticChain, got {type(chain).__name__}")
    n_calls = _check_int(n_calls, "n_calls", 1)
    n = chain.n_states
    if isinstance(start, str):
        if start not in chain.states:
            raise ValueError(f"start state {start!r} is not a state of the chain")
        start_idx = chain.states.index(start)
    else:
        start_idx = _check_int(start, "start", 0)
        if start_idx >= n:
            raise ValueError(f"start must be < n_states = {n}, got {start!r}")
    rng = np.random.default_rng(seed)
    m = chain.matrix
    # Global cumulative table: column f occupies [indptr[f], indptr[f+1]) and its cumulative
    # probabilities are offset by f, so one bisect over the whole list finds the outcome.
    cols = np.repeat(np.arange(n), np.diff(m.indptr))
    cum = np.zeros(m.nnz)
    if m.nnz:
        cs = np.cumsum(m.data)
        starts = np.concatenate([[0.0], cs])[m.indptr[:-1]]
        cum = cs - starts[cols] + cols
    cum_list = cum.tolist()
    indptr = m.indptr.tolist()
    target_of = m.indices.tolist()
    u_prompt = iter(rng.random(n_calls).tolist())
    u_reply = rng.random(n_calls).tolist()
    schedule = letter_schedule(start_idx, n_calls, pick=lambda m: int(next(u_prompt) * m))

    first_seen = {start_idx: 0}
    sources = [0] * n_calls
    targets = [-1] * n_calls  # -1: escape
    bisect_right = bisect.bisect_right
    reached = None
    for k in range(n_calls):
        f, _ = schedule.send(reached)
        reached = None
        sources[k] = f
        lo, hi = indptr[f], indptr[f + 1]
        j = bisect_right(cum_list, u_reply[k] + f, lo, hi)
        if j < hi:
            g = target_of[j]
            targets[k] = g
            if g not in first_seen:
                first_seen[g] = k + 1
                reached = (g,)

    order = np.array(list(first_seen), dtype=np.int64)  # discovery order
    local = np.full(n, -1, dtype=np.int64)
    local[order] = np.arange(order.size)
    src = local[np.array(sources, dtype=np.int64)]
    tgt_global = np.array(targets, dtype=np.int64)
    is_escape = tgt_global < 0
    nf = order.size
    counts = sp.csr_array(
        (np.ones(int((~is_escape).sum()), dtype=np.int64),
         (local[tgt_global[~is_escape]], src[~is_escape])),
        shape=(nf, nf),
    )
    meta = _metadata(chain, order)
    meta.insert(0, "first_seen", [first_seen[int(i)] for i in order])
    return TransitionCounts(
        states=tuple(chain.states[i] for i in order),
        matrix=counts,
        calls=np.bincount(src, minlength=nf),
        calls_kind="exact",
        escapes=np.bincount(src[is_escape], minlength=nf),
        metadata=meta,
        source=f"Letter schedule, {n_calls} calls from {chain.states[start_idx]}: "
        f"{chain.description}",
    )


def _is_connected(chain: SyntheticChain) -> bool:
    """Whether the chain's transition graph is strongly connected (used in tests)."""
    n, _ = csgraph.connected_components(sp.csr_matrix(chain.matrix), directed=True,
                                        connection="strong")
    return n == 1
