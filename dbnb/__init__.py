"""dbnb: detailed balance in LLM-driven agents.

Reproduces and extends Song, Cao, Luo & Zhu, "Detailed balance in large language model-driven
agents", arXiv:2512.10047.

Data and estimators
-------------------
TransitionCounts        immutable counts N(g <- f), N0(f), escapes, per-state metadata
estimate_kernel         T(g <- f) with the Letter's N0 conventions (Eqs. 6, 18, 24)
fit_potential           least-action potential beta V (Eq. 8), SCC-aware
action                  the normalised action S[V] of a given potential
datasets                Table II, readers of the Letter's JSON formats
synthetic               Markov chains with a known potential (ground truth)
"""

from . import datasets
from .counts import TransitionCounts
from .kernels import TransitionKernel, estimate_kernel
from .potential import ConvergenceError, PotentialFit, action, fit_potential

__all__ = [
    "TransitionCounts",
    "TransitionKernel",
    "estimate_kernel",
    "fit_potential",
    "action",
    "PotentialFit",
    "ConvergenceError",
    "datasets",
]
__version__ = "0.1.0"
