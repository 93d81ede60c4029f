r"""Least-action potentials (the Letter's Eqs. 1-3 and 8).

Given a transition kernel ``T(g <- f)`` the potential ``V`` minimises the normalised action

.. math::

    S[V] = \frac{1}{n} \sum_{f \ne g} T(g \leftarrow f)\, K\big(\beta V(f) - \beta V(g)\big),

with a convex violation kernel ``K``: ``"exp"``, :math:`K(x) = e^{-x/2}` (main text), or
``"softplus"``, :math:`K(x) = \log(1 + e^{-x})` (Supplement, Fig. 9). Potentials are in units
of :math:`1/\beta`, i.e. we report :math:`\beta V`.

The action is a sum of convex functions of edge differences, so its Hessian is a weighted
graph Laplacian with weights ``T K''``. Inside a strongly connected component (SCC) the
minimiser is unique up to a constant; across the components the infimum is not attained
(differences along the condensation DAG run off to infinity). :func:`fit_potential` therefore

1. finds the SCCs of the transition graph,
2. minimises the action inside every SCC at once (one Newton iteration is one sparse solve of
   the block-diagonal Laplacian, with one grounded state per SCC fixing the gauge),
3. reports finite ``beta V`` in the main SCC (the largest, or the one holding ``reference``),
   ``+inf`` for states that reach the main SCC but cannot be reached back from it, ``-inf`` for
   states reachable from it that cannot return, and NaN for states not comparable with it.

The minimised action is the sum of the per-SCC minima: every transition between SCCs goes
downhill along the DAG and its term vanishes at the infimum.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse import csgraph
from scipy.special import expit

from .counts import TransitionCounts, scc_labels
from .kernels import Estimator, TransitionKernel, estimate_kernel

__all__ = [
    "PotentialFit",
    "fit_potential",
    "action",
    "ConvergenceError",
    "ACTION_KERNELS",
]

log = logging.getLogger(__name__)

#: Largest Newton system solved by sparse LU; larger ones use preconditioned CG.
DIRECT_SOLVE_MAX = 2000

ActionKernel = Literal["exp", "softplus"]
ACTION_KERNELS = ("exp", "softplus")

#: Status labels of states relative to the main strongly connected component.
STATUS_REASON = {
    "main": "in the main strongly connected component: finite potential",
    "upstream": "reaches the main component but is never reached from it: beta V = +inf",
    "downstream": "reached from the main component but never returns: beta V = -inf",
    "unrelated": "neither reaches nor is reached from the main component: undefined (NaN)",
    "regularized": "finite through the regularization (not a least-action potential)",
}


class ConvergenceError(RuntimeError):
    """The Newton iteration did not reach the requested tolerance."""


# ---------------------------------------------------------------------------- kernels K(x)
def _kernel_terms(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K(x), K'(x), K''(x) elementwise for the violation kernel ``name``."""
    if name == "exp":
        k = np.exp(-0.5 * x)
        return k, -0.5 * k, 0.25 * k
    if name == "softplus":
        s = expit(-x)
        return np.logaddexp(0.0, -x), -s, s * (1.0 - s)
    raise ValueError(f"unknown action kernel {name!r}; choose one of {ACTION_KERNELS}")


