# %% [markdown]
# # 06 · The symbolic-fitting agent (the Letter's IdeaSearchFitter experiment)
#
# In the Letter's second agent a state is a *fitting expression* with placeholders
# `param1..param9`; one LLM call turns an expression (shown with its fit quality) into a new one.
# The Letter ran IdeaSearchFitter (16 LLMs) on PMLB's `nikuradse_2` and found 7,484 states and
# 50,228 transitions (Table III), a broad potential ($\sigma = 4.37$), 69.6 % of strong
# transitions going down in $V$ (Fig. 5), and an explicit potential formula over expression
# features (Supplement E).
#
# Here the same measurement runs on a model anyone can run. Offline, the data set is **mcycle**
# (head acceleration vs time after a simulated motorcycle crash, 133 rows, R package MASS,
# Silverman 1985; shipped in `data/mcycle.csv`); `nikuradse_2` is selectable through `pmlb` when a
# network is there. Expressions are parsed with a whitelist of syntax (never `eval`), fitted by
# least squares, and scored with the Letter's MSE-score relation. The 135M model rarely writes a
# valid expression freely (273 of 2,000 calls on the Letter's schedule), so the main run
# restricts its reply to 121 candidate expressions with a grammar, and for that agent the
# kernel is also computed exactly from the model's token probabilities (last section).
#
# **What you will learn**
# - how the second agent of the Letter (a state = a fitting expression) is built and scored;
# - what the checks of notebooks 03-05 give on it, sampled and with the exact kernel;
# - what the symbolic agent does *not* show, said plainly with numbers computed below.

# %%
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dbnb
from dbnb import diagnostics, plots
from dbnb.agents import symbolic
from dbnb.symdata import load_dataset

# %% [markdown]
# ## The data and a few expressions

# %%
data = load_dataset()
print(data)
LINE = "param1*times+param2"
SINE = "param1*sin(param2*times+param3)*exp(-param4*times)+param5"
curves = {
    "straight line": symbolic.fit_expression(LINE, data.x, data.y, variable=data.variable),
    "damped sine, default starts": symbolic.fit_expression(SINE, data.x, data.y,
                                                           variable=data.variable),
    "damped sine, data-scaled starts": symbolic.fit_expression(
        SINE, data.x, data.y, variable=data.variable, data_starts=8),
}
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(data.x, data.y, ".", ms=3, color="0.4", label="mcycle")
grid = np.linspace(data.x.min(), data.x.max(), 300)
for label, curve in curves.items():
    expr = symbolic.parse_expression(curve.text, data.variable)
    ax.plot(grid, expr(grid, curve.params), label=f"{label}: MSE {curve.mse:.0f}")
ax.set(xlabel="time after impact [ms]", ylabel="head acceleration [g]")
ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0));

# %% [markdown]
# *What to look for:* the orange curve. The damped sine, the shape the data seem to ask for,
# fitted from the fitter's default starting values (the fit the agent uses, and whose MSE its
# prompts show), stops in a local optimum and is **worse than the straight line**. Refitted
# from starting values scaled to the data (`data_starts=8`: the frequency from the data's
# periodogram peak, rates from the time range, amplitude and offset by linear least squares), the
# same expression has about half the line's MSE. So a state's MSE measures the expression *and*
# the optimiser; the shipped runs keep the default starts, so their recorded MSEs and prompts
# stay as they were.

# %%
line, sine, refit = (c.mse for c in curves.values())
print(f"MSE of the straight line: {line:.0f}\n"
      f"MSE of the damped sine from the default starts: {sine:.0f} "
      f"({'worse' if sine > line else 'better'} than the line)\n"
      f"MSE of the same damped sine from data-scaled starts: {refit:.0f} "
      f"({refit / line:.0%} of the line's)")

# %% [markdown]
# Model output is parsed, never executed: anything outside the grammar of the expression
# language is an escape with a reason.

# %%
for reply in ["param1*tanh(param2*times)+param3", "__import__('os').system('ls')",
              "param1*times.real", "lambda t: t"]:
    try:
        symbolic.parse_expression(reply, "times")
        print(f"valid   : {reply}")
    except symbolic.InvalidExpression as exc:
        print(f"escape  : {reply!r} -> {exc.reason}")

