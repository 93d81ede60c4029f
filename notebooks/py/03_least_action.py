# %% [markdown]
# # 03 · Least action: from a transition kernel to a potential
#
# The Letter (arXiv:2512.10047) asks for a scalar potential $V$ over states such that
# transitions mostly go "downhill". It minimises the normalised action (Eq. 8)
#
# $$ S[V] = \frac{1}{n}\sum_{f\neq g} T(g\leftarrow f)\, K\big(\beta V(f)-\beta V(g)\big),
# \qquad K(x) = e^{-x/2}\ \text{(main text)} \quad\text{or}\quad K(x)=\log(1+e^{-x})\ \text{(Supplement)} .$$
#
# Both kernels satisfy $K'(x) - K'(-x)e^{-x} = 0$ (Eq. 17): if $T$ obeys detailed balance,
# the minimiser is exactly the detailed-balance potential. We report $\beta V$ (units of $1/\beta$).
#
# **What you will learn**
# - the two-state closed form, $\beta\Delta V = \log(a/b)$, and why the action is convex;
# - why some potentials are $+\infty$ (strongly connected components, upstream states) and how
#   the gauge is fixed;
# - the Claude-4 case (Eq. 22, Fig. 2), and that least action recovers a known potential.

# %%
# Parameters: the data source for the last section ("shipped" local-model runs, "paper", or a store path)
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dbnb
from dbnb import diagnostics, plots, synthetic

# %% [markdown]
# ## Two states: the closed form
# With $a = T(g\leftarrow f)$ and $b = T(f\leftarrow g)$ the action is
# $a K(x) + b K(-x)$ with $x = \beta V(f)-\beta V(g)$; both kernels are minimised at
# $x = \log(a/b)$, and the exp kernel's minimum is $2\sqrt{ab}/n$.

# %%
counts = dbnb.TransitionCounts.from_triples(["f", "g"], ["g", "f"], [30, 5], calls={"f": 100, "g": 100})
for violation in ("exp", "softplus"):
    pair_fit = dbnb.fit_potential(counts, violation=violation)
    dv = pair_fit.potential["f"] - pair_fit.potential["g"]
    print(f"{violation:9s} beta V(f) - beta V(g) = {dv:.6f}"
          f"   log(a/b) = {np.log(30 / 5):.6f}   action = {pair_fit.action:.6f}")
print(f"exp closed form 2 sqrt(ab)/n = {2 * np.sqrt(0.30 * 0.05) / 2:.6f}")

# %% [markdown]
# ## Convexity
# The action is a sum of convex functions of edge differences, so it is convex in $V$; its
# Hessian is a weighted graph Laplacian with weights $T\,K''$. `fit_potential` takes damped
# Newton steps, each one sparse solve of that Laplacian. Along any line through the minimum the
# action is a convex curve:

# %%
chain = synthetic.reversible_chain(30, degree=4, sigma=1.5, seed=1)
kern = chain.kernel()
v0 = dbnb.fit_potential(kern).potential.to_numpy()
direction = np.random.default_rng(0).normal(size=v0.size)
ts = np.linspace(-2, 2, 81)
fig, ax = plt.subplots(figsize=(4, 2.6))
for violation in ("exp", "softplus"):
    f_k = dbnb.fit_potential(kern, violation=violation)
    vk = f_k.potential.to_numpy()
    ax.plot(ts, [dbnb.action(vk + t * direction, kern, violation) for t in ts], label=violation)
ax.set(xlabel="step $t$ along a random direction", ylabel="action $S[V + t\\,d]$")
ax.legend(title="$K$")
fig.tight_layout()

# %% [markdown]
# *What to look for:* each curve has a single minimum at $t = 0$, the fitted potential: no
# local minima to get stuck in.

# %% [markdown]
# ## Strongly connected components and infinite potentials
# If a state can be left but never re-entered, the infimum of the action is not attained: the
# potential difference runs off to infinity. `fit_potential` finds the strongly connected
# components (SCCs), minimises inside each one, and reports, relative to the main component,
# `+inf` for states that reach it but are never reached back, `-inf` for the reverse and NaN
# for states not comparable with it, each with a reason. It never returns whatever an optimiser
# stopped at.

# %%
toy = dbnb.TransitionCounts.from_triples(
    ["A", "B", "B", "C", "U", "A", "D"],
    ["B", "A", "C", "B", "A", "D", "D2"],
    [40, 10, 20, 25, 7, 3, 2],
    calls={"A": 100, "B": 100, "C": 100, "U": 100, "D": 100, "D2": 100},
)
tfit = dbnb.fit_potential(toy)
print(tfit)
for s in toy.states:
    print(f"{s:3s} beta V = {tfit.potential[s]:7.3f}   {tfit.reason(s)}")

