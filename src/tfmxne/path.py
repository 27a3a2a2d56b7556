# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Beyond MNE: alpha paths, automatic regularisation, batches, Dask.

All of them prepare the forward operator once (whitening, depth, loose
orientation, weights) and reuse it for every solve. Built on the prepared
problem of :mod:`tfmxne._pipeline`; :mod:`tfmxne.inverse` is built on both.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mne import Epochs
from mne.utils import logger, verbose
from threadpoolctl import threadpool_limits

from . import _progress
from ._options import check_options, with_defaults
from ._parallel import batch_scope, call_scope
from ._pipeline import (
    _check_inputs,
    _check_solve_options,
    _compute_residual,
    _prepare_data,
    _prepare_forward_part,
    _Prepared,
    _solve_one,
    _solve_prepared,
    _window_evoked,
)
from ._validation import _short, check_int

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


def _solve_params(o):
    return o.maxit, o.tol, o.n_tfmxne_iter, o.dgap_freq, o.wsize, o.tstep


def _forward_part(info, forward, noise_cov, o):
    return _prepare_forward_part(
        info,
        forward,
        noise_cov,
        o.loose,
        o.depth,
        o.weights,
        o.weights_min,
        o.pca,
        o.rank,
    )


def _solved(emit, stage, r, total):
    """Report one finished solve of a path, a selection or a batch."""
    if emit is not None:
        emit(
            stage,
            total=total,
            gap=float(r.gap),
            n_active=_n_positions(r),
            alpha=float(r.alpha),
            l1_ratio=float(r.l1_ratio),
        )


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
    with threadpool_limits(1, user_api="blas"), batch_scope():
        with ThreadPoolExecutor(max_workers=n_workers) as ex:
            futs = [ex.submit(t) for t in tasks]
            try:
                return [f.result() for f in futs]
            except BaseException:
                # (an error, e.g. from a progress callback: start nothing more)
                for f in futs:
                    f.cancel()
                raise


def _path_on_prepared(
    p,
    alphas,
    l1_ratio,
    o,
    *,
    wsize,
    tstep,
    maxit,
    tol,
    dgap_freq,
    n_iter,
    return_residual=True,
    emit=None,
    total=None,
    dtype=np.float64,
    n_workers=1,
):
    """Solve along ``alphas`` (decreasing), warm-starting each from the previous.

    With ``n_workers > 1`` the grid is dealt into that many interleaved chains
    (alphas 0, n, 2n, ... in one, 1, n + 1, ... in the next), each warm-started
    along itself and solved in its own thread. ``emit`` receives an 'alpha'
    event (out of ``total``) after each solve.
    """
    if n_workers > 1 and len(alphas) > 1:
        chains = [
            np.arange(c, len(alphas), n_workers)
            for c in range(min(n_workers, len(alphas)))
        ]
        kw = dict(
            wsize=wsize,
            tstep=tstep,
            maxit=maxit,
            tol=tol,
            dgap_freq=dgap_freq,
            n_iter=n_iter,
            return_residual=return_residual,
            emit=emit,
            total=total,
            dtype=dtype,
        )
        outs = _in_threads(
            [
                (
                    lambda idx=idx: _path_on_prepared(
                        p, np.asarray(alphas)[idx], l1_ratio, o, **kw
                    )
                )
                for idx in chains
            ],
            len(chains),
        )
        results = [None] * len(alphas)
        for idx, rs in zip(chains, outs):
            for i, r in zip(idx, rs):
                results[i] = r
        return results
    results = []
    Z = pos = None
    for a in alphas:
        r = _solve_prepared(
            p,
            float(a),
            l1_ratio,
            maxit,
            tol,
            o.debias,
            wsize,
            tstep,
            dgap_freq,
            o.pick_ori,
            n_iter,
            return_residual,
            dtype,
            Z_init=Z,
            init_positions=pos,
            raise_empty=False,
        )
        results.append(r)
        if r._res is not None and len(r._res.positions):
            Z, pos = r._res.Z, r._res.positions
        _solved(emit, "alpha", r, total)
    return results


