"""dbnb check and dbnb.verdict: the verdict on synthetic chains with a known answer, on the
shipped data, on undefined cases and on malformed files; dbnb.calibration; the figures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dbnb import calibration, plots, synthetic  # noqa: E402
from dbnb.agents.word import grammar, vocabulary  # noqa: E402
from dbnb.cli import main  # noqa: E402
from dbnb.counts import TransitionCounts  # noqa: E402
from dbnb.datasets import claude4_table2, data_dir  # noqa: E402
from dbnb.sources import check_data, store_counts  # noqa: E402
from dbnb.verdict import check, format_p, is_noise_free  # noqa: E402

RUNS = data_dir() / "runs"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------- helpers
def _as_words(counts: TransitionCounts) -> tuple[TransitionCounts, dict[str, str]]:
    """The same counts with the shipped vocabulary's words as state labels."""
    words = list(vocabulary(counts.n_states))
    names = dict(zip(counts.states, words, strict=True))
    return counts, names


def _write_store(counts: TransitionCounts, path, *, constrained: bool = True) -> dict[str, str]:
    """Write fixed-design synthetic counts as a word-agent response store: one record per
    call, escapes as replies equal to the prompt; states renamed to shipped words."""
    counts, names = _as_words(counts)
    words = list(names.values())
    params = {"temperature": 1.0}
    if constrained:
        params["extra_body"] = {"grammar": grammar(words)}
    f, g, c = counts.edges()
    replies: dict[int, list[str]] = {i: [] for i in range(counts.n_states)}
    for fi, gi, ci in zip(f, g, c, strict=True):
        replies[int(fi)] += [words[gi]] * int(ci)
    k = 0
    with open(path, "w") as fh:
        for i in range(counts.n_states):
            rs = replies[i] + [words[i]] * int(counts.calls[i] - len(replies[i]))
            for r in rs:
                fh.write(json.dumps({"key": f"k{k}", "sample": 0, "model": "synthetic",
                                     "messages": [], "params": params, "reply": r,
                                     "error": None, "meta": {"agent": "word",
                                                             "prompt": words[i],
                                                             "schedule": "fixed"}}) + "\n")
                k += 1
    return names


def _write_csv(counts: TransitionCounts, path) -> None:
    f, g, c = counts.edges()
    s = np.array(counts.states, dtype=object)
    pd.DataFrame({"source": s[f], "target": s[g], "count": c}).to_csv(path, index=False)


