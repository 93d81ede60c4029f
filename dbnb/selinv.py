r"""Selected inversion: the entries of ``A^-1`` on the sparsity pattern of a sparse SPD ``A``.

The standard errors of a potential fit are ``diag(I^-1)`` and its leverages are the
effective resistances ``R_ij = (I^-1)_ii + (I^-1)_jj - 2 (I^-1)_ij`` of the pairs, with ``I``
a grounded weighted graph Laplacian. Both need ``A^-1`` only where ``A`` is non-zero, and
that part can be had without forming the whole inverse: the Takahashi recurrence
(Takahashi, Fagan & Chen 1973; Erisman & Tinney 1975) computes it from a sparse factor, and
needs nothing outside the factor's pattern. SciPy has no sparse Cholesky, so
:func:`selected_inverse` uses the block factorisation by levels of
:mod:`dbnb.elimination`, each a block whose diagonal part is diagonal:

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

Exact up to rounding (relative 4e-12 against a dense inverse on the Letter-size graph of
``benchmarks/bench_likelihood.py``, in 0.26 s against the dense 8.5 s on one loaded core).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .elimination import PIVOT_TOL, Elimination, NotPositiveDefinite, csr_pattern
from .newton import ConvergenceError

__all__ = ["inverse_diagonal", "selected_inverse"]

#: Largest degree (in the current Schur complement) of a state eliminated by a level.
MAX_DEGREE = 32

#: Largest remaining matrix inverted densely (``8 s^2`` bytes: 500 MiB at 8,000 states).
DENSE_MAX = 8000

#: Below this many states the elimination stops and the rest is inverted densely.
SMALL = 128


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


def _rows(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


def _dense_inverse(core: sp.csr_array, scale: np.ndarray) -> np.ndarray:
    """``core^-1`` on the pattern of ``core`` (aligned with its data): Cholesky, then LAPACK
    ``dpotri`` (the lower triangle of the inverse)."""
    n = core.shape[0]
    try:
        c = sla.cholesky(core.toarray(), lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError(f"the matrix ({n} states after elimination) is not positive "
                               f"definite: {exc}") from exc
    piv = np.diagonal(c) ** 2
    if np.any(piv <= PIVOT_TOL * scale):
        raise ConvergenceError(f"the matrix ({n} states after elimination) is not positive "
                               "definite: a pivot is zero to rounding")
    z, info = sla.lapack.dpotri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise ConvergenceError(f"dpotri failed (LAPACK info={info}, n={n})")
    row, col = _rows(core.indptr), core.indices
    return z[np.maximum(row, col), np.minimum(row, col)]


def _sparse_inverse(core: sp.csr_array, block: int = 512) -> np.ndarray:
    """``core^-1`` on the pattern of ``core`` from one sparse LU and blocked solves."""
    n = core.shape[0]
    try:
        lu = spla.splu(sp.csc_matrix(core), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as exc:  # an exactly singular factor
        raise ConvergenceError(f"the matrix ({n} states after elimination) is not positive "
                               f"definite: {exc}") from exc
    row, col = _rows(core.indptr), core.indices
    vals = np.empty(col.size)
    for start in range(0, n, block):
        k = min(block, n - start)
        e = np.zeros((n, k))
        e[np.arange(start, start + k), np.arange(k)] = 1.0
        x = lu.solve(e)
        here = (col >= start) & (col < start + k)
        vals[here] = x[row[here], col[here] - start]
    if not np.all(np.isfinite(vals)):
        raise ConvergenceError(f"the sparse LU of the remaining {n} states gave non-finite "
                               "values")
    return vals


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
    # the pattern of A with its diagonal (explicit zeros kept: the pattern is structural)
    coo = s.tocoo()
    ii = np.arange(n)
    indptr, indices, slot = csr_pattern(np.concatenate([coo.row, ii]),
                                        np.concatenate([coo.col, ii]), n)
    data = np.bincount(slot, np.concatenate([coo.data, np.zeros(n)]), minlength=indices.size)
    if n == 0:
        return sp.csr_array((n, n))
    elim = Elimination.build(indptr, indices, max_degree=int(max_degree), min_core=SMALL)
    try:
        fac = elim.factor(data)
    except NotPositiveDefinite as exc:
        raise ConvergenceError(str(exc)) from exc
    if elim.n_core == 0:
        z = np.zeros(0)
    elif elim.n_core <= dense_max:
        z = _dense_inverse(fac.core, fac.scale)
    else:
        z = _sparse_inverse(fac.core)
    for lev, d, b in zip(reversed(elim.levels), reversed(fac.d), reversed(fac.b), strict=True):
        z = _back_substitute(lev, d, b, z)
    return sp.csr_array((z, indices, indptr), shape=(n, n))


def _back_substitute(lev, d: np.ndarray, b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``S_l^-1`` on the pattern of level ``l`` from ``z``, ``S_{l+1}^-1`` on the next
    pattern (step 3 of the module docstring); both aligned with their levels' data."""
    n_rr = lev.rr_pos.size
    zpq = z[lev.slot[n_rr:]]  # Z[col_p, col_q] for every pair of B entries in one row
    y = -np.bincount(lev.p, b[lev.q] * zpq, minlength=b.size) / d[lev.b_row]
    w = (1.0 - np.bincount(lev.b_row, b * y, minlength=d.size)) / d
    out = np.empty(lev.nnz)
    out[lev.rr_pos] = z[lev.slot[:n_rr]]
    out[lev.b_pos] = y
    out[lev.b_pos_t] = y
    out[lev.d_pos] = w
    return out


def inverse_diagonal(a, *, max_degree: int = MAX_DEGREE, dense_max: int = DENSE_MAX
                     ) -> np.ndarray:
    """``diag(A^-1)`` of a sparse SPD matrix, by :func:`selected_inverse`."""
    return selected_inverse(a, max_degree=max_degree, dense_max=dense_max).diagonal()
