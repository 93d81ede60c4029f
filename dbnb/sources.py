"""The data sources that ``dbnb reproduce`` and the notebooks read: one registry.

:class:`Sources` loads, lazily and once each, the counts, log-probability kernels and fits that
the figures are drawn from: ``Sources("shipped")`` the runs in ``data/`` (offline),
``Sources("paper")`` the authors' data set, ``Sources(path)`` your own word-agent store.
Attribute names say what they hold (``words``, ``words_fit``, ``claude``, ``symbolic``,
``logprob30_pair``, ``logprob100_fit``, ``symbolic_logprob``, ...). Nothing here draws.
"""

from __future__ import annotations

import re
import zipfile
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import authors, datasets, diagnostics
from .counts import TransitionCounts
from .potential import PotentialFit, fit_potential
from .verdict import Verdict, check

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
#: Exact kernels of the comparison "one potential for many models?" over the same 100 words
#: (vocabulary of ``LOGPROB100``), label -> file under ``data/``; the first is the reference.
COMPARISON_KERNELS = {
    "SmolLM2": LOGPROB100,
    "Gemma 3": "runs/word_logprob100_gemma3.npz",
    "SmolLM2, paraphrase": "runs/word_logprob100_paraphrase.npz",
    "SmolLM2, T=1 (hot walk)": "runs/word_logprob100_T1.npz",
    "SmolLM2, T=0.5": "runs/word_logprob100_T0.5.npz",
    "SmolLM2, T=2": "runs/word_logprob100_T2.npz",
}
#: Bootstrap resamples of the states behind each comparison's Spearman interval.
COMPARISON_N_BOOT = 2000
#: Which comparisons :attr:`Sources.comparisons` makes: group -> (reference, others).
COMPARISON_GROUPS = {
    "models": ("SmolLM2", ("Gemma 3",)),
    "prompts": ("SmolLM2", ("SmolLM2, paraphrase",)),
    "temperatures": ("SmolLM2, T=1 (hot walk)", ("SmolLM2, T=0.5", "SmolLM2, T=2")),
}


