"""Benchmark: the exact walk over HTTP on llama-server against the in-process walk (SmolLM2).

Usage::

    python benchmarks/bench_served_walk.py [--words 5] [--prompts 2] [--top 4096]

Needs a built llama-server (``dbnb build-llama-server``). For the word agent's Letter prompt
over the first ``--words`` shipped words and the first ``--prompts`` of them as prompts, in
one run: the in-process walk (:func:`dbnb.llm.logprob.logprob_replies`); the served walk
(:func:`dbnb.llm.logprob.served_replies`, ``tokenisations="all"``) on one server with
``top`` rows first and with full-vocabulary rows only; and on two servers. Prints seconds,
nodes, requests, seconds per node, the ratios, and the agreement ``max |d log p|``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dbnb.agents import word
from dbnb.llm.cppserver import LlamaServer
from dbnb.llm.logprob import load_model, logprob_replies, served_replies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--top", type=int, default=4096)
    args = ap.parse_args()
    vocab = list(word.vocabulary(args.words))
    srcs = vocab[: args.prompts]
    fn = word.PROMPTS["letter"]
    n_vocab = load_model("smollm2").n_vocab
    t0 = time.perf_counter()
    exact = logprob_replies(vocab, fn, sources=srcs, progress=False)
    t_in = time.perf_counter() - t0
    nodes = sum(exact.info["visited_nodes"])
    print(f"{len(vocab)} words, prompts {srcs}: in-process {t_in:.1f} s, {nodes} nodes, "
          f"{1e3 * t_in / nodes:.1f} ms/node")
    rows = {}
    with LlamaServer("smollm2") as a, LlamaServer("smollm2") as b:
        for label, eps, top in ((f"1 server, top {args.top}", [a.api_base], args.top),
                                ("1 server, full rows", [a.api_base], n_vocab),
                                (f"2 servers, top {args.top}", [a.api_base, b.api_base],
                                 args.top)):
            t0 = time.perf_counter()
            k = served_replies(vocab, fn, eps, served_model="smollm2", sources=srcs,
                               tokenisations="all", top=top)
            secs = time.perf_counter() - t0
            rows[label] = secs
            req = sum(k.info["requests"])
            print(f"{label}: {secs:.1f} s, {req} requests ({sum(k.info['full_rows'])} full "
                  f"rows), {1e3 * secs / nodes:.0f} ms/node, batched nodes "
                  f"{k.info['batched_nodes']}, max |d log p| "
                  f"{np.abs(k.logprob - exact.logprob).max():.2g}")
    one = rows[f"1 server, top {args.top}"]
    print(f"ratios: full rows / top {args.top} = {rows['1 server, full rows'] / one:.2f}; "
          f"1 server / 2 servers = {one / rows[f'2 servers, top {args.top}']:.2f}; "
          f"served (1 server, top) / in-process = {one / t_in:.1f}")


if __name__ == "__main__":
    main()
