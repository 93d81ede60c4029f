r"""Is it detailed balance? One verdict from every test dbnb has, for counts or an exact kernel.

:func:`check` runs, on one data set, what a referee asks of a detailed-balance claim and
collects it in a :class:`Verdict`; :meth:`Verdict.render` prints it in one screen (the
``dbnb check`` command) and :meth:`Verdict.summary` gives it as one table row.

Sampled counts
--------------
* the model hierarchy (:func:`dbnb.balance_test`): detailed balance against the free per-pair
  model (is it violated?) and the popularity model ``log E N(g <- f) = a(f) + b(g)`` against
  detailed balance (does the prompt matter?), likelihood ratios with their degrees of freedom,
  chi-squared and parametric-bootstrap p-values;
* the Hodge split of the log-ratio flow on the pairs seen both ways (:func:`dbnb.hodge`):
  gradient, curl and harmonic fractions and the triangles farthest from balance, by name;
* the out-of-sample check (:func:`dbnb.held_out`): ``beta V`` fitted on half of the calls
  scores the log-ratios of the other half, beside a popularity-only kernel and the noise ceiling;
* the potentials with Wald intervals from the Firth-penalised likelihood fit
  (:func:`dbnb.fit_likelihood`).

Exact kernels (no sampling noise)
---------------------------------
A kernel computed rather than sampled (:func:`is_noise_free`) has no
p-values: it either is in detailed balance or it is not, and the question is by how much. Its
verdict gives the variance shares of ``log T`` (:func:`dbnb.variance_shares`: source, reply,
symmetric and antisymmetric interaction), the Hodge fractions with uniform weights, and the
gradient potential (the least-squares potential of the log-ratios), without intervals.

It also gets the *certified* verdict of the bounds (:func:`dbnb.bounded_potential`): each entry
is known within ``lower <= T(g <- f) <= upper`` (a log-probability walk that skipped rare
tokenisations knows lower and upper bounds; an exact matrix is its own bounds), so a pair's
log-ratio lies in an interval, ``beta V(f) - beta V(g) in [a_fg, b_fg]`` (Eq. 5 with bounds),
and either some potential satisfies every interval (*certified consistent*: no rounding or
skipped mass can be blamed) or none does (*certified violated*, whatever the skipped mass was).
How far: the two-sided pairs (both entries bounded away from 0) whose interval least-squares
potential lies more than ``bounded_tol`` (log units) outside their interval, and the largest
such distance (a potential that misses by that much, not the least any potential must miss).

Whatever is undefined (one state, no pair seen both ways, no cycle: ``dof = 0``, calls not
recorded) is stated in :attr:`Verdict.undefined` and printed in words, never as a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import graph
from .bounded import BoundedPotential, bounded_potential
from .counts import TransitionCounts
from .hierarchy import BalanceTest, HeldOut, balance_test, held_out
from .hodge import HodgeDecomposition, VarianceShares, hodge, variance_shares
from .kernels import Estimator, TransitionKernel
from .likelihood import fit_likelihood
from .newton import ConvergenceError

__all__ = ["NOISE_FREE_METHODS", "Verdict", "check", "format_p", "is_noise_free"]

#: Kernel methods that carry no sampling noise (besides any kernel with ``N0 = inf``, as
#: :func:`dbnb.synthetic.true_kernel` makes; the estimator ``"exact"`` of Eq. 6 is sampled).
NOISE_FREE_METHODS = ("exact-logprob",)


def is_noise_free(data) -> bool:
    """Whether ``data`` is a kernel computed without sampling noise: a log-probability kernel
    or a true kernel (``N0 = inf``)."""
    return isinstance(data, TransitionKernel) and (
        data.method in NOISE_FREE_METHODS or bool(np.all(np.isinf(data.n0))))

#: Columns of :attr:`Verdict.potentials` (and of the CSV ``dbnb check --out`` writes).
POTENTIAL_COLUMNS = ("beta_V", "stderr", "low", "high", "status")


@dataclass(frozen=True, eq=False)
class Verdict:
    """What the data say about detailed balance (the result of :func:`check`).

    Attributes
    ----------
    source : str
        What was checked (the counts' or kernel's ``source``).
    noise_free : bool
        An exact kernel: no p-values, variance shares instead.
    n_states, n_pairs, n_two_way : int
        States; unordered pairs of distinct states seen in at least one direction; seen in both.
    n_transitions : float
        Transitions between distinct states (for an exact kernel: its nonzero entries).
    n_calls : int or None
        Calls made, when every call was recorded (``calls_kind="exact"``).
    calls_note : str
        How ``N0`` is known (recorded, nominal, out-counts, exact kernel).
    test : BalanceTest or None
        The likelihood-ratio tests (sampled counts only).
    hodge : HodgeDecomposition or None
    shares : VarianceShares or None
        Variance shares of ``log T`` (exact kernels only).
    held_out : HeldOut or None
    potentials : pandas.DataFrame
        Per state: ``beta_V``, ``stderr``, ``low``, ``high`` (the ``level`` interval; NaN for
        an exact kernel) and ``status`` (``"main"`` or why the state has no potential).
    ground : str or None
        The state the potentials and their errors are relative to.
    level, alpha : float
        Interval level; significance level of the conclusion.
    bounded : BoundedPotential or None
        The potentials consistent with the kernel's per-entry bounds (exact kernels only).
    bounded_tol : float
        Distance (log units) outside its interval from which a pair is counted as outside.
    bounds_note : str
        Where the bounds come from, in words.
    undefined : dict
        Part name (``"test"``, ``"popularity"``, ``"hodge"``, ``"held_out"``, ``"potential"``,
        ``"shares"``, ``"bounded"``) -> why it is undefined or not computed, in words.
    """

    source: str
    noise_free: bool
    n_states: int
    n_pairs: int
    n_two_way: int
    n_transitions: float
    n_calls: int | None
    calls_note: str
    test: BalanceTest | None
    hodge: HodgeDecomposition | None
    shares: VarianceShares | None
    held_out: HeldOut | None
    potentials: pd.DataFrame
    ground: str | None
    level: float = 0.95
    alpha: float = 0.05
    undefined: Mapping[str, str] = field(default_factory=dict)
    bounded: BoundedPotential | None = None
    bounded_tol: float = 0.01
    bounds_note: str = ""

    # ------------------------------------------------------------------ the short answer
    @property
    def status(self) -> str:
        """One word: ``"rejected"``, ``"consistent"``, ``"exact"`` (a noise-free kernel in
        detailed balance to rounding), ``"circulates"`` (a noise-free kernel that is not), or
        ``"undefined"``."""
        if self.noise_free:
            if self.hodge is None:
                return "undefined"
            return "exact" if self.circulation < 1e-9 else "circulates"
        if self.test is None or "test" in self.undefined:
            return "undefined"
        return "rejected" if self.test.p_value < self.alpha else "consistent"

    @property
    def circulation(self) -> float:
        """``1 - gradient fraction`` of the Hodge split (NaN when undefined)."""
        if self.hodge is None or self.hodge.dof == 0:
            return float("nan")
        return float(self.hodge.curl_fraction + self.hodge.harmonic_fraction)

    @property
    def bounded_status(self) -> str:
        """``"certified consistent"`` (some potential satisfies every pair's bounds),
        ``"certified violated"`` (none does, or a pair is one-way), or ``"undefined"``
        (sampled counts, or no pair bounded away from 0 both ways)."""
        b = self.bounded
        if b is None:
            return "undefined"
        return "certified consistent" if b.consistent and b.one_way.empty \
            else "certified violated"

    def _two_sided_outside(self) -> np.ndarray:
        """``outside`` of the two-sided pairs (both entries bounded away from 0: the pairs
        the interval least-squares potential is fitted to), finite values only."""
        if self.bounded is None:
            return np.array([])
        pr = self.bounded.pairs
        a, b = pr["a"].to_numpy(dtype=float), pr["b"].to_numpy(dtype=float)
        two = np.isfinite(a) & np.isfinite(b)
        out = pr["outside"].to_numpy(dtype=float)[two]
        return out[np.isfinite(out)]

    @property
    def n_two_sided(self) -> int:
        """Pairs with both entries bounded away from 0, on the main component (the pairs
        :attr:`n_outside` counts among)."""
        return int(self._two_sided_outside().size)

    @property
    def n_outside(self) -> int:
        """Two-sided pairs whose interval least-squares potential is more than
        :attr:`bounded_tol` outside their interval (0 when :attr:`bounded` is None).
        One-sided pairs (an entry whose lower bound is 0) are not counted: the point
        estimate does not use them, they constrain only the certified verdict."""
        return int(np.sum(self._two_sided_outside() > self.bounded_tol))

    @property
    def max_outside(self) -> float:
        """Largest distance of a two-sided pair's fitted difference to its interval (NaN:
        undefined or no such pair)."""
        out = self._two_sided_outside()
        return float(out.max()) if out.size else float("nan")

    @property
    def bounded_conclusion(self) -> str:
        """The bounded verdict in one sentence (empty for sampled counts)."""
        if not self.noise_free:
            return ""
        st = self.bounded_status
        if st == "undefined":
            return f"bounds: undefined ({self.undefined.get('bounded', 'not computed')})"
        b = self.bounded
        how = (f"{self.n_outside:,} of {self.n_two_sided:,} two-sided pairs more than "
               f"{self.bounded_tol:g} outside their interval of log T(g<-f)/T(f<-g) (max "
               f"{self.max_outside:.3g})")
        if st == "certified consistent":
            return ("bounds: certified consistent with detailed balance: a potential "
                    f"satisfies every pair's interval ({how})")
        why = []
        if not b.consistent:
            why.append("no potential satisfies every pair's interval")
        if not b.one_way.empty:
            why.append(f"{len(b.one_way):,} one-way pairs")
        return (f"bounds: certified violation of detailed balance ({'; '.join(why)}): {how}")

    @property
    def conclusion(self) -> str:
        """The verdict in one sentence."""
        st = self.status
        if self.noise_free:
            if st == "undefined":
                return ("no sampling noise, but the Hodge split is undefined: "
                        f"{self.undefined['hodge']}")
            if self.hodge.dof == 0:
                return ("no sampling noise, and no cycle among the two-way pairs: detailed "
                        "balance cannot fail on this support")
            if st == "exact":
                return "no sampling noise: the kernel is in detailed balance exactly"
            text = (f"no sampling noise: not exactly in detailed balance; "
                    f"{self.circulation:.1%} of the log-ratio flow circulates around cycles")
            if self.shares is not None:
                s = self.shares
                text += (f"; of var log T, the antisymmetric interaction is "
                         f"{s.antisymmetric:.1%} against {s.symmetric:.1%} symmetric and "
                         f"{s.source + s.reply:.1%} source and reply popularity")
            return text
        if st == "undefined":
            return f"detailed balance cannot be tested here: {self.undefined['test']}"
        t = self.test
        kind = "bootstrap" if t.n_bootstrap else "chi2"
        if st == "rejected":
            text = (f"detailed balance is rejected ({kind} {_p(t.p_value, t)} < "
                    f"{self.alpha:g})")
        else:
            text = f"consistent with detailed balance ({kind} {_p(t.p_value, t)})"
        if "popularity" in self.undefined:
            return text + "; the popularity test is undefined"
        if t.p_popularity < self.alpha:
            return text + (f"; the prompt matters: a popularity-only kernel is rejected "
                           f"({_p(t.p_popularity, t)})")
        return text + (f"; but a popularity-only kernel, whose reply ignores the prompt, fits "
                       f"as well ({_p(t.p_popularity, t)}): no evidence beyond favourite "
                       "replies")

    # ------------------------------------------------------------------ tables
    def summary(self) -> pd.Series:
        """One row for a table of verdicts (NaN where undefined; ``verdict`` says why)."""
        nan = float("nan")
        t, h, ho = self.test, self.hodge, self.held_out
        test_ok = t is not None and "test" not in self.undefined
        pop_ok = test_ok and "popularity" not in self.undefined
        hodge_ok = h is not None and h.dof > 0
        ho_ok = ho is not None and "held_out" not in self.undefined
        return pd.Series({
            "states": self.n_states,
            "pairs": self.n_pairs,
            "two_way_pairs": self.n_two_way,
            "statistic": t.statistic if test_ok else nan,
            "dof": t.dof if test_ok else nan,
            "p": t.p_value if test_ok else nan,
            "p_chi2": t.p_asymptotic if test_ok else nan,
            "p_popularity": t.p_popularity if pop_ok else nan,
            "gradient_fraction": _tiny(h.gradient_fraction) if hodge_ok else nan,
            "curl_fraction": _tiny(h.curl_fraction) if hodge_ok else nan,
            "harmonic_fraction": _tiny(h.harmonic_fraction) if hodge_ok else nan,
            "antisymmetric_share": self.shares.antisymmetric if self.shares else nan,
            "held_out_r2": ho.r2 if ho_ok else nan,
            "popularity_r2": ho.r2_popularity if ho_ok else nan,
            "noise_ceiling": ho.r2_noise if ho_ok else nan,
            "bounded": self.bounded_status if self.noise_free else nan,
            "pairs_outside": self.n_outside if self.bounded is not None else nan,
            "max_outside": self.max_outside,
            "verdict": self.status + (f" ({self.short_reason})" if self.status == "undefined"
                                      else ""),
        }, name=self.source)

    @property
    def short_reason(self) -> str:
        """Why the verdict is undefined, in a few words ("" when it is not)."""
        if self.status != "undefined":
            return ""
        why = self.undefined.get("hodge" if self.noise_free else "test", "")
        return why.split(":")[0].strip()

    # ------------------------------------------------------------------ the screen
    def render(self, top: int = 5, cycles: int = 3) -> str:
        """The verdict as text for one screen: counts, tests, Hodge split, held-out check,
        the ``top`` lowest and highest potentials."""
        out = [self.source]
        calls = (f"{self.n_calls:,} calls" if self.n_calls is not None else self.calls_note)
        trans = ("nonzero entries" if self.noise_free else "transitions between states")
        out.append(f"  {self.n_states:,} states, {int(self.n_transitions):,} {trans}, {calls}; "
                   f"{self.n_pairs:,} pairs seen, {self.n_two_way:,} both ways")
        out += ["", "Verdict: " + self.conclusion]
        if self.noise_free:
            out.append("Bounds:  " + self.bounded_conclusion.removeprefix("bounds: "))
        out.append("")
        out += self._render_tests()
        out += self._render_bounded()
        out += self._render_hodge(cycles)
        out += self._render_held_out()
        out += self._render_potentials(top)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Verdict({self.status}: {self.source!r})"

    def _render_tests(self) -> list[str]:
        if self.noise_free:
            out = ["Tests: no sampling noise, so no p-values; how far from balance is read "
                   "from the shares below."]
            if self.shares is not None:
                s = self.shares
                out.append(f"  var log T ({s.n_states} states): source {s.source:.3f}, reply "
                           f"{s.reply:.3f}, symmetric interaction {s.symmetric:.3f}, "
                           f"antisymmetric interaction {s.antisymmetric:.3f}")
                out.append("  (detailed balance: antisymmetric 0; a popularity-only kernel, "
                           "T(g<-f) = p(g): reply only)")
            else:
                out.append(f"  variance shares undefined: {self.undefined['shares']}")
            return out + [""]
        out = ["Model hierarchy (likelihood ratios given each pair's total)"]
        if "test" in self.undefined:
            return out + [f"  detailed balance vs free: undefined ({self.undefined['test']})",
                          ""]
        t = self.test
        boot = f"bootstrap {_p(t.p_bootstrap, t)} (B = {t.n_bootstrap})" \
            if t.n_bootstrap else "no bootstrap"
        out.append(f"  detailed balance vs free   G2 = {t.statistic:10.2f}  dof = {t.dof:6d}  "
                   f"{boot}, chi2 p = {t.p_asymptotic:.3g}")
        if "popularity" in self.undefined:
            out.append(f"  popularity vs balance      undefined ({self.undefined['popularity']})")
        else:
            kind = "bootstrap" if t.n_bootstrap else "chi2"
            out.append(f"  popularity vs balance      G2 = {t.statistic_popularity:10.2f}  "
                       f"dof = {t.dof_popularity:6d}  {kind} {_p(t.p_popularity, t)}")
        return out + [f"  ({t.n_pairs:,} pairs inside strongly connected components; small p "
                      "on the first line: violated; on the second: the prompt matters)", ""]

    def _render_bounded(self) -> list[str]:
        if not self.noise_free:
            return []
        head = "Bounds of each entry" + (f" ({self.bounds_note})" if self.bounds_note else "")
        b = self.bounded
        if b is None:
            return [head, f"  undefined: {self.undefined.get('bounded', 'not computed')}", ""]
        out = [head,
               f"  {len(b.pairs):,} pairs with an informative interval of log T(g<-f)/T(f<-g) "
               f"({self.n_two_sided:,} two-sided: both entries bounded away from 0), "
               f"{len(b.one_way):,} one-way (one direction certainly 0)"]
        if b.consistent:
            width = (b.high - b.low).to_numpy(dtype=float)
            width = width[np.isfinite(width)]
            med = f"{np.median(width):.3g}" if width.size else "unbounded"
            out.append(f"  some potential satisfies every interval: range of beta V relative "
                       f"to {b.reference}, median width {med}")
        else:
            out.append("  no potential satisfies every interval (a negative cycle of the "
                       "difference constraints, beyond a rounding slack of 1e-10 per pair)")
        out.append(f"  interval least squares (fitted to the two-sided pairs): "
                   f"{self.n_outside:,} of them more than {self.bounded_tol:g} outside their "
                   f"interval (tolerance, log units), max {self.max_outside:.3g}")
        return out + [""]

    def _render_hodge(self, cycles: int) -> list[str]:
        h = self.hodge
        if h is None:
            return [f"Hodge split: undefined ({self.undefined['hodge']})", ""]
        w = "uniform weights" if h.weights == "uniform" else "inverse-variance weights"
        out = [f"Hodge split of the log-ratio flow ({len(h.pairs):,} two-way pairs, {h.dof:,} "
               f"independent cycles, {w})"]
        if h.dof == 0:
            return out + ["  undefined: no cycle among the two-way pairs, so the flow is a "
                          "gradient by construction", ""]
        line = (f"  gradient {h.gradient_fraction:.3f}   curl {h.curl_fraction:.3f}   "
                f"harmonic {h.harmonic_fraction:.3f}")
        if np.isfinite(h.p_value):
            line += f"   (Wald chi2 = {h.residual:.1f} on {h.dof} dof, p = {h.p_value:.3g})"
        out.append(line)
        strong = h.cycles[np.abs(h.cycles["affinity"].to_numpy(dtype=float)) > 1e-9]
        if len(h.cycles) and not len(strong):
            out.append("  every triangle's cycle affinity is 0 to rounding")
        elif len(strong):
            out.append("  strongest cycles (log-ratio summed around the triangle, in the "
                       "direction it runs):")
            for _, r in strong.head(cycles).iterrows():
                a, b, c, aff = r["a"], r["b"], r["c"], float(r["affinity"])
                if aff < 0:
                    b, c, aff = c, b, -aff
                sig = float(r["sigma"])
                err = f" +- {sig:.2f} ({aff / sig:.1f} sigma)" if np.isfinite(sig) else ""
                out.append(f"    {a} -> {b} -> {c} -> {a}: {aff:.3f}{err}")
        elif h.harmonic_fraction > 0:
            out.append("  (no triangle: the circulation runs around longer cycles)")
        return out + [""]

    def _render_held_out(self) -> list[str]:
        if self.noise_free:
            return []
        if "held_out" in self.undefined:
            return [f"Out of sample: undefined ({self.undefined['held_out']})", ""]
        ho = self.held_out
        out = [f"Out of sample (V fitted on half of the calls, {ho.n_pairs:,} two-way pairs of "
               "the other half)",
               f"  R2 potential {ho.r2:.3f}   R2 popularity-only {ho.r2_popularity:.3f}   "
               f"noise ceiling {ho.r2_noise:.3f}"]
        if ho.r2_noise <= 0:
            out.append("  (ceiling <= 0: the held-out log-ratios are within their noise of 0, "
                       "so these R2 do not discriminate)")
        return out + [""]

    def _render_potentials(self, top: int) -> list[str]:
        if "potential" in self.undefined:
            return [f"Potentials: undefined ({self.undefined['potential']})"]
        pot = self.potentials
        main = pot[pot["status"] == "main"].sort_values("beta_V")
        rest = len(pot) - len(main)
        if self.noise_free:
            head = (f"Potentials (gradient part of the Hodge split; no sampling noise, no "
                    f"intervals; relative to {self.ground})")
        else:
            head = (f"Potentials (Firth-penalised likelihood, {self.level:.0%} intervals, "
                    f"relative to {self.ground})")
        out = [head + (f"; {rest} states outside the main component" if rest else "")]
        width = max([len(str(s)) for s in main.index] + [5])

        def row(s, r):
            if self.noise_free:
                return f"    {str(s):<{width}s} {r['beta_V']:8.3f}"
            return (f"    {str(s):<{width}s} {r['beta_V']:8.3f}  "
                    f"[{r['low']:7.3f}, {r['high']:7.3f}]")

        if len(main) <= 2 * top:
            out += [row(s, r) for s, r in main.iterrows()]
        else:
            out.append("  lowest:")
            out += [row(s, r) for s, r in main.head(top).iterrows()]
            out.append("  highest:")
            out += [row(s, r) for s, r in main.tail(top).iterrows()]
        return out


def format_p(p: float, n_bootstrap: int = 0) -> str:
    """``"p = 0.28"``; a bootstrap p at its floor ``1 / (B + 1)`` is shown as the bound it is
    (``"p <= 0.005"``), an undefined one as ``"p undefined"``."""
    if not np.isfinite(p):
        return "p undefined"
    if n_bootstrap and p <= 1.0 / (n_bootstrap + 1) + 1e-12:
        return f"p <= {p:.2g}"
    return f"p = {p:.3g}"


def _p(p: float, t: BalanceTest) -> str:
    return format_p(p, t.n_bootstrap)


def _tiny(x: float) -> float:
    """Rounding residue of a share (``|x| < 1e-12``) as 0."""
    return 0.0 if abs(x) < 1e-12 else float(x)


def _pair_counts(f: np.ndarray, g: np.ndarray, n: int) -> tuple[int, int]:
    """Unordered pairs seen in at least one direction, and in both."""
    key = np.unique(f * n + g)
    rev = np.unique(g * n + f)
    both = np.intersect1d(key, rev, assume_unique=True)
    lo = np.unique(np.minimum(f, g) * n + np.maximum(f, g))
    return int(lo.size), int(both.size // 2)


def _frame(values: np.ndarray, states, status: np.ndarray, stderr=None, low=None,
           high=None) -> pd.DataFrame:
    nan = np.full(len(states), np.nan)
    return pd.DataFrame({
        "beta_V": values, "stderr": nan if stderr is None else stderr,
        "low": nan if low is None else low, "high": nan if high is None else high,
        "status": status,
    }, index=pd.Index(list(states), name="state"))


def check(
    data: TransitionCounts | TransitionKernel,
    *,
    bootstrap: int = 199,
    seed: int | np.random.Generator | None = 0,
    level: float = 0.95,
    alpha: float = 0.05,
    estimator: Estimator = "auto",
    log_t: np.ndarray | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    bounds_note: str = "",
    bounded_tol: float = 0.01,
    progress: bool = False,
) -> Verdict:
    """Every check of detailed balance on one data set (see the module docstring).

    Parameters
    ----------
    data : TransitionCounts or TransitionKernel
        Sampled counts, or a kernel: one computed without noise (:func:`is_noise_free`: a
        log-probability kernel, or :meth:`dbnb.synthetic.SyntheticChain.kernel`) gets the
        noise-free verdict; an estimated kernel is checked through its counts.
    bootstrap : int
        Parametric bootstrap replicates of both likelihood-ratio tests (0: chi-squared only).
    seed : int, Generator or None
        Randomness of the bootstrap and of the held-out split.
    level : float
        Level of the potentials' intervals.
    alpha : float
        Significance level the one-line conclusion uses.
    estimator : str
        ``N0`` convention for counts (:func:`dbnb.kernels.estimate_kernel`).
    log_t : (n, n) array, optional
        ``log T(g <- f)`` of a noise-free kernel over its states (``log_t[g, f]``), when it is
        known more precisely than ``log`` of the kernel's matrix (log-probability kernels
        compute it in log space). Default: from the matrix.
    bounds : (lower, upper), optional
        Noise-free kernels: bounds ``lower[g, f] <= T(g <- f) <= upper[g, f]`` over the
        kernel's states, for the certified verdict (:func:`dbnb.bounded_potential`). Default:
        the kernel's entries themselves (``exp(log_t)`` when given), i.e. an exact kernel.
    bounds_note : str
        Where the bounds come from, printed with them.
    bounded_tol : float
        A pair counts as outside its interval when the bounded potential misses it by more than
        this (log units, ``>= 0``).
    progress : bool
        tqdm bars over the bootstrap replicates.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from dbnb import synthetic
    >>> chain = synthetic.reversible_chain(30, degree=6, seed=1)
    >>> v = check(chain.kernel())
    >>> v.status, v.test is None
    ('exact', True)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not bounded_tol >= 0:
        raise ValueError(f"bounded_tol must be >= 0, got {bounded_tol!r}")
    if is_noise_free(data):
        return _check_kernel(data, log_t=log_t, level=level, alpha=alpha, bounds=bounds,
                             bounds_note=bounds_note, bounded_tol=bounded_tol)
    if log_t is not None:
        raise ValueError("log_t is for noise-free kernels only")
    if bounds is not None:
        raise ValueError("bounds are for noise-free kernels only")
    if isinstance(data, TransitionKernel):
        estimator = data.method  # an estimated kernel: check its counts the same way
        data = data.counts
    if not isinstance(data, TransitionCounts):
        raise TypeError(f"data must be TransitionCounts or TransitionKernel, got "
                        f"{type(data).__name__}")
    return _check_counts(data, bootstrap=bootstrap, seed=seed, level=level, alpha=alpha,
                         estimator=estimator, progress=progress)


