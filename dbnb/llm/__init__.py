"""The LLM layer: calls to language models, their record, the local model, log-probability kernels.

It imports only the core (:mod:`dbnb.counts`, :mod:`dbnb.kernels`), never the agents, the
diagnostics, the plots, ``reproduce`` or the CLI: an agent passes its prompts in.

client     :func:`sample` over :class:`Request` s through litellm's Router: replay from a
           store, bounded concurrency (:class:`CacheMiss`, :class:`ProviderUnavailable`)
store      the response store, cache and experimental record: :class:`MemoryStore`,
           :class:`JsonlStore`, :func:`make_key` (SHA-256 of model, messages, parameters,
           sample index), :func:`sanitize_params`, :func:`compact` (``.jsonl.gz``)
jsonl      :class:`JsonlFile`, the one append-only JSON Lines writer (file lock, fsync, a cut
           last line tolerated), and :func:`copy_json`
router     :func:`load_deployments`: litellm Router's ``model_list`` (JSON/YAML), checked before
           any call; ``sample(..., deployments=...)`` spreads calls over it
routing    how one call goes through the Router: the one-entry Router of a direct call, an
           injected ``complete=`` as a litellm provider, the Router's rate-limit refusals
           waited out (never a failure)
local      the one local-model registry (:data:`MODELS`, :func:`model_path`), llama-cpp-python's
           server (:class:`LocalServer`, :func:`resolve_model`), plain CPU kernels
logprob    log-probability kernels P(g | f) of a local model's grammar sampler (a subpackage:
           model, tree, walk, kernel, replies)
"""

from . import logprob
from .client import CacheMiss, ProviderUnavailable, Request, sample
from .jsonl import JsonlFile, copy_json
from .local import (
    LOCAL_DEFAULTS,
    MODELS,
    LocalServer,
    is_local,
    local_name,
    model_path,
    plain_cpu_kernels,
    resolve_model,
    serve_forever,
)
from .logprob import LogprobKernel, load_logprob_kernel, logprob_replies
from .router import Deployments, DeploymentsError, load_deployments
from .store import JsonlStore, MemoryStore, Store, compact, make_key, sanitize_params

__all__ = [
    "LOCAL_DEFAULTS",
    "MODELS",
    "CacheMiss",
    "Deployments",
    "DeploymentsError",
    "JsonlFile",
    "JsonlStore",
    "LocalServer",
    "LogprobKernel",
    "MemoryStore",
    "ProviderUnavailable",
    "Request",
    "Store",
    "compact",
    "copy_json",
    "is_local",
    "load_deployments",
    "load_logprob_kernel",
    "local_name",
    "logprob",
    "logprob_replies",
    "make_key",
    "model_path",
    "plain_cpu_kernels",
    "resolve_model",
    "sample",
    "sanitize_params",
    "serve_forever",
]
