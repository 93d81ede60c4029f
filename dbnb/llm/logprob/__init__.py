"""Log-probability kernels: ``P(g | f)`` of a local model's grammar sampler, computed, not sampled.

For a finite candidate set (the literal strings of a grammar) and a prompt ``f``, the
probability that llama.cpp's grammar-constrained sampler replies ``g`` is summed over every
tokenisation of ``g`` from the model's token log-probabilities (the equation and its numerics
in :mod:`dbnb.llm.logprob.walk`). An agent passes its prompt function in
(:func:`logprob_replies`); this package never imports the agents.

model      loading the GGUF (:func:`load_model`), its chat template and token texts; what its
           arithmetic depends on (:func:`machine_info`, :func:`same_machine`)
tree       the token tree of every tokenisation of every candidate, built as the walk reaches it
walk       the depth-first walk: P(g | f) as a sum over token paths of products of
           grammar-masked softmax probabilities; lower/upper bounds under ``min_prob``; the
           llama-cpp internals (prompt evaluation, logits)
kernel     :class:`LogprobKernel` (the result, its counts and transition kernel), ``.npz`` save
           and :func:`load_logprob_kernel` with a format version, and the one :func:`merge`
replies    :func:`logprob_replies`, the entry point, resumable through a :class:`Checkpoint`;
           :func:`logprob_temperatures`, the same walk at several sampling temperatures
served     :func:`served_replies`, the canonical tokenisation's term scored on served
           ``/v1/completions`` endpoints (fanned out, resumable); :func:`canonical_share`, the
           share of the exact probability that term carries (in-process)
"""

from .kernel import FORMAT_VERSION, LogprobKernel, describe, load_logprob_kernel, merge
from .model import LoadedModel, load_model, machine_info, same_machine
from .replies import Checkpoint, logprob_replies, logprob_temperatures
from .served import canonical_share, canonical_tokens, served_replies
from .tree import TokenTree, build_tree
from .walk import LADDER, PROMPT_MODES, STRATEGIES

__all__ = [
    "FORMAT_VERSION",
    "LADDER",
    "PROMPT_MODES",
    "STRATEGIES",
    "Checkpoint",
    "LoadedModel",
    "LogprobKernel",
    "TokenTree",
    "build_tree",
    "canonical_share",
    "canonical_tokens",
    "describe",
    "load_logprob_kernel",
    "load_model",
    "logprob_replies",
    "logprob_temperatures",
    "machine_info",
    "merge",
    "same_machine",
    "served_replies",
]
