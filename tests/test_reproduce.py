"""dbnb reproduce with the Letter's files: every item names its file, failures are reported.

The files are written into ``tmp_path`` (``tests/letter_files.py``); offline throughout.
"""

from __future__ import annotations

import re
import sys

import letter_files as lf  # tests/conftest.py puts tests/ on sys.path
import pandas as pd
import pytest

from dbnb import cli, reproduce
from dbnb.sources import Sources

CLAUDE = "word_database_claude-4.json"
GEMINI = "word_database_gemini-2.5-flash-nothinking.json"
WORDS = "word_database_gpt5-nano.json"
IDEAS = "ideasearchfitter_database.json"




@pytest.fixture(scope="module")
def letter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("letter")
    lf.write_all(folder)
    (folder / "notes.csv").write_text("a,b\n")
    return folder


def test_every_item_is_drawn_from_its_file(letter_dir):
    todo, skipped = reproduce.items(Sources(letter_dir))
    src = {i.name: i.source for i in todo}
    want = {
        "fig02_claude_transitions": CLAUDE, "table2_claude_counts": CLAUDE,
        "fig06_gemini_transitions": GEMINI,
        "fig03_words_triplets": WORDS, "fig07_words_pairs": WORDS,
        "fig09_words_pairs_softplus": WORDS, "fig10_words_one_way": WORDS,
        "fig11_words_potential_histogram": WORDS,
        "fig04_symbolic_pairs": IDEAS, "fig05_symbolic_potential_vs_mse": IDEAS,
        "fig08_symbolic_triplets": IDEAS, "fig09_symbolic_pairs_softplus": IDEAS,
        "fig10_symbolic_one_way": IDEAS, "fig11_symbolic_potential_histogram": IDEAS,
        "table1_symbolic_examples": IDEAS, "table5_feature_potential": IDEAS,
        "table4_action_scale": f"{WORDS}, {IDEAS}",
        "table3_statistics": f"{CLAUDE}, {GEMINI}, {WORDS}, {IDEAS}",
    }
    for name, file in want.items():
        assert src[name] == file, name
    assert "fig06_words_transitions" not in src  # Gemini's own file draws Fig. 6
    # the captions name the authors' estimator of each file
    titles = {i.name: i.title for i in todo}
    assert "20000/(number of states)" in titles["fig02_claude_transitions"]
    assert "20000/(number of states)" in titles["fig06_gemini_transitions"]
    assert "high_reject" in titles["fig07_words_pairs"]
    assert "low_reject" in titles["fig04_symbolic_pairs"]
    assert ("unknown files", "not the Letter's, not read: notes.csv") in skipped


def test_shipped_items_name_the_shipped_files():
    todo, _ = reproduce.items(reproduce.shipped_sources())
    src = {i.name: i.source for i in todo}
    assert src["fig02_claude_transitions"] == "data/claude4_table2.csv"
    assert src["fig07_words_pairs"] == "data/runs/word_constrained_fixed.jsonl.gz"
    assert src["fig04_symbolic_pairs"] == "data/runs/symbolic_constrained_fixed.jsonl.gz"


def test_reproduce_from_a_folder(letter_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "BALANCE_BOOTSTRAP", 9)
    report = reproduce.reproduce(tmp_path, source=str(letter_dir), formats=("png",),
                                 progress=False)
    out = capsys.readouterr().out
    assert report.ok, report.failed
    assert (tmp_path / "fig06_gemini_transitions.png").is_file()
    assert (tmp_path / "fig07_words_pairs.png").is_file()
    assert f"[{WORDS}]" in out and f"[{GEMINI}]" in out
    assert "PERSONAL 4.07, PROBLEM 5.18, TURKEY inf, BUZZY inf" in out  # Eq. 22
    assert "DISCIPLINE 0.53, EXCELLENT 4.77, BLISSFUL 5.17" in out  # Eq. 23
    assert "counts vs the Letter's Table II: identical" in out
    assert f"{WORDS}, dbnb's estimator (outcount, Eq. 24) vs the authors' (high_reject)" in out
    assert f"{IDEAS}, dbnb's estimator (outcount, Eq. 24) vs the authors' (low_reject)" in out
    # the printed list names the file of every item drawn from one
    listed = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ") and
              ln.split() and ln.split()[0].startswith(("fig", "table"))}
    for item in reproduce.items(Sources(letter_dir))[0]:
        if item.source:
            assert f"[{item.source}]" in listed[item.name], item.name
    assert "states 645" not in out and "(Letter 645)" in out  # Table III beside ours
    assert "samples 19968" not in out and "(Letter 19968)" in out and "(Letter 50228)" in out
    assert "(Letter 9473)" in out and "(Letter 620)" in out
    assert "(Letter 21697)" in out and "(Letter 7484)" in out and "(Letter 2551)" in out
    # the numbers on the authors' plots, as their plot.py computes them, under their names
    src = Sources(letter_dir)
    for what, figs, letter_n in (("words", ("7", "3"), 140), ("symbolic", ("4", "8"), 620)):
        st = src.letter_statistics(what)
        p, lo = st["pairs"], st["loops"]
        assert (f"({src.file_of(what)}), the authors' plot statistics (plot.py): Fig. {figs[0]} "
                f"pairs N = {p.n}, r = {p.r:.3f}, chi2/ndf = {p.chi2_ndf:.2f} (unweighted), "
                f"{p.shown.size} shown") in out
        assert (f"Fig. {figs[1]} loops N = {lo.n} (Letter {letter_n}), chi2/ndf = "
                f"{lo.chi2_ndf:.2f}") in out
        h = st["histogram"]
        assert f"histogram of {h.n} states: mu {h.mu:.2f}, sigma {h.sigma:.2f}" in out
    assert "Letter -0.93, 2.30)" in out and "Letter -0.56, 4.37)" in out
    t3 = pd.read_csv(tmp_path / "table3_statistics.csv", index_col=0)
    assert t3.loc["words, GPT-5 Nano (Letter)", "samples"] == 19968
    assert t3.loc["IdeaSearchFitter (Letter)", "unique_transitions"] == 21697
    assert t3.loc[f"words ({WORDS})", "states"] == Sources(letter_dir).words.n_states
    t4 = pd.read_csv(tmp_path / "table4_action_scale.csv", index_col=0)
    assert t4.loc["words, GPT-5 Nano (Letter)", "actual_min_action"] == 0.195
    assert f"words ({WORDS})" in t4.index and f"symbolic ({IDEAS})" in t4.index
    note = (tmp_path / "table2_claude_counts.md").read_text()
    assert "identical to the Letter's Table II" in note


