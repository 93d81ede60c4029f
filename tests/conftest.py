"""Fixtures shared by the test modules: the Letter's Table II fit and fixed seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# Test helpers that are modules, not fixtures (``letter_files``: the Letter's files written into
# tmp_path): importable from the test modules, which pytest imports in importlib mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def table2_fit():
    """The least-action fit of the Letter's Table II (Claude-4; Eq. 22)."""
    from dbnb.datasets import claude4_table2
    from dbnb.potential import fit_potential

    return fit_potential(claude4_table2())


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20251210)


@pytest.fixture
def fast_minutes(monkeypatch, request):
    """litellm's rpm/tpm limiter and dbnb's wait for it on a clock where a minute lasts 2 s.

    litellm keys its per-deployment counters by the UTC minute (``HH-MM``) of the clock its
    ``enforce_model_rate_limits`` check was built with; dbnb waits for that clock's next minute
    (``dbnb.llm.routing.CLOCK``). Both get the same fast clock, which starts 1 s into a minute
    when it is first read (the first call's admission, not the Router's set-up). Returns the
    clock (a callable giving the fast UTC datetime). Indirect parametrisation sets the speed
    (clock seconds per real second, default 30) for tests whose calls are slower.
    """
    import datetime as _dt
    import os
    import time as _time

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as dbnb imports it: offline
    pytest.importorskip("litellm")
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import (
        ModelRateLimitingCheck,
    )

    from dbnb.llm import routing

    speed = float(getattr(request, "param", 30.0))
    origin = _dt.datetime(2026, 1, 1, 12, 0, 1, tzinfo=_dt.timezone.utc)
    start: list[float] = []

    def now() -> _dt.datetime:
        if not start:
            start.append(_time.monotonic())
        return origin + _dt.timedelta(seconds=(_time.monotonic() - start[0]) * speed)

    defaults = ModelRateLimitingCheck.__init__.__defaults__
    assert defaults is not None and len(defaults) == 1, "litellm's clock seam moved"
    monkeypatch.setattr(ModelRateLimitingCheck.__init__, "__defaults__", (now,))
    monkeypatch.setattr(routing, "CLOCK", routing.MinuteClock(now=now, speed=speed))
    return now
