"""The data that ship in ``data/``: complete, consistent with each other, and all used."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from dbnb import reproduce, sources
from dbnb.datasets import data_dir
from dbnb.llm import JsonlStore
from dbnb.llm.logprob import load_logprob_kernel

RUNS = data_dir() / "runs"


@pytest.mark.parametrize("name", ["word_logprob30.npz", "word_logprob100.npz",
                                  "symbolic_logprob.npz",
                                  *sorted(p.name for p in RUNS.glob("word_logprob100_*.npz"))])
def test_exact_kernels_are_normalised(name):
    ek = load_logprob_kernel(RUNS / name)
    assert set(ek.sources) <= set(ek.states)
    total = ek.prob.sum(axis=0) + ek.uncovered
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    assert np.all(ek.uncovered > -1e-9)
    assert np.all(np.isfinite(ek.logprob[ek.prob > 0]))
    assert len(ek.info["prompt_tokens"]) == len(ek.sources)


def test_symbolic_exact_kernel_is_over_the_sampled_runs_prompts():
    """Same 121 candidates, same prompts (token counts as the server reported them)."""
    from dbnb.agents.symbolic import default_candidates

    ek = load_logprob_kernel(RUNS / "symbolic_logprob.npz")
    assert ek.states == ek.sources == default_candidates("times")
    assert ek.info["min_prob"] == 1e-5 and ek.info["dataset"] == "mcycle"
    assert float(ek.uncovered.max()) < 0.05  # the skipped rare tokenisations
    tokens = defaultdict(set)
    for rec in JsonlStore(RUNS / "symbolic_constrained_fixed.jsonl.gz", read_only=True):
        tokens[rec["meta"]["prompt"]].add(rec["usage"]["prompt_tokens"])
    assert set(tokens) == set(ek.sources)
    for s, n in zip(ek.sources, ek.info["prompt_tokens"], strict=True):
        assert tokens[s] == {n}, s


def test_every_reproduce_item_has_its_data():
    todo, skipped = reproduce.items(reproduce.shipped_sources())
    assert [name for name, _ in skipped] == ["fig 6 (Gemini)"]
    names = {i.name for i in todo}
    for name in ("figE1_exact_vs_sampled", "figE2_exact100_pairs", "figE3_symbolic_logprob_pairs",
                 "figE4_symbolic_exact_potential_vs_mse", "figE5_symbolic_exact_vs_sampled",
                 "fig05_symbolic_potential_vs_mse", "table5_feature_potential",
                 "tableE_balance_tests", "figE7_hodge_fractions", "figE8_models_potentials",
                 "figE9_prompts_potentials", "figE10_temperatures_summary",
                 "tableE3_comparisons"):
        assert name in names


def test_comparison_kernels_are_over_the_same_words_and_say_what_they_are():
    """Every kernel of notebook 08 covers the 100 words of word_logprob100.npz as replies, in
    the same order, with bounds per entry, and records its model, prompt and temperature."""
    ref = load_logprob_kernel(RUNS / "word_logprob100.npz")
    expect = {  # label -> (model file prefix, prompt, temperature)
        "Gemma 3": ("gemma-3-270m", "letter", 1.0),
        "SmolLM2, paraphrase": ("SmolLM2", "paraphrase", 1.0),
        "SmolLM2, T=1 (hot walk)": ("SmolLM2", "letter", 1.0),
        "SmolLM2, T=0.5": ("SmolLM2", "letter", 0.5),
        "SmolLM2, T=2": ("SmolLM2", "letter", 2.0),
    }
    for label, (model, prompt, temp) in expect.items():
        ek = load_logprob_kernel(data_dir() / sources.COMPARISON_KERNELS[label])
        assert ek.states == ref.states, label
        assert set(ek.sources) <= set(ref.states) and len(ek.sources) >= 10, label
        assert ek.info["model_file"].lower().startswith(model.lower()), (label, ek.info)
        assert ek.info.get("prompt", "letter") == prompt, label
        assert float(ek.info.get("temperature", 1.0)) == temp, label
        assert ek.info["min_prob"] == 1e-5 and ek.upper is not None, label
        assert float(ek.uncovered.max()) < 0.05, label
        if len(ek.sources) < len(ref.states):
            assert ek.info["partial"] == f"{len(ek.sources)} of {len(ref.states)} prompts"


def test_free_symbolic_run_is_complete_and_replayable():
    src = sources.shipped_sources()
    reasons = src.symbolic_free_reasons()
    assert int(reasons.sum()) == 2000  # every call answered, none failed
    counts = src.symbolic_free
    # every valid reply is a transition (self-replies included); escapes are the rest
    assert int(counts.statistics()["samples"]) == int(reasons["valid state"])
    assert int(counts.escapes.sum()) == 2000 - int(reasons["valid state"])


def _shipped_runs():
    """Every shipped store with the agent and schedule that made it (scripts/run_local_*.py)."""
    from dbnb.agents import symbolic, word
    from dbnb.agents.word import WordAgent

    def sym(mode):
        store = JsonlStore(RUNS / f"symbolic_{mode}.jsonl.gz", read_only=True)
        m = "constrained" if mode.startswith("constrained") else "free"
        return symbolic.SymbolicAgent(mode=m, scores=symbolic.recorded_scores(store))

    def constrained(n):
        return WordAgent(word.vocabulary(n), mode="constrained"), list(word.vocabulary(n))

    return {
        "word_constrained_fixed": lambda: (
            (v := constrained(200))[0], ("fixed", v[1], 100)),
        "word_constrained_rr30": lambda: (
            (v := constrained(30))[0], ("fixed", v[1], 100)),
        "word_free_letter": lambda: (
            WordAgent(mode="free"), ("letter", "BUZZY", 2000, 2)),
        "symbolic_constrained_fixed": lambda: (
            (a := sym("constrained_fixed")), ("fixed", list(a.candidates), 60)),
        "symbolic_free_letter": lambda: (
            sym("free_letter"), ("letter", "param1*times+param2", 2000, 4)),
    }


def test_every_shipped_store_is_covered():
    shipped = {p.name.removesuffix(".jsonl.gz") for p in RUNS.glob("*.jsonl.gz")}
    assert shipped == set(_shipped_runs())


@pytest.mark.parametrize("name", sorted(_shipped_runs()))
def test_every_prompt_of_a_shipped_store_is_regenerated(name):
    """The agent rebuilds every stored request (same key) from the run itself, on the versions
    installed here, and the run's schedule replays offline with no call missing: no prompt
    depends on this machine's least-squares fits."""
    from dbnb.agents.run import _merge, _request, run_fixed_design, run_letter_schedule

    agent, schedule = _shipped_runs()[name]()
    store = JsonlStore(RUNS / f"{name}.jsonl.gz", read_only=True)
    params = _merge(agent.params(), None)
    model = next(iter(store))["model"]
    rebuilt = {
        _request(agent, model, r["meta"]["prompt"], r["sample"], params, "").key
        for r in store
    }
    assert rebuilt == set(store.keys())
    complete = _refuse  # offline: a miss raises before any call
    if schedule[0] == "fixed":
        _, states, per = schedule
        recs = run_fixed_design(agent, states, per, model=model, store=store, offline=True,
                                complete=complete, progress=False)
    else:
        _, start, n, batch = schedule
        recs = run_letter_schedule(agent, n, model=model, store=store, start=start, seed=0,
                                   batch=batch, offline=True, complete=complete, progress=False)
    assert len(recs) == len(store)


