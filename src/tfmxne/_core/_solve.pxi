# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The working-set solve of the convex (weighted) TF-MxNE problem: tf_solve.
#
# The one implementation of the outer loop, used by tfmxne.solver (through the
# Python wrapper `solve` of _engine.pyx) and by the public C API
# (tfmxne.cython_tfmxne). It reads as its steps, over one solver state
# (tf_state: state_alloc, state_free):
#
#   warm_start                       the support and residual of the start
#   loop: certify                    G^T R over all positions, the screened exact
#                                    dual norm, a certified gap of the full problem
#         record                     diagnostics, progress, the stopping rules
#         grow_ws                    the support plus the strongest violators
#         ws_solve                   block coordinate descent on the working set
#         take_support               the new support
#   pack_result
#
# Threads are the core's own (_threads.h), at most tfx_params_t.n_threads.
# (included by _engine.pyx: shares its imports and types)


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------
cdef bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True


cdef int _check_solve_args(const tf_plan* p, const tfx_params_t* prm,
                           const tf_tuning* tun, const tf_problem* pb) noexcept nogil:
    """TFX_OK, or the status of invalid arguments (nothing is written)."""
    cdef double a_s = prm.alpha_space, a_t = prm.alpha_time
    cdef int i, n_pos
    if p == NULL or pb == NULL or pb.M == NULL or pb.G == NULL:
        return TFX_BAD_ARG
    if (pb.n_chan < 1 or pb.n_sources < 1 or prm.n_orient < 1
            or pb.n_sources % prm.n_orient or p.n_times < 1):
        return TFX_BAD_ARG
    if not (isfinite(a_s) and isfinite(a_t) and a_s >= 0 and a_t >= 0
            and a_s + a_t > 0):
        return TFX_BAD_ARG
    if (not prm.tol > 0 or not isfinite(prm.tol) or prm.maxit < 1
            or tun.max_outer < 0 or tun.n_inner < 1 or tun.anderson_k < 0
            or not tun.stop_gap_ratio > 0 or tun.stop_gap_ratio > 1
            or tun.ws_start < 1 or tun.screen_chunk < 1 or tun.spin_us < 0):
        return TFX_BAD_ARG
    n_pos = pb.n_sources // prm.n_orient
    if pb.n_init < 0 or pb.n_init > n_pos or (pb.n_init > 0 and (
            pb.init_pos == NULL or pb.Z_init == NULL)):
        return TFX_BAD_ARG
    for i in range(pb.n_init):
        if pb.init_pos[i] < 0 or pb.init_pos[i] >= n_pos:
            return TFX_BAD_ARG
    if (pb.screen_gtr == NULL) != (pb.screen_nu == NULL) or (
            pb.screen_nu == NULL) != (pb.screen_exact == NULL):
        return TFX_BAD_ARG
    return TFX_OK


cdef int _check_values(const tf_plan* p, int n_orient, const tf_problem* pb,
                       const floating* tag) noexcept nogil:
    """TFX_NONFINITE for NaN / Inf in the data, TFX_BAD_ARG for invalid weights."""
    cdef int n_pos = pb.n_sources // n_orient, j
    cdef Py_ssize_t k
    cdef const floating* ws = <const floating*> pb.w_space
    cdef const floating* wt = <const floating*> pb.w_time
    if not (_all_finite(<const floating*> pb.M, <Py_ssize_t> pb.n_chan * p.n_times)
            and _all_finite(<const floating*> pb.G,
                            <Py_ssize_t> pb.n_chan * pb.n_sources)):
        return TFX_NONFINITE
    if pb.n_init > 0 and not _all_finite(<const floating*> pb.Z_init, <Py_ssize_t>
                                         pb.n_init * n_orient * 2 * p.n_coefs):
        return TFX_NONFINITE
    if ws != NULL:
        for j in range(n_pos):
            if not (isfinite(ws[j]) and ws[j] > 0):
                return TFX_BAD_ARG
    if wt != NULL:
        for k in range(<Py_ssize_t> n_pos * p.n_coefs):
            if not (isfinite(wt[k]) and wt[k] >= 0):
                return TFX_BAD_ARG
    return TFX_OK


# --------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------
cdef int _reserve(tf_buf* b, size_t nbytes) noexcept nogil:
    """At least ``nbytes`` in ``b`` (contents not kept); 0 or -1."""
    if nbytes <= b.cap and b.ptr != NULL:
        return 0
    free(b.ptr)
    b.ptr = malloc(nbytes if nbytes > 0 else 1)
    b.cap = nbytes if b.ptr != NULL else 0
    return 0 if b.ptr != NULL else -1


cdef inline void _buf_free(tf_buf* b) noexcept nogil:
    free(b.ptr)
    b.ptr = NULL
    b.cap = 0


cdef void state_free(tf_state* s) noexcept nogil:
    """Free everything the state holds (NULL-safe)."""
    cdef int i
    free(s.lc)
    for i in range(2):
        free(s.gtr[i])
        free(s.nu[i])
        free(s.ex[i])
    free(s.order)
    free(s.in_A)
    free(s.A)
    free(s.ws)
    free(s.R)
    free(s.theta)
    free(s.rprev)
    free(s.work)
    free(s.items)
    free(s.ihist)
    free(s.pipe)
    free(s.scr)
    free(s.scr_mem)
    _buf_free(&s.ZA)
    _buf_free(&s.XA)
    _buf_free(&s.Zws)
    _buf_free(&s.Xws)
    _buf_free(&s.GT)
    _buf_free(&s.grams)
    _buf_free(&s.xgram)
    _buf_free(&s.lc_ws)
    _buf_free(&s.ws_w)
    _buf_free(&s.wt_w)
    _buf_free(&s.act)
    _buf_free(&s.snap)
    _buf_free(&s.mom)


