r"""Selected inversion: the entries of ``A^-1`` on the sparsity pattern of a sparse SPD ``A``.

The standard errors of a potential fit are ``diag(I^-1)`` and its leverages are the
effective resistances ``R_ij = (I^-1)_ii + (I^-1)_jj - 2 (I^-1)_ij`` of the pairs, with ``I``
a grounded weighted graph Laplacian. Both need ``A^-1`` only where ``A`` is non-zero, and
that part can be had without forming the whole inverse: the Takahashi recurrence
(Takahashi, Fagan & Chen 1973; Erisman & Tinney 1975) computes it from a sparse factor, and
needs nothing outside the factor's pattern. SciPy has no sparse Cholesky, so
:func:`selected_inverse` builds its own block factorisation by levels, each a block whose
diagonal part is diagonal:

1. **Eliminate.** At level ``l`` take an independent set ``K`` of states of degree at most
   ``max_degree`` in the current matrix ``S_l`` (the states whose key, degree plus a
   quasi-random fraction, is smaller than every neighbour's), and form the Schur complement

   .. math::

       S_{l+1} = S_{RR} - B^T D^{-1} B, \qquad D = \operatorname{diag} S_{KK},\;
       B = S_{KR},

   exactly (the fill joins each eliminated state's neighbours). A Laplacian's Schur
   complement is again a Laplacian, so every ``S_l`` is SPD and the elimination is stable.
   Stop when no state of low degree is left (on random pair graphs about a quarter of the
   states remain, and the remaining matrix is about a tenth full).
2. **Invert the rest densely**: Cholesky and ``dpotri`` (``2 s^3 / 3`` flops for ``s``
   states; beyond ``dense_max`` states, one sparse LU and blocked solves instead).
3. **Back-substitute** level by level: with ``Z = S_{l+1}^{-1}`` known on the pattern of
   ``S_{l+1}``,

   .. math::

       (S_l^{-1})_{KR} = -D^{-1} B Z, \qquad
       (S_l^{-1})_{kk} = \frac{1}{d_k} - \frac{1}{d_k} \sum_r B_{kr} (S_l^{-1})_{kr},

   and the entries needed at state ``k`` are ``Z`` on ``N(k) x N(k)``, inside the pattern
   of ``S_{l+1}`` because eliminating ``k`` joined its neighbours. Each level is a handful
   of vectorised gathers over ``sum_k deg(k)^2`` index pairs.

Exact up to rounding (relative 1e-11 against a dense inverse on the Letter-size graph of
``benchmarks/bench_likelihood.py``, in a twentieth of the dense time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .newton import ConvergenceError

__all__ = ["inverse_diagonal", "selected_inverse"]

#: Largest degree (in the current Schur complement) of a state eliminated by a level.
MAX_DEGREE = 48

#: Largest remaining matrix inverted densely (``8 s^2`` bytes: 500 MiB at 8,000 states).
DENSE_MAX = 8000

#: Below this many states the elimination stops and the rest is inverted densely.
SMALL = 128

#: A pivot smaller than this times the state's diagonal in ``A`` is taken as zero: the matrix
#: is singular to rounding (an ungrounded Laplacian gives about ``1e-16``).
PIVOT_TOL = 64 * np.finfo(float).eps

_PHI = 0.6180339887498949  # golden-ratio fraction: quasi-random tie-breaks, no RNG state


@dataclass(frozen=True)
class _Level:
    """One elimination: ``S`` the matrix before it (CSR, sorted), ``k`` the eliminated mask,
    ``rpos`` each kept state's index in the next matrix, ``b`` = ``S[K, R]`` (CSR), ``d`` =
    ``diag S[K, K]``."""

    s: sp.csr_array
    k: np.ndarray
    rpos: np.ndarray
    b: sp.csr_array
    d: np.ndarray


def _check(a) -> sp.csr_array:
    if not sp.issparse(a):
        raise ValueError(f"a must be a scipy sparse matrix, got {type(a).__name__}")
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be square, got shape {a.shape}")
    s = sp.csr_array(a, dtype=float)
    s.sum_duplicates()
    s.sort_indices()
    if s.nnz and not np.all(np.isfinite(s.data)):
        raise ValueError("a has non-finite entries")
    asym = abs(s - s.T)
    scale = float(abs(s).max()) if s.nnz else 0.0
    if asym.nnz and float(asym.max()) > 1e-12 * scale:
        raise ValueError(f"a must be symmetric (largest |a - a^T| = {float(asym.max()):.3g}, "
                         f"largest |a| = {scale:.3g})")
    return s


def _row_pairs(b: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, p, q)``: the row of every stored entry of ``b``, and every ordered pair
    ``(p, q)`` of entry positions in the same row (``sum_k deg(k)^2`` pairs)."""
    per_row = np.diff(b.indptr)
    brow = np.repeat(np.arange(b.shape[0]), per_row)
    cnt = per_row[brow]
    p = np.repeat(np.arange(b.nnz), cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    q = b.indptr[brow[p]] + (np.arange(p.size) - first)
    return brow, p, q


def _eliminate(s: sp.csr_array, max_degree: int, scale: np.ndarray
               ) -> tuple[_Level, sp.csr_array] | None:
    """One level (step 1 of the module docstring), or None if no state qualifies.
    ``scale``: each state's diagonal in ``A``, for the pivot test."""
    n = s.shape[0]
    deg = np.diff(s.indptr)
    row = np.repeat(np.arange(n), deg)
    off = row != s.indices
    deg = np.bincount(row[off], minlength=n)
    cand = deg <= max_degree
    if not cand.any():
        return None
    key = np.where(cand, deg + (np.arange(n) * _PHI) % 1.0, np.inf)
    low = np.full(n, np.inf)
    np.minimum.at(low, row[off], key[s.indices[off]])
    k = cand & (key < low)  # local minima of the key: an independent set
    r = ~k
    diag = s.diagonal()
    d = diag[k]
    _check_pivots(d, scale[k])
    b = sp.csr_array(s[k][:, r])
    b.sort_indices()
    srr = s[r][:, r].tocoo()
    # the fill B^T D^-1 B entry by entry, from coordinates: the pattern is structural (a
    # sparse product would drop entries that happen to be 0, and the back-substitution
    # reads every neighbour pair)
    brow, p, q = _row_pairs(b)
    nr = int(r.sum())
    nxt = sp.csr_array((np.concatenate([srr.data, -b.data[p] * b.data[q] / d[brow[p]]]),
                        (np.concatenate([srr.row, b.indices[p]]),
                         np.concatenate([srr.col, b.indices[q]]))), shape=(nr, nr))
    nxt.sum_duplicates()
    nxt.sort_indices()
    return _Level(s=s, k=k, rpos=np.cumsum(r) - 1, b=b, d=d), nxt


def _check_pivots(d: np.ndarray, scale: np.ndarray) -> None:
    bad = ~(d > PIVOT_TOL * scale) | ~np.isfinite(d)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ConvergenceError(f"the matrix is not positive definite: a pivot {d[k]:.3g} "
                               f"against its diagonal {scale[k]:.3g} in A")


def _dense_inverse(s: sp.csr_array, scale: np.ndarray) -> np.ndarray:
    """The lower triangle of ``s^-1`` (Cholesky, then LAPACK ``dpotri``)."""
    n = s.shape[0]
    try:
        c = sla.cholesky(s.toarray(), lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError(f"the matrix ({n} states after elimination) is not positive "
                               f"definite: {exc}") from exc
    _check_pivots(np.diagonal(c) ** 2, scale)
    z, info = sla.lapack.dpotri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise ConvergenceError(f"dpotri failed (LAPACK info={info}, n={n})")
    return z


def _sparse_inverse_on_pattern(s: sp.csr_array, block: int = 512) -> sp.csr_array:
    """``s^-1`` on the pattern of ``s`` from one sparse LU and blocked solves (large ``s``)."""
    n = s.shape[0]
    try:
        lu = spla.splu(sp.csc_matrix(s), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as exc:  # an exactly singular factor
        raise ConvergenceError(f"the matrix ({n} states after elimination) is not positive "
                               f"definite: {exc}") from exc
    coo = s.tocoo()
    vals = np.empty(coo.nnz)
    for start in range(0, n, block):
        k = min(block, n - start)
        e = np.zeros((n, k))
        e[np.arange(start, start + k), np.arange(k)] = 1.0
        x = lu.solve(e)
        here = (coo.col >= start) & (coo.col < start + k)
        vals[here] = x[coo.row[here], coo.col[here] - start]
    if not np.all(np.isfinite(vals)):
        raise ConvergenceError(f"the sparse LU of the remaining {n} states gave non-finite "
                               "values")
    return _on_pattern(s, vals)


def _on_pattern(s: sp.csr_array, vals: np.ndarray) -> sp.csr_array:
    """A CSR array with the pattern of ``s`` (sorted) and the data ``vals``."""
    return sp.csr_array((vals, s.indices.copy(), s.indptr.copy()), shape=s.shape)


def _gather(z: np.ndarray | sp.csr_array, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``z[i, j]`` elementwise: ``z`` a dense lower triangle or a CSR array holding every
    requested entry in its pattern."""
    if isinstance(z, np.ndarray):
        return z[np.maximum(i, j), np.minimum(i, j)]
    return np.asarray(z[i, j]).ravel()


def _back_substitute(lev: _Level, z: np.ndarray | sp.csr_array) -> sp.csr_array:
    """``S_l^-1`` on the pattern of ``S_l`` from ``z = S_{l+1}^-1`` (step 3)."""
    b, d = lev.b, lev.d
    nk = b.shape[0]
    brow, p, q = _row_pairs(b)
    zpq = _gather(z, b.indices[q], b.indices[p])
    y = -np.bincount(p, b.data[q] * zpq, minlength=b.nnz) / d[brow]  # (S_l^-1)_{k r}
    w = (1.0 - np.bincount(brow, b.data * y, minlength=nk)) / d        # (S_l^-1)_{k k}
    s = lev.s
    row = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
    col = s.indices
    kr, kc = lev.k[row], lev.k[col]
    kpos = np.cumsum(lev.k) - 1
    vals = np.empty(s.nnz)
    both = ~kr & ~kc
    vals[both] = _gather(z, lev.rpos[row[both]], lev.rpos[col[both]])
    yk = sp.csr_array((y, b.indices, b.indptr), shape=b.shape)
    m = kr & ~kc
    vals[m] = _gather(yk, kpos[row[m]], lev.rpos[col[m]])
    m = ~kr & kc
    vals[m] = _gather(yk, kpos[col[m]], lev.rpos[row[m]])
    m = kr & kc  # an independent set: only the diagonal
    vals[m] = w[kpos[row[m]]]
    return _on_pattern(s, vals)


def selected_inverse(a, *, max_degree: int = MAX_DEGREE,
                     dense_max: int = DENSE_MAX) -> sp.csr_array:
    r"""``A^-1`` on the sparsity pattern of ``A`` (and its diagonal), exactly.

    Parameters
    ----------
    a : scipy sparse matrix, (n, n)
        Symmetric positive definite, e.g. a grounded weighted graph Laplacian (the observed
        information of a potential fit). Entries stored as explicit zeros count as pattern.
    max_degree : int
        Largest degree of a state eliminated by a level (step 1 of the module docstring);
        larger values leave a smaller dense remainder at the cost of more fill.
    dense_max : int
        Largest remainder inverted densely; beyond, a sparse LU and blocked solves.

    Returns
    -------
    scipy.sparse.csr_array
        ``Z`` with ``Z[i, j] = (A^-1)_{ij}`` wherever ``A[i, j]`` is stored or ``i = j``
        (sorted indices; other entries are not stored).

    Raises
    ------
    ValueError
        ``a`` not sparse, not square, not finite or not symmetric.
    ConvergenceError
        ``a`` is not positive definite.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> a = sp.csr_array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    >>> selected_inverse(a).toarray().round(4)  # (A^-1)_{13} = 0.25 is not on the pattern
    array([[0.75, 0.5 , 0.  ],
           [0.5 , 1.  , 0.5 ],
           [0.  , 0.5 , 0.75]])
    """
    if isinstance(max_degree, bool) or not isinstance(max_degree, (int, np.integer)) \
            or max_degree < 0:
        raise ValueError(f"max_degree must be a non-negative int, got {max_degree!r}")
    s = _check(a)
    n = s.shape[0]
    coo = s.tocoo()
    ii = np.arange(n)
    s = sp.csr_array((np.concatenate([coo.data, np.zeros(n)]),
                      (np.concatenate([coo.row, ii]), np.concatenate([coo.col, ii]))),
                     shape=(n, n))
    s.sum_duplicates()
    s.sort_indices()  # the diagonal is in the pattern, even where A stores none
    scale = np.abs(s.diagonal())
    levels: list[_Level] = []
    while s.shape[0] > SMALL:
        step = _eliminate(s, int(max_degree), scale)
        if step is None:
            break
        levels.append(step[0])
        s = step[1]
        scale = scale[~step[0].k]
    z: np.ndarray | sp.csr_array
    if s.shape[0] == 0:
        z = np.zeros((0, 0))
    elif s.shape[0] <= dense_max:
        z = _dense_inverse(s, scale)
    else:
        z = _sparse_inverse_on_pattern(s)
    if not levels:
        if isinstance(z, np.ndarray):
            coo = s.tocoo()
            return _on_pattern(s, _gather(z, coo.row, coo.col))
        return z
    for lev in reversed(levels):
        z = _back_substitute(lev, z)
    return z


def inverse_diagonal(a, *, max_degree: int = MAX_DEGREE, dense_max: int = DENSE_MAX
                     ) -> np.ndarray:
    """``diag(A^-1)`` of a sparse SPD matrix, by :func:`selected_inverse`."""
    return selected_inverse(a, max_degree=max_degree, dense_max=dense_max).diagonal()
