"""Readers of the Letter's formats, on fixtures the tests write themselves."""

import json

import numpy as np
import pytest

import dbnb
from dbnb.datasets import (
    claude4_table2,
    read_counts_csv,
    read_ideas_json,
    read_word_dict_json,
    score_to_mse,
)

IDEAS = [
    {
        "target_expression": "param1 * x",
        "target_score": 40.0,
        "source_expressions": [
            {"expression": "param1 + x", "score": 30.0},
            {"expression": "param1 + x"},
            {"expression": "param1 * x"},  # self-transition
        ],
    },
    {
        "target_expression": "param1 + x",
        "source_expressions": [{"expression": "param1 * x", "score": 40.0}],
    },
    {
        "target_expression": "INVALID00",
        "source_expressions": [{"expression": "param1 * x"}],
    },
    {"target_expression": "tanh(x)", "source_expressions": []},
]


@pytest.fixture
def ideas_file(tmp_path):
    p = tmp_path / "ideas.json"
    p.write_text(json.dumps(IDEAS))
    return p


def test_read_ideas(ideas_file):
    c = read_ideas_json(ideas_file)
    assert set(c.states) == {"param1 * x", "param1 + x", "tanh(x)"}
    assert c.count("param1 + x", "param1 * x") == 2
    assert c.count("param1 * x", "param1 + x") == 1
    assert c.count("param1 * x", "param1 * x") == 1
    assert c.escapes[c.states.index("param1 * x")] == 1
    assert c.calls is None
    # scores: target score first, then source scores; default 20 when absent
    assert c.metadata.loc["param1 * x", "score"] == 40.0
    assert c.metadata.loc["param1 + x", "score"] == 30.0
    assert c.metadata.loc["tanh(x)", "score"] == 20.0
    assert c.metadata.loc["tanh(x)", "mse"] == pytest.approx(0.06020935250966546)
    # authors' N0: appearances as a source, self-transitions included
    k = dbnb.estimate_kernel(c, "low_reject")
    assert dict(zip(k.states, k.n0, strict=True))["param1 * x"] == 2


def test_score_to_mse_decade():
    # 15 score points are one decade of MSE
    assert score_to_mse(35.0) == pytest.approx(0.06020935250966546 / 10)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", r"not valid JSON \(line 1"),
        ("{}", "expected a JSON array"),
        ("[]", "empty"),
        ("[1]", "element 0 is a int"),
        ('[{"source_expressions": []}]', "no 'target_expression'"),
        ('[{"target_expression": "a", "source_expressions": [{"expr": "b"}]}]', "source 0"),
        ('[{"target_expression": "", "source_expressions": []}]', "non-empty string"),
        ('[{"target_expression": "a", "target_score": "high"}]', "finite number"),
        ('[{"target_expression": "a", "source_expressions": []}]', "no transitions"),
    ],
)
def test_ideas_malformed(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        read_ideas_json(p)
    assert "bad.json" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_ideas_json(tmp_path / "nope.json")


def test_read_word_dict(tmp_path):
    p = tmp_path / "words.json"
    p.write_text(
        json.dumps(
            {
                "BUZZY": ["attitude", "TURKEY", "INVALID00", "ATTITUDE"],
                "ATTITUDE": ["BUZZY"],
                "INVALID00": ["ATTITUDE"],
                "TURKEY": [],
            }
        )
    )
    c = read_word_dict_json(p)
    assert c.states == ("BUZZY", "ATTITUDE", "TURKEY")
    assert c.count("BUZZY", "ATTITUDE") == 2
    assert c.count("ATTITUDE", "BUZZY") == 1
    np.testing.assert_array_equal(c.escapes, [1, 0, 0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"BUZZY": "ATTITUDE"}))
    with pytest.raises(ValueError, match="replies of 'BUZZY' must be a list"):
        read_word_dict_json(bad)


def test_claude_table2_shipped():
    c = claude4_table2()
    assert c.states == ("ATTITUDE", "TURKEY", "PERSONAL", "PROBLEM", "BUZZY")
    assert c.count("TURKEY", "ATTITUDE") == 4122
    assert c.count("BUZZY", "TURKEY") == 238
    np.testing.assert_array_equal(c.escapes, [3914, 0, 121, 442, 0])
    np.testing.assert_array_equal(c.calls, [4000] * 5)
    assert c.n_samples == 4122 + 3879 + 3558 + 3859 + 238 + 66 + 20


def test_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DBNB_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="DBNB_DATA"):
        claude4_table2()


def test_read_counts_csv_long_and_dense(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text("source,target,count\nA,B,3\nB,A,1\nA,B,2\n")
    c = read_counts_csv(long)
    assert c.count("A", "B") == 5 and c.count("B", "A") == 1
    dense = tmp_path / "dense.csv"
    dense.write_text("# comment\nfrom,A,B,escape\nA,0,4,1\nB,2,0,0\n")
    d = read_counts_csv(dense)
    assert d.count("A", "B") == 4 and d.escapes.tolist() == [1, 0]
    bad = tmp_path / "bad.csv"
    bad.write_text("from,A,C\nA,0,1\nB,1,0\n")
    with pytest.raises(ValueError, match="bad.csv.*must repeat the row labels"):
        read_counts_csv(bad)
    neg = tmp_path / "neg.csv"
    neg.write_text("source,target,count\nA,B,-3\n")
    with pytest.raises(ValueError, match="neg.csv.*non-negative"):
        read_counts_csv(neg)


def test_paper_reads_what_the_hub_lists(tmp_path, monkeypatch):
    import huggingface_hub

    ideas = tmp_path / "ideasearchfitter_database.json"
    ideas.write_text(json.dumps(IDEAS))
    words = tmp_path / "word_gpt5-nano.json"
    words.write_text(json.dumps({"BUZZY": ["ATTITUDE"], "ATTITUDE": ["BUZZY"]}))
    files = {ideas.name: ideas, words.name: words, "README.md": None}

    class FakeApi:
        def list_repo_files(self, repo_id, repo_type, revision=None):
            assert repo_type == "dataset"
            return list(files)

    def fake_download(repo_id, name, repo_type, revision=None, cache_dir=None):
        return str(files[name])

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    out = dbnb.datasets.paper()
    assert set(out) == {"ideasearchfitter_database", "word_gpt5-nano"}
    assert out["word_gpt5-nano"].count("BUZZY", "ATTITUDE") == 1
    files.pop(ideas.name)
    files.pop(words.name)
    with pytest.raises(ValueError, match="no file in a format.*README.md"):
        dbnb.datasets.paper()


def test_paper_offline_message(monkeypatch):
    import huggingface_hub

    class DeadApi:
        def list_repo_files(self, *a, **k):
            raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "HfApi", DeadApi)
    with pytest.raises(ConnectionError, match="needs a network connection once"):
        dbnb.datasets.paper()