def test_claude_file_differences_are_printed(tmp_path):
    counts = dict(lf.TABLE2)
    counts[("ATTITUDE", "PERSONAL")] = 67
    lf.write_claude(tmp_path, counts=counts)
    src = Sources(tmp_path)
    note = {i.name: i for i in reproduce.items(src)[0]}["table2_claude_counts"].make()
    assert ("differences from the Letter's Table II (file vs Letter): ATTITUDE -> PERSONAL: "
            "67 vs 66") in note.attrs["note"]
    lines = reproduce._few_state_headlines(src)
    assert "  counts vs the Letter's Table II: ATTITUDE -> PERSONAL: file 67, Letter 66" in lines
    assert "beta V = ATTITUDE 0.00, PERSONAL 4.06" in lines[0]  # log(3879/67), Eq. 18


def test_a_failing_item_is_reported_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "BALANCE_BOOTSTRAP", 9)
    data = tmp_path / "data"
    data.mkdir()
    lf.write_claude(data)
    (data / IDEAS).write_text('[{"target_expression": "x", "source_expressions": [}')
    status = cli.main(["reproduce", "--source", str(data), "--out", str(tmp_path / "out"),
                       "--formats", "png"])
    out = capsys.readouterr().out
    assert status == 1
    assert "fig04_symbolic_pairs" in out and "FAILED: ValueError" in out
    assert f"{IDEAS} is not valid JSON" in out
    assert (tmp_path / "out" / "fig02_claude_transitions.png").is_file()  # the rest was made
    assert "item(s) failed" in out


