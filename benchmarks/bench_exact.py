"""Benchmark: exact kernel with KV-cache reuse vs. naive re-evaluation.

Usage::

    python benchmarks/bench_exact.py [--words 5] [--naive-words 3]

Times ``dbnb.exact.exact_kernel`` over the first ``--words`` vocabulary words (one source, the
first word) with ``strategy="reuse"`` and ``"naive"`` (naive only over ``--naive-words``
candidates, it is slow), checks the two agree, and extrapolates the reuse time to a 100-word
kernel (100 sources x the 100-word token tree), by the number of internal tree nodes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dbnb.agents.word import vocabulary
from dbnb.exact import _build_tree, exact_kernel, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--naive-words", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    m = load_model()
    print(f"model load: {time.perf_counter() - t:.2f} s")

    v = list(vocabulary(args.words))
    r = exact_kernel(v, sources=v[:1], progress=False, strategy="reuse")
    n_int = r.info["internal_nodes"]
    per_node = r.seconds.sum() / n_int
    print(f"reuse, {len(v)} words: {r.seconds.sum():.2f} s, {r.n_nodes} tree nodes, "
          f"{n_int} internal (single-token steps), {1e3 * per_node:.1f} ms/step")

    vn = v[: args.naive_words]
    a = exact_kernel(vn, sources=vn[:1], progress=False, strategy="reuse")
    b = exact_kernel(vn, sources=vn[:1], progress=False, strategy="naive")
    diff = float(np.max(np.abs(a.prob - b.prob)))
    print(f"{len(vn)} words: reuse {a.seconds.sum():.2f} s, naive {b.seconds.sum():.2f} s "
          f"({b.seconds.sum() / a.seconds.sum():.1f}x), max |dP| = {diff:.1e}")

    for n in (100, len(vocabulary())):
        tree = _build_tree(list(vocabulary(n)), m.pieces, m.max_piece)
        internal = sum(1 for c in tree.children if c)
        est = n * internal * per_node
        print(f"{n}-word kernel: {tree.size} nodes, {internal} internal per source; "
              f"estimate {est / 60:.0f} min ({est / 3600:.1f} h) at {1e3 * per_node:.1f} ms/step")


if __name__ == "__main__":
    main()
