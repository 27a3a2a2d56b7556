# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public Cython API of tfmxne (see ``cython_tfmxne.pxd`` for the documentation).

Implemented on the kernels of ``tfmxne._core._engine``, cimported through
``_core/_engine.pxd`` (Cython exports each fused specialisation of those ``cdef``
functions in ``_engine.__pyx_capi__`` and binds them here at import time). The
outer working-set loop of ``tfmxne.solver._tf_solve`` is restated here in C so
that a whole solve runs without the GIL.
"""

import numpy as np

from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.stdlib cimport malloc, calloc, free, qsort
from libc.string cimport memset, memcpy

from ._core._types cimport floating, tf_plan, tf_dict, eps_item, tf_info
from ._core._types cimport TFX_OK, TFX_MAXIT, TFX_NONFINITE, TFX_BAD_ARG, TFX_MAX_DICTS
from ._core._blas cimport gemm_rm, dot
from ._core._engine cimport (
    stft_rows,
    istft_rows,
    eps_norm_block,
    penalty_block,
    scaled_dual,
    bcd_solve,
)

from ._core._engine import TFPlan
from ._validation import check_int, check_wsize_tstep

# constants of this C-level working-set loop (simpler than tfmxne.solver's, which
# tunes its own: see the constants there)
cdef int MAX_OUTER = 100
cdef int WS_START = 10
cdef int ANDERSON_K = 5
cdef int N_INNER = 10
cdef double INNER_TOL_RATIO = 0.1
cdef int DGAP_FREQ = 10

# status codes for Python callers (cast: the core's cpdef enum has no Python module)
OK = <int> TFX_OK
MAXIT = <int> TFX_MAXIT
NONFINITE = <int> TFX_NONFINITE
BAD_ARG = <int> TFX_BAD_ARG
NO_MEMORY = <int> TFX_NO_MEMORY


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
    total = _round64(sizeof(tfx_plan_t))
    for a in arrays:
        total += _round64(a.nbytes)
    blk = <char*> malloc(total)
    if blk == NULL:
        raise MemoryError(f"tfx_plan_new: cannot allocate {total} bytes")
    memset(blk, 0, sizeof(tfx_plan_t))
    plan = <tfx_plan_t*> blk
    off = _round64(sizeof(tfx_plan_t))
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
    plan.core.n_times = n_times
    plan.core.n_dicts = n_dicts
    plan.core.n_coefs = tp.n_coefs
    plan.core.max_frames = tp.max_frames
    plan.core.is_double = plan.is_double
    plan.core.mult = blk + <Py_ssize_t> ptrs[4 * n_dicts]
    coef_off = 0
    for i in range(n_dicts):
        d = &plan.core.d[i]
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
        istft_rows(&plan.core, src, n_rows, ld_src, dst, ld_dst, plan.n_times, work)
    else:
        stft_rows(&plan.core, src, n_rows, ld_src, dst, ld_dst, work)
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
# Solver
# --------------------------------------------------------------------------
ctypedef struct _cand:
    double key
    int idx


cdef int _cmp_cand(const void* a, const void* b) noexcept nogil:
    """Decreasing key, then increasing index (a total order: deterministic)."""
    cdef const _cand* x = <const _cand*> a
    cdef const _cand* y = <const _cand*> b
    if x.key > y.key:
        return -1
    if x.key < y.key:
        return 1
    return (x.idx > y.idx) - (x.idx < y.idx)


cdef double _dual_norms(const tf_plan* p, const floating* GtR, int n_pos, int o,
                       double rho, floating* Y, floating* frames, eps_item* items,
                       double* nu) noexcept nogil:
    """Max over positions of the epsilon norm of Phi(GtR_j) (unweighted), each
    stored in ``nu`` unless it is NULL."""
    cdef int j, T = p.n_times, K2 = 2 * p.n_coefs
    cdef double v, best = 0.0
    for j in range(n_pos):
        stft_rows(p, GtR + <Py_ssize_t> j * o * T, o, T, Y, K2, frames)
        v = eps_norm_block(p, Y, o, K2, <const floating*> NULL, 1.0, rho, items)
        if nu != NULL:
            nu[j] = v
        if v > best:
            best = v
    return best


cdef double _max_eig_sym(double* A, int n) noexcept nogil:
    """Largest eigenvalue of a small symmetric matrix (cyclic Jacobi, in place)."""
    cdef int sweep, p, q, k
    cdef double off, nrm, app, aqq, apq, theta, t, c, s, akp, akq, best
    if n == 1:
        return A[0]
    for sweep in range(100):
        off = 0.0
        nrm = 0.0
        for p in range(n):
            for q in range(n):
                nrm += A[p * n + q] * A[p * n + q]
                if p != q:
                    off += A[p * n + q] * A[p * n + q]
        if off <= 1e-30 * nrm:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = A[p * n + q]
                if apq == 0.0:
                    continue
                app = A[p * n + p]
                aqq = A[q * n + q]
                theta = (aqq - app) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0))
                c = 1.0 / sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):
                    akp = A[k * n + p]
                    akq = A[k * n + q]
                    A[k * n + p] = c * akp - s * akq
                    A[k * n + q] = s * akp + c * akq
                for k in range(n):
                    akp = A[p * n + k]
                    akq = A[q * n + k]
                    A[p * n + k] = c * akp - s * akq
                    A[q * n + k] = s * akp + c * akq
    best = A[0]
    for p in range(1, n):
        if A[p * n + p] > best:
            best = A[p * n + p]
    return best


cdef bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True


cdef int _solve(const tfx_plan_t* plan, const floating* M, const floating* G,
                int n_chan, int n_src, int n_orient, double alpha_s, double alpha_t,
                int maxit, double tol, floating* X_out, unsigned char* active_out,
                tfx_info_t* info) noexcept nogil:
    cdef tfx_info_t dummy
    cdef tf_info inner
    cdef const tf_plan* p
    cdef int T, K2, n_pos, o = n_orient, j, i, k, a, b, c, r, n_ws = 0, n_new
    cdef int n_A, n_cand, n_add, n_grow = WS_START, outer, status = TFX_MAXIT
    cdef Py_ssize_t cap_rows, n_snap, n_work
    cdef double alpha, rho, nR2, RM, pen, l21, l1, nu_max, d_obj, te
    cdef double best_d = -INFINITY, gap = INFINITY, p_obj = INFINITY
    cdef double extrap[2]
    cdef bint fail = False
    # persistent scratch
    cdef floating* R = NULL
    cdef floating* GtR = NULL
    cdef floating* rprev = NULL   # dual extrapolation: R - R_prev of the inner solve
    cdef floating* lc_all = NULL
    cdef floating* gram_all = NULL
    cdef floating* Y = NULL
    cdef floating* frames = NULL
    cdef eps_item* items = NULL
    cdef double* nu = NULL
    cdef double* eig = NULL
    cdef _cand* cand = NULL
    cdef unsigned char* in_ws = NULL
    cdef int* ws = NULL
    cdef int* ws_new = NULL
    cdef unsigned char* act = NULL
    cdef unsigned char* act_new = NULL
    cdef double* hist = NULL
    # state on the working set, and per-inner-solve scratch
    cdef floating* Zws = NULL
    cdef floating* Xws = NULL
    cdef floating* Znew = NULL
    cdef floating* Xnew = NULL
    cdef floating* GT = NULL
    cdef floating* lc = NULL
    cdef floating* gram = NULL
    cdef floating* work = NULL
    cdef floating* snap = NULL
    cdef int* tmp_i
    cdef unsigned char* tmp_u

    if info == NULL:
        info = &dummy
    memset(info, 0, sizeof(tfx_info_t))
    info.gap = INFINITY
    info.p_obj = INFINITY
    info.d_obj = -INFINITY
    info.status = TFX_BAD_ARG
    if plan == NULL or M == NULL or G == NULL or X_out == NULL:
        return TFX_BAD_ARG
    if not _precision_ok(plan, X_out):
        return TFX_BAD_ARG
    if n_chan < 1 or n_src < 1 or n_orient < 1 or n_src % n_orient != 0:
        return TFX_BAD_ARG
    if not (isfinite(alpha_s) and isfinite(alpha_t)) or alpha_s < 0 or alpha_t < 0 \
            or alpha_s + alpha_t <= 0:
        return TFX_BAD_ARG
    if maxit < 1 or not (tol > 0) or not isfinite(tol):
        return TFX_BAD_ARG
    p = &plan.core
    T = p.n_times
    K2 = 2 * p.n_coefs
    n_pos = n_src // o
    alpha = alpha_s + alpha_t
    rho = alpha_t / alpha
    if not _all_finite(M, <Py_ssize_t> n_chan * T) or \
            not _all_finite(G, <Py_ssize_t> n_chan * n_src):
        memset(X_out, 0, <Py_ssize_t> n_src * T * sizeof(floating))
        if active_out != NULL:
            memset(active_out, 0, n_src)
        info.status = TFX_NONFINITE
        return TFX_NONFINITE

    R = <floating*> malloc(<Py_ssize_t> n_chan * T * sizeof(floating))
    rprev = <floating*> malloc(<Py_ssize_t> n_chan * T * sizeof(floating))
    extrap[0] = 0.0
    extrap[1] = 0.0
    GtR = <floating*> malloc(<Py_ssize_t> n_src * T * sizeof(floating))
    lc_all = <floating*> malloc(n_pos * sizeof(floating))
    gram_all = <floating*> malloc(<Py_ssize_t> n_pos * o * o * sizeof(floating))
    Y = <floating*> malloc(<Py_ssize_t> o * (K2 if K2 > 0 else 1) * sizeof(floating))
    frames = <floating*> malloc(p.max_frames * sizeof(floating))
    items = <eps_item*> malloc((p.n_coefs if p.n_coefs > 0 else 1) * sizeof(eps_item))
    nu = <double*> malloc(n_pos * sizeof(double))
    eig = <double*> malloc(o * o * sizeof(double))
    cand = <_cand*> malloc(n_pos * sizeof(_cand))
    in_ws = <unsigned char*> malloc(n_pos)
    ws = <int*> malloc(n_pos * sizeof(int))
    ws_new = <int*> malloc(n_pos * sizeof(int))
    act = <unsigned char*> malloc(n_pos)
    act_new = <unsigned char*> malloc(n_pos)
    hist = <double*> malloc(maxit * sizeof(double))
    if (R == NULL or rprev == NULL or GtR == NULL or lc_all == NULL or gram_all == NULL
            or Y == NULL or frames == NULL or items == NULL or nu == NULL or eig == NULL
            or cand == NULL or in_ws == NULL or ws == NULL or ws_new == NULL
            or act == NULL or act_new == NULL or hist == NULL):
        status = TFX_NO_MEMORY
        fail = True

    if not fail:
        memcpy(R, M, <Py_ssize_t> n_chan * T * sizeof(floating))
        # block Gram matrices and Lipschitz constants ||G_j^T G_j||_2
        for j in range(n_pos):
            for a in range(o):
                for b in range(a, o):
                    v = 0.0
                    for c in range(n_chan):
                        v += (<double> G[<Py_ssize_t> c * n_src + j * o + a]
                              * G[<Py_ssize_t> c * n_src + j * o + b])
                    gram_all[(<Py_ssize_t> j * o + a) * o + b] = <floating> v
                    gram_all[(<Py_ssize_t> j * o + b) * o + a] = <floating> v
            for a in range(o * o):
                eig[a] = gram_all[<Py_ssize_t> j * o * o + a]
            lc_all[j] = <floating> _max_eig_sym(eig, o)

    outer = 0
    while not fail:
        outer += 1
        # ---- full-problem duality gap at the current iterate (exact dual norm)
        gemm_rm(True, False, n_src, T, n_chan, <floating> 1.0, G, n_src, R, T,
                <floating> 0.0, GtR, T)
        nu_max = _dual_norms(p, GtR, n_pos, o, rho, Y, frames, items, nu)
        nR2 = dot(n_chan * T, R, R)
        if not isfinite(nR2) or not isfinite(nu_max):
            status = TFX_NONFINITE
            fail = True
            break
        pen = 0.0
        for i in range(n_ws):
            if act[i]:
                penalty_block(p, Zws + <Py_ssize_t> i * o * K2, o, K2,
                              <const floating*> NULL, &l21, &l1)
                pen += alpha_s * l21 + alpha_t * l1
        p_obj = 0.5 * nR2 + pen
        RM = dot(n_chan * T, R, M)
        d_obj = scaled_dual(nR2, RM, nu_max, alpha)
        if d_obj > best_d:
            best_d = d_obj
        if extrap[0] == 2 and extrap[1] > 0 and p_obj - best_d >= tol:
            # the inner solve's best dual point was R + t (R - R_prev): certify it
            # on all positions (GtR <- GtR + t G^T (R - R_prev); nu[] keeps R's)
            te = extrap[1]
            gemm_rm(True, False, n_src, T, n_chan, <floating> te, G, n_src, rprev, T,
                    <floating> 1.0, GtR, T)
            d_obj = scaled_dual(
                nR2 + 2.0 * te * dot(n_chan * T, R, rprev)
                + te * te * dot(n_chan * T, rprev, rprev),
                RM + te * dot(n_chan * T, rprev, M),
                _dual_norms(p, GtR, n_pos, o, rho, Y, frames, items, NULL), alpha)
            if isfinite(d_obj) and d_obj > best_d:
                best_d = d_obj
        gap = p_obj - best_d
        if gap < tol:
            status = TFX_OK
            break
        if outer > MAX_OUTER:
            outer = MAX_OUTER
            status = TFX_MAXIT
            break
        # ---- new working set: the support plus the strongest violators
        memset(in_ws, 0, n_pos)
        n_A = 0
        for i in range(n_ws):
            if act[i]:
                in_ws[ws[i]] = 1
                n_A += 1
        n_cand = 0
        for j in range(n_pos):
            if not in_ws[j] and nu[j] > alpha:
                cand[n_cand].key = nu[j]
                cand[n_cand].idx = j
                n_cand += 1
        qsort(cand, n_cand, sizeof(_cand), _cmp_cand)
        n_add = n_grow if n_grow > n_A else n_A
        if n_add > n_cand:
            n_add = n_cand
        for k in range(n_add):
            in_ws[cand[k].idx] = 2
        n_grow = 2 * n_grow if n_grow < n_pos else n_grow
        n_new = 0
        for j in range(n_pos):
            if in_ws[j]:
                ws_new[n_new] = j
                n_new += 1
        if n_new == 0:   # nothing violates yet the gap is open: numerical floor
            status = TFX_MAXIT
            break
        # ---- working-set buffers; carry the active rows over
        Znew = <floating*> calloc(<Py_ssize_t> n_new * o * K2 if K2 > 0 else 1,
                                  sizeof(floating))
        Xnew = <floating*> calloc(<Py_ssize_t> n_new * o * T, sizeof(floating))
        GT = <floating*> malloc(<Py_ssize_t> n_new * o * n_chan * sizeof(floating))
        lc = <floating*> malloc(n_new * sizeof(floating))
        gram = <floating*> malloc(<Py_ssize_t> n_new * o * o * sizeof(floating))
        n_work = 3 * o * (T + K2) + p.max_frames
        work = <floating*> malloc(n_work * sizeof(floating))
        cap_rows = o * max(min(n_new, 2 * n_A + 8), 1)
        n_snap = ((ANDERSON_K + 2) * cap_rows * (K2 + T)
                  + (ANDERSON_K + 1) * <Py_ssize_t> n_chan * T
                  + 4 * (ANDERSON_K + 1) * (ANDERSON_K + 1) + 64)
        snap = <floating*> malloc(n_snap * sizeof(floating))
        if (Znew == NULL or Xnew == NULL or GT == NULL or lc == NULL or gram == NULL
                or work == NULL or snap == NULL):
            status = TFX_NO_MEMORY
            fail = True
            break
        memset(act_new, 0, n_new)
        k = 0
        for i in range(n_new):
            j = ws_new[i]
            while k < n_ws and ws[k] < j:
                k += 1
            if k < n_ws and ws[k] == j and act[k]:
                memcpy(Znew + <Py_ssize_t> i * o * K2, Zws + <Py_ssize_t> k * o * K2,
                       <Py_ssize_t> o * K2 * sizeof(floating))
                memcpy(Xnew + <Py_ssize_t> i * o * T, Xws + <Py_ssize_t> k * o * T,
                       <Py_ssize_t> o * T * sizeof(floating))
                act_new[i] = 1
            for a in range(o):
                r = i * o + a
                for c in range(n_chan):
                    GT[<Py_ssize_t> r * n_chan + c] = G[<Py_ssize_t> c * n_src + j * o + a]
            lc[i] = lc_all[j]
            memcpy(gram + <Py_ssize_t> i * o * o, gram_all + <Py_ssize_t> j * o * o,
                   o * o * sizeof(floating))
        free(Zws)
        free(Xws)
        Zws = Znew
        Xws = Xnew
        Znew = Xnew = NULL
        tmp_i = ws
        ws = ws_new
        ws_new = tmp_i
        tmp_u = act
        act = act_new
        act_new = tmp_u
        n_ws = n_new
        # ---- inner block coordinate descent (R stays M - G_ws X_ws)
        memset(&inner, 0, sizeof(tf_info))
        extrap[0] = 0.0   # a new inner solve: no previous residual yet
        extrap[1] = 0.0
        bcd_solve(p, n_ws, o, n_chan, GT, M, R, Xws, Zws, act, lc,
                  <const floating*> NULL, <const floating*> NULL, alpha_s, alpha_t,
                  maxit, tol * INNER_TOL_RATIO, DGAP_FREQ, work, items, hist, maxit,
                  &inner, ANDERSON_K, snap, cap_rows, gram, N_INNER, 0,
                  <const floating*> NULL, <floating*> NULL, rprev, extrap)
        info.n_iter += inner.n_iter
        free(GT)
        free(lc)
        free(gram)
        free(work)
        free(snap)
        GT = lc = gram = work = snap = NULL
        if inner.status == TFX_NONFINITE:
            status = TFX_NONFINITE
            fail = True
            break

    if status == TFX_OK or status == TFX_MAXIT:
        memset(X_out, 0, <Py_ssize_t> n_src * T * sizeof(floating))
        if active_out != NULL:
            memset(active_out, 0, n_src)
        for i in range(n_ws):
            if not act[i]:
                continue
            j = ws[i]
            info.n_active += 1
            memcpy(X_out + <Py_ssize_t> j * o * T, Xws + <Py_ssize_t> i * o * T,
                   <Py_ssize_t> o * T * sizeof(floating))
            if active_out != NULL:
                memset(active_out + j * o, 1, o)
    elif status == TFX_NONFINITE:
        memset(X_out, 0, <Py_ssize_t> n_src * T * sizeof(floating))
        if active_out != NULL:
            memset(active_out, 0, n_src)
    info.status = status
    info.n_outer = outer
    info.gap = gap
    info.p_obj = p_obj
    info.d_obj = best_d
    free(R)
    free(rprev)
    free(GtR)
    free(lc_all)
    free(gram_all)
    free(Y)
    free(frames)
    free(items)
    free(nu)
    free(eig)
    free(cand)
    free(in_ws)
    free(ws)
    free(ws_new)
    free(act)
    free(act_new)
    free(hist)
    free(Zws)
    free(Xws)
    free(Znew)
    free(Xnew)
    free(GT)
    free(lc)
    free(gram)
    free(work)
    free(snap)
    return status


cdef int d_tf_mxne_solve(const tfx_plan_t* plan, const double* M, const double* G,
                         int n_chan, int n_sources, int n_orient,
                         double alpha_space, double alpha_time, int maxit,
                         double tol, double* X_out, unsigned char* active_out,
                         tfx_info_t* info) noexcept nogil:
    return _solve(plan, M, G, n_chan, n_sources, n_orient, alpha_space, alpha_time,
                  maxit, tol, X_out, active_out, info)


cdef int s_tf_mxne_solve(const tfx_plan_t* plan, const float* M, const float* G,
                         int n_chan, int n_sources, int n_orient,
                         double alpha_space, double alpha_time, int maxit,
                         double tol, float* X_out, unsigned char* active_out,
                         tfx_info_t* info) noexcept nogil:
    return _solve(plan, M, G, n_chan, n_sources, n_orient, alpha_space, alpha_time,
                  maxit, tol, X_out, active_out, info)


# --------------------------------------------------------------------------
# Private Python hooks (tests): the C entry points on NumPy arrays
# --------------------------------------------------------------------------
def _solve_arrays(M, G, double alpha_space, double alpha_time, wsize, tstep,
                  int n_orient=1, int maxit=200, double tol=1e-8, dtype=np.float64):
    """Run ``d_/s_tf_mxne_solve`` without the GIL; returns (X, active, info dict)."""
    dtype = np.dtype(dtype)
    M = np.ascontiguousarray(M, dtype=dtype)
    G = np.ascontiguousarray(G, dtype=dtype)
    ws, ts = check_wsize_tstep(wsize, tstep)
    cdef int n_d = len(ws), i
    cdef int wsv[16]
    cdef int tsv[16]
    if n_d > 16:
        raise ValueError("too many dictionaries")
    for i in range(n_d):
        wsv[i] = ws[i]
        tsv[i] = ts[i]
    cdef int n_chan = M.shape[0], T = M.shape[1], n_src = G.shape[1]
    if G.shape[0] != n_chan:
        raise ValueError("M and G must have the same number of rows")
    cdef tfx_plan_t* plan = tfx_plan_new(T, n_d, wsv, tsv, dtype == np.float64)
    X = np.zeros((n_src, T), dtype=dtype)
    active = np.zeros(n_src, dtype=np.uint8)
    cdef unsigned char[::1] act_v = active
    cdef tfx_info_t info
    cdef int st
    cdef double[:, ::1] Md, Gd, Xd
    cdef float[:, ::1] Ms, Gs, Xs
    try:
        if dtype == np.float64:
            Md, Gd, Xd = M, G, X
            with nogil:
                st = d_tf_mxne_solve(plan, &Md[0, 0], &Gd[0, 0], n_chan, n_src,
                                     n_orient, alpha_space, alpha_time, maxit, tol,
                                     &Xd[0, 0], &act_v[0], &info)
        else:
            Ms, Gs, Xs = M, G, X
            with nogil:
                st = s_tf_mxne_solve(plan, &Ms[0, 0], &Gs[0, 0], n_chan, n_src,
                                     n_orient, alpha_space, alpha_time, maxit, tol,
                                     &Xs[0, 0], &act_v[0], &info)
    finally:
        tfx_plan_free(plan)
    return X, active.astype(bool), dict(
        status=st, n_iter=info.n_iter, n_outer=info.n_outer, n_active=info.n_active,
        gap=info.gap, p_obj=info.p_obj, d_obj=info.d_obj)


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
