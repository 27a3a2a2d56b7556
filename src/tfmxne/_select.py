# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Automatic regularisation: the criteria that choose alpha (and l1_ratio).

One forward preparation per call; one prepared problem per l1_ratio of the
grid; the levels of the alpha grid walked with warm starts
(:func:`tfmxne._solve.solve_path`, :func:`tfmxne._solve.solve_problem`).
The constants below are public as ``tfmxne.path.<NAME>`` (the documentation's
names); ``tfmxne.path`` passes an assignment to them on to this module.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
from mne.utils import logger

from ._problem import (
    check_inputs,
    prepare,
    prepare_data,
    prepare_forward,
    window_evoked,
)
from ._result import compute_residual
from ._solve import (
    in_threads,
    n_workers,
    report,
    run_solver,
    solve_path,
    solve_problem,
    warm_start,
)
from ._validation import check_alpha, check_l1_ratio
from .solver import _DEFAULTS, _cols

#: Default alpha grid of automatic selection, in percent of alpha_max
#: (geometric, about 12 % apart).
AUTO_ALPHAS = np.geomspace(90.0, 5.0, 23)
#: l1_ratio values tried when ``l1_ratio=None``.
AUTO_L1_RATIOS = (0.01, 0.03, 0.1, 0.3)
#: Criteria of automatic selection; the first is what ``alpha=None`` means.
CRITERIA = ("signal-share", "model-discrepancy", "sure", "discrepancy", "bic")
#: Share of the signal (the data energy beyond the expected noise) that each
#: active position must explain under 'signal-share' (chosen on the simulation
#: study of benchmarks/bench_alpha_study.py, never on recordings).
SIGNAL_SHARE = 0.03
#: 'signal-share' walks down the grid until this many levels after its best so
#: far, with more active positions than it, have not improved on it.
SIGNAL_PATIENCE = 3
#: l1_ratio on which 'signal-share' walks the alpha grid; with ``l1_ratio=None``
#: the other ``AUTO_L1_RATIOS`` are then solved at the chosen alpha only.
SIGNAL_L1_RATIO = 0.03
#: The levels of the 'signal-share' walk are first solved only as far as the
#: criterion needs (an epsilon-path): in float32, to ``SIGNAL_LOOSE_TOL`` times
#: the call's tol (not below float32's reach, 1e-5), warm-started, with no
#: warning if it stops before; those whose value on that solution comes
#: within ``SIGNAL_POLISH_MARGIN * SIGNAL_SHARE`` of the best so far are solved
#: to tol (from it) and compared on their exact values; the answer is one of
#: these (benchmarks/README.md, "Automatic alpha": what this changes).
SIGNAL_LOOSE_TOL = 3.0
#: See :data:`SIGNAL_LOOSE_TOL`.
SIGNAL_POLISH_MARGIN = 0.5
#: Relative forward-model error assumed by 'model-discrepancy' (the best of the
#: simulation study of benchmarks/bench_alpha_study.py, never on recordings).
MODEL_ERROR = 0.7
#: Points solved between the last grid alpha without a hit and the first with
#: one, by the discrepancy criteria (geometric; the answer is the first hit).
AUTO_REFINE = 2
#: Penalty per active position of 'bic', in units of log(n_chan * n_times)
#: (simulation study).
BIC_PENALTY = 300.0

#: The names ``tfmxne.path`` shows.
PUBLIC = (
    "AUTO_ALPHAS",
    "AUTO_L1_RATIOS",
    "CRITERIA",
    "SIGNAL_SHARE",
    "SIGNAL_PATIENCE",
    "SIGNAL_L1_RATIO",
    "SIGNAL_LOOSE_TOL",
    "SIGNAL_POLISH_MARGIN",
    "MODEL_ERROR",
    "AUTO_REFINE",
    "BIC_PENALTY",
)


def is_auto(alpha, l1_ratio):
    """Whether a call chooses its regularisation."""
    return alpha is None or isinstance(alpha, str) or l1_ratio is None


def check_criterion(criterion):
    """One of :data:`CRITERIA`."""
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(
            "alpha must be a number in (0, 100), None or one of "
            f"{', '.join(repr(c) for c in CRITERIA)}, got alpha={criterion!r}"
        )
    return criterion


