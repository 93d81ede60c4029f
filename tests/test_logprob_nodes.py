"""Stored child logits and temperature re-weighting (dbnb.llm.logprob.nodes): no model needed."""

import numpy as np
import pytest


# ------------------------------------------------- stored child logits, any temperature (nodes)
def _two_word_record(follow_a: bool = True):
    """Candidates A (0), AB (1). Root -> node 1 "A" (internal), node 2 "AB" (leaf);
    node 1 -> node 3 "AB" (leaf). Node 1 is complete (A), so EOG (two tokens) is allowed."""
    from dbnb.llm.logprob.nodes import NodeRecord

    lr, le = np.array([0.3, -0.4], np.float32), np.array([1.1, 0.2], np.float32)
    l3 = np.array([0.5], np.float32)
    if follow_a:
        return NodeRecord(node=np.array([0, 1]), offset=np.array([0, 2, 3]),
                          child=np.array([1, 2, 3]), logit=np.concatenate([lr, l3]),
                          eog=np.array([[np.nan, np.nan], le]), word=np.array([-1, 0]),
                          child_word=np.array([0, 1, 1]),
                          child_leaf=np.array([False, True, True])), lr, le, l3
    return NodeRecord(node=np.array([0]), offset=np.array([0, 2]), child=np.array([1, 2]),
                      logit=lr, eog=np.array([[np.nan, np.nan]]), word=np.array([-1]),
                      child_word=np.array([0, 1]),
                      child_leaf=np.array([False, True])), lr, le, l3


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_reweight_closed_form(t):
    from dbnb.llm.logprob.nodes import reweight

    rec, lr, le, l3 = _two_word_record()
    p, up, unc = reweight(rec, t, 2, lambda c: np.array([0, 1]))

    def sm(x):
        e = np.exp(np.asarray(x, float) / t)
        return e / e.sum()

    root = sm(lr)
    at_a = sm(np.concatenate([l3, le]))
    np.testing.assert_allclose(p, [root[0] * at_a[1:].sum(), root[1] + root[0] * at_a[0]],
                               rtol=1e-12)
    assert p.sum() == pytest.approx(1.0, abs=1e-12) and unc == 0.0
    np.testing.assert_array_equal(up, p)


def test_reweight_unfollowed_child_is_uncovered_at_its_temperature():
    from dbnb.llm.logprob.nodes import reweight

    rec, lr, *_ = _two_word_record(follow_a=False)
    for t in (0.5, 2.0):
        p, up, unc = reweight(rec, t, 2, lambda c: np.array([0, 1]))
        e = np.exp(lr.astype(float) / t)
        assert unc == pytest.approx(e[0] / e.sum(), rel=1e-12)
        assert p[0] == 0.0 and p[1] == pytest.approx(e[1] / e.sum(), rel=1e-12)
        np.testing.assert_allclose(up, np.minimum(p + unc, 1.0), rtol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        reweight(rec, 0.0, 2, lambda c: np.array([0, 1]))


@pytest.mark.parametrize("min_prob", [0.0, 0.05])
def test_walk_record_reweight_at_one_equals_walk(min_prob):
    """The walk on a fake model (logits per node), recorded, re-weighted at T = 1."""
    from types import SimpleNamespace

    from dbnb.llm.logprob.nodes import reweight, to_record
    from dbnb.llm.logprob.tree import TokenTree
    from dbnb.llm.logprob.walk import walk

    words = ["AB", "A", "BA", "ABA"]
    pieces = {"A": [1], "B": [2], "AB": [3], "BA": [4], "ABA": [5]}
    tree = TokenTree(words, pieces, 3)
    m = SimpleNamespace(llm=None, eog=np.array([0, 6]))

    def logits_of(n):
        return np.random.default_rng(n).normal(0, 2, 7).astype(np.float32).astype(float)

    rows: list = []
    lower, upper, _, stuck, _ = walk(m, [0, 0], tree, "fresh", len(words), min_prob, logits_of,
                                     record=rows)
    rec = to_record(rows, 2)
    p, up, unc = reweight(rec, 1.0, len(words),
                          lambda c: tree.completions(tree.text[c]))
    np.testing.assert_allclose(p, np.exp(lower), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(up, upper, rtol=1e-6, atol=1e-12)
    assert p.sum() + unc == pytest.approx(1.0, abs=1e-9)
    p2, _, unc2 = reweight(rec, 2.0, len(words), lambda c: tree.completions(tree.text[c]))
    assert p2.sum() + unc2 == pytest.approx(1.0, abs=1e-9)
    assert not np.allclose(p2, p)


def test_cutoff_at_every_temperature_bounds_the_hot_kernel():
    """Following children by their path probability at T = 2 as well: the T = 2 kernel's
    uncovered mass falls, and with one temperature the walk is unchanged."""
    from types import SimpleNamespace

    from dbnb.llm.logprob.nodes import reweight, to_record
    from dbnb.llm.logprob.tree import TokenTree
    from dbnb.llm.logprob.walk import walk

    words = ["AB", "A", "BA", "ABA", "BAB", "B"]
    pieces = {"A": [1], "B": [2], "AB": [3], "BA": [4], "ABA": [5]}
    tree = TokenTree(words, pieces, 3)
    m = SimpleNamespace(llm=None, eog=np.array([0, 6]))

    def logits_of(n):
        return np.random.default_rng(n).normal(0, 3, 7).astype(np.float32).astype(float)

    def run(temps, min_prob=0.05):
        rows: list = []
        out = walk(m, [0, 0], tree, "fresh", len(words), min_prob, logits_of, record=rows,
                   cutoff_temperatures=temps)
        return out, to_record(rows, 2)

    comp = lambda c: tree.completions(tree.text[c])  # noqa: E731
    (lo1, up1, _, _, v1), rec1 = run((1.0,))
    (lo_same, up_same, _, _, v_same), _ = run(())  # 1 is always a cut-off temperature
    np.testing.assert_array_equal(lo1, lo_same)
    assert v1 == v_same
    (lo2, up2, _, _, v2), rec2 = run((1.0, 2.0))
    assert v2 >= v1
    _, _, unc_one = reweight(rec1, 2.0, len(words), comp)
    p_all, _, unc_all = reweight(rec2, 2.0, len(words), comp)
    assert unc_all < unc_one
    # exact answer: no cut-off at all
    (_, _, _, _, _), rec0 = run((1.0,), min_prob=0.0)
    p_exact, _, unc0 = reweight(rec0, 2.0, len(words), comp)
    assert unc0 < 1e-12
    assert np.all(p_all <= p_exact + 1e-12)
    assert p_exact.sum() - p_all.sum() == pytest.approx(unc_all, abs=1e-9)
    # T = 1: following more children only raises the lower bounds, never past the exact value
    (lo0, _, _, _, _), _ = run((1.0,), min_prob=0.0)
    assert np.all(lo2 >= lo1 - 1e-12) and np.all(lo2 <= lo0 + 1e-12)