class Sources:
    """Lazily loaded data and fits shared by the items (each computed once).

    Parameters
    ----------
    source : str or path
        ``"shipped"``: the local-model runs in ``data/runs/`` (offline). ``"paper"``: the
        authors' data set from Hugging Face (:func:`dbnb.datasets.paper_files`, needs a
        network once). A folder: a local copy of that data set's files
        (:func:`dbnb.datasets.letter_folder`). A file: your own word-agent response store
        (``.jsonl`` or ``.jsonl.gz``).

    Notes
    -----
    For the authors' files each data set is mapped by its file name
    (:data:`dbnb.datasets.LETTER_FILES`): Claude-4 gives Fig. 2, Table II and Eq. 22, Gemini
    Fig. 6 and Eq. 23, GPT-5 Nano the word figures (3, 7, 9-11), IdeaSearchFitter the
    symbolic ones (4, 5, 8, 9-11, Table I); fits use the authors' estimator of that file
    (:data:`dbnb.authors.CONVENTIONS`). :meth:`file_of` names the file behind each data set.
    """

    def __init__(self, source: str | Path = "shipped", *, data: Path | None = None) -> None:
        self.source = source
        self.data = Path(data) if data is not None else datasets.data_dir()
        if source in ("shipped", "paper"):
            self.kind = str(source) if source == "shipped" else "letter"
        elif Path(source).is_dir():
            self.kind = "letter"
        elif Path(source).is_file():
            self.kind = "store"
        else:
            raise FileNotFoundError(
                f"source {str(source)!r} is neither 'shipped', 'paper', a folder with the "
                "Letter's data files nor an existing store file"
            )

    @cached_property
    def letter_files(self) -> datasets.LetterFiles:
        """The authors' files of this source, by role (``kind == "letter"`` only)."""
        if self.kind != "letter":
            raise ValueError(f"source {self.source!r} holds no file of the Letter's data set")
        if self.source == "paper":
            return datasets.paper_files()
        return datasets.letter_folder(self.source)

    def _has(self, role: str) -> bool:
        return self.kind == "letter" and role in self.letter_files.files

    def available(self, what: str) -> bool:
        """Whether a data set exists: ``"words"``, ``"free"``, ``"symbolic"``, ``"symbolic_free"``,
        ``"logprob30"``, ``"logprob100"``, ``"symbolic_logprob"``, ``"gemini"``,
        ``"claude_file"`` (Claude's counts from the authors' file, not the shipped Table II) or a
        comparison group (``"models"``, ``"prompts"``, ``"temperatures"``: every kernel of
        :data:`COMPARISON_GROUPS` shipped)."""
        if self.kind == "shipped":
            if what == "logprob30":
                return all((self.data / r).is_file() for r in (RR30_RUN, LOGPROB30))
            if what == "logprob100":
                return (self.data / LOGPROB100).is_file()
            if what == "symbolic_logprob":
                return all((self.data / r).is_file() for r in (SYM_RUN, SYM_LOGPROB))
            if what in COMPARISON_GROUPS:
                ref, others = COMPARISON_GROUPS[what]
                return all((self.data / COMPARISON_KERNELS[k]).is_file() for k in (ref, *others))
            rel = {"words": WORD_RUN, "free": FREE_RUN, "symbolic": SYM_RUN,
                   "symbolic_free": SYM_FREE_RUN}.get(what)
            return rel is not None and (self.data / rel).is_file()
        if self.kind == "letter":
            role = _ROLE_OF.get(what)
            return role is not None and self._has(role)
        return what == "words"

    def file_of(self, what: str) -> str:
        """The file a data set is drawn from: ``"claude"``, ``"gemini"``, ``"words"``,
        ``"symbolic"`` or any name of :meth:`available`."""
        if what == "claude":
            return (self.letter_files.name("claude") if self._has("claude")
                    else "data/claude4_table2.csv")
        if self.kind == "letter":
            role = _ROLE_OF.get(what, what)
            return self.letter_files.name(role) if self._has(role) else ""
        if self.kind == "store":
            return Path(self.source).name if what == "words" else ""
        rel = {"words": WORD_RUN, "free": FREE_RUN, "symbolic": SYM_RUN,
               "symbolic_free": SYM_FREE_RUN, "logprob30": LOGPROB30,
               "logprob100": LOGPROB100, "symbolic_logprob": SYM_LOGPROB}.get(what)
        return f"data/{rel}" if rel else ""

    def convention(self, what: str) -> authors.Convention | None:
        """The authors' estimator used for a data set of their files (None: dbnb's default,
        Eq. 6 with recorded calls or Eq. 18 with Table II's nominal 4000)."""
        role = _ROLE_OF.get(what, what)
        return authors.convention(role) if self._has(role) else None

    def _fit(self, counts: TransitionCounts, what: str, violation: str = "exp") -> PotentialFit:
        conv = self.convention(what)
        if conv is None:
            return fit_potential(counts, violation=violation)
        # the counts' label carries the file and the convention into every figure's caption
        labelled = counts._replace(source=f"{counts.source}; {conv.label}")
        return fit_potential(labelled, violation=violation, **conv.fit_kwargs(counts))

    def fit(self, what: str, convention: str | None = None, *,
            violation: str = "exp") -> PotentialFit:
        """Least action on one data set with a convention chosen by name.

        Parameters
        ----------
        what : {"claude", "gemini", "words", "symbolic"}
            The data set (:meth:`available`).
        convention : str, optional
            ``"eq18"``, ``"high_reject"`` or ``"low_reject"`` (the authors' conventions,
            :data:`dbnb.authors.NAMED`), ``"dbnb"`` (dbnb's own estimator, Eq. 6 with recorded
            calls, else Eq. 24), or None: the default of this data set (the authors'
            convention of the file for the Letter's files, :meth:`convention`).
        violation : {"exp", "softplus"}
            The kernel ``K``.

        Examples
        --------
        GPT-5 Nano's words with ``low_reject`` instead of ``main.py``'s ``high_reject``:
        ``Sources(folder).fit("words", "low_reject")``.
        """
        attrs = {"claude": "claude", "gemini": "gemini", "words": "words",
                 "symbolic": "symbolic"}
        if what not in attrs:
            raise ValueError(f"no data set {what!r} to fit; choose one of {sorted(attrs)}")
        counts = getattr(self, attrs[what])
        if convention is None:
            return self._fit(counts, what, violation)
        if convention == "dbnb":
            return fit_potential(counts, violation=violation)
        if convention not in authors.NAMED:
            raise ValueError(f"unknown convention {convention!r}; choose one of "
                             f"{sorted(authors.NAMED)}, 'dbnb' or None (the default)")
        conv = authors.NAMED[convention]
        labelled = counts._replace(source=f"{counts.source}; {conv.label}")
        return fit_potential(labelled, violation=violation, **conv.fit_kwargs(counts))

    def letter_statistics(self, what: str) -> dict[str, authors.LetterPlot]:
        """The numbers printed on the authors' plots of one of their files, computed as their
        ``plot.py`` does (:func:`dbnb.authors.letter_pairs`, :func:`dbnb.authors.letter_loops`):
        ``"pairs"`` (Figs. 4, 7; exp kernel), ``"pairs_softplus"`` (Fig. 9), ``"loops"``
        (Figs. 3, 8), with the authors' thresholds and plotted fraction of that file, and
        ``"histogram"`` / ``"histogram_softplus"`` (Fig. 11's Gaussian; the authors' code
        minimises the action with the softplus ``K``).

        ``what`` is ``"words"`` (GPT-5 Nano) or ``"symbolic"`` (IdeaSearchFitter), for a source
        holding the Letter's files.
        """
        role = _ROLE_OF.get(what)
        if what not in ("words", "symbolic") or not self._has(role):
            raise ValueError(f"no Letter file for {what!r} in source {self.source!r} (the "
                             "authors' plot statistics need word_database_gpt5-nano.json or "
                             "ideasearchfitter_database.json)")
        counts = getattr(self, what)
        return {
            "pairs": authors.letter_pairs(getattr(self, f"{what}_fit"), counts, role=role),
            "pairs_softplus": authors.letter_pairs(getattr(self, f"{what}_fit_softplus"),
                                                   counts, role=role),
            "loops": authors.letter_loops(counts, role=role),
            "histogram": authors.letter_histogram(getattr(self, f"{what}_fit"), counts),
            "histogram_softplus": authors.letter_histogram(
                getattr(self, f"{what}_fit_softplus"), counts),
        }

    def caption(self, what: str) -> str:
        """``file; estimator`` for a figure caption or the printed list."""
        conv = self.convention(what)
        if conv is not None:
            est = conv.label
        elif what == "claude":  # the shipped Table II: the Letter's own Eq. 18
            est = "T = min(N/4000, 1) (Eq. 18, the Letter's nominal N0)"
        else:
            est = "dbnb's estimator"
        return f"{self.file_of(what)}; {est}"

    # --- Claude-4, Table II ---------------------------------------------------------------
    @cached_property
    def claude(self) -> TransitionCounts:
        """Claude-4 counts: the authors' file when the source has it, else the Letter's
        Table II as shipped."""
        if self._has("claude"):
            return self.letter_files.read("claude")
        return datasets.claude4_table2()

    @cached_property
    def claude_fit(self) -> PotentialFit:
        """Least action (exp kernel) with the authors' Eq. 18 for the file (Eq. 22)."""
        return self._fit(self.claude, "claude")

    def claude_table2_differences(self) -> pd.DataFrame:
        """Cells where the Claude file's counts differ from the Letter's Table II
        (``data/claude4_table2.csv``): columns ``from, to, file, Letter``; empty when they
        agree. ``to = "escape"`` compares the file's rejected replies (``INVALID00``) with
        the Letter's escape column (the file does not record non-alphabetic replies)."""
        return _table_differences(self.claude, datasets.claude4_table2())

    # --- Gemini-2.5-flash (Fig. 6, Eq. 23) -------------------------------------------------
    @cached_property
    def gemini(self) -> TransitionCounts:
        """Gemini-2.5-flash counts (the authors' file only; they are not shipped)."""
        if not self._has("gemini"):
            raise ValueError(f"no Gemini file in source {self.source!r} (expected "
                             "word_database_gemini-2.5-flash-nothinking.json)")
        return self.letter_files.read("gemini")

    @cached_property
    def gemini_fit(self) -> PotentialFit:
        return self._fit(self.gemini, "gemini")

    # --- word agent: GPT-5 Nano (Letter) or the local model --------------------------------
    @cached_property
    def words(self) -> TransitionCounts:
        """Word-agent counts of the chosen source (GPT-5 Nano's file for the Letter's data)."""
        from .agents.run import counts_from_store
        from .agents.word import WordAgent, vocabulary

        if self.kind == "letter":
            if not self._has("gpt5nano"):
                raise ValueError(f"no GPT-5 Nano word file in source {self.source!r} "
                                 "(expected word_database_gpt5-nano.json)")
            return self.letter_files.read("gpt5nano")
        if self.kind == "shipped":
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
        return self._fit(self.words, "words")

    @cached_property
    def words_fit_softplus(self) -> PotentialFit:
        return self._fit(self.words, "words", violation="softplus")

    @cached_property
    def words_fit_dbnb(self) -> PotentialFit:
        """dbnb's own estimator on the word counts (Eq. 24 when only transitions are known),
        beside the authors' :attr:`words_fit`."""
        return fit_potential(self.words, violation="exp")

    @cached_property
    def logprob30_pair(self):
        """(sampled kernel, exact kernel) of the 30-word check: 3,000 round-robin calls and the
        exact token-probability kernel over the same words (shipped source only)."""
        from .kernels import estimate_kernel
        from .llm.logprob import load_logprob_kernel

        ek = load_logprob_kernel(self.data / LOGPROB30)
        return estimate_kernel(self.words_rr30, "exact"), ek.to_transition_kernel()

    @cached_property
    def words_rr30(self) -> TransitionCounts:
        """The 3,000-call round-robin run over the 30 words of the 30-word exact kernel."""
        from .agents.run import counts_from_store
        from .agents.word import WordAgent, vocabulary

        n = _vocab_size(self.data / RR30_RUN)
        agent = WordAgent(vocabulary(n), mode="constrained")
        counts = counts_from_store(self.data / RR30_RUN, agent=agent)
        return counts._replace(source=f"{LOCAL_MODEL}, {n} words, round robin")

    @cached_property
    def comparison_kernels(self) -> dict:
        """The shipped exact kernels of :data:`COMPARISON_KERNELS` that exist, by label
        (``dbnb.llm.logprob.LogprobKernel``; empty for other sources)."""
        from .llm.logprob import load_logprob_kernel

        if self.kind != "shipped":
            return {}
        return {label: load_logprob_kernel(self.data / rel)
                for label, rel in COMPARISON_KERNELS.items() if (self.data / rel).is_file()}

    def comparison(self, group: str, *, n_boot: int = COMPARISON_N_BOOT) -> list:
        """One group of :data:`COMPARISON_GROUPS`: the reference kernel against each other
        kernel of the group, on their common states (:func:`dbnb.comparison.compare_to`, with
        ``n_boot`` bootstrap resamples of the states for the Spearman interval; 0 skips it)."""
        from .comparison import compare_to

        if group not in COMPARISON_GROUPS:
            raise KeyError(f"unknown comparison group {group!r}; known: "
                           f"{sorted(COMPARISON_GROUPS)}")
        if not self.available(group):
            raise FileNotFoundError(f"comparison {group!r}: not all of its kernels are in "
                                    f"source {str(self.source)!r}")
        ks = self.comparison_kernels
        ref, others = COMPARISON_GROUPS[group]
        return compare_to(ks[ref], {k: ks[k] for k in others}, name=ref, n_boot=n_boot)

    @cached_property
    def comparisons(self) -> dict:
        """Group -> list of :class:`dbnb.comparison.Comparison` (:meth:`comparison` with its
        defaults) for every group of :data:`COMPARISON_GROUPS` whose kernels are all here."""
        return {g: self.comparison(g) for g in COMPARISON_GROUPS if self.available(g)}

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
        if self.kind == "letter":
            if not self._has("ideasearchfitter"):
                raise ValueError(f"no IdeaSearchFitter file in source {self.source!r} "
                                 "(expected ideasearchfitter_database.json)")
            return self.letter_files.read("ideasearchfitter")
        if self.kind != "shipped":
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
        return "log_v_k_nu" if self.kind == "letter" else "times"

    @cached_property
    def symbolic_fit(self) -> PotentialFit:
        return self._fit(self.symbolic, "symbolic")

    @cached_property
    def symbolic_fit_dbnb(self) -> PotentialFit:
        """dbnb's own estimator on the symbolic counts, beside the authors' :attr:`symbolic_fit`."""
        return fit_potential(self.symbolic, violation="exp")

    @cached_property
    def symbolic_fit_softplus(self) -> PotentialFit:
        return self._fit(self.symbolic, "symbolic", violation="softplus")

    def words_top(self, k: int = 8) -> TransitionCounts:
        """The ``k`` states that receive the most transitions (the analogue of the Letter's
        few-state Gemini diagram, Fig. 6), with the transitions among them.

        Without recorded calls, each state keeps the calls of the whole data set as a nominal
        ``N0`` (its appearances as a source, the authors' ``low_reject``): ``T`` stays the
        probability per call from ``f``, not renormalised to the few states kept. Fit it with
        ``min_calls=0``: a state need not have a transition inside the subset."""
        counts = self.words
        if counts.calls is None:
            counts = counts.with_calls(counts.observed_calls(), kind="nominal")
        top = np.argsort(-counts.in_counts(), kind="stable")[:k]
        sub = counts.submodel(np.sort(top))
        return sub._replace(source=f"{self.words.source}; the {k} most-visited states")

    @cached_property
    def words_free(self) -> TransitionCounts:
        """The free-mode Letter-schedule run (shipped source only)."""
        from .agents.run import counts_from_store

        counts = counts_from_store(self.data / FREE_RUN)
        return counts._replace(source=f"{LOCAL_MODEL}, free words, Letter schedule")

    # --- is it detailed balance? (dbnb.verdict) -------------------------------------------
    def balance_data(self) -> dict[str, object]:
        """Every data set of this source the verdicts are drawn from, by label: counts, or a
        noise-free kernel (log-probability kernels: the keyword arguments of
        :func:`dbnb.verdict.check`, as :func:`check_inputs` gives them, with their ``log T``
        and bounds). Loading is lazy: the values are callables."""
        letter = self.kind == "letter"
        claude = f"Claude-4, {self.file_of('claude')}" if self.available("claude_file") \
            else "Claude-4, Table II"
        sets: dict[str, object] = {claude: lambda: self.claude}
        if self.available("gemini"):
            sets[f"Gemini-2.5-flash, {self.file_of('gemini')}"] = lambda: self.gemini
        if self.available("words"):
            label = (f"GPT-5 Nano words, {self.file_of('words')}" if letter
                     else "words, constrained, fixed design")
            sets[label] = lambda: self.words
        if self.kind == "shipped":
            if self.available("logprob30"):
                sets["words, 30, round robin"] = lambda: self.words_rr30
            if self.available("free"):
                sets["words, free, Letter schedule"] = lambda: self.words_free
        if self.available("symbolic"):
            label = (f"IdeaSearchFitter, {self.file_of('symbolic')}" if letter
                     else "symbolic, constrained, fixed design")
            sets[label] = lambda: self.symbolic
        if self.kind == "shipped":
            if self.available("symbolic_free"):
                sets["symbolic, free, Letter schedule"] = lambda: self.symbolic_free
            for what, rel, label in (("logprob30", LOGPROB30, "words, exact kernel, 30"),
                                     ("logprob100", LOGPROB100, "words, exact kernel, 100"),
                                     ("symbolic_logprob", SYM_LOGPROB,
                                      "symbolic, exact kernel, 121")):
                if self.available(what):
                    sets[label] = (lambda rel=rel: _kernel_inputs(self.data / rel, None))
        return sets

    def verdict(self, label: str, *, bootstrap: int = 199, seed: int = 0) -> Verdict:
        """:func:`dbnb.verdict.check` of one data set of :meth:`balance_data` (computed once
        per ``bootstrap`` and ``seed``)."""
        cache = self.__dict__.setdefault("_verdicts", {})
        key = (label, bootstrap, seed)
        if key not in cache:
            sets = self.balance_data()
            if label not in sets:
                raise KeyError(f"no data set {label!r} in source {self.source!r}; "
                               f"choose from {list(sets)}")
            data = sets[label]()
            kw = data if isinstance(data, dict) else {"data": data}
            cache[key] = check(**kw, bootstrap=bootstrap, seed=seed)
        return cache[key]

    def exact_kernel_files(self) -> dict[str, Path]:
        """Every shipped log-probability kernel file, by label (empty for other sources)."""
        if self.kind != "shipped":
            return {}
        files = {"words, exact kernel, 30": LOGPROB30, "words, exact kernel, 100": LOGPROB100,
                 "symbolic, exact kernel, 121": SYM_LOGPROB}
        files.update({f"words, exact kernel, 100 ({k})": rel
                      for k, rel in COMPARISON_KERNELS.items() if rel != LOGPROB100})
        return {k: self.data / rel for k, rel in files.items() if (self.data / rel).is_file()}

    def bounded_verdicts(self, bounded_tol: float = 0.01) -> dict[str, Verdict]:
        """:func:`dbnb.verdict.check` of every file of :meth:`exact_kernel_files`, with its
        bounds (:func:`check_inputs`): the certified verdict is ``Verdict.bounded_status``
        (computed once per tolerance)."""
        cache = self.__dict__.setdefault("_bounded_verdicts", {})
        if bounded_tol not in cache:
            # a kernel's verdict does not depend on the bootstrap or seed: reuse verdict()'s
            done = {key[0]: v for key, v in self.__dict__.get("_verdicts", {}).items()
                    if v.noise_free and v.bounded_tol == bounded_tol}
            cache[bounded_tol] = {
                k: done[k] if k in done else check(**_kernel_inputs(path, None),
                                                   bounded_tol=bounded_tol)
                for k, path in self.exact_kernel_files().items()}
        return cache[bounded_tol]

    def bounded_table(self, bounded_tol: float = 0.01) -> pd.DataFrame:
        """One row per exact kernel (:meth:`bounded_verdicts`): the certified verdict of its
        bounds, how many two-sided pairs the interval least-squares potential misses by more
        than ``bounded_tol``, and the same verdict for the popularity-only control with the
        same support and bounds' widths (:func:`dbnb.bounded.popularity_bounds`), which is in
        detailed balance by construction (empty for sources without exact kernels)."""
        from .bounded import bounded_potential, popularity_bounds

        rows = {}
        files = self.exact_kernel_files()
        for label, v in self.bounded_verdicts(bounded_tol).items():
            b = v.bounded
            row = {"states": v.n_states, "pairs": len(b.pairs) if b is not None else 0,
                   "two_sided_pairs": v.n_two_sided,
                   "one_way": len(b.one_way) if b is not None else 0,
                   "verdict": v.bounded_status, "pairs_outside": v.n_outside,
                   "share_outside": v.n_outside / v.n_two_sided if v.n_two_sided else np.nan,
                   "max_outside": v.max_outside, "control_verdict": "undefined",
                   "control_max_outside": np.nan}
            if b is not None:
                inputs = _kernel_inputs(files[label], None)
                ctrl = bounded_potential(*popularity_bounds(*inputs["bounds"]),
                                         states=inputs["data"].states)
                row["control_verdict"] = ("certified consistent" if ctrl.consistent and
                                          ctrl.one_way.empty else "certified violated")
                pr = ctrl.pairs
                two = np.isfinite(pr["a"]) & np.isfinite(pr["b"])
                row["control_max_outside"] = (float(np.nanmax(pr["outside"][two]))
                                              if two.any() else np.nan)
            rows[label] = row
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "exact kernel"
        table.attrs["note"] = (
            "bounds lower <= T(g<-f) <= upper of each entry (the walk's probabilities; its "
            "stored upper bounds, else lower plus the source's uncovered mass); certified "
            "consistent: some potential satisfies every pair's interval of log T(g<-f)/T(f<-g); "
            "certified violated: none does (a negative cycle of the difference constraints "
            "beyond a 1e-10 rounding slack per pair, or a one-way pair). pairs_outside: "
            "two-sided pairs (both entries bounded away from 0, the pairs the point estimate is "
            f"fitted to) that the interval least-squares potential misses by more than "
            f"{bounded_tol:g} (log units; max_outside: the largest miss, of that potential, "
            "not the least any must miss); control: the popularity-only kernel T(g<-f) = p(g) "
            "with the same support and bounds' widths, in detailed balance by construction.")
        return table

    def verdicts(self, *, bootstrap: int = 199, seed: int = 0,
                 progress: bool = False) -> dict[str, Verdict]:
        """:meth:`verdict` of every data set, by label."""
        from tqdm.auto import tqdm

        labels = list(self.balance_data())
        return {k: self.verdict(k, bootstrap=bootstrap, seed=seed)
                for k in tqdm(labels, desc="verdicts", disable=not progress)}


