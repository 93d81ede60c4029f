"""Graph structure of a transition kernel: strong components, reachability, triangles, depth.

Every module that needs the components of the transition graph takes them from here, so there
is one ordering rule (:func:`strong_components`). Graphs are sparse adjacency matrices with
``A[f, g] != 0`` for a transition ``f -> g`` (row = source).

* :func:`strong_components`: SCC labels ranked by one rule (Eq. 8 is minimised per component);
* :func:`component_members`: the states of each component, in rank order;
* :func:`reachable`: states reachable from (or reaching) a seed (upstream / downstream, +-inf);
* :func:`triangles`: every triangle of the undirected graph (closed triplets, Eq. 7);
* :func:`dag_depth`: longest path in component hops to the main component (Figs. 2, 6).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = ["component_members", "dag_depth", "first_of_each", "reachable", "relative_status",
           "shift_to_min", "strong_components", "triangles"]


def strong_components(adjacency, *, first: int | None = None) -> np.ndarray:
    """Strong-component label of every node, ranked: label 0 is the main component.

    Ranking rule (the only one in dbnb): the component holding node ``first`` when given, then
    by size (largest first), then by the number of edges inside (most first), then by the
    smallest node index. A thin layer over
    :func:`scipy.sparse.csgraph.connected_components` with ``connection="strong"``.

    >>> a = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]]))
    >>> strong_components(a).tolist()
    [0, 0, 1]
    """
    a = sp.csr_array(adjacency)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"adjacency must be square, got shape {a.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, raw = csgraph.connected_components(sp.csr_matrix(a), directed=True, connection="strong")
    raw = raw.astype(np.int64)
    k = int(raw.max()) + 1
    coo = a.tocoo()
    off = (coo.row != coo.col) & (coo.data != 0)
    r, c = coo.row[off], coo.col[off]
    inside = raw[r] == raw[c]
    edges = np.bincount(raw[r[inside]], minlength=k)
    size = np.bincount(raw, minlength=k)
    lowest = np.full(k, n)
    np.minimum.at(lowest, raw, np.arange(n))
    order = np.lexsort((lowest, -edges, -size))
    if first is not None:
        if not 0 <= first < n:
            raise ValueError(f"first must be a node index in [0, {n}), got {first!r}")
        order = np.concatenate([[raw[first]], order[order != raw[first]]])
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[raw]


def component_members(labels: np.ndarray) -> list[np.ndarray]:
    """Node indices of each component, component 0 first (labels from
    :func:`strong_components`), each in increasing order."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return []
    by_label = np.argsort(labels, kind="stable")
    return np.split(by_label, np.cumsum(np.bincount(labels))[:-1])


def first_of_each(labels: np.ndarray) -> np.ndarray:
    """The lowest node index of every component, component 0 first (the grounded states)."""
    labels = np.asarray(labels, dtype=np.int64)
    first = np.full(int(labels.max()) + 1 if labels.size else 0, labels.size)
    np.minimum.at(first, labels, np.arange(labels.size))
    return first