def _calls_note(counts: TransitionCounts) -> tuple[int | None, str]:
    if counts.calls_kind == "exact":
        return int(np.sum(counts.calls)), "every call recorded"
    if counts.calls_kind == "nominal":
        n0 = np.unique(np.asarray(counts.calls))
        what = f"{n0[0]:g}" if n0.size == 1 else f"{n0.min():g}-{n0.max():g}"
        return None, f"N0 nominal ({what} calls per prompt, not recorded)"
    return None, "calls not recorded (N0 from out-counts, Eq. 24)"


def _check_counts(counts, *, bootstrap, seed, level, alpha, estimator, progress) -> Verdict:
    n = counts.n_states
    f, g, c = counts.edges()
    f, g, c = f[c > 0], g[c > 0], c[c > 0]
    n_pairs, n_two = _pair_counts(f, g, n)
    n_calls, note = _calls_note(counts)
    undefined: dict[str, str] = {}
    empty = _frame(np.full(n, np.nan), counts.states, np.full(n, "unrelated", dtype=object))
    base = dict(source=counts.source or "counts", noise_free=False, n_states=n,
                n_pairs=n_pairs, n_two_way=n_two, n_transitions=float(c.sum()),
                n_calls=n_calls, calls_note=note, level=level, alpha=alpha)
    if n < 2 or f.size == 0:
        why = ("one state: there is nothing to compare" if n < 2 else
               "no transition between two different states was observed")
        for part in ("test", "popularity", "hodge", "held_out", "potential"):
            undefined[part] = why
        return Verdict(test=None, hodge=None, shares=None, held_out=None, potentials=empty,
                       ground=None, undefined=undefined, **base)
    rng = np.random.default_rng(seed)
    test = None
    try:
        test = balance_test(counts, bootstrap=bootstrap, seed=rng, estimator=estimator,
                            progress=progress)
    except (ValueError, ConvergenceError) as exc:
        undefined["test"] = f"the test could not be computed: {exc}"
    if test is not None and test.reason:
        undefined["test"] = test.reason
    if "test" in undefined:
        undefined["popularity"] = "detailed balance itself is not testable"
    elif test.dof_popularity == 0 or not np.isfinite(test.p_popularity):
        undefined["popularity"] = "no degree of freedom between popularity and balance"
    hd = None
    try:
        hd = hodge(counts, estimator=estimator)
    except ValueError as exc:
        undefined["hodge"] = str(exc)
    ho = None
    if counts.calls_kind != "exact":
        undefined["held_out"] = ("the calls per prompt were not recorded, so they cannot be "
                                 "split into halves")
    else:
        try:
            ho = held_out(counts, seed=rng)
        except (ValueError, ConvergenceError) as exc:
            undefined["held_out"] = str(exc)
    if ho is not None and ho.n_pairs == 0:
        undefined["held_out"] = ("the held-out half has no pair seen both ways that the "
                                 "fitted half can predict")
    pot, ground = empty, None
    try:
        fit = fit_likelihood(counts, estimator=estimator)
    except (ValueError, ConvergenceError) as exc:
        undefined["potential"] = str(exc)
    else:
        iv = fit.interval(level).reindex(pd.Index(counts.states))
        status = fit.status.reindex(pd.Index(counts.states)).fillna("not kept").to_numpy()
        pot = _frame(iv["beta_V"].to_numpy(), counts.states, status, iv["stderr"].to_numpy(),
                     iv["low"].to_numpy(), iv["high"].to_numpy())
        ground = fit.transitions.states[int(fit.ground[0])]
    return Verdict(test=test, hodge=hd, shares=None, held_out=ho, potentials=pot,
                   ground=ground, undefined=undefined, **base)


