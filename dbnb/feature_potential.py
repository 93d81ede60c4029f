r"""An explicit potential on state features, fitted by least action (the Letter's Supplement E).

Given a transition kernel ``T(g <- f)`` and a table of features ``X_j(f)`` per state, the
potential is restricted to ``beta V(f) = sum_j w_j X_j(f)`` and the weights minimise the action
of Eq. 8,

.. math::

    S(w) = \frac{1}{n} \sum_{f \ne g} T(g \leftarrow f)\, K\big((x_f - x_g) \cdot w\big)
           + \frac{\rho}{2} |w|^2 ,

with the violation function ``K`` of :mod:`dbnb.action` and a tiny ridge ``rho``. The problem
is convex; :func:`dbnb.newton.minimise` solves it. :func:`feature_potential` reads as the
method:

1. free fit: the least-action potential (:func:`dbnb.potential.fit_potential`), whose action
   bounds the feature potential's from below;
2. design: features standardised over the states kept, constant and exactly collinear ones
   dropped (no intercept: only differences of ``V`` enter the action);
3. Newton: the weights;
4. errors: the sandwich estimate under Poisson noise on the counts, or a Poisson bootstrap.

The features are any per-state table: the symbolic agent's expression features are
:func:`dbnb.agents.symbolic.feature_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .action import check_violation, violation_terms
from .counts import TransitionCounts
from .kernels import TransitionKernel
from .newton import minimise, solve_spd
from .potential import PotentialFit, fit_potential

__all__ = ["FeaturePotential", "feature_potential"]


@dataclass(frozen=True, eq=False, repr=False)
class FeaturePotential:
    """An explicit potential ``beta V(f) = sum_j w_j X_j(f)`` fitted by least action.

    Attributes
    ----------
    weights : pandas.DataFrame
        One row per feature used: ``weight`` (``beta V`` per unit of the feature),
        ``std_error``, ``z`` (weight / std_error), ``weight_std`` and ``std_error_std`` (per
        standard deviation of the feature over the states), ``feature_std``.
    potential : pandas.Series
        ``X w`` per state, gauge ``min = 0``.
    action : float
        Normalised action (Eq. 8) of the feature potential on all transitions of the kernel.
    action_free : float
        The free least-action minimum (:attr:`dbnb.potential.PotentialFit.action`), a lower
        bound for ``action``.
    action_flat : float
        The action of a constant potential, ``K(0) * sum T / n`` (no directionality).
    dropped : tuple of str
        Features left out: constant over the states, or exactly linearly dependent on
        earlier ones.
    violation : str
        The violation function ``K``.
    n_states, n_transitions, iterations, converged, std_error_method, ridge
    """

    weights: pd.DataFrame
    potential: pd.Series
    action: float
    action_free: float
    action_flat: float
    dropped: tuple[str, ...]
    violation: str
    n_states: int
    n_transitions: int
    iterations: int
    converged: bool
    std_error_method: str
    ridge: float = 0.0

    def __repr__(self) -> str:
        return (f"FeaturePotential({len(self.weights)} features, {self.n_states} states, "
                f"action={self.action:.4g} vs free {self.action_free:.4g}, "
                f"flat {self.action_flat:.4g})")

    def table(self) -> pd.DataFrame:
        """The Table V analogue: weights with uncertainties, sorted by |z|."""
        return self.weights.reindex(self.weights["z"].abs().sort_values(ascending=False).index)


# ---------------------------------------------------------------------------- steps
def _design(X: pd.DataFrame, ok: np.ndarray):
    """Standardised feature columns over the kept states ``ok``; constant and exactly collinear
    columns dropped (QR rank test). Returns ``Z`` (all states), the columns, their standard
    deviations and the dropped names."""
    Xv = X[ok]
    dropped = [c for c in X.columns if Xv[c].std(ddof=0) == 0]
    cols = [c for c in X.columns if c not in dropped]
    mu, sd = Xv[cols].mean(), Xv[cols].std(ddof=0)
    Z = ((X[cols] - mu) / sd).fillna(0.0).to_numpy()
    kept: list[int] = []
    for j in range(len(cols)):
        trial = Z[ok][:, kept + [j]]
        if np.linalg.matrix_rank(trial, tol=1e-8 * max(1, trial.shape[0])) == len(kept) + 1:
            kept.append(j)
        else:
            dropped.append(cols[j])
    cols = [cols[j] for j in kept]
    return Z[:, kept], cols, sd[cols], dropped


def _newton(d: np.ndarray, t: np.ndarray, n: int, violation: str, ridge: float,
            tol: float, max_iter: int):
    """Minimise ``(1/n) sum_e t_e K((D w)_e) + ridge/2 |w|^2`` over the weights ``w``."""
    p = d.shape[1]

    def objective(w):
        k, _, _ = violation_terms(violation, d @ w)
        return float(t @ k) / n + 0.5 * ridge * float(w @ w)

    def derivatives(w):
        _, k1, k2 = violation_terms(violation, d @ w)
        grad = d.T @ (t * k1) / n + ridge * w
        hess = (d.T * (t * k2)) @ d / n + ridge * np.eye(p)
        scale = np.abs(d.T) @ (t * np.abs(k1)) / n + ridge * np.abs(w) + np.finfo(float).tiny
        return grad, grad / scale, hess

    r = minimise(objective, derivatives, np.zeros(p), solve=solve_spd, tol=tol,
                 max_iter=max_iter)
    return r.x, r.iterations, r.converged


def _std_errors(d, t, n0, n, w, violation, ridge, tol, max_iter, bootstrap, seed):
    """Standard errors of the weights and the method's name (see :func:`feature_potential`)."""
    if bootstrap:
        rng = np.random.default_rng(seed)
        nn = t * n0
        boots = []
        for _ in range(bootstrap):
            tb = rng.poisson(nn) / n0
            wb, _, _ = _newton(d, tb, n, violation, ridge, tol, max_iter)
            boots.append(wb)
        return np.std(np.asarray(boots), axis=0, ddof=1), \
            f"Poisson bootstrap ({bootstrap} resamples)"
    _, k1, k2 = violation_terms(violation, d @ w)
    hess = (d.T * (t * k2)) @ d / n + ridge * np.eye(d.shape[1])
    hinv = np.linalg.pinv(hess)
    c = (d.T * (t / n0 * k1 ** 2)) @ d / n ** 2
    return np.sqrt(np.clip(np.diag(hinv @ c @ hinv), 0, None)), "sandwich (Poisson counts)"


