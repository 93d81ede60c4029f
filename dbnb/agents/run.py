"""Running an agent: prompt schedules over an LLM, every call kept in a response store.

An *agent* is anything with

* ``name`` (str),
* ``messages(state) -> list[dict]``: the chat prompt for a state,
* ``parse(reply, state) -> Parsed``: the next state or an escape with a reason,
* ``params() -> dict``: sampling parameters it needs (e.g. a grammar, ``max_tokens``),
* optionally ``prompt_meta(state) -> dict``: what the record keeps beside the prompt (the
  symbolic agent's shown MSE, so the prompt can be rebuilt from the run itself).

Two schedules, as in the Letter (METHOD §6):

* :func:`run_fixed_design`: every state of a given list is prompted ``calls_per_state`` times
  (sample indices ``0..N-1``, in round-robin order), so ``N0`` is exact by design;
* :func:`run_letter_schedule`: each call prompts a state drawn uniformly from the states found
  so far, starting from one word. The choice depends on earlier replies, so calls go out in
  small batches; a rerun with the same seed replays the same decisions from the store.

Both return the store records (with ``meta = {"agent", "prompt", "schedule"}`` and the agent's
``prompt_meta``);
:func:`counts_from_store` turns any store into :class:`~dbnb.counts.TransitionCounts` with exact
``N0``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..counts import TransitionCounts
from ..llm import Request, sample
from ..llm import local as _local
from .word import Parsed

__all__ = [
    "Agent",
    "WordAgent",
    "run_fixed_design",
    "run_letter_schedule",
    "counts_from_store",
    "local_server",
]


class Agent(Protocol):
    name: str

    def messages(self, state: str) -> list[dict[str, str]]: ...

    def parse(self, reply: str | None, state: str) -> Parsed: ...

    def params(self) -> dict[str, Any]: ...


class WordAgent:
    """The Letter's conditioned-word agent (see :mod:`dbnb.agents.word`).

    Parameters
    ----------
    vocabulary : sequence of str, optional
        ``mode="constrained"``: the words the reply is restricted to (GBNF grammar passed to
        the server as ``extra_body["grammar"]``). ``mode="free"``: an optional dictionary check
        (``"not_in_dictionary"`` escapes).
    mode : {"free", "constrained"}
        Free: the Letter's exact design, any reply. Constrained: token-level grammar.
    max_tokens : int
        Reply length cap (a word needs a handful of tokens).
    """

    name = "word"

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        *,
        mode: str = "free",
        max_tokens: int = 12,
    ) -> None:
        from . import word

        if mode not in ("free", "constrained"):
            raise ValueError(f"mode must be 'free' or 'constrained', got {mode!r}")
        if mode == "constrained" and not vocabulary:
            raise ValueError("mode='constrained' needs a vocabulary to build the grammar from")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        self.mode = mode
        self.max_tokens = max_tokens
        self.vocabulary = None if vocabulary is None else tuple(w.upper() for w in vocabulary)
        self._vocab_set = None if vocabulary is None else frozenset(self.vocabulary)
        self._grammar = word.grammar(self.vocabulary) if mode == "constrained" else None
        self._word = word

    def __repr__(self) -> str:
        n = "no" if self.vocabulary is None else len(self.vocabulary)
        return f"WordAgent(mode={self.mode!r}, {n} vocabulary words)"

    def messages(self, state: str) -> list[dict[str, str]]:
        return self._word.prompt_messages(state)

    def parse(self, reply: str | None, state: str) -> Parsed:
        return self._word.parse_reply(reply, state, vocabulary=self._vocab_set)

    def params(self) -> dict[str, Any]:
        return reply_params(self.max_tokens, self._grammar)

    def prompt_meta(self, state: str) -> dict[str, Any]:
        """Nothing beyond the prompt word: the word prompt is a function of the word alone."""
        return {}

    def counts(self, records, *, source: str = "") -> TransitionCounts:
        """Counts with exact N0 from this agent's records."""
        return self._word.counts_from_records(
            flatten_records(records), vocabulary=self.vocabulary, source=source
        )


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


@contextlib.contextmanager
def local_server(model: str):
    """Keep one local server up for a whole run (instead of one per batch).

    A no-op for hosted models or when ``DBNB_LOCAL_API_BASE`` already points at a server.
    """
    if not _local.is_local(model) or os.environ.get(_local.ENV_API_BASE):
        yield
        return
    server = _local.LocalServer(_local.local_name(model))
    with server:
        os.environ[_local.ENV_API_BASE] = server.api_base
        try:
            yield
        finally:
            os.environ.pop(_local.ENV_API_BASE, None)


