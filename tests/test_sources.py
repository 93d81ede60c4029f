"""dbnb.sources with the Letter's files: mapped by name, read with the authors' estimators.

The files are written by ``letter_files`` into ``tmp_path`` in the formats and under the names
of the authors' data set; nothing here needs a network.
"""

from __future__ import annotations

import json
import sys

import letter_files as lf_  # tests/conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from dbnb import datasets, fit_potential
from dbnb import sources as dbnb_sources
from dbnb.authors import SCRIPT_CALLS
from dbnb.sources import Sources

GEMINI, TABLE2 = lf_.GEMINI, lf_.TABLE2
write, write_all, write_claude = lf_.write, lf_.write_all, lf_.write_claude
write_gemini, write_words = lf_.write_gemini, lf_.write_words


@pytest.fixture(scope="module")
def letter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("letter") / "detailed-balance-llm"
    write_all(folder / "data")  # a hub snapshot may keep the files in a subfolder
    (folder / "README.md").write_text("data card")
    (folder / "data" / "word_database_llama.json").write_text("[]")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "word_database_gpt5-nano.json.lock").write_text("")
    return folder


def test_folder_maps_each_file_by_name_and_lists_the_rest(letter_dir):
    lf = datasets.letter_folder(letter_dir)
    assert {r: p.name for r, p in lf.files.items()} == {
        "claude": "word_database_claude-4.json",
        "gemini": "word_database_gemini-2.5-flash-nothinking.json",
        "gpt5nano": "word_database_gpt5-nano.json",
        "ideasearchfitter": "ideasearchfitter_database.json",
    }
    # an unknown word file is listed, never taken for GPT-5 Nano's; hidden folders ignored
    assert sorted(lf.unknown) == ["README.md", "data/word_database_llama.json"]
    src = Sources(letter_dir)
    assert src.kind == "letter"
    assert src.file_of("claude") == "word_database_claude-4.json"
    assert src.file_of("gemini") == "word_database_gemini-2.5-flash-nothinking.json"
    assert src.file_of("words") == "word_database_gpt5-nano.json"
    assert src.file_of("symbolic") == "ideasearchfitter_database.json"
    # the words are GPT-5 Nano's (about 600), not Claude's 5 (first "word" file by name)
    assert src.words.n_states > 500
    assert src.claude.n_states == 5
    assert src.symbolic.metadata["mse"].notna().all()


def test_claude_file_with_table2_counts_gives_eq22_exactly(letter_dir):
    src = Sources(letter_dir)
    assert src.convention("claude").estimator == "fixed"
    fit = src.claude_fit
    np.testing.assert_allclose(fit.transitions.n0, SCRIPT_CALLS / 5)  # 4000 per word
    v = fit.potential
    assert v["ATTITUDE"] == pytest.approx(0.0, abs=1e-9)
    assert v["PERSONAL"] == pytest.approx(np.log(3879 / 66), abs=1e-6)  # 4.07
    assert v["PROBLEM"] == pytest.approx(np.log(3558 / 20), abs=1e-6)  # 5.18
    assert v["TURKEY"] == np.inf and v["BUZZY"] == np.inf
    # dbnb's out-count estimator (Eq. 24) on the same file is not Eq. 22
    assert fit_potential(src.claude).potential["PERSONAL"] == pytest.approx(0.26, abs=0.01)
    assert src.claude_table2_differences().empty


def test_claude_file_differences_from_table2_are_listed(tmp_path):
    counts = dict(TABLE2)
    counts[("ATTITUDE", "PERSONAL")] = 67
    write_claude(tmp_path, counts=counts)
    diff = Sources(tmp_path).claude_table2_differences()
    assert diff.to_dict("records") == [
        {"from": "ATTITUDE", "to": "PERSONAL", "file": 67, "Letter": 66}]


def test_gemini_like_file_gives_eq23_pattern(letter_dir):
    fit = Sources(letter_dir).gemini_fit
    v = fit.potential
    finite = {s for s in v.index if np.isfinite(v[s])}
    assert finite == {"ATTITUDE", "DISCIPLINE", "EXCELLENT", "BLISSFUL"}
    assert v["ATTITUDE"] == pytest.approx(0.0, abs=1e-9)
    g = {k: n for k, n in GEMINI.items()}
    for word, want in (("DISCIPLINE", 0.5), ("EXCELLENT", 4.8), ("BLISSFUL", 5.2)):
        assert v[word] == pytest.approx(np.log(g[(word, "ATTITUDE")] / g[("ATTITUDE", word)]),
                                        abs=1e-6)
        assert round(v[word], 1) == want  # Eq. 23 as printed
    assert set(v.index) - finite and all(v[s] == np.inf for s in set(v.index) - finite)
    np.testing.assert_allclose(fit.transitions.n0, SCRIPT_CALLS / 13)


