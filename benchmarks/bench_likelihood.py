"""Benchmark: the likelihood fit and the bootstrap against the least-action fit.

Usage::

    python benchmarks/bench_likelihood.py [--boot 200] [--jobs 2]

On the Letter-size synthetic graph of ``bench_fit.py`` (a reversible chain sampled with the
Letter's schedule: about 7,400 states and 21,700 unique transitions) it times, best of three,
:func:`dbnb.fit_potential` (least action, exp violation), :func:`dbnb.likelihood.fit_likelihood`
with Firth's penalty (local leverages and damped refits above 1,500 free states) and without,
then the standard errors (the multinomial sandwich: one inverse diagonal of the information,
by the selected inversion of :mod:`dbnb.selinv`, checked against and timed beside the dense
Cholesky inverse it replaced), prints the ratios to the least-action fit, then times
``--boot`` bootstrap refits of the least-action fit and of the likelihood fit (nonparametric
design), in one process and with ``--jobs`` worker processes.

Run it with ``OMP_NUM_THREADS=1`` (one BLAS thread per process) so that the process counts
compare like with like.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from bench_fit import letter_size_counts

from dbnb import fit_potential
from dbnb.bootstrap import bootstrap
from dbnb.likelihood import fit_likelihood


def best(fn, repeat=3):
    t_best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best


def dense_inverse_diagonal(h) -> np.ndarray:
    """The route the selected inversion replaced: dense Cholesky, triangular inverse, column
    norms (``diag(h^-1)_k = sum_i (C^-1)_{ik}^2``)."""
    c = sla.cholesky(h.toarray(), lower=True, overwrite_a=True, check_finite=False)
    ci, info = sla.lapack.dtrtri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise RuntimeError(f"dtrtri info={info}")
    return np.einsum("ij,ij->j", ci, ci)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the refits")
    args = ap.parse_args()
    _, counts = letter_size_counts()
    st = counts.statistics()
    print(f"graph: {counts.n_states} states, {int(st['unique_transitions'])} unique "
          f"transitions, {int(st['samples'])} samples")
    t_la = best(lambda: fit_potential(counts))
    t_firth = best(lambda: fit_likelihood(counts))
    t_plain = best(lambda: fit_likelihood(counts, penalty=None))
    print(f"least action      {t_la:.3f} s")
    print(f"likelihood firth  {t_firth:.3f} s  ({t_firth / t_la:.1f}x least action)")
    print(f"likelihood plain  {t_plain:.3f} s  ({t_plain / t_la:.1f}x least action)")
    fit = fit_likelihood(counts)
    t0 = time.perf_counter()
    se = fit.stderr  # lazy: computed here, once
    t_se = time.perf_counter() - t0
    med = float(se[fit.status == "main"].median())
    print(f"stderr (multinomial sandwich, {int((fit.status == 'main').sum())} states) "
          f"{t_se:.2f} s, median {med:.3f}; fit + stderr {t_firth + t_se:.2f} s "
          f"({(t_firth + t_se) / t_la:.1f}x least action)")
    free = np.ones(fit.pairs.n_states, bool)
    free[fit.ground] = False
    h = sp.csc_matrix(sp.csc_array(fit.information)[free][:, free])
    from dbnb.selinv import inverse_diagonal

    t_sel = best(lambda: inverse_diagonal(h))
    t0 = time.perf_counter()
    want = dense_inverse_diagonal(h)
    t_dense = time.perf_counter() - t0
    err = float(np.max(np.abs(inverse_diagonal(h) / want - 1)))
    print(f"diag(I^-1), {h.shape[0]} free states: selected inversion {t_sel:.3f} s, dense "
          f"Cholesky {t_dense:.2f} s, largest relative difference {err:.1e}")
    for name, fn in (("least action", None), ("likelihood firth", fit_likelihood)):
        for jobs in sorted({1, args.jobs}):
            t0 = time.perf_counter()
            bootstrap(counts, fn, n_boot=args.boot, seed=0, n_jobs=jobs)
            print(f"bootstrap {args.boot} x {name}, {jobs} process(es): "
                  f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
