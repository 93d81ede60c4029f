"""Tests of the immutable counts object (dbnb.counts)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dbnb import TransitionCounts

# Eight hand-made calls (deeptime style). Sources -> targets:
#   A->B, A->B, A->C, A->A, B->A, B->INVALID00, C->A, C->B
# so N(B<-A)=2, N(C<-A)=1, N(A<-A)=1, N(A<-B)=1, N(A<-C)=1, N(B<-C)=1; one escape from B.
SRC = ["A", "A", "A", "A", "B", "B", "C", "C"]
TGT = ["B", "B", "C", "A", "A", "INVALID00", "A", "B"]


@pytest.fixture
def counts():
    return TransitionCounts.from_pairs(SRC, TGT)


def test_from_pairs_matrix_convention(counts):
    assert counts.states == ("A", "B", "C")
    expected = np.array(
        [  # rows: target g, columns: source f
            [1, 1, 1],  # A <- A, A <- B, A <- C
            [2, 0, 1],  # B <- A, B <- C
            [1, 0, 0],  # C <- A
        ]
    )
    np.testing.assert_array_equal(counts.matrix.toarray(), expected)
    np.testing.assert_array_equal(counts.escapes, [0, 1, 0])
    assert counts.calls is None and counts.calls_kind is None


def test_derived_counts(counts):
    np.testing.assert_array_equal(counts.observed_calls(), [4, 1, 2])
    np.testing.assert_array_equal(counts.self_loops(), [1, 0, 0])
    np.testing.assert_array_equal(counts.out_counts(), [3, 1, 2])
    np.testing.assert_array_equal(counts.in_counts(), [2, 3, 1])
    assert counts.n_samples == 7
    assert counts.n_unique_transitions == 5


def test_statistics_table3(counts):
    s = counts.statistics()
    assert s["samples"] == 7
    assert s["states"] == 3
    assert s["unique_transitions"] == 5
    assert s["states_sampled_more_than_once"] == 2  # A (4) and C (2); B only once
    assert s["escapes"] == 1


def test_first_seen_metadata(counts):
    assert list(counts.metadata["first_seen"]) == [0, 1, 2]


def test_immutable(counts):
    with pytest.raises(ValueError):
        counts.matrix.data[0] = 5
    with pytest.raises(AttributeError):
        counts.states = ("X",)


def test_from_triples_adds_repeats_and_exact_calls():
    c = TransitionCounts.from_triples(
        ["A", "A", "B"], ["B", "B", "A"], [2, 3, 4], calls={"A": 10, "B": 4}
    )
    assert c.count("A", "B") == 5
    assert c.calls_kind == "exact"
    np.testing.assert_array_equal(c.calls, [10, 4])


def test_exact_calls_checked_against_recorded_replies():
    with pytest.raises(ValueError, match=r"N0\('A'\) = 3 is smaller than the 5"):
        TransitionCounts.from_triples(["A"], ["B"], [5], calls={"A": 3, "B": 1})
    # nominal calls may be exceeded (Table II)
    c = TransitionCounts.from_triples(
        ["A"], ["B"], [5], calls={"A": 3, "B": 1}, calls_kind="nominal"
    )
    assert c.calls_kind == "nominal"


@pytest.mark.parametrize(
    "counts, match",
    [
        ([-1], "non-negative"),
        ([1.5], "whole numbers"),
        ([np.nan], "non-finite"),
        (["x"], "numeric"),
    ],
)
def test_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        TransitionCounts.from_triples(["A"], ["B"], counts)


def test_bad_labels_and_shapes():
    with pytest.raises(ValueError, match="same length"):
        TransitionCounts.from_pairs(["A", "B"], ["B"])
    with pytest.raises(ValueError, match="non-empty string"):
        TransitionCounts.from_pairs(["A", ""], ["B", "A"])
    with pytest.raises(ValueError, match="escape marker"):
        TransitionCounts.from_pairs(["INVALID00"], ["A"])
    with pytest.raises(ValueError, match="unique"):
        TransitionCounts(states=("A", "A"), matrix=sp.csr_array((2, 2)))
    with pytest.raises(ValueError, match=r"shape \(3, 3\) but there are 2 states"):
        TransitionCounts(states=("A", "B"), matrix=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not in the given states"):
        TransitionCounts.from_pairs(["A"], ["Z"], states=["A", "B"])
    with pytest.raises(ValueError, match="unknown states"):
        TransitionCounts.from_pairs(["A"], ["B"], calls={"Q": 3})
    with pytest.raises(ValueError, match="calls_kind"):
        TransitionCounts(
            states=("A",), matrix=np.zeros((1, 1)), calls=np.array([1]), calls_kind="guess"
        )


def test_submodel_keeps_labels_and_calls():
    c = TransitionCounts.from_triples(
        ["A", "A", "B", "C"], ["B", "C", "C", "A"], [1, 2, 3, 4], calls={"A": 5, "B": 5, "C": 5}
    )
    sub = c.submodel(["C", "A"])
    assert sub.states == ("C", "A")
    assert sub.count("A", "C") == 2
    assert sub.count("C", "A") == 4
    np.testing.assert_array_equal(sub.calls, [5, 5])
    assert sub.calls_kind == "exact"
    assert list(sub.metadata.index) == ["C", "A"]
    mask = c.submodel(np.array([True, False, True]))
    assert mask.states == ("A", "C")
    with pytest.raises(KeyError, match="Z"):
        c.submodel(["Z"])


def test_without_self_loops(counts):
    c = counts.without_self_loops()
    assert c.self_loops().sum() == 0
    assert c.count("A", "B") == 2
    assert counts.self_loops().sum() == 1  # original unchanged


def test_scc_largest_first():
    # A <-> B <-> C form one SCC, D -> A only, E isolated via C -> E
    c = TransitionCounts.from_triples(
        ["A", "B", "B", "C", "D", "C"], ["B", "A", "C", "B", "A", "E"], [1, 1, 1, 1, 1, 1]
    )
    comps = c.strongly_connected_components()
    assert [sorted(c.states[i] for i in comp) for comp in comps] == [
        ["A", "B", "C"],
        ["D"],
        ["E"],
    ]


def test_frames_roundtrip(counts):
    df = counts.to_frame()
    back = TransitionCounts.from_frame(df)
    np.testing.assert_array_equal(back.matrix.toarray(), counts.matrix.toarray())
    dense = counts.to_dense_frame()
    assert dense.loc["A", "B"] == 2 and dense.loc["B", "escape"] == 1


def test_metadata_join_and_unknown():
    meta = pd.DataFrame({"score": [1.0, 2.0]}, index=["A", "B"])
    c = TransitionCounts.from_pairs(["A"], ["B"], metadata=meta)
    assert c.metadata.loc["B", "score"] == 2.0
    with pytest.raises(ValueError, match="unknown states"):
        TransitionCounts(
            states=("A",), matrix=np.zeros((1, 1)), metadata=pd.DataFrame({"x": [1]}, index=["Q"])
        )


def test_with_calls_scalar_and_repr(counts):
    c = counts.with_calls(10)
    assert c.calls_kind == "nominal"
    np.testing.assert_array_equal(c.calls, [10, 10, 10])
    assert "3 states" in repr(c)


def test_entries_gathers_pairs_and_handles_empty_indices():
    from dbnb.counts import entries

    m = sp.csr_array(np.array([[0, 2], [3, 0]]))
    np.testing.assert_array_equal(entries(m, [0, 1, 1], [1, 0, 1]), [2, 3, 0])
    out = entries(m, np.array([], dtype=int), np.array([], dtype=int))
    assert isinstance(out, np.ndarray) and out.shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        entries(m, [0], [0, 1])
