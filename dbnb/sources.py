"""The data sources that ``dbnb reproduce`` and the notebooks read: one registry.

:class:`Sources` loads, lazily and once each, the counts, log-probability kernels and fits that
the figures are drawn from: ``Sources("shipped")`` the runs in ``data/`` (offline),
``Sources("paper")`` the authors' data set, ``Sources(path)`` your own word-agent store.
Attribute names say what they hold (``words``, ``words_fit``, ``claude``, ``symbolic``,
``logprob30_pair``, ``logprob100_fit``, ``symbolic_logprob``, ...). Nothing here draws.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets, diagnostics
from .counts import TransitionCounts
from .potential import PotentialFit, fit_potential

__all__ = ["Sources", "shipped_sources"]

WORD_RUN = "runs/word_constrained_fixed.jsonl.gz"
FREE_RUN = "runs/word_free_letter.jsonl.gz"
SYM_RUN = "runs/symbolic_constrained_fixed.jsonl.gz"
SYM_FREE_RUN = "runs/symbolic_free_letter.jsonl.gz"
RR30_RUN = "runs/word_constrained_rr30.jsonl.gz"
LOGPROB30 = "runs/word_logprob30.npz"
LOGPROB100 = "runs/word_logprob100.npz"
SYM_LOGPROB = "runs/symbolic_logprob.npz"
SYM_MAX_LOG_GAP = 0.1  # exact symbolic entries used: rigorous bounds agree to this in log
SYM_MAX_LAST_STEP = 0.1  # (reported) entries whose last decade of the cut-off added <= this
LOCAL_MODEL = "SmolLM2-135M-Instruct (Q4_1, local)"


class Sources:
    """Lazily loaded data and fits shared by the items (each computed once).

    Parameters
    ----------
    source : str or path
        ``"shipped"``: the local-model runs in ``data/runs/`` (offline). ``"paper"``: the
        authors' data set from Hugging Face (:func:`dbnb.datasets.paper`, needs a network
        once). A path: your own word-agent response store (``.jsonl`` or ``.jsonl.gz``).
    """

    def __init__(self, source: str | Path = "shipped", *, data: Path | None = None) -> None:
        self.source = source
        self.data = Path(data) if data is not None else datasets.data_dir()
        if source not in ("shipped", "paper") and not Path(source).is_file():
            raise FileNotFoundError(
                f"source {str(source)!r} is neither 'shipped', 'paper' nor an existing store file"
            )

    @cached_property
    def _paper(self) -> dict[str, TransitionCounts]:
        return datasets.paper()

    def available(self, what: str) -> bool:
        """Whether a data set exists: ``"words"``, ``"free"``, ``"symbolic"``, ``"symbolic_free"``,
        ``"logprob30"``, ``"logprob100"`` or ``"symbolic_logprob"``."""
        if self.source == "shipped":
            if what == "logprob30":
                return all((self.data / r).is_file() for r in (RR30_RUN, LOGPROB30))
            if what == "logprob100":
                return (self.data / LOGPROB100).is_file()
            if what == "symbolic_logprob":
                return all((self.data / r).is_file() for r in (SYM_RUN, SYM_LOGPROB))
            rel = {"words": WORD_RUN, "free": FREE_RUN, "symbolic": SYM_RUN,
                   "symbolic_free": SYM_FREE_RUN}[what]
            return (self.data / rel).is_file()
        if self.source == "paper":
            key = {"words": "word", "symbolic": "ideasearch"}.get(what)
            return key is not None and any(key in k.lower() for k in self._paper)
        return what == "words"

    # --- Claude-4, Table II ---------------------------------------------------------------
    @cached_property
    def claude(self) -> TransitionCounts:
        return datasets.claude4_table2()

    @cached_property
    def claude_fit(self) -> PotentialFit:
        return fit_potential(self.claude, violation="exp")

    # --- local model, constrained word agent ---------------------------------------------
    @cached_property
    def words(self) -> TransitionCounts:
        """Word-agent counts of the chosen source."""
        from .agents.run import counts_from_store
        from .agents.word import WordAgent, vocabulary

        if self.source == "paper":
            name = sorted(k for k in self._paper if "word" in k)[0]
            return self._paper[name]
        if self.source == "shipped":
            path = self.data / WORD_RUN
            agent = WordAgent(vocabulary(_vocab_size(path)), mode="constrained")
            counts = counts_from_store(path, agent=agent)
            return counts._replace(source=f"{LOCAL_MODEL}, constrained words, fixed design")
        path = Path(self.source)
        try:
            agent = WordAgent(vocabulary(_vocab_size(path)), mode="constrained")
        except ValueError:
            agent = WordAgent(mode="free")
        return counts_from_store(path, agent=agent)

    @cached_property
    def words_fit(self) -> PotentialFit:
        return fit_potential(self.words, violation="exp")

    @cached_property
    def words_fit_softplus(self) -> PotentialFit:
        return fit_potential(self.words, violation="softplus")

    @cached_property
    def logprob30_pair(self):
        """(sampled kernel, exact kernel) of the 30-word check: 3,000 round-robin calls and the
        exact token-probability kernel over the same words (shipped source only)."""
        from .agents.run import counts_from_store
        from .agents.word import WordAgent, vocabulary
        from .kernels import estimate_kernel
        from .llm.logprob import load_logprob_kernel

        ek = load_logprob_kernel(self.data / LOGPROB30)
        agent = WordAgent(vocabulary(len(ek.states)), mode="constrained")
        counts = counts_from_store(self.data / RR30_RUN, agent=agent)
        counts = counts._replace(source=f"{LOCAL_MODEL}, {len(ek.states)} words, round robin")
        return estimate_kernel(counts, "exact"), ek.to_transition_kernel()

    @cached_property
    def logprob100_fit(self) -> PotentialFit:
        """Least-action fit to the exact kernel over the 100 most frequent words: no sampling
        noise, so the pair check tests detailed balance of the model itself."""
        from .llm.logprob import load_logprob_kernel

        ek = load_logprob_kernel(self.data / LOGPROB100)
        return _fit_logprob(ek, f"{LOCAL_MODEL}, exact kernel over {len(ek.states)} words")

    @cached_property
    def symbolic_logprob(self):
        """The exact kernel of the constrained symbolic agent over its 121 expressions."""
        from .llm.logprob import load_logprob_kernel

        return load_logprob_kernel(self.data / SYM_LOGPROB)

    @cached_property
    def symbolic_logprob_fit(self) -> PotentialFit:
        ek = self.symbolic_logprob
        return _fit_logprob(ek, f"{LOCAL_MODEL}, exact kernel over {len(ek.states)} expressions, "
                              "mcycle", max_log_gap=SYM_MAX_LOG_GAP)

    @cached_property
    def symbolic_logprob_graph(self) -> diagnostics.ScoreGraph:
        """Fig. 5 from the exact kernel: every expression (all have the same calls)."""
        return diagnostics.potential_vs_score(self.symbolic_logprob_fit,
                                              self.symbolic.metadata["mse"],
                                              n_states=len(self.symbolic_logprob.sources))

    @cached_property
    def symbolic_logprob_pair(self):
        """(sampled kernel of the 7,260-call run, exact kernel) over the same expressions."""
        from .kernels import estimate_kernel

        return (estimate_kernel(self.symbolic, "exact"),
                self.symbolic_logprob.to_transition_kernel(max_log_gap=SYM_MAX_LOG_GAP))

    @cached_property
    def symbolic(self) -> TransitionCounts:
        """Symbolic-regression agent counts (IdeaSearchFitter in the Letter)."""
        if self.source == "paper":
            name = sorted(k for k in self._paper if "ideasearch" in k.lower())[0]
            return self._paper[name]
        if self.source != "shipped":
            raise ValueError(f"no symbolic-agent data in source {self.source!r}")
        from .agents.run import counts_from_store
        from .agents.symbolic import SymbolicAgent

        agent = SymbolicAgent(mode="constrained")  # the store's recorded MSEs label its states
        counts = counts_from_store(self.data / SYM_RUN, agent=agent)
        return counts._replace(
            source=f"{LOCAL_MODEL}, symbolic regression of mcycle (MASS), 121 expressions"
        )

    @cached_property
    def _symbolic_free_agent(self):
        from .agents.symbolic import SymbolicAgent, recorded_scores
        from .llm import JsonlStore

        # one agent: its fits are cached across uses; prompts as the run recorded them
        scores = recorded_scores(JsonlStore(self.data / SYM_FREE_RUN, read_only=True))
        return SymbolicAgent(mode="free", scores=scores)

    @cached_property
    def symbolic_free(self) -> TransitionCounts:
        """The free-mode symbolic run on the Letter's schedule (shipped source only)."""
        from .agents.run import counts_from_store

        counts = counts_from_store(self.data / SYM_FREE_RUN, agent=self._symbolic_free_agent)
        return counts._replace(source=f"{LOCAL_MODEL}, free expressions, Letter schedule")

    def symbolic_free_reasons(self) -> pd.Series:
        """Calls of the free symbolic run by outcome: ``"valid state"`` or the escape reason."""
        from .llm import JsonlStore

        agent = self._symbolic_free_agent
        out = [agent.parse(r.get("reply"), r["meta"]["prompt"]).reason or "valid state"
               for r in JsonlStore(self.data / SYM_FREE_RUN, read_only=True)
               if not r.get("error")]
        return pd.Series(out, dtype=object).value_counts().rename("calls")

    @property
    def symbolic_variable(self) -> str:
        return "log_v_k_nu" if self.source == "paper" else "times"

    @cached_property
    def symbolic_fit(self) -> PotentialFit:
        return fit_potential(self.symbolic, violation="exp")

    @cached_property
    def symbolic_fit_softplus(self) -> PotentialFit:
        return fit_potential(self.symbolic, violation="softplus")

    def words_top(self, k: int = 8) -> TransitionCounts:
        """The ``k`` states that receive the most transitions (the analogue of the Letter's
        few-state Gemini diagram, Fig. 6), with the transitions among them."""
        top = np.argsort(-self.words.in_counts(), kind="stable")[:k]
        sub = self.words.submodel(np.sort(top))
        return sub._replace(source=f"{self.words.source}; the {k} most-visited states")

    @cached_property
    def words_free(self) -> TransitionCounts:
        """The free-mode Letter-schedule run (shipped source only)."""
        from .agents.run import counts_from_store

        counts = counts_from_store(self.data / FREE_RUN)
        return counts._replace(source=f"{LOCAL_MODEL}, free words, Letter schedule")


