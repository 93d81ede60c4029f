"""The Letter's published numbers, for side-by-side comparison with ours.

Every value here is quoted from Song, Cao, Luo & Zhu, arXiv:2512.10047 (main text, Tables
I-IV and the Supplement), as restated in the project's METHOD notes. They are references to
compare against, never inputs to a computation.
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "EQ22_CLAUDE",
    "TABLE1_SYMBOLIC",
    "table3",
    "table4",
    "headline",
    "compare",
]

#: Eq. 22, Claude-4 word agent (beta V; the Letter rounds to one decimal).
EQ22_CLAUDE = {"ATTITUDE": 0.0, "PERSONAL": 4.1, "PROBLEM": 5.2, "TURKEY": float("inf"),
               "BUZZY": float("inf")}

#: Table I: example IdeaSearchFitter states and their potentials.
TABLE1_SYMBOLIC = {
    "param1*tanh(param2*x+param3)+param4": 5.70,
    "param1-(param2/(x+param3))": 0.88,
    "param1*x/(1+param2*log(x+1))": -0.57,
    "param1*tanh(param2*x)+param3": -1.57,
    "param2+param1*(1-exp(-x))": -3.30,
}


def table3() -> pd.DataFrame:
    """Table III: database statistics (GPT-5 Nano words; IdeaSearchFitter)."""
    return pd.DataFrame(
        {
            "samples": [19968, 50228],
            "states": [645, 7484],
            "unique_transitions": [9473, 21697],
            "states_sampled_more_than_once": [620, 2551],
        },
        index=pd.Index(["words, GPT-5 Nano (Letter)", "IdeaSearchFitter (Letter)"], name="data"),
    )


def table4() -> pd.DataFrame:
    """Table IV: the action as a scale (exp kernel). 'exact' from exp(s^2) erfc(s)."""
    return pd.DataFrame(
        {
            "sigma": [4.38, 2.30],
            "expected_min_action_asymptotic": [0.129, 0.245],
            "expected_min_action_exact": [0.126, 0.227],
            "actual_min_action": [0.150, 0.195],
        },
        index=pd.Index(["IdeaSearchFitter (Letter)", "words, GPT-5 Nano (Letter)"], name="agent"),
    )


#: Other headline numbers of the Letter (METHOD §3, §5, §6).
headline = {
    "words_gpt5nano": {
        "triplets": 140,
        "one_way_pairs": 8805,
        "mu": -0.93,
        "sigma": 2.30,
        "valid_words": 645,
    },
    "ideasearchfitter": {
        "triplets": 620,
        "one_way_pairs": 18935,
        "mu": -0.56,
        "sigma": 4.37,
        "fig5_states": 70,
        "fig5_transitions": 9769,
        "fig5_share_down": 0.6956,
        "fig5_share_up": 0.2583,
        "fig5_share_flat": 0.0462,
        "explicit_potential_parameters": 49,
        "explicit_potential_action": 0.47,
    },
    "valid_words": {"claude4": 5, "gemini25flash": 13, "gpt5nano": 645},
}


def compare(rows: dict[str, tuple[object, object]], *, note: dict[str, str] | None = None
            ) -> pd.DataFrame:
    """A two-column table ``quantity -> (Letter, ours)``, with an optional note per row."""
    df = pd.DataFrame(
        {"Letter": [v[0] for v in rows.values()], "ours": [v[1] for v in rows.values()]},
        index=pd.Index(list(rows), name="quantity"),
    )
    if note:
        df["note"] = [note.get(k, "") for k in rows]
    return df
