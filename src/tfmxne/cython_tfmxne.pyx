# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public Cython API of tfmxne (see ``cython_tfmxne.pxd`` for the documentation).

Thin: the entry points check their arguments and call the core's functions
(``tfmxne._core._engine``, cimported through ``_core/_engine.pxd`` and bound at
import time): the STFT kernels and ``tf_solve``, the one solver, which
``tfmxne.tf_mixed_norm_solver`` runs too.
"""

import numpy as np

from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy

from ._core._types cimport floating, tf_plan, tf_dict, tf_problem
from ._core._engine cimport (
    stft_rows,
    istft_rows,
    tf_solve,
    tfx_params_default,
    tfx_result_clear,
    set_param,
)

from ._core._engine import TFPlan
from ._validation import check_int, check_wsize_tstep

# status codes for Python callers (cast: C enum values)
OK = <int> TFX_OK
MAXIT = <int> TFX_MAXIT
NONFINITE = <int> TFX_NONFINITE
BAD_ARG = <int> TFX_BAD_ARG
NO_MEMORY = <int> TFX_NO_MEMORY
INTERRUPTED = <int> TFX_INTERRUPTED


# --------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------
cdef inline Py_ssize_t _round64(Py_ssize_t n) noexcept nogil:
    return (n + 63) // 64 * 64


cdef tfx_plan_t* tfx_plan_new(int n_times, int n_dicts, const int* wsizes,
                              const int* tsteps, int is_double) except NULL:
    """Build a plan in one malloc block (caller frees with tfx_plan_free)."""
    cdef int i
    cdef Py_ssize_t total, off, nbytes
    cdef char* blk
    cdef tfx_plan_t* plan
    cdef tf_dict* d
    cdef tf_plan* core
    cdef const unsigned char[::1] raw
    if n_dicts < 1 or n_dicts > TFX_MAX_DICTS:
        raise ValueError(f"n_dicts must be in [1, {TFX_MAX_DICTS}], got n_dicts={n_dicts}")
    if wsizes == NULL or tsteps == NULL:
        raise ValueError("wsizes and tsteps must not be NULL")
    check_int(n_times, "n_times", 1)
    ws, ts = check_wsize_tstep([wsizes[i] for i in range(n_dicts)],
                               [tsteps[i] for i in range(n_dicts)])
    dtype = np.float64 if is_double else np.float32
    tp = TFPlan(n_times, ws, ts, dtype)
    tp64 = tp if is_double else TFPlan(n_times, ws, ts, np.float64)
    arrays = [np.ascontiguousarray(a, dtype=dtype) for a in tp.arrays]
    total = _round64(sizeof(tfx_plan_t)) + _round64(sizeof(tf_plan))
    for a in arrays:
        total += _round64(a.nbytes)
    blk = <char*> malloc(total)
    if blk == NULL:
        raise MemoryError(f"tfx_plan_new: cannot allocate {total} bytes")
    memset(blk, 0, sizeof(tfx_plan_t))
    plan = <tfx_plan_t*> blk
    off = _round64(sizeof(tfx_plan_t))
    core = <tf_plan*> (blk + off)
    memset(core, 0, sizeof(tf_plan))
    plan.core = core
    off += _round64(sizeof(tf_plan))
    ptrs = []
    for a in arrays:
        nbytes = a.nbytes
        if nbytes:
            raw = a.view(np.uint8).reshape(-1)
            memcpy(blk + off, &raw[0], nbytes)
        ptrs.append(off)
        off += _round64(nbytes)
    plan.n_times = n_times
    plan.n_dicts = n_dicts
    plan.n_coefs = tp.n_coefs
    plan.max_frames = tp.max_frames
    plan.is_double = 1 if is_double else 0
    core.n_times = n_times
    core.n_dicts = n_dicts
    core.n_coefs = tp.n_coefs
    core.max_frames = tp.max_frames
    core.is_double = plan.is_double
    core.mult = blk + <Py_ssize_t> ptrs[4 * n_dicts]
    coef_off = 0
    for i in range(n_dicts):
        d = &core.d[i]
        d.wsize = tp.wsizes[i]
        d.folded = 1 if tp.folded[i] else 0
        d.tstep = tp.tsteps[i]
        d.n_step = tp.n_steps[i]
        d.n_freq = tp.n_freqs[i]
        d.coef_off = coef_off
        d.pad_off = (d.wsize - d.tstep) // 2
        d.fa = blk + <Py_ssize_t> ptrs[4 * i]
        d.fs = blk + <Py_ssize_t> ptrs[4 * i + 1]
        d.wa = blk + <Py_ssize_t> ptrs[4 * i + 2]
        d.wsy = blk + <Py_ssize_t> ptrs[4 * i + 3]
        wa64 = np.asarray(tp64.arrays[4 * i + 2], dtype=np.float64)
        d.wa_max = float(np.sqrt((wa64 ** 2).sum(axis=1)).max()) if d.n_step > 0 else 0.0
        coef_off += d.n_step * d.n_freq
        plan.wsize[i] = d.wsize
        plan.tstep[i] = d.tstep
        plan.n_step[i] = d.n_step
        plan.n_freq[i] = d.n_freq
    return plan


cdef void tfx_plan_free(tfx_plan_t* plan) noexcept nogil:
    free(plan)


cdef Py_ssize_t tfx_stft_work_size(const tfx_plan_t* plan) noexcept nogil:
    if plan == NULL:
        return 0
    return plan.max_frames


# --------------------------------------------------------------------------
# STFT / ISTFT
# --------------------------------------------------------------------------
cdef inline bint _precision_ok(const tfx_plan_t* plan, floating* dummy) noexcept nogil:
    if floating is double:
        return plan.is_double != 0
    else:
        return plan.is_double == 0


cdef int _transform(const tfx_plan_t* plan, const floating* src, int ld_src,
                    floating* dst, int ld_dst, int n_rows, floating* work,
                    bint inverse) noexcept nogil:
    """STFT of time rows into coefficient rows, or (``inverse``) back, with the
    argument checks and the scratch (``work`` or an own allocation) of the C API."""
    cdef floating* own = NULL
    cdef int ld_time = ld_dst if inverse else ld_src
    cdef int ld_coef = ld_src if inverse else ld_dst
    if plan == NULL or not _precision_ok(plan, dst) or n_rows < 0:
        return TFX_BAD_ARG
    if n_rows == 0:
        return TFX_OK
    if (src == NULL or dst == NULL or ld_time < plan.n_times
            or ld_coef < 2 * plan.n_coefs):
        return TFX_BAD_ARG
    if work == NULL:
        own = <floating*> malloc(plan.max_frames * sizeof(floating))
        if own == NULL:
            return TFX_NO_MEMORY
        work = own
    if inverse:
        istft_rows(<const tf_plan*> plan.core, src, n_rows, ld_src, dst, ld_dst, plan.n_times, work)
    else:
        stft_rows(<const tf_plan*> plan.core, src, n_rows, ld_src, dst, ld_dst, work)
    free(own)
    return TFX_OK


cdef int d_stft(const tfx_plan_t* plan, const double* x, int n_rows, int ldx,
                double* z, int ldz, double* work) noexcept nogil:
    return _transform(plan, x, ldx, z, ldz, n_rows, work, False)


cdef int s_stft(const tfx_plan_t* plan, const float* x, int n_rows, int ldx,
                float* z, int ldz, float* work) noexcept nogil:
    return _transform(plan, x, ldx, z, ldz, n_rows, work, False)


cdef int d_istft(const tfx_plan_t* plan, const double* z, int n_rows, int ldz,
                 double* x, int ldx, double* work) noexcept nogil:
    return _transform(plan, z, ldz, x, ldx, n_rows, work, True)


cdef int s_istft(const tfx_plan_t* plan, const float* z, int n_rows, int ldz,
                 float* x, int ldx, float* work) noexcept nogil:
    return _transform(plan, z, ldz, x, ldx, n_rows, work, True)


# --------------------------------------------------------------------------
# Solver: the core's tf_solve
# --------------------------------------------------------------------------
cdef void tfx_params_init(tfx_params_t* params, double alpha_space, double alpha_time,
                          int n_orient) noexcept nogil:
    if params == NULL:
        return
    tfx_params_default(params)
    params.alpha_space = alpha_space
    params.alpha_time = alpha_time
    params.n_orient = n_orient


cdef int _solve(const tfx_plan_t* plan, const tfx_params_t* params,
                const floating* M, const floating* G, int n_chan, int n_sources,
                const floating* w_space, const floating* w_time, int n_init,
                const int* init_pos, const floating* Z_init, tfx_result_t* result,
                tfx_info_t* info) noexcept nogil:
    cdef tf_problem pb
    if info != NULL:
        memset(info, 0, sizeof(tfx_info_t))
    if plan == NULL or result == NULL or not _precision_ok(plan, <floating*> M):
        if info != NULL:
            info.status = TFX_BAD_ARG
        if result != NULL:
            memset(result, 0, sizeof(tfx_result_t))
        return TFX_BAD_ARG
    memset(&pb, 0, sizeof(tf_problem))
    pb.n_chan = n_chan
    pb.n_sources = n_sources
    pb.M = M
    pb.G = G
    pb.w_space = w_space
    pb.w_time = w_time
    pb.n_init = n_init
    pb.init_pos = init_pos
    pb.Z_init = Z_init
    return tf_solve(<const tf_plan*> plan.core, params, &pb, result, info)


cdef int d_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const double* M, const double* G, int n_chan, int n_sources,
                         const double* w_space, const double* w_time, int n_init,
                         const int* init_pos, const double* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil:
    return _solve(plan, params, M, G, n_chan, n_sources, w_space, w_time, n_init,
                  init_pos, Z_init, result, info)


cdef int s_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const float* M, const float* G, int n_chan, int n_sources,
                         const float* w_space, const float* w_time, int n_init,
                         const int* init_pos, const float* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil:
    return _solve(plan, params, M, G, n_chan, n_sources, w_space, w_time, n_init,
                  init_pos, Z_init, result, info)


cdef void tfx_result_free(tfx_result_t* result) noexcept nogil:
    tfx_result_clear(result)


# --------------------------------------------------------------------------
# Private Python hooks (tests): the C entry points on NumPy arrays
# --------------------------------------------------------------------------
cdef tfx_plan_t* _new_plan(int T, wsize, tstep, bint is_double) except NULL:
    ws, ts = check_wsize_tstep(wsize, tstep)
    cdef int wsv[16]
    cdef int tsv[16]
    cdef int i, n_d = len(ws)
    if n_d > 16:
        raise ValueError("too many dictionaries")
    for i in range(n_d):
        wsv[i] = ws[i]
        tsv[i] = ts[i]
    return tfx_plan_new(T, n_d, wsv, tsv, is_double)


cdef object _copy(const void* ptr, Py_ssize_t n_rows, Py_ssize_t n_cols, dtype):
    arr = np.empty((n_rows, n_cols), dtype=dtype)
    if arr.size:
        memcpy(<void*> <size_t> arr.ctypes.data, ptr, arr.nbytes)
    return arr


def _solve_arrays(M, G, double alpha_space, double alpha_time, wsize, tstep,
                  int n_orient=1, int maxit=200, double tol=1e-8, dtype=np.float64,
                  w_space=None, w_time=None, init_positions=None, Z_init=None,
                  **options):
    """Run ``d_/s_tf_mxne_solve`` without the GIL on arrays (tests).

    ``options``: fields of ``tfx_params_t`` (``n_threads``, ``dgap_freq``,
    ``max_outer`` ...). Returns ``(X, active, info, result)``: ``X`` (n_sources,
    n_times) and the boolean ``active`` mask over sources, the info fields, and
    the result arrays (``positions``, ``Z``, ``X``, ``R``, ``theta``, ``obj``).
    """
    dtype = np.dtype(dtype)
    M = np.ascontiguousarray(M, dtype=dtype)
    G = np.ascontiguousarray(G, dtype=dtype)
    cdef int n_chan = M.shape[0], T = M.shape[1], n_src = G.shape[1], st, i, n_init = 0
    if G.shape[0] != n_chan:
        raise ValueError("M and G must have the same number of rows")
    ws_a = None if w_space is None else np.ascontiguousarray(w_space, dtype=dtype)
    wt_a = None if w_time is None else np.ascontiguousarray(w_time, dtype=dtype)
    z_a = None if Z_init is None else np.ascontiguousarray(Z_init, dtype=dtype)
    pos_a = None if init_positions is None else np.ascontiguousarray(
        init_positions, dtype=np.intc)
    if pos_a is not None:
        n_init = len(pos_a)
    cdef int[::1] pos_v = pos_a if n_init else None
    cdef tfx_params_t prm
    cdef tfx_result_t res
    cdef tfx_info_t info
    tfx_params_init(&prm, alpha_space, alpha_time, n_orient)
    prm.maxit = maxit
    prm.tol = tol
    for key, val in options.items():
        set_param(&prm, key, val)
    cdef tfx_plan_t* plan = _new_plan(T, wsize, tstep, dtype == np.float64)
    cdef double[:, ::1] Md, Gd
    cdef float[:, ::1] Ms, Gs
    cdef double[::1] wsd
    cdef double[:, ::1] wtd, zd
    cdef float[::1] wss
    cdef float[:, ::1] wts, zs
    K2 = 2 * plan.n_coefs
    n_pos = n_src // n_orient if n_orient > 0 else 0
    if (n_init and z_a.shape != (n_init * n_orient, K2)) or (
            ws_a is not None and ws_a.shape != (n_pos,)) or (
            wt_a is not None and wt_a.shape != (n_pos, plan.n_coefs)):
        tfx_plan_free(plan)
        raise ValueError("_solve_arrays: weights or warm start of the wrong shape")
    try:
        if dtype == np.float64:
            Md, Gd, wsd, wtd, zd = M, G, ws_a, wt_a, z_a
            with nogil:
                st = d_tf_mxne_solve(
                    plan, &prm, &Md[0, 0], &Gd[0, 0], n_chan, n_src,
                    &wsd[0] if wsd is not None else NULL,
                    &wtd[0, 0] if wtd is not None else NULL, n_init,
                    &pos_v[0] if n_init else NULL,
                    &zd[0, 0] if n_init else NULL, &res, &info)
        else:
            Ms, Gs, wss, wts, zs = M, G, ws_a, wt_a, z_a
            with nogil:
                st = s_tf_mxne_solve(
                    plan, &prm, &Ms[0, 0], &Gs[0, 0], n_chan, n_src,
                    &wss[0] if wss is not None else NULL,
                    &wts[0, 0] if wts is not None else NULL, n_init,
                    &pos_v[0] if n_init else NULL,
                    &zs[0, 0] if n_init else NULL, &res, &info)
        positions = np.array([res.positions[i] for i in range(res.n_active)],
                             dtype=np.intp)
        out = dict(positions=positions)
        out["Z"] = _copy(res.Z, res.n_active * n_orient, K2, dtype)
        out["X"] = _copy(res.X, res.n_active * n_orient, T, dtype)
        out["R"] = _copy(res.R, n_chan if res.R != NULL else 0, T, dtype)
        out["theta"] = _copy(res.theta, n_chan if res.theta != NULL else 0, T, dtype)
        out["obj"] = np.array([res.obj[i] for i in range(res.n_obj)])
        out["debias"] = None if res.debias == NULL else np.array(
            [res.debias[i] for i in range(res.n_active)])
    finally:
        tfx_result_clear(&res)
        tfx_plan_free(plan)
    X = np.zeros((n_src, T), dtype=dtype)
    active = np.zeros(n_src, dtype=bool)
    cols = (positions[:, None] * n_orient + np.arange(n_orient)).ravel()
    X[cols] = out["X"]
    active[cols] = True
    return X, active, dict(
        status=st, n_iter=info.n_iter, n_outer=info.n_outer, n_active=info.n_active,
        gap=info.gap, p_obj=info.p_obj, d_obj=info.d_obj, stalled=info.stalled,
        n_threads=info.n_threads, debias_status=info.debias_status,
        n_iter_start=info.n_iter_start), out


def _plan_info(int n_times, wsizes, tsteps, bint is_double=True):
    """Build a plan with ``tfx_plan_new``, return its public fields, free it."""
    cdef int ws[16]
    cdef int ts[16]
    cdef int i, n_d = len(wsizes)
    if n_d > 16 or len(tsteps) != n_d:
        raise ValueError("wsizes and tsteps must have the same length (at most 16)")
    for i in range(n_d):
        ws[i] = wsizes[i]
        ts[i] = tsteps[i]
    cdef tfx_plan_t* plan = tfx_plan_new(n_times, n_d, ws, ts, is_double)
    out = dict(n_times=plan.n_times, n_dicts=plan.n_dicts, n_coefs=plan.n_coefs,
               max_frames=plan.max_frames, is_double=plan.is_double,
               wsize=[plan.wsize[i] for i in range(n_d)],
               tstep=[plan.tstep[i] for i in range(n_d)],
               n_step=[plan.n_step[i] for i in range(n_d)],
               n_freq=[plan.n_freq[i] for i in range(n_d)],
               work_size=tfx_stft_work_size(plan))
    tfx_plan_free(plan)
    return out