# %% [markdown]
# A small ridge term $(\alpha/2)\sum_f (\beta V_f)^2$ (the analogue of SpringRank's $\alpha$)
# makes every potential finite, for plots that need numbers; it is a regularised estimate,
# flagged as such, and converges to the least-action values inside the main component as
# $\alpha\to 0$:

# %%
for alpha in (1e-1, 1e-3, 1e-5):
    r = dbnb.fit_potential(toy, regularization=alpha).potential
    print(f"alpha = {alpha:g}: " + ", ".join(f"{s} {r[s]:.3f}" for s in toy.states))

# %% [markdown]
# ## The Claude-4 case (Table II, Eq. 22)
# 20,000 calls, 4000 per prompt word, $T=\min(N/4000, 1)$ (Eq. 18). The generic solver gives
# $\beta V$ = 0 (ATTITUDE), $\log(3879/66)=4.07$ (PERSONAL), $\log(3558/20)=5.18$ (PROBLEM),
# and $+\infty$ for TURKEY and BUZZY, which are left but never re-entered (Eq. 22).

# %%
claude = dbnb.datasets.claude4_table2()
cfit = dbnb.fit_potential(claude)
print(cfit.to_frame())
print("Letter (Eq. 22):", dbnb.letter.EQ22_CLAUDE)

# %%
plots.fig02_transition_diagram(cfit);

# %% [markdown]
# *What to look for:* the levels are the $\beta V$ printed above; BUZZY and TURKEY sit above
# the break mark, at $+\infty$.

# %% [markdown]
# ## Recovering a known potential
# A synthetic reversible chain (Metropolis dynamics on a random sparse graph, known $\beta V$)
# sampled with a fixed design of 500 calls per state: the fit recovers the truth up to a
# constant, with errors set by counting statistics.

# %%
truth_chain = synthetic.reversible_chain(150, degree=5, sigma=2.0, seed=3)
sampled = synthetic.sample_fixed_design(truth_chain, 500, seed=4)
sfit = dbnb.fit_potential(sampled)
main = sfit.status == "main"
true_v = sampled.metadata["beta_V_true"][main.to_numpy()]
est = sfit.potential[main]
offset = (est - true_v).mean()
fig, ax = plt.subplots(figsize=(3.4, 3.2))
ax.plot(true_v, est - offset, ".", ms=4)
lim = [true_v.min() - 0.5, true_v.max() + 0.5]
ax.plot(lim, lim, "k--", lw=0.8)
ax.set(xlabel=r"true $\beta V$", ylabel=r"fitted $\beta V$ (shifted)")
print(f"correlation {np.corrcoef(true_v, est)[0, 1]:.4f}, "
      f"rms error {np.sqrt(np.mean((est - offset - true_v) ** 2)):.3f}")

# %% [markdown]
# *What to look for:* the points lie on the dashed diagonal; their spread is the counting
# error of 500 calls per state.

# %% [markdown]
# ## The potential as a stationary distribution: $\pi \propto e^{-\beta V}$
# An agent that keeps calling the model walks a Markov chain: from $f$ it moves to $g$ with
# probability $T(g\leftarrow f)$ and otherwise (an escape, or a repeat of the prompt) stays at
# $f$. Its long-run share of time in each state is the stationary distribution $\pi$,
# $\pi(g) = \sum_f P(g\leftarrow f)\,\pi(f)$. Detailed balance,
# $\pi(f)T(g\leftarrow f) = \pi(g)T(f\leftarrow g)$, together with Eq. 5 gives
#
# $$ \pi(f) \propto e^{-\beta V(f)} , $$
#
# so $\beta V$ is the free energy of the states in which the agent spends its time. This holds
# **exactly when the kernel is in detailed balance**, and **on one strongly connected
# component**: there the chain is irreducible and $\pi$ is unique; between components there is
# no stationary exchange, and the constants between their potentials are arbitrary (the gauge).
# Escapes sit on the diagonal of $P$ and change neither $\pi$ nor $V$. A kernel with cycle
# currents still has a $\pi$, but no potential gives it. `dbnb.diagnostics.stationary_check`
# computes the kernel's own $\pi$ (`dbnb.kernels.stationary_distribution`, one linear solve) and
# sets it beside $e^{-\beta V}$ of the least-action fit:

# %%
src = dbnb.sources.Sources(SOURCE)
stat = {"reversible chain": dbnb.fit_potential(chain.kernel()),
        "driven chain (d = 1.5)": dbnb.fit_potential(
            synthetic.driven_chain(30, degree=4, sigma=1.5, drive=1.5, seed=1).kernel())}
