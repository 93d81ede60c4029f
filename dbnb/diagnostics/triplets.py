r"""Closed 3-cycles measured both ways: Kolmogorov's criterion, Eq. 7 (Figs. 3, 8).

Errors. In the cycle affinity ``forward - backward`` every state's ``log N0`` appears once
with each sign and cancels exactly, so its error is ``sqrt(sum 1/N)`` over the six legs
whatever ``N0`` is (with recorded calls the multinomial covariance of the two legs out of one
source removes the ``-1/N0`` terms as well). The Letter's bars add ``1/N0`` per leg; they are
kept as ``sigma_letter`` for its loop-plot statistic only.

Triangles share pairs (a pair lies on many 3-cycles), so their affinities are correlated and
``sum z^2`` over triangles has no chi-squared (or any standard) reference distribution; the
summaries here are descriptive. The test of detailed balance on cycles is the Wald statistic
of :func:`dbnb.hodge` (cycle rank degrees of freedom) or :func:`dbnb.balance_test`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..graph import triangles
from ..kernels import TransitionKernel, log_t_variance
from ..potential import PotentialFit
from ._common import (
    EdgeTable,
    as_kernel,
    check_design,
    freeze,
    pearson_corr,
    sample_rows,
    sigma_fraction,
    summary_series,
)

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
        Errors of each axis: quadrature sums of :func:`dbnb.kernels.log_t_variance` over the
        three transitions of each direction (their ``log N0`` do not cancel on one axis).
    sigma : numpy.ndarray
        Error of the affinity ``forward - backward``: ``sqrt(sum 1/N)`` over the six
        transitions (the ``N0`` terms cancel; see the module docstring), or the Letter's
        ``sigma_letter`` when ``design="letter"``.
    sigma_letter : numpy.ndarray
        The Letter's error of the affinity, ``sqrt(sum (1/N + 1/N0))`` over the six legs.
    min_count : int
    estimator, source : str
    design : str
        Sampling design of the error bars (NaN bars for ``"none"``, a noise-free kernel).
    """

    states: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    sigma_forward: np.ndarray
    sigma_backward: np.ndarray
    sigma: np.ndarray
    sigma_letter: np.ndarray
    min_count: int
    estimator: str = ""
    source: str = ""
    design: str = ""

    @property
    def n_triplets(self) -> int:
        return int(self.forward.size)

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
    def mean_z2(self) -> float:
        """Mean of ``((forward - backward) / sigma)^2`` over the triangles: about 1 under
        detailed balance at large counts, but *not* a chi-squared per degree of freedom:
        triangles overlap, so their terms are correlated and the sum has no reference
        distribution (see the module docstring). NaN without triangles or error bars."""
        if not self.n_triplets:
            return float("nan")
        return float(np.mean((self.residual / self.sigma) ** 2))

    @property
    def letter_chi2_ndf(self) -> float:
        """The statistic the authors' loop plots (Figs. 3, 8) print as "χ²/ndf": the mean of
        ``(forward - backward)^2 / sigma_letter^2`` over the triangles with
        ``sigma_letter^2 < 100`` (their plotting code's cut). Kept, under its own name, to
        compare with the Letter; it has no reference distribution either."""
        keep = self.sigma_letter**2 < 100
        if not keep.any():
            return float("nan")
        return float(np.mean((self.residual[keep] / self.sigma_letter[keep]) ** 2))

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
        return summary_series(
            {
                "n_triplets": self.n_triplets,
                "within_1sigma": self.within_1sigma,
                "within_2sigma": self.within_2sigma,
                "mean_z2": self.mean_z2,
                "letter_chi2_ndf": self.letter_chi2_ndf,
                "rms_affinity": self.rms_affinity,
                "pearson_r": self.pearson_r,
            },
            "triplets",
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
                "sigma": self.sigma,
            }
        )


def _count_matrix(kernel: TransitionKernel) -> sp.csr_array:
    """``N[g, f]`` on the kernel's support (diagonal removed), aligned with ``kernel.matrix``."""
    f, g, _, n = kernel.edges()
    k = kernel.n_states
    return sp.csr_array((n.astype(float), (g, f)), shape=(k, k))


def triplets(data: PotentialFit | TransitionKernel, *, min_count: int = 1,
             design: str | None = None) -> TripletCheck:
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
    design : {"multinomial", "nominal", "letter", "none"}, optional
        Sampling design of the per-axis error bars; default the kernel's
        (:attr:`dbnb.kernels.TransitionKernel.design`). ``"letter"`` draws the Letter's.

    Returns
    -------
    TripletCheck
        Errors: :func:`dbnb.kernels.log_t_variance` per transition added in quadrature over
        the three transitions of each direction (``sigma_forward``, ``sigma_backward``);
        ``sqrt(sum 1/N)`` over all six for the affinity (``sigma``: the ``N0`` terms cancel).
        All NaN for a kernel without sampling noise.
    """
    tk = as_kernel(data)
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    design = check_design(tk, design)
    strong = sp.csr_array(_count_matrix(tk) >= min_count, dtype=float)
    tri = triangles(strong.multiply(strong.T))
    i, j, k = tri[:, 0], tri[:, 1], tri[:, 2]
    table = EdgeTable(tk)
    n0 = np.asarray(tk.n0, dtype=float)

    def leg(src: np.ndarray, dst: np.ndarray):
        """``log T(dst <- src)``, its variance under the design, ``1/N`` and the Letter's."""
        t, cnt = table(src, dst)
        return (np.log(t), log_t_variance(cnt, n0[src], design),
                log_t_variance(cnt, n0[src], "nominal" if design != "none" else "none"),
                log_t_variance(cnt, n0[src], "letter" if design != "none" else "none"))

    legs_f = [leg(i, j), leg(j, k), leg(k, i)]
    legs_b = [leg(j, i), leg(k, j), leg(i, k)]
    if tri.size:
        fw, bw = sum(x[0] for x in legs_f), sum(x[0] for x in legs_b)
        sf, sb = np.sqrt(sum(x[1] for x in legs_f)), np.sqrt(sum(x[1] for x in legs_b))
        s_letter = np.sqrt(sum(x[3] for x in legs_f + legs_b))
        s_aff = s_letter if design == "letter" else np.sqrt(sum(x[2] for x in legs_f + legs_b))
    else:
        fw = bw = sf = sb = s_aff = s_letter = np.zeros(0)
    arrays = [np.ascontiguousarray(a) for a in (i, j, k, fw, bw, sf, sb, s_aff, s_letter)]
    freeze(*arrays)
    return TripletCheck(
        tk.states, *arrays, min_count=int(min_count), estimator=tk.method,
        source=tk.counts.source, design=design,
    )
