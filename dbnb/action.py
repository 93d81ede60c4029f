r"""The action of the Letter (Eq. 8) and its violation functions ``K`` (Eq. 17).

For a transition kernel ``T(g <- f)`` over ``n`` states and a potential ``beta V``,

.. math::

    S[V] = \frac{1}{n} \sum_{f \ne g} T(g \leftarrow f)\, K\big(\beta V(f) - \beta V(g)\big),

with a convex, decreasing violation function: ``"exp"``, :math:`K(x) = e^{-x/2}` (main text),
or ``"softplus"``, :math:`K(x) = \log(1 + e^{-x})` (Supplement, Fig. 9). A transition that
goes downhill (``V(g) < V(f)``) costs little, one uphill much. For a two-state pair both give
:math:`\beta V(f) - \beta V(g) = \log T(g \leftarrow f) / T(f \leftarrow g)` at the minimum
(Eq. 17).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.special import expit

if TYPE_CHECKING:
    from .kernels import TransitionKernel
    from .potential import PotentialFit

__all__ = ["VIOLATIONS", "Violation", "action", "violation_terms"]

Violation = Literal["exp", "softplus"]
#: The violation functions ``K`` by name.
VIOLATIONS = ("exp", "softplus")


def check_violation(name: str) -> str:
    """``name`` if it is a known violation function, else a ValueError naming the choices."""
    if name not in VIOLATIONS:
        raise ValueError(f"unknown violation function K {name!r}; choose one of {VIOLATIONS}")
    return name


def violation_terms(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``K(x), K'(x), K''(x)`` elementwise for the violation function ``name``.

    >>> [float(v) for v in violation_terms("exp", np.array([0.0]))[0]]
    [1.0]
    """
    if name == "exp":
        k = np.exp(-0.5 * x)
        return k, -0.5 * k, 0.25 * k
    if name == "softplus":
        s = expit(-x)
        return np.logaddexp(0.0, -x), -s, s * (1.0 - s)
    check_violation(name)
    raise AssertionError("unreachable")


def action(
    potential: np.ndarray | pd.Series | PotentialFit,
    transitions: TransitionKernel | None = None,
    violation: Violation = "exp",
) -> float:
    """The normalised action ``S[V]`` of Eq. 8 for a given potential (``beta V`` per state).

    Parameters
    ----------
    potential : array, Series or PotentialFit
        An array in the order of ``transitions.states`` or a Series indexed by state. Finite
        values, or ``+-inf``: a term going downhill to an infinitely lower potential is 0
        (``K(+inf) = 0``), one going uphill infinitely is ``+inf``; a term between two states
        at the same infinity is ambiguous and raises. A :class:`~dbnb.potential.PotentialFit`
        is evaluated per component (``fit.relative`` inside an SCC, 0 across SCCs, which is
        the infimum), on its own transitions.
    transitions : TransitionKernel
        The kernel ``T`` (required unless ``potential`` is a fit).
    violation : {"exp", "softplus"}
        The violation function ``K``.
    """
    from .potential import PotentialFit

    check_violation(violation)
    if isinstance(potential, PotentialFit):
        fit = potential
        tk = transitions or fit.transitions
        if tk is not fit.transitions:
            raise ValueError("a PotentialFit is evaluated on its own transitions only")
        f, g, t, _ = tk.edges()
        v = fit.relative.to_numpy()
        comp = fit.component.to_numpy()
        same = comp[f] == comp[g]
        k, _, _ = violation_terms(violation, v[f[same]] - v[g[same]])
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
        k, _, _ = violation_terms(violation, x)
    return float(np.sum(t * k) / transitions.n_states)
