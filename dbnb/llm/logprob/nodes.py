"""Per-node child logits: one walk, kernels at any temperature by re-weighting.

The grammar sampler at temperature ``T`` draws from ``softmax(logits / T)`` over the allowed
tokens of a node (its children in the token tree, plus the end-of-generation tokens when the
node's text is a complete candidate). A walk that keeps, for every node it visits, only the
logits of the allowed children and ``logsumexp`` of the EOG logits (never the full vocabulary)
therefore determines ``P_T(g | f)`` for every ``T`` on the part of the tree it visited:
:func:`reweight` recomputes every path probability at ``T``. A child the walk did not follow
(below the cut-off at ``T = 1``) keeps its probability at ``T`` as *uncovered* mass, added to
every candidate it could still complete for the upper bound: the bound is recomputed per
temperature. The ``logsumexp`` over several EOG tokens at ``T`` is not ``lse_eog / T``; the walk
keeps the EOG logits themselves (a handful of numbers per complete node).

Layout of a :class:`NodeRecord` (flat arrays, one source):

``node``        tree node id of each visited internal node (DFS order, parents first)
``offset``      ``(n_nodes + 1,)``: children of visited node ``i`` are
                ``child[offset[i]:offset[i+1]]``
``child``       tree node id of each allowed child
``logit``       the child's logit (float32: llama.cpp's own precision, lossless)
``eog``         ``(n_nodes, n_eog)`` EOG logits of complete nodes (NaN rows for others)
``word``        candidate index of each visited node's text (-1 if not complete)
``child_word``  candidate index of each child's text (-1 if not complete)
``child_leaf``  whether the child has no children (EOG is then its only allowed token)
``completes``   ``child -> candidates it can still complete`` is given by the caller's tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["NodeRecord", "reweight", "to_record"]


@dataclass(frozen=True)
class NodeRecord:
    """What one prompt's walk keeps per visited node (see the module docstring)."""

    node: np.ndarray
    offset: np.ndarray
    child: np.ndarray
    logit: np.ndarray
    eog: np.ndarray
    word: np.ndarray
    child_word: np.ndarray
    child_leaf: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.node)
        if self.offset.shape != (n + 1,) or self.offset[0] != 0:
            raise ValueError(f"offset must have shape ({n + 1},) and start at 0, "
                             f"got {self.offset.shape}")
        m = int(self.offset[-1])
        for name in ("child", "logit", "child_word", "child_leaf"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, offset "
                                 f"says {m}")
        if self.eog.shape[0] != n or len(self.word) != n:
            raise ValueError(f"eog and word need {n} rows, got {self.eog.shape[0]} and "
                             f"{len(self.word)}")


def _lse(x: np.ndarray) -> float:
    mx = float(np.max(x))
    return mx + math.log(float(np.exp(x - mx).sum()))


def reweight(rec: NodeRecord, temperature: float, n_words: int,
             completions: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """``P_T(g | f)`` from one prompt's stored child logits.

    Parameters
    ----------
    rec : NodeRecord
        The walk's record for one prompt (root first).
    temperature : float
        ``T > 0``.
    n_words : int
        Number of candidates.
    completions : callable
        ``child tree-node id -> indices of the candidates that start with its text``
        (:meth:`dbnb.llm.logprob.tree.TokenTree.completions` of its text).

    Returns
    -------
    prob, upper : numpy.ndarray
        Lower (followed paths only) and upper bounds of ``P_T(g | f)``.
    uncovered : float
        Mass of the children the walk did not follow, and of dead ends, at ``T``.
    """
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    where = {int(n): i for i, n in enumerate(rec.node)}
    if not len(rec.node):
        raise ValueError("empty record")
    lp_node = {int(rec.node[0]): 0.0}
    prob = np.zeros(n_words)
    skipped: list[tuple[int, float]] = []
    dead = 0.0
    for i, n in enumerate(rec.node):
        lp = lp_node.pop(int(n))
        lo, hi = int(rec.offset[i]), int(rec.offset[i + 1])
        x = rec.logit[lo:hi].astype(np.float64) / temperature
        complete = rec.word[i] >= 0
        if complete:
            xe = rec.eog[i].astype(np.float64) / temperature
            lse = _lse(np.concatenate([x, xe]))
            prob[rec.word[i]] += math.exp(lp + _lse(xe) - lse)
        else:
            lse = _lse(x)
        for k in range(lo, hi):
            lk = lp + float(x[k - lo]) - lse
            c = int(rec.child[k])
            if c in where:
                lp_node[c] = lk
            elif rec.child_leaf[k]:  # EOG only: P(EOG) = 1 (or a dead end, uncovered)
                if rec.child_word[k] >= 0:
                    prob[rec.child_word[k]] += math.exp(lk)
                else:
                    dead += math.exp(lk)
            else:
                skipped.append((c, math.exp(lk)))
    upper = prob.copy()
    unc = dead
    for c, mass in skipped:
        upper[completions(c)] += mass
        unc += mass
    return prob, np.minimum(upper, 1.0), unc


def to_record(rows: list, n_eog: int) -> NodeRecord:
    """A :class:`NodeRecord` from the tuples :func:`dbnb.llm.logprob.walk.walk` appends to
    its ``record`` list (one prompt)."""
    if not rows:
        raise ValueError("no visited node recorded")
    sizes = [len(r[1]) for r in rows]
    eog = np.full((len(rows), n_eog), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        if r[3] is not None:
            eog[i] = r[3]
    return NodeRecord(
        node=np.array([r[0] for r in rows], dtype=np.int64),
        offset=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        child=np.array([k for r in rows for k in r[1]], dtype=np.int64),
        logit=np.concatenate([r[2] for r in rows]).astype(np.float32),
        eog=eog,
        word=np.array([r[4] for r in rows], dtype=np.int64),
        child_word=np.array([w for r in rows for w in r[5]], dtype=np.int64),
        child_leaf=np.array([b for r in rows for b in r[6]], dtype=bool),
    )
