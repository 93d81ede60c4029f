r"""Sampled against exact: do the Poisson error bars cover a kernel known without noise?

Beyond the Letter. "Exact" here is any kernel free of sampling noise: the log-probability
kernel of a local model (:mod:`dbnb.exact`) or a synthetic chain (:mod:`dbnb.synthetic`).
:func:`compare_to_exact` tests the pair error bars of Eq. 5, :func:`transition_check` the
individual counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..counts import entries
from ..kernels import TransitionKernel, log_t_variance
from ._common import EdgeTable, freeze, mutual_pairs, sigma_fraction, summary_series

__all__ = ["ExactComparison", "compare_to_exact", "coverage_by_total", "transition_check"]


@dataclass(frozen=True, eq=False)
class ExactComparison:
    r"""Sampled pair log-ratios against an exactly known kernel.

    For every pair measured both ways in the sample, ``y = log T(g<-f)/T(f<-g)`` from the
    counts, its Poisson error ``sigma`` (as in :class:`~dbnb.diagnostics.PairCheck`), and the
    exact value ``y_exact`` from the exact kernel. If the error bars are honest, ``z = (y -
    y_exact) / sigma`` is roughly standard normal: about 68 % of pairs within 1 sigma and 95 %
    within 2. The error is the delta-method one of the sampled kernel's design
    (:func:`dbnb.kernels.log_t_variance`; with recorded calls ``1/N - 1/N0`` per leg), a
    large-count approximation: pairs with small counts have skewed errors, and keeping only
    pairs seen both ways pulls their log-ratios toward 0 (a selection bias no symmetric bar
    fixes), which ``by_min_count`` shows. It bins on the *observed* smaller count, so it
    selects on the outcome too: read it as a description, not as coverage at a given count;
    :func:`coverage_by_total` measures coverage at a given count (every observed pair, binned
    on the pair total, with the exact conditional intervals).

    Attributes
    ----------
    states : tuple of str
        The pair labels refer to these (the sampled kernel's states).
    f, g : numpy.ndarray of int
        Pair members, oriented ``f > g`` (the opposite of :class:`PairCheck`; the sign of
        ``y``, ``y_exact`` and ``z`` follows it), sorted by ``f`` then ``g``.
    y, sigma, y_exact : numpy.ndarray
        Sampled log ratio, its error, exact log ratio.
    n_min : numpy.ndarray
        ``min(N(g<-f), N(f<-g))`` per pair.
    """

    states: tuple[str, ...]
    f: np.ndarray
    g: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    y_exact: np.ndarray
    n_min: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.y.size)

    @property
    def z(self) -> np.ndarray:
        return (self.y - self.y_exact) / self.sigma

    @property
    def within_1sigma(self) -> float:
        return sigma_fraction(self.y - self.y_exact, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return sigma_fraction(self.y - self.y_exact, self.sigma, 2.0)

    def by_min_count(self, edges: Sequence[int] = (1, 2, 5, 10, 20)) -> pd.DataFrame:
        """Coverage per bin of the smaller count of the pair."""
        rows = []
        bounds = [*edges, np.inf]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            m = (self.n_min >= lo) & (self.n_min < hi)
            r = self.y[m] - self.y_exact[m]
            rows.append({
                "min count": f"{lo}-{hi - 1:g}" if np.isfinite(hi) else f">={lo}",
                "pairs": int(m.sum()),
                "within 1 sigma": sigma_fraction(r, self.sigma[m], 1.0),
                "within 2 sigma": sigma_fraction(r, self.sigma[m], 2.0),
                "mean z": float(np.mean(r / self.sigma[m])) if m.any() else float("nan"),
            })
        return pd.DataFrame(rows).set_index("min count")

    def summary(self) -> pd.Series:
        return summary_series(
            {
                "n_pairs": self.n_pairs,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "mean_z": float(np.mean(self.z)) if self.n_pairs else float("nan"),
                "std_z": float(np.std(self.z)) if self.n_pairs else float("nan"),
            },
            "sampled vs exact",
        )

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame({"f": s[self.f], "g": s[self.g], "log_ratio": self.y,
                             "sigma": self.sigma, "log_ratio_exact": self.y_exact,
                             "z": self.z, "N_min": self.n_min})


def compare_to_exact(sampled: TransitionKernel, exact: TransitionKernel) -> ExactComparison:
    """Do the pair error bars of the sampled kernel cover the exact log ratios?

    Parameters
    ----------
    sampled : TransitionKernel
        Estimated from counts with exact ``N0`` (``estimate_kernel(counts, "exact")``); not
        a noise-free kernel (it has no error bars to test).
    exact : TransitionKernel
        The exact kernel over (at least) the same states, e.g. from token log-probabilities
        (:mod:`dbnb.exact`) or a synthetic chain. States are matched by label.

    Returns
    -------
    ExactComparison
        Pairs measured both ways in ``sampled`` whose exact probabilities are both positive.
    """
    for name, k in (("sampled", sampled), ("exact", exact)):
        if not isinstance(k, TransitionKernel):
            raise TypeError(f"{name} must be a TransitionKernel, got {type(k).__name__}")
    if sampled.noise_free:
        raise ValueError(f"sampled must be estimated from counts; {sampled!r} has no "
                         "sampling noise and so no error bars to compare")
    g, f = mutual_pairs(sampled)  # g < f
    order = np.lexsort((g, f))
    f, g = f[order], g[order]
    table = EdgeTable(sampled)
    t_fg, n_fg = table(f, g)  # T(g <- f), N(g <- f)
    t_gf, n_gf = table(g, f)  # T(f <- g), N(f <- g)
    n0 = np.asarray(sampled.n0, dtype=float)
    y = np.log(t_fg) - np.log(t_gf)
    sigma = np.sqrt(log_t_variance(n_fg, n0[f], sampled.design)
                    + log_t_variance(n_gf, n0[g], sampled.design))
    pos = pd.Index(exact.states).get_indexer(np.array(sampled.states, dtype=object))
    ok = (pos[f] >= 0) & (pos[g] >= 0)
    te = sp.csr_array(exact.matrix)
    ef, eg = pos[f[ok]], pos[g[ok]]
    fwd = entries(te, eg, ef)
    bwd = entries(te, ef, eg)
    good = (fwd > 0) & (bwd > 0)
    sel = np.flatnonzero(ok)[good]
    y_exact = np.log(fwd[good]) - np.log(bwd[good])
    arrays = (f[sel], g[sel], y[sel], sigma[sel], y_exact, np.minimum(n_fg, n_gf)[sel])
    freeze(*arrays)
    return ExactComparison(tuple(sampled.states), *arrays)


def transition_check(sampled: TransitionKernel, exact: TransitionKernel, *,
                     min_expected: float = 5.0) -> pd.Series:
    r"""Per-transition counting check of sampled counts against an exact kernel.

    For every transition ``f -> g`` (``f != g``, both sampled states) whose expected count
    ``E = N0(f) T_exact(g<-f)`` is at least ``min_expected``, ``z = (N(g<-f) - E) /
    sqrt(E (1 - T_exact))`` (binomial). Returns the number of transitions, ``chi2 = sum z^2``,
    ``chi2 / dof`` (dof = number of transitions), its p-value, the mean and spread of ``z``,
    and the fractions within 1 and 2.
    """
    pos = pd.Index(exact.states).get_indexer(np.array(sampled.states, dtype=object))
    have = np.flatnonzero(pos >= 0)
    te = sp.csr_array(exact.matrix)[pos[have]][:, pos[have]].toarray()  # T[g, f]
    n0 = np.asarray(sampled.n0, dtype=float)[have]
    counts = sp.csr_array(sampled.counts.matrix)[have][:, have].toarray()
    np.fill_diagonal(te, 0.0)
    expected = te * n0[None, :]
    sel = expected >= min_expected
    e, t, n = expected[sel], te[sel], counts[sel]
    z = (n - e) / np.sqrt(e * (1.0 - t))
    chi2 = float(np.sum(z**2))
    dof = int(z.size)
    return summary_series(
        {
            "transitions": dof,
            "chi2": chi2,
            "chi2_per_dof": chi2 / dof if dof else float("nan"),
            "p_value": float(stats.chi2.sf(chi2, dof)) if dof else float("nan"),
            "mean_z": float(np.mean(z)) if dof else float("nan"),
            "std_z": float(np.std(z)) if dof else float("nan"),
            "within_1": float(np.mean(np.abs(z) <= 1)) if dof else float("nan"),
            "within_2": float(np.mean(np.abs(z) <= 2)) if dof else float("nan"),
        },
        "transitions vs exact",
    )


def coverage_by_total(sampled: TransitionKernel, exact: TransitionKernel, *,
                      level: float = 0.95, method: str = "clopper-pearson",
                      edges: Sequence[int] = (1, 2, 5, 10, 20)) -> pd.DataFrame:
    """Coverage of the exact conditional pair intervals against a kernel known without noise,
    per bin of the pair total ``m = N(g<-f) + N(f<-g)``.

    Every pair observed in ``sampled`` (one-way pairs included) whose exact probabilities are
    both positive gets the interval of :func:`dbnb.diagnostics.pair_intervals`; given ``m``
    its coverage does not depend on the outcome, so binning on ``m`` (unlike
    :meth:`ExactComparison.by_min_count`, which bins on the smaller observed count) measures
    coverage at a given count: at least ``level`` per bin for ``"clopper-pearson"`` when the
    exact kernel is in detailed balance (Eq. 5) and is the sampled one's truth.

    Returns
    -------
    pandas.DataFrame
        Index ``pair total`` (bins ``lo-hi``); columns ``pairs``, ``covered`` (fraction; NaN
        for an empty bin), ``one_way`` (fraction of the bin's pairs seen one way).
    """
    from .pairs import pair_intervals

    iv = pair_intervals(sampled, level=level, method=method)
    pos = pd.Index(exact.states).get_indexer(iv["f"].to_numpy(dtype=object))
    pos_g = pd.Index(exact.states).get_indexer(iv["g"].to_numpy(dtype=object))
    ok = (pos >= 0) & (pos_g >= 0)
    te = sp.csr_array(exact.matrix)
    fwd = np.zeros(len(iv))
    bwd = np.zeros(len(iv))
    fwd[ok] = entries(te, pos_g[ok], pos[ok])  # T(g <- f)
    bwd[ok] = entries(te, pos[ok], pos_g[ok])  # T(f <- g)
    good = ok & (fwd > 0) & (bwd > 0)
    iv = iv[good]
    truth = np.log(fwd[good]) - np.log(bwd[good])
    hit = ((iv["low"] <= truth) & (truth <= iv["high"])).to_numpy()
    m = iv["m"].to_numpy()
    one_way = ((iv["N_forward"] == 0) | (iv["N_backward"] == 0)).to_numpy()
    rows = []
    bounds = [*edges, np.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        b = (m >= lo) & (m < hi)
        rows.append({"pair total": f"{lo}-{hi - 1:g}" if np.isfinite(hi) else f">={lo}",
                     "pairs": int(b.sum()),
                     "covered": float(hit[b].mean()) if b.any() else float("nan"),
                     "one_way": float(one_way[b].mean()) if b.any() else float("nan")})
    return pd.DataFrame(rows).set_index("pair total")
