"""One damped Newton solver, shared by every convex fit in dbnb.

The least-action fit (:func:`dbnb.potential.fit_potential`, Eq. 8) and the feature potential
(:func:`dbnb.feature_potential.feature_potential`, Supplement E) minimise convex sums of
violation terms. Both hand :func:`minimise` their objective, their derivatives and a linear
solver for the Newton system; the iteration, the line search and the convergence rule live
here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .elimination import Elimination, NotPositiveDefinite, csr_pattern

__all__ = ["ConvergenceError", "EdgeSystem", "NewtonResult", "minimise", "minimise_edges",
           "solve_spd", "DIRECT_SOLVE_MAX", "DENSE_SOLVE_MAX"]

log = logging.getLogger(__name__)

#: Largest sparse Newton system solved by LU; larger ones use preconditioned CG.
DIRECT_SOLVE_MAX = 2000


#: Largest edge-Newton system (:func:`minimise_edges`) always assembled as a dense array and
#: solved by Cholesky: below a few hundred unknowns building a sparse matrix and factorising it
#: costs more than the dense factorisation (the bootstraps refit thousands of such systems).
DENSE_SOLVE_MAX = 300
#: Up to this many unknowns a system is dense as well when its graph is: at least
#: :data:`DENSE_FILL` of the off-diagonal entries set, where sparse LU fills in anyway.
DENSE_FILL_MAX = 2000
DENSE_FILL = 0.05


class ConvergenceError(RuntimeError):
    """An iteration or a linear solve did not reach its tolerance."""


@dataclass(frozen=True)
class NewtonResult:
    """Where :func:`minimise` stopped.

    ``x`` the minimiser, ``iterations`` Newton steps taken, ``gradient_norm`` the largest
    relative gradient component there, ``converged`` whether it is ``<= tol``.
    """

    x: np.ndarray
    iterations: int
    gradient_norm: float
    converged: bool


def minimise(
    objective: Callable[[np.ndarray], float],
    derivatives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, object]],
    x0: np.ndarray,
    *,
    solve: Callable[[object, np.ndarray, float], np.ndarray],
    tol: float,
    max_iter: int,
    max_step: float | None = None,
) -> NewtonResult:
    """Minimise a smooth convex function by damped, inexact Newton steps.

    Parameters
    ----------
    objective : callable
        ``x -> f(x)``.
    derivatives : callable
        ``x -> (grad, grad_rel, hess)``: the gradient, the gradient relative to the magnitude
        of the terms that make up each component (the convergence measure, independent of
        scale), and the Hessian in whatever form ``solve`` takes.
    x0 : array
        Start.
    solve : callable
        ``(hess, rhs, rtol) -> step`` solving ``hess step = rhs`` to relative residual
        ``rtol`` (the forcing term: loose far from the minimum, tight near it).
    tol, max_iter
        Stop when ``max |grad_rel| <= tol``, or after ``max_iter`` steps.
    max_step : float, optional
        Largest change of any coordinate in one step (the step is scaled down to it). Logistic
        objectives need it: far from the minimum a full Newton step can carry a weakly
        determined coordinate into the flat, saturated region where the Hessian vanishes.

    Notes
    -----
    Backtracking (Armijo, factor 1/2) from the full step. At the rounding floor of the
    objective the Armijo test cannot tell a better point from a worse one; the full step is
    then taken if it lowers the relative gradient (the quadratic-convergence region).
    """
    x = np.asarray(x0, dtype=float).copy()
    obj = objective(x)
    gnorm = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        grad, grad_rel, hess = derivatives(x)
        gnorm = float(np.max(np.abs(grad_rel), initial=0.0))
        if gnorm <= tol:
            return NewtonResult(x, it - 1, gnorm, True)
        step = solve(hess, -grad, min(0.1, max(gnorm, 1e-12)))
        if max_step is not None:
            big = float(np.max(np.abs(step), initial=0.0))
            if big > max_step:
                step = step * (max_step / big)
        slope = float(np.dot(grad, step))
        if not slope < 0:  # numerical breakdown: steepest descent
            step, slope = -grad, -float(np.dot(grad, grad))
        t = 1.0
        while True:
            trial = x + t * step
            new = objective(trial)
            if new <= obj + 1e-4 * t * slope:
                break
            if t == 1.0 and abs(new - obj) <= 64 * np.finfo(float).eps * max(abs(obj), 1.0):
                if np.max(np.abs(derivatives(trial)[1]), initial=0.0) < gnorm:
                    break
            if t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        x, obj = trial, new
        log.debug("newton %d: obj %.17g gnorm %.3g step %.3g", it, obj, gnorm, t)
    gnorm = float(np.max(np.abs(derivatives(x)[1]), initial=0.0))
    return NewtonResult(x, it, gnorm, gnorm <= tol)


def solve_spd(a, b: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Solve the symmetric positive-definite system ``a x = b``; raise if it fails.

    Dense arrays: Cholesky, with a least-squares fallback for a singular matrix. Sparse: LU
    up to :data:`DIRECT_SOLVE_MAX` unknowns, Jacobi-preconditioned conjugate gradients to
    relative residual ``rtol`` beyond (fill-in makes LU slow on random graphs), and LU after
    all when conjugate gradients do not converge; the solvers' status is checked and a
    failure of both raises :class:`ConvergenceError`.
    """
    if not sp.issparse(a):
        try:
            factor = sla.cho_factor(a, lower=True, check_finite=False)
            x = sla.cho_solve(factor, b, check_finite=False)
            if np.all(np.isfinite(x)):
                return x
        except np.linalg.LinAlgError:
            pass
        return np.linalg.lstsq(a, b, rcond=None)[0]
    n = a.shape[0]
    if n <= DIRECT_SOLVE_MAX:
        try:
            x = spla.spsolve(a, b, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError as exc:  # singular factor
            raise ConvergenceError(f"sparse solve failed: {exc}") from exc
        if np.all(np.isfinite(x)):
            return x
        log.debug("direct solve gave non-finite values; trying conjugate gradients")
    d = a.diagonal()
    if (d <= 0).any():
        raise ConvergenceError("Newton system has a non-positive diagonal: the graph is broken")
    x, info = spla.cg(a, b, rtol=rtol, atol=0.0, maxiter=20 * n, M=sp.diags(1.0 / d))
    if info != 0:
        # an ill-conditioned system (weights spanning many decades): the direct solve
        log.debug("conjugate gradients stopped (info=%d, n=%d); solving directly", info, n)
        try:
            x = spla.spsolve(a, b, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError as exc:
            raise ConvergenceError(f"conjugate gradients did not converge (info={info}, "
                                   f"n={n}) and the direct solve failed: {exc}") from exc
        if not np.all(np.isfinite(x)):
            raise ConvergenceError(f"conjugate gradients did not converge (info={info}, n={n})"
                                   " and the direct solve gave non-finite values")
    return x


#: Largest degree of a state eliminated exactly before conjugate gradients
#: (:class:`EdgeSystem`): degree <= 4 leaves a core of about 40 % of the Letter-size graph,
#: with little fill, and takes the conjugate gradients from about 190 to 60 iterations.
ELIMINATE_DEGREE = 4


class EdgeSystem:
    """The Newton system of an edge objective on a fixed graph: the sparsity pattern of the
    Hessian (the weighted Laplacian of the edges ``f -> g`` restricted to ``free`` states),
    built once, and the symbolic elimination of its low-degree states
    (:class:`dbnb.elimination.Elimination`), built on first use.

    Pass one to :func:`minimise_edges` (``system=``) to reuse it across fits on the same
    graph, as the refits of Firth's penalty do.
    """

    def __init__(self, n: int, f: np.ndarray, g: np.ndarray, free: np.ndarray):
        self.n, self.f, self.g = int(n), np.asarray(f), np.asarray(g)
        self.free = np.asarray(free, dtype=bool)
        nf = int(self.free.sum())
        self.nf = nf
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[self.free] = np.arange(nf)
        self.ff = self.free[self.f] & self.free[self.g]
        ff = self.ff
        fp, gp = pos[self.f], pos[self.g]
        rows = np.concatenate([fp[ff], gp[ff], fp, gp])
        cols = np.concatenate([gp[ff], fp[ff], fp, gp])
        self.keep = np.concatenate([np.ones(2 * int(ff.sum()), bool), self.free[self.f],
                                    self.free[self.g]])
        self.rows, self.cols = rows[self.keep], cols[self.keep]
        self._elimination = None
        self._pattern = None

    def hessian_csc(self, d2: np.ndarray, alpha: float = 0.0) -> sp.csc_matrix:
        """The Hessian with edge curvatures ``d2`` (plus ``alpha`` on the diagonal), CSC."""
        ff = self.ff
        h = sp.csc_matrix((np.concatenate([-d2[ff], -d2[ff], d2, d2])[self.keep],
                           (self.rows, self.cols)), shape=(self.nf, self.nf))
        if alpha:
            h = h + alpha * sp.identity(self.nf, format="csc")
        return h

    def hessian_dense(self, d2: np.ndarray, alpha: float = 0.0) -> np.ndarray:
        """The Hessian with edge curvatures ``d2`` (plus ``alpha`` on the diagonal), dense."""
        ff, nf = self.ff, self.nf
        vals = np.concatenate([-d2[ff], -d2[ff], d2, d2])[self.keep]
        h = np.bincount(self.rows * nf + self.cols, vals, minlength=nf * nf).reshape(nf, nf)
        if alpha:
            h[np.diag_indices(nf)] += alpha
        return h

    def dense_by_default(self) -> bool:
        """Whether :func:`minimise_edges` assembles this system densely by default: up to
        :data:`DENSE_SOLVE_MAX` free states, or :data:`DENSE_FILL_MAX` when at least
        :data:`DENSE_FILL` of the pairs are edges."""
        nf = self.nf
        fill = 2 * int(self.ff.sum()) / max(nf * (nf - 1), 1)  # upper bound: edges may repeat
        return nf <= DENSE_SOLVE_MAX or (nf <= DENSE_FILL_MAX and fill >= DENSE_FILL)

    def pattern(self):
        """``(indptr, indices, slot)``: the sorted CSR pattern with its diagonal, and the
        position of each Hessian coordinate in it."""
        if self._pattern is None:
            ii = np.arange(self.nf)
            indptr, indices, slot = csr_pattern(np.concatenate([self.rows, ii]),
                                             np.concatenate([self.cols, ii]), self.nf)
            self._pattern = indptr, indices, slot[:self.rows.size]
        return self._pattern

    def hessian_data(self, d2: np.ndarray, alpha: float = 0.0) -> np.ndarray:
        """The Hessian's values on :meth:`pattern` (sorted CSR, diagonal stored), summed by
        ``bincount``."""
        indptr, indices, slot = self.pattern()
        ff = self.ff
        vals = np.concatenate([-d2[ff], -d2[ff], d2, d2])[self.keep]
        data = np.bincount(slot, vals, minlength=indices.size)
        if alpha:
            data[self.elimination().diag_pos] += alpha
        return data

    def csr(self, data: np.ndarray) -> sp.csr_array:
        """The matrix on :meth:`pattern` with values ``data``."""
        indptr, indices, _ = self.pattern()
        return sp.csr_array((data, indices, indptr), shape=(self.nf, self.nf))

    def elimination(self):
        """The symbolic elimination of states of degree <= :data:`ELIMINATE_DEGREE`."""
        if self._elimination is None:
            indptr, indices, _ = self.pattern()
            self._elimination = Elimination.build(indptr, indices,
                                                  max_degree=ELIMINATE_DEGREE)
        return self._elimination

    def solve(self, data: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
        """Solve ``H x = b`` to relative residual ``rtol`` (``H`` the Hessian with values
        ``data`` from :meth:`hessian_data`) by exact elimination and conjugate gradients on
        the core; :func:`solve_spd` if that fails."""
        try:
            x, ok = self.elimination().factor(data).solve(b, rtol)
        except NotPositiveDefinite as exc:
            log.debug("elimination failed (%s); solving without it", exc)
            ok = False
        if ok and np.all(np.isfinite(x)):
            return x
        return solve_spd(self.csr(data), b, rtol)


def minimise_edges(
    n: int,
    f: np.ndarray,
    g: np.ndarray,
    terms: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    free: np.ndarray,
    *,
    alpha: float = 0.0,
    tol: float,
    max_iter: int,
    v0: np.ndarray | None = None,
    max_step: float | None = None,
    eliminate: bool = False,
    system: EdgeSystem | None = None,
    dense: bool | None = None,
) -> tuple[np.ndarray, NewtonResult]:
    """Minimise ``sum_e phi_e(v_f - v_g) + alpha/2 |v|^2`` over ``v[free]`` (the rest 0).

    The shape of every potential fit on a graph: the least-action fit (``phi = T K``) and
    the likelihood fit (``phi`` the binomial deviance of a pair's split). The Hessian is the
    weighted Laplacian with weights ``phi''`` restricted to the free states, assembled on a
    fixed sparsity pattern and solved by :func:`solve_spd`.

    Parameters
    ----------
    n : int
        Number of states.
    f, g : int arrays
        The edges ``f -> g``; each term depends on ``x_e = v[f_e] - v[g_e]``.
    terms : callable
        ``x -> (phi, phi', phi'', magnitude)`` per edge; ``magnitude`` is the size of the
        pieces that make up ``phi'`` (the relative gradient divides by their sum per state).
    free : bool array
        The unknowns; the others are held at 0 (one per component fixes the constant).
    alpha : float
        Ridge ``alpha/2 |v|^2``.
    v0, max_step
        Start (default 0) and the step cap of :func:`minimise`.
    eliminate : bool
        Above :data:`DIRECT_SOLVE_MAX` free states, solve each Newton system by exact
        elimination of the states of degree <= :data:`ELIMINATE_DEGREE` and conjugate
        gradients on the rest (:meth:`EdgeSystem.solve`; the same step to the forcing
        tolerance, a few times faster on sparse graphs) instead of :func:`solve_spd`.
    system : EdgeSystem, optional
        The graph's Newton system, when the caller fits the same graph repeatedly (it must
        have been built from the same ``n, f, g, free``).
    dense : bool, optional
        Assemble the Hessian as a dense array and solve by Cholesky (default:
        :meth:`EdgeSystem.dense_by_default`, up to :data:`DENSE_SOLVE_MAX` free states, or
        :data:`DENSE_FILL_MAX` when at least :data:`DENSE_FILL` of the pairs are edges; the
        dense and sparse paths agree to rounding).

    Returns
    -------
    v : numpy.ndarray
        The minimiser over all states (0 where not free).
    result : NewtonResult
    """
    if system is None:
        system = EdgeSystem(n, f, g, free)
    elif system.n != n or system.f.shape != np.shape(f) or system.nf != int(free.sum()):
        raise ValueError(f"system was built for another graph ({system.n} states, "
                         f"{system.f.size} edges, {system.nf} free; here {n}, {np.size(f)}, "
                         f"{int(free.sum())})")
    nf = system.nf
    if dense is None:
        dense = system.dense_by_default()
    direct = dense or not eliminate or nf <= DIRECT_SOLVE_MAX

    def full(x):
        v = np.zeros(n)
        v[free] = x
        return v

    def objective(x):
        v = full(x)
        return float(np.sum(terms(v[f] - v[g])[0]) + 0.5 * alpha * np.dot(v, v))

    def derivatives(x):
        v = full(x)
        _, d1, d2, mag = terms(v[f] - v[g])
        grad = np.bincount(f, d1, minlength=n) - np.bincount(g, d1, minlength=n) + alpha * v
        scale = np.bincount(f, mag, minlength=n) + np.bincount(g, mag, minlength=n)
        rel = grad / (scale + alpha * np.abs(v) + np.finfo(float).tiny)
        if dense:
            hess = system.hessian_dense(d2, alpha)
        elif direct:
            hess = system.hessian_csc(d2, alpha)
        else:
            hess = system.hessian_data(d2, alpha)
        return grad[free], rel[free], hess

    if nf == 0:
        return np.zeros(n), NewtonResult(np.zeros(0), 0, 0.0, True)
    x0 = np.zeros(nf) if v0 is None else np.asarray(v0, dtype=float)[free]
    r = minimise(objective, derivatives, x0, solve=solve_spd if direct else system.solve,
                 tol=tol, max_iter=max_iter, max_step=max_step)
    return full(r.x), r
