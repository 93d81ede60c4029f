"""The word log-probability kernel over the 100 most frequent valid words (word_logprob100.npz).

Subtrees of path probability below MIN_PROB (rare tokenisations) are skipped; the skipped mass
is reported per source as ``uncovered``. The sources are split in PARTS parts that can run in
parallel, one process (one thread) per core, then merged (``dbnb.llm.logprob.merge``):

    python scripts/run_local_exact100.py --part 0 & python scripts/run_local_exact100.py --part 1
    python scripts/run_local_exact100.py --merge
"""

import argparse
from pathlib import Path

from dbnb.agents import word
from dbnb.llm.logprob import load_logprob_kernel, merge

RUNS = Path(__file__).resolve().parent.parent / "data" / "runs"
N_WORDS = 100
MIN_PROB = 1e-5
PARTS = 2


def part_path(i: int) -> Path:
    return RUNS / f"word_logprob{N_WORDS}.part{i}.npz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", type=int, default=None)
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    vocab = list(word.vocabulary(N_WORDS))
    if args.part is not None:
        srcs = vocab[args.part::PARTS]
        ek = word.word_logprob_kernel(vocab, sources=srcs, min_prob=MIN_PROB, progress=True)
        ek.save(part_path(args.part))
    if args.merge:
        ek = merge([load_logprob_kernel(part_path(i)) for i in range(PARTS)])
        ek.save(RUNS / f"word_logprob{N_WORDS}.npz")
        print(ek, "uncovered: max", ek.uncovered.max(), "mean", ek.uncovered.mean())


if __name__ == "__main__":
    main()
