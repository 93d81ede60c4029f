# %% [markdown]
# # 00 · Overview: detailed balance in LLM-driven agents
#
# Song, Cao, Luo & Zhu (arXiv:2512.10047) treat an LLM-driven agent as a Markov chain: a state
# $f$ (a word, a formula) goes to a new state $g$ through one LLM call, with probability
# $T(g\leftarrow f)$. Their claim: the measured transitions obey **detailed balance**,
#
# $$ \log\frac{T(g\leftarrow f)}{T(f\leftarrow g)} \approx \beta V(f) - \beta V(g), $$
#
# for a potential $V$ found by minimising a convex action (least action). The LLM behaves as if
# it had learned a potential over states, not a set of rules.
#
# This notebook shows every headline number in a few minutes, on data that ship with `dbnb`:
# the Letter's Claude-4 table, and real runs of a real local LLM (SmolLM2-135M-Instruct) made with
# `dbnb` itself. The next notebooks take each step apart:
# 01 sampling, 02 transition matrices, 03 least action, 04 detailed balance, 05 action as a scale,
# 06 the symbolic agent, 07 is it really detailed balance? (calibrated tests, error bars, the
# popularity-only control, the verdict on every shipped data set).

# %%
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store

# %%
import numpy as np

import dbnb
from dbnb import diagnostics, plots

# %% [markdown]
# ## Claude-4: five words, one potential (Table II, Eq. 22)

# %%
claude = dbnb.datasets.claude4_table2()
cfit = dbnb.fit_potential(claude)
dbnb.letter.compare(
    {s: (dbnb.letter.EQ22_CLAUDE[s], round(float(cfit.potential[s]), 2)) for s in claude.states}
)

# %%
plots.fig02_transition_diagram(cfit);

# %% [markdown]
# ## A local 135M model, 20,000 calls
# The word agent asks for a new word whose letters (A = 1, ..., Z = 26) sum to 100. A model this
# small almost never writes such a word freely, so the shipped run restricts its reply to the 200
# most frequent valid English words with a grammar, and prompts each word 100 times; every call
# is recorded, so $N_0$ is exact.

# %%
src = dbnb.sources.Sources(SOURCE)
words = src.words
fit = dbnb.fit_potential(words)
pc, tc = diagnostics.pairs(fit), diagnostics.triplets(fit)
dist = diagnostics.potential_distribution(fit)
print(words)
print(fit)

# %%
plots.fig_pairs(pc);

# %% [markdown]
# ## Headline numbers, side by side
# The Letter's numbers are for GPT-5 Nano (word agent, 645 states found freely) and for the
# IdeaSearchFitter agent; ours for SmolLM2-135M on a fixed 200-word vocabulary. Counts differ by
# design; the checks are the same code.

# %%
L = dbnb.letter.headline["words_gpt5nano"]
dbnb.letter.compare(
    {
        "states": (645, words.n_states),
        "samples": (19968, words.n_samples),
        "closed triplets": (L["triplets"], tc.n_triplets),
        "pairs within 1 sigma": ("(not reported)", f"{pc.within_1sigma:.0%}"),
        "pairs within 2 sigma": ("(not reported)", f"{pc.within_2sigma:.0%}"),
        "sigma of beta V": (L["sigma"], round(dist.sigma, 2)),
        "min. action (exp)": (0.195, round(fit.action, 3)),
        "expected min. action exp(s^2) erfc(s)": (0.227, round(dist.expected_action, 3)),
    }
)