# %% [markdown]
# ## The run and its statistics (Table III)

# %%
src = dbnb.sources.Sources(SOURCE)
if not src.available("symbolic"):
    print(f"no symbolic-agent data in source {SOURCE!r}; this notebook reads the shipped run")
    src = dbnb.sources.Sources("shipped")
counts = src.symbolic
fit = src.symbolic_fit
print(counts)
print(fit)
pd.concat([plots.table3_statistics({"symbolic (ours)": counts}), dbnb.letter.table3()])

# %% [markdown]
# ## Free replies: the Letter's protocol, and why the main run is constrained
# With free replies (the first valid expression in the reply becomes the new state) and the
# Letter's schedule (prompt uniform over the expressions found so far, from
# `param1*times+param2`), the 135M model mostly answers with prose: the outcomes of the shipped
# 2,000 calls, by escape reason.

# %%
if src.available("symbolic_free"):
    print(src.symbolic_free)
    display(src.symbolic_free_reasons().to_frame())
else:
    print(f"no free symbolic run in source {SOURCE!r}")

# %% [markdown]
# The model piles onto a few attractor expressions: only the states that are also reached
# *from* those attractors form the main strongly connected component; the others are left and
# never re-entered, so their potential is $+\infty$ relative to it (as TURKEY and BUZZY for
# Claude-4).

# %% [markdown]
# ## Table I: example states and potentials

# %%
plots.table1_examples(fit, 5, counts=counts)

# %%
pd.Series(dbnb.letter.TABLE1_SYMBOLIC, name="beta V (Letter, Table I)").to_frame()

# %% [markdown]
# ## Fig. 5: potential against fit quality
# The most visited states, transitions with $T > 0.05$, coloured by direction in $V$.

# %%
graph = diagnostics.potential_vs_score(fit, counts.metadata["mse"])
plots.fig_potential_vs_score(graph);

# %% [markdown]
# *What to look for:* whether low $V$ (bottom) goes with low MSE (left); the arrow colours give
# the direction of each strong transition in $V$.

# %%
L = dbnb.letter.headline["ideasearchfitter"]
shares = graph.shares()
dbnb.letter.compare({
    "states in the subgraph": (L["fig5_states"], len(graph.states)),
    "share down": (L["fig5_share_down"], round(shares["down"], 4)),
    "share up": (L["fig5_share_up"], round(shares["up"], 4)),
    "share flat": (L["fig5_share_flat"], round(shares["flat"], 4)),
})

# %% [markdown]
# ## Figs. 4 and 8: pairs and closed triplets
# With most transitions one-way, few pairs are measured both ways and closed triplets need all
# six directions: the checks are thin on this run (more calls per expression would fill them).

# %%
pc, tc = diagnostics.pairs(fit), diagnostics.triplets(fit)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
plots.fig_pairs(pc, ax=axes[0], fraction=1.0)
plots.fig_triplets(tc, ax=axes[1], fraction=1.0)
fig.tight_layout()
pd.concat([pc.summary(), tc.summary()])

# %% [markdown]
# *What to look for:* how few points there are; with so few two-way pairs and triplets neither
# panel can confirm or refute detailed balance on the sampled run.

# %% [markdown]
# ## Coarse-graining
# The Letter remarks that directionality shows at several levels of coarse-graining. Merging
# expressions with the same canonical form (sympy-normalised, parameters renumbered) or the same
# skeleton (every constant replaced by `C`) and refitting:

# %%
rows = {}
for level in ("canonical", "skeleton"):
    try:
        cg = symbolic.coarse_grain(counts, level, variable=src.symbolic_variable)
    except ImportError as exc:  # sympy is an optional extra
        print(f"{level}: {exc}")
        continue
    cfit = dbnb.fit_potential(cg)
    rows[level] = {"states": cg.n_states, "main component": int((cfit.status == "main").sum()),
                   "action": cfit.action}
rows["strings"] = {"states": counts.n_states, "main component": int((fit.status == "main").sum()),
                   "action": fit.action}
