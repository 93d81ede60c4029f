"""Contract tests for the response store, run on every backend (like emcee's test_backends)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dbnb.llm import JsonlStore, MemoryStore, compact, make_key, sanitize_params
from dbnb.llm.store import body_hash

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-THIS-MUST-NEVER-BE-WRITTEN-123"


def make_record(i: int, *, error: str | None = None, sample: int | None = None, **params):
    msgs = [{"role": "user", "content": f"prompt {i}"}]
    p = {"temperature": 1.0, **params}
    s = 0 if sample is None else sample
    return {
        "key": make_key("test/model", msgs, p, s),
        "sample": s,
        "model": "test/model",
        "messages": msgs,
        "params": p,
        "reply": None if error else f"reply {i}",
        "finish_reason": None if error else "stop",
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        "cost": 0.001 * i,
        "latency_s": 0.1,
        "time": "2026-01-01T00:00:00.000+00:00",
        "error": error,
        "meta": {"agent": "test", "state": i},
    }


@pytest.fixture(params=["memory", "jsonl"])
def backend(request, tmp_path):
    """A factory for an empty store of each backend, and the path (None for memory)."""
    path = tmp_path / "sub" / "store.jsonl" if request.param == "jsonl" else None

    def factory():
        return MemoryStore() if path is None else JsonlStore(path)

    factory.path = path
    return factory


def reload(backend, store):
    """Reopen a store read-only (file backends) or return it (memory)."""
    return store if backend.path is None else JsonlStore(backend.path, read_only=True)


# -- contract -------------------------------------------------------------------------------
def test_put_get_len_iter_keys(backend):
    store = backend()
    assert len(store) == 0 and store.get("nope") is None
    recs = [make_record(i) for i in range(5)]
    for r in recs:
        store.put(r)
    assert len(store) == 5
    assert store.keys() == [r["key"] for r in recs]
    assert store.get(recs[3]["key"])["reply"] == "reply 3"
    assert list(store) == recs
    # get returns a copy: mutating it does not change the store
    store.get(recs[0]["key"])["reply"] = "mutated"
    assert store.get(recs[0]["key"])["reply"] == "reply 0"


def test_failed_records_kept_but_not_hits(backend):
    store = backend()
    ok, bad = make_record(1), make_record(2, error="RateLimitError (HTTP 429): slow down")
    store.put_many([ok, bad])
    assert len(store) == 2 and store.n_failed == 1
    assert store.get(bad["key"]) is None and bad["key"] not in store.keys()
    # a later success for the same key becomes the hit; both stay in the record
    fixed = make_record(2)
    store.put(fixed)
    assert store.get(bad["key"])["reply"] == "reply 2"
    assert [r["error"] is None for r in store] == [True, False, True]


def test_reload_read_only_and_compare(backend):
    store = backend()
    recs = [make_record(i) for i in range(4)] + [make_record(9, error="boom")]
    store.put_many(recs[:2])
    for r in recs[2:]:
        store.put(r)
    again = reload(backend, store)
    assert list(again) == list(store) == recs
    assert again.keys() == store.keys()
    for r in recs:
        assert again.get(r["key"]) == store.get(r["key"])
    frame = again.records_frame()
    assert list(frame["reply"][:4]) == [r["reply"] for r in recs[:4]]
    assert list(frame["error"].isna()) == [True] * 4 + [False]
    assert list(frame["prompt_tokens"]) == [5] * 5
    if backend.path is not None:
        with pytest.raises(PermissionError, match="read-only"):
            again.put(make_record(10))


def test_secrets_never_stored(backend):
    store = backend()
    rec = make_record(
        1, api_key=SECRET, extra_body={"top_k": 0, "authorization": SECRET, "x_token": SECRET},
        api_base=f"http://user:{SECRET}@host/v1", max_tokens=3,
    )  # fmt: skip
    store.put(rec)
    got = store.get(rec["key"])
    assert got["params"] == {"temperature": 1.0, "extra_body": {"top_k": 0}, "max_tokens": 3}
    assert SECRET not in json.dumps(list(store))
    if backend.path is not None:
        assert SECRET not in backend.path.read_text()


def test_record_validation(backend):
    store = backend()
    rec = make_record(1)
    del rec["reply"]
    with pytest.raises(ValueError, match="missing field.*reply"):
        store.put(rec)
    with pytest.raises(ValueError, match="unknown field.*api_key"):
        store.put({**make_record(1), "api_key": SECRET})
    with pytest.raises(ValueError, match="'sample'.*-1"):
        store.put({**make_record(1), "sample": -1})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store.put({**make_record(1), "meta": {"x": object()}})
    assert len(store) == 0


# -- keys -----------------------------------------------------------------------------------
def test_make_key_covers_every_sampling_param_and_sample_index():
    m = [{"role": "user", "content": "hi"}]
    base = make_key("m", m, {"temperature": 1.0, "extra_body": {"top_k": 0}}, 0)
    assert base == make_key("m", m, {"extra_body": {"top_k": 0}, "temperature": 1}, 0)
    assert base != make_key("m", m, {"temperature": 1.0, "extra_body": {"top_k": 40}}, 0)
    assert base != make_key("m", m, {"temperature": 1.0}, 0)
    assert base != make_key("m", m, {"temperature": 1.0, "extra_body": {"top_k": 0}}, 1)
    assert base != make_key("m2", m, {"temperature": 1.0, "extra_body": {"top_k": 0}}, 0)
    # the endpoint and credentials are not part of the key
    assert base == make_key(
        "m", m, {"temperature": 1.0, "extra_body": {"top_k": 0}, "api_base": "http://x:1",
                 "api_key": "k"}, 0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="sample"):
        make_key("m", m, {}, -1)
    with pytest.raises(ValueError, match="model"):
        make_key("", m, {}, 0)


def test_sanitize_keeps_token_counts():
    assert sanitize_params({"max_tokens": 1, "max_completion_tokens": 2, "access_token": "t",
                            "top_k": 0}) == {"max_tokens": 1, "max_completion_tokens": 2,
                                             "top_k": 0}  # fmt: skip


# -- crash safety on disk -------------------------------------------------------------------
def test_truncated_last_line_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "s.jsonl"
    store = JsonlStore(path)
    store.put_many([make_record(i) for i in range(3)])
    line = json.dumps(make_record(3))
    with open(path, "ab") as fh:  # a writer killed mid-line
        fh.write(line[: len(line) // 2].encode())
    crashed = JsonlStore(path)
    assert len(crashed) == 3 and crashed.n_truncated == 1 and crashed.n_corrupt == 0
    ro = JsonlStore(path, read_only=True)
    assert len(ro) == 3 and ro.n_truncated == 1
    crashed.put(make_record(4))  # the remnant is cut before appending
    final = JsonlStore(path, read_only=True)
    assert final.n_truncated == 0 and final.n_corrupt == 0
    assert [r["reply"] for r in final] == ["reply 0", "reply 1", "reply 2", "reply 4"]
    assert path.read_bytes().endswith(b"\n")


def test_corrupt_complete_line_skipped_and_counted(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(make_record(0)) + "\n{not json}\n" + json.dumps(make_record(1))
                    + "\n")  # fmt: skip
    store = JsonlStore(path, read_only=True)
    assert len(store) == 2 and store.n_corrupt == 1 and store.n_truncated == 0


def test_read_only_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        JsonlStore(tmp_path / "nope.jsonl", read_only=True)


def test_compact_gz_round_trip_and_read_only(tmp_path):
    src = tmp_path / "s.jsonl"
    store = JsonlStore(src)
    recs = [make_record(i) for i in range(5)] + [make_record(7, error="x")]
    store.put_many(recs)
    with open(src, "ab") as fh:
        fh.write(b'{"key": "trunc')
    dst = tmp_path / "data" / "s.jsonl.gz"
    assert compact(src, dst) == 6
    first = dst.read_bytes()
    assert compact(src, dst) == 6 and dst.read_bytes() == first  # reproducible bytes
    gz = JsonlStore(dst)
    assert gz.read_only and list(gz) == recs and len(gz.keys()) == 5
    with pytest.raises(PermissionError, match="read-only"):
        gz.put(make_record(10))
    assert compact(store, tmp_path / "ok.jsonl.gz", successful_only=True) == 5
    with pytest.raises(ValueError, match="dst_gz"):
        compact(src, tmp_path / "x.jsonl")
    # a truncated gzip stream loses only its tail
    (tmp_path / "cut.jsonl.gz").write_bytes(first[: len(first) - 12])
    assert len(JsonlStore(tmp_path / "cut.jsonl.gz")) <= 6
    lines = gzip.decompress(first).splitlines()
    assert sum(b'"key"' in ln for ln in lines) == 6 and len(lines) == 12  # 6 distinct bodies


def test_other_writers_seen_on_put_and_refresh(tmp_path):
    path = tmp_path / "s.jsonl"
    a, b = JsonlStore(path), JsonlStore(path)
    a.put(make_record(0))
    assert b.get(make_record(0)["key"]) is None
    assert b.refresh() == 1 and b.get(make_record(0)["key"]) is not None
    a.put(make_record(1))
    b.put(make_record(2))  # b picks up a's record under the lock before appending
    assert len(b) == 3 and len(JsonlStore(path, read_only=True)) == 3


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from tests_store_helper import make_record
    from dbnb.llm import JsonlStore
    store = JsonlStore(sys.argv[1])
    start = int(sys.argv[2])
    for i in range(start, start + 150):
        rec = make_record(i)
        rec["meta"]["pad"] = "x" * (i % 7) * 1000  # lines of varied length, some > pipe size
        store.put(rec)
    """
)


