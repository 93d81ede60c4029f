r"""Expressions of the fitting language: the safe parser and the evaluator.

A state of the symbolic agent is a numexpr-style string over one variable (the data set's
feature, e.g. ``times`` for ``mcycle``) with parameter placeholders ``param1`` ... ``param9``,
the functions :data:`FUNCTIONS`, the operators ``+ - * / **``, numbers and ``pi``.

Safety
------
Model output is never passed to ``eval``. :func:`parse_expression` runs Python's :mod:`ast`
parser on at most :data:`MAX_LENGTH` characters and accepts only a whitelist of node types
(numbers, the variable, ``param1..param9``, ``pi``, unary ``+``/``-``, the five binary operators
and one-argument calls of whitelisted function names); depth and size are bounded. The
evaluator is a tree of numpy closures built from that AST.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "ESCAPE_REASONS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "PARAM",
    "Expression",
    "InvalidExpression",
    "check_variable",
    "evaluator",
    "parse_expression",
]

#: Whitelisted one-argument functions (numexpr names) and their numpy implementations.
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "tanh": np.tanh, "log": np.log, "log10": np.log10, "exp": np.exp,
    "square": np.square, "sqrt": np.sqrt, "abs": np.abs,
}  # fmt: skip
_BINOPS: dict[type, Callable] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
    ast.Div: np.divide, ast.Pow: np.power,
}  # fmt: skip
#: A parameter placeholder, ``param1`` ... ``param9``.
PARAM = re.compile(r"param[1-9]")
#: Longest expression accepted (characters, whitespace removed).
MAX_LENGTH = 300
#: Deepest expression tree accepted.
MAX_DEPTH = 30
#: Most AST nodes accepted.
MAX_NODES = 200
#: Why a reply is not a state, in the order they are checked.
ESCAPE_REASONS = (
    "empty",
    "too_long",
    "syntax",
    "disallowed",
    "too_deep",
    "non_finite",
    "not_in_candidates",
)


class InvalidExpression(ValueError):
    """An expression outside the language; ``reason`` is one of :data:`ESCAPE_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason




@dataclass(frozen=True, eq=False, repr=False)
class Expression:
    """A parsed, whitelisted expression.

    Attributes
    ----------
    text : str
        The expression with whitespace removed: the state label.
    variable : str
        The variable's name.
    params : tuple of str
        Parameter placeholders used, sorted (``("param1", "param3")``).
    tree : ast.AST
        The validated syntax tree (an ``ast.Expression`` body).
    depth, n_nodes : int
        Height and size of the tree.
    """

    text: str
    variable: str
    params: tuple[str, ...]
    tree: ast.AST = field(repr=False)
    depth: int
    n_nodes: int

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __call__(self, x: np.ndarray, params: Sequence[float] | Mapping[str, float] = ()
                 ) -> np.ndarray:
        """Evaluate at ``x`` with parameter values (a sequence in the order of ``params``,
        or a mapping name -> value). Returns an array of ``x``'s shape; numpy's overflow and
        invalid-value warnings are suppressed (results may be ``inf``/``nan``)."""
        fn = evaluator(self.text, self.variable)
        if isinstance(params, Mapping):
            try:
                p = [float(params[k]) for k in self.params]
            except KeyError as exc:
                raise ValueError(f"params lacks a value for {exc.args[0]!r}") from None
        else:
            p = [float(v) for v in params]
            if len(p) != len(self.params):
                raise ValueError(
                    f"params has {len(p)} values but {self.text!r} uses {len(self.params)}"
                )
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            out = fn(x, dict(zip(self.params, p, strict=True)))
        return np.broadcast_to(np.asarray(out, dtype=float), x.shape).copy()


def check_variable(variable: str) -> str:
    """``variable`` if it can name the variable (an identifier that is no other name)."""
    if not isinstance(variable, str) or not variable.isidentifier() or variable == "pi" \
            or variable in FUNCTIONS or PARAM.fullmatch(variable):
        raise ValueError(f"variable must be a plain identifier name, got {variable!r}")
    return variable


def _validate(node: ast.AST, variable: str, depth: int, counter: list[int]) -> int:
    """Check one node (recursively); return the subtree's height."""
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise InvalidExpression("too_deep", f"more than {MAX_NODES} syntax nodes")
    if depth > MAX_DEPTH:
        raise InvalidExpression("too_deep", f"nested deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidExpression("disallowed", f"constant {v!r:.40} is not a real number")
        try:
            fv = float(v)
        except OverflowError:
            raise InvalidExpression("disallowed", "numeric constant too large") from None
        if not math.isfinite(fv):
            raise InvalidExpression("disallowed", f"numeric constant {v!r:.40} is not finite")
        return 1
    if isinstance(node, ast.Name):
        if node.id == variable or node.id == "pi" or PARAM.fullmatch(node.id):
            return 1
        raise InvalidExpression("disallowed", f"name {node.id!r:.40} is not allowed")
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise InvalidExpression("disallowed", f"operator {type(node.op).__name__}")
        return 1 + _validate(node.operand, variable, depth + 1, counter)
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise InvalidExpression("disallowed", f"operator {type(node.op).__name__}")
        return 1 + max(_validate(node.left, variable, depth + 1, counter),
                       _validate(node.right, variable, depth + 1, counter))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise InvalidExpression("disallowed", f"function {name!r:.40} is not allowed")
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise InvalidExpression("disallowed", f"{node.func.id}() takes one argument")
        return 1 + _validate(node.args[0], variable, depth + 1, counter)
    raise InvalidExpression("disallowed", f"syntax element {type(node).__name__} is not allowed")


def parse_expression(text: str, variable: str = "x") -> Expression:
    """Parse and validate an expression of the fitting language (never evaluates it).

    Parameters
    ----------
    text : str
        The expression, e.g. ``"param1*tanh(param2*x+param3)+param4"``. Whitespace is removed.
    variable : str
        The one variable's name.

    Returns
    -------
    Expression

    Raises
    ------
    InvalidExpression
        A :class:`ValueError` whose ``reason`` is ``"empty"``, ``"too_long"``, ``"syntax"``,
        ``"disallowed"`` or ``"too_deep"``.

    Examples
    --------
    >>> e = parse_expression("param1 * exp(-x / param2)", "x")
    >>> e.text, e.params
    ('param1*exp(-x/param2)', ('param1', 'param2'))
    >>> parse_expression("__import__('os')", "x")
    Traceback (most recent call last):
    ...
    dbnb.agents.symbolic.expressions.InvalidExpression: function '__import__' is not allowed
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    check_variable(variable)
    return _parse_cached(text, variable)


def _ast_parse(text: str) -> ast.Expression:
    """``ast.parse`` in eval mode, silencing the SyntaxWarnings that model output such as
    ``1985s`` ("invalid decimal literal") triggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(text, mode="eval")


@lru_cache(maxsize=65536)
def _parse_cached(text: str, variable: str) -> Expression:
    spaced = " ".join(text.split())  # parsed as written (so "import os" is a syntax error)
    s = spaced.replace(" ", "")  # the label: for a valid expression, spaces carry no meaning
    if not s:
        raise InvalidExpression("empty", "empty expression")
    if len(s) > MAX_LENGTH:
        raise InvalidExpression("too_long", f"{len(s)} characters, more than {MAX_LENGTH}")
    if not s.isascii():
        raise InvalidExpression("disallowed", "non-ASCII characters")
    try:
        tree = _ast_parse(spaced)
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
        msg = getattr(exc, "msg", None) or str(exc)
        raise InvalidExpression("syntax", f"not an expression: {msg}") from None
    except (RecursionError, MemoryError):
        raise InvalidExpression("too_deep", "nested too deeply to parse") from None
    counter = [0]
    try:
        height = _validate(tree.body, variable, 1, counter)
    except RecursionError:
        raise InvalidExpression("too_deep", "nested too deeply") from None
    if spaced != s:  # the label must mean what was written
        try:
            same = ast.dump(_ast_parse(s)) == ast.dump(tree)
        except SyntaxError:
            same = False
        if not same:
            raise InvalidExpression("syntax", "removing the spaces changes the expression")
    params = tuple(sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                           and PARAM.fullmatch(n.id)}))
    return Expression(s, variable, params, tree.body, height, counter[0])


def _build(node: ast.AST, variable: str) -> Callable[[np.ndarray, dict], Any]:
    if isinstance(node, ast.Constant):
        c = float(node.value)
        return lambda x, p: c
    if isinstance(node, ast.Name):
        name = node.id
        if name == variable:
            return lambda x, p: x
        if name == "pi":
            return lambda x, p: math.pi
        return lambda x, p: p[name]
    if isinstance(node, ast.UnaryOp):
        inner = _build(node.operand, variable)
        if isinstance(node.op, ast.USub):
            return lambda x, p: np.negative(inner(x, p))
        return inner
    if isinstance(node, ast.BinOp):
        op = _BINOPS[type(node.op)]
        left, right = _build(node.left, variable), _build(node.right, variable)
        if op is np.power:
            return lambda x, p: np.power(np.asarray(left(x, p), dtype=float), right(x, p))
        return lambda x, p: op(left(x, p), right(x, p))
    if isinstance(node, ast.Call):
        fn = FUNCTIONS[node.func.id]
        arg = _build(node.args[0], variable)
        return lambda x, p: fn(np.asarray(arg(x, p), dtype=float))
    raise InvalidExpression("disallowed", type(node).__name__)  # unreachable after _validate


@lru_cache(maxsize=65536)
def evaluator(text: str, variable: str) -> Callable[[np.ndarray, dict], Any]:
    """The numpy function ``(x, {param: value}) -> values`` of a valid expression (cached)."""
    return _build(_parse_cached(text, variable).tree, variable)
