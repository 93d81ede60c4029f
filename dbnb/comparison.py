"""One potential for many kernels? V of one kernel against V of another, on common states.

The Letter suggests that LLMs share "a class of underlying potential functions that may
transcend different LLM architectures and prompt templates". With two exact kernels
``P_A(g <- f)`` and ``P_B(g <- f)`` on the same states (two models, two prompt wordings, two
temperatures) that is testable without sampling noise:

* each kernel's pair log-ratios ``y(f, g) = log P(g <- f) - log P(f <- g)`` on pairs with both
  directions positive are fitted by a potential, ``y ~ V(f) - V(g)`` (unweighted least
  squares on the pair graph: the gradient part of the Hodge split), with its own ``R2``;
* ``V_A`` against ``V_B`` on the states of the common component: Pearson and Spearman
  correlations with intervals (Fisher z and a bootstrap over states);
* cross-prediction: ``V_A`` (times one fitted scale ``s``, which absorbs a change of beta,
  e.g. with temperature) predicts ``y_B``; its ``R2`` beside ``B``'s own;
* the popularity-only control: ``V_pop = -log p_B`` with ``p_B(g)`` the mean reply probability
  of ``g`` over ``B``'s sources (the kernel of a prompt-independent agent, which obeys
  detailed balance trivially). A shared potential means something only when ``V_A`` predicts
  ``y_B`` better than ``B``'s own popularity does.

Kernels are square probability matrices ``P[g, f]`` (row = reply ``g``, column = prompt ``f``,
as ``N[g, f]`` counts ``f -> g`` everywhere in dbnb) given as labelled DataFrames;
:func:`kernel_frame` makes one from a :class:`dbnb.llm.logprob.LogprobKernel`, optionally at
another temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PairPotential",
    "Comparison",
    "kernel_frame",
    "fit_pair_potential",
    "compare",
    "comparison_table",
]


@dataclass(frozen=True)
class PairPotential:
    """A least-squares potential of a kernel's pair log-ratios.

    Attributes
    ----------
    potential : pandas.Series
        ``V`` per state of the largest connected pair graph, mean zero.
    pairs : pandas.DataFrame
        Columns ``f``, ``g``, ``y`` (``log P(g<-f) - log P(f<-g)``), one row per unordered pair
        with both directions positive (and both endpoints in the component).
    r2 : float
        ``1 - SS_res / SS_tot`` of ``y ~ V(f) - V(g)`` (``SS_tot = sum y^2``: a flow has no
        intercept); the gradient fraction of the flow.
    """

    potential: pd.Series
    pairs: pd.DataFrame
    r2: float


@dataclass(frozen=True)
class Comparison:
    """V of kernel A against V of kernel B, and how well each predicts B's log-ratios.

    Attributes
    ----------
    names : tuple of str
        ``(A, B)``.
    states : tuple of str
        The common states compared.
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
    level : float
        Interval level.
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
    level: float = 0.95
    info: dict[str, Any] = field(default_factory=dict)

    def to_series(self) -> pd.Series:
        """One row of :func:`comparison_table`."""
        r, lo, hi = self.pearson
        rs, slo, shi = self.spearman
        return pd.Series({
            "A": self.names[0], "B": self.names[1], "states": len(self.states),
            "pairs_B": len(self.fit_b.pairs),
            "pearson": r, "pearson_lo": lo, "pearson_hi": hi,
            "pearson_boot_lo": self.pearson_boot[0], "pearson_boot_hi": self.pearson_boot[1],
            "spearman": rs, "spearman_lo": slo, "spearman_hi": shi,
            "scale": self.scale, "r2_own_A": self.fit_a.r2, "r2_own_B": self.r2_own,
            "r2_cross": self.r2_cross, "r2_popularity": self.r2_popularity,
        })


