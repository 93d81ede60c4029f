r"""Potential against a per-state score, and where the transitions go (Fig. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..potential import PotentialFit
from ._common import freeze, require_fit

__all__ = ["ScoreGraph", "potential_vs_score"]


@dataclass(frozen=True, eq=False)
class ScoreGraph:
    """The subgraph of Fig. 5: most visited states, their score and potential, strong edges.

    Attributes
    ----------
    states : tuple of str
        The selected states (``f``, ``g`` index into it).
    potential, score, calls : numpy.ndarray
        ``beta V``, score (e.g. MSE) and ``N0`` of each selected state.
    f, g : numpy.ndarray of int
        Transitions ``f -> g`` with ``T(g<-f) > min_T`` between selected states.
    t, n : numpy.ndarray
        ``T(g<-f)`` and ``N(g<-f)``.
    direction : numpy.ndarray of int
        ``-1`` down (``V(g) < V(f) - tol``), ``+1`` up, ``0`` flat (``|dV| <= tol``).
    min_T, tol : float
    """

    states: tuple[str, ...]
    potential: np.ndarray
    score: np.ndarray
    calls: np.ndarray
    f: np.ndarray
    g: np.ndarray
    t: np.ndarray
    n: np.ndarray
    direction: np.ndarray
    min_T: float
    tol: float
    score_name: str = "score"
    source: str = ""

    @property
    def n_transitions(self) -> int:
        return int(self.f.size)

    @property
    def n_samples(self) -> int:
        """Recorded transitions (with multiplicity) along the kept edges."""
        return int(self.n.sum())

    def shares(self, *, weighted: bool = False) -> pd.Series:
        """Shares of transitions going down / up / flat in ``V``.

        ``weighted=False`` counts distinct transitions; ``weighted=True`` counts recorded
        samples (each edge weighted by ``N(g<-f)``).
        """
        w = self.n.astype(float) if weighted else np.ones(self.n_transitions)
        tot = w.sum()
        vals = [w[self.direction == d].sum() / tot if tot else np.nan for d in (-1, 1, 0)]
        return pd.Series(vals, index=["down", "up", "flat"], name="share")

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "f": s[self.f],
                "g": s[self.g],
                "T": self.t,
                "N": self.n,
                "dV": self.potential[self.g] - self.potential[self.f],
                "direction": pd.Categorical.from_codes(self.direction + 1, ["down", "flat", "up"]),
            }
        )

    def nodes(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"beta_V": self.potential, self.score_name: self.score, "N0": self.calls},
            index=pd.Index(self.states, name="state"),
        )


def potential_vs_score(
    fit: PotentialFit,
    score: pd.Series,
    *,
    n_states: int = 70,
    min_T: float = 0.05,  # noqa: N803 (the Letter's symbol)
    tol: float = 1e-6,
) -> ScoreGraph:
    """The Fig. 5 subgraph: potential against a per-state score, and where transitions go.

    Parameters
    ----------
    fit : PotentialFit
    score : pandas.Series
        Per-state values (e.g. MSE) indexed by state label. States without a finite score, or
        without a finite ``beta V`` (outside the main component), are excluded.
    n_states : int
        Keep the ``n_states`` eligible states with the most calls ``N0`` (ties: state order).
    min_T : float
        Keep transitions with ``T(g<-f) > min_T`` between kept states.
    tol : float
        A transition is "flat" when ``|beta V(g) - beta V(f)| <= tol``.
    """
    require_fit(fit)
    if not isinstance(score, pd.Series):
        raise TypeError(
            f"score must be a pandas Series indexed by state, got {type(score).__name__}"
        )
    if n_states < 1:
        raise ValueError(f"n_states must be >= 1, got {n_states!r}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    tk = fit.transitions
    idx = pd.Index(tk.states)
    pot = fit.potential.reindex(idx).to_numpy(dtype=float)
    sc = pd.to_numeric(score.reindex(idx), errors="coerce").to_numpy(dtype=float)
    calls = np.asarray(tk.n0, dtype=float)
    eligible = np.flatnonzero(np.isfinite(pot) & np.isfinite(sc))
    order = eligible[np.lexsort((eligible, -calls[eligible]))][:n_states]
    sel = np.sort(order)
    pos = np.full(tk.n_states, -1, dtype=np.int64)
    pos[sel] = np.arange(sel.size)
    f, g, t, n = tk.edges()
    keep = (pos[f] >= 0) & (pos[g] >= 0) & (t > min_T)
    f, g, t, n = pos[f[keep]], pos[g[keep]], t[keep], n[keep]
    v = pot[sel]
    dv = v[g] - v[f]
    direction = np.where(np.abs(dv) <= tol, 0, np.sign(dv)).astype(np.int64)
    arrays = [v, sc[sel], calls[sel], f, g, t, n, direction]
    freeze(*arrays)
    return ScoreGraph(
        tuple(idx[sel]),
        *arrays,
        min_T=float(min_T),
        tol=float(tol),
        score_name=str(score.name) if score.name is not None else "score",
        source=tk.counts.source,
    )
