"""Tests of the LLM layer with injected fakes, a scripted local HTTP server and real litellm."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dbnb.llm import (
    CacheMiss,
    JsonlStore,
    MemoryStore,
    ProviderUnavailable,
    Request,
    sample,
)

REPO = Path(__file__).resolve().parents[1]
FAST = {"progress": False}


def ok_response(text: str = "yes", prompt_tokens: int = 4) -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1},
    }


def requests_(n: int, model: str = "fake/model", **params) -> list[Request]:
    return [
        Request(model, [{"role": "user", "content": f"q{i % 3}"}], {"temperature": 1.0, **params},
                sample=i, meta={"i": i})  # fmt: skip
        for i in range(n)
    ]


class HTTPError(Exception):
    def __init__(self, status_code: int, msg: str = "") -> None:
        super().__init__(msg or f"HTTP {status_code}")
        self.status_code = status_code


class Scripted:
    """A fake async `complete`: pops outcomes (exception, 'slow', 'garbage' or text)."""

    def __init__(self, *outcomes, default="ok", delay: float = 0.005) -> None:
        self.outcomes = list(outcomes)
        self.default = default
        self.delay = delay
        self.calls: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, *, model, messages, **params):
        self.calls.append({"model": model, "messages": messages, **params})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            out = self.outcomes.pop(0) if self.outcomes else self.default
            await asyncio.sleep(self.delay)
            if isinstance(out, BaseException):
                raise out
            if out == "slow":
                await asyncio.sleep(10)
            if out == "garbage":
                return {"choices": []}
            return ok_response(f"{out}:{messages[0]['content']}")
        finally:
            self.in_flight -= 1


# -- Request --------------------------------------------------------------------------------
def test_request_key_and_validation():
    m = [{"role": "user", "content": "hi"}]
    a = Request("x", m, {"temperature": 1.0}, sample=0)
    assert a.key == Request("x", m, {"temperature": 1}, sample=0, meta={"z": 1}).key
    assert a.key != Request("x", m, {"temperature": 1.0}, sample=1).key
    assert a.key == Request("x", m, {"temperature": 1.0, "api_base": "http://h:1/v1"}).key
    m[0]["content"] = "changed"  # the request holds its own copy
    assert a.messages[0]["content"] == "hi"
    with pytest.raises(ValueError, match="api_key.*environment"):
        Request("x", m, {"api_key": "sk-1"})
    with pytest.raises(ValueError, match=r"extra_body\.auth_token"):
        Request("x", m, {"extra_body": {"auth_token": "t"}})
    with pytest.raises(ValueError, match="sample.*-2"):
        Request("x", m, sample=-2)
    with pytest.raises(ValueError, match="messages"):
        Request("x", "hi")
    with pytest.raises(ValueError, match="model"):
        Request("", m)
    # litellm counts whole calls a minute: below 1 no call would ever be admitted
    with pytest.raises(ValueError, match="rpm must be at least 1"):
        sample([a], store=MemoryStore(), complete=Scripted(), rpm=0.5, **FAST)


def test_local_defaults_are_merged_into_params_and_key():
    m = [{"role": "user", "content": "hi"}]
    r = Request("local/smollm2", m, {"extra_body": {"grammar": 'root ::= "a"'}})
    assert r.params == {
        "temperature": 1.0,
        "extra_body": {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0,
                       "grammar": 'root ::= "a"'},
    }  # fmt: skip
    explicit = Request("local/smollm2", m, {"temperature": 1.0, "extra_body": {
        "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0, "grammar": 'root ::= "a"'}})
    assert r.key == explicit.key
    other = Request("local/smollm2", m, {"extra_body": {"grammar": 'root ::= "a"', "top_k": 40}})
    assert other.key != r.key and other.params["extra_body"]["top_k"] == 40


# -- sampling with fakes --------------------------------------------------------------------
def test_sample_then_replay_with_zero_calls_and_no_network(monkeypatch, tmp_path):
    store = JsonlStore(tmp_path / "s.jsonl")
    fake = Scripted()
    reqs = requests_(12)
    out = sample(reqs + reqs[:3], store=store, complete=fake, **FAST)  # duplicates: one call
    assert len(fake.calls) == 12 and len(out) == 15
    assert [o["reply"] for o in out[:3]] == ["ok:q0", "ok:q1", "ok:q2"]
    assert out[12] == out[0] and [o["meta"]["i"] for o in out[:12]] == list(range(12))
    assert fake.calls[0]["temperature"] == 1.0 and fake.calls[0]["model"] == "fake/model"

    def no_network(*a, **k):
        raise AssertionError("network used during replay")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    async def never(**kw):
        raise AssertionError("complete called during replay")

    reopened = JsonlStore(tmp_path / "s.jsonl", read_only=True)
    again = sample(reqs, store=reopened, complete=None, offline=True, **FAST)
    assert again == out[:12]
    assert sample(reqs, store=reopened, complete=never, **FAST) == out[:12]


def test_offline_cache_miss_counts_missing():
    store = MemoryStore()
    sample(requests_(3), store=store, complete=Scripted(), **FAST)
    with pytest.raises(CacheMiss, match="2 of 5 requests") as info:
        sample(requests_(5), store=store, offline=True, **FAST)
    assert info.value.n_missing == 2 and len(info.value.keys) == 2


def test_concurrency_is_bounded_and_used():
    fake = Scripted(delay=0.2)  # long enough for the Router's overhead not to serialise calls
    sample(requests_(20), store=MemoryStore(), complete=fake, concurrency=3, **FAST)
    assert fake.max_in_flight == 3


def test_injected_complete_is_retried_by_the_router_like_a_real_call():
    # the injected function is a litellm provider of the same Router: a 429 and a timed-out
    # attempt are retried (with the Router's backoff), and the record counts the attempts
    fake = Scripted(HTTPError(429), "slow", "fine")
    store = MemoryStore()
    [rec] = sample(requests_(1), store=store, complete=fake, timeout=0.2, max_retries=2, **FAST)
    assert rec["error"] is None and rec["reply"] == "fine:q0"
    assert len(fake.calls) == 3 and rec["attempts"] == 3 and rec["rate_limit_waits"] == 0
    assert rec["deployment"] == "fake/model" and len(store) == 1
    # what the function received: the request's model name and parameters, unchanged
    assert fake.calls[-1] == {"model": "fake/model", "messages": [{"role": "user",
                              "content": "q0"}], "temperature": 1.0}


def test_final_failure_after_retries_is_recorded_once():
    fake = Scripted(default=HTTPError(500, "server on fire"))
    store = MemoryStore()
    [rec] = sample(requests_(1), store=store, complete=fake, max_retries=1, **FAST)
    assert len(fake.calls) == 2 and rec["attempts"] == 2 and "server on fire" in rec["error"]
    assert "HTTP 500" in rec["error"] and rec["deployment"] == "fake/model"
    assert len(store) == 1 and rec["rate_limit_waits"] == 0
    fake = Scripted("slow", "slow")
    [rec] = sample(requests_(1), store=MemoryStore(), complete=fake, timeout=0.2,
                   max_retries=1, **FAST)
    assert rec["error"] == "TimeoutError: no reply within timeout=0.2 s" and rec["attempts"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("fast_minutes", [6.0], indirect=True)  # 10-s minutes: loaded CI
def test_rate_limit_waits_for_the_next_minute_and_never_fails(fast_minutes):
    # rpm=2 on a clock whose minutes last 10 s: 5 calls need 3 minutes. No call is refused into
    # a failure, none reaches the provider while over the limit, no minute serves more than 2.
    minutes = []

    async def fake(*, model, messages, **params):
        minutes.append(fast_minutes().strftime("%H-%M"))
        return ok_response("w")

    store = MemoryStore()
    recs = sample(requests_(5), store=store, complete=fake, rpm=2, concurrency=2,
                  max_retries=0, **FAST)
    assert [r["error"] for r in recs] == [None] * 5 and len(store) == 5
    assert len(minutes) == 5  # a refused call never reached the function
    per_minute = sorted(minutes.count(m) for m in set(minutes))
    assert max(per_minute) <= 2 and len(per_minute) >= 3
    assert sum(r["rate_limit_waits"] for r in recs) >= 3  # calls 3-5 each waited
    assert all(r["attempts"] == 1 for r in recs)  # a wait is not an attempt


def test_400_not_retried_and_failure_recorded_then_retried_on_rerun():
    fake = Scripted(HTTPError(400, "bad request: no such param"))
    store = MemoryStore()
    [rec] = sample(requests_(1), store=store, complete=fake, **FAST)
    assert len(fake.calls) == 1
    assert rec["reply"] is None and "HTTP 400" in rec["error"] and "no such param" in rec["error"]
    assert len(store) == 1 and store.get(rec["key"]) is None
    [again] = sample(requests_(1), store=store, complete=fake, **FAST)  # failure is not a hit
    assert again["error"] is None and len(fake.calls) == 2 and len(store) == 2


def test_garbage_and_bugs_are_recorded_failures():
    fake = Scripted("garbage")
    [rec] = sample(requests_(1), store=MemoryStore(), complete=fake, **FAST)
    assert len(fake.calls) == 1 and "malformed" in rec["error"] and rec["attempts"] == 1
    # an exception without a status: litellm maps it to a connection error and retries it,
    # as for a provider; the record keeps the function's own error
    fake = Scripted(ValueError("a bug"), ValueError("a bug"))
    [rec] = sample(requests_(1), store=MemoryStore(), complete=fake, max_retries=1, **FAST)
    assert len(fake.calls) == 2 and rec["error"] == "ValueError: a bug"


def test_401_aborts_the_run_after_recording(monkeypatch):
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", "sk-abcdefgh12345678")
    fake = Scripted(HTTPError(401, "invalid key sk-abcdefgh12345678"), default=HTTPError(401))
    store = MemoryStore()
    with pytest.raises(ProviderUnavailable, match="refused"):
        sample(requests_(10), store=store, complete=fake, concurrency=1, **FAST)
    assert len(fake.calls) == 1 and len(store) == 1
    [rec] = list(store)
    assert "sk-abcdefgh12345678" not in rec["error"] and "***" in rec["error"]


def test_runs_inside_a_running_event_loop():
    fake = Scripted()

    async def notebook_cell():
        return sample(requests_(4), store=MemoryStore(), complete=fake, **FAST)

    out = asyncio.run(notebook_cell())
    assert [o["error"] for o in out] == [None] * 4 and len(fake.calls) == 4


def test_progress_bar_and_postfix(capsys):
    seen = []

    def postfix(recs):
        seen.append(len(recs))
        return {"escape": f"{sum(r['reply'] is None for r in recs)}/{len(recs)}"}

    store = MemoryStore()
    sample(requests_(2), store=store, complete=Scripted(), progress=False)
    sample(requests_(5), store=store, complete=Scripted(HTTPError(400)), postfix=postfix,
           progress=True)  # fmt: skip
    err = capsys.readouterr().err
    assert "replayed=2" in err and "failed=1" in err and "escape=1/5" in err
    assert max(seen) == 5


def test_missing_api_key_fails_fast_with_instructions(monkeypatch):
    pytest.importorskip("litellm")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    t0 = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY") as info:
        sample(requests_(3, model="gpt-4o-mini"), store=MemoryStore(), progress=False)
    assert "local/smollm2" in str(info.value) and "serve-local" in str(info.value)
    assert time.monotonic() - t0 < 30


# -- crash safety ---------------------------------------------------------------------------
CRASH_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from dbnb.llm import JsonlStore, Request, sample

    async def slow(*, model, messages, **params):
        await asyncio.sleep(0.1)
        return {"choices": [{"message": {"content": "r"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    reqs = [Request("fake/m", [{"role": "user", "content": "q"}], sample=i) for i in range(40)]
    print("ready", flush=True)
    sample(reqs, store=JsonlStore(sys.argv[1]), complete=slow, concurrency=2, progress=False)
    """
)


