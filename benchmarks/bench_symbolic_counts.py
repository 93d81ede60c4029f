"""Counts of the shipped symbolic store: reading each reply's fit from the records
(:func:`dbnb.agents.symbolic.trusted_scores`) against refitting every expression.

Run ``python benchmarks/bench_symbolic_counts.py``: CPU seconds of both ways, and whether the
counts are identical (they must be).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from dbnb.agents import symbolic as S
from dbnb.agents.run import counts_from_store
from dbnb.datasets import data_dir
from dbnb.sources import SYM_RUN


def _timed(trusted):
    saved = S.agent.trusted_scores
    if trusted is not None:
        S.agent.trusted_scores = trusted
    try:
        t = time.process_time()
        counts = counts_from_store(data_dir() / SYM_RUN, agent=S.SymbolicAgent(mode="constrained"))
        return counts, time.process_time() - t
    finally:
        S.agent.trusted_scores = saved


def main() -> None:
    fast, t_fast = _timed(None)
    slow, t_slow = _timed(lambda records, agent: {})
    same = (fast.states == slow.states
            and np.array_equal(np.asarray(fast.matrix.todense()), np.asarray(slow.matrix.todense()))
            and np.array_equal(fast.escapes, slow.escapes)
            and np.array_equal(fast.calls, slow.calls))
    pd.testing.assert_frame_equal(fast.metadata, slow.metadata)
    print(f"{SYM_RUN}: {len(fast.states)} states, {int(np.sum(fast.calls))} calls")
    print(f"  records' fits: {t_fast:.2f} CPU-s; refit every expression: {t_slow:.2f} CPU-s; "
          f"identical counts: {same}")


if __name__ == "__main__":
    main()
