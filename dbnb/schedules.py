"""Prompt schedules: which state each call prompts from (the Letter's METHOD §6), as generators.

A schedule yields ``(state, sample)`` pairs: the prompt state of the next call and its sample
index (the number of earlier calls from the same state, so that ``N`` draws of one prompt are
``N`` distinct requests ``0..N-1``). A schedule that depends on the replies receives, through
``generator.send``, the states that the replies since its last prompt reached (escapes as
``None``, repeats allowed); ``next()`` sends nothing.

round_robin      every state ``calls_per_state`` times, sample ``k`` of every state before
                 ``k + 1``: ``N0`` is exact by design and consecutive prompts differ
letter_schedule  the Letter's rule: each prompt uniform over the states found so far,
                 starting from one state

The same generators drive the LLM agents (:mod:`dbnb.agents.run`) and the synthetic chains
(:func:`dbnb.synthetic.sample_letter_schedule`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["letter_schedule", "round_robin"]

S = TypeVar("S", bound=Hashable)
Schedule = Generator[tuple[S, int], Iterable[S | None] | None, None]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def round_robin(states: Sequence[S], calls_per_state: int) -> Schedule:
    """Every state ``calls_per_state`` times: sample 0 of every state, then sample 1, ...

    Duplicate states are dropped (first kept). With two or more states consecutive prompts
    never repeat: llama-cpp-python re-evaluates a repeated prompt's last token alone, which
    shifts the first-token logits (see :mod:`dbnb.exact`); with distinct consecutive prompts
    every call sees the fresh-prompt distribution. Replies sent back are ignored.

    >>> list(round_robin(["A", "B"], 2))
    [('A', 0), ('B', 0), ('A', 1), ('B', 1)]
    """
    per = _positive_int(calls_per_state, "calls_per_state")
    order = list(dict.fromkeys(states))
    if not order:
        raise ValueError("states is empty")
    return ((s, k) for k in range(per) for s in order)


def letter_schedule(
    start: S,
    n_calls: int | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
    pick: Callable[[int], int] | None = None,
) -> Schedule:
    """The Letter's schedule: each prompt uniform over the states found so far.

    Parameters
    ----------
    start : hashable
        The only state found at first (the Letter's BUZZY).
    n_calls : int, optional
        Number of prompts; unbounded when None.
    seed : int, Generator or None
        Seeds the default ``pick``, ``numpy.random.default_rng(seed).integers(n)``.
    pick : callable, optional
        ``pick(n) -> i`` with ``0 <= i < n``: the index, in order of discovery, of the next
        prompt among the ``n`` states found so far. Replaces the seeded default.

    Yields
    ------
    (state, sample)
        The next prompt and its sample index. Send back the states the replies since the
        previous prompt reached (iterable, escapes as None): new ones join the pool in the
        order sent.

    Examples
    --------
    >>> s = letter_schedule("A", 3, pick=lambda n: n - 1)  # always the newest state
    >>> next(s), s.send(["B"]), s.send([None])
    (('A', 0), ('B', 0), ('B', 1))
    """
    n = None if n_calls is None else _positive_int(n_calls, "n_calls")
    if pick is None:
        pick = np.random.default_rng(seed).integers
    return _letter(start, n, pick)


def _letter(start, n_calls, pick) -> Schedule:
    found = [start]
    seen = {start}
    calls_from: dict = {}
    i = 0
    while n_calls is None or i < n_calls:
        f = found[int(pick(len(found)))]
        k = calls_from.get(f, 0)
        calls_from[f] = k + 1
        i += 1
        reached = yield f, k
        for s in reached or ():
            if s is not None and s not in seen:
                seen.add(s)
                found.append(s)
