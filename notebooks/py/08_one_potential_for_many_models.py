# %% [markdown]
# # 08 · One potential for many models?
#
# The Letter's boldest sentence is that LLMs learn "a class of underlying potential functions
# that may transcend different LLM architectures and prompt templates". The Letter never tests
# it: each model gets its own fit, on its own states. With **exact kernels** (every transition
# probability computed from the model's token log-probabilities, notebook 04) it becomes a
# measurement with no sampling noise: two models, two wordings of the prompt and three
# sampling temperatures, all over the same 100 words.
#
# **What you will learn**
# - how to compare two potentials on common states, with intervals, and why a correlation of
#   the potentials is not yet evidence of a shared potential;
# - the control that matters: two models that merely agree on which words are *common* have
#   correlated potentials, because a kernel that ignores its prompt has $\beta V = -\log p$;
# - what the sampling temperature does to $\beta V$ and to the gradient fraction.
#
# **The measurement.** For each kernel, the flow on every pair seen both ways,
#
# $$ y(f, g) = \log \frac{T(g \leftarrow f)}{T(f \leftarrow g)}, $$
#
# is split into its gradient $\beta V(f) - \beta V(g)$ (unweighted least squares: an exact
# kernel has no noise to weight by) and the rest (`dbnb.hodge`). For kernels $A$ and $B$ on
# common states we report
#
# - Pearson and Spearman correlations of $V_A$ and $V_B$, with 95 % intervals (Fisher $z$; a
#   bootstrap over states, i.e. over which words happen to be in the vocabulary);
# - **cross-prediction**: $R^2$ of $y_B \approx s\,[V_A(f) - V_A(g)]$, one scale $s$ fitted
#   ($s = \beta_B/\beta_A$), beside $B$'s own gradient fraction;
# - the **popularity-only control**: $R^2$ of $y_B$ under $V_{\text{pop}} = -\log p_B$, where
#   $p_B(g)$ is the mean of $T_B(g \leftarrow f)$ over the other prompts;
# - **beyond popularity**: the correlation of what each potential holds beyond its own
#   kernel's popularity (residuals of $V_X$ regressed on $-\log p_X$).
#
# A potential that "transcends models" should show in the last number, not only in the first.

# %%
SOURCE = "shipped"  # the exact kernels ship in data/runs; the Letter's files hold none
N_BOOT = 2000  # bootstrap resamples of the states for the correlation intervals
MY_KERNELS = {}  # try it yourself: label -> .npz from `dbnb kernel word --out ...`

# %%
import matplotlib.pyplot as plt
import pandas as pd

import dbnb
from dbnb import comparison, plots
from dbnb.llm.logprob import describe, load_logprob_kernel

src = dbnb.sources.Sources(SOURCE)
kernels = dict(src.comparison_kernels)
kernels.update({label: load_logprob_kernel(path) for label, path in MY_KERNELS.items()})
if kernels:
    print(describe(kernels).round({"max_uncovered": 5, "walk_hours": 2}).to_string())
else:
    print(f"no exact kernels in source {SOURCE!r}: this notebook needs the shipped ones")

# %% [markdown]
# Every kernel covers the same 100 words as replies; `sources` says for how many of them the
# walk has been run as prompts (a walk is one model call per token node: hours of CPU).
# `max_uncovered` is the largest probability mass the walk did not reach for any prompt (rare
# tokenisations below the cut-off `min_prob`): the entries are exact to about that.
#
# The two wordings of the prompt, for one word (same content, same examples, same words):

# %%
from dbnb.agents.word import paraphrase_messages, prompt_messages

for name, fn in [("Letter", prompt_messages), ("paraphrase", paraphrase_messages)]:
    print(f"--- {name}\n{fn('SERVICES')[0]['content']}\n")

