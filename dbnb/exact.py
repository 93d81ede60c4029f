"""Deprecated: the log-probability kernels moved to :mod:`dbnb.llm.logprob`.

Old name                       new name
``ExactKernel``                :class:`dbnb.llm.logprob.LogprobKernel`
``exact_replies``              :func:`dbnb.llm.logprob.logprob_replies` (``prompt_fn`` required)
``load_exact``                 :func:`dbnb.llm.logprob.load_logprob_kernel`
``exact_kernel``               :func:`dbnb.agents.word.word_logprob_kernel`
``load_model``, ``machine_info``, ``same_machine``   :mod:`dbnb.llm.logprob`
``model_path``                 :func:`dbnb.llm.local.model_path`

This module re-exports the old names for one release and warns when imported.
"""

import warnings

from .llm.local import model_path
from .llm.logprob import LogprobKernel as ExactKernel
from .llm.logprob import load_logprob_kernel as load_exact
from .llm.logprob import load_model, machine_info, same_machine
from .llm.logprob import logprob_replies as exact_replies

warnings.warn("dbnb.exact is deprecated; use dbnb.llm.logprob (ExactKernel -> LogprobKernel, "
              "exact_replies -> logprob_replies, load_exact -> load_logprob_kernel) and "
              "dbnb.agents.word.word_logprob_kernel (was exact_kernel)",
              DeprecationWarning, stacklevel=2)

__all__ = ["ExactKernel", "exact_replies", "load_exact", "load_model", "machine_info",
           "model_path", "same_machine"]  # and exact_kernel, on first use (__getattr__)


def __getattr__(name: str):
    # The word-agent wrapper lives with the word agent; imported on first use only.
    if name == "exact_kernel":
        from .agents.word import word_logprob_kernel

        return word_logprob_kernel
    raise AttributeError(f"module 'dbnb.exact' has no attribute {name!r}")
