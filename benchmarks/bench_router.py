"""Calls/s through litellm's Router with two local llama.cpp servers against one, in one run.

Both measurements run back to back in one process on the same prompts (fresh in-memory stores,
so nothing is replayed), one thread per server, two calls in flight per server.

On a 2-core machine two single-threaded servers use both cores, so the ratio measures how well
the Router spreads load over two independent servers, not what two GPU servers would give; on
a machine with cores to spare per server, the ratio approaches 2 when the servers are the
bottleneck.

Measured 2026-12-03 (2 shared cores, llama-cpp-python 0.3.36, litellm 1.x, 40 calls, max_tokens
4): one server 8.27 calls/s, two servers 10.53 calls/s, ratio 1.27.

Run: ``PYTHONPATH=. python benchmarks/bench_router.py [n_calls]``.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dbnb.llm import MemoryStore, Request, sample  # noqa: E402
from dbnb.llm.local import LocalServer  # noqa: E402


def _entries(servers) -> list[dict]:
    return [{"model_name": "local/smollm2",
             "litellm_params": {"model": "openai/smollm2", "api_base": s.api_base,
                                "api_key": "EMPTY"},
             "model_info": {"id": f"srv{i}"}} for i, s in enumerate(servers)]


def _rate(servers, n: int) -> float:
    reqs = [Request("local/smollm2", [{"role": "user", "content": "Name one animal."}],
                    params={"max_tokens": 4}, sample=i) for i in range(n)]
    t0 = time.perf_counter()
    recs = sample(reqs, store=MemoryStore(), deployments=_entries(servers),
                  concurrency=2 * len(servers), progress=False)
    dt = time.perf_counter() - t0
    failed = sum(r["error"] is not None for r in recs)
    if failed:
        raise RuntimeError(f"{failed} of {n} calls failed")
    return n / dt


def main(n: int = 60) -> None:
    with LocalServer("smollm2", n_threads=1) as a, LocalServer("smollm2", n_threads=1) as b:
        _rate([a, b], 4)  # warm up both
        one = _rate([a], n)
        two = _rate([a, b], n)
    print(f"one server: {one:.2f} calls/s; two servers: {two:.2f} calls/s; "
          f"ratio {two / one:.2f} ({os.cpu_count()} cores, 1 thread per server)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
