"""The log-probability kernel: the result type, its file format and the merge of parts.

:class:`LogprobKernel` holds ``P(g | f)`` over a candidate set with its bounds and
convergence ladder, and turns it into counts or a :class:`dbnb.kernels.TransitionKernel`.
:meth:`LogprobKernel.save` / :func:`load_logprob_kernel` write and read ``.npz`` files stamped
with :data:`FORMAT_VERSION`; :func:`merge` joins kernels computed over disjoint sources (the
parts of a run split over processes) into one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...bounded import BoundedPotential, bounded_potential
from ...counts import TransitionCounts
from ...kernels import TransitionKernel
from .model import same_machine

__all__ = ["FORMAT_VERSION", "LogprobKernel", "load_logprob_kernel", "merge"]

#: Version of the ``.npz`` layout :meth:`LogprobKernel.save` writes (``info["format_version"]``).
FORMAT_VERSION = 1
#: ``info`` entries that hold one value per source (joined by :func:`merge`).
PER_SOURCE_INFO = ("prompt_tokens", "visited_nodes")
#: ``info`` entries that must agree between the parts of one kernel.
SETTINGS = ("model_file", "strategy", "prompt_mode", "min_prob", "sampler")


@dataclass(frozen=True, eq=False, repr=False)
class LogprobKernel:
    """Reply probabilities of a local model over a candidate set, from token log-probabilities.

    The result of :func:`dbnb.llm.logprob.logprob_replies`: ``P(g | f)`` of the
    grammar-constrained sampler, summed over every tokenisation of ``g``
    (:mod:`dbnb.llm.logprob.walk`), for every candidate ``g`` and every prompt ``f`` computed.

    Attributes
    ----------
    states : tuple of str
        The candidates (the grammar's strings; words upper-case).
    sources : tuple of str
        The prompts computed (a subset of ``states``), one column each.
    prob : numpy.ndarray, shape (n_states, n_sources)
        ``prob[g, j] = P(reply = states[g] | prompt = sources[j])``, the prompt itself
        included (its entry is the probability of repeating the prompt). A lower bound when
        ``info["min_prob"] > 0``.
    logprob : numpy.ndarray
        ``log(prob)`` computed in log space (``-inf`` where a word cannot be produced).
    uncovered : numpy.ndarray, shape (n_sources,)
        ``1 - sum_g prob[g, j]``: mass not on any candidate: skipped subtrees when
        ``min_prob > 0``, else dead ends and rounding (~1e-15).
    seconds : numpy.ndarray, shape (n_sources,)
        Wall time per source.
    n_nodes : int
        Token-tree nodes (tokenisations of prefixes of the candidates) materialised: the whole
        tree when ``min_prob=0``, else the part the pruned walks reached.
    info : dict
        Model path and file, strategy, prompt mode, ``min_prob``, llama-cpp-python version,
        the machine (:func:`dbnb.llm.logprob.model.machine_info`), prompt lengths and visited
        nodes per source; in a file also ``format_version`` (:data:`FORMAT_VERSION`) and the
        total ``seconds``.
    upper : numpy.ndarray or None, shape (n_states, n_sources)
        Upper bounds of ``prob``: ``prob`` plus the mass of every skipped partial tokenisation
        whose text is a prefix of the candidate (all of it could have ended there). Equal to
        ``prob`` when nothing was skipped; ``None`` when not computed.
    ladder : numpy.ndarray or None, shape (2, n_states, n_sources)
        ``prob`` as the walk would have found it with the cut-off ``info["ladder_cuts"]``
        (10 and 100 times ``min_prob``): how the lower bounds converge as the cut-off falls
        (see :meth:`last_step`). ``None`` when not computed.
    """

    states: tuple[str, ...]
    sources: tuple[str, ...]
    prob: np.ndarray
    logprob: np.ndarray
    uncovered: np.ndarray
    seconds: np.ndarray
    n_nodes: int
    info: dict[str, Any] = field(default_factory=dict)
    upper: np.ndarray | None = None
    ladder: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"LogprobKernel({len(self.states)} states, {len(self.sources)} sources, "
            f"{self.n_nodes} tree nodes, {self.seconds.sum():.1f} s)"
        )

    def save(self, path: str | Path) -> Path:
        """Write the kernel to a compressed ``.npz`` file (no pickles).

        Arrays ``states``, ``sources``, ``prob``, ``logprob``, ``uncovered``, ``seconds``,
        ``n_nodes``, ``info`` (a JSON string, with the total ``seconds`` and the
        ``format_version`` added) and, when known, ``upper`` and ``ladder``. Read back with
        :func:`load_logprob_kernel`.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path must end in '.npz', got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {**self.info, "seconds": float(self.seconds.sum()),
                "format_version": FORMAT_VERSION}
        np.savez_compressed(
            path,
            states=np.array(self.states, dtype=str),
            sources=np.array(self.sources, dtype=str),
            prob=self.prob,
            logprob=self.logprob,
            uncovered=self.uncovered,
            seconds=self.seconds,
            n_nodes=np.int64(self.n_nodes),
            info=np.array(json.dumps(info, sort_keys=True)),
            **({} if self.upper is None else {"upper": self.upper}),
            **({} if self.ladder is None else {"ladder": self.ladder}),
        )
        return path

    def to_frame(self) -> pd.DataFrame:
        """The probability table, rows = replies ``g``, columns = prompts ``f``."""
        return pd.DataFrame(self.prob, index=pd.Index(self.states, name="reply"),
                            columns=pd.Index(self.sources, name="prompt"))

    def self_probability(self) -> pd.Series:
        """Probability that the reply repeats the prompt (an escape of the agent)."""
        idx = [self.states.index(s) for s in self.sources]
        vals = self.prob[idx, np.arange(len(self.sources))]
        return pd.Series(vals, index=pd.Index(self.sources, name="prompt"), name="self")

    def log_gap(self) -> np.ndarray:
        """``log(upper / prob)`` per entry: how far the probability can be from its lower bound
        (0 when nothing was skipped, ``inf`` where ``prob`` is 0)."""
        if self.upper is None:
            raise ValueError("this kernel has no upper bounds; recompute it to bound its "
                             "entries")
        with np.errstate(divide="ignore"):
            return np.log(self.upper) - self.logprob

    def last_step(self) -> np.ndarray:
        """``log(prob / prob at a 10x higher cut-off)`` per entry: what the last decade of
        ``min_prob`` added. Small steps mean converged lower bounds (each decade of the cut-off
        adds a geometrically shrinking share in practice); ``inf`` where the entry appeared
        only in the last decade or not at all; 0 without pruning."""
        if self.ladder is None:
            raise ValueError("this kernel has no convergence ladder; recompute it")
        with np.errstate(divide="ignore", invalid="ignore"):
            step = self.logprob - np.log(self.ladder[0])
        return np.where(np.isnan(step), np.inf, step)  # never reached: not determined

    def _square(self, max_log_gap: float | None = None,
                max_last_step: float | None = None) -> np.ndarray:
        """``T[g, f]`` over the sources, diagonal zeroed (self-replies are escapes); with
        ``max_log_gap`` (``max_last_step``), every *pair* with an entry whose bounds differ
        (last step is) by more is left out, both directions (see :meth:`censored_pairs`)."""
        idx = [self.states.index(s) for s in self.sources]
        t = self.prob[idx, :].copy()
        t[self.censored_pairs(max_log_gap, max_last_step)] = 0.0
        np.fill_diagonal(t, 0.0)
        return t

    def censored_pairs(self, max_log_gap: float | None = None,
                       max_last_step: float | None = None) -> np.ndarray:
        """Symmetric mask over ``sources x sources``: pairs left out of the kernel.

        A pair ``{f, g}`` is censored when either direction is not known to the precision
        asked, ``log_gap > max_log_gap`` or ``last_step > max_last_step``: both directions go,
        or neither. Censoring single entries would turn a two-way pair into a one-way one (an
        infinite ``beta dV``), and which entries fail is informative: the small ones, so it
        would bias the log-ratios of the pairs that remain.
        """
        idx = [self.states.index(s) for s in self.sources]
        bad = np.zeros((len(idx), len(idx)), dtype=bool)
        if max_log_gap is not None:
            bad |= self.log_gap()[idx, :] > max_log_gap
        if max_last_step is not None:
            bad |= self.last_step()[idx, :] > max_last_step
        return bad | bad.T

    def expected_counts(self, n_calls: int) -> TransitionCounts:
        """Integer expected counts for ``n_calls`` calls per source (largest remainders).

        Per source ``f``, the vector ``n_calls * prob[g, f]`` over the sources ``g`` (the
        prompt itself included) plus one escape bucket (replies outside the sources and
        uncovered mass) is floored, and the units still missing to ``n_calls`` go to the
        entries with the largest fractional parts (ties: first in order). So every count is
        ``n_calls * prob`` rounded down or up, never further, and each column sums to
        ``n_calls`` exactly; an entry is *not* ``round(n_calls * prob)`` in general
        (``0.6`` can become 0 when larger remainders take the missing units).
        ``calls_kind="exact"``; the diagonal holds the rounded self-replies.
        """
        if isinstance(n_calls, bool) or not isinstance(n_calls, (int, np.integer)) or n_calls < 1:
            raise ValueError(f"n_calls must be a positive integer, got {n_calls!r}")
        idx = [self.states.index(s) for s in self.sources]
        p = np.clip(self.prob[idx, :], 0.0, None)
        k = len(self.sources)
        mat = np.zeros((k, k), dtype=np.int64)
        esc = np.zeros(k, dtype=np.int64)
        for j in range(k):
            col = np.append(p[:, j], max(0.0, 1.0 - p[:, j].sum()))
            x = col * n_calls
            base = np.floor(x).astype(np.int64)
            rest = n_calls - base.sum()
            if rest > 0:
                base[np.argsort(-(x - base), kind="stable")[:rest]] += 1
            mat[:, j] = base[:-1]
            esc[j] = base[-1]
        return TransitionCounts(
            states=self.sources,
            matrix=mat,
            calls=np.full(k, n_calls),
            calls_kind="exact",
            escapes=esc,
            source=f"exact-logprob expected counts ({n_calls} calls per source)",
        )

    def bounded_potential(self, **kwargs) -> BoundedPotential:
        """The potential over the sources from the bounds ``prob <= P(g | f) <= upper``, with
        exact ranges and a certified verdict on detailed balance
        (:func:`dbnb.bounded.bounded_potential`; ``kwargs`` go to it). The alternative to
        censoring pairs (:meth:`censored_pairs`): every pair enters with its interval of
        log-ratios, none is dropped for being small."""
        if self.upper is None:
            raise ValueError("this kernel has no upper bounds; recompute it to bound its "
                             "entries")
        idx = [self.states.index(s) for s in self.sources]
        return bounded_potential(self.prob[idx, :], self.upper[idx, :], states=self.sources,
                                 **kwargs)

    def to_transition_kernel(self, n_calls: int = 1_000_000, *,
                             max_log_gap: float | None = None,
                             max_last_step: float | None = None) -> TransitionKernel:
        """A :class:`dbnb.kernels.TransitionKernel` (method ``"exact-logprob"``,
        ``noise_free=True``) over the sources.

        ``T(g <- f) = prob[g, f]`` for sources ``g != f``; self-replies and replies outside the
        sources are escapes (``T[f, f] = 0``). The kernel's ``counts`` (for tables) are the
        integer :meth:`expected_counts` at ``n_calls`` per source and ``n0 = n_calls``; they
        are not data, and the checks compute no error bar from them (the kernel's design is
        ``"none"``). The kernel itself is exact, not rounded.

        ``max_log_gap`` keeps only pairs whose two entries are known to that precision,
        ``log(upper / prob) <= max_log_gap`` (see :meth:`log_gap`); the other pairs are left
        out of the kernel in both directions, as transitions not measured
        (:meth:`censored_pairs`). Use it when rare tokenisations were skipped
        (``info["min_prob"] > 0``): a candidate whose probability is comparable to the skipped
        mass below its prefixes is not determined by the walk. The bound is rigorous but loose
        (the skipped mass is counted in full for every candidate it could reach).
        ``max_last_step`` is the empirical criterion: keep pairs whose last decade of the
        cut-off added at most that much in log to either entry (:meth:`last_step`).
        """
        for name, val in (("max_log_gap", max_log_gap), ("max_last_step", max_last_step)):
            if val is not None and not val >= 0:
                raise ValueError(f"{name} must be >= 0, got {val!r}")
        counts = self.expected_counts(n_calls)
        t = self._square(max_log_gap, max_last_step)
        mat = sp.csr_array(t)
        mat.eliminate_zeros()
        n0 = np.full(len(self.sources), float(n_calls))
        n0.setflags(write=False)
        return TransitionKernel(counts=counts, matrix=mat, n0=n0, method="exact-logprob",
                                noise_free=True)



_NPZ_KEYS = ("states", "sources", "prob", "logprob", "uncovered", "seconds", "n_nodes", "info")


def load_logprob_kernel(path: str | Path) -> LogprobKernel:
    """Read a :class:`LogprobKernel` written by :meth:`LogprobKernel.save`.

    Needs neither llama-cpp-python nor the model. A file without ``info["format_version"]``
    is read as version 1 (the same arrays).

    Raises
    ------
    ValueError
        The file lacks one of the arrays, their shapes disagree, the bounds contradict the
        probabilities, or its format version is newer than :data:`FORMAT_VERSION`.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in _NPZ_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{str(path)!r} is not a log-probability kernel file; "
                             f"missing {missing}")
        d = {k: z[k] for k in _NPZ_KEYS}
        upper = np.asarray(z["upper"], dtype=float) if "upper" in z.files else None
        ladder = np.asarray(z["ladder"], dtype=float) if "ladder" in z.files else None
    states = tuple(str(s) for s in d["states"])
    sources = tuple(str(s) for s in d["sources"])
    shape = (len(states), len(sources))
    if d["prob"].shape != shape or d["logprob"].shape != shape:
        raise ValueError(f"{str(path)!r}: prob/logprob shape {d['prob'].shape}, expected {shape}")
    if d["uncovered"].shape != (len(sources),) or d["seconds"].shape != (len(sources),):
        raise ValueError(f"{str(path)!r}: uncovered/seconds must have one entry per source")
    if not set(sources) <= set(states):
        raise ValueError(f"{str(path)!r}: sources are not all states")
    arrays = [np.asarray(d[k], dtype=float) for k in ("prob", "logprob", "uncovered", "seconds")]
    if upper is not None:
        if upper.shape != shape:
            raise ValueError(f"{str(path)!r}: upper shape {upper.shape}, expected {shape}")
        if np.any(upper < arrays[0] * (1 - 1e-12)):
            raise ValueError(f"{str(path)!r}: upper bounds below the probabilities")
    if ladder is not None:
        if ladder.ndim != 3 or ladder.shape[1:] != shape:
            raise ValueError(f"{str(path)!r}: ladder shape {ladder.shape}, expected (k, *{shape})")
        if np.any(ladder > arrays[0] * (1 + 1e-12)):
            raise ValueError(f"{str(path)!r}: ladder above the probabilities (a higher cut-off "
                             "cannot find more)")
    for a in arrays + [x for x in (upper, ladder) if x is not None]:
        a.setflags(write=False)
    info = json.loads(str(d["info"]))
    version = info.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ValueError(f"{str(path)!r}: format_version {version!r}; this dbnb reads up to "
                         f"{FORMAT_VERSION}")
    return LogprobKernel(
        states=states,
        sources=sources,
        prob=arrays[0],
        logprob=arrays[1],
        uncovered=arrays[2],
        seconds=arrays[3],
        n_nodes=int(d["n_nodes"]),
        info=info,
        upper=upper,
        ladder=ladder,
    )


def merge(parts: Sequence[LogprobKernel], *,
          info: Mapping[str, Any] | None = None) -> LogprobKernel:
    """One kernel from kernels over disjoint sources of the same candidates.

    A long computation is split over processes by sources (``sources=cands[i::k]``); this
    joins the parts. Sources are ordered as in ``states``; per-source arrays are joined column
    by column, ``upper`` and ``ladder`` kept when every part has them. ``info`` is the first
    part's with the per-source entries (``prompt_tokens``, ``visited_nodes``) joined in the same
    order, ``parts`` (their number) and the entries of `info` added. ``n_nodes`` is the largest
    part's tree.

    Parameters
    ----------
    parts : sequence of LogprobKernel
        Kernels over the same ``states``, with disjoint ``sources``.
    info : mapping, optional
        Extra entries for the merged ``info``.

    Returns
    -------
    LogprobKernel

    Raises
    ------
    ValueError
        No parts; different candidates; a source in two parts; parts computed with different
        settings (model file, strategy, prompt mode, ``min_prob``, sampler) or on machines with
        different arithmetic (:func:`dbnb.llm.logprob.model.same_machine`).
    """
    parts = list(parts)
    if not parts:
        raise ValueError("merge needs at least one part")
    first = parts[0]
    for i, p in enumerate(parts[1:], start=1):
        if p.states != first.states:
            raise ValueError(f"part {i} is over other candidates than part 0")
        bad = [k for k in SETTINGS if p.info.get(k) != first.info.get(k)]
        if bad:
            raise ValueError(f"part {i} was computed with other settings than part 0: {bad}")
        if same_machine(p.info, first.info) is False:
            raise ValueError(f"part {i} was computed on a machine with other arithmetic "
                             "than part 0 (info['machine'])")
    where: dict[str, tuple[int, int]] = {}
    for i, p in enumerate(parts):
        for j, s in enumerate(p.sources):
            if s in where:
                raise ValueError(f"source {s!r} is in parts {where[s][0]} and {i}")
            where[s] = (i, j)
    cols = [where[s] for s in first.states if s in where]

    def pick(name: str) -> np.ndarray:
        out = np.stack([getattr(parts[i], name)[..., j] for i, j in cols], -1)
        out.setflags(write=False)
        return out

    bounds = {name: pick(name) if all(getattr(p, name) is not None for p in parts) else None
              for name in ("upper", "ladder")}
    joined = {k: [parts[i].info[k][j] for i, j in cols] for k in PER_SOURCE_INFO
              if all(k in p.info for p in parts)}
    return LogprobKernel(
        states=first.states,
        sources=tuple(s for s in first.states if s in where),
        prob=pick("prob"),
        logprob=pick("logprob"),
        uncovered=pick("uncovered"),
        seconds=pick("seconds"),
        n_nodes=max(p.n_nodes for p in parts),
        info={**first.info, **joined, "parts": len(parts), **(info or {})},
        **bounds,
    )


def describe(kernels: Mapping[str, LogprobKernel]) -> pd.DataFrame:
    """One row per kernel: what it is and how well it is known.

    Parameters
    ----------
    kernels : mapping of str to LogprobKernel
        Label -> kernel.

    Returns
    -------
    pandas.DataFrame
        Index = label; columns ``model_file``, ``prompt`` (``info["prompt"]``, "letter" when
        not recorded), ``temperature`` (1 when not recorded), ``states``, ``sources``,
        ``min_prob`` (the walk's cut-off), ``max_uncovered`` (largest probability mass per
        source that the walk did not reach), ``walk_hours`` (CPU hours of the walk, summed over
        sources) and ``bounded`` (whether per-entry upper bounds are stored).
    """
    rows = {}
    for label, k in kernels.items():
        if not isinstance(k, LogprobKernel):
            raise TypeError(f"kernels[{label!r}] must be a LogprobKernel, got "
                            f"{type(k).__name__}")
        rows[label] = {
            "model_file": k.info.get("model_file", ""),
            "prompt": k.info.get("prompt", "letter"),
            "temperature": float(k.info.get("temperature", 1.0)),
            "states": len(k.states), "sources": len(k.sources),
            "min_prob": float(k.info.get("min_prob", 0.0)),
            "max_uncovered": float(np.max(k.uncovered)) if len(k.uncovered) else np.nan,
            "walk_hours": float(np.sum(k.seconds)) / 3600.0,
            "bounded": k.upper is not None,
        }
    return pd.DataFrame.from_dict(rows, orient="index")
