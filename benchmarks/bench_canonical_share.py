"""Benchmark: how much probability the canonical tokenisation alone carries (SmolLM2).

Usage::

    python benchmarks/bench_canonical_share.py [--words 100] [--prompts 3] [--min-prob 1e-5]

For the word agent's Letter prompt (``dbnb.agents.word.PROMPTS["letter"]``) over the shipped
vocabulary, the first ``--prompts`` words as prompts: the share of each candidate's exact
probability (:func:`dbnb.llm.logprob.logprob_replies`) that its canonical tokenisation carries
(:func:`dbnb.llm.logprob.canonical_share`). That share is what a scoring-only backend, which
sends text and lets the server tokenise it (:func:`dbnb.llm.logprob.served_replies`), can
recover. With ``--min-prob > 0`` the exact probability is bracketed by the walk's bounds and the
share by ``[share_low, share]``. Prints min / median / mass-weighted mean of the share.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dbnb.agents import word
from dbnb.llm.logprob import canonical_share


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=100)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--min-prob", type=float, default=1e-5)
    args = ap.parse_args()
    vocab = list(word.vocabulary(args.words))
    t0 = time.perf_counter()
    df = canonical_share(vocab, word.PROMPTS["letter"], sources=vocab[: args.prompts],
                         min_prob=args.min_prob)
    secs = time.perf_counter() - t0
    print(f"{len(vocab)} words, prompts {vocab[: args.prompts]}, min_prob {args.min_prob:g}: "
          f"{secs:.0f} s")
    ok = df[df["p_exact"] > 0]  # entries the walk reached (prob 0: below the cut-off)
    print(f"  {len(ok)} of {len(df)} entries have p_exact > 0")
    for col, mass in (("share", "p_exact"), ("share_low", "p_upper")):
        s = ok[col].to_numpy()
        print(f"  {col:9s}: min {s.min():.3g}  median {np.median(s):.4f}  mass-weighted mean "
              f"(sum p_canonical / sum {mass}) {ok['p_canonical'].sum() / ok[mass].sum():.4f}")
    per = df.groupby("prompt", sort=False).agg(p_canonical=("p_canonical", "sum"),
                                               p_exact=("p_exact", "sum"))
    print("  per prompt, sum of canonical terms / sum of exact probabilities:")
    for f, r in per.iterrows():
        print(f"    {f}: {r.p_canonical:.4f} / {r.p_exact:.4f} = {r.p_canonical / r.p_exact:.4f}")
    one = df[df["n_tokens"] == 1]
    print(f"  candidates that are one token: {one['candidate'].nunique()}; their median share "
          f"{np.median(one['share']) if len(one) else float('nan'):.4f}")
    low = df.nsmallest(5, "share")[["prompt", "candidate", "n_tokens", "p_canonical",
                                    "p_exact", "share"]]
    print(low.to_string(index=False))


if __name__ == "__main__":
    main()
