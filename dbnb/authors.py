"""The authors' conventions, per file of their data set, as their public scripts apply them.

The Letter's figures were made by the authors' analysis scripts (GitHub
``SonnyNondegeneracy/detialed-balance-llm``, MIT), each with its own kernel estimator. This
module names those choices so that :mod:`dbnb.sources` and :mod:`dbnb.reproduce` use them by
default for the Letter's files and say so in every caption; dbnb's own estimators are offered
beside them.

Conventions are selectable by name (:data:`NAMED`, :func:`convention`): ``"eq18"`` (the
few-state Claude and Gemini runs), ``"high_reject"`` and ``"low_reject"`` (the two options of
the authors' ``build_potential.py``). :data:`CONVENTIONS` says which one each file uses by
default; :meth:`dbnb.sources.Sources.fit` fits any data set with any of them, or with dbnb's
own estimator (``"dbnb"``).

The statistics printed on the authors' pair and loop plots (``plot.py``) are recomputed here
as their script computes them, under their own names: :func:`letter_pairs` (Figs. 4, 7, 9:
pairs seen more than once each way, ``log T`` ratios from the appearances as a source, the
``|beta dV| > log(samples)`` exclusion, the *unweighted* mean square printed as
"chi2/ndf"), :func:`letter_loops` (Figs. 3, 8: 3-cycles with every count above the loop
threshold, the weighted chi2/ndf) and :func:`letter_histogram` (Fig. 11: the Gaussian fitted to
the 50-bin histogram); the pair and loop plots with the seeded sample they show
(:func:`letter_sample`: NumPy's legacy generator seeded with 42, ``n // ratio`` points). dbnb's
own checks (:func:`dbnb.diagnostics.pairs`, :func:`dbnb.diagnostics.triplets`,
:func:`dbnb.diagnostics.potential_distribution`) stand beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .counts import TransitionCounts
from .graph import triangles
from .potential import PotentialFit

__all__ = ["Convention", "CONVENTIONS", "NAMED", "convention", "graph_nodes", "SCRIPT_CALLS",
           "PLOT_FRACTION", "LOOP_THRESHOLD", "LetterPlot", "appearances", "letter_sample",
           "letter_pairs", "letter_loops", "LetterHistogram", "letter_histogram"]

#: Calls per word-agent run in the Letter (Sec. 6): the authors' ``20000`` of Eq. 18.
SCRIPT_CALLS = 20_000

#: Fraction of the points the Letter's pair and triplet plots show (METHOD §3; seed 42).
PLOT_FRACTION = {"claude": 1.0, "gemini": 1.0, "gpt5nano": 0.2, "ideasearchfitter": 0.1}


@dataclass(frozen=True)
class Convention:
    """A kernel estimator as the authors' script for one file applies it.

    Attributes
    ----------
    estimator : str
        The :func:`dbnb.estimate_kernel` method.
    per_state_calls : bool
        ``True``: ``N0 = SCRIPT_CALLS / (number of states)`` for every state (Eq. 18 with the
        authors' ``20000 / total_nodes``), passed as ``n0``.
    label : str
        What the caption says.
    name : str
        Its key in :data:`NAMED` (``"eq18"``, ``"high_reject"``, ``"low_reject"``).
    """

    estimator: str
    per_state_calls: bool
    label: str
    name: str = ""

    def fit_kwargs(self, counts: TransitionCounts) -> dict[str, object]:
        """The ``estimator`` (and ``n0``) arguments of :func:`dbnb.fit_potential`."""
        kw: dict[str, object] = {"estimator": self.estimator}
        if self.per_state_calls:
            kw["n0"] = SCRIPT_CALLS / graph_nodes(counts)
        return kw


def graph_nodes(counts: TransitionCounts) -> int:
    """The authors' ``total_nodes``: states on at least one transition between two different
    states (their graph is built from such edges; a state seen only repeating itself is not a
    node). The denominator of ``N0 = 20000 / total_nodes``.

    ``INVALID00`` is never a state here (dbnb counts it as an escape); the authors' graph would
    count it as a node if a file held ``INVALID00`` targets. Their Gemini diagram script lists
    13 nodes and no ``INVALID00`` edge (``N0 = 20000/13``), as this gives."""
    n = counts.matrix.tocoo()
    off = n.row != n.col
    touched = np.union1d(n.row[off], n.col[off])
    if not len(touched):
        raise ValueError(f"{counts.source or 'counts'}: no transition between two different "
                         "states, so the authors' N0 = 20000 / total_nodes is undefined")
    return len(touched)


_EQ18 = Convention("fixed", True, "authors' N0 = 20000/(number of states), T = min(N/N0, 1) "
                                  "(Eq. 18)", "eq18")
_HIGH = Convention("fixed", True, "authors' high_reject: N0 = 20000/(number of states) for "
                                  "every state, T = min(N/N0, 1)", "high_reject")
_LOW = Convention("low_reject", False, "authors' low_reject: N0 = appearances as a source, "
                                       "self-loops included, states with N0 > 1", "low_reject")

#: The authors' conventions by name: ``"eq18"`` (``samll case/calculate_potential.py``),
#: ``"high_reject"`` and ``"low_reject"`` (the ``reject_mode`` of ``build_potential.py``).
#: ``"eq18"`` and ``"high_reject"`` are the same estimator (``N0 = 20000 / total_nodes``),
#: named after the script that uses it. The Letter's text (Eq. 24) describes the out-count
#: estimator for the many-state agents, which is ``low_reject`` up to the self-loops; the
#: authors' ``main.py`` draws GPT-5 Nano's figures with ``high_reject``: both are offered,
#: ``CONVENTIONS`` follows ``main.py``.
NAMED = {"eq18": _EQ18, "high_reject": _HIGH, "low_reject": _LOW}

#: The authors' estimator for each file of their data set (roles of
#: :data:`dbnb.datasets.LETTER_FILES`), as their scripts call it: Eq. 18 for the few-state
#: Claude and Gemini runs (``samll case/calculate_potential.py``); ``high_reject`` with
#: ``N_threshold=0`` for GPT-5 Nano and ``low_reject`` with ``N_threshold=1`` for
#: IdeaSearchFitter (``main.py``, which prints these settings for Figs. 3, 7 and 11). Their
#: ``high_reject`` is Eq. 18 again, ``N0 = 20000 / total_nodes`` for every node.
CONVENTIONS = {"claude": _EQ18, "gemini": _EQ18, "gpt5nano": _HIGH, "ideasearchfitter": _LOW}


def convention(name: str) -> Convention:
    """The authors' :class:`Convention` by name (:data:`NAMED`: ``"eq18"``,
    ``"high_reject"``, ``"low_reject"``) or by a file's role (:data:`CONVENTIONS`:
    ``"claude"``, ``"gemini"``, ``"gpt5nano"``, ``"ideasearchfitter"``: that file's default).

    Raises
    ------
    KeyError
        Neither a name nor a role; the message lists both.
    """
    if name in NAMED:
        return NAMED[name]
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise KeyError(f"no authors' convention {name!r}; names: {sorted(NAMED)}, file roles: "
                       f"{sorted(CONVENTIONS)}") from None


#: The authors' ``loop_threshold`` per file (``main.py``): a 3-cycle enters their loop plot
#: only if all nine counts (six transitions, three appearances) exceed it. Few-state files: 0.
LOOP_THRESHOLD = {"claude": 0, "gemini": 0, "gpt5nano": 0, "ideasearchfitter": 1}


@dataclass(frozen=True, eq=False)
class LetterPlot:
    """The points of one of the authors' pair or loop plots and the numbers printed on it,
    computed as their ``plot.py`` does.

    Attributes
    ----------
    kind : str
        ``"pairs"`` (Figs. 4, 7, 9) or ``"loops"`` (Figs. 3, 8).
    states : tuple of str
        Labels; ``members`` index into them.
    members : numpy.ndarray of int, shape (n, 2) or (n, 3)
        The pair ``(f, g)`` or the 3-cycle ``(f, g, h)`` of each point.
    x, y : numpy.ndarray
        Pairs: ``x = beta(V(f) - V(g))`` from the fit, ``y = log (N(g<-f)/A(f)) /
        (N(f<-g)/A(g))`` with ``A`` the appearances as a source (:func:`appearances`).
        Loops: ``x`` the forward, ``y`` the backward sum of ``log N/A`` around the cycle.
    error : numpy.ndarray
        The authors' error: pairs ``sqrt(1/N(g<-f) + 1/A(f) + 1/N(f<-g) + 1/A(g))`` (of
        ``y``); loops the quadrature sum of ``1/N + 1/A`` over the six legs (of ``y - x``).
    chi2_ndf : float
        What the plot prints as "chi2/ndf": pairs the *unweighted* mean of ``(y - x)^2``
        (no error enters), loops the mean of ``(y - x)^2 / error^2``. NaN without points.
    r : float
        Pearson correlation of ``x`` and ``y`` (printed on the pair plot; NaN below 2 points).
        It depends on each pair's orientation, which the authors' script takes from the
        order of the file (here: ``f`` before ``g`` in ``states``).
    shown : numpy.ndarray of int
        The points the plot draws (:func:`letter_sample`).
    flip : numpy.ndarray
        ``+1`` / ``-1`` per shown pair (the pair plot draws ``(-x, -y)`` for ``-1``); ones
        for loops.
    rule : str
        Which points entered, in words (for a caption).
    """

    kind: str
    states: tuple[str, ...]
    members: np.ndarray
    x: np.ndarray
    y: np.ndarray
    error: np.ndarray
    chi2_ndf: float
    r: float
    shown: np.ndarray
    flip: np.ndarray
    rule: str

    @property
    def n(self) -> int:
        """The ``N`` printed on the plot: every point that entered (not only those shown)."""
        return int(self.x.size)


def appearances(counts: TransitionCounts) -> np.ndarray:
    """The authors' ``node_counts``: how often each state appears as a source in their file,
    self-transitions and rejected replies (``INVALID00``, dbnb's escapes) included."""
    a = counts.observed_calls().astype(float)
    if counts.escapes is not None:
        a = a + np.asarray(counts.escapes, dtype=float)
    return a


def letter_sample(n: int, ratio: int, *, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The points the authors' plots show: ``np.random.seed(seed)`` then
    ``np.random.choice(n, n // ratio, replace=False)`` (NumPy's legacy generator), and the
    next draw of ``np.random.choice([1, -1], size)``, the pair plot's random orientation.

    The Letter shows 1/5 of the word points and 1/10 of the IdeaSearchFitter points
    (:data:`PLOT_FRACTION`; ``ratio`` 5 and 10), seed 42. Returns ``(indices, flips)``; the
    indices in the order drawn (the pair plot does not sort them).
    """
    if isinstance(ratio, bool) or not isinstance(ratio, int | np.integer) or ratio < 1:
        raise ValueError(f"ratio must be an integer >= 1 (1/ratio of the points), got {ratio!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    rs = np.random.RandomState(seed)
    idx = rs.choice(n, size=n // int(ratio), replace=False) if n else np.zeros(0, dtype=int)
    flip = rs.choice([1, -1], size=idx.size) if idx.size else np.zeros(0, dtype=int)
    return np.asarray(idx, dtype=np.int64), np.asarray(flip, dtype=np.int64)


def _ratio(ratio: int | None, role: str | None) -> int:
    if ratio is not None:
        return ratio
    return int(round(1.0 / PLOT_FRACTION.get(role or "", 1.0)))


def _pair_counts(counts: TransitionCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                    np.ndarray]:
    """Unordered pairs ``f < g`` seen both ways: ``(f, g, N(g<-f), N(f<-g))``."""
    f, g, c = counts.edges()
    n = counts.n_states
    key = f * n + g
    order = np.argsort(key)
    key, c_sorted = key[order], c[order]
    fwd = f < g
    rev = g[fwd] * n + f[fwd]
    pos = np.searchsorted(key, rev)
    pos_ok = np.minimum(pos, max(key.size - 1, 0))
    hit = (pos < key.size) & (key[pos_ok] == rev) if key.size else np.zeros(0, dtype=bool)
    return f[fwd][hit], g[fwd][hit], c[fwd][hit], c_sorted[pos_ok[hit]]


def letter_pairs(fit: PotentialFit, counts: TransitionCounts, *, samples: float | None = None,
                 ratio: int | None = None, role: str | None = None, seed: int = 42
                 ) -> LetterPlot:
    r"""The authors' pair plot (Figs. 4, 7, 9) and its annotation, as ``plot_detailed_balance``
    of their ``plot.py`` computes them.

    A pair ``{f, g}`` enters when ``N(g<-f) > 1`` and ``N(f<-g) > 1`` and
    ``|beta (V(f) - V(g))| <= log(samples)``. Its log-ratio uses the appearances as a source
    (:func:`appearances`) whatever estimator fitted the potential,

    .. math:: y = \log rac{N(g \leftarrow f) / A(f)}{N(f \leftarrow g) / A(g)},

    and the plot prints ``N``, Pearson's ``r`` and "chi2/ndf" ``= mean (y - x)^2``, an
    unweighted mean square (:attr:`LetterPlot.chi2_ndf`).

    Parameters
    ----------
    fit : PotentialFit
        The fit whose potential gives ``x`` (``fit.relative``: a pair seen both ways lies in one
        strongly connected component). Pairs with a state the fit dropped are left out.
    counts : TransitionCounts
        The file's counts, *all* of them (the appearances are counted over the whole file).
    samples : float, optional
        The exclusion ``|x| > log(samples)``. Default ``counts.n_samples``, the Letter's rule
        (Table III's samples of the file). The authors' script has ``log(50228)``, the
        IdeaSearchFitter samples, for both files: pass ``samples=50228`` to reproduce that.
    ratio : int, optional
        Show ``1/ratio`` of the points (:func:`letter_sample`); default from ``role``
        (:data:`PLOT_FRACTION`: 5 for GPT-5 Nano, 10 for IdeaSearchFitter), else 1.
    role : str, optional
        The file's role, for the default ``ratio``.
    seed : int
        The sample's seed (the authors': 42).

    Notes
    -----
    The authors' script also drops pairs with ``|abs(V) - 20| < 1``, states their unbounded
    optimiser left near the divergence of a state outside the main component; dbnb's solver
    reports such states as ``+-inf`` instead (METHOD §2), so the rule has no counterpart here.
    """
    if not isinstance(fit, PotentialFit):
        raise TypeError(f"fit must be a PotentialFit, got {type(fit).__name__}")
    if not isinstance(counts, TransitionCounts):
        raise TypeError(f"counts must be a TransitionCounts, got {type(counts).__name__}")
    total = float(counts.n_samples if samples is None else samples)
    if not total > 1:
        raise ValueError(f"samples must be > 1 (the exclusion is log(samples)), got {samples!r}")
    threshold = float(np.log(total))
    f, g, n_fg, n_gf = _pair_counts(counts)
    keep = (n_fg > 1) & (n_gf > 1)
    f, g, n_fg, n_gf = f[keep], g[keep], n_fg[keep].astype(float), n_gf[keep].astype(float)
    rel = fit.relative.reindex(list(counts.states)).to_numpy(dtype=float)
    x = rel[f] - rel[g]
    ok = np.isfinite(x) & (np.abs(x) <= threshold)
    f, g, n_fg, n_gf, x = f[ok], g[ok], n_fg[ok], n_gf[ok], x[ok]
    a = appearances(counts)
    y = np.log((n_fg / a[f]) / (n_gf / a[g]))
    err = np.sqrt(1 / n_fg + 1 / a[f] + 1 / n_gf + 1 / a[g])
    chi2 = float(np.mean((y - x) ** 2)) if x.size else float("nan")
    r = (float(np.corrcoef(x, y)[0, 1]) if x.size > 1 and np.ptp(x) > 0 and np.ptp(y) > 0
         else float("nan"))
    shown, flip = letter_sample(x.size, _ratio(ratio, role), seed=seed)
    rule = (f"pairs seen more than once each way, |beta dV| <= log({total:.0f}) = "
            f"{threshold:.2f}; log T from the appearances as a source; chi2/ndf = "
            "unweighted mean of (log-ratio - beta dV)^2")
    return LetterPlot("pairs", tuple(counts.states), np.column_stack([f, g]), x, y, err, chi2,
                      r, shown, flip, rule)


def letter_loops(counts: TransitionCounts, *, threshold: int | None = None,
                 ratio: int | None = None, role: str | None = None, seed: int = 42
                 ) -> LetterPlot:
    r"""The authors' loop plot (Figs. 3, 8) and its "chi2/ndf", as ``plot_loop_balance`` of
    their ``plot.py`` computes them (no potential enters).

    A 3-cycle ``f -> g -> h -> f`` enters when all six directed transitions are observed, all
    nine counts (the six ``N`` and the three appearances ``A``, :func:`appearances`) exceed
    ``threshold``, and its squared error ``sum (1/N + 1/A)`` over the six legs is below 100.
    ``x = sum log(N/A)`` forward, ``y`` backward; "chi2/ndf" ``= mean (y - x)^2 / error^2``.

    Parameters
    ----------
    counts : TransitionCounts
        The file's counts, all of them.
    threshold : int, optional
        The authors' ``loop_threshold``; default from ``role`` (:data:`LOOP_THRESHOLD`: 0 for
        GPT-5 Nano, 1 for IdeaSearchFitter, i.e. every count at least 2), else 0.
    ratio, role, seed
        As for :func:`letter_pairs` (the loop plot shows its sample sorted).
    """
    if not isinstance(counts, TransitionCounts):
        raise TypeError(f"counts must be a TransitionCounts, got {type(counts).__name__}")
    thr = LOOP_THRESHOLD.get(role or "", 0) if threshold is None else threshold
    if isinstance(thr, bool) or not isinstance(thr, int | np.integer) or thr < 0:
        raise ValueError(f"threshold must be an integer >= 0, got {threshold!r}")
    f, g, c = counts.edges()
    n = counts.n_states
    m = sp.csr_array((c.astype(float), (f, g)), shape=(n, n))  # m[f, g] = N(g <- f)
    mutual = sp.csr_array(m.multiply(m.T) > 0, dtype=float)
    tri = triangles(mutual)
    i, j, k = tri[:, 0], tri[:, 1], tri[:, 2]
    a = appearances(counts)

    def cnt(u, v):
        return np.asarray(m[u, v], dtype=float).ravel() if u.size else np.zeros(0)

    fw_n = [cnt(i, j), cnt(j, k), cnt(k, i)]
    bw_n = [cnt(i, k), cnt(k, j), cnt(j, i)]
    src_fw, src_bw = [i, j, k], [i, k, j]
    low = np.min(np.vstack([*fw_n, *bw_n, a[i], a[j], a[k]]), axis=0)
    x = sum(np.log(nn / a[s]) for nn, s in zip(fw_n, src_fw, strict=True))
    y = sum(np.log(nn / a[s]) for nn, s in zip(bw_n, src_bw, strict=True))
    err2 = sum(1 / nn + 1 / a[s] for nn, s in zip(fw_n + bw_n, src_fw + src_bw, strict=True))
    ok = (low > thr) & (err2 < 100)
    x, y, err2, members = x[ok], y[ok], err2[ok], tri[ok]
    chi2 = float(np.mean((y - x) ** 2 / err2)) if x.size else float("nan")
    r = (float(np.corrcoef(x, y)[0, 1]) if x.size > 1 and np.ptp(x) > 0 and np.ptp(y) > 0
         else float("nan"))
    shown, _ = letter_sample(x.size, _ratio(ratio, role), seed=seed)
    rule = (f"3-cycles seen both ways with every count > {thr} and squared error < 100; "
            "chi2/ndf = mean (backward - forward)^2 / error^2")
    return LetterPlot("loops", tuple(counts.states), members, x, y, np.sqrt(err2), chi2, r,
                      np.sort(shown), np.ones(shown.size, dtype=np.int64), rule)


@dataclass(frozen=True, eq=False)
class LetterHistogram:
    """The authors' potential histogram (Fig. 11) and its Gaussian, as
    ``plot_potential_distribution`` of their ``plot.py`` computes them.

    Attributes
    ----------
    values : numpy.ndarray
        ``beta V`` of the states that appear as a source more than once, in the authors'
        gauge (mean zero over every state with a finite potential).
    heights, edges : numpy.ndarray
        The histogram (``bins`` equal bins over the values).
    mu, sigma : float
        The Gaussian least-squares fitted to the bin heights at the bin centres
        (``scipy.optimize.curve_fit`` from the values' mean and standard deviation), the
        numbers the Letter quotes (GPT-5 Nano words: -0.93, 2.30; IdeaSearchFitter: -0.56,
        4.37). NaN when the fit fails or fewer than three values qualify. ``mu`` depends on
        the gauge, ``sigma`` does not.
    """

    values: np.ndarray
    heights: np.ndarray
    edges: np.ndarray
    mu: float
    sigma: float

    @property
    def n(self) -> int:
        return int(self.values.size)


def letter_histogram(fit: PotentialFit, counts: TransitionCounts, *, bins: int = 50
                     ) -> LetterHistogram:
    """Fig. 11 as the authors' script draws it: the states with more than one appearance as a
    source (:func:`appearances`), a ``bins``-bin histogram of their ``beta V`` and the Gaussian
    ``A exp(-(V - mu)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)`` fitted to it by least squares.

    dbnb's own :func:`dbnb.diagnostics.potential_distribution` gives the maximum-likelihood
    Gaussian of the same values instead (mean and standard deviation), and the spread without
    the estimation noise. States whose potential is infinite here (outside the main component)
    are left out; the authors' unbounded optimiser gives them finite values.
    """
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    if not isinstance(fit, PotentialFit):
        raise TypeError(f"fit must be a PotentialFit, got {type(fit).__name__}")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    pot = fit.potential.reindex(list(counts.states)).to_numpy(dtype=float)
    finite = np.isfinite(pot)
    pot = pot - pot[finite].mean() if finite.any() else pot  # their gauge: mean zero
    v = pot[finite & (appearances(counts) > 1)]
    heights, edges = np.histogram(v, bins=bins) if v.size else (np.zeros(0), np.zeros(0))
    mu = sigma = float("nan")
    if v.size >= 3 and v.std() > 0:
        centres = (edges[:-1] + edges[1:]) / 2

        def gauss(x, m, s, a):
            return a * np.exp(-((x - m) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s)

        def jac(x, m, s, a):  # analytic: a forward difference cannot move mu from 0
            unit = np.exp(-((x - m) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s)
            g = a * unit
            return np.column_stack([g * (x - m) / s**2, g * ((x - m) ** 2 / s**3 - 1 / s),
                                    unit])

        p0 = [float(v.mean()), float(v.std()), float(heights.max() * np.sqrt(2 * np.pi)
                                                     * v.std())]
        try:
            with warnings.catch_warnings():  # the covariance is not used
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, _ = curve_fit(gauss, centres, heights.astype(float), p0=p0, jac=jac,
                                    maxfev=20000)
            mu, sigma = float(popt[0]), float(abs(popt[1]))
        except (RuntimeError, ValueError):  # no convergence: NaN, as the script prints a failure
            pass
    return LetterHistogram(v, heights, edges, mu, sigma)
