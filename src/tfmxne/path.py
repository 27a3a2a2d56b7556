# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Beyond MNE: alpha paths, automatic regularisation, batches, Dask.

All of them prepare the forward operator once (whitening, depth, loose
orientation, weights) and reuse it for every solve.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mne import Epochs
from mne.utils import logger, verbose
from threadpoolctl import threadpool_limits

from . import inverse as _inv
from ._validation import _short, check_int
from .solver import _single_blas_scope

#: Default alpha grid of automatic selection, in percent of alpha_max
#: (geometric, about 12 % apart).
AUTO_ALPHAS = np.geomspace(90.0, 5.0, 23)
#: l1_ratio values tried when ``l1_ratio=None``.
AUTO_L1_RATIOS = (0.01, 0.03, 0.1, 0.3)
#: Criteria of automatic selection; the first is what ``alpha=None`` means.
CRITERIA = ("signal-share", "model-discrepancy", "sure", "discrepancy", "bic")
#: Share of the data energy beyond the noise that each active position must
#: explain under 'signal-share' (chosen on the simulation study of
#: benchmarks/bench_alpha_study.py, never on recordings).
SIGNAL_SHARE = 0.03
#: 'signal-share' walks down the grid until this many levels after its best so
#: far, with more active positions than it, have not improved on it.
SIGNAL_PATIENCE = 3
#: l1_ratio on which 'signal-share' walks the alpha grid; with ``l1_ratio=None``
#: the other ``AUTO_L1_RATIOS`` are then solved at the chosen alpha only.
SIGNAL_L1_RATIO = 0.03
#: Relative forward-model error assumed by 'model-discrepancy' (the best of the
#: simulation study of benchmarks/bench_alpha_study.py, never on recordings).
MODEL_ERROR = 0.7
#: Points solved between the last grid alpha without a hit and the first with
#: one, by the discrepancy criteria (geometric; the answer is the first hit).
AUTO_REFINE = 2
#: Penalty per active position of 'bic', in units of log(n_chan * n_times)
#: (simulation study).
BIC_PENALTY = 300.0
#: Number of default path values (like scikit-learn's lasso_path: from 90 % to 10 %).
PATH_N_ALPHAS = 10

_OPTS = ("loose", "depth", "maxit", "tol", "weights", "weights_min", "pca", "debias",
         "wsize", "tstep", "window", "dgap_freq", "rank", "pick_ori", "n_tfmxne_iter")


def _defaults(options):
    out = dict(loose="auto", depth=0.8, maxit=3000, tol=1e-4, weights=None,
               weights_min=0.0, pca=True, debias=True, wsize=64, tstep=4, window=0.02,
               dgap_freq=10, rank=None, pick_ori=None, n_tfmxne_iter=1)
    bad = set(options) - set(out)
    if bad:
        raise TypeError(f"unexpected option(s) {sorted(bad)}; valid options: {sorted(out)}")
    out.update(options)
    return out


