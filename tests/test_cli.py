"""The dbnb command line, run in-process through main()."""

import json

import pandas as pd
import pytest

from dbnb.cli import build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("reproduce", "fit", "serve-local", "sample"):
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


def test_parser_has_defaults():
    args = build_parser().parse_args(["fit", "x.json"])
    assert args.kernel == "exp" and args.estimator == "auto"
