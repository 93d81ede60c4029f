"""Smoke and content tests of the figure functions (dbnb.plots), Agg backend only."""

from __future__ import annotations

import builtins

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from dbnb import diagnostics, plots  # noqa: E402
from dbnb.counts import TransitionCounts  # noqa: E402
from dbnb.datasets import claude4_table2  # noqa: E402
from dbnb.potential import fit_potential  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def chain_fit():
    """Synthetic reversible chain: random graph, V ~ N(0, 2), Metropolis T, Poisson counts."""
    rng = np.random.default_rng(0)
    n = 60
    v = rng.normal(0.0, 2.0, n)
    upper = np.triu(rng.random((n, n)) < 0.15, 1)
    upper[np.arange(n - 1), np.arange(1, n)] = True
    adj = upper | upper.T
    t = np.where(adj, np.minimum(1.0, np.exp(v[None, :] - v[:, None])) / adj.sum(0).max(), 0.0)
    cnt = rng.poisson(t * 2000)
    counts = TransitionCounts(
        tuple(f"s{i:02d}" for i in range(n)), sp.csr_array(cnt),
        calls=np.full(n, 2000), calls_kind="exact", source="synthetic chain",
    )
    return fit_potential(counts)


def _levels(fig: Figure) -> dict[str, np.ndarray]:
    ax = fig.axes[0]
    return {
        ln.get_gid().split(":", 1)[1]: np.asarray(ln.get_ydata(), dtype=float)
        for ln in ax.get_lines()
        if (ln.get_gid() or "").startswith("level:")
    }


def _arrows(ax) -> list[FancyArrowPatch]:
    return [
        p for p in ax.patches
        if isinstance(p, FancyArrowPatch) and (p.get_gid() or "").startswith("arrow")
    ]


# ---------------------------------------------------------------------------- Fig. 2
def test_fig02_table2_levels_and_arrows(table2_fit):
    fig = plots.fig02_transition_diagram(table2_fit)
    assert isinstance(fig, Figure)
    levels = _levels(fig)
    assert set(levels) == {"ATTITUDE", "TURKEY", "PERSONAL", "PROBLEM", "BUZZY"}
    for y in levels.values():
        assert y[0] == y[1]
    assert levels["ATTITUDE"][0] == pytest.approx(0.0, abs=1e-9)
    assert levels["PERSONAL"][0] == pytest.approx(np.log(3879 / 66), abs=5e-3)
    assert levels["PROBLEM"][0] == pytest.approx(np.log(3558 / 20), abs=5e-3)
    assert levels["PERSONAL"][0] == pytest.approx(4.07, abs=0.01)
    assert levels["PROBLEM"][0] == pytest.approx(5.18, abs=0.01)
    # +inf states above the break at log(20000) ~ 9.9; BUZZY feeds TURKEY so it sits higher
    assert levels["TURKEY"][0] > np.log(20000) > 9.9
    assert levels["BUZZY"][0] > levels["TURKEY"][0]
    assert len(_arrows(fig.axes[0])) == 7
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "+∞" in labels
    assert any(t.get_gid() == "caption" and "Table II" in t.get_text()
               for t in fig.axes[0].texts)


def test_fig02_options(table2_fit):
    fig = plots.fig02_transition_diagram(table2_fit, min_T=0.05, inf_level=12.0, caption="")
    assert len(_arrows(fig.axes[0])) == 5
    assert min(_levels(fig)["TURKEY"]) > 12.0
    assert not any(t.get_gid() == "caption" for t in fig.axes[0].texts)
    levels, brk = plots.diagram_levels(table2_fit)
    assert brk == pytest.approx(np.log(20000))


# ---------------------------------------------------------------------------- the others
def test_fig_pairs(chain_fit):
    check = diagnostics.pairs(chain_fit)
    fig = plots.fig_pairs(check, fraction=0.2, seed=42)
    ax = fig.axes[0]
    shown = check.sample(0.2, seed=42).size
    # errorbar container: the data line has `shown` points
    data = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == shown and ln.get_gid() is None]
    assert data
    assert any(ln.get_gid() == "diagonal" for ln in ax.get_lines())
    assert f"of {check.n_pairs} shown" in ax.get_legend().get_texts()[1].get_text()
    stats = next(t for t in ax.texts if t.get_gid() == "stats").get_text()
    assert f"$N$ = {check.n_pairs}" in stats and "within" in stats
    assert "beta" in ax.get_xlabel() or "V(f)" in ax.get_xlabel()