@verbose
def tf_mixed_norm_path(
    evoked,
    forward,
    noise_cov,
    alphas=None,
    l1_ratio=0.03,
    n_jobs=1,
    client=None,
    progress="auto",
    verbose=None,
    **options,
):
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
    progress : callable | 'auto' | None
        Called with a :class:`tfmxne.ProgressEvent` of stage ``'alpha'`` after
        each alpha is solved (``total`` = number of alphas; with a Dask
        client, when the results arrive). ``'auto'`` (default): a tqdm bar on
        stderr when it is a terminal and MNE's log level is INFO or lower
        (``verbose=False`` hides it; so does the environment variable
        ``TFMXNE_NO_PROGRESS``); ``None``: nothing. The calls are serialised
        (one at a time, steps increasing) even when the chains run in
        threads. An exception raised by the callback is not caught: it stops
        the path and propagates (with ``n_jobs > 1``, once the solves under
        way have finished).
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
    options = with_defaults(options)
    o = check_options(options)
    n_workers = _n_workers(n_jobs)
    _progress.check_progress(progress)
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
        raise ValueError(
            f"alphas must be a non-empty 1D array of numbers, got {_short(alphas)}"
        )
    if np.any(alphas <= 0) or np.any(alphas >= 100):
        raise ValueError(f"alphas must be in (0, 100), got alphas={alphas.tolist()}")
    alphas = np.sort(alphas)[::-1]
    with _progress.session(progress, "alpha", "alpha path") as emit:
        if client is not None:
            fut = client.submit(
                _path_task,
                evoked,
                forward,
                noise_cov,
                alphas,
                l1_ratio,
                options,
                n_jobs,
                pure=False,
            )
            results = fut.result()
            for r in results:
                _solved(emit, "alpha", r, len(alphas))
            return results
        _, l1_ratio = _check_inputs(
            evoked, forward, noise_cov, float(alphas[0]), l1_ratio, o
        )
        maxit, tol, n_iter, dgap_freq, wsize, tstep = _solve_params(o)
        with call_scope():
            fp = _forward_part(evoked.info, forward, noise_cov, o)
            p = _prepare_data(fp, evoked, o.window, l1_ratio, wsize, tstep)
            return _path_on_prepared(
                p,
                alphas,
                l1_ratio,
                o,
                wsize=wsize,
                tstep=tstep,
                maxit=maxit,
                tol=tol,
                dgap_freq=dgap_freq,
                n_iter=n_iter,
                emit=emit,
                total=len(alphas),
                n_workers=n_workers,
            )


def _path_task(evoked, forward, noise_cov, alphas, l1_ratio, options, n_jobs=1):
    return tf_mixed_norm_path(
        evoked,
        forward,
        noise_cov,
        alphas=alphas,
        l1_ratio=l1_ratio,
        n_jobs=n_jobs,
        progress=None,
        verbose=False,
        **options,
    )


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
    n_eff = p.M.shape[1] if taper is None else float(np.sum(taper**2))
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
            f"{', '.join(repr(c) for c in CRITERIA)}, got alpha={criterion!r}"
        )
    return criterion


def _select(
    evoked,
    forward,
    noise_cov,
    criterion,
    l1_ratio,
    o,
    alphas=None,
    random_state=0,
    return_residual=True,
    n_jobs=1,
    emit=None,
):
    """Choose (alpha, l1_ratio) by one of ``CRITERIA`` (see :func:`tfmxne.solve`).

    With ``n_jobs > 1``, the paths of the l1_ratio grid ('model-discrepancy',
    'discrepancy') or SURE's two paths (data and perturbed data) run in
    parallel threads. ``emit`` receives an 'alpha' event after each solve.
    """
    n_workers = _n_workers(n_jobs)
    _check_criterion(criterion)
    l1_grid = AUTO_L1_RATIOS if l1_ratio is None else (l1_ratio,)
    _check_inputs(evoked, forward, noise_cov, 50.0, l1_grid[0], o)
    maxit, tol, n_iter, dgap_freq, wsize, tstep = _solve_params(o)
    alphas = AUTO_ALPHAS if alphas is None else np.sort(np.asarray(alphas, float))[::-1]
    fp = _forward_part(evoked.info, forward, noise_cov, o)
    # the residual evoked of the answer only (attached below): building one per
    # level costs about 10 ms of MNE channel picking, as much as a small solve
    kw = dict(
        wsize=wsize,
        tstep=tstep,
        maxit=maxit,
        tol=tol,
        dgap_freq=dgap_freq,
        n_iter=n_iter,
        return_residual=False,
    )
    if criterion in ("model-discrepancy", "discrepancy"):
        r = _select_discrepancy(
            evoked, fp, criterion, l1_grid, alphas, o, kw, n_workers, emit
        )
    elif criterion == "signal-share":
        r = _select_signal_share(evoked, fp, l1_grid, alphas, o, kw, n_workers, emit)
    else:
        r = _select_on_grid(
            evoked, fp, criterion, l1_grid, alphas, o, kw, n_workers, emit, random_state
        )
    if return_residual:
        r.residual = _compute_residual(
            fp.forward,
            _window_evoked(evoked, o.window),
            r.X,
            r.active_set,
            fp.gain_info,
        )
    return r