#: Data-set names of :meth:`Sources.available` -> roles of :data:`dbnb.datasets.LETTER_FILES`.
_ROLE_OF = {"words": "gpt5nano", "symbolic": "ideasearchfitter", "gemini": "gemini",
            "claude_file": "claude", "claude": "claude"}


def _table_differences(a: TransitionCounts, b: TransitionCounts) -> pd.DataFrame:
    """Every cell ``(from, to)`` where the dense tables of ``a`` (``file``) and ``b``
    (``Letter``) differ, over the union of their states and the escape column."""
    da, db = a.to_dense_frame(), b.to_dense_frame()
    rows = sorted(set(da.index) | set(db.index))
    cols = [s for s in rows if s != "escape"] + ["escape"]
    da = da.reindex(index=rows, columns=cols).fillna(0)
    db = db.reindex(index=rows, columns=cols).fillna(0)
    out = [(f, g, int(da.at[f, g]), int(db.at[f, g])) for f in rows for g in cols
           if da.at[f, g] != db.at[f, g]]
    return pd.DataFrame(out, columns=["from", "to", "file", "Letter"])


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


def _first_grammar(path: Path) -> str:
    """The grammar of the first record of a store that carries one ("" if none does)."""
    from .llm import JsonlStore

    for rec in JsonlStore(path, read_only=True):
        grammar = (rec.get("params") or {}).get("extra_body", {}).get("grammar", "")
        if grammar:
            return grammar
    return ""