cdef int state_alloc(tf_state* s, const tf_plan* p, const tfx_params_t* prm,
                     const tf_tuning* tun, const tf_problem* pb,
                     const floating* tag) noexcept nogil:
    """Set up the state of a solve: sizes, penalty and every fixed buffer.
    Returns TFX_OK or TFX_NO_MEMORY (then state_free releases what was taken)."""
    cdef int o = prm.n_orient, K = p.n_coefs, K2 = 2 * p.n_coefs, T = p.n_times, i
    cdef Py_ssize_t scr_sz
    cdef floating* fbuf
    memset(s, 0, sizeof(tf_state))
    pick_init(&s.pipe_pick)
    s.t0 = tfx_now()
    s.p = p
    s.prm = prm
    s.tun = tun
    s.pb = pb
    s.n_chan = pb.n_chan
    s.n_src = pb.n_sources
    s.n_pos = pb.n_sources // o
    s.nr = <Py_ssize_t> pb.n_chan * T
    s.n_big = <Py_ssize_t> pb.n_sources * T
    s.tol = prm.tol * tun.stop_gap_ratio
    s.n_thr = 1 if prm.n_threads < 1 else (
        TFX_MAX_THREADS if prm.n_threads > TFX_MAX_THREADS else prm.n_threads)
    pen_init(&s.pen, p, o, prm.alpha_space, prm.alpha_time, pb.w_space, pb.w_time)
    s.n_grow = tun.ws_start
    s.gap = s.best_gap = s.p_obj = s.nu_max = INFINITY
    s.best_d = -INFINITY
    s.lc = malloc(s.n_pos * sizeof(floating))
    for i in range(2):
        s.gtr[i] = malloc(s.n_big * sizeof(floating))
        s.nu[i] = <double*> malloc(s.n_pos * sizeof(double))
        s.ex[i] = <unsigned char*> calloc(s.n_pos, 1)
    s.order = <sort_item*> malloc(s.n_pos * sizeof(sort_item))
    s.in_A = <unsigned char*> calloc(s.n_pos, 1)
    s.A = <int*> malloc(s.n_pos * sizeof(int))
    s.ws = <int*> malloc(s.n_pos * sizeof(int))
    s.R = malloc(s.nr * sizeof(floating))
    s.theta = calloc(s.nr, sizeof(floating))
    s.rprev = malloc(s.nr * sizeof(floating)) if tun.dual_extrap else NULL
    s.work = malloc(bcd_work_size(p, o) * sizeof(floating))
    s.items = <eps_item*> malloc((K if K > 0 else 1) * sizeof(eps_item))
    s.ihist = <double*> malloc(prm.maxit * sizeof(double))
    s.pipe = malloc(4 * <Py_ssize_t> o * T * sizeof(floating)) if s.n_thr > 1 else NULL
    # per-thread screening scratch, in one block
    scr_sz = ((<Py_ssize_t> o * (K2 + T) + p.max_frames) * sizeof(floating)
              + (T + 1) * sizeof(double) + (K if K > 0 else 1) * sizeof(eps_item))
    scr_sz = (scr_sz + 63) // 64 * 64
    s.scr = <thr_scratch*> malloc(s.n_thr * sizeof(thr_scratch))
    s.scr_mem = malloc(s.n_thr * scr_sz)
    if (s.lc == NULL or s.gtr[0] == NULL or s.gtr[1] == NULL or s.nu[0] == NULL
            or s.nu[1] == NULL or s.ex[0] == NULL or s.ex[1] == NULL
            or s.order == NULL or s.in_A == NULL or s.A == NULL or s.ws == NULL
            or s.R == NULL or s.theta == NULL or s.work == NULL or s.items == NULL
            or s.ihist == NULL or s.scr == NULL or s.scr_mem == NULL
            or (tun.dual_extrap and s.rprev == NULL)
            or (s.n_thr > 1 and s.pipe == NULL)):
        return TFX_NO_MEMORY
    for i in range(s.n_thr):
        fbuf = <floating*> (<char*> s.scr_mem + i * scr_sz)
        s.scr[i].Y = fbuf
        s.scr[i].dbuf = fbuf + <Py_ssize_t> o * K2
        s.scr[i].frames = fbuf + <Py_ssize_t> o * (K2 + T)
        s.scr[i].csum = <double*> (fbuf + <Py_ssize_t> o * (K2 + T) + p.max_frames)
        s.scr[i].items = <eps_item*> (s.scr[i].csum + T + 1)
    s.extrap.rprev = s.rprev
    if pb.lc != NULL:
        memcpy(s.lc, pb.lc, s.n_pos * sizeof(floating))
    elif lipschitz_c(<const floating*> pb.G, s.n_chan, s.n_src, o,
                     <floating*> s.lc) != 0:
        return TFX_NO_MEMORY
    return TFX_OK


# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------
cdef int warm_start(tf_state* s, const floating* tag) noexcept nogil:
    """The support of the initial coefficients (their non-zero positions, the
    first rows of a repeated one), its time courses and the residual."""
    cdef const tf_problem* pb = s.pb
    cdef int o = s.pen.n_orient, K2 = 2 * s.p.n_coefs, T = s.p.n_times, i
    cdef Py_ssize_t r
    cdef const floating* zi
    cdef floating* ZA
    cdef floating* R = <floating*> s.R
    if pb.n_init > 0:
        if (_reserve(&s.ZA, <Py_ssize_t> pb.n_init * o * K2 * sizeof(floating))
                or _reserve(&s.XA, <Py_ssize_t> pb.n_init * o * T * sizeof(floating))):
            return TFX_NO_MEMORY
        ZA = <floating*> s.ZA.ptr
        for i in range(pb.n_init):
            zi = <const floating*> pb.Z_init + <Py_ssize_t> i * o * K2
            for r in range(<Py_ssize_t> o * K2):
                if zi[r] != 0:
                    break
            else:
                continue
            if s.in_A[pb.init_pos[i]]:
                continue          # a repeated position: its first rows count
            s.in_A[pb.init_pos[i]] = 1
            s.A[s.nA] = pb.init_pos[i]
            memcpy(ZA + <Py_ssize_t> s.nA * o * K2, zi,
                   <Py_ssize_t> o * K2 * sizeof(floating))
            s.nA += 1
        if s.nA > 0:
            istft_rows(s.p, ZA, s.nA * o, K2, <floating*> s.XA.ptr, T, T,
                       <floating*> s.work)
    memcpy(R, pb.M, s.nr * sizeof(floating))
    for i in range(s.nA):
        gemm_rm(False, False, s.n_chan, T, o, <floating> -1.0,
                <const floating*> pb.G + <Py_ssize_t> s.A[i] * o, s.n_src,
                <const floating*> s.XA.ptr + <Py_ssize_t> i * o * T, T,
                <floating> 1.0, R, T)
    if floating is double and pb.seed_gtr != NULL:
        # the float32 start's last screening, as the "previous" one of the first
        # outer iteration: its bounds need no STFT
        for r in range(s.n_big):
            (<double*> s.gtr[1 - s.cur])[r] = pb.seed_gtr[r]
        memcpy(s.nu[1 - s.cur], pb.seed_nu, s.n_pos * sizeof(double))
        s.have_prev = 1
    return TFX_OK


cdef inline void _screen_setup(tf_state* s, tf_screen* sc, const void* GtR,
                               int buf, int prev) noexcept nogil:
    """A screening of ``GtR`` into the buffers ``buf`` (nu, ex), bounded by the
    certificate in the buffers ``prev`` (-1: none)."""
    sc.pen = &s.pen
    sc.GtR = GtR
    sc.GtR_prev = s.gtr[prev] if prev >= 0 else NULL
    sc.nu_prev = s.nu[prev] if prev >= 0 else NULL
    sc.n_pos = s.n_pos
    sc.n_thr = s.n_thr
    sc.chunk = s.tun.screen_chunk
    sc.pol = &s.pol_tasks
    sc.scr = s.scr
    sc.order = s.order
    sc.nu = s.nu[buf]
    sc.exact = s.ex[buf]


cdef void _set_theta(tf_state* s, const floating* R, const floating* D, double t,
                     double nu) noexcept nogil:
    """theta = scal (R + t D) (D NULL: scal R), scal = min(1, alpha / nu)."""
    cdef double alpha = s.pen.alpha_s + s.pen.alpha_t
    cdef double scal = alpha / nu if nu > alpha else 1.0
    cdef Py_ssize_t r
    cdef floating* theta = <floating*> s.theta
    if D == NULL:
        for r in range(s.nr):
            theta[r] = <floating> (scal * R[r])
    else:
        for r in range(s.nr):
            theta[r] = <floating> (scal * (R[r] + t * D[r]))


cdef void certify_point(tf_state* s, const floating* D, double t, double nR2,
                        double RM) noexcept nogil:
    """Certify the dual point ``R + t D`` on the whole source space: its exact
    dual norm (screened, bounded from the certificate of R in the buffers
    ``cur``, written into the others), its dual objective; it becomes the
    certificate if it beats the best one."""
    cdef tf_screen sc
    cdef int c = s.cur
    cdef Py_ssize_t r
    cdef floating* gd = <floating*> s.gtr[1 - c]
    cdef const floating* gR = <const floating*> s.gtr[c]
    cdef const floating* R = <const floating*> s.R
    cdef double nx_max, nx_rest, nR2x, RMx, d_x
    cdef double alpha = s.pen.alpha_s + s.pen.alpha_t
    gtr_all(<const floating*> s.pb.G, D, s.n_chan, s.n_src, s.p.n_times, gd, s.n_thr,
            s.tun.screen_chunk, &s.pol_tasks)
    for r in range(s.n_big):
        gd[r] = gR[r] + <floating> t * gd[r]
    _screen_setup(s, &sc, gd, 1 - c, c)
    screen_dual_norm(&sc, 0, alpha, -1, &nx_max, &nx_rest)
    nR2x = nR2 + 2.0 * t * dot(<int> s.nr, R, D) + t * t * dot(<int> s.nr, D, D)
    RMx = RM + t * dot(<int> s.nr, D, <const floating*> s.pb.M)
    if nx_rest > nx_max:
        nx_max = nx_rest
    d_x = scaled_dual(nR2x, RMx, nx_max, alpha)
    if d_x > s.best_d:
        s.best_d = d_x
        _set_theta(s, R, D, t, nx_max)


