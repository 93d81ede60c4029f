"""One potential for many kernels? V of one kernel against V of another, on common states.

The Letter suggests that LLMs share "a class of underlying potential functions that may
transcend different LLM architectures and prompt templates". With two exact kernels
``T_A(g <- f)`` and ``T_B(g <- f)`` on the same states (two models, two prompt wordings, two
temperatures) that is testable without sampling noise:

* each kernel's flow on the pairs with both directions positive, ``y(f, g) = log T(g<-f) -
  log T(f<-g)``, is split by :func:`dbnb.hodge` into a gradient ``V(f) - V(g)`` (unweighted
  least squares: an exact kernel has no sampling noise to weight by), curl and harmonic parts;
  the gradient fraction is the fit's ``R2``;
* ``V_A`` against ``V_B`` on the states of the common component: Pearson and Spearman
  correlations with intervals (Fisher z; a bootstrap over states, which asks how much the
  answer depends on which words happen to be in the vocabulary);
* cross-prediction: ``V_A`` (times one fitted scale ``s``, which absorbs a change of beta,
  e.g. with temperature) predicts ``y_B``; its ``R2`` beside ``B``'s own;
* the popularity-only control: ``V_pop = -log p_B`` with ``p_B(g)`` the mean reply probability
  of ``g`` over ``B``'s other prompts (the kernel of a prompt-independent agent, which obeys
  detailed balance trivially). A shared potential means something only when ``V_A`` predicts
  ``y_B`` better than ``B``'s own popularity does.

A kernel is a :class:`~dbnb.kernels.TransitionKernel` (e.g. ``exact.to_transition_kernel()``),
any object with a ``to_transition_kernel(max_log_gap=...)`` method (a
:class:`dbnb.llm.logprob.LogprobKernel`: pairs whose bounds are looser than ``max_log_gap`` are
left out in both directions), or a square labelled DataFrame ``P[g, f]`` (row = reply, column =
prompt, as ``N[g, f]`` counts ``f -> g`` everywhere in dbnb).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from . import graph
from .hodge import HodgeDecomposition, hodge
from .kernels import TransitionKernel
from .synthetic import true_kernel

__all__ = [
    "PairPotential",
    "Comparison",
    "as_exact_kernel",
    "kernel_frame",
    "fit_pair_potential",
    "compare",
    "compare_to",
    "comparison_table",
]


@dataclass(frozen=True, eq=False)
class PairPotential:
    """The gradient part of a kernel's log-ratio flow on its largest two-way component.

    Attributes
    ----------
    potential : pandas.Series
        ``beta V`` per state of the largest connected component of the two-way pair graph,
        mean zero (dimensionless; ``y ~ V(f) - V(g)``, Eq. 5).
    pairs : pandas.DataFrame
        Columns ``f``, ``g``, ``y`` (``log T(g<-f) - log T(f<-g)``), one row per unordered pair
        with both directions positive and both endpoints in the component.
    r2 : float
        ``1 - SS_res / SS_tot`` of ``y ~ V(f) - V(g)`` on those pairs (``SS_tot = sum y^2``: a
        flow has no intercept), i.e. the gradient fraction of the component's flow.
    hodge : HodgeDecomposition
        The unweighted Hodge split of the component's flow (gradient share; curl and harmonic
        shares only when fitted with ``cycles=True``).
    """

    potential: pd.Series
    pairs: pd.DataFrame
    r2: float
    hodge: HodgeDecomposition

    def __repr__(self) -> str:
        return (f"PairPotential({len(self.potential)} states, {len(self.pairs)} pairs, "
                f"R2 {self.r2:.3f})")


@dataclass(frozen=True, eq=False)
class Comparison:
    """V of kernel A against V of kernel B, and how well each predicts B's log-ratios.

    Attributes
    ----------
    names : tuple of str
        ``(A, B)``.
    states : tuple of str
        The common states compared (in both kernels' largest two-way components).
    fit_a, fit_b : PairPotential
        Each kernel's own fit, on the common states.
    pearson, spearman : tuple of float
        ``(r, lo, hi)``: the correlation of ``V_A`` and ``V_B`` with a ``level`` interval
        (Pearson by Fisher z; Spearman by a bootstrap over states).
    pearson_boot : tuple of float
        The bootstrap interval of the Pearson correlation ``(lo, hi)``.
    scale : float
        ``s`` of ``y_B ~ s (V_A(f) - V_A(g))`` (least squares through 0): ``beta_B / beta_A``.
    r2_own, r2_cross, r2_popularity : float
        ``R2`` of ``y_B`` under ``V_B``, under ``s V_A`` and under the popularity control
        ``s' (V_pop(f) - V_pop(g))`` with ``V_pop = -log p_B``.
    beyond_popularity : tuple of float
        ``(r, lo, hi)``: Pearson correlation of what each potential holds beyond its own
        kernel's popularity (the residual of ``V_X`` regressed on ``-log p_X``, with
        intercept), Fisher-z interval with two degrees of freedom taken for the regressions.
        Two models that merely agree on which words are common correlate in ``V`` but not
        here.
    level : float
        Interval level.
    info : dict
        ``n_boot``, ``seed``, ``max_log_gap``.
    """

    names: tuple[str, str]
    states: tuple[str, ...]
    fit_a: PairPotential
    fit_b: PairPotential
    pearson: tuple[float, float, float]
    spearman: tuple[float, float, float]
    pearson_boot: tuple[float, float]
    scale: float
    r2_own: float
    r2_cross: float
    r2_popularity: float
    beyond_popularity: tuple[float, float, float] = (float("nan"),) * 3
    level: float = 0.95
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Comparison({self.names[0]} vs {self.names[1]}: {len(self.states)} states, "
                f"Pearson {self.pearson[0]:.3f}, R2 cross {self.r2_cross:.3f} / own "
                f"{self.r2_own:.3f} / popularity {self.r2_popularity:.3f})")

    def to_series(self) -> pd.Series:
        """One row of :func:`comparison_table`."""
        r, lo, hi = self.pearson
        rs, slo, shi = self.spearman
        hb = self.fit_b.hodge
        return pd.Series({
            "A": self.names[0], "B": self.names[1], "states": len(self.states),
            "pairs_B": len(self.fit_b.pairs),
            "pearson": r, "pearson_lo": lo, "pearson_hi": hi,
            "pearson_boot_lo": self.pearson_boot[0], "pearson_boot_hi": self.pearson_boot[1],
            "spearman": rs, "spearman_lo": slo, "spearman_hi": shi,
            "scale": self.scale, "r2_own_A": self.fit_a.r2, "r2_own_B": self.r2_own,
            "r2_cross": self.r2_cross, "r2_popularity": self.r2_popularity,
            "beyond_popularity": self.beyond_popularity[0],
            "beyond_popularity_lo": self.beyond_popularity[1],
            "beyond_popularity_hi": self.beyond_popularity[2],
            "non_gradient_B": 1.0 - hb.gradient_fraction,
        })


def kernel_frame(kernel: Any) -> pd.DataFrame:
    """The square kernel ``P[g, f]`` of a log-probability kernel on its sources.

    Parameters
    ----------
    kernel : dbnb.llm.logprob.LogprobKernel or pandas.DataFrame
        A kernel with ``states``, ``sources`` and ``prob`` (``(n_states, n_sources)``), or an
        already labelled frame (rows = replies, columns = prompts).

    Returns
    -------
    pandas.DataFrame
        Rows and columns are the sources that are also replies (other replies dropped); the
        diagonal (self-replies) is kept as it is.
    """
    if isinstance(kernel, pd.DataFrame):
        df = kernel
    elif all(hasattr(kernel, a) for a in ("states", "sources", "prob")):
        df = pd.DataFrame(np.asarray(kernel.prob), index=list(kernel.states),
                          columns=list(kernel.sources))
    else:
        raise TypeError(f"kernel must be a DataFrame or have states, sources and prob; got "
                        f"{type(kernel).__name__}")
    if df.index.has_duplicates or df.columns.has_duplicates:
        raise ValueError("kernel labels must be unique; duplicated: "
                         f"{sorted(set(df.index[df.index.duplicated()]))[:5]}")
    rows = set(df.index)
    common = [s for s in df.columns if s in rows]
    if len(common) < 3:
        raise ValueError(f"a kernel needs >= 3 states that are both prompts and replies, "
                         f"got {len(common)}")
    out = df.loc[common, common].astype(float)
    bad = ~np.isfinite(out.to_numpy()) | (out.to_numpy() < 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"kernel entries must be finite probabilities >= 0; "
                         f"P[{common[r]!r}, {common[c]!r}] = {float(out.iat[r, c])!r}")
    return out


def as_exact_kernel(kernel: Any, *, max_log_gap: float | None = None) -> TransitionKernel:
    """Any kernel :mod:`dbnb.comparison` takes, as a :class:`~dbnb.kernels.TransitionKernel`.

    Parameters
    ----------
    kernel : TransitionKernel, LogprobKernel or pandas.DataFrame
        See the module docstring. The diagonal (self-replies) is an escape either way.
    max_log_gap : float, optional
        For a kernel with bounds (``LogprobKernel``): leave out every pair with an entry whose
        bounds differ by more than this in log (both directions, see
        ``LogprobKernel.censored_pairs``). Not allowed for kernels without bounds.

    Returns
    -------
    TransitionKernel
    """
    if isinstance(kernel, TransitionKernel):
        if max_log_gap is not None:
            raise ValueError("max_log_gap needs a kernel with bounds (a LogprobKernel); "
                             "a TransitionKernel has none")
        return kernel
    if isinstance(kernel, pd.DataFrame):
        if max_log_gap is not None:
            raise ValueError("max_log_gap needs a kernel with bounds (a LogprobKernel); "
                             "a DataFrame has none")
        df = kernel_frame(kernel)
        return true_kernel(df.to_numpy(), tuple(df.index), source="kernel frame")
    if hasattr(kernel, "to_transition_kernel"):
        return kernel.to_transition_kernel(max_log_gap=max_log_gap)
    raise TypeError(f"kernel must be a TransitionKernel, a LogprobKernel or a DataFrame; got "
                    f"{type(kernel).__name__}")


def _restrict(tk: TransitionKernel, states: Sequence[str]) -> TransitionKernel:
    pos = {s: k for k, s in enumerate(tk.states)}
    idx = np.array([pos[s] for s in states], dtype=np.int64)
    m = sp.csr_array(tk.matrix[idx][:, idx])
    n0 = np.asarray(tk.n0)[idx].copy()
    n0.setflags(write=False)
    return TransitionKernel(counts=tk.counts.submodel(idx), matrix=m, n0=n0, method=tk.method,
                            noise_free=tk.noise_free)


def _largest_two_way_component(tk: TransitionKernel) -> list[str]:
    m = sp.csr_array(tk.matrix > 0)
    two_way = m.multiply(m.T)  # symmetric: both directions positive
    comp = graph.strong_components(two_way)
    on_pair = np.asarray(two_way.sum(axis=0)).ravel() > 0
    if not on_pair.any():
        return []
    big = np.bincount(comp[on_pair]).argmax()
    return [s for s, k, p in zip(tk.states, comp, on_pair, strict=True) if p and k == big]


def fit_pair_potential(kernel: Any, states: Sequence[str] | None = None, *,
                       max_log_gap: float | None = None, cycles: bool = False) -> PairPotential:
    """The potential of a kernel's pair log-ratios: the gradient of its Hodge split (Eq. 5).

    Parameters
    ----------
    kernel : TransitionKernel, LogprobKernel or pandas.DataFrame
        See the module docstring.
    states : sequence of str, optional
        Restrict to these states first (default all).
    max_log_gap : float, optional
        See :func:`as_exact_kernel`.
    cycles : bool, default False
        Also split the rest into curl and harmonic parts (``dbnb.hodge(cycles=True)``: a solve
        over every triangle, seconds at 100 states); else those shares are NaN.

    Returns
    -------
    PairPotential
        On the largest connected component of the two-way pair graph.

    Raises
    ------
    ValueError
        When no pair of states has both directions positive.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> v = np.array([0.0, 1.0, 3.0]); s = list("abc")
    >>> p = pd.DataFrame(np.exp(-(v[:, None] - v[None, :]) / 2) / 4, index=s, columns=s)
    >>> fit = fit_pair_potential(p)
    >>> round(fit.r2, 12), (fit.potential.round(6) + 0.0).tolist()
    (1.0, [-1.333333, -0.333333, 1.666667])
    """
    tk = as_exact_kernel(kernel, max_log_gap=max_log_gap)
    if states is not None:
        missing = [s for s in states if s not in set(tk.states)]
        if missing:
            raise ValueError(f"states not in the kernel: {missing[:5]}")
        tk = _restrict(tk, list(states))
    comp = _largest_two_way_component(tk)
    if len(comp) < 2:
        raise ValueError("no pair of states has both directions positive: the flow is empty "
                         "and the potential undefined")
    h = hodge(_restrict(tk, comp), weights="uniform", cycles=cycles)
    pot = h.potential[comp]
    pot = (pot - pot.mean()).rename("V")
    pairs = pd.DataFrame({"f": h.pairs["f"], "g": h.pairs["g"], "y": h.pairs["flow"]})
    return PairPotential(pot, pairs, h.gradient_fraction, h)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    tot = float(np.sum(y**2))
    return float("nan") if tot == 0 else 1.0 - float(np.sum((y - pred) ** 2)) / tot


def _scaled_r2(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    xx = float(x @ x)
    s = float(x @ y) / xx if xx > 0 else 0.0
    return s, _r2(y, s * x)


def _fisher(r: float, n: int, level: float) -> tuple[float, float]:
    if n <= 3 or not np.isfinite(r):
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    h = stats.norm.ppf(0.5 + level / 2) / np.sqrt(n - 3)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def _row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    return np.sum(xc * yc, axis=1) / np.sqrt(np.sum(xc**2, axis=1) * np.sum(yc**2, axis=1))


def _boot_corr(va: np.ndarray, vb: np.ndarray, n_boot: int, level: float,
               seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals of Pearson and Spearman over resamples of the states."""
    if n_boot == 0:
        nan = (float("nan"), float("nan"))
        return nan, nan
    rng = np.random.default_rng(seed)
    k = rng.integers(0, va.size, (n_boot, va.size))
    x, y = va[k], vb[k]
    ok = (np.ptp(x, axis=1) > 0) & (np.ptp(y, axis=1) > 0)
    x, y = x[ok], y[ok]
    if not len(x):
        nan = (float("nan"), float("nan"))
        return nan, nan
    q = [(1 - level) / 2, (1 + level) / 2]
    p = np.quantile(_row_corr(x, y), q)
    s = np.quantile(_row_corr(stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)), q)
    return (float(p[0]), float(p[1])), (float(s[0]), float(s[1]))


