"""Transition counts: the data of an experiment, immutable.

The central object is :class:`TransitionCounts`. It holds

* ``states``: the state labels (strings), in a fixed order;
* ``matrix``: a sparse matrix ``N`` with ``N[g, f] = N(g <- f)``, the number of sampled
  calls from prompt state ``f`` whose reply was the state ``g`` (column = source, row = target,
  the convention of the Letter's ``T(g <- f)``; deeptime's count matrix ``C[f, g]`` is the
  transpose);
* ``calls``: ``N0(f)``, the number of calls made from ``f`` (escapes and self-transitions
  included) when it is known, with ``calls_kind`` saying how it is known (``"exact"``: every
  call was recorded; ``"nominal"``: a design number such as the 4000 calls per row of the
  Letter's Table II, which the recorded rows may exceed);
* ``escapes``: calls from ``f`` whose reply was rejected, when known;
* ``metadata``: a :class:`pandas.DataFrame` indexed by state (scores, MSE, first-seen order...).

Estimators are functions of this object (:mod:`dbnb.kernels`, :mod:`dbnb.potential`); the
object itself never changes: arrays are read-only and every "filter" returns a new object that
keeps the original labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .graph import component_members, strong_components

__all__ = ["TransitionCounts", "ESCAPE_LABELS"]

#: Labels that mark a rejected reply in published data; never states.
ESCAPE_LABELS = frozenset({"INVALID00"})

CallsKind = Literal["exact", "nominal"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _as_count_array(values, name: str, size: int | None = None) -> np.ndarray:
    """Validate a vector of counts: finite, integer-valued, non-negative."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric counts, got {values!r:.80}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if size is not None and arr.size != size:
        raise ValueError(f"{name} has {arr.size} entries but there are {size} states")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} contains a non-finite value ({arr[i]!r} at position {i})")
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative, found {arr[i]!r} at position {i}")
    if (arr != np.round(arr)).any():
        i = int(np.flatnonzero(arr != np.round(arr))[0])
        raise ValueError(f"{name} must be whole numbers, found {arr[i]!r} at position {i}")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class TransitionCounts:
    """Observed transitions of an LLM-driven agent between discrete states.

    Parameters
    ----------
    states : sequence of str
        Unique state labels. ``states[i]`` labels row and column ``i`` of ``matrix``.
    matrix : sparse or dense (n, n) array of non-negative integers
        ``matrix[g, f] = N(g <- f)``: number of calls from ``f`` that produced ``g``.
        The diagonal holds self-transitions (reply equal to the prompt state).
    calls : (n,) array of int, optional
        ``N0(f)``, the calls made from each state, escapes included.
    calls_kind : {"exact", "nominal"}, optional
        How ``calls`` is known. ``"exact"`` requires
        ``sum_g N(g <- f) + escapes(f) <= N0(f)`` for every ``f``. Required when
        ``calls`` is given.
    escapes : (n,) array of int, optional
        Rejected replies (no state) per prompt state.
    metadata : pandas.DataFrame, optional
        Per-state information indexed by state label (e.g. ``score``, ``mse``, ``first_seen``).
    source : str
        Where the counts come from (a file, a store, a design); shown in figure captions.

    Examples
    --------
    >>> c = TransitionCounts.from_pairs(["A", "A", "B", "A"], ["B", "B", "A", "C"])
    >>> c.states
    ('A', 'B', 'C')
    >>> int(c.count("A", "B")), int(c.count("B", "A"))
    (2, 1)
    """

    states: tuple[str, ...]
    matrix: sp.csr_array
    calls: np.ndarray | None = None
    calls_kind: CallsKind | None = None
    escapes: np.ndarray | None = None
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = ""

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        states = tuple(self.states)
        for s in states:
            if not isinstance(s, str) or not s:
                raise ValueError(f"state labels must be non-empty strings, got {s!r}")
        if len(set(states)) != len(states):
            dup = pd.Index(states)[pd.Index(states).duplicated()][0]
            raise ValueError(f"state labels must be unique; {dup!r} appears more than once")
        bad_labels = ESCAPE_LABELS.intersection(states)
        if bad_labels:
            raise ValueError(
                f"{sorted(bad_labels)} mark escapes (rejected replies) and cannot be states"
            )
        n = len(states)
        m = self.matrix
        if not sp.issparse(m):
            m = np.asarray(m)
            if m.ndim != 2:
                raise ValueError(f"matrix must be two-dimensional, got shape {m.shape}")
        if m.shape != (n, n):
            raise ValueError(
                f"matrix has shape {m.shape} but there are {n} states; it must be ({n}, {n})"
            )
        m = sp.csr_array(m, dtype=float)
        m.sum_duplicates()
        data = m.data
        if not np.isfinite(data).all():
            raise ValueError("matrix contains NaN or infinite counts")
        if (data < 0).any():
            raise ValueError(f"matrix contains negative counts (min {data.min()!r})")
        if (data != np.round(data)).any():
            bad = data[data != np.round(data)][0]
            raise ValueError(f"matrix counts must be whole numbers, found {bad!r}")
        m = sp.csr_array(m.astype(np.int64))
        m.eliminate_zeros()
        m.sort_indices()
        for arr in (m.data, m.indices, m.indptr):
            arr.setflags(write=False)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "matrix", m)

        if self.calls is not None:
            calls = _as_count_array(self.calls, "calls", n)
            if self.calls_kind not in ("exact", "nominal"):
                raise ValueError(
                    f"calls_kind must be 'exact' or 'nominal' when calls are given, "
                    f"got {self.calls_kind!r}"
                )
            object.__setattr__(self, "calls", _readonly(calls))
        elif self.calls_kind is not None:
            raise ValueError(f"calls_kind={self.calls_kind!r} given without calls")
        if self.escapes is not None:
            escapes = _as_count_array(self.escapes, "escapes", n)
            object.__setattr__(self, "escapes", _readonly(escapes))
        if self.calls_kind == "exact":
            used = self.observed_calls()
            if self.escapes is not None:
                used = used + self.escapes
            over = used > self.calls
            if over.any():
                i = int(np.flatnonzero(over)[0])
                raise ValueError(
                    f"exact calls N0({states[i]!r}) = {self.calls[i]} is smaller than the "
                    f"{used[i]} replies recorded from it (transitions + escapes)"
                )

        meta = self.metadata
        if meta is None:
            meta = pd.DataFrame()
        if not isinstance(meta, pd.DataFrame):
            raise TypeError(f"metadata must be a pandas DataFrame, got {type(meta).__name__}")
        if len(meta.columns) or len(meta.index):
            unknown = meta.index.difference(pd.Index(states))
            if len(unknown):
                raise ValueError(
                    f"metadata has rows for unknown states, e.g. {list(unknown[:3])}"
                )
        meta = meta.reindex(pd.Index(states, name="state")).copy()
        object.__setattr__(self, "metadata", meta)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pairs(
        cls,
        sources: Iterable[str],
        targets: Iterable[str],
        *,
        states: Sequence[str] | None = None,
        calls: dict[str, int] | pd.Series | None = None,
        calls_kind: CallsKind | None = None,
        escape_labels: Iterable[str] = ESCAPE_LABELS,
        metadata: pd.DataFrame | None = None,
        source: str = "",
    ) -> TransitionCounts:
        """Counts from one entry per observed call: ``sources[k] -> targets[k]``.

        A target in ``escape_labels`` (default ``{"INVALID00"}``) or ``None`` counts as an
        escape of its source, not as a state. States are ordered by first appearance (as a
        source or a target) unless ``states`` is given, in which case every label must be in it.
        ``calls`` (a mapping state -> N0) makes ``N0`` known; with ``calls_kind="exact"`` it is
        checked against the recorded replies. A ``first_seen`` column (order of first
        appearance) is added to the metadata.
        """
        src = list(sources)
        tgt = list(targets)
        if len(src) != len(tgt):
            raise ValueError(
                f"sources and targets must have the same length, got {len(src)} and {len(tgt)}"
            )
        esc = set(escape_labels)
        for name, seq in (("sources", src), ("targets", tgt)):
            for k, s in enumerate(seq):
                if s is None and name == "targets":
                    continue
                if not isinstance(s, str) or not s:
                    raise ValueError(f"{name}[{k}] must be a non-empty string, got {s!r}")
        bad_src = [s for s in src if s in esc]
        if bad_src:
            raise ValueError(f"sources contain the escape marker {bad_src[0]!r}: not a state")
        is_escape = np.array([t is None or t in esc for t in tgt], dtype=bool)
        seen = [x for pair in zip(src, tgt, strict=True) for x in pair]
        kept = [x for x in seen if x is not None and x not in esc]
        order = pd.unique(np.array(kept, dtype=object))
        if states is None:
            labels = list(order)
        else:
            labels = list(states)
            unknown = pd.Index(order).difference(pd.Index(labels))
            if len(unknown):
                raise ValueError(f"labels not in the given states: {list(unknown[:5])}")
        index = pd.Index(labels)
        n = len(labels)
        f = index.get_indexer(np.array(src, dtype=object))
        keep = ~is_escape
        g = index.get_indexer(
            np.array([t for t, e in zip(tgt, is_escape, strict=True) if not e], dtype=object)
        )
        mat = sp.csr_array(
            (np.ones(keep.sum(), dtype=np.int64), (g, f[keep])), shape=(n, n)
        )
        escapes = np.bincount(f[is_escape], minlength=n) if n else np.zeros(0, np.int64)
        calls_arr = None
        if calls is not None:
            calls_s = pd.Series(calls, dtype=float)
            unknown = calls_s.index.difference(index)
            if len(unknown):
                raise ValueError(f"calls given for unknown states: {list(unknown[:5])}")
            calls_arr = calls_s.reindex(index).fillna(0).to_numpy()
            if calls_kind is None:
                calls_kind = "exact"
        first = pd.Series(np.arange(len(order)), index=pd.Index(order)).reindex(index)
        meta = pd.DataFrame({"first_seen": first.to_numpy()}, index=index)
        if metadata is not None:
            meta = meta.join(metadata.drop(columns="first_seen", errors="ignore"), how="left")
        return cls(
            states=tuple(labels),
            matrix=mat,
            calls=calls_arr,
            calls_kind=calls_kind if calls_arr is not None else None,
            escapes=escapes,
            metadata=meta,
            source=source,
        )

    @classmethod
    def from_triples(
        cls,
        sources: Iterable[str],
        targets: Iterable[str],
        counts: Iterable[float],
        *,
        states: Sequence[str] | None = None,
        calls: dict[str, int] | pd.Series | None = None,
        calls_kind: CallsKind | None = None,
        escapes: dict[str, int] | pd.Series | None = None,
        metadata: pd.DataFrame | None = None,
        source: str = "",
    ) -> TransitionCounts:
        """Counts from ``(f, g, N(g <- f))`` triples; repeated pairs are added.

        Zero counts are allowed (they still introduce the state labels).
        """
        src = list(sources)
        tgt = list(targets)
        cnt = _as_count_array(list(counts), "counts")
        if not (len(src) == len(tgt) == cnt.size):
            raise ValueError(
                f"sources, targets and counts must have the same length, got "
                f"{len(src)}, {len(tgt)} and {cnt.size}"
            )
        for name, seq in (("sources", src), ("targets", tgt)):
            for k, s in enumerate(seq):
                if not isinstance(s, str) or not s:
                    raise ValueError(f"{name}[{k}] must be a non-empty string, got {s!r}")
                if s in ESCAPE_LABELS:
                    raise ValueError(f"{name}[{k}] is the escape marker {s!r}; pass escapes=")
        seen = [x for p in zip(src, tgt, strict=True) for x in p]
        order = list(pd.unique(np.array(seen, dtype=object)))
        extra = [] if calls is None else [s for s in pd.Series(calls).index if s not in set(order)]
        if states is None:
            labels = order + extra
        else:
            labels = list(states)
            unknown = pd.Index(order).difference(pd.Index(labels))
            if len(unknown):
                raise ValueError(f"labels not in the given states: {list(unknown[:5])}")
        index = pd.Index(labels)
        n = len(labels)
        f = index.get_indexer(np.array(src, dtype=object))
        g = index.get_indexer(np.array(tgt, dtype=object))
        mat = sp.csr_array((cnt, (g, f)), shape=(n, n))

        def _vec(x, name):
            if x is None:
                return None
            s = pd.Series(x, dtype=float)
            unknown = s.index.difference(index)
            if len(unknown):
                raise ValueError(f"{name} given for unknown states: {list(unknown[:5])}")
            return s.reindex(index).fillna(0).to_numpy()

        calls_arr = _vec(calls, "calls")
        if calls_arr is not None and calls_kind is None:
            calls_kind = "exact"
        meta = pd.DataFrame({"first_seen": np.arange(n)}, index=index)
        if metadata is not None:
            meta = meta.join(metadata.drop(columns="first_seen", errors="ignore"), how="left")
        return cls(
            states=tuple(labels),
            matrix=mat,
            calls=calls_arr,
            calls_kind=calls_kind if calls_arr is not None else None,
            escapes=_vec(escapes, "escapes"),
            metadata=meta,
            source=source,
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame, **kwargs) -> TransitionCounts:
        """Counts from a long table with columns ``source``, ``target``, ``count``."""
        missing = {"source", "target", "count"}.difference(df.columns)
        if missing:
            raise ValueError(f"table lacks column(s) {sorted(missing)}; has {list(df.columns)}")
        return cls.from_triples(df["source"], df["target"], df["count"], **kwargs)

    # ------------------------------------------------------------------ basic views
    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def index(self) -> pd.Index:
        """The states as a :class:`pandas.Index` (for label look-ups)."""
        return pd.Index(self.states, name="state")

    def __len__(self) -> int:
        return self.n_states

    def __repr__(self) -> str:
        calls = "unknown" if self.calls is None else f"{self.calls_kind}"
        src = f", source={self.source!r}" if self.source else ""
        return (
            f"TransitionCounts({self.n_states} states, {self.n_samples} transitions, "
            f"{self.n_unique_transitions} unique, N0 {calls}{src})"
        )

    def _idx(self, label: str) -> int:
        try:
            return self.states.index(label)
        except ValueError:
            raise KeyError(f"unknown state {label!r}") from None

    def count(self, source: str, target: str) -> int:
        """``N(target <- source)``."""
        return int(self.matrix[self._idx(target), self._idx(source)])

    def edges(self, *, self_loops: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observed transitions as arrays ``(f, g, N(g <- f))`` of state indices and counts."""
        coo = self.matrix.tocoo()
        g, f, c = coo.row, coo.col, coo.data
        if not self_loops:
            keep = f != g
            f, g, c = f[keep], g[keep], c[keep]
        return f.astype(np.int64), g.astype(np.int64), c.astype(np.int64)

    def to_frame(self, *, self_loops: bool = True) -> pd.DataFrame:
        """Long table ``source, target, count`` of the observed transitions."""
        f, g, c = self.edges(self_loops=self_loops)
        s = np.array(self.states, dtype=object)
        return pd.DataFrame({"source": s[f], "target": s[g], "count": c})

    def to_dense_frame(self) -> pd.DataFrame:
        """Dense table with one row per source and one column per target (plus escapes)."""
        df = pd.DataFrame(self.matrix.T.toarray(), index=self.index, columns=self.index)
        if self.escapes is not None:
            df["escape"] = self.escapes
        return df

    # ------------------------------------------------------------------ derived counts
    def observed_calls(self) -> np.ndarray:
        """Recorded replies that are states per source, ``sum_g N(g <- f)`` (with self-loops)."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.int64)

    def self_loops(self) -> np.ndarray:
        """``N(f <- f)`` per state."""
        return self.matrix.diagonal().astype(np.int64)

    def out_counts(self) -> np.ndarray:
        """``sum_{g != f} N(g <- f)``: the N0 of Eq. 24 (escapes and self-loops ignored)."""
        return self.observed_calls() - self.self_loops()

    def in_counts(self) -> np.ndarray:
        """``sum_{f != g} N(g <- f)`` per target state ``g``."""
        return np.asarray(self.matrix.sum(axis=1)).ravel().astype(np.int64) - self.self_loops()

    @property
    def n_samples(self) -> int:
        """Total recorded transitions between states, self-loops included."""
        return int(self.matrix.sum())

    @property
    def n_unique_transitions(self) -> int:
        """Number of distinct ordered pairs ``f != g`` with ``N(g <- f) > 0``."""
        return int(self.edges()[0].size)

    def statistics(self) -> pd.Series:
        """The database statistics of the Letter's Table III.

        ``samples`` counts recorded transitions (self-loops included, escapes excluded),
        ``unique_transitions`` distinct ordered pairs ``f != g``, ``states`` the labels, and
        ``states_sampled_more_than_once`` the states that appear as a source more than once
        (counting self-transitions, as the authors' scripts do).
        """
        return pd.Series(
            {
                "samples": self.n_samples,
                "states": self.n_states,
                "unique_transitions": self.n_unique_transitions,
                "states_sampled_more_than_once": int((self.observed_calls() > 1).sum()),
                "escapes": int(self.escapes.sum()) if self.escapes is not None else np.nan,
            },
            name=self.source or "counts",
            dtype=float,
        )

    # ------------------------------------------------------------------ restriction
    def submodel(self, states: Sequence[str] | np.ndarray) -> TransitionCounts:
        """Counts restricted to ``states`` (labels, integer indices or a boolean mask).

        Transitions to dropped states are removed from ``matrix``; ``calls`` and ``escapes``
        keep their values (a call that reached a dropped state still was a call), so an
        ``"exact"`` N0 stays exact.
        """
        idx = self._as_indices(states)
        m = self.matrix[idx][:, idx]
        return TransitionCounts(
            states=tuple(self.states[i] for i in idx),
            matrix=m,
            calls=None if self.calls is None else self.calls[idx],
            calls_kind=self.calls_kind,
            escapes=None if self.escapes is None else self.escapes[idx],
            metadata=self.metadata.iloc[idx],
            source=self.source,
        )

    def _as_indices(self, states) -> np.ndarray:
        arr = np.asarray(states)
        if arr.dtype == bool:
            if arr.shape != (self.n_states,):
                raise ValueError(
                    f"boolean mask has shape {arr.shape}; expected ({self.n_states},)"
                )
            return np.flatnonzero(arr)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if np.issubdtype(arr.dtype, np.integer):
            if arr.min() < 0 or arr.max() >= self.n_states:
                raise IndexError(f"state indices must lie in [0, {self.n_states})")
            return arr.astype(np.int64)
        idx = self.index.get_indexer(arr.astype(object))
        if (idx < 0).any():
            raise KeyError(f"unknown states: {list(arr[idx < 0][:5])}")
        return idx

    def without_self_loops(self) -> TransitionCounts:
        """The same counts with the diagonal (reply equal to prompt) removed from ``matrix``."""
        m = self.matrix.tolil()
        m.setdiag(0)
        return self._replace(matrix=sp.csr_array(m))

    def _replace(self, **changes) -> TransitionCounts:
        kw = dict(
            states=self.states,
            matrix=self.matrix,
            calls=self.calls,
            calls_kind=self.calls_kind,
            escapes=self.escapes,
            metadata=self.metadata,
            source=self.source,
        )
        kw.update(changes)
        return TransitionCounts(**kw)

    def with_calls(self, calls, kind: CallsKind = "nominal") -> TransitionCounts:
        """A copy with ``N0`` set: a scalar (the same for every state), a mapping or an array."""
        if np.isscalar(calls):
            arr = np.full(self.n_states, calls)
        elif isinstance(calls, dict | pd.Series):
            s = pd.Series(calls, dtype=float)
            unknown = s.index.difference(self.index)
            if len(unknown):
                raise ValueError(f"calls given for unknown states: {list(unknown[:5])}")
            arr = s.reindex(self.index).fillna(0).to_numpy()
        else:
            arr = calls
        return self._replace(calls=arr, calls_kind=kind)

    # ------------------------------------------------------------------ graph structure
    def adjacency(self) -> sp.csr_array:
        """Boolean adjacency ``A[f, g] = N(g <- f) > 0`` for ``f != g`` (row = source)."""
        f, g, _ = self.edges()
        return sp.csr_array(
            (np.ones(f.size, dtype=bool), (f, g)), shape=(self.n_states, self.n_states)
        )

    def strongly_connected_components(self) -> list[np.ndarray]:
        """Strongly connected components as arrays of state indices, main component first.

        Ranked by the one rule of :func:`dbnb.graph.strong_components` (size, then edges
        inside, then the smallest first-seen index), the rule every fit uses too.
        """
        return component_members(strong_components(self.adjacency()))


def entries(matrix: sp.spmatrix | sp.sparray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for every ``k`` as a 1-D array (empty for empty indices).

    scipy's fancy indexing of a sparse array with two empty index arrays returns a sparse array,
    not an empty vector; this helper always returns a numpy array of the matrix's dtype.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {rows.size} and "
                         f"{cols.size}")
    if rows.size == 0:
        return np.zeros(0, dtype=matrix.dtype)
    return np.asarray(sp.csr_array(matrix)[rows, cols]).ravel()