cdef double _support_penalty(tf_state* s, const floating* tag) noexcept nogil:
    cdef int i, K2 = 2 * s.p.n_coefs
    cdef double pen = 0.0
    for i in range(s.nA):
        pen += pen_value(&s.pen, s.A[i], <const floating*> s.ZA.ptr
                         + <Py_ssize_t> i * s.pen.n_orient * K2, K2)
    return pen


cdef int certify(tf_state* s, int n_want, const floating* tag) noexcept nogil:
    """The certificate of the current iterate: G^T R and its screened exact dual
    norm (from the screening of R = M on a cold unweighted start), the primal
    objective, the best dual point (R rescaled, or the inner solve's
    extrapolated point if it is better), the gap. Returns a status."""
    cdef const tf_problem* pb = s.pb
    cdef tf_screen sc
    cdef int c = s.cur, j
    cdef double alpha = s.pen.alpha_s + s.pen.alpha_t, nR2, RM, d_obj, d_opt
    cdef const floating* R = <const floating*> s.R
    cdef Py_ssize_t n_max
    if s.n_outer == 1 and pb.screen_gtr != NULL and s.nA == 0 and (
            pb.w_space == NULL and pb.w_time == NULL):
        memcpy(s.gtr[c], pb.screen_gtr, s.n_big * sizeof(floating))
        memcpy(s.nu[c], pb.screen_nu, s.n_pos * sizeof(double))
        memcpy(s.ex[c], pb.screen_exact, s.n_pos)
        s.nu_max = 0.0
        s.nu_rest = 0.0
        for j in range(s.n_pos):
            if s.ex[c][j] and s.nu[c][j] > s.nu_max:
                s.nu_max = s.nu[c][j]
            elif not s.ex[c][j] and s.nu[c][j] > s.nu_rest:
                s.nu_rest = s.nu[c][j]
    else:
        gtr_all(<const floating*> pb.G, R, s.n_chan, s.n_src, s.p.n_times,
                <floating*> s.gtr[c], s.n_thr, s.tun.screen_chunk, &s.pol_tasks)
        # capped screening: the gap is then an upper bound (still a certificate)
        n_max = 2 * n_want if 2 * n_want > 200 else 200
        _screen_setup(s, &sc, s.gtr[c], c, 1 - c if s.have_prev else -1)
        screen_dual_norm(&sc, n_want, alpha, n_max, &s.nu_max, &s.nu_rest)
    nR2 = dot(<int> s.nr, R, R)
    RM = dot(<int> s.nr, R, <const floating*> pb.M)
    if not isfinite(nR2):
        return TFX_NONFINITE
    s.p_obj = 0.5 * nR2 + _support_penalty(s, tag)
    d_obj = scaled_dual(nR2, RM, s.nu_max if s.nu_max > s.nu_rest else s.nu_rest, alpha)
    d_opt = scaled_dual(nR2, RM, s.nu_max, alpha)   # optimistic
    if (s.p_obj - (s.best_d if s.best_d > d_obj else d_obj) >= s.tol
            and s.nu_rest > (s.nu_max if s.nu_max > alpha else alpha)
            and s.p_obj - (s.best_d if s.best_d > d_opt else d_opt) < s.tol):
        # the cap left positions unproven: finish the exact dual norm
        _screen_setup(s, &sc, s.gtr[c], c, 1 - c if s.have_prev else -1)
        screen_dual_norm(&sc, n_want, alpha, -1, &s.nu_max, &s.nu_rest)
        d_obj = scaled_dual(nR2, RM, s.nu_max if s.nu_max > s.nu_rest else s.nu_rest,
                            alpha)
    if d_obj > s.best_d:
        s.best_d = d_obj
        _set_theta(s, R, NULL, 0.0, s.nu_max if s.nu_max > s.nu_rest else s.nu_rest)
    if (s.rprev != NULL and s.extrap.state == 2 and s.extrap.t_best > 0
            and s.p_obj - s.best_d >= s.tol):
        # the inner solve's best dual point was extrapolated, R + t (R - R_prev)
        certify_point(s, <const floating*> s.rprev, s.extrap.t_best, nR2, RM)
    # the bounds of this residual tighten the screening of the next one
    s.cur = 1 - c
    s.have_prev = 1
    s.gap = s.p_obj - s.best_d
    return TFX_OK


cdef int _push_obj(tfx_result_t* res, tf_state* s, double v) noexcept nogil:
    """Append to the objective history (grown geometrically)."""
    cdef double* q
    if res.n_obj == s.hist_cap:
        q = <double*> realloc(res.obj, (2 * s.hist_cap + 16) * sizeof(double))
        if q == NULL:
            return TFX_NO_MEMORY
        res.obj = q
        s.hist_cap = 2 * s.hist_cap + 16
    res.obj[res.n_obj] = v
    res.n_obj += 1
    return TFX_OK


