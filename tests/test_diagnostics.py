"""Tests of the detailed-balance diagnostics (dbnb.diagnostics)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import comb

from dbnb import diagnostics, graph
from dbnb.counts import TransitionCounts
from dbnb.datasets import claude4_table2
from dbnb.kernels import TransitionKernel, estimate_kernel
from dbnb.potential import fit_potential


# ---------------------------------------------------------------------------- fixtures
def metropolis(n: int = 30, p: float = 0.3, seed: int = 0, sd: float = 2.0):
    """A reversible chain: random symmetric graph, V ~ N(0, sd), Metropolis T (Eq. 5 exact)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, sd, n)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    # a ring keeps the graph connected
    upper[np.arange(n - 1), np.arange(1, n)] = True
    adj = upper | upper.T
    deg = adj.sum(axis=0).max()
    # t[g, f] = T(g <- f) = min(1, exp(V(f) - V(g))) / deg
    t = np.where(adj, np.minimum(1.0, np.exp(v[None, :] - v[:, None])) / deg, 0.0)
    return v, t


def exact_kernel(v: np.ndarray, t: np.ndarray, n0: float = 1e6) -> TransitionKernel:
    """A kernel holding the exact ``T`` (counts only set the error bars)."""
    n = v.size
    labels = tuple(f"s{i:02d}" for i in range(n))
    cnt = np.maximum(np.round(t * n0), 1.0) * (t > 0)
    counts = TransitionCounts(
        labels, sp.csr_array(cnt), calls=np.full(n, n0 * 2), calls_kind="exact"
    )
    return TransitionKernel(
        counts=counts, matrix=sp.csr_array(t), n0=np.full(n, n0), method="exact"
    )


def sampled_counts(t: np.ndarray, calls: int = 2000, seed: int = 0) -> TransitionCounts:
    rng = np.random.default_rng(seed)
    n = t.shape[0]
    cnt = rng.poisson(t * calls)
    labels = tuple(f"s{i:02d}" for i in range(n))
    return TransitionCounts(labels, sp.csr_array(cnt), calls=np.full(n, calls), calls_kind="exact")


@pytest.fixture(scope="module")
def reversible():
    v, t = metropolis()
    return v, t, fit_potential(exact_kernel(v, t))


# ---------------------------------------------------------------------------- pairs
def test_pairs_exact_detailed_balance(reversible):
    v, t, fit = reversible
    pc = diagnostics.pairs(fit, exclude_above=np.inf)
    assert pc.n_pairs == int(np.triu(t > 0, 1).sum())
    assert np.all(pc.f < pc.g)
    np.testing.assert_allclose(pc.y, pc.x, atol=1e-8)
    np.testing.assert_allclose(pc.x, v[pc.f] - v[pc.g], atol=1e-8)
    assert pc.within_1sigma == 1.0
    assert pc.slope == pytest.approx(1.0, abs=1e-9)
    assert pc.pearson_r == pytest.approx(1.0, abs=1e-12)
    assert pc.chi2_per_dof < 1e-10 and pc.dof == pc.n_pairs - (v.size - 1)
    frame = pc.to_frame()
    assert list(frame.columns[:4]) == ["f", "g", "beta_dV", "log_ratio"]
    assert len(frame) == pc.n_pairs


def test_pairs_hand_worked_error():
    # A <-> B both ways, C entered from B only.  N0(A) = 100, N0(B) = 200, N0(C) = 50.
    c = TransitionCounts.from_triples(
        ["A", "B", "B", "C"], ["B", "A", "C", "A"], [10, 40, 5, 3],
        calls={"A": 100, "B": 200, "C": 50}, calls_kind="exact",
    )
    fit = fit_potential(c)
    pc = diagnostics.pairs(fit, exclude_above=np.inf)
    assert pc.n_pairs == 1
    # y = log((10/100) / (40/200)) = log(0.5); recorded calls (multinomial):
    # sigma^2 = 1/10 - 1/100 + 1/40 - 1/200 = 0.11 (the Letter's form adds the 1/N0: 0.14)
    assert pc.y[0] == pytest.approx(np.log(0.5))
    assert pc.sigma[0] == pytest.approx(np.sqrt(0.11))
    assert (pc.n_forward[0], pc.n_backward[0]) == (10, 40)
    assert pc.x[0] == pytest.approx(fit.relative["A"] - fit.relative["B"])


