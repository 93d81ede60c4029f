"""dbnb.comparison on synthetic kernels with a known shared (or unshared) potential."""

import numpy as np
import pandas as pd
import pytest

from dbnb.comparison import compare, compare_to, comparison_table, fit_pair_potential
from dbnb.synthetic import driven_chain, reversible_chain, true_kernel


def _kernel(v, noise=0.0, seed=0, pop=None):
    """P[g, f] proportional to exp(-(V(g) - V(f)) / 2) * exp(s) with s symmetric noise."""
    rng = np.random.default_rng(seed)
    n = len(v)
    s = rng.normal(0, noise, (n, n)) if noise else np.zeros((n, n))
    s = (s + s.T) / 2
    w = np.exp(-(v[:, None] - v[None, :]) / 2 + s)
    if pop is not None:
        w = w * pop[:, None]
    np.fill_diagonal(w, 0)
    p = w / w.sum(axis=0).max() * 0.9  # one constant: every column keeps >= 10% escapes
    lab = [f"S{i}" for i in range(n)]
    return pd.DataFrame(p, index=lab, columns=lab)


def test_exact_potential_recovered():
    v = np.array([0.0, 1.0, 2.5, -1.0, 0.3])
    p = _kernel(v)
    fit = fit_pair_potential(p)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(fit.potential.to_numpy(), v - v.mean(), atol=1e-10)


def test_identical_potential_gives_correlation_one_and_cross_equals_own():
    v = np.random.default_rng(1).normal(0, 2, 30)
    a, b = _kernel(v, noise=0.3, seed=2), _kernel(v, noise=0.3, seed=2)
    c = compare(a, b, n_boot=200)
    assert c.pearson[0] == pytest.approx(1.0, abs=1e-12)
    assert c.spearman[0] == pytest.approx(1.0, abs=1e-12)
    assert c.r2_cross == pytest.approx(c.r2_own, abs=1e-12)
    assert c.scale == pytest.approx(1.0, abs=1e-12)


def test_scaled_potential_scale_is_beta_ratio():
    v = np.random.default_rng(3).normal(0, 1, 20)
    c = compare(_kernel(v), _kernel(2 * v), n_boot=100)
    assert c.scale == pytest.approx(2.0, rel=1e-10)
    assert c.r2_cross == pytest.approx(1.0, abs=1e-10)


def test_independent_potentials_near_zero():
    rng = np.random.default_rng(4)
    rs, r2 = [], []
    for k in range(20):
        c = compare(_kernel(rng.normal(0, 1, 40)), _kernel(rng.normal(0, 1, 40)), n_boot=50,
                    seed=k)
        rs.append(c.pearson[0])
        r2.append(c.r2_cross)
        assert c.pearson[1] < c.pearson[0] < c.pearson[2]
    assert abs(np.mean(rs)) < 0.1
    assert np.mean(r2) < 0.1


def test_popularity_control_explains_popularity_kernel():
    # a prompt-independent kernel: its potential is -log p, and the control predicts it fully
    pop = np.random.default_rng(5).uniform(0.1, 1, 15)
    b = _kernel(np.zeros(15), pop=pop)
    c = compare(b, b, n_boot=50)
    assert c.r2_popularity == pytest.approx(1.0, abs=1e-10)
    table = comparison_table([c])
    assert list(table["r2_popularity"]) == [c.r2_popularity]


