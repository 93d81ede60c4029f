"""The walk: ``P(g | f)`` of llama.cpp's grammar sampler from token log-probabilities.

For a finite candidate set (the literal strings of a grammar: the word agent's vocabulary, the
symbolic agent's expressions) and a prompt ``f``, :func:`walk` computes the probability
``P(g | f)`` that the grammar-constrained sampler of llama.cpp (as used by ``llama_cpp.server``
and ``Llama.create_chat_completion(grammar=...)``) replies ``g``, at temperature 1 with no
truncation (``top_k=0, top_p=1, min_p=0, repeat_penalty=1``; those samplers are then the
identity).

Which distribution
------------------
llama-cpp-python 0.3.36 samples with the chain ``penalties -> grammar -> top_k -> typical ->
top_p -> min_p -> temp -> dist``. The grammar sampler (llama.cpp ``llama_grammar_apply_impl``)
sets the logit of every token to ``-inf`` unless

* the token is an end-of-generation token (``llama_vocab_is_eog``; SmolLM2: ``<|endoftext|>``,
  ``<|im_end|>``, ...) and the text so far is a complete word of the grammar, or
* the token is not EOG, its text is non-empty and the text so far followed by it is still a
  prefix of some word of the grammar (a word that is a prefix of another, ``LOVE``/``LOVELY``,
  can both end and continue).

Sampling stops at the first EOG token. So the reply ``g`` has probability

    P(g | f) = sum over tokenisations t_1..t_k of g of
               prod_i softmax_{allowed(t_<i)}(logits)[t_i] * softmax_{allowed(t_1..t_k)}[EOG]

where every softmax is over the allowed set only. The token tree of all tokenisations
(:class:`dbnb.llm.logprob.tree.TokenTree`) is walked depth first once per prompt, its nodes
created as the walk reaches them. Long candidates have millions of tokenisations: ``min_prob``
stops the walk at rare ones and reports the mass it did not follow as ``uncovered``; that mass,
added to every candidate that starts with the skipped text, gives an upper bound for each
probability. The probability that a path reaches a dead end (a prefix that is not a word and
that no token extends; never happens when all single characters are tokens) is also
``uncovered``. The model's prompt is rendered exactly as the server renders it: the GGUF's chat
template through ``Jinja2ChatFormatter``, tokenised with ``special=True`` and no extra BOS.

Numerics: one token at a time
-----------------------------
The server evaluates the prompt as one batch and then every generated token alone (a batch of
one). On the CPU, llama.cpp's matrix kernels for a single token (matrix-vector) and for several
tokens (matrix-matrix) give different logits for the same position: with SmolLM2 Q4_1 up to
~0.7 in a logit, ~0.16 in a word's log-probability (measured; not rounding noise). So the walk
evaluates the prompt in one ``eval`` and each tree node as a single-token ``eval``, exactly as
the sampler's logits were made; batching the tree (one sequence per branch) would compute a
different distribution.

Prompt modes (llama-cpp-python's prompt cache): a call whose prompt equals the previous call's
prompt re-evaluates only the last prompt token, alone, so its first-token distribution comes
from the single-token kernels and differs from a fresh prompt's (with the Letter's 266-token
prompt by up to ~0.5 in a logit; with a 63-token prompt not at all, measured). A call after a
*different* prompt re-evaluates the differing suffix as one batch and matches the fresh prompt
bit for bit. ``prompt_mode="fresh"`` is the fresh-prompt distribution, which a sampler sees when
consecutive prompts differ (round-robin order, as :func:`dbnb.agents.run.run_fixed_design`
uses); ``prompt_mode="cached"`` is the repeated-prompt distribution (``prompt[:-1]`` as a
batch, then the last token alone).

Two ways to get the same logits:

``"reuse"``
    depth-first, one token at a time, keeping the prompt and the current path in the KV cache
    (``llm.n_tokens = k`` then ``llm.eval``): one prompt evaluation and one single-token step per
    internal tree node;
``"naive"``
    for every node, re-evaluates the prompt and then the path token by token from an empty cache
    (:func:`naive_logits`; for checking and benchmarks only).

This module relies on private parts of llama-cpp-python (``Llama._ctx``; :mod:`.model` also
``Llama._model``); pin ``llama-cpp-python==0.3.36``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from .model import LoadedModel
from .tree import TokenTree

__all__ = [
    "LADDER",
    "PROMPT_MODES",
    "STRATEGIES",
    "PromptMode",
    "Strategy",
    "eval_prompt",
    "last_logits",
    "naive_logits",
    "walk",
]

Strategy = Literal["reuse", "naive"]
PromptMode = Literal["fresh", "cached"]
PROMPT_MODES = ("fresh", "cached")
STRATEGIES = ("reuse", "naive")


def _lse(x: np.ndarray) -> float:
    mx = x.max()
    return float(mx + math.log(np.exp(x - mx).sum()))


def _combine(word_lp: list[list[float]]) -> np.ndarray:
    """log P(candidate) = logsumexp over its tokenisations (``-inf`` when none was reached)."""
    out = np.full(len(word_lp), -np.inf)
    for i, lst in enumerate(word_lp):
        if lst:
            out[i] = _lse(np.asarray(lst))
    return out


LADDER = (10.0, 100.0)  # cut-offs, as multiples of min_prob, recorded for convergence checks


def walk(m: LoadedModel, prompt: list[int], tree: TokenTree, prompt_mode: str, n_words: int,
         min_prob: float = 0.0, logits_of: Callable[[int], np.ndarray] | None = None,
         record: list | None = None, cutoff_temperatures: Sequence[float] = (1.0,),
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Depth-first walk of the token tree: log P(candidate) under the grammar sampler.

    At every visited node the softmax over the allowed set (the node's children, plus the EOG
    tokens when its text is a complete candidate) gives each child's path probability; a
    complete candidate collects ``P(path) * P(EOG | path)``. A child whose path probability is
    below ``min_prob`` is not followed: its mass is uncovered, and it bounds what every
    candidate starting with the child's text can have lost (the upper bounds). Logits come from
    the KV-cache walk (``strategy="reuse"``): the prompt once, then one single-token ``eval`` per
    visited internal node with the cache holding the prompt and the node's ancestors
    (depth-first order). ``logits_of`` replaces that (``"naive"``). A list passed as
    ``record`` receives one tuple per visited node (node, children, their float32 logits,
    EOG logits or None, word, children's words, children followed and leaf), the input of
    :func:`dbnb.llm.logprob.nodes.to_record`: kernels at any temperature without a re-walk.
    ``cutoff_temperatures``: a child is followed when its path probability at *any* of these
    temperatures reaches ``min_prob`` (default: at 1 only), so that kernels re-weighted to a
    higher temperature keep their uncovered mass below ``min_prob`` per skipped child too.

    Returns the log-probabilities (lower bounds), upper bounds of the probabilities (equal to
    the lower bounds when nothing was skipped), the log-probabilities the walk would have found
    with the cut-off 10 and 100 times higher (shape ``(2, n_words)``; a candidate's share from a
    node of path probability ``p`` counts at every cut-off ``<= p``, as path probabilities only
    fall along a path), the dead-end mass (prefixes no token extends) and the number of internal
    nodes visited.
    """
    llm = m.llm
    if logits_of is None:
        eval_prompt(m, prompt, prompt_mode)
    n0 = len(prompt)
    log_min = math.log(min_prob) if min_prob > 0 else -math.inf
    inv_t = 1.0 / np.asarray(sorted({float(t) for t in cutoff_temperatures} | {1.0}))
    only_one = len(inv_t) == 1
    lp_t: dict[int, np.ndarray] = {0: np.zeros(len(inv_t))}  # path log-prob per temperature
    word_lp: list[list[float]] = [[] for _ in range(n_words)]
    gate: list[list[float]] = [[] for _ in range(n_words)]  # path log-prob of the node
    stuck = 0.0
    visited = 0
    skipped: dict[str, float] = {}
    stack = [(0, 0.0)]
    while stack:
        n, lp = stack.pop()
        lpt = lp_t.pop(n) if not only_one else None
        gate_lp = lp if only_one else float(lpt.max())
        kids = tree.children(n)
        complete = tree.word[n] >= 0
        if not kids:  # EOG is the only allowed token: P = 1 (or a dead end)
            if complete:
                word_lp[tree.word[n]].append(lp)
                gate[tree.word[n]].append(gate_lp)
            else:
                stuck += math.exp(lp)
            continue
        visited += 1
        if logits_of is not None:
            lg = logits_of(n)
        else:
            if n:
                llm.n_tokens = n0 + tree.depth[n] - 1  # keep prompt + ancestors (DFS order)
                llm.eval([tree.token[n]])
            lg = last_logits(m)
        x = lg[np.fromiter((tree.token[k] for k in kids), dtype=np.int64, count=len(kids))]
        if complete:
            xe = lg[m.eog]
            lse = _lse(np.concatenate([x, xe]))
            word_lp[tree.word[n]].append(lp + _lse(xe) - lse)
            gate[tree.word[n]].append(gate_lp)
        else:
            lse = _lse(x)
        if only_one:
            follow = lp + (x - lse)
        else:  # path log-prob of every child at every cut-off temperature; follow on the max
            xs = np.outer(inv_t, x)
            allx = np.concatenate([xs, np.outer(inv_t, lg[m.eog])], axis=1) if complete else xs
            mx = allx.max(axis=1, keepdims=True)
            lse_t = mx[:, 0] + np.log(np.exp(allx - mx).sum(axis=1))
            kid_t = lpt[:, None] + xs - lse_t[:, None]
            follow = kid_t.max(axis=0)
        if record is not None:
            lks = lp + (x - lse)
            record.append((n, list(kids), x.astype(np.float32),
                           lg[m.eog].astype(np.float32) if complete else None,
                           int(tree.word[n]), [int(tree.word[k]) for k in kids],
                           [bool(fk >= log_min and not tree.children(k))
                            for k, fk in zip(kids, follow, strict=True)]))
        lks = lp + (x - lse)
        for i in reversed(range(len(kids))):
            k, lk = kids[i], lks[i]
            if follow[i] >= log_min:
                stack.append((k, float(lk)))
                if not only_one:
                    lp_t[k] = kid_t[:, i]
            else:
                t = tree.text[k]
                skipped[t] = skipped.get(t, 0.0) + math.exp(lk)
    lower = _combine(word_lp)
    upper = np.exp(lower)
    for t, mass in skipped.items():
        upper[tree.completions(t)] += mass
    ladder = np.full((len(LADDER), n_words), -np.inf)
    if min_prob > 0:
        for r, factor in enumerate(LADDER):
            cut = math.log(min_prob * factor)
            ladder[r] = _combine([[c for c, g in zip(cs, gs, strict=True) if g >= cut]
                                  for cs, gs in zip(word_lp, gate, strict=True)])
    else:
        ladder[:] = lower
    return lower, np.minimum(upper, 1.0), ladder, stuck, visited