def _fit_logprob(ek, label: str, max_log_gap: float | None = None) -> PotentialFit:
    """Least-action fit to an exact kernel (self-replies are escapes), labelled with the
    largest uncovered mass (the skipped rare tokenisations); with ``max_log_gap`` only the
    entries whose bounds agree to that precision
    (:meth:`dbnb.llm.logprob.LogprobKernel.log_gap`)."""
    from .kernels import TransitionKernel

    tk = ek.to_transition_kernel(n_calls=10**9, max_log_gap=max_log_gap)
    gap = "" if max_log_gap is None else f", entries bounded to {max_log_gap:g} in log"
    counts = tk.counts._replace(
        source=f"{label} (uncovered mass <= {float(ek.uncovered.max()):.1e}{gap})")
    return fit_potential(TransitionKernel(counts=counts, matrix=tk.matrix, n0=tk.n0,
                                          method=tk.method, noise_free=tk.noise_free))


def _vocab_size(path: Path) -> int:
    """The vocabulary size a constrained run used, read from its first record's grammar."""
    from .llm import JsonlStore

    for rec in JsonlStore(path, read_only=True):
        grammar = (rec.get("params") or {}).get("extra_body", {}).get("grammar", "")
        if grammar:
            return grammar.count("|") + 1
    raise ValueError(f"{path}: no grammar in the records; not a constrained run")


def shipped_sources() -> Sources:
    """The data shipped in ``data/`` (offline)."""
    return Sources("shipped")


