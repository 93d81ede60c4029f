r"""Fit quality of an expression: least squares and the Letter's score.

Parameters are fitted by least squares (:func:`scipy.optimize.least_squares`, a few
deterministic restarts, a budget counted in evaluations). The score is the Letter's mapping
between MSE and IdeaSearchFitter score read backwards (:func:`dbnb.datasets.score_to_mse`),
``score = 20 - 15 log10(MSE / 0.0602...)``; MSE is in the squared units of the data set's
target. An expression whose residuals are non-finite at every start is the escape
``"non_finite"``.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

import numpy as np

from ...datasets import MSE_AT_SCORE_20, score_to_mse
from .expressions import Expression, evaluator, parse_expression

__all__ = ["ExpressionFit", "fit_expression", "mse_to_score", "score_to_mse"]


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
    fn = evaluator(expr.text, expr.variable)
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
