"""Selected inversion against the dense inverse, on graphs that exercise every branch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import dbnb.selinv as si
from dbnb.elimination import Elimination
from dbnb.newton import ConvergenceError
from dbnb.selinv import inverse_diagonal, selected_inverse


def _grounded_laplacian(n: int, edges: np.ndarray, rng: np.random.Generator,
                        ground: float = 0.3) -> sp.csr_array:
    """A weighted Laplacian (log-uniform weights over 4 decades) plus ``ground`` at state 0."""
    i, j = edges[:, 0], edges[:, 1]
    w = 10.0 ** rng.uniform(-2, 2, i.size)
    rows = np.concatenate([i, j, i, j, [0]])
    cols = np.concatenate([j, i, i, j, [0]])
    vals = np.concatenate([-w, -w, w, w, [ground]])
    return sp.csr_array((vals, (rows, cols)), shape=(n, n))


def _random_graph(n: int, extra: int, rng: np.random.Generator) -> np.ndarray:
    """A random spanning tree plus ``extra`` random edges (connected, many low degrees)."""
    tree = np.column_stack([np.arange(1, n), rng.integers(0, np.arange(1, n))])
    more = rng.integers(0, n, (extra, 2))
    more = more[more[:, 0] != more[:, 1]]
    e = np.sort(np.vstack([tree, more]), axis=1)
    return np.unique(e, axis=0)


def _check_against_dense(a: sp.csr_array, **kw) -> None:
    want = np.linalg.inv(a.toarray())
    z = selected_inverse(a, **kw)
    coo = sp.csr_array(a).tocoo()
    # every stored entry of A and the diagonal, nothing else
    got = z.toarray()
    pattern = np.zeros(a.shape, bool)
    pattern[coo.row, coo.col] = True
    pattern[np.diag_indices(a.shape[0])] = True
    np.testing.assert_allclose(got[pattern], want[pattern], rtol=1e-9, atol=1e-12)
    assert z.nnz == pattern.sum()
    np.testing.assert_allclose(inverse_diagonal(a, **kw), np.diag(want), rtol=1e-9)


@pytest.fixture(params=["elimination", "dense only", "sparse remainder"])
def mode(request, monkeypatch):
    """Each test three ways: eliminate down to nothing, invert densely, or eliminate part
    and invert the rest by sparse LU."""
    if request.param == "elimination":
        monkeypatch.setattr(si, "SMALL", 0)
        return {}
    if request.param == "dense only":
        return {"max_degree": 0}
    monkeypatch.setattr(si, "SMALL", 0)
    return {"max_degree": 3, "dense_max": 0}


def test_random_graph(mode):
    rng = np.random.default_rng(1)
    n = 60
    _check_against_dense(_grounded_laplacian(n, _random_graph(n, 90, rng), rng), **mode)


def test_path_star_and_clique(mode):
    """A path (levels of degree 2), a star (one hub of degree n - 1, eliminated last) and a
    clique (no state of low degree)."""
    rng = np.random.default_rng(2)
    n = 30
    path = np.column_stack([np.arange(n - 1), np.arange(1, n)])
    star = np.column_stack([np.zeros(n - 1, int), np.arange(1, n)])
    ii, jj = np.triu_indices(12, 1)
    clique = np.column_stack([ii, jj])
    for edges, size in ((path, n), (star, n), (clique, 12)):
        _check_against_dense(_grounded_laplacian(size, edges, rng), **mode)


def test_components_and_isolated_states(mode):
    """Block-diagonal: two grounded components and a lone state with only a diagonal."""
    rng = np.random.default_rng(3)
    a = _grounded_laplacian(20, _random_graph(20, 15, rng), rng)
    b = _grounded_laplacian(15, _random_graph(15, 10, rng), rng)
    lone = sp.csr_array(np.array([[2.5]]))
    _check_against_dense(sp.csr_array(sp.block_diag([a, b, lone])), **mode)


def test_larger_than_small_goes_through_the_levels():
    """Above :data:`SMALL` states the default path eliminates (no monkeypatching)."""
    rng = np.random.default_rng(4)
    n = 600
    a = _grounded_laplacian(n, _random_graph(n, 700, rng), rng)
    s = sp.csr_array(a)
    s.sort_indices()
    assert Elimination.build(s.indptr, s.indices, max_degree=si.MAX_DEGREE,
                             min_core=si.SMALL).levels
    _check_against_dense(a)


def test_explicit_zeros_are_pattern(monkeypatch):
    """An entry stored as 0 is part of the pattern, and its inverse entry is returned."""
    monkeypatch.setattr(si, "SMALL", 0)
    a = sp.csr_array(np.array([[2.0, -1.0, 0.0, 0.0], [-1.0, 3.0, -1.0, 0.0],
                               [0.0, -1.0, 2.0, -1.0], [0.0, 0.0, -1.0, 1.5]]))
    coo = a.tocoo()
    rows = np.concatenate([coo.row, [0, 3]])
    cols = np.concatenate([coo.col, [3, 0]])
    vals = np.concatenate([coo.data, [0.0, 0.0]])
    az = sp.csr_array((vals, (rows, cols)), shape=(4, 4))
    assert az.nnz == a.nnz + 2
    z = selected_inverse(az)
    assert z[0, 3] == pytest.approx(np.linalg.inv(a.toarray())[0, 3], rel=1e-12)
    _check_against_dense(az)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        selected_inverse(sp.csr_array(np.ones((2, 3))))
    with pytest.raises(ValueError, match="symmetric"):
        selected_inverse(sp.csr_array(np.array([[2.0, -1.0], [0.0, 2.0]])))
    with pytest.raises(ValueError, match="sparse"):
        selected_inverse(np.eye(2))
    with pytest.raises(ValueError, match="max_degree"):
        selected_inverse(sp.csr_array(np.eye(2)), max_degree=-1)
    with pytest.raises(ValueError, match="non-finite"):
        selected_inverse(sp.csr_array(np.array([[np.nan, 0.0], [0.0, 1.0]])))


def test_not_positive_definite_raises(mode):
    """An ungrounded Laplacian (unit weights) is singular: the last pivot is 0 to rounding,
    and the elimination, the Cholesky factor or the sparse LU says so."""
    rng = np.random.default_rng(5)
    e = _random_graph(25, 20, rng)
    i, j = e[:, 0], e[:, 1]
    w = np.ones(i.size)
    a = sp.csr_array((np.concatenate([-w, -w, w, w]), (np.concatenate([i, j, i, j]),
                                                       np.concatenate([j, i, i, j]))),
                     shape=(25, 25))
    with pytest.raises(ConvergenceError, match="positive definite"):
        selected_inverse(a, **mode)


def test_empty():
    assert selected_inverse(sp.csr_array((0, 0))).shape == (0, 0)
    assert inverse_diagonal(sp.csr_array((0, 0))).size == 0
