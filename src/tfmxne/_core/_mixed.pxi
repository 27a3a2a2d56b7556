# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Mixed precision: a float32 start for a float64 solve (tfx_params_t.mixed).
# (included by _engine.pyx: shares its imports and types)

ctypedef struct _offset_ctx:
    tfx_progress_fn fn
    void* ctx
    int offset


cdef int _offset_progress(void* c, int n_outer, double gap,
                          int n_active) noexcept nogil:
    """The caller's progress callback with outer iterations counted on from
    ``offset`` (the float64 solve after the float32 start: one numbering)."""
    cdef _offset_ctx* oc = <_offset_ctx*> c
    return oc.fn(oc.ctx, n_outer + oc.offset, gap, n_active)


cdef inline void _to_f32(const double* src, float* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <float> src[i]


cdef float* _f32_problem(const tf_plan* p, int n_orient, const tf_problem* pb,
                         tf_plan* q, tf_problem* pb32) noexcept nogil:
    """``q`` and ``pb32``: the plan and the problem rounded to float32, in one
    block (returned, to free; NULL if out of memory). The screening of R = M is
    dropped (it is the float64 one)."""
    cdef int n_pos = pb.n_sources // n_orient, K = p.n_coefs
    cdef Py_ssize_t n_M = <Py_ssize_t> pb.n_chan * p.n_times
    cdef Py_ssize_t n_G = <Py_ssize_t> pb.n_chan * pb.n_sources
    cdef Py_ssize_t n_Z = <Py_ssize_t> pb.n_init * n_orient * 2 * K
    cdef Py_ssize_t n_plan = plan_n_elements(p), off
    cdef float* buf = <float*> malloc(
        (n_plan + n_M + n_G + 2 * <Py_ssize_t> n_pos + <Py_ssize_t> n_pos * K + n_Z)
        * sizeof(float))
    if buf == NULL:
        return NULL
    plan_copy_f32(p, q, buf)
    off = n_plan
    memcpy(pb32, pb, sizeof(tf_problem))
    _to_f32(<const double*> pb.M, buf + off, n_M)
    pb32.M = buf + off
    off += n_M
    _to_f32(<const double*> pb.G, buf + off, n_G)
    pb32.G = buf + off
    off += n_G
    if pb.lc != NULL:
        _to_f32(<const double*> pb.lc, buf + off, n_pos)
        pb32.lc = buf + off
    off += n_pos
    if pb.w_space != NULL:
        _to_f32(<const double*> pb.w_space, buf + off, n_pos)
        pb32.w_space = buf + off
    off += n_pos
    if pb.w_time != NULL:
        _to_f32(<const double*> pb.w_time, buf + off, <Py_ssize_t> n_pos * K)
        pb32.w_time = buf + off
    off += <Py_ssize_t> n_pos * K
    if pb.n_init > 0:
        _to_f32(<const double*> pb.Z_init, buf + off, n_Z)
        pb32.Z_init = buf + off
    pb32.screen_gtr = NULL
    pb32.screen_nu = NULL
    pb32.screen_exact = NULL
    return buf


cdef void _widen_seed(const tf_plan* p, int n_orient, int n_src, const float* kgtr,
                      double* knu) noexcept nogil:
    """float32 bounds -> bounds of the float64 dual norms of the same (stored)
    G^T R. The epsilon norm is a norm below the l2 norm of its time courses
    (Parseval), so the float32 rounding of the frame products (relative to
    ||G_j^T R||: wsize eps per product, sqrt(wsize) per frame, sqrt(wsize /
    tstep) frames per sample) moves the computed value by less than that; add
    10 times it."""
    cdef int r, j, T = p.n_times
    cdef double w, infl = 0.0, nrm
    cdef Py_ssize_t k, r1
    for r in range(p.n_dicts):
        w = p.d[r].wsize
        w = 10.0 * FLT_EPSILON * w * sqrt(w) * sqrt(w / p.d[r].tstep)
        if w > infl:
            infl = w
    for j in range(n_src // n_orient):
        nrm = 0.0
        r1 = <Py_ssize_t> j * n_orient * T
        for k in range(r1, r1 + n_orient * T):
            nrm += <double> kgtr[k] * kgtr[k]
        knu[j] += infl * sqrt(nrm)


cdef bint _start_from(const tf_plan* p, int n_orient, const tfx_result_t* res32,
                      tf_problem* pb64, double** Zd, int** pos) noexcept nogil:
    """Start the float64 problem ``pb64`` from the float32 result (its support
    and coefficients) if that result is usable (finite, some active position);
    returns whether it was. ``Zd``, ``pos``: the buffers to free."""
    cdef Py_ssize_t r, n = <Py_ssize_t> res32.n_active * n_orient * 2 * p.n_coefs
    cdef bint ok = True
    if res32.n_active == 0:
        return False
    Zd[0] = <double*> malloc(n * sizeof(double))
    pos[0] = <int*> malloc(res32.n_active * sizeof(int))
    if Zd[0] == NULL or pos[0] == NULL:
        return False      # (not an error: the float64 solve starts cold)
    for r in range(n):
        Zd[0][r] = (<const float*> res32.Z)[r]
        if not isfinite(Zd[0][r]):
            ok = False
    if not ok:
        return False
    memcpy(pos[0], res32.positions, res32.n_active * sizeof(int))
    pb64.n_init = res32.n_active
    pb64.init_pos = pos[0]
    pb64.Z_init = Zd[0]
    pb64.screen_gtr = NULL   # (the screening of R = M, not of the start)
    pb64.screen_nu = NULL
    pb64.screen_exact = NULL
    return True


cdef int _merge_records(tfx_result_t* res, const void* outer32, int n32,
                        double t32) noexcept nogil:
    """The result's outer records: the float32 start's (``start`` set), then the
    float64 solve's (their times counted from the start of the float32 one)."""
    cdef int i, n64 = res.n_outer
    cdef tfx_outer_t* rec
    cdef char* buf
    if n32 == 0 or outer32 == NULL:
        return TFX_OK
    buf = <char*> malloc(<Py_ssize_t> (n32 + n64) * sizeof(tfx_outer_t))
    if buf == NULL:
        return TFX_NO_MEMORY
    memcpy(buf, outer32, <Py_ssize_t> n32 * sizeof(tfx_outer_t))
    if n64 > 0:
        memcpy(buf + n32 * sizeof(tfx_outer_t), res.outer,
               <Py_ssize_t> n64 * sizeof(tfx_outer_t))
    for i in range(n32 + n64):
        rec = <tfx_outer_t*> (buf + i * sizeof(tfx_outer_t))
        if i < n32:
            rec.start = 1
        else:
            rec.time += t32
    free(res.outer)
    res.outer = buf
    res.n_outer = n32 + n64
    res.outer_stride = sizeof(tfx_outer_t)
    return TFX_OK


cdef int tf_solve_mixed(const tf_plan* p, const tfx_params_t* prm,
                        const tf_tuning* tun, const tf_problem* pb,
                        tfx_result_t* res, tfx_info_t* info) noexcept nogil:
    """``tf_solve`` of a float64 problem with ``prm.mixed``: the same problem
    solved in float32 first (a copy of the plan and the data), to a gap of at
    most ``max(stop_gap_ratio tol, mixed_tol_ratio ||M||^2)`` as float32
    computes it; its support and coefficients then start the float64 solve,
    which certifies the answer with a float64 gap and continues where the start
    stopped short of ``tol``. The start's status only decides whether its
    iterate is used (OK or MAXIT, finite, some active position); a start
    interrupted by the progress callback returns TFX_INTERRUPTED with an empty
    result. ``info.n_iter_start``: the start's epochs. Progress: one numbering
    of the outer iterations over both solves. Unweighted problems: the start's
    last screening (G^T R and dual-norm bounds, widened by float32 rounding)
    bounds the dual norms of the first float64 certificate, which then
    evaluates exactly only the positions those bounds cannot clear. The
    two-thread sweep and the sequential one differ by float32 rounding in the
    start, so answers with different ``n_threads`` agree within tol (certified),
    not to float64 rounding as without the start."""
    cdef int o = prm.n_orient, n_pos = pb.n_sources // o, st, kept = 0
    cdef Py_ssize_t r, n_M = <Py_ssize_t> pb.n_chan * p.n_times
    cdef double m2 = 0.0
    cdef const double* Md = <const double*> pb.M
    cdef bint seed = pb.w_space == NULL and pb.w_time == NULL
    cdef float* kgtr = NULL
    cdef double* knu = NULL
    cdef double* Zd = NULL
    cdef int* pos = NULL
    cdef float* buf
    cdef tf_plan q
    cdef tf_problem pb32
    cdef tf_problem pb64
    cdef tfx_params_t prm32
    cdef tfx_params_t prm64
    cdef tfx_result_t res32
    cdef tfx_info_t info32
    cdef _offset_ctx oc
    cdef void* outer32 = NULL
    cdef int n32 = 0
    buf = _f32_problem(p, o, pb, &q, &pb32)
    if seed:
        kgtr = <float*> malloc(<Py_ssize_t> pb.n_sources * p.n_times * sizeof(float))
        knu = <double*> malloc(n_pos * sizeof(double))
    if buf == NULL or (seed and (kgtr == NULL or knu == NULL)):
        free(buf)
        free(kgtr)
        free(knu)
        return TFX_NO_MEMORY
    pb32.keep_gtr = kgtr
    pb32.keep_nu = knu
    pb32.kept = &kept
    for r in range(n_M):
        m2 += Md[r] * Md[r]
    memcpy(&prm32, prm, sizeof(tfx_params_t))
    prm32.mixed = 0
    prm32.debias = 0
    # the start is asked for the gap at which the float64 loop stops
    # (stop_gap_ratio tol), so that the float64 solve finds it met (its own
    # stopping rule then aims below that)
    prm32.tol = tun.stop_gap_ratio * prm.tol
    if tun.mixed_tol_ratio * m2 > prm32.tol:
        prm32.tol = tun.mixed_tol_ratio * m2
    memset(&res32, 0, sizeof(tfx_result_t))
    memset(&info32, 0, sizeof(tfx_info_t))
    st = _tf_solve_t(&q, &prm32, tun, &pb32, &res32, &info32, <const float*> NULL)
    free(buf)
    info.n_iter_start = info32.n_iter
    if st == TFX_INTERRUPTED:
        tfx_result_clear(&res32)
        free(kgtr)
        free(knu)
        info.status = st
        return st
    memcpy(&pb64, pb, sizeof(tf_problem))
    if (st == TFX_OK or st == TFX_MAXIT) and _start_from(p, o, &res32, &pb64, &Zd,
                                                         &pos):
        if kept:
            _widen_seed(p, o, pb.n_sources, kgtr, knu)
            pb64.seed_gtr = kgtr
            pb64.seed_nu = knu
    outer32 = res32.outer      # (kept for the records of the result)
    n32 = res32.n_outer
    res32.outer = NULL
    tfx_result_clear(&res32)
    memcpy(&prm64, prm, sizeof(tfx_params_t))
    if prm.progress != NULL:
        oc.fn = prm.progress
        oc.ctx = prm.progress_ctx
        oc.offset = info32.n_outer
        prm64.progress = _offset_progress
        prm64.progress_ctx = &oc
    st = _tf_solve_t(p, &prm64, tun, &pb64, res, info, <const double*> NULL)
    info.n_iter_start = info32.n_iter
    if (st == TFX_OK or st == TFX_MAXIT or st == TFX_INTERRUPTED) and _merge_records(
            res, outer32, n32, info32.seconds) != TFX_OK:
        tfx_result_clear(res)
        st = info.status = TFX_NO_MEMORY
    free(outer32)
    free(Zd)
    free(pos)
    free(kgtr)
    free(knu)
    return st
