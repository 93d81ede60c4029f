"""Exact elimination of low-degree states: solves against a direct solver, every branch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import dbnb.elimination as el
import dbnb.newton as nw
from dbnb.elimination import Elimination, NotPositiveDefinite


def _laplacian(n: int, rng: np.random.Generator, extra: int, ground: float = 0.5):
    """A random tree plus ``extra`` edges, weights over four decades, grounded at state 0;
    returned as a sorted CSR with every diagonal entry stored."""
    tree = np.column_stack([np.arange(1, n), rng.integers(0, np.arange(1, n))])
    more = rng.integers(0, n, (extra, 2))
    e = np.unique(np.sort(np.vstack([tree, more[more[:, 0] != more[:, 1]]]), axis=1), axis=0)
    i, j = e[:, 0], e[:, 1]
    w = 10.0 ** rng.uniform(-2, 2, i.size)
    a = sp.csr_array((np.concatenate([-w, -w, w, w, [ground]]),
                      (np.concatenate([i, j, i, j, [0]]), np.concatenate([j, i, i, j, [0]]))),
                     shape=(n, n))
    a.sum_duplicates()
    a.sort_indices()
    return a


@pytest.mark.parametrize(("max_degree", "core_direct"), [(4, None), (4, 0), (100, None),
                                                          (0, 0)])
def test_solve_matches_a_direct_solve(monkeypatch, max_degree, core_direct):
    """Core by LU, core by conjugate gradients, everything eliminated, nothing eliminated."""
    if core_direct is not None:
        monkeypatch.setattr(el, "CORE_DIRECT_MAX", core_direct)
    rng = np.random.default_rng(7)
    a = _laplacian(300, rng, 250)
    b = rng.normal(size=300)
    e = Elimination.build(a.indptr, a.indices, max_degree=max_degree)
    assert (len(e.levels) > 0) == (max_degree > 0)
    if max_degree == 100:
        assert e.n_core == 0
    x, ok = e.factor(a.data).solve(b, rtol=1e-12)
    assert ok
    want = spla.spsolve(sp.csc_matrix(a), b)
    np.testing.assert_allclose(x, want, rtol=1e-8, atol=1e-10 * np.abs(want).max())
    assert np.linalg.norm(a @ x - b) <= 1e-10 * np.linalg.norm(b)


def test_the_residual_meets_the_forcing_tolerance(monkeypatch):
    """A loose ``rtol`` is met on the full system (the back-substitution is exact)."""
    monkeypatch.setattr(el, "CORE_DIRECT_MAX", 0)
    rng = np.random.default_rng(8)
    a = _laplacian(400, rng, 500)
    b = rng.normal(size=400)
    f = Elimination.build(a.indptr, a.indices, max_degree=3).factor(a.data)
    for rtol in (1e-2, 1e-5):
        x, ok = f.solve(b, rtol)
        assert ok and np.linalg.norm(a @ x - b) <= rtol * np.linalg.norm(b)


def test_singular_is_reported():
    rng = np.random.default_rng(9)
    a = _laplacian(50, rng, 20, ground=0.0)
    a.data[:] = np.where(a.data < 0, -1.0, a.data)  # unit weights: the pivots are exact
    a = sp.csr_array(a - sp.diags_array(a.diagonal()))
    a = sp.csr_array(a - sp.diags_array(np.asarray(a.sum(axis=1)).ravel()))
    a.sort_indices()
    e = Elimination.build(a.indptr, a.indices, max_degree=100)
    with pytest.raises(NotPositiveDefinite):
        e.factor(a.data)


def test_pattern_needs_the_diagonal():
    a = sp.csr_array(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="diagonal"):
        Elimination.build(a.indptr, a.indices, max_degree=1)


def test_minimise_edges_eliminating_agrees(monkeypatch):
    """The likelihood-style objective minimised with and without elimination (forced on a
    small graph by lowering the direct-solve threshold): the same minimiser."""
    rng = np.random.default_rng(10)
    n = 400
    tree = np.column_stack([np.arange(1, n), rng.integers(0, np.arange(1, n))])
    f, g = tree[:, 0], tree[:, 1]
    extra = rng.integers(0, n, (300, 2))
    extra = extra[extra[:, 0] != extra[:, 1]]
    f, g = np.concatenate([f, extra[:, 0]]), np.concatenate([g, extra[:, 1]])
    m = rng.integers(1, 30, f.size).astype(float)
    y = rng.binomial(m.astype(int), 0.4) + 0.5
    m = m + 1.0
    off = rng.normal(size=f.size)

    def terms(x):
        z = x + off
        p = 1 / (1 + np.exp(-z))
        return m * np.logaddexp(0, z) - y * z, m * p - y, m * p * (1 - p), m * p + y

    free = np.ones(n, bool)
    free[0] = False
    v_direct, r1 = nw.minimise_edges(n, f, g, terms, free, tol=1e-11, max_iter=100)
    monkeypatch.setattr(nw, "DIRECT_SOLVE_MAX", 10)
    monkeypatch.setattr(el, "CORE_DIRECT_MAX", 10)
    calls = []
    orig = el.Factor.solve
    monkeypatch.setattr(el.Factor, "solve", lambda self, *a, **k: calls.append(1)
                        or orig(self, *a, **k))
    system = nw.EdgeSystem(n, f, g, free)
    v_elim, r2 = nw.minimise_edges(n, f, g, terms, free, tol=1e-11, max_iter=100,
                                   eliminate=True, system=system)
    assert calls and r1.converged and r2.converged
    np.testing.assert_allclose(v_elim, v_direct, atol=1e-8)
    with pytest.raises(ValueError, match="another graph"):
        nw.minimise_edges(n, f[:-1], g[:-1], terms, free, tol=1e-11, max_iter=100,
                          eliminate=True, system=system)