def _refuse(*args, **kwargs):
    raise AssertionError("a shipped run must replay without calling a model")


def test_the_statements_of_notebook_08_hold_on_the_shipped_kernels():
    """The takeaway of notebook 08, as numbers: a rerun that changed them fails here."""
    cmp = sources.shipped_sources().comparisons
    models, prompts = cmp["models"][0], cmp["prompts"][0]
    # a change of wording keeps the potential, well beyond popularity
    assert prompts.beyond_popularity[1] > 0.3
    assert prompts.r2_cross > 0.6 and prompts.pearson[1] > 0.6
    # a change of architecture: Gemma's popularity predicts Gemma better than SmolLM2's V,
    # and the part beyond popularity is weakly correlated, its interval reaching 0
    assert models.r2_popularity > models.r2_cross + 0.3
    assert models.beyond_popularity[1] < 0.05
    assert models.beyond_popularity[0] < prompts.beyond_popularity[1]
    # temperature rescales beta V (more at lower T) and keeps the kernel near a gradient
    temps = {c.names[1]: c for c in cmp["temperatures"]}
    cold, hot = temps["SmolLM2, T=0.5"], temps["SmolLM2, T=2"]
    assert hot.scale < 1 < cold.scale
    assert min(cold.r2_own, hot.r2_own) > 0.85