pd.DataFrame(rows).T

# %% [markdown]
# ## An explicit potential (Supplement E, Table V analogue)
# Fit $\beta V(f) = \sum_k w_k x_k(f)$ over interpretable features of the expression (length,
# depth, parentheses, functions, divisions, powers, parameters, parameter-usage entropy, the
# variable, tanh / logistic / softplus shapes) by minimising the same action (Eq. 8). The weights
# are in units of $\beta V$ per standard deviation of the feature.

# %%
fp = symbolic.feature_potential(fit, variable=src.symbolic_variable)
print(fp)
fp.table().round(3)

# %%
dbnb.letter.compare({
    "parameters of the explicit potential": (L["explicit_potential_parameters"],
                                             len(fp.table())),
    "action of the explicit potential": (L["explicit_potential_action"], round(fp.action, 3)),
    "action of the free least-action fit": ("(not reported)", round(fp.action_free, 3)),
    "action of a flat potential": ("1 (K(0))", round(fp.action_flat, 3)),
})

# %% [markdown]
# ## Beyond the Letter: the exact kernel over all 121 expressions
# Sampling leaves most pairs one-way: 7,260 calls give 14 pairs and no closed triplet. For a
# local model the kernel need not be sampled. `dbnb.agents.symbolic.exact_kernel` computes
# $T(g\leftarrow f)$ of the grammar-constrained sampler from token log-probabilities: for each
# prompt it walks the tree of every tokenisation of every candidate, multiplying the
# grammar-masked softmax probabilities and summing over tokenisations. Expressions have
# millions of tokenisations, so the walk stops at partial tokenisations whose probability is
# below $10^{-5}$. The probabilities are then lower bounds, and the mass not followed is
# reported per prompt ("uncovered"). A skipped partial tokenisation can still end in any
# candidate that starts with its text, so adding its mass to those candidates gives a rigorous
# upper bound for every entry. The analysis uses the pairs whose two entries have bounds that
# agree to 0.1 in the log (a factor 1.105) and leaves the other pairs out in both directions,
# as not measured: censoring single entries would turn two-way pairs into one-way ones (an
# infinite potential difference), and the entries that fail are the small ones, so it would
# bias the rest. The walk also records what it
# would have found with a 10x higher cut-off, an empirical check of convergence. Self-replies
# are escapes, as in the sampled run.

# %%
if src.available("symbolic_logprob"):
    ek = src.symbolic_logprob
    print(ek)
    print(f"uncovered mass per prompt: mean {ek.uncovered.mean():.2%}, "
          f"max {ek.uncovered.max():.2%}; P(repeat the prompt): median "
          f"{ek.self_probability().median():.2f}")
    off = ~np.eye(len(ek.states), dtype=bool)
    bounded = ek.log_gap()[off] <= 0.1
    conv = ek.last_step()[off] <= 0.1
    print(f"transitions bounded to 0.1 in log (used): {bounded.mean():.0%}, smallest "
          f"probability {ek.prob[off][bounded].min():.1e}; last decade of the cut-off added "
          f"<= 0.1 in log: {conv.mean():.0%}")
    efit = src.symbolic_logprob_fit
    print(efit)
else:
    print(f"no exact symbolic kernel in source {SOURCE!r}")

# %% [markdown]
# The pair check (Fig. 4) uses every pair whose two directions are both bounded (74 here, against
# 14 pairs from 7,260 sampled calls; they link 45 of the 121 expressions into the main
# component), and Fig. 5 every expression of it. There are no error bars: the kernel has no
# sampling noise, and the scatter about the diagonal is the model's own departure from detailed
# balance, up to the 0.1 of the bounds. On these pairs the potential explains R^2 about 0.87 of
# the log-ratios, a little less than on words (0.93, notebook 04), and most strong transitions
# go down in V, to a pair of attractor expressions at the bottom of V (two spellings of the same
# rational function, `(param1*times+param2)/(times+param3)` and
# `(param1+param2*times)/(1+param3*times)`).

