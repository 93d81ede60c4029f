"""Regenerate ``data/words100.txt``: English words whose letter values sum to 100.

Letter values are A=1 ... Z=26. Candidates are wordfreq's ``top_n_list("en", 100000)``
(the "best" wordlist, frequency order). A word is kept when it is plain ASCII letters only
(no apostrophes, hyphens, digits or accents), its upper-case letter values sum to exactly 100,
and it was not kept already (the list is case-folded so duplicates cannot occur, but the check
is cheap). The output keeps wordfreq's frequency order, one upper-case word per line, after a
``#`` header saying how it was made.

Usage::

    python scripts/make_vocab.py [--out data/words100.txt] [--top 100000] [--target 100]
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import wordfreq


def letter_sum(word: str) -> int:
    return sum(ord(c) - 64 for c in word.upper())


def make_vocab(top: int = 100_000, target: int = 100) -> list[str]:
    words: list[str] = []
    seen: set[str] = set()
    for w in wordfreq.top_n_list("en", top):
        if not (w.isascii() and w.isalpha()):
            continue
        up = w.upper()
        if up in seen or letter_sum(up) != target:
            continue
        seen.add(up)
        words.append(up)
    return words


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=root / "data" / "words100.txt")
    ap.add_argument("--top", type=int, default=100_000)
    ap.add_argument("--target", type=int, default=100)
    args = ap.parse_args()
    words = make_vocab(args.top, args.target)
    header = [
        f"# English words whose letter values (A=1 ... Z=26) sum to {args.target}.",
        f"# Source: wordfreq {importlib.metadata.version('wordfreq')}, "
        f'top_n_list("en", {args.top}) (wordlist "best"), in frequency order.',
        "# Filter: ASCII letters only (str.isascii() and str.isalpha()), upper-cased, letter sum "
        f"== {args.target}, first occurrence kept.",
        f"# {len(words)} words. Regenerate with: python scripts/make_vocab.py",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + words) + "\n", encoding="utf-8")
    print(f"wrote {len(words)} words to {args.out}")


if __name__ == "__main__":
    main()
