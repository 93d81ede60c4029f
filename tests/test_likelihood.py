"""The reversible likelihood fit: closed forms, an independent fit, recovery, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit

from dbnb.counts import TransitionCounts
from dbnb.hierarchy import balance_test
from dbnb.likelihood import fit_likelihood, pair_data
from dbnb.potential import fit_potential
from dbnb.synthetic import (
    driven_chain,
    reversible_chain,
    sample_fixed_design,
    sample_letter_schedule,
)


def _pair(y_ab: int, y_ba: int, n0a: int = 100, n0b: int = 100) -> TransitionCounts:
    return TransitionCounts.from_triples(["A", "B"], ["B", "A"], [y_ab, y_ba]).with_calls(
        np.array([n0a, n0b]), kind="exact")


@pytest.mark.parametrize(("y", "x", "n0a", "n0b"), [(10, 40, 100, 100), (3, 1, 50, 200),
                                                     (7, 0, 100, 100)])
def test_two_states_closed_form(y, x, n0a, n0b):
    """One pair is the saturated model: beta V(A) - beta V(B) = log T(B<-A)/T(A<-B), with half
    a count added to each direction under the penalty."""
    c = _pair(y, x, n0a, n0b)
    pen = fit_likelihood(c, estimator="exact")  # firth: h = 1 for one pair
    want = np.log((y + 0.5) / n0a) - np.log((x + 0.5) / n0b)
    assert pen.potential["A"] - pen.potential["B"] == pytest.approx(want, rel=1e-9)
    # the model-based bar is the binomial one of the split, 1 / sqrt(m p (1 - p)); with the
    # calls recorded, the multinomial design removes 1/N0 per state (Eq. 5 with N0 known)
    p = (y + 0.5) / (x + y + 1)
    model = 1 / ((x + y) * p * (1 - p))
    assert pen.standard_errors("model").max() == pytest.approx(np.sqrt(model), rel=1e-6)
    assert pen.stderr.max() == pytest.approx(np.sqrt(model - 1 / n0a - 1 / n0b), rel=1e-6)
    if x > 0:
        plain = fit_likelihood(c, estimator="exact", penalty=None)
        assert plain.potential["A"] - plain.potential["B"] == pytest.approx(
            np.log(y / n0a) - np.log(x / n0b), rel=1e-9)
    else:  # one-way: no finite maximum without the penalty
        plain = fit_likelihood(c, estimator="exact", penalty=None)
        assert np.isinf(plain.potential).sum() == 1 and set(plain.status) == {"main", "downstream"}


def test_matches_an_independent_fit():
    """BFGS on the same penalised conditional likelihood, written from scratch."""
    chain = reversible_chain(25, degree=4, sigma=1.0, seed=3)
    counts = sample_fixed_design(chain, 60, seed=4)
    fit = fit_likelihood(counts, penalty="jeffreys")
    d = pair_data(counts)
    y, m = d.y + 0.5, d.m + 1.0

    def nll(u):
        v = np.concatenate([[0.0], u])
        z = v[d.i] - v[d.j] + d.offset
        return np.sum(m * np.logaddexp(0, z) - y * z)

    def grad(u):
        v = np.concatenate([[0.0], u])
        r = m * expit(v[d.i] - v[d.j] + d.offset) - y
        gfull = np.bincount(d.i, r, minlength=d.n_states) - np.bincount(d.j, r,
                                                                       minlength=d.n_states)
        return gfull[1:]

    res = optimize.minimize(nll, np.zeros(d.n_states - 1), jac=grad, method="BFGS",
                            options={"gtol": 1e-10, "maxiter": 10_000})
    ours = fit.relative.to_numpy()
    ref = np.concatenate([[0.0], res.x])
    np.testing.assert_allclose(ours - ours[0], ref, atol=1e-6)


def test_firth_maximises_the_penalised_likelihood():
    """Firth's estimate maximises log L + (1/2) log det I, checked by a derivative-free search
    on a small chain with one-way pairs (where the plain maximum does not exist)."""
    chain = reversible_chain(6, degree=3, sigma=2.0, escape=0.2, seed=5)
    counts = sample_fixed_design(chain, 15, seed=6)
    fit = fit_likelihood(counts)
    d = pair_data(counts)
    assert fit.status.eq("main").all()

    def neg(u):
        v = np.concatenate([[0.0], u])
        z = v[d.i] - v[d.j] + d.offset
        p = expit(z)
        lap = np.zeros((d.n_states, d.n_states))
        w = d.m * p * (1 - p)
        np.add.at(lap, (d.i, d.j), -w)
        np.add.at(lap, (d.j, d.i), -w)
        np.add.at(lap, (d.i, d.i), w)
        np.add.at(lap, (d.j, d.j), w)
        logdet = np.linalg.slogdet(lap[1:, 1:])[1]
        return -(np.sum(d.y * z - d.m * np.logaddexp(0, z)) + 0.5 * logdet)

    res = optimize.minimize(neg, np.zeros(d.n_states - 1), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 40_000})
    ours = fit.relative.to_numpy()
    np.testing.assert_allclose(ours[1:] - ours[0], res.x, atol=1e-4)


def test_recovers_the_true_potential_where_least_action_is_stretched():
    """Letter's schedule on a sparse reversible chain (heavy-tailed calls per state), on the
    states both fits place in their main component: the likelihood slope against the true
    potential is ~1, the least-action slope is inflated (T = 0 for unseen reverse
    transitions, edges weighted by T rather than by how often they were seen) and its error
    larger."""
    stats_ = {"likelihood": [], "least action": []}
    for seed in range(5):
        chain = reversible_chain(300, degree=8, sigma=1.0, escape=0.3, seed=seed)
        counts = sample_letter_schedule(chain, 8000, seed=100 + seed)
        true = chain.true_potential()
        fits = {"likelihood": fit_likelihood(counts), "least action": fit_potential(counts)}
        both = (fits["likelihood"].status == "main") & (fits["least action"].status == "main")
        for name, fit in fits.items():
            v = fit.potential[both] - fit.potential[both].mean()
            t = true[v.index] - true[v.index].mean()
            stats_[name].append((np.polyfit(t, v, 1)[0], np.sqrt(np.mean((v - t) ** 2))))
    (sl, el), (sa, ea) = (np.median(stats_[k], axis=0) for k in ("likelihood", "least action"))
    assert 0.9 < sl < 1.1, sl
    assert sa > 1.1, sa
    assert ea > 1.15 * el, (ea, el)


def test_intervals_cover_at_their_level():
    """95 % Wald intervals of beta V(f) - beta V(reference) on a small reversible chain: the
    coverage over many simulated data sets is within binomial noise of 95 %."""
    chain = reversible_chain(8, degree=3, sigma=1.0, escape=0.2, seed=11)
    true = chain.true_potential()
    ref = chain.index[0]
    hits, total = 0, 0
    for seed in range(300):
        counts = sample_fixed_design(chain, 200, seed=seed)
        fit = fit_likelihood(counts, reference=ref)
        iv = fit.interval(0.95).drop(ref)
        t = (true - true[ref])[iv.index]
        hits += int(((iv["low"] <= t) & (t <= iv["high"])).sum())
        total += len(iv)
    cover = hits / total
    # binomial sd of a 95 % rate over ~2,100 intervals is ~0.5 %; allow correlation
    assert 0.935 < cover < 0.965, cover


def test_stderr_matches_the_spread_of_refits():
    chain = reversible_chain(10, degree=3, sigma=1.0, seed=2)
    ref = chain.index[0]
    fits = [fit_likelihood(sample_fixed_design(chain, 300, seed=s), reference=ref)
            for s in range(200)]
    spread = np.std([f.potential.to_numpy() for f in fits], axis=0)
    bar = np.mean([f.stderr.to_numpy() for f in fits], axis=0)
    np.testing.assert_allclose(bar[1:], spread[1:], rtol=0.1)


def test_undefined_cases_are_said_not_guessed():
    none = TransitionCounts.from_triples(["A", "B"], ["A", "B"], [3, 2]).with_calls(10)
    with pytest.raises(ValueError, match="no pair"):
        fit_likelihood(none, estimator="fixed")
    with pytest.raises(ValueError, match="penalty"):
        fit_likelihood(_pair(1, 1), penalty="ridge")
    with pytest.raises(KeyError, match="Z"):
        fit_likelihood(_pair(1, 1), reference="Z")
    with pytest.raises(ValueError, match="level"):
        fit_likelihood(_pair(1, 1)).interval(1.5)
    # two separate pairs: the second is unrelated to the main one (NaN, not a number)
    c = TransitionCounts.from_triples(["A", "B", "C", "D"], ["B", "A", "D", "C"],
                                      [5, 5, 9, 1]).with_calls(50)
    fit = fit_likelihood(c, estimator="fixed")
    assert fit.status.value_counts().to_dict() == {"main": 2, "unrelated": 2}
    assert np.isnan(fit.potential[["C", "D"]]).all() and np.isnan(fit.stderr[["C", "D"]]).all()
    assert stats.norm.ppf(0.975) == pytest.approx(1.959964, abs=1e-6)


# ---------------------------------------------------------------------------- balance_test
def test_balance_test_statistic_against_an_independent_computation():
    """A triangle seen both ways round: G^2 = 2 (log L_free - log L_DB), dof 1, with the DB
    maximum found by a derivative-free search."""
    states = ["A", "B", "C"]
    src = ["A", "B", "B", "C", "C", "A"]
    dst = ["B", "A", "C", "B", "A", "C"]
    c = TransitionCounts.from_triples(src, dst, [30, 10, 25, 12, 8, 20]).with_calls(
        np.array([100, 100, 100]), kind="exact")
    res = balance_test(c)
    assert res.dof == 1 and res.n_pairs == 3
    d = pair_data(c)

    def nll(u):
        v = np.array([0.0, *u])
        z = v[d.i] - v[d.j] + d.offset
        return -np.sum(d.y * z - d.m * np.logaddexp(0, z))

    db = optimize.minimize(nll, np.zeros(2), method="Nelder-Mead",
                           options={"xatol": 1e-10, "fatol": 1e-12}).fun
    p = d.y / d.m
    free = -np.sum(d.y * np.log(p) + (d.m - d.y) * np.log(1 - p))
    assert res.statistic == pytest.approx(2 * (db - free), rel=1e-6)
    assert res.p_value == pytest.approx(stats.chi2.sf(res.statistic, 1))
    assert set(c.states) == set(states)


def test_balance_test_is_calibrated_under_detailed_balance():
    """p-values on reversible chains: uniform (chi-squared at large counts; the parametric
    bootstrap at small counts, where the chi-squared p-values are too small).

    The bootstrap p-value is ``(1 + #{G*^2 >= G^2}) / (B + 1)``, on the grid ``k / (B + 1)``:
    under the null ``P(p <= a) = floor(a (B + 1)) / (B + 1)`` (0.04 at a = 0.05 for B = 49).
    Measured with 1,000 chains of this design (``dbnb.calibration.null_p_values(1000,
    n_states=12, degree=3, escape=0.2, calls=60, bootstrap=49)``): rejections 4.3 % at 5 %
    (nominal 4.0 %, MC sd 0.6 %), 11.0 % at 10 % (nominal 10 %, sd 0.9 %), mean p 0.503, KS
    p-value 0.41; chi-squared 8.1 % at 5 %. The 7 % seen on 60 chains was Monte Carlo error.
    """
    big = [balance_test(sample_fixed_design(reversible_chain(20, degree=4, escape=0.2, seed=s),
                                            1000, seed=s)).p_value for s in range(60)]
    assert stats.kstest(big, "uniform").pvalue > 0.01
    assert np.mean(np.array(big) < 0.05) < 0.12
    n_boot = 49
    # graph, calls and bootstrap from separate seeds (separate random streams)
    small = [balance_test(sample_fixed_design(reversible_chain(12, degree=3, escape=0.2,
                                                               seed=s), 60, seed=10_000 + s),
                          bootstrap=n_boot, seed=20_000 + s) for s in range(80)]
    boot = np.array([r.p_bootstrap for r in small if r.reason is None])
    chi2 = np.array([r.p_asymptotic for r in small if r.reason is None])
    assert len(boot) >= 70
    assert np.all(np.isclose(boot * (n_boot + 1), np.round(boot * (n_boot + 1))))  # the grid
    for a in (0.05, 0.1, 0.2, 0.5):
        nominal = np.floor(a * (n_boot + 1) + 1e-9) / (n_boot + 1)
        sd = np.sqrt(nominal * (1 - nominal) / boot.size)
        assert abs(np.mean(boot <= a + 1e-12) - nominal) <= 3 * sd, (a, np.mean(boot <= a))
    assert stats.kstest(boot, "uniform").pvalue > 0.01
    assert abs(boot.mean() - 0.51) <= 3 * np.sqrt(1 / 12 / boot.size)  # E p = (B + 2)/(2B + 2)
    assert np.mean(chi2 < 0.1) >= np.mean(boot < 0.1)  # the asymptotic test is the liberal one


def test_balance_test_detects_a_curl_drive():
    def power(drive):
        ps = [balance_test(sample_fixed_design(driven_chain(20, degree=4, escape=0.2,
                                                            drive=drive, seed=s), 1000,
                                               seed=s)).p_value for s in range(20)]
        return np.mean(np.array(ps) < 0.05)

    assert power(0.6) >= 0.9
    assert power(0.0) <= 0.2


def test_balance_test_says_when_it_is_undefined():
    from dbnb.datasets import claude4_table2

    res = balance_test(claude4_table2())
    assert res.dof == 0 and np.isnan(res.p_value) and "no cycle" in res.reason
    assert "undefined" in repr(res)
    with pytest.raises(ValueError, match="bootstrap"):
        balance_test(claude4_table2(), bootstrap=-1)


def _popularity_counts(n: int, calls: int, seed: int) -> TransitionCounts:
    """A kernel that ignores the prompt: T(g <- f) = q(g) for g != f (the rest escapes)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(n, 2.0)) * 0.8
    m = np.zeros((n, n))
    for f in range(n):
        qq = q.copy()
        qq[f] = 0.0
        m[:, f] = rng.multinomial(calls, np.append(qq, 1 - qq.sum()))[:-1]
    return TransitionCounts(tuple(f"s{i:02d}" for i in range(n)), sp.csr_array(m),
                            calls=np.full(n, calls), calls_kind="exact")


