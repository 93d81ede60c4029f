"""Ground-truth agents (dbnb.synthetic) and recovery of their potentials by the fit."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from dbnb import fit_potential
from dbnb.synthetic import (
    SyntheticChain,
    _is_connected,
    driven_chain,
    reversible_chain,
    sample_fixed_design,
    sample_letter_schedule,
    true_kernel,
)

KERNELS = ("exp", "softplus")


def log_ratios(chain: SyntheticChain):
    """(f, g, log T(g<-f)/T(f<-g)) over every edge, each unordered pair once (f < g)."""
    t = chain.matrix.tocsr()
    coo = sp.triu(t, k=1).tocoo()  # rows g < cols f... take both orders below
    g, f = coo.row, coo.col
    fwd = np.asarray(t[g, f]).ravel()
    bwd = np.asarray(t[f, g]).ravel()
    return f, g, np.log(fwd / bwd)


def pair_z(counts, v, min_n=10):
    """Normalised residuals of the measured pair log-ratios against a potential ``v``.

    ``r = log(N(g<-f)/N0(f)) - log(N(f<-g)/N0(g)) - (v(f) - v(g))`` over pairs seen at least
    ``min_n`` times each way, divided by the multinomial (delta-method) standard deviation
    ``sqrt(1/N(g<-f) - 1/N0(f) + 1/N(f<-g) - 1/N0(g))``.
    """
    n = counts.matrix.toarray()  # n[g, f]
    n0 = counts.calls.astype(float)
    g, f = np.nonzero(n)
    keep = (f < g) & (n[g, f] >= min_n) & (n[f, g] >= min_n)
    f, g = f[keep], g[keep]
    a, b = n[g, f], n[f, g]
    r = np.log(a / n0[f]) - np.log(b / n0[g]) - (v[f] - v[g])
    return r / np.sqrt(1 / a - 1 / n0[f] + 1 / b - 1 / n0[g])


def fitted(fit, states) -> np.ndarray:
    return fit.potential.reindex(pd.Index(states)).to_numpy()


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_states=1), "n_states"),
        (dict(n_states=2.5), "n_states"),
        (dict(n_states=10, degree=0.5), "degree"),
        (dict(n_states=10, degree=12), "degree"),
        (dict(n_states=10, sigma=-1), "sigma"),
        (dict(n_states=10, sigma=np.nan), "sigma"),
        (dict(n_states=10, escape=1.0), "escape"),
        (dict(n_states=10, escape=-0.1), "escape"),
        (dict(n_states=10, drive=-0.5), "drive"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        driven_chain(**kwargs)


def test_invalid_sampling_arguments():
    chain = reversible_chain(10, seed=0)
    with pytest.raises(ValueError, match="calls_per_state"):
        sample_fixed_design(chain, -1)
    with pytest.raises(ValueError, match="calls_per_state"):
        sample_fixed_design(chain, np.ones(3, int))
    with pytest.raises(ValueError, match="n_calls"):
        sample_letter_schedule(chain, 0)
    with pytest.raises(ValueError, match="start"):
        sample_letter_schedule(chain, 10, start="nope")
    with pytest.raises(ValueError, match="start"):
        sample_letter_schedule(chain, 10, start=10)


# ---------------------------------------------------------------------------- structure
@pytest.mark.parametrize("n", [2, 3, 40, 500])
def test_reversible_chain_structure(n):
    chain = reversible_chain(n, degree=min(5, n - 1), sigma=1.0, escape=0.2, seed=1)
    t = chain.matrix
    assert chain.states[0] == "s0000" and len(set(chain.states)) == n
    assert (t.diagonal() == 0).all()
    # symmetric support, strongly connected, columns sum to <= 1 - escape
    support = (t > 0).astype(int)
    assert (support != support.T).nnz == 0
    assert _is_connected(chain)
    assert (np.asarray(t.sum(axis=0)).ravel() <= 0.8 + 1e-12).all()
    np.testing.assert_allclose(chain.escape_probability(), 1 - t.sum(axis=0))
    # detailed balance holds exactly with the stored potential
    f, g, lr = log_ratios(chain)
    np.testing.assert_allclose(lr, chain.potential[f] - chain.potential[g], atol=1e-12)


def test_mean_degree_and_seed():
    a = reversible_chain(2000, degree=6, seed=7)
    assert a.n_transitions / a.n_states == pytest.approx(6, rel=0.01)
    b = reversible_chain(2000, degree=6, seed=7)
    c = reversible_chain(2000, degree=6, seed=8)
    assert (a.matrix != b.matrix).nnz == 0 and np.array_equal(a.potential, b.potential)
    assert not np.array_equal(a.potential, c.potential)
    assert np.std(a.potential) == pytest.approx(1.0, rel=0.1)


def test_driven_chain_log_ratio_identity():
    """log T(g<-f)/T(f<-g) = U(f) - U(g) + drive A[g, f]; triangles carry affinity +-drive."""
    drive = 1.7
    chain = driven_chain(60, degree=8, drive=drive, seed=2)
    a = chain.orientation
    assert (a + a.T).nnz == 0 and set(np.unique(a.data)) == {-1.0, 1.0}
    f, g, lr = log_ratios(chain)
    expected = chain.potential[f] - chain.potential[g] + drive * np.asarray(a[g, f]).ravel()
    np.testing.assert_allclose(lr, expected, atol=1e-12)
    affinities = triangle_affinities(chain)
    assert affinities.size > 10
    np.testing.assert_allclose(np.abs(affinities), drive, atol=1e-12)
    assert (np.asarray(chain.matrix.sum(axis=0)).ravel() <= 0.9 + 1e-12).all()


def test_drive_zero_is_reversible():
    r = reversible_chain(300, degree=5, sigma=0.8, escape=0.05, seed=9)
    d = driven_chain(300, degree=5, sigma=0.8, escape=0.05, drive=0.0, seed=9)
    assert (r.matrix != d.matrix).nnz == 0
    np.testing.assert_array_equal(r.potential, d.potential)


def test_true_kernel_wrapper():
    chain = reversible_chain(20, seed=3)
    tk = chain.kernel()
    assert tk.method == "exact" and tk.states == chain.states
    assert np.isinf(tk.n0).all()
    assert abs(tk.matrix - chain.matrix).max() == 0
    with pytest.raises(ValueError, match="square"):
        true_kernel(np.ones((2, 3)))


# ---------------------------------------------------------------------------- samplers
def test_fixed_design_counts_are_exact_and_multinomial():
    chain = reversible_chain(30, degree=4, sigma=1.0, escape=0.2, seed=4)
    calls = np.arange(30) * 100 + 500
    c = sample_fixed_design(chain, calls, seed=5)
    assert c.calls_kind == "exact" and c.states == chain.states
    np.testing.assert_array_equal(c.calls, calls)
    np.testing.assert_array_equal(c.observed_calls() + c.escapes, calls)  # every call recorded
    assert c.self_loops().sum() == 0
    np.testing.assert_allclose(c.metadata["beta_V_true"], chain.potential)
    # Pearson chi^2 of the counts against N0 T over all outcomes (edges and escapes)
    t = chain.matrix.tocoo()
    expected = np.concatenate([calls[t.col] * t.data, calls * chain.escape_probability()])
    observed = np.concatenate([np.asarray(c.matrix[t.row, t.col]).ravel(), c.escapes])
    chi2 = np.sum((observed - expected) ** 2 / expected)
    dof = expected.size - 30
    assert stats.chi2.sf(chi2, dof) > 1e-3
    # same seed, same counts; other seed, other counts
    c2 = sample_fixed_design(chain, calls, seed=5)
    assert (c.matrix != c2.matrix).nnz == 0
    assert (c.matrix != sample_fixed_design(chain, calls, seed=6).matrix).nnz > 0


def test_letter_schedule_records_every_call():
    chain = reversible_chain(400, degree=5, sigma=1.0, escape=0.3, seed=6)
    c = sample_letter_schedule(chain, 20_000, start="s0017", seed=7)
    assert c.states[0] == "s0017" and c.metadata["first_seen"].iloc[0] == 0
    assert c.calls.sum() == 20_000 and c.calls_kind == "exact"
    np.testing.assert_array_equal(c.observed_calls() + c.escapes, c.calls)
    # found in order; every state but the start was reached by a transition
    assert c.metadata["first_seen"].is_monotonic_increasing
    assert (c.in_counts()[1:] > 0).all()
    # escapes happen at the chain's rate: sum_f N0(f) escape(f) expected
    esc = chain.escape_probability()[[chain.states.index(s) for s in c.states]]
    expected = np.sum(c.calls * esc)
    assert abs(c.escapes.sum() - expected) < 5 * np.sqrt(expected)
    # uniform choice among found states: early finds are prompted more than late ones
    assert c.calls[:20].mean() > 3 * c.calls[-20:].mean()
    np.testing.assert_allclose(
        c.metadata["beta_V_true"], chain.potential[[chain.states.index(s) for s in c.states]]
    )


def test_letter_schedule_speed():
    chain = reversible_chain(20_000, degree=6, seed=8)
    t0 = time.perf_counter()
    c = sample_letter_schedule(chain, 100_000, seed=9)
    assert time.perf_counter() - t0 < 5.0
    assert c.calls.sum() == 100_000


# ---------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("kernel", KERNELS)
def test_recovery_true_kernel(kernel):
    """The exact kernel of a 200-state reversible chain gives the true potential to 1e-6."""
    chain = reversible_chain(200, degree=5, sigma=1.5, seed=10)
    fit = fit_potential(chain.kernel(), kernel)
    assert (fit.status == "main").all()
    v = fitted(fit, chain.states)
    np.testing.assert_allclose(v - v.mean(), chain.potential - chain.potential.mean(), atol=1e-6)
    # the minimum action is the sum over pairs of the two-state minima: each pair is at its
    # own optimum because the kernel obeys detailed balance (Eq. 17)
    if kernel == "exp":
        t = chain.matrix.tocsr()
        coo = sp.triu(t, k=1).tocoo()
        s = np.sum(2 * np.sqrt(coo.data * np.asarray(t[coo.col, coo.row]).ravel()))
        assert fit.action == pytest.approx(s / 200, rel=1e-10)


def test_recovery_fixed_design_counting_statistics():
    """10^5 calls on a 50-state reversible chain: the fit is right to within counting noise.

    Two principled checks.
    (1) The normalised residuals z of the measured pair log-ratios against the *true*
        potential must be standard normal (the multinomial delta-method variance
        1/N(g<-f) - 1/N0(f) + 1/N(f<-g) - 1/N0(g)); their chi^2/dof must be ~1, which tests
        the sampler and the error model. Against the *fitted* potential, with n - 1 fewer
        degrees of freedom, chi^2/dof must be ~1 too (the fit absorbs no signal it should
        not).
    (2) Monte Carlo: 40 independent replicates of the same design give the per-state
        standard deviation sd(f) of the (mean-centred) fitted potential. The error of the
        first replicate against the truth, z(f) = (V_fit - V_true)(f) / sd(f), must then have
        mean square ~1 (a bias comparable to the noise would inflate it) and no |z| > 4.5.
    """
    chain = reversible_chain(50, degree=4, sigma=1.2, escape=0.1, seed=3)
    v_true = chain.potential - chain.potential.mean()
    reps = []
    for b in range(41):
        counts = sample_fixed_design(chain, 2000, seed=100 + b)
        fit = fit_potential(counts)
        assert (fit.status == "main").all()
        v = fitted(fit, chain.states)
        reps.append(v - v.mean())
        if b == 0:
            first_counts = counts
    reps = np.array(reps)
    assert first_counts.calls.sum() == 100_000
    assert np.corrcoef(reps[0], v_true)[0, 1] > 0.99

    z_true = pair_z(first_counts, chain.potential)
    assert z_true.size > 60
    assert 0.75 < np.mean(z_true**2) < 1.3
    z_fit = pair_z(first_counts, reps[0])
    dof = z_fit.size - (chain.n_states - 1)
    assert 0.6 < np.sum(z_fit**2) / dof < 1.4

    sd = reps[1:].std(axis=0, ddof=1)
    z = (reps[0] - v_true) / sd
    assert 0.5 < np.mean(z**2) < 2.0
    assert np.max(np.abs(z)) < 4.5


def test_newton_converges_at_default_tol():
    """Regression: this sample once stalled the Newton line search at a relative gradient of
    1e-7 (objective changes below rounding) and raised ConvergenceError at tol=1e-9."""
    chain = reversible_chain(100, degree=4, sigma=1.0, escape=0.2, seed=3)
    counts = sample_fixed_design(chain, 1000, seed=114)
    fit = fit_potential(counts)
    assert fit.converged


def test_recovery_letter_schedule():
    """The Letter's design (10^5 calls from one start) recovers the main component.

    300 states, so every state is found early and prompted ~300 times; the accuracy is then
    that of a fixed design with the same calls. On a 1500-state chain (states prompted ~70
    times) the correlation drops to ~0.92, as the counting noise predicts.
    """
    chain = reversible_chain(300, degree=5, sigma=1.0, escape=0.1, seed=12)
    counts = sample_letter_schedule(chain, 100_000, seed=13)
    fit = fit_potential(counts)
    main = (fit.status == "main").to_numpy()
    assert main.sum() > 0.9 * counts.n_states
    assert set(fit.status.unique()) <= {"main", "upstream", "downstream", "unrelated"}
    v = fit.potential.to_numpy()
    truth = counts.metadata["beta_V_true"].to_numpy()
    assert np.corrcoef(v[main], truth[main])[0, 1] > 0.98
    # the uncertainty is larger for states found late (fewer calls)
    err = np.abs((v - v[main].mean()) - (truth - truth[main].mean()))
    late = main & (counts.calls < np.median(counts.calls[main]))
    early = main & ~late
    assert err[late].mean() > err[early].mean()


# ---------------------------------------------------------------------------- driven
def triangle_affinities(chain_or_matrix) -> np.ndarray:
    """Kolmogorov affinities log[T(g<-f)T(h<-g)T(f<-h) / (T(f<-g)T(g<-h)T(h<-f))] over all
    triangles f < g < h of the support, by brute force."""
    t = chain_or_matrix.matrix if isinstance(chain_or_matrix, SyntheticChain) else chain_or_matrix
    t = sp.csr_array(t)
    adj = (t + t.T) > 0
    nbrs = [set(adj[[i]].indices) for i in range(t.shape[0])]
    out = []
    for f in range(t.shape[0]):
        for g in nbrs[f]:
            if g <= f:
                continue
            for h in nbrs[f] & nbrs[g]:
                if h <= g:
                    continue
                fwd = t[g, f] * t[h, g] * t[f, h]
                bwd = t[f, g] * t[g, h] * t[h, f]
                out.append(np.log(fwd / bwd))
    return np.array(out)


def db_violation(fit) -> float:
    """Mean |log T(g<-f)/T(f<-g) - (V(f) - V(g))| over pairs with both directions."""
    tk = fit.transitions
    t = tk.matrix.tocsr()
    v = fitted(fit, tk.states)
    coo = sp.triu(t, k=1).tocoo()
    g, f = coo.row, coo.col
    back = np.asarray(t[f, g]).ravel()
    ok = back > 0
    lr = np.log(coo.data[ok] / back[ok])
    return float(np.mean(np.abs(lr - (v[f[ok]] - v[g[ok]]))))


def test_detailed_balance_statistic_grows_with_drive():
    """Exact kernels: the violation is 0 (1e-8) without drive and grows monotonically."""
    drives = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    viol, excess = [], []
    for d in drives:
        chain = driven_chain(80, degree=6, sigma=1.0, drive=d, seed=21)
        fit = fit_potential(chain.kernel())
        viol.append(db_violation(fit))
        # residual action above the pairwise (two-state) bound sum 2 sqrt(ab) / n
        t = chain.matrix.tocsr()
        coo = sp.triu(t, k=1).tocoo()
        bound = np.sum(2 * np.sqrt(coo.data * np.asarray(t[coo.col, coo.row]).ravel())) / 80
        excess.append(fit.action - bound)
    assert viol[0] < 1e-8 and abs(excess[0]) < 1e-12
    assert np.all(np.diff(viol) > 0), viol
    assert np.all(np.diff(excess) > 0), excess
    assert viol[-1] > 0.5
    assert np.max(np.abs(triangle_affinities(reversible_chain(80, degree=6, seed=21)))) < 1e-12


def test_pair_chi2_distinguishes_drive():
    """Sampled counts, 10^5 calls: chi^2/dof of pair residuals against the fitted potential
    is ~1 for a reversible chain and far above 1 for a strong drive."""
    ratios = {}
    for d in (0.0, 2.0):
        chain = driven_chain(50, degree=4, sigma=1.0, escape=0.1, drive=d, seed=31)
        counts = sample_fixed_design(chain, 2000, seed=32)
        fit = fit_potential(counts)
        z = pair_z(counts, fitted(fit, counts.states))
        ratios[d] = np.sum(z**2) / (z.size - (fit.status == "main").sum() + 1)
    assert 0.6 < ratios[0.0] < 1.5
    assert ratios[2.0] > 5