@dataclasses.dataclass(frozen=True)
class _Search:
    """What a criterion walks: its problems (``make_problem(l1_ratio)``, a
    prepared :class:`tfmxne._problem.Problem`), the grids, the options of the
    call, its threads and its progress events."""

    make_problem: Callable
    l1_grid: tuple
    alphas: np.ndarray
    opts: object
    n_workers: int
    emit: object

    def problem(self, l1_ratio):
        return self.make_problem(l1_ratio)

    def solve(self, p, alpha, total, warm=None, loose=False):
        """One level (no residual evoked: it is built for the answer only, as
        it costs about 10 ms of MNE channel picking, as much as a small solve).

        ``loose``: solved only as far as a criterion needs, not returned (float32,
        to :data:`SIGNAL_LOOSE_TOL` times tol, not debiased; reported as
        ``loose``)."""
        if not loose:
            r = solve_problem(
                p,
                float(alpha),
                self.opts,
                return_residual=False,
                warm=warm,
            )
        else:
            opts = dataclasses.replace(self.opts, tol=_loose_tol(self.opts.tol))
            res, _ = run_solver(
                p, float(alpha), opts, p.frame(np.float32), warm, None, quiet=True
            )
            r = _Loose(p, float(alpha), res, opts.tol)
        report(self.emit, "alpha", r, total)
        return r

    def path(self, p, total):
        return solve_path(
            p, self.alphas, self.opts, return_residual=False, emit=self.emit, total=total
        )


def _loose_tol(tol):
    """The tol of a loose level: :data:`SIGNAL_LOOSE_TOL` times the call's,
    not below what float32 resolves (the core's float32 floor)."""
    return max(SIGNAL_LOOSE_TOL * tol, _DEFAULTS["mixed_tol_ratio"])


class _Loose:
    """A level solved only as far as a criterion needs (:data:`SIGNAL_LOOSE_TOL`):
    the solver's answer and what the criteria read of a result (support, active
    gain columns, data), without MNE objects or debiasing; never returned."""

    def __init__(self, p, alpha, res, tol):
        cols = _cols(res.positions, p.n_orient)
        self._res, self._M = res, p.M
        self._gain_active = p.gain[:, cols] / p.source_weighting[cols]
        self.alpha, self.l1_ratio, self.gap = alpha, p.l1_ratio, float(res.gap)
        self.alpha_max = p.alpha_max * 100.0
        self.tol = tol * float(np.sum(p.M * p.M))

    def _n_positions(self):
        return int(len(self._res.positions))


def solve_auto(
    evoked, forward, noise_cov, alpha, l1_ratio, opts, return_residual, n_jobs, emit
):
    """:func:`tfmxne.solve` with an automatic alpha or l1_ratio (one call).

    ``alpha``: a criterion (None: the first of :data:`CRITERIA`) or a number
    (then only l1_ratio is chosen, at that alpha). With ``n_jobs > 1``, the
    paths of the l1_ratio grid ('model-discrepancy', 'discrepancy') or SURE's
    two paths (data and perturbed data) run in parallel threads. ``emit``
    receives an 'alpha' event after each solve.
    """
    n_workers(n_jobs)
    check_inputs(evoked, forward, noise_cov, opts)
    _choice(alpha, l1_ratio)  # (checked before the preparation)
    fwd = prepare_forward(evoked.info, forward, noise_cov, opts)
    data = prepare_data(fwd, evoked, opts)  # (shared by the l1_ratios)
    r = select(
        lambda l1: prepare(fwd, evoked, opts, l1, data=data),
        alpha,
        l1_ratio,
        opts,
        n_jobs,
        emit,
    )
    if return_residual:
        r.residual = compute_residual(
            fwd.forward,
            window_evoked(evoked, opts.window),
            r.X,
            r.active_set,
            fwd.gain_info,
        )
    return r


