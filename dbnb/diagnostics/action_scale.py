r"""The action as a scale: distribution of ``beta V`` and Eq. 28 (Fig. 11, Table IV).

Eq. 28 is the expected minimum of the exp-kernel action for a Gaussian density of states of
width ``sigma``, normalised so that a flat potential gives ``K(0) = 1``. A comparison with a
fitted kernel therefore needs three things the Letter's Table IV does not do:

* the actual action divided by the *flat* action ``S[V = 0]`` of the same kernel (escapes make
  ``sum_g T(g <- f) < 1``, so the raw action of a ``sigma = 0`` chain is ``1 - escape``, not
  1): :attr:`PotentialDistribution.normalised_action`;
* one violation function ``K`` per comparison: Eq. 28 is for ``K(x) = exp(-x/2)``, so the
  expected value of a softplus fit is not defined (NaN), and the actual and flat actions of
  a row come from the same fit on the same kernel (its main component);
* ``sigma`` of the *true* potential: the spread of the fitted ``beta V`` adds the estimation
  noise, ``E s^2 = sigma^2 + (1/n) tr(C Sigma C)`` (``C`` centring, ``Sigma`` the covariance
  of the estimates), which :attr:`PotentialDistribution.sigma_corrected` subtracts, with
  ``Sigma`` from the likelihood fit (:func:`dbnb.likelihood.fit_likelihood`).

The Letter's raw quantities stay available under their own names (``sigma``,
``expected_action``, ``expected_action_asymptotic``, ``actual_action``) to reproduce its
table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from ..action import violation_terms
from ..likelihood import LikelihoodFit, fit_likelihood
from ..newton import ConvergenceError
from ..potential import PotentialFit
from ._common import freeze, require_fit, summary_series

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
        The fit's minimised action ``S`` as the Letter reports it (raw, not normalised: every
        state of the kernel counted, escapes in the normalisation).
    min_calls : int
    violation : str
        The violation function ``K`` of the fit.
    source : str
    main_action, flat_action : float
        The fit's action on its main component (``sum T K(beta dV)`` over transitions inside
        it, divided by its number of states) and the same sum at ``V = 0`` (``K(0) sum T``):
        the one kernel of the normalised comparison.
    sigma_noise : float
        The estimation noise in ``sigma``: ``sqrt((1/n) tr(C Sigma C))`` over the states of
        ``values`` (gauge-free), from the covariance of the likelihood fit; 0 for a kernel
        without sampling noise, NaN when not estimated.
    """

    values: np.ndarray
    states: tuple[str, ...]
    mu: float
    sigma: float
    actual_action: float
    min_calls: int
    violation: str = ""
    source: str = ""
    main_action: float = float("nan")
    flat_action: float = float("nan")
    sigma_noise: float = float("nan")

    @property
    def n_states(self) -> int:
        return int(self.values.size)

    @property
    def normalised_action(self) -> float:
        """``main_action / flat_action``: 1 for a flat potential whatever the escapes, as
        Eq. 28 is normalised."""
        if not self.flat_action > 0:
            return float("nan")
        return self.main_action / self.flat_action

    @property
    def sigma_corrected(self) -> float:
        """``sqrt(max(sigma^2 - sigma_noise^2, 0))``: the spread of the potential without the
        estimation noise of the fit (NaN when the noise is not estimated)."""
        return float(np.sqrt(max(self.sigma**2 - self.sigma_noise**2, 0.0)))

    @property
    def expected_normalised_action(self) -> float:
        """Eq. 28 at :attr:`sigma_corrected`, to compare with :attr:`normalised_action`; NaN
        unless the fit used the exp kernel (Eq. 28's ``K``)."""
        if self.violation != "exp" or not self.n_states or np.isnan(self.sigma_corrected):
            return float("nan")
        return expected_min_action(self.sigma_corrected, form="exact")

    @property
    def expected_action(self) -> float:
        """``exp(sigma^2) erfc(sigma)`` (Eq. 28) at the raw ``sigma``: the Letter's column."""
        return expected_min_action(self.sigma, form="exact") if self.n_states else float("nan")

    @property
    def expected_action_asymptotic(self) -> float:
        """``1 / (sigma sqrt(pi))``, the large-``sigma`` form used in Table IV."""
        if not self.n_states:
            return float("nan")
        return expected_min_action(self.sigma, form="asymptotic")

    def summary(self) -> pd.Series:
        return summary_series(
            {
                "n_states": self.n_states,
                "mu": self.mu,
                "sigma": self.sigma,
                "expected_action": self.expected_action,
                "expected_action_asymptotic": self.expected_action_asymptotic,
                "actual_action": self.actual_action,
                "sigma_noise": self.sigma_noise,
                "sigma_corrected": self.sigma_corrected,
                "expected_normalised_action": self.expected_normalised_action,
                "normalised_action": self.normalised_action,
                "flat_action": self.flat_action,
            },
            "potential_distribution",
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"beta_V": self.values}, index=pd.Index(self.states, name="state"))