def test_popularity_against_balance_tells_a_prompt_that_matters():
    """A popularity-only kernel is in detailed balance trivially: both tests accept it. A
    reversible chain whose replies depend on the prompt rejects popularity."""
    pop = [balance_test(_popularity_counts(15, 300, s), bootstrap=39, seed=s)
           for s in range(12)]
    assert np.mean([r.p_popularity for r in pop]) > 0.3
    assert np.mean([r.p_value for r in pop]) > 0.3
    db = [balance_test(sample_fixed_design(reversible_chain(15, degree=4, escape=0.2, seed=s),
                                           300, seed=s), bootstrap=39, seed=s)
          for s in range(4)]
    assert max(r.p_popularity for r in db) <= 0.05
    assert all(r.statistic_popularity > r.dof_popularity for r in db)


def test_popularity_dof_is_the_difference_of_the_parameters():
    """Complete table of k states: quasi-symmetry has k(k-1)/2 + k - 1 parameters,
    quasi-independence 2k - 1; their difference k(k-3)/2 (it used to come out negative)."""
    r = balance_test(_popularity_counts(20, 5000, 0))
    assert r.n_pairs == 190 and r.dof == 171
    assert r.dof_popularity == 20 * 17 // 2
    assert np.isfinite(r.p_popularity)


