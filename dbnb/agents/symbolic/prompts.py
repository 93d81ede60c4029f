"""The symbolic agent's words: its prompt, its reply rule and its grammars.

A call shows the model the current expression and its fit quality and asks for a new
expression; the first valid expression in the reply is the next state ``g``
(:func:`parse_reply`). Constrained modes restrict the reply with a GBNF grammar: the
candidate list (:func:`candidate_grammar`) or the whole language (:func:`expression_grammar`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from ..base import Parsed
from .expressions import FUNCTIONS, Expression, InvalidExpression, check_variable, parse_expression
from .fitting import mse_to_score

__all__ = ["candidate_grammar", "expression_grammar", "parse_reply", "prompt_messages"]


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
    check_variable(variable)
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
