"""Least-action fit: closed forms, stationarity, an independent optimiser, SCC handling.

Every expected value here is computed independently of :mod:`dbnb.potential`: closed forms
from METHOD.md, loops over edges written in the test, or :func:`scipy.optimize.minimize`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import dbnb
from dbnb import TransitionCounts, fit_potential
from dbnb.synthetic import driven_chain, true_kernel

KERNELS = ("exp", "softplus")


# ---------------------------------------------------------------------------- helpers
def k_value(kernel: str, x: float) -> float:
    """K(x) written out independently of dbnb."""
    if kernel == "exp":
        return float(np.exp(-x / 2))
    return float(np.log1p(np.exp(-x))) if x > -30 else float(-x + np.log1p(np.exp(x)))


def k_prime(kernel: str, x: float) -> float:
    """K'(x) written out independently of dbnb."""
    if kernel == "exp":
        return -0.5 * float(np.exp(-x / 2))
    return -1.0 / (1.0 + float(np.exp(x)))


def loop_gradient(tk, v: np.ndarray, kernel: str) -> np.ndarray:
    """Un-normalised gradient of sum_e T K(V(f) - V(g)), one Python iteration per edge.

    dS/dV(f) = sum_g T(g<-f) K'(V(f)-V(g)) - sum_h T(f<-h) K'(V(h)-V(f)): Eq. 3 is grad = 0.
    """
    coo = tk.matrix.tocoo()
    grad = np.zeros(tk.n_states)
    for g, f, t in zip(coo.row, coo.col, coo.data, strict=True):
        d = k_prime(kernel, v[f] - v[g])
        grad[f] += t * d
        grad[g] -= t * d
    return grad


def loop_action(tk, v: np.ndarray, kernel: str) -> float:
    coo = tk.matrix.tocoo()
    total = sum(t * k_value(kernel, v[f] - v[g]) for g, f, t in zip(coo.row, coo.col, coo.data,
                                                                      strict=True))
    return total / tk.n_states


def two_state_counts(n_ab: int, n_ba: int, n0: int = 1000) -> TransitionCounts:
    """A -> B seen n_ab times, B -> A n_ba times, n0 calls from each (exact)."""
    return TransitionCounts.from_triples(
        ["A", "B"], ["B", "A"], [n_ab, n_ba], calls={"A": n0, "B": n0}, calls_kind="exact"
    )


# ---------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("n_ab", "n_ba"), [(10, 40), (500, 3), (7, 7), (1, 999)])
def test_two_states_log_ratio(kernel, n_ab, n_ba):
    """beta (V(A) - V(B)) = log(a / b) with a = T(B <- A), b = T(A <- B)."""
    fit = fit_potential(two_state_counts(n_ab, n_ba), kernel)
    dv = fit.potential["A"] - fit.potential["B"]
    assert dv == pytest.approx(np.log(n_ab / n_ba), abs=1e-9)
    assert set(fit.status) == {"main"}
    assert min(fit.potential) == 0.0  # gauge: min = 0 in the main component