def test_errors():
    v = np.arange(3.0)
    with pytest.raises(ValueError, match="both prompts and replies, got 2"):
        fit_pair_potential(_kernel(v).iloc[:2])
    with pytest.raises(ValueError, match=r"P\['S0', 'S1'\] = -0.5"):
        bad = _kernel(v)
        bad.iloc[0, 1] = -0.5
        fit_pair_potential(bad)
    with pytest.raises(ValueError, match="no pair of states has both directions"):
        fit_pair_potential(pd.DataFrame(np.triu(np.full((3, 3), 0.2), 1), index=list("abc"),
                                        columns=list("abc")))
    with pytest.raises(TypeError, match="got list"):
        compare([[1]], _kernel(v))
    with pytest.raises(ValueError, match="max_log_gap needs a kernel with bounds"):
        compare(_kernel(v), _kernel(v), max_log_gap=0.1)
    with pytest.raises(ValueError, match="n_boot must be an int >= 0"):
        compare(_kernel(v), _kernel(v), n_boot=-1)
    c = compare(_kernel(v), _kernel(v), n_boot=0)  # no bootstrap: NaN there, Fisher z kept
    assert np.isnan(c.spearman[1]) and np.isfinite(c.pearson[0])
    with pytest.raises(ValueError, match="others is empty"):
        compare_to(_kernel(v), {})
    other = _kernel(v).rename(index=lambda s: s + "x", columns=lambda s: s + "x")
    with pytest.raises(ValueError, match="share 0 states"):
        compare(_kernel(v), other)


def test_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dbnb.plots import fig_comparison_summary, fig_potential_comparison

    v = np.random.default_rng(6).normal(0, 1, 10)
    c = compare(_kernel(v), _kernel(v, noise=0.2), n_boot=20, names=("m1", "m2"))
    fig = fig_potential_comparison(c)
    pts = [x for x in fig.axes[0].collections if x.get_gid() == "states"][0].get_offsets()
    np.testing.assert_allclose(pts[:, 0], c.scale * c.fit_a.potential[list(c.states)])
    assert "m1" in fig.axes[0].get_xlabel() and "m2" in fig.axes[0].get_ylabel()
    d = compare(_kernel(v), _kernel(-v), n_boot=20, names=("m1", "flip"))
    fig2 = fig_comparison_summary([c, d])
    ax = fig2.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["m1\nvs m2", "m1\nvs flip"]
    cross = [ln for ln in ax.lines if ln.get_gid() == "r2_cross"][0].get_xdata()
    np.testing.assert_allclose(cross, [c.r2_cross, d.r2_cross])
    assert d.pearson[0] < 0 < c.pearson[0]
    with pytest.raises(ValueError, match="results is empty"):
        fig_comparison_summary([])
    plt.close("all")


def test_reversible_chain_potential_recovered_from_a_transition_kernel():
    chain = reversible_chain(60, degree=5, sigma=1.5, seed=7)
    fit = fit_pair_potential(true_kernel(chain.matrix, chain.states), cycles=True)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    assert fit.hodge.curl_fraction < 1e-10
    truth = pd.Series(chain.potential, index=chain.states)[fit.potential.index]
    np.testing.assert_allclose(fit.potential, truth - truth.mean(), atol=1e-8)


def test_driven_chain_has_curl_and_cross_prediction_falls_short():
    a = true_kernel(*(lambda c: (c.matrix, c.states))(reversible_chain(50, seed=8)))
    drv = driven_chain(50, drive=1.5, seed=8)
    b = true_kernel(drv.matrix, drv.states)
    fit = fit_pair_potential(b, cycles=True)
    assert 0.05 < fit.hodge.curl_fraction + fit.hodge.harmonic_fraction
    assert fit.r2 == pytest.approx(fit.hodge.gradient_fraction)
    quick = fit_pair_potential(b)  # no triangle solve: the same gradient, no curl split
    assert quick.r2 == pytest.approx(fit.r2, abs=1e-12)
    np.testing.assert_allclose(quick.potential, fit.potential, atol=1e-12)
    assert np.isnan(quick.hodge.curl_fraction) and quick.hodge.cycles.empty
    c = compare(a, b, n_boot=100)
    assert c.r2_cross <= c.r2_own + 1e-12  # B's own potential is B's best gradient
    assert c.r2_own < 0.95


