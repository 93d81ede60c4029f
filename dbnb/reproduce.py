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
from pathlib import Path

import numpy as np
import pandas as pd

from . import diagnostics
from .comparison import comparison_table
from .potential import fit_potential
from .sources import (  # noqa: F401 (re-exported)
    COMPARISON_GROUPS,
    COMPARISON_KERNELS,
    LOCAL_MODEL,
    SYM_MAX_LAST_STEP,
    SYM_MAX_LOG_GAP,
    Sources,
    shipped_sources,
)
from .verdict import format_p

__all__ = ["Item", "Report", "Sources", "shipped_sources", "items", "reproduce", "markdown_table"]


@dataclass(frozen=True)
class Item:
    """One output: ``make()`` returns a matplotlib Figure or a pandas DataFrame.

    ``source`` names the data file it is drawn from ("" for drawn or analytic items); the
    printed list shows it. To add an item, append ``Item(name, title, make, source)`` in
    :func:`items`.
    """

    name: str
    title: str
    make: Callable[[], object]
    source: str = ""


@dataclass(frozen=True)
class Report:
    """What :func:`reproduce` did: the files written, the items that failed with their
    reason, and the items skipped for want of data (not failures)."""

    written: list[Path]
    failed: list[tuple[str, str]]
    skipped: list[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return not self.failed


def items(src: Sources) -> tuple[list[Item], list[tuple[str, str]]]:
    """The outputs the sources allow, and ``(name, reason)`` for those they do not."""
    from . import plots

    cf = src.file_of("claude")
    cc = src.caption("claude")
    out: list[Item] = [
        Item("fig01_schematic", "Fig. 1: schematic of detailed balance", plots.fig01_schematic),
        Item(
            "fig02_claude_transitions",
            f"Fig. 2: Claude-4 transition diagram ({cc})",
            lambda: plots.fig02_transition_diagram(
                src.claude_fit, caption=f"Claude-4, {cc}"), cf,
        ),
        Item("table2_claude_counts", "Table II: Claude-4 counts", lambda: _table2(src), cf),
        Item("fig12_majority_vote", "Fig. 12: majority vote, M = 10, n = 5, 7, 9",
             lambda: plots.fig12_majority_vote(
                 diagnostics.majority_vote_curves(m=10, ns=(5, 7, 9)))),
    ]
    skipped: list[tuple[str, str]] = []
    if src.available("gemini"):
        gc = src.caption("gemini")
        out.append(Item("fig06_gemini_transitions",
                        f"Fig. 6: Gemini-2.5-flash transition diagram ({gc})",
                        lambda: plots.fig02_transition_diagram(
                            src.gemini_fit, caption=f"Gemini-2.5-flash, {gc}"),
                        src.file_of("gemini")))
    if src.available("words"):
        w = _words_label(src)
        wf = src.file_of("words")
        frac = 0.2  # the Letter shows 1/5 of the word pairs and triplets (seed 42)
        out += [
            Item("fig03_words_triplets", f"Fig. 3: closed triplets ({w})",
                 lambda: plots.fig_triplets(diagnostics.triplets(src.words_fit),
                                            fraction=frac), wf),
            Item("fig07_words_pairs", f"Fig. 7: pairs ({w})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.words_fit), fraction=frac), wf),
            Item("fig09_words_pairs_softplus", f"Fig. 9: pairs, softplus K ({w})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.words_fit_softplus),
                                         fraction=frac), wf),
            Item("fig10_words_one_way", f"Fig. 10: one-way pairs vs Eq. 25 ({w})",
                 lambda: plots.fig10_one_way(diagnostics.one_way_pairs(src.words_fit)), wf),
            Item("fig11_words_potential_histogram", f"Fig. 11: potential histogram ({w})",
                 lambda: plots.fig11_potential_histogram(
                     diagnostics.potential_distribution(src.words_fit)), wf),
        ]
        if not src.available("gemini"):
            out.append(Item(
                "fig06_words_transitions",
                f"Fig. 6 analogue: transition diagram, 6 most-visited states ({w})",
                lambda: plots.fig02_transition_diagram(
                    fit_potential(src.words_top(6), min_calls=0), min_T=0.03), wf))
    else:
        skipped.append(("figs 3, 7, 9, 10, 11; table IV", f"no word-agent data in {src.source!r}"))
    # data sets of Table III, loaded when the item is made (a bad file fails that item only)
    stats: dict[str, Callable[[], object]] = {f"Claude-4 ({cf})": lambda: src.claude}
    for what, label in (("gemini", "Gemini-2.5-flash"), ("words", "words"),
                        ("free", "words, free, Letter schedule"), ("symbolic", "symbolic"),
                        ("symbolic_free", "symbolic, free, Letter schedule")):
        if src.available(what):
            stats[f"{label} ({src.file_of(what)})"] = (lambda w=what: getattr(src, _ATTR[w]))
    if src.available("words") or src.available("symbolic"):
        def table4():
            dists = {}
            if src.available("words"):
                dists["words"] = diagnostics.potential_distribution(src.words_fit)
            if src.available("symbolic"):
                dists["symbolic"] = diagnostics.potential_distribution(src.symbolic_fit)
            if src.kind == "letter":
                dists = {f"{k} ({src.file_of(k)})": v for k, v in dists.items()}
            table = plots.table4_action_scale(dists)
            return _with_letter_rows(table, "table4") if src.kind == "letter" else table

        out.append(Item("table4_action_scale", "Table IV: action as a scale", table4,
                        _files(src, "words", "symbolic")))
    out.append(Item("table3_statistics", "Table III: database statistics, ours and the "
                    "Letter's", lambda: _table3(stats),
                    _files(src, "claude", "gemini", "words", "symbolic")))
    if src.available("logprob30"):
        out += [
            Item("figE1_exact_vs_sampled", "Beyond the Letter: sampled vs exact pair log-ratios "
                 "(30 words)",
                 lambda: plots.fig_exact_comparison(
                     diagnostics.compare_to_exact(*src.logprob30_pair))),
            Item("tableE1_exact_vs_sampled", "Beyond the Letter: sampled vs exact kernel "
                 "(30 words)", lambda: _exact_table(src)),
        ]
    if src.available("logprob100"):
        out.append(Item(
            "figE2_exact100_pairs", "Beyond the Letter: pairs of the exact kernel (100 words)",
            lambda: plots.fig_pairs(diagnostics.pairs(src.logprob100_fit), fraction=0.1,
                                    errors=False)))
    groups = [g for g in COMPARISON_GROUPS if src.available(g)]
    for k, group in enumerate(groups):
        ref, others = COMPARISON_GROUPS[group]
        files = ", ".join(f"data/{COMPARISON_KERNELS[x]}" for x in (ref, *others))
        if len(others) == 1:
            out.append(Item(
                f"figE{8 + k}_{group}_potentials", f"Beyond the Letter: one potential for "
                f"many {group}? {ref} vs {others[0]}, exact kernels",
                lambda g=group: plots.fig_potential_comparison(src.comparisons[g][0]), files))
        else:
            out.append(Item(
                f"figE{8 + k}_{group}_summary", f"Beyond the Letter: one potential for many "
                f"{group}? {ref} vs {', '.join(others)}, exact kernels",
                lambda g=group: plots.fig_comparison_summary(src.comparisons[g]), files))
    if groups:
        out.append(Item(
            "tableE3_comparisons", "Beyond the Letter: V of one exact kernel against another "
            "(models, prompts, temperatures), with intervals and the popularity-only control",
            lambda: comparison_table([c for g in groups for c in src.comparisons[g]])))
    missing = [g for g in COMPARISON_GROUPS if g not in groups]
    if missing and src.kind == "shipped":
        skipped.append((f"comparison of {', '.join(missing)}",
                        "their exact kernels are not in data/runs (made with `dbnb kernel "
                        "word`, see the README's list of shipped files)"))
    if src.available("symbolic"):
        s = _symbolic_label(src)
        sf = src.file_of("symbolic")
        out += [
            Item("fig04_symbolic_pairs", f"Fig. 4: pairs ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_fit), fraction=0.1), sf),
            Item("fig05_symbolic_potential_vs_mse", f"Fig. 5: potential vs MSE ({s})",
                 lambda: plots.fig_potential_vs_score(diagnostics.potential_vs_score(
                     src.symbolic_fit, src.symbolic.metadata["mse"])), sf),
            Item("fig08_symbolic_triplets", f"Fig. 8: closed triplets ({s})",
                 lambda: plots.fig_triplets(diagnostics.triplets(
                     src.symbolic_fit, min_count=2 if src.kind == "letter" else 1),
                     fraction=0.2), sf),  # the Letter: each transition seen at least twice
            Item("fig09_symbolic_pairs_softplus", f"Fig. 9: pairs, softplus K ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_fit_softplus),
                                         fraction=0.1), sf),
            Item("fig10_symbolic_one_way", f"Fig. 10: one-way pairs vs Eq. 25 ({s})",
                 lambda: plots.fig10_one_way(diagnostics.one_way_pairs(src.symbolic_fit)), sf),
            Item("fig11_symbolic_potential_histogram", f"Fig. 11: potential histogram ({s})",
                 lambda: plots.fig11_potential_histogram(
                     diagnostics.potential_distribution(src.symbolic_fit)), sf),
            Item("table1_symbolic_examples", f"Table I: example states ({s})",
                 lambda: plots.table1_examples(src.symbolic_fit, 5, counts=src.symbolic), sf),
            Item("table5_feature_potential", f"Table V analogue: explicit potential ({s})",
                 lambda: _feature_table(src), sf),
        ]
    else:
        skipped.append(("figs 4, 5, 8; tables I, V", f"no symbolic-agent data in {src.source!r}"))
    if src.available("symbolic_logprob"):
        s = f"symbolic agent, exact kernel over {len(src.symbolic_logprob.states)} expressions"
        out += [
            Item("figE3_symbolic_logprob_pairs", f"Beyond the Letter: pairs ({s})",
                 lambda: plots.fig_pairs(diagnostics.pairs(src.symbolic_logprob_fit),
                                         fraction=1.0, errors=False)),
            Item("figE4_symbolic_exact_potential_vs_mse",
                 f"Beyond the Letter: Fig. 5, potential vs MSE ({s})",
                 lambda: plots.fig_potential_vs_score(src.symbolic_logprob_graph)),
            Item("figE6_symbolic_exact_triplets", f"Beyond the Letter: Fig. 8, closed triplets "
                 f"({s})",
                 lambda: plots.fig_triplets(diagnostics.triplets(src.symbolic_logprob_fit),
                                            fraction=1.0, errors=False)),
            Item("figE5_symbolic_exact_vs_sampled",
                 "Beyond the Letter: sampled vs exact pair log-ratios (symbolic agent)",
                 lambda: plots.fig_exact_comparison(
                     diagnostics.compare_to_exact(*src.symbolic_logprob_pair))),
            Item("table5_feature_potential_exact",
                 f"Table V analogue: explicit potential ({s})",
                 lambda: _feature_table(src, exact=True)),
            Item("table1_symbolic_exact_examples", f"Table I: example states ({s})",
                 lambda: plots.table1_examples(src.symbolic_logprob_fit, 5, counts=src.symbolic)
                 .drop(columns="N0")),
        ]
    out += [
        Item("tableE_balance_tests", "Beyond the Letter: is it detailed balance? Model "
             "hierarchy, Hodge split and held-out check of every data set",
             lambda: _balance_table(src)),
        Item("figE7_hodge_fractions", "Beyond the Letter: gradient / curl / harmonic shares of "
             "the log-ratio flow, every data set",
             lambda: plots.fig_hodge_fractions(src.verdicts(bootstrap=BALANCE_BOOTSTRAP))),
    ]
    if src.exact_kernel_files():  # the certified verdict of each exact kernel's bounds
        out.append(Item(
            "tableE4_bounded_verdicts", "Beyond the Letter: certified detailed-balance verdict "
            "of every exact kernel from its per-entry bounds, beside the popularity-only "
            "control", lambda: src.bounded_table(BOUNDED_TOL),
            ", ".join(f"data/{p.relative_to(src.data)}"
                      for p in src.exact_kernel_files().values())))
    if not src.available("gemini"):
        skipped.append(("fig 6 (Gemini)", "no Gemini-2.5-flash file in this source "
                        "(word_database_gemini-2.5-flash-nothinking.json); drawn from the word "
                        "agent's most-visited states instead"))
    if src.kind == "letter" and src.letter_files.unknown:
        skipped.append(("unknown files", "not the Letter's, not read: "
                        + ", ".join(src.letter_files.unknown)))
    return out, skipped


#: The :class:`Sources` attribute of each data set of Table III.
_ATTR = {"gemini": "gemini", "words": "words", "free": "words_free", "symbolic": "symbolic",
         "symbolic_free": "symbolic_free"}


def _files(src: Sources, *what: str) -> str:
    """The files of the data sets ``what`` that the source has, comma-separated."""
    names = [src.file_of(w) for w in what if w == "claude" or src.available(w)]
    return ", ".join(n for n in names if n)


def _words_label(src: Sources) -> str:
    if src.kind == "letter":
        return f"GPT-5 Nano words, {src.caption('words')}"
    return LOCAL_MODEL + ", constrained words"


def _symbolic_label(src: Sources) -> str:
    if src.kind == "letter":
        return f"IdeaSearchFitter, {src.caption('symbolic')}"
    return "symbolic agent"


def _table2(src: Sources) -> pd.DataFrame:
    """Table II from the source's Claude counts; with the authors' file, its differences
    from the Letter's Table II in the note."""
    from . import plots

    table = plots.table2_counts(src.claude)
    if src.available("claude_file"):
        diff = src.claude_table2_differences()
        table.attrs["note"] = (
            f"counts of {src.file_of('claude')}; "
            + ("identical to the Letter's Table II" if diff.empty else
               "differences from the Letter's Table II (file vs Letter): "
               + "; ".join(f"{r['from']} -> {r['to']}: {r['file']} vs {r['Letter']}"
                           for _, r in diff.iterrows())))
    return table


def _with_letter_rows(table: pd.DataFrame, which: str) -> pd.DataFrame:
    """``table`` with the Letter's published rows (:func:`dbnb.letter.table3` or
    :func:`~dbnb.letter.table4`) below it, in the columns they share (others NaN)."""
    from . import letter

    theirs = getattr(letter, which)()
    theirs.index.name = table.index.name
    return pd.concat([table, theirs.astype(float)])


def _table3(stats: dict) -> pd.DataFrame:
    """Table III: our statistics of each data set, then the Letter's published rows."""
    from . import plots

    return _with_letter_rows(plots.table3_statistics({k: load() for k, load in stats.items()}),
                             "table3")


#: Bootstrap replicates of the balance tests in ``tableE_balance_tests`` (p >= 1/200).
BALANCE_BOOTSTRAP = 199


def _balance_table(src: Sources) -> pd.DataFrame:
    """One row per data set: the verdict of :func:`dbnb.verdict.check` (NaN: undefined)."""
    verdicts = src.verdicts(bootstrap=BALANCE_BOOTSTRAP, progress=True)
    table = pd.DataFrame({k: v.summary() for k, v in verdicts.items()}).T
    table.index.name = "data set"
    for col in ("states", "pairs", "two_way_pairs"):
        table[col] = table[col].astype(int)
    undefined = sorted({f"{k}: {v.undefined['test']}" for k, v in verdicts.items()
                        if not v.noise_free and "test" in v.undefined})
    table.attrs["note"] = (
        f"p: parametric bootstrap (B = {BALANCE_BOOTSTRAP}) of detailed balance against the "
        "free per-pair model; p_popularity: popularity-only against detailed balance (small: "
        "the prompt matters); fractions: Hodge split of the log-ratio flow (inverse-variance "
        "weights; uniform for the exact kernels, which have no sampling noise and so no "
        "p-values); R2: held-out half of the calls. NaN means undefined: "
        + ("; ".join(undefined) if undefined else "none")
        + "; no cycle among the two-way pairs leaves the Hodge split undefined too. "
        f"p = {1 / (BALANCE_BOOTSTRAP + 1):.3g} is the bootstrap's floor, i.e. p <= "
        f"{1 / (BALANCE_BOOTSTRAP + 1):.3g}. A noise ceiling <= 0 means the held-out "
        "log-ratios are within their noise of 0: those R2 do not discriminate."
    )
    return table


#: Distance outside its interval (log units) from which ``tableE4_bounded_verdicts`` counts
#: a pair as outside.
BOUNDED_TOL = 0.01


def _exact_table(src: Sources) -> pd.DataFrame:
    """Coverage of the pair intervals against the exact kernel, by pair total (no selection
    on the outcome), beside the Letter's delta-method bar; and the per-transition chi^2."""
    sampled, exact = src.logprob30_pair
    table = diagnostics.coverage_by_total(sampled, exact)
    table.columns = ["pairs", "covered (95 %, Clopper-Pearson)", "one_way"]
    table.insert(2, "covered (95 %, mid-p)",
                 diagnostics.coverage_by_total(sampled, exact, method="mid-p")["covered"])
    cmp = diagnostics.compare_to_exact(sampled, exact)
    tc = diagnostics.transition_check(sampled, exact)
    table.attrs["note"] = (
        "rows: pair total N(g<-f) + N(f<-g) (given the total, coverage does not depend on the "
        "outcome); the Letter's delta-method bar on the two-way pairs: "
        f"{cmp.within_2sigma:.1%} within 2 sigma over {cmp.n_pairs} pairs; per-transition "
        f"check (expected count >= 5): {int(tc['transitions'])} transitions, "
        f"chi2/dof = {tc['chi2_per_dof']:.2f}, p = {tc['p_value']:.2f}"
    )
    return table


def _feature_table(src: Sources, exact: bool = False) -> pd.DataFrame:
    """Table V analogue: weights of the explicit feature potential, and the actions."""
    from .agents.symbolic import feature_potential

    fit = src.symbolic_logprob_fit if exact else src.symbolic_fit
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


def _potential_line(fit) -> str:
    v = fit.potential
    return ", ".join(f"{s} {v[s]:.2f}" for s in v.sort_values().index)


def _few_state_headlines(src: Sources) -> list[str]:
    """Eq. 22 (Claude-4) and Eq. 23 (Gemini) with the authors' convention, and dbnb's own
    estimator beside them where it differs."""
    lines = [f"Claude-4 (Eq. 22; {src.caption('claude')}): beta V = "
             f"{_potential_line(src.claude_fit)}; action {src.claude_fit.action:.4f}"]
    if src.available("claude_file"):
        lines.append(f"  dbnb's estimator ({src.claude.calls_kind or 'out-count, Eq. 24'}): "
                     f"beta V = {_potential_line(fit_potential(src.claude))}")
        diff = src.claude_table2_differences()
        lines.append("  counts vs the Letter's Table II: " + (
            "identical" if diff.empty else "; ".join(
                f"{r['from']} -> {r['to']}: file {r['file']}, Letter {r['Letter']}"
                for _, r in diff.iterrows())))
    if src.available("gemini"):
        lines.append(f"Gemini-2.5-flash (Eq. 23; {src.caption('gemini')}): beta V = "
                     f"{_potential_line(src.gemini_fit)}")
        lines.append(f"  dbnb's estimator (out-count, Eq. 24): beta V = "
                     f"{_potential_line(fit_potential(src.gemini))}")
    return lines


def _table3_line(src: Sources) -> str:
    """Table III of the Letter's files beside the published numbers."""
    from . import letter

    pub = letter.table3()
    parts = []
    for what, row in (("words", "words, GPT-5 Nano (Letter)"),
                      ("symbolic", "IdeaSearchFitter (Letter)")):
        if src.available(what):
            st = (src.words if what == "words" else src.symbolic).statistics()
            parts.append(f"{src.file_of(what)}: " + ", ".join(
                f"{k} {int(st[k])} (Letter {int(pub.at[row, k])})" for k in pub.columns))
    return "Table III: " + "; ".join(parts)


def _dbnb_estimator_lines(src: Sources) -> list[str]:
    """The many-state files fitted with dbnb's own estimator (Eq. 24, out-count without
    self-loops), beside the authors' estimators of the figures (:mod:`dbnb.authors`)."""
    lines = []
    for what, attr in (("words", "words_fit_dbnb"), ("symbolic", "symbolic_fit_dbnb")):
        if not src.available(what):
            continue
        ours, theirs = getattr(src, attr), getattr(src, f"{what}_fit")
        pc, pt = diagnostics.pairs(ours), diagnostics.pairs(theirs)
        conv = src.convention(what)
        lines.append(
            f"{src.file_of(what)}, dbnb's estimator ({ours.transitions.method}, Eq. 24) vs the "
            f"authors' ({conv.name if conv else theirs.transitions.method}): "
            f"{ours.transitions.n_states} vs "
            f"{theirs.transitions.n_states} states, {pc.n_pairs} vs {pt.n_pairs} pairs, "
            f"the Letter's chi2/ndf {pc.letter_chi2_ndf:.2f} vs {pt.letter_chi2_ndf:.2f}, "
            f"chi2/dof {pc.chi2_per_dof:.2f} vs {pt.chi2_per_dof:.2f}, action "
            f"{ours.action:.3f} vs {theirs.action:.3f}")
    return lines


def _letter_plot_lines(src: Sources) -> list[str]:
    """The numbers printed on the authors' pair and loop plots, computed as their ``plot.py``
    does (:meth:`Sources.letter_statistics`), beside the Letter's published counts."""
    from . import letter

    lines = []
    for what, name, figs, pub in (
            ("words", "GPT-5 Nano words", ("7", "9", "3"), letter.headline["words_gpt5nano"]),
            ("symbolic", "IdeaSearchFitter", ("4", "9", "8"), letter.headline["ideasearchfitter"])):
        if not src.available(what):
            continue
        st = src.letter_statistics(what)

        def pairs(p):
            return (f"N = {p.n}, r = {p.r:.3f}, chi2/ndf = {p.chi2_ndf:.2f} (unweighted), "
                    f"{p.shown.size} shown")

        lo, h, hs = st["loops"], st["histogram"], st["histogram_softplus"]
        lines.append(
            f"{name} ({src.file_of(what)}), the authors' plot statistics (plot.py): Fig. "
            f"{figs[0]} pairs {pairs(st['pairs'])}; Fig. {figs[1]} (softplus K) "
            f"{pairs(st['pairs_softplus'])}; Fig. {figs[2]} loops N = {lo.n} (Letter "
            f"{pub['triplets']}), chi2/ndf = {lo.chi2_ndf:.2f}, {lo.shown.size} shown; Fig. 11 "
            f"Gaussian fitted to the histogram of {h.n} states: mu {h.mu:.2f}, sigma "
            f"{h.sigma:.2f} (softplus K: {hs.mu:.2f}, {hs.sigma:.2f}; Letter {pub['mu']:.2f}, "
            f"{pub['sigma']:.2f})")
    return lines


def _headlines(src: Sources) -> list[str]:
    lines = []
    if src.kind == "letter":
        lines.append(_table3_line(src))
        lines += _dbnb_estimator_lines(src)
        lines += _letter_plot_lines(src)
    if src.available("words"):
        fit = src.words_fit
        pc = diagnostics.pairs(fit)
        tc = diagnostics.triplets(fit)
        dist = diagnostics.potential_distribution(fit)
        st = src.words.statistics()
        ow = diagnostics.one_way_pairs(fit)
        lines.append(
            f"words ({src.file_of('words')}): {int(st['samples'])} transitions, "
            f"{int(st['states'])} states; "
            f"{pc.n_pairs} pairs, {pc.within_1sigma:.0%} within 1 sigma, "
            f"{pc.within_2sigma:.0%} within 2 sigma, chi2/dof = {pc.chi2_per_dof:.2f} "
            f"(dof {pc.dof}; the Letter's unweighted chi2/ndf {pc.letter_chi2_ndf:.2f}); "
            f"{tc.n_triplets} triplets; {ow.n_pairs} one-way pairs, beta dV above Eq. 25 for "
            f"{ow.fraction_satisfied:.0%}, above the 95% lower bound for "
            f"{ow.fraction_above_lower:.0%}; sigma(beta V) = {dist.sigma:.2f} (without the "
            f"estimation noise {dist.sigma_corrected:.2f}), action {fit.action:.3f} vs expected "
            f"{dist.expected_action:.3f} (Letter's raw Table IV); action / flat action "
            f"{dist.normalised_action:.3f} vs Eq. 28 {dist.expected_normalised_action:.3f}"
        )
    if src.available("logprob30"):
        cmp = diagnostics.compare_to_exact(*src.logprob30_pair)
        tc = diagnostics.transition_check(*src.logprob30_pair)
        lines.append(
            f"exact vs sampled (30 words, 3,000 calls): pair bars cover the exact log-ratio for "
            f"{cmp.within_1sigma:.0%} (1 sigma) / {cmp.within_2sigma:.0%} (2 sigma) of "
            f"{cmp.n_pairs} pairs; transitions chi2/dof = {tc['chi2_per_dof']:.2f} "
            f"(p = {tc['p_value']:.2f})"
        )
    if src.available("logprob100"):
        pc = diagnostics.pairs(src.logprob100_fit)
        r2 = pc.r_squared
        lines.append(
            f"exact kernel, 100 words (no sampling noise): {pc.n_pairs} pairs, the fitted "
            f"potential explains R^2 = {r2:.3f} of the log-ratios; action "
            f"{src.logprob100_fit.action:.3f}"
        )
    if src.available("symbolic"):
        fit = src.symbolic_fit
        pc = diagnostics.pairs(fit)
        graph = diagnostics.potential_vs_score(fit, src.symbolic.metadata["mse"])
        shares = graph.shares()
        st = src.symbolic.statistics()
        dist = diagnostics.potential_distribution(fit)
        lines.append(
            f"symbolic agent ({src.file_of('symbolic')}): {int(st['samples'])} transitions, "
            f"{int(st['states'])} states, "
            f"{int((fit.status == 'main').sum())} in the main component; {pc.n_pairs} pairs; "
            f"Fig. 5 transitions down/up/flat {shares['down']:.0%}/{shares['up']:.0%}/"
            f"{shares['flat']:.0%} (Letter 70/26/5 %); action {fit.action:.3f}, action / "
            f"flat action {dist.normalised_action:.3f} vs Eq. 28 "
            f"{dist.expected_normalised_action:.3f} (sigma {dist.sigma:.2f}, without noise "
            f"{dist.sigma_corrected:.2f})"
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
    if src.available("symbolic_logprob"):
        ek = src.symbolic_logprob
        fit = src.symbolic_logprob_fit
        pc = diagnostics.pairs(fit)
        shares = src.symbolic_logprob_graph.shares()
        cmp = diagnostics.compare_to_exact(*src.symbolic_logprob_pair)
        off = ~np.eye(len(ek.states), len(ek.sources), dtype=bool)
        bounded = float(np.mean(ek.log_gap()[off] <= SYM_MAX_LOG_GAP))
        converged = (float(np.mean(ek.last_step()[off] <= SYM_MAX_LAST_STEP))
                     if ek.ladder is not None else float("nan"))
        lines.append(
            f"symbolic exact kernel ({len(ek.states)} expressions, uncovered mass mean "
            f"{float(ek.uncovered.mean()):.1%}, max {float(ek.uncovered.max()):.1%}; "
            f"transitions bounded to {SYM_MAX_LOG_GAP:g} in log: {bounded:.0%}, last "
            f"decade of the cut-off added <= {SYM_MAX_LAST_STEP:g}: {converged:.0%}; pairs "
            f"with both directions bounded used): {pc.n_pairs} pairs, "
            f"{int((fit.status == 'main').sum())} expressions in the main component, "
            f"R^2 = {pc.r_squared:.3f}, action {fit.action:.3f}; Fig. 5 "
            f"down/up/flat {shares['down']:.0%}/{shares['up']:.0%}/{shares['flat']:.0%}; "
            f"sampled pair bars cover {cmp.within_1sigma:.0%}/{cmp.within_2sigma:.0%} "
            f"(1/2 sigma) of {cmp.n_pairs} pairs"
        )
    return lines


def _balance_headline(src: Sources) -> str:
    """Is it detailed balance? One line over every data set."""
    parts = []
    for name, v in src.verdicts(bootstrap=BALANCE_BOOTSTRAP).items():
        st = v.status
        if st == "undefined":
            parts.append(f"{name}: untestable ({v.short_reason})")
        elif v.noise_free:
            line = f"{name}: {v.circulation:.1%} of the flow circulates"
            if v.bounded_status != "undefined":  # the certified verdict of the entries' bounds
                line += (f", {v.bounded_status} within its bounds ({v.n_outside:,} of "
                         f"{v.n_two_sided:,} two-sided pairs more than {v.bounded_tol:g} "
                         "outside)")
            parts.append(line)
        else:
            t = v.test
            parts.append(f"{name}: {st} ({format_p(t.p_value, t.n_bootstrap)}, chi2 "
                         f"{format_p(t.p_asymptotic)}; popularity "
                         f"{format_p(t.p_popularity, t.n_bootstrap)})")
    return "is it detailed balance? " + "; ".join(parts)


def reproduce(
    out: Path | str = "figures",
    *,
    source: str = "shipped",
    formats: Sequence[str] = ("png", "pdf"),
    progress: bool = True,
) -> Report:
    """Write every available figure and table into ``out``; print what, where and from which
    file.

    ``source`` is that of :class:`Sources`: ``"shipped"``, ``"paper"``, a folder with the
    Letter's files, or a store. An item that fails is printed with its reason and the run goes
    on; items without data are listed as skipped (not failures).

    Returns
    -------
    Report
        ``written`` paths, ``failed`` ``(item, reason)``, ``skipped`` ``(item, reason)``.
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
    failed: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    rows = []
    for item in tqdm(todo, desc="dbnb reproduce", unit="item", disable=not progress):
        t = time.perf_counter()
        try:
            paths = _save(item.make(), out, item.name, formats)
        except Exception as exc:  # one item's failure is reported, the run goes on
            failed.append((item.name, f"{type(exc).__name__}: {exc}"))
            rows.append((item, None))
            continue
        written += paths
        rows.append((item, time.perf_counter() - t))
    print(f"\nwrote {len(written)} files for {len(todo) - len(failed)} items to "
          f"{out.resolve()}/")
    reasons = dict(failed)
    for item, dt in rows:
        src_file = f"  [{item.source}]" if item.source else ""
        status = f"FAILED: {reasons[item.name]}" if dt is None else f"({dt:.1f} s)"
        print(f"  {item.name:<34s} {item.title}{src_file}  {status}")
    for name, reason in skipped:
        print(f"  skipped {name}: {reason}")
    print("\nheadline numbers:")
    for label, make in (("few-state agents", lambda: _few_state_headlines(src)),
                        ("headlines", lambda: _headlines(src)),
                        ("balance headline", lambda: [_balance_headline(src)])):
        try:
            for line in make():
                print("  " + line)
        except Exception as exc:
            failed.append((label, f"{type(exc).__name__}: {exc}"))
            print(f"  {label} FAILED: {type(exc).__name__}: {exc}")
    if failed:
        print(f"\n{len(failed)} item(s) failed: " + ", ".join(n for n, _ in failed))
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return Report(written, failed, skipped)