def _select_on_grid(
    evoked, fp, criterion, l1_grid, alphas, o, kw, n_workers, emit, random_state
):
    """'sure' or 'bic': every (l1_ratio, alpha) of the grid solved, the minimum."""
    wsize, tstep, n_iter = kw["wsize"], kw["tstep"], kw["n_iter"]
    rng = np.random.default_rng(random_state)
    values = np.full((len(l1_grid), len(alphas)), np.inf)
    n_active = np.zeros((len(l1_grid), len(alphas)), int)
    paths = []
    kw.update(
        emit=emit, total=len(l1_grid) * len(alphas) * (2 if criterion == "sure" else 1)
    )
    for i, l1 in enumerate(l1_grid):
        p = _prepare_data(fp, evoked, o.window, l1, wsize, tstep)
        sigma2 = noise_var = _noise_var(p)
        base_var = _baseline_noise_var(p)
        n_chan, n_times = p.M.shape
        if criterion == "sure":
            eps = 2.0 * np.sqrt(sigma2) / n_chan**0.3
            delta = rng.standard_normal(p.M.shape)
            pe = _Prepared()
            pe.__dict__.update(p.__dict__)
            pe.M = p.M + eps * delta  # (a new M: alpha_max's screen is not reused)
            res, res_e = _in_threads(
                [
                    lambda: _path_on_prepared(p, alphas, l1, o, **kw),
                    lambda: _path_on_prepared(
                        pe, alphas, l1, o, **dict(kw, return_residual=False)
                    ),
                ],
                n_workers,
            )
        else:
            res = _path_on_prepared(p, alphas, l1, o, **kw)
        paths.append(res)
        n_active[i] = [_n_positions(r) for r in res]
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
        n_solves=len(l1_grid) * len(alphas) * (2 if criterion == "sure" else 1) * n_iter,
        stopped_early=False,
    )
    logger.info(f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} ({criterion})")
    return chosen


def _n_positions(r):
    """Active source positions of a path result."""
    return int(len(r._res.positions)) if r._res is not None else 0


