r"""The potential of an exact kernel known only within bounds: interval constraints.

A log-probability kernel (:class:`dbnb.llm.logprob.LogprobKernel`) knows each entry only
within ``lower <= T(g <- f) <= upper`` (rare tokenisations skipped). A pair's log-ratio, the
quantity detailed balance makes a potential difference (Eq. 5),

.. math::

    x_{fg} = \log \frac{T(g \leftarrow f)}{T(f \leftarrow g)} \in [a_{fg}, b_{fg}], \quad
    a_{fg} = \log \frac{L(g \leftarrow f)}{U(f \leftarrow g)}, \;
    b_{fg} = \log \frac{U(g \leftarrow f)}{L(f \leftarrow g)},

is then known only within an interval: no placeholder counts, no entry zeroed because it is
small. :func:`bounded_potential` uses the intervals two ways.

**Which potentials are consistent with every bound.** ``beta V(f) - beta V(g) in [a, b]`` for
every pair is a system of difference constraints: ``beta V`` satisfies all of them iff the
constraint graph (an edge ``g -> f`` of length ``b``, ``f -> g`` of length ``-a``) has no
negative cycle, and then the largest (smallest) ``beta V(f) - beta V(ref)`` over all such
potentials is the shortest-path distance from ``ref`` to ``f`` (minus that from ``f`` to
``ref``): exact ranges, Johnson's algorithm (:func:`scipy.sparse.csgraph.shortest_path`). No
consistent potential (``consistent=False``) is a certified violation of detailed balance,
whatever the skipped mass was; so is a *one-way* pair (one direction certainly 0, the other
certainly not).

**A point estimate.** Least squares with zero residual inside each interval,

.. math::

    \min_V \sum_{\text{pairs}} w_{fg} \left[ d(x_{fg}, [a_{fg}, b_{fg}])^2
        + \tau \left(x_{fg} - \tfrac{a_{fg} + b_{fg}}{2}\right)^2 \right],
    \qquad x_{fg} = \beta V(f) - \beta V(g),

``d`` the distance to the interval and ``tau`` (``tie``, default ``1e-4``) a tie-break
toward the midpoints where many potentials fit exactly (it can pull a difference outside its
interval by about ``tau`` times the half-width, and makes the minimiser unique). With
``lower = upper`` it is the least-squares potential of the log-ratios; bounds that widen make
only the residuals outside them count. Only pairs with both directions bounded away from 0
enter the point estimate; one-sided intervals (a lower bound 0) still constrain the ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

from . import graph
from .newton import ConvergenceError, minimise_edges

__all__ = ["BoundedPotential", "bounded_potential", "popularity_bounds"]


@dataclass(frozen=True, eq=False)
class BoundedPotential:
    """Result of :func:`bounded_potential`.

    Attributes
    ----------
    potential : pandas.Series
        The point estimate ``beta V`` (gauge ``beta V(reference) = 0``, else ``min = 0``, over
        the main component of two-way pairs; NaN elsewhere).
    low, high : pandas.Series
        The smallest and largest ``beta V(f) - beta V(reference)`` over every potential
        consistent with all bounds, in the gauge of ``potential`` (``potential`` lies inside
        when ``consistent``); NaN when no potential is consistent or ``f`` is outside the
        main component (``+-inf`` where a side is unbounded).
    pairs : pandas.DataFrame
        One row per pair used: ``f``, ``g``, the interval ``a``, ``b`` of ``log T(g<-f) /
        T(f<-g)``, ``fitted`` (``beta V(f) - beta V(g)``, NaN off the main component) and
        ``outside`` (its distance to the interval; 0 inside).
    consistent : bool
        Some potential satisfies every pair's interval.
    one_way : pandas.DataFrame
        Pairs with one direction certainly 0 and the other certainly not (``f -> g`` seen,
        ``g -> f`` bounded by 0): no potential fits them.
    reference : str
    """

    potential: pd.Series
    low: pd.Series
    high: pd.Series
    pairs: pd.DataFrame
    consistent: bool
    one_way: pd.DataFrame
    reference: str

    def __repr__(self) -> str:
        main = int(self.potential.notna().sum())
        return (f"BoundedPotential({len(self.pairs)} pairs, {main} states in the main "
                f"component, consistent={self.consistent}, {len(self.one_way)} one-way)")


def _check_bounds(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(lower, dtype=float)
    up = np.asarray(upper, dtype=float)
    if lo.ndim != 2 or lo.shape[0] != lo.shape[1]:
        raise ValueError(f"lower must be a square matrix, got shape {lo.shape}")
    if up.shape != lo.shape:
        raise ValueError(f"upper has shape {up.shape}, lower {lo.shape}: they must agree")
    for name, a in (("lower", lo), ("upper", up)):
        if np.isnan(a).any() or (a < 0).any() or np.isinf(a).any():
            raise ValueError(f"{name} must be finite and non-negative")
    if np.any(up < lo * (1 - 1e-12)):
        i, j = np.argwhere(up < lo * (1 - 1e-12))[0]
        raise ValueError(f"upper < lower at entry [{i}, {j}]: {up[i, j]!r} < {lo[i, j]!r}")
    return lo, up


def _ranges(n: int, i, j, a, b, ref: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(low, high)`` of ``v - v[ref]`` under ``a <= v_i - v_j <= b`` (finite sides only), or
    None if the constraints are inconsistent (a negative cycle)."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    # v_i - v_j <= b: edge j -> i of length b;  v_j - v_i <= -a: edge i -> j of length -a
    rows = np.concatenate([j[fb], i[fa]])
    cols = np.concatenate([i[fb], j[fa]])
    w = np.concatenate([b[fb], -a[fa]])
    # a pair's two edges never coincide with another pair's, so no duplicates are summed;
    # explicit zeros are edges of length 0 in csgraph
    g = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
    try:
        high = csgraph.shortest_path(g, method="J", indices=[ref])[0]
        back = csgraph.shortest_path(g.T.tocsr(), method="J", indices=[ref])[0]
    except csgraph.NegativeCycleError:
        return None
    return -back, high


def bounded_potential(
    lower,
    upper,
    *,
    states: Sequence[str] | None = None,
    reference: str | None = None,
    weights=None,
    tie: float = 1e-4,
    slack: float = 1e-10,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> BoundedPotential:
    r"""Fit a potential to a kernel known within bounds (see the module docstring).

    Parameters
    ----------
    lower, upper : array, (n, n)
        Bounds of ``T[g, f] = T(g <- f)`` (rows the reply, columns the prompt, the dbnb
        convention); the diagonal (self-replies) is ignored. ``lower = upper`` for an exact
        kernel.
    states : sequence of str, optional
        Labels (default ``"0"``, ``"1"``, ...).
    reference : str, optional
        Held at ``beta V = 0``; its component of two-way pairs is the main one, and the ranges
        are relative to it. Default: the largest component, gauge ``min beta V = 0``, ranges
        relative to the state of smallest ``beta V``.
    weights : array (n, n), optional
        Weight ``w_{fg}`` of each pair in the point estimate, read at ``[g, f]`` for ``f``
        before ``g`` (default 1).
    tie : float
        ``tau``, the pull toward the interval midpoints (``>= 0``; ``0`` leaves ties to Newton).
    slack : float
        Every interval is widened by this much on each side (log units) before the ranges are
        computed, so that rounding in an exact kernel (``lower = upper``: intervals of width
        0 around a potential difference) is not read as a negative cycle. A violation is
        then certified only where it exceeds ``2 slack`` per pair of the cycle.
    tol, max_iter
        Newton's tolerance and iteration cap (:func:`dbnb.newton.minimise_edges`).

    Returns
    -------
    BoundedPotential

    Raises
    ------
    ValueError
        Bounds not square, negative, non-finite or crossing; ``states`` of the wrong length;
        no pair bounded away from 0 both ways; a negative ``tie``.
    KeyError
        ``reference`` not among ``states``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0.0, 0.2], [0.1, 0.0]])  # T(B<-A) = 0.1, T(A<-B) = 0.2
    >>> fit = bounded_potential(t, t * np.array([[1, 1.5], [1, 1]]), states=["A", "B"])
    >>> fit.consistent, round(float(fit.high["B"] - fit.low["B"]), 4)  # log 1.5 of slack
    (True, 0.4055)
    """
    lo, up = _check_bounds(lower, upper)
    n = lo.shape[0]
    labels = [str(k) for k in range(n)] if states is None else [str(s) for s in states]
    if len(labels) != n:
        raise ValueError(f"states has {len(labels)} labels for {n} rows")
    if not tie >= 0:
        raise ValueError(f"tie must be >= 0, got {tie!r}")
    if not slack >= 0:
        raise ValueError(f"slack must be >= 0, got {slack!r}")
    index = pd.Index(labels, name="state")
    if reference is not None and reference not in index:
        raise KeyError(f"reference state {reference!r} is not among the states")
    i, j = np.triu_indices(n, 1)
    lf, uf = lo[j, i], up[j, i]  # T(j <- i): forward, x = v_i - v_j
    lb, ub = lo[i, j], up[i, j]  # T(i <- j): backward
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where((lf > 0) & (ub > 0), np.log(lf) - np.log(ub), -np.inf)
        b = np.where((uf > 0) & (lb > 0), np.log(uf) - np.log(lb), np.inf)
    both_possible = (uf > 0) & (ub > 0)
    one_way = ((lf > 0) & (ub == 0)) | ((lb > 0) & (uf == 0))
    informative = both_possible & (np.isfinite(a) | np.isfinite(b))
    two_way = both_possible & np.isfinite(a) & np.isfinite(b)
    if not two_way.any():
        raise ValueError("no pair is bounded away from 0 in both directions: the potential "
                         "is undefined")
    w = np.ones(i.size) if weights is None else np.asarray(weights, dtype=float)[j, i]
    if weights is not None and (not np.all(np.isfinite(w[two_way])) or (w[two_way] <= 0).any()):
        raise ValueError("weights must be finite and positive on every two-way pair")

    # the main component of two-way pairs, grounded at its first state
    pi, pj = i[two_way], j[two_way]
    adj = sp.csr_array((np.ones(2 * pi.size, bool), (np.concatenate([pi, pj]),
                                                     np.concatenate([pj, pi]))), shape=(n, n))
    ref_i = None if reference is None else int(index.get_loc(reference))
    comp = graph.strong_components(adj, first=ref_i)
    main = comp == 0
    use = main[pi] & main[pj]
    fi, fj = pi[use], pj[use]
    pa, pb, pw = a[two_way][use], b[two_way][use], w[two_way][use]
    mid = 0.5 * (pa + pb)
    free = main.copy()
    ground = int(np.flatnonzero(main)[0]) if ref_i is None else ref_i
    free[ground] = False

    def terms(x):
        r = np.minimum(x - pa, 0.0) + np.maximum(x - pb, 0.0)
        out = (r != 0).astype(float)
        phi = pw * (r * r + tie * (x - mid) ** 2)
        d1 = 2 * pw * (r + tie * (x - mid))
        d2 = 2 * pw * (out + tie)
        mag = 2 * pw * (np.abs(r) + tie * (np.abs(x - mid) + 1.0))
        return phi, d1, d2, mag

    v, res = minimise_edges(n, fi, fj, terms, free, tol=tol, max_iter=max_iter)
    if not res.converged:
        raise ConvergenceError(f"bounded_potential: Newton stopped after {res.iterations} "
                               f"iterations at relative gradient {res.gradient_norm:.3g}")
    if ref_i is None:
        ground = int(np.flatnonzero(main)[np.argmin(v[main])])
    v = np.where(main, v - v[ground], np.nan)

    ii, jj, aa, bb = i[informative], j[informative], a[informative], b[informative]
    rng = _ranges(n, ii, jj, aa - slack, bb + slack, ground)
    if rng is None:
        low = high = np.full(n, np.nan)
    else:
        low = np.where(main, rng[0], np.nan)
        high = np.where(main, rng[1], np.nan)
    fitted = v[ii] - v[jj]
    with np.errstate(invalid="ignore"):
        outside = np.maximum(aa - fitted, 0.0) + np.maximum(fitted - bb, 0.0)
    pairs = pd.DataFrame({"f": index[ii], "g": index[jj], "a": aa, "b": bb,
                          "fitted": fitted, "outside": outside})
    ow = np.flatnonzero(one_way)
    seen = np.where(lf[ow] > 0, i[ow], j[ow])
    unseen = np.where(lf[ow] > 0, j[ow], i[ow])
    return BoundedPotential(
        potential=pd.Series(v, index=index, name="beta_V"),
        low=pd.Series(low, index=index, name="low"),
        high=pd.Series(high, index=index, name="high"),
        pairs=pairs,
        consistent=rng is not None,
        one_way=pd.DataFrame({"f": index[seen], "g": index[unseen]}),
        reference=index[ground],
    )


def popularity_bounds(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    r"""The popularity-only control of a kernel's bounds: the same support and the same
    relative widths around a kernel in detailed balance.

    The control kernel ignores its prompt, ``T(g <- f) = p(g)`` (so ``beta V = -log p``
    fits every pair exactly), with ``p(g)`` the geometric mean of ``lower[g, f]`` over the
    prompts ``f != g`` where it is positive. Each entry keeps its bounds' ratio:
    ``[p(g), p(g) upper / lower]`` where ``lower > 0``; where ``lower = 0 < upper`` (a
    one-sided entry, of infinite log-width) ``[0, p(g)]``; ``[0, 0]`` where ``upper = 0``.
    :func:`bounded_potential` must find it consistent unless a pair is one-way (one direction
    certainly 0), so a violation of the real kernel is not an artefact of how wide its
    bounds are.

    Parameters
    ----------
    lower, upper : array, (n, n)
        Bounds of ``T[g, f]`` as for :func:`bounded_potential`.

    Returns
    -------
    (lower, upper) : tuple of numpy.ndarray
        The control's bounds (diagonal 0).
    """
    lo, up = _check_bounds(lower, upper)
    off = ~np.eye(lo.shape[0], dtype=bool)
    pos = (lo > 0) & off
    with np.errstate(divide="ignore"):
        log_lo = np.where(pos, np.log(np.where(pos, lo, 1.0)), 0.0)
    k = pos.sum(axis=1)
    p = np.exp(np.divide(log_lo.sum(axis=1), k, out=np.zeros(len(k)), where=k > 0))
    ratio = np.divide(up, lo, out=np.ones_like(up), where=pos)
    c_lo = np.where(pos, p[:, None], 0.0)
    # lower = 0 < upper: one-sided, [0, p(g)] (any upper >= p(g) would do; log-width inf)
    c_up = np.where(pos, p[:, None] * ratio, np.where(off & (up > 0), p[:, None], 0.0))
    return c_lo, c_up