def potential_distribution(fit: PotentialFit, *, min_calls: int = 2,
                           noise: str | None = "likelihood") -> PotentialDistribution:
    """Histogram data and Gaussian fit of ``beta V`` (Fig. 11, Table IV), with the normalised
    action and the noise-corrected ``sigma`` (see the module docstring).

    Uses the finite entries of ``fit.potential`` (the main component; the gauge shifts ``mu``
    but not ``sigma``) of states that appear as a source at least ``min_calls`` times
    (self-transitions included, ``counts.observed_calls()``), the Letter's "sampled at
    least twice". ``mu`` and ``sigma`` are NaN when fewer than two states qualify.

    Parameters
    ----------
    fit : PotentialFit
    min_calls : int
    noise : {"likelihood", None}
        How :attr:`PotentialDistribution.sigma_noise` is estimated: from the covariance of
        the likelihood fit on the same kernel (``fit`` itself when it is a
        :class:`~dbnb.likelihood.LikelihoodFit`, else Firth's penalty, Jeffreys' when Firth's
        does not converge; for a least-action fit this is the noise of the efficient
        estimate, so the correction is if anything too small), or not at all
        (``None``: NaN). A kernel without sampling noise has ``sigma_noise = 0``.
    """
    require_fit(fit)
    if min_calls < 0:
        raise ValueError(f"min_calls must be >= 0, got {min_calls!r}")
    if noise not in ("likelihood", None):
        raise ValueError(f"noise must be 'likelihood' or None, got {noise!r}")
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
    main_action, flat_action = _main_actions(fit)
    if tk.noise_free:
        sigma_noise = 0.0
    elif noise is None or values.size < 2:
        sigma_noise = float("nan")
    else:
        sigma_noise = _estimation_noise(fit, labels)
    return PotentialDistribution(
        values, labels, mu, sigma, float(fit.action), int(min_calls),
        violation=fit.violation, source=tk.counts.source, main_action=main_action,
        flat_action=flat_action, sigma_noise=sigma_noise,
    )


def _main_actions(fit: PotentialFit) -> tuple[float, float]:
    """The fit's action on its main component and the flat action ``V = 0`` there."""
    tk = fit.transitions
    main = (fit.status.reindex(pd.Index(tk.states)) == "main").to_numpy()
    n_main = int(main.sum())
    if n_main == 0:
        return float("nan"), float("nan")
    f, g, t, _ = tk.edges()
    inside = main[f] & main[g]
    rel = fit.relative.reindex(pd.Index(tk.states)).to_numpy(dtype=float)
    k, _, _ = violation_terms(fit.violation, rel[f[inside]] - rel[g[inside]])
    k0, _, _ = violation_terms(fit.violation, np.zeros(1))
    w = t[inside]
    return float(np.dot(w, k) / n_main), float(k0[0] * w.sum() / n_main)


def _estimation_noise(fit: PotentialFit, labels: tuple[str, ...]) -> float:
    """``sqrt((1/n) tr(C Sigma C))`` over ``labels``, ``Sigma`` the likelihood covariance."""
    lf = fit if isinstance(fit, LikelihoodFit) else None
    for penalty in ("firth", "jeffreys"):  # Jeffreys when Firth's pseudo-counts do not settle
        if lf is not None:
            break
        try:
            lf = fit_likelihood(fit.transitions, penalty=penalty)
        except ConvergenceError:
            continue
        except ValueError:
            return float("nan")
    if lf is None:
        return float("nan")
    se = lf.stderr.reindex(pd.Index(labels))
    use = se.index[np.isfinite(se.to_numpy(dtype=float))]
    n = len(use)
    if n < 2:
        return float("nan")
    total = lf.variance_of(pd.Series(1.0, index=use))
    noise2 = (float(np.sum(se[use].to_numpy() ** 2)) - total / n) / n
    return float(np.sqrt(max(noise2, 0.0)))


def action_scale_table(
    results: Mapping[str, PotentialDistribution | PotentialFit], *, min_calls: int = 2
) -> pd.DataFrame:
    """The Letter's Table IV, and the comparison Eq. 28 supports.

    Columns, per agent: the Letter's raw ``sigma``, expected minimum action (exact Eq. 28
    and its large-``sigma`` form) and actual minimum action (``actual_min_action``,
    unnormalised); then ``sigma_corrected`` (without the fit's estimation noise), Eq. 28 at
    it (``expected_normalised_action``, exp kernel only) against the actual action divided
    by the flat action of the same kernel (``normalised_action``: 1 for a flat potential),
    with ``flat_action`` and the violation function ``K``.

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
                "sigma_corrected": d.sigma_corrected,
                "expected_normalised_action": d.expected_normalised_action,
                "normalised_action": d.normalised_action,
                "flat_action": d.flat_action,
                "violation": d.violation,
                "n_states": d.n_states,
            }
        )
    cols = [
        "agent", "sigma", "expected_min_action_exact", "expected_min_action_asymptotic",
        "actual_min_action", "sigma_corrected", "expected_normalised_action",
        "normalised_action", "flat_action", "violation", "n_states",
    ]
    return pd.DataFrame(rows, columns=cols).set_index("agent")