def test_held_out_reaches_the_noise_ceiling_only_under_balance():
    from dbnb.hierarchy import held_out

    rev = [held_out(sample_fixed_design(reversible_chain(40, degree=5, escape=0.2, seed=s),
                                        500, seed=s), seed=s) for s in range(3)]
    drv = [held_out(sample_fixed_design(driven_chain(40, degree=5, escape=0.2, drive=1.5,
                                                     seed=s), 500, seed=s), seed=s)
           for s in range(3)]
    assert all(abs(r.r2 - r.r2_noise) < 0.08 for r in rev)
    assert all(r.r2_noise - r.r2 > 0.12 for r in drv)
    assert all(r.r2 > r.r2_popularity + 0.1 for r in rev)  # the prompt matters here
    pop = held_out(_popularity_counts(30, 500, 0))
    assert abs(pop.r2 - pop.r2_popularity) < 0.03  # and here it does not
    with pytest.raises(ValueError, match="calls"):
        held_out(_popularity_counts(5, 10, 0)._replace(calls=None, calls_kind=None))


def test_firth_fixed_point_is_accelerated():
    """Firth's pseudo-counts can contract slowly (~0.93 per refit on the shipped symbolic run,
    which 50 plain refits did not settle); SQUAREM reaches a 0.99-contraction's fixed point
    in a few dozen refits."""
    from dbnb.likelihood import FIRTH_TOL, _firth_fixed_point

    target = np.linspace(0.1, 0.9, 7)
    calls = []

    def refit(h, v):
        calls.append(1)
        return target + 0.99 * (h - target), v, 1, 0.0

    _firth_fixed_point(refit, np.ones(7), None)
    assert len(calls) < 60  # the plain iteration needs ~1,000
    h = np.ones(7)
    for _ in range(len(calls)):
        h = refit(h, None)[0]
    assert np.max(np.abs(h - target)) > 100 * FIRTH_TOL  # plain: far from settled


