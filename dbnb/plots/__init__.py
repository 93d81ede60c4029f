r"""Figures and tables of the Letter, drawn from result objects.

One function per figure. Each takes a result (:class:`~dbnb.potential.PotentialFit`,
:class:`~dbnb.diagnostics.PairCheck`, ...) and a few keyword-only style options, draws into
``ax`` when one is given (else into a new figure) and returns the
:class:`matplotlib.figure.Figure`. Nothing here reads files, fits potentials, runs a diagnostic
or calls models: compute with :mod:`dbnb.diagnostics`, then draw.

Module map::

    diagrams       Fig. 1 (schematic, Eq. 5), Figs. 2, 6 (levels at beta V, arrows T(g<-f))
                   [fig01_schematic, fig02_transition_diagram, diagram_levels]
    pairs          Figs. 4, 7, 9: log ratio vs beta dV (Eq. 5); sampled vs exact pairs
                   [fig_pairs, fig_exact_comparison]
    triplets       Figs. 3, 8: closed 3-cycles, forward vs backward (Eq. 7)  [fig_triplets]
    score          Fig. 5: potential vs log10 MSE, up/down transitions  [fig_potential_vs_score]
    one_way        Fig. 10: one-way pairs vs the Eq. 25 bound  [fig10_one_way]
    comparison     one potential for many kernels? V_A vs V_B, cross-prediction
                   [fig_potential_comparison, fig_comparison_summary]
    heatmap        T(g<-f) as a picture, rows = targets, columns = sources
                   [fig_kernel_heatmap]
    histogram      Fig. 11: histogram of beta V with a Gaussian (Eq. 28)
                   [fig11_potential_histogram]
    majority_vote  Fig. 12: majority-vote ratio vs power law (Eqs. 29-30)  [fig12_majority_vote]
    balance        is it detailed balance? p-value calibration, power, interval coverage,
                   Hodge fractions per data set
                   [fig_p_values, fig_power, fig_coverage, fig_hodge_fractions]
    stationary     log pi of the kernel vs -beta V of the fit (pi = e^{-beta V}?)
                   [fig_stationary]
    tables         Tables I-IV as DataFrames  [table1_examples ... table4_action_scale]
    _style         palette, rc style, axes, captions, annotation boxes (shared)

Every figure function takes ``caption``: ``None`` writes an automatic provenance line (data
source, estimator, counts) above the axes, a string writes that string, ``""`` writes none.
"""

from ._style import PALETTE
from .balance import fig_coverage, fig_hodge_fractions, fig_p_values, fig_power
from .comparison import fig_comparison_summary, fig_potential_comparison
from .diagrams import diagram_levels, fig01_schematic, fig02_transition_diagram
from .heatmap import fig_kernel_heatmap
from .histogram import fig11_potential_histogram
from .majority_vote import fig12_majority_vote
from .one_way import fig10_one_way
from .pairs import fig_exact_comparison, fig_pairs
from .score import fig_potential_vs_score
from .stationary import fig_stationary
from .tables import table1_examples, table2_counts, table3_statistics, table4_action_scale
from .triplets import fig_triplets

__all__ = [
    "PALETTE",
    "fig01_schematic",
    "fig02_transition_diagram",
    "diagram_levels",
    "fig_pairs",
    "fig_triplets",
    "fig_potential_vs_score",
    "fig10_one_way",
    "fig_kernel_heatmap",
    "fig11_potential_histogram",
    "fig12_majority_vote",
    "fig_exact_comparison",
    "fig_potential_comparison",
    "fig_comparison_summary",
    "fig_p_values",
    "fig_power",
    "fig_coverage",
    "fig_hodge_fractions",
    "fig_stationary",
    "table1_examples",
    "table2_counts",
    "table3_statistics",
    "table4_action_scale",
]