def test_skipped_items_are_not_failures(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "BALANCE_BOOTSTRAP", 9)
    lf.write_claude(tmp_path)
    status = cli.main(["reproduce", "--source", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--formats", "png"])
    out = capsys.readouterr().out
    assert status == 0
    assert "skipped figs 3, 7, 9, 10, 11" in out and "FAILED" not in out


def test_fig6_analogue_from_a_large_word_file(tmp_path):
    lf.write_words(tmp_path)  # ~600 words in the Letter's format, no Gemini file
    todo, skipped = reproduce.items(Sources(tmp_path))
    item = {i.name: i for i in todo}["fig06_words_transitions"]
    assert item.source == WORDS
    fig = item.make()  # once: "estimator 'outcount' with min_calls=2 keeps no state"
    assert fig.axes
    assert any(name == "fig 6 (Gemini)" for name, _ in skipped)


def test_paper_offline_exit_status(monkeypatch, tmp_path, capsys):
    import types

    class DeadApi:
        def list_repo_files(self, *a, **k):
            raise OSError("network unreachable")

    hub = types.ModuleType("huggingface_hub")
    hub.HfApi, hub.hf_hub_download = DeadApi, None
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    status = cli.main(["reproduce", "--source", "paper", "--out", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "needs a network connection once" in err
    assert "'Nondegeneracy/detailed-balance-llm'" in err  # names the data set
    assert "--source DIR" in err  # and says what to do offline


def test_figure_captions_name_the_authors_convention(letter_dir, monkeypatch):
    """The drawn caption of each figure of the Letter's files names the file and the
    authors' estimator of that file; Fig. 8 keeps the 3-cycles whose six transitions were
    each seen at least twice, as the Letter counts them."""
    import matplotlib.pyplot as plt

    from dbnb import diagnostics

    seen = {}
    real = diagnostics.triplets

    def spy(fit, **kw):
        seen[fit.transitions.counts.source] = kw.get("min_count", 1)
        return real(fit, **kw)

    monkeypatch.setattr(reproduce.diagnostics, "triplets", spy)
    made = {i.name: i for i in reproduce.items(Sources(letter_dir))[0]}
    for name, file, label in (("fig07_words_pairs", WORDS, "high_reject"),
                              ("fig03_words_triplets", WORDS, "high_reject"),
                              ("fig04_symbolic_pairs", IDEAS, "low_reject"),
                              ("fig08_symbolic_triplets", IDEAS, "low_reject"),
                              ("fig11_words_potential_histogram", WORDS, "high_reject")):
        fig = made[name].make()
        # the caption is wrapped (at spaces and hyphens): compare without whitespace
        text = re.sub(r"\s", "", "".join(t.get_text() for ax in fig.axes for t in ax.texts))
        assert file in text and label in text, (name, text)
        plt.close(fig)
    assert seen[next(k for k in seen if IDEAS in k)] == 2
    assert seen[next(k for k in seen if WORDS in k)] == 1


def test_exact_table_bins_on_the_pair_total():
    """Coverage of the shipped 30-word sampled kernel's intervals against its exact kernel:
    binned on N(g<-f) + N(f<-g), never on the observed smaller count."""
    src = reproduce.shipped_sources()
    t = reproduce._exact_table(src)
    assert list(t.columns) == ["pairs", "covered (95 %, Clopper-Pearson)",
                               "covered (95 %, mid-p)", "one_way"]
    assert t.index.name == "pair total" and t.index[0] == "1-1"
    assert t.loc["1-1", "one_way"] == 1.0  # a total of one is always one-way
    cp, mid = t["covered (95 %, Clopper-Pearson)"], t["covered (95 %, mid-p)"]
    assert (cp >= mid).all()  # mid-p intervals are never wider
    covered = float((cp * t["pairs"]).sum() / t["pairs"].sum())
    assert covered >= 0.95
    assert "delta-method bar" in t.attrs["note"]


def test_comparison_items_from_the_shipped_kernels(tmp_path):
    import shutil

    import matplotlib.pyplot as plt

    from dbnb.datasets import data_dir
    from dbnb.llm.logprob import load_logprob_kernel
    from dbnb.sources import COMPARISON_KERNELS

    (tmp_path / "runs").mkdir()
    ref = data_dir() / COMPARISON_KERNELS["SmolLM2"]
    shutil.copy(ref, tmp_path / COMPARISON_KERNELS["SmolLM2"])
    src = Sources("shipped", data=tmp_path)
    names = [it.name for it in reproduce.items(src)[0]]
    assert not any("potentials" in n or "tableE3" in n for n in names)
    assert any("comparison of models, prompts" in what for what, _ in reproduce.items(src)[1])
    # the same kernel under every label: identical potentials, so r = 1 and cross = own
    for label, rel in COMPARISON_KERNELS.items():
        if label != "SmolLM2":
            shutil.copy(ref, tmp_path / rel)
    src = Sources("shipped", data=tmp_path)
    made = {it.name: it for it in reproduce.items(src)[0]}
    for name in ("figE8_models_potentials", "figE9_prompts_potentials",
                 "figE10_temperatures_summary"):
        assert made[name].make().axes, name
    table = made["tableE3_comparisons"].make()
    assert list(table["B"]) == ["Gemma 3", "SmolLM2, paraphrase", "SmolLM2, T=0.5",
                                "SmolLM2, T=2"]
    assert (table["pearson"] > 1 - 1e-12).all()
    assert (abs(table["r2_cross"] - table["r2_own_B"]) < 1e-12).all()
    n = len(load_logprob_kernel(ref).sources)
    assert (table["states"] <= n).all() and (table["states"] > n / 2).all()
    plt.close("all")


def test_bounded_verdicts_table_of_the_exact_kernels(tmp_path):
    """tableE4: one row per shipped exact kernel; the real 30-word kernel is certified
    violated, its popularity-only control (same bounds' widths) certified consistent; a
    source with no kernel has no such item."""
    import shutil

    import numpy as np

    from dbnb.datasets import data_dir
    from dbnb.sources import LOGPROB30

    (tmp_path / "runs").mkdir()
    assert "tableE4_bounded_verdicts" not in [i.name for i in
                                              reproduce.items(Sources("shipped",
                                                                      data=tmp_path))[0]]
    shutil.copy(data_dir() / LOGPROB30, tmp_path / LOGPROB30)
    src = Sources("shipped", data=tmp_path)
    item = {i.name: i for i in reproduce.items(src)[0]}["tableE4_bounded_verdicts"]
    assert item.source == f"data/{LOGPROB30}"
    table = item.make()
    assert list(table.index) == ["words, exact kernel, 30"]
    row = table.iloc[0]
    assert row["states"] == 30 and row["pairs"] == row["two_sided_pairs"] == 435
    assert row["verdict"] == "certified violated" and row["control_verdict"] == \
        "certified consistent"
    assert 0 < row["pairs_outside"] <= 435 and row["max_outside"] > 1.0
    assert row["control_max_outside"] < 1e-6
    assert np.isclose(row["share_outside"], row["pairs_outside"] / 435)
    assert "0.01" in table.attrs["note"] and "popularity-only" in table.attrs["note"]
