"""Regenerate the shipped local-model word-agent runs (data/runs/).

Run 1: constrained word agent (grammar = the 200 most frequent valid words), fixed design,
       100 calls per word = 20,000 calls, SmolLM2-135M-Instruct, temperature 1, no truncation.
Run 2: the Letter's schedule (uniform over words found so far, from BUZZY), free mode,
       2,000 calls.

Every call is kept in a JSON Lines store; a rerun replays it (no call is paid twice). At the
end the stores are compacted to gzip (what ships). Usage:

    python scripts/run_local_word.py [--only 1|2]
"""

import argparse
from pathlib import Path

from dbnb.agents import word
from dbnb.agents.run import run_fixed_design, run_letter_schedule
from dbnb.agents.word import WordAgent
from dbnb.llm import JsonlStore, compact

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "data" / "runs"
MODEL = "local/smollm2"
N_WORDS = 200
CALLS_PER_WORD = 100
LETTER_CALLS = 2000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["1", "2"], default=None)
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "1"):
        vocab = word.vocabulary(N_WORDS)
        agent = WordAgent(vocab, mode="constrained")
        live = RUNS / "word_constrained_fixed.jsonl"
        run_fixed_design(agent, vocab, CALLS_PER_WORD, model=MODEL, store=JsonlStore(live),
                         concurrency=2)
        compact(live, live.with_suffix(".jsonl.gz"))
    if args.only in (None, "2"):
        agent = WordAgent(mode="free")
        live = RUNS / "word_free_letter.jsonl"
        run_letter_schedule(agent, LETTER_CALLS, model=MODEL, store=JsonlStore(live),
                            seed=0, batch=2)
        compact(live, live.with_suffix(".jsonl.gz"))


if __name__ == "__main__":
    main()