def kernel_frame(kernel, temperature: float = 1.0) -> pd.DataFrame:
    """The square kernel ``P[g, f]`` of a log-probability kernel on its sources.

    Parameters
    ----------
    kernel : dbnb.llm.logprob.LogprobKernel or pandas.DataFrame
        A kernel with ``states``, ``sources`` and ``prob`` (``(n_states, n_sources)``), or an
        already labelled frame (rows = replies, columns = prompts).
    temperature : float, default 1
        Only 1 for a plain kernel (a kernel at another temperature needs the stored child
        logits, :func:`dbnb.llm.logprob.nodes.reweight`).

    Returns
    -------
    pandas.DataFrame
        Rows and columns are the sources (replies outside the sources dropped).
    """
    if temperature != 1.0:
        raise ValueError("a kernel at temperature != 1 needs stored child logits "
                         "(dbnb.llm.logprob.nodes.reweight); got a plain kernel")
    if isinstance(kernel, pd.DataFrame):
        df = kernel
    else:
        df = pd.DataFrame(np.asarray(kernel.prob), index=list(kernel.states),
                          columns=list(kernel.sources))
    common = [s for s in df.columns if s in df.index]
    if len(common) < 3:
        raise ValueError(f"a kernel needs >= 3 states that are both prompts and replies, "
                         f"got {len(common)}")
    return df.loc[common, common].astype(float)


def _pairs(p: pd.DataFrame) -> pd.DataFrame:
    a = p.to_numpy()
    n = a.shape[0]
    i, j = np.triu_indices(n, 1)  # i = g (row), j = f (column): a[i, j] = P(g_i <- f_j)
    fwd, bwd = a[i, j], a[j, i]
    ok = (fwd > 0) & (bwd > 0)
    lab = np.asarray(p.index)
    # y = log P(g<-f) - log P(f<-g) = V(f) - V(g), with f = column j, g = row i
    return pd.DataFrame({"f": lab[j[ok]], "g": lab[i[ok]],
                         "y": np.log(fwd[ok]) - np.log(bwd[ok])})


def _largest_component(pairs: pd.DataFrame) -> list[str]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lab = sorted(set(pairs["f"]) | set(pairs["g"]))
    if not lab:
        return []
    ix = {s: k for k, s in enumerate(lab)}
    r = pairs["f"].map(ix).to_numpy()
    c = pairs["g"].map(ix).to_numpy()
    g = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(lab), len(lab)))
    _, comp = connected_components(g, directed=False)
    big = np.bincount(comp).argmax()
    return [s for s, k in zip(lab, comp, strict=True) if k == big]


def _solve(pairs: pd.DataFrame, states: Sequence[str]) -> np.ndarray:
    ix = {s: k for k, s in enumerate(states)}
    m = len(pairs)
    d = np.zeros((m, len(states)))
    d[np.arange(m), pairs["f"].map(ix).to_numpy()] = 1.0
    d[np.arange(m), pairs["g"].map(ix).to_numpy()] -= 1.0
    v = np.linalg.lstsq(d, pairs["y"].to_numpy(), rcond=None)[0]
    return v - v.mean()


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    tot = float(np.sum(y**2))
    return float("nan") if tot == 0 else 1.0 - float(np.sum((y - pred) ** 2)) / tot


def fit_pair_potential(p: pd.DataFrame, states: Sequence[str] | None = None) -> PairPotential:
    """Least-squares potential of the pair log-ratios of a square kernel ``P[g, f]``.

    Parameters
    ----------
    p : pandas.DataFrame
        Square kernel, rows = replies, columns = prompts, same labels.
    states : sequence of str, optional
        Restrict to these states first (default all).

    Returns
    -------
    PairPotential
        On the largest connected component of the two-way pair graph.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> v = np.array([0.0, 1.0, 3.0]); s = list("abc")
    >>> p = pd.DataFrame(np.exp(-(v[:, None] - v[None, :]) / 2), index=s, columns=s)
    >>> round(fit_pair_potential(p).r2, 12)
    1.0
    """
    if p.shape[0] != p.shape[1] or list(p.index) != list(p.columns):
        raise ValueError(f"kernel must be square with equal row and column labels, "
                         f"got shape {p.shape}")
    if states is not None:
        p = p.loc[list(states), list(states)]
    pairs = _pairs(p)
    comp = _largest_component(pairs)
    if len(comp) < 2:
        raise ValueError("no pair of states has both directions positive")
    keep = set(comp)
    pairs = pairs[pairs["f"].isin(keep) & pairs["g"].isin(keep)].reset_index(drop=True)
    v = _solve(pairs, comp)
    pot = pd.Series(v, index=comp, name="V")
    pred = pot[pairs["f"]].to_numpy() - pot[pairs["g"]].to_numpy()
    return PairPotential(pot, pairs, _r2(pairs["y"].to_numpy(), pred))


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