def action(
    potential: np.ndarray | pd.Series | PotentialFit,
    transitions: TransitionKernel | None = None,
    kernel: ActionKernel = "exp",
) -> float:
    """The normalised action ``S[V]`` of Eq. 8 for a given potential (``beta V`` per state).

    Parameters
    ----------
    potential : array, Series or PotentialFit
        An array in the order of ``transitions.states`` or a Series indexed by state. Finite
        values, or ``+-inf``: a term going downhill to an infinitely lower potential is 0
        (``K(+inf) = 0``), one going uphill infinitely is ``+inf``; a term between two states
        at the same infinity is ambiguous and raises. A :class:`PotentialFit` is evaluated
        per component (``fit.relative`` inside an SCC, 0 across SCCs, which is the infimum),
        with its own transitions and kernel unless given.
    transitions : TransitionKernel
        The kernel ``T`` (required unless ``potential`` is a fit).
    kernel : {"exp", "softplus"}
        The violation kernel ``K``.
    """
    if isinstance(potential, PotentialFit):
        fit = potential
        tk = transitions or fit.transitions
        if tk is not fit.transitions:
            raise ValueError("a PotentialFit is evaluated on its own transitions only")
        f, g, t, _ = tk.edges()
        v = fit.relative.to_numpy()
        comp = fit.component.to_numpy()
        same = comp[f] == comp[g]
        k, _, _ = _kernel_terms(kernel, v[f[same]] - v[g[same]])
        return float(np.dot(t[same], k) / tk.n_states)
    if transitions is None:
        raise ValueError("transitions (a TransitionKernel) is required for a plain potential")
    if isinstance(potential, pd.Series):
        missing = pd.Index(transitions.states).difference(potential.index)
        if len(missing):
            raise ValueError(f"potential lacks states {list(missing[:5])}")
        v = potential.reindex(pd.Index(transitions.states)).to_numpy(dtype=float)
    else:
        v = np.asarray(potential, dtype=float)
        if v.shape != (transitions.n_states,):
            raise ValueError(
                f"potential has shape {v.shape}; expected ({transitions.n_states},)"
            )
    if np.isnan(v).any():
        raise ValueError("potential contains NaN; the action is undefined")
    f, g, t, _ = transitions.edges()
    with np.errstate(invalid="ignore"):
        x = v[f] - v[g]
    if np.isnan(x).any():
        i = int(np.flatnonzero(np.isnan(x))[0])
        s = transitions.states
        raise ValueError(
            f"transition {s[f[i]]!r} -> {s[g[i]]!r} joins two states at the same infinite "
            "potential; evaluate the fit itself (action(fit)) or pass finite potentials"
        )
    with np.errstate(over="ignore"):
        k, _, _ = _kernel_terms(kernel, x)
    return float(np.sum(t * k) / transitions.n_states)


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False, repr=False)
class PotentialFit:
    """Result of :func:`fit_potential`.

    Attributes
    ----------
    potential : pandas.Series
        ``beta V`` per state: finite in the main component (gauge: ``min = 0`` there, or
        ``V(reference) = 0``), ``+inf`` upstream, ``-inf`` downstream, NaN unrelated.
    relative : pandas.Series
        ``beta V`` inside each state's own SCC (gauge ``min = 0`` per SCC); finite everywhere.
    component : pandas.Series
        SCC index of each state; 0 is the main component, the others by decreasing size.
    status : pandas.Series
        ``"main"``, ``"upstream"``, ``"downstream"`` or ``"unrelated"`` (``"regularized"``
        when a regularization made every potential finite); see :meth:`reason`.
    action : float
        The minimised normalised action ``S`` of Eq. 8 (without the regularization term).
    kernel : str
        The violation kernel ``K``: ``"exp"`` or ``"softplus"``.
    transitions : TransitionKernel
        The transition kernel that was fitted (estimator, kept states, ``T`` and ``N0``).
    iterations, gradient_norm, converged
        Newton iterations, final max-norm of the relative gradient (each component of the
        action's gradient divided by the sum of the magnitudes of its terms; dimensionless),
        and whether the tolerance was reached.
    regularization : float
        Strength ``alpha`` of the ridge term ``(alpha / 2) sum_f (beta V(f))^2``; 0 for the
        pure least-action fit.
    """

    potential: pd.Series
    relative: pd.Series
    component: pd.Series
    status: pd.Series
    action: float
    kernel: str
    transitions: TransitionKernel
    iterations: int
    gradient_norm: float
    converged: bool
    regularization: float = 0.0

    @property
    def states(self) -> tuple[str, ...]:
        return self.transitions.states

    @property
    def main(self) -> pd.Series:
        """Finite potentials of the main component, sorted by ``beta V``."""
        return self.potential[self.status == "main"].sort_values()

    def reason(self, state: str) -> str:
        """Why ``state`` has the potential it has."""
        if state not in self.status.index:
            raise KeyError(f"unknown state {state!r}")
        return STATUS_REASON[self.status[state]]

    def to_frame(self) -> pd.DataFrame:
        """One row per state: potential, relative potential, component, status, N0."""
        return pd.DataFrame(
            {
                "beta_V": self.potential,
                "beta_V_in_component": self.relative,
                "component": self.component,
                "status": self.status,
                "N0": self.transitions.n0,
            }
        )

    def __repr__(self) -> str:
        counts = self.status.value_counts()
        parts = ", ".join(f"{k}={counts.get(k, 0)}" for k in STATUS_REASON if counts.get(k, 0))
        return (
            f"PotentialFit(kernel={self.kernel!r}, estimator={self.transitions.method!r}, "
            f"action={self.action:.6g}, {parts})"
        )


