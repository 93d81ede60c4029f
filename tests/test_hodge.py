"""The Hodge split of the log-ratio flow and the variance shares of log T."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from dbnb.counts import TransitionCounts
from dbnb.hodge import hodge, variance_shares
from dbnb.kernels import TransitionKernel
from dbnb.synthetic import driven_chain, reversible_chain, sample_fixed_design


def _kernel(t: np.ndarray) -> TransitionKernel:
    """A kernel holding the exact ``t[g, f]`` (counts large, only for the weights)."""
    n = t.shape[0]
    labels = tuple("ABCDEFGH"[:n])
    cnt = np.round(t * 1e6)
    counts = TransitionCounts(labels, sp.csr_array(cnt), calls=np.full(n, 1e6),
                              calls_kind="exact")
    return TransitionKernel(counts=counts, matrix=sp.csr_array(t), n0=np.full(n, 1e6),
                            method="exact")


def test_a_reversible_kernel_is_all_gradient_and_gives_its_potential():
    chain = reversible_chain(40, degree=6, sigma=1.0, seed=1)
    h = hodge(chain.kernel(), weights="uniform")
    assert h.gradient_fraction == pytest.approx(1.0, abs=1e-12)
    assert abs(h.curl_fraction) < 1e-12 and abs(h.harmonic_fraction) < 1e-12
    v = chain.true_potential()
    np.testing.assert_allclose(h.potential - h.potential.min(), v - v.min(), atol=1e-9)
    assert np.abs(h.cycles["affinity"]).max() < 1e-12


def test_the_parts_are_orthogonal_and_the_driven_cycles_show():
    chain = driven_chain(30, degree=6, sigma=1.0, drive=0.8, seed=2)
    h = hodge(chain.kernel(), weights="uniform")
    p, w = h.pairs, h.pairs["weight"].to_numpy()
    np.testing.assert_allclose(p["gradient"] + p["curl"] + p["harmonic"], p["flow"], atol=1e-10)
    for a, b in (("gradient", "curl"), ("gradient", "harmonic"), ("curl", "harmonic")):
        assert abs(np.sum(w * p[a] * p[b])) < 1e-7 * np.sum(w * p["flow"] ** 2)
    # every triangle of the driven chain circulates +-drive (Kolmogorov's affinity)
    np.testing.assert_allclose(np.abs(h.cycles["affinity"]), 0.8, atol=1e-9)
    assert h.curl_fraction > 0.01
    assert h.gradient_fraction + h.curl_fraction + h.harmonic_fraction == pytest.approx(1.0)


def test_a_square_circulation_is_harmonic():
    """A 4-cycle with no triangle: its circulation is neither gradient nor curl."""
    t = np.zeros((4, 4))
    ring = [(0, 1), (1, 2), (2, 3), (3, 0)]
    for f, g in ring:  # forward e^{+1/2}, backward e^{-1/2}: each link's log-ratio is 1
        t[g, f], t[f, g] = 0.2 * np.exp(0.5), 0.2 * np.exp(-0.5)
    h = hodge(_kernel(t), weights="uniform")
    assert h.dof == 1 and len(h.cycles) == 0
    assert h.harmonic_fraction == pytest.approx(1.0, abs=1e-12)


def test_sampled_reversible_residual_is_chi_squared():
    ps = []
    for seed in range(40):
        chain = reversible_chain(25, degree=5, sigma=1.0, seed=seed)
        ps.append(hodge(sample_fixed_design(chain, 2000, seed=seed)).p_value)
    ps = np.array(ps)
    assert 0.3 < ps.mean() < 0.7 and np.mean(ps < 0.05) <= 0.15
    driven = hodge(sample_fixed_design(driven_chain(25, degree=5, drive=0.6, seed=0), 2000,
                                       seed=0))
    assert driven.p_value < 1e-6 and driven.strongest_cycles(3)["affinity"].abs().min() > 0.2


def test_hodge_refuses_what_it_cannot_split():
    t = np.zeros((3, 3))
    t[1, 0] = t[2, 1] = 0.3  # one-way only
    with pytest.raises(ValueError, match="both directions"):
        hodge(_kernel(t), weights="uniform")
    with pytest.raises(ValueError, match="weights"):
        hodge(_kernel(t), weights="poisson")


def test_variance_shares_of_known_kernels():
    rng = np.random.default_rng(0)
    n = 30
    popularity = np.log(np.tile(rng.dirichlet(np.ones(n))[:, None], (1, n)))
    vs = variance_shares(popularity)
    assert vs.source + vs.reply == pytest.approx(1.0, abs=1e-10)
    assert vs.symmetric < 1e-12 and vs.antisymmetric < 1e-12
    # a potential plus a symmetric interaction: detailed balance, no antisymmetric part
    v = rng.normal(size=n)
    s = rng.normal(size=(n, n))
    s = s + s.T
    db = s + 0.5 * (v[None, :] - v[:, None])  # log T(g<-f) = s + (V(f) - V(g)) / 2
    vs = variance_shares(db)
    assert vs.antisymmetric < 1e-12 and vs.symmetric > 0.5
    a = rng.normal(size=(n, n))
    vs2 = variance_shares(db + (a - a.T))
    assert vs2.antisymmetric > 0.2
    assert sum(vs2.to_series()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="square"):
        variance_shares(np.zeros((3, 4)))


def test_a_noise_free_kernel_gets_no_p_value_from_placeholder_counts():
    chain = driven_chain(20, degree=5, drive=0.5, seed=3)
    h = hodge(chain.kernel())  # default weights asked for; the kernel has no noise
    assert h.weights == "uniform" and np.isnan(h.p_value)
    assert h.curl_fraction > 0
