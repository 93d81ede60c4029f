r"""Pairs seen one way only, against the Eq. 25 "bound" and a real lower bound (Fig. 10).

Eq. 25 replaces the unseen ``T(f <- g)`` by ``1/N(g)``, a typical value rather than a bound:
the true ``beta dV`` lies below it for a sizeable share of one-way pairs (17 % in issue 11's
measurement, 11-43 % on the synthetic reversible chains of the tests).
:attr:`OneWayCheck.lower_bound` is a one-sided confidence bound at a stated ``level``: given
the pair's total ``m = N(g <- f)`` (all of it one way), detailed balance makes
``N(g <- f) ~ Binomial(m, p)`` with ``logit p = beta dV + log N0(f)/N0(g)`` (the conditional
model of :func:`dbnb.likelihood.fit_likelihood`), and ``m`` successes out of ``m`` give the
exact bound ``p >= (1 - level)^(1/m)``. For large ``m`` it is Eq. 25 minus
``log(-log(1 - level))``, i.e. ``log 3`` at 95 %: the rule of three for the unseen direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import logit

from ..potential import PotentialFit
from ._common import EdgeTable, freeze, potential_arrays, require_fit, sample_rows, summary_series

__all__ = ["OneWayCheck", "one_way_pairs"]


@dataclass(frozen=True, eq=False)
class OneWayCheck:
    r"""Pairs seen one way only, against the Eq. 25 lower bound (Fig. 10).

    Attributes
    ----------
    states : tuple of str
    f, g : numpy.ndarray of int
        ``f -> g`` observed, ``g -> f`` never.
    dv : numpy.ndarray
        Fitted ``beta V(f) - beta V(g)``: from ``fit.relative`` when ``f`` and ``g`` share an
        SCC, else from ``fit.potential`` (``+inf``, ``-inf`` or NaN).
    bound : numpy.ndarray
        The Letter's printed Eq. 25, ``log( (N(g<-f) / N(f)) / (1 / N(g)) ) = log N(g<-f) +
        log N(g) - log N(f)``: not a bound at any stated confidence.
    lower_bound : numpy.ndarray
        A one-sided ``level`` confidence lower bound on ``beta V(f) - beta V(g)``:
        ``logit((1 - level)^(1 / N(g<-f))) - log N(f) + log N(g)`` (see the module
        docstring); NaN for a kernel without sampling noise (there, a one-way pair is one).
    n_forward : numpy.ndarray
        ``N(g<-f)``.
    same_component : numpy.ndarray of bool
    percentile : float
        Which percentile of ``dv - bound`` :attr:`offset` reports.
    level : float
        Confidence level of :attr:`lower_bound`.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    dv: np.ndarray
    bound: np.ndarray
    lower_bound: np.ndarray
    n_forward: np.ndarray
    same_component: np.ndarray
    percentile: float = 90.0
    level: float = 0.95
    estimator: str = ""
    source: str = ""

    @property
    def n_pairs(self) -> int:
        return int(self.dv.size)

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.dv)

    @property
    def n_finite(self) -> int:
        return int(self.finite.sum())

    @property
    def fraction_satisfied(self) -> float:
        """Fraction of pairs with a non-NaN ``dv`` for which ``dv >= bound`` (``+inf`` counts):
        the Letter's Eq. 25."""
        ok = ~np.isnan(self.dv)
        if not ok.any():
            return float("nan")
        return float(np.mean(self.dv[ok] >= self.bound[ok]))

    @property
    def fraction_above_lower(self) -> float:
        """Fraction of pairs with a non-NaN ``dv`` and ``lower_bound`` for which ``dv >=
        lower_bound``; NaN when none (a kernel without sampling noise)."""
        ok = ~np.isnan(self.dv) & ~np.isnan(self.lower_bound)
        if not ok.any():
            return float("nan")
        return float(np.mean(self.dv[ok] >= self.lower_bound[ok]))

    @property
    def offset(self) -> float:
        """The ``percentile``-th percentile of ``dv - bound`` over finite ``dv``.

        Fig. 10 draws the line ``dv = bound + offset``.
        """
        d = (self.dv - self.bound)[self.finite]
        return float(np.percentile(d, self.percentile)) if d.size else float("nan")

    def sample(self, size: int | float | None = 500, *, seed: int = 42) -> np.ndarray:
        """Indices of ``size`` random pairs with finite ``dv`` (the Letter shows 500)."""
        fin = np.flatnonzero(self.finite)
        return fin[sample_rows(fin.size, size, seed)]

    def summary(self) -> pd.Series:
        return summary_series(
            {
                "n_pairs": self.n_pairs,
                "n_finite": self.n_finite,
                "fraction_satisfied": self.fraction_satisfied,
                f"fraction_above_lower_{100 * self.level:g}": self.fraction_above_lower,
                f"offset_p{self.percentile:g}": self.offset,
            },
            "one_way",
        )

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "beta_dV": self.dv,
                "bound": self.bound,
                "lower_bound": self.lower_bound,
                "N_forward": self.n_forward,
                "same_component": self.same_component,
            }
        )