def test_pairs_table2_and_exclusion(table2_fit):
    pc = diagnostics.pairs(table2_fit)
    assert pc.threshold == pytest.approx(np.log(claude4_table2().n_samples))
    assert set(pc.to_frame()[["f", "g"]].itertuples(index=False, name=None)) == {
        ("ATTITUDE", "PERSONAL"), ("ATTITUDE", "PROBLEM"),
    }
    np.testing.assert_allclose(np.sort(-pc.x), [np.log(3879 / 66), np.log(3558 / 20)], rtol=1e-8)
    strict = diagnostics.pairs(table2_fit, exclude_above=4.5)
    assert strict.n_pairs == 1 and strict.n_excluded == 1


def test_pairs_none_measured_both_ways():
    c = TransitionCounts.from_triples(["A", "B"], ["B", "C"], [5, 5]).with_calls(10, "exact")
    pc = diagnostics.pairs(fit_potential(c))
    assert pc.n_pairs == 0
    assert np.isnan(pc.within_1sigma) and np.isnan(pc.chi2_per_dof) and np.isnan(pc.slope)
    assert pc.to_frame().empty


def test_pairs_rejects_bad_input(table2_fit):
    with pytest.raises(TypeError):
        diagnostics.pairs(table2_fit.transitions)
    with pytest.raises(ValueError):
        diagnostics.pairs(table2_fit, exclude_above=-1)


def test_pairs_sampled_chain_statistics():
    v, t = metropolis(n=40, seed=1)
    # tol loosened: dbnb.potential's Newton stalls near 5e-9 relative gradient on this chain
    fit = fit_potential(sampled_counts(t, calls=20000, seed=2))
    pc = diagnostics.pairs(fit)
    assert pc.n_pairs > 50
    assert pc.within_2sigma > 0.85
    assert pc.slope == pytest.approx(1.0, abs=0.15)
    idx = pc.sample(0.2, seed=42)
    assert idx.size == int(0.2 * pc.n_pairs)
    np.testing.assert_array_equal(idx, pc.sample(0.2, seed=42))
    # a float is a fraction (1.0 = every pair), an int a number of pairs
    assert pc.sample(1.0).size == pc.n_pairs and pc.sample(1).size == 1
    assert pc.sample(None).size == pc.n_pairs
    with pytest.raises(ValueError, match="fraction"):
        pc.sample(1.5)


# ---------------------------------------------------------------------------- triplets
def brute_triangles(adj: np.ndarray) -> set[tuple[int, int, int]]:
    n = adj.shape[0]
    return {
        (i, j, k)
        for i, j, k in itertools.combinations(range(n), 3)
        if adj[i, j] and adj[j, k] and adj[i, k]
    }


def test_triangle_enumeration_matches_brute_force():
    rng = np.random.default_rng(3)
    a = rng.random((60, 60)) < 0.15
    a = np.triu(a, 1)
    adj = a | a.T
    tri = graph.triangles(sp.csr_array(a))  # one triangle only: read undirected
    assert {tuple(r) for r in tri} == brute_triangles(adj)
    assert len(tri) == len(brute_triangles(adj))
    assert np.all(np.diff(tri, axis=1) > 0)


def test_triangle_enumeration_is_fast():
    rng = np.random.default_rng(4)
    n, m = 3000, 12000
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    a = sp.csr_array((np.ones(m), (i, j)), shape=(n, n))
    hub = sp.csr_array((np.ones(n - 1), (np.zeros(n - 1, int), np.arange(1, n))), shape=(n, n))
    start = time.perf_counter()
    tri = graph.triangles(a + hub)
    assert time.perf_counter() - start < 1.0
    assert tri.shape[1] == 3