def _select_discrepancy(
    evoked, fp, criterion, l1_grid, alphas, o, kw, n_workers, emit=None
):
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
    preps = [_prepare_data(fp, evoked, o.window, l1, wsize, tstep) for l1 in l1_grid]
    p0 = preps[0]
    noise = _noise_energy(p0)
    m2 = float(np.sum(p0.M**2))
    target = noise + eps**2 * max(m2 - noise, 0.0)
    n_l1, n_a = len(l1_grid), len(alphas)
    values = np.full((n_l1, n_a), np.nan)  # residual energy / target
    n_active = np.full((n_l1, n_a), -1)
    warm = [(None, None)] * n_l1
    last = [None] * n_l1
    kw = dict(kw)
    total = n_l1 * (n_a + AUTO_REFINE)  # at most: the walk stops at its answer
    chosen = None
    n_solves = 0

    def one(i, a):
        Z, pos = warm[i]
        r = _solve_prepared(
            preps[i],
            float(a),
            l1_grid[i],
            kw["maxit"],
            kw["tol"],
            o.debias,
            wsize,
            tstep,
            kw["dgap_freq"],
            o.pick_ori,
            kw["n_iter"],
            kw["return_residual"],
            np.float64,
            Z_init=Z,
            init_positions=pos,
            raise_empty=False,
        )
        _solved(emit, "alpha", r, total)
        return r

    def level(a):
        """Solve every l1_ratio at alpha ``a``; the hits (sparsest first)."""
        nonlocal n_solves
        res = _in_threads([lambda i=i: one(i, a) for i in range(n_l1)], n_workers)
        n_solves += n_l1 * kw["n_iter"]
        hits = []
        for i, r in enumerate(res):
            last[i] = r
            if _n_positions(r):
                warm[i] = (r._res.Z, r._res.positions)
                if r.residual_norm2 <= target:
                    hits.append((_n_positions(r), r.residual_norm2, i))
        return res, hits

    refined = []
    for j, a in enumerate(alphas):
        warm_prev = list(warm)
        res, hits = level(a)
        for i, r in enumerate(res):
            n_active[i, j] = _n_positions(r)
            values[i, j] = r.residual_norm2 / target
        logger.info(
            f"alpha {a:.3g}: residual / target "
            + " ".join(f"{v:.3g}" for v in values[:, j])
        )
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
            refined.append(
                (
                    a,
                    [r.residual_norm2 / target for r in res],
                    [_n_positions(r) for r in res],
                )
            )
            if hits:
                i = min(hits)[2]
                chosen = (i, a, res[i])
                break
    if chosen is None:
        j = n_a - 1
        cand = [i for i in range(n_l1) if n_active[i, j] > 0] or list(range(n_l1))
        i = min(cand, key=lambda i: values[i, j])
        chosen = (i, float(alphas[j]), last[i])
    i, a, r = chosen
    r.selection = dict(
        criterion=criterion,
        alphas=np.asarray(alphas),
        l1_ratios=np.asarray(l1_grid),
        values=values,
        n_active=n_active,
        refined_alphas=np.array([x[0] for x in refined]),
        refined_values=np.reshape([x[1] for x in refined], (-1, n_l1)).T,
        refined_n_active=np.reshape([x[2] for x in refined], (-1, n_l1)).T.astype(int),
        alpha=a,
        l1_ratio=float(l1_grid[i]),
        noise_var=_noise_var(p0),
        noise_energy=noise,
        data_energy=m2,
        target=target,
        model_error=eps,
        baseline_noise_var=_baseline_noise_var(p0),
        n_solves=n_solves,
        stopped_early=bool(j < n_a - 1),
    )
    logger.info(
        f"Selected alpha={a:.4g} l1_ratio={l1_grid[i]} ({criterion}, {n_solves} solves)"
    )
    return r


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


