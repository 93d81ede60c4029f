r"""The least-action potential (the Letter's Eqs. 1-3 and 8).

Given a transition kernel ``T(g <- f)`` the potential ``beta V`` minimises the action
:math:`S[V] = \frac1n \sum_{f \ne g} T(g \leftarrow f) K(\beta V(f) - \beta V(g))`
(:mod:`dbnb.action`). The action is a sum of convex functions of edge differences, so its
Hessian is a weighted graph Laplacian with weights ``T K''``. Inside a strongly connected
component (SCC) the minimiser is unique up to a constant; across components the infimum is not
attained (differences along the condensation DAG run off to infinity). :func:`fit_potential`
reads as the method:

1. components: the SCCs of the transition graph (:func:`dbnb.graph.strong_components`);
2. ground: one state per SCC held at 0, which fixes the constant and makes the system
   block-diagonal;
3. Newton: the action inside every SCC minimised at once (:func:`dbnb.newton.minimise`, one
   sparse solve of the grounded Laplacian per step);
4. gauge: ``min beta V = 0`` per component (or ``V(reference) = 0``);
5. status: finite ``beta V`` in the main SCC, ``+inf`` for states that reach it but are never
   reached back, ``-inf`` for states reached from it that never return, NaN otherwise.

The minimised action is the sum of the per-SCC minima: every transition between SCCs goes
downhill along the DAG and its term vanishes at the infimum.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import graph
from .action import VIOLATIONS, Violation, action, check_violation, violation_terms
from .counts import TransitionCounts
from .kernels import Estimator, TransitionKernel, as_kernel
from .newton import ConvergenceError, minimise_edges

__all__ = [
    "PotentialFit",
    "fit_potential",
    "action",
    "ConvergenceError",
    "VIOLATIONS",
]

#: Status labels of states relative to the main strongly connected component.
STATUS_REASON = {
    "main": "in the main strongly connected component: finite potential",
    "upstream": "reaches the main component but is never reached from it: beta V = +inf",
    "downstream": "reached from the main component but never returns: beta V = -inf",
    "unrelated": "neither reaches nor is reached from the main component: undefined (NaN)",
    "regularized": "finite through the regularization (not a least-action potential)",
}


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
    violation : str
        The violation function ``K`` (Eq. 8): ``"exp"`` or ``"softplus"``.
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
    violation: str
    transitions: TransitionKernel
    iterations: int
    gradient_norm: float
    converged: bool
    regularization: float = 0.0

    @property
    def kernel(self) -> str:
        """Deprecated name of :attr:`violation` (kept for one release)."""
        warnings.warn("PotentialFit.kernel is deprecated; use PotentialFit.violation",
                      DeprecationWarning, stacklevel=2)
        return self.violation

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
                "N0": _as_counts(self.transitions.n0),
            }
        )

    def __repr__(self) -> str:
        counts = self.status.value_counts()
        parts = ", ".join(f"{k}={counts.get(k, 0)}" for k in STATUS_REASON if counts.get(k, 0))
        return (
            f"PotentialFit(violation={self.violation!r}, estimator={self.transitions.method!r}, "
            f"action={self.action:.6g}, {parts})"
        )


# ---------------------------------------------------------------------------- steps
def _newton(n: int, f: np.ndarray, g: np.ndarray, w: np.ndarray, free: np.ndarray,
            violation: str, alpha: float, tol: float, max_iter: int):
    """Minimise ``sum_e w_e K(v_f - v_g) + alpha/2 |v|^2`` over ``v[free]`` (others 0)."""
    def terms(x):
        k, k1, k2 = violation_terms(violation, x)
        return w * k, w * k1, w * k2, np.abs(w * k1)

    v, r = minimise_edges(n, f, g, terms, free, alpha=alpha, tol=tol, max_iter=max_iter)
    return v, r.iterations, r.gradient_norm, r.converged


# ---------------------------------------------------------------------------- public fit
def fit_potential(
    data: TransitionCounts | TransitionKernel,
    violation: Violation = "exp",
    *,
    estimator: Estimator = "auto",
    min_calls: int | None = None,
    n0: float | None = None,
    reference: str | None = None,
    regularization: float = 0.0,
    tol: float = 1e-9,
    max_iter: int = 100,
    kernel: Violation | None = None,
) -> PotentialFit:
    r"""Fit the least-action potential ``beta V`` (Eq. 8) to a transition kernel.

    Parameters
    ----------
    data : TransitionCounts or TransitionKernel
        Counts (turned into a kernel with :func:`dbnb.kernels.estimate_kernel` and the
        ``estimator``, ``min_calls``, ``n0`` arguments) or a kernel estimated already.
    violation : {"exp", "softplus"}
        The violation function ``K`` (:mod:`dbnb.action`): ``exp(-x/2)`` (main text) or
        ``log(1 + exp(-x))`` (Supplement).
    reference : str, optional
        A state whose SCC is the main component and whose potential is 0. Default: the
        largest SCC (:func:`dbnb.graph.strong_components`), gauge ``min beta V = 0`` over it.
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
    kernel : {"exp", "softplus"}, optional
        Deprecated name of ``violation`` (kept for one release).

    Returns
    -------
    PotentialFit

    Notes
    -----
    For two states with ``a = T(g <- f)`` and ``b = T(f <- g)`` both violation functions give
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
    if kernel is not None:
        warnings.warn("fit_potential(kernel=...) is deprecated; use violation=...",
                      DeprecationWarning, stacklevel=2)
        violation = kernel
    check_violation(violation)
    if not (np.isfinite(regularization) and regularization >= 0):
        raise ValueError(f"regularization must be a finite number >= 0, got {regularization!r}")
    if not (tol > 0):
        raise ValueError(f"tol must be positive, got {tol!r}")
    tk = as_kernel(data, estimator, min_calls=min_calls, n0=n0)
    n = tk.n_states
    index = pd.Index(tk.states, name="state")
    f, g, w, _ = tk.edges()
    adjacency = sp.csr_array((np.ones(f.size, bool), (f, g)), shape=(n, n))
    if reference is not None and reference not in index:
        raise KeyError(f"reference state {reference!r} is not among the fitted states")
    ref = None if reference is None else int(index.get_loc(reference))
    comp = graph.strong_components(adjacency, first=ref)
    inside = comp[f] == comp[g]

    if regularization > 0:  # one system over every state, no grounding
        free, ef, eg, ew = np.ones(n, dtype=bool), f, g, w
    else:
        free = np.ones(n, dtype=bool)
        free[graph.first_of_each(comp)] = False  # one grounded state per component: the gauge
        ef, eg, ew = f[inside], g[inside], w[inside]
    v, iters, gnorm, ok = _newton(n, ef, eg, ew, free, violation, regularization, tol, max_iter)
    if not ok:
        raise ConvergenceError(
            f"Newton iteration stopped after {iters} iterations with max|grad| = {gnorm:.3g} "
            f"> tol = {tol:.3g} ({n} states, violation {violation!r})"
        )

    main = comp == 0
    shift = v[ref] if ref is not None else v[main].min()
    status = graph.relative_status(adjacency, main)
    if regularization > 0:
        rel = v - v.min()
        pot = v - shift
        status[:] = "regularized"
        s = action(pot, tk, violation)  # the plain action, cross-component terms included
    else:
        rel = graph.shift_to_min(v, comp)
        pot = np.full(n, np.nan)
        pot[main] = v[main] - shift
        pot[status == "upstream"] = np.inf
        pot[status == "downstream"] = -np.inf
        k, _, _ = violation_terms(violation, v[ef] - v[eg])
        s = float(np.dot(ew, k) / n)
    return PotentialFit(
        potential=pd.Series(pot, index=index, name="beta_V"),
        relative=pd.Series(rel, index=index, name="beta_V_in_component"),
        component=pd.Series(comp, index=index, name="component"),
        status=pd.Series(status, index=index, name="status"),
        action=s,
        violation=violation,
        transitions=tk,
        iterations=iters,
        gradient_norm=gnorm,
        converged=ok,
        regularization=float(regularization),
    )


def _as_counts(n0: np.ndarray) -> np.ndarray:
    """``n0`` as integers when every value is whole (prints 4000, not 4000.0)."""
    return n0.astype(np.int64) if np.all(n0 == np.round(n0)) else n0
