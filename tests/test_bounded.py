"""The potential of a kernel known within bounds: recovery, exact ranges, certified violations."""

from __future__ import annotations

import numpy as np
import pytest

from dbnb.bounded import bounded_potential, popularity_bounds
from dbnb.synthetic import driven_chain, reversible_chain


def _kernel(chain) -> np.ndarray:
    return chain.matrix.toarray()


def _widen(t: np.ndarray, rng: np.random.Generator, width: float):
    """Bounds around ``t``: each entry's lower bound up to ``width`` below it in log, its upper
    bound up to ``width`` above (independent uniform draws), so the truth lies inside."""
    lo = t * np.exp(-width * rng.random(t.shape))
    up = t * np.exp(width * rng.random(t.shape))
    return lo, up


def test_exact_kernel_recovers_the_potential():
    """``lower = upper``: the log-ratios are exact, every range has width 0 (up to the
    rounding slack) and the point estimate is the true potential."""
    chain = reversible_chain(40, degree=4, sigma=1.5, seed=3)
    t = _kernel(chain)
    fit = bounded_potential(t, t, states=chain.states)
    assert fit.consistent and fit.one_way.empty
    v = fit.potential.to_numpy()
    true = chain.potential - chain.potential[chain.states.index(fit.reference)]
    np.testing.assert_allclose(v, true, atol=1e-7)
    assert np.nanmax(fit.high - fit.low) < 1e-7 * len(chain.states)
    assert fit.potential.min() == 0.0 and (fit.pairs["outside"] < 1e-7).all()


@pytest.mark.parametrize("width", [0.05, 0.5, 2.0])
def test_widened_bounds_contain_the_truth(width):
    """The recovery test: the true potential difference to the reference lies inside every
    state's exact range, the point estimate too, and the ranges grow with the bounds."""
    rng = np.random.default_rng(11)
    chain = reversible_chain(60, degree=4, sigma=1.0, seed=5)
    t = _kernel(chain)
    lo, up = _widen(t, rng, width)
    fit = bounded_potential(lo, up, states=chain.states, reference=chain.states[0])
    assert fit.consistent
    true = chain.potential - chain.potential[0]
    ok = fit.potential.notna().to_numpy()
    assert ok.all()
    eps = 1e-8
    assert (fit.low.to_numpy() - eps <= true).all() and (true <= fit.high.to_numpy() + eps).all()
    v = fit.potential.to_numpy()
    pull = 1e-3 * width  # the tie-break's pull: about tie (1e-4) times a half-width
    assert (fit.low.to_numpy() - pull <= v).all() and (v <= fit.high.to_numpy() + pull).all()
    # every pair's interval holds the fitted difference (a consistent system fits exactly)
    assert fit.pairs["outside"].max() < pull
    spread = float(np.median(fit.high - fit.low))
    assert 0.1 * width < spread < 20 * width
    # the point estimate is no further from the truth than the ranges allow
    assert np.max(np.abs(v - true)) <= np.max(fit.high - fit.low) + pull


def test_a_drive_beyond_the_bounds_is_a_certified_violation():
    """A driven chain's cycle affinity exceeds narrow bounds: no potential fits (negative
    cycle), some pair's fitted difference is outside its interval; bounds wide enough to
    cover the drive make it consistent again."""
    chain = driven_chain(40, degree=4, sigma=1.0, drive=1.0, seed=7)
    t = _kernel(chain)
    rng = np.random.default_rng(12)
    narrow = bounded_potential(*_widen(t, rng, 0.01), states=chain.states)
    assert not narrow.consistent
    assert narrow.low.isna().all() and narrow.high.isna().all()
    assert narrow.pairs["outside"].max() > 0.05
    assert narrow.potential.notna().any()  # the point estimate still exists
    wide = bounded_potential(t * np.exp(-3.0), t * np.exp(3.0), states=chain.states)
    assert wide.consistent