@pytest.mark.slow
def test_firth_settles_on_the_shipped_symbolic_run():
    """Its 50 plain refits did not settle (ConvergenceError) before the acceleration."""
    from dbnb.sources import shipped_sources

    fit = fit_likelihood(shipped_sources().symbolic)  # 121 expressions, 633 pairs
    assert fit.converged and (fit.status == "main").all()
    assert np.isfinite(fit.stderr).all()


def test_stderr_is_the_sandwich_written_out(monkeypatch):
    """The closed-form sandwich and the dense/sparse inverse diagonals against ``I^-1 J I^-1``
    built densely from its definition (``J = I - L^T diag(1/N0) L``), on two components."""
    import dbnb.likelihood as lk

    a = sample_fixed_design(reversible_chain(12, degree=3, sigma=1.0, seed=21), 80, seed=22)
    b = sample_fixed_design(reversible_chain(9, degree=3, sigma=1.0, seed=23), 40, seed=24)
    import scipy.sparse as sp

    m = sp.block_diag([a.matrix, b.matrix], format="csr")
    states = tuple(f"a{s}" for s in a.states) + tuple(f"b{s}" for s in b.states)
    c = TransitionCounts(states, m, calls=np.concatenate([a.calls, b.calls]),
                         calls_kind="exact")
    fit = fit_likelihood(c, penalty="jeffreys")
    assert set(fit.status) == {"main", "unrelated"}
    info = fit.information.toarray()
    free = np.ones(len(states), bool)
    free[fit.ground] = False
    h = info[np.ix_(free, free)]
    rows = info[:, free]
    n0 = fit.transitions.n0
    hinv = np.linalg.inv(h)
    sandwich = hinv @ (h - rows.T @ np.diag(1 / n0) @ rows) @ hinv
    want = np.zeros(len(states))
    want[free] = np.sqrt(np.diag(sandwich))
    want_model = np.zeros(len(states))
    want_model[free] = np.sqrt(np.diag(hinv))
    # both components' errors are computed, though only the main one's potentials are finite
    got = {"dense": None, "sparse": None}
    for kind, cap in (("dense", 10_000), ("sparse", 0)):
        monkeypatch.setattr(lk, "DENSE_INVERSE_MAX", cap)
        f2 = fit_likelihood(c, penalty="jeffreys")
        var_m = np.zeros(len(states))
        var_m[free] = lk._inverse_diagonal(sp.csc_matrix(h))
        np.testing.assert_allclose(np.sqrt(var_m), want_model, rtol=1e-9, atol=1e-12)
        got[kind] = f2.standard_errors("multinomial")
    main = (fit.status == "main").to_numpy()
    for kind, se in got.items():
        np.testing.assert_allclose(se.to_numpy()[main], want[main], rtol=1e-9, atol=1e-12,
                                   err_msg=kind)
    # a linear combination: variance_of agrees with the sandwich
    w = pd.Series(0.0, index=fit.potential.index)
    k = np.flatnonzero(main & free)[:2]
    w.iloc[k] = [1.0, -1.0]
    x = np.zeros(free.sum())
    x[np.searchsorted(np.flatnonzero(free), k)] = [1.0, -1.0]
    assert fit.variance_of(w) == pytest.approx(x @ sandwich @ x, rel=1e-9)


