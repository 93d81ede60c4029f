"""Interpretable features of expressions (Supplement E's ingredients) and their potential.

:func:`features` describes one expression (length, depth, parentheses, operators, parameters,
shapes such as tanh or logistic steps); :func:`feature_table` tabulates them per state, and
:func:`feature_potential` fits the explicit potential ``beta V = X w`` on that table with the
core fit :func:`dbnb.feature_potential.feature_potential`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import partial

import numpy as np
import pandas as pd

from ... import feature_potential as _fp
from ...feature_potential import FeaturePotential
from .expressions import PARAM, Expression, InvalidExpression, parse_expression

__all__ = ["FEATURES", "FeaturePotential", "feature_potential", "feature_table", "features"]

#: Names of :func:`features`, in order.
FEATURES = (
    "length", "depth", "paren_depth", "n_parens", "n_functions", "n_distinct_functions",
    "n_div", "n_pow", "n_mul", "n_add", "n_params", "n_param_uses", "param_entropy",
    "has_variable", "n_variable", "n_constants", "has_tanh", "has_logistic", "has_softplus",
    "has_exp", "has_log", "has_trig",
)  # fmt: skip


def _contains_call(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Call) and n.func.id in names for n in ast.walk(node))


def features(expr: Expression | str, variable: str = "x") -> dict[str, float]:
    """Interpretable features of an expression (Supplement E's ingredients).

    ``length`` characters; ``depth`` syntax-tree height; ``paren_depth`` deepest parenthesis
    nesting and ``n_parens`` parenthesis pairs in the text (the parenthesis "balance" profile);
    ``n_functions``/``n_distinct_functions`` calls; ``n_div``, ``n_pow`` (``**`` and
    ``square``), ``n_mul``, ``n_add`` (``+``/``-``, binary) operators; ``n_params`` distinct
    parameters, ``n_param_uses`` occurrences and ``param_entropy`` the Shannon entropy (nats)
    of the usage shares; ``has_variable``/``n_variable``; ``n_constants`` numbers and ``pi``;
    shapes: ``has_tanh``, ``has_logistic`` (a division by something containing ``exp``),
    ``has_softplus`` (``log`` of something containing ``exp``), ``has_exp``, ``has_log``
    (``log``/``log10``), ``has_trig`` (``sin``/``cos``/``tan``).

    Examples
    --------
    >>> f = features("param1/(1+exp(-param2*x))", "x")
    >>> f["has_logistic"], f["n_params"], f["paren_depth"], f["n_div"]
    (1.0, 2.0, 2.0, 1.0)
    """
    e = parse_expression(expr, variable) if isinstance(expr, str) else expr
    nodes = list(ast.walk(e.tree))
    calls = [n.func.id for n in nodes if isinstance(n, ast.Call)]
    binops = [type(n.op) for n in nodes if isinstance(n, ast.BinOp)]
    names = [n.id for n in nodes if isinstance(n, ast.Name)]
    puse = pd.Series([n for n in names if PARAM.fullmatch(n)], dtype=object).value_counts()
    share = puse.to_numpy(dtype=float) / max(puse.sum(), 1)
    depth = best = 0
    for ch in e.text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth -= 1
    logistic = any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
                   and _contains_call(n.right, {"exp"}) for n in nodes)
    softplus = any(isinstance(n, ast.Call) and n.func.id in ("log", "log10")
                   and _contains_call(n.args[0], {"exp"}) for n in nodes)
    out = {
        "length": len(e.text), "depth": e.depth, "paren_depth": best,
        "n_parens": e.text.count("("), "n_functions": len(calls),
        "n_distinct_functions": len(set(calls)),
        "n_div": binops.count(ast.Div), "n_pow": binops.count(ast.Pow) + calls.count("square"),
        "n_mul": binops.count(ast.Mult), "n_add": binops.count(ast.Add) + binops.count(ast.Sub),
        "n_params": len(puse), "n_param_uses": int(puse.sum()),
        "param_entropy": float(-(share * np.log(share)).sum()) if len(share) else 0.0,
        "has_variable": float(e.variable in names), "n_variable": names.count(e.variable),
        "n_constants": sum(isinstance(n, ast.Constant) for n in nodes) + names.count("pi"),
        "has_tanh": float("tanh" in calls), "has_logistic": float(logistic),
        "has_softplus": float(softplus), "has_exp": float("exp" in calls),
        "has_log": float("log" in calls or "log10" in calls),
        "has_trig": float(any(c in calls for c in ("sin", "cos", "tan"))),
    }  # fmt: skip
    return {k: float(out[k]) for k in FEATURES}


def feature_table(states: Iterable[str], variable: str = "x") -> pd.DataFrame:
    """:func:`features` of every state, one row each (NaN rows for invalid expressions)."""
    rows = {}
    for s in states:
        try:
            rows[s] = features(s, variable)
        except InvalidExpression:
            rows[s] = dict.fromkeys(FEATURES, np.nan)
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(FEATURES))
    df.index.name = "state"
    return df


def feature_potential(data, features_df: pd.DataFrame | None = None, *, variable: str = "x",
                      **options) -> FeaturePotential:
    """The explicit potential on expression features (Supplement E).

    :func:`dbnb.feature_potential.feature_potential` with ``features_df`` defaulting to
    :func:`feature_table` of the kernel's states with ``variable``; ``options`` (``violation``,
    ``ridge``, ``bootstrap``, ``main_only``, ...) go to the core fit.
    """
    table = partial(feature_table, variable=variable) if features_df is None else features_df
    return _fp.feature_potential(data, table, **options)
