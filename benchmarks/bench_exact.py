"""Benchmark: exact kernel with KV-cache reuse vs. naive re-evaluation.

Usage::

    python benchmarks/bench_exact.py [--words 5] [--naive-words 3]

Times ``dbnb.agents.word.word_logprob_kernel`` over the first ``--words`` vocabulary words (one
source, the first word) with ``strategy="reuse"`` and ``"naive"`` (naive only over ``--naive-words``
candidates, it is slow), checks the two agree, and extrapolates the reuse time to a 100-word
kernel (100 sources x the 100-word token tree), by the number of internal tree nodes. Then
the symbolic agent's exact kernel for one prompt at several ``--symbolic`` ``min_prob`` values:
time, token steps and uncovered (skipped) mass.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dbnb.agents.word import vocabulary, word_logprob_kernel
from dbnb.llm.logprob import build_tree, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--naive-words", type=int, default=3)
    ap.add_argument("--symbolic", type=float, nargs="*", default=[1e-2, 1e-3, 1e-4],
                    help="min_prob values for the symbolic agent's exact kernel (one prompt)")
    args = ap.parse_args()
    t = time.perf_counter()
    m = load_model()
    print(f"model load: {time.perf_counter() - t:.2f} s")

    v = list(vocabulary(args.words))
    r = word_logprob_kernel(v, sources=v[:1], progress=False, strategy="reuse")
    n_int = r.info["visited_nodes"][0]
    per_node = r.seconds.sum() / n_int
    print(f"reuse, {len(v)} words: {r.seconds.sum():.2f} s, {r.n_nodes} tree nodes, "
          f"{n_int} internal (single-token steps), {1e3 * per_node:.1f} ms/step")

    vn = v[: args.naive_words]
    a = word_logprob_kernel(vn, sources=vn[:1], progress=False, strategy="reuse")
    b = word_logprob_kernel(vn, sources=vn[:1], progress=False, strategy="naive")
    diff = float(np.max(np.abs(a.prob - b.prob)))
    print(f"{len(vn)} words: reuse {a.seconds.sum():.2f} s, naive {b.seconds.sum():.2f} s "
          f"({b.seconds.sum() / a.seconds.sum():.1f}x), max |dP| = {diff:.1e}")

    for n in (100, len(vocabulary())):
        tree = build_tree(list(vocabulary(n)), m.pieces, m.max_piece)
        internal = sum(1 for k in range(tree.size) if tree.children(k))
        est = n * internal * per_node
        print(f"{n}-word kernel: {tree.size} nodes, {internal} internal per source; "
              f"estimate {est / 60:.0f} min ({est / 3600:.1f} h) at {1e3 * per_node:.1f} ms/step")

    if args.symbolic:
        from dbnb.agents import symbolic

        agent = symbolic.SymbolicAgent(mode="constrained")
        cands = list(agent.candidates)
        mean_len = np.mean([len(c) for c in cands])
        print(f"symbolic agent, {len(cands)} expressions (mean {mean_len:.0f} characters), "
              "one prompt:")
        for mp in args.symbolic:
            ek = symbolic.exact_kernel(cands, agent, sources=cands[:1], min_prob=mp,
                                       progress=False)
            k = ek.info["visited_nodes"][0]
            print(f"  min_prob {mp:.0e}: {ek.seconds[0]:.1f} s, {k} token steps "
                  f"({1e3 * ek.seconds[0] / k:.1f} ms/step), uncovered {ek.uncovered[0]:.2%}")


if __name__ == "__main__":
    main()