def _choice(alpha, l1_ratio):
    """The criterion and the grids of a call: ``(criterion, alphas, l1_grid)``."""
    alphas = AUTO_ALPHAS
    if alpha is None:
        criterion = CRITERIA[0]
    elif isinstance(alpha, str):
        criterion = check_criterion(alpha)
    else:  # l1_ratio only, at this alpha
        criterion = CRITERIA[0]
        alphas = np.array([check_alpha(alpha)])
    l1_grid = AUTO_L1_RATIOS if l1_ratio is None else (check_l1_ratio(l1_ratio),)
    return criterion, alphas, tuple(l1_grid)


def select(make_problem, alpha, l1_ratio, opts, n_jobs, emit):
    """The automatic choice on the problems ``make_problem(l1_ratio)`` (prepared
    :class:`tfmxne._problem.Problem`: one evoked's, or a joint problem's): the
    chosen result, with its ``selection`` (no residual evoked).

    ``alpha``, ``l1_ratio``, ``n_jobs`` and ``emit`` as :func:`solve_auto`.
    """
    workers = n_workers(n_jobs)
    criterion, alphas, l1_grid = _choice(alpha, l1_ratio)
    search = _Search(make_problem, l1_grid, alphas, opts, workers, emit)
    if criterion in ("model-discrepancy", "discrepancy"):
        return _select_discrepancy(search, criterion)
    if criterion == "signal-share":
        return _select_signal_share(search)
    return _select_on_grid(search, criterion)


# --------------------------------------------------------------------------
# what the criteria measure
# --------------------------------------------------------------------------
def _baseline_noise_var(p):
    """Whitened noise variance measured on the pre-stimulus baseline (or None)."""
    times = p.evoked.times
    base = times < 0
    if base.sum() < 10:
        return None
    return float(np.mean(p.M[:, base] ** 2))


def _fit(p, r):
    if r._gain_active.shape[1] == 0:
        return np.zeros_like(p.M)
    # whitened fit of the (weighted, scaled) problem
    return r._gain_active @ r.X


def _refit_rss(r):
    """Residual energy of the least-squares refit of ``r``'s whitened data on its
    active gain columns, and the rank of those columns."""
    G, M = r._gain_active, r._M
    if G.shape[1] == 0:
        return float(np.sum(M**2)), 0
    U, s, _ = np.linalg.svd(G, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(G.shape) * np.finfo(np.float64).eps))
    U = U[:, :rank]
    return float(np.sum((M - U @ (U.T @ M)) ** 2)), rank


def _signal_share_value(r, noise, energy, n_pos):
    """Unexplained share of the signal + SIGNAL_SHARE k of one estimate (inf when
    empty).

    The share left unexplained by the active positions is estimated without
    bias from the least-squares refit on their gain columns: its residual
    ``RSS_A`` misses the signal outside their span plus all the noise but the
    ``sigma^2 n_t rank(G_A)`` that the refit absorbs, so
    ``(RSS_A + sigma^2 n_t rank(G_A) - noise) / E`` estimates the unexplained
    signal energy over the signal energy ``E`` (``noise``: the expected noise
    energy of the whitened data, ``sigma^2 n_t n_chan``).
    """
    if not n_pos:
        return np.inf
    rss, rank = _refit_rss(r)
    absorbed = noise / r._M.shape[0] * rank  # sigma^2 n_t rank(G_A)
    return (rss + absorbed - noise) / energy + SIGNAL_SHARE * n_pos