def _popularity_potential(tk: TransitionKernel, states: Sequence[str]) -> pd.Series:
    """``-log p(g)``, ``p(g)`` the mean of ``T(g <- f)`` over the other prompts ``f``."""
    m = _restrict(tk, states).matrix.toarray()  # diagonal 0: self-replies are escapes
    pop = pd.Series(m.sum(axis=1) / (len(states) - 1), index=list(states))
    return -np.log(pop.clip(lower=np.finfo(float).tiny))


def _residual(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v`` minus its least-squares fit ``a + b x``."""
    d = np.column_stack([np.ones_like(x), x])
    return v - d @ np.linalg.lstsq(d, v, rcond=None)[0]


def compare(a: Any, b: Any, *, names: tuple[str, str] = ("A", "B"), level: float = 0.95,
            n_boot: int = 2000, seed: int = 0,
            max_log_gap: float | None = None) -> Comparison:
    """Compare the potentials of two kernels on their common states.

    Parameters
    ----------
    a, b : TransitionKernel, LogprobKernel or pandas.DataFrame
        The two kernels (see the module docstring).
    names : tuple of str
        Labels of ``a`` and ``b``.
    level : float
        Interval level.
    n_boot : int
        Bootstrap resamples of the states (correlation intervals); 0: none (the Spearman and
        bootstrap Pearson intervals are NaN).
    seed : int
        Bootstrap seed.
    max_log_gap : float, optional
        Censor loosely bounded pairs of log-probability kernels (:func:`as_exact_kernel`).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        When the kernels share fewer than 3 states, or fewer than 3 states sit in both
        kernels' largest two-way components.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"n_boot must be an int >= 0, got {n_boot!r}")
    if len(names) != 2:
        raise ValueError(f"names must be two labels, got {names!r}")
    ta = as_exact_kernel(a, max_log_gap=max_log_gap)
    tb = as_exact_kernel(b, max_log_gap=max_log_gap)
    in_b = set(tb.states)
    common = [s for s in ta.states if s in in_b]
    if len(common) < 3:
        raise ValueError(f"the kernels share {len(common)} states; need >= 3")
    both = common
    for _ in range(len(common)):  # shrink to the states in both largest components
        ca = set(_largest_two_way_component(_restrict(ta, both)))
        cb = set(_largest_two_way_component(_restrict(tb, both)))
        new = [s for s in both if s in ca and s in cb]
        if len(new) < 3:
            raise ValueError(f"the two kernels share {len(new)} states in their largest "
                             "two-way components; need >= 3")
        if new == both:
            break
        both = new
    fa, fb = fit_pair_potential(ta, both), fit_pair_potential(tb, both)
    va, vb = fa.potential[both].to_numpy(), fb.potential[both].to_numpy()
    r = float(stats.pearsonr(va, vb)[0])
    rs = float(stats.spearmanr(va, vb)[0])
    bp, bs = _boot_corr(va, vb, n_boot, level, seed)
    # cross-prediction of B's log-ratios on B's pairs
    pb = fb.pairs
    yb = pb["y"].to_numpy()
    xa = fa.potential[pb["f"]].to_numpy() - fa.potential[pb["g"]].to_numpy()
    scale, r2_cross = _scaled_r2(yb, xa)
    vpop = _popularity_potential(tb, both)
    xp = vpop[pb["f"]].to_numpy() - vpop[pb["g"]].to_numpy()
    _, r2_pop = _scaled_r2(yb, xp)
    ra = _residual(va, _popularity_potential(ta, both)[both].to_numpy())
    rb = _residual(vb, vpop[both].to_numpy())
    rp = float(np.corrcoef(ra, rb)[0, 1]) if np.ptp(ra) > 0 and np.ptp(rb) > 0 else np.nan
    beyond = (rp, *_fisher(rp, len(both) - 2, level))
    return Comparison(
        names=(str(names[0]), str(names[1])), states=tuple(both), fit_a=fa, fit_b=fb,
        pearson=(r, *_fisher(r, len(both), level)), spearman=(rs, *bs),
        pearson_boot=bp, scale=scale, r2_own=fb.r2, r2_cross=r2_cross,
        r2_popularity=r2_pop, beyond_popularity=beyond, level=level,
        info={"n_boot": n_boot, "seed": seed, "max_log_gap": max_log_gap},
    )


def compare_to(reference: Any, others: Mapping[str, Any], *, name: str = "reference",
               **kwargs: Any) -> list[Comparison]:
    """:func:`compare` one reference kernel with each of several (models, prompts, T).

    Parameters
    ----------
    reference : kernel
        Kernel ``A`` of every comparison.
    others : mapping of str to kernel
        Label -> kernel ``B``.
    name : str
        Label of the reference.
    **kwargs
        Passed to :func:`compare`.

    Returns
    -------
    list of Comparison
        In the order of ``others``; :func:`comparison_table` makes the table.
    """
    if not others:
        raise ValueError("others is empty: nothing to compare with")
    return [compare(reference, k, names=(name, str(label)), **kwargs)
            for label, k in others.items()]


def comparison_table(results: Sequence[Comparison]) -> pd.DataFrame:
    """One row per comparison (:meth:`Comparison.to_series`)."""
    return pd.DataFrame([c.to_series() for c in results])
