"""The symbolic-regression agent (the Letter's IdeaSearchFitter, METHOD §6) and its records.

The MSE a prompt shows is part of the run's record: every call stores it in ``meta["mse"]``
(:meth:`SymbolicAgent.prompt_meta`), and an agent built with ``scores=recorded_scores(store)``
shows those values instead of refitting. Least squares on an ill-conditioned expression
(``param1*exp(times)+param2``: ``exp(times)`` reaches 1e25) lands on different minima with
other library versions or CPUs, so replaying a run must never depend on today's fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...counts import TransitionCounts
from ..base import Parsed, flatten_records, reply_params
from ..base import counts_from_records as _counts_from_records
from .candidates import default_candidates
from .expressions import ESCAPE_REASONS, Expression, InvalidExpression, parse_expression
from .fitting import ExpressionFit, fit_expression, mse_to_score
from .prompts import candidate_grammar, expression_grammar, parse_reply, prompt_messages

__all__ = ["SymbolicAgent", "counts_from_records", "logprob_kernel", "recorded_scores",
           "trusted_scores"]


class SymbolicAgent:
    """The Letter's IdeaSearchFitter as an :class:`~dbnb.agents.base.Agent`.

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
        from ...symdata import RegressionData, load_dataset

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

    def reason(self, expression: str,
               recorded: Mapping[str, float | None] | None = None) -> str | None:
        """Why a parsed expression is an escape rather than a state (None: it is a state):
        its fit has no finite MSE (``"non_finite"``).

        ``recorded`` (:func:`trusted_scores`: the MSE a run's prompt showed for an
        expression, checked against this agent's prompt) answers without a fit where it holds
        the expression: ``None`` there means the prompt said the fit could not be evaluated.
        Any other expression is fitted (:meth:`fit`).
        """
        text = parse_expression(expression, self.variable).text
        if recorded is not None and text in recorded:
            return "non_finite" if recorded[text] is None else None
        return self.fit(text).reason

    def parse(self, reply: str | None, state: str, *,
              recorded: Mapping[str, float | None] | None = None) -> Parsed:
        """Parse a reply; ``recorded`` as in :meth:`reason` (a reply whose expression a run
        prompted with, and recorded the fit of, is checked without refitting)."""
        check = self._check if not recorded else (lambda e: self.reason(e.text, recorded))
        return parse_reply(reply, state, variable=self.variable, candidates=self._cand_set,
                           check=check)

    def params(self) -> dict[str, Any]:
        return reply_params(self.max_tokens, self._grammar)

    def counts(self, records, *, source: str = "") -> TransitionCounts:
        """Counts with exact ``N0`` and per-state ``mse``/``score`` from this agent's records."""
        return counts_from_records(flatten_records(records), agent=self, source=source)



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
    shown = recorded_scores(records)  # what the run's prompts showed, where it recorded it
    # replies the run also prompted with, its prompt as this agent builds it: their fit is
    # read from the record, not refitted (a reply whose record is missing or does not match
    # is fitted)
    trusted = trusted_scores(records, agent)

    def state(f, k: int) -> str:
        if not isinstance(f, str) or not f.strip():
            raise ValueError(f"records[{k}]['prompt'] must be an expression, got {f!r:.80}")
        try:
            return parse_expression(f, agent.variable).text
        except InvalidExpression as exc:
            raise ValueError(f"records[{k}]['prompt'] is not a valid expression: {exc}") from None

    def metadata(states):
        mse = np.array([np.nan if (v := shown[s] if s in shown else agent.shown_mse(s)) is None
                        else v for s in states])
        return {
            "mse": mse,
            "score": mse_to_score(mse),
            "n_params": [len(parse_expression(s, agent.variable).params) for s in states],
            "length": [len(s) for s in states],
        }

    def parse(reply, f):
        return agent.parse(reply, f, recorded=trusted)

    return _counts_from_records(records, state=state, parse=parse,
                                reasons=ESCAPE_REASONS, metadata=metadata, source=source)


def trusted_scores(records: Iterable[Mapping[str, Any]],
                   agent: SymbolicAgent) -> dict[str, float | None]:
    """The recorded MSEs (``meta["mse"]``) that ``agent`` can use instead of refitting.

    A prompt's value is kept only when it is consistent with the agent's settings: a finite
    MSE ``>= 0`` or ``None`` (the fit could not be evaluated), the same in every record of
    that prompt, and the record's ``messages`` exactly the prompt this agent builds for it
    with that value (same data set description, variable and wording). Anything else (no
    ``meta["mse"]``, no messages, another data set, records that disagree) is left out, and
    the agent refits that expression.

    Parameters
    ----------
    records : iterable of mappings
        Store records of the symbolic agent (failed calls included: their prompt was shown).
    agent : SymbolicAgent

    Returns
    -------
    dict
        Normalised expression text -> MSE (or None), for :meth:`SymbolicAgent.reason`.
    """
    desc = agent.data.description.split(";")[0]
    out: dict[str, float | None] = {}
    bad: set[str] = set()
    built: dict[tuple[str, Any], list | None] = {}
    for rec in records:
        meta = rec.get("meta") or {}
        f = meta.get("prompt")
        if "mse" not in meta or not isinstance(f, str):
            continue
        v = meta["mse"]
        try:
            text = parse_expression(f, agent.variable).text
        except InvalidExpression:
            continue
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) and v >= 0)
        if ok:
            key = (f, v)
            if key not in built:  # one prompt built per distinct (prompt, value)
                try:
                    built[key] = prompt_messages(f, variable=agent.variable,
                                                 mse=None if v is None else float(v),
                                                 description=desc)
                except ValueError:
                    built[key] = None
            ok = built[key] is not None and rec.get("messages") == built[key]
        if not ok or (text in out and out[text] != v):
            bad.add(text)
        else:
            out[text] = None if v is None else float(v)
    return {k: v for k, v in out.items() if k not in bad}


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



def logprob_kernel(
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

    :func:`dbnb.llm.logprob.logprob_replies` with the agent's prompt (the expression with its fit
    quality) and the candidates as the grammar's literal strings (``mode="constrained"``).
    Expressions are long (``param1*tanh(...)``, ~35 characters) and have millions of
    tokenisations, so the walk stops at partial tokenisations whose path probability is below
    ``min_prob``; the probabilities are then lower bounds and the mass not followed is reported
    per prompt as ``uncovered``. A smaller ``min_prob`` leaves less uncovered at a higher cost
    (``benchmarks/README.md`` has the trade-off measured).

    Parameters
    ----------
    candidates : sequence of str
        Expressions (parsed and normalised like the agent's states; must be distinct).
    agent : SymbolicAgent
        Gives the prompt (data set, variable, fit quality of each source).
    sources : sequence of str, optional
        Prompt expressions (among the candidates); default all.
    model, min_prob, prompt_mode, progress, checkpoint
        As in :func:`dbnb.llm.logprob.logprob_replies`.

    Returns
    -------
    dbnb.llm.logprob.LogprobKernel
        ``states`` = candidates, ``sources`` the prompts; ``info`` names the data set and
        variable.
    """
    from ...llm.logprob import logprob_replies

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
    return logprob_replies(
        cands, agent.messages, sources=srcs, model=model, progress=progress,
        prompt_mode=prompt_mode, min_prob=min_prob, checkpoint=checkpoint,
        desc="log-probability kernel (expressions)",
        info={"dataset": agent.data.name, "variable": agent.variable, "agent": "symbolic"},
    )