# --------------------------------------------------------------------------
# the criteria
# --------------------------------------------------------------------------
def _select_on_grid(search, criterion):
    """'sure' or 'bic': every (l1_ratio, alpha) of the grid solved, the minimum."""
    l1_grid, alphas = search.l1_grid, search.alphas
    rng = np.random.default_rng(0)
    values = np.full((len(l1_grid), len(alphas)), np.inf)
    n_active = np.zeros((len(l1_grid), len(alphas)), int)
    paths = []
    total = len(l1_grid) * len(alphas) * (2 if criterion == "sure" else 1)
    for i, l1 in enumerate(l1_grid):
        p = search.problem(l1)
        sigma2 = noise_var = p.noise_var()
        base_var = _baseline_noise_var(p)
        n_chan, n_times = p.M.shape
        if criterion == "sure":
            eps = 2.0 * np.sqrt(sigma2) / n_chan**0.3
            delta = rng.standard_normal(p.M.shape)
            pe = p.with_data(p.M + eps * delta)
            res, res_e = in_threads(
                [lambda: search.path(p, total), lambda: search.path(pe, total)],
                search.n_workers,
            )
        else:
            res = search.path(p, total)
        paths.append(res)
        n_active[i] = [r._n_positions() for r in res]
        if criterion == "sure":
            for j, (r, re) in enumerate(zip(res, res_e)):
                fit = _fit(p, r)
                fit_e = _fit(pe, re)
                dof = float(np.sum((fit_e - fit) * delta)) / eps
                values[i, j] = (
                    r.residual_norm2 - n_chan * n_times * sigma2 + 2.0 * sigma2 * dof
                )
        else:  # bic
            N = float(n_chan * n_times)
            for j, r in enumerate(res):
                if n_active[i, j]:
                    values[i, j] = N * np.log(
                        r.residual_norm2 / N
                    ) + BIC_PENALTY * n_active[i, j] * np.log(N)
        logger.info(
            f"l1_ratio {l1}: {criterion} "
            + " ".join(f"{a:.3g}:{v:.4g}" for a, v in zip(alphas, values[i]))
        )
    i, j = np.unravel_index(np.argmin(values), values.shape)
    chosen = paths[i][j]
    chosen.selection = dict(
        criterion=criterion,
        alphas=np.asarray(alphas),
        l1_ratios=np.asarray(l1_grid),
        values=values,
        n_active=n_active,
        alpha=float(alphas[j]),
        l1_ratio=float(l1_grid[i]),
        noise_var=noise_var,
        baseline_noise_var=base_var,
        n_solves=total * search.opts.n_tfmxne_iter,
        stopped_early=False,
    )
    logger.info(f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} ({criterion})")
    return chosen


def _select_discrepancy(search, criterion):
    """Discrepancy principle, walked down the grid and stopped at its answer.

    The target is the expected energy of the whitened noise, raised for
    'model-discrepancy' by ``MODEL_ERROR**2`` times the energy of the data
    beyond the noise (the part of the signal a forward model in error by that
    relative amount cannot fit). The choice is the largest alpha of the grid at
    which some l1_ratio has a non-empty estimate whose residual energy is at
    most the target (ties between l1_ratios: fewest active positions, then
    lowest residual). All l1_ratios walk the grid together, level by level,
    warm-started; the first level where one meets the target *is* the answer,
    so no smaller alpha is solved: the stop is exact, not a truncation. Then
    ``AUTO_REFINE`` geometric points between that level and the one above are
    walked down the same way (from the solutions above), so that the answer
    is the largest alpha meeting the target to a finer step than the grid's.
    If no level meets it, the smallest alpha is returned (lowest residual /
    target).
    """
    eps = MODEL_ERROR if criterion == "model-discrepancy" else 0.0
    l1_grid, alphas = search.l1_grid, search.alphas
    preps = [search.problem(l1) for l1 in l1_grid]
    p0 = preps[0]
    noise = p0.noise_energy()
    m2 = float(np.sum(p0.M**2))
    target = noise + eps**2 * max(m2 - noise, 0.0)
    walk = _DiscrepancyWalk(search, preps, target)
    n_l1, n_a = len(l1_grid), len(alphas)
    for j, a in enumerate(alphas):
        warm_prev = list(walk.warm)
        res, hits = walk.level(a)
        for i, r in enumerate(res):
            walk.n_active[i, j] = r._n_positions()
            walk.values[i, j] = r.residual_norm2 / target
        logger.info(
            f"alpha {a:.3g}: residual / target "
            + " ".join(f"{v:.3g}" for v in walk.values[:, j])
        )
        if hits:
            walk.chosen = (min(hits)[2], float(a), res[min(hits)[2]])
            break
    refined = walk.refine(j, warm_prev) if walk.chosen is not None and j > 0 else []
    if walk.chosen is None:
        j = n_a - 1
        cand = [i for i in range(n_l1) if walk.n_active[i, j] > 0] or list(range(n_l1))
        i = min(cand, key=lambda i: walk.values[i, j])
        walk.chosen = (i, float(alphas[j]), walk.last[i])
    i, a, r = walk.chosen
    r.selection = dict(
        criterion=criterion,
        alphas=np.asarray(alphas),
        l1_ratios=np.asarray(l1_grid),
        values=walk.values,
        n_active=walk.n_active,
        refined_alphas=np.array([x[0] for x in refined]),
        refined_values=np.reshape([x[1] for x in refined], (-1, n_l1)).T,
        refined_n_active=np.reshape([x[2] for x in refined], (-1, n_l1)).T.astype(int),
        alpha=a,
        l1_ratio=float(l1_grid[i]),
        noise_var=p0.noise_var(),
        noise_energy=noise,
        data_energy=m2,
        target=target,
        model_error=eps,
        baseline_noise_var=_baseline_noise_var(p0),
        n_solves=walk.n_solves,
        stopped_early=bool(j < n_a - 1),
    )
    logger.info(
        f"Selected alpha={a:.4g} l1_ratio={l1_grid[i]} ({criterion}, "
        f"{walk.n_solves} solves)"
    )
    return r


