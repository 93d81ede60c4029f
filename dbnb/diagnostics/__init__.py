r"""Detailed-balance diagnostics: one module per check of the Letter, each a frozen result.

Module map (one check each; the functions it holds in brackets)::

    pairs             Eq. 5, Figs. 4, 7, 9: log T(g<-f)/T(f<-g) vs beta dV  [pairs,
                      pair_intervals: exact conditional intervals, one-way pairs too]
    triplets          Eq. 7, Figs. 3, 8: closed 3-cycles, forward vs backward  [triplets]
    one_way           Eq. 25, Fig. 10: pairs seen one way vs the bound  [one_way_pairs]
    action_scale      Eq. 28, Fig. 11, Table IV: beta V histogram, expected vs actual action
                      [potential_distribution, expected_min_action, action_scale_table]
    majority_vote     Eqs. 29-30, Fig. 12: the kernel after an n-of-M vote
                      [majority_vote, majority_vote_ratio, majority_vote_curves]
    score             Fig. 5: potential vs score, up/down shares  [potential_vs_score]
    sampled_vs_exact  beyond the Letter: sampled error bars vs a kernel known without noise
                      [compare_to_exact, coverage_by_total, transition_check]
    stationary        pi = e^{-beta V}? the kernel's stationary distribution vs the potential
                      [stationary_check]
    _common           shared: input checks, edge look-up, coverage fractions, sampling

Every check is a pure function of a fitted potential (:class:`~dbnb.potential.PotentialFit`)
or a transition kernel (:class:`~dbnb.kernels.TransitionKernel`) and returns a small frozen
result with named array fields, summary properties and a ``.to_frame()``; the figures of
:mod:`dbnb.plots` draw these results.

Conventions: ``T[g, f] = T(g <- f)`` (column = source), potentials are ``beta V``, logs are
natural. Error bars are counting errors, statistical only: the variance of ``log T = log N -
log N0`` is :func:`dbnb.kernels.log_t_variance` under the kernel's sampling design
(:attr:`dbnb.kernels.TransitionKernel.design`): ``1/N - 1/N0`` with recorded calls, the
Letter's ``1/N + 1/N0`` (METHOD §3) on request (``design="letter"``), none (NaN) for a kernel
without sampling noise, whose coverage fractions and chi-squared are then NaN too. Empty checks
(nothing measured) are not errors: they return a result with zero rows and NaN summary
statistics.
Only the core (counts, kernels, graph, action, potential, ...) is imported here.
"""

from .action_scale import (
    PotentialDistribution,
    action_scale_table,
    expected_min_action,
    potential_distribution,
)
from .majority_vote import (
    MajorityVoteCurves,
    majority_vote,
    majority_vote_curves,
    majority_vote_ratio,
)
from .one_way import OneWayCheck, one_way_pairs
from .pairs import PairCheck, pair_intervals, pairs
from .sampled_vs_exact import (
    ExactComparison,
    compare_to_exact,
    coverage_by_total,
    transition_check,
)
from .score import ScoreGraph, potential_vs_score
from .stationary import StationaryCheck, stationary_check
from .triplets import TripletCheck, triplets

__all__ = [
    "PairCheck",
    "TripletCheck",
    "OneWayCheck",
    "PotentialDistribution",
    "ScoreGraph",
    "ExactComparison",
    "MajorityVoteCurves",
    "StationaryCheck",
    "pairs",
    "pair_intervals",
    "triplets",
    "one_way_pairs",
    "potential_distribution",
    "action_scale_table",
    "expected_min_action",
    "majority_vote",
    "majority_vote_ratio",
    "majority_vote_curves",
    "potential_vs_score",
    "compare_to_exact",
    "coverage_by_total",
    "transition_check",
    "stationary_check",
]
