r"""Pairs measured both ways: the two sides of Eq. 5 (Figs. 4, 7, 9)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..kernels import log_t_variance
from ..potential import PotentialFit
from ._common import (
    EdgeTable,
    check_design,
    free_potentials,
    freeze,
    mutual_pairs,
    ols_slope,
    pearson_corr,
    potential_arrays,
    require_fit,
    sample_rows,
    sigma_fraction,
)

__all__ = ["PairCheck", "pairs"]


@dataclass(frozen=True, eq=False)
class PairCheck:
    r"""Pairs measured both ways: the two sides of Eq. 5.

    One row per unordered pair ``{f, g}`` (oriented ``f < g`` by state index):
    ``x = beta(V(f) - V(g))`` from the fit and ``y = log T(g<-f) / T(f<-g)`` from the counts,
    with the counting error ``sigma`` of ``y``.

    Attributes
    ----------
    states : tuple of str
        The kernel's state labels (``f``, ``g`` index into it).
    f, g : numpy.ndarray of int
        Pair members.
    x, y, sigma : numpy.ndarray
        ``beta dV``, log ratio and its error: the quadrature sum of the two legs'
        :func:`dbnb.kernels.log_t_variance` under ``design``, e.g. with recorded calls
        ``sqrt(1/N(g<-f) - 1/N0(f) + 1/N(f<-g) - 1/N0(g))``; NaN for a kernel without
        sampling noise (no error bar).
    n_forward, n_backward : numpy.ndarray
        ``N(g<-f)``, ``N(f<-g)``.
    threshold : float
        Pairs with ``|x| > threshold`` were excluded.
    n_excluded : int
        How many pairs measured both ways the threshold removed.
    violation, estimator, source : str
        Provenance: violation function ``K`` of the fit, ``N0`` estimator, data source.
    design : str
        The sampling design of the error bars (:data:`dbnb.kernels.DESIGNS`); ``"none"``
        for a kernel without sampling noise.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    n_forward: np.ndarray
    n_backward: np.ndarray
    threshold: float
    n_excluded: int
    violation: str = ""
    estimator: str = ""
    source: str = ""
    design: str = ""

    @property
    def n_pairs(self) -> int:
        return int(self.x.size)

    @property
    def dof(self) -> int:
        """Degrees of freedom of :attr:`chi2`: pairs minus the free potentials they
        determine (states in the pairs minus connected components of the pair graph).

        The potential is a parameter of these pairs too: on a tree of pairs (Claude's Table
        II: 2 pairs, 2 free potentials) every log-ratio is fitted exactly and nothing is
        tested; ``dof`` is then 0. Only cycles of pairs can disagree with a potential, so
        ``dof`` is the cycle rank of the pair graph.
        """
        return self.n_pairs - free_potentials(self.f, self.g)

    @property
    def residual(self) -> np.ndarray:
        """``y - x``: the violation of Eq. 5 per pair."""
        return self.y - self.x

    @property
    def within_1sigma(self) -> float:
        """Fraction of pairs with ``|y - x| <= sigma`` (NaN without pairs or without error
        bars)."""
        return sigma_fraction(self.residual, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return sigma_fraction(self.residual, self.sigma, 2.0)

    @property
    def chi2(self) -> float:
        """``sum ((y - x) / sigma)^2`` (NaN without error bars)."""
        return float(np.sum((self.residual / self.sigma) ** 2))

    @property
    def chi2_per_dof(self) -> float:
        r"""``chi2 / dof`` (:attr:`dof`); NaN when ``dof <= 0`` (nothing is tested) or without
        error bars.

        About 1 under detailed balance when the counts are large; a weighted least-squares
        potential on the pairs alone would make ``chi2`` chi-squared with ``dof`` degrees of
        freedom. The least-action potential is fitted to every transition with other weights,
        so this is a descriptive calibration, not an exact test: for one, see
        :func:`dbnb.hodge` (the Wald statistic on the cycles) or :func:`dbnb.balance_test`.
        """
        dof = self.dof
        return self.chi2 / dof if dof > 0 else float("nan")

    @property
    def letter_chi2_ndf(self) -> float:
        r"""The statistic the authors' plotting code prints as "χ²/ndf" on the pair plots
        (Figs. 4, 7, 9): the *unweighted* mean of ``(y - x)^2`` over the pairs seen more than
        once in each direction (over every pair for a kernel without sampling noise).

        No error enters and no degree of freedom is subtracted: a mean squared residual in
        units of ``(beta V)^2``, kept under its own name to compare with the Letter's numbers.
        NaN when no pair qualifies.
        """
        keep = (np.ones(self.n_pairs, dtype=bool) if self.design == "none"
                else (self.n_forward > 1) & (self.n_backward > 1))
        return float(np.mean(self.residual[keep] ** 2)) if keep.any() else float("nan")

    @property
    def pearson_r(self) -> float:
        return pearson_corr(self.x, self.y)

    @property
    def slope(self) -> float:
        """Ordinary least-squares slope of ``y`` on ``x`` (1 under detailed balance)."""
        return ols_slope(self.x, self.y)

    @property
    def r_squared(self) -> float:
        """``1 - sum (y - x)^2 / sum (y - mean y)^2``: the share of the log-ratio variance the
        potential explains (about the diagonal ``y = x``, not a regression line)."""
        if self.n_pairs < 2:
            return float("nan")
        return float(1 - np.sum(self.residual**2) / np.sum((self.y - self.y.mean()) ** 2))

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_pairs": self.n_pairs,
                "n_excluded": self.n_excluded,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "dof": self.dof,
                "chi2_per_dof": self.chi2_per_dof,
                "letter_chi2_ndf": self.letter_chi2_ndf,
                "pearson_r": self.pearson_r,
                "slope": self.slope,
            },
            name="pairs",
        )

    def sample(self, fraction: float | int | None = 0.2, *, seed: int = 42) -> np.ndarray:
        """Row indices of a reproducible random subset (the Letter plots 1/5 or 1/10, seed 42)."""
        return sample_rows(self.n_pairs, fraction, seed)

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "beta_dV": self.x,
                "log_ratio": self.y,
                "sigma": self.sigma,
                "N_forward": self.n_forward,
                "N_backward": self.n_backward,
            }
        )