class _DiscrepancyWalk:
    """The l1_ratios of a discrepancy criterion walking the alpha grid together."""

    def __init__(self, search, preps, target):
        n_l1, n_a = len(search.l1_grid), len(search.alphas)
        self.search, self.preps, self.target = search, preps, target
        self.values = np.full((n_l1, n_a), np.nan)  # residual energy / target
        self.n_active = np.full((n_l1, n_a), -1)
        self.warm = [None] * n_l1
        self.last = [None] * n_l1
        self.total = n_l1 * (n_a + AUTO_REFINE)  # at most: the walk stops early
        self.n_solves = 0
        self.chosen = None

    def level(self, a):
        """Solve every l1_ratio at alpha ``a``; the hits (sparsest first)."""
        s = self.search
        res = in_threads(
            [
                lambda i=i: s.solve(self.preps[i], a, self.total, self.warm[i])
                for i in range(len(self.preps))
            ],
            s.n_workers,
        )
        self.n_solves += len(self.preps) * s.opts.n_tfmxne_iter
        hits = []
        for i, r in enumerate(res):
            self.last[i] = r
            if r._n_positions():
                self.warm[i] = warm_start(r)
                if r.residual_norm2 <= self.target:
                    hits.append((r._n_positions(), r.residual_norm2, i))
        return res, hits

    def refine(self, j, warm_prev):
        """The answer lies between the grid's alphas[j - 1] (no hit) and
        alphas[j]: walk AUTO_REFINE geometric points between them, from the
        solutions at alphas[j - 1]; the first with a hit is the answer."""
        alphas = self.search.alphas
        self.warm = warm_prev
        ratio = alphas[j] / alphas[j - 1]
        refined = []
        for m in range(1, AUTO_REFINE + 1):
            a = float(alphas[j - 1] * ratio ** (m / (AUTO_REFINE + 1)))
            res, hits = self.level(a)
            refined.append(
                (
                    a,
                    [r.residual_norm2 / self.target for r in res],
                    [r._n_positions() for r in res],
                )
            )
            if hits:
                self.chosen = (min(hits)[2], a, res[min(hits)[2]])
                break
        return refined