# ---------------------------------------------------------------------------- public fit
def feature_potential(
    data: PotentialFit | TransitionKernel | TransitionCounts,
    features: pd.DataFrame | Callable[[Sequence[str]], pd.DataFrame],
    *,
    violation: str | None = None,
    ridge: float = 1e-8,
    bootstrap: int = 0,
    seed: int = 0,
    tol: float = 1e-8,
    max_iter: int = 200,
    main_only: bool = False,
) -> FeaturePotential:
    r"""Fit an explicit potential ``beta V = X w`` on state features by least action.

    Minimises the action of Eq. 8, ``S(w) = (1/n) sum_{f != g} T(g<-f) K(x_f.w - x_g.w)``,
    over the weights ``w`` (Newton's method with the analytic gradient and Hessian and a
    backtracking line search; the problem is convex). Features are standardised internally;
    constant features, and features exactly collinear with earlier ones, are dropped (no
    intercept: only differences of ``V`` enter the action).

    Parameters
    ----------
    data : PotentialFit, TransitionKernel or TransitionCounts
        The free least-action fit (its kernel and action are used), or a kernel/counts to fit
        one from (:func:`dbnb.potential.fit_potential`).
    features : pandas.DataFrame or callable
        Features per state (rows indexed by state), or ``states -> DataFrame`` called with the
        kernel's states. States with NaN features are left out.
    violation : {"exp", "softplus"}, optional
        The violation function ``K``; default the fit's.
    ridge : float
        A tiny ridge ``(ridge / 2) |w|^2`` (standardised units) keeping one-way directions finite.
    main_only : bool
        Use only the states of the free fit's main strongly connected component (where the
        free potential is finite). Default: every state of the kernel; one-way directions
        between components then push the weights up to the ``ridge`` scale.
    bootstrap : int
        If positive, standard errors from this many Poisson resamplings of the counts
        (``N'(g<-f) ~ Poisson(N(g<-f))``, same ``N0``), refitting ``w`` each time. Otherwise
        (default) the sandwich estimate ``H^-1 C H^-1``, with ``H`` the Hessian of ``S`` and
        ``C = (1/n^2) sum T(g<-f)/N0(f) K'^2 d d^T`` the covariance of its gradient under
        Poisson noise on the counts (``Var T = T / N0``).
    seed, tol, max_iter
        The bootstrap's seed; the Newton tolerance and iteration cap.

    Returns
    -------
    FeaturePotential
    """
    if isinstance(data, PotentialFit):
        fit = data
    elif isinstance(data, (TransitionKernel, TransitionCounts)):
        fit = fit_potential(data, violation or "exp")
    else:
        raise TypeError("data must be a PotentialFit, TransitionKernel or TransitionCounts, "
                        f"got {type(data).__name__}")
    violation = check_violation(violation or fit.violation)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative int, got {bootstrap!r}")
    tk = fit.transitions
    states = pd.Index(tk.states)
    X = features(tk.states) if callable(features) else features
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"features must be a DataFrame indexed by state, got {type(X).__name__}")
    missing = states.difference(X.index)
    if len(missing):
        raise ValueError(f"features lack states, e.g. {list(missing[:3])}")
    X = X.reindex(states).astype(float)
    ok = np.isfinite(X.to_numpy()).all(axis=1)
    if main_only:
        ok &= (fit.status.reindex(states) == "main").to_numpy()
    f, g, t, _ = tk.edges()
    keep = ok[f] & ok[g]
    f, g, t = f[keep], g[keep], t[keep]
    n0 = np.asarray(tk.n0, dtype=float)[f]
    n = tk.n_states

    Z, cols, sd, dropped = _design(X, ok)
    d = Z[f] - Z[g]
    w, it, conv = _newton(d, t, n, violation, ridge, tol, max_iter)
    se, method = _std_errors(d, t, n0, n, w, violation, ridge, tol, max_iter, bootstrap, seed)

    v = pd.Series(Z @ w, index=states, name="beta_V")
    v[~ok] = np.nan
    v = v - v.min()
    k, _, _ = violation_terms(violation, d @ w)
    k0, _, _ = violation_terms(violation, np.zeros(1))
    weights = pd.DataFrame({
        "weight": w / sd.to_numpy(), "std_error": se / sd.to_numpy(),
        "z": np.divide(w, se, out=np.full_like(w, np.nan), where=se > 0),
        "weight_std": w, "std_error_std": se, "feature_std": sd.to_numpy(),
    }, index=pd.Index(cols, name="feature"))
    return FeaturePotential(
        weights=weights, potential=v, action=float(t @ k) / n, action_free=float(fit.action),
        action_flat=float(k0[0] * t.sum() / n), dropped=tuple(dropped), violation=violation,
        n_states=int(ok.sum()), n_transitions=int(f.size), iterations=it, converged=conv,
        std_error_method=method, ridge=ridge,
    )
