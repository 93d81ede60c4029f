r"""The action as a scale: distribution of ``beta V`` and Eq. 28 (Fig. 11, Table IV)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from ..potential import PotentialFit
from ._common import freeze, require_fit

__all__ = [
    "PotentialDistribution",
    "expected_min_action",
    "potential_distribution",
    "action_scale_table",
]


def expected_min_action(sigma, *, form: Literal["exact", "asymptotic"] = "exact"):
    r"""Expected minimum action for a Gaussian density of states of width ``sigma`` (Eq. 28).

    ``"exact"``: :math:`e^{\sigma^2}\operatorname{erfc}(\sigma)`, evaluated as
    ``scipy.special.erfcx`` (no overflow); ``"asymptotic"``: :math:`1/(\sigma\sqrt{\pi})`,
    its large-``sigma`` limit (the form in the Letter's Table IV). Normalised so that
    ``sigma = 0`` gives ``K(0) = 1``.
    """
    s = np.asarray(sigma, dtype=float)
    if np.any(s < 0):
        raise ValueError("sigma must be non-negative")
    if form == "exact":
        out = special.erfcx(s)
    elif form == "asymptotic":
        with np.errstate(divide="ignore"):
            out = 1.0 / (s * np.sqrt(np.pi))
    else:
        raise ValueError(f"form must be 'exact' or 'asymptotic', got {form!r}")
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True, eq=False)
class PotentialDistribution:
    r"""Distribution of fitted ``beta V`` and the action scale of Supplement D (Fig. 11).

    Attributes
    ----------
    values : numpy.ndarray
        Finite ``beta V`` of the states sampled at least ``min_calls`` times.
    states : tuple of str
        Their labels.
    mu, sigma : float
        Gaussian maximum-likelihood fit: sample mean and ``ddof=0`` standard deviation
        (what :func:`scipy.stats.norm.fit` returns).
    actual_action : float
        The fit's minimised action ``S``.
    min_calls : int
    violation : str
        The violation function ``K`` of the fit.
    source : str
    """

    values: np.ndarray
    states: tuple[str, ...]
    mu: float
    sigma: float
    actual_action: float
    min_calls: int
    violation: str = ""
    source: str = ""

    @property
    def n_states(self) -> int:
        return int(self.values.size)

    @property
    def expected_action(self) -> float:
        """``exp(sigma^2) erfc(sigma)`` (Eq. 28)."""
        return expected_min_action(self.sigma, form="exact") if self.n_states else float("nan")

    @property
    def expected_action_asymptotic(self) -> float:
        """``1 / (sigma sqrt(pi))``, the large-``sigma`` form used in Table IV."""
        if not self.n_states:
            return float("nan")
        return expected_min_action(self.sigma, form="asymptotic")

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_states": self.n_states,
                "mu": self.mu,
                "sigma": self.sigma,
                "expected_action": self.expected_action,
                "expected_action_asymptotic": self.expected_action_asymptotic,
                "actual_action": self.actual_action,
            },
            name="potential_distribution",
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"beta_V": self.values}, index=pd.Index(self.states, name="state"))


def potential_distribution(fit: PotentialFit, *, min_calls: int = 2) -> PotentialDistribution:
    """Histogram data and Gaussian fit of ``beta V`` (Fig. 11, Table IV).

    Uses the finite entries of ``fit.potential`` (the main component; the gauge shifts ``mu``
    but not ``sigma``) of states that appear as a source at least ``min_calls`` times
    (self-transitions included, ``counts.observed_calls()``), the Letter's "sampled at
    least twice". ``mu`` and ``sigma`` are NaN when fewer than two states qualify.
    """
    require_fit(fit)
    if min_calls < 0:
        raise ValueError(f"min_calls must be >= 0, got {min_calls!r}")
    tk = fit.transitions
    pot = fit.potential.reindex(pd.Index(tk.states)).to_numpy(dtype=float)
    keep = np.isfinite(pot) & (tk.counts.observed_calls() >= min_calls)
    values = pot[keep].copy()
    if values.size >= 2:
        mu, sigma = float(values.mean()), float(values.std())  # Gaussian ML fit (ddof = 0)
    else:
        mu = sigma = float("nan")
    freeze(values)
    labels = tuple(np.array(tk.states, dtype=object)[keep])
    return PotentialDistribution(
        values, labels, mu, sigma, float(fit.action), int(min_calls),
        violation=fit.violation, source=tk.counts.source,
    )


def action_scale_table(
    results: Mapping[str, PotentialDistribution | PotentialFit], *, min_calls: int = 2
) -> pd.DataFrame:
    """The Letter's Table IV: per agent, ``sigma``, expected minimum action (exact Eq. 28 and
    its large-``sigma`` form) and the actual minimum action of the fit.

    Parameters
    ----------
    results : mapping of name to PotentialDistribution or PotentialFit
        A fit is first summarised by :func:`potential_distribution` with ``min_calls``; a
        distribution is tabulated as it is.
    """
    rows = []
    for name, res in results.items():
        d = res if isinstance(res, PotentialDistribution) else potential_distribution(
            res, min_calls=min_calls)
        rows.append(
            {
                "agent": name,
                "sigma": d.sigma,
                "expected_min_action_exact": d.expected_action,
                "expected_min_action_asymptotic": d.expected_action_asymptotic,
                "actual_min_action": d.actual_action,
                "n_states": d.n_states,
            }
        )
    cols = [
        "agent", "sigma", "expected_min_action_exact", "expected_min_action_asymptotic",
        "actual_min_action", "n_states",
    ]
    return pd.DataFrame(rows, columns=cols).set_index("agent")
