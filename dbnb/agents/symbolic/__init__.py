r"""The symbolic-regression agent (the Letter's IdeaSearchFitter, METHOD §6): pure parts.

A *state* is a fitting expression: a numexpr-style string over one variable (the data set's
feature, e.g. ``times`` for ``mcycle`` or ``log_v_k_nu`` for ``nikuradse_2``) with parameter
placeholders ``param1`` ... ``param9``, the functions :data:`FUNCTIONS`, the operators
``+ - * / **``, numbers and ``pi``. A call shows the model the current expression and its fit
quality and asks for a new expression; the first valid expression in the reply is the next
state ``g``. Model output is never evaluated: it is parsed against a whitelist first.

expressions  the safe AST parser and evaluator, :class:`InvalidExpression`, :data:`FUNCTIONS`
fitting      least-squares fit of an expression, MSE <-> score (the Letter's mapping)
canonical    sympy canonical forms and skeletons, :func:`coarse_grain` of counts
prompts      the prompt, the reply rule, GBNF grammars (candidate list, whole language)
candidates   the 121 hand-written expressions of the constrained agent
expression_features  expression features (Supplement E) and the explicit potential on them
agent        :class:`SymbolicAgent`, records to counts, recorded MSEs, the log-probability kernel
"""

from __future__ import annotations

from .agent import (
    SymbolicAgent,
    counts_from_records,
    logprob_kernel,
    recorded_scores,
    trusted_scores,
)
from .candidates import default_candidates
from .canonical import CoarseLevel, canonical_form, coarse_grain
from .expression_features import (
    FEATURES,
    FeaturePotential,
    feature_potential,
    feature_table,
    features,
)
from .expressions import (
    ESCAPE_REASONS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Expression,
    InvalidExpression,
    parse_expression,
)
from .fitting import ExpressionFit, fit_expression, mse_to_score, score_to_mse
from .prompts import candidate_grammar, expression_grammar, parse_reply, prompt_messages

__all__ = [
    "ESCAPE_REASONS",
    "FUNCTIONS",
    "FEATURES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "CoarseLevel",
    "Expression",
    "ExpressionFit",
    "FeaturePotential",
    "InvalidExpression",
    "SymbolicAgent",
    "canonical_form",
    "candidate_grammar",
    "coarse_grain",
    "counts_from_records",
    "default_candidates",
    "logprob_kernel",
    "expression_grammar",
    "feature_potential",
    "feature_table",
    "features",
    "fit_expression",
    "mse_to_score",
    "parse_expression",
    "parse_reply",
    "prompt_messages",
    "recorded_scores",
    "trusted_scores",
    "score_to_mse",
]
