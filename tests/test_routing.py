"""Waiting out the Router's own rate-limit refusals (dbnb.llm.routing), on litellm's exceptions."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as dbnb imports it: offline
litellm = pytest.importorskip("litellm")

from litellm.types.router import RouterErrors, RouterRateLimitError  # noqa: E402

from dbnb.llm import routing  # noqa: E402


def _refusal(msg: str, provider: str = "", body: str = "", retry: str | None = None,
             **kw) -> Exception:
    """A RateLimitError built as litellm's limiters build theirs (a 429 body and headers)."""
    import httpx

    resp = httpx.Response(429, content=body, headers={} if retry is None else {
        "retry-after": retry}, request=httpx.Request("POST", "https://example.invalid"))
    return litellm.RateLimitError(message=msg, llm_provider=provider, model="m",
                                  response=resp, **kw)


def _cooldown(all_cooling: bool = True) -> Exception:
    return RouterRateLimitError(model="m", cooldown_time=0.01, enable_pre_call_checks=False,
                                cooldown_list=["a"] if all_cooling else [],
                                model_ids=["a"])  # fmt: skip


_OURS = RouterErrors.user_defined_ratelimit_error.value


def _minute() -> Exception:
    return _refusal("Model rate limit exceeded. RPM limit=1, current usage=2",
                    body=f"{_OURS} rpm limit=1. current usage=2", retry="60")


@pytest.mark.parametrize("exc, kind", [
    (_refusal("Model rate limit exceeded. RPM limit=2", body=f"{_OURS} rpm limit=2",
              retry="60"), "minute"),
    (_refusal("anything", body=f"{_OURS} tpm limit=10", retry="60"), "minute"),
    (_refusal(f"{RouterErrors.no_deployments_available.value}. Passed model=m.", retry="60"),
     "minute"),
    (_refusal("anything", rate_limit_type="concurrent_requests"), "slot"),
    (_cooldown(), "cooldown"),
    # not ours to wait for: a provider's 429 (even with our body), a budget, a daily limit
    # (retry-after to the next day), other errors
    (_refusal("Rate limit reached for requests", provider="openai"), None),
    (_refusal("x", provider="openai", body=_OURS, retry="60"), None),
    (_refusal("No deployments available - crossed budget", rate_limit_type="budget"), None),
    (_refusal("Model rate limit exceeded. RPD limit=5", body=f"{_OURS} rpd limit=5",
              retry="40000"), None),
    (_refusal("Model rate limit exceeded. RPM limit=2"), None),  # the wording alone: not ours
    (_cooldown(all_cooling=False), None),
    (litellm.InternalServerError(message="x", llm_provider="", model="m"), None),
    (ValueError("No deployments available for selected model."), None),
])  # fmt: skip
def test_own_limit_tells_the_routers_refusals_from_the_rest(exc, kind):
    assert routing.own_limit(exc) == kind


@pytest.mark.parametrize("settings, dep, kind", [
    ({"optional_pre_call_checks": ["enforce_model_rate_limits"]}, {"rpm": 1}, "minute"),
    ({"routing_strategy": "usage-based-routing-v2"}, {"rpm": 2}, "minute"),
    ({}, {"max_parallel_requests": 1}, "slot"),
])  # fmt: skip
def test_own_limit_knows_the_refusals_of_litellms_real_limiters(settings, dep, kind):
    """The refusals litellm's own limiters raise (no dbnb wait around them): sequential calls
    inside one minute over the rpm, a second call in flight with one slot. Pins what
    :func:`dbnb.llm.routing.own_limit` reads to the installed litellm."""
    router = litellm.Router(model_list=[{
        "model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "x",
                                              "mock_response": "ok", **dep}}],
        num_retries=0, **settings)

    async def calls():
        msgs = [{"role": "user", "content": "hi"}]
        if kind == "slot":  # two calls in flight at once
            return await asyncio.gather(*[router.acompletion(model="m", messages=msgs,
                                                             mock_delay=0.3)
                                          for _ in range(2)], return_exceptions=True)
        out = []
        for _ in range(3):  # sequential, inside one minute
            try:
                out.append(await router.acompletion(model="m", messages=msgs))
            except Exception as exc:  # noqa: BLE001 - the refusal under test
                out.append(exc)
                break
        return out

    got = asyncio.run(calls())
    errs = [g for g in got if isinstance(g, Exception)]
    assert len(errs) == 1, got
    assert routing.own_limit(errs[0]) == kind, repr(errs[0])


def test_minute_clock_waits_for_the_next_minute():
    at = dt.datetime(2026, 1, 1, 12, 0, 45, 500000, tzinfo=dt.timezone.utc)
    clock = routing.MinuteClock(now=lambda: at, margin=0.25)
    assert clock.until_next_minute() == pytest.approx(14.75)
    assert routing.MinuteClock(now=lambda: at, speed=10.0).until_next_minute() == \
        pytest.approx(1.475)


def test_call_until_admitted_waits_then_returns_and_counts_waits():
    outcomes = [_minute(), _refusal("slots in use", rate_limit_type="concurrent_requests"),
                _cooldown(), "ok"]
    seen = []

    async def call():
        seen.append(1)
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    clock = routing.MinuteClock(now=lambda: dt.datetime(2026, 1, 1, 12, 0, 59, 990000,
                                                        tzinfo=dt.timezone.utc))
    assert asyncio.run(routing.call_until_admitted(call, clock=clock)) == ("ok", 3)
    assert len(seen) == 4


def test_a_real_failure_is_raised_with_its_waits_and_a_long_cooldown_ends_the_call():
    outcomes = [_minute(),
                litellm.InternalServerError(message="boom", llm_provider="openai", model="m")]

    async def call():
        raise outcomes.pop(0)

    fast = routing.MinuteClock(now=lambda: dt.datetime(2026, 1, 1, 12, 0, 59, 990000,
                                                       tzinfo=dt.timezone.utc))
    with pytest.raises(litellm.InternalServerError) as info:
        asyncio.run(routing.call_until_admitted(call, clock=fast))
    assert info.value.dbnb_rate_limit_waits == 1

    n = []

    async def cooling():
        n.append(1)
        raise _cooldown()

    with pytest.raises(RouterRateLimitError) as info:
        asyncio.run(routing.call_until_admitted(cooling, clock=fast))
    assert len(n) == routing.MAX_COOLDOWN_WAITS + 1
    assert info.value.dbnb_rate_limit_waits == routing.MAX_COOLDOWN_WAITS