def test_triplets_exact_detailed_balance(reversible):
    v, t, fit = reversible
    tc = diagnostics.triplets(fit)
    adj = (t > 0) & (t.T > 0)
    assert tc.n_triplets == len(brute_triangles(adj)) > 10
    np.testing.assert_allclose(tc.forward, tc.backward, atol=1e-9)
    assert tc.within_1sigma == 1.0
    assert tc.rms_affinity < 1e-9


def test_triplets_cycle_affinity_and_errors():
    # forward 0->1->2->0 counts 50, 40, 30; backward 10, 20, 25.  N0 = 100, 200, 400.
    s, g = ["a", "b", "c", "b", "c", "a"], ["b", "c", "a", "a", "b", "c"]
    n = [50, 40, 30, 10, 20, 25]
    c = TransitionCounts.from_triples(s, g, n, calls={"a": 100, "b": 200, "c": 400})
    tc = diagnostics.triplets(fit_potential(c))
    assert tc.n_triplets == 1
    fwd = np.log(50 / 100) + np.log(40 / 200) + np.log(30 / 400)
    bwd = np.log(10 / 200) + np.log(20 / 400) + np.log(25 / 100)
    assert tc.forward[0] == pytest.approx(fwd)
    assert tc.backward[0] == pytest.approx(bwd)
    assert tc.residual[0] == pytest.approx(np.log(50 * 40 * 30 / (10 * 20 * 25)))
    assert tc.rms_affinity == pytest.approx(abs(tc.residual[0]))
    # recorded calls: 1/N - 1/N0 per leg on each axis; the affinity's N0 terms cancel
    var_f = 1 / 50 - 1 / 100 + 1 / 40 - 1 / 200 + 1 / 30 - 1 / 400
    assert tc.sigma_forward[0] == pytest.approx(np.sqrt(var_f))
    assert tc.sigma[0] == pytest.approx(np.sqrt(sum(1 / np.array(n))))
    # min_count removes the triangle when a leg is seen fewer times
    assert diagnostics.triplets(fit_potential(c), min_count=11).n_triplets == 0


def test_triplets_empty_and_validation(table2_fit):
    tc = diagnostics.triplets(table2_fit.transitions)
    assert tc.n_triplets == 0 and np.isnan(tc.mean_z2)
    assert tc.to_frame().empty
    with pytest.raises(ValueError):
        diagnostics.triplets(table2_fit, min_count=0)


# ---------------------------------------------------------------------------- one-way pairs
def test_one_way_hand_example():
    # A -> B (30 of N0(A) = 100), B never returns; B <-> C; C -> A closes the cycle.
    c = TransitionCounts.from_triples(
        ["A", "B", "C", "C"], ["B", "C", "B", "A"], [30, 50, 20, 10],
        calls={"A": 100, "B": 400, "C": 200},
    )
    fit = fit_potential(c)
    ow = diagnostics.one_way_pairs(fit)
    frame = ow.to_frame().set_index(["f", "g"])
    assert set(frame.index) == {("A", "B"), ("C", "A")}
    # Eq. 25: log((30 / 100) / (1 / 400)) = log(120)
    assert frame.loc[("A", "B"), "bound"] == pytest.approx(np.log(120.0))
    assert frame.loc[("C", "A"), "bound"] == pytest.approx(np.log(10 / 200 * 100))
    assert frame.loc[("A", "B"), "beta_dV"] == pytest.approx(
        fit.relative["A"] - fit.relative["B"]
    )
    assert frame["same_component"].all()
    sat = np.mean(frame["beta_dV"] >= frame["bound"])
    assert ow.fraction_satisfied == pytest.approx(sat)
    assert ow.offset == pytest.approx(np.percentile(ow.dv - ow.bound, 90))


def test_one_way_table2_infinite(table2_fit):
    ow = diagnostics.one_way_pairs(table2_fit)
    frame = ow.to_frame().set_index(["f", "g"])
    assert frame.loc[("TURKEY", "ATTITUDE"), "beta_dV"] == np.inf
    assert frame.loc[("TURKEY", "ATTITUDE"), "bound"] == pytest.approx(np.log(4122))
    assert ow.n_finite == 0 and ow.sample(500).size == 0
    assert ow.fraction_satisfied == 1.0