@pytest.mark.parametrize(("n_ab", "n_ba", "n0"), [(10, 40, 100), (500, 3, 1000), (7, 7, 50)])
def test_two_states_minimum_action(n_ab, n_ba, n0):
    """At the minimum, S = 2 sqrt(ab) / n (exp) and (a log(1+b/a) + b log(1+a/b)) / n."""
    a, b = n_ab / n0, n_ba / n0
    fit = fit_potential(two_state_counts(n_ab, n_ba, n0), "exp")
    assert fit.action == pytest.approx(2 * np.sqrt(a * b) / 2, rel=1e-12)
    fit = fit_potential(two_state_counts(n_ab, n_ba, n0), "softplus")
    expected = (a * np.log1p(b / a) + b * np.log1p(a / b)) / 2
    assert fit.action == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_three_state_reversible_exact(kernel):
    """A hand-built 3-state Metropolis kernel (not from dbnb.synthetic) is recovered to 1e-8."""
    v = np.array([0.0, 1.3, -0.7])
    q = np.array([[0, 0.2, 0.3], [0.2, 0, 0.1], [0.3, 0.1, 0]])  # symmetric proposal
    t = q * np.minimum(1.0, np.exp(v[None, :] - v[:, None]))  # T[g, f]
    tk = true_kernel(t, ["x", "y", "z"])
    # the kernel obeys detailed balance by construction
    assert np.log(t[1, 0] / t[0, 1]) == pytest.approx(v[0] - v[1], abs=1e-14)
    fit = fit_potential(tk, kernel)
    np.testing.assert_allclose(fit.potential.to_numpy(), v - v.min(), atol=1e-8)
    # and the minimum action is the sum of the pairwise minima (each pair is at its optimum)
    pair = [(0, 1), (0, 2), (1, 2)]
    if kernel == "exp":
        s = sum(2 * np.sqrt(t[i, j] * t[j, i]) for i, j in pair) / 3
    else:
        s = sum(t[j, i] * np.log1p(t[i, j] / t[j, i]) + t[i, j] * np.log1p(t[j, i] / t[i, j])
                for i, j in pair) / 3
    assert fit.action == pytest.approx(s, rel=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
def test_claude_table2(kernel):
    """Eq. 22 from the generic solver: 0, log(3879/66), log(3558/20), +inf, +inf."""
    fit = fit_potential(dbnb.datasets.claude4_table2(), kernel)
    v = fit.potential
    assert v["ATTITUDE"] == 0.0
    assert v["PERSONAL"] == pytest.approx(np.log(3879 / 66), abs=1e-9)
    assert v["PROBLEM"] == pytest.approx(np.log(3558 / 20), abs=1e-9)
    assert v["TURKEY"] == np.inf and v["BUZZY"] == np.inf
    assert fit.status["TURKEY"] == "upstream" and fit.status["BUZZY"] == "upstream"
    assert (fit.status[["ATTITUDE", "PERSONAL", "PROBLEM"]] == "main").all()
    assert fit.transitions.method == "fixed"
    if kernel == "exp":  # two independent pairs at their minima, normalised by 5 states
        s = (2 * np.sqrt(3879 * 66) + 2 * np.sqrt(3558 * 20)) / 4000 / 5
        assert fit.action == pytest.approx(s, rel=1e-10)


# ---------------------------------------------------------------------------- stationarity
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("drive", [0.0, 1.5])
def test_stationarity_eq3(kernel, drive):
    """At the fit, sum_g T(g<-f) K'(V(f)-V(g)) = sum_h T(f<-h) K'(V(h)-V(f)) for every f.

    Checked with a per-edge Python loop on sampled counts of a 60-state chain, with and
    without a drive (with a drive the kernel violates detailed balance, so the stationarity
    is a genuine balance of many terms, not pairwise cancellation).
    """
    chain = driven_chain(60, degree=5, sigma=1.0, drive=drive, seed=11)
    counts = dbnb.synthetic.sample_fixed_design(chain, 400, seed=12)
    fit = fit_potential(counts, kernel)
    assert (fit.status == "main").all()
    tk = fit.transitions
    v = fit.potential.reindex(pd.Index(tk.states)).to_numpy()
    grad = loop_gradient(tk, v, kernel)
    scale = tk.matrix.sum()
    assert np.max(np.abs(grad)) < 1e-9 * scale
    # and the gradient is not trivially zero away from the fit
    assert np.max(np.abs(loop_gradient(tk, v + np.linspace(0, 1, v.size), kernel))) > 1e-3


# ---------------------------------------------------------------------------- scipy check
@pytest.mark.parametrize("kernel", KERNELS)
def test_against_scipy_bfgs(kernel):
    """An independent BFGS minimisation (V[0] = 0 fixed) gives the same potential and action.

    The kernel is the exact one of a driven 12-state chain: strongly connected and far from
    detailed balance, so the minimiser is non-trivial.
    """
    chain = driven_chain(12, degree=4, sigma=1.0, drive=2.0, seed=5)
    tk = chain.kernel()
    coo = tk.matrix.tocoo()
    g, f, t = coo.row, coo.col, coo.data
    n = tk.n_states

    def fun(x):
        v = np.concatenate([[0.0], x])
        d = v[f] - v[g]
        if kernel == "exp":
            k, k1 = np.exp(-d / 2), -0.5 * np.exp(-d / 2)
        else:
            k, k1 = np.logaddexp(0, -d), -1 / (1 + np.exp(d))
        grad = np.bincount(f, t * k1, minlength=n) - np.bincount(g, t * k1, minlength=n)
        return np.sum(t * k) / n, grad[1:] / n

    res = minimize(fun, np.zeros(n - 1), jac=True, method="BFGS",
                   options={"gtol": 1e-13, "maxiter": 10_000})
    v_ref = np.concatenate([[0.0], res.x])
    fit = fit_potential(tk, kernel)
    v_fit = fit.potential.reindex(pd.Index(tk.states)).to_numpy()
    np.testing.assert_allclose(v_fit - v_fit[0], v_ref, atol=1e-6)
    assert fit.action == pytest.approx(res.fun, rel=1e-9, abs=1e-12)
    assert fit.action == pytest.approx(loop_action(tk, v_fit, kernel), rel=1e-12)
    assert fit.action <= res.fun + 1e-13


# ---------------------------------------------------------------------------- SCCs
def scc_counts() -> TransitionCounts:
    """Main SCC {a, b, c}; upstream {u1, u2} -> a; b -> downstream {d1, d2}; unrelated {z1, z2}."""
    triples = [
        ("a", "b", 30), ("b", "a", 10), ("b", "c", 20), ("c", "b", 25), ("c", "a", 5),
        ("a", "c", 12),
        ("u1", "u2", 40), ("u2", "u1", 8), ("u1", "a", 15),
        ("b", "d1", 6), ("d1", "d2", 9), ("d2", "d1", 33),
        ("z1", "z2", 21), ("z2", "z1", 14),
    ]
    src, tgt, cnt = zip(*triples, strict=True)
    states = ["a", "b", "c", "u1", "u2", "d1", "d2", "z1", "z2"]
    return TransitionCounts.from_triples(src, tgt, cnt, states=states,
                                         calls=dict.fromkeys(states, 100), calls_kind="exact")


@pytest.mark.parametrize("kernel", KERNELS)
def test_scc_statuses_and_action(kernel):
    counts = scc_counts()
    fit = fit_potential(counts, kernel)
    v, st = fit.potential, fit.status
    assert list(st[["a", "b", "c"]]) == ["main"] * 3
    assert np.isfinite(v[["a", "b", "c"]]).all() and v[["a", "b", "c"]].min() == 0.0
    assert list(st[["u1", "u2"]]) == ["upstream"] * 2 and (v[["u1", "u2"]] == np.inf).all()
    assert list(st[["d1", "d2"]]) == ["downstream"] * 2 and (v[["d1", "d2"]] == -np.inf).all()
    assert list(st[["z1", "z2"]]) == ["unrelated"] * 2 and v[["z1", "z2"]].isna().all()
    # inside each two-state SCC the relative potential is the pair's log-ratio
    rel = fit.relative
    assert rel["u1"] - rel["u2"] == pytest.approx(np.log(40 / 8), abs=1e-9)
    assert rel["d2"] - rel["d1"] == pytest.approx(np.log(33 / 9), abs=1e-9)
    assert rel["z1"] - rel["z2"] == pytest.approx(np.log(21 / 14), abs=1e-9)
    assert fit.component.nunique() == 4 and (fit.component[["a", "b", "c"]] == 0).all()

    # Sum of per-SCC minima: closed forms for the pairs, scipy for the 3-cycle.
    def pair_min(na, nb):
        a, b = na / 100, nb / 100
        if kernel == "exp":
            return 2 * np.sqrt(a * b)
        return a * np.log1p(b / a) + b * np.log1p(a / b)

    main = counts.submodel(["a", "b", "c"])
    tk_main = dbnb.estimate_kernel(main, "exact")
    res = minimize(lambda x: loop_action(tk_main, np.concatenate([[0.0], x]), kernel) * 3,
                   np.zeros(2), method="BFGS", options={"gtol": 1e-12})
    total = res.fun + pair_min(40, 8) + pair_min(9, 33) + pair_min(21, 14)
    assert fit.action == pytest.approx(total / 9, rel=1e-7)
    np.testing.assert_allclose(
        (v[["b", "c"]] - v["a"]).to_numpy(), res.x, atol=1e-5
    )
    # the action of the reported potential (infinities included) is the same number
    finite = fit.relative.copy()
    finite[st == "upstream"] += 1e3
    finite[st == "downstream"] -= 1e3
    assert dbnb.action(finite, fit.transitions, kernel) == pytest.approx(fit.action, rel=1e-9)


def test_reference_state_sets_gauge():
    fit = fit_potential(scc_counts(), reference="c")
    assert fit.potential["c"] == 0.0
    base = fit_potential(scc_counts())
    np.testing.assert_allclose(
        (fit.potential[["a", "b"]] - base.potential[["a", "b"]]).to_numpy(),
        -base.potential["c"], atol=1e-12,
    )


@pytest.mark.parametrize("kernel", KERNELS)
def test_regularization_limit(kernel):
    """alpha > 0: all finite; main-SCC differences -> least-action ones as alpha -> 0, while
    upstream states climb and downstream ones sink without bound."""
    counts = scc_counts()
    exact = fit_potential(counts, kernel)
    ref = (exact.potential[["b", "c"]] - exact.potential["a"]).to_numpy()
    errs, ups, downs = [], [], []
    for alpha in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]:
        fit = fit_potential(counts, kernel, regularization=alpha)
        v = fit.potential
        assert np.isfinite(v).all() and (fit.status == "regularized").all()
        errs.append(np.max(np.abs((v[["b", "c"]] - v["a"]).to_numpy() - ref)))
        ups.append(v["u2"] - v["a"])
        downs.append(v["d1"] - v["a"])
    assert all(np.diff(errs) < 0), errs
    assert errs[-1] < 1e-4  # the bias shrinks roughly like alpha log(1/alpha)
    assert all(np.diff(ups) > 0) and ups[-1] > 5
    assert all(np.diff(downs) < 0) and downs[-1] < -5


