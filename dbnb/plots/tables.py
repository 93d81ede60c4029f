r"""Tables I-IV of the Letter as DataFrames, from counts and results."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..counts import TransitionCounts
from ..diagnostics import PotentialDistribution, action_scale_table
from ..potential import PotentialFit


def table1_examples(fit: PotentialFit, n: int = 5, *,
                    counts: TransitionCounts | None = None) -> pd.DataFrame:
    """Table I: ``n`` example states with their ``beta V``, spread evenly over the finite range
    (by rank, highest first); with ``counts``, also their ``mse`` and ``score`` metadata (when
    present) and ``N0``."""
    v = fit.potential[np.isfinite(fit.potential)].sort_values(ascending=False)
    if not len(v):
        return pd.DataFrame({"beta_V": pd.Series(dtype=float)})
    pos = np.unique(np.round(np.linspace(0, len(v) - 1, min(n, len(v)))).astype(int))
    out = v.iloc[pos].rename("beta_V").to_frame()
    if counts is not None:
        for col in ("mse", "score"):
            if col in counts.metadata.columns:
                out[col] = counts.metadata[col].reindex(out.index).to_numpy()
        if counts.calls is not None:
            out["N0"] = pd.Series(counts.calls, index=counts.index).reindex(out.index).to_numpy()
    return out


def table2_counts(counts: TransitionCounts) -> pd.DataFrame:
    """Table II: dense counts, one row per source (from) and one column per target (to),
    plus an ``escape`` column when escapes are known."""
    df = counts.to_dense_frame()
    df.index.name = "from \\ to"
    return df


def table3_statistics(counts: Mapping[str, TransitionCounts]) -> pd.DataFrame:
    """Table III: database statistics (:meth:`TransitionCounts.statistics`) per data set."""
    rows = {name: c.statistics() for name, c in counts.items()}
    # Whole numbers print as counts (15742, not 15742.0); a missing one as <NA>.
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("data set")
    for col in table.columns:
        values = pd.to_numeric(table[col], errors="coerce")
        whole = values.dropna()
        if values.notna().sum() == table[col].notna().sum() and (whole == whole.round()).all():
            table[col] = values.astype("Int64")
    return table


def table4_action_scale(distributions: Mapping[str, PotentialDistribution]) -> pd.DataFrame:
    """Table IV: ``sigma``, expected minimum action (Eq. 28, both forms) and actual action.

    ``distributions`` maps an agent's name to its
    :func:`dbnb.diagnostics.potential_distribution`.
    """
    bad = [name for name, d in distributions.items() if not isinstance(d, PotentialDistribution)]
    if bad:
        raise TypeError(
            f"table4_action_scale takes PotentialDistribution results; {bad} are not (compute "
            "them with dbnb.diagnostics.potential_distribution(fit) first)"
        )
    return action_scale_table(distributions)