cdef inline tfx_outer_t* _outer(tfx_result_t* res, int i) noexcept nogil:
    return <tfx_outer_t*> (<char*> res.outer + <Py_ssize_t> i * res.outer_stride)


cdef int record(tf_state* s, tfx_result_t* res) noexcept nogil:
    """Diagnostics of one certificate (an outer record, the objective history)
    and the progress callback. Returns TFX_OK, TFX_INTERRUPTED or TFX_NO_MEMORY.
    ``res.outer`` holds max_outer + 2 records; the inner solve that follows
    fills in ``n_ws`` and ``n_iter``."""
    cdef tfx_outer_t* rec
    cdef int cap = s.tun.max_outer + 2
    if res.outer == NULL:
        res.outer = calloc(cap, sizeof(tfx_outer_t))
        res.outer_stride = sizeof(tfx_outer_t)
    if res.outer != NULL and res.n_outer < cap:
        rec = _outer(res, res.n_outer)
        rec.n_active = s.nA
        rec.gap = s.gap
        rec.p_obj = s.p_obj
        rec.d_obj = s.best_d
        rec.time = tfx_now() - s.t0
        rec.certify_seconds = tfx_now() - s.t_cert
        res.n_outer += 1
    if _push_obj(res, s, s.p_obj) != TFX_OK:
        return TFX_NO_MEMORY
    if s.prm.progress != NULL and s.prm.progress(s.prm.progress_ctx, s.n_outer,
                                                 s.gap, s.nA):
        return TFX_INTERRUPTED
    return TFX_OK


cdef int should_stop(tf_state* s) noexcept nogil:
    """The stopping rules after a certificate: 1 to stop (converged, the outer
    cap, or a stalled gap: a numerical floor, tol below the rounding of the
    objectives), 0 to go on."""
    if s.gap < s.tol:
        s.converged = 1
        return 1
    if s.n_outer > s.tun.max_outer:
        s.n_outer = s.tun.max_outer
        return 1
    if s.gap < 0.9 * s.best_gap:
        s.best_gap = s.gap
        s.n_stall = 0
    else:
        s.n_stall += 1
        if s.n_stall >= s.tun.stall_outer:
            s.stalled = 1
            return 1
    return 0


cdef int _cmp_int(const void* a, const void* b) noexcept nogil:
    cdef int x = (<const int*> a)[0], y = (<const int*> b)[0]
    return (x > y) - (x < y)


cdef int grow_ws(tf_state* s) noexcept nogil:
    """The working set: the support plus the strongest violators of the last
    certificate (at most max(n_grow, nA) of them), in increasing position
    order; the next increment doubles. Returns its size."""
    cdef int j, i, n_cand = 0, n_add, pv = 1 - s.cur
    cdef double alpha = s.pen.alpha_s + s.pen.alpha_t
    for j in range(s.n_pos):
        # (the buffers of the last certificate are now the "previous" ones)
        if s.ex[pv][j] and not s.in_A[j] and s.nu[pv][j] > alpha:
            s.order[n_cand].key = s.nu[pv][j]
            s.order[n_cand].idx = j
            n_cand += 1
    qsort(s.order, n_cand, sizeof(sort_item), _cmp_desc_stable)
    n_add = s.n_grow if s.n_grow > s.nA else s.nA
    if n_add > n_cand:
        n_add = n_cand
    for i in range(s.nA):
        s.ws[i] = s.A[i]
    for i in range(n_add):
        s.ws[s.nA + i] = <int> s.order[i].idx
    s.n_ws = s.nA + n_add
    qsort(s.ws, s.n_ws, sizeof(int), _cmp_int)
    s.n_grow = 2 * s.n_grow
    return s.n_ws


