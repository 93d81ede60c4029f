r"""Pairs measured both ways: the two sides of Eq. 5 (Figs. 4, 7, 9)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..kernels import TransitionKernel, log_ratio_interval, log_t_variance
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
    summary_series,
)

__all__ = ["PairCheck", "pair_intervals", "pairs"]


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
    n0_f, n0_g : numpy.ndarray or None
        ``N0(f)``, ``N0(g)`` of the pair members (for :meth:`interval`).
    noise_free : bool
        The kernel has no sampling noise (no interval).

    Notes
    -----
    ``sigma`` is the delta-method bar, a large-count approximation: at a few counts per pair
    it under-covers (at ``N = 1..10`` per pair a ``y +- 1.96 sigma`` interval holds the true
    log-ratio far less often than 95 %, and keeping only pairs seen both ways selects on the
    outcome). :meth:`interval` gives the exact conditional-binomial interval instead, and
    :func:`pair_intervals` gives it for every observed pair, one-way pairs included.
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
    n0_f: np.ndarray | None = None
    n0_g: np.ndarray | None = None
    noise_free: bool = False

    @property
    def n_pairs(self) -> int:
        return int(self.x.size)

    def interval(self, level: float = 0.95, method: str = "clopper-pearson") -> pd.DataFrame:
        """Intervals for ``y = log T(g<-f)/T(f<-g)`` honest at small counts: exact given the
        pair's total (:func:`dbnb.kernels.log_ratio_interval`), beside the delta-method
        ``y +- z sigma`` (columns ``log_ratio``, ``low``, ``high``, ``low_delta``,
        ``high_delta``). NaN for a kernel without sampling noise.
        """
        if self.n0_f is None or self.n0_g is None:
            raise ValueError("this PairCheck carries no N0 (made by an older dbnb): rebuild it "
                             "with dbnb.diagnostics.pairs")
        if self.noise_free:  # the counts are not data
            low = high = np.full(self.n_pairs, np.nan)
        else:
            low, high = log_ratio_interval(self.n_forward, self.n_backward, self.n0_f,
                                           self.n0_g, level=level, method=method)
        z = float(stats.norm.ppf(0.5 + level / 2))
        return pd.DataFrame({"log_ratio": self.y, "low": low, "high": high,
                             "low_delta": self.y - z * self.sigma,
                             "high_delta": self.y + z * self.sigma})

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
        return summary_series(
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
            "pairs",
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
    n0_f, n0_g = n0[f0][keep], n0[g0][keep]
    freeze(*arrays, n0_f, n0_g)
    return PairCheck(
        tk.states,
        *arrays,
        threshold=threshold,
        n_excluded=int((~keep).sum()),
        violation=fit.violation,
        estimator=tk.method,
        source=tk.counts.source,
        design=design,
        n0_f=n0_f,
        n0_g=n0_g,
        noise_free=tk.noise_free,
    )


def pair_intervals(obj: PotentialFit | TransitionKernel, *, level: float = 0.95,
                   method: str = "clopper-pearson") -> pd.DataFrame:
    r"""Exact conditional intervals for the log-ratio of every observed pair (Eq. 5),
    one-way pairs included.

    For each unordered pair ``{f, g}`` (``f < g`` by state index) with ``m = N(g<-f) +
    N(f<-g) > 0``: the interval of :func:`dbnb.kernels.log_ratio_interval` for
    ``log T(g<-f)/T(f<-g) = beta V(f) - beta V(g)`` under detailed balance, from the split of
    ``m`` given ``m``. Nothing is selected on the outcome (a pair seen once is as much data as
    a pair seen a thousand times, with a wider interval), so coverage holds in every bin of
    ``m``; a pair seen one way has one infinite end.

    Parameters
    ----------
    obj : PotentialFit or TransitionKernel
        A fit (its kernel is used, and its ``beta dV`` reported as ``beta_dV``) or a kernel.
    level : float
        Two-sided confidence level.
    method : {"clopper-pearson", "mid-p"}

    Returns
    -------
    pandas.DataFrame
        Columns ``f``, ``g`` (labels), ``N_forward``, ``N_backward``, ``m``, ``N0_f``,
        ``N0_g``, ``log_ratio`` (``+-inf`` for one-way pairs), ``low``, ``high`` and, for a
        fit, ``beta_dV``. A kernel without sampling noise raises: its counts are not data.
    """
    tk = obj.transitions if isinstance(obj, PotentialFit) else obj
    if not isinstance(tk, TransitionKernel):
        raise TypeError(f"expected a PotentialFit or TransitionKernel, got {type(obj).__name__}")
    if tk.noise_free:
        raise ValueError("the kernel has no sampling noise: its log-ratios have no interval")
    f, g, _, c = tk.edges()
    keep = c > 0
    f, g, c = f[keep], g[keep], c[keep].astype(float)
    n = tk.n_states
    lo, hi = np.minimum(f, g), np.maximum(f, g)
    uniq, inv = np.unique(lo * n + hi, return_inverse=True)
    m = np.bincount(inv, weights=c, minlength=uniq.size)
    y = np.bincount(inv, weights=np.where(f == lo, c, 0.0), minlength=uniq.size)
    i, j = uniq // n, uniq % n
    n0 = np.asarray(tk.n0, dtype=float)
    low, high = log_ratio_interval(y, m - y, n0[i], n0[j], level=level, method=method)
    with np.errstate(divide="ignore"):
        ratio = np.log(y / n0[i]) - np.log((m - y) / n0[j])
    s = np.array(tk.states, dtype=object)
    out = pd.DataFrame({"f": s[i], "g": s[j], "N_forward": y.astype(np.int64),
                        "N_backward": (m - y).astype(np.int64), "m": m.astype(np.int64),
                        "N0_f": n0[i], "N0_g": n0[j], "log_ratio": ratio, "low": low,
                        "high": high})
    if isinstance(obj, PotentialFit):
        rel, comp, pot = potential_arrays(obj)
        with np.errstate(invalid="ignore"):
            out["beta_dV"] = np.where(comp[i] == comp[j], rel[i] - rel[j], pot[i] - pot[j])
    return out
