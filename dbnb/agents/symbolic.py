r"""The symbolic-regression agent (the Letter's IdeaSearchFitter, METHOD §6): pure parts.

A *state* is a fitting expression: a numexpr-style string over one variable (the data set's
feature, e.g. ``times`` for ``mcycle`` or ``log_v_k_nu`` for ``nikuradse_2``) with parameter
placeholders ``param1`` ... ``param9``, the functions :data:`FUNCTIONS`, the operators
``+ - * / **``, numbers and ``pi``. A call shows the model the current expression and its fit
quality and asks for a new expression; the first valid expression in the reply is the next
state ``g``.

Safety
------
Model output is never passed to ``eval``. :func:`parse_expression` runs Python's :mod:`ast`
parser on at most :data:`MAX_LENGTH` characters and accepts only a whitelist of node types
(numbers, the variable, ``param1..param9``, ``pi``, unary ``+``/``-``, the five binary operators
and one-argument calls of whitelisted function names); depth and size are bounded. The
evaluator is a tree of numpy closures built from that AST.

States and coarse-graining
--------------------------
States are compared as strings, as in the Letter (after removing whitespace, which carries no
meaning). :func:`canonical_form` offers coarser labels, since the Letter remarks that
directionality shows at several levels of coarse-graining: ``"canonical"`` (sympy's automatic
normal form, then parameters renumbered to the lexicographically smallest labelling, so
``param2 + param1*x`` and ``param1 + x*param2`` merge) and ``"skeleton"`` (every parameter and
number replaced by one symbol ``C``). :func:`coarse_grain` merges the states of a
:class:`~dbnb.counts.TransitionCounts` accordingly. sympy is imported lazily and only for these.

Fit quality
-----------
Parameters are fitted by least squares (:func:`scipy.optimize.least_squares`, a few
deterministic restarts, bounded evaluations). The score is the Letter's mapping between MSE and
IdeaSearchFitter score read backwards (:func:`dbnb.datasets.score_to_mse`),
``score = 20 - 15 log10(MSE / 0.0602...)``; MSE is in the squared units of the data set's
target. An expression whose residuals are non-finite at every start is the escape
``"non_finite"``.

The MSE a prompt shows is part of the run's record: every call stores it in ``meta["mse"]``
(:meth:`SymbolicAgent.prompt_meta`), and an agent built with ``scores=recorded_scores(store)``
shows those values instead of refitting. Least squares on an ill-conditioned expression
(``param1*exp(times)+param2``: ``exp(times)`` reaches 1e25) lands on different minima with
other library versions or CPUs, so replaying a run must never depend on today's fit.
"""

from __future__ import annotations

import ast
import math
import re
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..counts import TransitionCounts
from ..datasets import MSE_AT_SCORE_20, score_to_mse
from .word import Parsed

__all__ = [
    "ESCAPE_REASONS",
    "FUNCTIONS",
    "FEATURES",
    "Expression",
    "ExpressionFit",
    "FeaturePotential",
    "InvalidExpression",
    "SymbolicAgent",
    "canonical_form",
    "candidate_grammar",
    "coarse_grain",
    "counts_from_records",
    "default_candidates",
    "expression_grammar",
    "feature_potential",
    "feature_table",
    "features",
    "fit_expression",
    "mse_to_score",
    "parse_expression",
    "parse_reply",
    "prompt_messages",
    "recorded_scores",
    "score_to_mse",
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
_OPSYM = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_PARAM = re.compile(r"param[1-9]")
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


# ---------------------------------------------------------------------------- parsing
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
        fn = _compiled(self.text, self.variable)
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


def _check_variable(variable: str) -> str:
    if not isinstance(variable, str) or not variable.isidentifier() or variable == "pi" \
            or variable in FUNCTIONS or _PARAM.fullmatch(variable):
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
        if node.id == variable or node.id == "pi" or _PARAM.fullmatch(node.id):
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
    dbnb.agents.symbolic.InvalidExpression: function '__import__' is not allowed
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    _check_variable(variable)
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
                           and _PARAM.fullmatch(n.id)}))
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
def _compiled(text: str, variable: str) -> Callable[[np.ndarray, dict], Any]:
    return _build(_parse_cached(text, variable).tree, variable)


