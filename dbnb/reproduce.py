"""``dbnb reproduce``: every figure and table the shipped data allow, written to a folder.

The pipeline is a list of :class:`Item`; each item draws one figure (saved as PNG and PDF) or
builds one table (saved as CSV and Markdown) from result objects. Data come from
:func:`shipped_sources` (Table II and the local-model runs in ``data/runs/``). Items whose data
are not shipped are reported as skipped, with the reason, never faked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets, diagnostics
from .counts import TransitionCounts
from .potential import PotentialFit, fit_potential

__all__ = ["Item", "Sources", "shipped_sources", "items", "reproduce", "markdown_table"]

WORD_RUN = "runs/word_constrained_fixed.jsonl.gz"
FREE_RUN = "runs/word_free_letter.jsonl.gz"
SYM_RUN = "runs/symbolic_constrained_fixed.jsonl.gz"
SYM_FREE_RUN = "runs/symbolic_free_letter.jsonl.gz"
RR30_RUN = "runs/word_constrained_rr30.jsonl.gz"
EXACT30 = "runs/word_logprob30.npz"
EXACT100 = "runs/word_logprob100.npz"
SYM_EXACT = "runs/symbolic_logprob.npz"
SYM_MAX_LOG_GAP = 0.1  # exact symbolic entries used: rigorous bounds agree to this in log
SYM_MAX_LAST_STEP = 0.1  # (reported) entries whose last decade of the cut-off added <= this
LOCAL_MODEL = "SmolLM2-135M-Instruct (Q4_1, local)"


@dataclass(frozen=True)
class Item:
    """One output: ``make()`` returns a matplotlib Figure or a pandas DataFrame."""

    name: str
    title: str
    make: Callable[[], object]


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
        """Whether the word-agent (``"words"``) or free-run (``"free"``) data exist."""
        if self.source == "shipped":
            if what == "exact":
                return all((self.data / r).is_file() for r in (RR30_RUN, EXACT30))
            if what == "exact100":
                return (self.data / EXACT100).is_file()
            if what == "symbolic_exact":
                return all((self.data / r).is_file() for r in (SYM_RUN, SYM_EXACT))
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
    def exact_pair(self):
        """(sampled kernel, exact kernel) of the 30-word check: 3,000 round-robin calls and the
        exact token-probability kernel over the same words (shipped source only)."""
        from .agents.run import counts_from_store
        from .agents.word import WordAgent, vocabulary
        from .kernels import estimate_kernel
        from .llm.logprob import load_logprob_kernel

        ek = load_logprob_kernel(self.data / EXACT30)
        agent = WordAgent(vocabulary(len(ek.states)), mode="constrained")
        counts = counts_from_store(self.data / RR30_RUN, agent=agent)
        counts = counts._replace(source=f"{LOCAL_MODEL}, {len(ek.states)} words, round robin")
        return estimate_kernel(counts, "exact"), ek.to_transition_kernel()

    @cached_property
    def exact100_fit(self) -> PotentialFit:
        """Least-action fit to the exact kernel over the 100 most frequent words: no sampling
        noise, so the pair check tests detailed balance of the model itself."""
        from .llm.logprob import load_logprob_kernel

        ek = load_logprob_kernel(self.data / EXACT100)
        return _fit_exact(ek, f"{LOCAL_MODEL}, exact kernel over {len(ek.states)} words")

    @cached_property
    def symbolic_exact(self):
        """The exact kernel of the constrained symbolic agent over its 121 expressions."""
        from .llm.logprob import load_logprob_kernel

        return load_logprob_kernel(self.data / SYM_EXACT)

    @cached_property
    def symbolic_exact_fit(self) -> PotentialFit:
        ek = self.symbolic_exact
        return _fit_exact(ek, f"{LOCAL_MODEL}, exact kernel over {len(ek.states)} expressions, "
                              "mcycle", max_log_gap=SYM_MAX_LOG_GAP)

    @cached_property
    def symbolic_exact_graph(self) -> diagnostics.ScoreGraph:
        """Fig. 5 from the exact kernel: every expression (all have the same calls)."""
        return diagnostics.potential_vs_score(self.symbolic_exact_fit,
                                              self.symbolic.metadata["mse"],
                                              n_states=len(self.symbolic_exact.sources))

    @cached_property
    def symbolic_exact_pair(self):
        """(sampled kernel of the 7,260-call run, exact kernel) over the same expressions."""
        from .kernels import estimate_kernel

        return (estimate_kernel(self.symbolic, "exact"),
                self.symbolic_exact.to_transition_kernel(max_log_gap=SYM_MAX_LOG_GAP))

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


def _fit_exact(ek, label: str, max_log_gap: float | None = None) -> PotentialFit:
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
                                          method=tk.method))


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


def items(src: Sources) -> tuple[list[Item], list[tuple[str, str]]]:
    """The outputs the sources allow, and ``(name, reason)`` for those they do not."""
    from . import plots

    out: list[Item] = [
        Item("fig01_schematic", "Fig. 1: schematic of detailed balance", plots.fig01_schematic),
        Item(
            "fig02_claude_transitions",
            "Fig. 2: Claude-4 transition diagram (Table II)",
            lambda: plots.fig02_transition_diagram(src.claude_fit),
        ),
        Item("table2_claude_counts", "Table II: Claude-4 counts",
             lambda: plots.table2_counts(src.claude)),
        Item("fig12_majority_vote", "Fig. 12: majority vote, M = 10, n = 5, 7, 9",
             lambda: plots.fig12_majority_vote(
                 diagnostics.majority_vote_curves(m=10, ns=(5, 7, 9)))),
    ]
    skipped: list[tuple[str, str]] = []
    if src.available("words"):
        w = LOCAL_MODEL + ", constrained words"
        out += [
            Item("fig03_words_triplets", f"Fig. 3: closed triplets ({w})",
                 lambda: plots.fig_triplets(diagnostics.triplets(src.words_fit))),
            Item("fig07_words_pairs", f"Fig. 7: pairs ({w})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.words_fit))),
            Item("fig09_words_pairs_softplus", f"Fig. 9: pairs, softplus K ({w})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.words_fit_softplus))),
            Item("fig10_words_one_way", f"Fig. 10: one-way pairs vs Eq. 25 ({w})",
                 lambda: plots.fig10_one_way(diagnostics.one_way_pairs(src.words_fit))),
            Item("fig11_words_potential_histogram", f"Fig. 11: potential histogram ({w})",
                 lambda: plots.fig11_potential_histogram(
                     diagnostics.potential_distribution(src.words_fit))),
            Item("fig06_words_transitions", f"Fig. 6 analogue: transition diagram, 6 most-visited "
             f"states ({w})",
             lambda: plots.fig02_transition_diagram(fit_potential(src.words_top(6)),
                                                    min_T=0.03)),
            ]
    else:
        skipped.append(("figs 3, 7, 9, 10, 11; table IV", f"no word-agent data in {src.source!r}"))
    stats = {"Claude-4 (Table II)": src.claude}
    if src.available("words"):
        stats["words, constrained (local)"] = src.words
    if src.available("free"):
        stats["words, free, Letter schedule (local)"] = src.words_free
    if src.available("symbolic"):
        stats["symbolic, constrained (local)"] = src.symbolic
    if src.available("symbolic_free"):
        stats["symbolic, free, Letter schedule (local)"] = src.symbolic_free
    if src.available("words") or src.available("symbolic"):
        def table4():
            dists = {}
            if src.available("words"):
                dists["words"] = diagnostics.potential_distribution(src.words_fit)
            if src.available("symbolic"):
                dists["symbolic"] = diagnostics.potential_distribution(src.symbolic_fit)
            return plots.table4_action_scale(dists)

        out.append(Item("table4_action_scale", "Table IV: action as a scale", table4))
    out.append(Item("table3_statistics", "Table III: database statistics",
                    lambda: plots.table3_statistics(stats)))
    if src.available("exact"):
        out += [
            Item("figE1_exact_vs_sampled", "Beyond the Letter: sampled vs exact pair log-ratios "
                 "(30 words)",
                 lambda: plots.fig_exact_comparison(
                     diagnostics.compare_to_exact(*src.exact_pair))),
            Item("tableE1_exact_vs_sampled", "Beyond the Letter: sampled vs exact kernel "
                 "(30 words)", lambda: _exact_table(src)),
        ]
    if src.available("exact100"):
        out.append(Item(
            "figE2_exact100_pairs", "Beyond the Letter: pairs of the exact kernel (100 words)",
            lambda: plots.fig_pairs(diagnostics.pairs(src.exact100_fit), fraction=0.1,
                                    errors=False)))
    if src.available("symbolic"):
        s = "symbolic agent"
        out += [
            Item("fig04_symbolic_pairs", f"Fig. 4: pairs ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_fit), fraction=0.1)),
            Item("fig05_symbolic_potential_vs_mse", f"Fig. 5: potential vs MSE ({s})",
                 lambda: plots.fig_potential_vs_score(diagnostics.potential_vs_score(
                     src.symbolic_fit, src.symbolic.metadata["mse"]))),
            Item("fig08_symbolic_triplets", f"Fig. 8: closed triplets ({s})",
                 lambda: plots.fig_triplets(diagnostics.triplets(src.symbolic_fit),
                                            fraction=0.2)),
            Item("fig09_symbolic_pairs_softplus", f"Fig. 9: pairs, softplus K ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_fit_softplus),
                                         fraction=0.1)),
            Item("fig10_symbolic_one_way", f"Fig. 10: one-way pairs vs Eq. 25 ({s})",
                 lambda: plots.fig10_one_way(diagnostics.one_way_pairs(src.symbolic_fit))),
            Item("fig11_symbolic_potential_histogram", f"Fig. 11: potential histogram ({s})",
                 lambda: plots.fig11_potential_histogram(
                     diagnostics.potential_distribution(src.symbolic_fit))),
            Item("table1_symbolic_examples", f"Table I: example states ({s})",
                 lambda: plots.table1_examples(src.symbolic_fit, 5, counts=src.symbolic)),
            Item("table5_feature_potential", f"Table V analogue: explicit potential ({s})",
                 lambda: _feature_table(src)),
        ]
    else:
        skipped.append(("figs 4, 5, 8; tables I, V", f"no symbolic-agent data in {src.source!r}"))
    if src.available("symbolic_exact"):
        s = f"symbolic agent, exact kernel over {len(src.symbolic_exact.states)} expressions"
        out += [
            Item("figE3_symbolic_exact_pairs", f"Beyond the Letter: pairs ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_exact_fit),
                                         fraction=1.0, errors=False)),
            Item("figE4_symbolic_exact_potential_vs_mse",
                 f"Beyond the Letter: Fig. 5, potential vs MSE ({s})",
                 lambda: plots.fig_potential_vs_score(src.symbolic_exact_graph)),
            Item("figE6_symbolic_exact_triplets", f"Beyond the Letter: Fig. 8, closed triplets "
                 f"({s})",
                 lambda: plots.fig_triplets(diagnostics.triplets(src.symbolic_exact_fit),
                                            fraction=1.0, errors=False)),
            Item("figE5_symbolic_exact_vs_sampled",
                 "Beyond the Letter: sampled vs exact pair log-ratios (symbolic agent)",
                 lambda: plots.fig_exact_comparison(
                     diagnostics.compare_to_exact(*src.symbolic_exact_pair))),
            Item("table5_feature_potential_exact",
                 f"Table V analogue: explicit potential ({s})",
                 lambda: _feature_table(src, exact=True)),
            Item("table1_symbolic_exact_examples", f"Table I: example states ({s})",
                 lambda: plots.table1_examples(src.symbolic_exact_fit, 5, counts=src.symbolic)
                 .drop(columns="N0")),
        ]
    skipped.append(("fig 6 (Gemini)", "Gemini-2.5-flash counts are not published; drawn "
                    "from the local model's most-visited states instead"))
    return out, skipped


def _exact_table(src: Sources) -> pd.DataFrame:
    """Coverage of the pair error bars, by smaller count, and the per-transition chi^2."""
    cmp = diagnostics.compare_to_exact(*src.exact_pair)
    table = cmp.by_min_count()
    table.loc["all"] = [cmp.n_pairs, cmp.within_1sigma, cmp.within_2sigma,
                        float(np.mean(cmp.z)) if cmp.n_pairs else float("nan")]
    tc = diagnostics.transition_check(*src.exact_pair)
    table.attrs["note"] = (
        f"per-transition check (expected count >= 5): {int(tc['transitions'])} transitions, "
        f"chi2/dof = {tc['chi2_per_dof']:.2f}, p = {tc['p_value']:.2f}"
    )
    return table


def _feature_table(src: Sources, exact: bool = False) -> pd.DataFrame:
    """Table V analogue: weights of the explicit feature potential, and the actions."""
    from .agents.symbolic import feature_potential

    fit = src.symbolic_exact_fit if exact else src.symbolic_fit
    # exact kernel: the bounded entries leave most expressions upstream of the main component,
    # whose one-way edges would push the weights to the ridge scale; fit the main component
    fp = feature_potential(fit, variable=src.symbolic_variable, main_only=exact)
    table = fp.table().copy()
    table.attrs["note"] = (
        f"action: feature potential {fp.action:.4f}, free least action {fp.action_free:.4f}, "
        f"flat potential {fp.action_flat:.4f}"
        + (f"; exact kernel, the {fp.n_states} expressions of the main component: the standard "
           "errors are those of 10^9 calls per expression, i.e. no sampling noise; what "
           "remains is the features' misfit" if exact else "")
    )
    return table


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    frame = df.reset_index() if df.index.name or not isinstance(df.index, pd.RangeIndex) else df

    def cell(x) -> str:
        if isinstance(x, float | np.floating):
            if float(x).is_integer() and abs(x) < 1e15:  # counts stored as floats
                return str(int(x))
            return format(float(x), floatfmt)
        return str(x)

    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *rows]) + "\n"


def _save(obj, out: Path, name: str, formats: Sequence[str]) -> list[Path]:
    written = []
    if isinstance(obj, pd.DataFrame):
        p = out / f"{name}.csv"
        obj.to_csv(p)
        written.append(p)
        p = out / f"{name}.md"
        note = obj.attrs.get("note")
        p.write_text(markdown_table(obj) + (f"\n{note}\n" if note else ""))
        written.append(p)
        return written
    import matplotlib.pyplot as plt

    for fmt in formats:
        p = out / f"{name}.{fmt}"
        obj.savefig(p, dpi=200 if fmt == "png" else None, bbox_inches="tight")
        written.append(p)
    plt.close(obj)
    return written


def _headlines(src: Sources) -> list[str]:
    lines = []
    v = src.claude_fit.potential
    lines.append(
        "Claude-4 (Eq. 22): beta V = "
        + ", ".join(f"{s} {v[s]:.2f}" for s in v.sort_values().index)
        + f"; action {src.claude_fit.action:.4f}"
    )
    if src.available("words"):
        fit = src.words_fit
        pc = diagnostics.pairs(fit)
        tc = diagnostics.triplets(fit)
        dist = diagnostics.potential_distribution(fit)
        st = src.words.statistics()
        lines.append(
            f"local words: {int(st['samples'])} transitions, {int(st['states'])} states; "
            f"{pc.n_pairs} pairs, {pc.within_1sigma:.0%} within 1 sigma, "
            f"{pc.within_2sigma:.0%} within 2 sigma; {tc.n_triplets} triplets; "
            f"sigma(beta V) = {dist.sigma:.2f}, action {fit.action:.3f} vs expected "
            f"{dist.expected_action:.3f}"
        )
    if src.available("exact"):
        cmp = diagnostics.compare_to_exact(*src.exact_pair)
        tc = diagnostics.transition_check(*src.exact_pair)
        lines.append(
            f"exact vs sampled (30 words, 3,000 calls): pair bars cover the exact log-ratio for "
            f"{cmp.within_1sigma:.0%} (1 sigma) / {cmp.within_2sigma:.0%} (2 sigma) of "
            f"{cmp.n_pairs} pairs; transitions chi2/dof = {tc['chi2_per_dof']:.2f} "
            f"(p = {tc['p_value']:.2f})"
        )
    if src.available("exact100"):
        pc = diagnostics.pairs(src.exact100_fit)
        r2 = pc.r_squared
        lines.append(
            f"exact kernel, 100 words (no sampling noise): {pc.n_pairs} pairs, the fitted "
            f"potential explains R^2 = {r2:.3f} of the log-ratios; action "
            f"{src.exact100_fit.action:.3f}"
        )
    if src.available("symbolic"):
        fit = src.symbolic_fit
        pc = diagnostics.pairs(fit)
        graph = diagnostics.potential_vs_score(fit, src.symbolic.metadata["mse"])
        shares = graph.shares()
        st = src.symbolic.statistics()
        lines.append(
            f"symbolic agent: {int(st['samples'])} transitions, {int(st['states'])} states, "
            f"{int((fit.status == 'main').sum())} in the main component; {pc.n_pairs} pairs; "
            f"Fig. 5 transitions down/up/flat {shares['down']:.0%}/{shares['up']:.0%}/"
            f"{shares['flat']:.0%} (Letter 70/26/5 %); action {fit.action:.3f}"
        )
    if src.available("symbolic_free"):
        reasons = src.symbolic_free_reasons()
        st = src.symbolic_free.statistics()
        top = ", ".join(f"{k} {v}" for k, v in reasons.drop("valid state", errors="ignore")
                        .head(3).items())
        lines.append(
            f"symbolic agent, free replies, Letter schedule: {int(reasons.sum())} calls, "
            f"{int(reasons.get('valid state', 0))} valid expressions, {int(st['states'])} "
            f"states, {int(st['samples'])} transitions; escapes: {top}"
        )
    if src.available("symbolic_exact"):
        ek = src.symbolic_exact
        fit = src.symbolic_exact_fit
        pc = diagnostics.pairs(fit)
        shares = src.symbolic_exact_graph.shares()
        cmp = diagnostics.compare_to_exact(*src.symbolic_exact_pair)
        off = ~np.eye(len(ek.states), len(ek.sources), dtype=bool)
        bounded = float(np.mean(ek.log_gap()[off] <= SYM_MAX_LOG_GAP))
        converged = (float(np.mean(ek.last_step()[off] <= SYM_MAX_LAST_STEP))
                     if ek.ladder is not None else float("nan"))
        lines.append(
            f"symbolic exact kernel ({len(ek.states)} expressions, uncovered mass mean "
            f"{float(ek.uncovered.mean()):.1%}, max {float(ek.uncovered.max()):.1%}; "
            f"transitions bounded to {SYM_MAX_LOG_GAP:g} in log (used): {bounded:.0%}, last "
            f"decade of the cut-off added <= {SYM_MAX_LAST_STEP:g}: {converged:.0%}): "
            f"{pc.n_pairs} pairs, R^2 = {pc.r_squared:.3f}, action {fit.action:.3f}; Fig. 5 "
            f"down/up/flat {shares['down']:.0%}/{shares['up']:.0%}/{shares['flat']:.0%}; "
            f"sampled pair bars cover {cmp.within_1sigma:.0%}/{cmp.within_2sigma:.0%} "
            f"(1/2 sigma) of {cmp.n_pairs} pairs"
        )
    return lines


def reproduce(
    out: Path | str = "figures",
    *,
    source: str = "shipped",
    formats: Sequence[str] = ("png", "pdf"),
    progress: bool = True,
) -> list[Path]:
    """Write every available figure and table into ``out``; print what and where.

    Returns the written paths.
    """
    from tqdm.auto import tqdm

    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        raise ValueError(f"unknown figure format(s) {bad}; use png, pdf or svg")
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = Sources(source)
    todo, skipped = items(src)
    written: list[Path] = []
    t0 = time.perf_counter()
    rows = []
    for item in tqdm(todo, desc="dbnb reproduce", unit="item", disable=not progress):
        t = time.perf_counter()
        paths = _save(item.make(), out, item.name, formats)
        written += paths
        rows.append((item.name, item.title, time.perf_counter() - t))
    print(f"\nwrote {len(written)} files for {len(todo)} items to {out.resolve()}/")
    for name, title, dt in rows:
        print(f"  {name:<34s} {title}  ({dt:.1f} s)")
    for name, reason in skipped:
        print(f"  skipped {name}: {reason}")
    print("\nheadline numbers:")
    for line in _headlines(src):
        print("  " + line)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return written