# %% [markdown]
# ## 1. Two architectures: SmolLM2-135M and Gemma 3 270M
#
# Two models trained by different groups on different data, with different tokenisers and
# chat templates. **What to look for:** the Pearson correlation with its interval; then whether
# SmolLM2's potential predicts Gemma's pair log-ratios *better than Gemma's own popularity
# does*, and the correlation beyond popularity.

# %%
cmp = src.comparisons
if "models" in cmp:
    models = cmp["models"][0]
    print(models)
    plots.fig_potential_comparison(models)
    plt.show()
else:
    print(f"no model comparison in source {SOURCE!r} (needs data/runs/word_logprob100_gemma3.npz)")

# %%
def verdict(c: comparison.Comparison) -> None:
    """Print the comparison's numbers in words."""
    r, lo, hi = c.beyond_popularity
    print(f"{c.names[0]} vs {c.names[1]} on {len(c.states)} states: "
          f"Pearson {c.pearson[0]:.2f} [{c.pearson[1]:.2f}, {c.pearson[2]:.2f}]")
    print(f"  R2 of {c.names[1]}'s log-ratios: own potential {c.r2_own:.3f}, "
          f"{c.names[0]}'s potential {c.r2_cross:.3f}, popularity only {c.r2_popularity:.3f}")
    print(f"  beyond popularity: r = {r:.2f} [{lo:.2f}, {hi:.2f}]"
          + ("  (interval excludes 0)" if lo > 0 or hi < 0 else "  (interval includes 0)"))


if "models" in cmp:
    verdict(models)
else:
    print(f"no model comparison in source {SOURCE!r}")

# %% [markdown]
# ## 2. Two wordings of the prompt, one model
#
# Same model (SmolLM2), same words, same examples; only the wording of the instruction
# changes. If the potential is a property of the model's "idea" of the task, most of it should
# survive. **What to look for:** the same three numbers as above.

# %%
if "prompts" in cmp:
    prompts = cmp["prompts"][0]
    verdict(prompts)
    plots.fig_potential_comparison(prompts)
    plt.show()
else:
    print(f"no prompt comparison in source {SOURCE!r} "
          "(needs data/runs/word_logprob100_paraphrase.npz)")

# %% [markdown]
# ## 3. Temperature
#
# Sampling at temperature $\tau$ divides every logit by $\tau$. For a reply made of one token,
# $T_\tau(g \leftarrow f) \propto T_1(g \leftarrow f)^{1/\tau}$, the normaliser depends on the
# prompt only, and so
#
# $$ y_\tau(f, g) = \frac{y_1(f, g)}{\tau} + c(f) - c(g), $$
#
# still a gradient: detailed balance survives any temperature, with $\beta V_\tau \approx
# \beta V_1/\tau$ plus a per-prompt normaliser. Words of several tokens break the exact power
# law. All three kernels come from **one** walk, re-weighted per temperature (the walk stores
# the logits of every node it visits; its cut-off is applied at every temperature asked for).
# **What to look for:** the fitted scale $s$ against $1/\tau$, and whether the gradient
# fraction (`r2_own_B`) holds.

# %%
if "temperatures" in cmp:
    temps = cmp["temperatures"]
    fig, axes = plt.subplots(1, len(temps), figsize=(4.6 * len(temps), 4.3),
                             layout="constrained")
    for c, ax in zip(temps, axes, strict=True):
        plots.fig_potential_comparison(c, ax=ax)
    plt.show()
    t = comparison.comparison_table(temps).set_index("B")
    t["1/T"] = [1 / kernels[b].info.get("temperature", 1.0) for b in t.index]
    print(t[["states", "scale", "1/T", "r2_own_A", "r2_own_B", "r2_cross", "pearson"]]
          .round(3).to_string())
else:
    print(f"no temperature comparison in source {SOURCE!r} "
          "(needs data/runs/word_logprob100_T0.5.npz, _T1.npz and _T2.npz)")

# %% [markdown]
# ## 4. Every comparison in one table
#
# This is `dbnb reproduce`'s `tableE3_comparisons`. `states` is the number of common states in
# both kernels' largest two-way components; `pairs_B` the pairs behind $B$'s $R^2$.