@pytest.mark.parametrize("kernel", KERNELS)
def test_dense_and_sparse_newton_agree(kernel, monkeypatch):
    """Below ``DENSE_SOLVE_MAX`` free states the edge Newton assembles a dense Hessian; the
    sparse path (as for larger graphs) reaches the same minimum to rounding."""
    from dbnb import newton

    counts = dbnb.synthetic.sample_fixed_design(
        driven_chain(40, degree=6, drive=0.3, seed=4), 50, seed=5)
    dense = fit_potential(counts, violation=kernel)
    lik_dense = dbnb.fit_likelihood(counts)
    monkeypatch.setattr(newton, "DENSE_SOLVE_MAX", 0)
    monkeypatch.setattr(newton, "DENSE_FILL_MAX", 0)  # this graph's fill would keep it dense
    calls = []
    real = newton.EdgeSystem.hessian_dense
    monkeypatch.setattr(newton.EdgeSystem, "hessian_dense",
                        lambda self, *a: calls.append(1) or real(self, *a))
    sparse = fit_potential(counts, violation=kernel)
    lik_sparse = dbnb.fit_likelihood(counts)
    assert not calls  # the sparse path really ran
    np.testing.assert_allclose(dense.potential, sparse.potential, rtol=0, atol=1e-8)
    assert dense.action == pytest.approx(sparse.action, rel=1e-12)
    np.testing.assert_allclose(lik_dense.interval(0.95).to_numpy(dtype=float),
                               lik_sparse.interval(0.95).to_numpy(dtype=float),
                               rtol=0, atol=1e-7)