# ---------------------------------------------------------------------------- Eq. 28, Table IV
def test_expected_action_forms():
    for s in (0.0, 0.1, 0.5, 1.0):
        from scipy.special import erfc

        assert diagnostics.expected_min_action(s) == pytest.approx(np.exp(s * s) * erfc(s),
                                                                   rel=1e-12)
    assert diagnostics.expected_min_action(0.0) == 1.0
    exact = diagnostics.expected_min_action(4.37)
    approx = diagnostics.expected_min_action(4.37, form="asymptotic")
    assert exact == pytest.approx(0.126, abs=5e-4)
    assert approx == pytest.approx(0.129, abs=5e-4)
    assert abs(approx / exact - 1) < 0.05
    assert diagnostics.expected_min_action(2.30) == pytest.approx(0.227, abs=5e-4)
    assert np.isfinite(diagnostics.expected_min_action(40.0))
    with pytest.raises(ValueError):
        diagnostics.expected_min_action(1.0, form="bogus")


def test_potential_distribution_and_table(reversible, table2_fit):
    _, _, fit = reversible
    d = diagnostics.potential_distribution(fit, min_calls=1)
    vals = fit.potential.to_numpy()
    assert d.n_states == vals.size
    assert d.sigma == pytest.approx(np.std(vals))
    assert d.mu == pytest.approx(np.mean(vals))
    assert d.actual_action == fit.action
    assert d.expected_action == pytest.approx(diagnostics.expected_min_action(d.sigma))
    tab = diagnostics.action_scale_table({"chain": fit, "claude": table2_fit})
    assert list(tab.index) == ["chain", "claude"]
    assert {"sigma", "expected_min_action_exact", "expected_min_action_asymptotic",
            "actual_min_action"} <= set(tab.columns)
    assert diagnostics.potential_distribution(table2_fit, min_calls=10**6).n_states == 0


# ---------------------------------------------------------------------------- Eqs. 29-30
def test_majority_vote_equals_binomial_sum():
    t = np.linspace(0, 1, 41)
    for m, n in [(10, 5), (10, 7), (10, 9), (3, 2), (1, 1)]:
        direct = sum(comb(m, k) * t**k * (1 - t) ** (m - k) for k in range(n, m + 1))
        np.testing.assert_allclose(diagnostics.majority_vote(t, m, n), direct, atol=1e-13)
    assert isinstance(diagnostics.majority_vote(0.3, 10, 7), float)
    with pytest.raises(ValueError):
        diagnostics.majority_vote(0.3, 10, 11)
    with pytest.raises(ValueError):
        diagnostics.majority_vote(1.5, 10, 5)


def test_majority_vote_power_law_small_t():
    ratio, power = diagnostics.majority_vote_ratio(2e-4, 1e-4, 10, 7)
    assert ratio == pytest.approx(power, rel=1e-2)
    assert power == pytest.approx(2.0**7)


# ---------------------------------------------------------------------------- Fig. 5
def test_potential_vs_score(reversible):
    v, t, fit = reversible
    score = pd.Series(np.exp(v), index=fit.states, name="mse")
    score.iloc[0] = np.nan
    sg = diagnostics.potential_vs_score(fit, score, n_states=12, min_T=0.01)
    assert len(sg.states) == 12 and fit.states[0] not in sg.states
    assert sg.n_transitions > 0 and np.all(sg.t > 0.01)
    dv = sg.potential[sg.g] - sg.potential[sg.f]
    np.testing.assert_array_equal(sg.direction, np.sign(np.where(np.abs(dv) <= 1e-6, 0, dv)))
    assert sg.shares().sum() == pytest.approx(1.0)
    assert sg.shares(weighted=True).sum() == pytest.approx(1.0)
    # Metropolis: downhill moves are always at least as likely, so "down" dominates
    assert sg.shares()["down"] >= sg.shares()["up"]
    assert len(sg.to_frame()) == sg.n_transitions
    assert sg.nodes().columns[1] == "mse"
    with pytest.raises(TypeError):
        diagnostics.potential_vs_score(fit, np.exp(v))


