"""What every agent shares: the Agent protocol, a parsed reply, reply parameters, records to counts.

An *agent* is anything with

* ``name`` (str),
* ``messages(state) -> list[dict]``: the chat prompt for a state,
* ``parse(reply, state) -> Parsed``: the next state or an escape with a reason,
* ``params() -> dict``: sampling parameters it needs (e.g. a grammar, ``max_tokens``),
* optionally ``prompt_meta(state) -> dict``: what the record keeps beside the prompt (the
  symbolic agent's shown MSE, so the prompt can be rebuilt from the run itself).

:func:`counts_from_records` turns call records into :class:`~dbnb.counts.TransitionCounts`
with exact ``N0``; each agent adds its own per-state metadata columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..counts import TransitionCounts

__all__ = ["Agent", "Parsed", "counts_from_records", "flatten_records", "reply_params"]


@dataclass(frozen=True)
class Parsed:
    """A parsed reply: ``state`` (the next state) or ``None`` with an escape ``reason``.

    ``word`` is the cleaned-up reply (e.g. upper-cased, stripped) whether or not it is a state.
    """

    state: str | None
    reason: str | None
    word: str

    @property
    def is_escape(self) -> bool:
        return self.state is None


class Agent(Protocol):
    name: str

    def messages(self, state: str) -> list[dict[str, str]]: ...

    def parse(self, reply: str | None, state: str) -> Parsed: ...

    def params(self) -> dict[str, Any]: ...


def reply_params(max_tokens: int, grammar: str | None = None) -> dict[str, Any]:
    """Sampling parameters of an agent's call: a reply length cap and, for constrained modes,
    the GBNF grammar passed to the server as ``extra_body["grammar"]``."""
    p: dict[str, Any] = {"max_tokens": max_tokens}
    if grammar is not None:
        p["extra_body"] = {"grammar": grammar}
    return p


def flatten_records(records) -> Iterator[dict]:
    """Records with the prompt state lifted from ``meta`` to a top-level ``prompt`` field."""
    for r in records:
        meta = r.get("meta") or {}
        yield {**r, "prompt": meta.get("prompt", r.get("prompt"))}


def counts_from_records(
    records: Iterable[Mapping[str, Any]],
    *,
    state: Callable[[Any, int], str],
    parse: Callable[[str | None, str], Parsed],
    reasons: Sequence[str],
    metadata: Callable[[tuple[str, ...]], Mapping[str, Any]] | None = None,
    source: str = "",
) -> TransitionCounts:
    """Transition counts with exact ``N0`` from call records of an agent.

    Parameters
    ----------
    records : iterable of mappings
        One per call, with ``prompt`` (the state ``f``) and ``reply`` (the text). A record
        with a true ``error`` field is a failed request (no reply from the model) and is not
        counted as a call.
    state : callable
        ``state(prompt, k) -> f``: the state label of record ``k``'s prompt; raises
        ValueError for a prompt that is not a state.
    parse : callable
        ``parse(reply, f) -> Parsed``: the agent's reply rule.
    reasons : sequence of str
        The agent's escape reasons: one ``escape_<reason>`` column each.
    metadata : callable, optional
        ``metadata(states) -> {column: values}``: the agent's own per-state columns, placed
        between ``first_seen`` and the escape columns.

    Returns
    -------
    TransitionCounts
        ``calls_kind="exact"``: ``N0(f)`` = recorded calls from ``f``, escapes in
        ``escapes``. Metadata: ``first_seen`` (order of first appearance), the agent's
        columns, and the escape counts from each state per reason.
    """
    sources: list[str] = []
    targets: list[str | None] = []
    why: list[str | None] = []
    for k, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"records[{k}] must be a mapping, got {type(rec).__name__}")
        if rec.get("error"):
            continue
        if "prompt" not in rec:
            raise ValueError(f"records[{k}] has no 'prompt' field: {dict(rec)!r:.120}")
        f = state(rec["prompt"], k)
        p = parse(rec.get("reply"), f)
        sources.append(f)
        targets.append(p.state)
        why.append(p.reason)
    if not sources:
        raise ValueError("no successful calls in records (all empty or failed)")
    calls = pd.Series(sources).value_counts()
    counts = TransitionCounts.from_pairs(
        sources, targets, calls=calls, calls_kind="exact", source=source
    )
    meta = counts.metadata.copy()
    for column, values in (metadata(counts.states) if metadata else {}).items():
        meta[column] = values
    esc = pd.crosstab(
        pd.Series([s for s, r in zip(sources, why, strict=True) if r], dtype=object),
        pd.Series([r for r in why if r], dtype=object),
    ) if any(why) else pd.DataFrame()
    for reason in reasons:
        col = esc[reason] if reason in esc.columns else pd.Series(dtype=float)
        meta[f"escape_{reason}"] = col.reindex(meta.index).fillna(0).astype(np.int64).to_numpy()
    return TransitionCounts(
        states=counts.states,
        matrix=counts.matrix,
        calls=counts.calls,
        calls_kind="exact",
        escapes=counts.escapes,
        metadata=meta,
        source=source,
    )