def test_many_state_files_use_the_authors_settings_of_main_py(letter_dir):
    """GPT-5 Nano: high_reject, N_threshold 0; IdeaSearchFitter: low_reject, N_threshold 1."""
    from dbnb.authors import graph_nodes

    src = Sources(letter_dir)
    fit, counts = src.symbolic_fit, src.symbolic
    assert fit.transitions.method == "low_reject"
    kept = np.isin(counts.states, fit.transitions.states)
    # N0 = appearances as a source, self-loops included, states with N0 > 1
    np.testing.assert_array_equal(fit.transitions.n0, counts.observed_calls()[kept])
    assert (fit.transitions.n0 > 1).all()
    fit, counts = src.words_fit, src.words
    assert fit.transitions.method == "fixed"
    # N0 = 20000 / (states on a transition between different states), the same for all
    m = counts.matrix.tocoo()
    nodes = len(np.union1d(m.row[m.row != m.col], m.col[m.row != m.col]))
    assert graph_nodes(counts) == nodes
    np.testing.assert_allclose(fit.transitions.n0, 20000 / nodes)
    assert "high_reject" in src.caption("words")
    assert src.words_fit_dbnb.transitions.method == "outcount"


def test_graph_nodes_leaves_out_states_seen_only_repeating_themselves():
    from dbnb import TransitionCounts
    from dbnb.authors import graph_nodes

    c = TransitionCounts.from_pairs(["A", "B", "C"], ["B", "A", "C"])
    assert c.n_states == 3 and graph_nodes(c) == 2
    with pytest.raises(ValueError, match="no transition between two different states"):
        graph_nodes(TransitionCounts.from_pairs(["C"], ["C"]))


def test_words_top_of_a_large_letter_file_fits(tmp_path):
    # the Fig. 6 analogue once raised "estimator 'outcount' with min_calls=2 keeps no state"
    write_words(tmp_path)
    src = Sources(tmp_path)
    full = src.words
    sub = src.words_top(6)
    assert sub.calls_kind == "nominal"
    np.testing.assert_array_equal(
        sub.calls, full.observed_calls()[np.isin(full.states, sub.states)])
    fit = fit_potential(sub, min_calls=0)
    assert fit.transitions.n_states == 6
    # T is the probability per call of the whole data set, not renormalised to the six
    f, g, t, n = fit.transitions.edges()
    np.testing.assert_allclose(t, n / sub.calls[f])


def test_bom_is_accepted(tmp_path):
    path = write_claude(tmp_path, bom=True)
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    counts = datasets.read_letter_json(path)
    assert counts.count("ATTITUDE", "PERSONAL") == 66
    word_dict = write(tmp_path / "raw.json", {"BUZZY": ["ATTITUDE"]}, bom=True)
    assert datasets.read_letter_json(word_dict).count("BUZZY", "ATTITUDE") == 1


def test_malformed_files_name_the_file(tmp_path):
    bad = tmp_path / "word_database_gpt5-nano.json"
    bad.write_text('[{"target_expression": "A", "source_expressions": [')
    with pytest.raises(ValueError, match="word_database_gpt5-nano.json is not valid JSON"):
        _ = Sources(tmp_path).words
    bad.write_text(json.dumps([{"source_expressions": []}]))
    with pytest.raises(ValueError, match="word_database_gpt5-nano.json: element 0 has no "
                                         "'target_expression'"):
        _ = Sources(tmp_path).words
    bad.write_text("3")
    with pytest.raises(ValueError, match="word_database_gpt5-nano.json: expected a JSON array"):
        datasets.read_letter_json(bad)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither 'shipped', 'paper', a folder"):
        Sources(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds none of the Letter's files.*notes.txt"):
        _ = Sources(tmp_path).letter_files
    write_gemini(tmp_path)
    src = Sources(tmp_path)
    assert not src.available("words") and src.available("gemini")
    with pytest.raises(ValueError, match="no GPT-5 Nano word file.*word_database_gpt5-nano"):
        _ = src.words


def fake_hub(monkeypatch, api, download=None):
    """A stand-in ``huggingface_hub`` module (the real one may be absent; never the network)."""
    import types

    hub = types.ModuleType("huggingface_hub")
    hub.HfApi = api
    hub.hf_hub_download = download
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)