def test_two_processes_write_one_store(tmp_path):
    helper = tmp_path / "helper"
    helper.mkdir()
    (helper / "tests_store_helper.py").write_text(
        "from dbnb.llm import make_key\n" + _source_of_make_record()
    )
    path = tmp_path / "shared.jsonl"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start), str(helper)],
                         env=env)  # fmt: skip
        for start in (0, 1000)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    raw = path.read_bytes().splitlines()
    parsed = [json.loads(line) for line in raw]  # every line is complete: a body or a record
    parsed = [v for v in parsed if "key" in v]
    assert len(parsed) == 300
    store = JsonlStore(path, read_only=True)
    assert store.n_corrupt == 0 and store.n_truncated == 0 and len(store) == 300
    states = sorted(r["meta"]["state"] for r in parsed)
    assert states == list(range(150)) + list(range(1000, 1150))


def _source_of_make_record() -> str:
    import inspect

    return inspect.getsource(make_record)


# -- the deduplicated layout (request bodies once, records by hash) --------------------------
def _big_record(i: int, n_prompts: int = 3) -> dict:
    grammar = "root ::= (" + " | ".join(f'"W{j}"' for j in range(200)) + ")"
    return make_record(i % n_prompts, sample=i, extra_body={"grammar": grammar})


def test_dedup_round_trip_and_size(tmp_path):
    recs = [_big_record(i) for i in range(60)]
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    JsonlStore(new).put_many(recs)
    JsonlStore(old, dedup=False).put_many(recs)
    a, b = list(JsonlStore(new, read_only=True)), list(JsonlStore(old, read_only=True))
    assert a == b and len(a) == 60
    assert a[7]["messages"] == recs[7]["messages"] and a[7]["params"] == recs[7]["params"]
    lines = new.read_bytes().splitlines()
    assert sum(b'"key"' not in ln for ln in lines) == 3  # three distinct bodies, each once
    assert new.stat().st_size * 5 < old.stat().st_size  # dedup actually happened


