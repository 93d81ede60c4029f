"""Running an agent: a prompt schedule drained over an LLM, every call kept in a response store.

Two schedules, as in the Letter (METHOD §6; the generators are in :mod:`dbnb.schedules`):

* :func:`run_fixed_design`: every state of a given list is prompted ``calls_per_state`` times
  (sample indices ``0..N-1``, in round-robin order), so ``N0`` is exact by design;
* :func:`run_letter_schedule`: each call prompts a state drawn uniformly from the states found
  so far, starting from one word. The choice depends on earlier replies, so calls go out in
  small batches; a rerun with the same seed replays the same decisions from the store.

Both drain their schedule through :func:`run_schedule` and return the store records (with
``meta = {"agent", "prompt", "schedule"}`` and the agent's ``prompt_meta``);
:func:`counts_from_store` turns any store into :class:`~dbnb.counts.TransitionCounts` with
exact ``N0``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..counts import TransitionCounts
from ..llm import Request, sample
from ..llm import local as _local
from ..schedules import letter_schedule, round_robin
from .base import Agent
from .word import WordAgent

__all__ = [
    "run_schedule",
    "run_fixed_design",
    "run_letter_schedule",
    "counts_from_store",
    "local_server",
    "replay_tally",
]


def replay_tally(store, requests: Iterable[Request]) -> tuple[int, int]:
    """``(replayed, new)``: distinct requests the store answers, and those it does not.

    A failed record is not an answer (a rerun retries it), so it counts as new.
    """
    keys = {r.key for r in requests}
    hit = sum(1 for k in keys if store.get(k) is not None)
    return hit, len(keys) - hit


def _say(msg: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg)


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


def _take(schedule: Iterator, size: int | None, reached: Iterable | None) -> list:
    """Up to ``size`` prompts (all when None); the first one carries the replies' states."""
    out = []
    try:
        out.append(schedule.send(reached))
        while size is None or len(out) < size:
            out.append(next(schedule))
    except StopIteration:
        pass
    return out


def run_schedule(
    agent: Agent,
    schedule: Iterator[tuple[str, int]],
    *,
    model: str,
    store,
    label: str,
    batch: int | None = None,
    params: Mapping[str, Any] | None = None,
    progress: bool = True,
    total: int | None = None,
    **sample_kwargs,
) -> list[dict]:
    """Drain a schedule (:mod:`dbnb.schedules`) through the LLM; return the records.

    Parameters
    ----------
    agent : Agent
        Prompts, parse rule and sampling parameters.
    schedule : generator of (state, sample)
        The prompts in order. After each batch the states its replies reached (escapes as
        None, failed calls left out) are sent back, so adaptive schedules can grow.
    model, store
        The model name and the response store (replayed where a request is stored).
    label : str
        The schedule's name in each record's ``meta["schedule"]`` (``"fixed"``, ``"letter"``).
    batch : int, optional
        Calls per batch: the prompts of a batch are drawn before its replies are known.
        None: the schedule does not depend on the replies; every request goes out at once.
    params : mapping, optional
        Sampling parameters merged over the agent's (``extra_body`` key by key).
    progress, total
        A progress bar; ``total`` calls, when known.
    **sample_kwargs
        To :func:`dbnb.llm.sample` (``concurrency``, ``offline``, ``complete``, ...).
    """
    from tqdm.auto import tqdm

    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    p = _merge(agent.params(), params)
    direct = sample_kwargs.get("complete") is None and sample_kwargs.get("deployments") is None
    server = local_server(model) if direct else contextlib.nullcontext()
    if batch is None:
        reqs = [_request(agent, model, s, k, p, label) for s, k in _take(schedule, None, None)]
        n_old, n_new = replay_tally(store, reqs)
        _say(f"{n_old} calls replayed from the store, {n_new} new", progress)
        if n_new == 0:
            server = contextlib.nullcontext()
        with server:
            return sample(reqs, store=store, progress=progress, **sample_kwargs)
    sample_kwargs.setdefault("concurrency", min(batch, 4))
    records: list[dict] = []
    reached: list[str | None] | None = None
    found: set[str] = set()
    escapes = 0
    _say(f"the store holds {len(store) - store.n_failed} successful calls; the same seed and "
         "batch replay them", progress)
    with server, tqdm(total=total, disable=not progress, unit="call",
                      desc=f"{agent.name} ({label} schedule)") as bar:
        while prompts := _take(schedule, batch, reached):
            reqs = [_request(agent, model, s, k, p, label) for s, k in prompts]
            recs = sample(reqs, store=store, progress=False, **sample_kwargs)
            records.extend(recs)
            reached = [agent.parse(rec.get("reply"), req.meta["prompt"]).state
                       for req, rec in zip(reqs, recs, strict=True) if not rec.get("error")]
            escapes += sum(s is None for s in reached)
            found.update(s for s, _ in prompts)
            found.update(s for s in reached if s is not None)
            bar.update(len(recs))
            bar.set_postfix(states=len(found), escape=f"{escapes / len(records):.2f}")
    return records


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

    The order is round robin (:func:`dbnb.schedules.round_robin`): consecutive calls never
    repeat a prompt. The order is not part of the store key. ``sample_kwargs`` go to
    :func:`dbnb.llm.sample` (``concurrency``, ``offline``, ``complete``, ``progress``, ...).
    """
    return run_schedule(agent, round_robin(states, calls_per_state), model=model, store=store,
                        label="fixed", params=params, **sample_kwargs)


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
    """The Letter's schedule (:func:`dbnb.schedules.letter_schedule`): each prompt uniform over
    the states found so far.

    Calls go out ``batch`` at a time (prompts for a batch are drawn before its replies are
    known; ``batch=1`` is the strictly sequential schedule). The sample index of a call is the
    number of earlier calls from the same prompt, so a rerun with the same ``seed`` and
    ``batch`` replays every decision from the store.
    """
    return run_schedule(agent, letter_schedule(start, n_calls, seed=seed), model=model,
                        store=store, label="letter", batch=batch, params=params,
                        progress=progress, total=n_calls, **sample_kwargs)


def counts_from_store(path, *, agent: Agent | None = None, **filters) -> TransitionCounts:
    """Counts with exact ``N0`` from a response store file (``.jsonl`` or ``.jsonl.gz``).

    Records are selected by ``meta`` fields given as keyword filters (e.g.
    ``schedule="fixed"``). The agent defaults to a free :class:`~dbnb.agents.word.WordAgent`;
    pass the agent used for the run (e.g. a constrained one with its vocabulary) to apply its
    parse rule.
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
