"""Tests of the conditioned-word agent's pure parts (no LLM)."""

from __future__ import annotations

import re

import pytest

from dbnb.agents import word
from dbnb.agents.word import (
    counts_from_records,
    grammar,
    letter_sum,
    parse_reply,
    prompt_messages,
    vocabulary,
)


@pytest.mark.parametrize(
    "w, s",
    [("KNOWLEDGE", 96), ("HARDWORK", 98), ("LUCK", 47), ("LOVE", 54), ("MONEY", 72),
     ("ATTITUDE", 100), ("BUZZY", 100), ("turkey", 100), ("A", 1), ("Z", 26)],
)
def test_letter_sum(w, s):
    assert letter_sum(w) == s


def test_worked_examples_are_right_and_in_prompt():
    text = prompt_messages("BUZZY")[0]["content"]
    for w, s in word.WORKED_EXAMPLES:
        assert letter_sum(w) == s
        assert f"{w} = " in text and f"= {s}%" in text
    assert "An example word is BUZZY, whose letters add up to 100%" in text
    assert "new word whose letters add up to 100%" in text
    assert "only the word" in text


@pytest.mark.parametrize("bad", ["", "AB-C", "AB C", 5, None, "ÄPFEL"])
def test_letter_sum_rejects(bad):
    with pytest.raises(ValueError):
        letter_sum(bad)


def test_vocabulary():
    v = vocabulary()
    assert len(v) >= 700
    assert len(set(v)) == len(v)
    assert all(re.fullmatch(r"[A-Z]+", w) for w in v)
    assert all(letter_sum(w) == 100 for w in v)
    assert vocabulary(5) == v[:5]
    assert "ATTITUDE" in v and "EXCELLENT" in v
    with pytest.raises(ValueError, match="n must be"):
        vocabulary(0)


@pytest.mark.parametrize(
    "reply, state, reason",
    [
        ("ATTITUDE", "ATTITUDE", None),
        ("attitude", "ATTITUDE", None),
        ("  Attitude \n", "ATTITUDE", None),
        ("**ATTITUDE**", "ATTITUDE", None),
        ('"Attitude."', "ATTITUDE", None),
        ("`attitude`", "ATTITUDE", None),
        ("_Attitude_!", "ATTITUDE", None),
        ("# Attitude", "ATTITUDE", None),
        ("(attitude)", "ATTITUDE", None),
        ("\n\nAttitude\nBecause A=1 ...", "ATTITUDE", None),
        ("", None, "empty"),
        ("   \n  ", None, "empty"),
        (None, None, "empty"),
        ("***", None, "empty"),
        ("Attitude is the word", None, "not_alphabetic"),
        ("ATTI-TUDE", None, "not_alphabetic"),
        ("ATTITUDE100", None, "not_alphabetic"),
        ("Café", None, "not_alphabetic"),
        ("Buzzy", None, "same_as_prompt"),
        ("**buzzy**", None, "same_as_prompt"),
        ("HELLO", None, "wrong_letter_sum"),
        ("Word: ATTITUDE", None, "not_alphabetic"),
    ],
)
def test_parse_reply(reply, state, reason):
    p = parse_reply(reply, "BUZZY")
    assert p.state == state
    assert p.reason == reason
    assert p.is_escape == (state is None)


def test_parse_reply_dictionary():
    # WIZARDS sums to 100; not in a dictionary made of two words
    assert letter_sum("WIZARDS") == 100
    p = parse_reply("Wizards", "BUZZY", vocabulary={"ATTITUDE", "TURKEY"})
    assert (p.state, p.reason) == (None, "not_in_dictionary")
    assert parse_reply("turkey", "BUZZY", vocabulary=["ATTITUDE", "TURKEY"]).state == "TURKEY"
    with pytest.raises(ValueError, match="prompt_word"):
        parse_reply("x", "")
    with pytest.raises(ValueError, match="reply"):
        parse_reply(3, "BUZZY")


