"""Tests of the kernel estimators (dbnb.kernels), each against hand-worked numbers."""

import numpy as np
import pytest

from dbnb import TransitionCounts, estimate_kernel
from dbnb.datasets import claude4_table2

# A makes 10 calls: 4 -> B, 1 -> C, 2 -> A (self), 3 escapes.
# B makes 5 calls: 3 -> A, 2 escapes.  C makes 1 call: 1 -> A.
TRIPLES = (["A", "A", "A", "B", "C"], ["B", "C", "A", "A", "A"], [4, 1, 2, 3, 1])
CALLS = {"A": 10, "B": 5, "C": 1}


def kernel_dict(k):
    return {(r.source, r.target): r.T for r in k.to_frame().itertuples()}


def test_exact_eq6():
    c = TransitionCounts.from_triples(*TRIPLES, calls=CALLS, escapes={"A": 3, "B": 2})
    k = estimate_kernel(c)
    assert k.method == "exact"
    assert k.states == ("A", "B", "C")
    assert kernel_dict(k) == {("A", "B"): 0.4, ("A", "C"): 0.1, ("B", "A"): 0.6, ("C", "A"): 1.0}
    np.testing.assert_allclose(k.escape_probability(), [0.5, 0.4, 0.0])


def test_outcount_eq24_drops_self_loops_and_single_calls():
    c = TransitionCounts.from_triples(*TRIPLES)
    k = estimate_kernel(c)
    assert k.method == "outcount"
    # N0(A) = 4 + 1 = 5 (self-loop excluded); N0(B) = 3; N0(C) = 1 -> C dropped
    assert k.states == ("A", "B")
    np.testing.assert_array_equal(k.n0, [5, 3])
    assert kernel_dict(k) == {("A", "B"): 0.8, ("B", "A"): 1.0}


def test_low_reject_counts_self_loops():
    c = TransitionCounts.from_triples(*TRIPLES)
    k = estimate_kernel(c, "low_reject")
    np.testing.assert_array_equal(k.n0, [7, 3])  # A: 4 + 1 + 2 self
    assert kernel_dict(k)[("A", "B")] == pytest.approx(4 / 7)


def test_high_reject_uniform_n0():
    c = TransitionCounts.from_triples(*TRIPLES)
    k = estimate_kernel(c, "high_reject")
    # 11 recorded transitions over 3 states
    np.testing.assert_allclose(k.n0, 11 / 3)
    assert kernel_dict(k)[("B", "A")] == pytest.approx(3 / (11 / 3))


def test_fixed_eq18_clips_at_one():
    c = claude4_table2()
    k = estimate_kernel(c)
    assert k.method == "fixed"
    d = kernel_dict(k)
    assert d[("TURKEY", "ATTITUDE")] == 1.0  # 4122 / 4000 clipped
    assert d[("ATTITUDE", "PERSONAL")] == pytest.approx(66 / 4000)
    assert ("ATTITUDE", "ATTITUDE") not in d


def test_fixed_needs_n0():
    c = TransitionCounts.from_triples(*TRIPLES)
    with pytest.raises(ValueError, match="needs N0"):
        estimate_kernel(c, "fixed")
    k = estimate_kernel(c, "fixed", n0=8)
    assert kernel_dict(k)[("A", "B")] == 0.5


def test_bad_arguments():
    c = TransitionCounts.from_triples(*TRIPLES)
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate_kernel(c, "bayes")
    with pytest.raises(ValueError, match="calls_kind='exact'"):
        estimate_kernel(c, "exact")
    with pytest.raises(ValueError, match="keeps no state"):
        estimate_kernel(c, min_calls=100)
    with pytest.raises(TypeError, match="TransitionCounts"):
        estimate_kernel({"A": 1})
    empty = TransitionCounts.from_triples(["A"], ["B"], [0])
    with pytest.raises(ValueError, match="no transitions"):
        estimate_kernel(empty)


def test_transitions_to_dropped_states_removed():
    # C is a target only: with exact calls it has N0 = 0 and is dropped with its in-edges
    c = TransitionCounts.from_triples(["A", "A", "B"], ["B", "C", "A"], [1, 1, 1],
                                      calls={"A": 2, "B": 1})
    k = estimate_kernel(c)
    assert k.states == ("A", "B")
    assert k.matrix.nnz == 2


def test_stationary_distribution_is_exp_minus_potential_under_detailed_balance():
    """pi solves pi = P pi (checked by power iteration written here) and, for a reversible
    chain, equals e^{-beta V}; escapes (on the diagonal) do not change it."""
    from dbnb import synthetic
    from dbnb.kernels import stationary_distribution

    for escape in (0.0, 0.4):
        chain = synthetic.reversible_chain(25, degree=4, sigma=1.5, escape=escape, seed=2)
        pi = stationary_distribution(chain.kernel())
        v = chain.true_potential()[pi.index].to_numpy()
        expected = np.exp(-v) / np.exp(-v).sum()
        np.testing.assert_allclose(pi.to_numpy(), expected, rtol=1e-9)
    driven = synthetic.driven_chain(25, degree=4, sigma=1.5, drive=1.5, seed=2)
    pi = stationary_distribution(driven.kernel())
    p = driven.matrix.toarray() + np.diag(driven.escape_probability())
    x = np.full(25, 1 / 25)
    for _ in range(20000):
        x = p @ x
    np.testing.assert_allclose(pi.to_numpy(), x, rtol=1e-6, atol=1e-12)
    v = driven.true_potential().to_numpy()
    assert np.max(np.abs(np.log(pi.to_numpy()) + v - np.mean(np.log(pi.to_numpy()) + v))) > 0.1


def test_stationary_distribution_needs_one_strongly_connected_set():
    from dbnb.kernels import stationary_distribution

    k = estimate_kernel(claude4_table2(), "fixed", n0=4000)
    pi = stationary_distribution(k)   # default: the main component (ATTITUDE ... PROBLEM)
    assert set(pi.index) == {"ATTITUDE", "PERSONAL", "PROBLEM"}
    assert pi.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not strongly connected"):
        stationary_distribution(k, list(k.states))
    with pytest.raises(ValueError, match="not in the kernel"):
        stationary_distribution(k, ["NOPE"])
