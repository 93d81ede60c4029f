"""Regenerate the shipped local-model runs of the symbolic-regression agent (data/runs/).

Run 1: constrained symbolic agent (GBNF grammar = the 121 expressions of
       ``symbolic.default_candidates``), fixed design, CALLS_PER_STATE calls per expression on
       ``mcycle`` (MASS::mcycle, shipped in data/), SmolLM2-135M-Instruct, temperature 1, no
       truncation. Calls go out in rounds of one call per expression (sample index k for every
       expression, then k + 1), so consecutive calls never repeat a prompt (llama-cpp-python's
       prompt cache would otherwise evaluate the repeated prompt's last token alone, which
       changes the logits; see dbnb.llm.logprob.walk), an interrupted run is balanced, and a rerun
       resumes from the store.
Kernel: the kernel P(g | f) of the same grammar-constrained sampler over the same expressions,
       from token log-probabilities (``symbolic.logprob_kernel``; partial tokenisations of path
       probability below MIN_PROB are not followed, their mass is reported as ``uncovered``),
       saved as data/runs/symbolic_logprob.npz (``dbnb.llm.logprob.load_logprob_kernel``). The
       prompts are split in PARTS parts, one one-thread process per core; each part
       checkpoints every finished prompt, and ``dbnb.llm.logprob.merge`` joins the parts.

Free:  the Letter's protocol: free replies (the first valid expression of the reply is the new
       state), prompts uniform over the expressions found so far, from param1*times+param2;
       data/runs/symbolic_free_letter.jsonl.gz.

Usage:

    python scripts/run_local_symbolic.py --calls 60
    python scripts/run_local_symbolic.py --free 2000
    python scripts/run_local_symbolic.py --exact-part 0 &
    python scripts/run_local_symbolic.py --exact-part 1
    python scripts/run_local_symbolic.py --merge
"""

import argparse
import time
from pathlib import Path

from dbnb.agents import symbolic
from dbnb.agents.run import local_server, run_fixed_design, run_letter_schedule
from dbnb.llm import JsonlStore, compact, logprob

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "data" / "runs"
MODEL = "local/smollm2"
CALLS_PER_STATE = 60
ROUND = 1
LIVE = RUNS / "symbolic_constrained_fixed.jsonl"
FREE = RUNS / "symbolic_free_letter.jsonl"
EXACT = RUNS / "symbolic_logprob.npz"


def recorded(store: Path) -> dict:
    """The MSE each prompt of a run showed (its live ``.jsonl`` or shipped ``.jsonl.gz``), so a
    resumed run and the exact kernel use the run's own prompts, never a refit."""
    for path in (store, store.with_suffix(".jsonl.gz")):
        if path.exists():
            return symbolic.recorded_scores(JsonlStore(path, read_only=True))
    return {}


def run(calls: int) -> None:
    agent = symbolic.SymbolicAgent(mode="constrained", scores=recorded(LIVE))
    store = JsonlStore(LIVE)
    with local_server(MODEL):
        for k in range(ROUND, calls + ROUND, ROUND):
            k = min(k, calls)
            t0 = time.time()
            recs = run_fixed_design(agent, agent.candidates, k, model=MODEL, store=store,
                                    concurrency=2, progress=False)
            c = agent.counts(recs)
            print(f"[{time.strftime('%H:%M:%S')}] round {k}/{calls}: {c!r}, escapes "
                  f"{int(c.escapes.sum())}, {time.time() - t0:.0f} s", flush=True)
    compact(LIVE, LIVE.with_suffix(".jsonl.gz"))


def free(calls: int) -> None:
    """The Letter's protocol: free replies, prompts uniform over the expressions found so far."""
    agent = symbolic.SymbolicAgent(mode="free", scores=recorded(FREE))
    start = symbolic.parse_expression("param1*times+param2", agent.variable).text
    store = JsonlStore(FREE)
    recs = run_letter_schedule(agent, calls, model=MODEL, store=store, start=start, seed=0)
    c = agent.counts(recs)
    print(f"{c!r}, escapes {int(c.escapes.sum())}")
    compact(FREE, FREE.with_suffix(".jsonl.gz"))


MIN_PROB = 1e-5
PARTS = 2


def part_path(i: int, suffix: str = ".npz") -> Path:
    return RUNS / f"symbolic_logprob.part{i}{suffix}"


def exact(part: int) -> None:
    """Sources ``cands[part::PARTS]`` (one process per core; resumable from a checkpoint)."""
    agent = symbolic.SymbolicAgent(mode="constrained", scores=recorded(LIVE))
    cands = list(agent.candidates)
    ek = symbolic.logprob_kernel(cands, agent, sources=cands[part::PARTS], min_prob=MIN_PROB,
                               checkpoint=part_path(part, ".ckpt.jsonl"))
    ek.save(part_path(part))
    print(f"{ek!r}; uncovered mean {ek.uncovered.mean():.4f} max {ek.uncovered.max():.4f}")


def merge() -> None:
    ek = logprob.merge([logprob.load_logprob_kernel(part_path(i)) for i in range(PARTS)],
                       info={"prompt_fn": "SymbolicAgent(mode='constrained', scores=<recorded "
                                          "in symbolic_constrained_fixed>).messages (mcycle)"})
    ek.save(EXACT)
    print(f"{ek!r}; uncovered mean {ek.uncovered.mean():.4f} max {ek.uncovered.max():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=None,
                    help=f"run the sampled design with this many calls per expression "
                         f"(shipped: {CALLS_PER_STATE})")
    ap.add_argument("--free", type=int, default=None,
                    help="run the free-mode Letter schedule with this many calls (shipped: 2000)")
    ap.add_argument("--exact-part", type=int, default=None, choices=range(PARTS),
                    help="compute one part of the exact kernel")
    ap.add_argument("--merge", action="store_true", help="merge the exact-kernel parts")
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.calls is not None:
        run(args.calls)
    if args.free is not None:
        free(args.free)
    if args.exact_part is not None:
        exact(args.exact_part)
    if args.merge:
        merge()


if __name__ == "__main__":
    main()