def test_one_sided_and_one_way_pairs():
    """A pair whose reverse lower bound is 0 constrains only one side of the range; a pair
    whose reverse upper bound is 0 is one-way (reported, not fitted)."""
    # reversible: beta V = (0, log 2, 2 log 2) for A, B, C
    t = np.array([[0.0, 0.2, 0.2], [0.1, 0.0, 0.2], [0.05, 0.1, 0.0]])
    fit = bounded_potential(t, t, states=["A", "B", "C"], reference="A")
    lo = t.copy()
    lo[0, 2] = 0.0  # T(A <- C) only known to be <= 0.2
    half = bounded_potential(lo, t, states=["A", "B", "C"], reference="A")
    assert half.consistent and len(half.pairs) == 3
    row = half.pairs[(half.pairs.f == "A") & (half.pairs.g == "C")].iloc[0]
    assert np.isfinite(row.a) and row.b == np.inf
    np.testing.assert_allclose(fit.potential, [0.0, np.log(2), 2 * np.log(2)], atol=1e-7)
    np.testing.assert_allclose(half.potential, fit.potential, atol=1e-7)  # A-B, B-C fix it
    # C's range: from A-B-C exactly, the one-sided A-C bound adds nothing
    assert half.high["C"] - half.low["C"] < 1e-6
    up = t.copy()
    lo2 = t.copy()
    up[0, 2] = lo2[0, 2] = 0.0  # C never goes to A, A goes to C
    ow = bounded_potential(lo2, up, states=["A", "B", "C"])
    assert list(ow.one_way.itertuples(index=False, name=None)) == [("A", "C")]
    assert len(ow.pairs) == 2


def test_gauge_and_reference():
    chain = reversible_chain(20, degree=3, sigma=1.0, seed=9)
    t = _kernel(chain)
    a = bounded_potential(t, t, states=chain.states)
    b = bounded_potential(t, t, states=chain.states, reference=chain.states[4])
    assert b.potential[chain.states[4]] == 0.0 and b.reference == chain.states[4]
    diff = (a.potential - b.potential).to_numpy()
    np.testing.assert_allclose(diff, diff[0], atol=1e-8)  # the same up to the constant


def test_rejects_bad_input():
    t = np.array([[0.0, 0.2], [0.1, 0.0]])
    with pytest.raises(ValueError, match="square"):
        bounded_potential(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="agree"):
        bounded_potential(t, np.ones((3, 3)))
    with pytest.raises(ValueError, match="upper < lower"):
        bounded_potential(t, t / 2)
    with pytest.raises(ValueError, match="non-negative"):
        bounded_potential(-t, t)
    with pytest.raises(ValueError, match="labels"):
        bounded_potential(t, t, states=["A"])
    with pytest.raises(ValueError, match="no pair"):
        bounded_potential(np.zeros((2, 2)), t)
    with pytest.raises(ValueError, match="tie"):
        bounded_potential(t, t, tie=-1.0)
    with pytest.raises(KeyError, match="Z"):
        bounded_potential(t, t, states=["A", "B"], reference="Z")


def test_popularity_control_keeps_the_widths_and_is_consistent():
    """The control of a driven chain's narrow bounds: same support, same log-widths, and
    consistent (its potential is -log p), while the chain itself is violated."""
    chain = driven_chain(30, degree=4, sigma=1.0, drive=1.0, seed=2)
    t = _kernel(chain)
    lo, up = _widen(t, np.random.default_rng(4), 0.02)
    g, f = np.argwhere((t > 0) & (t.T > 0))[0]
    lo[g, f] = 0.0  # one-sided, with an upper bound far below the control's p(g)
    up[g, f] = 1e-9
    assert not bounded_potential(lo, up).consistent
    c_lo, c_up = popularity_bounds(lo, up)
    off = ~np.eye(len(t), dtype=bool)
    assert ((c_lo > 0) == ((lo > 0) & off)).all() and ((c_up > 0) == ((up > 0) & off)).all()
    pos = lo > 0
    np.testing.assert_allclose(np.log(c_up[pos] / c_lo[pos]), np.log(up[pos] / lo[pos]))
    ctrl = bounded_potential(c_lo, c_up)
    assert ctrl.consistent and ctrl.pairs["outside"].max() < 1e-6
    # -log p (the control's own potential) lies in every state's range
    p = c_lo.max(axis=1)
    ref = int(ctrl.potential.index.get_loc(ctrl.reference))
    true = -(np.log(p) - np.log(p[ref]))
    assert (ctrl.low.to_numpy() - 1e-8 <= true).all()
    assert (true <= ctrl.high.to_numpy() + 1e-8).all()
