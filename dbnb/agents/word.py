"""The conditioned-word agent (the Letter's METHOD §6): pure parts, no LLM calls.

A state is an English word whose letter values (A=1 ... Z=26) sum to 100. A call shows the model
one such word ``f`` and asks for a *new* word whose letters also sum to 100; the reply ``g`` is
the next state, or an *escape* when it is not a valid new state. :class:`WordAgent` bundles
the prompt, the reply rule and the grammar for :mod:`dbnb.agents.run`.

Reply rule
----------
The Letter upper-cases and strips the reply. Small models decorate their answers (``**WORD**``,
``"Word."``, ``Word\\nExplanation...``), so :func:`parse_reply` is slightly more forgiving and
fully deterministic:

1. take the first non-blank line of the reply;
2. strip surrounding whitespace, then any leading/trailing characters that are not letters or
   digits (punctuation, quotes, markdown ``*``/``_``/``#``/backticks, brackets), then whitespace
   again;
3. upper-case it. The result must be non-empty and consist of ASCII letters A-Z only (an inner
   space, hyphen, apostrophe or digit is ``"not_alphabetic"``).

Escape reasons are checked in this order: ``"empty"``, ``"not_alphabetic"``,
``"same_as_prompt"``, ``"wrong_letter_sum"``, ``"not_in_dictionary"`` (the last only when a
vocabulary is given).

Grammar
-------
:func:`grammar` returns a GBNF grammar whose language is exactly the vocabulary (every word,
including the prompt word itself). Constrained decoding thus always yields a dictionary word with
letter sum 100; a reply equal to the prompt word is parsed as the escape ``"same_as_prompt"``
(the Letter's rule), so one grammar serves all prompts and the escape probability of a state is
the model's probability of repeating it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..counts import TransitionCounts
from .base import Parsed, flatten_records, reply_params
from .base import counts_from_records as _counts_from_records

__all__ = [
    "ESCAPE_REASONS",
    "START_WORD",
    "TARGET_SUM",
    "WORKED_EXAMPLES",
    "Parsed",
    "WordAgent",
    "counts_from_records",
    "grammar",
    "letter_sum",
    "parse_reply",
    "PROMPTS",
    "paraphrase_messages",
    "prompt_messages",
    "vocabulary",
    "word_logprob_kernel",
    "word_logprob_kernels",
    "vocabulary_path",
]

#: Letter sum of every state.
TARGET_SUM = 100
#: The Letter's first prompt word.
START_WORD = "BUZZY"
#: Worked examples shown in the prompt (word, letter sum), as in the Letter.
WORKED_EXAMPLES: tuple[tuple[str, int], ...] = (
    ("KNOWLEDGE", 96),
    ("HARDWORK", 98),
    ("LUCK", 47),
    ("LOVE", 54),
    ("MONEY", 72),
)
#: Why a reply is not a state.
ESCAPE_REASONS = (
    "empty",
    "not_alphabetic",
    "same_as_prompt",
    "wrong_letter_sum",
    "not_in_dictionary",
)
VOCABULARY_FILE = "words100.txt"

_ALPHA = re.compile(r"[A-Z]+")


def letter_sum(word: str) -> int:
    """Sum of the letter values A=1 ... Z=26 of ``word`` (case-insensitive).

    Raises
    ------
    ValueError
        If ``word`` is not a string of ASCII letters.

    Examples
    --------
    >>> letter_sum("attitude")
    100
    """
    if not isinstance(word, str) or not word or not _ALPHA.fullmatch(word.upper()):
        raise ValueError(f"word must be a non-empty string of ASCII letters, got {word!r}")
    return sum(ord(c) - 64 for c in word.upper())


def prompt_messages(word: str) -> list[dict[str, str]]:
    """Chat messages of the Letter's prompt with example word ``word`` (our wording).

    A preamble explains the letter values with the Letter's worked examples; then the request
    "an example word is {f}, whose letters add up to 100%; give a new word whose letters add up
    to 100%; only the word". One user message, no system message (the chat template adds its
    default system prompt, as the server does).
    """
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty string, got {word!r}")
    examples = ", ".join(
        f"{w} = {' + '.join(str(ord(c) - 64) for c in w)} = {s}%" for w, s in WORKED_EXAMPLES
    )
    content = (
        "Give each letter of the alphabet a value: A = 1%, B = 2%, C = 3%, ..., Z = 26%. "
        "A word's value is the sum of the values of its letters. For example: "
        f"{examples}.\n"
        f"An example word is {word.strip().upper()}, whose letters add up to 100%. "
        "Give a new word whose letters add up to 100%. Answer with only the word."
    )
    return [{"role": "user", "content": content}]


def paraphrase_messages(word: str) -> list[dict[str, str]]:
    """The same request as :func:`prompt_messages` in other words (a prompt-template control).

    The same content (letter values, the three worked examples, the example word, the 100 %
    target, a one-word answer) and the same vocabulary, reworded sentence by sentence and in
    another order, so that a potential that survives the change is not a property of the
    wording. One user message.
    """
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty string, got {word!r}")
    examples = "; ".join(
        f"{w} gives {' + '.join(str(ord(c) - 64) for c in w)} = {s}%" for w, s in WORKED_EXAMPLES
    )
    content = (
        f"The word {word.strip().upper()} scores exactly 100%. Its score is found by adding up "
        "the percentages of its letters, where every letter is worth its place in the "
        "alphabet: A is 1%, B is 2%, C is 3%, and so on up to Z at 26%. Some worked "
        f"examples: {examples}.\n"
        "Reply with one different word that also scores exactly 100%, and nothing else."
    )
    return [{"role": "user", "content": content}]


#: The word agent's prompt templates by name: the Letter's (our wording) and a paraphrase.
PROMPTS = {"letter": prompt_messages, "paraphrase": paraphrase_messages}


def _clean(reply: str) -> str:
    for line in reply.splitlines():
        if line.strip():
            break
    else:
        return ""
    s = line.strip()
    # strip surrounding non-alphanumerics (punctuation, quotes, markdown), keep inner ones
    s = re.sub(r"^[\W_]+", "", s)
    s = re.sub(r"[\W_]+$", "", s)
    return s.strip().upper()


def parse_reply(
    reply: str | None,
    prompt_word: str,
    *,
    vocabulary: Iterable[str] | None = None,
) -> Parsed:
    """Parse a model reply into the next state or an escape (see the module docstring).

    Parameters
    ----------
    reply : str or None
        The model's text. ``None`` counts as empty.
    prompt_word : str
        The state ``f`` the call was made from (compared case-insensitively).
    vocabulary : iterable of str, optional
        A dictionary of allowed upper-case words; a valid reply outside it escapes with
        ``"not_in_dictionary"``. Pass a ``set``/``frozenset`` for speed.

    Examples
    --------
    >>> parse_reply("**Attitude.**", "BUZZY")
    Parsed(state='ATTITUDE', reason=None, word='ATTITUDE')
    >>> parse_reply("buzzy", "BUZZY").reason
    'same_as_prompt'
    """
    if reply is not None and not isinstance(reply, str):
        raise ValueError(f"reply must be a string or None, got {type(reply).__name__}")
    if not isinstance(prompt_word, str) or not prompt_word:
        raise ValueError(f"prompt_word must be a non-empty string, got {prompt_word!r}")
    word = _clean(reply or "")
    if not word:
        return Parsed(None, "empty", word)
    if not word.isascii() or not _ALPHA.fullmatch(word):
        return Parsed(None, "not_alphabetic", word)
    if word == prompt_word.strip().upper():
        return Parsed(None, "same_as_prompt", word)
    if letter_sum(word) != TARGET_SUM:
        return Parsed(None, "wrong_letter_sum", word)
    if vocabulary is not None:
        vocab = vocabulary if isinstance(vocabulary, (set, frozenset)) else set(vocabulary)
        if word not in vocab:
            return Parsed(None, "not_in_dictionary", word)
    return Parsed(word, None, word)


# ---------------------------------------------------------------------------- vocabulary
def vocabulary_path():
    """Path of the shipped word list (``data/words100.txt``)."""
    from ..datasets import data_dir

    return data_dir() / VOCABULARY_FILE


@lru_cache(maxsize=4)
def _read_vocabulary(path: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as fh:
        return tuple(
            line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")
        )


def vocabulary(n: int | None = None) -> tuple[str, ...]:
    """The shipped vocabulary: English words with letter sum 100, most frequent first.

    Made by ``scripts/make_vocab.py`` from wordfreq's top 100,000 English words (see the
    file's header). ``n`` keeps the ``n`` most frequent.
    """
    words = _read_vocabulary(str(vocabulary_path()))
    if n is None:
        return words
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    return words[: int(n)]


def grammar(vocabulary: Iterable[str]) -> str:
    """GBNF grammar ``root ::= ("W1" | "W2" | ...)`` whose language is the vocabulary.

    Words are upper-cased; duplicates are dropped (first occurrence kept). The prompt word is
    not excluded: one grammar serves every prompt, and a reply equal to the prompt is parsed as
    the escape ``"same_as_prompt"``.
    """
    if isinstance(vocabulary, str):
        raise ValueError("vocabulary must be an iterable of words, not a single string")
    words: list[str] = []
    seen: set[str] = set()
    for w in vocabulary:
        if not isinstance(w, str) or not _ALPHA.fullmatch(w.upper()):
            raise ValueError(f"vocabulary words must be ASCII letters only, got {w!r}")
        w = w.upper()
        if w not in seen:
            seen.add(w)
            words.append(w)
    if not words:
        raise ValueError("vocabulary is empty; a grammar needs at least one word")
    return "root ::= (" + " | ".join(f'"{w}"' for w in words) + ")"


# ---------------------------------------------------------------------------- the agent
class WordAgent:
    """The Letter's conditioned-word agent as an :class:`~dbnb.agents.base.Agent`.

    Parameters
    ----------
    vocabulary : sequence of str, optional
        ``mode="constrained"``: the words the reply is restricted to (GBNF grammar passed to
        the server as ``extra_body["grammar"]``). ``mode="free"``: an optional dictionary check
        (``"not_in_dictionary"`` escapes).
    mode : {"free", "constrained"}
        Free: the Letter's exact design, any reply. Constrained: token-level grammar.
    max_tokens : int
        Reply length cap (a word needs a handful of tokens).
    """

    name = "word"

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        *,
        mode: str = "free",
        max_tokens: int = 12,
    ) -> None:
        if mode not in ("free", "constrained"):
            raise ValueError(f"mode must be 'free' or 'constrained', got {mode!r}")
        if mode == "constrained" and not vocabulary:
            raise ValueError("mode='constrained' needs a vocabulary to build the grammar from")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        self.mode = mode
        self.max_tokens = max_tokens
        self.vocabulary = None if vocabulary is None else tuple(w.upper() for w in vocabulary)
        self._vocab_set = None if vocabulary is None else frozenset(self.vocabulary)
        self._grammar = grammar(self.vocabulary) if mode == "constrained" else None

    def __repr__(self) -> str:
        n = "no" if self.vocabulary is None else len(self.vocabulary)
        return f"WordAgent(mode={self.mode!r}, {n} vocabulary words)"

    def messages(self, state: str) -> list[dict[str, str]]:
        return prompt_messages(state)

    def parse(self, reply: str | None, state: str) -> Parsed:
        return parse_reply(reply, state, vocabulary=self._vocab_set)

    def params(self) -> dict[str, Any]:
        return reply_params(self.max_tokens, self._grammar)

    def prompt_meta(self, state: str) -> dict[str, Any]:
        """Nothing beyond the prompt word: the word prompt is a function of the word alone."""
        return {}

    def counts(self, records, *, source: str = "") -> TransitionCounts:
        """Counts with exact N0 from this agent's records."""
        return counts_from_records(
            flatten_records(records), vocabulary=self.vocabulary, source=source
        )


