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