def _bounded(t: np.ndarray, log_t: np.ndarray, states, bounds, note: str, undefined: dict):
    """:func:`dbnb.bounded_potential` of a noise-free kernel: ``(fit or None, note)``."""
    n = t.shape[0]
    if bounds is None:
        lo = up = np.where(np.isfinite(log_t), np.exp(log_t), 0.0)
        note = note or "the kernel's entries themselves: exact, no skipped mass"
    else:
        if len(bounds) != 2:
            raise ValueError(f"bounds must be (lower, upper), got {len(bounds)} arrays")
        lo, up = (np.array(b, dtype=float) for b in bounds)
        for name, b in (("lower", lo), ("upper", up)):
            if b.shape != (n, n):
                raise ValueError(f"bounds: {name} has shape {b.shape}; the kernel has {n} "
                                 "states")
    try:
        return bounded_potential(lo, up, states=list(states)), note
    except ValueError as exc:
        if "no pair" not in str(exc):
            raise
        undefined["bounded"] = "no pair of states is bounded away from 0 in both directions"
    except ConvergenceError as exc:
        undefined["bounded"] = str(exc)
    return None, note


def _check_kernel(tk: TransitionKernel, *, log_t, level, alpha, bounds=None, bounds_note="",
                  bounded_tol=0.01) -> Verdict:
    n = tk.n_states
    t = sp.csr_array(tk.matrix).toarray()
    np.fill_diagonal(t, 0.0)
    if log_t is None:
        with np.errstate(divide="ignore"):
            log_t = np.log(t)
    else:
        log_t = np.asarray(log_t, dtype=float)
        if log_t.shape != (n, n):
            raise ValueError(f"log_t has shape {log_t.shape}; the kernel has {n} states")
    g, f = np.nonzero(t > 0)
    n_pairs, n_two = _pair_counts(f, g, n)
    method = "log-probability kernel" if tk.method == "exact-logprob" else "exact kernel"
    undefined: dict[str, str] = {
        "test": "no sampling noise: no p-values",
        "popularity": "no sampling noise: no p-values",
        "held_out": "no sampling noise: nothing to hold out",
    }
    hd = shares = None
    if n >= 2 and n_two:
        try:
            hd = hodge(tk, weights="uniform")
        except ValueError as exc:
            undefined["hodge"] = str(exc)
    else:
        undefined["hodge"] = ("one state: there is nothing to compare" if n < 2 else
                              "no pair of states has both transitions")
    try:
        shares = variance_shares(log_t)
    except ValueError as exc:
        undefined["shares"] = str(exc)
    status = np.full(n, "unrelated", dtype=object)
    values = np.full(n, np.nan)
    ground = None
    if hd is not None:
        two = (t > 0) & (t.T > 0)
        comp = graph.strong_components(sp.csr_array(two.T))
        main = (comp == 0) & two.any(axis=0)  # component 0: the largest with a pair
        status[main] = "main"
        status[~two.any(axis=0)] = "no two-way pair"
        values[main] = hd.potential.to_numpy()[main]
        ground = tk.states[int(np.flatnonzero(main)[np.argmin(values[main])])]
    else:
        undefined["potential"] = undefined["hodge"]
    pot = _frame(values, tk.states, status)
    bd = None
    if n >= 2:
        bd, bounds_note = _bounded(t, log_t, tk.states, bounds, bounds_note, undefined)
    else:
        undefined["bounded"] = "one state: there is nothing to compare"
    if bd is not None:
        pot["bounded_beta_V"] = bd.potential.to_numpy()
        pot["bounded_low"] = bd.low.to_numpy()
        pot["bounded_high"] = bd.high.to_numpy()
    return Verdict(
        source=tk.counts.source or method, noise_free=True, n_states=n, n_pairs=n_pairs,
        n_two_way=n_two, n_transitions=float(f.size), n_calls=None,
        calls_note=f"{method}, no sampling noise", test=None, hodge=hd, shares=shares,
        held_out=None, potentials=pot, ground=ground,
        level=level, alpha=alpha, undefined=undefined, bounded=bd, bounded_tol=bounded_tol,
        bounds_note=bounds_note,
    )