def _progress(total, desc):
    """A tqdm bar on a terminal, a no-op otherwise."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    if tqdm is None or not sys.stderr.isatty() or os.environ.get("TFMXNE_NO_PROGRESS"):
        class _Null:
            def update(self, n=1):
                pass

            def close(self):
                pass
        return _Null()
    return tqdm(total=total, desc=desc, leave=False)


def _validated(evoked, forward, noise_cov, alpha, l1_ratio, o):
    return _inv._check_inputs(evoked, forward, noise_cov, alpha, l1_ratio, **o)


def _n_workers(n_jobs):
    n_jobs = check_int(n_jobs, "n_jobs", -1)
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive integer or -1, got n_jobs=0")
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def _in_threads(tasks, n_workers):
    """Run the callables ``tasks`` in ``n_workers`` threads (results in order).

    The compiled core releases the GIL, so the threads are the parallelism:
    BLAS is pinned to one thread for their duration (and the solver's own
    per-solve pinning is skipped, as it is process-wide).
    """
    n_workers = min(n_workers, len(tasks))
    if n_workers <= 1:
        return [t() for t in tasks]
    with threadpool_limits(1, user_api="blas"), _single_blas_scope():
        with ThreadPoolExecutor(max_workers=n_workers) as ex:
            futs = [ex.submit(t) for t in tasks]
            return [f.result() for f in futs]


def _path_on_prepared(p, alphas, l1_ratio, o, *, wsize, tstep, maxit, tol, dgap_freq,
                      n_iter, return_residual=True, bar=None, dtype=np.float64,
                      n_workers=1):
    """Solve along ``alphas`` (decreasing), warm-starting each from the previous.

    With ``n_workers > 1`` the grid is dealt into that many interleaved chains
    (alphas 0, n, 2n, ... in one, 1, n + 1, ... in the next), each warm-started
    along itself and solved in its own thread.
    """
    if n_workers > 1 and len(alphas) > 1:
        chains = [np.arange(c, len(alphas), n_workers)
                  for c in range(min(n_workers, len(alphas)))]
        kw = dict(wsize=wsize, tstep=tstep, maxit=maxit, tol=tol, dgap_freq=dgap_freq,
                  n_iter=n_iter, return_residual=return_residual, bar=bar, dtype=dtype)
        outs = _in_threads([
            (lambda idx=idx: _path_on_prepared(p, np.asarray(alphas)[idx], l1_ratio, o,
                                               **kw))
            for idx in chains], len(chains))
        results = [None] * len(alphas)
        for idx, rs in zip(chains, outs):
            for i, r in zip(idx, rs):
                results[i] = r
        return results
    results = []
    Z = pos = None
    for a in alphas:
        r = _inv._solve_prepared(
            p, float(a), l1_ratio, maxit, tol, o["debias"], wsize, tstep, dgap_freq,
            o["pick_ori"], n_iter, return_residual, dtype, Z_init=Z,
            init_positions=pos, raise_empty=False)
        results.append(r)
        if r._res is not None and len(r._res.positions):
            Z, pos = r._res.Z, r._res.positions
        if bar is not None:
            bar.update(1)
    return results


@verbose
def tf_mixed_norm_path(evoked, forward, noise_cov, alphas=None, l1_ratio=0.03,
                       n_jobs=1, client=None, verbose=None, **options):
    """TF-MxNE along a decreasing grid of alphas, warm-started.

    Parameters
    ----------
    evoked : Evoked
        The data.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    alphas : array of float | None
        Regularisation values in percent of alpha_max, in (0, 100). They are
        solved in decreasing order; default: ``PATH_N_ALPHAS`` values spaced
        geometrically from 90 to 10 (scikit-learn's ``lasso_path`` convention).
    l1_ratio : float
        Share of the temporal penalty, in [0, 1].
    n_jobs : int
        Threads (-1: all cores). With more than one, the grid is dealt into
        ``n_jobs`` interleaved chains, each warm-started along itself and
        solved in its own thread (BLAS pinned to one thread per chain).
    client : dask.distributed.Client | None
        Run the path on a Dask worker instead of in this process.
    %(verbose)s
    **options
        Any option of :func:`tfmxne.tf_mixed_norm` (loose, depth, maxit, tol,
        weights, weights_min, pca, debias, wsize, tstep, window, dgap_freq, rank,
        pick_ori, n_tfmxne_iter).

    Returns
    -------
    results : list of TFMxNEResult
        One per alpha, in the order of ``alphas`` after sorting decreasingly.
        Where no source survives, a result with ``estimate=None`` and an empty
        ``active_set`` (no exception).
    """
    o = _defaults(options)
    n_workers = _n_workers(n_jobs)
    if alphas is None:
        alphas = np.geomspace(90.0, 10.0, PATH_N_ALPHAS)
    given = alphas
    try:
        alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(
            f"alphas must be a non-empty 1D array of numbers, got {_short(given)}"
        ) from None
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)):
        raise ValueError(f"alphas must be a non-empty 1D array of numbers, got {_short(alphas)}")
    if np.any(alphas <= 0) or np.any(alphas >= 100):
        raise ValueError(f"alphas must be in (0, 100), got alphas={alphas.tolist()}")
    alphas = np.sort(alphas)[::-1]
    if client is not None:
        fut = client.submit(_path_task, evoked, forward, noise_cov, alphas, l1_ratio, o,
                            n_jobs, pure=False)
        return fut.result()
    _, l1_ratio, maxit, tol, n_iter, dgap_freq, wsize, tstep = _validated(
        evoked, forward, noise_cov, float(alphas[0]), l1_ratio, o)
    fp = _inv._prepare_forward_part(evoked.info, forward, noise_cov, o["loose"],
                                    o["depth"], o["weights"], o["weights_min"], o["pca"],
                                    o["rank"])
    p = _inv._prepare_data(fp, evoked, o["window"], l1_ratio, wsize, tstep)
    bar = _progress(len(alphas), "alpha path")
    try:
        return _path_on_prepared(p, alphas, l1_ratio, o, wsize=wsize, tstep=tstep,
                                 maxit=maxit, tol=tol, dgap_freq=dgap_freq, n_iter=n_iter,
                                 bar=bar, n_workers=n_workers)
    finally:
        bar.close()


def _path_task(evoked, forward, noise_cov, alphas, l1_ratio, o, n_jobs=1):
    return tf_mixed_norm_path(evoked, forward, noise_cov, alphas=alphas,
                              l1_ratio=l1_ratio, n_jobs=n_jobs, verbose=False, **o)


# --------------------------------------------------------------------------
# automatic regularisation
# --------------------------------------------------------------------------
def _noise_var(p):
    """Variance of the whitened noise of an evoked average: 1 / nave.

    MNE whitens with the single-trial covariance; an average of ``nave`` trials
    has noise variance ``1 / nave`` per whitened channel and sample.
    """
    return 1.0 / max(float(p.nave), 1.0)


def _noise_energy(p):
    """Expected energy of the whitened noise in ``p.M``: sigma^2 n_chan sum(taper^2)."""
    taper = getattr(p, "taper", None)
    n_eff = p.M.shape[1] if taper is None else float(np.sum(taper ** 2))
    return _noise_var(p) * p.M.shape[0] * n_eff


def _baseline_noise_var(p):
    """Whitened noise variance measured on the pre-stimulus baseline (or None)."""
    times = p.evoked.times
    base = times < 0
    if base.sum() < 10:
        return None
    return float(np.mean(p.M[:, base] ** 2))


def _check_criterion(criterion):
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(
            "alpha must be a number in (0, 100), None or one of "
            f"{', '.join(repr(c) for c in CRITERIA)}, got alpha={criterion!r}")
    return criterion


def _select(evoked, forward, noise_cov, criterion, l1_ratio, o, alphas=None,
            random_state=0, return_residual=True, n_jobs=1):
    """Choose (alpha, l1_ratio) by one of ``CRITERIA`` (see :func:`tfmxne.solve`).

    With ``n_jobs > 1``, the paths of the l1_ratio grid ('model-discrepancy',
    'discrepancy') or SURE's two paths (data and perturbed data) run in
    parallel threads.
    """
    n_workers = _n_workers(n_jobs)
    _check_criterion(criterion)
    l1_grid = AUTO_L1_RATIOS if l1_ratio is None else (l1_ratio,)
    _, _, maxit, tol, n_iter, dgap_freq, wsize, tstep = _validated(
        evoked, forward, noise_cov, 50.0, l1_grid[0], o)
    alphas = AUTO_ALPHAS if alphas is None else np.sort(np.asarray(alphas, float))[::-1]
    fp = _inv._prepare_forward_part(evoked.info, forward, noise_cov, o["loose"],
                                    o["depth"], o["weights"], o["weights_min"], o["pca"],
                                    o["rank"])
    kw = dict(wsize=wsize, tstep=tstep, maxit=maxit, tol=tol, dgap_freq=dgap_freq,
              n_iter=n_iter, return_residual=return_residual)
    if criterion in ("model-discrepancy", "discrepancy"):
        return _select_discrepancy(evoked, fp, criterion, l1_grid, alphas, o, kw,
                                   n_workers)
    if criterion == "signal-share":
        return _select_signal_share(evoked, fp, l1_grid, alphas, o, kw, n_workers)
    rng = np.random.default_rng(random_state)
    values = np.full((len(l1_grid), len(alphas)), np.inf)
    n_active = np.zeros((len(l1_grid), len(alphas)), int)
    paths = []
    bar = _progress(len(l1_grid) * len(alphas) * (2 if criterion == "sure" else 1),
                    f"alpha selection ({criterion})")
    try:
        for i, l1 in enumerate(l1_grid):
            p = _inv._prepare_data(fp, evoked, o["window"], l1, wsize, tstep)
            sigma2 = noise_var = _noise_var(p)
            base_var = _baseline_noise_var(p)
            n_chan, n_times = p.M.shape
            if criterion == "sure":
                eps = 2.0 * np.sqrt(sigma2) / n_chan ** 0.3
                delta = rng.standard_normal(p.M.shape)
                pe = _inv._Prepared()
                pe.__dict__.update(p.__dict__)
                pe.M = p.M + eps * delta  # (a new M: alpha_max's screen is not reused)
                res, res_e = _in_threads([
                    lambda: _path_on_prepared(p, alphas, l1, o, bar=bar, **kw),
                    lambda: _path_on_prepared(pe, alphas, l1, o, bar=bar,
                                              **dict(kw, return_residual=False))],
                    n_workers)
            else:
                res = _path_on_prepared(p, alphas, l1, o, bar=bar, **kw)
            paths.append(res)
            n_active[i] = [_n_positions(p, r) for r in res]
            if criterion == "sure":
                for j, (r, re) in enumerate(zip(res, res_e)):
                    fit = _fit(p, r)
                    fit_e = _fit(pe, re)
                    dof = float(np.sum((fit_e - fit) * delta)) / eps
                    values[i, j] = (r.residual_norm2 - n_chan * n_times * sigma2
                                    + 2.0 * sigma2 * dof)
            else:  # bic
                N = float(n_chan * n_times)
                for j, r in enumerate(res):
                    if n_active[i, j]:
                        values[i, j] = (N * np.log(r.residual_norm2 / N)
                                        + BIC_PENALTY * n_active[i, j] * np.log(N))
            logger.info(f"l1_ratio {l1}: {criterion} "
                        + " ".join(f"{a:.3g}:{v:.4g}" for a, v in zip(alphas, values[i])))
    finally:
        bar.close()
    i, j = np.unravel_index(np.argmin(values), values.shape)
    chosen = paths[i][j]
    chosen.selection = dict(criterion=criterion, alphas=np.asarray(alphas),
                            l1_ratios=np.asarray(l1_grid), values=values,
                            n_active=n_active, alpha=float(alphas[j]),
                            l1_ratio=float(l1_grid[i]), noise_var=noise_var,
                            baseline_noise_var=base_var,
                            n_solves=len(l1_grid) * len(alphas)
                            * (2 if criterion == "sure" else 1) * n_iter,
                            stopped_early=False)
    logger.info(f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} ({criterion})")
    return chosen


def _n_positions(p, r):
    """Active source positions of a path result."""
    return int(len(r._res.positions)) if r._res is not None else 0


def _select_discrepancy(evoked, fp, criterion, l1_grid, alphas, o, kw, n_workers):
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
    wsize, tstep = kw["wsize"], kw["tstep"]
    preps = [_inv._prepare_data(fp, evoked, o["window"], l1, wsize, tstep)
             for l1 in l1_grid]
    p0 = preps[0]
    noise = _noise_energy(p0)
    m2 = float(np.sum(p0.M ** 2))
    target = noise + eps ** 2 * max(m2 - noise, 0.0)
    n_l1, n_a = len(l1_grid), len(alphas)
    values = np.full((n_l1, n_a), np.nan)  # residual energy / target
    n_active = np.full((n_l1, n_a), -1)
    warm = [(None, None)] * n_l1
    last = [None] * n_l1
    kw = dict(kw)
    bar = _progress(n_l1 * n_a, f"alpha selection ({criterion})")
    chosen = None
    n_solves = 0

    def one(i, a):
        Z, pos = warm[i]
        r = _inv._solve_prepared(
            preps[i], float(a), l1_grid[i], kw["maxit"], kw["tol"], o["debias"], wsize,
            tstep, kw["dgap_freq"], o["pick_ori"], kw["n_iter"], kw["return_residual"],
            np.float64, Z_init=Z, init_positions=pos, raise_empty=False)
        bar.update(1)
        return r

    def level(a):
        """Solve every l1_ratio at alpha ``a``; the hits (sparsest first)."""
        nonlocal n_solves
        res = _in_threads([lambda i=i: one(i, a) for i in range(n_l1)], n_workers)
        n_solves += n_l1 * kw["n_iter"]
        hits = []
        for i, r in enumerate(res):
            last[i] = r
            if _n_positions(preps[i], r):
                warm[i] = (r._res.Z, r._res.positions)
                if r.residual_norm2 <= target:
                    hits.append((_n_positions(preps[i], r), r.residual_norm2, i))
        return res, hits

    refined = []
    try:
        for j, a in enumerate(alphas):
            warm_prev = list(warm)
            res, hits = level(a)
            for i, r in enumerate(res):
                n_active[i, j] = _n_positions(preps[i], r)
                values[i, j] = r.residual_norm2 / target
            logger.info(f"alpha {a:.3g}: residual / target "
                        + " ".join(f"{v:.3g}" for v in values[:, j]))
            if hits:
                i = min(hits)[2]
                chosen = (i, float(a), res[i])
                break
        if chosen is not None and j > 0 and AUTO_REFINE > 0:
            # the answer lies between the grid's alphas[j - 1] (no hit) and
            # alphas[j]: walk AUTO_REFINE geometric points between them, from
            # the solutions at alphas[j - 1]; the first with a hit is the answer
            warm = warm_prev
            ratio = alphas[j] / alphas[j - 1]
            for m in range(1, AUTO_REFINE + 1):
                a = float(alphas[j - 1] * ratio ** (m / (AUTO_REFINE + 1)))
                res, hits = level(a)
                refined.append((a, [r.residual_norm2 / target for r in res],
                                [_n_positions(preps[i], r) for i, r in enumerate(res)]))
                if hits:
                    i = min(hits)[2]
                    chosen = (i, a, res[i])
                    break
    finally:
        bar.close()
    if chosen is None:
        j = n_a - 1
        cand = [i for i in range(n_l1) if n_active[i, j] > 0] or list(range(n_l1))
        i = min(cand, key=lambda i: values[i, j])
        chosen = (i, float(alphas[j]), last[i])
    i, a, r = chosen
    r.selection = dict(criterion=criterion, alphas=np.asarray(alphas),
                       l1_ratios=np.asarray(l1_grid), values=values, n_active=n_active,
                       refined_alphas=np.array([x[0] for x in refined]),
                       refined_values=np.reshape([x[1] for x in refined],
                                                 (-1, n_l1)).T,
                       refined_n_active=np.reshape([x[2] for x in refined],
                                                   (-1, n_l1)).T.astype(int),
                       alpha=a, l1_ratio=float(l1_grid[i]),
                       noise_var=_noise_var(p0), noise_energy=noise, data_energy=m2,
                       target=target, model_error=eps,
                       baseline_noise_var=_baseline_noise_var(p0), n_solves=n_solves,
                       stopped_early=bool(j < n_a - 1))
    logger.info(f"Selected alpha={a:.4g} l1_ratio={l1_grid[i]} ({criterion}, "
                f"{n_solves} solves)")
    return r


def _signal_share_value(r, energy, n_pos):
    """RSS / E + SIGNAL_SHARE k of one estimate (inf when empty)."""
    if not n_pos:
        return np.inf
    return r.residual_norm2 / energy + SIGNAL_SHARE * n_pos


def _select_signal_share(evoked, fp, l1_grid, alphas, o, kw, n_workers):
    """Each active position must explain a share of the signal: the minimum of
    ``RSS / E + SIGNAL_SHARE * k`` on the debiased fits of the path.

    ``RSS`` is the whitened residual energy, ``k`` the number of active
    positions and ``E`` the data energy beyond the expected noise energy
    (the signal's energy: forward-model error and unexplained activity
    included). Every position kept must lower the residual by at least
    ``SIGNAL_SHARE * E``: a threshold that scales with the signal, as the
    energy a wrong forward model leaves for spurious positions does, where a
    penalty in units of the noise (BIC, SURE, the discrepancy principle)
    buys that error back with sources as the noise goes down.

    The grid is walked down on ``SIGNAL_L1_RATIO`` (warm-started) and stops
    once ``SIGNAL_PATIENCE`` levels after the best so far, with more positions
    than it, have not improved on it (the best is the answer; the simulation
    study measures the criterion with this stop: no cheap bound certifies
    that an unsolved level cannot do better). With several
    l1_ratios, the others are solved at the chosen alpha and the lowest value
    wins.
    """
    wsize, tstep = kw["wsize"], kw["tstep"]
    l1_ref = SIGNAL_L1_RATIO if SIGNAL_L1_RATIO in l1_grid else l1_grid[0]
    i_ref = list(l1_grid).index(l1_ref)
    p = _inv._prepare_data(fp, evoked, o["window"], l1_ref, wsize, tstep)
    noise = _noise_energy(p)
    m2 = float(np.sum(p.M ** 2))
    energy = m2 - noise
    if energy <= 1e-3 * m2:
        logger.info(f"signal-share: the data energy ({m2:.4g}) is at most the "
                    f"expected noise energy ({noise:.4g}); using 1e-3 of it")
        energy = 1e-3 * m2
    n_l1, n_a = len(l1_grid), len(alphas)
    values = np.full((n_l1, n_a), np.nan)
    n_active = np.full((n_l1, n_a), -1)
    bar = _progress(n_a + n_l1 - 1, "alpha selection (signal-share)")
    n_solves = 0
    best = None  # (value, j, result, n_pos)
    fails = 0
    Z = pos = None
    try:
        for j, a in enumerate(alphas):
            r = _inv._solve_prepared(
                p, float(a), l1_ref, kw["maxit"], kw["tol"], o["debias"], wsize, tstep,
                kw["dgap_freq"], o["pick_ori"], kw["n_iter"], kw["return_residual"],
                np.float64, Z_init=Z, init_positions=pos, raise_empty=False)
            bar.update(1)
            n_solves += kw["n_iter"]
            k = _n_positions(p, r)
            if k:
                Z, pos = r._res.Z, r._res.positions
            v = _signal_share_value(r, energy, k)
            values[i_ref, j], n_active[i_ref, j] = v, k
            logger.info(f"alpha {a:.3g}: {k} positions, signal-share {v:.4g}")
            if best is None or v < best[0]:
                best, fails = (v, j, r, k), 0
            elif k > best[3]:
                fails += 1
                if fails >= SIGNAL_PATIENCE:
                    break
        v, j, r, k = best
        i = i_ref
        others = [m for m in range(n_l1) if m != i_ref]
        if others and np.isfinite(v):
            a = float(alphas[j])

            def one(m):
                pm = _inv._prepare_data(fp, evoked, o["window"], l1_grid[m], wsize,
                                        tstep)
                rm = _inv._solve_prepared(
                    pm, a, l1_grid[m], kw["maxit"], kw["tol"], o["debias"], wsize,
                    tstep, kw["dgap_freq"], o["pick_ori"], kw["n_iter"],
                    kw["return_residual"], np.float64, raise_empty=False)
                bar.update(1)
                return pm, rm

            outs = _in_threads([lambda m=m: one(m) for m in others], n_workers)
            n_solves += len(others) * kw["n_iter"]
            for m, (pm, rm) in zip(others, outs):
                km = _n_positions(pm, rm)
                values[m, j] = _signal_share_value(rm, energy, km)
                n_active[m, j] = km
                if values[m, j] < v:
                    v, i, r = values[m, j], m, rm
    finally:
        bar.close()
    r.selection = dict(criterion="signal-share", alphas=np.asarray(alphas),
                       l1_ratios=np.asarray(l1_grid), values=values, n_active=n_active,
                       alpha=float(alphas[j]), l1_ratio=float(l1_grid[i]),
                       signal_share=SIGNAL_SHARE, patience=SIGNAL_PATIENCE,
                       noise_var=_noise_var(p), noise_energy=noise, data_energy=m2,
                       signal_energy=energy, baseline_noise_var=_baseline_noise_var(p),
                       n_solves=n_solves,
                       stopped_early=bool(np.isnan(values[i_ref, -1])))
    logger.info(f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} (signal-share, "
                f"{n_solves} solves)")
    return r


def _fit(p, r):
    if r._gain_active.shape[1] == 0:
        return np.zeros_like(p.M)
    # whitened fit of the (weighted, scaled) problem
    return r._gain_active @ r.X


# --------------------------------------------------------------------------
# batches and Dask
# --------------------------------------------------------------------------
def _check_batch(evokeds):
    if len(evokeds) == 0:
        raise ValueError("evoked must be an Evoked or a non-empty list of Evoked, got []")
    ref = evokeds[0]
    for k, ev in enumerate(evokeds):
        if not hasattr(ev, "info") or not hasattr(ev, "data"):
            raise TypeError(f"evoked[{k}] must be an mne.Evoked, got {_short(ev)}")
        if ev.ch_names != ref.ch_names or ev.info["sfreq"] != ref.info["sfreq"] or \
                set(ev.info["bads"]) != set(ref.info["bads"]):
            raise ValueError(
                f"evoked[{k}] does not have the channels, bads and sampling rate of "
                "evoked[0]: a batch shares one prepared forward operator")


def _solve_batch(evokeds, forward, noise_cov, alpha, l1_ratio, o, n_jobs, client,
                 return_residual, dtype):
    _check_batch(evokeds)
    n_workers = _n_workers(n_jobs)
    if client is not None:
        return _dask_batch(client, evokeds, forward, noise_cov, alpha, l1_ratio, o,
                           return_residual, dtype)
    for ev in evokeds:
        _validated(ev, forward, noise_cov, alpha, l1_ratio, o)
    _, l1_ratio, maxit, tol, n_iter, dgap_freq, wsize, tstep = _validated(
        evokeds[0], forward, noise_cov, alpha, l1_ratio, o)
    alpha = float(alpha)
    fp = _inv._prepare_forward_part(evokeds[0].info, forward, noise_cov, o["loose"],
                                    o["depth"], o["weights"], o["weights_min"], o["pca"],
                                    o["rank"])
    bar = _progress(len(evokeds), "batch")

    def one(ev):
        p = _inv._prepare_data(fp, ev, o["window"], l1_ratio, wsize, tstep)
        r = _inv._solve_prepared(p, alpha, l1_ratio, maxit, tol, o["debias"], wsize,
                                 tstep, dgap_freq, o["pick_ori"], n_iter, return_residual,
                                 dtype, raise_empty=False)
        bar.update(1)
        return r

    try:
        return _in_threads([lambda ev=ev: one(ev) for ev in evokeds], n_workers)
    finally:
        bar.close()


_WORKER_CACHE = {}


def _dask_task(evoked, forward, noise_cov, alpha, l1_ratio, o, return_residual, dtype,
               key):
    """Runs on a Dask worker: prepares the forward once per worker (cached)."""
    _, l1r, maxit, tol, n_iter, dgap_freq, wsize, tstep = _validated(
        evoked, forward, noise_cov, alpha, l1_ratio, o)
    fp = _WORKER_CACHE.get(key)
    if fp is None:
        fp = _inv._prepare_forward_part(evoked.info, forward, noise_cov, o["loose"],
                                        o["depth"], o["weights"], o["weights_min"],
                                        o["pca"], o["rank"])
        _WORKER_CACHE.clear()
        _WORKER_CACHE[key] = fp
    p = _inv._prepare_data(fp, evoked, o["window"], l1r, wsize, tstep)
    r = _inv._solve_prepared(p, float(alpha), l1r, maxit, tol, o["debias"], wsize, tstep,
                             dgap_freq, o["pick_ori"], n_iter, return_residual, dtype,
                             raise_empty=False)
    r._forward = None  # keep the payload small; dipoles need the forward locally
    return r


def _dask_batch(client, evokeds, forward, noise_cov, alpha, l1_ratio, o,
                return_residual, dtype):
    import uuid

    key = uuid.uuid4().hex
    fwd_f = client.scatter(forward, broadcast=True)
    cov_f = client.scatter(noise_cov, broadcast=True)
    futs = [client.submit(_dask_task, ev, fwd_f, cov_f, alpha, l1_ratio, o,
                          return_residual, dtype, key, pure=False) for ev in evokeds]
    out = client.gather(futs)
    for r in out:
        r._forward = None
    return out


@verbose
def solve_epochs(epochs, forward, noise_cov, alpha=None, l1_ratio=None, n_jobs=1,
                 client=None, return_residual=True, dtype=np.float64, verbose=None,
                 **options):
    """TF-MxNE on every epoch of an :class:`mne.Epochs` (a batch).

    Parameters
    ----------
    epochs : Epochs
        The epochs; each is solved as an evoked response with ``nave=1``.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    alpha, l1_ratio : float
        As in :func:`tfmxne.tf_mixed_norm` (numbers; automatic selection per
        epoch is available through :func:`tfmxne.solve` on single evokeds).
    n_jobs : int
        Threads (the compiled core releases the GIL); -1 for all cores.
    client : dask.distributed.Client | None
        Spread the epochs over the workers of a Dask cluster instead.
    return_residual : bool
        Compute the residuals.
    dtype : numpy dtype
        float64 or float32 iterations.
    %(verbose)s
    **options
        Other options of :func:`tfmxne.tf_mixed_norm`.

    Returns
    -------
    results : list of TFMxNEResult
        One per epoch (``estimate=None`` where no source survives).
    """
    if not isinstance(epochs, Epochs) and not hasattr(epochs, "iter_evoked"):
        raise TypeError(f"epochs must be an mne.Epochs, got {_short(epochs)}")
    evokeds = list(epochs.iter_evoked(copy=True))
    return _inv.solve(evokeds, forward, noise_cov, alpha=alpha, l1_ratio=l1_ratio,
                      n_jobs=n_jobs, client=client, return_residual=return_residual,
                      dtype=dtype, **options)


__all__ = ["tf_mixed_norm_path", "solve_epochs"]
