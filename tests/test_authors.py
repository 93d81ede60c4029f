"""dbnb.authors: the authors' conventions by name, and the numbers on their plots recomputed as
their ``plot.py`` computes them (checked by hand and against a plain transcription)."""

from __future__ import annotations

import math
from collections import Counter

import letter_files as lf  # tests/conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from dbnb import TransitionCounts, authors, fit_potential
from dbnb.sources import Sources


@pytest.fixture(scope="module")
def letter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("letter")
    lf.write_all(folder)
    return folder


def test_conventions_by_name_and_by_file():
    assert authors.convention("low_reject") is authors.NAMED["low_reject"]
    assert authors.convention("high_reject").name == "high_reject"
    assert authors.convention("gpt5nano").name == "high_reject"  # main.py
    assert authors.convention("ideasearchfitter").name == "low_reject"
    assert authors.convention("claude").name == "eq18"
    with pytest.raises(KeyError, match="names: .*'low_reject'.*file roles: .*'gpt5nano'"):
        authors.convention("eq24")


def test_sources_fit_takes_either_convention_by_name(letter_dir):
    src = Sources(letter_dir)
    lo, hi = src.fit("words", "low_reject"), src.fit("words", "high_reject")
    assert lo.transitions.method == "low_reject"
    kept = np.isin(src.words.states, lo.transitions.states)
    np.testing.assert_array_equal(lo.transitions.n0, src.words.observed_calls()[kept])
    np.testing.assert_allclose(hi.transitions.n0, 20000 / authors.graph_nodes(src.words))
    assert "low_reject" in lo.transitions.counts.source  # the caption names it
    # the default is main.py's high_reject, the same fit as words_fit
    np.testing.assert_allclose(src.fit("words").potential, src.words_fit.potential)
    np.testing.assert_allclose(hi.potential, src.words_fit.potential)
    assert not np.allclose(lo.potential.reindex(hi.potential.index), hi.potential,
                           equal_nan=True)
    assert src.fit("words", "dbnb").transitions.method == "outcount"
    assert src.fit("symbolic", "high_reject").transitions.method == "fixed"
    with pytest.raises(ValueError, match="unknown convention 'eq24'"):
        src.fit("words", "eq24")
    with pytest.raises(ValueError, match="no data set 'table2'"):
        src.fit("table2")


