# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Solves of prepared problems: one alpha, a warm-started path, threads.

:func:`solve_problem` is the one place where a prepared problem
(:class:`tfmxne._problem.Problem`) meets the solver (``tfmxne.solver``) and
becomes a :class:`tfmxne._result.TFMxNEResult`; :func:`solve_path` walks a
grid of alphas on one problem, warm-starting each solve from the previous;
:func:`solve_one` is the whole call of a single solve (check, prepare, solve).
The path functions, the automatic alpha and the batches are built on these.
"""

import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mne.utils import logger
from threadpoolctl import threadpool_limits

from ._parallel import batch_scope
from ._problem import check_inputs, prepare, prepare_forward
from ._result import NoActiveSourcesError, build_result
from ._validation import _short, check_alpha, check_bool, check_int, check_l1_ratio
from .solver import _DEFAULTS, _cols, _debias, _iterative_core, _Spec, _tf_solve


def check_regularisation(alpha, l1_ratio):
    """Numbers (automatic selection is done by the caller): the checked pair."""
    if alpha is None or isinstance(alpha, str):
        raise ValueError(
            "alpha must be a number in (0, 100) here (automatic selection is done by "
            f"the caller), got alpha={alpha!r}"
        )
    return check_alpha(alpha), check_l1_ratio(l1_ratio)


def check_run(dtype, return_residual):
    """The options :func:`tfmxne.solve` adds to tf_mixed_norm's: the dtype of the
    iterations (returned as a NumPy dtype) and ``return_residual``."""
    check_bool(return_residual, "return_residual")
    try:  # (np.dtype(None) is float64: None is refused explicitly)
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got dtype={_short(dtype)}")
    return dt


def _solver_hooks(emit, n_tfmxne_iter):
    """The solver's callbacks that turn its iterations into progress events.

    ``on_outer(n_outer, gap, n_active)`` after each outer certificate gives an
    'outer' event; ``progress(k)`` after reweighting ``k`` a 'reweighting' one
    with the last certificate of that reweighting's solve.
    """
    if emit is None:
        return None, None
    last = {}

    def on_outer(n_outer, gap, n_active):
        last.update(gap=gap, n_active=n_active)
        emit("outer", n_outer, gap=gap, n_active=n_active)

    def on_reweighting(k):
        emit("reweighting", k + 1, total=n_tfmxne_iter, **last)

    return on_outer, on_reweighting


_GAINS32 = weakref.WeakKeyDictionary()  # problem -> its gain in float32


def _gain_as(p, dtype):
    """The gain of ``p`` in ``dtype`` (float32: converted once per problem, for
    the levels of a path or a criterion solved in float32)."""
    if np.dtype(dtype) == p.gain.dtype:
        return p.gain
    with _GAINS32_LOCK:
        g = _GAINS32.get(p)
        if g is None:
            g = _GAINS32[p] = np.asarray(p.gain, dtype=dtype)
    return g


_GAINS32_LOCK = threading.Lock()


def _start_tol_ratio(start_tol, tol):
    """The float32 start's stopping gap over ``||M||^2`` for ``start_tol`` times
    ``tol``: never below the core's floor (float32 rounding), None for None."""
    if start_tol is None:
        return None
    return max(start_tol * tol, _DEFAULTS["mixed_tol_ratio"])


def run_solver(
    p, alpha, opts, frame, warm, emit, mixed=True, start_tol=None, quiet=False
):
    """The solver on ``p`` at ``alpha``: its answer and the objectives
    (``mixed``: a float64 solve starts in float32, ``solver.MIXED_PRECISION``;
    ``start_tol``: that start stops at ``start_tol`` times tol if this is
    looser than its default, None: the default; ``quiet``: a stop before tol
    is logged, not warned, for a solve that is not returned)."""
    on_outer, on_reweighting = _solver_hooks(emit, opts.n_tfmxne_iter)
    M = p.M
    dtype = frame.dtype
    tol_abs = opts.tol * float(np.sum(M * M))
    alpha_space = alpha * (1.0 - p.l1_ratio)
    alpha_time = alpha * p.l1_ratio
    Z_init, init_positions = (None, None) if warm is None else warm
    # the screening of R = M (float64 only: it is exact for the float64 gain)
    screen = p.screen0 if Z_init is None and dtype == np.float64 else None
    Mc = np.ascontiguousarray(M, dtype=dtype)
    G = _gain_as(p, dtype)
    logger.info("Using block coordinate descent with active set approach")
    spec = _Spec(
        alpha_space,
        alpha_time,
        frame,
        p.n_orient,
        opts.maxit,
        tol_abs,
        opts.dgap_freq,
        warn_name="tf_mixed_norm",
        mixed=mixed,
        mixed_tol_ratio=_start_tol_ratio(start_tol, opts.tol),
        quiet=quiet,
    )
    start = None if Z_init is None else (init_positions, Z_init)
    if opts.n_tfmxne_iter == 1:
        res = _tf_solve(
            Mc,
            G,
            spec,
            lc=p.lipschitz,
            warm=start,
            screen_init=screen,
            on_outer=on_outer,
        )
        return res, res.E
    res, E, _ = _iterative_core(
        Mc,
        G,
        spec,
        opts.n_tfmxne_iter,
        warm=start,
        progress=on_reweighting,
        screen_init=screen,
        on_outer=on_outer,
    )
    return res, E