def _select_signal_share(search):
    """Each active position must explain a share of the signal: the minimum of
    ``U + SIGNAL_SHARE * k`` along the path.

    ``k`` is the number of active positions, ``E`` the whitened data energy
    beyond the expected noise energy (the signal's energy: forward-model error
    and unexplained activity included) and ``U`` the share of ``E`` that the
    active positions leave unexplained, estimated without bias from the
    least-squares refit on their gain columns (:func:`_signal_share_value`).
    Every position kept must explain at least ``SIGNAL_SHARE * E`` of the
    signal: a threshold that scales with the signal, as the energy a wrong
    forward model leaves for spurious positions does, where a penalty in
    units of the noise alone (BIC, SURE, the discrepancy principle) buys that
    error back with sources as the noise goes down. The noise a refit absorbs
    is taken out of what it explains, so at low SNR a position must also
    stand above the noise, and the choice moves to larger alphas.

    The grid is walked down on ``SIGNAL_L1_RATIO`` (warm-started) and stops
    once ``SIGNAL_PATIENCE`` levels after the best so far, with more positions
    than it, have not improved on it (the best is the answer; the simulation
    study measures the criterion with this stop: no cheap bound certifies
    that an unsolved level cannot do better). With several
    l1_ratios, the others are solved at the chosen alpha and the lowest value
    wins.

    The value depends on the support only, so a level is first solved only as
    far as that needs (:data:`SIGNAL_LOOSE_TOL`): the levels that cannot be
    the answer keep that value; a level whose value comes within
    :data:`SIGNAL_POLISH_MARGIN` positions' worth of the best is solved to tol
    from there (not again when a level above with the same loose support kept
    it at tol: the same value, and a tie goes to the larger alpha), and the
    best is taken among those exact values, so the answer is certified at tol
    like any solve. ``selection['exact']`` marks them.
    """
    l1_grid, alphas = search.l1_grid, search.alphas
    l1_ref = SIGNAL_L1_RATIO if SIGNAL_L1_RATIO in l1_grid else l1_grid[0]
    i_ref = list(l1_grid).index(l1_ref)
    p = search.problem(l1_ref)
    noise = p.noise_energy()
    m2 = float(np.sum(p.M**2))
    energy = m2 - noise
    if energy <= 1e-3 * m2:
        logger.info(
            f"signal-share: the data energy ({m2:.4g}) is at most the "
            f"expected noise energy ({noise:.4g}); using 1e-3 of it"
        )
        energy = 1e-3 * m2
    walk = _ShareWalk(search, noise, energy)
    walk.alphas_of(p, i_ref)
    j, (v, r) = walk.best_level, walk.best
    i = i_ref
    others = [m for m in range(len(l1_grid)) if m != i_ref]
    if others and np.isfinite(v):
        i, r = walk.other_l1_ratios(others, j, r, i_ref)
    r.selection = dict(
        criterion="signal-share",
        alphas=np.asarray(alphas),
        l1_ratios=np.asarray(l1_grid),
        values=walk.values,
        n_active=walk.n_active,
        exact=walk.exact,
        loose_values=walk.loose_values,
        loose_n_active=walk.loose_n_active,
        loose_tol=SIGNAL_LOOSE_TOL,
        polish_margin=SIGNAL_POLISH_MARGIN,
        alpha=float(alphas[j]),
        l1_ratio=float(l1_grid[i]),
        signal_share=SIGNAL_SHARE,
        patience=SIGNAL_PATIENCE,
        noise_var=p.noise_var(),
        noise_energy=noise,
        data_energy=m2,
        signal_energy=energy,
        baseline_noise_var=_baseline_noise_var(p),
        n_solves=walk.n_solves,
        n_loose=walk.n_loose,
        stopped_early=bool(np.isnan(walk.loose_values[i_ref, -1])),
    )
    logger.info(
        f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} (signal-share, "
        f"{walk.n_solves} solves, {walk.n_loose} of them loose)"
    )
    return r


