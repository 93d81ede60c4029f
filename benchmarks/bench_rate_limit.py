"""Benchmark a run under a rate limit: N calls at rpm=R take about ceil(N/R) - 1 minute turns.

Run with ``python benchmarks/bench_rate_limit.py [--calls 5] [--rpm 2] [--concurrency 2]``.

The calls go through dbnb's one-entry litellm Router to an injected function that answers at
once, on the real clock: litellm's ``enforce_model_rate_limits`` admits R calls per UTC minute
and refuses the rest; dbnb waits for the next minute and asks again. Prints, for each call,
the second it reached the function, the UTC minute, its waits and attempts, then the number of
failures (0 is the claim: a rate limit slows a run down and never fails a call).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timezone

from dbnb.llm import MemoryStore, Request, sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--rpm", type=float, default=2)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    t0 = time.monotonic()
    seen: dict[str, tuple[float, str]] = {}

    async def answer(*, model, messages, **params):
        seen[messages[0]["content"]] = (time.monotonic() - t0,
                                        datetime.now(timezone.utc).strftime("%H:%M"))
        await asyncio.sleep(0.01)
        return {"choices": [{"message": {"role": "assistant", "content": "w"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}  # fmt: skip

    reqs = [Request("bench/m", [{"role": "user", "content": f"q{i}"}]) for i in range(args.calls)]
    recs = sample(reqs, store=MemoryStore(), complete=answer, rpm=args.rpm,
                  concurrency=args.concurrency, progress=False)
    print(f"{args.calls} calls, rpm={args.rpm:g}, concurrency={args.concurrency}, "
          f"started {datetime.now(timezone.utc):%H:%M:%S} minus {time.monotonic() - t0:.1f} s")
    print("| call | reached the function at | UTC minute | rate_limit_waits | attempts |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(recs):
        at, minute = seen.get(f"q{i}", (float("nan"), "-"))
        print(f"| {i} | {at:.2f} s | {minute} | {r['rate_limit_waits']} | {r['attempts']} |")
    failed = sum(r["error"] is not None for r in recs)
    print(f"failed: {failed}; total {time.monotonic() - t0:.1f} s; "
          f"UTC minutes used: {len({m for _, m in seen.values()})}")


if __name__ == "__main__":
    main()
