"""Record in the shipped symbolic stores the MSE each prompt showed (``meta["mse"]``).

Usage::

    python scripts/record_symbolic_scores.py [--check]

The symbolic agent's prompt prints the fitted MSE of the current expression. The runs shipped
before ``meta["mse"]`` existed hold that number only inside the prompt text, so replaying them
depended on refitting every expression to the same four digits, which an ill-conditioned least
squares problem does not do across library versions and CPUs. This script reads the printed
numbers back from each record's prompt (``mean squared error X (score S``), takes the middle of
the MSE interval that prints as both ``X`` (4 significant digits) and ``S`` (one decimal),
checks that the agent with that recorded MSE renders the stored prompt character for character,
and rewrites the store with it in ``meta["mse"]`` (keys, messages and replies unchanged; the
record's key does not cover ``meta``). Idempotent: records that already hold ``meta["mse"]``
are left as they are. ``--check`` only reports.
"""

from __future__ import annotations

import argparse
import re
from functools import cache
from pathlib import Path

import numpy as np

from dbnb.agents.symbolic import SymbolicAgent, mse_to_score
from dbnb.llm import JsonlStore, MemoryStore, compact

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
STORES = ("symbolic_constrained_fixed.jsonl.gz", "symbolic_free_letter.jsonl.gz")
_SHOWN = re.compile(r"with mean squared error (\S+) \(score (\S+), ")
_UNEVALUATED = "with its fit could not be evaluated."


@cache
def shown_mse(content: str) -> float | None:
    """The MSE a symbolic prompt printed (``None``: "could not be evaluated")."""
    m = _SHOWN.search(content)
    if m:
        x, score = m.group(1), m.group(2)
        # MSE values that print as x at 4 significant digits ...
        half = 0.5 * 10.0 ** (np.floor(np.log10(float(x))) - 3)
        grid = np.linspace(float(x) - half, float(x) + half, 20001)[1:-1]
        ok = [f"{v:.4g}" == x and f"{float(mse_to_score(v)):.1f}" == score for v in grid]
        # ... and whose score prints as the prompt's: the middle of that set
        if not any(ok):
            raise ValueError(f"no MSE prints as {x} with score {score}")
        inside = grid[np.flatnonzero(ok)]
        return float(f"{0.5 * (inside[0] + inside[-1]):.10g}")
    if _UNEVALUATED in content:
        return None
    raise ValueError(f"no MSE in prompt: {content[:200]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report only, write nothing")
    args = ap.parse_args()
    for name in STORES:
        path = RUNS / name
        records = list(JsonlStore(path, read_only=True))
        scores = {}
        for r in records:
            f = r["meta"]["prompt"]
            v = r["meta"]["mse"] if "mse" in r["meta"] else shown_mse(r["messages"][0]["content"])
            if scores.setdefault(f, v) != v:
                raise SystemExit(f"{name}: prompts of {f!r} show {scores[f]!r} and {v!r}")
        agent = SymbolicAgent(scores=scores)
        for r in records:
            if agent.messages(r["meta"]["prompt"]) != r["messages"]:
                raise SystemExit(f"{name}: recorded MSE does not rebuild the prompt of "
                                 f"{r['meta']['prompt']!r}")
        refit = SymbolicAgent()
        moved = [f for f in scores if refit.messages(f) != agent.messages(f)]
        todo = sum("mse" not in r["meta"] for r in records)
        print(f"{name}: {len(records)} records, {len(scores)} prompts; {todo} records to "
              f"annotate; {len(moved)} prompts a refit here would change: {moved}")
        if args.check or not todo:
            continue
        out = [{**r, "meta": {**r["meta"], "mse": scores[r["meta"]["prompt"]]}} for r in records]
        compact(MemoryStore(out), path)
        print(f"  rewrote {path}")


if __name__ == "__main__":
    main()
