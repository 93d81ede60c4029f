"""Waiting out the Router's own rate-limit refusals (dbnb.llm.routing), on litellm's exceptions."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as dbnb imports it: offline
litellm = pytest.importorskip("litellm")

from litellm.types.router import RouterRateLimitError  # noqa: E402

from dbnb.llm import routing  # noqa: E402


def _refusal(msg: str, provider: str = "") -> Exception:
    return litellm.RateLimitError(message=msg, llm_provider=provider, model="m")


def _cooldown(all_cooling: bool = True) -> Exception:
    return RouterRateLimitError(model="m", cooldown_time=0.01, enable_pre_call_checks=False,
                                cooldown_list=["a"] if all_cooling else [],
                                model_ids=["a"])  # fmt: skip


@pytest.mark.parametrize("exc, kind", [
    (_refusal("Model rate limit exceeded. RPM limit=2, current usage=3"), "minute"),
    (_refusal("Model rate limit exceeded. TPM limit=10, current usage=12"), "minute"),
    (_refusal("No deployments available for selected model. Passed model=m."), "minute"),
    (_refusal("Deployment has all max_parallel_requests slots in use."), "slot"),
    (_cooldown(), "cooldown"),
    # not ours to wait for: a provider's 429, a budget, a daily limit, other errors
    (_refusal("Rate limit reached for requests", provider="openai"), None),
    (_refusal("No deployments available - crossed budget"), None),
    (_refusal("Model rate limit exceeded. RPD limit=5, current usage=6"), None),
    (_cooldown(all_cooling=False), None),
    (litellm.InternalServerError(message="x", llm_provider="", model="m"), None),
    (ValueError("No deployments available for selected model."), None),
])  # fmt: skip
def test_own_limit_tells_the_routers_refusals_from_the_rest(exc, kind):
    assert routing.own_limit(exc) == kind


def test_minute_clock_waits_for_the_next_minute():
    at = dt.datetime(2026, 1, 1, 12, 0, 45, 500000, tzinfo=dt.timezone.utc)
    clock = routing.MinuteClock(now=lambda: at, margin=0.25)
    assert clock.until_next_minute() == pytest.approx(14.75)
    assert routing.MinuteClock(now=lambda: at, speed=10.0).until_next_minute() == \
        pytest.approx(1.475)


def test_call_until_admitted_waits_then_returns_and_counts_waits():
    outcomes = [_refusal("Model rate limit exceeded. RPM limit=1, current usage=2"),
                _refusal("max_parallel_requests slots in use"), _cooldown(), "ok"]
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
    outcomes = [_refusal("Model rate limit exceeded. RPM limit=1, current usage=2"),
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
