r"""Exact elimination of low-degree states: a sparse block factorisation by levels.

The Hessians and informations of the potential fits are grounded weighted graph Laplacians
``A`` on graphs where most states have few neighbours. At each level an independent set
``K`` of states of degree at most ``max_degree`` is eliminated (the states whose key, degree
plus a quasi-random fraction, is smaller than every neighbour's):

.. math::

    A_{l} = \begin{pmatrix} D & B \\ B^T & A_{RR} \end{pmatrix}, \qquad
    A_{l+1} = A_{RR} - B^T D^{-1} B ,

with ``D = diag A_KK`` diagonal because ``K`` is independent. The Schur complement of a
Laplacian is a Laplacian, so every level is SPD and needs no pivoting. The elimination
depends only on the sparsity pattern: :class:`Elimination` computes it once
(:meth:`Elimination.build`) and every matrix with that pattern is factored by a few gathers
and one ``bincount`` per level (:meth:`Elimination.factor`), which is what a Newton iteration
on a fixed graph needs. Two uses:

* :class:`Factor.solve`: forward-reduce the right-hand side, solve the remaining ``core``
  system (sparse LU when small, Jacobi-preconditioned conjugate gradients beyond), and
  back-substitute ``x_K = D^{-1} (b_K - B x_R)``. The back-substitution is exact, so the
  residual of the full system equals that of the core system.
* :func:`dbnb.selinv.selected_inverse`: the entries of ``A^-1`` on the pattern of ``A``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Elimination", "Factor", "NotPositiveDefinite", "csr_pattern"]

_PHI = 0.6180339887498949  # golden-ratio fraction: quasi-random tie-breaks, no RNG state

#: A pivot smaller than this times the state's diagonal in ``A`` is taken as zero: the matrix
#: is singular to rounding (an ungrounded Laplacian gives about ``1e-16``).
PIVOT_TOL = 64 * np.finfo(float).eps


class NotPositiveDefinite(ArithmeticError):
    """A pivot of the elimination is not positive: the matrix is not SPD."""


def _row_pairs(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, p, q)`` for a CSR pattern: the row of every stored entry, and every ordered pair
    ``(p, q)`` of entry positions in the same row (``sum_k deg(k)^2`` pairs)."""
    per_row = np.diff(indptr)
    row = np.repeat(np.arange(per_row.size), per_row)
    cnt = per_row[row]
    p = np.repeat(np.arange(row.size), cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    q = indptr[row[p]] + (np.arange(p.size) - first)
    return row, p, q


def csr_pattern(rows: np.ndarray, cols: np.ndarray, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted CSR pattern ``(indptr, indices)`` of the coordinates, and each coordinate's
    position in it (duplicates share one)."""
    keys, slot = np.unique(rows.astype(np.int64) * n + cols, return_inverse=True)
    r = keys // n
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
    return indptr.astype(np.int64), (keys % n).astype(np.int64), slot.ravel()


@dataclass(frozen=True)
class _Level:
    """One level of the symbolic elimination of an ``n``-state pattern with ``nnz`` entries.

    ``k`` the eliminated states (mask), ``d_pos`` the positions of their diagonal entries in
    the level's data; ``b_pos`` of the entries of ``B = A[K, R]`` (row-major), with
    ``b_row`` (index into ``K``) and ``b_col`` (index into the next level); ``b_pos_t`` the
    positions of the transposed entries ``A[R, K]``; ``p, q`` every pair of ``B`` entries in
    one row; ``rr_pos`` the entries with both states kept; ``slot`` where the kept entries,
    then the fill ``-b_p b_q / d``, land in the next level's data (``next_nnz`` entries)."""

    n: int
    nnz: int
    k: np.ndarray
    d_pos: np.ndarray
    b_pos: np.ndarray
    b_pos_t: np.ndarray
    b_row: np.ndarray
    b_col: np.ndarray
    p: np.ndarray
    q: np.ndarray
    rr_pos: np.ndarray
    slot: np.ndarray
    next_nnz: int


@dataclass(frozen=True)
class Elimination:
    """The symbolic elimination of a symmetric sparse pattern (see the module docstring).

    ``n`` states; ``levels``; the remaining ``core`` pattern (``core_indptr``,
    ``core_indices``, sorted CSR with its diagonal) of ``n_core`` states, and ``core_states``
    their indices among the ``n``.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    levels: tuple[_Level, ...]
    core_indptr: np.ndarray
    core_indices: np.ndarray
    core_states: np.ndarray
    diag_pos: np.ndarray

    @property
    def n_core(self) -> int:
        return int(self.core_indptr.size - 1)

    @classmethod
    def build(cls, indptr: np.ndarray, indices: np.ndarray, *, max_degree: int,
              min_core: int = 0) -> Elimination:
        """Eliminate levels of the pattern (sorted CSR ``indptr, indices`` of a symmetric
        matrix, diagonal included) until no state has degree ``<= max_degree`` or at most
        ``min_core`` states are left."""
        n = int(indptr.size - 1)
        ip, ix = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
        states = np.arange(n)
        levels = []
        while ip.size - 1 > min_core:
            lev, ip_next, ix_next = _level(ip, ix, max_degree)
            if lev is None:
                break
            levels.append(lev)
            states = states[~lev.k]
            ip, ix = ip_next, ix_next
        ip0, ix0 = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
        return cls(n=n, indptr=ip0, indices=ix0, levels=tuple(levels), core_indptr=ip,
                   core_indices=ix, core_states=states, diag_pos=_diag_pos(ip0, ix0))

    def factor(self, data: np.ndarray) -> Factor:
        """The numeric elimination of the matrix with this pattern and values ``data``
        (aligned with ``indices``). Raises :class:`NotPositiveDefinite` at a pivot ``<=
        PIVOT_TOL`` times the state's diagonal."""
        data = np.asarray(data, dtype=float)
        scale = np.abs(data[self.diag_pos])
        ds, bs = [], []
        for lev in self.levels:
            d = data[lev.d_pos]
            _check_pivots(d, scale[lev.k])
            b = data[lev.b_pos]
            ds.append(d)
            bs.append(b)
            fill = -b[lev.p] * b[lev.q] / d[lev.b_row[lev.p]]
            data = np.bincount(lev.slot, np.concatenate([data[lev.rr_pos], fill]),
                               minlength=lev.next_nnz)
            scale = scale[~lev.k]
        core = sp.csr_array((data, self.core_indices, self.core_indptr),
                            shape=(self.n_core, self.n_core))
        return Factor(self, tuple(ds), tuple(bs), core, scale)


def _diag_pos(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    row = np.repeat(np.arange(n), np.diff(indptr))
    pos = np.flatnonzero(row == indices)
    if pos.size != n:
        raise ValueError("the pattern must store every diagonal entry")
    return pos


def _check_pivots(d: np.ndarray, scale: np.ndarray) -> None:
    bad = ~(d > PIVOT_TOL * scale) | ~np.isfinite(d)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise NotPositiveDefinite(f"the matrix is not positive definite: a pivot {d[k]:.3g} "
                                  f"against its diagonal {scale[k]:.3g}")


def _level(ip: np.ndarray, ix: np.ndarray, max_degree: int):
    """One symbolic level of a sorted CSR pattern, or ``(None, ip, ix)`` if no state has
    degree ``<= max_degree``."""
    n = ip.size - 1
    row = np.repeat(np.arange(n), np.diff(ip))
    off = row != ix
    deg = np.bincount(row[off], minlength=n)
    cand = deg <= max_degree
    if not cand.any():
        return None, ip, ix
    key = np.where(cand, deg + (np.arange(n) * _PHI) % 1.0, np.inf)
    low = np.full(n, np.inf)
    np.minimum.at(low, row[off], key[ix[off]])
    k = cand & (key < low)  # local minima of the key: an independent set
    rpos = np.cumsum(~k) - 1
    kpos = np.cumsum(k) - 1
    kr, kc = k[row], k[ix]
    d_pos = np.flatnonzero(kr & ~off)
    b_pos = np.flatnonzero(kr & ~kc)  # row-major: sorted by K row, then column
    b_row = kpos[row[b_pos]]
    b_col = rpos[ix[b_pos]]
    # positions of the transposed entries (row-major order is the order of row * n + col)
    keys = row * n + ix
    b_pos_t = np.searchsorted(keys, ix[b_pos] * n + row[b_pos])
    b_indptr = np.concatenate([[0], np.cumsum(np.bincount(b_row, minlength=int(k.sum())))])
    _, p, q = _row_pairs(b_indptr)
    rr_pos = np.flatnonzero(~kr & ~kc)
    nr = int(n - k.sum())
    ip_next, ix_next, slot = csr_pattern(
        np.concatenate([rpos[row[rr_pos]], b_col[p]]),
        np.concatenate([rpos[ix[rr_pos]], b_col[q]]), nr)
    lev = _Level(n=n, nnz=int(ix.size), k=k, d_pos=d_pos, b_pos=b_pos, b_pos_t=b_pos_t,
                 b_row=b_row, b_col=b_col, p=p, q=q, rr_pos=rr_pos, slot=slot,
                 next_nnz=int(ix_next.size))
    return lev, ip_next, ix_next


#: Core systems up to this size are solved by sparse LU; larger ones by conjugate gradients.
CORE_DIRECT_MAX = 1000


@dataclass(frozen=True)
class Factor:
    """A numeric elimination (:meth:`Elimination.factor`): the pivots ``d`` and the ``B``
    values per level, the ``core`` matrix, and ``scale`` (the core states' diagonals in
    ``A``)."""

    elimination: Elimination
    d: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    core: sp.csr_array
    scale: np.ndarray

    def solve(self, rhs: np.ndarray, rtol: float = 1e-12, maxiter: int | None = None
              ) -> tuple[np.ndarray, bool]:
        """``x`` with ``|A x - rhs| <= rtol |rhs|`` (2-norm), and whether that was reached.

        Forward reduction, the core system (sparse LU up to :data:`CORE_DIRECT_MAX` states,
        else Jacobi-preconditioned conjugate gradients to the absolute residual ``rtol
        |rhs|``: the back-substitution is exact, so the core residual is the full one), then
        back-substitution.
        """
        e = self.elimination
        r = np.asarray(rhs, dtype=float)
        target = rtol * float(np.linalg.norm(r))
        kept = []
        for lev, d, b in zip(e.levels, self.d, self.b, strict=True):
            rk = r[lev.k]
            rr = r[~lev.k]
            rr = rr - np.bincount(lev.b_col, b * (rk / d)[lev.b_row], minlength=rr.size)
            kept.append(rk)
            r = rr
        ok = True
        if r.size == 0:
            x = r
        elif r.size <= CORE_DIRECT_MAX:
            try:
                lu = spla.splu(sp.csc_matrix(self.core), permc_spec="MMD_AT_PLUS_A")
            except RuntimeError as exc:  # an exactly singular factor
                raise NotPositiveDefinite(f"the core system is singular: {exc}") from exc
            x = lu.solve(r)
        else:
            x, ok = _pcg(self.core, r, target, maxiter or 20 * r.size)
        for lev, d, b, rk in zip(reversed(e.levels), reversed(self.d), reversed(self.b),
                                 reversed(kept), strict=True):
            xk = (rk - np.bincount(lev.b_row, b * x[lev.b_col], minlength=rk.size)) / d
            full = np.empty(lev.n)
            full[lev.k] = xk
            full[~lev.k] = x
            x = full
        return x, ok


def _pcg(a: sp.csr_array, b: np.ndarray, atol: float, maxiter: int
         ) -> tuple[np.ndarray, bool]:
    """Jacobi-preconditioned conjugate gradients from 0 to ``|a x - b| <= atol``."""
    minv = 1.0 / a.diagonal()
    x = np.zeros_like(b)
    r = b.copy()
    if float(np.linalg.norm(r)) <= atol:
        return x, True
    z = minv * r
    p = z.copy()
    rz = float(r @ z)
    for _ in range(maxiter):
        q = a @ p
        pq = float(p @ q)
        if not pq > 0:
            return x, False
        alpha = rz / pq
        x += alpha * p
        r -= alpha * q
        if float(np.linalg.norm(r)) <= atol:
            return x, True
        z = minv * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x, False