def test_letter_sample_is_numpy_legacy_generator_seeded_42():
    idx, flip = authors.letter_sample(103, 5)
    np.random.seed(42)  # the authors' plot.py, verbatim in effect  # noqa: NPY002
    want = np.random.choice(103, size=103 // 5, replace=False)  # noqa: NPY002
    want_flip = np.random.choice([1, -1], size=want.size)  # noqa: NPY002
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(flip, want_flip)
    assert authors.letter_sample(9, 10)[0].size == 0
    with pytest.raises(ValueError, match="ratio must be an integer >= 1"):
        authors.letter_sample(10, 0)


def _by_hand_counts() -> TransitionCounts:
    pairs = ([("A", "B")] * 3 + [("B", "A")] * 2 + [("A", "C")] * 2 + [("C", "A")]
             + [("B", "C")] * 4 + [("C", "B")] * 2 + [("A", "A"), ("A", "INVALID00")])
    return TransitionCounts.from_pairs([p[0] for p in pairs], [p[1] for p in pairs])


def test_letter_pairs_by_hand():
    c = _by_hand_counts()
    # appearances as a source: self-loop and the rejected reply included
    np.testing.assert_array_equal(authors.appearances(c), [7, 6, 3])
    fit = fit_potential(c, estimator="low_reject", min_calls=0)
    v = fit.relative
    p = authors.letter_pairs(fit, c, ratio=1)
    # {A, C} is seen once one way: out; {A, B} and {B, C} enter
    assert p.n == 2
    got = {tuple(c.states[i] for i in m): (x, y, e) for m, x, y, e in
           zip(p.members, p.x, p.y, p.error, strict=True)}
    x, y, e = got[("A", "B")]
    assert x == pytest.approx(v["A"] - v["B"])
    assert y == pytest.approx(math.log((3 / 7) / (2 / 6)))
    assert e == pytest.approx(math.sqrt(1 / 3 + 1 / 7 + 1 / 2 + 1 / 6))
    assert got[("B", "C")][1] == pytest.approx(math.log((4 / 6) / (2 / 3)))
    assert p.chi2_ndf == pytest.approx(np.mean((p.y - p.x) ** 2))  # unweighted
    # the exclusion |beta dV| > log(samples): default the samples (escapes are not samples)
    assert c.n_samples == 15
    cut = float(np.exp(np.mean(np.abs(p.x))))  # between the two |x|
    assert abs(v["A"] - v["B"]) != pytest.approx(abs(v["B"] - v["C"]))
    assert authors.letter_pairs(fit, c, samples=cut).n == 1
    with pytest.raises(ValueError, match="samples must be > 1"):
        authors.letter_pairs(fit, c, samples=1)


def _loops_transcribed(counts: TransitionCounts, threshold: int):
    """The authors' plot_loop_balance restated over plain dicts (no dbnb array code)."""
    s = counts.states
    f_idx, g_idx, c = counts.edges()
    w = {(s[f], s[g]): int(n) for f, g, n in zip(f_idx, g_idx, c, strict=True)}
    a = Counter({s[i]: int(x) for i, x in enumerate(authors.appearances(counts))})
    succ: dict[str, list[str]] = {}
    for f, g in w:
        succ.setdefault(f, []).append(g)
    seen, chi = set(), []
    for f in succ:
        for g in succ.get(f, []):
            for h in succ.get(g, []):
                if h in (f, g) or (h, f) not in w:
                    continue
                if not ((f, h) in w and (h, g) in w and (g, f) in w):
                    continue
                key = tuple(sorted((f, g, h)))
                if key in seen:
                    continue
                seen.add(key)
                ns = [a[f], a[g], a[h], w[f, g], w[g, h], w[h, f], w[f, h], w[h, g], w[g, f]]
                if min(ns) <= threshold:
                    continue
                fw = math.log(w[f, g] / a[f]) + math.log(w[g, h] / a[g]) + math.log(w[h, f] / a[h])
                bw = math.log(w[f, h] / a[f]) + math.log(w[h, g] / a[h]) + math.log(w[g, f] / a[g])
                e2 = sum(1 / w[x] + 1 / a[x[0]] for x in
                         [(f, g), (g, h), (h, f), (f, h), (h, g), (g, f)])
                if e2 < 100:
                    chi.append((bw - fw) ** 2 / e2)
    return len(chi), float(np.mean(chi)) if chi else float("nan")


@pytest.mark.parametrize("threshold", [0, 1])
def test_letter_loops_match_a_plain_transcription(tmp_path, threshold):
    lf.write_expressions(tmp_path, n=40)  # dense: cycles with every count >= 2
    counts = Sources(tmp_path).symbolic
    got = authors.letter_loops(counts, threshold=threshold, ratio=5)
    n, chi2 = _loops_transcribed(counts, threshold)
    assert n > 10 and got.n == n
    assert got.chi2_ndf == pytest.approx(chi2, rel=1e-12)
    assert got.shown.size == n // 5 and (np.diff(got.shown) > 0).all()


def test_loop_threshold_defaults_follow_main_py(tmp_path):
    lf.write_expressions(tmp_path, n=40)  # dense: cycles with every count >= 2
    counts = Sources(tmp_path).symbolic
    default = authors.letter_loops(counts, role="ideasearchfitter")
    assert default.n == authors.letter_loops(counts, threshold=1).n
    assert default.n < authors.letter_loops(counts, threshold=0).n  # every count >= 2
    assert default.shown.size == default.n // 10  # 1/10 shown for IdeaSearchFitter


def test_letter_statistics_of_a_source(letter_dir):
    src = Sources(letter_dir)
    st = src.letter_statistics("words")
    assert set(st) == {"pairs", "pairs_softplus", "loops", "histogram", "histogram_softplus"}
    want = authors.letter_pairs(src.words_fit, src.words, role="gpt5nano")
    assert st["pairs"].n == want.n > 0 and st["pairs"].chi2_ndf == want.chi2_ndf
    assert st["pairs"].shown.size == want.n // 5
    assert st["loops"].n == authors.letter_loops(src.words, threshold=0).n
    with pytest.raises(ValueError, match="no Letter file for 'words'"):
        Sources("shipped").letter_statistics("words")


def test_letter_histogram_selects_and_fits_as_plot_py(letter_dir):
    src = Sources(letter_dir)
    fit, counts = src.words_fit, src.words
    h = authors.letter_histogram(fit, counts)
    a = dict(zip(counts.states, authors.appearances(counts), strict=True))
    finite = fit.potential[np.isfinite(fit.potential)]
    v = np.array([finite[s] for s in finite.index if a[s] > 1]) - finite.mean()
    np.testing.assert_allclose(np.sort(h.values), np.sort(v))
    assert h.heights.sum() == h.n and h.heights.size == 50
    # a least-squares Gaussian to the bins: near the values' spread, but not the moments
    assert abs(h.sigma - v.std()) < 0.25 * v.std() and h.sigma != pytest.approx(v.std())
    assert abs(h.mu) < 0.5 * v.std() and h.mu != pytest.approx(v.mean(), abs=1e-3)
    # the fit is the least-squares optimum: moving any parameter raises the squared error
    centres = (h.edges[:-1] + h.edges[1:]) / 2

    def sse(m, s):
        shape = np.exp(-((centres - m) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s)
        amp = float(shape @ h.heights / (shape @ shape))  # best amplitude for (m, s)
        return float(np.sum((amp * shape - h.heights) ** 2))

    best = sse(h.mu, h.sigma)
    for dm, ds in ((0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)):
        assert sse(h.mu + dm, h.sigma + ds) > best
    assert np.isnan(authors.letter_histogram(fit, counts.submodel([0, 1])).sigma)
    with pytest.raises(ValueError, match="bins must be an integer"):
        authors.letter_histogram(fit, counts, bins=0)