cdef int _bsearch(const int* a, int n, int v) noexcept nogil:
    cdef int lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _ws_setup(tf_state* s, tf_ws* w, tf_pipe* pp,
                   const floating* tag) noexcept nogil:
    """The arrays of the working-set problem: rows of G^T, Lipschitz constants,
    weights, the support's coefficients and time courses, block Grams (and the
    cross Grams of the two-thread sweep). Returns a status."""
    cdef int n_ws = s.n_ws, o = s.pen.n_orient, n_chan = s.n_chan
    cdef int K = s.p.n_coefs, K2 = 2 * K, T = s.p.n_times, i, k, q, c_
    cdef Py_ssize_t rows_o = <Py_ssize_t> n_ws * o
    cdef size_t fs = sizeof(floating)
    cdef bint two = (s.n_thr > 1 and s.tun.n_inner == 1
                     and n_ws >= s.tun.pipe_min_blocks)
    cdef const floating* row
    cdef const floating* wsp = <const floating*> s.pb.w_space
    cdef const floating* wt = <const floating*> s.pb.w_time
    cdef floating* GT
    cdef floating* lc_ws
    if (_reserve(&s.GT, rows_o * n_chan * fs) or _reserve(&s.Zws, rows_o * K2 * fs)
            or _reserve(&s.Xws, rows_o * T * fs) or _reserve(&s.grams, rows_o * o * fs)
            or (two and _reserve(&s.xgram, rows_o * o * fs))
            or _reserve(&s.lc_ws, n_ws * fs) or _reserve(&s.act, n_ws)
            or (wsp != NULL and _reserve(&s.ws_w, n_ws * fs))
            or (wt != NULL and _reserve(&s.wt_w, <Py_ssize_t> n_ws * K * fs))):
        return TFX_NO_MEMORY
    GT = <floating*> s.GT.ptr
    lc_ws = <floating*> s.lc_ws.ptr
    memset(s.Zws.ptr, 0, rows_o * K2 * fs)
    memset(s.Xws.ptr, 0, rows_o * T * fs)
    memset(s.act.ptr, 0, n_ws)
    for c_ in range(n_chan):
        row = <const floating*> s.pb.G + <Py_ssize_t> c_ * s.n_src
        for i in range(n_ws):
            for q in range(o):
                GT[(<Py_ssize_t> i * o + q) * n_chan + c_] = row[s.ws[i] * o + q]
    for i in range(n_ws):
        lc_ws[i] = (<const floating*> s.lc)[s.ws[i]]
        if wsp != NULL:
            (<floating*> s.ws_w.ptr)[i] = wsp[s.ws[i]]
        if wt != NULL:
            memcpy(<floating*> s.wt_w.ptr + <Py_ssize_t> i * K,
                   wt + <Py_ssize_t> s.ws[i] * K, K * fs)
    for i in range(s.nA):
        k = _bsearch(s.ws, n_ws, s.A[i])
        (<unsigned char*> s.act.ptr)[k] = 1
        memcpy(<floating*> s.Zws.ptr + <Py_ssize_t> k * o * K2,
               <const floating*> s.ZA.ptr + <Py_ssize_t> i * o * K2,
               <Py_ssize_t> o * K2 * fs)
        memcpy(<floating*> s.Xws.ptr + <Py_ssize_t> k * o * T,
               <const floating*> s.XA.ptr + <Py_ssize_t> i * o * T,
               <Py_ssize_t> o * T * fs)
    block_grams_c(GT, n_ws, o, n_chan, lc_ws, <floating*> s.grams.ptr,
                  <floating*> s.xgram.ptr if two else NULL)
    pen_init(&w.pen, s.p, o, s.pen.alpha_s, s.pen.alpha_t,
             s.ws_w.ptr if wsp != NULL else NULL, s.wt_w.ptr if wt != NULL else NULL)
    w.n_ws = n_ws
    w.n_chan = n_chan
    w.GT = GT
    w.M = s.pb.M
    w.R = s.R
    w.X = s.Xws.ptr
    w.Z = s.Zws.ptr
    w.active = <unsigned char*> s.act.ptr
    w.lc = lc_ws
    w.gram = s.grams.ptr
    w.work = s.work
    w.items = s.items
    pp.xgram = s.xgram.ptr if two else NULL
    pp.buf = s.pipe if two else NULL
    pp.spin_us = s.tun.spin_us
    pp.pick = &s.pipe_pick
    return TFX_OK


cdef int _ws_phase(tf_state* s, const tf_ws* w, const tf_bcd_opts* opt,
                   tf_anderson* an, tf_extrap* ex, tf_momentum* mo,
                   const tf_pipe* pp, tfx_result_t* res) noexcept nogil:
    """One call of the inner solver; its epochs and objectives are recorded.
    Returns its status and adds its epochs to ``s.n_iter``."""
    cdef tf_info info
    cdef int i, st
    memset(&info, 0, sizeof(tf_info))
    info.hist = s.ihist
    info.max_hist = s.prm.maxit
    bcd_solve(w, opt, an, ex, mo, pp, &info)
    st = info.status
    s.n_iter += info.n_iter
    s.n_accel_try += info.n_accel_try
    s.n_accel += info.n_accel
    s.n_restart += info.n_restart
    for i in range(info.n_obj):
        if _push_obj(res, s, s.ihist[i]) != TFX_OK:
            st = TFX_NO_MEMORY
    return st


