"""The constrained symbolic agent's state space: a fixed list of fitting expressions."""

from __future__ import annotations

import re

from .expressions import check_variable, parse_expression

__all__ = ["default_candidates"]


def default_candidates(variable: str = "x", n: int | None = None) -> tuple[str, ...]:
    """A fixed list of distinct fitting expressions (the constrained agent's state space).

    Hand-written forms in the style of the Letter's Table I (linear, polynomial, rational,
    logarithmic, exponential, tanh/logistic/softplus steps, damped oscillations, Gaussian
    bumps...), each with parameters numbered by first appearance. ``n`` keeps the first ``n``.
    """
    v = check_variable(variable)
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
