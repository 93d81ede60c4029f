r"""Do the tests and intervals mean what they say? Calibration on chains with a known answer.

A test of detailed balance is only as good as its null distribution: on chains that obey
detailed balance its p-values must be uniform (a 5 % test rejects 5 % of them), and against a
drive that breaks it the rejection rate must grow with the drive. An interval is only as good
as its coverage. Each function here samples synthetic chains (:mod:`dbnb.synthetic`) with a
fixed design, runs the tested function on every one and returns what a figure needs:

* :func:`null_p_values`: p-values of :func:`dbnb.balance_test` over many chains (reversible
  by default, or driven with ``drive > 0``: :func:`dbnb.synthetic.driven_chain`);
* :func:`power`: the rejection rate against the drive strength;
* :func:`interval_coverage`: how often the :func:`dbnb.fit_likelihood` intervals cover the
  true potential, and the standardised errors ``(beta V_hat - beta V) / stderr``.

Chain ``i`` uses ``seed + i`` for its graph and potential and ``seed + 10^6 + i`` for its
calls, so every result is reproducible and runs of different sizes share their first chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from . import synthetic
from .hierarchy import balance_test
from .likelihood import fit_likelihood

__all__ = ["Coverage", "NullPValues", "interval_coverage", "null_p_values", "power"]

_CALL_SEED = 10**6


@dataclass(frozen=True, eq=False)
class NullPValues:
    """p-values of :func:`dbnb.balance_test` over synthetic chains.

    Attributes
    ----------
    p_chi2, p_bootstrap, p_popularity : numpy.ndarray
        One per chain: chi-squared and parametric-bootstrap p-values of detailed balance
        against free (bootstrap NaN when not run), and of popularity against balance. NaN
        where the test was undefined (``dof = 0``).
    dof : numpy.ndarray
        Degrees of freedom of each chain's test.
    drive : float
        0 for reversible chains (the null), else the curl drive.
    n_bootstrap : int
    description : str
        The chains and the design, for captions.
    """

    p_chi2: np.ndarray
    p_bootstrap: np.ndarray
    p_popularity: np.ndarray
    dof: np.ndarray
    drive: float
    n_bootstrap: int
    description: str

    @property
    def p_values(self) -> np.ndarray:
        """The p-values the test reports: bootstrap when it was run, else chi-squared."""
        return self.p_bootstrap if self.n_bootstrap else self.p_chi2

    def rejection_rate(self, alpha: float = 0.05, kind: str = "reported") -> float:
        """Fraction of chains (with a defined test) rejected at ``alpha``; ``kind`` is
        ``"reported"``, ``"chi2"`` or ``"bootstrap"``."""
        p = self._pick(kind)
        p = p[np.isfinite(p)]
        return float(np.mean(p <= alpha)) if p.size else float("nan")

    def uniformity(self, kind: str = "reported") -> float:
        """Kolmogorov-Smirnov p-value of the p-values against the uniform distribution
        (a small value: not calibrated; bootstrap p-values are discrete, multiples of
        ``1 / (B + 1)``, so read it loosely for small ``B``)."""
        p = self._pick(kind)
        p = p[np.isfinite(p)]
        return float(stats.kstest(p, "uniform").pvalue) if p.size else float("nan")

    def _pick(self, kind: str) -> np.ndarray:
        if kind == "reported":
            return self.p_values
        if kind == "chi2":
            return self.p_chi2
        if kind == "bootstrap":
            return self.p_bootstrap
        raise ValueError(f"kind must be 'reported', 'chi2' or 'bootstrap', got {kind!r}")

    def __repr__(self) -> str:
        return (f"NullPValues({self.p_chi2.size} chains, drive {self.drive:g}, rejected at 5 %: "
                f"{self.rejection_rate():.1%}; {self.description})")


def _chain(i: int, *, n_states, degree, sigma, escape, drive, seed):
    return synthetic.driven_chain(n_states, degree=degree, sigma=sigma, escape=escape,
                                  drive=drive, seed=seed + i)


def null_p_values(
    n_chains: int,
    *,
    n_states: int = 20,
    degree: float = 4.0,
    sigma: float = 1.0,
    escape: float = 0.1,
    calls: int = 100,
    drive: float = 0.0,
    bootstrap: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> NullPValues:
    """:func:`dbnb.balance_test` on ``n_chains`` sampled chains.

    Parameters
    ----------
    n_chains : int
        Number of chains (each its own graph, potential and calls).
    n_states, degree, sigma, escape, drive
        As for :func:`dbnb.synthetic.driven_chain` (``drive=0``: reversible chains).
    calls : int
        Calls per state (fixed design, :func:`dbnb.synthetic.sample_fixed_design`).
    bootstrap : int
        Bootstrap replicates per test (0: chi-squared only; fast).
    seed : int
    progress : bool
        A tqdm bar over the chains.

    Returns
    -------
    NullPValues
    """
    if isinstance(n_chains, bool) or not isinstance(n_chains, (int, np.integer)) or n_chains < 1:
        raise ValueError(f"n_chains must be a positive int, got {n_chains!r}")
    out = np.full((4, n_chains), np.nan)
    for i in tqdm(range(n_chains), disable=not progress, desc=f"chains (drive {drive:g})"):
        chain = _chain(i, n_states=n_states, degree=degree, sigma=sigma, escape=escape,
                       drive=drive, seed=seed)
        counts = synthetic.sample_fixed_design(chain, calls, seed=seed + _CALL_SEED + i)
        t = balance_test(counts, bootstrap=bootstrap, seed=seed + i)
        out[:, i] = (t.p_asymptotic, t.p_bootstrap, t.p_popularity, t.dof)
    desc = (f"{n_chains} {'driven' if drive else 'reversible'} chains, {n_states} states, "
            f"mean degree {degree:g}, sigma {sigma:g}, {calls} calls per state"
            + (f", drive {drive:g}" if drive else "")
            + (f"; bootstrap B = {bootstrap}" if bootstrap else "; chi2"))
    return NullPValues(p_chi2=out[0], p_bootstrap=out[1], p_popularity=out[2],
                       dof=out[3], drive=float(drive), n_bootstrap=int(bootstrap),
                       description=desc)


def power(
    drives: Sequence[float],
    *,
    n_chains: int = 40,
    alpha: float = 0.05,
    progress: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """Rejection rate of :func:`dbnb.balance_test` at level ``alpha`` against the drive.

    ``kwargs`` go to :func:`null_p_values` (states, calls, bootstrap, ...). The same chains
    (graph, potential, seeds) are driven harder along the rows, so the curve is smooth.

    Returns
    -------
    pandas.DataFrame
        Index ``drive``; columns ``rejected`` (the reported p-value), ``rejected_chi2``,
        ``mean_dof``, ``chains``; ``attrs["description"]`` the design.
    """
    rows, desc = [], ""
    for d in drives:
        r = null_p_values(n_chains, drive=float(d), progress=progress, **kwargs)
        rows.append({"drive": float(d), "rejected": r.rejection_rate(alpha),
                     "rejected_chi2": r.rejection_rate(alpha, "chi2"),
                     "mean_dof": float(np.nanmean(r.dof)), "chains": n_chains})
        desc = r.description.split(", drive")[0].replace("reversible ", "").replace(
            "driven ", "")
    df = pd.DataFrame(rows).set_index("drive")
    df.attrs["description"] = f"{desc}; level {alpha:g}"
    df.attrs["alpha"] = alpha
    return df


@dataclass(frozen=True, eq=False)
class Coverage:
    """Coverage of the :func:`dbnb.fit_likelihood` intervals on reversible chains.

    Attributes
    ----------
    z : numpy.ndarray
        ``(beta V_hat - beta V_true) / stderr`` of every state but the reference, over all
        chains (the reference is each chain's first state; both potentials relative to it).
    covered : numpy.ndarray of bool
        Whether each such state's ``level`` interval holds the true value.
    level : float
    description : str
    """

    z: np.ndarray
    covered: np.ndarray
    level: float
    description: str

    @property
    def coverage(self) -> float:
        """Fraction of intervals holding the true potential (``level`` when honest)."""
        return float(np.mean(self.covered)) if self.covered.size else float("nan")

    def __repr__(self) -> str:
        return (f"Coverage({self.coverage:.1%} of {self.covered.size} intervals at level "
                f"{self.level:.0%}; sd of z {np.std(self.z):.2f}; {self.description})")


def interval_coverage(
    n_chains: int,
    *,
    n_states: int = 20,
    degree: float = 4.0,
    sigma: float = 1.0,
    escape: float = 0.1,
    calls: int = 100,
    level: float = 0.95,
    penalty: str | None = "firth",
    seed: int = 0,
    progress: bool = False,
) -> Coverage:
    """How often the intervals of :func:`dbnb.fit_likelihood` cover the true potential.

    Parameters as for :func:`null_p_values` (reversible chains); ``penalty`` of the fit.
    States outside the fit's main component (rare at these sizes) are left out.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    zs, cov = [], []
    for i in tqdm(range(n_chains), disable=not progress, desc="interval coverage"):
        chain = _chain(i, n_states=n_states, degree=degree, sigma=sigma, escape=escape,
                       drive=0.0, seed=seed)
        counts = synthetic.sample_fixed_design(chain, calls, seed=seed + _CALL_SEED + i)
        ref = chain.states[0]
        fit = fit_likelihood(counts, reference=ref, penalty=penalty)
        iv = fit.interval(level)
        truth = pd.Series(chain.potential - chain.potential[0], index=chain.index)
        keep = (fit.status == "main") & (iv.index != ref)
        iv, truth = iv[keep], truth[keep]
        zs.append(((iv["beta_V"] - truth) / iv["stderr"]).to_numpy())
        cov.append(((iv["low"] <= truth) & (truth <= iv["high"])).to_numpy())
    desc = (f"{n_chains} reversible chains, {n_states} states, mean degree {degree:g}, "
            f"sigma {sigma:g}, {calls} calls per state; penalty {penalty}")
    return Coverage(z=np.concatenate(zs), covered=np.concatenate(cov), level=level,
                    description=desc)
