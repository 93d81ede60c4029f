"""Benchmark the LLM layer: live calls to the local model, and replay from a store.

Run with ``python benchmarks/bench_llm.py [--calls 60] [--replay 20000]``. Needs the
``[local]`` extra for the live part (skipped with a message otherwise).

Live: grammar-constrained one-word replies from ``local/smollm2`` at concurrency 1, 2 and 4,
through :func:`dbnb.llm.sample` into a :class:`dbnb.llm.store.JsonlStore` (fsync per record).
Replay: N stored records read from a JSONL (and a gzip) store and replayed with
``offline=True``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from dbnb.llm import JsonlStore, Request, compact, local, sample

WORDS = ["apple", "river", "stone", "cloud", "music"]
GRAMMAR = "root ::= (" + " | ".join(f'"{w}"' for w in WORDS) + ")"
MSGS = [{"role": "user", "content": "Name one thing you like. Answer with one word."}]


def bench_live(n_calls: int, tmp: Path) -> list[tuple[str, str, str]]:
    rows = []
    t0 = time.perf_counter()
    with local.LocalServer("smollm2") as srv:
        startup = time.perf_counter() - t0
        rows.append(("server startup", f"{startup:.2f} s", ""))
        os.environ[local.ENV_API_BASE] = srv.api_base
        try:
            store = JsonlStore(tmp / "live.jsonl")
            warm = [Request("local/smollm2", MSGS, {"max_tokens": 8,
                            "extra_body": {"grammar": GRAMMAR}}, sample=900_000 + i)
                    for i in range(3)]  # fmt: skip
            sample(warm, store=store, progress=False)  # imports litellm, warms the server
            for k, conc in enumerate((1, 2, 4)):
                reqs = [
                    Request("local/smollm2", MSGS,
                            {"max_tokens": 8, "extra_body": {"grammar": GRAMMAR}},
                            sample=k * 10_000 + i)  # fmt: skip
                    for i in range(n_calls)
                ]
                t = time.perf_counter()
                out = sample(reqs, store=store, concurrency=conc, progress=False)
                dt = time.perf_counter() - t
                bad = sum(r["error"] is not None or r["reply"].strip() not in WORDS for r in out)
                rows.append((f"live, concurrency {conc}", f"{n_calls / dt:.1f} calls/s",
                             f"{n_calls} calls in {dt:.2f} s, {bad} invalid"))  # fmt: skip
        finally:
            del os.environ[local.ENV_API_BASE]
    return rows


def bench_replay(n: int, tmp: Path) -> list[tuple[str, str, str]]:
    path = tmp / "replay.jsonl"
    reqs = [
        Request("local/smollm2", [{"role": "user", "content": f"state {i % 50}"}],
                {"max_tokens": 8, "extra_body": {"grammar": GRAMMAR}}, sample=i // 50,
                meta={"state": i % 50})  # fmt: skip
        for i in range(n)
    ]
    writer = JsonlStore(path, fsync=False)
    batch = []
    for i, r in enumerate(reqs):
        batch.append({
            "key": r.key, "sample": r.sample, "model": r.model, "messages": r.messages,
            "params": r.params, "reply": WORDS[i % 5], "finish_reason": "stop",
            "usage": {"prompt_tokens": 40, "completion_tokens": 2}, "cost": None,
            "latency_s": 0.07, "time": "2026-01-01T00:00:00.000+00:00", "error": None,
            "attempts": 1, "meta": r.meta,
        })  # fmt: skip
        if len(batch) == 1000:
            writer.put_many(batch)
            batch = []
    writer.put_many(batch)
    gz = tmp / "replay.jsonl.gz"
    compact(path, gz)
    rows = []
    t = time.perf_counter()
    reqs2 = [Request(r.model, r.messages, r.params, sample=r.sample) for r in reqs]
    t_req = time.perf_counter() - t
    rows.append((f"build+key {n} Requests", f"{n / t_req:,.0f} req/s", f"{t_req:.2f} s"))
    for label, p in (("jsonl", path), ("jsonl.gz", gz)):
        t = time.perf_counter()
        store = JsonlStore(p, read_only=True)
        t_open = time.perf_counter() - t
        t = time.perf_counter()
        out = sample(reqs2, store=store, offline=True, progress=False)
        t_replay = time.perf_counter() - t
        assert len(out) == n and out[7]["reply"] == WORDS[7 % 5]
        total = t_open + t_replay
        size = p.stat().st_size / 1e6
        rows.append((f"replay {n} from {label}", f"{n / total:,.0f} records/s",
                     f"open {t_open:.2f} s + replay {t_replay:.2f} s; file {size:.1f} MB"))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=60, help="live calls per concurrency level")
    ap.add_argument("--replay", type=int, default=20_000, help="records to replay")
    ap.add_argument("--no-live", action="store_true", help="skip the local-model part")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dbnb-bench-") as d:
        tmp = Path(d)
        if not args.no_live:
            try:
                local.model_path("smollm2")
                import llama_cpp.server  # noqa: F401
            except ImportError as exc:
                print(f"skipping live benchmark: {exc}", file=sys.stderr)
            else:
                rows += bench_live(args.calls, tmp)
        rows += bench_replay(args.replay, tmp)
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'what':<{w[0]}}  {'rate':>{w[1]}}  detail")
    print("-" * (sum(w) + 4 + 6))
    for a, b, c in rows:
        print(f"{a:<{w[0]}}  {b:>{w[1]}}  {c}")


if __name__ == "__main__":
    main()
