"""The authors' conventions, per file of their data set, as their public scripts apply them.

The Letter's figures were made by the authors' analysis scripts (GitHub
``SonnyNondegeneracy/detialed-balance-llm``, MIT), each with its own kernel estimator. This
module names those choices so that :mod:`dbnb.sources` and :mod:`dbnb.reproduce` use them by
default for the Letter's files and say so in every caption; dbnb's own estimators are offered
beside them. Nothing here computes a figure statistic: the authors' statistics are properties of
the diagnostics' results (:attr:`dbnb.diagnostics.PairCheck.letter_chi2_ndf`,
:attr:`dbnb.diagnostics.TripletCheck.letter_chi2_ndf`, the ``exclude_above`` rule of
:func:`dbnb.diagnostics.pairs`, the seeded 1/5 and 1/10 samples of the plots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .counts import TransitionCounts

__all__ = ["Convention", "CONVENTIONS", "convention", "graph_nodes", "SCRIPT_CALLS",
           "PLOT_FRACTION"]

#: Calls per word-agent run in the Letter (Sec. 6): the authors' ``20000`` of Eq. 18.
SCRIPT_CALLS = 20_000

#: Fraction of the points the Letter's pair and triplet plots show (METHOD §3; seed 42).
PLOT_FRACTION = {"claude": 1.0, "gemini": 1.0, "gpt5nano": 0.2, "ideasearchfitter": 0.1}


@dataclass(frozen=True)
class Convention:
    """A kernel estimator as the authors' script for one file applies it.

    Attributes
    ----------
    estimator : str
        The :func:`dbnb.estimate_kernel` method.
    per_state_calls : bool
        ``True``: ``N0 = SCRIPT_CALLS / (number of states)`` for every state (Eq. 18 with the
        authors' ``20000 / total_nodes``), passed as ``n0``.
    label : str
        What the caption says.
    """

    estimator: str
    per_state_calls: bool
    label: str

    def fit_kwargs(self, counts: TransitionCounts) -> dict[str, object]:
        """The ``estimator`` (and ``n0``) arguments of :func:`dbnb.fit_potential`."""
        kw: dict[str, object] = {"estimator": self.estimator}
        if self.per_state_calls:
            kw["n0"] = SCRIPT_CALLS / graph_nodes(counts)
        return kw


def graph_nodes(counts: TransitionCounts) -> int:
    """The authors' ``total_nodes``: states on at least one transition between two different
    states (their graph is built from such edges; a state seen only repeating itself is not a
    node). The denominator of ``N0 = 20000 / total_nodes``."""
    n = counts.matrix.tocoo()
    off = n.row != n.col
    touched = np.union1d(n.row[off], n.col[off])
    if not len(touched):
        raise ValueError(f"{counts.source or 'counts'}: no transition between two different "
                         "states, so the authors' N0 = 20000 / total_nodes is undefined")
    return len(touched)


_EQ18 = Convention("fixed", True, "authors' N0 = 20000/(number of states), T = min(N/N0, 1) "
                                  "(Eq. 18)")
_HIGH = Convention("fixed", True, "authors' high_reject: N0 = 20000/(number of states) for "
                                  "every state, T = min(N/N0, 1)")
_LOW = Convention("low_reject", False, "authors' low_reject: N0 = appearances as a source, "
                                       "self-loops included, states with N0 > 1")

#: The authors' estimator for each file of their data set (roles of
#: :data:`dbnb.datasets.LETTER_FILES`), as their scripts call it: Eq. 18 for the few-state
#: Claude and Gemini runs (``samll case/calculate_potential.py``); ``high_reject`` with
#: ``N_threshold=0`` for GPT-5 Nano and ``low_reject`` with ``N_threshold=1`` for
#: IdeaSearchFitter (``main.py``, which prints these settings for Figs. 3, 7 and 11). Their
#: ``high_reject`` is Eq. 18 again, ``N0 = 20000 / total_nodes`` for every node.
CONVENTIONS = {"claude": _EQ18, "gemini": _EQ18, "gpt5nano": _HIGH, "ideasearchfitter": _LOW}


def convention(role: str) -> Convention:
    """The authors' :class:`Convention` for a file's role; a KeyError names the roles."""
    try:
        return CONVENTIONS[role]
    except KeyError:
        raise KeyError(f"no authors' convention for {role!r}; roles: {sorted(CONVENTIONS)}"
                       ) from None