# ---------------------------------------------------------------------------- solver
def _newton(
    n: int,
    f: np.ndarray,
    g: np.ndarray,
    w: np.ndarray,
    free: np.ndarray,
    kernel: str,
    alpha: float,
    tol: float,
    max_iter: int,
    v0: np.ndarray | None = None,
) -> tuple[np.ndarray, int, float, bool]:
    """Minimise ``sum_e w_e K(v_f - v_g) + alpha/2 |v|^2`` over ``v[free]`` (others fixed at 0).

    Damped Newton: each step solves the (grounded) weighted-Laplacian system, then backtracks
    until the Armijo condition holds. Convergence is judged on the relative gradient: each
    component of the gradient divided by the sum of the magnitudes of the terms that make it
    up. Returns ``(v, iterations, max relative |grad|, converged)``.
    """
    v = np.zeros(n) if v0 is None else v0.astype(float).copy()
    nf = int(free.sum())
    if nf == 0:
        return v, 0, 0.0, True
    pos = np.full(n, -1, dtype=np.int64)
    pos[free] = np.arange(nf)
    # Laplacian entries for the free-free block, assembled once (pattern fixed).
    ff = free[f] & free[g]
    rows = np.concatenate([pos[f[ff]], pos[g[ff]], pos[f], pos[g]])
    cols = np.concatenate([pos[g[ff]], pos[f[ff]], pos[f], pos[g]])
    keep_diag = np.concatenate([np.ones(2 * ff.sum(), bool), free[f], free[g]])
    rows, cols = rows[keep_diag], cols[keep_diag]

    def objective(vv):
        k, _, _ = _kernel_terms(kernel, vv[f] - vv[g])
        return float(np.dot(w, k) + 0.5 * alpha * np.dot(vv, vv))

    def grad_and_hess(vv):
        _, k1, k2 = _kernel_terms(kernel, vv[f] - vv[g])
        wk1 = w * k1
        grad = np.bincount(f, wk1, minlength=n) - np.bincount(g, wk1, minlength=n) + alpha * vv
        # Relative gradient: each component divided by the sum of the magnitudes of its terms,
        # so the tolerance is independent of the scale of T and of rounding in large sums.
        scale = np.bincount(f, np.abs(wk1), minlength=n) + np.bincount(g, np.abs(wk1), minlength=n)
        grad_rel = grad / (scale + alpha * np.abs(vv) + np.finfo(float).tiny)
        h = w * k2
        vals = np.concatenate([-h[ff], -h[ff], h, h])[keep_diag]
        hess = sp.csc_matrix((vals, (rows, cols)), shape=(nf, nf))
        if alpha:
            hess = hess + alpha * sp.identity(nf, format="csc")
        return grad, grad_rel, hess

    obj = objective(v)
    gnorm = np.inf
    for it in range(1, max_iter + 1):
        grad, grad_rel, hess = grad_and_hess(v)
        gf = grad[free]
        gnorm = float(np.max(np.abs(grad_rel[free])))
        if gnorm <= tol:
            return v, it - 1, gnorm, True
        # Inexact Newton (Eisenstat-Walker): a loose inner solve far from the minimum, a tight
        # one near it, so that convergence stays superlinear at a fraction of the CG work.
        step = _solve_spd(hess, -gf, rtol=min(0.1, max(gnorm, 1e-12)))
        slope = float(np.dot(gf, step))
        if not slope < 0:  # numerical breakdown: fall back to steepest descent
            step, slope = -gf, -float(np.dot(gf, gf))
        t = 1.0
        while True:
            trial = v.copy()
            trial[free] += t * step
            new = objective(trial)
            if new <= obj + 1e-4 * t * slope:
                break
            if t == 1.0 and abs(new - obj) <= 64 * np.finfo(float).eps * max(abs(obj), 1.0):
                # At the rounding floor of the objective Armijo cannot tell; take the full
                # Newton step if it reduces the gradient (quadratic convergence region).
                if np.max(np.abs(grad_and_hess(trial)[1][free])) < gnorm:
                    break
            if t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        v, obj = trial, new
        log.debug("newton %d: obj %.17g gnorm %.3g step %.3g", it, obj, gnorm, t)
    _, grad_rel, _ = grad_and_hess(v)
    gnorm = float(np.max(np.abs(grad_rel[free])))
    return v, it, gnorm, gnorm <= tol