def test_fig_pairs_empty_and_ax_passthrough():
    c = TransitionCounts.from_triples(["A", "B"], ["B", "C"], [5, 5]).with_calls(10, "exact")
    check = diagnostics.pairs(fit_potential(c))
    fig, ax = plt.subplots()
    out = plots.fig_pairs(check, ax=ax)
    assert out is fig
    assert any(t.get_gid() == "empty" for t in ax.texts)


def test_fig_triplets(chain_fit):
    check = diagnostics.triplets(chain_fit)
    assert check.n_triplets > 5
    fig = plots.fig_triplets(check, fraction=0.5)
    ax = fig.axes[0]
    assert any(ln.get_gid() == "diagonal" for ln in ax.get_lines())
    stats = next(t for t in ax.texts if t.get_gid() == "stats").get_text()
    assert f"$N$ = {check.n_triplets}" in stats
    assert len(ax.collections) > 0  # error bars
    # an exact kernel: no error bars, the rms cycle affinity instead of chi^2
    fig = plots.fig_triplets(check, fraction=0.5, errors=False)
    ax = fig.axes[0]
    stats = next(t for t in ax.texts if t.get_gid() == "stats").get_text()
    assert "rms affinity" in stats and "chi" not in stats
    assert len(ax.collections) == 0


def test_fig_potential_vs_score(chain_fit):
    v = chain_fit.potential
    score = pd.Series(0.05 * np.exp(0.3 * v.to_numpy()), index=v.index, name="MSE")
    graph = diagnostics.potential_vs_score(chain_fit, score, n_states=20, min_T=0.01)
    fig = plots.fig_potential_vs_score(graph)
    ax = fig.axes[0]
    assert len(_arrows(ax)) == graph.n_transitions
    n_down = sum(p.get_gid() == "arrow:down" for p in _arrows(ax))
    assert n_down == int((graph.direction == -1).sum())
    assert len(ax.collections[0].get_offsets()) == 20
    assert len(fig.axes) == 2  # colour bar
    assert "down" in ax.get_legend().get_texts()[0].get_text()


def test_fig10_one_way(chain_fit):
    check = diagnostics.one_way_pairs(chain_fit)
    fig = plots.fig10_one_way(check, n=30)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == min(30, check.n_finite)
    assert sum(ln.get_gid() == "diagonal" for ln in ax.get_lines()) == 2


def test_fig11_histogram(chain_fit):
    dist = diagnostics.potential_distribution(chain_fit)
    fig = plots.fig11_potential_histogram(dist, bins=20)
    ax = fig.axes[0]
    assert len(ax.patches) == 20
    assert sum(p.get_height() for p in ax.patches) == dist.n_states
    assert "sigma" in next(t for t in ax.texts if t.get_gid() == "stats").get_text()


def test_fig12_majority_vote():
    fig = plots.fig12_majority_vote(
        diagnostics.majority_vote_curves(m=10, ns=(5, 7, 9), t_backward=(0.01, 0.05)))
    ax = fig.axes[0]
    curves = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("ratio:")]
    assert len(curves) == 6
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_fig01_schematic():
    fig = plots.fig01_schematic()
    ax = fig.axes[0]
    assert sum((p.get_gid() or "").startswith("state:") for p in ax.patches) == 4
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 6


def test_figures_do_no_file_io(monkeypatch, table2_fit, chain_fit):
    checks = (diagnostics.pairs(chain_fit), diagnostics.triplets(chain_fit))

    def forbidden(*args, **kwargs):
        raise AssertionError(f"figure function opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", forbidden)
    plots.fig02_transition_diagram(table2_fit)
    plots.fig_pairs(checks[0])
    plots.fig_triplets(checks[1])
    plots.fig12_majority_vote(diagnostics.majority_vote_curves())


