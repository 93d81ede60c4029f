"""dbnb.comparison on synthetic kernels with a known shared (or unshared) potential."""

import numpy as np
import pandas as pd
import pytest

from dbnb.comparison import compare, comparison_table, fit_pair_potential


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
    with pytest.raises(ValueError, match="square"):
        fit_pair_potential(_kernel(v).iloc[:2])
    other = _kernel(v).rename(index=lambda s: s + "x", columns=lambda s: s + "x")
    with pytest.raises(ValueError, match="share 0 states"):
        compare(_kernel(v), other)


def test_figure():
    import matplotlib

    matplotlib.use("Agg")
    from dbnb.plots.comparison import potential_comparison

    v = np.random.default_rng(6).normal(0, 1, 10)
    fig = potential_comparison(compare(_kernel(v), _kernel(v, noise=0.2), n_boot=20))
    assert fig.axes and fig.axes[0].get_xlabel()