def shift_to_min(v: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``v`` shifted so that its minimum is 0 inside every component (the gauge)."""
    labels = np.asarray(labels, dtype=np.int64)
    low = np.full(int(labels.max()) + 1, np.inf)
    np.minimum.at(low, labels, v)
    return v - low[labels]


def relative_status(adjacency, main: np.ndarray) -> np.ndarray:
    """Each node relative to the main component: ``"main"``, ``"upstream"`` (reaches it, never
    reached back: ``+inf``), ``"downstream"`` (reached from it, never returns: ``-inf``) or
    ``"unrelated"``."""
    main = np.asarray(main, dtype=bool)
    status = np.full(main.size, "unrelated", dtype=object)
    seed = np.flatnonzero(main)[:1]
    status[reachable(adjacency, seed, reverse=True) & ~main] = "upstream"
    status[reachable(adjacency, seed) & ~main] = "downstream"
    status[main] = "main"
    return status


def reachable(adjacency, seeds, *, reverse: bool = False) -> np.ndarray:
    """Boolean mask of the nodes reachable from ``seeds`` (or that reach them: ``reverse``).

    Downstream of the main component is ``reachable(A, main)``, upstream
    ``reachable(A, main, reverse=True)``; the seeds themselves are included.
    """
    a = sp.csr_matrix(adjacency)
    if reverse:
        a = sp.csr_matrix(a.T)
    seeds = np.atleast_1d(np.asarray(seeds))
    if seeds.dtype == bool:
        seeds = np.flatnonzero(seeds)
    mask = np.zeros(a.shape[0], dtype=bool)
    if seeds.size == 0:
        return mask
    mask[csgraph.breadth_first_order(a, int(seeds[0]), return_predecessors=False)] = True
    for s in seeds[1:]:
        if not mask[s]:
            mask[csgraph.breadth_first_order(a, int(s), return_predecessors=False)] = True
    return mask


def dag_depth(labels: np.ndarray, f: np.ndarray, g: np.ndarray, *, upstream: bool
              ) -> np.ndarray:
    """Longest path, in component hops, from each node's component to component 0.

    Along the condensation DAG of the edges ``f -> g`` between components: ``upstream=True``
    follows edges forwards (how many steps down to the main component), ``False`` backwards.
    ``-inf`` where component 0 is not reached. Bellman-Ford rounds, vectorised over edges:
    at most one round per component.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.zeros(0)
    cross = labels[f] != labels[g]
    a, b = labels[f][cross], labels[g][cross]
    if not upstream:
        a, b = b, a
    k = int(labels.max()) + 1
    depth = np.full(k, -np.inf)
    depth[0] = 0.0
    for _ in range(k):
        new = depth.copy()
        np.maximum.at(new, a, depth[b] + 1)
        if np.array_equal(new, depth):
            break
        depth = new
    return depth[labels]


def triangles(adjacency: sp.spmatrix | sp.sparray | np.ndarray) -> np.ndarray:
    """All triangles of an undirected graph, each once, as rows ``(i, j, k)`` with ``i < j < k``.

    ``adjacency`` is read as undirected (``A + A.T``); the diagonal is ignored. Each edge is
    oriented from the endpoint of lower (degree, index) rank to the higher one, so every node
    has at most ``O(sqrt(m))`` higher-ranked neighbours and the wedge count is ``O(m^1.5)``;
    the closing edges are looked up by binary search in sorted edge keys. No Python loop.
    """
    a = sp.coo_array(adjacency)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"adjacency must be square, got shape {a.shape}")
    r, c = a.row.astype(np.int64), a.col.astype(np.int64)
    off = (r != c) & (a.data != 0)
    r, c = r[off], c[off]
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    key = np.unique(lo * n + hi)
    lo, hi = key // n, key % n
    if key.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    deg = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), deg))] = np.arange(n)
    swap = rank[lo] > rank[hi]
    src = np.where(swap, hi, lo)
    dst = np.where(swap, lo, hi)
    order = np.argsort(src * n + dst)
    src, dst = src[order], dst[order]
    okey = src * n + dst  # sorted keys of oriented edges
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
    # Wedges u -> v -> w along oriented edges: for each edge (u, v), every out-neighbour w of v.
    width = indptr[dst + 1] - indptr[dst]
    total = int(width.sum())
    if total == 0:
        return np.zeros((0, 3), dtype=np.int64)
    u = np.repeat(src, width)
    v = np.repeat(dst, width)
    start = np.repeat(indptr[dst], width)
    offset = np.arange(total) - np.repeat(np.cumsum(width) - width, width)
    w = dst[start + offset]
    q = u * n + w
    pos = np.searchsorted(okey, q)
    pos = np.minimum(pos, okey.size - 1)
    closed = okey[pos] == q
    tri = np.sort(np.column_stack([u[closed], v[closed], w[closed]]), axis=1)
    tri = tri[np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))]
    return tri