# ---------------------------------------------------------------------------- counts
def counts_from_records(
    records: Iterable[Mapping[str, Any]],
    *,
    vocabulary: Iterable[str] | None = None,
    source: str = "",
) -> TransitionCounts:
    """Transition counts with exact ``N0`` from call records of the word agent.

    Parameters
    ----------
    records : iterable of mappings
        One per call, with at least ``prompt`` (the state ``f``) and ``reply`` (the text).
        A record with a true ``error`` field is a failed request (no reply from the model) and is
        not counted as a call.
    vocabulary : iterable of str, optional
        Dictionary for :func:`parse_reply` (``"not_in_dictionary"`` escapes) and for the
        ``freq_rank`` metadata (1 = most frequent). Defaults to the shipped vocabulary for the
        ranks only, without a dictionary check.

    Returns
    -------
    TransitionCounts
        ``calls_kind="exact"``: ``N0(f)`` = recorded calls from ``f``, escapes (including
        replies equal to the prompt) in ``escapes``. Metadata: ``first_seen`` (order of first
        appearance), ``letter_sum``, ``freq_rank`` (NaN outside the vocabulary), and one
        ``escape_<reason>`` column per escape reason (counts from that state).
    """
    check_vocab = None
    if vocabulary is not None:
        vocab_list = [w.upper() for w in vocabulary]
        check_vocab = frozenset(vocab_list)
    else:
        vocab_list = list(_read_vocabulary(str(vocabulary_path())))
    rank = {w: i + 1 for i, w in enumerate(dict.fromkeys(vocab_list))}

    def state(f, k: int) -> str:
        if not isinstance(f, str) or not _ALPHA.fullmatch(f.strip().upper() or "-"):
            raise ValueError(f"records[{k}]['prompt'] must be a word, got {f!r}")
        return f.strip().upper()

    def metadata(states):
        return {
            "letter_sum": [letter_sum(s) for s in states],
            "freq_rank": [rank.get(s, np.nan) for s in states],
        }

    return _counts_from_records(
        records,
        state=state,
        parse=lambda reply, f: parse_reply(reply, f, vocabulary=check_vocab),
        reasons=ESCAPE_REASONS,
        metadata=metadata,
        source=source,
    )


