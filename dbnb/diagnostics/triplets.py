r"""Closed 3-cycles measured both ways: Kolmogorov's criterion, Eq. 7 (Figs. 3, 8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..graph import triangles
from ..kernels import TransitionKernel, log_t_variance
from ..potential import PotentialFit
from ._common import EdgeTable, as_kernel, freeze, pearson_corr, sample_rows, sigma_fraction

__all__ = ["TripletCheck", "triplets"]


@dataclass(frozen=True, eq=False)
class TripletCheck:
    r"""Closed 3-cycles measured in both directions: Kolmogorov's criterion (Figs. 3, 8).

    One row per unordered triangle ``{i, j, k}`` (``i < j < k``); *forward* is the cycle
    ``i -> j -> k -> i``, *backward* the reverse.

    Attributes
    ----------
    states : tuple of str
    i, j, k : numpy.ndarray of int
    forward, backward : numpy.ndarray
        ``log T(j<-i) + log T(k<-j) + log T(i<-k)`` and
        ``log T(i<-j) + log T(j<-k) + log T(k<-i)``.
    sigma_forward, sigma_backward : numpy.ndarray
        Quadrature sums of ``1/N + 1/N0(source)`` over the three transitions of each direction.
    min_count : int
    estimator, source : str
    """

    states: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    sigma_forward: np.ndarray
    sigma_backward: np.ndarray
    min_count: int
    estimator: str = ""
    source: str = ""

    @property
    def n_triplets(self) -> int:
        return int(self.forward.size)

    @property
    def sigma(self) -> np.ndarray:
        """Error of ``forward - backward``: quadrature over all six transitions."""
        return np.hypot(self.sigma_forward, self.sigma_backward)

    @property
    def residual(self) -> np.ndarray:
        """``forward - backward``: the cycle affinity (0 under detailed balance)."""
        return self.forward - self.backward

    @property
    def within_1sigma(self) -> float:
        return sigma_fraction(self.residual, self.sigma, 1.0)

    @property
    def within_2sigma(self) -> float:
        return sigma_fraction(self.residual, self.sigma, 2.0)

    @property
    def chi2(self) -> float:
        return float(np.sum((self.residual / self.sigma) ** 2))

    @property
    def chi2_per_triplet(self) -> float:
        """``chi2 / n_triplets`` (no fitted parameters enter the triplet check)."""
        return self.chi2 / self.n_triplets if self.n_triplets else float("nan")

    @property
    def rms_affinity(self) -> float:
        """Root mean square of ``forward - backward`` (natural-log units): the typical cycle
        affinity, 0 under detailed balance; the statistic for an exactly known kernel."""
        if not self.n_triplets:
            return float("nan")
        return float(np.sqrt(np.mean(self.residual**2)))

    @property
    def pearson_r(self) -> float:
        return pearson_corr(self.forward, self.backward)

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "n_triplets": self.n_triplets,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "chi2_per_triplet": self.chi2_per_triplet,
                "pearson_r": self.pearson_r,
            },
            name="triplets",
        )

    def sample(self, fraction: float | int | None = 0.2, *, seed: int = 42) -> np.ndarray:
        return sample_rows(self.n_triplets, fraction, seed)

    def to_frame(self) -> pd.DataFrame:
        s = np.array(self.states, dtype=object)
        return pd.DataFrame(
            {
                "i": s[self.i],
                "j": s[self.j],
                "k": s[self.k],
                "forward": self.forward,
                "backward": self.backward,
                "sigma_forward": self.sigma_forward,
                "sigma_backward": self.sigma_backward,
            }
        )


def _count_matrix(kernel: TransitionKernel) -> sp.csr_array:
    """``N[g, f]`` on the kernel's support (diagonal removed), aligned with ``kernel.matrix``."""
    f, g, _, n = kernel.edges()
    k = kernel.n_states
    return sp.csr_array((n.astype(float), (g, f)), shape=(k, k))


def triplets(data: PotentialFit | TransitionKernel, *, min_count: int = 1) -> TripletCheck:
    r"""Compare the two directions of every measured 3-cycle (Kolmogorov criterion, Figs. 3, 8).

    Under detailed balance every closed path has equal forward and backward products of
    ``T`` (the potential cancels around the loop), so

    .. math::

        \log T(j \leftarrow i) + \log T(k \leftarrow j) + \log T(i \leftarrow k)
        = \log T(i \leftarrow j) + \log T(j \leftarrow k) + \log T(k \leftarrow i).

    Parameters
    ----------
    data : PotentialFit or TransitionKernel
        Only the kernel is used (no potential enters).
    min_count : int
        Each of the six directed transitions must have ``N >= min_count`` (the Letter uses 2
        for IdeaSearchFitter, "each transition seen at least twice").

    Returns
    -------
    TripletCheck
        Errors: ``var(log T) = 1/N + 1/N0(source)`` per transition
        (:func:`dbnb.kernels.log_t_variance`), added in quadrature over the three transitions
        of each direction (``sigma_forward``, ``sigma_backward``) and over all six for the
        difference (``sigma``).
    """
    tk = as_kernel(data)
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    strong = sp.csr_array(_count_matrix(tk) >= min_count, dtype=float)
    tri = triangles(strong.multiply(strong.T))
    i, j, k = tri[:, 0], tri[:, 1], tri[:, 2]
    table = EdgeTable(tk)
    n0 = np.asarray(tk.n0, dtype=float)

    def leg(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log T(dst <- src)`` and its variance."""
        t, cnt = table(src, dst)
        return np.log(t), log_t_variance(cnt, n0[src])

    legs_f = [leg(i, j), leg(j, k), leg(k, i)]
    legs_b = [leg(j, i), leg(k, j), leg(i, k)]
    fw = sum(lt for lt, _ in legs_f) if tri.size else np.zeros(0)
    bw = sum(lt for lt, _ in legs_b) if tri.size else np.zeros(0)
    sf = np.sqrt(sum(v for _, v in legs_f)) if tri.size else np.zeros(0)
    sb = np.sqrt(sum(v for _, v in legs_b)) if tri.size else np.zeros(0)
    arrays = [np.ascontiguousarray(a) for a in (i, j, k, fw, bw, sf, sb)]
    freeze(*arrays)
    return TripletCheck(
        tk.states, *arrays, min_count=int(min_count), estimator=tk.method, source=tk.counts.source
    )
