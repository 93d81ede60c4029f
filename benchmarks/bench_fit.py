"""Benchmark of :func:`dbnb.fit_potential` against the Letter's size and against the authors'
optimisation approach.

Run ``python benchmarks/bench_fit.py`` (about 5 minutes on one core; ``--quick`` skips the
authors' approach and the 10^6-transition graph, ``--profile`` adds a cProfile of the large fit).

What it does
------------
1. A reversible synthetic chain (:func:`dbnb.synthetic.reversible_chain`) sampled with the
   Letter's schedule (each call prompts a uniformly chosen state among those found) and tuned to
   the size of the Letter's IdeaSearchFitter database (7,484 states, 21,697 unique transitions,
   50,228 samples); the realised numbers are printed.
2. The exact kernel of a 10^5-state reversible chain with 10^6 directed transitions.
3. For both: fit time (best of a few) and peak memory of ``fit_potential`` with the exp and
   softplus kernels. Peak memory is measured in a separate run under :mod:`tracemalloc`
   (numpy buffers are traced; SuperLU's internal work arrays are not), plus the growth of the
   process's maximum resident set size.
4. The authors' approach, re-implemented here (our code, following the description of their
   ``build_potential.py``): the action as a Python loop over edges, minimised by
   :func:`scipy.optimize.minimize` with ``method="L-BFGS-B"`` from zeros, on the main SCC of
   graph 1 with the softplus kernel (the one their code uses). Two variants:

   * ``loop+fd-edge``: as in their code, each edge's ``K'`` is a central finite difference
     inside the same loop, and the gradient is returned with the action (``jac=True``);
   * ``loop+fd-full``: no gradient at all (``jac=None``), so SciPy differences the whole
     action, one loop over all edges per state per gradient.

   Both stop at SciPy's default tolerances or a wall-clock budget (``--budget``, default 120 s),
   whichever comes first; the table says which.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import resource
import sys
import time
import tracemalloc

import numpy as np
from scipy.optimize import minimize

import dbnb
from dbnb import estimate_kernel, fit_potential
from dbnb.synthetic import reversible_chain, sample_letter_schedule

LETTER = {"states": 7484, "unique_transitions": 21697, "samples": 50228}


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_memory(fn) -> tuple[float, float]:
    """(tracemalloc peak in MiB, growth of ru_maxrss in MiB) of one call."""
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20, (rss1 - rss0) / 1024  # ru_maxrss is in KiB on Linux


def letter_size_counts(seed: int = 1):
    chain = reversible_chain(8000, degree=4.5, sigma=1.0, escape=0.0, seed=seed)
    counts = sample_letter_schedule(chain, 92_000, seed=seed + 1)
    return chain, counts


# ---------------------------------------------------------------------------- authors' way
class _OverBudget(Exception):
    """Raised inside the objective when the wall-clock budget is used up."""


def _softplus(x: float) -> float:
    z = -x
    return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))


def authors_fit(tk, variant: str, budget: float):
    """Minimise the softplus action with a Python loop over edges and L-BFGS-B from zeros."""
    coo = tk.matrix.tocoo()
    edges = [(int(f), int(g), float(t)) for g, f, t in zip(coo.row, coo.col, coo.data,
                                                           strict=True)]
    n = tk.n_states
    n_eval = 0
    t0 = time.perf_counter()
    state = {"stopped": False, "x": np.zeros(n), "nit": 0}

    def over_budget():
        if time.perf_counter() - t0 > budget:
            state["stopped"] = True
            raise _OverBudget

    def action(v):
        nonlocal n_eval
        n_eval += 1
        over_budget()
        s = 0.0
        for f, g, w in edges:
            s += w * _softplus(v[f] - v[g])
        return s / n

    def action_and_grad(v):
        nonlocal n_eval
        n_eval += 1
        over_budget()
        s = 0.0
        grad = np.zeros(n)
        eps = 1e-8
        for f, g, w in edges:
            d = v[f] - v[g]
            s += w * _softplus(d)
            k1 = (_softplus(d + eps) - _softplus(d - eps)) / (2 * eps)
            grad[f] += w * k1
            grad[g] -= w * k1
        return s / n, grad / n

    def callback(xk):  # remember the last completed iterate
        state["x"] = np.array(xk, copy=True)
        state["nit"] += 1

    fun, jac = (action_and_grad, True) if variant == "loop+fd-edge" else (action, None)
    try:
        res = minimize(fun, np.zeros(n), jac=jac, method="L-BFGS-B", callback=callback,
                       options={"maxiter": 20_000})
        v, nit, message = np.asarray(res.x), int(res.nit), str(res.message)
    except _OverBudget:  # keep the last completed iterate, as a capped run would
        v, nit, message = state["x"], state["nit"], f"budget of {budget:g} s exhausted"
    elapsed = time.perf_counter() - t0
    return {
        "time": elapsed,
        "action": dbnb.action(v, tk, "softplus"),
        "iterations": nit,
        "evaluations": n_eval,
        "stopped": message,
        "potential": v - v.min(),
    }


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the slow parts")
    ap.add_argument("--profile", action="store_true", help="cProfile the 10^6-edge fit")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="wall-clock seconds for each variant of the authors' approach")
    args = ap.parse_args(argv)
    print(f"dbnb {dbnb.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")

    # ---------------------------------------------------------------- graphs
    chain, counts = letter_size_counts()
    st = counts.statistics()
    print("\nGraph 1 (Letter-size): reversible chain, Letter's schedule")
    print(f"  {'':28s} {'realised':>10s} {'Letter':>10s}")
    for key in ("states", "unique_transitions", "samples"):
        print(f"  {key:28s} {int(st[key]):>10,d} {LETTER[key]:>10,d}")
    print(f"  {'calls (escapes included)':28s} {int(counts.calls.sum()):>10,d}")
    graphs = [("Letter-size", counts, 5)]
    if not args.quick:
        big = reversible_chain(100_000, degree=10, sigma=1.0, escape=0.1, seed=3)
        print(f"\nGraph 2: exact kernel, {big.n_states:,d} states, "
              f"{big.n_transitions:,d} directed transitions")
        graphs.append(("1e5 states / 1e6 edges", big.kernel(), 2))

    # ---------------------------------------------------------------- our fit
    rows = []
    fits = {}
    for name, data, repeat in graphs:
        for kernel in ("exp", "softplus"):
            t, fit = best_time(lambda d=data, k=kernel: fit_potential(d, k), repeat)
            peak, rss = peak_memory(lambda d=data, k=kernel: fit_potential(d, k))
            fits[name, kernel] = fit
            main_n = int((fit.status == "main").sum())
            rows.append((name, kernel, t, peak, rss, fit.iterations, main_n, fit.action))
    print("\nfit_potential (best of a few runs; memory from one traced run)")
    print(f"  {'graph':24s} {'K':9s} {'time [s]':>9s} {'peak [MiB]':>11s} {'dRSS [MiB]':>11s}"
          f" {'Newton':>7s} {'main SCC':>9s} {'action':>10s}")
    for name, kernel, t, peak, rss, it, m, s in rows:
        print(f"  {name:24s} {kernel:9s} {t:9.3f} {peak:11.1f} {rss:11.1f} {it:7d} {m:9,d}"
              f" {s:10.6f}")
    fit1 = fits["Letter-size", "exp"]
    main = (fit1.status == "main").to_numpy()
    truth = counts.metadata["beta_V_true"].reindex(fit1.potential.index).to_numpy()
    r = np.corrcoef(fit1.potential.to_numpy()[main], truth[main])[0, 1]
    print(f"  Letter-size, exp: corr(fitted, true beta V) over the main SCC = {r:.4f}")

    if args.profile and not args.quick:
        prof = cProfile.Profile()
        prof.enable()
        fit_potential(graphs[1][1], "exp")
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        print("\ncProfile of fit_potential on graph 2 (exp), by own time:")
        print("\n".join(out.getvalue().splitlines()[:40]))

    if args.quick:
        return 0

    # ---------------------------------------------------------------- authors' approach
    main_states = list(fit1.potential.index[main])
    tk = estimate_kernel(counts.submodel(main_states), "exact")
    print(f"\nAuthors' approach on graph 1's main SCC ({tk.n_states:,d} states, "
          f"{tk.matrix.nnz:,d} transitions), softplus kernel, L-BFGS-B from zeros, "
          f"budget {args.budget:g} s per variant")
    t_ours, ours = best_time(lambda: fit_potential(tk, "softplus"), 5)
    print(f"  {'method':14s} {'time [s]':>9s} {'iters':>6s} {'evals':>7s} {'action':>14s}"
          f" {'max|dV| vs ours':>16s} {'time / ours':>12s}  stopped")
    v_ours = ours.potential.reindex(ours.transitions.counts.index).to_numpy()
    print(f"  {'dbnb (Newton)':14s} {t_ours:9.3f} {ours.iterations:6d} {'-':>7s}"
          f" {ours.action:14.10f} {0.0:16.2e} {1.0:12.1f}  converged")
    for variant in ("loop+fd-edge", "loop+fd-full"):
        res = authors_fit(tk, variant, args.budget)
        dv = np.max(np.abs((res["potential"] - res["potential"].mean())
                           - (v_ours - v_ours.mean())))
        print(f"  {variant:14s} {res['time']:9.1f} {res['iterations']:6d} "
              f"{res['evaluations']:7d} {res['action']:14.10f} {dv:16.2e}"
              f" {res['time'] / t_ours:12.0f}  {res['stopped']}")
        verdict = "yes" if ours.action <= res["action"] + 1e-15 else "NO"
        print(f"    action ours <= theirs: {verdict} (difference "
              f"{res['action'] - ours.action:.3e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