# ---------------------------------------------------------------------------- tables
def test_tables(table2_fit, chain_fit):
    t2 = plots.table2_counts(claude4_table2())
    assert t2.loc["TURKEY", "ATTITUDE"] == 4122
    assert t2.loc["ATTITUDE", "escape"] == 3914
    t3 = plots.table3_statistics(
        {"claude": claude4_table2(), "chain": chain_fit.transitions.counts}
    )
    assert list(t3.index) == ["claude", "chain"] and "samples" in t3.columns
    t4 = plots.table4_action_scale({"chain": diagnostics.potential_distribution(chain_fit)})
    assert t4.loc["chain", "sigma"] > 0
    with pytest.raises(TypeError, match="potential_distribution"):
        plots.table4_action_scale({"chain": chain_fit})  # tables draw results, never run checks
    t1 = plots.table1_examples(chain_fit, n=5)
    assert len(t1) == 5 and t1["beta_V"].is_monotonic_decreasing
    assert t1["beta_V"].iloc[0] == chain_fit.potential.max()


def test_fig_exact_comparison_draws_every_pair():
    from dbnb import synthetic
    from dbnb.kernels import estimate_kernel

    chain = synthetic.reversible_chain(30, degree=5, sigma=1.0, seed=3)
    counts = synthetic.sample_fixed_design(chain, 2000, seed=4)
    cmp = diagnostics.compare_to_exact(estimate_kernel(counts, "exact"), chain.kernel())
    fig = plots.fig_exact_comparison(cmp)
    ax = fig.axes[0]
    (line,) = [c for c in ax.containers if hasattr(c, "lines")][:1]
    assert len(line.lines[0].get_xdata()) == cmp.n_pairs > 0
    np.testing.assert_allclose(line.lines[0].get_xdata(), cmp.y_exact)
    plt.close(fig)


_INLINE_SCRIPT = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()       # what a Jupyter kernel provides
import matplotlib
from dbnb import diagnostics, fit_potential, plots
from dbnb.datasets import claude4_table2
fit = fit_potential(claude4_table2())
shown = []
for _ in range(3):                         # three cells, each drawing one figure
    plots.fig_pairs(diagnostics.pairs(fit))
    import matplotlib_inline.backend_inline as bi
    bi.display = lambda fig, **kw: shown.append(fig)
    shell.events.trigger("post_execute")   # the kernel flushes figures after a cell
print(len(shown), matplotlib.is_interactive())
"""


def test_figures_show_under_the_inline_backend():
    """The first figure of a Jupyter session loads the inline backend, which switches
    interactive mode on; the package style must not switch it off again when the figure
    is done (it did with ``mpl.rc_context``, and every later figure was dropped)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("matplotlib_inline")
    pytest.importorskip("IPython")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=str(root))
    r = subprocess.run([sys.executable, "-c", _INLINE_SCRIPT], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["3", "True"], r.stdout + r.stderr


def test_style_is_restored_but_other_rc_changes_survive():
    before = matplotlib.rcParams["font.size"]

    @plots._style.plotting_function
    def draw():
        assert matplotlib.rcParams["font.size"] == plots._style.style_rc()["font.size"]
        matplotlib.rcParams["hatch.linewidth"] = 17.0   # as a backend would change state
        fig, _ = plt.subplots()
        return fig

    assert "hatch.linewidth" not in plots._style.style_rc()
    old = matplotlib.rcParams["hatch.linewidth"]
    try:
        plt.close(draw())
        assert matplotlib.rcParams["font.size"] == before
        assert matplotlib.rcParams["hatch.linewidth"] == 17.0
    finally:
        matplotlib.rcParams["hatch.linewidth"] = old


def test_kernel_heatmap_columns_are_sources():
    from dbnb.kernels import estimate_kernel

    kern = estimate_kernel(claude4_table2())
    fig = plots.fig_kernel_heatmap(kern)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (im,) = [a for a in ax.get_images() if a.get_gid() == "kernel"]
    shown = np.nan_to_num(np.asarray(im.get_array(), dtype=float))
    assert np.allclose(shown, kern.matrix.toarray())
    assert "source" in ax.get_xlabel() and "target" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == list(kern.states)


def test_fig_stationary():
    from dbnb import synthetic

    chk = diagnostics.stationary_check(
        fit_potential(synthetic.reversible_chain(20, degree=4, seed=1).kernel()))
    fig = plots.fig_stationary(chk, caption="")
    assert isinstance(fig, Figure) and fig.axes[0].get_lines()
    plt.close(fig)
