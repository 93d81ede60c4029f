"""Benchmark the response store's two layouts: full records per line (old) and request bodies
stored once, named by hash from each record (new, ``JsonlStore(dedup=True)``).

Run with ``python benchmarks/bench_store.py [--sizes 100000 1000000] [--old-max 100000]``.

The synthetic run is what the word agents write: 100 distinct prompts, each with the same
200-word grammar in ``extra_body`` (a ~4 KB request), sampled many times (sample index in the
key). For each size and layout: bytes per record on disk, bulk append rate (``put_many`` in
batches of 1,000, one fsync per batch), durable append rate (``put``, one fsync per record, on
2,000 records), and open + lookup time (``JsonlStore(path, read_only=True)`` then 1,000
``get``). The old layout at 10^6 records is 4 GB on disk and many GB in memory; it runs only up
to ``--old-max`` records and larger sizes are printed as extrapolated (marked ``~``).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from dbnb.llm import JsonlStore, make_key

N_PROMPTS = 100
GRAMMAR = "root ::= (" + " | ".join(f'"WORD{j:03d}X"' for j in range(200)) + ")"
PARAMS = {"temperature": 1.0, "max_tokens": 8,
          "extra_body": {"grammar": GRAMMAR, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                         "repeat_penalty": 1.0}}  # fmt: skip
_MSGS = [
    [{"role": "system", "content": "You answer with one word from the list."},
     {"role": "user", "content": f"State {p}: what word comes next? Answer with one word."}]
    for p in range(N_PROMPTS)
]  # fmt: skip
_KEY_BASE = [make_key("local/smollm2", m, PARAMS, 0) for m in _MSGS]


def record(i: int) -> dict:
    p = i % N_PROMPTS
    s = i // N_PROMPTS
    return {
        "key": f"{_KEY_BASE[p][:48]}{s:016x}",  # unique per draw, as make_key is (but cheap)
        "sample": s, "model": "local/smollm2", "messages": _MSGS[p], "params": PARAMS,
        "reply": f"WORD{i % 200:03d}X", "finish_reason": "stop",
        "usage": {"prompt_tokens": 1210, "completion_tokens": 3}, "cost": None,
        "latency_s": 0.071234, "time": "2026-12-03T12:00:00.000+00:00", "error": None,
        "attempts": 1, "deployment": "openai/smollm2", "meta": {"agent": "word", "state": p},
    }  # fmt: skip


def build(path: Path, n: int, dedup: bool) -> float:
    store = JsonlStore(path, dedup=dedup)
    t = time.perf_counter()
    for start in range(0, n, 1000):
        store.put_many([record(i) for i in range(start, min(n, start + 1000))])
    return n / (time.perf_counter() - t)


def durable(path: Path, n: int, dedup: bool) -> float:
    store = JsonlStore(path, dedup=dedup)
    recs = [record(i) for i in range(n)]
    t = time.perf_counter()
    for r in recs:
        store.put(r)
    return n / (time.perf_counter() - t)


def open_lookup(path: Path, n: int) -> float:
    rng = random.Random(0)
    keys = [record(rng.randrange(n))["key"] for _ in range(1000)]
    t = time.perf_counter()
    store = JsonlStore(path, read_only=True)
    assert len(store) == n and all(store.get(k) is not None for k in keys)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--old-max", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res: dict[tuple[str, int], dict] = {}
        for dedup, name in ((False, "old"), (True, "new")):
            res[(name, 0)] = {"durable": durable(tmp / f"d-{name}.jsonl", 2000, dedup)}
        for n in args.sizes:
            for dedup, name in ((False, "old"), (True, "new")):
                path = tmp / f"{name}-{n}.jsonl"
                if name == "old" and n > args.old_max:
                    base = res[(name, args.old_max)]
                    f = n / args.old_max
                    res[(name, n)] = {"bytes": base["bytes"], "rate": base["rate"],
                                      "open": base["open"] * f, "est": True}  # fmt: skip
                    continue
                rate = build(path, n, dedup)
                size = path.stat().st_size
                res[(name, n)] = {"bytes": size / n, "rate": rate, "open": open_lookup(path, n),
                                  "est": False}  # fmt: skip
                path.unlink()
        print(f"durable put (fsync per record, 2,000 records): old "
              f"{res[('old', 0)]['durable']:.0f}/s, new {res[('new', 0)]['durable']:.0f}/s, "
              f"ratio {res[('new', 0)]['durable'] / res[('old', 0)]['durable']:.2f}")
        print("| records | layout | bytes/record | put_many records/s | open + 1,000 get |")
        print("|---|---|---|---|---|")
        for n in args.sizes:
            for name in ("old", "new"):
                r = res[(name, n)]
                m = "~" if r["est"] else ""
                print(f"| {n:,} | {name} | {m}{r['bytes']:,.0f} | {m}{r['rate']:,.0f} | "
                      f"{m}{r['open']:.2f} s |")
            o, w = res[("old", n)], res[("new", n)]
            m = "~" if o["est"] else ""
            print(f"| {n:,} | old/new | {m}{o['bytes'] / w['bytes']:.1f}x | "
                  f"{m}{w['rate'] / o['rate']:.2f}x (new/old) | {m}{o['open'] / w['open']:.1f}x |")


if __name__ == "__main__":
    main()
