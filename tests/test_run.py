"""The agent schedules (dbnb.agents.run) with an injected fake model: no LLM, no network."""

import itertools

import pytest

from dbnb.agents.run import run_fixed_design, run_letter_schedule
from dbnb.agents.word import WordAgent
from dbnb.llm import MemoryStore


class Replies:
    """A fake async `complete` that answers from a fixed cycle of replies and logs prompts."""

    def __init__(self, replies):
        self.cycle = itertools.cycle(replies)
        self.prompts: list[str] = []

    async def __call__(self, *, model, messages, **params):
        self.prompts.append(messages[-1]["content"])
        return {
            "choices": [{"message": {"content": next(self.cycle)}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }


def _prompt_word(text: str) -> str:
    return text.split("An example word is ")[1].split(",")[0]


def test_fixed_design_is_round_robin_and_replays():
    words = ["ATTITUDE", "PERSONAL", "PROBLEM"]
    fake = Replies(["TURKEY"])
    store = MemoryStore()
    recs = run_fixed_design(WordAgent(), words, 4, model="fake/m", store=store,
                            complete=fake, concurrency=1, progress=False)
    assert len(recs) == 12
    order = [_prompt_word(p) for p in fake.prompts]
    assert order == words * 4  # no prompt twice in a row
    again = Replies(["X"])
    recs2 = run_fixed_design(WordAgent(), words, 4, model="fake/m", store=store,
                             complete=again, concurrency=1, progress=False)
    assert again.prompts == [] and [r["reply"] for r in recs2] == [r["reply"] for r in recs]
    counts = WordAgent().counts(recs)
    assert counts.calls_kind == "exact" and counts.count("ATTITUDE", "TURKEY") == 4


def test_letter_schedule_prompts_only_found_states():
    fake = Replies(["ATTITUDE", "HELLO", "PERSONAL", "TURKEY"])
    store = MemoryStore()
    recs = run_letter_schedule(WordAgent(), 40, model="fake/m", store=store, complete=fake,
                               start="BUZZY", seed=3, batch=1, progress=False)
    prompts = [_prompt_word(p) for p in fake.prompts]
    assert prompts[0] == "BUZZY"
    found = {"BUZZY"}
    for p, rec in zip(prompts, recs, strict=True):
        assert p in found
        parsed = WordAgent().parse(rec["reply"], p)
        if parsed.state:
            found.add(parsed.state)
    assert found == {"BUZZY", "ATTITUDE", "PERSONAL", "TURKEY"}
    # same seed and batch: every decision replays from the store, no call is made
    again = Replies(["X"])
    recs2 = run_letter_schedule(WordAgent(), 40, model="fake/m", store=store, complete=again,
                                start="BUZZY", seed=3, batch=1, progress=False)
    assert again.prompts == [] and [r["key"] for r in recs2] == [r["key"] for r in recs]


def test_letter_schedule_keeps_the_agents_own_state_labels():
    S = pytest.importorskip("dbnb.agents.symbolic")
    agent = S.SymbolicAgent(mode="constrained")
    cands = list(agent.candidates)[:3]
    fake = Replies(cands)
    recs = run_letter_schedule(agent, 9, model="fake/m", store=MemoryStore(), complete=fake,
                               start=cands[0], seed=0, batch=1, progress=False)
    counts = agent.counts(recs)
    assert cands[0] in counts.states  # expression labels are not upper-cased
    assert counts.calls.sum() == 9


def test_bad_arguments():
    with pytest.raises(ValueError, match="calls_per_state"):
        run_fixed_design(WordAgent(), ["A"], 0, model="m", store=MemoryStore())
    with pytest.raises(ValueError, match="batch"):
        run_letter_schedule(WordAgent(), 3, model="m", store=MemoryStore(), batch=0)
    with pytest.raises(ValueError, match="vocabulary"):
        WordAgent(mode="constrained")
