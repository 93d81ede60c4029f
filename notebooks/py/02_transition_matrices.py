# %% [markdown]
# # 02 · Transition matrices: counts, N0 and the kernel estimators
#
# **What you will learn**
# - how a list of calls $f \to g$ becomes counts $N(g\leftarrow f)$ and a kernel $T(g\leftarrow f)$;
# - what $N_0(f)$ is, and why exact and nominal $N_0$ give different kernels;
# - how to read $T$ as a matrix: in `dbnb` a **column is a source** $f$, a **row a target** $g$.
#
# An experiment is a list of calls $f \to g$ (or $f \to$ escape). `dbnb.TransitionCounts` holds
# them as data: the states, a sparse matrix $N[g, f] = N(g\leftarrow f)$ (row = target $g$, column = source $f$, as in $T(g\leftarrow f)$),
# $N_0(f)$ (the calls made from $f$) when it is known, the escapes, and per-state metadata.
# Estimators are functions of it. The transition kernel is
#
# $$ T(g\leftarrow f) \approx \frac{N(g\leftarrow f)}{N_0(f)} \qquad \text{(Eq. 6)}, $$
#
# and the conventions differ in what $N_0$ is:
#
# | estimator | $N_0(f)$ | used for |
# |---|---|---|
# | `exact` (Eq. 6) | every call from $f$, escapes included | our own runs (every call is recorded) |
# | `fixed` (Eq. 18) | a design number, $T=\min(N/N_0,1)$ | Claude-4, 4000 calls per word |
# | `outcount` (Eq. 24) | $\sum_{g\neq f} N(g\leftarrow f)$, escapes ignored | the Letter's many-state agents |
# | `low_reject` / `high_reject` | the authors' code options | reproducing their numbers |

# %%
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store

# %%
import numpy as np
import pandas as pd

import dbnb
from dbnb import plots

# %% [markdown]
# ## A handful of calls
# Eight hand-made calls, one of them an escape (`INVALID00`, the Letter's marker for a reply
# that is not a state) and one a self-transition. The table `to_dense_frame()` is for reading
# the calls: it is the matrix **transposed**, one *row* per source $f$ (what was prompted) and one
# column per target $g$ (what came back), plus the escapes; the kernel and the heatmap below keep
# the `dbnb` orientation, column = source.

# %%
c = dbnb.TransitionCounts.from_pairs(
    ["A", "A", "A", "A", "B", "B", "C", "C"],
    ["B", "B", "C", "A", "A", "INVALID00", "A", "B"],
)
print(c)
c.to_dense_frame()

# %%
for method in ("outcount", "low_reject", "high_reject"):
    k = dbnb.estimate_kernel(c, method, min_calls=1)
    print(f"{method:11s} N0 = " + ", ".join(f"{s}: {n:g}" for s, n in zip(k.states, k.n0)))
    print(k.to_frame().to_string(index=False), "\n")

# %% [markdown]
# ## Table II: the Claude-4 counts
# 4000 calls per prompt word. The TURKEY and BUZZY rows hold more than 4000 replies as
# published, so $N_0$ is *nominal* and Eq. 18 clips $T$ at 1.

# %%
claude = dbnb.datasets.claude4_table2()
plots.table2_counts(claude)

# %%
ckern = dbnb.estimate_kernel(claude)
ckern.to_frame()

# %% [markdown]
# The same kernel as a picture, in the `dbnb` orientation $T[g, f]$: read down a column to see
# where a prompt word goes.

# %%
plots.fig_kernel_heatmap(ckern);

# %% [markdown]
# *What to look for:* each column is one prompt word; a blank cell is a transition never seen,
# and the empty BUZZY row says that no word ever leads *to* BUZZY.

# %% [markdown]
# ## Table III: database statistics
# Samples (recorded transitions between states, self-loops included), states, unique
# transitions $f\neq g$, and states sampled more than once, for every data set we have,
# beside the Letter's.

# %%
src = dbnb.sources.Sources(SOURCE)
data = {"Claude-4 (Table II)": claude}
if src.available("words"):
    data[src.file_of("words")] = src.words
if src.available("free"):
    data["words, free, Letter schedule (local)"] = src.words_free
pd.concat([plots.table3_statistics(data), dbnb.letter.table3()])

# %% [markdown]
# ## Exact $N_0$ versus the Letter's out-count convention
# Our runs record every call, so $N_0$ is exact. The Letter's many-state agents used Eq. 24,
# which ignores escapes and so inflates $T$ for states that often escape. The potentials differ
# by how unequal the escape rates are:

# %%
if src.available("words") and src.words.calls_kind != "exact":
    # the authors' two conventions, chosen by name (dbnb.authors.NAMED)
    hi, lo = src.fit("words", "high_reject"), src.fit("words", "low_reject")
    both = (hi.status == "main") & (lo.status == "main")
    print(f"{src.file_of('words')} records transitions, not calls: N0 is not known, so only "
          f"the Letter's conventions apply. high_reject (the authors' main.py) vs low_reject: "
          f"{(hi.status == 'main').sum()} vs {(lo.status == 'main').sum()} states in the main "
          f"component, correlation {np.corrcoef(hi.potential[both], lo.potential[both])[0, 1]:.4f}"
          f" over {both.sum()} states")
elif src.available("words"):
    words = src.words
    exact = dbnb.fit_potential(words, estimator="exact")
    outc = dbnb.fit_potential(words, estimator="outcount")
    both = (exact.status == "main") & (outc.status == "main")
    esc = pd.Series(words.escapes / np.maximum(words.calls, 1), index=words.index)
    print(f"escape rate per state: median {esc.median():.3f}, range {esc.min():.3f} to {esc.max():.3f}")
    print(f"exact vs out-count potentials: correlation "
          f"{np.corrcoef(exact.potential[both], outc.potential[both])[0, 1]:.4f} over {both.sum()} states")
else:
    print(f"no word-agent data in source {SOURCE!r}")

# %% [markdown]
# ## Takeaway
# A kernel is counts divided by $N_0$; which $N_0$ (exact, nominal, out-count) is a choice that
# changes $T$ wherever escapes are unequal, so always say which estimator a number used.
#
# **Next:** [03 · Least action](03_least_action.ipynb) turns a kernel into a potential $V$.