cdef int ws_solve(tf_state* s, tfx_result_t* res, const floating* tag) noexcept nogil:
    """Block coordinate descent on the working set: a growing one to a loose
    tolerance (an early first gap check), a complete one (nothing new violates)
    below tol with some margin for the outer certificate; plain epochs first,
    a slow tail goes on with Anderson acceleration (same state). Returns the
    inner solver's status."""
    cdef const tf_tuning* tun = s.tun
    cdef tf_ws w
    cdef tf_pipe pp
    cdef tf_bcd_opts opt
    cdef tf_anderson an
    cdef tf_momentum mom
    cdef tf_momentum* mo = NULL
    cdef int st, i, n_a, n_iter0 = s.n_iter, maxit = s.prm.maxit
    cdef Py_ssize_t cap_rows
    cdef tf_extrap* ex
    st = _ws_setup(s, &w, &pp, tag)
    if st != TFX_OK:
        return st
    if tun.momentum:
        if _reserve(&s.mom, momentum_size(s.p, s.n_ws, s.pen.n_orient, s.n_chan)
                    * sizeof(floating) + s.n_ws):
            return TFX_NO_MEMORY
        momentum_bind(&mom, &w, s.mom.ptr, sizeof(floating))
        mo = &mom
    if s.n_ws > s.nA:
        opt.tol = s.tol * tun.inner_tol_ratio
        if tun.inner_gap_frac * s.gap > opt.tol:
            opt.tol = tun.inner_gap_frac * s.gap
        opt.gap_start = (tun.inner_gap_start if opt.tol > s.tol * tun.inner_tol_ratio
                         else 0)
    else:
        opt.tol = s.tol * tun.complete_tol_ratio
        opt.gap_start = 0
    opt.maxit = maxit
    if tun.anderson_k > 0 and tun.anderson_start < maxit:
        opt.maxit = tun.anderson_start
    opt.dgap_freq = s.prm.dgap_freq
    opt.n_inner = tun.n_inner
    # only inner solves that must close the gap below tol extrapolate: earlier ones
    # stop at loose tolerances, where an earlier stop only reshapes the path
    s.extrap.state = 0
    s.extrap.t_best = 0.0
    ex = &s.extrap if s.rprev != NULL and opt.tol <= s.tol else NULL
    st = _ws_phase(s, &w, &opt, NULL, ex, mo, &pp, res)
    if st == TFX_MAXIT and opt.maxit < maxit:
        n_a = 0
        for i in range(s.n_ws):
            n_a += w.active[i]
        cap_rows = 2 * n_a + 8 if 2 * n_a + 8 < s.n_ws else s.n_ws
        an.k = tun.anderson_k
        an.cap_rows = s.pen.n_orient * (cap_rows if cap_rows > 1 else 1)
        if _reserve(&s.snap, bcd_snap_size(s.p, an.k, an.cap_rows, s.n_chan)
                    * sizeof(floating)):
            st = TFX_NO_MEMORY
        else:
            an.snap = s.snap.ptr
            opt.maxit = maxit - opt.maxit
            opt.gap_start = 0
            st = _ws_phase(s, &w, &opt, &an, ex, mo, &pp, res)
    if res.n_outer > 0:
        _outer(res, res.n_outer - 1).n_ws = s.n_ws
        _outer(res, res.n_outer - 1).n_iter = s.n_iter - n_iter0
    return st


cdef void take_support(tf_state* s, const floating* tag) noexcept nogil:
    """The support after an inner solve: the active blocks of the working set,
    their rows compacted (the working set's buffers become the support's)."""
    cdef tf_buf tmp
    cdef int i, o = s.pen.n_orient, K2 = 2 * s.p.n_coefs, T = s.p.n_times
    cdef floating* ZA
    cdef floating* XA
    cdef const unsigned char* act = <const unsigned char*> s.act.ptr
    tmp = s.ZA
    s.ZA = s.Zws
    s.Zws = tmp
    tmp = s.XA
    s.XA = s.Xws
    s.Xws = tmp
    ZA = <floating*> s.ZA.ptr
    XA = <floating*> s.XA.ptr
    s.nA = 0
    for i in range(s.n_ws):
        s.in_A[s.ws[i]] = 0
        if not act[i]:
            continue
        if s.nA != i:
            memcpy(ZA + <Py_ssize_t> s.nA * o * K2, ZA + <Py_ssize_t> i * o * K2,
                   <Py_ssize_t> o * K2 * sizeof(floating))
            memcpy(XA + <Py_ssize_t> s.nA * o * T, XA + <Py_ssize_t> i * o * T,
                   <Py_ssize_t> o * T * sizeof(floating))
        s.A[s.nA] = s.ws[i]
        s.nA += 1
    for i in range(s.nA):
        s.in_A[s.A[i]] = 1


cdef int _cmp_int_pair(const void* a, const void* b) noexcept nogil:
    return _cmp_int(a, b)


cdef int pack_result(tf_state* s, tfx_result_t* res, tfx_info_t* info,
                     const floating* tag) noexcept nogil:
    """The result: the support in increasing position order with its rows, the
    debiased time courses if asked, the residual and the dual point."""
    cdef int i, k, o = s.pen.n_orient, K2 = 2 * s.p.n_coefs, T = s.p.n_times
    cdef int nA = s.nA
    cdef Py_ssize_t r
    cdef int* perm = <int*> malloc((2 * nA + 2) * sizeof(int))
    cdef floating* x
    res.positions = <int*> malloc((nA + 1) * sizeof(int))
    res.Z = malloc((<Py_ssize_t> nA * o * K2 + 1) * sizeof(floating))
    res.X = malloc((<Py_ssize_t> nA * o * T + 1) * sizeof(floating))
    res.R = malloc(s.nr * sizeof(floating))
    res.theta = malloc(s.nr * sizeof(floating))
    if (perm == NULL or res.positions == NULL or res.Z == NULL or res.X == NULL
            or res.R == NULL or res.theta == NULL):
        free(perm)
        return TFX_NO_MEMORY
    for i in range(nA):
        perm[2 * i] = s.A[i]
        perm[2 * i + 1] = i
    qsort(perm, nA, 2 * sizeof(int), _cmp_int_pair)
    for i in range(nA):
        k = perm[2 * i + 1]
        res.positions[i] = s.A[k]
        memcpy(<floating*> res.Z + <Py_ssize_t> i * o * K2,
               <const floating*> s.ZA.ptr + <Py_ssize_t> k * o * K2,
               <Py_ssize_t> o * K2 * sizeof(floating))
        memcpy(<floating*> res.X + <Py_ssize_t> i * o * T,
               <const floating*> s.XA.ptr + <Py_ssize_t> k * o * T,
               <Py_ssize_t> o * T * sizeof(floating))
    free(perm)
    res.n_active = nA
    memcpy(res.R, s.R, s.nr * sizeof(floating))
    memcpy(res.theta, s.theta, s.nr * sizeof(floating))
    if not s.prm.debias or nA == 0:
        return TFX_OK
    return _debias_result(s, res, info, tag)


