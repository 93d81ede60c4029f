"""The prompt schedules (dbnb.schedules): round robin and the Letter's rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dbnb.schedules import letter_schedule, round_robin


def test_round_robin_order_and_sample_indices():
    assert list(round_robin(["A", "B", "A"], 3)) == [
        ("A", 0), ("B", 0), ("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    with pytest.raises(ValueError, match="calls_per_state"):
        round_robin(["A"], 0)
    with pytest.raises(ValueError, match="states"):
        round_robin([], 2)


def test_letter_schedule_is_uniform_over_the_states_found():
    found = ["BUZZY", "ATTITUDE", "TURKEY", "PERSONAL", "PROBLEM"]
    s = letter_schedule("BUZZY", seed=12345)
    assert next(s) == ("BUZZY", 0)
    first = s.send(found[1:] + [None, "BUZZY"])  # repeats and escapes change nothing
    draws = [first[0]] + [next(s)[0] for _ in range(19999)]
    obs = np.array([draws.count(w) for w in found])
    chi2, p = stats.chisquare(obs)
    assert p > 1e-3, (obs, chi2)


def test_letter_schedule_sample_indices_count_earlier_calls_per_prompt():
    s = letter_schedule("A", 5, pick=lambda n: 0)
    assert list(s) == [("A", 0), ("A", 1), ("A", 2), ("A", 3), ("A", 4)]
    with pytest.raises(ValueError, match="n_calls"):
        letter_schedule("A", 0)


def test_letter_schedule_default_draws_are_the_seeded_integers():
    """The default pick is ``default_rng(seed).integers(n)``: the shipped runs replay it."""
    rng = np.random.default_rng(7)
    s = letter_schedule("A", seed=7)
    got = [next(s)]
    found = ["A"]
    for new in ["B", "C", None, "D", "B"]:
        got.append(s.send([new]))
        if new is not None and new not in found:
            found.append(new)
    want = [("A", 0)]
    rng.integers(1)
    found_w = ["A"]
    counts = {"A": 1}
    for new in ["B", "C", None, "D", "B"]:
        if new is not None and new not in found_w:
            found_w.append(new)
        f = found_w[int(rng.integers(len(found_w)))]
        want.append((f, counts.get(f, 0)))
        counts[f] = counts.get(f, 0) + 1
    assert got == want