def test_grammar():
    g = grammar(["attitude", "TURKEY", "ATTITUDE"])
    assert g == 'root ::= ("ATTITUDE" | "TURKEY")'
    full = grammar(vocabulary())
    assert full.startswith('root ::= ("') and full.endswith('")')
    alts = full[len("root ::= ("):-1].split(" | ")
    assert [a.strip('"') for a in alts] == list(vocabulary())
    for bad in ([], "ATTITUDE", ["A B"], ['A"']):
        with pytest.raises(ValueError):
            grammar(bad)


def test_grammar_parses_with_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp")
    llama_cpp.LlamaGrammar.from_string(grammar(vocabulary(50)), verbose=False)


def test_counts_from_records():
    recs = [
        {"prompt": "BUZZY", "reply": "Attitude"},
        {"prompt": "BUZZY", "reply": "**ATTITUDE**"},
        {"prompt": "BUZZY", "reply": "Turkey"},
        {"prompt": "BUZZY", "reply": "buzzy"},           # self-reply: escape
        {"prompt": "BUZZY", "reply": ""},                 # empty: escape
        {"prompt": "BUZZY", "reply": None, "error": "timeout"},  # not a call
        {"prompt": "ATTITUDE", "reply": "Personal"},
        {"prompt": "ATTITUDE", "reply": "hello"},         # wrong sum
        {"prompt": "TURKEY", "reply": "ATTITUDE"},
    ]
    c = counts_from_records(recs)
    assert c.calls_kind == "exact"
    assert c.states == ("BUZZY", "ATTITUDE", "TURKEY", "PERSONAL")
    assert dict(zip(c.states, c.calls.tolist(), strict=True)) == {
        "BUZZY": 5, "ATTITUDE": 2, "TURKEY": 1, "PERSONAL": 0}
    assert dict(zip(c.states, c.escapes.tolist(), strict=True)) == {
        "BUZZY": 2, "ATTITUDE": 1, "TURKEY": 0, "PERSONAL": 0}
    assert c.count("BUZZY", "ATTITUDE") == 2
    assert c.count("BUZZY", "TURKEY") == 1
    assert c.count("BUZZY", "BUZZY") == 0
    assert c.count("TURKEY", "ATTITUDE") == 1
    m = c.metadata
    assert m.loc["BUZZY", "escape_same_as_prompt"] == 1
    assert m.loc["BUZZY", "escape_empty"] == 1
    assert m.loc["ATTITUDE", "escape_wrong_letter_sum"] == 1
    assert (m["letter_sum"] == 100).all()
    assert m.loc["BUZZY", "freq_rank"] == vocabulary().index("BUZZY") + 1
    assert m.loc["PERSONAL", "freq_rank"] == vocabulary().index("PERSONAL") + 1
    assert list(m["first_seen"]) == [0, 1, 2, 3]


def test_counts_from_records_errors():
    with pytest.raises(ValueError, match="no successful calls"):
        counts_from_records([{"prompt": "BUZZY", "reply": None, "error": "x"}])
    with pytest.raises(ValueError, match="prompt"):
        counts_from_records([{"reply": "ATTITUDE"}])


def test_paraphrase_has_the_same_content_in_other_words():
    from dbnb.agents.word import PROMPTS, WORKED_EXAMPLES, paraphrase_messages

    a = prompt_messages("turkey")[0]["content"]
    b = paraphrase_messages("turkey")[0]["content"]
    assert PROMPTS == {"letter": prompt_messages, "paraphrase": paraphrase_messages}
    assert a != b and "TURKEY" in b and "100%" in b and "26%" in b
    for w, s in WORKED_EXAMPLES:
        assert f"{w} gives" in b and f"= {s}%" in b
    # sentence by sentence reworded: no sentence of the Letter's prompt reappears
    assert not {x.strip() for x in a.split(".") if len(x) > 20} & {
        x.strip() for x in b.split(".") if len(x) > 20}
    with pytest.raises(ValueError, match="word"):
        paraphrase_messages(" ")