def test_sigkill_midway_then_rerun_replays_completed(tmp_path):
    path = tmp_path / "crash.jsonl"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_CLIENT, str(path)], env=env,
                            stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # records, not lines: the request body is a line of its own, written once
            if path.exists() and len(JsonlStore(path, read_only=True).keys()) >= 10:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    store = JsonlStore(path)
    done = len(store.keys())
    assert 10 <= done < 40 and store.n_corrupt == 0
    fake = Scripted()
    reqs = [Request("fake/m", [{"role": "user", "content": "q"}], sample=i) for i in range(40)]
    out = sample(reqs, store=store, complete=fake, **FAST)
    assert len(fake.calls) == 40 - done
    assert all(o["error"] is None for o in out)
    assert len(JsonlStore(path, read_only=True).keys()) == 40


# -- real litellm against a scripted OpenAI-compatible HTTP server ---------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.bodies.append(body)
        srv.auth.append(self.headers.get("Authorization"))
        status = srv.script.pop(0) if srv.script else 200
        if status == 200:
            payload = {
                "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
            }  # fmt: skip
        else:
            payload = {"error": {"message": f"scripted {status}", "type": "x", "code": None}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.script, server.bodies, server.auth = [], [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_real_litellm_retries_429_and_500_then_succeeds(scripted_server, monkeypatch, tmp_path):
    pytest.importorskip("litellm")
    secret = "sk-test-NEVER-STORE-4242"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    base = f"http://127.0.0.1:{scripted_server.server_address[1]}/v1"
    scripted_server.script[:] = [429, 500]
    store = JsonlStore(tmp_path / "s.jsonl")
    reqs = [Request("openai/x", [{"role": "user", "content": "ping"}],
                    {"temperature": 1.0, "max_tokens": 2, "api_base": base})]  # fmt: skip
    [rec] = sample(reqs, store=store, timeout=20, **FAST)
    assert rec["error"] is None and rec["reply"] == "pong" and rec["attempts"] == 3
    assert len(scripted_server.bodies) == 3  # no hidden retries inside litellm/openai
    assert scripted_server.bodies[-1]["temperature"] == 1.0
    assert scripted_server.auth[-1] == f"Bearer {secret}"
    assert rec["usage"] == {"prompt_tokens": 7, "completion_tokens": 1}
    assert rec["params"] == {"temperature": 1.0, "max_tokens": 2}
    text = (tmp_path / "s.jsonl").read_text()
    assert secret not in text and base not in text

    scripted_server.script[:] = [400]
    reqs = [Request("openai/x", [{"role": "user", "content": "other"}], {"api_base": base})]
    [rec] = sample(reqs, store=store, timeout=20, **FAST)
    assert len(scripted_server.bodies) == 4  # a 400 is not retried
    assert rec["deployment"] == "openai/x"  # the one deployment of a direct call
    assert "400" in rec["error"] and secret not in (tmp_path / "s.jsonl").read_text()


def test_router_final_failure_after_retries_is_recorded(scripted_server, monkeypatch):
    pytest.importorskip("litellm")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-x")
    base = f"http://127.0.0.1:{scripted_server.server_address[1]}/v1"
    scripted_server.script[:] = [500, 500, 500, 500]
    store = MemoryStore()
    reqs = [Request("openai/x", [{"role": "user", "content": "ping"}], {"api_base": base})]
    [rec] = sample(reqs, store=store, timeout=20, max_retries=2, **FAST)
    assert len(scripted_server.bodies) == 3 and rec["reply"] is None and "500" in rec["error"]
    assert rec["deployment"] == "openai/x" and len(store) == 1
    assert rec["attempts"] == 3 and rec["rate_limit_waits"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("fast_minutes", [6.0], indirect=True)  # 10-s minutes: real HTTP calls
def test_router_rpm_waits_instead_of_failing(scripted_server, monkeypatch, fast_minutes):
    pytest.importorskip("litellm")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-x")
    base = f"http://127.0.0.1:{scripted_server.server_address[1]}/v1"
    reqs = [Request("openai/x", [{"role": "user", "content": f"p{i}"}], {"api_base": base})
            for i in range(3)]
    out = sample(reqs, store=MemoryStore(), timeout=20, rpm=2, max_retries=0, concurrency=1,
                 **FAST)
    # litellm lets 2 calls through in the minute and refuses the third, which waits for the
    # next minute and then goes out: three bodies, three replies, no failure
    assert len(scripted_server.bodies) == 3
    assert [r["error"] for r in out] == [None] * 3
    assert [r["rate_limit_waits"] for r in out] == [0, 0, 1]
