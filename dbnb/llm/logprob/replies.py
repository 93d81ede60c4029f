"""The entry point: :func:`logprob_replies`, resumable through a checkpoint file.

For each prompt, render it with the agent's prompt function, walk the token tree of the
candidates (:mod:`dbnb.llm.logprob.walk`) and collect one column of the
:class:`dbnb.llm.logprob.kernel.LogprobKernel`. Each finished column is appended to an optional
checkpoint (:class:`Checkpoint`, one JSON line through the layer's one append-only writer,
:class:`dbnb.llm.jsonl.JsonlFile`), so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..jsonl import JsonlFile
from .kernel import LogprobKernel
from .model import load_model, machine_info
from .nodes import reweight, to_record
from .tree import TokenTree
from .walk import LADDER, PROMPT_MODES, STRATEGIES, PromptMode, Strategy, naive_logits, walk

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "logprob_replies", "logprob_temperatures"]

#: Part of every checkpoint row's key: rows of another layout are never reused.
CHECKPOINT_FORMAT = 3


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Checkpoint:
    """Finished sources of :func:`logprob_replies`, one JSON line each, keyed by the settings.

    Parameters
    ----------
    path : path
        The JSON-lines file (created on the first :meth:`append`).
    key : str
        Digest of the settings; rows with another key are ignored.
    """

    def __init__(self, path: str | Path, key: str):
        self.path = Path(path)
        self.key = key
        self._file = JsonlFile(self.path)
        self._rows: dict[tuple[str, str], dict] = {}

    def _ingest(self, values: list[Any]) -> None:
        for row in values:
            if isinstance(row, dict) and row.get("key") == self.key:
                self._rows[(row["source"], row["prompt"])] = row

    def read(self) -> dict[tuple[str, str], dict]:
        """Rows of this key by ``(source, prompt digest)``; a line cut by a crash is ignored."""
        self._ingest(self._file.read())
        return dict(self._rows)

    def append(self, row: dict) -> None:
        """Append one row durably, under the file lock (a crash remnant is cut off first)."""
        line = json.dumps({"key": self.key, **row})
        self._file.append([line], on_read=self._ingest)
        self._ingest([json.loads(line)])


def logprob_replies(
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
    desc: str = "logprob kernel",
    checkpoint: str | Path | None = None,
) -> LogprobKernel:
    """``P(g | f)`` of a grammar sampler whose language is exactly ``candidates``.

    Candidates are taken verbatim (the grammar's literal strings) and ``prompt_fn(f)`` gives
    the chat messages for source ``f``: an agent passes its prompt in (the word agent's
    :func:`dbnb.agents.word.word_logprob_kernel`, the symbolic agent's
    :func:`dbnb.agents.symbolic.logprob_kernel`). The probability is summed over every
    tokenisation of each candidate (:mod:`dbnb.llm.logprob.walk`).

    Parameters
    ----------
    candidates : sequence of str
        The grammar's strings, distinct and non-empty.
    prompt_fn : callable
        ``source -> chat messages``.
    sources : sequence of str, optional
        The prompts computed (members of ``candidates``); default all of them.
    model : str or path
        A local model of :data:`dbnb.llm.local.MODELS` (``"smollm2"``) or a GGUF file.
    progress : bool
        Show a tqdm bar over the sources.
    strategy : {"reuse", "naive"}
        How logits are computed (:mod:`dbnb.llm.logprob.walk`); the numbers are identical.
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
    info : dict, optional
        Extra entries for the result's ``info``.
    desc : str
        Progress-bar label.
    checkpoint : path, optional
        A JSON-lines file that receives every finished source (one fsynced line, through
        :class:`dbnb.llm.jsonl.JsonlFile`). A rerun with the same file, candidates, model,
        ``prompt_mode``, ``min_prob`` and strategy reuses the stored columns of sources whose
        prompt tokens are unchanged, so an interrupted run loses at most the source in
        progress. Lines of other settings are ignored.

    Returns
    -------
    LogprobKernel
        ``n_nodes`` is the number of token-tree nodes materialised (all of them when
        ``min_prob=0``); for rows reused from a checkpoint, the largest tree the run that
        wrote them had built (rows written before dbnb recorded it count their visited
        nodes, a lower bound); ``info["visited_nodes"]`` the internal nodes evaluated per
        source.

    See Also
    --------
    logprob_temperatures : the same walk, kernels at several sampling temperatures.
    """
    return _compute(candidates, prompt_fn, (1.0,), sources=sources, model=model,
                    progress=progress, strategy=strategy, prompt_mode=prompt_mode,
                    min_prob=min_prob, info=info, desc=desc, checkpoint=checkpoint)[1.0]


def logprob_temperatures(
    candidates: Sequence[str],
    prompt_fn: Callable[[str], list[dict[str, str]]],
    temperatures: Sequence[float],
    **kwargs: Any,
) -> dict[float, LogprobKernel]:
    """Kernels of the grammar sampler at several temperatures, from one walk per prompt.

    At temperature ``T`` llama.cpp's grammar sampler (no top-k, top-p or min-p) draws each
    token from ``softmax(logits / T)`` over the tokens the grammar allows, so the walk keeps,
    per visited tree node, the logits of the allowed children and the EOG logits
    (:mod:`dbnb.llm.logprob.nodes`) and re-weights them at every ``T``
    (:func:`dbnb.llm.logprob.nodes.reweight`). At ``T = 1`` the kernel is the walk's own (the
    one :func:`logprob_replies` returns). With ``min_prob > 0`` the cut-off is applied at
    ``T = 1``; at other temperatures the children it left unfollowed are uncovered mass,
    added to the upper bound of every candidate they could complete (recomputed per ``T``),
    and ``ladder`` is not available (``None``). The walk follows a child when its path
    probability at any of ``temperatures`` reaches ``min_prob``, so every kernel is bounded as
    tightly as a walk at its own temperature would be (at the cost of more nodes; the T = 1
    kernel then has more mass covered than :func:`logprob_replies` with the same
    ``min_prob``).

    Parameters
    ----------
    candidates, prompt_fn
        As in :func:`logprob_replies`.
    temperatures : sequence of float
        Sampling temperatures, each ``> 0``; duplicates are ignored.
    **kwargs
        The keyword arguments of :func:`logprob_replies`. A ``checkpoint`` row also holds the
        kernels at these temperatures, so the key includes them.

    Returns
    -------
    dict of float to LogprobKernel
        One kernel per temperature, ``info["temperature"]`` set.
    """
    if isinstance(temperatures, (int, float)):
        temperatures = [temperatures]
    temps = []
    for t in temperatures:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (
                math.isfinite(t) and t > 0):
            raise ValueError(f"temperatures must be finite numbers > 0, got {t!r}")
        if float(t) not in temps:
            temps.append(float(t))
    if not temps:
        raise ValueError("temperatures is empty")
    return _compute(candidates, prompt_fn, tuple(temps), **kwargs)


def check_candidates(candidates: Sequence[str], sources: Sequence[str] | None
                     ) -> tuple[list[str], list[str]]:
    """Validated candidates (non-empty, distinct strings) and sources (among them; default:
    all candidates) of a log-probability kernel."""
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
        return cands, list(cands)
    if isinstance(sources, str):
        raise ValueError("sources must be a sequence of strings, not a single string")
    srcs = list(sources)
    known = set(cands)
    missing = [s for s in srcs if s not in known]
    if missing:
        raise ValueError(f"sources must be among the candidates; not there: {missing[:5]}")
    return cands, srcs


def check_min_prob(min_prob: float) -> None:
    """The walk's cut-off must be a number in [0, 1)."""
    if isinstance(min_prob, bool) or not isinstance(min_prob, (int, float)) or not (
            0.0 <= min_prob < 1.0):
        raise ValueError(f"min_prob must be a number in [0, 1), got {min_prob!r}")


