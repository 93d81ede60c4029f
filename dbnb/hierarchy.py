r"""The model hierarchy that makes "detailed balance" testable.

Three nested models of the counts (``E N(g <- f)``, off-diagonal cells):

* **popularity** (quasi-independence): ``log E N(g <- f) = a(f) + b(g)``: the reply ignores the
  prompt but for a per-source rate. Trivially in detailed balance, with ``beta V = -log p``;
* **detailed balance** (quasi-symmetry): ``a(f) + b(g) + s(f, g)`` with ``s`` symmetric,
  i.e. every pair's split binomial with ``logit p = beta V(f) - beta V(g) + log N0(f)/N0(g)``
  (:mod:`dbnb.likelihood`);
* **free**: every pair its own split.

:func:`balance_test` tests detailed balance against free (is it violated?) and popularity
against detailed balance (does the prompt matter, symmetrically?), by likelihood ratios with
chi-squared and parametric-bootstrap p-values. :func:`held_out` fits ``beta V`` on half of the
calls and scores the log-ratios of the other half, beside the popularity model and the noise
ceiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit
from tqdm.auto import tqdm

from . import graph
from .counts import TransitionCounts
from .kernels import Estimator, TransitionKernel
from .likelihood import PairData, _fit_pseudo, fit_likelihood, pair_data
from .potential import PotentialFit

__all__ = ["BalanceTest", "HeldOut", "balance_test", "held_out"]


# ---------------------------------------------------------------------------- the test
@dataclass(frozen=True)
class BalanceTest:
    """Likelihood-ratio test of detailed balance against the free per-pair model.

    Attributes
    ----------
    statistic : float
        ``G^2 = 2 (log L_free - log L_DB)`` over the observed pairs, both maximised (plain
        likelihood; pairs between strongly connected components are fitted exactly by both).
    dof : int
        The cycle rank of the pair graph inside the components, ``E - n + c``: the number of
        independent cycles whose affinity detailed balance sets to zero.
    p_value : float
        ``P(G^2 >= statistic)`` under detailed balance: ``p_bootstrap`` when a bootstrap
        was run, else ``p_asymptotic``. NaN when ``dof = 0``.
    p_asymptotic : float
        From the chi-squared distribution with ``dof`` degrees of freedom (good when every
        pair's counts are large).
    p_bootstrap : float
        Parametric bootstrap given the pair totals: ``(1 + #{G*^2 >= G^2}) / (B + 1)`` over
        ``B`` data sets drawn from the fitted reversible model (NaN if not run).
    n_bootstrap : int
    n_pairs : int
        Pairs inside components (the ones that test anything).
    reason : str or None
        Why the test is undefined, when it is.
    statistic_popularity, dof_popularity, p_popularity : float, int, float
        The popularity model ``log E N(g <- f) = a(f) + b(g)`` (the reply ignores the prompt
        but for a per-source rate; quasi-independence on the off-diagonal cells) tested
        against detailed balance: ``G^2_popularity - G^2``. A small ``p_popularity`` says the
        prompt matters *and* detailed balance still holds: the claim with content. Its
        p-value comes from a parametric bootstrap under the popularity model when
        ``bootstrap > 0`` (the chi-squared reference is poor for sparse tables), else the
        chi-squared tail.
    """

    statistic: float
    dof: int
    p_value: float
    p_asymptotic: float
    p_bootstrap: float
    n_bootstrap: int
    n_pairs: int
    reason: str | None = None
    statistic_popularity: float = float("nan")
    dof_popularity: int = 0
    p_popularity: float = float("nan")

    def __repr__(self) -> str:
        if self.reason:
            return f"BalanceTest(undefined: {self.reason})"
        return (f"BalanceTest(G2={self.statistic:.4g}, dof={self.dof}, p={self.p_value:.3g}"
                f"{' (bootstrap)' if self.n_bootstrap else ' (chi2)'}, {self.n_pairs} pairs; "
                f"popularity vs balance p={self.p_popularity:.3g})")


def _deviance(d: PairData, y: np.ndarray, tol: float = 1e-10) -> tuple[float, int, int]:
    """``(G^2, dof, pairs used)`` of the plain reversible fit to the split ``y`` of ``d.m``."""
    n = d.n_states
    fw, bw = y > 0, d.m - y > 0
    adj = sp.csr_array((np.ones(int(fw.sum() + bw.sum()), bool),
                        (np.concatenate([d.i[fw], d.j[bw]]),
                         np.concatenate([d.j[fw], d.i[bw]]))), shape=(n, n))
    comp = graph.strong_components(adj)
    use = comp[d.i] == comp[d.j]
    pi, pj, off, yy, m = d.i[use], d.j[use], d.offset[use], y[use], d.m[use]
    # states and components that carry pairs: the cycle rank E - n + c of those pairs
    nodes = np.unique(np.concatenate([pi, pj]))
    dof = int(pi.size - nodes.size + np.unique(comp[nodes]).size)
    if dof <= 0:
        return 0.0, 0, int(pi.size)
    first = graph.first_of_each(comp)
    free = np.ones(n, dtype=bool)
    free[first] = False
    v, _, _ = _fit_pseudo(pi, pj, off, yy, m, free, n, np.zeros(n), tol, 200)
    p = expit(v[pi] - v[pj] + off)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(yy > 0, yy * np.log(yy / (m * p)), 0.0)
        t2 = np.where(m - yy > 0, (m - yy) * np.log((m - yy) / (m * (1 - p))), 0.0)
    return float(max(0.0, 2.0 * np.sum(t1 + t2))), dof, int(pi.size)


def _popularity_fit(out: np.ndarray, inn: np.ndarray, tol: float = 1e-12):
    """Quasi-independence on the off-diagonal cells: ``mu[f, g] = A(f) B(g)``, ``g != f``,
    matching every source's and every reply's total (iterative proportional fitting, O(n)
    per sweep since ``sum_{g != f} B(g) = sum B - B(f)``)."""
    a = np.where(out > 0, 1.0, 0.0)
    b = np.where(inn > 0, inn / max(inn.sum(), 1.0), 0.0)
    for _ in range(10_000):
        a_new = np.where(out > 0, out / np.maximum(b.sum() - b, 1e-300), 0.0)
        b_new = np.where(inn > 0, inn / np.maximum(a_new.sum() - a_new, 1e-300), 0.0)
        done = (np.max(np.abs(a_new * (b_new.sum() - b_new) - out)) < tol * max(out.max(), 1)
                and np.max(np.abs(b_new * (a_new.sum() - a_new) - inn)) < tol * max(inn.max(), 1))
        a, b = a_new, b_new
        if done:
            break
    return a, b


def _popularity_deviance(f: np.ndarray, g: np.ndarray, c: np.ndarray, n: int) -> float:
    """Poisson deviance of the popularity model on all off-diagonal cells (zeros included)."""
    out = np.bincount(f, c, minlength=n)
    inn = np.bincount(g, c, minlength=n)
    a, b = _popularity_fit(out, inn)
    mu = a[f] * b[g]
    total_mu = float(a.sum() * b.sum() - np.dot(a, b))  # sum over g != f of A(f) B(g)
    pos = c > 0
    return float(2 * (np.sum(c[pos] * np.log(c[pos] / mu[pos])) - (c.sum() - total_mu)))


def _popularity_sample(f, g, c, n, rng):
    """Counts drawn from the fitted popularity model, each source's total kept."""
    out = np.bincount(f, c, minlength=n).astype(np.int64)
    inn = np.bincount(g, c, minlength=n)
    _, b = _popularity_fit(out.astype(float), inn)
    q = b / b.sum()
    src = np.repeat(np.arange(n), out)
    dst = rng.choice(n, size=src.size, p=q)
    while (bad := dst == src).any():  # a reply equal to its prompt is not a cell: redraw
        dst[bad] = rng.choice(n, size=int(bad.sum()), p=q)
    key, cnt = np.unique(src * n + dst, return_counts=True)
    return key // n, key % n, cnt.astype(float)


def _pairs_of(f, g, c, n, offset_n0):
    """PairData-like arrays from directed counts (for the bootstrap of the popularity test)."""
    lo, hi = np.minimum(f, g), np.maximum(f, g)
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    m = np.bincount(inv, weights=c, minlength=uniq.size)
    y = np.bincount(inv, weights=np.where(f == lo, c, 0.0), minlength=uniq.size)
    i, j = uniq // n, uniq % n
    return i, j, y, m, np.log(offset_n0[i]) - np.log(offset_n0[j])


def balance_test(
    counts: TransitionCounts | TransitionKernel,
    *,
    bootstrap: int = 0,
    seed: int | np.random.Generator | None = 0,
    estimator: Estimator = "auto",
    min_calls: int | None = None,
    n0: float | None = None,
    progress: bool = False,
) -> BalanceTest:
    r"""Is the kernel in detailed balance? The likelihood-ratio test of the reversible model.

    Under detailed balance the split of each pair's total between its two directions is
    binomial with ``logit p = beta V(f) - beta V(g) + log N0(f)/N0(g)`` (module docstring);
    the alternative gives every pair its own ``p`` (quasi-symmetry against the free model:
    any kernel whose log-ratios around some cycle do not sum to zero, Kolmogorov's criterion).

    Parameters
    ----------
    counts : TransitionCounts or TransitionKernel
    bootstrap : int
        Number of parametric bootstrap data sets (0: chi-squared p-value only). At small
        counts per pair the chi-squared approximation is poor; ``bootstrap=199`` or more gives
        a calibrated p-value.
    seed : int, Generator or None
        Bootstrap randomness.
    estimator, min_calls, n0
        How ``N0`` is obtained (:func:`dbnb.kernels.estimate_kernel`); it enters only as the
        offsets, which both models share, so ``G^2`` does not depend on it.
    progress : bool
        A tqdm bar over the bootstrap replicates (both tests).

    Returns
    -------
    BalanceTest
        With ``reason`` set and NaN p-values when undefined (no pair inside a strongly
        connected component, or no cycle among them: ``dof = 0``).
    """
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) \
            or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative int, got {bootstrap!r}")
    d = pair_data(counts, estimator=estimator, min_calls=min_calls, n0=n0)
    nan = float("nan")
    if d.n_pairs == 0:
        return BalanceTest(nan, 0, nan, nan, nan, 0, 0, "no pair of states was observed")
    g2, dof, used = _deviance(d, d.y)
    if dof == 0:
        return BalanceTest(nan, 0, nan, nan, nan, 0, used,
                           "dof = 0: no cycle among the pairs seen both ways, so detailed "
                           "balance cannot be violated by these data")
    p_chi2 = float(stats.chi2.sf(g2, dof))
    p_boot = nan
    tk = d.transitions
    ef, eg, _, ec = tk.edges()
    keep = ec > 0
    ef, eg, ec = ef[keep], eg[keep], ec[keep].astype(float)
    n = tk.n_states
    active = np.unique(np.concatenate([ef, eg]))
    g2_pop = _popularity_deviance(ef, eg, ec, n) - g2
    # the difference of the two models' parameters: the reversible model has one pair total
    # per observed pair plus the potential (k - c, c components of the pair graph), popularity
    # 2k - 1 (A(f), B(g) up to a common scale); k(k - 3)/2 for a complete table of k states
    k = active.size
    c = int(np.unique(d.components()[active]).size)
    dof_pop = max(int(d.n_pairs + (k - c) - (2 * k - 1)), 0)
    p_pop = float(stats.chi2.sf(g2_pop, dof_pop)) if dof_pop > 0 else nan
    if bootstrap:
        rng = np.random.default_rng(seed)
        # the reversible model fitted with Firth's penalty: finite everywhere, so one-way
        # pairs of the data may come out two-way in a replicate, as under the true kernel
        fit = fit_likelihood(d.transitions, penalty="firth")
        v = fit.relative.to_numpy()
        same = fit.component.to_numpy()[d.i] == fit.component.to_numpy()[d.j]
        p = np.where(same, expit(v[d.i] - v[d.j] + d.offset), d.y / d.m)
        m_int = d.m.astype(np.int64)
        sims = np.array([_deviance(d, rng.binomial(m_int, p).astype(float))[0]
                         for _ in tqdm(range(bootstrap), disable=not progress,
                                       desc="bootstrap: balance vs free")])
        p_boot = float((1 + np.sum(sims >= g2 - 1e-9 * max(1.0, g2))) / (bootstrap + 1))
        pops = []
        for _ in tqdm(range(bootstrap), disable=not progress,
                      desc="bootstrap: popularity vs balance"):
            sf, sg, sc = _popularity_sample(ef, eg, ec, n, rng)
            i2, j2, y2, m2, o2 = _pairs_of(sf, sg, sc, n, tk.n0)
            d2 = PairData(i=i2, j=j2, y=y2, m=m2, offset=o2, n_states=n, transitions=tk)
            pops.append(_popularity_deviance(sf, sg, sc, n) - _deviance(d2, y2)[0])
        p_pop = float((1 + np.sum(np.array(pops) >= g2_pop - 1e-9 * max(1.0, g2_pop)))
                      / (bootstrap + 1))
    return BalanceTest(
        statistic=g2, dof=dof, p_value=p_boot if bootstrap else p_chi2, p_asymptotic=p_chi2,
        p_bootstrap=p_boot, n_bootstrap=int(bootstrap), n_pairs=used,
        statistic_popularity=g2_pop, dof_popularity=dof_pop, p_popularity=p_pop,
    )


# ---------------------------------------------------------------------------- held out
@dataclass(frozen=True)
class HeldOut:
    """Out-of-sample check of a potential: fitted on half of the calls, scored on the other.

    ``r2``: ``1 - sum w (y - yhat)^2 / sum w y^2`` over the held-out two-way pairs (``y``
    their log-ratio ``log T(g<-f)/T(f<-g)``, ``yhat = beta V(f) - beta V(g)`` from the fitted
    half, ``w`` inverse Poisson variances; about the diagonal, since a log-ratio has no
    orientation). ``r2_popularity``: the same for the popularity model fitted on the same half
    (the log-ratio a kernel that ignores the prompt predicts). ``r2_noise``: what a perfect
    potential would score, given the held-out half's own noise (``1 - n_pairs / sum w y^2``).
    ``n_pairs`` scored.
    """

    r2: float
    r2_popularity: float
    r2_noise: float
    n_pairs: int

    def __repr__(self) -> str:
        return (f"HeldOut(R2={self.r2:.3f}, popularity R2={self.r2_popularity:.3f}, "
                f"noise ceiling {self.r2_noise:.3f}, {self.n_pairs} pairs)")


def _split_calls(counts: TransitionCounts, rng: np.random.Generator):
    """Assign every call to one of two halves at random (binomial thinning of every cell)."""
    if counts.calls is None:
        raise ValueError("a held-out check needs the calls per source (counts.calls)")
    m = sp.csr_array(counts.matrix).tocoo()
    a = rng.binomial(m.data.astype(np.int64), 0.5)
    rest = np.asarray(counts.calls).astype(np.int64) - np.bincount(
        m.col, m.data, minlength=counts.n_states).astype(np.int64)
    if (rest < 0).any():
        raise ValueError("counts.calls is smaller than the replies recorded from a source")
    ra = rng.binomial(rest, 0.5)
    halves = []
    for data, other in ((a, ra), (m.data.astype(np.int64) - a, rest - ra)):
        mat = sp.csr_array((data, (m.row, m.col)), shape=m.shape)
        calls = np.bincount(m.col, data, minlength=counts.n_states) + other
        halves.append(TransitionCounts(counts.states, mat, calls=calls, calls_kind="exact",
                                       source=counts.source))
    return halves


def held_out(
    counts: TransitionCounts,
    fit: Callable[[TransitionCounts], PotentialFit] | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
) -> HeldOut:
    """Fit ``beta V`` on a random half of the calls and score its log-ratios on the other.

    Parameters
    ----------
    counts : TransitionCounts
        With the calls per source recorded.
    fit : callable, optional
        ``counts -> PotentialFit``; default :func:`fit_likelihood`.
    seed : int, Generator or None
        Which calls go to which half.

    Returns
    -------
    HeldOut
        NaN scores when the held-out half has no two-way pair the fitted half can predict.
    """
    fit = fit or fit_likelihood
    rng = np.random.default_rng(seed)
    train, test = _split_calls(counts, rng)
    v = fit(train).potential.reindex(pd.Index(counts.states)).to_numpy(dtype=float)
    tf, tg, tc = train.edges()
    out = np.bincount(tf, tc, minlength=counts.n_states).astype(float)
    inn = np.bincount(tg, tc, minlength=counts.n_states).astype(float)
    a, b = _popularity_fit(out, inn)
    n0 = np.asarray(test.calls, dtype=float)
    f, g, c = test.edges()
    lo = f < g
    n = counts.n_states
    kf, kb = f[lo] * n + g[lo], g[~lo] * n + f[~lo]
    _, ia, ib = np.intersect1d(kf, kb, assume_unique=True, return_indices=True)
    i, j = f[lo][ia], g[lo][ia]
    cij, cji = c[lo][ia].astype(float), c[~lo][ib].astype(float)
    ok = np.isfinite(v[i]) & np.isfinite(v[j]) & (a[i] > 0) & (a[j] > 0) & (b[i] > 0) \
        & (b[j] > 0)
    i, j, cij, cji = i[ok], j[ok], cij[ok], cji[ok]
    nan = float("nan")
    if i.size == 0:
        return HeldOut(nan, nan, nan, 0)
    y = np.log(cij / n0[i]) - np.log(cji / n0[j])
    w = 1.0 / (1.0 / cij + 1.0 / cji)
    yhat = v[i] - v[j]
    ntrain = np.asarray(train.calls, dtype=float)
    ypop = (np.log(a[i] * b[j] / ntrain[i]) - np.log(a[j] * b[i] / ntrain[j]))
    ss = float(np.sum(w * y * y))
    return HeldOut(r2=1 - float(np.sum(w * (y - yhat) ** 2)) / ss,
                   r2_popularity=1 - float(np.sum(w * (y - ypop) ** 2)) / ss,
                   r2_noise=1 - i.size / ss, n_pairs=int(i.size))