# ---------------------------------------------------------------------------- fitting
def mse_to_score(mse):
    """The Letter's score of an MSE: ``20 - 15 log10(MSE / 0.0602...)`` (inverse of
    :func:`dbnb.datasets.score_to_mse`; higher is better).

    >>> round(float(mse_to_score(score_to_mse(7.5))), 12)
    7.5
    """
    m = np.asarray(mse, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 20.0 - 15.0 * np.log10(m / MSE_AT_SCORE_20)


@dataclass(frozen=True)
class ExpressionFit:
    """Least-squares fit of one expression to a data set.

    ``mse`` is the mean squared residual at the best parameters (target units squared), NaN
    with ``reason="non_finite"`` when no start gave finite residuals. ``params`` maps
    placeholder -> value; ``nfev`` counts residual evaluations over all starts.
    """

    text: str
    mse: float
    score: float
    params: dict[str, float]
    nfev: int
    seconds: float
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _starts(k: int, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [np.ones(k), np.full(k, 0.1)]
    scales = (1.0, 0.1, 3.0)
    for i in range(n - 2):
        out.append(rng.normal(0.0, scales[i % 3], k))
    return out[:n]


def fit_expression(
    expr: Expression | str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    variable: str = "x",
    restarts: int = 5,
    max_nfev: int | None = None,
) -> ExpressionFit:
    r"""Fit the parameters of ``expr`` to ``y ≈ expr(x)`` by least squares.

    Parameters
    ----------
    expr : Expression or str
        The expression (a string is parsed with ``variable``).
    x, y : array
        Data (1-D, equal length, finite).
    restarts : int
        Starts: all ones, all 0.1, then normal draws of scale 1, 0.1, 3 in turn, seeded by a
        CRC32 of the expression (so a fit is reproducible).
    max_nfev : int, optional
        Evaluations per start; default ``100 * (k + 1)`` for ``k`` parameters. The budget is
        counted in evaluations, never in seconds, so the result does not depend on the
        machine's load.

    Returns
    -------
    ExpressionFit
        Best MSE over the starts and its score (:func:`mse_to_score`). Non-finite values of
        the expression at a trial point count as a large residual, so the optimiser backs off;
        ``reason="non_finite"`` when no start ends with finite residuals.
    """
    from scipy.optimize import least_squares

    if isinstance(expr, str):
        expr = parse_expression(expr, variable)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be 1-D and equally long, got {x.shape} and {y.shape}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be a positive int, got {restarts!r}")
    t0 = time.perf_counter()
    fn = _compiled(expr.text, expr.variable)
    names = expr.params
    k = len(names)
    big = 1e6 * (float(np.std(y)) + float(np.max(np.abs(y))) + 1.0)

    def values(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            v = fn(x, dict(zip(names, p, strict=True)))
            return np.broadcast_to(np.asarray(v, dtype=float), x.shape)

    def residuals(p: np.ndarray) -> np.ndarray:
        r = values(p) - y
        return np.where(np.isfinite(r), np.clip(r, -big, big), big)

    best_mse, best_p, nfev = math.inf, np.ones(k), 0
    if k == 0:
        r = values(np.zeros(0)) - y
        nfev = 1
        with np.errstate(over="ignore"):
            mse = float(np.mean(r * r)) if np.isfinite(r).all() else math.inf
        if math.isfinite(mse):
            best_mse, best_p = mse, np.zeros(0)
    else:
        max_nfev = max_nfev or 100 * (k + 1)
        for p0 in _starts(k, restarts, zlib.crc32(expr.text.encode())):
            try:
                with np.errstate(all="ignore"):
                    res = least_squares(residuals, p0, method="trf", max_nfev=max_nfev,
                                        x_scale="jac")
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                continue
            nfev += int(res.nfev)
            r = values(res.x) - y
            with np.errstate(over="ignore"):
                mse = float(np.mean(r * r))
            if np.isfinite(mse) and np.isfinite(res.x).all():
                if mse < best_mse:
                    best_mse, best_p = mse, res.x
    secs = time.perf_counter() - t0
    if not math.isfinite(best_mse):
        return ExpressionFit(expr.text, math.nan, math.nan, {}, nfev, secs, "non_finite")
    return ExpressionFit(expr.text, best_mse, float(mse_to_score(best_mse)),
                         {n: float(v) for n, v in zip(names, best_p, strict=True)}, nfev, secs)


# ---------------------------------------------------------------------------- canonical form
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
    syms = sorted((s for s in e.free_symbols if _PARAM.fullmatch(s.name)), key=lambda s: s.name)
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
        order = list(dict.fromkeys(_PARAM.findall(s)))
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


# ---------------------------------------------------------------------------- prompts
def prompt_messages(
    state: str, *, variable: str = "x", mse: float | None = None,
    description: str = "",
) -> list[dict[str, str]]:
    """The agent's chat prompt: the current expression, its fit quality, a request for a new one.

    One user message (our wording of IdeaSearchFitter's request): the fitting language
    (variable, ``param1..param9``, functions, operators), the current expression with its
    mean squared error and score, and "give a new expression that may fit better; answer with
    only the expression".
    """
    if not isinstance(state, str) or not state.strip():
        raise ValueError(f"state must be a non-empty string, got {state!r}")
    quality = ("its fit could not be evaluated" if mse is None or not math.isfinite(mse)
               else f"mean squared error {mse:.4g} (score {float(mse_to_score(mse)):.1f}, "
                    "higher is better)")
    data = f" to data: {description}" if description else ""
    content = (
        f"We are fitting a curve{data}. Expressions use the variable {variable}, the "
        "parameters param1 to param9 (fitted automatically), the functions "
        f"{', '.join(FUNCTIONS)}, the constant pi and the operators + - * / **.\n"
        f"The current expression is {state.strip()}, with {quality}.\n"
        "Give a new expression that may fit the data better. Answer with only the expression."
    )
    return [{"role": "user", "content": content}]


_FENCE = re.compile(r"```[a-zA-Z]*")
_PREFIX = re.compile(
    r"^\s*(?:[-*>#]+\s+|\d{1,2}[.)]\s+)?(?:\*\*)?(?:[A-Za-z ]{0,40}?(?:expression|answer|"
    r"formula|function|model)\s*(?:is)?\s*[:=]\s*)?", re.IGNORECASE,
)


def _spans(reply: str) -> list[str]:
    """Candidate expression texts in a reply, in order of preference."""
    out: list[str] = []
    text = _FENCE.sub("\n", reply)
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        out.extend(re.findall(r"`([^`]+)`", line))
        out.extend(re.findall(r"\$([^$]+)\$", line))
        core = line.replace("`", "").replace("$", "").strip().strip("*").strip()
        for sep in ("=", ":"):  # "f(x) = ...", "y = ...", "Expression: ..."
            if sep in core and "==" not in core:
                out.append(core.rsplit(sep, 1)[1])
        out.append(_PREFIX.sub("", core))
        out.append(core)
    cleaned = []
    for s in out:
        s = s.strip().strip("\"'").strip()
        s = re.sub(r"[.;,]+$", "", s).strip()
        if s:
            cleaned.append(s)
    return list(dict.fromkeys(cleaned))


def parse_reply(
    reply: str | None,
    prompt_state: str,
    *,
    variable: str = "x",
    candidates: Iterable[str] | None = None,
    check: Callable[[Expression], str | None] | None = None,
) -> Parsed:
    """The first valid expression of a reply, or an escape with a reason.

    Code fences, inline code, ``$...$``, list bullets, ``f(x) = ...``/``y = ...`` and
    ``Expression: ...`` prefixes and trailing full stops are stripped; lines are tried in
    order. ``check`` (e.g. a fit) may turn a parsed expression into an escape by returning a
    reason. A reply equal to the prompt state is a state (a self-transition), not an escape.
    With no valid expression the reason of the first attempted text is returned
    (``"empty"`` for a blank reply).

    Examples
    --------
    >>> parse_reply("Sure! f(x) = param1*x + param2.", "param1*x", variable="x").state
    'param1*x+param2'
    >>> parse_reply("```python\\nparam1*exp(x)\\n```", "param1*x", variable="x").state
    'param1*exp(x)'
    """
    if reply is not None and not isinstance(reply, str):
        raise ValueError(f"reply must be a string or None, got {type(reply).__name__}")
    if not isinstance(prompt_state, str) or not prompt_state:
        raise ValueError(f"prompt_state must be a non-empty string, got {prompt_state!r}")
    spans = _spans(reply or "")
    if not spans:
        return Parsed(None, "empty", "")
    cands = None if candidates is None else (
        candidates if isinstance(candidates, (set, frozenset)) else frozenset(candidates))
    first: tuple[str, str] | None = None
    for s in spans:
        try:
            e = parse_expression(s, variable)
        except InvalidExpression as exc:
            first = first or (exc.reason, "".join(s.split()))
            continue
        if cands is not None and e.text not in cands:
            first = first or ("not_in_candidates", e.text)
            continue
        reason = check(e) if check is not None else None
        if reason is not None:
            first = first or (reason, e.text)
            continue
        return Parsed(e.text, None, e.text)
    reason, text = first if first else ("empty", "")
    return Parsed(None, reason, text)


# ---------------------------------------------------------------------------- grammars
def _gbnf_literal(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def candidate_grammar(candidates: Iterable[str]) -> str:
    """GBNF ``root ::= ("c1" | "c2" | ...)`` whose language is exactly the candidate list.

    Candidates are whitespace-stripped; duplicates are dropped (first kept).
    """
    if isinstance(candidates, str):
        raise ValueError("candidates must be an iterable of expressions, not one string")
    items = list(dict.fromkeys("".join(c.split()) for c in candidates))
    if not items or any(not c for c in items):
        raise ValueError("candidates must be non-empty expressions")
    return "root ::= (" + " | ".join(_gbnf_literal(c) for c in items) + ")"


def expression_grammar(variable: str = "x") -> str:
    """GBNF grammar of the whole expression language (open state space).

    ``expr`` is a sum of products of powers of atoms; atoms are numbers, the variable, ``pi``,
    ``param1..param9``, function calls and parenthesised expressions. The language is
    unbounded: cap the reply length with ``max_tokens`` (a cut reply is an escape).
    """
    _check_variable(variable)
    funcs = " | ".join(_gbnf_literal(f) for f in sorted(FUNCTIONS, key=len, reverse=True))
    return "\n".join([
        "root ::= expr",
        'expr ::= term (("+" | "-") term)*',
        'term ::= factor (("*" | "/") factor)*',
        'factor ::= unary ("**" unary)?',
        'unary ::= "-"? atom',
        f'atom ::= number | {_gbnf_literal(variable)} | "pi" | param | func "(" expr ")" '
        '| "(" expr ")"',
        f"func ::= {funcs}",
        'param ::= "param" [1-9]',
        'number ::= [0-9]+ ("." [0-9]+)?',
    ])


def default_candidates(variable: str = "x", n: int | None = None) -> tuple[str, ...]:
    """A fixed list of distinct fitting expressions (the constrained agent's state space).

    Hand-written forms in the style of the Letter's Table I (linear, polynomial, rational,
    logarithmic, exponential, tanh/logistic/softplus steps, damped oscillations, Gaussian
    bumps...), each with parameters numbered by first appearance. ``n`` keeps the first ``n``.
    """
    v = _check_variable(variable)
    forms = [
        "param1*x+param2", "param1*x", "param1+param2*x+param3*x**2",
        "param1*x**2+param2", "param1*x**3+param2*x**2+param3*x+param4",
        "param1*x**param2", "param1*x**param2+param3", "param1*sqrt(x)+param2",
        "param1*log(x)+param2", "param1*log(x+param2)+param3", "param1*log10(x)+param2",
        "param1*exp(param2*x)", "param1*exp(param2*x)+param3", "param1*exp(-x/param2)+param3",
        "param1*(1-exp(-param2*x))", "param2+param1*(1-exp(-x))",
        "param1*(1-exp(-param2*x))+param3", "param1/x+param2", "param1/(x+param2)+param3",
        "param1-(param2/(x+param3))", "param1*x/(param2+x)", "param1*x/(param2+x)+param3",
        "param1*x/(1+param2*log(x+1))", "param1/(1+param2*x)", "param1/(1+param2*x**2)+param3",
        "param1*tanh(x)", "param1*tanh(param2*x)", "param1*tanh(param2*x)+param3",
        "param1*tanh(param2*x+param3)", "param1*tanh(param2*x+param3)+param4",
        "param1*tanh(param2*(x-param3))+param4", "param1*tanh(x/param2)+param3",
        "param1/(1+exp(-param2*(x-param3)))", "param1/(1+exp(-param2*(x-param3)))+param4",
        "param1/(1+exp(param2*x+param3))+param4", "param1*log(1+exp(param2*x+param3))",
        "param1*log(1+exp(param2*x+param3))+param4", "param1*log(1+exp(param2*(x-param3)))",
        "param1*arctan(param2*x)", "param1*arctan(param2*x+param3)+param4",
        "param1*sin(x)", "param1*sin(param2*x)", "param1*sin(param2*x+param3)",
        "param1*sin(param2*x+param3)+param4", "param1*cos(param2*x)+param3",
        "param1*cos(param2*x+param3)", "param1*sin(param2*x)+param3*cos(param2*x)",
        "param1*sin(param2*x+param3)*exp(-param4*x)",
        "param1*sin(param2*x+param3)*exp(-param4*x)+param5",
        "param1*exp(-param2*x)*cos(param3*x+param4)", "param1*exp(-param2*x)*sin(param3*x)",
        "param1*x*exp(-param2*x)", "param1*x*exp(-param2*x)+param3",
        "param1*x**2*exp(-param2*x)", "param1*exp(-param2*(x-param3)**2)",
        "param1*exp(-param2*(x-param3)**2)+param4", "param1*exp(-(x-param2)**2/param3)",
        "param1*exp(-square(x-param2)/param3)+param4", "param1*abs(x-param2)+param3",
        "param1*square(x-param2)+param3", "param1*square(x)+param2*x+param3",
        "param1*sqrt(abs(x-param2))+param3", "param1*x+param2*log(x)+param3",
        "param1*x+param2*sin(param3*x)", "param1*x+param2*exp(-param3*x)",
        "param1*log(x)+param2*x**2+param3", "param1*exp(param2*x)+param3*x+param4",
        "param1*tanh(param2*x)+param3*x+param4", "param1*sin(param2*x)/x+param3",
        "param1*sin(param2*x)/(x+param3)", "param1*x/(1+param2*x**2)",
        "param1*x/(1+param2*x**2)+param3", "(param1*x+param2)/(x+param3)",
        "(param1+param2*x)/(1+param3*x)", "param1*x**2/(param2+x**2)",
        "param1*x**2/(param2+x**2)+param3", "param1-param2*exp(-param3*x**2)",
        "param1*(x-param2)*exp(-param3*x)", "param1*(x-param2)*exp(-param3*x)+param4",
        "param1*cos(param2*x)*exp(-param3*x)", "param1*tanh(param2*x)*exp(-param3*x)",
        "param1*tanh(param2*x)*exp(-param3*x)+param4", "param1*sin(param2*sqrt(x)+param3)",
        "param1*sin(param2*log(x)+param3)+param4", "param1*sin(pi*x/param2)",
        "param1*sin(pi*x/param2)*exp(-x/param3)", "param1*exp(-x/param2)*sin(pi*x/param3)",
        "param1*log(x)/x+param2", "param1*log(x)*exp(-param2*x)",
        "param1*x*exp(-param2*x**2)", "param1*x*exp(-param2*x**2)+param3",
        "param1*exp(-param2*x)-param3*exp(-param4*x)",
        "param1*(exp(-param2*x)-exp(-param3*x))", "param1*x**param2*exp(-param3*x)",
        "param1*x**param2*exp(-param3*x)+param4", "param1/(1+exp(-x))",
        "param1/(1+exp(-x))+param2", "param1*log(1+exp(x))+param2", "param1*tanh(x)+param2",
        "param1*tanh(x-param2)+param3", "param1*arctan(x)+param2", "param1*exp(x)+param2",
        "param1*exp(-x)+param2", "param1*log(x+1)+param2", "param1*sqrt(x+param2)+param3",
        "param1*x+param2*x**2", "param1*x**2", "param1+param2/x+param3/x**2",
        "param1*sin(x)+param2*cos(x)", "param1*sin(x)*exp(-param2*x)",
        "param1*cos(x)*exp(-param2*x)+param3", "param1*sin(x/param2)*exp(-x/param3)+param4",
        "param1*tanh(param2*x+param3)*sin(param4*x)", "param1*exp(-param2*x)*sin(param3*x)+param4",
        "param1*tanh(param2*x)-param3*tanh(param4*x)", "param1*x*exp(-x/param2)",
        "param1*exp(param2*sin(param3*x))", "param1*sin(param2*x)**2",
        "param1*cos(param2*x)**2+param3", "param1*x*sin(param2*x)",
        "param1*x*cos(param2*x)+param3",
    ]
    out = tuple(dict.fromkeys(re.sub(r"\bx\b", v, f) for f in forms))
    for c in out:
        parse_expression(c, v)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(out):
            raise ValueError(f"n must be an int in [1, {len(out)}], got {n!r}")
        out = out[:n]
    return out


# ---------------------------------------------------------------------------- the agent
class SymbolicAgent:
    """The Letter's IdeaSearchFitter as an :class:`~dbnb.agents.run.Agent`.

    Parameters
    ----------
    data : RegressionData, optional
        The data set (default :func:`dbnb.symdata.load_dataset`, i.e. ``mcycle``).
    mode : {"free", "constrained", "grammar"}
        ``"free"``: any reply, parsed for its first valid expression. ``"constrained"``: a GBNF
        grammar whose language is exactly ``candidates`` (finite state space; what the exact
        kernel computes). ``"grammar"``: a GBNF grammar of the whole expression language
        (:func:`expression_grammar`; open state space, every reply parses unless cut short).
    candidates : sequence of str, optional
        The finite state space of ``mode="constrained"`` (default :func:`default_candidates`).
        In the other modes, when given, replies outside it escape with ``"not_in_candidates"``.
    max_tokens : int
        Reply length cap.
    restarts : int
        Least-squares starts per expression (:func:`fit_expression`).
    scores : mapping of str to float or None, optional
        The MSE each expression's prompt showed in an earlier run (:func:`recorded_scores`;
        ``None`` for "could not be evaluated"). Prompts of these expressions show the recorded
        value, so the run replays from its store on any machine; other expressions are fitted.

    Notes
    -----
    A reply whose expression cannot be fitted (non-finite residuals at every start) is the
    escape ``"non_finite"``. Fits are cached per expression.
    """

    name = "symbolic"

    def __init__(
        self,
        data=None,
        *,
        mode: str = "free",
        candidates: Sequence[str] | None = None,
        max_tokens: int | None = None,
        restarts: int = 5,
        scores: Mapping[str, float | None] | None = None,
    ) -> None:
        from ..symdata import RegressionData, load_dataset

        if mode not in ("free", "constrained", "grammar"):
            raise ValueError(f"mode must be 'free', 'constrained' or 'grammar', got {mode!r}")
        if data is None:
            data = load_dataset()
        if not isinstance(data, RegressionData):
            raise ValueError(f"data must be a RegressionData, got {type(data).__name__}")
        self.data = data
        self.variable = data.variable
        self.mode = mode
        if mode == "constrained" and candidates is None:
            candidates = default_candidates(self.variable)
        if candidates is not None:
            if isinstance(candidates, str):
                raise ValueError("candidates must be a sequence of expressions, not a string")
            cands = []
            for c in candidates:
                cands.append(parse_expression(c, self.variable).text)
            candidates = tuple(dict.fromkeys(cands))
        self.candidates: tuple[str, ...] | None = candidates
        self._cand_set = None if candidates is None else frozenset(candidates)
        if max_tokens is None:
            max_tokens = 96 if mode != "constrained" else 64
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self.restarts = restarts
        if mode == "constrained":
            self._grammar = candidate_grammar(self.candidates)
        elif mode == "grammar":
            self._grammar = expression_grammar(self.variable)
        else:
            self._grammar = None
        self._fits: dict[str, ExpressionFit] = {}
        self.scores: dict[str, float | None] = {}
        for expr, mse in (scores or {}).items():
            if mse is not None and (isinstance(mse, bool) or not isinstance(mse, (int, float))
                                    or not math.isfinite(mse) or mse < 0):
                raise ValueError(f"scores[{expr!r}] must be a finite MSE >= 0 or None, "
                                 f"got {mse!r}")
            self.scores[parse_expression(expr, self.variable).text] = (
                None if mse is None else float(mse))

    def __repr__(self) -> str:
        n = "no" if self.candidates is None else len(self.candidates)
        return f"SymbolicAgent({self.data.name!r}, mode={self.mode!r}, {n} candidates)"

    def fit(self, expression: str) -> ExpressionFit:
        """Least-squares fit of an expression to the agent's data (cached)."""
        e = parse_expression(expression, self.variable)
        fit = self._fits.get(e.text)
        if fit is None:
            fit = fit_expression(e, self.data.x, self.data.y, restarts=self.restarts)
            self._fits[e.text] = fit
        return fit

    def shown_mse(self, state: str) -> float | None:
        """The MSE the prompt of ``state`` shows: the recorded one (``scores``) or a fit.

        ``None`` when the expression cannot be parsed or fitted (the prompt then says its fit
        could not be evaluated).
        """
        try:
            text = parse_expression(state, self.variable).text
        except InvalidExpression:
            return None
        if text in self.scores:
            return self.scores[text]
        mse = self.fit(text).mse
        return mse if math.isfinite(mse) else None

    def messages(self, state: str) -> list[dict[str, str]]:
        return prompt_messages(state, variable=self.variable, mse=self.shown_mse(state),
                               description=self.data.description.split(";")[0])

    def prompt_meta(self, state: str) -> dict[str, Any]:
        """What a call's record keeps beside its prompt: the MSE the prompt showed."""
        return {"mse": self.shown_mse(state)}

    def _check(self, e: Expression) -> str | None:
        return self.fit(e.text).reason

    def parse(self, reply: str | None, state: str) -> Parsed:
        return parse_reply(reply, state, variable=self.variable, candidates=self._cand_set,
                           check=self._check)

    def params(self) -> dict[str, Any]:
        from .run import reply_params

        return reply_params(self.max_tokens, self._grammar)

    def counts(self, records, *, source: str = "") -> TransitionCounts:
        """Counts with exact ``N0`` and per-state ``mse``/``score`` from this agent's records."""
        from .run import flatten_records

        return counts_from_records(flatten_records(records), agent=self, source=source)


# ---------------------------------------------------------------------------- counts
def counts_from_records(
    records: Iterable[Mapping[str, Any]],
    *,
    agent: SymbolicAgent | None = None,
    source: str = "",
) -> TransitionCounts:
    """Transition counts with exact ``N0`` from call records of the symbolic agent.

    Parameters
    ----------
    records : iterable of mappings
        One per call with ``prompt`` (the state ``f``) and ``reply``; records with a true
        ``error`` are failed requests and not counted.
    agent : SymbolicAgent, optional
        Parse rule, data and fits (default: a free agent on the default data set).

    Returns
    -------
    TransitionCounts
        ``calls_kind="exact"``, escapes per source. Metadata: ``first_seen``, ``mse`` and
        ``score`` (as the run's prompts showed them, ``meta["mse"]``; states never prompted
        as the agent would show them, :meth:`SymbolicAgent.shown_mse`),
        ``n_params``, ``length`` and one ``escape_<reason>`` column per reason.
    """
    agent = agent or SymbolicAgent()
    records = list(records)
    shown = {**recorded_scores(records)}  # what the run's prompts showed, where it recorded it
    sources: list[str] = []
    targets: list[str | None] = []
    reasons: list[str | None] = []
    for k, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"records[{k}] must be a mapping, got {type(rec).__name__}")
        if rec.get("error"):
            continue
        f = rec.get("prompt")
        if not isinstance(f, str) or not f.strip():
            raise ValueError(f"records[{k}]['prompt'] must be an expression, got {f!r:.80}")
        try:
            f = parse_expression(f, agent.variable).text
        except InvalidExpression as exc:
            raise ValueError(f"records[{k}]['prompt'] is not a valid expression: {exc}") from None
        p = agent.parse(rec.get("reply"), f)
        sources.append(f)
        targets.append(p.state)
        reasons.append(p.reason)
    if not sources:
        raise ValueError("no successful calls in records (all empty or failed)")
    calls = pd.Series(sources).value_counts()
    counts = TransitionCounts.from_pairs(sources, targets, calls=calls, calls_kind="exact",
                                         source=source)
    meta = counts.metadata.copy()
    mse = np.array([np.nan if (v := shown[s] if s in shown else agent.shown_mse(s)) is None
                    else v for s in counts.states])
    meta["mse"] = mse
    meta["score"] = mse_to_score(mse)
    meta["n_params"] = [len(parse_expression(s, agent.variable).params) for s in counts.states]
    meta["length"] = [len(s) for s in counts.states]
    esc = pd.crosstab(
        pd.Series([s for s, r in zip(sources, reasons, strict=True) if r], dtype=object),
        pd.Series([r for r in reasons if r], dtype=object),
    ) if any(reasons) else pd.DataFrame()
    for reason in ESCAPE_REASONS:
        col = esc[reason] if reason in esc.columns else pd.Series(dtype=float)
        meta[f"escape_{reason}"] = col.reindex(meta.index).fillna(0).astype(np.int64).to_numpy()
    return TransitionCounts(states=counts.states, matrix=counts.matrix, calls=counts.calls,
                            calls_kind="exact", escapes=counts.escapes, metadata=meta,
                            source=source)


def recorded_scores(records: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """The MSE each prompt showed, as a run recorded it (``meta["mse"]`` of its calls).

    Parameters
    ----------
    records : iterable of mappings
        Store records (or a store) of the symbolic agent.

    Returns
    -------
    dict
        expression -> MSE (``None``: the prompt said the fit could not be evaluated). Records
        without ``meta["mse"]`` are skipped.

    Raises
    ------
    ValueError
        When two records of one prompt recorded different values.
    """
    out: dict[str, float | None] = {}
    for rec in records:
        meta = rec.get("meta") or {}
        if "mse" not in meta or not isinstance(meta.get("prompt"), str):
            continue
        f, v = meta["prompt"], meta["mse"]
        if f in out and out[f] != v:
            raise ValueError(f"records disagree on the MSE shown for {f!r}: {out[f]!r} and {v!r}")
        out[f] = v
    return out


# ---------------------------------------------------------------------------- features
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
    puse = pd.Series([n for n in names if _PARAM.fullmatch(n)], dtype=object).value_counts()
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


@dataclass(frozen=True, eq=False, repr=False)
class FeaturePotential:
    """An explicit potential ``beta V(f) = sum_j w_j X_j(f)`` fitted by least action.

    Attributes
    ----------
    weights : pandas.DataFrame
        One row per feature used: ``weight`` (``beta V`` per unit of the feature),
        ``std_error``, ``z`` (weight / std_error), ``weight_std`` and ``std_error_std`` (per
        standard deviation of the feature over the states), ``feature_std``.
    potential : pandas.Series
        ``X w`` per state, gauge ``min = 0``.
    action : float
        Normalised action (Eq. 8) of the feature potential on all transitions of the kernel.
    action_free : float
        The free least-action minimum (:attr:`dbnb.potential.PotentialFit.action`), a lower
        bound for ``action``.
    action_flat : float
        The action of a constant potential, ``K(0) * sum T / n`` (no directionality).
    dropped : tuple of str
        Features left out: constant over the states, or (``"collinear"``) exactly linearly
        dependent on earlier ones.
    kernel, n_states, n_transitions, iterations, converged, std_error_method
    """

    weights: pd.DataFrame
    potential: pd.Series
    action: float
    action_free: float
    action_flat: float
    dropped: tuple[str, ...]
    kernel: str
    n_states: int
    n_transitions: int
    iterations: int
    converged: bool
    std_error_method: str
    ridge: float = 0.0

    def __repr__(self) -> str:
        return (f"FeaturePotential({len(self.weights)} features, {self.n_states} states, "
                f"action={self.action:.4g} vs free {self.action_free:.4g}, "
                f"flat {self.action_flat:.4g})")

    def table(self) -> pd.DataFrame:
        """The Table V analogue: weights with uncertainties, sorted by |z|."""
        return self.weights.reindex(self.weights["z"].abs().sort_values(ascending=False).index)


def _feature_newton(d: np.ndarray, t: np.ndarray, n: int, kernel: str, ridge: float,
                    tol: float, max_iter: int):
    """Minimise ``(1/n) sum_e t_e K((D w)_e) + ridge/2 |w|^2`` over the weights ``w``."""
    from ..action import violation_terms
    from ..newton import minimise, solve_spd

    p = d.shape[1]

    def objective(w):
        k, _, _ = violation_terms(kernel, d @ w)
        return float(t @ k) / n + 0.5 * ridge * float(w @ w)

    def derivatives(w):
        _, k1, k2 = violation_terms(kernel, d @ w)
        grad = d.T @ (t * k1) / n + ridge * w
        hess = (d.T * (t * k2)) @ d / n + ridge * np.eye(p)
        scale = np.abs(d.T) @ (t * np.abs(k1)) / n + ridge * np.abs(w) + np.finfo(float).tiny
        return grad, grad / scale, hess

    r = minimise(objective, derivatives, np.zeros(p), solve=solve_spd, tol=tol,
                 max_iter=max_iter)
    return r.x, r.iterations, r.converged


def feature_potential(
    data,
    features_df: pd.DataFrame | None = None,
    *,
    variable: str = "x",
    kernel: str | None = None,
    ridge: float = 1e-8,
    bootstrap: int = 0,
    seed: int = 0,
    tol: float = 1e-8,
    max_iter: int = 200,
    main_only: bool = False,
) -> FeaturePotential:
    r"""Fit an explicit potential ``beta V = X w`` on expression features by least action.

    Minimises the action of Eq. 8, ``S(w) = (1/n) sum_{f != g} T(g<-f) K(x_f.w - x_g.w)``,
    over the weights ``w`` (Newton's method with the analytic gradient and Hessian and a
    backtracking line search; the problem is convex). Features are standardised internally;
    constant features, and features exactly collinear with earlier ones, are dropped (no
    intercept: only differences of ``V`` enter the action).

    Parameters
    ----------
    data : PotentialFit, TransitionKernel or TransitionCounts
        The free least-action fit (its kernel and action are used), or a kernel/counts to fit
        one from (:func:`dbnb.potential.fit_potential`).
    features_df : pandas.DataFrame, optional
        Features per state (rows indexed by state); default :func:`feature_table` of the
        kernel's states with ``variable``. States with NaN features are left out.
    kernel : {"exp", "softplus"}, optional
        Violation kernel; default the fit's.
    ridge : float
        A tiny ridge ``(ridge / 2) |w|^2`` (standardised units) keeping one-way directions finite.
    main_only : bool
        Use only the states of the free fit's main strongly connected component (where the
        free potential is finite). Default: every state of the kernel; one-way directions
        between components then push the weights up to the ``ridge`` scale.
    bootstrap : int
        If positive, standard errors from this many Poisson resamplings of the counts
        (``N'(g<-f) ~ Poisson(N(g<-f))``, same ``N0``), refitting ``w`` each time. Otherwise
        (default) the sandwich estimate ``H^-1 C H^-1``, with ``H`` the Hessian of ``S`` and
        ``C = (1/n^2) sum T(g<-f)/N0(f) K'^2 d d^T`` the covariance of its gradient under
        Poisson noise on the counts (``Var T = T / N0``).

    Returns
    -------
    FeaturePotential
    """
    from ..action import violation_terms as _kernel_terms
    from ..kernels import TransitionKernel
    from ..potential import PotentialFit, fit_potential

    if isinstance(data, PotentialFit):
        fit = data
    elif isinstance(data, (TransitionKernel, TransitionCounts)):
        fit = fit_potential(data, kernel or "exp")
    else:
        raise TypeError("data must be a PotentialFit, TransitionKernel or TransitionCounts, "
                        f"got {type(data).__name__}")
    kernel = kernel or fit.violation
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative int, got {bootstrap!r}")
    tk = fit.transitions
    states = pd.Index(tk.states)
    X = feature_table(tk.states, variable) if features_df is None else features_df
    missing = states.difference(X.index)
    if len(missing):
        raise ValueError(f"features_df lacks states, e.g. {list(missing[:3])}")
    X = X.reindex(states).astype(float)
    ok = np.isfinite(X.to_numpy()).all(axis=1)
    if main_only:
        ok &= (fit.status.reindex(states) == "main").to_numpy()
    f, g, t, _ = tk.edges()
    keep = ok[f] & ok[g]
    f, g, t = f[keep], g[keep], t[keep]
    n0 = np.asarray(tk.n0, dtype=float)[f]
    n = tk.n_states
    Xv = X[ok]
    dropped = [c for c in X.columns if Xv[c].std(ddof=0) == 0]
    cols = [c for c in X.columns if c not in dropped]
    # drop exactly collinear columns (QR rank test on standardised features)
    mu, sd = Xv[cols].mean(), Xv[cols].std(ddof=0)
    Z = ((X[cols] - mu) / sd).fillna(0.0).to_numpy()
    kept: list[int] = []
    for j in range(len(cols)):
        trial = Z[ok][:, kept + [j]]
        if np.linalg.matrix_rank(trial, tol=1e-8 * max(1, trial.shape[0])) == len(kept) + 1:
            kept.append(j)
        else:
            dropped.append(cols[j])
    cols = [cols[j] for j in kept]
    Z = Z[:, kept]
    sd = sd[cols]
    d = Z[f] - Z[g]
    w, it, conv = _feature_newton(d, t, n, kernel, ridge, tol, max_iter)
    x = d @ w
    _, k1, k2 = _kernel_terms(kernel, x)
    hess = (d.T * (t * k2)) @ d / n + ridge * np.eye(len(cols))
    hinv = np.linalg.pinv(hess)
    if bootstrap:
        rng = np.random.default_rng(seed)
        nn = t * n0
        boots = []
        for _ in range(bootstrap):
            tb = rng.poisson(nn) / n0
            wb, _, _ = _feature_newton(d, tb, n, kernel, ridge, tol, max_iter)
            boots.append(wb)
        se = np.std(np.asarray(boots), axis=0, ddof=1)
        method = f"Poisson bootstrap ({bootstrap} resamples)"
    else:
        c = (d.T * (t / n0 * k1 ** 2)) @ d / n ** 2
        se = np.sqrt(np.clip(np.diag(hinv @ c @ hinv), 0, None))
        method = "sandwich (Poisson counts)"
    v = pd.Series(Z @ w, index=states, name="beta_V")
    v[~ok] = np.nan
    v = v - v.min()
    kk, _, _ = _kernel_terms(kernel, x)
    s_feat = float(t @ kk) / n
    k0, _, _ = _kernel_terms(kernel, np.zeros(1))
    weights = pd.DataFrame({
        "weight": w / sd.to_numpy(), "std_error": se / sd.to_numpy(),
        "z": np.divide(w, se, out=np.full_like(w, np.nan), where=se > 0),
        "weight_std": w, "std_error_std": se, "feature_std": sd.to_numpy(),
    }, index=pd.Index(cols, name="feature"))
    return FeaturePotential(
        weights=weights, potential=v, action=s_feat, action_free=float(fit.action),
        action_flat=float(k0[0] * t.sum() / n), dropped=tuple(dropped), kernel=kernel,
        n_states=int(ok.sum()), n_transitions=int(f.size), iterations=it, converged=conv,
        std_error_method=method, ridge=ridge,
    )


# ---------------------------------------------------------------------------- exact kernel
def exact_kernel(
    candidates: Sequence[str],
    agent: SymbolicAgent,
    *,
    sources: Sequence[str] | None = None,
    model: str = "smollm2",
    min_prob: float = 1e-5,
    prompt_mode: str = "fresh",
    progress: bool = True,
    checkpoint: str | Path | None = None,
):
    """``P(g | f)`` of the candidate-grammar sampler over expressions, from token log-probabilities.

    :func:`dbnb.exact.exact_replies` with the agent's prompt (the expression with its fit
    quality) and the candidates as the grammar's literal strings (``mode="constrained"``).
    Expressions are long (``param1*tanh(...)``, ~35 characters) and have millions of
    tokenisations, so the walk stops at partial tokenisations whose path probability is below
    ``min_prob``; the probabilities are then lower bounds and the mass not followed is reported
    per prompt as ``uncovered``. Measured with SmolLM2 on ``mcycle`` (121 candidates, ~190-token
    prompts, ~7 ms per token step): ``min_prob`` 1e-3 / 1e-4 / 1e-5 leaves 10-18 % / 4-6 % /
    1-2 % uncovered at 5 / 20 / 60 s per prompt; each decade costs ~3x and removes ~2/3.

    Parameters
    ----------
    candidates : sequence of str
        Expressions (parsed and normalised like the agent's states; must be distinct).
    agent : SymbolicAgent
        Gives the prompt (data set, variable, fit quality of each source).
    sources : sequence of str, optional
        Prompt expressions (among the candidates); default all.
    model, min_prob, prompt_mode, progress, checkpoint
        As in :func:`dbnb.exact.exact_replies`.

    Returns
    -------
    dbnb.exact.ExactKernel
        ``states`` = candidates, ``sources`` the prompts; ``info`` names the data set and
        variable.
    """
    from ..llm import logprob as ex

    if not isinstance(agent, SymbolicAgent):
        raise ValueError(f"agent must be a SymbolicAgent, got {type(agent).__name__}")
    if isinstance(candidates, str):
        raise ValueError("candidates must be a sequence of expressions, not a single string")
    cands = [parse_expression(c, agent.variable).text for c in candidates]
    if len(set(cands)) != len(cands):
        raise ValueError("candidates must be distinct expressions")
    srcs = None
    if sources is not None:
        if isinstance(sources, str):
            raise ValueError("sources must be a sequence of expressions, not a single string")
        srcs = [parse_expression(s, agent.variable).text for s in sources]
    return ex.logprob_replies(
        cands, agent.messages, sources=srcs, model=model, progress=progress,
        prompt_mode=prompt_mode, min_prob=min_prob, checkpoint=checkpoint,
        desc="exact kernel (expressions)",
        info={"dataset": agent.data.name, "variable": agent.variable, "agent": "symbolic"},
    )