def _select_signal_share(evoked, fp, l1_grid, alphas, o, kw, n_workers, emit=None):
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
    """
    wsize, tstep = kw["wsize"], kw["tstep"]
    l1_ref = SIGNAL_L1_RATIO if SIGNAL_L1_RATIO in l1_grid else l1_grid[0]
    i_ref = list(l1_grid).index(l1_ref)
    p = _prepare_data(fp, evoked, o.window, l1_ref, wsize, tstep)
    noise = _noise_energy(p)
    m2 = float(np.sum(p.M**2))
    energy = m2 - noise
    if energy <= 1e-3 * m2:
        logger.info(
            f"signal-share: the data energy ({m2:.4g}) is at most the "
            f"expected noise energy ({noise:.4g}); using 1e-3 of it"
        )
        energy = 1e-3 * m2
    n_l1, n_a = len(l1_grid), len(alphas)
    values = np.full((n_l1, n_a), np.nan)
    n_active = np.full((n_l1, n_a), -1)
    total = n_a + n_l1 - 1  # at most: the walk stops after its patience
    n_solves = 0
    best = None  # (value, j, result, n_pos)
    fails = 0
    Z = pos = None
    for j, a in enumerate(alphas):
        r = _solve_prepared(
            p,
            float(a),
            l1_ref,
            kw["maxit"],
            kw["tol"],
            o.debias,
            wsize,
            tstep,
            kw["dgap_freq"],
            o.pick_ori,
            kw["n_iter"],
            kw["return_residual"],
            np.float64,
            Z_init=Z,
            init_positions=pos,
            raise_empty=False,
        )
        _solved(emit, "alpha", r, total)
        n_solves += kw["n_iter"]
        k = _n_positions(r)
        if k:
            Z, pos = r._res.Z, r._res.positions
        v = _signal_share_value(r, noise, energy, k)
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
            pm = _prepare_data(fp, evoked, o.window, l1_grid[m], wsize, tstep)
            rm = _solve_prepared(
                pm,
                a,
                l1_grid[m],
                kw["maxit"],
                kw["tol"],
                o.debias,
                wsize,
                tstep,
                kw["dgap_freq"],
                o.pick_ori,
                kw["n_iter"],
                kw["return_residual"],
                np.float64,
                raise_empty=False,
            )
            _solved(emit, "alpha", rm, total)
            return rm

        outs = _in_threads([lambda m=m: one(m) for m in others], n_workers)
        n_solves += len(others) * kw["n_iter"]
        for m, rm in zip(others, outs):
            km = _n_positions(rm)
            values[m, j] = _signal_share_value(rm, noise, energy, km)
            n_active[m, j] = km
            if values[m, j] < v:
                v, i, r = values[m, j], m, rm
    r.selection = dict(
        criterion="signal-share",
        alphas=np.asarray(alphas),
        l1_ratios=np.asarray(l1_grid),
        values=values,
        n_active=n_active,
        alpha=float(alphas[j]),
        l1_ratio=float(l1_grid[i]),
        signal_share=SIGNAL_SHARE,
        patience=SIGNAL_PATIENCE,
        noise_var=_noise_var(p),
        noise_energy=noise,
        data_energy=m2,
        signal_energy=energy,
        baseline_noise_var=_baseline_noise_var(p),
        n_solves=n_solves,
        stopped_early=bool(np.isnan(values[i_ref, -1])),
    )
    logger.info(
        f"Selected alpha={alphas[j]:.4g} l1_ratio={l1_grid[i]} (signal-share, "
        f"{n_solves} solves)"
    )
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
        if (
            ev.ch_names != ref.ch_names
            or ev.info["sfreq"] != ref.info["sfreq"]
            or set(ev.info["bads"]) != set(ref.info["bads"])
        ):
            raise ValueError(
                f"evoked[{k}] does not have the channels, bads and sampling rate of "
                "evoked[0]: a batch shares one prepared forward operator"
            )


def _solve_batch(
    evokeds,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    o,
    n_jobs,
    client,
    return_residual,
    dtype,
    emit=None,
):
    _check_batch(evokeds)
    n_workers = _n_workers(n_jobs)
    if client is not None:
        return _dask_batch(
            client,
            evokeds,
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            o,
            return_residual,
            dtype,
            emit,
        )
    for ev in evokeds:
        _check_inputs(ev, forward, noise_cov, alpha, l1_ratio, o)
    _, l1_ratio = _check_inputs(evokeds[0], forward, noise_cov, alpha, l1_ratio, o)
    maxit, tol, n_iter, dgap_freq, wsize, tstep = _solve_params(o)
    alpha = float(alpha)
    fp = _forward_part(evokeds[0].info, forward, noise_cov, o)

    def one(ev):
        p = _prepare_data(fp, ev, o.window, l1_ratio, wsize, tstep)
        r = _solve_prepared(
            p,
            alpha,
            l1_ratio,
            maxit,
            tol,
            o.debias,
            wsize,
            tstep,
            dgap_freq,
            o.pick_ori,
            n_iter,
            return_residual,
            dtype,
            raise_empty=False,
        )
        _solved(emit, "batch", r, len(evokeds))
        return r

    return _in_threads([lambda ev=ev: one(ev) for ev in evokeds], n_workers)


_WORKER_CACHE = {}


def _dask_task(
    evoked, forward, noise_cov, alpha, l1_ratio, o, return_residual, dtype, key
):
    """Runs on a Dask worker: prepares the forward once per worker (cached)."""
    _, l1r = _check_inputs(evoked, forward, noise_cov, alpha, l1_ratio, o)
    maxit, tol, n_iter, dgap_freq, wsize, tstep = _solve_params(o)
    fp = _WORKER_CACHE.get(key)
    if fp is None:
        fp = _forward_part(evoked.info, forward, noise_cov, o)
        _WORKER_CACHE.clear()
        _WORKER_CACHE[key] = fp
    p = _prepare_data(fp, evoked, o.window, l1r, wsize, tstep)
    r = _solve_prepared(
        p,
        float(alpha),
        l1r,
        maxit,
        tol,
        o.debias,
        wsize,
        tstep,
        dgap_freq,
        o.pick_ori,
        n_iter,
        return_residual,
        dtype,
        raise_empty=False,
    )
    r._forward = None  # keep the payload small; dipoles need the forward locally
    return r


def _dask_batch(
    client,
    evokeds,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    o,
    return_residual,
    dtype,
    emit=None,
):
    import uuid

    key = uuid.uuid4().hex
    fwd_f = client.scatter(forward, broadcast=True)
    cov_f = client.scatter(noise_cov, broadcast=True)
    futs = [
        client.submit(
            _dask_task,
            ev,
            fwd_f,
            cov_f,
            alpha,
            l1_ratio,
            o,
            return_residual,
            dtype,
            key,
            pure=False,
        )
        for ev in evokeds
    ]
    out = []
    for f in futs:  # (in order: the events follow the evokeds)
        r = f.result()
        r._forward = None
        out.append(r)
        _solved(emit, "batch", r, len(futs))
    return out


# --------------------------------------------------------------------------
# what tfmxne.solve runs
# --------------------------------------------------------------------------
def _is_auto(alpha, l1_ratio):
    return alpha is None or isinstance(alpha, str) or l1_ratio is None


def _counted_stage(evoked, alpha, l1_ratio, n_tfmxne_iter, client):
    """The stage whose steps measure the progress of :func:`_solve` (for a bar)."""
    if isinstance(evoked, list | tuple) or client is not None:
        return "batch"
    if _is_auto(alpha, l1_ratio):
        return "alpha"
    return "reweighting" if n_tfmxne_iter != 1 else "outer"


def _solve(
    evoked,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    o,
    return_residual,
    dtype,
    n_jobs=1,
    client=None,
    emit=None,
    t0=None,
):
    """:func:`tfmxne.solve` once its options are gathered in ``o`` (see there).

    A batch (list of evokeds or Dask) reports 'batch' events, an automatic
    selection 'alpha' events, a single solve 'outer' (and 'reweighting')
    events. The whole call runs in one :func:`tfmxne._parallel.call_scope`.
    """
    t0 = time.perf_counter() if t0 is None else t0
    with call_scope():
        return _solve_in_scope(
            evoked,
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            o,
            return_residual,
            dtype,
            n_jobs,
            client,
            emit,
            t0,
        )


def _solve_in_scope(
    evoked,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    o,
    return_residual,
    dtype,
    n_jobs,
    client,
    emit,
    t0,
):
    dtype = _check_solve_options(dtype, return_residual)
    auto = _is_auto(alpha, l1_ratio)
    if isinstance(evoked, list | tuple):
        if auto:
            out = []
            for ev in evoked:
                r = _solve(
                    ev, forward, noise_cov, alpha, l1_ratio, o, return_residual, dtype
                )
                out.append(r)
                _solved(emit, "batch", r, len(evoked))
            return out
        return _solve_batch(
            list(evoked),
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            o,
            n_jobs,
            client,
            return_residual,
            dtype,
            emit,
        )
    if client is not None:
        return _solve_batch(
            [evoked],
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            o,
            1,
            client,
            return_residual,
            dtype,
            emit,
        )[0]
    if auto:
        criterion = (
            CRITERIA[0]
            if alpha is None or not isinstance(alpha, str)
            else _check_criterion(alpha)
        )
        alphas = None
        if alpha is not None and not isinstance(alpha, str):
            _check_inputs(evoked, forward, noise_cov, alpha, 0.5, o)
            alphas = [float(alpha)]
        return _select(
            evoked,
            forward,
            noise_cov,
            criterion,
            l1_ratio,
            o,
            alphas=alphas,
            return_residual=return_residual,
            n_jobs=n_jobs,
            emit=emit,
        )
    return _solve_one(
        evoked, forward, noise_cov, alpha, l1_ratio, o, return_residual, dtype, emit, t0
    )


@verbose
def solve_epochs(
    epochs,
    forward,
    noise_cov,
    alpha=None,
    l1_ratio=None,
    n_jobs=1,
    client=None,
    return_residual=True,
    dtype=np.float64,
    progress="auto",
    verbose=None,
    **options,
):
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
    progress : callable | 'auto' | None
        Called with a :class:`tfmxne.ProgressEvent` of stage ``'batch'`` after
        each epoch is solved (``total`` = number of epochs); ``'auto'``
        (default) and ``None`` and the handling of the calls and of their
        errors as in :func:`tfmxne.tf_mixed_norm_path`.
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
    o = check_options(with_defaults(options))
    _progress.check_progress(progress)
    evokeds = list(epochs.iter_evoked(copy=True))
    with _progress.session(progress, "batch", "epochs") as emit:
        return _solve(
            evokeds,
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            o,
            return_residual,
            dtype,
            n_jobs=n_jobs,
            client=client,
            emit=emit,
        )


__all__ = ["tf_mixed_norm_path", "solve_epochs"]
