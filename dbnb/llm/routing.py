"""How one call goes through litellm's Router: rate limits that wait, retries, injected fakes.

Every call :func:`dbnb.llm.sample` sends goes through a ``litellm.Router``: the Router over a
deployments file (:mod:`dbnb.llm.router`), or the one-entry Router of a direct call
(:func:`direct_router`). An injected ``complete=`` function is served as a litellm custom
provider of that Router (:data:`INJECTED_PROVIDER`), so it sees the same rpm/tpm limits, the
same retries and the same exception mapping as a real provider.

Rate limits wait, they do not fail
----------------------------------
litellm enforces a deployment's ``rpm``/``tpm`` per UTC minute: its counters are keyed by the
minute (``HH-MM``), and a call over the limit is refused with a ``litellm.RateLimitError``
that no provider raised (``llm_provider == ""``). The Router alone does not turn that refusal
into a wait:

- with ``enforce_model_rate_limits`` on one deployment it returns the refusal at once, even
  with ``num_retries`` left;
- where it does retry a refusal (``usage-based-routing-v2``), it sleeps the error's fixed
  ``retry-after`` of 60 s and spends one of ``num_retries``, which real failures share (a
  ``RetryPolicy`` is keyed by exception class, and the Router's refusal and a provider's 429
  are one class): more calls waiting than a minute admits, or ``num_retries=0``, end with the
  refusal;
- over several deployments it retries a refusal at once, without sleeping, while another
  deployment is healthy (litellm issue #7669), and gives up before any minute turns; and it
  cools a deployment down on any 429, its own refusal included, so a call waiting for the next
  minute can find every deployment cooling down;
- with ``max_parallel_requests`` (litellm derives it from ``rpm`` when unset) a call arriving
  while every slot is busy is refused at once instead of waiting for a slot.

Recorded as they come back, all of these would be failed calls. :func:`call_until_admitted` is
the part litellm lacks: on the Router's own refusal (and only on it: :func:`own_limit`) it
sleeps until the refused window frees (the next UTC minute, a moment for a busy slot, the
cool-down's end) and asks again, as often as it takes; only a cool-down that outlasts
:data:`MAX_COOLDOWN_WAITS` waits in a row, which real failures cause, ends the call. A refused
call is never a failure and never reaches a provider; its waits are counted in
``record["rate_limit_waits"]``, not in ``attempts``. Everything else (which errors to retry,
backoff, cool-downs, fallbacks) is the Router's.

Measured with litellm 1.110.2 (2026-12-03, mock and injected deployments):
``enforce_model_rate_limits`` admits exactly ``rpm`` calls a minute, also with 6 in flight at
rpm=3; ``usage-based-routing-v2`` admits ``rpm - 1`` (its selection skips a deployment once
``count + 1 >= rpm``) and, with ``num_retries=2``, sent calls 2 and 3 of a sequential run at
rpm=2 out after 64 s and 124 s. A direct call therefore uses ``enforce_model_rate_limits``:
3 sequential calls at rpm=2 (``num_retries=2``) went out at once, at once, and 0.33 s after
the next minute began (one wait, one attempt each).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "INJECTED_PROVIDER",
    "MinuteClock",
    "call_until_admitted",
    "direct_router",
    "injected_calls",
    "own_limit",
]

INJECTED_PROVIDER = "dbnb_injected"
"""The litellm custom provider that serves an injected ``complete=`` function."""

_SLOT_WAIT = 0.05  # seconds: a slot frees when a call in flight returns
MAX_COOLDOWN_WAITS = 3
"""Consecutive waits for an all-deployments cool-down before the call counts as failed."""


def own_limit(exc: BaseException) -> str | None:
    """Whether `exc` is the Router refusing a call over its own limits, and which.

    Read from what litellm puts on its own refusals, not from their wording: a
    ``litellm.RateLimitError`` that no provider raised (``llm_provider`` empty) and whose
    ``rate_limit_type`` is ``concurrent_requests`` (every ``max_parallel_requests`` slot
    busy), or whose 429 body carries litellm's ``RouterErrors.user_defined_ratelimit_error``
    with a ``retry-after`` of at most a minute (an rpm/tpm limiter:
    ``enforce_model_rate_limits``, usage-based routing); or, for usage-based routing's
    selection, which raises with no body, the message litellm builds from
    ``RouterErrors.no_deployments_available``; or a ``RouterRateLimitError`` with every
    deployment cooling down. Daily limits (their ``retry-after`` runs to the next day),
    budgets and a provider's own 429 are not waited for.

    Parameters
    ----------
    exc : BaseException
        What ``router.acompletion`` raised.

    Returns
    -------
    {"minute", "slot", "cooldown"} or None
        ``"minute"``: over a deployment's rpm/tpm in this UTC minute; ``"slot"``: every
        ``max_parallel_requests`` slot busy; ``"cooldown"``: every deployment of the model
        cooling down (over several deployments litellm cools a deployment down on any 429,
        its own refusal included); ``None``: anything else, including a provider's own 429
        (which names its provider and is the Router's to retry).
    """
    litellm = sys.modules.get("litellm")
    if litellm is None:
        return None
    from litellm.types.router import RouterErrors, RouterRateLimitError

    if isinstance(exc, RouterRateLimitError):
        return "cooldown" if getattr(exc, "all_deployments_in_cooldown", False) else None
    if not isinstance(exc, litellm.RateLimitError) or getattr(exc, "llm_provider", None):
        return None
    kind = getattr(exc, "rate_limit_type", None)
    if kind == "concurrent_requests":
        return "slot"
    if kind in ("budget", "max_iterations"):
        return None
    resp = getattr(exc, "response", None)
    body = getattr(resp, "text", "") or ""
    if RouterErrors.user_defined_ratelimit_error.value in body:
        try:
            retry = float(resp.headers.get("retry-after", "60"))
        except ValueError:
            return None
        return "minute" if retry <= 60 else None
    if str(getattr(exc, "message", "")).startswith(
            f"litellm.RateLimitError: {RouterErrors.no_deployments_available.value}."):
        return "minute"
    return None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class MinuteClock:
    """The clock litellm keys its rpm/tpm counters by, and how to wait for its next minute.

    Parameters
    ----------
    now : callable, default UTC now
        The time litellm's limiter sees (``litellm.utils.get_utc_datetime``).
    speed : float, default 1
        Clock seconds per real second (a test runs litellm on a faster clock).
    margin : float, default 0.25
        Clock seconds waited past the turn of the minute.
    """

    now: Callable[[], datetime] = _utc_now
    speed: float = 1.0
    margin: float = 0.25

    def until_next_minute(self) -> float:
        """Real seconds until the minute after the current one has begun (plus `margin`)."""
        t = self.now()
        into = t.second + t.microsecond / 1e6
        return (60.0 - into + self.margin) / self.speed


CLOCK = MinuteClock()


async def call_until_admitted(
    call: Callable[[], Awaitable[Any]], *, clock: MinuteClock | None = None
) -> tuple[Any, int]:
    """Await ``call()``, waiting and asking again while the Router refuses it over its limits.

    Parameters
    ----------
    call : callable
        ``call()`` returns an awaitable: one ``router.acompletion(...)`` (with its retries).
    clock : MinuteClock, optional
        Default :data:`CLOCK` (read at call time, so a test can swap it).

    Returns
    -------
    response, waits
        What `call` returned, and how many times it was refused first.

    Raises
    ------
    Exception
        Whatever `call` raised that is not the Router's own refusal (:func:`own_limit`), with
        the number of waits before it in its ``dbnb_rate_limit_waits`` attribute.
    """
    waits = cooling = 0
    while True:
        try:
            return await call(), waits
        except Exception as exc:
            kind = own_limit(exc)
            # a cool-down outlasting a few waits is not a rate limit: real failures caused it
            cooling = cooling + 1 if kind == "cooldown" else 0
            if kind is None or cooling > MAX_COOLDOWN_WAITS:
                exc.dbnb_rate_limit_waits = waits
                raise
            wait = _wait_for(kind, exc, CLOCK if clock is None else clock)
        waits += 1
        await asyncio.sleep(wait)


def _wait_for(kind: str, exc: BaseException, clock: MinuteClock) -> float:
    if kind == "minute":
        return clock.until_next_minute()
    if kind == "cooldown":  # litellm's cool-downs run on the real clock
        t = getattr(exc, "cooldown_time", None)
        t = float(t) if isinstance(t, (int, float)) and t > 0 else 1.0
        return min(t, 60.0) + 0.05
    return _SLOT_WAIT


# -- an injected complete= as a litellm provider ----------------------------------------------
@dataclass
class _Pending:
    """One call of an injected function: what to call, and what it did."""

    complete: Callable[..., Any]
    kwargs: dict
    timeout: float
    calls: int = 0
    raw: Any = None
    errors: list = field(default_factory=list)


_PENDING: dict[str, _Pending] = {}
_TOKENS = itertools.count()
_HANDLER: Any = None


def _register_injected(litellm) -> None:
    """Register :data:`INJECTED_PROVIDER` with litellm once per process."""
    global _HANDLER
    if _HANDLER is None:

        class _InjectedHandler(litellm.CustomLLM):
            async def acompletion(self, model, messages, *args, litellm_params=None, **kw):
                meta = (litellm_params or {}).get("metadata") or {}
                p = _PENDING.get(meta.get("dbnb_call"))
                if p is None:
                    raise RuntimeError(f"{INJECTED_PROVIDER}: no pending call for {model!r}")
                p.calls += 1
                try:
                    raw = await asyncio.wait_for(p.complete(**p.kwargs), p.timeout)
                except asyncio.TimeoutError:
                    msg = f"no reply within timeout={p.timeout} s"
                    p.errors.append(asyncio.TimeoutError(msg))
                    raise litellm.Timeout(message=msg, model=model,
                                          llm_provider=INJECTED_PROVIDER) from None
                except Exception as exc:
                    p.errors.append(exc)
                    raise
                p.raw = raw
                # The Router needs a response of its own; dbnb reads the injected one (p.raw).
                return litellm.ModelResponse(
                    choices=[{"message": {"role": "assistant", "content": ""},
                              "finish_reason": "stop", "index": 0}],
                    usage=_usage(raw))

            def completion(self, *args, **kw):
                raise NotImplementedError(f"{INJECTED_PROVIDER} serves async calls only")

        _HANDLER = _InjectedHandler()
    entries = list(getattr(litellm, "custom_provider_map", None) or [])
    if not any(e.get("provider") == INJECTED_PROVIDER for e in entries):
        litellm.custom_provider_map = [
            *entries, {"provider": INJECTED_PROVIDER, "custom_handler": _HANDLER}]


def _usage(raw: Any) -> dict:
    u = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    get = (u.get if isinstance(u, Mapping) else lambda k: getattr(u, k, None)) if u else None
    p = (get("prompt_tokens") if get else None) or 0
    c = (get("completion_tokens") if get else None) or 0
    p, c = (p if isinstance(p, int) else 0), (c if isinstance(c, int) else 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


class injected_calls:  # noqa: N801 - used as a context manager, like contextlib's
    """Calls of an injected function, keyed per call for :data:`INJECTED_PROVIDER`.

    ``with injected_calls(complete, timeout) as calls:`` then ``token = calls.add(kwargs)``;
    pass ``metadata={"dbnb_call": token}`` to ``router.acompletion`` and read
    ``calls.pop(token)`` (a ``_Pending``: ``raw`` response, ``calls``, ``errors``) after it.
    """

    def __init__(self, complete: Callable[..., Any], timeout: float) -> None:
        self.complete, self.timeout = complete, timeout
        self._mine: set[str] = set()

    def __enter__(self) -> injected_calls:
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self._mine:
            _PENDING.pop(t, None)

    def add(self, kwargs: dict) -> str:
        token = f"{id(self)}:{next(_TOKENS)}"
        _PENDING[token] = _Pending(self.complete, kwargs, self.timeout)
        self._mine.add(token)
        return token

    def pop(self, token: str) -> _Pending:
        self._mine.discard(token)
        return _PENDING.pop(token)


# -- the one-entry Router of a direct call ----------------------------------------------------
def direct_router(
    targets: Sequence[tuple[str, str, Mapping[str, Any], str]],
    *,
    rpm: float | None,
    tpm: float | None,
    max_retries: int,
    timeout: float,
    concurrency: int,
    injected: bool = False,
):
    """A ``litellm.Router`` with one deployment per model: what a direct call goes through.

    Parameters
    ----------
    targets : sequence of (model_name, litellm model, extra litellm_params, deployment id)
        One entry per requested model.
    rpm, tpm : float, optional
        The deployment's limits, enforced by litellm's ``enforce_model_rate_limits`` per UTC
        minute (waited out by :func:`call_until_admitted`).
    max_retries : int
        The Router's ``num_retries``.
    timeout : float
        The Router's ``timeout``, seconds per attempt.
    concurrency : int
        dbnb's calls in flight: each deployment's ``max_parallel_requests``, so that litellm's
        slot limit (derived from rpm otherwise) never refuses a call dbnb sends.
    injected : bool, default False
        The entries are served by an injected function (:data:`INJECTED_PROVIDER`).
    """
    from .client import _import_litellm

    litellm = _import_litellm()
    if injected:
        _register_injected(litellm)
    entries = []
    for name, lmodel, extra, ident in targets:
        # max_retries=0: the Router retries, not the openai client inside it
        lp: dict[str, Any] = {"model": lmodel, **extra, "max_retries": 0,
                              "max_parallel_requests": int(concurrency)}
        if rpm is not None:
            lp["rpm"] = rpm
        if tpm is not None:
            lp["tpm"] = tpm
        entries.append({"model_name": name, "litellm_params": lp, "model_info": {"id": ident}})
    settings: dict[str, Any] = {}
    if rpm is not None or tpm is not None:
        settings["optional_pre_call_checks"] = ["enforce_model_rate_limits"]
    # One deployment per model: a cool-down would only turn retries into refusals.
    return litellm.Router(model_list=entries, num_retries=max_retries, timeout=timeout,
                          retry_after=0, disable_cooldowns=True, **settings)