cdef int _debias_result(tf_state* s, tfx_result_t* res, tfx_info_t* info,
                        const floating* tag) noexcept nogil:
    """Debias the result's time courses: one weight per position and segment
    (condition), ``res.debias`` (n_active, n_segs) row-major."""
    cdef int i, c, st, o = s.pen.n_orient, nA = res.n_active
    cdef int n_segs = s.p.n_segs, Ts = s.p.seg_times, T = s.p.n_times
    cdef Py_ssize_t r
    cdef tf_debias db
    cdef double* d = <double*> malloc(nA * sizeof(double))
    cdef floating* x
    res.debias = <double*> malloc(<Py_ssize_t> nA * n_segs * sizeof(double))
    if res.debias == NULL or d == NULL:
        free(d)
        return TFX_NO_MEMORY
    db.G = s.pb.G
    db.n_chan = s.n_chan
    db.n_src = s.n_src
    db.T = Ts
    db.o = o
    db.positions = res.positions
    db.n_b = nA
    db.ldm = T
    db.ldx = T
    info.debias_status = TFX_OK
    for c in range(n_segs):
        db.M = <const floating*> s.pb.M + <Py_ssize_t> c * Ts
        db.X = <const floating*> res.X + <Py_ssize_t> c * Ts
        st = debias_c(&db, d, tag)
        if st == TFX_NO_MEMORY:
            free(d)
            return TFX_NO_MEMORY
        if st != TFX_OK:
            info.debias_status = st
        for i in range(nA):
            res.debias[i * n_segs + c] = d[i]
            x = <floating*> res.X + <Py_ssize_t> i * o * T + <Py_ssize_t> c * Ts
            for r in range(o):
                _scale(x + r * T, Ts, d[i])
    free(d)
    return TFX_OK


cdef inline void _scale(floating* x, Py_ssize_t n, double d) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        x[i] = <floating> (d * x[i])


# --------------------------------------------------------------------------
# The outer loop
# --------------------------------------------------------------------------
cdef int _outer_loop(tf_state* s, tfx_result_t* res, const floating* tag) noexcept nogil:
    """Certify, record, stop or grow the working set and solve on it; at most
    max_outer inner solves. Returns the loop's status."""
    cdef int st, n_want
    while s.n_outer <= s.tun.max_outer:
        s.n_outer += 1
        n_want = s.nA + 2 * (s.n_grow if s.n_grow > s.nA else s.nA)
        if n_want > s.n_pos:
            n_want = s.n_pos
        s.t_cert = tfx_now()
        st = certify(s, n_want, tag)
        if st == TFX_OK:
            st = record(s, res)
        if st != TFX_OK:
            return st
        if should_stop(s):
            return TFX_MAXIT
        if grow_ws(s) == 0:   # nothing violates yet the gap is open: numerical floor
            return TFX_MAXIT
        st = ws_solve(s, res, tag)
        if st >= 2 or st < 0:
            return st
        take_support(s, tag)
    return TFX_MAXIT


cdef int _tf_solve_t(const tf_plan* p, const tfx_params_t* prm, const tf_tuning* tun,
                     const tf_problem* pb, tfx_result_t* res, tfx_info_t* info,
                     const floating* tag) noexcept nogil:
    """The solve in one precision (see tf_solve); ``res`` and ``info`` are the
    library's own (full size, zeroed)."""
    cdef tf_state s
    cdef int status = state_alloc(&s, p, prm, tun, pb, tag)
    info.n_threads = s.n_thr
    if status == TFX_OK:
        status = warm_start(&s, tag)
    if status == TFX_OK:
        status = _outer_loop(&s, res, tag)
    if s.n_outer > 0 and status == TFX_MAXIT and (s.converged or s.gap < prm.tol):
        # the margin was not reached (cap or stall), the caller's tolerance was
        status = TFX_OK
    info.stalled = s.stalled and status == TFX_MAXIT
    info.n_iter = s.n_iter
    info.n_outer = s.n_outer
    info.n_accel_try = s.n_accel_try
    info.n_accel = s.n_accel
    info.n_restart = s.n_restart
    info.gap = s.gap
    info.p_obj = s.p_obj
    info.d_obj = s.best_d
    info.nu_max = s.nu_max
    if status == TFX_OK or status == TFX_MAXIT or status == TFX_INTERRUPTED:
        if pack_result(&s, res, info, tag) != TFX_OK:
            status = TFX_NO_MEMORY
    if status != TFX_OK and status != TFX_MAXIT and status != TFX_INTERRUPTED:
        tfx_result_clear(res)
    elif pb.keep_gtr != NULL and s.have_prev and s.n_outer > 0:
        # (after the last certificate its buffers are the "previous" ones)
        memcpy(pb.keep_gtr, s.gtr[1 - s.cur], s.n_big * sizeof(floating))
        memcpy(pb.keep_nu, s.nu[1 - s.cur], s.n_pos * sizeof(double))
        pb.kept[0] = 1
    info.status = status
    info.n_active = res.n_active
    info.seconds = tfx_now() - s.t0
    state_free(&s)
    return status