def test_compare_to_exact_coverage_on_a_known_chain():
    """Sampled pair log-ratios of a chain with a known kernel: z-scores ~ N(0, 1) at large
    counts, so coverage near 68 % / 95 %; a kernel that is not the truth is caught."""
    from dbnb import synthetic

    chain = synthetic.reversible_chain(60, degree=6, sigma=1.0, escape=0.1, seed=11)
    counts = synthetic.sample_fixed_design(chain, 20000, seed=12)
    sampled = estimate_kernel(counts, "exact")
    cmp = diagnostics.compare_to_exact(sampled, chain.kernel())
    assert cmp.n_pairs > 100
    big = cmp.n_min >= 20
    z = cmp.z[big]
    assert 0.6 < np.mean(np.abs(z) <= 1) < 0.76
    assert 0.9 < np.mean(np.abs(z) <= 2) <= 1.0
    assert abs(np.mean(z)) < 0.2
    # against a different chain the bars do not cover
    other = synthetic.reversible_chain(60, degree=6, sigma=1.0, escape=0.1, seed=13)
    wrong = diagnostics.compare_to_exact(sampled, other.kernel())
    assert wrong.n_pairs == 0 or wrong.within_2sigma < 0.5
    table = cmp.by_min_count()
    assert table["pairs"].sum() == cmp.n_pairs


def test_compare_to_exact_with_an_exact_kernel_over_a_few_sources():
    """An exact kernel over a subset of the sampled states (a partial exact computation): only
    pairs inside the subset count; none shared gives an empty comparison, not an error."""
    from dbnb import synthetic

    chain = synthetic.reversible_chain(30, degree=5, sigma=1.0, escape=0.1, seed=3)
    sampled = estimate_kernel(synthetic.sample_fixed_design(chain, 5000, seed=4), "exact")
    full = chain.kernel()
    keep = [0, 1]
    sub = full.counts.submodel(keep)
    t = full.matrix.toarray()[np.ix_(keep, keep)]
    small = type(full)(counts=sub, matrix=sp.csr_array(t), n0=full.n0[keep], method="exact")
    cmp = diagnostics.compare_to_exact(sampled, small)
    assert cmp.n_pairs <= 1
    renamed = TransitionCounts(states=("P", "Q"), matrix=sub.matrix, calls=sub.calls,
                               calls_kind=sub.calls_kind)
    disjoint = type(full)(counts=renamed, matrix=sp.csr_array(t),
                          n0=full.n0[keep], method="exact")
    cmp = diagnostics.compare_to_exact(sampled, disjoint)
    assert cmp.n_pairs == 0 and cmp.z.shape == (0,)
    assert cmp.by_min_count()["pairs"].sum() == 0


def test_transition_check_chi2_near_one_for_the_true_kernel():
    from dbnb import synthetic

    chain = synthetic.reversible_chain(40, degree=5, sigma=1.0, escape=0.1, seed=21)
    counts = synthetic.sample_fixed_design(chain, 3000, seed=22)
    k = estimate_kernel(counts, "exact")
    ok = diagnostics.transition_check(k, chain.kernel())
    assert ok["transitions"] > 100
    assert 0.7 < ok["chi2_per_dof"] < 1.3 and ok["p_value"] > 1e-3
    driven = synthetic.driven_chain(40, degree=5, sigma=1.0, escape=0.1, drive=1.0, seed=21)
    bad = diagnostics.transition_check(k, driven.kernel())
    assert bad["chi2_per_dof"] > 3