def pairs(fit: PotentialFit, *, exclude_above: float | None = None,
          design: str | None = None) -> PairCheck:
    r"""Check Eq. 5 on every pair measured both ways (Figs. 4, 7, 9).

    For each unordered pair ``{f, g}`` of fitted states with ``N(g<-f) > 0`` and
    ``N(f<-g) > 0``

    .. math::

        x = \beta V(f) - \beta V(g), \qquad
        y = \log \frac{T(g \leftarrow f)}{T(f \leftarrow g)}, \qquad
        \sigma_y^2 = \operatorname{var} \log \hat T(g \leftarrow f)
                   + \operatorname{var} \log \hat T(f \leftarrow g),

    each leg by :func:`dbnb.kernels.log_t_variance` (with recorded calls
    ``1/N(g<-f) - 1/N0(f)``), and detailed balance (Eq. 5) says ``y = x``.

    Parameters
    ----------
    fit : PotentialFit
        The least-action fit. ``x`` uses ``fit.relative`` (potential within each state's own
        strongly connected component); a pair measured both ways always lies inside one SCC,
        so ``x`` is finite even outside the main component.
    exclude_above : float, optional
        Drop pairs with ``|x|`` above this. Default: the Letter's rule, ``log`` of the total
        number of recorded transitions between fitted states
        (``fit.transitions.counts.n_samples``). Pass ``numpy.inf`` to keep every pair.
    design : {"multinomial", "nominal", "letter", "none"}, optional
        Sampling design of the error bars; default the kernel's
        (:attr:`dbnb.kernels.TransitionKernel.design`). ``"letter"`` redraws the Letter's
        bars, ``sqrt(1/N(g<-f) + 1/N0(f) + 1/N(f<-g) + 1/N0(g))``. A kernel without
        sampling noise always has ``"none"``: no error bars.

    Returns
    -------
    PairCheck
        Zero rows (and NaN fractions) when no pair is measured both ways.
    """
    require_fit(fit)
    tk = fit.transitions
    design = check_design(tk, design)
    rel, _, _ = potential_arrays(fit)
    f0, g0 = mutual_pairs(tk)
    table = EdgeTable(tk)
    t_fw, n_fw = table(f0, g0)
    t_bw, n_bw = table(g0, f0)
    n0 = np.asarray(tk.n0, dtype=float)
    x = rel[f0] - rel[g0]
    y = np.log(t_fw) - np.log(t_bw)
    sigma = np.sqrt(log_t_variance(n_fw, n0[f0], design)
                    + log_t_variance(n_bw, n0[g0], design))
    if exclude_above is None:
        total = tk.counts.n_samples
        threshold = float(np.log(total)) if total > 0 else np.inf
    else:
        threshold = float(exclude_above)
        if np.isnan(threshold) or threshold < 0:
            raise ValueError(f"exclude_above must be >= 0 (or inf), got {exclude_above!r}")
    keep = np.abs(x) <= threshold
    arrays = [a[keep] for a in (f0, g0, x, y, sigma, n_fw, n_bw)]
    arrays[5] = arrays[5].astype(np.int64)
    arrays[6] = arrays[6].astype(np.int64)
    freeze(*arrays)
    return PairCheck(
        tk.states,
        *arrays,
        threshold=threshold,
        n_excluded=int((~keep).sum()),
        violation=fit.violation,
        estimator=tk.method,
        source=tk.counts.source,
        design=design,
    )