def _merge(agent_params: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict:
    out = dict(agent_params)
    for k, v in (params or {}).items():
        if k == "extra_body" and isinstance(v, Mapping):
            out["extra_body"] = {**out.get("extra_body", {}), **v}
        else:
            out[k] = v
    return out


def _request(agent: Agent, model: str, state: str, k: int, params: dict, schedule: str):
    extra = agent.prompt_meta(state) if hasattr(agent, "prompt_meta") else {}
    return Request(
        model,
        agent.messages(state),
        params=params,
        sample=k,
        meta={**extra, "agent": agent.name, "prompt": state,
              "schedule": schedule},
    )


def run_fixed_design(
    agent: Agent,
    states: Sequence[str],
    calls_per_state: int,
    *,
    model: str,
    store,
    params: Mapping[str, Any] | None = None,
    **sample_kwargs,
) -> list[dict]:
    """Prompt every state ``calls_per_state`` times; return the records (replayed when stored).

    ``sample_kwargs`` go to :func:`dbnb.llm.sample` (``concurrency``, ``offline``,
    ``complete``, ``progress``, ...).
    """
    if isinstance(calls_per_state, bool) or not isinstance(calls_per_state, int) \
            or calls_per_state < 1:
        raise ValueError(f"calls_per_state must be a positive int, got {calls_per_state!r}")
    states = list(dict.fromkeys(states))
    if not states:
        raise ValueError("states is empty")
    p = _merge(agent.params(), params)
    # Round-robin order (sample k of every state, then k + 1): consecutive calls never repeat
    # a prompt. llama-cpp-python re-evaluates a repeated prompt's last token alone, which shifts
    # the first-token logits (see dbnb.exact); with distinct consecutive prompts every call
    # sees the fresh-prompt distribution. The order is not part of the store key.
    reqs = [
        _request(agent, model, s, k, p, "fixed") for k in range(calls_per_state) for s in states
    ]
    with local_server(model) if sample_kwargs.get("complete") is None else contextlib.nullcontext():
        return sample(reqs, store=store, **sample_kwargs)


def run_letter_schedule(
    agent: Agent,
    n_calls: int,
    *,
    model: str,
    store,
    start: str = "BUZZY",
    seed: int = 0,
    batch: int = 4,
    params: Mapping[str, Any] | None = None,
    progress: bool = True,
    **sample_kwargs,
) -> list[dict]:
    """The Letter's schedule: each prompt uniform over the states found so far.

    Calls go out ``batch`` at a time (prompts for a batch are drawn before its replies are
    known; ``batch=1`` is the strictly sequential schedule). The sample index of a call is the
    number of earlier calls from the same prompt, so a rerun with the same ``seed`` and
    ``batch`` replays every decision from the store.
    """
    from tqdm.auto import tqdm

    if isinstance(n_calls, bool) or not isinstance(n_calls, int) or n_calls < 1:
        raise ValueError(f"n_calls must be a positive int, got {n_calls!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    rng = np.random.default_rng(seed)
    p = _merge(agent.params(), params)
    found = [start]
    seen = set(found)
    calls_from: dict[str, int] = {}
    records: list[dict] = []
    escapes = 0
    sample_kwargs.setdefault("concurrency", min(batch, 4))
    ctx = local_server(model) if sample_kwargs.get("complete") is None \
        else contextlib.nullcontext()
    with ctx, tqdm(total=n_calls, disable=not progress, desc=f"{agent.name} (Letter schedule)",
                   unit="call") as bar:
        while len(records) < n_calls:
            size = min(batch, n_calls - len(records))
            reqs = []
            for _ in range(size):
                f = found[int(rng.integers(len(found)))]
                k = calls_from.get(f, 0)
                calls_from[f] = k + 1
                reqs.append(_request(agent, model, f, k, p, "letter"))
            recs = sample(reqs, store=store, progress=False, **sample_kwargs)
            for req, rec in zip(reqs, recs, strict=True):
                records.append(rec)
                if rec.get("error"):
                    continue
                parsed = agent.parse(rec.get("reply"), req.meta["prompt"])
                if parsed.state is None:
                    escapes += 1
                elif parsed.state not in seen:
                    seen.add(parsed.state)
                    found.append(parsed.state)
            bar.update(size)
            bar.set_postfix(states=len(found), escape=f"{escapes / len(records):.2f}")
    return records


def counts_from_store(path, *, agent: Agent | None = None, **filters) -> TransitionCounts:
    """Counts with exact ``N0`` from a response store file (``.jsonl`` or ``.jsonl.gz``).

    Records are selected by ``meta`` fields given as keyword filters (e.g.
    ``schedule="fixed"``). The agent defaults to a free :class:`WordAgent`; pass the agent
    used for the run (e.g. a constrained one with its vocabulary) to apply its parse rule.
    """
    from ..llm import JsonlStore

    store = JsonlStore(path, read_only=True)
    recs = [
        r for r in store
        if all((r.get("meta") or {}).get(k) == v for k, v in filters.items())
    ]
    if not recs:
        raise ValueError(f"{path}: no records match {filters or 'any'}")
    agent = agent or WordAgent()
    return agent.counts(recs, source=os.path.basename(str(path)))