# %%
if src.available("symbolic_logprob"):
    epc = diagnostics.pairs(efit)
    egraph = src.symbolic_logprob_graph  # every expression, transitions with T > 0.05
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    plots.fig_pairs(epc, ax=axes[0], fraction=1.0, errors=False)
    plots.fig_potential_vs_score(egraph, ax=axes[1])
    fig.tight_layout()
    print(f"{epc.n_pairs} pairs, R^2 = {epc.r_squared:.3f}; Fig. 5 shares "
          f"{ {k: round(v, 3) for k, v in egraph.shares().items()} }")
else:
    print(f"no exact symbolic kernel in source {SOURCE!r}")

# %% [markdown]
# *What to look for:* the left panel has no error bars (no sampling noise); on the right, where
# the arrows end.
#
# ## What the symbolic agent does not show
# Said plainly, with the numbers of this run (printed below): (i) the model collapses onto two
# spellings of one rational function, `(param1*times+param2)/(times+param3)` and
# `(param1+param2*times)/(1+param3*times)`, the two lowest-$V$ states; (ii) $V$ is unrelated to
# how well an expression fits: the rank correlation of $\beta V$ with log MSE is about 0.02 over
# the 43 states of the sampled Fig. 5 (0.10 over the 45 of the exact kernel's), far from
# significant; (iii) only about 10 % of the "exact" kernel's off-diagonal entries are bounded
# well enough to use, so "exact" describes the method, not the coverage. And the MSE a state
# carries depends on the optimiser (the damped sine at the top of this notebook). None of
# this is a test of the Letter's claim on IdeaSearchFitter; it is what a 135M model gives.

# %%
if src.available("symbolic_logprob"):
    from scipy.stats import spearmanr

    main_states = efit.status[efit.status == "main"].index
    bottom = efit.potential[main_states].nsmallest(2)
    into = np.isin(np.asarray(egraph.states)[egraph.g], bottom.index)
    print(f"(i)   the two lowest-V states: {', '.join(bottom.index)}; "
          f"{into.mean():.0%} of the {egraph.n_transitions} strong transitions end there")
    for name, g in [("sampled run (Fig. 5)", graph), ("exact kernel", egraph)]:
        rho = spearmanr(g.potential, np.log10(g.score))
        print(f"(ii)  {name}: Spearman(beta V, log10 MSE) = {rho.statistic:.2f} over "
              f"{len(g.states)} states (p = {rho.pvalue:.2f})")
    print(f"(iii) usable (bounded to 0.1 in log) off-diagonal entries: {bounded.mean():.0%}")

# %% [markdown]
# Do the sampled run's pair error bars (Eq. 5) cover the exact log-ratios? The figure uses
# the Letter's bars; the table the exact intervals, by pair total (as in notebook 04).

# %%
if src.available("symbolic_logprob"):
    cmp = diagnostics.compare_to_exact(*src.symbolic_logprob_pair)
    plots.fig_exact_comparison(cmp)
    sampled_k, exact_k = src.symbolic_logprob_pair
    print(diagnostics.coverage_by_total(sampled_k, exact_k).round(2).to_string())
else:
    print(f"no exact symbolic kernel in source {SOURCE!r}")

# %% [markdown]
# The explicit potential refitted to the exact kernel (no sampling noise), over the expressions
# of its main strongly connected component.

# %%
if src.available("symbolic_logprob"):
    efp = symbolic.feature_potential(efit, variable=src.symbolic_variable, main_only=True)
    print(efp)
    display(efp.table().round(3))

# %% [markdown]
# ## Takeaway
# The symbolic agent runs the same pipeline, but on this small model the evidence is thin: a
# few two-way pairs when sampled, a collapse onto two spellings of one function, a potential
# unrelated to fit quality (Spearman about 0.02), an exact kernel of which only about 10 % is
# usable, and state scores that depend on the fitter's starting values (the damped sine: 2236
# from the default starts, worse than a line's 2114; 1153 from data-scaled starts). It shows
# what the method needs (many two-way pairs), not that the Letter's claim holds here.
#
# **Next:** [07 · Is it detailed balance?](07_is_it_detailed_balance.ipynb) asks how strong the
# evidence is on every data set, with calibrated tests and controls.