def test_r_squared_is_one_on_the_diagonal():
    t = np.array([[0, 0.2, 0.1], [0.05, 0, 0.3], [0.4, 0.1, 0]])
    v = np.array([0.0, 1.0, 2.5])
    # build T obeying detailed balance exactly: T[g, f] = s_fg exp((v_f - v_g)/2)
    s = (t + t.T) / 2
    tdb = s * np.exp((v[None, :] - v[:, None]) / 2)
    kern = TransitionKernel(
        counts=TransitionCounts(states=("a", "b", "c"), matrix=np.ones((3, 3)) - np.eye(3),
                                calls=np.full(3, 10**9), calls_kind="nominal"),
        matrix=sp.csr_array(tdb), n0=np.full(3, 1e9), method="exact")
    pc = diagnostics.pairs(fit_potential(kern), exclude_above=np.inf)
    assert pc.n_pairs == 3 and pc.r_squared == pytest.approx(1.0, abs=1e-9)


def test_majority_vote_curves_are_the_ratios_of_eq_30():
    curves = diagnostics.majority_vote_curves(m=10, ns=(5, 9), t_backward=(0.01, 0.5),
                                              max_ratio=4.0, n_points=20)
    assert curves.voted.shape == (2, 2, 20) and curves.max_ratio == pytest.approx(4.0)
    r = curves.base_ratio
    ratio, power = diagnostics.majority_vote_ratio(r * 0.01, 0.01, 10, 9)
    np.testing.assert_allclose(curves.voted[1, 0], ratio)
    np.testing.assert_allclose(curves.power_law[1], power)
    # T(g<-f) = r b > 1 is no kernel: left out
    assert np.all(np.isnan(curves.voted[:, 1, r * 0.5 > 1]))
    assert len(curves.to_frame()) == np.isfinite(curves.voted).sum()


def test_log_t_variance_is_the_error_of_every_check(reversible):
    from dbnb.kernels import log_t_variance

    _, _, fit = reversible
    pc = diagnostics.pairs(fit, exclude_above=np.inf)
    n0 = fit.transitions.n0
    d = fit.transitions.design
    assert pc.design == d == "multinomial"
    np.testing.assert_allclose(
        pc.sigma ** 2,
        log_t_variance(pc.n_forward, n0[pc.f], d) + log_t_variance(pc.n_backward, n0[pc.g], d),
    )


def test_balance_is_a_deprecated_alias():
    import importlib
    import sys

    sys.modules.pop("dbnb.balance", None)
    with pytest.warns(DeprecationWarning, match="dbnb.diagnostics"):
        balance = importlib.import_module("dbnb.balance")
    assert balance.pairs is diagnostics.pairs
    assert balance.enumerate_triangles is graph.triangles
    assert set(balance.__all__) <= set(diagnostics.__all__) | {"enumerate_triangles"}


def test_summaries_print_counts_as_integers():
    """A summary keeps counts as ints: a reader sees ``135``, never ``135.000000``."""
    from dbnb import synthetic

    counts = synthetic.sample_fixed_design(synthetic.reversible_chain(30, degree=6, seed=1),
                                           100, seed=2)
    fit = fit_potential(counts)
    for s in (diagnostics.pairs(fit).summary(), diagnostics.triplets(fit).summary(),
              diagnostics.one_way_pairs(fit).summary()):
        first = s.index[0]
        assert isinstance(s[first], int), (s.name, first, s[first])
        assert f"{s[first]}\n" in s.to_string() + "\n" and ".000000" not in s.to_string()


def test_stationary_check_reversible_and_driven():
    from dbnb import synthetic

    rev = diagnostics.stationary_check(
        fit_potential(synthetic.reversible_chain(30, degree=4, sigma=1.5, seed=1).kernel()))
    assert rev.n_states == 30 and rev.max_deviation < 1e-6
    assert rev.slope == pytest.approx(1.0, abs=1e-6)
    drv = diagnostics.stationary_check(fit_potential(
        synthetic.driven_chain(30, degree=4, sigma=1.5, drive=1.5, seed=1).kernel()))
    assert drv.rms_deviation > 0.1
    assert isinstance(drv.summary()["n_states"], int)
    assert list(drv.to_frame().columns) == ["log_pi", "minus_beta_V", "deviation"]