def solve_problem(
    p,
    alpha,
    opts,
    *,
    return_residual=True,
    dtype=np.float64,
    warm=None,
    raise_empty=False,
    emit=None,
    t0=None,
    mixed=True,
    start_tol=None,
):
    """Solve the prepared problem ``p`` at ``alpha``: a TFMxNEResult.

    ``opts``: the checked options of the call (their ``'solve'`` stage).
    ``warm = (Z, positions)``: the start (a previous answer's coefficients, in
    the solver's layout, and positions). ``raise_empty``: a
    :class:`NoActiveSourcesError` where no source survives (else a result
    with ``estimate=None``). ``emit`` (a :class:`tfmxne._progress._Emitter`
    or None) receives the 'outer' and 'reweighting' events of the solve.
    ``mixed``, ``start_tol``: as :func:`run_solver`.
    """
    t0 = time.perf_counter() if t0 is None else t0
    frame = p.frame(dtype)
    res, E = run_solver(p, alpha, opts, frame, warm, emit, mixed, start_tol)
    active_set = np.zeros(p.gain.shape[1], bool)
    active_set[_cols(res.positions, p.n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if active_set.any() and opts.debias:
        X = debiased(p, X, active_set)
    if raise_empty and not active_set.any():
        raise NoActiveSourcesError(
            "No active dipoles found. alpha_space/alpha_time are too big "
            f"(alpha={alpha} % of alpha_max, alpha_max={p.alpha_max * 100:.6g} in "
            "whitened units; lower alpha)."
        )
    return build_result(p, res, X, active_set, E, frame, alpha, opts, return_residual, t0)


def debiased(p, X, active_set):
    """``X`` (rows of ``active_set``) debiased on the problem ``p``: one scale per
    position, and per condition of a joint problem (a new array)."""
    G_A = p.gain[:, active_set]
    if p.n_conditions == 1:
        return X * _debias(p.M, G_A, X, p.n_orient)[:, None]
    out = np.empty_like(X)
    for s in p.blocks():
        out[:, s] = X[:, s] * _debias(p.M[:, s], G_A, X[:, s], p.n_orient)[:, None]
    return out


def solve_one(
    evoked,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    opts,
    return_residual,
    dtype,
    emit,
    t0,
    raise_empty=True,
):
    """The call of one solve: check, prepare and solve one evoked at a given
    (alpha, l1_ratio); ``raise_empty``: as :func:`solve_problem`."""
    check_inputs(evoked, forward, noise_cov, opts)
    alpha, l1_ratio = check_regularisation(alpha, l1_ratio)
    fwd = prepare_forward(evoked.info, forward, noise_cov, opts)
    p = prepare(fwd, evoked, opts, l1_ratio)
    return solve_problem(
        p,
        alpha,
        opts,
        return_residual=return_residual,
        dtype=dtype,
        raise_empty=raise_empty,
        emit=emit,
        t0=t0,
    )


# --------------------------------------------------------------------------
# paths and threads
# --------------------------------------------------------------------------
def report(emit, stage, r, total):
    """Report one finished solve of a path, a selection or a batch."""
    if emit is not None:
        emit(
            stage,
            total=total,
            gap=float(r.gap),
            n_active=r._n_positions(),
            alpha=float(r.alpha),
            l1_ratio=float(r.l1_ratio),
        )


def warm_start(r):
    """The start that result ``r`` gives the next solve of a path (or None)."""
    if r._res is not None and len(r._res.positions):
        return r._res.Z, r._res.positions
    return None


def n_workers(n_jobs):
    """Threads for ``n_jobs`` (-1: all cores)."""
    n_jobs = check_int(n_jobs, "n_jobs", -1)
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive integer or -1, got n_jobs=0")
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


def in_threads(tasks, n_workers):
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


#: The warm-started levels of a path start in float32 only to this many times
#: tol (a cold solve's start goes to tol / 2), the float64 solve certifies
#: them at tol: from the previous level a float32 start to tol / 2 stalls near
#: it, where float32 rounding slows the epochs (vol7, default path, same run:
#: 27.0 s with it, 24.0 s without a float32 start, 18.6 s with this one).
WARM_START_TOL = 3.0


def solve_path(
    p, alphas, opts, *, return_residual=True, emit=None, total=None, n_workers=1
):
    """Solve ``p`` along ``alphas`` (decreasing), warm-starting each from the
    previous; a list of results.

    With ``n_workers > 1`` the grid is dealt into that many interleaved chains
    (alphas 0, n, 2n, ... in one, 1, n + 1, ... in the next), each warm-started
    along itself and solved in its own thread. ``emit`` receives an 'alpha'
    event (out of ``total``) after each solve.
    """
    alphas = np.asarray(alphas)
    if n_workers > 1 and len(alphas) > 1:
        chains = [
            np.arange(c, len(alphas), n_workers)
            for c in range(min(n_workers, len(alphas)))
        ]
        kw = dict(return_residual=return_residual, emit=emit, total=total)
        outs = in_threads(
            [lambda idx=idx: solve_path(p, alphas[idx], opts, **kw) for idx in chains],
            len(chains),
        )
        results = [None] * len(alphas)
        for idx, rs in zip(chains, outs):
            for i, r in zip(idx, rs):
                results[i] = r
        return results
    results = []
    warm = None
    for a in alphas:
        r = solve_problem(
            p,
            float(a),
            opts,
            return_residual=return_residual,
            warm=warm,
            start_tol=None if warm is None else WARM_START_TOL,
        )
        results.append(r)
        warm = warm_start(r) or warm
        report(emit, "alpha", r, total)
    return results
