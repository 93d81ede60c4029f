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
# **What you will learn**
# - the Letter's claim and its headline numbers, on data that ship with `dbnb` (the Letter's
#   Claude-4 table, and runs of a local LLM, SmolLM2-135M-Instruct, made with `dbnb` itself);
# - where each step is taken apart in the notebooks that follow.
#
# The notebooks:
#
# | | notebook | what it does |
# |---|---|---|
# | 00 | this overview | the claim and the headline numbers |
# | 01 | [sampling](01_sampling.ipynb) | the word agent, the prompt, the response store, a local model |
# | 02 | [transition matrices](02_transition_matrices.ipynb) | counts, $N_0$, the kernel estimators |
# | 03 | [least action](03_least_action.ipynb) | the potential as the minimiser of a convex action |
# | 04 | [detailed balance](04_detailed_balance.ipynb) | pairs, triplets, one-way pairs, with controls |
# | 05 | [action as a scale](05_action_as_scale.ipynb) | how directional an agent is (Eq. 28) |
# | 06 | [the symbolic agent](06_symbolic_agent.ipynb) | the Letter's second agent, fitting expressions |
# | 07 | [is it detailed balance?](07_is_it_detailed_balance.ipynb) | calibrated tests, the popularity control, verdicts |
# | 08 | [one potential for many models?](08_one_potential_for_many_models.ipynb) | exact kernels of two models, two prompts, three temperatures compared |
#
# Words used throughout (escape, SCC, upstream / downstream, gauge, exact vs nominal $N_0$, least
# action, detailed balance, popularity-only kernel, Hodge gradient fraction) are defined in the
# [glossary](../docs/glossary.md).

# %%
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store

# %%
import numpy as np

import dbnb
from dbnb import diagnostics, plots

# %% [markdown]
# ## Claude-4: five words, one potential (Table II, Eq. 22)

# %%
src = dbnb.sources.Sources(SOURCE)
claude = src.claude  # the authors' Claude file when SOURCE holds it, else the Letter's Table II
cfit = src.claude_fit  # least action with Eq. 18's N0 = 4000
print(src.caption("claude"))
dbnb.letter.compare(
    {s: (dbnb.letter.EQ22_CLAUDE[s], round(float(cfit.potential[s]), 2)) for s in claude.states}
)

# %%
plots.fig02_transition_diagram(cfit);

# %% [markdown]
# *What to look for:* the three words of the main component sit at finite levels of $\beta V$,
# BUZZY and TURKEY above a break (at $+\infty$); thick arrows point downhill.

# %% [markdown]
# ## A local 135M model, 20,000 calls
# The word agent asks for a new word whose letters (A = 1, ..., Z = 26) sum to 100: the prompt
# says "letters add up to 100%", the Letter's puzzle phrasing (ATTITUDE = 1+20+20+9+20+21+4+5
# = 100). A model this
# small almost never writes such a word freely, so the shipped run restricts its reply to the 200
# most frequent valid English words with a grammar, and prompts each word 100 times; every call
# is recorded, so $N_0$ is exact.

# %%
if not src.available("words"):
    print(f"no word-agent data in source {SOURCE!r}; this section reads the shipped run")
    src = dbnb.sources.Sources("shipped")
words = src.words
fit = src.words_fit  # the authors' estimator for their files, dbnb's otherwise
pc, tc = diagnostics.pairs(fit), diagnostics.triplets(fit)
dist = diagnostics.potential_distribution(fit)
print(words)
print(fit)

# %%
plots.fig_pairs(pc);

# %% [markdown]
# *What to look for:* the points follow the diagonal only loosely and sit in horizontal rows
# (pairs seen once or twice each way); notebook 04 shows a reversible chain sampled as sparsely
# looks the same, and leads with the exact kernel instead.

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

# %% [markdown]
# ## Takeaway
# The pipeline (sample, count, fit a potential, check detailed balance) reproduces the Letter's
# Claude-4 potential exactly and runs end to end on a small local model; how strong the evidence
# for detailed balance is, is the subject of notebooks 04 and 07.
#
# **Next:** [01 · Sampling](01_sampling.ipynb).
