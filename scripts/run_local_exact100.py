"""The exact word kernel over the 100 most frequent valid words (data/runs/word_exact100.npz).

Subtrees of path probability below MIN_PROB (rare tokenisations) are skipped; the skipped mass
is reported per source as ``uncovered``. The sources are split in PARTS parts that can run in
parallel, one process (one thread) per core, then merged:

    python scripts/run_local_exact100.py --part 0 & python scripts/run_local_exact100.py --part 1
    python scripts/run_local_exact100.py --merge
"""

import argparse
from pathlib import Path

import numpy as np

from dbnb.agents import word
from dbnb.exact import ExactKernel, exact_kernel, load_exact

RUNS = Path(__file__).resolve().parent.parent / "data" / "runs"
N_WORDS = 100
MIN_PROB = 1e-5
PARTS = 2


def part_path(i: int) -> Path:
    return RUNS / f"word_exact{N_WORDS}.part{i}.npz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", type=int, default=None)
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    vocab = list(word.vocabulary(N_WORDS))
    if args.part is not None:
        srcs = vocab[args.part::PARTS]
        ek = exact_kernel(vocab, sources=srcs, min_prob=MIN_PROB, progress=True)
        ek.save(part_path(args.part))
    if args.merge:
        parts = [load_exact(part_path(i)) for i in range(PARTS)]
        order = {s: (i, j) for i, p in enumerate(parts) for j, s in enumerate(p.sources)}
        cols = [order[s] for s in vocab]
        pick = lambda name: np.stack([getattr(parts[i], name)[..., j] for i, j in cols], -1)  # noqa: E731
        ek = ExactKernel(
            states=tuple(vocab), sources=tuple(vocab), prob=pick("prob"),
            logprob=pick("logprob"), uncovered=pick("uncovered"), seconds=pick("seconds"),
            n_nodes=parts[0].n_nodes,
            info={**parts[0].info, "parts": PARTS,
                  "prompt_tokens": [parts[i].info["prompt_tokens"][j] for i, j in cols]},
        )
        ek.save(RUNS / f"word_exact{N_WORDS}.npz")
        print(ek, "uncovered: max", ek.uncovered.max(), "mean", ek.uncovered.mean())


if __name__ == "__main__":
    main()