# ------------------------------------------------------------------ logits (llama-cpp internals)
def eval_prompt(m: LoadedModel, prompt: list[int], prompt_mode: str) -> None:
    """Evaluate ``prompt`` from an empty cache: one batch, or ``[:-1]`` batch + last alone."""
    llm = m.llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    if prompt_mode == "fresh":
        llm.eval(prompt)
    else:  # "cached": what Llama.generate does when the previous call had the same prompt
        llm.eval(prompt[:-1])
        llm.eval(prompt[-1:])


def naive_logits(
    m: LoadedModel, prompt: list[int], tree: TokenTree, prompt_mode: str = "fresh"
) -> Callable[[int], np.ndarray]:
    """``node -> logits`` by re-evaluating the prompt and the node's path from an empty cache."""
    llm = m.llm

    def logits_of(n: int) -> np.ndarray:
        eval_prompt(m, prompt, prompt_mode)
        for t in tree.path(n):
            llm.eval([t])
        return last_logits(m)

    return logits_of


def last_logits(m: LoadedModel) -> np.ndarray:
    """The logits of the last evaluated position, shape ``(n_vocab,)``, as float64."""
    ptr = m.llm._ctx.get_logits()
    return np.ctypeslib.as_array(ptr, shape=(m.n_vocab,)).astype(np.float64)