# ---------------------------------------------------------------- log-probability kernel
def word_logprob_kernel(
    vocabulary: Sequence[str],
    *,
    model: str = "smollm2",
    prompt_fn=None,
    sources: Sequence[str] | None = None,
    progress: bool = True,
    strategy: str = "reuse",
    prompt_mode: str = "fresh",
    min_prob: float = 0.0,
    checkpoint=None,
):
    """``P(g | f)`` of the grammar-constrained word agent over ``vocabulary``, computed.

    :func:`dbnb.llm.logprob.logprob_replies` with the vocabulary as the grammar's words
    (:func:`grammar`) and the Letter's prompt (:func:`prompt_messages`): for every prompt word
    ``f`` and reply ``g``, the probability that the sampler at temperature 1 with no truncation
    replies ``g``, summed over every tokenisation of ``g``.

    Parameters
    ----------
    vocabulary : sequence of str
        The candidate replies (the grammar's words); upper-cased, duplicates rejected.
    model : str or path
        A local model of :data:`dbnb.llm.local.MODELS` (``"smollm2"``) or a GGUF file.
    prompt_fn : callable, optional
        ``word -> chat messages``; default :func:`prompt_messages`.
    sources : sequence of str, optional
        Prompt words (members of ``vocabulary``); default all of them.
    progress, strategy, prompt_mode, min_prob
        As in :func:`dbnb.llm.logprob.logprob_replies`.
    checkpoint : path, optional
        JSON-lines file of finished sources, reused by a rerun (as there).

    Returns
    -------
    dbnb.llm.logprob.LogprobKernel
    """
    from ..llm.logprob import logprob_replies

    words, sources = _kernel_words(vocabulary, sources)
    return logprob_replies(words, prompt_fn or prompt_messages, sources=sources, model=model,
                           progress=progress, strategy=strategy, prompt_mode=prompt_mode,
                           min_prob=min_prob, desc="logprob kernel (words)",
                           checkpoint=checkpoint)


