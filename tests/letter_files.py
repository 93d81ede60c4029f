"""Files in the formats and under the names of the authors' data set, written by the tests.

Each writer takes a folder and returns the path it wrote. The counts are chosen so that the
answer is known: Claude's file holds the Letter's Table II (Eq. 22 follows exactly), the
Gemini-like file holds the counts of the authors' Gemini diagram script (Eq. 23's pattern:
four finite potentials, the rest +inf), the large word and expression files come from a
prompt-independent (hence detailed-balance) kernel.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

#: Table II of the Letter (row -> column counts) and its escape column.
TABLE2 = {
    ("ATTITUDE", "PERSONAL"): 66, ("ATTITUDE", "PROBLEM"): 20,
    ("TURKEY", "ATTITUDE"): 4122, ("PERSONAL", "ATTITUDE"): 3879,
    ("PROBLEM", "ATTITUDE"): 3558, ("BUZZY", "ATTITUDE"): 3859, ("BUZZY", "TURKEY"): 238,
}
TABLE2_ESCAPES = {"ATTITUDE": 3914, "PERSONAL": 121, "PROBLEM": 442}

#: N(f -> g) of the authors' Gemini-2.5-flash diagram (13 words).
GEMINI = {
    ("ACCUMULATE", "ATTITUDE"): 565, ("BLISSFUL", "ATTITUDE"): 353,
    ("BOYCOTT", "ATTITUDE"): 969, ("BUZZY", "ATTITUDE"): 142,
    ("DISCIPLINE", "ATTITUDE"): 954, ("EXCELLENT", "ATTITUDE"): 822,
    ("FLURRY", "ATTITUDE"): 324, ("GRUMPY", "ATTITUDE"): 949, ("QUARTER", "ATTITUDE"): 812,
    ("SCUTTLE", "ATTITUDE"): 801, ("TENSELY", "ATTITUDE"): 150, ("TURKEY", "ATTITUDE"): 620,
    ("ATTITUDE", "DISCIPLINE"): 564, ("ATTITUDE", "EXCELLENT"): 7, ("BUZZY", "EXCELLENT"): 12,
    ("ATTITUDE", "BLISSFUL"): 2, ("BUZZY", "BLISSFUL"): 1, ("BUZZY", "GRUMPY"): 3,
    ("FLURRY", "GRUMPY"): 3, ("FLURRY", "TURKEY"): 2, ("BUZZY", "TENSELY"): 1,
    ("BUZZY", "BOYCOTT"): 7, ("BUZZY", "ACCUMULATE"): 1, ("BUZZY", "SCUTTLE"): 1,
    ("BUZZY", "QUARTER"): 1, ("BUZZY", "FLURRY"): 3,
}


def ideas(counts: dict[tuple[str, str], int], scores: dict[str, float] | None = None
          ) -> list[dict]:
    """The "ideas" list of ``{(source, target): count}``: one element per target."""
    by_target: dict[str, list[dict]] = {}
    for (f, g), n in counts.items():
        entry = {"expression": f}
        if scores is not None:
            entry["score"] = scores[f]
        by_target.setdefault(g, []).extend([entry] * int(n))
    out = []
    for g, srcs in by_target.items():
        item = {"target_expression": g, "source_expressions": srcs}
        if scores is not None and g in scores:
            item["target_score"] = scores[g]
        out.append(item)
    return out


def write(path: Path, data, *, bom: bool = False) -> Path:
    text = json.dumps(data)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def write_claude(folder: Path, *, bom: bool = False, counts=None) -> Path:
    c = dict(TABLE2 if counts is None else counts)
    c.update({(f, "INVALID00"): n for f, n in TABLE2_ESCAPES.items()})
    return write(folder / "word_database_claude-4.json", ideas(c), bom=bom)


def write_gemini(folder: Path) -> Path:
    return write(folder / "word_database_gemini-2.5-flash-nothinking.json", ideas(GEMINI))


def popularity_counts(labels: list[str], n_calls: int, seed: int, sigma: float = 1.5
                      ) -> dict[tuple[str, str], int]:
    """Calls of the Letter's schedule on a prompt-independent kernel ``T(g <- f) = p(g)``
    (detailed balance with ``beta V = -log p``), self-replies included."""
    rng = np.random.default_rng(seed)
    p = np.exp(-sigma * rng.standard_normal(len(labels)))
    p /= p.sum()
    found = [0]
    seen = {0}
    out: Counter = Counter()
    for _ in range(n_calls):
        f = found[int(rng.integers(len(found)))]
        g = int(rng.choice(len(labels), p=p))
        out[(labels[f], labels[g])] += 1
        if g not in seen:
            seen.add(g)
            found.append(g)
    return dict(out)


def word_labels(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ["".join(letters[(i // 26**k) % 26] for k in range(3)) + "WORD" for i in range(n)]


def write_words(folder: Path, n_words: int = 600, n_calls: int = 20000) -> Path:
    c = popularity_counts(word_labels(n_words), n_calls, seed=1)
    c[("AAAWORD", "INVALID00")] = 5
    return write(folder / "word_database_gpt5-nano.json", ideas(c))


def expressions(n: int) -> list[str]:
    forms = ["param1*log_v_k_nu+param2", "param1*tanh(param2*log_v_k_nu+param3)+param4",
             "param1-(param2/(log_v_k_nu+param3))", "param1*exp(-param2*log_v_k_nu)+param3",
             "param1*log_v_k_nu**2+param2*log_v_k_nu+param3", "param1*sqrt(log_v_k_nu)+param2"]
    return [f"{forms[i % len(forms)]}+{i}*param5" for i in range(n)]


def write_expressions(folder: Path, n: int = 150, n_calls: int = 6000) -> Path:
    labels = expressions(n)
    c = popularity_counts(labels, n_calls, seed=2, sigma=1.0)
    scores = {e: 20.0 + 40.0 * ((7 * i) % n) / n for i, e in enumerate(labels)}
    return write(folder / "ideasearchfitter_database.json", ideas(c, scores))


def write_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"claude": write_claude(folder), "gemini": write_gemini(folder),
            "gpt5nano": write_words(folder), "ideasearchfitter": write_expressions(folder)}