def compare(a: pd.DataFrame, b: pd.DataFrame, *, names: tuple[str, str] = ("A", "B"),
            level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Compare the potentials of two square kernels on their common states.

    Parameters
    ----------
    a, b : pandas.DataFrame
        Square kernels ``P[g, f]`` (:func:`kernel_frame`).
    names : tuple of str
        Labels of ``a`` and ``b``.
    level : float
        Interval level.
    n_boot : int
        Bootstrap resamples of the states (correlation intervals).
    seed : int
        Bootstrap seed.

    Returns
    -------
    Comparison
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    common = [s for s in a.index if s in set(b.index)]
    if len(common) < 3:
        raise ValueError(f"the kernels share {len(common)} states; need >= 3")
    fa0 = fit_pair_potential(a, common)
    fb0 = fit_pair_potential(b, common)
    both = [s for s in fa0.potential.index if s in set(fb0.potential.index)]
    if len(both) < 3:
        raise ValueError(f"the two fits share {len(both)} connected states; need >= 3")
    fa, fb = fit_pair_potential(a, both), fit_pair_potential(b, both)
    both = [s for s in fa.potential.index if s in set(fb.potential.index)]
    va, vb = fa.potential[both].to_numpy(), fb.potential[both].to_numpy()
    r = float(stats.pearsonr(va, vb)[0])
    rs = float(stats.spearmanr(va, vb)[0])
    rng = np.random.default_rng(seed)
    boot_p, boot_s = [], []
    for _ in range(n_boot):
        k = rng.integers(0, len(both), len(both))
        x, y = va[k], vb[k]
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        boot_p.append(np.corrcoef(x, y)[0, 1])
        boot_s.append(stats.spearmanr(x, y)[0])
    q = [(1 - level) / 2, (1 + level) / 2]
    bp = tuple(float(t) for t in np.quantile(boot_p, q)) if boot_p else (np.nan, np.nan)
    bs = tuple(float(t) for t in np.quantile(boot_s, q)) if boot_s else (np.nan, np.nan)
    # cross-prediction of B's log-ratios on B's pairs
    pb = fb.pairs
    yb = pb["y"].to_numpy()
    xa = fa.potential[pb["f"]].to_numpy() - fa.potential[pb["g"]].to_numpy()
    scale, r2_cross = _scaled_r2(yb, xa)
    pop = b.loc[both, both].mean(axis=1)  # mean reply probability over B's prompts
    vpop = -np.log(pop.clip(lower=np.finfo(float).tiny))
    xp = vpop[pb["f"]].to_numpy() - vpop[pb["g"]].to_numpy()
    _, r2_pop = _scaled_r2(yb, xp)
    return Comparison(
        names=tuple(names), states=tuple(both), fit_a=fa, fit_b=fb,
        pearson=(r, *_fisher(r, len(both), level)), spearman=(rs, *bs),
        pearson_boot=bp, scale=scale, r2_own=fb.r2, r2_cross=r2_cross,
        r2_popularity=r2_pop, level=level, info={"n_boot": n_boot, "seed": seed},
    )


def comparison_table(results: Sequence[Comparison]) -> pd.DataFrame:
    """One row per comparison (:meth:`Comparison.to_series`)."""
    return pd.DataFrame([c.to_series() for c in results])