def test_paper_offline_fails_clearly(monkeypatch):
    class DeadApi:
        def list_repo_files(self, *a, **k):
            raise OSError("network unreachable")

    fake_hub(monkeypatch, DeadApi)
    with pytest.raises(ConnectionError, match="needs a network connection once.*--source DIR"):
        _ = Sources("paper").words


def test_paper_download_maps_by_name(monkeypatch, tmp_path):
    paths = write_all(tmp_path)
    listed = {f"data/{p.name}": p for p in paths.values()}
    listed["README.md"] = None

    class FakeApi:
        def list_repo_files(self, repo_id, repo_type, revision=None):
            assert repo_type == "dataset"
            return list(listed)

    def fake_download(repo_id, name, repo_type, revision=None, cache_dir=None):
        return str(listed[name])

    fake_hub(monkeypatch, FakeApi, fake_download)
    src = Sources("paper")
    assert set(src.letter_files.files) == {"claude", "gemini", "gpt5nano", "ideasearchfitter"}
    assert src.letter_files.unknown == ("README.md",)
    assert src.file_of("words") == "word_database_gpt5-nano.json"


def test_one_comparison_group_with_its_own_bootstrap():
    src = dbnb_sources.shipped_sources()
    if not src.available("prompts"):
        pytest.skip("no prompt comparison in source 'shipped'")
    quick = src.comparison("prompts", n_boot=0)[0]
    assert quick.info["n_boot"] == 0 and np.isnan(quick.spearman[1:]).all()
    full = src.comparisons["prompts"][0]
    assert full.info["n_boot"] == dbnb_sources.COMPARISON_N_BOOT
    assert full.pearson == quick.pearson and full.spearman[0] == quick.spearman[0]
    assert full.spearman[1] < full.spearman[0] < full.spearman[2]
    with pytest.raises(KeyError, match="unknown comparison group 'colours'"):
        src.comparison("colours")
    with pytest.raises(FileNotFoundError, match="comparison 'models'.*source"):
        Sources(dbnb_sources.shipped_sources().data / "runs" / "word_constrained_fixed.jsonl.gz"
                        ).comparison("models")


def test_a_letter_file_in_the_raw_word_format_is_read_by_its_name(tmp_path):
    """The authors' sampling script writes {prompt: [replies]}; under GPT-5 Nano's name that
    format is read as well (INVALID00 an escape, never a state)."""
    write(tmp_path / "word_database_gpt5-nano.json",
          {"BUZZY": ["ATTITUDE", "ATTITUDE", "INVALID00", "TURKEY"],
           "ATTITUDE": ["BUZZY", "EXCELLENT"], "INVALID00": ["ATTITUDE"]})
    src = Sources(tmp_path)
    words = src.words
    assert src.file_of("words") == "word_database_gpt5-nano.json"
    assert "INVALID00" not in words.states
    assert words.count("BUZZY", "ATTITUDE") == 2 and words.count("ATTITUDE", "EXCELLENT") == 1
    assert words.escapes[words.states.index("BUZZY")] == 1
    assert src.words_fit.transitions.method == "fixed"  # the authors' high_reject


def test_paper_offline_reads_the_hugging_face_cache(monkeypatch, tmp_path):
    """Offline after one download: the snapshot in the Hugging Face cache is used."""
    snapshot = tmp_path / "datasets--Nondegeneracy--detailed-balance-llm" / "snapshots" / "abc"
    write_all(snapshot / "data")
    calls = []

    class DeadApi:
        def list_repo_files(self, *a, **k):
            raise OSError("network unreachable")

    def cached(repo_id, repo_type, revision=None, cache_dir=None, local_files_only=False):
        calls.append((repo_id, repo_type, local_files_only))
        return str(snapshot)

    fake_hub(monkeypatch, DeadApi)
    sys.modules["huggingface_hub"].snapshot_download = cached
    src = Sources("paper")
    assert src.file_of("words") == "word_database_gpt5-nano.json"
    assert src.words.n_states > 500
    assert calls == [("Nondegeneracy/detailed-balance-llm", "dataset", True)]
    assert "Hugging Face cache" in src.letter_files.where

    def not_cached(*a, **k):
        raise FileNotFoundError("not in the cache")

    sys.modules["huggingface_hub"].snapshot_download = not_cached
    with pytest.raises(ConnectionError, match="'Nondegeneracy/detailed-balance-llm'.*"
                                              "needs a network connection once.*--source DIR"):
        _ = Sources("paper").letter_files
