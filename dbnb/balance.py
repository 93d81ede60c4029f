"""Deprecated: the diagnostics moved to :mod:`dbnb.diagnostics`; import from there.

Kept for one release so that old notebooks keep running; importing it warns.
``enumerate_triangles`` is :func:`dbnb.graph.triangles`.
"""

import warnings

from .diagnostics import (
    ExactComparison,
    OneWayCheck,
    PairCheck,
    PotentialDistribution,
    ScoreGraph,
    TripletCheck,
    action_scale_table,
    compare_to_exact,
    expected_min_action,
    majority_vote,
    majority_vote_ratio,
    one_way_pairs,
    pairs,
    potential_distribution,
    potential_vs_score,
    transition_check,
    triplets,
)
from .graph import triangles as enumerate_triangles

__all__ = [
    "PairCheck",
    "TripletCheck",
    "OneWayCheck",
    "PotentialDistribution",
    "ScoreGraph",
    "pairs",
    "triplets",
    "one_way_pairs",
    "potential_distribution",
    "action_scale_table",
    "expected_min_action",
    "majority_vote",
    "majority_vote_ratio",
    "potential_vs_score",
    "compare_to_exact",
    "transition_check",
    "ExactComparison",
    "enumerate_triangles",
]

warnings.warn("dbnb.balance is deprecated; use dbnb.diagnostics", DeprecationWarning,
              stacklevel=2)
