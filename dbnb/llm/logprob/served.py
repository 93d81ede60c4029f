"""Log-probability kernels from a served model, and what the canonical tokenisation carries.

A scoring backend (an OpenAI-compatible ``/v1/completions`` endpoint) returns the model's
*unconstrained* log-probabilities of the text it is sent; the grammar sampler's probability of
a reply ``g`` (:mod:`dbnb.llm.logprob.walk`) is

    P(g | f) = sum over tokenisations t_1..t_k of g of
               prod_i p(t_i | t_<i) / Z(t_<i)  *  p(EOG | t_1..t_k) / Z(t_1..t_k)

with ``Z(node)`` the unconstrained mass of the tokens the grammar allows at the node (its
children in the :class:`dbnb.llm.logprob.tree.TokenTree`, plus the EOG tokens where the text is
a complete candidate). So every factor needs a node's *full-vocabulary* row, not only the
log-probability of the token taken.

Every tokenisation: ``tokenisations="all"`` (token-id endpoints)
----------------------------------------------------------------
The walk of :func:`dbnb.llm.logprob.logprob_replies` itself (:func:`dbnb.llm.logprob.walk.walk`,
the same tree, cut-off, bounds and ladder), with each visited node's row fetched from the
server: one ``/v1/completions`` request whose prompt is the token ids of the rendered prompt
followed by the node's path, ``max_tokens=1``, ``logprobs=top`` (4096; the server's softmax
is over the whole vocabulary whatever ``top`` is) and ``return_tokens_as_token_ids`` (vLLM).
Where a token the walk needs at the node (its children; the EOG tokens at a complete word)
is not in the top rows, the node is asked again for the full vocabulary (``n_vocab``); the
root always is. Rows are read by token id (llama-server's ``content[0].top_logprobs`` list,
vLLM's ``"token_id:N"`` keys), so nothing is keyed by text and the EOG mass is exact.

Arithmetic: prompts are walked depth first, one server per prompt, after a one-token request
that empties the server's KV cache; each node's request then shares all but its last token
with the previous request, so the server evaluates exactly one new token, as the sampler does
(:mod:`.walk`, "Numerics"). The server's ``usage.prompt_tokens_details.cached_tokens`` says
how many it took from its cache; every request whose new part is not one token (or, for the
root, the whole prompt) is counted in ``info["batched_nodes"]`` (0 for every source is the
sampler's arithmetic; -1: the server does not report it). Measured with llama.cpp's
``llama-server`` built from llama-cpp-python 0.3.36's vendored sources
(:mod:`dbnb.llm.cppserver`) against the in-process walk on the same GGUF: max
``|d log p|`` 1.7e-7 (the float32 log-softmax the server reports), ``batched_nodes`` 0
(``tests/test_cppserver.py``). Why one request per node and not one echoed request per
tokenisation (``echo`` with ``logprobs``, vLLM's ``prompt_logprobs``): an echoed sequence is
evaluated as one batch, whose logits differ from the sampler's one-token decodes (up to ~1 in
a logit on llama.cpp's CPU kernels), and a word's tokenisations share prefixes, which the tree
visits once. A model whose KV cache cannot be cut back to a prefix (sliding-window or
recurrent layers) makes the server re-evaluate whole prompts: ``batched_nodes`` then counts
them, a ``RuntimeWarning`` says so, and the kernel is not the sampler's. Measured: Gemma 3
270M (interleaved sliding-window attention) on llama-server, 3 words, one prompt: 523 of 527
requests batched, ``log p`` off the in-process walk by up to 0.12 (SmolLM2: 0 and 1.7e-7).

The canonical tokenisation: ``tokenisations="canonical"`` (text endpoints)
--------------------------------------------------------------------------
For each prompt and each candidate, the term of the **canonical tokenisation** only (the
tokens the server's tokenizer gives to ``prompt text + g``): a lower bound of ``P(g | f)``
whose gap is the mass of the other tokenisations (:func:`canonical_share` measures it
in-process: for SmolLM2 under the Letter prompt over the 100-word vocabulary the canonical
tokenisations carry only about a fifth of the probability, ``benchmarks/README.md``).
llama-cpp-python's server accepts only text prompts, so other tokenisations cannot be sent
to it. Each node of a canonical path is one request: the prompt text followed by
the node's text (the server's tokenisation of it is checked to be the node's tokens), no echo,
``max_tokens=1``, ``logprobs = n_vocab`` (the sampled token's row is the node's full
distribution) and ``logit_bias`` -100 on the EOG tokens (a sampled EOG token would end the
completion with no row; the reported log-probabilities are the raw ones, before the bias).
Echoing the prompt instead costs rows for every prompt token (measured: 92 MB and 72 s for one
63-token prompt at full vocabulary, against 1.4 MB and 1 s per node).

Canonical: what is exact and what is a bound
-------------------------------------------
* Arithmetic: nodes are requested in depth-first (lexicographic token) order, one server per
  prompt at a time, after a one-token request that empties the server's KV cache.
  llama-cpp-python then evaluates the prompt as one batch and every reply token alone (its
  prefix match keeps the rest), exactly the sampler's (and the in-process walk's) arithmetic:
  rows agree with the walk's to 2.4e-7 in a log-probability (float32 log-softmax on the
  server; measured).
* The server's top-logprob rows are keyed by token *text* (``detokenize``, special tokens
  rendered empty, broken UTF-8 dropped), so tokens sharing a text share one entry (the lowest).
  Children and the taken token are read by text; a needed text shared by several tokens raises
  (none among the 100-word vocabulary's allowed tokens for SmolLM2).
* EOG: the EOG tokens are special, their key is the empty text, shared with every other
  special token and partial-UTF-8 byte token (338 tokens for SmolLM2). The EOG mass is taken
  as the remainder ``R = 1 - sum of every non-empty entry``, an *upper* bound of it: it also
  holds those tokens and the mass lost in shared texts. That is the one approximation: it
  matters only at a complete word that another candidate continues (SURE / SURELY), where
  ``log R/EOG`` is 2.1e-3 to 3.3e-3 for SmolLM2 (measured, three prompts): the continuations
  (SURELY) come out low by that, the word itself (SURE) high by ~1e-6
  (``tests/test_logprob_served.py``). Candidates no other candidate extends have ``P(EOG) =
  1`` at their end and need no EOG row.
* Measured against the in-process walk on the same GGUF (two servers, one thread each):
  max ``|d log p|`` 5e-7 for words without a complete word on their path, 2.8e-6 at SURE,
  3.3e-3 at SURELY (through SURE's EOG remainder).
* So ``prob`` is the canonical term, up to the EOG remainder; ``uncovered`` (``1 - sum``) is
  the mass on the other tokenisations, and ``upper = prob + uncovered`` bounds ``P(g | f)``
  (as far as the EOG remainder allows).

The prompts are fanned out over several endpoints (api bases, or the entries of a deployments
file, :func:`dbnb.llm.router.load_deployments`): one worker thread per endpoint takes whole
prompts, so each server sees one prompt's requests in order (the Router's per-request load
balancing would interleave them and break the KV-prefix arithmetic above). An endpoint that
stops serving (refused or reset connection, timeout, HTTP 5xx: :class:`EndpointDown`) is
retired and its prompt in progress goes, from its start, to the others (``info
["endpoints_down"]`` says which and why); the run fails only when every endpoint is down.
Finished prompts go to a :class:`dbnb.llm.logprob.replies.Checkpoint`, so an interrupted run
resumes.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .kernel import LogprobKernel
from .model import LoadedModel, _sha256, load_model
from .replies import Checkpoint, _digest, check_candidates, check_min_prob, logprob_replies
from .tree import TokenTree
from .walk import LADDER, eval_prompt, last_logits, walk

__all__ = ["SERVED_FORMAT", "EndpointDown", "canonical_share", "canonical_tokens",
           "served_replies"]

#: Part of every served checkpoint row's key.
SERVED_FORMAT = 1


def canonical_tokens(m: LoadedModel, messages: list[dict[str, str]], candidate: str
                     ) -> tuple[str, list[int], list[int]]:
    """The rendered prompt text, its tokens, and the canonical tokens of ``candidate`` there.

    The canonical tokenisation is what the model's tokenizer gives to the prompt text followed
    by the candidate (``special=True``, as the server tokenises a completion prompt), minus the
    prompt's own tokens. Every prefix of it must also be what the tokenizer gives to the prompt
    followed by the prefix's text (so a text-only endpoint can be sent each node).

    Raises
    ------
    ValueError
        The prompt's tokens are not a prefix of the joint tokenisation (the tokenizer merged
        across the boundary), or a prefix of the canonical tokens is not reachable by text.
    """
    r = m.formatter(messages=messages)
    prompt = m.prompt_tokens(messages)
    add_bos = not r.added_special

    def tok(text: str) -> list[int]:
        return m.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    full = tok(r.prompt + candidate)
    if full[:len(prompt)] != prompt:
        raise ValueError(f"the tokenizer merges the prompt's end with {candidate!r}; its "
                         "canonical tokenisation is not defined after the prompt")
    path = full[len(prompt):]
    text = ""
    for i, t in enumerate(path[:-1]):
        text += m.llm.detokenize([t]).decode("utf-8")
        if tok(r.prompt + text) != prompt + path[:i + 1]:
            raise ValueError(f"{candidate!r}: its canonical prefix {text!r} is tokenised "
                             "differently on its own, so a text endpoint cannot be sent that node")
    return r.prompt, prompt, path


def _follow(tree: TokenTree, path: Sequence[int]) -> list[int]:
    """Tree nodes along a token path, root first."""
    nodes = [0]
    for t in path:
        kids = [k for k in tree.children(nodes[-1]) if tree.token[k] == t]
        if not kids:
            raise ValueError(f"token {t} is not allowed after {tree.text[nodes[-1]]!r}")
        nodes.append(kids[0])
    if tree.word[nodes[-1]] < 0:
        raise ValueError(f"the path ends at {tree.text[nodes[-1]]!r}, not a candidate")
    return nodes


def _lse(x: np.ndarray) -> float:
    mx = float(np.max(x))
    return mx + math.log(float(np.exp(np.asarray(x) - mx).sum()))


def _path_logprob(tree: TokenTree, nodes: list[int], kid_lp: Callable[[int], np.ndarray],
                  eog_lp: Callable[[int], float]) -> float:
    """log of prod_i p(t_i)/Z * p(EOG)/Z along ``nodes``, from per-node log-probabilities."""
    out = 0.0
    for i, n in enumerate(nodes):
        kids = tree.children(n)
        x = kid_lp(n) if kids else np.zeros(0)
        complete = tree.word[n] >= 0
        terms = np.concatenate([x, [eog_lp(n)]]) if complete else x
        z = _lse(terms) if len(terms) else 0.0
        if i + 1 < len(nodes):
            out += float(x[kids.index(nodes[i + 1])]) - z
        elif kids:
            out += eog_lp(n) - z
    return out


# ---------------------------------------------------------------------- in-process share
def canonical_share(
    candidates: Sequence[str],
    prompt_fn: Callable[[str], list[dict[str, str]]],
    *,
    sources: Sequence[str] | None = None,
    model: str | Path = "smollm2",
    min_prob: float = 0.0,
    progress: bool = False,
) -> pd.DataFrame:
    """How much of each candidate's exact probability its canonical tokenisation carries.

    In-process, no server: for every prompt ``f`` and candidate ``g``, the probability of the
    canonical tokenisation alone (:func:`canonical_tokens`), computed with the walk's
    arithmetic (the prompt as one batch, then one token at a time, each factor renormalised
    over the grammar's allowed tokens, EOG over all EOG tokens), against the exact ``P(g | f)``
    of :func:`dbnb.llm.logprob.logprob_replies` (``prompt_mode="fresh"``). This is the bound a
    scoring-only backend can reach (:func:`served_replies`).

    Parameters
    ----------
    candidates, prompt_fn, sources, model
        As in :func:`dbnb.llm.logprob.logprob_replies`.
    min_prob : float, default 0
        The walk's cut-off; with ``min_prob > 0`` the exact probability is bracketed by the
        walk's bounds, and so is the share.
    progress : bool
        Show the walk's progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (prompt, candidate), prompts in ``sources`` order and candidates in
        ``candidates`` order within each: ``prompt``, ``candidate``, ``n_tokens`` (canonical),
        ``p_canonical``, ``p_exact`` (the walk's lower bound), ``p_upper``, ``share``
        (``p_canonical / p_exact``, the share of the exact probability; ``<= 1`` up to
        rounding) and ``share_low`` (``p_canonical / p_upper``).
    """
    cands, srcs = check_candidates(candidates, sources)
    m = load_model(model)
    exact = logprob_replies(cands, prompt_fn, sources=srcs, model=model, min_prob=min_prob,
                            progress=progress)
    tree = TokenTree(cands, m.pieces, m.max_piece)
    rows = []
    for j, f in enumerate(srcs):
        msgs = prompt_fn(f)
        paths = {g: canonical_tokens(m, msgs, g)[2] for g in cands}
        prompt = m.prompt_tokens(msgs)
        # node -> (allowed children's logits, log-sum-exp of the EOG logits), from
        # single-token decodes in depth-first order (the KV cache then holds the node's path)
        lg: dict[int, tuple[np.ndarray, float]] = {}
        for g in sorted(cands, key=lambda c: paths[c]):
            nodes = _follow(tree, paths[g])
            for n in nodes:
                if n in lg or not tree.children(n):
                    continue
                if n == 0:
                    eval_prompt(m, prompt, "fresh")
                else:
                    m.llm.n_tokens = len(prompt) + tree.depth[n] - 1
                    m.llm.eval([tree.token[n]])
                x = last_logits(m)
                lg[n] = (x[[tree.token[k] for k in tree.children(n)]], _lse(x[m.eog]))

            def kid_lp(n, lg=lg):
                return lg[n][0]

            def eog_lp(n, lg=lg):
                return lg[n][1] if n in lg else 0.0

            lp = _path_logprob(tree, nodes, kid_lp, eog_lp)
            i = cands.index(g)
            rows.append({"_j": j, "_i": i, "prompt": f, "candidate": g, "n_tokens": len(paths[g]),
                         "p_canonical": math.exp(lp), "p_exact": float(exact.prob[i, j]),
                         "p_upper": float(exact.upper[i, j])})
    out = (pd.DataFrame(rows).sort_values(["_j", "_i"]).drop(columns=["_j", "_i"])
           .reset_index(drop=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share"] = out["p_canonical"] / out["p_exact"]
        out["share_low"] = out["p_canonical"] / out["p_upper"]
    return out


# ---------------------------------------------------------------------- served kernel
class EndpointDown(RuntimeError):
    """An endpoint that cannot serve (unreachable, reset, timed out, HTTP 5xx): its prompt
    goes to another endpoint."""


class _Endpoint:
    """One completions endpoint: where to send, under what name, with which key."""

    def __init__(self, api_base: str, model: str, api_key: str | None, name: str):
        self.api_base = api_base.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.name = name

    def post(self, body: dict, timeout: float) -> dict:
        host = urllib.parse.urlsplit(self.api_base).hostname or ""
        handlers = ([urllib.request.ProxyHandler({})]
                    if host in ("127.0.0.1", "localhost", "::1") else [])
        opener = urllib.request.build_opener(*handlers)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.api_base + "/completions",
                                     data=json.dumps({"model": self.model, **body}).encode(),
                                     headers=headers)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            kind = EndpointDown if exc.code >= 500 else RuntimeError
            raise kind(f"{self.name}: HTTP {exc.code} from {self.api_base}/completions:"
                       f" {detail}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            why = getattr(exc, "reason", exc)
            raise EndpointDown(f"{self.name}: cannot reach {self.api_base}/completions: "
                               f"{why}") from None


def _endpoints(endpoints: Any, served_model: str | None) -> list[_Endpoint]:
    """api bases (str), or a deployments file / Deployments: one endpoint per entry."""
    from ..router import ENV_PREFIX, Deployments, load_deployments

    if isinstance(endpoints, str) and endpoints.startswith(("http://", "https://")):
        endpoints = [endpoints]
    if isinstance(endpoints, (list, tuple)) and endpoints and all(
            isinstance(e, str) for e in endpoints):
        if served_model is None:
            raise ValueError("served_model (the name the servers serve) is needed with api bases")
        return [_Endpoint(e, served_model, None, e) for e in endpoints]
    dep = endpoints if isinstance(endpoints, Deployments) else load_deployments(endpoints)
    out = []
    for e in dep.model_list:
        lp = e["litellm_params"]
        if "api_base" not in lp:
            raise ValueError(f"deployment {e['model_info']['id']!r} has no api_base; a served "
                             "kernel needs an OpenAI-compatible completions endpoint")
        key = lp.get("api_key")
        if isinstance(key, str) and key.startswith(ENV_PREFIX):
            key = os.environ[key[len(ENV_PREFIX):]]
        name = served_model or lp["model"].split("/", 1)[-1]
        out.append(_Endpoint(lp["api_base"], name, key, e["model_info"]["id"]))
    return out


def _server_keys(m: LoadedModel) -> dict[str, list[int]]:
    """Token text as the server keys its top-logprob rows -> token ids sharing that key."""
    keys: dict[str, list[int]] = {}
    for i in range(m.n_vocab):
        keys.setdefault(m.llm.detokenize([i]).decode("utf-8", errors="ignore"), []).append(i)
    return keys


def _score_prompt(ep: _Endpoint, m: LoadedModel, tree: TokenTree, cands: list[str],
                  msgs: list[dict[str, str]], shared: dict[str, list[int]], timeout: float
                  ) -> tuple[np.ndarray, int]:
    """Canonical-path log-probabilities of every candidate for one prompt on one endpoint."""
    text_of = {i: s for s, ids in m.pieces.items() for i in ids}
    paths = {}
    for g in cands:
        ptext, prompt, paths[g] = canonical_tokens(m, msgs, g)
    flush = "\n" if m.llm.tokenize(b"\n", add_bos=False, special=True)[:1] != prompt[:1] \
        else "0"
    ep.post({"prompt": flush, "max_tokens": 1, "temperature": 0.0}, timeout)  # empty the KV
    bias = {str(int(i)): -100 for i in m.eog}
    rows: dict[int, tuple[dict[str, float], float]] = {}  # node -> (child text lp, log R)
    requests = 0
    for g in sorted(cands, key=lambda c: paths[c]):  # lexicographic = depth-first preorder
        nodes = _follow(tree, paths[g])
        for i, n in enumerate(nodes):
            if n in rows or not tree.children(n):
                continue
            text = "".join(text_of[t] for t in paths[g][:i])
            out = ep.post({"prompt": ptext + text, "max_tokens": 1, "temperature": 0.0,
                           "logprobs": m.n_vocab, "logit_bias": bias}, timeout)
            requests += 1
            got = out["choices"][0].get("logprobs") or {}
            n_prompt = out.get("usage", {}).get("prompt_tokens")
            if n_prompt is not None and n_prompt != len(prompt) + i:
                raise RuntimeError(f"{ep.name}: the server read {n_prompt} prompt tokens for "
                                   f"{text!r}, expected {len(prompt) + i} (another tokenizer?)")
            top = (got.get("top_logprobs") or [None])[0]
            if not top or len(top) < len(shared) - 1:
                raise RuntimeError(f"{ep.name}: expected a full-vocabulary row "
                                   f"({len(shared)} texts), got {0 if not top else len(top)}; "
                                   "does the server cap logprobs or lack logits_all?")
            need = {text_of[tree.token[k]] for k in tree.children(n)}
            for s in need:
                if len(shared[s]) > 1:
                    raise ValueError(f"token text {s!r} is shared by tokens {shared[s]}: the "
                                     "server's text-keyed row cannot tell them apart")
            rem = 1.0 - math.fsum(math.exp(v) for k, v in top.items() if k != "")
            rows[n] = ({s: top[s] for s in need}, math.log(max(rem, 1e-300)))

    def kid_lp(n):
        return np.array([rows[n][0][text_of[tree.token[k]]] for k in tree.children(n)])

    def eog_lp(n):
        return rows[n][1] if n in rows else 0.0

    lp = np.array([_path_logprob(tree, _follow(tree, paths[g]), kid_lp, eog_lp)
                   for g in cands])
    return lp, requests


def _row_by_id(out: dict, n_vocab: int, name: str, full: bool = True) -> np.ndarray:
    """The log-probability row of a one-token completion, indexed by token id.

    Two dialects of ``choices[0].logprobs``: llama-server's (``content[0].top_logprobs``, a
    list of ``{"id", "logprob", ...}``) and vLLM's legacy completions form with
    ``return_tokens_as_token_ids`` (``top_logprobs[0]``, a mapping ``"token_id:N" -> logprob``).
    With ``full`` every id must be there; otherwise the ids not returned are NaN.
    """
    got = (out.get("choices") or [{}])[0].get("logprobs")
    ids = vals = None
    if isinstance(got, dict) and got.get("content"):
        top = got["content"][0].get("top_logprobs") or []
        ids = np.fromiter((e["id"] for e in top), dtype=np.int64, count=len(top))
        vals = np.fromiter((e["logprob"] for e in top), dtype=float, count=len(top))
    elif isinstance(got, dict) and got.get("top_logprobs"):
        top = got["top_logprobs"][0] or {}
        try:
            ids = np.fromiter((int(k.rsplit(":", 1)[1]) for k in top), dtype=np.int64,
                              count=len(top))
        except (IndexError, ValueError):
            raise RuntimeError(f"{name}: top_logprobs are keyed by token text, not id; a vLLM "
                               "server needs return_tokens_as_token_ids (sent with every "
                               "request)") from None
        vals = np.fromiter(top.values(), dtype=float, count=len(top))
    if ids is None:
        raise RuntimeError(f"{name}: the response has no log-probabilities (keys "
                           f"{sorted(out)}); is this a llama-server or vLLM endpoint?")
    row = np.full(n_vocab, np.nan)
    if len(ids) and (ids.min() < 0 or ids.max() >= n_vocab):
        raise RuntimeError(f"{name}: token ids outside 0..{n_vocab - 1}: another model?")
    row[ids] = vals
    missing = int(np.isnan(row).sum())
    if missing and full:
        raise RuntimeError(
            f"{name}: expected a full-vocabulary row ({n_vocab} ids), {missing} missing; does "
            "the server cap logprobs (vLLM: --max-logprobs -1)?")
    return row


def _walk_prompt(ep: _Endpoint, m: LoadedModel, tree: TokenTree, n_words: int,
                 msgs: list[dict[str, str]], min_prob: float, timeout: float, top: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int], list[str]]:
    """The exact walk of one prompt with every node's row from a token-id endpoint.

    Each node asks for the ``top`` most probable tokens first (the server's softmax is over
    the full vocabulary whatever ``top`` is) and again for the full vocabulary only when one
    of the tokens the walk needs there (the node's children, the EOG tokens at a complete
    node) is not among them; the root asks for the full vocabulary at once (asking twice
    would evaluate its last prompt token alone, the ``"cached"`` prompt mode).

    Returns the walk's log-probabilities, upper bounds and ladder, counts (``requests``,
    ``full_rows``; ``batched_nodes``: requests the server did *not* evaluate as one new token
    after its cached prefix, the sampler's arithmetic, or -1 when it does not report its
    cache) and the server builds seen.
    """
    prompt = m.prompt_tokens(msgs)
    flush = [prompt[0] + 1 if prompt[0] + 1 < m.n_vocab else prompt[0] - 1]
    ep.post({"prompt": flush, "max_tokens": 1, "temperature": 0.0}, timeout)  # empty the KV
    bias = {str(int(i)): -100 for i in m.eog}
    stats = {"requests": 0, "full_rows": 0, "batched_nodes": 0}
    reported = True
    builds: set[str] = set()

    def fetch(ids: list[int], k: int, root: bool) -> np.ndarray:
        nonlocal reported
        out = ep.post({"prompt": ids, "max_tokens": 1, "temperature": 1.0, "logprobs": k,
                       "logit_bias": bias, "return_tokens_as_token_ids": True}, timeout)
        stats["requests"] += 1
        stats["full_rows"] += k == m.n_vocab
        usage = out.get("usage") or {}
        if usage.get("prompt_tokens") not in (None, len(ids)):
            raise RuntimeError(f"{ep.name}: the server read {usage['prompt_tokens']} prompt "
                               f"tokens, {len(ids)} were sent (another model?)")
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached is None:
            reported = False
        elif cached != (0 if root else len(ids) - 1):
            stats["batched_nodes"] += 1
        if out.get("system_fingerprint"):
            builds.add(str(out["system_fingerprint"]))
        return _row_by_id(out, m.n_vocab, ep.name, full=k == m.n_vocab)

    def logits_of(n: int) -> np.ndarray:
        ids = prompt + tree.path(n)
        if n == 0 or top >= m.n_vocab:
            return fetch(ids, m.n_vocab, n == 0)
        row = fetch(ids, top, False)
        need = [tree.token[k] for k in tree.children(n)]
        if tree.word[n] >= 0:
            need += [int(i) for i in m.eog]
        if np.isnan(row[need]).any():
            row = fetch(ids, m.n_vocab, False)
        return row

    lower, upper, ladder, _, _ = walk(m, prompt, tree, "fresh", n_words, min_prob,
                                      logits_of=logits_of)
    if not reported:
        stats["batched_nodes"] = -1
    return lower, upper, ladder, stats, sorted(builds)


def served_replies(
    candidates: Sequence[str],
    prompt_fn: Callable[[str], list[dict[str, str]]],
    endpoints: str | Sequence[str] | Any,
    *,
    sources: Sequence[str] | None = None,
    model: str | Path = "smollm2",
    served_model: str | None = None,
    checkpoint: str | Path | None = None,
    server_info: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
    timeout: float = 300.0,
    tokenisations: str = "canonical",
    min_prob: float = 0.0,
    top: int = 4096,
) -> LogprobKernel:
    """``P(g | f)`` of the grammar sampler from a served model.

    With ``tokenisations="all"`` the exact walk of :func:`dbnb.llm.logprob.logprob_replies`
    (every tokenisation, the same bounds), each node's full-vocabulary row fetched from a
    token-id endpoint (llama-server or vLLM; module docstring, "Every tokenisation"). With
    ``"canonical"`` (the only choice on a text-only endpoint such as llama-cpp-python's
    server) the canonical tokenisation's term of ``P(g | f)`` alone, a lower bound. Prompts are
    spread over the endpoints, one worker each; each finished prompt is appended to
    ``checkpoint``.

    Parameters
    ----------
    candidates, prompt_fn, sources
        As in :func:`dbnb.llm.logprob.logprob_replies`.
    endpoints : str, sequence of str, path, Deployments
        One api base (``http://host:port/v1``) or several, or a deployments file (or its
        data, :func:`dbnb.llm.router.load_deployments`): every entry is one endpoint, its
        ``model_info.id`` the endpoint's name in ``info``.
    model : str or path
        The same GGUF the servers load, here for its tokenizer, chat template and SHA-256 only
        (no logits are computed locally).
    served_model : str, optional
        The model name the servers serve (``--model_alias``); default the deployments'
        ``litellm_params.model`` without its provider prefix. Needed with api bases.
    checkpoint : path, optional
        A JSON-lines file; a rerun with the same candidates, model file and served name reuses
        the prompts finished (same prompt tokens).
    server_info : mapping, optional
        What the servers' arithmetic depends on (flags such as ``logits_all``, ``flash_attn``,
        threads; llama.cpp version and CPU), stored as ``info["server"]``
        (:meth:`dbnb.llm.local.LocalServer.settings` for a server dbnb starts).
    info : mapping, optional
        Extra entries for the result's ``info``.
    timeout : float
        Seconds per request.
    tokenisations : {"canonical", "all"}
        ``"all"``: every tokenisation, on a token-id endpoint; ``"canonical"``: the canonical
        one, on a text endpoint with text-keyed full-vocabulary rows.
    min_prob : float, default 0
        With ``"all"``, the walk's cut-off (:func:`dbnb.llm.logprob.logprob_replies`).
    top : int, default 4096
        With ``"all"``, the log-probabilities asked for first at a node; the full vocabulary
        follows only where a token the walk needs is not among them (for SmolLM2 under the
        Letter's prompt 3 % of the nodes at 4096; a full row is ~4.7 MB of JSON from
        llama-server, 0.6 s, against ~0.08 s at 4096). Any value gives the same kernel.

    Returns
    -------
    LogprobKernel
        ``"all"``: the walk's ``prob`` (exact with ``min_prob=0``), ``upper`` and ``ladder``;
        ``info["batched_nodes"]`` per source counts the nodes the server did not evaluate as
        one token after its cached prefix (0: the sampler's own arithmetic; -1: not reported).
        ``"canonical"``: ``prob`` the canonical terms (lower bounds of ``P(g | f)``),
        ``upper = prob + uncovered``. Both: ``uncovered`` the missing mass, ``n_nodes`` the
        nodes scored (most over the sources), ``info["tokenisations"]``, ``info["bound"]``
        in words, ``info["endpoint_of_source"]`` and ``info["requests"]`` per source.
    """
    cands, srcs = check_candidates(candidates, sources)
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if tokenisations not in ("canonical", "all"):
        raise ValueError(f"tokenisations must be 'canonical' or 'all', got {tokenisations!r}")
    check_min_prob(min_prob)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    if min_prob and tokenisations == "canonical":
        raise ValueError("min_prob applies to tokenisations='all' only")
    every = tokenisations == "all"
    eps = _endpoints(endpoints, served_model)
    m = load_model(model)
    shared = None if every else _server_keys(m)
    key = _digest([SERVED_FORMAT, cands, m.path.name, eps[0].model, "canonical"] if not every
                  else [SERVED_FORMAT, cands, m.path.name, eps[0].model, "all",
                        float(min_prob)])
    ckpt = None if checkpoint is None else Checkpoint(checkpoint, key)
    done = {} if ckpt is None else ckpt.read()
    lock = threading.Lock()
    results: dict[str, dict[str, Any]] = {}
    todo: queue.Queue = queue.Queue()
    digests = {}
    for f in srcs:
        msgs = prompt_fn(f)
        d = _digest(m.prompt_tokens(msgs))
        digests[f] = d
        row = done.get((f, d))
        if row is not None:
            results[f] = row
        else:
            todo.put((f, msgs))
    errors: list[BaseException] = []
    down: dict[str, str] = {}  # endpoint -> why it was retired

    def work(ep: _Endpoint) -> None:
        tree = TokenTree(cands, m.pieces, m.max_piece)
        while not errors:
            try:
                f, msgs = todo.get_nowait()
            except queue.Empty:
                return
            t0 = time.perf_counter()
            try:
                if every:
                    lp, up, lad, st, builds = _walk_prompt(
                        ep, m, tree, len(cands), msgs, min_prob, timeout, top)
                    k = st["requests"]
                    extra = {"upper": up.tolist(), "ladder": lad.tolist(),
                             "batched_nodes": st["batched_nodes"],
                             "full_rows": st["full_rows"], "builds": builds,
                             "tree_nodes": tree.size}
                else:
                    lp, k = _score_prompt(ep, m, tree, cands, msgs, shared, timeout)
                    extra = {}
            except EndpointDown as exc:  # the prompt goes to another endpoint
                todo.put((f, msgs))
                with lock:
                    down[ep.name] = str(exc)
                return
            except BaseException as exc:  # reported after the other workers stop
                errors.append(exc)
                return
            row = {"source": f, "prompt": digests[f], "logprob": lp.tolist(),
                   "seconds": time.perf_counter() - t0, "endpoint": ep.name, "requests": k,
                   **extra}
            with lock:
                results[f] = row
                if ckpt is not None:
                    ckpt.append(row)

    while not todo.empty() and not errors:
        live = [ep for ep in eps if ep.name not in down]
        if not live:
            raise EndpointDown(
                f"every endpoint is down, {todo.qsize()} of {len(srcs)} prompts not scored "
                f"(finished prompts are kept in the checkpoint): {down}")
        threads = [threading.Thread(target=work, args=(ep,), daemon=True) for ep in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    batched = {f: results[f].get("batched_nodes", 0) for f in srcs}
    if every and any(b > 0 for b in batched.values()):
        import warnings

        n_b = sum(b for b in batched.values() if b > 0)
        n_r = sum(int(results[f]["requests"]) for f in srcs)
        warnings.warn(f"the servers evaluated {n_b} of {n_r} requests as batches, not as one "
                      "new token after a cached prefix (a KV cache that cannot be cut back: "
                      "sliding-window layers?): this kernel is not the sampler's arithmetic; "
                      "see info['batched_nodes']", RuntimeWarning, stacklevel=2)
    logprob = np.stack([np.asarray(results[f]["logprob"], dtype=float) for f in srcs],
                       axis=1)
    prob = np.exp(logprob)
    uncovered = np.clip(1.0 - prob.sum(axis=0), 0.0, None)
    seconds = np.array([results[f]["seconds"] for f in srcs])
    if every:
        upper = np.maximum(np.stack([results[f]["upper"] for f in srcs], axis=1), prob)
        ladder = np.exp(np.stack([np.asarray(results[f]["ladder"], dtype=float)
                                  for f in srcs], axis=2))
        n_nodes = max(int(results[f]["tree_nodes"]) for f in srcs)
        bound = ("exact: every tokenisation (the walk of logprob_replies)" if min_prob == 0
                 else f"the walk's bounds at min_prob={min_prob:g} (lower prob, upper upper)")
        backend = ("token-id /v1/completions (llama-server or vLLM), full-vocabulary "
                   "logprobs by token id per node")
        ladder.setflags(write=False)
    else:
        upper = np.minimum(prob + uncovered, 1.0)
        ladder = None
        n_nodes = max(int(results[f]["requests"]) for f in srcs)
        bound = ("prob is the canonical tokenisation's term of P(g|f) only (a lower bound; "
                 "upper = prob + uncovered), with each complete node's EOG mass taken as the "
                 "row's remainder outside the non-empty token texts (an upper bound of it)")
        backend = "openai-compatible /v1/completions, full-vocabulary logprobs per node"
    import llama_cpp

    kinfo = {
        "backend": backend,
        "tokenisations": tokenisations,
        "bound": bound,
        "model_file": Path(m.path).name,
        "model_sha256": _sha256(str(Path(m.path).resolve())),
        "served_model": eps[0].model,
        "tokenizer_llama_cpp_version": llama_cpp.__version__,
        "prompt_mode": "fresh",
        "min_prob": float(min_prob),
        "strategy": "served",
        "sampler": "grammar, temperature 1, top_k 0, top_p 1, min_p 0, repeat_penalty 1",
        "eog_tokens": m.eog.tolist(),
        "chat_template_sha256": m.chat_template_sha256,
        "server": dict(server_info or {}),
        "endpoint_of_source": [results[f]["endpoint"] for f in srcs],
        "endpoints_down": dict(down),
        "requests": [results[f]["requests"] for f in srcs],
        **({"batched_nodes": [results[f]["batched_nodes"] for f in srcs],
            "full_rows": [results[f]["full_rows"] for f in srcs],
            "top_logprobs": top,
            "server_builds": sorted({b for f in srcs for b in results[f]["builds"]}),
            "ladder_cuts": [min_prob * c for c in LADDER]} if every else {}),
        "prompt_tokens": [len(m.prompt_tokens(prompt_fn(f))) for f in srcs],
        **dict(info or {}),
    }
    for a in (prob, logprob, uncovered, upper, seconds):
        a.setflags(write=False)
    return LogprobKernel(states=tuple(cands), sources=tuple(srcs), prob=prob, logprob=logprob,
                         uncovered=uncovered, seconds=seconds,
                         n_nodes=n_nodes, info=kinfo, upper=upper, ladder=ladder)