if src.available("logprob100"):
    stat["SmolLM2, exact kernel, 100 words"] = src.logprob100_fit
checks = {name: diagnostics.stationary_check(f) for name, f in stat.items()}
fig, axes = plt.subplots(1, len(checks), figsize=(3.4 * len(checks), 3.2), layout="constrained")
for ax, (name, chk) in zip(axes, checks.items()):
    plots.fig_stationary(chk, ax=ax, caption=name)
pd.DataFrame({name: chk.summary() for name, chk in checks.items()}).T.infer_objects()

# %% [markdown]
# *What to look for:* the reversible chain sits on the diagonal to rounding (an rms deviation of
# order $10^{-11}$, the fit's tolerance): $\pi = e^{-\beta V}$ exactly. The driven chain, with the same graph and
# potential plus a cycle current, does not: its least-action $V$ still tracks $\pi$ (slope
# near 1) but misses by a few tenths in $\log\pi$. The model's exact word kernel is close to the
# diagonal with an rms deviation of about 0.2 in $\log\pi$: its least-action potential is nearly,
# not exactly, the free energy of where the agent spends its time.

# %% [markdown]
# ## The same on the chosen data source
# The word agent's counts from `SOURCE` (by default the shipped SmolLM2-135M run), fitted with
# both kernels: the two potentials agree closely, as the Letter finds (Fig. 9).

# %%
if src.available("words"):
    wfit = dbnb.fit_potential(src.words, violation="exp")
    wfit_sp = dbnb.fit_potential(src.words, violation="softplus")
    both = (wfit.status == "main") & (wfit_sp.status == "main")
    r = np.corrcoef(wfit.potential[both], wfit_sp.potential[both])[0, 1]
    print(wfit)
    print(f"exp vs softplus potentials: correlation {r:.4f} over {both.sum()} states")
else:
    print(f"no word-agent data in source {SOURCE!r}")

# %% [markdown]
# ## Takeaway
# Least action turns a kernel into one potential per strongly connected component; it is
# exact for a kernel in detailed balance, finite only where states can be re-entered, and
# defined up to a gauge. Whether the data *are* in detailed balance is a separate question.
#
# **Next:** [04 · Detailed balance](04_detailed_balance.ipynb) checks it, with controls.
#
# ## Exercises
# 1. **Two-state closed form.** Take $N(g\leftarrow f) = 20$, $N(f\leftarrow g) = 2$ and 100
#    calls from each state. Predict $\beta V(f) - \beta V(g)$ by hand, then check it with
#    `dbnb.fit_potential`.
# 2. **Stationary distribution vs potential, by hand.** For the reversible chain `chain` above,
#    put each state's escape probability on the diagonal (so the columns sum to 1), compute the
#    stationary distribution $\pi$ as the eigenvector of eigenvalue 1 and compare $\log\pi$ with
#    $-\beta V$ from least action. What slope do you expect, and why? Then make the chain
#    reducible (drop every transition into one state) and say what goes wrong.
#
# <details><summary><b>Solution</b> (click to open)</summary>
#
# 1. $a = 0.2$, $b = 0.02$, so $\beta\Delta V = \log(a/b) = \log 10 = 2.303$:
#
# ```python
# c = dbnb.TransitionCounts.from_triples(["f", "g"], ["g", "f"], [20, 2],
#                                        calls={"f": 100, "g": 100})
# pair_fit = dbnb.fit_potential(c)
# pair_fit.potential["f"] - pair_fit.potential["g"]   # 2.302585...
# ```
#
# 2. Detailed balance $\pi(f)T(g\leftarrow f) = \pi(g)T(f\leftarrow g)$ with
#    $\log T(g\leftarrow f)/T(f\leftarrow g) = \beta V(f)-\beta V(g)$ gives $\pi\propto e^{-\beta V}$:
#    slope 1, correlation 1 (`stationary_check` above does the same by one linear solve).
#
# ```python
# P = chain.matrix.toarray() + np.diag(chain.escape_probability())
# w, vecs = np.linalg.eig(P)
# pi = np.abs(np.real(vecs[:, np.argmin(np.abs(w - 1))]))
# pi /= pi.sum()
# v = dbnb.fit_potential(chain.kernel()).potential.to_numpy()
# np.polyfit(-v, np.log(pi), 1)[0]   # 1.0000
# ```
#
#    A state that is never entered gets $\pi = 0$, and the states it feeds are no longer one
#    strongly connected component with it: its $\beta V$ is $+\infty$ (it is upstream), which
#    is $e^{-\beta V} = 0$, consistent, but $\pi$ says nothing about potential differences
#    between separate components.
# </details>