def test_logprob_kernel_input_and_censoring():
    from dbnb.datasets import data_dir
    from dbnb.llm.logprob import load_logprob_kernel

    k = load_logprob_kernel(data_dir() / "runs" / "symbolic_logprob.npz")
    full = compare(k, k, n_boot=50)
    assert full.pearson[0] == pytest.approx(1.0, abs=1e-12)
    cens = compare(k, k, n_boot=50, max_log_gap=0.1)
    assert len(cens.fit_b.pairs) < len(full.fit_b.pairs)
    kept = set(map(tuple, cens.fit_b.pairs[["f", "g"]].to_numpy()))
    bad = k.censored_pairs(0.1)
    src = list(k.sources)
    assert not any(bad[src.index(f), src.index(g)] for f, g in kept)


def test_compare_to_one_row_per_kernel():
    v = np.random.default_rng(9).normal(0, 1, 12)
    res = compare_to(_kernel(v), {"x2": _kernel(2 * v), "x0.5": _kernel(v / 2)}, name="ref",
                     n_boot=20)
    t = comparison_table(res)
    assert list(t["B"]) == ["x2", "x0.5"] and set(t["A"]) == {"ref"}
    np.testing.assert_allclose(t["scale"], [2.0, 0.5], rtol=1e-10)


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_correlation_intervals_cover_at_their_level(rho):
    # compare() recovers each kernel's potential exactly (tests above), so its intervals are
    # those of n = 25 draws of (V_A, V_B): drawn here from a bivariate normal with correlation
    # rho, Fisher z must cover rho at ~95 % and the bootstrap Spearman interval the population
    # Spearman 6/pi asin(rho/2) near 95 %
    from dbnb.comparison import _boot_corr, _fisher

    rng = np.random.default_rng(10)
    cov = np.array([[1, rho], [rho, 1]])
    rho_s = 6 / np.pi * np.arcsin(rho / 2)
    hit_p = hit_s = hit_pb = 0
    reps = 400
    for k in range(reps):
        va, vb = rng.multivariate_normal([0, 0], cov, 25).T
        lo, hi = _fisher(float(np.corrcoef(va, vb)[0, 1]), 25, 0.95)
        (plo, phi), (slo, shi) = _boot_corr(va, vb, 400, 0.95, k)
        hit_p += lo <= rho <= hi
        hit_pb += plo <= rho <= phi
        hit_s += slo <= rho_s <= shi
    # binomial sd of a 95 % coverage over 400 reps is 1.1 %: bands are about 3 sd (wider below
    # for the percentile bootstrap, which under-covers a little at n = 25)
    assert 0.915 <= hit_p / reps <= 0.985
    assert 0.88 <= hit_pb / reps <= 0.985
    assert 0.88 <= hit_s / reps <= 0.985


def test_correlation_interval_of_compare_is_fisher_z():
    from dbnb.comparison import _fisher

    rng = np.random.default_rng(11)
    va, vb = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 20).T
    c = compare(_kernel(va), _kernel(vb), n_boot=100)
    assert c.pearson[1:] == pytest.approx(_fisher(c.pearson[0], 20, 0.95))
    assert c.pearson[1] < c.pearson[0] < c.pearson[2]


def test_beyond_popularity_separates_shared_popularity_from_a_shared_potential():
    rng = np.random.default_rng(12)
    n = 40
    pop = np.exp(rng.normal(0, 2, n))  # popularity dominates V
    u, w1, w2 = rng.normal(0, 1, (3, n))
    # same popularity, independent prompt-dependent potentials: V correlates, the rest not
    a, b = _kernel(w1, pop=pop), _kernel(w2, pop=pop)
    c = compare(a, b, n_boot=50)
    assert c.pearson[0] > 0.5
    assert c.beyond_popularity[1] < 0 < c.beyond_popularity[2]
    # same popularity and a shared part u beyond it: both correlate
    d = compare(_kernel(u + 0.3 * w1, pop=pop), _kernel(u + 0.3 * w2, pop=pop), n_boot=50)
    assert d.beyond_popularity[1] > 0.5
