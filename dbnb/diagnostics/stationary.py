r"""Is the potential the stationary distribution? :math:`\pi \propto e^{-\beta V}`.

Detailed balance :math:`\pi(f)T(g\leftarrow f) = \pi(g)T(f\leftarrow g)` together with Eq. 5,
:math:`\log T(g\leftarrow f)/T(f\leftarrow g) = \beta V(f) - \beta V(g)`, gives
:math:`\pi \propto e^{-\beta V}`: the potential is the free energy of the stationary
distribution. It holds on one strongly connected component (irreducible: ``pi`` unique), and
exactly only for a kernel in detailed balance; escapes and self-replies keep the agent where it
is and change neither. :func:`stationary_check` compares the kernel's own ``pi``
(:func:`dbnb.kernels.stationary_distribution`) with the fitted least-action potential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..kernels import stationary_distribution
from ..potential import PotentialFit
from ._common import summary_series

__all__ = ["StationaryCheck", "stationary_check"]


@dataclass(frozen=True, eq=False)
class StationaryCheck:
    """``log pi`` of the kernel beside ``-beta V`` of the fit, over the main component.

    Attributes
    ----------
    states : tuple of str
    log_pi : numpy.ndarray
        ``log pi`` of the kernel's stationary distribution.
    minus_beta_v : numpy.ndarray
        ``-beta V`` of the least-action fit (same states).
    source : str
        What the kernel is, for captions.
    """

    states: tuple[str, ...]
    log_pi: np.ndarray
    minus_beta_v: np.ndarray
    source: str

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def deviation(self) -> np.ndarray:
        """``log pi + beta V`` minus its mean: 0 everywhere under detailed balance."""
        d = self.log_pi - self.minus_beta_v
        return d - d.mean() if d.size else d

    @property
    def rms_deviation(self) -> float:
        d = self.deviation
        return float(np.sqrt(np.mean(d**2))) if d.size else float("nan")

    @property
    def max_deviation(self) -> float:
        d = self.deviation
        return float(np.max(np.abs(d))) if d.size else float("nan")

    @property
    def slope(self) -> float:
        """Least-squares slope of ``log pi`` on ``-beta V`` (1 under detailed balance)."""
        if self.n_states < 2:
            return float("nan")
        return float(np.polyfit(self.minus_beta_v, self.log_pi, 1)[0])

    def summary(self) -> pd.Series:
        return summary_series({"n_states": self.n_states, "slope": self.slope,
                               "rms_deviation": self.rms_deviation,
                               "max_deviation": self.max_deviation}, "stationary")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"log_pi": self.log_pi, "minus_beta_V": self.minus_beta_v,
                             "deviation": self.deviation}, index=list(self.states))


def stationary_check(fit: PotentialFit) -> StationaryCheck:
    """The kernel's stationary ``pi`` against the fit's ``e^{-beta V}`` on its main component.

    Parameters
    ----------
    fit : PotentialFit
        A least-action fit (:func:`dbnb.fit_potential`); its kernel drives the chain.

    Returns
    -------
    StationaryCheck

    Examples
    --------
    >>> import dbnb
    >>> from dbnb import synthetic
    >>> rev = stationary_check(dbnb.fit_potential(synthetic.reversible_chain(20, seed=1).kernel()))
    >>> bool(rev.max_deviation < 1e-6), round(rev.slope, 6)
    (True, 1.0)
    """
    if not isinstance(fit, PotentialFit):
        raise TypeError(f"fit must be a PotentialFit, got {type(fit).__name__}")
    main = [s for s, st in zip(fit.potential.index, fit.status, strict=True) if st == "main"]
    pi = stationary_distribution(fit.transitions, main)
    v = fit.potential[pi.index].to_numpy(dtype=float)
    return StationaryCheck(states=tuple(pi.index), log_pi=np.log(pi.to_numpy()),
                           minus_beta_v=-v, source=fit.transitions.counts.source)