def _compute(
    candidates: Sequence[str],
    prompt_fn: Callable[[str], list[dict[str, str]]],
    temperatures: tuple[float, ...],
    *,
    sources: Sequence[str] | None = None,
    model: str | Path = "smollm2",
    progress: bool = True,
    strategy: Strategy = "reuse",
    prompt_mode: PromptMode = "fresh",
    min_prob: float = 0.0,
    info: dict[str, Any] | None = None,
    desc: str = "logprob kernel",
    checkpoint: str | Path | None = None,
) -> dict[float, LogprobKernel]:
    """The walk behind :func:`logprob_replies` and :func:`logprob_temperatures`."""
    cands, srcs = check_candidates(candidates, sources)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if prompt_mode not in PROMPT_MODES:
        raise ValueError(f"prompt_mode must be one of {list(PROMPT_MODES)}, got {prompt_mode!r}")
    check_min_prob(min_prob)
    if min_prob > 0 and strategy != "reuse":
        raise ValueError("min_prob > 0 needs strategy='reuse'")

    m = load_model(model)
    others = [t for t in temperatures if t != 1.0]  # re-weighted from the walk's record
    key = _digest([CHECKPOINT_FORMAT, cands, m.path.name, strategy, prompt_mode,
                   float(min_prob)] + ([sorted(others), "cutoff at every temperature"]
                                       if others else []))
    tree = TokenTree(cands, m.pieces, m.max_piece)
    if strategy == "naive":
        tree.expand_all()
    n = len(cands)
    logprob = np.full((n, len(srcs)), -np.inf)
    upper = np.zeros((n, len(srcs)))
    ladder = np.full((len(LADDER), n, len(srcs)), -np.inf)
    uncovered = np.zeros(len(srcs))
    seconds = np.zeros(len(srcs))
    prompt_lengths, visited = [], []
    at = {t: (np.zeros((n, len(srcs))), np.zeros((n, len(srcs))), np.zeros(len(srcs)))
          for t in others}  # T -> (prob, upper, uncovered)
    it = srcs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(srcs, desc=f"{desc} ({strategy}, {prompt_mode})", unit="prompt")
    ckpt = None if checkpoint is None else Checkpoint(checkpoint, key)
    done = {} if ckpt is None else ckpt.read()
    reused_nodes = 0  # largest tree the runs that made the reused rows had built
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
            reused_nodes = max(reused_nodes, int(row.get("tree_nodes", k)))
            got = {float(t): tuple(np.asarray(v[c], dtype=float) for c in ("prob", "upper"))
                   + (float(v["uncovered"]),) for t, v in row.get("at", {}).items()}
        else:
            logits_of = (naive_logits(m, prompt, tree, prompt_mode) if strategy == "naive"
                         else None)
            rows: list | None = [] if others else None
            lp, up, lad, _, k = walk(m, prompt, tree, prompt_mode, n, min_prob, logits_of,
                                     record=rows, cutoff_temperatures=temperatures)
            got = {}
            if others:
                rec = to_record(rows, len(m.eog))
                for t in others:
                    got[t] = reweight(rec, t, n, lambda c: tree.completions(tree.text[c]))
            secs = time.perf_counter() - t0
            if ckpt is not None:
                ckpt.append(
                    {"source": f, "prompt": _digest(prompt), "logprob": lp.tolist(),
                     "upper": up.tolist(), "ladder": lad.tolist(), "seconds": secs,
                     "visited": k, "tree_nodes": tree.size,
                     **({"at": {repr(t): {"prob": g[0].tolist(), "upper": g[1].tolist(),
                                          "uncovered": g[2]} for t, g in got.items()}}
                        if got else {})})
        for t in others:
            at[t][0][:, j], at[t][1][:, j], at[t][2][j] = got[t]
        logprob[:, j] = lp
        upper[:, j] = up
        ladder[:, :, j] = lad
        uncovered[j] = 1.0 - math.fsum(np.exp(lp))
        seconds[j] = secs
        visited.append(k)
        if progress:
            it.set_postfix(nodes=sum(visited), refresh=False)  # nodes evaluated so far
    prob = np.exp(logprob)
    upper = np.maximum(upper, prob)  # equal when nothing was skipped (guards rounding)
    ladder = np.exp(ladder)
    for a in (prob, logprob, upper, ladder, uncovered, seconds):
        a.setflags(write=False)
    import llama_cpp

    base = dict(states=tuple(cands), sources=tuple(srcs), seconds=seconds,
                n_nodes=max(tree.size, reused_nodes))
    common = {
        "model": str(m.path),
        "model_file": m.path.name,
        "strategy": strategy,
        "prompt_mode": prompt_mode,
        "min_prob": min_prob,
        "llama_cpp_version": llama_cpp.__version__,
        "machine": machine_info(m.path, n_threads=1),
        "eog_tokens": m.eog.tolist(),
        "chat_template_sha256": m.chat_template_sha256,
        "chat_template_source": m.chat_template_source,
        "prompt_tokens": prompt_lengths,
        "visited_nodes": visited,
        "ladder_cuts": [min_prob * f for f in LADDER],
        **(info or {}),
    }
    out = {}
    for t in temperatures:
        tinfo = {**common, "temperature": t,
                 "sampler": f"grammar, temperature {t:g}, top_k 0, top_p 1, min_p 0, "
                            "repeat_penalty 1"}
        if t == 1.0:
            out[t] = LogprobKernel(prob=prob, logprob=logprob, uncovered=uncovered,
                                   upper=upper, ladder=ladder, info=tinfo, **base)
            continue
        tinfo["reweighted_from"] = "temperature 1 walk (dbnb.llm.logprob.nodes.reweight)"
        p_t, up_t, unc_t = at[t]
        with np.errstate(divide="ignore"):
            lp_t = np.log(p_t)
        up_t = np.maximum(up_t, p_t)
        for a in (p_t, lp_t, up_t, unc_t):
            a.setflags(write=False)
        out[t] = LogprobKernel(prob=p_t, logprob=lp_t, uncovered=unc_t, upper=up_t,
                               ladder=None, info=tinfo, **base)
    return out