def test_dedup_reads_old_layout_and_appends_to_it(tmp_path):
    path = tmp_path / "mixed.jsonl"
    JsonlStore(path, dedup=False).put_many([_big_record(i) for i in range(5)])
    store = JsonlStore(path)  # an old-layout file, now appended in the new layout
    store.put(_big_record(5))
    again = JsonlStore(path, read_only=True)
    assert len(again) == 6 and again.n_corrupt == 0
    assert [r["sample"] for r in again] == list(range(6))
    assert again.get(_big_record(2)["key"])["messages"] == _big_record(2)["messages"]


def test_dedup_crash_remnant_ignored(tmp_path):
    path = tmp_path / "cut.jsonl"
    store = JsonlStore(path)
    store.put_many([_big_record(i) for i in range(4)])
    size = path.stat().st_size
    store.put(_big_record(99, n_prompts=1000))  # a new body line, then its record line
    data = path.read_bytes()
    path.write_bytes(data[: size + (len(data) - size) - 20])  # cut the record line
    reopened = JsonlStore(path)
    assert len(reopened) == 4 and reopened.n_truncated == 1 and reopened.n_corrupt == 0
    assert reopened.get(_big_record(99, n_prompts=1000)["key"]) is None  # not committed
    reopened.put(_big_record(99, n_prompts=1000))  # the resume writes it again
    assert len(JsonlStore(path, read_only=True)) == 5


def test_dedup_gz_compact_reads(tmp_path):
    path = tmp_path / "s.jsonl"
    JsonlStore(path).put_many([_big_record(i) for i in range(9)])
    with open(path, "rb") as fh, gzip.open(tmp_path / "raw.jsonl.gz", "wb") as gz:
        gz.write(fh.read())  # the new layout, gzipped as is, reads read-only
    assert list(JsonlStore(tmp_path / "raw.jsonl.gz")) == list(JsonlStore(path))
    assert compact(path, tmp_path / "c.jsonl.gz") == 9
    assert list(JsonlStore(tmp_path / "c.jsonl.gz")) == list(JsonlStore(path))


def test_compact_writes_each_request_body_once(tmp_path):
    path = tmp_path / "s.jsonl"
    recs = [_big_record(i) for i in range(40)]
    JsonlStore(path, dedup=False).put_many(recs)  # an old full-record store
    assert compact(path, tmp_path / "new.jsonl.gz") == 40
    assert compact(path, tmp_path / "old.jsonl.gz", dedup=False) == 40
    new, old = JsonlStore(tmp_path / "new.jsonl.gz"), JsonlStore(tmp_path / "old.jsonl.gz")
    assert list(new) == list(old) == list(JsonlStore(path)) and new.n_corrupt == 0
    with gzip.open(tmp_path / "new.jsonl.gz", "rt") as fh:
        lines = [json.loads(ln) for ln in fh]
    bodies = [ln for ln in lines if "key" not in ln]
    assert len(bodies) == len({body_hash(r) for r in recs}) < len(recs)
    assert all("messages" not in ln for ln in lines if "key" in ln)
    # gzip already removes most of the repetition, so the file shrinks a little; what a
    # replay must decompress and parse shrinks to the short records (40 records, 3 bodies)
    size = {n: (tmp_path / f"{n}.jsonl.gz").stat().st_size for n in ("new", "old")}
    raw = {n: len(gzip.decompress((tmp_path / f"{n}.jsonl.gz").read_bytes()))
           for n in ("new", "old")}
    assert size["new"] < size["old"] and raw["new"] < raw["old"] / 4  # measured 4.8x