class _ShareWalk:
    """The 'signal-share' walk: values per (l1_ratio, alpha), which of them are
    exact, the best exact level and its result, the solves."""

    def __init__(self, search, noise, energy):
        n_l1, n_a = len(search.l1_grid), len(search.alphas)
        self.search, self.noise, self.energy = search, noise, energy
        self.values = np.full((n_l1, n_a), np.nan)
        self.n_active = np.full((n_l1, n_a), -1)
        self.loose_values = np.full((n_l1, n_a), np.nan)
        self.loose_n_active = np.full((n_l1, n_a), -1)
        self.exact = np.zeros((n_l1, n_a), bool)
        self.total = 2 * n_a + 2 * (n_l1 - 1)  # at most
        self.n_solves = self.n_loose = 0
        self.best = (np.inf, None)  # (exact value, result)
        self.best_level = 0

    def _value(self, r):
        k = r._n_positions()
        return _signal_share_value(r, self.noise, self.energy, k), k

    def _solve(self, p, a, warm, loose):
        r = self.search.solve(p, a, self.total, warm, loose=loose)
        self.n_solves += self.search.opts.n_tfmxne_iter
        self.n_loose += bool(loose)
        return r

    def _record_loose(self, i, j, v, k):
        self.values[i, j], self.n_active[i, j] = v, k
        self.loose_values[i, j], self.loose_n_active[i, j] = v, k

    def _exact(self, p, i, j, r):
        """Level ``j`` of l1_ratio ``i`` solved to tol from its loose result
        ``r``; it becomes the best if its exact value is the lowest so far."""
        a = self.search.alphas[j]
        r = self._solve(p, a, warm_start(r), loose=False)
        v, k = self._value(r)
        logger.info(f"alpha {a:.3g}: {k} positions, signal-share {v:.4g} (exact)")
        self.values[i, j], self.n_active[i, j], self.exact[i, j] = v, k, True
        if self.best[1] is None or v < self.best[0]:
            self.best, self.best_level = (v, r), j
        return r

    def alphas_of(self, p, i):
        """Walk the alpha grid on the problem ``p`` (l1_ratio ``i``), each level
        loose, until ``SIGNAL_PATIENCE`` levels after the best, with more
        positions, have not improved on it; then the levels within the margin
        of the best loose value are solved to tol, lowest loose value first."""
        fails, warm, loose = 0, None, []
        best_v, best_k = np.inf, 0
        for j, a in enumerate(self.search.alphas):
            r = self._solve(p, a, warm, loose=True)
            warm = warm_start(r) or warm
            v, k = self._value(r)
            logger.info(f"alpha {a:.3g}: {k} positions, signal-share {v:.4g} (loose)")
            self._record_loose(i, j, v, k)
            loose.append(r)
            if j == 0 or v < best_v:
                best_v, best_k, fails = v, k, 0
            elif k > best_k:
                fails += 1
                if fails >= SIGNAL_PATIENCE:
                    break
        settled = set()  # loose supports that solving to tol left unchanged
        for j in np.argsort(self.values[i, : len(loose)], kind="stable"):
            v = self.values[i, j]
            if self.best[1] is not None and not (
                np.isfinite(v) and v < self.best[0] + SIGNAL_POLISH_MARGIN * SIGNAL_SHARE
            ):
                break
            support = _support(loose[j])
            if support in settled:
                # a level above with the same loose support kept it at tol:
                # the same value, and a tie goes to the larger alpha
                continue
            if _support(self._exact(p, i, j, loose[j])) == support:
                settled.add(support)

    def other_l1_ratios(self, others, j, r, i_ref):
        """The other l1_ratios at the chosen alpha, each started from the chosen
        answer (loose, then exact if it may win); the lowest exact value wins."""
        s = self.search
        i_best = i_ref

        def one(m):
            pm = s.problem(s.l1_grid[m])
            return m, pm, self._solve(pm, s.alphas[j], _rescaled_start(r, pm), True)

        outs = in_threads([lambda m=m: one(m) for m in others], s.n_workers)
        for m, _, rm in outs:
            self._record_loose(m, j, *self._value(rm))
        for m, pm, rm in sorted(outs, key=lambda o: self.values[o[0], j]):
            v = self.values[m, j]
            if not (
                np.isfinite(v) and v < self.best[0] + SIGNAL_POLISH_MARGIN * SIGNAL_SHARE
            ):
                break
            if self._exact(pm, m, j, rm) is self.best[1]:
                i_best = m
        return i_best, self.best[1]


def _support(r):
    """The active positions of a result (loose or not), as a hashable set."""
    return frozenset(np.asarray(r._res.positions).tolist())


def _rescaled_start(r, p):
    """The start that the answer ``r`` (of a problem of another l1_ratio, on the
    same forward and data) gives the problem ``p``: its coefficients in the
    units of ``p``'s gain (the gains differ by their alpha_max)."""
    start = warm_start(r)
    if start is None:
        return None
    Z, positions = start
    return Z * (p.alpha_max * 100.0 / r.alpha_max), positions
