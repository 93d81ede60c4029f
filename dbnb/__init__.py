"""dbnb: detailed balance in LLM-driven agents.

Reproduces and extends Song, Cao, Luo & Zhu, "Detailed balance in large language model-driven
agents", arXiv:2512.10047.

Data and estimators
-------------------
TransitionCounts        immutable counts N(g <- f), N0(f), escapes, per-state metadata
estimate_kernel         T(g <- f) with the Letter's N0 conventions (Eqs. 6, 18, 24)
fit_potential           least-action potential beta V (Eq. 8), SCC-aware
action                  the normalised action S[V] of a given potential
feature_potential       an explicit potential on state features (Supplement E)
schedules               prompt schedules as generators: round robin, the Letter's rule
datasets                Table II, readers of the Letter's JSON formats
synthetic               Markov chains with a known potential (ground truth)
diagnostics             detailed-balance checks, one module each: pairs (Eq. 5), triplets
                        (Eq. 7), one-way pairs (Eq. 25), action scale (Eq. 28), ...

Loaded on first use
-------------------
plots                   one function per figure and table of the Letter
llm                     the LLM layer: litellm client, response store, local model server,
                        log-probability kernels (``llm.logprob``)
agents                  the word and symbolic agents, and the runner that drains a schedule
reproduce               the ``dbnb reproduce`` pipeline
exact, store            deprecated aliases of ``llm.logprob`` and ``llm.store``
"""

from . import datasets, diagnostics, synthetic
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
    "diagnostics",
    "synthetic",
]

_LAZY = {"plots", "llm", "store", "agents", "exact", "reproduce", "cli", "letter"}


def __getattr__(name: str):
    # Heavy or optional submodules (matplotlib, litellm, llama-cpp) load on first use, so that
    # ``import dbnb`` stays fast and works offline.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dbnb' has no attribute {name!r}")
__version__ = "0.1.0"