def _vocab_size(path: Path) -> int:
    """The vocabulary size a constrained run used, read from its first record's grammar."""
    grammar = _first_grammar(path)
    if grammar:
        return grammar.count("|") + 1
    raise ValueError(f"{path}: no grammar in the records; not a constrained run")


def _grammar_literals(grammar: str) -> list[str] | None:
    """The strings of a ``root ::= ("a" | "b" | ...)`` grammar (GBNF escapes undone), or
    None when the grammar is not a list of literals."""
    body = grammar.strip()
    if not (body.startswith("root ::= (") and body.endswith(")")):
        return None
    lits = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
    return [re.sub(r"\\(.)", r"\1", x) for x in lits] or None


def shipped_sources() -> Sources:
    """The data shipped in ``data/`` (offline)."""
    return Sources("shipped")




# ---------------------------------------------------------------------------- dbnb check
CHECK_AGENTS = ("word", "symbolic")


def store_counts(path: str | Path, agent: str = "word") -> TransitionCounts:
    """Counts of a response store, parsed by the agent that made it.

    ``agent="word"``: constrained to the vocabulary of the store's grammar when its records
    carry one, else free replies. ``agent="symbolic"``: constrained to the grammar's candidate
    expressions (or the expression grammar) when there is one, else free replies; the prompts'
    MSEs are the ones the run recorded (data set mcycle).

    Raises
    ------
    ValueError
        The file holds no response record, or records the agent cannot parse, naming the file.
    """
    from .agents.run import counts_from_store
    from .agents.symbolic import SymbolicAgent, recorded_scores
    from .agents.word import WordAgent
    from .llm import JsonlStore

    path = Path(path)
    if agent not in CHECK_AGENTS:
        raise ValueError(f"agent must be one of {CHECK_AGENTS}, got {agent!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no such store file: {path}")
    store = JsonlStore(path, read_only=True)
    if len(store) == 0:
        bad = f" ({store.n_corrupt} lines that are not records)" if store.n_corrupt else ""
        raise ValueError(f"{path}: no response record in the file{bad}; is it a dbnb "
                         "response store?")
    grammar = _first_grammar(path)
    lits = _grammar_literals(grammar) if grammar else None
    try:
        if agent == "word":
            if grammar and lits is None:
                raise ValueError(f"{path}: the records' grammar is not a word list")
            a = WordAgent(lits, mode="constrained") if grammar else WordAgent(mode="free")
        else:
            scores = recorded_scores(store)
            if not grammar:
                a = SymbolicAgent(mode="free", scores=scores)
            elif lits is None:
                a = SymbolicAgent(mode="grammar", scores=scores)
            else:
                a = SymbolicAgent(mode="constrained", candidates=lits, scores=scores)
        return counts_from_store(path, agent=a)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        msg = str(exc)
        if isinstance(exc, ValueError) and str(path) in msg:
            raise
        raise ValueError(f"{path}: records the {agent} agent cannot read "
                         f"({type(exc).__name__}: {msg}); is --agent right?") from None


