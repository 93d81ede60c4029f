r"""Bootstrap intervals for any potential fit: resample the calls, refit, read the spread.

:func:`bootstrap` redraws the data ``n_boot`` times, refits with the same fit function
(:func:`dbnb.fit_potential` by default, or :func:`dbnb.likelihood.fit_likelihood`) and returns
every replicate's potential in one gauge: ``beta V(reference) = 0``, ``reference`` the
original fit's reference or its lowest main-component state. Two designs:

``"nonparametric"``
    each source's ``N0(f)`` calls redrawn with replacement: a multinomial draw from the
    observed reply frequencies ``N(g <- f) / N0(f)``, escapes included (the counts are what
    was seen, nothing is assumed about balance);
``"parametric"``
    a multinomial draw per source from the fitted *reversible* kernel: on every two-way pair
    the geometric mean of the two observed frequencies times ``exp(+-(beta V(f) - beta V(g))
    / 2)``, one-way transitions as observed. This is the null model of detailed balance
    with the fitted potential.

Replicates in which a state leaves the main component give NaN for it (``dropped`` counts
them); intervals are percentiles over the replicates where the state is finite.
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from .counts import TransitionCounts
from .potential import PotentialFit, fit_potential

__all__ = ["BootstrapResult", "bootstrap"]


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Replicates of a potential fit.

    Attributes
    ----------
    estimate : pandas.Series
        The original fit's ``beta V`` in the bootstrap gauge (``reference`` at 0).
    samples : pandas.DataFrame
        ``n_boot`` rows, one column per state: each replicate's ``beta V`` in that gauge
        (NaN where the state was not in the replicate's main component).
    reference : str
    design : str
    """

    estimate: pd.Series
    samples: pd.DataFrame
    reference: str
    design: str

    @property
    def dropped(self) -> pd.Series:
        """Replicates in which each state had no finite potential."""
        return self.samples.isna().sum().rename("dropped")

    @property
    def stderr(self) -> pd.Series:
        """Standard deviation of each state's potential over the replicates."""
        return self.samples.std(ddof=1).rename("stderr")

    def interval(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals per state (columns ``beta_V``, ``stderr``, ``low``, ``high``,
        ``dropped``)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        q = self.samples.quantile([(1 - level) / 2, (1 + level) / 2])
        return pd.DataFrame({"beta_V": self.estimate, "stderr": self.stderr,
                             "low": q.iloc[0], "high": q.iloc[1], "dropped": self.dropped})

    def __repr__(self) -> str:
        return (f"BootstrapResult({self.design}, {len(self.samples)} replicates, "
                f"{self.samples.shape[1]} states, reference {self.reference!r})")


def _replicate_kernel(counts: TransitionCounts, fit: PotentialFit, design: str) -> sp.csc_array:
    """Per-source reply probabilities ``P[g, f]`` to redraw from (columns sum to <= 1; the rest
    escapes), sparse: only transitions that were seen can be redrawn."""
    n0 = np.asarray(counts.calls, dtype=float)
    m = sp.csc_array(counts.matrix, dtype=float)
    m = m - sp.diags_array(m.diagonal())  # self-replies are escapes here
    m.eliminate_zeros()
    coo = m.tocoo()
    g, f = coo.row, coo.col
    t = coo.data / n0[f]
    if design == "parametric":
        v = fit.potential.reindex(pd.Index(counts.states)).to_numpy()
        back = sp.csr_array((t, (g, f)), shape=m.shape)
        rev = np.asarray(back[f, g]).ravel()  # T(f <- g)
        ok = (rev > 0) & np.isfinite(v[f]) & np.isfinite(v[g])
        with np.errstate(over="ignore", invalid="ignore"):
            geo = np.sqrt(t * rev) * np.exp(0.5 * (v[f] - v[g]))
        t = np.where(ok, geo, t)
        colsum = np.bincount(f, t, minlength=counts.n_states)
        t = t / np.maximum(colsum[f], 1.0)
    return sp.csc_array((t, (g, f)), shape=m.shape)


def _draw(p: sp.csc_array, n0: np.ndarray, rng: np.random.Generator):
    """One multinomial draw of ``n0[f]`` calls per source from ``p`` (rest: escape)."""
    n = p.shape[1]
    p = sp.csc_array(p)
    p.sort_indices()
    seg = np.repeat(np.arange(n), np.diff(p.indptr))
    c = np.concatenate([[0.0], np.cumsum(p.data)])
    cum = c[1:] - np.repeat(c[p.indptr[:-1]], np.diff(p.indptr))  # cumulative within source
    key = seg + cum  # increasing across sources: source f's cumulative probabilities + f
    src = np.repeat(np.arange(n), n0)
    u = src + rng.random(src.size)
    pos = np.searchsorted(key, u, side="right")
    hit = pos < p.nnz
    hit[hit] = seg[pos[hit]] == src[hit]  # past the source's last transition: an escape
    cnt = np.bincount(pos[hit], minlength=p.nnz)
    draw = sp.csc_array((cnt.astype(np.int64), p.indices, p.indptr), shape=p.shape)
    escapes = n0 - np.bincount(src[hit], minlength=n)
    return draw, escapes


def _refit(fit: Callable[[TransitionCounts], PotentialFit], rep: TransitionCounts,
           ref: int) -> np.ndarray:
    """One replicate's ``beta V`` in the gauge ``beta V(reference) = 0`` (NaN off the main
    component; all NaN when the fit fails or the reference leaves the main component)."""
    n = rep.n_states
    try:
        r = fit(rep)
    except (ValueError, RuntimeError):
        return np.full(n, np.nan)
    idx = pd.Index(rep.states)
    v = r.potential.reindex(idx).to_numpy(dtype=float)
    ok = (r.status.reindex(idx) == "main").to_numpy()
    if not ok[ref]:
        return np.full(n, np.nan)
    return np.where(ok, v - v[ref], np.nan)


def _takes_start(fit) -> bool:
    try:
        return "start" in inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False


def bootstrap(
    counts: TransitionCounts,
    fit: Callable[[TransitionCounts], PotentialFit] | None = None,
    *,
    n_boot: int = 200,
    design: str = "nonparametric",
    reference: str | None = None,
    seed: int | np.random.Generator | None = 0,
    progress: bool = False,
    n_jobs: int = 1,
    warm_start: bool = True,
) -> BootstrapResult:
    """Bootstrap replicates of a potential fit (see the module docstring).

    Parameters
    ----------
    counts : TransitionCounts
        Counts with recorded calls per source (``calls``); the self-replies on the diagonal
        and escapes are redrawn as escapes.
    fit : callable, optional
        ``counts -> PotentialFit``; default ``dbnb.fit_potential`` with its defaults.
    n_boot : int
        Number of replicates.
    design : {"nonparametric", "parametric"}
    reference : str, optional
        The state held at 0 (default: the original fit's lowest main-component state).
    seed : int, Generator or None
    progress : bool
        A tqdm bar over the replicates.
    n_jobs : int
        Worker processes for the refits (``-1``: one per CPU). The data sets are drawn in
        this process in the same order whatever ``n_jobs``, so the replicates are identical;
        ``fit`` must then be picklable (a module-level function or a
        :func:`functools.partial` of one, not a lambda). Worth it only on free cores and for
        fits of a second or more: the Letter-size likelihood refit takes about 0.2 s, and on
        a loaded 2-core machine 200 of them took 42 s in one process and 57 s in two
        (``benchmarks/bench_likelihood.py``).

    warm_start : bool
        When ``fit`` takes a ``start`` keyword (:func:`dbnb.likelihood.fit_likelihood`), start
        every refit from the original estimate (fewer Newton steps, the same estimates to
        the fit's tolerance).

    Returns
    -------
    BootstrapResult
    """
    if design not in ("nonparametric", "parametric"):
        raise ValueError(f"design must be 'nonparametric' or 'parametric', got {design!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2, got {n_boot!r}")
    if counts.calls is None:
        raise ValueError("bootstrap needs the number of calls per source (counts.calls); "
                         "set it with counts.with_calls(...)")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 \
            or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive int or -1, got {n_jobs!r}")
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    fit = fit or fit_potential
    if n_jobs > 1:
        try:
            pickle.dumps(fit)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise ValueError(f"n_jobs={n_jobs} needs a picklable fit function (a module-level "
                             f"function or functools.partial), got {fit!r}: {exc}") from exc
    base = fit(counts)
    main = base.potential[base.status == "main"]
    if reference is None:
        reference = str(main.idxmin())
    elif reference not in main.index:
        raise ValueError(f"reference {reference!r} is not in the fit's main component")
    est = base.potential - base.potential[reference]
    if warm_start and _takes_start(fit):
        fit = functools.partial(fit, start=base.potential)
    p = _replicate_kernel(counts, base, design)
    n0 = np.asarray(counts.calls).astype(np.int64)
    rng = np.random.default_rng(seed)
    ref = counts.states.index(reference)

    def replicates():
        for _ in range(n_boot):
            draw, esc = _draw(p, n0, rng)
            yield TransitionCounts(counts.states, sp.csr_array(draw), calls=counts.calls,
                                   calls_kind=counts.calls_kind or "exact", escapes=esc,
                                   source=counts.source)

    bar = {"total": n_boot, "disable": not progress, "desc": f"bootstrap ({design})"}
    if n_jobs == 1:
        rows = [_refit(fit, rep, ref) for rep in tqdm(replicates(), **bar)]
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            rows = list(tqdm(pool.map(_refit, [fit] * n_boot, replicates(), [ref] * n_boot,
                                      chunksize=max(1, n_boot // (8 * n_jobs))), **bar))
    samples = pd.DataFrame(np.array(rows), columns=pd.Index(counts.states, name="state"))
    return BootstrapResult(estimate=est.rename("beta_V"), samples=samples,
                           reference=reference, design=design)
