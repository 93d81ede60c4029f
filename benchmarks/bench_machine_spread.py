"""Benchmark: how far a shipped log-probability kernel moves on this machine.

Usage::

    python benchmarks/bench_machine_spread.py [--kernel word_logprob30.npz] [--rows 2]

Recomputes the first ``--rows`` sources of a shipped word kernel with the settings it records
(same GGUF, ``prompt_mode``, ``strategy``, ``min_prob``, one thread) and prints the largest
difference in ``log p`` and in ``p`` over the entries both computations resolve
(``p > 1e-6``), beside what each kernel records of its machine
(:func:`dbnb.llm.logprob.machine_info`). A kernel is exact for the arithmetic that computed it: on
the machine that wrote the file the difference is 0; elsewhere it measures the spread that
llama.cpp's CPU-specific kernels introduce.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dbnb.agents.word import word_logprob_kernel
from dbnb.datasets import data_dir
from dbnb.llm.logprob import load_logprob_kernel, machine_info, same_machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="word_logprob30.npz")
    ap.add_argument("--rows", type=int, default=2)
    args = ap.parse_args()
    shipped = load_logprob_kernel(data_dir() / "runs" / args.kernel)
    if shipped.info.get("agent", "word") != "word":
        raise SystemExit(f"{args.kernel}: only word kernels are recomputed here")
    srcs = list(shipped.sources[: args.rows])
    t0 = time.perf_counter()
    new = word_logprob_kernel(list(shipped.states), sources=srcs, progress=False,
                              strategy=shipped.info.get("strategy", "reuse"),
                              prompt_mode=shipped.info.get("prompt_mode", "fresh"),
                              min_prob=float(shipped.info.get("min_prob", 0.0)))
    secs = time.perf_counter() - t0
    cols = [shipped.sources.index(s) for s in srcs]
    a, b = shipped.prob[:, cols], new.prob
    la, lb = shipped.logprob[:, cols], new.logprob
    both = (a > 1e-6) & (b > 1e-6)
    dlog = np.abs(la - lb)[both]
    print(f"{args.kernel}: {len(srcs)} rows ({', '.join(srcs)}) recomputed in {secs:.0f} s")
    print(f"  entries with p > 1e-6 in both: {int(both.sum())}")
    print(f"  max |d log p| = {dlog.max():.3g}, median {np.median(dlog):.3g}")
    print(f"  max |d p|     = {np.abs(a - b).max():.3g}")
    print(f"  same machine (as recorded): {same_machine(shipped.info, new.info)}")
    print("  shipped machine:", json.dumps(shipped.info.get("machine", "not recorded")))
    print("  this machine:   ", json.dumps(machine_info()))


if __name__ == "__main__":
    main()
