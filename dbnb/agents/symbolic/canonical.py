r"""Coarse-grained state labels: sympy canonical forms and merging states of counts.

States are compared as strings, as in the Letter (after removing whitespace, which carries no
meaning). :func:`canonical_form` offers coarser labels, since the Letter remarks that
directionality shows at several levels of coarse-graining: ``"canonical"`` (sympy's automatic
normal form, then parameters renumbered to the lexicographically smallest labelling, so
``param2 + param1*x`` and ``param1 + x*param2`` merge) and ``"skeleton"`` (every parameter and
number replaced by one symbol ``C``). :func:`coarse_grain` merges the states of a
:class:`~dbnb.counts.TransitionCounts` accordingly. sympy is imported lazily and only here.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from ...counts import TransitionCounts
from .expressions import PARAM, InvalidExpression, parse_expression
from .fitting import mse_to_score

__all__ = ["CoarseLevel", "canonical_form", "coarse_grain"]

_SYMPY_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos",
    "arctan": "atan", "tanh": "tanh", "log": "log", "exp": "exp", "sqrt": "sqrt", "abs": "Abs",
}  # fmt: skip


def _to_sympy(node: ast.AST, variable: str, sp):
    if isinstance(node, ast.Constant):
        v = node.value
        return sp.Integer(v) if isinstance(v, int) else sp.Float(v)
    if isinstance(node, ast.Name):
        return sp.pi if node.id == "pi" else sp.Symbol(node.id, real=True)
    if isinstance(node, ast.UnaryOp):
        inner = _to_sympy(node.operand, variable, sp)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        a, b = _to_sympy(node.left, variable, sp), _to_sympy(node.right, variable, sp)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return a / b
        return a**b
    if isinstance(node, ast.Call):
        arg = _to_sympy(node.args[0], variable, sp)
        name = node.func.id
        if name == "square":
            return arg ** 2
        if name == "log10":
            return sp.log(arg) / sp.log(10)
        return getattr(sp, _SYMPY_FUNCS[name])(arg)
    raise InvalidExpression("disallowed", type(node).__name__)


def _sympy_str(e, sp) -> str:
    return sp.sstr(e, order="lex").replace(" ", "")


CoarseLevel = Literal["string", "canonical", "skeleton"]


@lru_cache(maxsize=65536)
def canonical_form(text: str, variable: str = "x", level: CoarseLevel = "canonical") -> str:
    """A coarse-grained label of an expression.

    Parameters
    ----------
    text : str
        A valid expression.
    variable : str
        Its variable.
    level : {"string", "canonical", "skeleton"}
        ``"string"``: whitespace removed (the state label itself). ``"canonical"``: sympy's
        automatic normal form (commutativity, associativity, like terms, ``square(u)`` ->
        ``u**2``, ``log10(u)`` -> ``log(u)/log(10)``), printed in lexicographic order, with the
        parameters renamed ``param1..paramk`` by the labelling that gives the smallest string
        (all ``k!`` labellings for ``k <= 5``, first appearance otherwise). ``"skeleton"``: the
        canonical form with every parameter and every number replaced by ``C``.

    Examples
    --------
    >>> canonical_form("param2 + param1*x") == canonical_form("x*param2+param1")
    True
    >>> canonical_form("param3*x", "x")
    'param1*x'
    """
    import itertools

    if level not in ("string", "canonical", "skeleton"):
        raise ValueError(f"level must be 'string', 'canonical' or 'skeleton', got {level!r}")
    expr = parse_expression(text, variable)
    if level == "string":
        return expr.text
    import sympy as sp

    e = _to_sympy(expr.tree, variable, sp)
    syms = sorted((s for s in e.free_symbols if PARAM.fullmatch(s.name)), key=lambda s: s.name)
    k = len(syms)
    tmp = [sp.Symbol(f"_t{i}", real=True) for i in range(k)]
    e = e.xreplace(dict(zip(syms, tmp, strict=True)))
    targets = [sp.Symbol(f"param{i + 1}", real=True) for i in range(k)]
    if level == "skeleton":
        c = sp.Symbol("C", real=True)
        e = e.xreplace(dict.fromkeys(tmp, c))
        e = e.replace(lambda a: a.is_Number and a not in (sp.Integer(1), sp.Integer(-1)),
                      lambda a: c)
        return _sympy_str(e, sp)
    if k <= 5:
        best = None
        for perm in itertools.permutations(range(k)):
            s = _sympy_str(e.xreplace({tmp[i]: targets[perm[i]] for i in range(k)}), sp)
            if best is None or (len(s), s) < (len(best), best):
                best = s
        return best if best is not None else _sympy_str(e, sp)
    # first appearance, iterated to a fixed point
    cur = e.xreplace(dict(zip(tmp, targets, strict=True)))
    for _ in range(5):
        s = _sympy_str(cur, sp)
        order = list(dict.fromkeys(PARAM.findall(s)))
        mapping = {sp.Symbol(n, real=True): targets[i] for i, n in enumerate(order)}
        new = cur.xreplace({a: sp.Symbol(f"_u{i}", real=True) for i, a in enumerate(mapping)})
        new = new.xreplace({sp.Symbol(f"_u{i}", real=True): b
                            for i, b in enumerate(mapping.values())})
        if _sympy_str(new, sp) == s:
            break
        cur = new
    return _sympy_str(cur, sp)


def coarse_grain(
    counts: TransitionCounts,
    level: CoarseLevel | Callable[[str], str] = "canonical",
    *,
    variable: str = "x",
) -> TransitionCounts:
    """Merge states with equal coarse-grained labels (:func:`canonical_form`).

    Counts, calls and escapes of merged states add; transitions between states of one class
    become self-transitions. Metadata: ``n_members`` and, where present, the smallest ``mse``
    of the class (its best fit) and the matching ``score``.
    """
    if not isinstance(counts, TransitionCounts):
        raise TypeError(f"counts must be a TransitionCounts, got {type(counts).__name__}")
    fn = level if callable(level) else (lambda s: canonical_form(s, variable, level))
    label = pd.Series([fn(s) for s in counts.states], index=counts.index)
    f, g, c = counts.edges(self_loops=True)
    st = np.array(label.to_numpy(), dtype=object)
    calls = None if counts.calls is None else pd.Series(counts.calls, index=st).groupby(
        level=0, sort=False).sum()
    escapes = None if counts.escapes is None else pd.Series(counts.escapes, index=st).groupby(
        level=0, sort=False).sum()
    meta = pd.DataFrame({"n_members": label.value_counts(sort=False)})
    if "mse" in counts.metadata.columns:
        mse = pd.Series(counts.metadata["mse"].to_numpy(dtype=float), index=st)
        meta["mse"] = mse.groupby(level=0, sort=False).min()
        meta["score"] = mse_to_score(meta["mse"].to_numpy())
    order = list(dict.fromkeys(st))
    out = TransitionCounts.from_triples(
        st[f], st[g], c, states=order, calls=calls,
        calls_kind=counts.calls_kind if calls is not None else None,
        escapes=escapes, metadata=meta,
        source=f"{counts.source} [{level if isinstance(level, str) else 'coarse-grained'}]",
    )
    return out