@pytest.mark.parametrize(("n", "small"), [(15, 0), (400, None)])
def test_stderr_against_the_dense_inverse(monkeypatch, n, small):
    """The model-based and the multinomial errors of the selected inversion against
    ``diag(I^-1)`` inverted densely: a small chain forced through the elimination levels,
    and one above :data:`dbnb.selinv.SMALL` states on the default path."""
    import dbnb.selinv as si

    if small is not None:
        monkeypatch.setattr(si, "SMALL", small)
    c = sample_fixed_design(reversible_chain(n, degree=3, sigma=1.0, seed=31), 40, seed=32)
    fit = fit_likelihood(c)
    free = np.ones(c.n_states, bool)
    free[fit.ground] = False
    hinv = np.linalg.inv(fit.information.toarray()[np.ix_(free, free)])
    main = (fit.status == "main").to_numpy()
    want = np.zeros(c.n_states)
    want[free] = np.sqrt(np.diag(hinv))
    np.testing.assert_allclose(fit.standard_errors("model").to_numpy()[main], want[main],
                               rtol=1e-9)
    n0 = fit.transitions.n0
    var = np.zeros(c.n_states)
    var[free] = np.diag(hinv) - 1 / n0[free] - 1 / n0[fit.ground[0]]
    np.testing.assert_allclose(fit.standard_errors("multinomial").to_numpy()[main],
                               np.sqrt(np.clip(var, 0, None))[main], rtol=1e-9)


@pytest.mark.parametrize("penalty", [None, "jeffreys", "firth"])
def test_eliminating_solver_gives_the_same_fit(monkeypatch, penalty):
    """Large graphs solve their Newton systems by exact elimination and conjugate gradients
    (:class:`dbnb.newton.EdgeSystem`); forced here on a 300-state chain by lowering the
    direct-solve threshold, the fit equals the one solved directly (Firth's to the
    tolerance its refits stop at)."""
    import dbnb.elimination as el
    import dbnb.newton as nw

    c = sample_fixed_design(reversible_chain(300, degree=3, sigma=1.0, seed=41), 30, seed=42)
    direct = fit_likelihood(c, penalty=penalty)
    monkeypatch.setattr(nw, "DIRECT_SOLVE_MAX", 20)
    monkeypatch.setattr(el, "CORE_DIRECT_MAX", 20)
    elim = fit_likelihood(c, penalty=penalty)
    a, b = direct.potential.to_numpy(), elim.potential.to_numpy()
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    ok = np.isfinite(a)
    np.testing.assert_allclose(b[ok], a[ok], atol=1e-7 if penalty == "firth" else 1e-9)
