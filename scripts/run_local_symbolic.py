"""Regenerate the shipped local-model runs of the symbolic-regression agent (data/runs/).

Run 1: constrained symbolic agent (GBNF grammar = the 121 expressions of
       ``symbolic.default_candidates``), fixed design, CALLS_PER_STATE calls per expression on
       ``mcycle`` (MASS::mcycle, shipped in data/), SmolLM2-135M-Instruct, temperature 1, no
       truncation. Calls go out in rounds of one call per expression (sample index k for every
       expression, then k + 1), so consecutive calls never repeat a prompt (llama-cpp-python's
       prompt cache would otherwise evaluate the repeated prompt's last token alone, which
       changes the logits; see dbnb.exact), an interrupted run is balanced, and a rerun
       resumes from the store.
Exact: the kernel P(g | f) of the same grammar-constrained sampler over the same expressions,
       from token log-probabilities (``symbolic.exact_kernel``), saved as
       data/runs/symbolic_exact.npz (candidates, prob, logprob, uncovered, info JSON).

Usage:

    python scripts/run_local_symbolic.py [--only run|exact] [--calls N]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dbnb.agents import symbolic
from dbnb.agents.run import local_server, run_fixed_design
from dbnb.store import JsonlStore, compact

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "data" / "runs"
MODEL = "local/smollm2"
CALLS_PER_STATE = 60
ROUND = 1
LIVE = RUNS / "symbolic_constrained_fixed.jsonl"
EXACT = RUNS / "symbolic_exact.npz"


def run(calls: int) -> None:
    agent = symbolic.SymbolicAgent(mode="constrained")
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


def exact(chunk: int = 5) -> None:
    """The exact kernel, CHUNK prompts at a time; the file is rewritten after every chunk."""
    agent = symbolic.SymbolicAgent(mode="constrained")
    cands = list(agent.candidates)
    t0 = time.time()
    parts, expansions = [], None
    for start in range(0, len(cands), chunk):
        ek = symbolic.exact_kernel(cands, agent, sources=cands[start:start + chunk],
                                   expansions=expansions, progress=False, refine_sources=1,
                                   refine_threshold=3e-3, refine_rounds=3)
        expansions = ek.info["expansions"]
        parts.append(ek)
        prob = np.concatenate([p.prob for p in parts], axis=1)
        uncovered = np.concatenate([p.uncovered for p in parts])
        info = {**ek.info, "n_nodes": ek.n_nodes,
                "prompt_fn": "SymbolicAgent(mode='constrained').messages (mcycle)"}
        info.pop("prompt_tokens", None)
        np.savez_compressed(
            EXACT, candidates=np.array(cands), sources=np.array(cands[:prob.shape[1]]),
            prob=prob, logprob=np.concatenate([p.logprob for p in parts], axis=1),
            uncovered=uncovered, seconds=np.concatenate([p.seconds for p in parts]),
            info=np.array(json.dumps(info)),
        )
        print(f"[{time.strftime('%H:%M:%S')}] exact kernel: {prob.shape[1]}/{len(cands)} "
              f"prompts, {ek.n_nodes} tree nodes, uncovered mass mean {uncovered.mean():.4f} "
              f"max {uncovered.max():.4f}, {time.time() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["run", "exact"], default=None)
    ap.add_argument("--calls", type=int, default=CALLS_PER_STATE)
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "run"):
        run(args.calls)
    if args.only in (None, "exact"):
        exact()


if __name__ == "__main__":
    main()
