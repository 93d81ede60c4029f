"""Exact vs. sampled kernel of the local SmolLM2 word agent (constrained mode).

Usage::

    python scripts/run_local_exact.py [--words 30] [--calls 100] [--only exact|sample|compare]

Three steps, each skipped when its output exists (delete the file to redo it):

1. ``data/runs/word_logprob{N}.npz``: the exact kernel
   (:func:`dbnb.agents.word.word_logprob_kernel`, ``prompt_mode="fresh"``) over the ``N`` most
   frequent words of the shipped vocabulary, every one of them a source;
2. ``data/runs/word_constrained_rr{N}.jsonl(.gz)``: a fixed-design run of
   ``WordAgent(vocabulary(N), mode="constrained")``, ``--calls`` calls per word, in
   round-robin order (consecutive prompts differ, so every call sees the fresh-prompt
   distribution), model ``local/smollm2``; compacted to ``.jsonl.gz``;
3. the comparison: :func:`dbnb.diagnostics.compare_to_exact` of the sampled pair log-ratios, and a
   per-transition check ``z = (N - N0 T) / sqrt(N0 T (1 - T))`` over transitions with
   ``N0 T >= 5`` plus a per-source chi^2 (categories with ``N0 T < 5`` merged, self-replies a
   category of their own).

A server already running can be used by exporting ``DBNB_LOCAL_API_BASE``; otherwise
:func:`dbnb.agents.run.run_fixed_design` starts one for the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from dbnb import diagnostics
from dbnb.agents import word
from dbnb.agents.run import run_fixed_design
from dbnb.agents.word import WordAgent
from dbnb.counts import TransitionCounts
from dbnb.kernels import estimate_kernel
from dbnb.llm import JsonlStore, compact
from dbnb.llm.logprob import LogprobKernel, load_logprob_kernel

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
MODEL = "local/smollm2"


def step_exact(words: list[str], path: Path) -> LogprobKernel:
    """Compute (or load) the exact kernel over ``words``, all of them sources."""
    if path.exists():
        k = load_logprob_kernel(path)
        if list(k.states) != words or list(k.sources) != words:
            raise ValueError(f"{path} holds other states; delete it to recompute")
        print(f"loaded {path.name}: {k!r}", flush=True)
        return k
    t0 = time.perf_counter()
    k = word.word_logprob_kernel(words, sources=words, prompt_mode="fresh", progress=True)
    k.save(path)
    print(f"exact kernel: {k!r}, wall {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return k


def step_sample(words: list[str], calls: int, path: Path) -> list[dict]:
    """The fixed-design constrained run (replayed from the store where done)."""
    agent = WordAgent(words, mode="constrained")
    t0 = time.perf_counter()
    store = JsonlStore(path)
    recs = run_fixed_design(agent, words, calls, model=MODEL, store=store, concurrency=2)
    n_err = sum(1 for r in recs if r.get("error"))
    print(f"sampled {len(recs)} calls ({n_err} failed) in {time.perf_counter() - t0:.0f} s "
          f"-> {path}", flush=True)
    gz = path.with_name(path.name + ".gz")
    n = compact(path, gz)
    print(f"compacted {n} records -> {gz}", flush=True)
    return recs


def _observed(counts: TransitionCounts, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``obs[g, f]`` over ``words`` (self-replies on the diagonal) and ``N0[f]``."""
    idx = pd.Index(counts.states).get_indexer(words)
    if (idx < 0).any():
        missing = [w for w, i in zip(words, idx, strict=True) if i < 0]
        raise ValueError(f"no calls recorded from {missing[:5]}")
    m = counts.matrix.toarray()[np.ix_(idx, idx)].astype(float)
    self_ = counts.metadata["escape_same_as_prompt"].to_numpy()[idx].astype(float)
    np.fill_diagonal(m, self_)
    return m, counts.calls[idx].astype(float)


def per_transition(exact: LogprobKernel, counts: TransitionCounts) -> dict:
    """z per transition with ``N0 T >= 5`` and a chi^2 per source, against the exact kernel."""
    words = list(exact.sources)
    sidx = [exact.states.index(w) for w in words]
    t = exact.prob[sidx, :]  # T[g, f] over the sources, self included
    obs, n0 = _observed(counts, words)
    other = n0 - obs.sum(axis=0)  # replies outside the sources / other escapes
    e = t * n0
    big = e >= 5
    z = (obs[big] - e[big]) / np.sqrt(e[big] * (1 - t[big]))
    chi2, dof = 0.0, 0
    for j in range(len(words)):
        b = big[:, j]
        o2 = np.append(obs[b, j], obs[~b, j].sum() + other[j])
        e2 = np.append(e[b, j], e[~b, j].sum() + n0[j] * max(0.0, 1 - t[:, j].sum()))
        if e2[-1] < 1e-9:
            o2, e2 = o2[:-1], e2[:-1]
        chi2 += float(((o2 - e2) ** 2 / e2).sum())
        dof += len(e2) - 1
    return {
        "transitions (N0 T >= 5)": int(big.sum()),
        "mean z": float(z.mean()),
        "std z": float(z.std()),
        "max |z|": float(np.abs(z).max()),
        "|z| < 1": float(np.mean(np.abs(z) < 1)),
        "|z| < 2": float(np.mean(np.abs(z) < 2)),
        "sum z^2 / n": float(np.mean(z**2)),
        "chi2": chi2,
        "dof": dof,
        "chi2/dof": chi2 / dof,
        "p": float(stats.chi2.sf(chi2, dof)),
        "self-reply obs": float(np.trace(obs) / n0.sum()),
        "self-reply exact": float(np.trace(e) / n0.sum()),
        "outside-vocabulary replies": float(other.sum()),
    }


def step_compare(exact: LogprobKernel, words: list[str], path: Path) -> None:
    agent = WordAgent(words, mode="constrained")
    recs = [r for r in JsonlStore(path, read_only=True)
            if (r.get("meta") or {}).get("schedule") == "fixed"]
    counts = agent.counts(recs, source=path.name)
    sampled = estimate_kernel(counts, "exact")
    cmp = diagnostics.compare_to_exact(sampled, exact.to_transition_kernel())
    pd.set_option("display.width", 120)
    print("\n== compare_to_exact (pair log-ratios) ==")
    print(cmp.summary().to_string())
    print(cmp.by_min_count().to_string())
    print("\n== per-transition check ==")
    res = per_transition(exact, counts)
    for k, v in res.items():
        print(f"{k:>28}: {v:.4g}" if isinstance(v, float) else f"{k:>28}: {v}")
    print("\n" + json.dumps({"exact_info": {k: exact.info[k] for k in (
        "model_file", "llama_cpp_version", "prompt_mode", "seconds") if k in exact.info}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=30)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--only", choices=("exact", "sample", "compare"))
    args = ap.parse_args()
    if args.words < 2 or args.calls < 1:
        raise ValueError("--words must be >= 2 and --calls >= 1")
    words = list(word.vocabulary(args.words))
    npz = RUNS / f"word_logprob{args.words}.npz"
    jl = RUNS / f"word_constrained_rr{args.words}.jsonl"
    if args.only == "sample":
        step_sample(words, args.calls, jl)
        return
    exact = step_exact(words, npz)
    if args.only == "exact":
        return
    if args.only is None:
        step_sample(words, args.calls, jl)
    step_compare(exact, words, jl)


if __name__ == "__main__":
    main()
