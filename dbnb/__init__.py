"""dbnb: detailed balance in LLM-driven agents.

Reproduces and extends Song, Cao, Luo & Zhu, "Detailed balance in large language model-driven
agents", arXiv:2512.10047. Data flow one way: store -> counts -> fit / diagnostics -> figure.

The core (numpy/scipy; never imports the LLM layer, agents, plots or the CLI)
-----------------------------------------------------------------------------
counts            TransitionCounts: immutable N(g <- f), N0(f), escapes, per-state metadata
kernels           T(g <- f) with the Letter's N0 conventions (Eqs. 6, 18, 24); Var log T (Eq. 5)
action            the action S[V] (Eq. 8) and its violation functions K (Eq. 17)
newton            the one damped Newton solver every fit uses
elimination       exact elimination of low-degree states by levels (a sparse block factor)
selinv            selected inversion: A^-1 on the pattern of A (standard errors, leverages)
graph             strong components (one ranking rule), reachability, triangles, DAG depth
potential         fit_potential: the least-action potential (Eqs. 1-3, 8), SCC-aware
likelihood        fit_likelihood: Eq. 5 as a binomial model (Firth's penalty, standard errors)
hierarchy         popularity < detailed balance < free: balance_test, held_out
hodge             gradient / curl / harmonic split of the log-ratio flow; variance shares
bootstrap         bootstrap intervals for any potential fit
bounded           the potential of an exact kernel known within [lower, upper]: exact ranges,
                  a certified verdict on detailed balance
verdict           check: every test of detailed balance on one data set (``dbnb check``)
calibration       p-value uniformity, power against a drive, interval coverage (synthetic)
feature_potential an explicit potential on state features (Supplement E)
schedules         prompt schedules as generators: round robin, the Letter's rule
synthetic         Markov chains with a known potential (ground truth), samplers
datasets          Table II, readers of the Letter's JSON formats; symdata: regression data
letter            the Letter's published numbers, for comparison

Around it
---------
diagnostics       the Letter's checks, one module each: pairs (Eq. 5), triplets (Eq. 7),
                  one-way pairs (Eq. 25), action scale (Eq. 28, Table IV), majority vote
                  (Eqs. 29-30), potential vs score (Fig. 5), sampled vs exact
plots             one function per figure and table; draws results, computes nothing
llm               litellm client, response store, local model server, log-probability
                  kernels (``llm.logprob``)
agents            the word and symbolic agents and the runner that drains a schedule
sources           the data sources the notebooks and ``dbnb reproduce`` read
reproduce, cli    the ``dbnb reproduce`` pipeline and the ``dbnb`` command
balance, exact,   deprecated aliases of diagnostics, llm.logprob and llm.store (one release)
store
"""

from . import calibration, datasets, diagnostics, synthetic
from .bootstrap import bootstrap
from .bounded import bounded_potential
from .counts import TransitionCounts
from .hierarchy import balance_test, held_out
from .hodge import hodge, variance_shares
from .kernels import TransitionKernel, estimate_kernel
from .likelihood import fit_likelihood
from .potential import ConvergenceError, PotentialFit, action, fit_potential
from .verdict import Verdict, check

__all__ = [
    "TransitionCounts",
    "TransitionKernel",
    "estimate_kernel",
    "fit_potential",
    "fit_likelihood",
    "balance_test",
    "held_out",
    "hodge",
    "variance_shares",
    "bootstrap",
    "bounded_potential",
    "check",
    "Verdict",
    "action",
    "PotentialFit",
    "ConvergenceError",
    "calibration",
    "datasets",
    "diagnostics",
    "synthetic",
]

_LAZY = {"plots", "llm", "store", "agents", "exact", "balance", "reproduce", "cli", "letter",
         "sources"}


def __getattr__(name: str):
    # Heavy or optional submodules (matplotlib, litellm, llama-cpp) load on first use, so that
    # ``import dbnb`` stays fast and works offline.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dbnb' has no attribute {name!r}")


__version__ = "0.1.0"