def check_data(path: str | Path, *, agent: str | None = None,
               max_log_gap: float | None = None):
    """What ``dbnb check PATH`` checks: ``(data, log_t)`` (:func:`check_inputs` without the
    bounds)."""
    inputs = check_inputs(path, agent=agent, max_log_gap=max_log_gap)
    return inputs["data"], inputs["log_t"]


def check_inputs(path: str | Path, *, agent: str | None = None,
                 max_log_gap: float | None = None) -> dict:
    """What ``dbnb check PATH`` checks, as keyword arguments of :func:`dbnb.verdict.check`:
    ``data``, ``log_t``, and for a kernel ``bounds`` and ``bounds_note``.

    ``PATH`` is a response store (``.jsonl``, ``.jsonl.gz``; :func:`store_counts` with
    ``agent``, default the word agent), a counts CSV (:func:`dbnb.datasets.read_counts_csv`),
    a Letter-format JSON (ideas list or word dictionary) or a log-probability kernel ``.npz``.
    For a kernel, ``data`` is its noise-free :class:`~dbnb.kernels.TransitionKernel` over the
    sources and ``log_t`` its ``log T(g <- f)`` computed in log space; with ``max_log_gap``,
    a pair is kept only when both its entries are bounded to that precision (censored by
    pair, both directions or neither). Its ``bounds`` are ``lower <= T(g <- f) <= upper``
    over every computed entry (never censored): ``lower`` the walk's probabilities (a lower
    bound when rare tokenisations were skipped), ``upper`` the stored per-entry upper bounds,
    or, when the file has none, ``lower`` plus the source's uncovered mass (the mass on no
    candidate, which is all the skipped mass could add). Otherwise ``data`` are counts and
    ``log_t`` is None.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    name = path.name.lower()
    if max_log_gap is not None and not name.endswith(".npz"):
        raise ValueError("--max-log-gap applies to log-probability kernels (.npz) only")
    if agent is not None and not name.endswith((".jsonl", ".jsonl.gz")):
        raise ValueError("--agent applies to response stores (.jsonl, .jsonl.gz) only")
    if name.endswith(".npz"):
        return _kernel_inputs(path, max_log_gap)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return {"data": store_counts(path, agent or "word"), "log_t": None}
    if name.endswith(".csv"):
        return {"data": datasets.read_counts_csv(path), "log_t": None}
    if name.endswith(".json"):
        head = datasets._load_json(path)
        reader = datasets.read_word_dict_json if isinstance(head, dict) else \
            datasets.read_ideas_json
        return {"data": reader(path), "log_t": None}
    raise ValueError(f"{path}: cannot tell what this is from its name; expected a store "
                     "(.jsonl, .jsonl.gz), counts (.csv), Letter JSON (.json) or a "
                     "log-probability kernel (.npz)")


def _kernel_inputs(path: Path, max_log_gap: float | None) -> dict:
    from .kernels import TransitionKernel
    from .llm.logprob import load_logprob_kernel
    from .synthetic import true_kernel

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a .npz archive (not a zip file)")
    try:
        ek = load_logprob_kernel(path)
    except (KeyError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable log-probability kernel ({exc})") from None
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if str(path) in msg else f"{path}: {msg}") from None
    idx = [ek.states.index(s) for s in ek.sources]
    log_t = np.array(ek.logprob[idx, :], dtype=float)
    np.fill_diagonal(log_t, -np.inf)
    lower = np.array(ek.prob[idx, :], dtype=float)
    if ek.upper is not None:
        upper = np.array(ek.upper[idx, :], dtype=float)
        bounds_note = "lower: the walk's probabilities; upper: its stored per-entry bounds"
    else:
        upper = lower + np.clip(ek.uncovered, 0.0, None)[None, :]
        bounds_note = ("lower: the walk's probabilities; upper: lower plus the source's "
                       "uncovered mass (no per-entry bounds stored)")
    gap_note = ""
    if max_log_gap is not None:
        if not max_log_gap >= 0:
            raise ValueError(f"--max-log-gap must be >= 0, got {max_log_gap!r}")
        if ek.upper is None:
            raise ValueError(f"{path}: this kernel has no upper bounds, so --max-log-gap "
                             "cannot tell which entries are bounded")
        bad = ek.log_gap()[idx, :] > max_log_gap
        bad |= bad.T  # by pair: both directions or neither
        log_t[bad] = -np.inf
        gap_note = f"; pairs whose entries are bounded to {max_log_gap:g} in log"
    both = np.isfinite(log_t) & np.isfinite(log_t.T)
    t = np.where(np.isfinite(log_t), np.exp(log_t), 0.0)
    mp = float(ek.info.get("min_prob") or 0.0)
    bounds = (f"entries are lower bounds: min_prob {mp:g}, uncovered mass <= "
              f"{float(ek.uncovered.max()):.1e}" if mp > 0 else
              f"uncovered mass <= {float(ek.uncovered.max()):.1e}")
    label = (f"{path.name}: log-probability kernel over {len(ek.sources)} prompts ({bounds}"
             f"{gap_note}; {int(both.sum() // 2)} pairs with both entries)")
    tk = true_kernel(t, ek.sources, source=label)
    tk = TransitionKernel(counts=tk.counts, matrix=tk.matrix, n0=tk.n0, method="exact-logprob")
    return {"data": tk, "log_t": log_t, "bounds": (lower, upper), "bounds_note": bounds_note}
