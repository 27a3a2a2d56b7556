# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Array-level TF-MxNE solvers (same parameters and returns as MNE's).

The problem, for whitened data ``M`` (n_sensors, n_times) and gain ``G``
(n_sensors, n_sources), with ``Z`` the coefficients of the sources in the tight
multi-dictionary STFT frame ``Phi`` and ``X = PhiT(Z)``::

    min_Z  0.5 ||M - G PhiT(Z)||_F^2
           + alpha_space * sum_j w_space_j ||Z_j||_2
           + alpha_time  * sum_j sum_k w_time_jk ||Z_jk||_2

where ``Z_j`` is the block of the ``n_orient`` rows of position ``j`` and
``Z_jk`` one coefficient across orientations (norms count negative frequencies).

Algorithm: an outer working-set loop certified by the duality gap of the full
problem (dual norm computed exactly, with screening by a cheap upper bound), and
an inner block coordinate descent on the working set that runs entirely in the
compiled core without the GIL. The working set grows geometrically from the
positions that violate the optimality conditions most.
"""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mne.utils import logger, verbose, warn
from scipy import linalg
from scipy.optimize import nnls

from ._core import _engine
from ._stft import TFFrame
from ._validation import (
    _short,
    check_bool,
    check_dgap_freq,
    check_float,
    check_int,
    check_real_array,
    check_wsize_tstep,
)

#: Cap on the outer working-set iterations of one solve (MNE has none).
MAX_OUTER_ITER = 100
#: Outer iterations without a 10 % decrease of the gap before stopping (stall).
STALL_OUTER = 5
#: Initial number of candidate positions added to the working set.
WS_START = 40
#: Memory of the Anderson acceleration of the BCD iterates (0 disables it)...
ANDERSON_K = 5
#: ...used once an inner solve has run this many epochs: a slow tail (tight
#: tolerances: 2.5x faster at tol 1e-8 on the 7 mm grid) gains a lot, while
#: short solves would only pay its snapshot copies.
ANDERSON_START = 20
#: Max proximal gradient steps per block visit (the block Gram keeps extra
#: steps cheap); one measured fastest on the benchmark problems.
N_INNER = 1
#: Inner solves on a growing working set stop at this fraction of the outer
#: tolerance at the least...
INNER_TOL_RATIO = 0.1
#: ...or, while the working set is still incomplete, at this fraction of the
#: current gap of the full problem (as celer does): early working sets are only
#: solved as precisely as they deserve.
INNER_GAP_FRAC = 0.3
#: Epochs before the first gap check of such a loose inner solve (the interval
#: then doubles up to ``dgap_freq``); a complete working set is checked every
#: ``dgap_freq`` epochs.
INNER_GAP_START = 3
#: Inner solves on a complete working set (no position outside it violated the
#: optimality conditions) stop at this fraction of tol instead: the full gap
#: then equals the working set's unless the solve makes an outside position
#: violate, and going on to tol / 10 only bought the slow tail's epochs (5 mm
#: grid, alpha 30: the last inner solve 170 -> 30 epochs; the path up to the
#: first complete working set is unchanged. Same-process A/B on 13 cases,
#: best of 3: 48.3 -> 41.8 s).
COMPLETE_TOL_RATIO = 0.25
#: The outer loop stops once its certified gap is below this fraction of tol.
#: At a gap of tol the iterate can still carry a few spurious positions (a
#: debiased estimate then amplifies them): on the benchmark cases at tol=1e-4
#: a gap of tol / 2 put tfmxne's estimate nearer the converged optimum than
#: MNE's (7 mm grid: 0.41 -> 1.3e-2 debiased; MNE 0.39), at tol it was not.
#: Cost, same process: 7 mm grid 1.13 -> 1.95 s, surface 0.38 -> 0.43 s.
#: A solve that reaches only the caller's tol still counts as converged.
STOP_GAP_RATIO = 0.5

_BATCH_DEPTH = [0]
_BATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _single_blas_scope():
    """Within a batch (BLAS pinned once for all threads), skip per-solve pinning:
    threadpool limits are process-wide and must not be toggled by each thread."""
    with _BATCH_LOCK:
        _BATCH_DEPTH[0] += 1
    try:
        yield
    finally:
        with _BATCH_LOCK:
            _BATCH_DEPTH[0] -= 1


_CONTROLLER = []


def _inner_blas_limit():
    """One BLAS thread for the small products of an inner solve; a no-op inside a
    batch, where BLAS is pinned already."""
    if _BATCH_DEPTH[0] > 0:
        return contextlib.nullcontext()
    return _controller().limit(limits=1, user_api="blas")


#: Screening evaluates exact dual norms in threads only for problems with at
#: least this many positions; its first chunk holds this many per thread, and
#: chunks double up to 8 times that (a hand-off costs ~0.1 ms, one exact
#: evaluation ~50 us).
SCREEN_CHUNK = 32
#: Dual extrapolation: BCD residuals converge linearly, so ``R + t (R - R_prev)``
#: (``R_prev``: the residual at the previous gap evaluation) is often a much
#: better dual point than ``R``; scored at each gap evaluation of the inner
#: solves and certified on the whole source space (see ``_engine.bcd_solve``).
DUAL_EXTRAP = True
#: Smallest working set swept by two threads (block coordinate descent with a
#: helper thread for the sensor-space products); smaller ones cost more in
#: hand-offs than they save.
PIPE_MIN_BLOCKS = 16
#: Most threads used for the exact dual-norm evaluations.
SCREEN_MAX_THREADS = 4
_SCREEN_POOL = []


def _controller():
    if not _CONTROLLER:  # cached: a fresh ThreadpoolController costs ~0.5 ms
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _screen_threads():
    """Threads for the exact dual-norm evaluations of a screening: as many as
    BLAS may use now (so ``threadpoolctl`` limits set by the caller apply), at
    most the CPUs and ``SCREEN_MAX_THREADS``; one inside a batch, whose solves
    already run in parallel."""
    if _BATCH_DEPTH[0] > 0:
        return 1
    libs = _controller().select(user_api="blas").lib_controllers
    n = min((lib.num_threads for lib in libs), default=1)
    return max(1, min(n, os.cpu_count() or 1, SCREEN_MAX_THREADS))


def _screen_pool():
    with _BATCH_LOCK:
        if not _SCREEN_POOL:
            _SCREEN_POOL.append(ThreadPoolExecutor(
                SCREEN_MAX_THREADS - 1, thread_name_prefix="tfmxne-screen"))
    return _SCREEN_POOL[0]


def _in_pool(fn, arg_lists):
    """``[fn(*a) for a in arg_lists]``, the first call in this thread and the
    others in the screening pool (``fn`` releases the GIL); results in order."""
    futures = [_screen_pool().submit(fn, *a) for a in arg_lists[1:]]
    first = fn(*arg_lists[0])
    return [first] + [f.result() for f in futures]


def _after_fork_in_child():
    """Threads do not survive ``fork``: the child gets a fresh pool (the
    parent's would queue work for threads that do not exist) and free locks."""
    global _BATCH_LOCK
    _SCREEN_POOL.clear()
    _BATCH_LOCK = threading.Lock()
    _BATCH_DEPTH[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _dual_norm_screened(plan, GtR, n_orient, rho, w_space=None, w_time=None,
                        n_min=0, alpha=0.0, n_max=-1, GtR_prev=None, nu_prev=None,
                        n_thr=None):
    """:func:`_engine.dual_norm_screened` with its exact evaluations in threads.

    Same result, bit for bit: positions sorted by decreasing bound are evaluated
    chunk by chunk, each chunk split over the threads (without the GIL), then
    the sequential stopping rules are replayed over the chunk in order; the
    evaluations past the stopping point (at most one chunk) are discarded.
    ``n_thr``: threads (default :func:`_screen_threads`).
    """
    n_thr = _screen_threads() if n_thr is None else n_thr
    n_pos = GtR.shape[0] // n_orient
    if n_thr < 2 or n_pos < 4 * SCREEN_CHUNK * n_thr:
        return _engine.dual_norm_screened(plan, GtR, n_orient, rho, w_space, w_time,
                                          n_min, alpha, n_max, GtR_prev, nu_prev)
    edges = np.linspace(0, n_pos, n_thr + 1).astype(int)

    def bounds(lo, hi):
        rows = slice(lo * n_orient, hi * n_orient)
        return _engine.screen_bounds(
            plan, GtR[rows], n_orient, rho,
            None if w_space is None else w_space[lo:hi],
            None if w_time is None else w_time[lo:hi],
            None if GtR_prev is None or nu_prev is None else GtR_prev[rows],
            None if GtR_prev is None or nu_prev is None else nu_prev[lo:hi])

    best = rest = 0.0
    n_eval = k = 0
    size = SCREEN_CHUNK * n_thr
    no_stop = (np.iinfo(np.int32).max, -np.inf, -1)  # n_min, alpha, n_max
    done = False
    # the STFT products are small: one BLAS thread each, no BLAS pool contending
    with _inner_blas_limit():
        ub = np.concatenate(_in_pool(bounds, list(zip(edges[:-1], edges[1:]))))
        order = np.argsort(-ub, kind="stable").astype(np.intp)
        nu = ub.copy()
        exact = np.zeros(n_pos, dtype=np.uint8)
        while k < n_pos and not done:
            end = min(n_pos, k + size)
            if n_max >= 0:
                end = min(end, k + max(n_max - n_eval, 1))
            chunk = order[k:end]
            # bounds at or below these thresholds stop the loop for sure
            floor = max(alpha, 0.0, best if n_eval >= n_min else 0.0)
            chunk = chunk[:int(np.count_nonzero(ub[chunk] > floor))]
            if len(chunk):
                parts = [np.ascontiguousarray(chunk[i::n_thr]) for i in range(n_thr)]
                _in_pool(_engine.screen_eval, [
                    (plan, GtR, n_orient, rho, w_space, w_time, part, nu, exact, *no_stop)
                    for part in parts if len(part)])
            # replay the sequential rules (as in ``screen_eval``) over the chunk
            for i, j in enumerate(order[k:end]):
                u = ub[j]
                stop = u <= 0.0
                if not stop and (u <= alpha or (u <= best and n_eval >= n_min)
                                 or (0 <= n_max <= n_eval)):
                    rest, stop = u, True
                if stop:
                    undo = order[k + i:end]
                    nu[undo] = ub[undo]
                    exact[undo] = 0
                    done = True
                    break
                n_eval += 1
                best = max(best, nu[j])
            k = end
            size = min(2 * size, 8 * SCREEN_CHUNK * n_thr)
    return best, rest, nu, exact.astype(bool)


def _gtr(G, R, n_thr=None):
    """``G^T R`` (C-contiguous) computed by ``n_thr`` threads over column blocks,
    each with one BLAS thread: no BLAS thread pool is left spinning on the cores
    the screening threads need next."""
    n_thr = _screen_threads() if n_thr is None else n_thr
    n_src = G.shape[1]
    if n_thr < 2 or n_src < 4 * SCREEN_CHUNK * n_thr:
        return np.ascontiguousarray(G.T @ R)
    out = np.empty((n_src, R.shape[1]), dtype=np.result_type(G, R))
    edges = np.linspace(0, n_src, n_thr + 1).astype(int)

    def part(lo, hi):
        np.matmul(G[:, lo:hi].T, R, out=out[lo:hi])

    with _inner_blas_limit():
        _in_pool(part, list(zip(edges[:-1], edges[1:])))
    return out


_MAXIT = 1  # status of an inner solve that hit its epoch cap
_STATUS = {0: "converged", _MAXIT: "iteration cap reached", 2: "non-finite values",
           3: "bad kernel arguments"}


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------
def _check_problem(M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq,
                   wsize, tstep, dtype=np.float64):
    # one internal layout, C order (a copy of an F-ordered or strided input): the
    # full products G^T R, hence the iterates, are the same bits whatever the
    # caller's layout
    M = np.ascontiguousarray(check_real_array(M, "M", 2, dtype=dtype))
    G = np.ascontiguousarray(check_real_array(G, "G", 2, dtype=dtype))
    n_orient = _check_shapes(G, M, n_orient, "M")
    alpha_space, alpha_time = _check_alphas(alpha_space, alpha_time)
    maxit = check_int(maxit, "maxit", 1)
    tol = check_float(tol, "tol", low=0.0, low_open=True)
    dgap_freq = check_dgap_freq(dgap_freq)
    wsize, tstep = check_wsize_tstep(wsize, tstep)
    return M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep


def _check_shapes(G, R, n_orient, r_name):
    """Rows of G and of the data match; n_orient divides the sources."""
    n_orient = check_int(n_orient, "n_orient", 1)
    if G.shape[0] != R.shape[0]:
        raise ValueError(
            f"{r_name} and G must have the same number of rows (sensors), got "
            f"{r_name}.shape={R.shape} and G.shape={G.shape}")
    if G.shape[1] % n_orient:
        raise ValueError(
            f"The number of sources (G.shape[1]={G.shape[1]}) must be a multiple of "
            f"n_orient={n_orient}")
    return n_orient


def _check_alphas(alpha_space, alpha_time):
    """Non-negative regularisation parameters, not both zero."""
    alpha_space = check_float(alpha_space, "alpha_space", low=0.0)
    alpha_time = check_float(alpha_time, "alpha_time", low=0.0)
    if alpha_space + alpha_time <= 0:
        raise ValueError(
            "alpha_space and alpha_time cannot both be 0, got "
            f"alpha_space={alpha_space}, alpha_time={alpha_time}")
    return alpha_space, alpha_time


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------
def _lipschitz(G, n_orient):
    """Per-position Lipschitz constants ``||G_j^T G_j||_2``."""
    if n_orient == 1:
        return np.einsum("ij,ij->j", G, G)
    n_pos = G.shape[1] // n_orient
    Gb = G.reshape(G.shape[0], n_pos, n_orient).transpose(1, 2, 0)
    gram = Gb @ Gb.transpose(0, 2, 1)
    return np.linalg.eigvalsh(gram)[:, -1]


def _cross_grams(GT, n_orient, lc):
    """``G_j^T G_i`` (n_ws, n_orient, n_orient) for each block ``j`` of a working
    set and the block ``i`` the sweep visits just before it (``lc > 0``); zero
    for the first visited block. Used by the two-thread sweep of the engine."""
    n_ws = GT.shape[0] // n_orient
    B = GT.reshape(n_ws, n_orient, -1)
    vis = np.flatnonzero(np.asarray(lc) > 0)
    out = np.zeros((n_ws, n_orient, n_orient), dtype=GT.dtype)
    if len(vis) > 1:
        out[vis[1:]] = np.einsum("jac,jbc->jab", B[vis[1:]], B[vis[:-1]])
    return out


def _block_grams(GT, n_orient):
    """(n_ws, n_orient, n_orient) Gram matrices G_j^T G_j from rows of G^T."""
    Gb = GT.reshape(-1, n_orient, GT.shape[1])
    return np.ascontiguousarray(Gb @ Gb.transpose(0, 2, 1))


def _cols(positions, n_orient):
    positions = np.asarray(positions, dtype=np.intp)
    return (positions[:, None] * n_orient + np.arange(n_orient)[None, :]).ravel()


def _dual_objective(nR2, RM, nu, alpha):
    """Dual objective ``s <R, M> - s^2 ||R||^2 / 2`` of the residual R rescaled to
    the feasible dual point ``theta = s R``, ``s = min(1, alpha / nu)`` as in MNE
    (nu: dual norm of G^T R). Returns ``(d_obj, s)``."""
    s = 1.0 if nu <= alpha else alpha / nu
    return s * RM - 0.5 * s * s * nR2, s


class _SolveResult:
    """Internal result of one convex solve (internal coefficient layout)."""

    __slots__ = ("positions", "Z", "X", "R", "theta", "gap", "p_obj", "d_obj", "E",
                 "n_iter", "n_outer", "converged", "status", "nu_max")


def _tf_solve(*args, **kwargs):
    """Solve the (weighted) convex TF-MxNE problem (see :func:`_tf_solve_impl`).

    With several threads available the full-size work of the outer loop
    (``G^T R`` and the exact dual norms) runs in the screening threads, BLAS
    pinned to one thread for the whole solve.
    """
    n_thr = _screen_threads()
    with _inner_blas_limit() if n_thr > 1 else contextlib.nullcontext():
        return _tf_solve_impl(*args, n_thr=n_thr, **kwargs)


def _tf_solve_impl(M, G, alpha_space, alpha_time, frame, n_orient, maxit, tol,
                   dgap_freq, *, lc=None, w_space=None, w_time=None, Z_init=None,
                   init_positions=None, max_outer=None,
                   warn_name="tf_mixed_norm_solver", screen_init=None, n_thr=1,
                   on_outer=None):
    """Solve the (weighted) convex TF-MxNE problem.

    ``w_time`` is in the internal coefficient order, shape (n_positions, n_coefs).
    ``Z_init`` rows (internal layout) belong to ``init_positions``.
    ``screen_init = (G^T M, nu, exact)``: the dual-norm screening of the
    unweighted problem at ``R = M`` (as ``dual_norm_screened`` returns it, e.g.
    from the computation of alpha_max), reused by the first outer iteration of
    a cold, unweighted start instead of being recomputed.
    The result holds the dual point ``theta`` (a scaled residual, possibly
    extrapolated, see ``DUAL_EXTRAP``; feasible for the dual of this problem)
    whose dual objective ``d_obj`` certifies ``gap``.
    ``n_thr``: threads of the screening and of ``G^T R``.
    ``on_outer(n_outer, gap, n_active)``, if given, is called after the
    certificate of each outer iteration (the values of its log line); what it
    raises propagates and ends the solve.
    """
    dtype = frame.dtype
    plan = frame.plan
    n_chan, T = M.shape
    n_pos = G.shape[1] // n_orient
    K2 = 2 * frame.n_coefs
    # the caller's tolerance; the loop aims at a margin below it
    tol_user, tol = tol, tol * STOP_GAP_RATIO
    alpha = alpha_space + alpha_time
    rho = alpha_time / alpha
    max_outer = MAX_OUTER_ITER if max_outer is None else max_outer
    if lc is None:
        lc = _lipschitz(G, n_orient)
    lc = np.ascontiguousarray(lc, dtype=dtype)
    if w_space is not None:
        w_space = np.ascontiguousarray(w_space, dtype=dtype)
    if w_time is not None:
        w_time = np.ascontiguousarray(w_time, dtype=dtype)
    work = np.empty(_engine.work_size(plan, n_orient), dtype=dtype)

    # current support
    if Z_init is not None and len(init_positions):
        A = np.asarray(init_positions, dtype=np.intp)
        ZA = np.ascontiguousarray(Z_init, dtype=dtype).reshape(len(A) * n_orient, K2)
        keep = np.any(ZA.reshape(len(A), -1) != 0, axis=1)
        A = A[keep]
        ZA = ZA.reshape(-1, n_orient, K2)[keep].reshape(-1, K2).copy()
    else:
        A = np.zeros(0, dtype=np.intp)
        ZA = np.zeros((0, K2), dtype=dtype)
    XA = frame.phiT(ZA) if len(A) else np.zeros((0, T), dtype=dtype)
    R = M - G[:, _cols(A, n_orient)] @ XA if len(A) else M.copy()

    E = []
    best_d = -np.inf
    theta = np.zeros_like(M)
    gap = np.inf
    n_iter = 0
    converged = False
    status = 1
    nu_max = np.inf
    n_outer = 0
    n_grow = WS_START
    best_gap, n_stall, stalled = np.inf, 0, False
    GtR_prev = nu_prev = None
    # dual extrapolation: R - R_prev and step t left by the last inner solve
    rprev = np.empty_like(M) if DUAL_EXTRAP else None
    extrap = np.zeros(2) if DUAL_EXTRAP else None
    # max_outer inner solves; the gap is always evaluated at the returned iterate
    reuse = (screen_init is not None and not len(A) and w_space is None
             and w_time is None)
    for n_outer in range(1, max_outer + 2):
        n_want = min(len(A) + 2 * max(n_grow, len(A)), n_pos)
        if reuse and n_outer == 1:
            GtR = np.ascontiguousarray(screen_init[0], dtype=dtype)
            nu = np.array(screen_init[1], dtype=np.float64)
            exact = np.array(screen_init[2], dtype=bool)
            nu_max = float(nu[exact].max(initial=0.0))
            nu_rest = float(nu[~exact].max(initial=0.0))
        else:
            GtR = _gtr(G, R, n_thr)
            # capped screening: the gap is then an upper bound (still a certificate)
            nu_max, nu_rest, nu, exact = _dual_norm_screened(
                plan, GtR, n_orient, rho, w_space, w_time, n_want, alpha,
                max(2 * n_want, 200), GtR_prev, nu_prev, n_thr)
        nR2 = float(np.vdot(R, R))
        RM = float(np.vdot(R, M))
        if len(A):
            l21, l1 = _engine.penalties(
                plan, ZA, n_orient, w_time[A] if w_time is not None else None)
            ws_ = w_space[A] if w_space is not None else 1.0
            pen = alpha_space * float(np.sum(l21 * ws_)) + alpha_time * float(np.sum(l1))
        else:
            pen = 0.0
        p_obj = 0.5 * nR2 + pen
        d_obj, scal = _dual_objective(nR2, RM, max(nu_max, nu_rest), alpha)
        d_opt = _dual_objective(nR2, RM, nu_max, alpha)[0]  # optimistic
        if (p_obj - max(best_d, d_obj) >= tol and nu_rest > max(nu_max, alpha)
                and p_obj - max(best_d, d_opt) < tol):
            # the cap left positions unproven: finish the exact dual norm
            nu_max, nu_rest, nu, exact = _dual_norm_screened(
                plan, GtR, n_orient, rho, w_space, w_time, n_want, alpha, -1,
                GtR_prev, nu_prev, n_thr)
            d_obj, scal = _dual_objective(nR2, RM, max(nu_max, nu_rest), alpha)
        if d_obj > best_d:
            best_d, theta = d_obj, scal * R
        if (extrap is not None and extrap[0] == 2 and extrap[1] > 0
                and p_obj - best_d >= tol):
            # the inner solve's best dual point was extrapolated, R + t (R - R_prev):
            # certify it on the whole source space too
            t = float(extrap[1])
            GtRx = GtR + t * _gtr(G, rprev, n_thr)
            nx_max, nx_rest, _, _ = _dual_norm_screened(
                plan, GtRx, n_orient, rho, w_space, w_time, 0, alpha, -1, GtR, nu,
                n_thr)
            nR2x = nR2 + 2.0 * t * float(np.vdot(R, rprev)) + t * t * float(
                np.vdot(rprev, rprev))
            RMx = RM + t * float(np.vdot(rprev, M))
            d_x, scal_x = _dual_objective(nR2x, RMx, max(nx_max, nx_rest), alpha)
            if d_x > best_d:
                best_d, theta = d_x, scal_x * (R + t * rprev)
            del GtRx
        # bounds of this residual tighten the screening of the next one
        GtR_prev, nu_prev = GtR, nu
        gap = p_obj - best_d
        E.append(p_obj)
        logger.info(
            f"    outer {n_outer}: dgap {gap:.2e} :: p_obj {p_obj:.6g} :: "
            f"d_obj {best_d:.6g} :: n_active {len(A)}"
        )
        if on_outer is not None:
            on_outer(n_outer, float(gap), int(len(A)))
        if gap < tol:
            converged = True
            status = 0
            break
        if n_outer > max_outer:
            n_outer = max_outer
            break
        # stall guard: the gap stopped decreasing (numerical floor, tol below the
        # rounding of the objectives): stop instead of spinning to the cap
        if gap < 0.9 * best_gap:
            best_gap, n_stall = gap, 0
        else:
            n_stall += 1
            if n_stall >= STALL_OUTER:
                stalled = True
                break
        # working set: the support plus the strongest violators
        in_A = np.zeros(n_pos, bool)
        in_A[A] = True
        cand = np.flatnonzero(exact & ~in_A & (nu > alpha))
        cand = cand[np.argsort(-nu[cand], kind="stable")]
        n_add = max(n_grow, len(A))
        ws = np.sort(np.concatenate([A, cand[:n_add]])).astype(np.intp)
        n_grow = 2 * n_grow
        n_ws = len(ws)
        if n_ws == 0:  # nothing violates yet the gap is open: numerical floor
            break
        cols = _cols(ws, n_orient)
        GT = np.ascontiguousarray(G[:, cols].T)
        pos_in_ws = np.searchsorted(ws, A)
        Zws = np.zeros((n_ws * n_orient, K2), dtype=dtype)
        Xws = np.zeros((n_ws * n_orient, T), dtype=dtype)
        if len(A):
            rows = _cols(pos_in_ws, n_orient)
            Zws[rows] = ZA
            Xws[rows] = XA
        act = np.zeros(n_ws, np.uint8)
        act[pos_in_ws] = 1
        R = np.ascontiguousarray(R)
        # growing working set: loose target, an early first gap check while it is
        # loose; complete (nothing new violates): close the gap below tol with
        # some margin for the outer certificate
        if n_ws > len(A):
            tol_in = max(tol * INNER_TOL_RATIO, INNER_GAP_FRAC * gap)
            gap_start = INNER_GAP_START if tol_in > tol * INNER_TOL_RATIO else 0
        else:
            tol_in = tol * COMPLETE_TOL_RATIO
            gap_start = 0
        grams = _block_grams(GT, n_orient)
        lc_ws = lc[ws]
        # two-thread sweeps: helper thread for the sensor-space products
        xgram = _cross_grams(GT, n_orient, lc_ws) \
            if n_thr > 1 and N_INNER == 1 and n_ws >= PIPE_MIN_BLOCKS else None
        ws_w = w_space[ws] if w_space is not None else None
        wt_w = w_time[ws] if w_time is not None else None
        n_plain = min(maxit, ANDERSON_START) if ANDERSON_K else maxit
        if extrap is not None:
            extrap[:] = 0.0   # a new inner solve: no previous residual yet
        # only for inner solves that must close the gap below tol: earlier ones
        # stop at loose tolerances, where an earlier stop only reshapes the path
        ext = (rprev, extrap) if extrap is not None and tol_in <= tol else (None, None)
        # the inner products are small: one BLAS thread avoids oversubscription
        with _inner_blas_limit():
            # plain epochs first; a slow tail continues with Anderson acceleration
            # (same state: R, X, Z and the support are updated in place)
            st, it, g_in, p_in, d_in, n_act, hist, n_acc = _engine.bcd(
                plan, GT, M, R, Xws, Zws, act, lc_ws, ws_w, wt_w, alpha_space,
                alpha_time, n_orient, n_plain, tol_in, dgap_freq, work, 0, None, 0,
                grams, N_INNER, gap_start, xgram, n_thr, *ext)
            if st == _MAXIT and n_plain < maxit:
                n_a = int(act.sum())
                cap_rows = n_orient * max(min(n_ws, 2 * n_a + 8), 1)
                snap = np.empty(_engine.snap_size(plan, ANDERSON_K, cap_rows, n_chan),
                                dtype=dtype)
                st, it2, g_in, p_in, d_in, n_act, hist2, n_acc = _engine.bcd(
                    plan, GT, M, R, Xws, Zws, act, lc_ws, ws_w, wt_w, alpha_space,
                    alpha_time, n_orient, maxit - n_plain, tol_in, dgap_freq, work,
                    ANDERSON_K, snap, cap_rows, grams, N_INNER, 0, xgram, n_thr, *ext)
                del snap
                it += it2
                hist = np.concatenate([hist, hist2])
        if st >= 2:
            raise RuntimeError(f"TF-MxNE core failed: {_STATUS.get(st, st)}")
        n_iter += it
        E.extend(hist.tolist())
        act = act.astype(bool)
        A = ws[act]
        rows = _cols(np.flatnonzero(act), n_orient)
        ZA = Zws[rows]
        XA = Xws[rows]
    if not converged and gap < tol_user:
        # the margin was not reached (cap or stall), the caller's tolerance was
        converged, status = True, 0
    if not converged and stalled:
        warn(
            f"{warn_name} did not converge: the duality gap stalled at {gap:.3e} >= tol "
            f"{tol_user:.3e} for {STALL_OUTER} outer iterations (objective {E[-1]:.6e}: tol "
            "may be below the rounding error of the objectives). Increase tol.",
            RuntimeWarning,
        )
    elif not converged:
        warn(
            f"{warn_name} did not converge: duality gap {gap:.3e} >= tol {tol_user:.3e} "
            f"after {n_outer} outer working-set iterations (cap {max_outer}) and "
            f"{n_iter} block coordinate descent epochs (maxit={maxit} per inner "
            "solve). Increase maxit or tol.",
            RuntimeWarning,
        )
    # rows in increasing source order, whatever order the support was built in
    order = np.argsort(A, kind="stable")
    rows = _cols(order, n_orient)
    res = _SolveResult()
    res.positions = A[order]
    res.Z = ZA[rows]
    res.X = XA[rows]
    res.R = R
    res.theta = theta
    res.gap = gap
    res.p_obj = E[-1] if E else np.inf
    res.d_obj = best_d
    res.E = E
    res.n_iter = n_iter
    res.n_outer = n_outer
    res.converged = converged
    res.status = status
    res.nu_max = nu_max
    return res


def _debias(M, G_A, X, n_orient):
    """Exact debiasing: min ||M - G_A diag(d) X||^2 s.t. d >= 1, tied per position.

    Solved as a bound-constrained least squares problem on the small Gram matrix
    of the fitted components (NNLS on its Cholesky factor), instead of MNE's
    FISTA, which can stop unconverged after 1000 iterations.
    """
    n_src = X.shape[0]
    if n_src == 0:
        return np.ones(0)
    n_b = n_src // n_orient
    GG = G_A.T @ G_A
    XX = X @ X.T
    H = (GG * XX).reshape(n_b, n_orient, n_b, n_orient).sum(axis=(1, 3))
    b = np.einsum("ij,ij->i", G_A.T @ M, X).reshape(n_b, n_orient).sum(axis=1)
    q = b - H.sum(axis=1)  # gradient at d = 1, with e = d - 1 >= 0
    scale = max(np.trace(H), np.finfo(float).tiny)
    ridge = 1e-13 * scale / n_b
    try:
        L = linalg.cholesky(H + ridge * np.eye(n_b), lower=True)
        y = linalg.solve_triangular(L, q, lower=True)
    except linalg.LinAlgError:
        w, V = linalg.eigh(H)
        w = np.maximum(w, ridge)
        L = V * np.sqrt(w)
        y = (V.T @ q) / np.sqrt(w)
    try:
        e, _ = nnls(L.T, y, maxiter=100 * max(n_b, 10))
    except RuntimeError:
        warn("Debiasing did not converge: the non-negative least squares solver hit "
             "its iteration cap; returning the estimate without debiasing.",
             RuntimeWarning)
        return np.ones(n_src)
    d = 1.0 + e
    logger.info(f"Debiasing: exact bound-constrained solve on {n_b} position(s)")
    return np.repeat(d, n_orient)


# --------------------------------------------------------------------------
# public solvers
# --------------------------------------------------------------------------
def _solver_core(M, G, alpha_space, alpha_time, wsize, tstep, n_orient, maxit, tol,
                 dgap_freq, dtype=np.float64, max_outer=None):
    M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep = \
        _check_problem(M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq,
                       wsize, tstep, dtype=dtype)
    frame = TFFrame(M.shape[1], wsize, tstep, dtype=dtype)
    logger.info("Using block coordinate descent with active set approach")
    res = _tf_solve(M, G, alpha_space, alpha_time, frame, n_orient, maxit, tol,
                    dgap_freq, max_outer=max_outer)
    return M, G, n_orient, frame, res


@verbose
def tf_mixed_norm_solver(M, G, alpha_space, alpha_time, wsize=64, tstep=4, n_orient=1,
                         maxit=200, tol=1e-8, active_set_size=None, debias=True,
                         return_gap=False, dgap_freq=10, verbose=None):
    """Solve TF-MxNE (L21 + L1 on STFT coefficients) on arrays.

    Same parameters and returns as
    :func:`mne.inverse_sparse.mxne_optim.tf_mixed_norm_solver`.

    Parameters
    ----------
    M : array, shape (n_sensors, n_times)
        The (whitened) data.
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    alpha_space : float >= 0
        Regularization of the spatial (L21) penalty.
    alpha_time : float >= 0
        Regularization of the temporal (L1) penalty.
    wsize : int | list of int
        Window length(s) of the STFT; multiples of 4.
    tstep : int | list of int
        Hop(s) of the STFT; multiples of 2 dividing ``wsize`` (same length).
    n_orient : int
        Number of dipoles per position (1, 3, or any positive integer).
    maxit : int
        Maximum number of block coordinate descent epochs per inner solve.
    tol : float > 0
        Stop when the duality gap of the full problem is below ``tol``.
    active_set_size : None
        Accepted and ignored, as in MNE.
    debias : bool
        Remove the amplitude bias of the estimate.
    return_gap : bool
        Also return the final duality gap.
    dgap_freq : int | np.inf
        Compute the gap of the inner problem every ``dgap_freq`` epochs.
    %(verbose)s

    Returns
    -------
    X : array, shape (n_active, n_times)
        Time courses of the active sources.
    active_set : array of bool, shape (n_sources,)
        Mask of the active sources.
    E : list of float
        Primal objective at each gap evaluation.
    gap : float
        The final duality gap (if ``return_gap``).

    Notes
    -----
    The outer loop is capped at :data:`MAX_OUTER_ITER` working-set iterations;
    reaching the cap emits a ``RuntimeWarning`` with the gap reached. ``M`` and
    ``G`` are used in C order (an F-ordered ``G`` is copied), so the result does
    not depend on the caller's memory layout.
    """
    check_bool(debias, "debias")
    check_bool(return_gap, "return_gap")
    M, G, n_orient, frame, res = _solver_core(
        M, G, alpha_space, alpha_time, wsize, tstep, n_orient, maxit, tol, dgap_freq)
    n_src = G.shape[1]
    active_set = np.zeros(n_src, bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if debias and active_set.any():
        X = X * _debias(M, G[:, active_set], X, n_orient)[:, None]
    if return_gap:
        return X, active_set, res.E, res.gap
    return X, active_set, res.E


def _reweights(frame, Z, n_orient):
    """irTF-MxNE weights from the previous coefficients (internal layout).

    ``w_space = 1 / (2 sqrt(||Z_j||))``, ``w_time = 1 / (2 sqrt(|Z_jk|))`` and 0
    (coefficient held at zero) where ``Z_jk == 0``.
    """
    n_pos = Z.shape[0] // n_orient
    mag2 = (Z.astype(np.float64) ** 2).reshape(n_pos, n_orient, -1, 2).sum(axis=(1, 3))
    mult = frame.plan.multiplicity.astype(np.float64)
    g_space = np.sqrt(np.sqrt(mag2 @ mult))
    g_time = np.sqrt(np.sqrt(mag2))
    with np.errstate(divide="ignore"):
        w_time = np.where(g_time > 0, 1.0 / (2.0 * g_time), 0.0)
    return 1.0 / (2.0 * g_space), w_time, g_space, g_time


def _iterative_core(M, G, alpha_space, alpha_time, n_tfmxne_iter, frame, n_orient,
                    maxit, tol, dgap_freq, *, log_name="iterative_tf_mixed_norm_solver",
                    max_outer=None, Z_init=None, init_positions=None, progress=None,
                    screen_init=None, on_outer=None):
    """Reweighted solves; returns (result on the final support, E, n_iter_done).

    ``progress(k)`` is called after reweighting ``k`` (0-based); ``on_outer`` is
    passed to every solve (see :func:`_tf_solve_impl`).
    """
    n_pos = G.shape[1] // n_orient
    lc_all = _lipschitz(G, n_orient)
    positions = np.arange(n_pos)
    E = []
    res = None
    Z = Z_init
    Zpos = init_positions
    mult = frame.plan.multiplicity.astype(np.float64)
    k_done = 0
    for k in range(n_tfmxne_iter):
        k_done = k + 1
        if k == 0:
            w_space = w_time = None
            Gk = G
            lck = lc_all
            z0, p0 = Z, Zpos
        else:
            w_space, w_time, _, _ = _reweights(frame, res.Z, n_orient)
            positions = res.positions.copy()
            Gk = G[:, _cols(positions, n_orient)]
            lck = lc_all[positions]
            z0, p0 = res.Z, np.arange(len(positions))
        Z_prev = None if res is None else res.Z.copy()
        pos_prev = None if res is None else res.positions.copy()
        new = _tf_solve(M, Gk, alpha_space, alpha_time, frame, n_orient, maxit, tol,
                        dgap_freq, lc=lck, w_space=w_space, w_time=w_time, Z_init=z0,
                        init_positions=p0, max_outer=max_outer, warn_name=log_name,
                        screen_init=screen_init if k == 0 else None, on_outer=on_outer)
        new.positions = positions[new.positions]  # back to indices into G
        res = new
        if progress is not None:
            progress(k)
        if len(res.positions):
            _, _, g_space, g_time = _reweights(frame, res.Z, n_orient)
            GX = G[:, _cols(res.positions, n_orient)] @ res.X
            p_obj = (0.5 * float(np.sum((M - GX) ** 2)) + alpha_space * g_space.sum()
                     + alpha_time * float((g_time @ mult).sum()))
            E.append(p_obj)
            logger.info(f"Iteration {k + 1}: active set size={len(res.positions)}, "
                        f"E={p_obj:f}")
            if k > 0 and pos_prev is not None and np.array_equal(pos_prev, res.positions):
                zc = res.Z.astype(np.float64).reshape(len(res.Z), -1, 2)
                zp = Z_prev.astype(np.float64).reshape(len(Z_prev), -1, 2)
                max_diff = float(np.sqrt(((zc - zp) ** 2).sum(-1)).max())
                if max_diff < tol:
                    logger.info(f"Convergence reached after {k} reweightings!")
                    break
        else:
            E.append(0.5 * float(np.sum(M ** 2)))
            logger.info(f"Iteration {k + 1}: as_size=0, E={E[-1]:f}")
            break
    return res, E, k_done


@verbose
def iterative_tf_mixed_norm_solver(M, G, alpha_space, alpha_time, n_tfmxne_iter,
                                   wsize=64, tstep=4, maxit=3000, tol=1e-8, debias=True,
                                   n_orient=1, dgap_freq=10, verbose=None):
    """Solve irTF-MxNE (iteratively reweighted TF-MxNE) on arrays.

    Same parameters and returns as
    :func:`mne.inverse_sparse.mxne_optim.iterative_tf_mixed_norm_solver`: the
    first iteration is TF-MxNE; each following one reweights the L21 and L1
    penalties by ``1 / (2 sqrt(.))`` of the previous solution (a majorization of
    the L0.5 quasi-norms) on the previous support.

    Parameters
    ----------
    M : array, shape (n_sensors, n_times)
        The (whitened) data.
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    alpha_space : float >= 0
        Regularization of the spatial penalty.
    alpha_time : float >= 0
        Regularization of the temporal penalty.
    n_tfmxne_iter : int >= 1
        Number of reweighting iterations.
    wsize, tstep : int | list of int
        STFT window length(s) and hop(s).
    maxit : int
        Maximum number of BCD epochs per inner solve.
    tol : float > 0
        Duality-gap tolerance of each solve, and tolerance on the change of the
        coefficients between reweightings.
    debias : bool
        Remove the amplitude bias of the estimate.
    n_orient : int
        Number of dipoles per position.
    dgap_freq : int | np.inf
        Frequency of the inner gap evaluations.
    %(verbose)s

    Returns
    -------
    X : array, shape (n_active, n_times)
        Time courses of the active sources.
    active_set : array of bool, shape (n_sources,)
        Mask of the active sources.
    E : list of float
        Objective (with the L0.5 penalties) after each reweighting.
    """
    n_tfmxne_iter = check_int(n_tfmxne_iter, "n_tfmxne_iter", 1)
    check_bool(debias, "debias")
    M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep = \
        _check_problem(M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq,
                       wsize, tstep)
    frame = TFFrame(M.shape[1], wsize, tstep)
    M = np.ascontiguousarray(M)
    res, E, _ = _iterative_core(M, G, alpha_space, alpha_time, n_tfmxne_iter, frame,
                                n_orient, maxit, tol, dgap_freq)
    active_set = np.zeros(G.shape[1], bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if debias and active_set.any():
        X = X * _debias(M, G[:, active_set], X, n_orient)[:, None]
    return X, active_set, E


# --------------------------------------------------------------------------
# certificates on MNE's coefficient layout (for users and tests)
# --------------------------------------------------------------------------
def norm_epsilon_inf(G, R, l1_ratio, n_orient, wsize=64, tstep=4, w_space=None,
                     w_time=None):
    """Max over positions of the epsilon norm of ``Phi(G_j^T R)`` (exact).

    ``w_time`` uses MNE's coefficient order, shape (n_positions, n_coefs).
    """
    G = check_real_array(G, "G", 2, dtype=np.float64)
    R = check_real_array(R, "R", 2, dtype=np.float64)
    l1_ratio = check_float(l1_ratio, "l1_ratio", 0.0, 1.0)
    n_orient = _check_shapes(G, R, n_orient, "R")
    frame = TFFrame(R.shape[1], wsize, tstep)
    GtR = np.ascontiguousarray(G.T @ R)
    wt = frame.from_mne_weights(w_time) if w_time is not None else None
    ws = None if w_space is None else np.ascontiguousarray(w_space, dtype=np.float64)
    return _dual_norm_screened(frame.plan, GtR, int(n_orient), l1_ratio, ws, wt)[0]


def dgap_l21l1(M, G, Z, active_set, alpha_space, alpha_time, wsize, tstep, n_orient,
               w_space=None, w_time=None):
    """Duality gap of TF-MxNE at ``Z`` (MNE layout, rows of the active sources).

    Returns
    -------
    gap, p_obj, d_obj : float
    """
    M = check_real_array(M, "M", 2, dtype=np.float64)
    G = check_real_array(G, "G", 2, dtype=np.float64)
    n_orient = _check_shapes(G, M, n_orient, "M")
    alpha_space, alpha_time = _check_alphas(alpha_space, alpha_time)
    frame = TFFrame(M.shape[1], wsize, tstep)
    active_set = np.asarray(active_set)
    if active_set.dtype != bool or active_set.shape != (G.shape[1],):
        raise ValueError(
            f"active_set must be a boolean mask of shape ({G.shape[1]},) (one entry per "
            f"column of G), got {_short(active_set)}")
    n_act = int(active_set.sum())
    if len(Z) != n_act or (n_act and np.ndim(Z) != 2):
        raise ValueError(
            f"Z must have one row per active source ({n_act}), got shape "
            f"{np.shape(Z)}")
    Zi = frame.from_mne(Z) if len(Z) else np.zeros((0, 2 * frame.n_coefs))
    X = frame.phiT(Zi)
    R = M - G[:, active_set] @ X
    wt = frame.from_mne_weights(w_time) if w_time is not None else None
    act_pos = active_set[::n_orient]
    l21, l1 = _engine.penalties(frame.plan, np.ascontiguousarray(Zi), n_orient,
                                wt[act_pos] if wt is not None else None)
    ws = np.ones(len(l21)) if w_space is None else np.asarray(w_space)[act_pos]
    p_obj = 0.5 * float(np.sum(R**2)) + alpha_space * float(l21 @ ws) + \
        alpha_time * float(l1.sum())
    nu = _dual_norm_screened(
        frame.plan, np.ascontiguousarray(G.T @ R), n_orient,
        alpha_time / (alpha_space + alpha_time),
        None if w_space is None else np.ascontiguousarray(w_space, dtype=np.float64),
        wt)[0]
    d_obj = _dual_objective(float(np.sum(R**2)), float(np.vdot(R, M)), nu,
                            alpha_space + alpha_time)[0]
    return p_obj - d_obj, p_obj, d_obj