# ---------------------------------------------------------------------------- synthetic
def test_reversible_chain_as_a_store(tmp_path, capsys):
    """A reversible chain written as a constrained word-agent store: consistent, the
    intervals hold the true potential at about their level, and the CSV has every state."""
    chain = synthetic.reversible_chain(20, degree=5, sigma=1.0, seed=11)
    counts = synthetic.sample_fixed_design(chain, 300, seed=12)
    store = tmp_path / "run.jsonl"
    names = _write_store(counts, store)
    out = tmp_path / "v.csv"
    rc = main(["check", str(store), "--bootstrap", "49", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "Verdict: consistent with detailed balance" in text
    assert "the prompt matters" in text
    assert "20 states" in text and "6,000 calls" in text
    for part in ("detailed balance vs free", "popularity vs balance", "Hodge split",
                 "Out of sample", "Potentials (Firth"):
        assert part in text
    table = pd.read_csv(out, index_col=0)
    assert len(table) == 20 and list(table.columns) == ["beta_V", "stderr", "low", "high",
                                                        "status"]
    assert (table["status"] == "main").all()
    ref = table["beta_V"].idxmin()
    truth = pd.Series(chain.potential, index=[names[s] for s in chain.states])
    truth = (truth - truth[ref]).reindex(table.index)
    inside = (table["low"] <= truth + 1e-9) & (truth - 1e-9 <= table["high"])
    assert inside.mean() >= 0.8
    # the store's records carry a grammar: the constrained agent parsed it
    assert store_counts(store).n_states == 20


def test_driven_chain_as_csv_is_rejected(tmp_path, capsys):
    chain = synthetic.driven_chain(25, degree=6, sigma=1.0, drive=1.5, seed=3)
    counts = synthetic.sample_fixed_design(chain, 400, seed=4)
    path = tmp_path / "driven.csv"
    _write_csv(counts, path)
    assert main(["check", str(path), "--bootstrap", "49", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Verdict: detailed balance is rejected" in text
    assert "strongest cycles" in text and "sigma)" in text
    assert "calls not recorded" in text  # a CSV has no N0
    assert "Out of sample: undefined" in text
    v = check(counts, bootstrap=0)
    assert v.status == "rejected" and v.test.p_value < 1e-6
    assert v.circulation > 0.05


def test_check_on_true_kernels():
    rev = check(synthetic.reversible_chain(30, degree=6, seed=1).kernel())
    assert rev.noise_free and rev.status == "exact" and rev.test is None
    assert "affinity is 0 to rounding" in rev.render()
    assert rev.shares.antisymmetric < 1e-12
    drv = check(synthetic.driven_chain(30, degree=6, drive=1.0, seed=1).kernel())
    assert drv.status == "circulates" and drv.circulation > 0.01
    assert drv.shares.antisymmetric > 0.01
    text = drv.render()
    assert "no sampling noise" in text and "bootstrap" not in text


def test_popularity_only_kernel_passes_balance_and_fails_to_show_the_prompt_matters():
    chain = synthetic.popularity_chain(20, sigma=1.0, seed=1)
    exact = check(chain.kernel())
    assert exact.status == "exact"
    # log T(g <- f) = log p(g): main effects only (the missing diagonal lends the source a bit)
    assert exact.shares.reply > 0.99 and exact.shares.source + exact.shares.reply > 1 - 1e-9
    counts = synthetic.sample_fixed_design(chain, 100, seed=2)
    v = check(counts, bootstrap=49)
    assert v.status == "consistent"
    assert v.test.p_popularity > 0.05
    assert "no evidence beyond favourite replies" in v.conclusion


def test_estimated_exact_kernel_is_not_noise_free():
    """The estimator "exact" (Eq. 6, recorded N0) is a sampled kernel, not a noise-free one."""
    from dbnb.kernels import estimate_kernel

    counts = synthetic.sample_fixed_design(synthetic.reversible_chain(10, seed=0), 50, seed=1)
    tk = estimate_kernel(counts, "exact")
    assert not is_noise_free(tk)
    assert check(tk, bootstrap=0).test is not None


# ---------------------------------------------------------------------------- bounds
def _bounds(t: np.ndarray, width: float, seed: int = 0):
    """Bounds around ``t``: each entry's lower bound up to ``width`` below it in log, its
    upper bound up to ``width`` above (independent draws), so the truth lies inside."""
    rng = np.random.default_rng(seed)
    return t * np.exp(-width * rng.random(t.shape)), t * np.exp(width * rng.random(t.shape))


def _planted(t: np.ndarray, factor: float) -> tuple[np.ndarray, tuple[int, int]]:
    """``t`` with one entry of a pair on a triangle multiplied by ``factor``: the pair's
    log-ratio moves by ``log factor`` and every cycle through it carries that affinity."""
    two = (t > 0) & (t.T > 0)
    for g, f in zip(*np.nonzero(two), strict=True):
        if (two[f] & two[g]).any():  # f and g share a neighbour: a triangle
            out = t.copy()
            out[g, f] *= factor
            return out, (int(f), int(g))
    raise AssertionError("no triangle")


def _logprob_file(path, t: np.ndarray, states, lower, upper, *, store_upper: bool = True):
    """A log-probability kernel file (``.npz``) whose walk found ``lower`` (upper bounds
    ``upper`` stored, or left to the uncovered mass: then the self-replies take all but 1e-6
    of each column, so the uncovered mass bounds every entry to 1e-6)."""
    from dbnb.llm.logprob import LogprobKernel

    n = t.shape[0]
    lower = lower.copy()
    if not store_upper:
        np.fill_diagonal(lower, 0.0)
        np.fill_diagonal(lower, 1.0 - 1e-6 - lower.sum(axis=0))
    with np.errstate(divide="ignore"):
        logprob = np.log(lower)
    LogprobKernel(states=tuple(states), sources=tuple(states), prob=lower, logprob=logprob,
                  uncovered=np.clip(1.0 - lower.sum(axis=0), 0.0, None),
                  seconds=np.ones(n), n_nodes=n, info={"min_prob": 1e-5},
                  upper=upper if store_upper else None).save(path)
    return path


def test_bounded_verdict_of_exact_kernels():
    """An exact matrix is its own bounds: a reversible chain is certified consistent with
    every pair inside its interval, a driven one certified violated with pairs outside."""
    rev = check(synthetic.reversible_chain(30, degree=6, seed=1).kernel())
    assert rev.bounded_status == "certified consistent"
    assert rev.n_outside == 0 and rev.max_outside < 1e-6
    assert "Bounds:  certified consistent" in rev.render()
    drv = check(synthetic.driven_chain(30, degree=6, drive=1.0, seed=1).kernel())
    assert drv.bounded_status == "certified violated"
    assert drv.n_outside > 0 and drv.max_outside > 0.1
    assert "certified violation of detailed balance" in drv.render()
    row = drv.summary()
    assert row["bounded"] == "certified violated" and row["pairs_outside"] == drv.n_outside


def test_bounded_verdict_with_consistent_and_violated_bounds():
    """Bounds around a reversible kernel: consistent, and the true potential difference lies
    in every range. One planted entry pushed beyond its bounds: certified violated; the same
    planted entry with bounds wide enough to cover it: consistent again."""
    chain = synthetic.reversible_chain(25, degree=5, sigma=1.0, seed=4)
    tk = chain.kernel()
    t = chain.matrix.toarray()
    lo, up = _bounds(t, 0.05, seed=1)
    ok = check(tk, bounds=(lo, up), bounds_note="test bounds")
    assert ok.bounded_status == "certified consistent" and ok.n_outside == 0
    b = ok.bounded
    true = pd.Series(chain.potential, index=chain.states)
    true = true - true[b.reference]
    assert ((b.low - 1e-8 <= true) & (true <= b.high + 1e-8)).all()
    assert "(test bounds)" in ok.render()
    assert np.isfinite(ok.potentials["bounded_low"]).all()
    bad, (f, g) = _planted(t, np.exp(1.0))
    lo2, up2 = _bounds(bad, 0.05, seed=1)
    viol = check(synthetic.true_kernel(bad, chain.states), bounds=(lo2, up2))
    assert viol.bounded_status == "certified violated" and not viol.bounded.consistent
    assert viol.n_outside >= 1 and 0.1 < viol.max_outside < 1.0  # at most the planted 1
    assert viol.bounded.low.isna().all()  # no potential, no range
    # the tolerance decides what is counted, not the verdict
    loose = check(synthetic.true_kernel(bad, chain.states), bounds=(lo2, up2), bounded_tol=2.0)
    assert loose.bounded_status == "certified violated" and loose.n_outside == 0
    wide = check(synthetic.true_kernel(bad, chain.states),
                 bounds=(bad * np.exp(-0.6), bad * np.exp(0.6)))
    assert wide.bounded_status == "certified consistent"


def test_bounded_verdict_undefined_and_bad_input():
    t = np.array([[0.0, 0.0], [0.3, 0.0]])  # only B <- A: no pair both ways
    v = check(synthetic.true_kernel(t, ["A", "B"]))
    assert v.bounded_status == "undefined" and "bounded away from 0" in v.bounded_conclusion
    assert np.isnan(v.max_outside)
    tk = synthetic.reversible_chain(5, seed=0).kernel()
    with pytest.raises(ValueError, match="shape"):
        check(tk, bounds=(np.zeros((2, 2)), np.zeros((2, 2))))
    with pytest.raises(ValueError, match="bounded_tol"):
        check(tk, bounded_tol=-1.0)
    counts = synthetic.sample_fixed_design(synthetic.reversible_chain(5, seed=0), 20, seed=1)
    with pytest.raises(ValueError, match="noise-free kernels only"):
        check(counts, bounds=(np.zeros((5, 5)), np.zeros((5, 5))))
    assert check(counts, bootstrap=0).bounded_conclusion == ""


@pytest.mark.parametrize("store_upper", [True, False])
def test_dbnb_check_prints_and_writes_the_bounded_verdict(tmp_path, capsys, store_upper):
    """``dbnb check K.npz``: consistent bounds around a reversible kernel, violated ones
    around a planted violation (bounds stored, or from the uncovered mass); the verdict
    printed beside the others and the pairs written beside the potentials."""
    from dbnb.cli import bounded_pairs_path

    chain = synthetic.reversible_chain(20, degree=5, sigma=1.0, seed=2)
    t = chain.matrix.toarray()
    lo, up = _bounds(t, 0.05, seed=3) if store_upper else (t, None)
    ok = _logprob_file(tmp_path / "ok.npz", t, chain.states, lo, up, store_upper=store_upper)
    out = tmp_path / "ok.csv"
    assert main(["check", str(ok), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Verdict: no sampling noise" in text
    assert "Bounds:  certified consistent with detailed balance" in text
    assert "0 of " in text and "more than 0.01 outside" in text
    pairs = pd.read_csv(bounded_pairs_path(out))
    assert not pairs["beyond_tol"].any() and {"a", "b", "fitted", "outside"} <= set(pairs)
    assert "bounded_low" in pd.read_csv(out, index_col=0)
    bad, _ = _planted(t, np.exp(1.5))
    lo2, up2 = _bounds(bad, 0.05, seed=3) if store_upper else (bad, None)
    viol = _logprob_file(tmp_path / "bad.npz", bad, chain.states, lo2, up2,
                         store_upper=store_upper)
    out2 = tmp_path / "bad.csv"
    assert main(["check", str(viol), "--out", str(out2), "--bounded-tol", "0.05"]) == 0
    text = capsys.readouterr().out
    assert "Bounds:  certified violation of detailed balance" in text
    assert "more than 0.05 outside" in text
    pairs = pd.read_csv(bounded_pairs_path(out2))
    n = int(pairs["beyond_tol"].sum())
    two = int(pairs["two_sided"].sum())
    assert n >= 1 and f"{n:,} of {two:,} two-sided pairs more than 0.05" in text
    assert (pairs["outside"][pairs["two_sided"]] > 0.05).sum() == n


# ---------------------------------------------------------------------------- shipped
def test_shipped_100_word_kernel(tmp_path, capsys):
    out = tmp_path / "k.csv"
    assert main(["check", str(RUNS / "word_logprob100.npz"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "no sampling noise" in text
    assert "G2 =" not in text and "bootstrap" not in text
    assert "var log T (100 states)" in text
    assert "strongest cycles" in text
    table = pd.read_csv(out, index_col=0)
    assert len(table) == 100 and table["low"].isna().all()
    data, log_t = check_data(RUNS / "word_logprob100.npz")
    v = check(data, log_t=log_t)
    assert v.status == "circulates"
    assert 0.9 < v.hodge.gradient_fraction < 0.97
    assert "Bounds:  certified violation" in text and "uncovered mass (no per-entry" in text
    assert v.shares.reply > 0.8 and v.shares.antisymmetric < v.shares.symmetric
    with pytest.raises(ValueError, match="no upper bounds"):
        check_data(RUNS / "word_logprob100.npz", max_log_gap=0.1)


def test_kernel_censored_by_pair():
    """--max-log-gap keeps both directions of a pair or neither."""
    _, full = check_data(RUNS / "symbolic_logprob.npz")
    _, cut = check_data(RUNS / "symbolic_logprob.npz", max_log_gap=0.1)
    fin = np.isfinite(cut)
    np.fill_diagonal(fin, False)
    assert (fin == fin.T).all() and 0 < fin.sum() < np.isfinite(full).sum()


def test_shipped_symbolic_free_store_with_the_symbolic_agent(capsys):
    assert main(["check", str(RUNS / "symbolic_free_letter.jsonl.gz"), "--agent", "symbolic",
                 "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "170 states" in text and "2,000 calls" in text
    assert "chi2 p =" in text


def test_table2_is_said_undefined(tmp_path, capsys):
    rc = main(["check", str(data_dir() / "claude4_table2.csv"), "--n0", "4000"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "cannot be tested here: dof = 0" in text
    assert "G2 =" not in text  # no statistic that looks like an answer
    assert "undefined: no cycle among the two-way pairs" in text
    assert "calls per prompt were not recorded" in text
    v = check(claude4_table2())
    assert v.status == "undefined" and v.summary()["verdict"] == "undefined (dof = 0)"
    assert np.isnan(v.summary()["p"]) and np.isnan(v.summary()["gradient_fraction"])
    assert np.isfinite(v.potentials.loc["PERSONAL", "high"])


def test_one_state_and_no_two_way_pair_are_said_in_words(tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("source,target,count\nA,A,5\n")
    assert main(["check", str(one)]) == 0
    text = capsys.readouterr().out
    assert "one state: there is nothing to compare" in text
    assert "G2 =" not in text and "[" not in text
    chain = tmp_path / "chain.csv"
    chain.write_text("source,target,count\nA,B,5\nB,C,3\n")
    assert main(["check", str(chain)]) == 0
    text = capsys.readouterr().out
    assert "cannot be tested here" in text
    assert "Hodge split: undefined (no pair of states was seen in both directions" in text


def _npz_missing(p):
    np.savez(p, a=np.zeros(3))


@pytest.mark.parametrize("name, content, message", [
    ("x.npz", b"hello", "not a .npz archive"),
    ("k.npz", _npz_missing, "is not a log-probability kernel file"),
    ("s.jsonl", b"not json\n", "no response record"),
    ("g.jsonl.gz", b"garbage", "no response record"),
    ("r.jsonl", b'{"key": "k", "messages": []}\n', "cannot read"),
    ("c.csv", b"a,b\n1,2\n", "neither a long table"),
    ("j.json", b'{"a": ', "is not valid JSON"),
    ("z.txt", b"hi", "cannot tell what this is"),
    ("missing.csv", None, "no such data file"),
])
def test_malformed_files_are_clean_errors(tmp_path, capsys, name, content, message):
    p = tmp_path / name
    if callable(content):
        content(p)
    elif content is not None:
        p.write_bytes(content)
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert message in err and name in err
    assert err.startswith("dbnb check: error:")


def test_bad_options_are_clean_errors(tmp_path, capsys):
    csv = tmp_path / "c.csv"
    csv.write_text("source,target,count\nA,B,5\nB,A,3\n")
    assert main(["check", str(csv), "--agent", "symbolic"]) == 2
    assert "--agent applies to response stores" in capsys.readouterr().err
    assert main(["check", str(csv), "--max-log-gap", "0.1"]) == 2
    assert "--max-log-gap applies to log-probability kernels" in capsys.readouterr().err
    assert main(["check", str(RUNS / "word_logprob30.npz"), "--n0", "10"]) == 2
    assert "--n0 applies to counts" in capsys.readouterr().err


def test_format_p():
    assert format_p(0.28) == "p = 0.28"
    assert format_p(0.005, 199) == "p <= 0.005"
    assert format_p(float("nan")) == "p undefined"


# ---------------------------------------------------------------------------- calibration
def test_chi2_p_values_are_uniform_at_large_counts():
    null = calibration.null_p_values(150, n_states=12, calls=2000)
    assert 0.0 <= null.rejection_rate() <= 0.12
    assert null.uniformity() > 0.01


def test_bootstrap_p_values_stay_calibrated_where_chi2_is_not():
    """Sparse counts (20 calls per state): the chi-squared p is far too small, the
    bootstrap p is not."""
    null = calibration.null_p_values(20, n_states=30, degree=6, calls=20, bootstrap=29)
    assert null.rejection_rate(kind="chi2") > 0.15
    assert null.rejection_rate() <= 0.15


def test_power_grows_with_the_drive():
    table = calibration.power([0.0, 1.5], n_chains=20, n_states=15, calls=200)
    assert table.loc[0.0, "rejected"] <= 0.2
    assert table.loc[1.5, "rejected"] >= 0.9


def test_intervals_cover_the_true_potential():
    cov = calibration.interval_coverage(40, n_states=15, calls=100)
    assert 0.9 <= cov.coverage <= 0.99
    assert 0.8 < np.std(cov.z) < 1.2


# ---------------------------------------------------------------------------- figures
def test_figures_draw_results():
    null = calibration.null_p_values(30, n_states=10, calls=200)
    assert plots.fig_p_values(null).axes
    table = calibration.power([0.0, 1.0], n_chains=5, n_states=10, calls=100)
    assert plots.fig_power(table).axes
    assert plots.fig_coverage(calibration.interval_coverage(5, n_states=10)).axes
    verdicts = {"table II": check(claude4_table2()),
                "exact": check(synthetic.driven_chain(20, drive=1.0, seed=0).kernel())}
    fig = plots.fig_hodge_fractions(verdicts)
    gids = {a.get_gid() for a in fig.axes[0].get_children() if a.get_gid()}
    assert "undefined:table II" in gids and "bar:exact:curl" in gids
