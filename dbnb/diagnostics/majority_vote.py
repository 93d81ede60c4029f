r"""Majority vote: the kernel after an ``n``-of-``M`` vote, Eqs. 29-30 (Fig. 12)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ._common import freeze

__all__ = ["MajorityVoteCurves", "majority_vote", "majority_vote_ratio", "majority_vote_curves"]


def majority_vote(t, m: int, n: int):
    r"""Kernel after an ``n``-of-``m`` majority vote (Eqs. 29-30).

    .. math::

        T_{M,n} = \sum_{k=n}^{M} \binom{M}{k} T^k (1-T)^{M-k} = I_T(n, M - n + 1),

    the regularised incomplete beta function (:func:`scipy.special.betainc`). Vectorised over
    ``t``; ``1 <= n <= m`` (a majority needs ``n > m / 2``, but the formula holds for any
    ``n``).
    """
    m_, n_ = int(m), int(n)
    if m_ != m or n_ != n or m_ < 1 or not 1 <= n_ <= m_:
        raise ValueError(f"need integers 1 <= n <= M, got M={m!r}, n={n!r}")
    tt = np.asarray(t, dtype=float)
    if np.any((tt < 0) | (tt > 1)):
        raise ValueError("T must lie in [0, 1]")
    out = special.betainc(n_, m_ - n_ + 1, tt)
    return float(out) if np.ndim(out) == 0 else out


def majority_vote_ratio(t_forward, t_backward, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""``T_{M,n}(a) / T_{M,n}(b)`` and its small-``T`` power law ``(a / b)^n`` (Fig. 12).

    Returns ``(ratio, power_law)`` broadcast over ``t_forward`` (``a``) and ``t_backward``
    (``b``). For small ``T``, ``I_T(n, M-n+1) ~ C(M, n) T^n``, so the potential read off a
    majority-voted agent is ``n`` times the original one.
    """
    a = np.asarray(t_forward, dtype=float)
    b = np.asarray(t_backward, dtype=float)
    ratio = np.asarray(majority_vote(a, m, n)) / np.asarray(majority_vote(b, m, n))
    return ratio, (a / b) ** int(n)


@dataclass(frozen=True, eq=False)
class MajorityVoteCurves:
    r"""The curves of Fig. 12: voted ratio against base ratio, for several ``n`` and ``b``.

    Attributes
    ----------
    m : int
        Candidates per vote ``M``.
    ns : tuple of int
        Votes needed ``n``.
    t_backward : tuple of float
        Base ``b = T(f<-g)`` of each curve.
    base_ratio : numpy.ndarray
        The grid ``r = a / b`` from 1 to ``max_ratio`` (geometric).
    voted : numpy.ndarray, shape ``(len(ns), len(t_backward), len(base_ratio))``
        ``T_{M,n}(r b) / T_{M,n}(b)``; NaN where ``r b > 1`` (no such kernel).
    power_law : numpy.ndarray, shape ``(len(ns), len(base_ratio))``
        The small-``T`` limit ``r^n``.
    """

    m: int
    ns: tuple[int, ...]
    t_backward: tuple[float, ...]
    base_ratio: np.ndarray
    voted: np.ndarray
    power_law: np.ndarray

    @property
    def max_ratio(self) -> float:
        return float(self.base_ratio[-1])

    def to_frame(self) -> pd.DataFrame:
        """Long table ``n, T_backward, base_ratio, voted_ratio, power_law`` (defined points)."""
        rows = []
        for i, n in enumerate(self.ns):
            for j, b in enumerate(self.t_backward):
                ok = np.isfinite(self.voted[i, j])
                rows.append(pd.DataFrame({
                    "n": n, "T_backward": b, "base_ratio": self.base_ratio[ok],
                    "voted_ratio": self.voted[i, j][ok], "power_law": self.power_law[i][ok],
                }))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=["n", "T_backward", "base_ratio", "voted_ratio", "power_law"])


def majority_vote_curves(
    *,
    m: int = 10,
    ns: Sequence[int] = (5, 7, 9),
    t_backward: Sequence[float] = (0.005, 0.02, 0.08),
    max_ratio: float = 10.0,
    n_points: int = 100,
) -> MajorityVoteCurves:
    r"""Fig. 12: how an ``n``-of-``m`` vote raises the ratio of opposite transitions.

    For ``T(f<-g) = b`` in ``t_backward`` and ``T(g<-f) = r b`` with ``1 <= r <= max_ratio``
    (``n_points`` geometric steps, capped at ``T <= 1``): ``T_{M,n}(rb) / T_{M,n}(b)``
    (:func:`majority_vote_ratio`) and its small-``T`` power law ``r^n``: the potential
    scales by ``n``.
    """
    if not max_ratio >= 1:
        raise ValueError(f"max_ratio must be >= 1, got {max_ratio!r}")
    r = np.geomspace(1.0, max_ratio, int(n_points))
    ns_ = tuple(int(n) for n in ns)
    bs = tuple(float(b) for b in t_backward)
    voted = np.full((len(ns_), len(bs), r.size), np.nan)
    for i, n in enumerate(ns_):
        for j, b in enumerate(bs):
            ok = r * b <= 1.0
            voted[i, j, ok], _ = majority_vote_ratio(r[ok] * b, b, m, n)
    power = np.array([r**n for n in ns_]).reshape(len(ns_), r.size)
    freeze(r, voted, power)
    return MajorityVoteCurves(int(m), ns_, bs, r, voted, power)