def _solve_spd(a: sp.csc_matrix, b: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Solve the symmetric positive-definite system ``a x = b``; raise if it fails.

    Small systems use a sparse LU factorisation; larger ones Jacobi-preconditioned conjugate
    gradients to relative residual ``rtol`` (fill-in makes LU slow on random graphs).
    """
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
    precond = sp.diags(1.0 / d)
    x, info = spla.cg(a, b, rtol=rtol, atol=0.0, maxiter=20 * n, M=precond)
    if info != 0:
        raise ConvergenceError(f"conjugate gradients did not converge (info={info}, n={n})")
    return x


# ---------------------------------------------------------------------------- public fit
def fit_potential(
    data: TransitionCounts | TransitionKernel,
    kernel: ActionKernel = "exp",
    *,
    estimator: Estimator = "auto",
    min_calls: int | None = None,
    n0: float | None = None,
    reference: str | None = None,
    regularization: float = 0.0,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> PotentialFit:
    r"""Fit the least-action potential ``beta V`` (Eq. 8) to a transition kernel.

    Parameters
    ----------
    data : TransitionCounts or TransitionKernel
        Counts (turned into a kernel with :func:`dbnb.kernels.estimate_kernel` and the
        ``estimator``, ``min_calls``, ``n0`` arguments) or a kernel estimated already.
    kernel : {"exp", "softplus"}
        Violation kernel ``K``: ``exp(-x/2)`` (main text) or ``log(1 + exp(-x))``.
    reference : str, optional
        A state whose SCC is the main component and whose potential is 0. Default: the
        largest SCC, gauge ``min beta V = 0`` over it.
    regularization : float
        ``alpha >= 0``. With ``alpha > 0`` the ridge term ``(alpha / 2) sum_f (beta V)^2`` is
        added (the analogue of SpringRank's ``alpha``): every potential becomes finite and
        the one-way directions that would diverge are held at a scale ``~ T / alpha``.
        The result then is a regularised estimate, not a least-action potential, and every
        state's status is ``"regularized"``. Use it for plots that need finite numbers.
    tol : float
        Stop when every component of the gradient is below ``tol`` relative to the sum of the
        magnitudes of its terms (so stationarity, Eq. 3, holds to a relative ``tol`` per state).
    max_iter : int
        Maximum Newton iterations; :class:`ConvergenceError` is raised if ``tol`` is not met.

    Returns
    -------
    PotentialFit

    Notes
    -----
    For two states with ``a = T(g <- f)`` and ``b = T(f <- g)`` both kernels give
    ``beta V(f) - beta V(g) = log(a / b)``: the fit is exact wherever the kernel obeys
    detailed balance (Eq. 17).

    Examples
    --------
    >>> from dbnb.counts import TransitionCounts
    >>> c = TransitionCounts.from_triples(["A", "B"], ["B", "A"], [10, 40])
    >>> fit = fit_potential(c.with_calls(100), estimator="fixed")
    >>> round(float(fit.potential["B"] - fit.potential["A"]), 6)  # log(40 / 10)
    1.386294
    """
    if kernel not in ACTION_KERNELS:
        raise ValueError(f"unknown action kernel {kernel!r}; choose one of {ACTION_KERNELS}")
    if not (np.isfinite(regularization) and regularization >= 0):
        raise ValueError(f"regularization must be a finite number >= 0, got {regularization!r}")
    if not (tol > 0):
        raise ValueError(f"tol must be positive, got {tol!r}")
    if isinstance(data, TransitionKernel):
        tk = data
    elif isinstance(data, TransitionCounts):
        tk = estimate_kernel(data, estimator, min_calls=min_calls, n0=n0)
    else:
        raise TypeError(
            f"data must be TransitionCounts or TransitionKernel, got {type(data).__name__}"
        )
    n = tk.n_states
    index = pd.Index(tk.states, name="state")
    f, g, w, _ = tk.edges()
    adjacency = sp.csr_array((np.ones(f.size, bool), (f, g)), shape=(n, n))
    raw_labels = scc_labels(adjacency)
    # Order components: the one holding the reference first, then by size, weight, first state.
    size = np.bincount(raw_labels)
    inside = raw_labels[f] == raw_labels[g]
    weight = np.bincount(raw_labels[f[inside]], weights=w[inside], minlength=size.size)
    first = np.full(size.size, n)
    np.minimum.at(first, raw_labels, np.arange(n))
    order = np.lexsort((first, -weight, -size))
    if reference is not None:
        if reference not in index:
            raise KeyError(f"reference state {reference!r} is not among the fitted states")
        ref_label = raw_labels[index.get_loc(reference)]
        order = np.concatenate([[ref_label], order[order != ref_label]])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    comp = rank[raw_labels]

    if regularization > 0:
        free = np.ones(n, dtype=bool)
        ef, eg, ew = f, g, w
    else:
        # Ground the first state of every component: the gauge, and the block-diagonal system.
        grounded = np.zeros(n, dtype=bool)
        first_in_comp = np.full(order.size, n)
        np.minimum.at(first_in_comp, comp, np.arange(n))
        grounded[first_in_comp] = True
        free = ~grounded
        ef, eg, ew = f[inside], g[inside], w[inside]
    v, iters, gnorm, ok = _newton(n, ef, eg, ew, free, kernel, regularization, tol, max_iter)
    if not ok:
        raise ConvergenceError(
            f"Newton iteration stopped after {iters} iterations with max|grad| = {gnorm:.3g} "
            f"> tol = {tol:.3g} ({n} states, kernel {kernel!r})"
        )

    # Gauge: min = 0 inside each component (or over everything when regularised).
    if regularization > 0:
        rel = v - v.min()
    else:
        cmin = np.full(order.size, np.inf)
        np.minimum.at(cmin, comp, v)
        rel = v - cmin[comp]
    main = comp == 0
    if reference is not None:
        shift = v[index.get_loc(reference)]
    else:
        shift = v[main].min()

    # Reachability relative to the main component.
    status = np.full(n, "unrelated", dtype=object)
    status[main] = "main"
    seed = int(np.flatnonzero(main)[0])
    down = csgraph.breadth_first_order(sp.csr_matrix(adjacency), seed, return_predecessors=False)
    up = csgraph.breadth_first_order(sp.csr_matrix(adjacency.T), seed, return_predecessors=False)
    is_down = np.zeros(n, bool)
    is_down[down] = True
    is_up = np.zeros(n, bool)
    is_up[up] = True
    status[is_up & ~main] = "upstream"
    status[is_down & ~main] = "downstream"
    if regularization > 0:
        pot = v - shift
        status[:] = "regularized"
    else:
        pot = np.full(n, np.nan)
        pot[main] = v[main] - shift
        pot[status == "upstream"] = np.inf
        pot[status == "downstream"] = -np.inf

    k, _, _ = _kernel_terms(kernel, v[ef] - v[eg])
    s = float(np.dot(ew, k) / n)
    if regularization > 0:  # report the plain action (cross-component terms included)
        s = action(v - shift, tk, kernel)
    return PotentialFit(
        potential=pd.Series(pot, index=index, name="beta_V"),
        relative=pd.Series(rel, index=index, name="beta_V_in_component"),
        component=pd.Series(comp, index=index, name="component"),
        status=pd.Series(status, index=index, name="status"),
        action=s,
        kernel=kernel,
        transitions=tk,
        iterations=iters,
        gradient_norm=gnorm,
        converged=ok,
        regularization=float(regularization),
    )