# %%
everything = [c for group in cmp.values() for c in group]
if everything:
    table = comparison.comparison_table(everything)
    cols = ["A", "B", "states", "pairs_B", "pearson", "pearson_lo", "pearson_hi", "spearman",
            "scale", "r2_own_B", "r2_cross", "r2_popularity", "beyond_popularity",
            "beyond_popularity_lo", "beyond_popularity_hi"]
    print(table[cols].round(3).to_string(index=False))
    plots.fig_comparison_summary(everything)
    plt.show()
else:
    print(f"no comparison in source {SOURCE!r}")

# %% [markdown]
# ## Try it yourself
#
# Make the exact kernel of another local model (or another prompt) over the same words and
# put it in `MY_KERNELS` at the top, e.g.
#
# ```bash
# dbnb kernel word --model local/gemma3-270m --vocab 100 --min-prob 1e-5 --out mine.npz
# ```
#
# then compare it with SmolLM2 (the walk is resumable: stop it and rerun the same command).

# %%
for label in MY_KERNELS:
    verdict(comparison.compare(kernels["SmolLM2"], kernels[label], names=("SmolLM2", label),
                               n_boot=N_BOOT))

# %% [markdown]
# ## Takeaway
#
# - **A change of wording keeps the potential.** SmolLM2's potentials under the Letter's prompt
#   and under the paraphrase agree well beyond popularity, and one potential predicts the other
#   prompt's pair log-ratios with most of the accuracy of its own fit.
# - **A change of architecture does not, on these words.** SmolLM2's and Gemma's potentials
#   correlate only moderately, and Gemma's log-ratios are predicted far better by Gemma's own reply popularity
#   than by SmolLM2's potential, and what the two potentials hold beyond popularity correlates
#   weakly, with an interval that reaches 0. What the two models share is mostly *which words
#   they like to say*, the trivial part of detailed balance (notebook 07).
# - **Temperature** rescales $\beta V$ (the fitted scale $s$ against $1/\tau$ in section 3)
#   and leaves the kernel about as close to a gradient as at $\tau = 1$.
# - Every number above comes with the size of the common state set: where a walk has covered
#   only part of the prompts (`sources` in the first table), the intervals are wide and say so.
#   `tests/test_shipped.py` checks these statements against the shipped kernels, so a rerun
#   that changed them would fail.
#
# **Next:** back to [00 · Overview](00_overview.ipynb), or the statistics behind the verdicts
# in [07 · Is it really detailed balance?](07_is_it_detailed_balance.ipynb).
#
# ## Exercises
# 1. **Common words only.** Restrict both kernels to the 50 most frequent words
#    (`words = list(kernels["SmolLM2"].sources[:50])`, then
#    `comparison.kernel_frame(k).loc[words, words]` for each) and compare again. Which numbers
#    move, and does the interval say they should?
# 2. **A control of your own.** Build a popularity-only kernel from Gemma's reply
#    popularity (every column the same vector $p(g)$, e.g. with `pandas.DataFrame`) and
#    compare SmolLM2 with it. How close does it come to the real Gemma comparison?
#
# <details><summary><b>Solution</b> (click to open)</summary>
#
# 2. With `k = kernels["Gemma 3"]` and `P = comparison.kernel_frame(k)`:
#
# ```python
# import numpy as np
# p = P.sum(axis=1) / (len(P) - 1)               # mean reply probability (diagonal = self)
# pop = pd.DataFrame(np.tile(p.to_numpy()[:, None], len(P)) * 0.9, index=P.index,
#                    columns=P.columns)
# comparison.compare(kernels["SmolLM2"], pop, names=("SmolLM2", "Gemma popularity"))
# ```
#
#    Its Pearson correlation with SmolLM2 is close to the real comparison's: popularity alone
#    makes potentials agree. Its "beyond popularity" is undefined-to-zero by construction.
# </details>