def one_way_pairs(fit: PotentialFit, *, percentile: float = 90.0,
                  level: float = 0.95) -> OneWayCheck:
    r"""Pairs with ``f -> g`` measured and ``g -> f`` never, against Eq. 25 (Fig. 10).

    With ``N(g <- f)`` observed and ``N(f <- g) = 0`` out of ``N(g)`` trials, the Letter
    takes the unseen ``T(f <- g)`` to be below about ``1/N(g)``, so

    .. math::

        \beta V(f) - \beta V(g) = \log\frac{T(g\leftarrow f)}{T(f\leftarrow g)}
        > \log\frac{N(g\leftarrow f)/N(f)}{1/N(g)}.   \qquad (25)

    ``N(x)``, the number of transitions out of ``x``, is the kernel's ``N0(x)``
    (``fit.transitions.n0``), so the bound uses the same estimator as the fit. It is not a
    bound at any confidence; beside it, :attr:`OneWayCheck.lower_bound` is one at ``level``:

    .. math::

        \beta V(f) - \beta V(g) \ge \operatorname{logit}\big((1 - \text{level})^{1/N(g
        \leftarrow f)}\big) - \log\frac{N(f)}{N(g)}
        \;\approx\; (25) - \log\big(-\log(1 - \text{level})\big)

    (exact given the pair total under the conditional binomial model; ``- log 3`` at 95 %
    for large counts, the rule of three).

    Parameters
    ----------
    fit : PotentialFit
    percentile : float
        Percentile of ``dv - bound`` reported as :attr:`OneWayCheck.offset` (default 90).
    level : float
        Confidence level of the lower bound, in ``(0, 1)`` (default 0.95).
    """
    require_fit(fit)
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    tk = fit.transitions
    rel, comp, pot = potential_arrays(fit)
    t = sp.csr_array(tk.matrix)
    support = sp.csr_array((t != 0).astype(np.int8))
    one_way = (support - support.multiply(support.T)).tocoo()  # T[g, f] > 0, T[f, g] == 0
    g0 = one_way.row.astype(np.int64)
    f0 = one_way.col.astype(np.int64)
    sel = one_way.data > 0
    f0, g0 = f0[sel], g0[sel]
    order = np.lexsort((g0, f0))
    f0, g0 = f0[order], g0[order]
    _, n_fw = EdgeTable(tk)(f0, g0)
    n0 = np.asarray(tk.n0, dtype=float)
    offset = np.log(n0[g0]) - np.log(n0[f0])
    bound = np.log(n_fw) + offset
    if tk.noise_free:
        lower = np.full(bound.shape, np.nan)
    else:
        lower = logit((1.0 - level) ** (1.0 / n_fw)) + offset
    same = comp[f0] == comp[g0]
    with np.errstate(invalid="ignore"):
        dv = np.where(same, rel[f0] - rel[g0], pot[f0] - pot[g0])
    arrays = [f0, g0, dv, bound, lower, n_fw.astype(np.int64), same]
    freeze(*arrays)
    return OneWayCheck(
        tk.states,
        *arrays,
        percentile=float(percentile),
        level=float(level),
        estimator=tk.method,
        source=tk.counts.source,
    )
