"""Bootstrap replicates of potential fits: the draws, the spread, the gauge."""

from __future__ import annotations

import numpy as np
import pytest

from dbnb.bootstrap import _draw, _replicate_kernel, bootstrap
from dbnb.likelihood import fit_likelihood
from dbnb.potential import fit_potential
from dbnb.synthetic import reversible_chain, sample_fixed_design


def test_draws_are_multinomial_from_the_observed_frequencies():
    chain = reversible_chain(10, degree=3, seed=1)
    c = sample_fixed_design(chain, 500, seed=1)
    p = _replicate_kernel(c, fit_potential(c), "nonparametric")
    n0 = np.asarray(c.calls).astype(int)
    rng = np.random.default_rng(0)
    draws = [_draw(p, n0, rng) for _ in range(300)]
    mean = sum(d.toarray() for d, _ in draws) / len(draws)
    expected = p.toarray() * n0[None, :]
    sd = np.sqrt(np.maximum(expected, 1) / len(draws))
    assert np.all(np.abs(mean - expected) < 5 * sd)
    for d, esc in draws[:20]:  # every call lands somewhere: a transition or an escape
        np.testing.assert_array_equal(d.toarray().sum(axis=0) + esc, n0)


def test_parametric_kernel_is_reversible_with_the_fitted_potential():
    chain = reversible_chain(12, degree=4, seed=2)
    c = sample_fixed_design(chain, 300, seed=3)
    fit = fit_potential(c)
    p = _replicate_kernel(c, fit, "parametric").toarray()
    v = fit.potential.to_numpy()
    both = (p > 0) & (p.T > 0)
    g, f = np.nonzero(both)
    np.testing.assert_allclose(np.log(p[g, f] / p[f, g]), v[f] - v[g], atol=1e-9)


@pytest.mark.parametrize("fit", [fit_potential, fit_likelihood], ids=["least-action", "ml"])
def test_bootstrap_spread_matches_the_spread_over_new_data(fit):
    """The bootstrap standard error estimates the sd of the estimate over fresh data sets."""
    chain = reversible_chain(8, degree=3, sigma=1.0, seed=4)
    ref = chain.index[0]
    fresh = []
    for s in range(120):
        f = fit(sample_fixed_design(chain, 300, seed=100 + s))
        fresh.append((f.potential - f.potential[ref]).to_numpy())
    spread = np.std(fresh, axis=0)[1:]
    boots = [bootstrap(sample_fixed_design(chain, 300, seed=7 + k), fit, n_boot=100,
                       reference=ref, seed=k) for k in range(4)]
    mean_se = np.mean([b.stderr.to_numpy()[1:] for b in boots], axis=0)
    np.testing.assert_allclose(mean_se, spread, rtol=0.25)
    b = boots[0]
    iv = b.interval(0.9)
    assert (iv["low"] <= iv["beta_V"] + 1e-12).all() and (iv["beta_V"] <= iv["high"] + 1e-12).all()
    assert b.estimate[ref] == 0 and (b.samples[ref] == 0).all()


def test_bootstrap_checks_its_input():
    c = sample_fixed_design(reversible_chain(6, degree=3, seed=0), 50, seed=0)
    with pytest.raises(ValueError, match="design"):
        bootstrap(c, design="jackknife")
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(c, n_boot=1)
    with pytest.raises(ValueError, match="main component"):
        bootstrap(c, reference="nope")
    with pytest.raises(ValueError, match="calls"):
        bootstrap(c._replace(calls=None, calls_kind=None))
    with pytest.raises(ValueError, match="n_jobs"):
        bootstrap(c, n_jobs=0)
    with pytest.raises(ValueError, match="picklable"):
        bootstrap(c, lambda x: fit_potential(x), n_jobs=2)


def test_worker_processes_give_the_same_replicates():
    """The data sets are drawn in the parent in one order: n_jobs changes nothing but time."""
    c = sample_fixed_design(reversible_chain(15, degree=3, seed=4), 60, seed=5)
    one = bootstrap(c, fit_likelihood, n_boot=12, seed=3)
    two = bootstrap(c, fit_likelihood, n_boot=12, seed=3, n_jobs=2)
    np.testing.assert_array_equal(one.samples.to_numpy(), two.samples.to_numpy())
    assert one.samples.notna().to_numpy().mean() > 0.9


def test_warm_start_changes_only_the_starting_point():
    c = sample_fixed_design(reversible_chain(15, degree=3, seed=4), 60, seed=5)
    cold = bootstrap(c, fit_likelihood, n_boot=6, seed=1, warm_start=False)
    warm = bootstrap(c, fit_likelihood, n_boot=6, seed=1)
    np.testing.assert_allclose(warm.samples.to_numpy(), cold.samples.to_numpy(), atol=1e-7)
    fit = fit_likelihood(c)
    again = fit_likelihood(c, start=fit.potential + 3.0)  # any gauge, any offset
    np.testing.assert_allclose(again.potential, fit.potential, atol=1e-8)