def word_logprob_kernels(
    vocabulary: Sequence[str],
    temperatures: Sequence[float],
    *,
    model: str = "smollm2",
    prompt_fn=None,
    sources: Sequence[str] | None = None,
    progress: bool = True,
    prompt_mode: str = "fresh",
    min_prob: float = 0.0,
    checkpoint=None,
    info: dict | None = None,
):
    """:func:`word_logprob_kernel` at several sampling temperatures, from one walk per word.

    :func:`dbnb.llm.logprob.logprob_temperatures` with the word agent's grammar and prompt;
    the arguments are those of :func:`word_logprob_kernel`. With ``min_prob = 0`` (the
    default) every kernel is exact at its temperature.

    Returns
    -------
    dict of float to dbnb.llm.logprob.LogprobKernel
    """
    from ..llm.logprob import logprob_temperatures

    words, sources = _kernel_words(vocabulary, sources)
    return logprob_temperatures(words, prompt_fn or prompt_messages, temperatures,
                                sources=sources, model=model, progress=progress,
                                prompt_mode=prompt_mode, min_prob=min_prob, info=info,
                                desc="logprob kernel (words)", checkpoint=checkpoint)


def _kernel_words(vocabulary, sources):
    """Validated, upper-cased vocabulary and sources of the kernel functions."""
    if isinstance(vocabulary, str):
        raise ValueError("vocabulary must be a sequence of words, not a single string")
    words = [str(w).upper() for w in vocabulary]
    if not words:
        raise ValueError("vocabulary is empty")
    for w in words:
        if not (w.isascii() and w.isalpha()):
            raise ValueError(f"vocabulary words must be ASCII letters only, got {w!r}")
    if sources is not None:
        if isinstance(sources, str):
            raise ValueError("sources must be a sequence of words, not a single string")
        sources = [str(s).upper() for s in sources]
    return words, sources
