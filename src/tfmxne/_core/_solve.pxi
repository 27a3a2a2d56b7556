# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The working-set solve of the convex (weighted) TF-MxNE problem: tf_solve.
#
# The one implementation of the outer loop, used by tfmxne.solver (through the
# Python wrapper `solve` of _engine.pyx) and by the public C API
# (tfmxne.cython_tfmxne). An outer iteration computes G^T R over all positions,
# the exact dual norm with screening (cheap upper bounds first; the positions
# that could matter get an STFT), a certified duality gap of the full problem,
# then grows a working set from the strongest violators and solves on it with
# bcd_solve. Threads are the core's own (_threads.h), at most
# tfx_params_t.n_threads; BLAS is called as is (single-threaded products).
# (included by _engine.pyx: shares its imports and types)


cdef enum:
    TFX_MAX_THREADS = 64


cdef void tfx_params_default(tfx_params_t* prm) noexcept nogil:
    """The solver's defaults (the one definition of its constants)."""
    memset(prm, 0, sizeof(tfx_params_t))
    prm.n_orient = 1
    prm.tol = 1e-8
    prm.maxit = 200
    prm.dgap_freq = 10
    # Cap on the outer working-set iterations of one solve (MNE has none).
    prm.max_outer = 100
    # Outer iterations without a 10 % decrease of the gap before stopping.
    prm.stall_outer = 5
    # The loop stops once its certified gap is below tol / 2: at a gap of tol
    # the iterate can still carry a few spurious positions, which a debiased
    # estimate amplifies (benchmarks/README.md: distance to the optimum).
    prm.stop_gap_ratio = 0.5
    # First number of candidate positions added; the increment doubles.
    prm.ws_start = 40
    # One prox step per block visit: the BCD sweep is cheapest per unit of
    # decrease with one (the block Gram would keep more steps cheap).
    prm.n_inner = 1
    # A growing working set is solved to max(0.1 tol, 0.3 gap) (as celer does:
    # early working sets only as precisely as they deserve), with a first gap
    # check after 3 epochs; a complete one (nothing outside violates) to tol / 4.
    prm.inner_tol_ratio = 0.1
    prm.inner_gap_frac = 0.3
    prm.inner_gap_start = 3
    prm.complete_tol_ratio = 0.25
    # Anderson acceleration (memory 5) once an inner solve has run 20 epochs: a
    # slow tail gains a lot, short solves would only pay its snapshot copies.
    prm.anderson_k = 5
    prm.anderson_start = 20
    prm.dual_extrap = 1
    # Newton-refined dual points in the inner solves that must close the gap
    prm.dual_refine = 0
    # No float32 start unless asked (tfmxne.solve asks); when asked, it stops at
    # a gap of 1e-5 ||M||^2 at most: float32 objectives carry about 1e-7
    # relative rounding, so tighter gaps are left to the float64 solve.
    prm.mixed = 0
    prm.mixed_tol_ratio = 1e-5
    prm.n_threads = 1
    # Smallest working set swept by two threads (hand-offs cost more below).
    prm.pipe_min_blocks = 16
    # Positions per thread in the first screening hand-off (then doubling up to
    # 8 times that): a hand-off costs ~0.1 ms, one exact evaluation ~50 us.
    prm.screen_chunk = 32


# --------------------------------------------------------------------------
# Threads: run n tasks, task 0 in the calling thread
# --------------------------------------------------------------------------
ctypedef void (*task_fn)(void* ctx, int i) noexcept nogil

ctypedef struct _task:
    task_fn f
    void* ctx
    int i


cdef void* _task_main(void* arg) noexcept nogil:
    cdef _task* t = <_task*> arg
    t.f(t.ctx, t.i)
    return NULL


cdef void run_tasks(int n, task_fn f, void* ctx) noexcept nogil:
    """``f(ctx, i)`` for ``i < n`` (``n <= TFX_MAX_THREADS``): task 0 in this
    thread, the others in threads of their own; a task whose thread cannot start
    (no thread support) runs here after task 0, so results never depend on it."""
    cdef tfx_thread th[TFX_MAX_THREADS]
    cdef _task tk[TFX_MAX_THREADS]
    cdef int started[TFX_MAX_THREADS]
    cdef int i
    for i in range(1, n):
        tk[i].f = f
        tk[i].ctx = ctx
        tk[i].i = i
        started[i] = tfx_thread_start(&th[i], _task_main, &tk[i]) == 0
    f(ctx, 0)
    for i in range(1, n):
        if started[i]:
            tfx_thread_join(th[i])
        else:
            f(ctx, i)


cdef inline Py_ssize_t _part(Py_ssize_t n, int i, int n_parts) noexcept nogil:
    """Start of part ``i`` of ``n`` items split in ``n_parts`` near-equal parts."""
    return (n * i) // n_parts


# --------------------------------------------------------------------------
# G^T R over all sources
# --------------------------------------------------------------------------
ctypedef struct gtr_ctx:
    const void* G
    const void* R
    void* out
    int n_chan
    int n_src
    int T
    int n_parts
    int is_double


cdef void _gtr_part(gtr_ctx* c, int i, floating* out) noexcept nogil:
    cdef Py_ssize_t lo = _part(c.n_src, i, c.n_parts), hi = _part(c.n_src, i + 1,
                                                                   c.n_parts)
    gemm_rm(True, False, <int> (hi - lo), c.T, c.n_chan, <floating> 1.0,
            <const floating*> c.G + lo, c.n_src, <const floating*> c.R, c.T,
            <floating> 0.0, out + lo * c.T, c.T)


cdef void _gtr_task(void* ctx, int i) noexcept nogil:
    cdef gtr_ctx* c = <gtr_ctx*> ctx
    if c.is_double:
        _gtr_part(c, i, <double*> c.out)
    else:
        _gtr_part(c, i, <float*> c.out)


cdef void gtr_all(const floating* G, const floating* R, int n_chan, int n_src, int T,
                  floating* out, int n_thr, int chunk) noexcept nogil:
    """``out = G^T R`` ((n_src, T), row-major), in ``n_thr`` threads over blocks
    of sources when the problem is large enough."""
    cdef gtr_ctx c
    c.G = G
    c.R = R
    c.out = out
    c.n_chan = n_chan
    c.n_src = n_src
    c.T = T
    c.is_double = floating is double
    c.n_parts = n_thr if n_thr > 1 and n_src >= 4 * chunk * n_thr else 1
    run_tasks(c.n_parts, _gtr_task, &c)


# --------------------------------------------------------------------------
# Exact dual norm with screening
# --------------------------------------------------------------------------
ctypedef struct thr_scratch:
    void* Y             # n_orient * 2 K
    void* frames        # max_frames
    void* dbuf          # n_orient * T
    double* csum        # T + 1
    eps_item* items     # n_coefs


ctypedef struct sort_item:
    double key
    Py_ssize_t idx


cdef int _cmp_desc_stable(const void* a, const void* b) noexcept nogil:
    """Decreasing key, then increasing index (a stable sort by decreasing key)."""
    cdef const sort_item* x = <const sort_item*> a
    cdef const sort_item* y = <const sort_item*> b
    if x.key > y.key:
        return -1
    if x.key < y.key:
        return 1
    return (x.idx > y.idx) - (x.idx < y.idx)


ctypedef struct screen_ctx:
    const tf_plan* p
    const void* GtR
    const void* GtR_prev      # with nu_prev: triangle-inequality bounds, or NULL
    const double* nu_prev
    const void* wsp
    const void* wt
    int n_pos
    int n_orient
    double rho
    double* ub                # bounds (phase 1) ...
    double* nu                # ... exact values (phase 2)
    unsigned char* exact
    const sort_item* todo     # phase 2: positions to evaluate ...
    Py_ssize_t n_todo         # ... task i takes todo[i::n_parts]
    int n_parts
    thr_scratch* scr


cdef double _bound_one(const tf_plan* p, const floating* GtR, const floating* GtR_prev,
                       const double* nu_prev, int j, int n_orient, double rho,
                       const floating* wsp, const floating* wt,
                       thr_scratch* s) noexcept nogil:
    """Upper bound on the epsilon norm of Phi(G_j^T R) (no STFT)."""
    cdef int T = p.n_times, q, k
    cdef double w_min = 1.0, ws_j, ub, ubd
    cdef const floating* wt_j
    cdef floating* d = <floating*> s.dbuf
    cdef Py_ssize_t r0 = <Py_ssize_t> j * n_orient * T
    ws_j = wsp[j] if wsp != NULL else 1.0
    if wt != NULL:
        wt_j = wt + <Py_ssize_t> j * p.n_coefs
        w_min = INFINITY
        for q in range(p.n_coefs):
            if wt_j[q] > 0 and wt_j[q] < w_min:
                w_min = wt_j[q]
        if w_min == INFINITY:
            return 0.0   # every coefficient is held at zero
    ub = eps_upper_bound(p, GtR + r0, n_orient, T, ws_j, w_min, rho, s.csum)
    if GtR_prev != NULL and nu_prev[j] < ub:
        for k in range(n_orient * T):
            d[k] = GtR[r0 + k] - GtR_prev[r0 + k]
        ubd = nu_prev[j] + eps_upper_bound(p, d, n_orient, T, ws_j, w_min, rho, s.csum)
        if ubd < ub:
            ub = ubd
    return ub


cdef double _exact_one(const tf_plan* p, const floating* GtR, int j, int n_orient,
                       double rho, const floating* wsp, const floating* wt,
                       thr_scratch* s) noexcept nogil:
    """Epsilon norm of Phi(G_j^T R) (one STFT of the block)."""
    cdef int K2 = 2 * p.n_coefs
    cdef floating* Y = <floating*> s.Y
    stft_rows(p, GtR + <Py_ssize_t> j * n_orient * p.n_times, n_orient, p.n_times,
              Y, K2, <floating*> s.frames)
    return eps_norm_block(p, Y, n_orient, K2,
                          wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL,
                          wsp[j] if wsp != NULL else 1.0, rho, s.items)


cdef void _screen_task_t(screen_ctx* c, int i, const floating* dummy) noexcept nogil:
    cdef Py_ssize_t k, lo, hi
    cdef int j
    cdef const floating* GtR = <const floating*> c.GtR
    if c.todo == NULL:        # phase 1: bounds of a range of positions
        lo = _part(c.n_pos, i, c.n_parts)
        hi = _part(c.n_pos, i + 1, c.n_parts)
        for k in range(lo, hi):
            c.ub[k] = _bound_one(c.p, GtR, <const floating*> c.GtR_prev, c.nu_prev,
                                 <int> k, c.n_orient, c.rho, <const floating*> c.wsp,
                                 <const floating*> c.wt, &c.scr[i])
    else:                     # phase 2: exact values of todo[i::n_parts]
        k = i
        while k < c.n_todo:
            j = <int> c.todo[k].idx
            c.nu[j] = _exact_one(c.p, GtR, j, c.n_orient, c.rho,
                                 <const floating*> c.wsp, <const floating*> c.wt,
                                 &c.scr[i])
            c.exact[j] = 1
            k += c.n_parts


cdef void _screen_task(void* ctx, int i) noexcept nogil:
    cdef screen_ctx* c = <screen_ctx*> ctx
    if c.p.is_double:
        _screen_task_t(c, i, <const double*> NULL)
    else:
        _screen_task_t(c, i, <const float*> NULL)


cdef void dual_norm_screened_c(const tf_plan* p, const floating* GtR, int n_pos,
                               int n_orient, double rho, const floating* wsp,
                               const floating* wt, int n_min, double alpha,
                               Py_ssize_t n_max, const floating* GtR_prev,
                               const double* nu_prev, int n_thr, int chunk,
                               thr_scratch* scr, sort_item* order, double* nu,
                               unsigned char* exact, double* out_best,
                               double* out_rest) noexcept nogil:
    """Exact max over positions of the epsilon norm of Phi(G_j^T R), screened.

    Positions are visited by decreasing upper bound; the visit stops at the first
    bound ``<= 0``, ``<= alpha`` (neither a violator nor a change of the dual
    scaling), ``<= best`` once ``n_min`` positions were evaluated, or after
    ``n_max`` evaluations (``n_max < 0``: no cap). With ``GtR_prev`` and
    ``nu_prev`` (upper bounds at ``GtR_prev``) each bound is also capped by the
    triangle inequality. ``nu`` gets the exact values where ``exact[j]``, the
    bound elsewhere; ``out_best`` the largest exact value, ``out_rest`` the
    largest bound left unevaluated (the dual norm is at most the max of both).

    ``n_thr`` threads (``scr``: one scratch each): the bounds over ranges of
    positions, then chunks of the visit order evaluated in parallel and the
    sequential stopping rules replayed over each chunk in order; evaluations past
    the stopping point are discarded, so the result is the sequential one, bit
    for bit, whatever the thread count.
    """
    cdef screen_ctx c
    cdef Py_ssize_t k, end, m, mm, size, n_eval = 0, n_ok
    cdef int j
    cdef double best = 0.0, rest = 0.0, u, floor
    cdef bint par = n_thr > 1 and n_pos >= 4 * chunk * n_thr, stop
    out_best[0] = 0.0
    out_rest[0] = 0.0
    if n_pos == 0:
        return
    c.p = p
    c.GtR = GtR
    c.GtR_prev = GtR_prev if nu_prev != NULL else NULL
    c.nu_prev = nu_prev
    c.wsp = wsp
    c.wt = wt
    c.n_pos = n_pos
    c.n_orient = n_orient
    c.rho = rho
    c.ub = nu
    c.nu = nu
    c.exact = exact
    c.scr = scr
    c.todo = NULL
    c.n_todo = 0
    c.n_parts = n_thr if par else 1
    run_tasks(c.n_parts, _screen_task, &c)     # bounds, into nu
    for k in range(n_pos):
        order[k].key = nu[k]
        order[k].idx = k
        exact[k] = 0
    qsort(order, n_pos, sizeof(sort_item), _cmp_desc_stable)
    if not par:
        for k in range(n_pos):
            j = <int> order[k].idx
            u = order[k].key
            if u <= 0.0:
                break
            if u <= alpha or (u <= best and n_eval >= n_min) or (
                    n_max >= 0 and n_eval >= n_max):
                rest = u
                break
            nu[j] = _exact_one(p, GtR, j, n_orient, rho, wsp, wt, &scr[0])
            exact[j] = 1
            n_eval += 1
            if nu[j] > best:
                best = nu[j]
        out_best[0] = best
        out_rest[0] = rest
        return
    k = 0
    size = chunk * n_thr
    stop = False
    while k < n_pos and not stop:
        end = k + size if k + size < n_pos else n_pos
        if n_max >= 0 and end > k + (n_max - n_eval if n_max - n_eval > 1 else 1):
            end = k + (n_max - n_eval if n_max - n_eval > 1 else 1)
        # bounds at or below this floor stop the visit for sure: not evaluated
        floor = alpha if alpha > 0.0 else 0.0
        if n_eval >= n_min and best > floor:
            floor = best
        n_ok = 0
        while k + n_ok < end and order[k + n_ok].key > floor:
            n_ok += 1
        if n_ok > 0:
            c.todo = order + k
            c.n_todo = n_ok
            c.n_parts = n_thr if n_ok >= n_thr else <int> n_ok
            run_tasks(c.n_parts, _screen_task, &c)
        # replay the sequential rules over the chunk
        for m in range(k, end):
            j = <int> order[m].idx
            u = order[m].key
            if u <= 0.0 or u <= alpha or (u <= best and n_eval >= n_min) or (
                    n_max >= 0 and n_eval >= n_max):
                if u > 0.0:
                    rest = u
                for mm in range(m, end):      # discard the evaluations past here
                    j = <int> order[mm].idx
                    nu[j] = order[mm].key
                    exact[j] = 0
                stop = True
                break
            n_eval += 1
            if nu[j] > best:
                best = nu[j]
        k = end
        size = 2 * size if 2 * size < 8 * chunk * n_thr else 8 * chunk * n_thr
    out_best[0] = best
    out_rest[0] = rest


# --------------------------------------------------------------------------
# Lipschitz constants and block Gram matrices
# --------------------------------------------------------------------------
cdef int lipschitz_c(const floating* G, int n_chan, int n_src, int n_orient,
                     floating* lc) noexcept nogil:
    """``lc[j] = ||G_j^T G_j||_2`` for every position (largest eigenvalue of the
    block Gram matrix, LAPACK ``dsyev``). Returns 0, or a status code."""
    cdef int n_pos = n_src // n_orient, j, a, b, c, o = n_orient, lwork, info
    cdef double* acc
    cdef double* gram
    cdef double* w
    cdef double* work
    cdef double v
    cdef const floating* row
    cdef char jobz = b'N'
    cdef char uplo = b'U'
    if o == 1:
        acc = <double*> calloc(n_src if n_src > 0 else 1, sizeof(double))
        if acc == NULL:
            return TFX_NO_MEMORY
        for c in range(n_chan):
            row = G + <Py_ssize_t> c * n_src
            for j in range(n_src):
                acc[j] += <double> row[j] * row[j]
        for j in range(n_src):
            lc[j] = <floating> acc[j]
        free(acc)
        return 0
    lwork = 3 * o + 8
    gram = <double*> malloc((o * o + o + lwork) * sizeof(double))
    if gram == NULL:
        return TFX_NO_MEMORY
    w = gram + o * o
    work = w + o
    for j in range(n_pos):
        for a in range(o):
            for b in range(a, o):
                v = 0.0
                for c in range(n_chan):
                    row = G + <Py_ssize_t> c * n_src + j * o
                    v += <double> row[a] * row[b]
                gram[a * o + b] = v
                gram[b * o + a] = v
        dsyev(&jobz, &uplo, &o, gram, &o, w, work, &lwork, &info)
        lc[j] = <floating> (w[o - 1] if info == 0 else INFINITY)
    free(gram)
    return 0


cdef void block_grams_c(const floating* GT, int n_ws, int n_orient, int n_chan,
                      const floating* lc, floating* gram,
                      floating* xgram) noexcept nogil:
    """``gram[j] = G_j^T G_j`` ((n_ws, n_orient, n_orient)) from rows of G^T and,
    if ``xgram`` is not NULL, ``xgram[j] = G_j^T G_i`` with ``i`` the block the
    sweep visits just before ``j`` (``lc > 0``; zero for the first visited)."""
    cdef int j, a, b, o = n_orient, prev = -1
    cdef Py_ssize_t oo = <Py_ssize_t> o * o
    cdef const floating* Bj
    for j in range(n_ws):
        Bj = GT + <Py_ssize_t> j * o * n_chan
        for a in range(o):
            for b in range(o):
                gram[j * oo + a * o + b] = <floating> dot(n_chan, Bj + a * n_chan,
                                                          Bj + b * n_chan)
        if xgram == NULL:
            continue
        memset(xgram + j * oo, 0, oo * sizeof(floating))
        if lc[j] <= 0:
            continue
        if prev >= 0:
            for a in range(o):
                for b in range(o):
                    xgram[j * oo + a * o + b] = <floating> dot(
                        n_chan, Bj + a * n_chan,
                        GT + (<Py_ssize_t> prev * o + b) * n_chan)
        prev = j


# --------------------------------------------------------------------------
# The solve
# --------------------------------------------------------------------------
cdef bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(a[i]):
            return False
    return True


cdef int _check_solve_args(const tf_plan* p, const tfx_params_t* prm,
                           const tf_problem* pb) noexcept nogil:
    """TFX_OK, or the status of invalid arguments (nothing is written)."""
    cdef double a_s = prm.alpha_space, a_t = prm.alpha_time
    cdef int i, n_pos
    if p == NULL or prm == NULL or pb == NULL or pb.M == NULL or pb.G == NULL:
        return TFX_BAD_ARG
    if (pb.n_chan < 1 or pb.n_sources < 1 or prm.n_orient < 1
            or pb.n_sources % prm.n_orient or p.n_times < 1):
        return TFX_BAD_ARG
    if not (isfinite(a_s) and isfinite(a_t) and a_s >= 0 and a_t >= 0
            and a_s + a_t > 0):
        return TFX_BAD_ARG
    if (not prm.tol > 0 or not isfinite(prm.tol) or prm.maxit < 1
            or prm.max_outer < 0 or prm.n_inner < 1 or prm.anderson_k < 0
            or not prm.stop_gap_ratio > 0 or prm.stop_gap_ratio > 1
            or prm.ws_start < 1 or prm.screen_chunk < 1):
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


cdef int _check_values(const tf_plan* p, const tfx_params_t* prm,
                       const tf_problem* pb, const floating* M,
                       const floating* G) noexcept nogil:
    """TFX_NONFINITE for NaN / Inf in the data, TFX_BAD_ARG for invalid weights."""
    cdef int n_pos = pb.n_sources // prm.n_orient, j
    cdef Py_ssize_t k
    cdef const floating* ws = <const floating*> pb.w_space
    cdef const floating* wt = <const floating*> pb.w_time
    if not (_all_finite(M, <Py_ssize_t> pb.n_chan * p.n_times)
            and _all_finite(G, <Py_ssize_t> pb.n_chan * pb.n_sources)):
        return TFX_NONFINITE
    if pb.n_init > 0 and not _all_finite(<const floating*> pb.Z_init, <Py_ssize_t>
                                         pb.n_init * prm.n_orient * 2 * p.n_coefs):
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


cdef int _push_obj(tfx_result_t* res, int* cap, double v) noexcept nogil:
    """Append to the objective history (grown geometrically)."""
    cdef double* q
    if res.n_obj == cap[0]:
        q = <double*> realloc(res.obj, (2 * cap[0] + 16) * sizeof(double))
        if q == NULL:
            return TFX_NO_MEMORY
        res.obj = q
        cap[0] = 2 * cap[0] + 16
    res.obj[res.n_obj] = v
    res.n_obj += 1
    return 0


cdef int _bsearch(const int* a, int n, int v) noexcept nogil:
    cdef int lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _cmp_int_pair(const void* a, const void* b) noexcept nogil:
    cdef const int* x = <const int*> a
    cdef const int* y = <const int*> b
    return (x[0] > y[0]) - (x[0] < y[0])


cdef int _tf_solve_t(const tf_plan* p, const tfx_params_t* prm, const tf_problem* pb,
                     tfx_result_t* res, tfx_info_t* info, const floating* M,
                     const floating* G) noexcept nogil:
    cdef int T = p.n_times, K = p.n_coefs, K2 = 2 * p.n_coefs
    cdef int o = prm.n_orient, n_chan = pb.n_chan, n_src = pb.n_sources
    cdef int n_pos = n_src // o
    cdef double a_s = prm.alpha_space, a_t = prm.alpha_time
    cdef double alpha = a_s + a_t, rho = a_t / (a_s + a_t)
    cdef double tol_user = prm.tol, tol = prm.tol * prm.stop_gap_ratio
    cdef int n_thr = prm.n_threads, chunk = prm.screen_chunk
    cdef int max_outer = prm.max_outer, maxit = prm.maxit
    cdef int status = TFX_MAXIT, st, i, j, k, q, n_outer = 0, n_iter = 0
    cdef int nA = 0, n_ws = 0, n_want, n_grow = prm.ws_start, n_add, n_cand
    cdef int n_stall = 0, hist_cap = 0, cur = 0, n_plain, n_a
    cdef bint converged = False, stalled = False, have_prev = False, reuse
    cdef bint use_extrap = prm.dual_extrap != 0
    cdef bint use_refine = prm.dual_refine != 0
    cdef double refine_st[1]
    cdef double nR2r, RMr
    cdef Py_ssize_t nr = <Py_ssize_t> n_chan * T, r, cap_rows, n_big
    cdef Py_ssize_t rows_o, n_max
    cdef double gap = INFINITY, best_gap = INFINITY, best_d = -INFINITY
    cdef double nu_max = INFINITY, nu_rest = 0.0, nR2, RM, pen, l21, l1, p_obj = INFINITY
    cdef double d_obj, d_opt, scal, t, nx_max, nx_rest, nR2x, RMx, d_x, tol_in
    cdef int gap_start, c_
    cdef tf_info binfo
    cdef bcd_args ba
    # buffers (all freed at the end)
    cdef floating* lc = NULL
    cdef floating* gtr_buf[2]
    cdef double* nu_buf[2]
    cdef unsigned char* ex_buf[2]
    cdef sort_item* order = NULL
    cdef unsigned char* in_A = NULL
    cdef int* A = NULL
    cdef int* ws = NULL
    cdef floating* R = NULL
    cdef floating* theta = NULL
    cdef floating* rprev = NULL
    cdef floating* tref = NULL
    cdef double extrap[2]
    cdef floating* ZA = NULL
    cdef floating* XA = NULL
    cdef floating* Zws = NULL
    cdef floating* Xws = NULL
    cdef floating* GT = NULL
    cdef floating* grams = NULL
    cdef floating* xgram = NULL
    cdef floating* lc_ws = NULL
    cdef floating* ws_w = NULL
    cdef floating* wt_w = NULL
    cdef unsigned char* act = NULL
    cdef floating* work = NULL
    cdef eps_item* items = NULL
    cdef double* ihist = NULL
    cdef floating* pipe = NULL
    cdef floating* snap = NULL
    cdef thr_scratch* scr = NULL
    cdef char* scr_mem = NULL
    cdef floating* fbuf
    cdef const floating* wsp = <const floating*> pb.w_space
    cdef const floating* wt = <const floating*> pb.w_time
    cdef int* perm = NULL
    cdef Py_ssize_t scr_sz
    gtr_buf[0] = gtr_buf[1] = NULL
    nu_buf[0] = nu_buf[1] = NULL
    ex_buf[0] = ex_buf[1] = NULL
    memset(res, 0, sizeof(tfx_result_t))
    memset(info, 0, sizeof(tfx_info_t))
    if n_thr < 1:
        n_thr = 1
    if n_thr > TFX_MAX_THREADS:
        n_thr = TFX_MAX_THREADS
    info.n_threads = n_thr
    # ---- fixed buffers ----
    n_big = <Py_ssize_t> n_src * T
    lc = <floating*> malloc(n_pos * sizeof(floating))
    gtr_buf[0] = <floating*> malloc(n_big * sizeof(floating))
    gtr_buf[1] = <floating*> malloc(n_big * sizeof(floating))
    nu_buf[0] = <double*> malloc(n_pos * sizeof(double))
    nu_buf[1] = <double*> malloc(n_pos * sizeof(double))
    ex_buf[0] = <unsigned char*> calloc(n_pos, 1)
    ex_buf[1] = <unsigned char*> calloc(n_pos, 1)
    order = <sort_item*> malloc(n_pos * sizeof(sort_item))
    in_A = <unsigned char*> calloc(n_pos, 1)
    A = <int*> malloc(n_pos * sizeof(int))
    ws = <int*> malloc(n_pos * sizeof(int))
    R = <floating*> malloc(nr * sizeof(floating))
    theta = <floating*> calloc(nr, sizeof(floating))
    rprev = <floating*> malloc(nr * sizeof(floating)) if use_extrap else NULL
    tref = <floating*> malloc(nr * sizeof(floating)) if use_refine else NULL
    work = <floating*> malloc(bcd_work_size(p, o) * sizeof(floating))
    items = <eps_item*> malloc((K if K > 0 else 1) * sizeof(eps_item))
    ihist = <double*> malloc(maxit * sizeof(double))
    pipe = <floating*> malloc(4 * <Py_ssize_t> o * T * sizeof(floating)) \
        if n_thr > 1 else NULL
    # per-thread screening scratch, in one block
    scr_sz = ((<Py_ssize_t> o * (K2 + T) + p.max_frames) * sizeof(floating)
              + (T + 1) * sizeof(double) + (K if K > 0 else 1) * sizeof(eps_item))
    scr_sz = (scr_sz + 63) // 64 * 64
    scr = <thr_scratch*> malloc(n_thr * sizeof(thr_scratch))
    scr_mem = <char*> malloc(n_thr * scr_sz)
    if (lc == NULL or gtr_buf[0] == NULL or gtr_buf[1] == NULL or nu_buf[0] == NULL
            or nu_buf[1] == NULL or ex_buf[0] == NULL or ex_buf[1] == NULL
            or order == NULL or in_A == NULL or A == NULL
            or ws == NULL or R == NULL or theta == NULL or work == NULL
            or items == NULL or ihist == NULL or scr == NULL or scr_mem == NULL
            or (use_extrap and rprev == NULL) or (use_refine and tref == NULL)
            or (n_thr > 1 and pipe == NULL)):
        status = TFX_NO_MEMORY
        n_outer = -1
    else:
        for i in range(n_thr):
            fbuf = <floating*> (scr_mem + i * scr_sz)
            scr[i].Y = fbuf
            scr[i].dbuf = fbuf + <Py_ssize_t> o * K2
            scr[i].frames = fbuf + <Py_ssize_t> o * (K2 + T)
            scr[i].csum = <double*> (fbuf + <Py_ssize_t> o * (K2 + T) + p.max_frames)
            scr[i].items = <eps_item*> (scr[i].csum + T + 1)
        if pb.lc != NULL:
            memcpy(lc, pb.lc, n_pos * sizeof(floating))
        elif lipschitz_c(G, n_chan, n_src, o, lc) != 0:
            status = TFX_NO_MEMORY
            n_outer = -1
    # ---- warm start: the positions of the initial coefficients that are not zero ----
    if n_outer == 0 and pb.n_init > 0:
        ZA = <floating*> malloc(<Py_ssize_t> pb.n_init * o * K2 * sizeof(floating))
        XA = <floating*> malloc(<Py_ssize_t> pb.n_init * o * T * sizeof(floating))
        if ZA == NULL or XA == NULL:
            status = TFX_NO_MEMORY
            n_outer = -1
        else:
            for i in range(pb.n_init):
                fbuf = <floating*> pb.Z_init + <Py_ssize_t> i * o * K2
                for r in range(<Py_ssize_t> o * K2):
                    if fbuf[r] != 0:
                        break
                else:
                    continue
                if in_A[pb.init_pos[i]]:
                    continue          # a repeated position: its first rows count
                in_A[pb.init_pos[i]] = 1
                A[nA] = pb.init_pos[i]
                memcpy(ZA + <Py_ssize_t> nA * o * K2, fbuf,
                       <Py_ssize_t> o * K2 * sizeof(floating))
                nA += 1
            if nA > 0:
                istft_rows(p, ZA, nA * o, K2, XA, T, T, work)
    if n_outer == 0:
        memcpy(R, M, nr * sizeof(floating))
        for i in range(nA):
            gemm_rm(False, False, n_chan, T, o, <floating> -1.0,
                    G + <Py_ssize_t> A[i] * o, n_src, XA + <Py_ssize_t> i * o * T, T,
                    <floating> 1.0, R, T)
    reuse = (pb.screen_gtr != NULL and nA == 0 and wsp == NULL and wt == NULL)
    if n_outer == 0 and floating is double and pb.seed_gtr != NULL:
        # the float32 start's last screening, as the "previous" one of the
        # first outer iteration: its bounds need no STFT
        for r in range(n_big):
            gtr_buf[1 - cur][r] = pb.seed_gtr[r]
        memcpy(nu_buf[1 - cur], pb.seed_nu, n_pos * sizeof(double))
        have_prev = True
    extrap[0] = extrap[1] = 0.0
    refine_st[0] = 0.0
    # ---- outer loop: max_outer inner solves, the gap always at the iterate ----
    while n_outer >= 0 and n_outer <= max_outer:
        n_outer += 1
        n_want = nA + 2 * (n_grow if n_grow > nA else nA)
        if n_want > n_pos:
            n_want = n_pos
        if reuse and n_outer == 1:
            memcpy(gtr_buf[cur], pb.screen_gtr, n_big * sizeof(floating))
            memcpy(nu_buf[cur], pb.screen_nu, n_pos * sizeof(double))
            memcpy(ex_buf[cur], pb.screen_exact, n_pos)
            nu_max = 0.0
            nu_rest = 0.0
            for j in range(n_pos):
                if ex_buf[cur][j] and nu_buf[cur][j] > nu_max:
                    nu_max = nu_buf[cur][j]
                elif not ex_buf[cur][j] and nu_buf[cur][j] > nu_rest:
                    nu_rest = nu_buf[cur][j]
        else:
            gtr_all(G, R, n_chan, n_src, T, gtr_buf[cur], n_thr, chunk)
            # capped screening: the gap is then an upper bound (still a certificate)
            n_max = 2 * n_want if 2 * n_want > 200 else 200
            dual_norm_screened_c(p, gtr_buf[cur], n_pos, o, rho, wsp, wt, n_want,
                                 alpha, n_max, gtr_buf[1 - cur] if have_prev else NULL,
                                 nu_buf[1 - cur] if have_prev else NULL, n_thr, chunk,
                                 scr, order, nu_buf[cur], ex_buf[cur], &nu_max,
                                 &nu_rest)
        nR2 = dot(<int> nr, R, R)
        RM = dot(<int> nr, R, M)
        if not isfinite(nR2):
            status = TFX_NONFINITE
            break
        pen = 0.0
        for i in range(nA):
            penalty_block(p, ZA + <Py_ssize_t> i * o * K2, o, K2,
                          wt + <Py_ssize_t> A[i] * K if wt != NULL else NULL, &l21, &l1)
            pen += a_s * l21 * (wsp[A[i]] if wsp != NULL else 1.0) + a_t * l1
        p_obj = 0.5 * nR2 + pen
        d_obj = scaled_dual(nR2, RM, nu_max if nu_max > nu_rest else nu_rest, alpha)
        d_opt = scaled_dual(nR2, RM, nu_max, alpha)   # optimistic
        if (p_obj - (best_d if best_d > d_obj else d_obj) >= tol
                and nu_rest > (nu_max if nu_max > alpha else alpha)
                and p_obj - (best_d if best_d > d_opt else d_opt) < tol):
            # the cap left positions unproven: finish the exact dual norm
            dual_norm_screened_c(p, gtr_buf[cur], n_pos, o, rho, wsp, wt, n_want,
                                 alpha, -1, gtr_buf[1 - cur] if have_prev else NULL,
                                 nu_buf[1 - cur] if have_prev else NULL, n_thr, chunk,
                                 scr, order, nu_buf[cur], ex_buf[cur], &nu_max,
                                 &nu_rest)
            d_obj = scaled_dual(nR2, RM, nu_max if nu_max > nu_rest else nu_rest, alpha)
        if d_obj > best_d:
            best_d = d_obj
            scal = 1.0
            if nu_max > alpha or nu_rest > alpha:
                scal = alpha / (nu_max if nu_max > nu_rest else nu_rest)
            for r in range(nr):
                theta[r] = <floating> (scal * R[r])
        if use_refine and refine_st[0] == 1 and p_obj - best_d >= tol:
            # the inner solve's best dual point was the Newton-refined one: certify
            # it on the whole source space (exact dual norms of every position
            # that could exceed alpha, in the buffers of the previous residual)
            gtr_all(G, tref, n_chan, n_src, T, gtr_buf[1 - cur], n_thr, chunk)
            # (bounds at R, plus those of the small step tref - R, cap the bounds)
            dual_norm_screened_c(p, gtr_buf[1 - cur], n_pos, o, rho, wsp, wt, 0, alpha,
                                 -1, gtr_buf[cur], nu_buf[cur], n_thr, chunk, scr, order,
                                 nu_buf[1 - cur], ex_buf[1 - cur], &nx_max, &nx_rest)
            nR2r = dot(<int> nr, tref, tref)
            RMr = dot(<int> nr, tref, M)
            if nx_rest > nx_max:
                nx_max = nx_rest
            d_x = scaled_dual(nR2r, RMr, nx_max, alpha)
            if d_x > best_d:
                best_d = d_x
                scal = alpha / nx_max if nx_max > alpha else 1.0
                for r in range(nr):
                    theta[r] = <floating> (scal * tref[r])
        if (use_extrap and extrap[0] == 2 and extrap[1] > 0
                and p_obj - best_d >= tol):
            # the inner solve's best dual point was extrapolated, R + t (R - R_prev):
            # certify it on the whole source space too (in the buffers of the
            # previous residual, no longer needed)
            t = extrap[1]
            gtr_all(G, rprev, n_chan, n_src, T, gtr_buf[1 - cur], n_thr, chunk)
            fbuf = gtr_buf[1 - cur]
            for r in range(n_big):
                fbuf[r] = gtr_buf[cur][r] + <floating> t * fbuf[r]
            dual_norm_screened_c(p, fbuf, n_pos, o, rho, wsp, wt, 0, alpha, -1,
                                 gtr_buf[cur], nu_buf[cur], n_thr, chunk, scr, order,
                                 nu_buf[1 - cur], ex_buf[1 - cur], &nx_max, &nx_rest)
            nR2x = nR2 + 2.0 * t * dot(<int> nr, R, rprev) + t * t * dot(
                <int> nr, rprev, rprev)
            RMx = RM + t * dot(<int> nr, rprev, M)
            if nx_rest > nx_max:
                nx_max = nx_rest
            d_x = scaled_dual(nR2x, RMx, nx_max, alpha)
            if d_x > best_d:
                best_d = d_x
                scal = alpha / nx_max if nx_max > alpha else 1.0
                for r in range(nr):
                    theta[r] = <floating> (scal * (R[r] + t * rprev[r]))
        # the bounds of this residual tighten the screening of the next one
        cur = 1 - cur
        have_prev = True
        gap = p_obj - best_d
        _record_outer(res, nA, gap, p_obj, best_d, max_outer)
        if _push_obj(res, &hist_cap, p_obj) != 0:
            status = TFX_NO_MEMORY
            break
        if prm.progress != NULL and prm.progress(prm.progress_ctx, n_outer, gap, nA):
            status = TFX_INTERRUPTED
            break
        if gap < tol:
            converged = True
            break
        if n_outer > max_outer:
            n_outer = max_outer
            break
        # stall guard: the gap stopped decreasing (numerical floor, tol below the
        # rounding of the objectives): stop instead of spinning to the cap
        if gap < 0.9 * best_gap:
            best_gap = gap
            n_stall = 0
        else:
            n_stall += 1
            if n_stall >= prm.stall_outer:
                stalled = True
                break
        # ---- working set: the support plus the strongest violators ----
        n_cand = 0
        for j in range(n_pos):
            # (the buffers of this certificate are now the "previous" ones)
            if ex_buf[1 - cur][j] and not in_A[j] and nu_buf[1 - cur][j] > alpha:
                order[n_cand].key = nu_buf[1 - cur][j]
                order[n_cand].idx = j
                n_cand += 1
        qsort(order, n_cand, sizeof(sort_item), _cmp_desc_stable)
        n_add = n_grow if n_grow > nA else nA
        if n_add > n_cand:
            n_add = n_cand
        for i in range(nA):
            ws[i] = A[i]
        for i in range(n_add):
            ws[nA + i] = <int> order[i].idx
        n_ws = nA + n_add
        qsort(ws, n_ws, sizeof(int), _cmp_int_pair)
        n_grow = 2 * n_grow
        if n_ws == 0:   # nothing violates yet the gap is open: numerical floor
            break
        rows_o = <Py_ssize_t> n_ws * o
        GT = <floating*> malloc(rows_o * n_chan * sizeof(floating))
        Zws = <floating*> calloc(rows_o * K2, sizeof(floating))
        Xws = <floating*> calloc(rows_o * T, sizeof(floating))
        grams = <floating*> malloc(rows_o * o * sizeof(floating))
        xgram = <floating*> malloc(rows_o * o * sizeof(floating)) \
            if n_thr > 1 and prm.n_inner == 1 and n_ws >= prm.pipe_min_blocks else NULL
        lc_ws = <floating*> malloc(n_ws * sizeof(floating))
        act = <unsigned char*> calloc(n_ws, 1)
        ws_w = <floating*> malloc(n_ws * sizeof(floating)) if wsp != NULL else NULL
        wt_w = <floating*> malloc(<Py_ssize_t> n_ws * K * sizeof(floating)) \
            if wt != NULL else NULL
        if (GT == NULL or Zws == NULL or Xws == NULL or grams == NULL or lc_ws == NULL
                or act == NULL or (wsp != NULL and ws_w == NULL)
                or (wt != NULL and wt_w == NULL)
                or (xgram == NULL and n_thr > 1 and prm.n_inner == 1
                    and n_ws >= prm.pipe_min_blocks)):
            status = TFX_NO_MEMORY
            break
        for c_ in range(n_chan):
            fbuf = <floating*> G + <Py_ssize_t> c_ * n_src
            for i in range(n_ws):
                for q in range(o):
                    GT[(<Py_ssize_t> i * o + q) * n_chan + c_] = fbuf[ws[i] * o + q]
        for i in range(n_ws):
            lc_ws[i] = lc[ws[i]]
            if ws_w != NULL:
                ws_w[i] = wsp[ws[i]]
            if wt_w != NULL:
                memcpy(wt_w + <Py_ssize_t> i * K, wt + <Py_ssize_t> ws[i] * K,
                       K * sizeof(floating))
        for i in range(nA):
            k = _bsearch(ws, n_ws, A[i])
            act[k] = 1
            memcpy(Zws + <Py_ssize_t> k * o * K2, ZA + <Py_ssize_t> i * o * K2,
                   <Py_ssize_t> o * K2 * sizeof(floating))
            memcpy(Xws + <Py_ssize_t> k * o * T, XA + <Py_ssize_t> i * o * T,
                   <Py_ssize_t> o * T * sizeof(floating))
        block_grams_c(GT, n_ws, o, n_chan, lc_ws, grams, xgram)
        # growing working set: loose target, an early first gap check while it is
        # loose; complete (nothing new violates): close the gap below tol with
        # some margin for the outer certificate
        if n_ws > nA:
            tol_in = tol * prm.inner_tol_ratio
            if prm.inner_gap_frac * gap > tol_in:
                tol_in = prm.inner_gap_frac * gap
            gap_start = prm.inner_gap_start if tol_in > tol * prm.inner_tol_ratio else 0
        else:
            tol_in = tol * prm.complete_tol_ratio
            gap_start = 0
        n_plain = maxit
        if prm.anderson_k > 0 and prm.anderson_start < maxit:
            n_plain = prm.anderson_start
        extrap[0] = extrap[1] = 0.0   # a new inner solve: no previous residual yet
        refine_st[0] = 0.0
        memset(&ba, 0, sizeof(bcd_args))
        ba.n_ws = n_ws
        ba.n_orient = o
        ba.n_chan = n_chan
        ba.GT = GT
        ba.M = M
        ba.R = R
        ba.X = Xws
        ba.Z = Zws
        ba.active = act
        ba.lc = lc_ws
        ba.wsp = ws_w
        ba.wt = wt_w
        ba.gram = grams
        ba.xgram = xgram
        ba.alpha_s = a_s
        ba.alpha_t = a_t
        ba.tol = tol_in
        ba.maxit = n_plain
        ba.dgap_freq = prm.dgap_freq
        ba.gap_start = gap_start
        ba.n_inner = prm.n_inner
        ba.work = work
        ba.items = items
        ba.pipe = pipe if xgram != NULL else NULL
        # only inner solves that must close the gap below tol extrapolate: earlier
        # ones stop at loose tolerances, where an earlier stop only reshapes the path
        ba.rprev = rprev if use_extrap and tol_in <= tol else NULL
        ba.extrap = extrap if use_extrap and tol_in <= tol else NULL
        ba.tref = tref if use_refine and tol_in <= tol else NULL
        ba.refine = refine_st if use_refine and tol_in <= tol else NULL
        ba.hist = ihist
        ba.max_hist = maxit
        memset(&binfo, 0, sizeof(tf_info))
        # plain epochs first; a slow tail continues with Anderson acceleration
        # (same state: R, X, Z and the support are updated in place)
        bcd_solve(p, &ba, &binfo)
        st = binfo.status
        n_iter += binfo.n_iter
        k = binfo.n_iter
        for i in range(binfo.n_obj):
            if _push_obj(res, &hist_cap, ihist[i]) != 0:
                st = TFX_NO_MEMORY
        if st == TFX_MAXIT and n_plain < maxit:
            n_a = 0
            for i in range(n_ws):
                n_a += act[i]
            cap_rows = 2 * n_a + 8 if 2 * n_a + 8 < n_ws else n_ws
            cap_rows = o * (cap_rows if cap_rows > 1 else 1)
            snap = <floating*> malloc(bcd_snap_size(p, prm.anderson_k, cap_rows, n_chan)
                                      * sizeof(floating))
            if snap == NULL:
                st = TFX_NO_MEMORY
            else:
                ba.maxit = maxit - n_plain
                ba.gap_start = 0
                ba.anderson_k = prm.anderson_k
                ba.snap = snap
                ba.cap_rows = cap_rows
                memset(&binfo, 0, sizeof(tf_info))
                bcd_solve(p, &ba, &binfo)
                st = binfo.status
                n_iter += binfo.n_iter
                k += binfo.n_iter
                info.n_accel_try += binfo.n_accel_try
                info.n_accel += binfo.n_accel
                for i in range(binfo.n_obj):
                    if _push_obj(res, &hist_cap, ihist[i]) != 0:
                        st = TFX_NO_MEMORY
                free(snap)
                snap = NULL
        if res.n_outer > 0:
            res.outer[res.n_outer - 1].n_ws = n_ws
            res.outer[res.n_outer - 1].n_iter = k
        if st >= 2 or st < 0:
            status = st
            break
        # the new support: compact rows of the working set
        free(ZA)
        free(XA)
        ZA = Zws
        XA = Xws
        Zws = Xws = NULL
        nA = 0
        for i in range(n_ws):
            in_A[ws[i]] = 0
            if not act[i]:
                continue
            if nA != i:
                memcpy(ZA + <Py_ssize_t> nA * o * K2, ZA + <Py_ssize_t> i * o * K2,
                       <Py_ssize_t> o * K2 * sizeof(floating))
                memcpy(XA + <Py_ssize_t> nA * o * T, XA + <Py_ssize_t> i * o * T,
                       <Py_ssize_t> o * T * sizeof(floating))
            A[nA] = ws[i]
            nA += 1
        for i in range(nA):
            in_A[A[i]] = 1
        free(GT)
        free(grams)
        free(xgram)
        free(lc_ws)
        free(act)
        free(ws_w)
        free(wt_w)
        GT = grams = xgram = lc_ws = ws_w = wt_w = NULL
        act = NULL
    # ---- status, results ----
    if n_outer > 0 and status == TFX_MAXIT:
        if converged or gap < tol_user:
            # the margin was not reached (cap or stall), the caller's tolerance was
            status = TFX_OK
    info.status = status
    info.stalled = stalled and status == TFX_MAXIT
    info.n_iter = n_iter
    info.n_outer = n_outer if n_outer > 0 else 0
    info.gap = gap
    info.p_obj = p_obj
    info.d_obj = best_d
    info.nu_max = nu_max
    if status == TFX_OK or status == TFX_MAXIT or status == TFX_INTERRUPTED:
        # the support in increasing position order, with its rows
        perm = <int*> malloc((2 * nA + 2) * sizeof(int))
        res.positions = <int*> malloc((nA + 1) * sizeof(int))
        res.Z = malloc((<Py_ssize_t> nA * o * K2 + 1) * sizeof(floating))
        res.X = malloc((<Py_ssize_t> nA * o * T + 1) * sizeof(floating))
        res.R = malloc(nr * sizeof(floating))
        res.theta = malloc(nr * sizeof(floating))
        if (perm == NULL or res.positions == NULL or res.Z == NULL or res.X == NULL
                or res.R == NULL or res.theta == NULL):
            status = info.status = TFX_NO_MEMORY
        else:
            for i in range(nA):
                perm[2 * i] = A[i]
                perm[2 * i + 1] = i
            qsort(perm, nA, 2 * sizeof(int), _cmp_int_pair)
            for i in range(nA):
                k = perm[2 * i + 1]
                res.positions[i] = A[k]
                memcpy(<floating*> res.Z + <Py_ssize_t> i * o * K2,
                       ZA + <Py_ssize_t> k * o * K2, <Py_ssize_t> o * K2 * sizeof(floating))
                memcpy(<floating*> res.X + <Py_ssize_t> i * o * T,
                       XA + <Py_ssize_t> k * o * T, <Py_ssize_t> o * T * sizeof(floating))
            res.n_active = nA
            if prm.debias and nA > 0:
                res.debias = <double*> malloc(nA * sizeof(double))
                if res.debias == NULL:
                    status = info.status = TFX_NO_MEMORY
                else:
                    info.debias_status = debias_c(M, G, n_chan, n_src, T, o,
                                                  res.positions, nA,
                                                  <floating*> res.X, res.debias)
                    if info.debias_status == TFX_NO_MEMORY:
                        status = info.status = TFX_NO_MEMORY
                    for i in range(nA):
                        fbuf = <floating*> res.X + <Py_ssize_t> i * o * T
                        for r in range(<Py_ssize_t> o * T):
                            fbuf[r] = <floating> (res.debias[i] * fbuf[r])
            memcpy(res.R, R, nr * sizeof(floating))
            memcpy(res.theta, theta, nr * sizeof(floating))
    info.n_active = res.n_active
    if status != TFX_OK and status != TFX_MAXIT and status != TFX_INTERRUPTED:
        tfx_result_clear(res)
    elif pb.keep_gtr != NULL and have_prev and n_outer > 0:
        # (after the last certificate its buffers are the "previous" ones)
        memcpy(pb.keep_gtr, gtr_buf[1 - cur], n_big * sizeof(floating))
        memcpy(pb.keep_nu, nu_buf[1 - cur], n_pos * sizeof(double))
        pb.kept[0] = 1
    free(perm)
    free(lc)
    free(gtr_buf[0])
    free(gtr_buf[1])
    free(nu_buf[0])
    free(nu_buf[1])
    free(ex_buf[0])
    free(ex_buf[1])
    free(order)
    free(in_A)
    free(A)
    free(ws)
    free(R)
    free(theta)
    free(rprev)
    free(tref)
    free(ZA)
    free(XA)
    free(Zws)
    free(Xws)
    free(GT)
    free(grams)
    free(xgram)
    free(lc_ws)
    free(ws_w)
    free(wt_w)
    free(act)
    free(work)
    free(items)
    free(ihist)
    free(pipe)
    free(scr)
    free(scr_mem)
    return status


cdef void _record_outer(tfx_result_t* res, int n_active, double gap, double p_obj,
                        double d_obj, int max_outer) noexcept nogil:
    """Diagnostics of one outer certificate (``res.outer`` holds max_outer + 2;
    the inner solve that follows fills in ``n_ws`` and ``n_iter``)."""
    cdef tfx_outer_t* rec
    if res.outer == NULL:
        res.outer = <tfx_outer_t*> calloc(max_outer + 2, sizeof(tfx_outer_t))
        if res.outer == NULL:
            return
    if res.n_outer >= max_outer + 2:
        return
    rec = &res.outer[res.n_outer]
    rec.n_active = n_active
    rec.n_ws = 0
    rec.n_iter = 0
    rec.gap = gap
    rec.p_obj = p_obj
    rec.d_obj = d_obj
    res.n_outer += 1


cdef void tfx_result_clear(tfx_result_t* res) noexcept nogil:
    """Free the arrays of a result (NULL-safe) and zero it."""
    if res == NULL:
        return
    free(res.positions)
    free(res.Z)
    free(res.X)
    free(res.R)
    free(res.theta)
    free(res.obj)
    free(res.outer)
    free(res.debias)
    memset(res, 0, sizeof(tfx_result_t))


cdef int tf_solve(const tf_plan* p, const tfx_params_t* prm, const tf_problem* pb,
                  tfx_result_t* res, tfx_info_t* info) noexcept nogil:
    """Solve the (weighted) convex TF-MxNE problem; the one entry point.

    ``pb`` holds the data (precision of the plan), optional Lipschitz constants,
    weights, warm start and the screening of ``R = M``; ``prm`` the options (see
    ``tfx_params_default``). On return ``res`` holds the result (malloc'd arrays,
    release with ``tfx_result_clear``) for the statuses OK, MAXIT and
    INTERRUPTED, and is empty otherwise; ``info`` the diagnostics. Returns the
    status. Thread-safe: no global state.
    """
    cdef int st
    cdef tfx_info_t dummy
    if info == NULL:
        info = &dummy
    if res == NULL:
        return TFX_BAD_ARG
    memset(res, 0, sizeof(tfx_result_t))
    memset(info, 0, sizeof(tfx_info_t))
    st = _check_solve_args(p, prm, pb)
    if st == TFX_OK:
        if p.is_double:
            st = _check_values(p, prm, pb, <const double*> pb.M, <const double*> pb.G)
        else:
            st = _check_values(p, prm, pb, <const float*> pb.M, <const float*> pb.G)
    if st != TFX_OK:
        info.status = st
        return st
    if p.is_double:
        if prm.mixed:
            return _tf_solve_mixed(p, prm, pb, res, info)
        return _tf_solve_t(p, prm, pb, res, info, <const double*> pb.M,
                           <const double*> pb.G)
    return _tf_solve_t(p, prm, pb, res, info, <const float*> pb.M,
                       <const float*> pb.G)


# --------------------------------------------------------------------------
# Mixed precision: a float32 start for a float64 solve
# --------------------------------------------------------------------------
cdef Py_ssize_t _plan_f32_size(const tf_plan* p) noexcept nogil:
    """Floats of the tables of a float32 copy of the (float64) plan ``p``."""
    cdef int i, N, nf
    cdef Py_ssize_t total = p.n_coefs
    for i in range(p.n_dicts):
        N = p.d[i].wsize
        nf = p.d[i].n_freq
        # analysis + synthesis (N nf each folded, 2 N nf each plain), two windows
        total += (2 if p.d[i].folded else 4) * <Py_ssize_t> N * nf
        total += 2 * <Py_ssize_t> p.d[i].n_step * N
    return total


cdef void _to_f32(const double* src, float* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <float> src[i]


cdef void _plan_f32(const tf_plan* p, tf_plan* q, float* buf) noexcept nogil:
    """``q``: ``p`` (float64) with its tables converted to float32 into ``buf``
    (:c:func:`_plan_f32_size` floats)."""
    cdef int i, N, nf
    cdef Py_ssize_t off = 0, n_dft, n_win
    memcpy(q, p, sizeof(tf_plan))
    q.is_double = 0
    for i in range(p.n_dicts):
        N = p.d[i].wsize
        nf = p.d[i].n_freq
        n_dft = (1 if p.d[i].folded else 2) * <Py_ssize_t> N * nf
        n_win = <Py_ssize_t> p.d[i].n_step * N
        _to_f32(<const double*> p.d[i].fa, buf + off, n_dft)
        q.d[i].fa = buf + off
        off += n_dft
        _to_f32(<const double*> p.d[i].fs, buf + off, n_dft)
        q.d[i].fs = buf + off
        off += n_dft
        _to_f32(<const double*> p.d[i].wa, buf + off, n_win)
        q.d[i].wa = buf + off
        off += n_win
        _to_f32(<const double*> p.d[i].wsy, buf + off, n_win)
        q.d[i].wsy = buf + off
        off += n_win
    _to_f32(<const double*> p.mult, buf + off, p.n_coefs)
    q.mult = buf + off


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


cdef int _tf_solve_mixed(const tf_plan* p, const tfx_params_t* prm,
                         const tf_problem* pb, tfx_result_t* res,
                         tfx_info_t* info) noexcept nogil:
    """``tf_solve`` of a float64 problem with ``prm.mixed``: the same problem
    solved in float32 first (a copy of the plan and the data, the screening of
    ``R = M`` dropped), to a gap of at most ``max(stop_gap_ratio tol,
    mixed_tol_ratio ||M||^2)`` as float32 computes it; its support and
    coefficients then start the float64 solve, which certifies the answer with
    a float64 gap and continues where the start stopped short of ``tol``. The
    start's status only decides whether its iterate is used (OK or MAXIT,
    finite, some active position); a start interrupted by the progress
    callback returns TFX_INTERRUPTED with an empty result.
    ``info.n_iter_start``: the start's epochs. Progress: one numbering of the
    outer iterations over both solves. Unweighted problems: the start's last
    screening (G^T R and dual-norm bounds, widened by float32 rounding) bounds
    the dual norms of the first float64 certificate, which then evaluates
    exactly only the positions those bounds cannot clear. The two-thread sweep and the
    sequential one differ by float32 rounding in the start, so answers with
    different ``n_threads`` agree within tol (certified), not to float64
    rounding as without the start."""
    cdef int o = prm.n_orient, n_chan = pb.n_chan, n_src = pb.n_sources
    cdef int T = p.n_times, K = p.n_coefs, K2 = 2 * p.n_coefs
    cdef int n_pos = n_src // o, st
    cdef Py_ssize_t n_M = <Py_ssize_t> n_chan * T, n_G = <Py_ssize_t> n_chan * n_src
    cdef Py_ssize_t n_Z = <Py_ssize_t> pb.n_init * o * K2, n_plan = _plan_f32_size(p)
    cdef Py_ssize_t n_buf, off, r, n_rows
    cdef double m2 = 0.0
    cdef const double* Md = <const double*> pb.M
    cdef float* buf
    cdef double* Zd = NULL
    cdef int* pos = NULL
    cdef bint ok = True
    cdef tf_plan q
    cdef tf_problem pb32
    cdef tf_problem pb64
    cdef tfx_params_t prm32
    cdef tfx_params_t prm64
    cdef _offset_ctx oc
    cdef tfx_result_t res32
    cdef tfx_info_t info32
    cdef bint seed = pb.w_space == NULL and pb.w_time == NULL
    cdef float* kgtr = NULL
    cdef double* knu = NULL
    cdef int kept = 0
    cdef double infl = 0.0, w, nrm
    cdef int j
    cdef Py_ssize_t r1
    cdef Py_ssize_t n_big = <Py_ssize_t> n_src * T
    n_buf = n_plan + n_M + n_G + 2 * <Py_ssize_t> n_pos + <Py_ssize_t> n_pos * K + n_Z
    buf = <float*> malloc(n_buf * sizeof(float))
    if seed:
        kgtr = <float*> malloc(n_big * sizeof(float))
        knu = <double*> malloc(n_pos * sizeof(double))
    if buf == NULL or (seed and (kgtr == NULL or knu == NULL)):
        free(buf)
        free(kgtr)
        free(knu)
        info.status = TFX_NO_MEMORY
        return TFX_NO_MEMORY
    _plan_f32(p, &q, buf)
    off = n_plan
    memcpy(&pb32, pb, sizeof(tf_problem))
    _to_f32(Md, buf + off, n_M)
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
    # stopping rule then aims below that); asked for tol only, it stops farther
    # from the optimum than the float64 solve would (5 mm grid: 9.5e-2 against
    # 8.0e-2, benchmarks/README.md)
    prm32.tol = prm.stop_gap_ratio * prm.tol
    if prm.mixed_tol_ratio * m2 > prm32.tol:
        prm32.tol = prm.mixed_tol_ratio * m2
    memset(&res32, 0, sizeof(tfx_result_t))
    memset(&info32, 0, sizeof(tfx_info_t))
    st = _tf_solve_t(&q, &prm32, &pb32, &res32, &info32, <const float*> pb32.M,
                     <const float*> pb32.G)
    free(buf)
    if st == TFX_INTERRUPTED:
        tfx_result_clear(&res32)
        free(kgtr)
        free(knu)
        info.status = st
        info.n_iter_start = info32.n_iter
        return st
    memcpy(&pb64, pb, sizeof(tf_problem))
    if (st == TFX_OK or st == TFX_MAXIT) and res32.n_active > 0:
        n_rows = <Py_ssize_t> res32.n_active * o
        Zd = <double*> malloc(n_rows * K2 * sizeof(double))
        pos = <int*> malloc(res32.n_active * sizeof(int))
        if Zd != NULL and pos != NULL:
            for r in range(n_rows * K2):
                Zd[r] = (<const float*> res32.Z)[r]
                if not isfinite(Zd[r]):
                    ok = False
            memcpy(pos, res32.positions, res32.n_active * sizeof(int))
            if ok:
                pb64.n_init = res32.n_active
                pb64.init_pos = pos
                pb64.Z_init = Zd
                pb64.screen_gtr = NULL   # (the screening of R = M, not of the start)
                pb64.screen_nu = NULL
                pb64.screen_exact = NULL
                if kept:
                    # float32 bounds -> bounds of the float64 dual norms of the same
                    # (stored) G^T R: the epsilon norm is a norm below the l2 norm
                    # of its time courses (Parseval), so the float32 rounding of
                    # the frame products (relative to ||G_j^T R||: wsize eps per
                    # product, sqrt(wsize) per frame, sqrt(wsize / tstep) frames
                    # per sample) moves the computed value by less than that; add
                    # 10 times it
                    for r in range(p.n_dicts):
                        w = p.d[r].wsize
                        w = 10.0 * FLT_EPSILON * w * sqrt(w) * sqrt(w / p.d[r].tstep)
                        if w > infl:
                            infl = w
                    for j in range(n_pos):
                        nrm = 0.0
                        r1 = <Py_ssize_t> j * o * T
                        for r in range(r1, r1 + o * T):
                            nrm += <double> kgtr[r] * kgtr[r]
                        knu[j] += infl * sqrt(nrm)
                    pb64.seed_gtr = kgtr
                    pb64.seed_nu = knu
    tfx_result_clear(&res32)
    memcpy(&prm64, prm, sizeof(tfx_params_t))
    if prm.progress != NULL:
        oc.fn = prm.progress
        oc.ctx = prm.progress_ctx
        oc.offset = info32.n_outer
        prm64.progress = _offset_progress
        prm64.progress_ctx = &oc
    st = _tf_solve_t(p, &prm64, &pb64, res, info, Md, <const double*> pb.G)
    info.n_iter_start = info32.n_iter
    free(Zd)
    free(pos)
    free(kgtr)
    free(knu)
    return st


# --------------------------------------------------------------------------
# Debiasing
# --------------------------------------------------------------------------
cdef bint _chol_solve(double* A, double* b, int n, double* work) noexcept nogil:
    """Solve A x = b (A SPD, n x n; A and b overwritten, x in b) with LAPACK
    ``dposv`` on a copy in ``work`` (n * n); False if A is not positive definite."""
    cdef char uplo = b'U'
    cdef int one = 1, info = 0
    memcpy(work, A, <Py_ssize_t> n * n * sizeof(double))
    dposv(&uplo, &n, &one, work, &n, b, &n, &info)
    return info == 0


cdef int debias_c(const floating* M, const floating* G, int n_chan, int n_src, int T,
                  int n_orient, const int* positions, int n_b, const floating* X,
                  double* d_out) noexcept nogil:
    """Exact debiasing weights: ``d = argmin ||M - G_A diag(d) X||^2`` subject to
    ``d >= 1``, one weight per position (its ``n_orient`` rows share it).

    The bound-constrained least squares problem is solved on its small normal
    equations ``H e = q`` (``e = d - 1 >= 0``, ``H`` with a 1e-13 relative ridge)
    by the Lawson-Hanson active-set method, exactly up to rounding (MNE's FISTA
    can stop unconverged). ``X``: (n_b * n_orient, T) rows of the positions
    ``positions`` of ``G`` (n_chan, n_src). Returns TFX_OK, TFX_MAXIT (weights
    set to 1) or TFX_NO_MEMORY.
    """
    cdef int o = n_orient, nbo = n_b * n_orient, a, b, p, q, c, i, k, n_free
    cdef int it, max_it = 10 * (n_b + 10), n_inner, jmax
    cdef Py_ssize_t sz, fl
    cdef double v, tr = 0.0, ridge, wmax, step, t
    cdef floating* GAt
    cdef floating* GtM
    cdef double* GG
    cdef double* XX
    cdef double* H
    cdef double* qv
    cdef double* e
    cdef double* s
    cdef double* w
    cdef double* Hs
    cdef double* rhs
    cdef double* work
    cdef int* free_idx
    cdef unsigned char* is_free
    cdef char* blk
    cdef int st = TFX_OK
    if n_b == 0:
        return TFX_OK
    fl = (<Py_ssize_t> nbo * (n_chan + T) * sizeof(floating) + 63) // 64 * 64
    sz = fl + ((2 * <Py_ssize_t> nbo * nbo + 3 * <Py_ssize_t> n_b * n_b
                + 6 * <Py_ssize_t> n_b) * sizeof(double) + n_b * sizeof(int) + n_b)
    blk = <char*> malloc(sz)
    if blk == NULL:
        return TFX_NO_MEMORY
    GAt = <floating*> blk
    GtM = GAt + <Py_ssize_t> nbo * n_chan
    GG = <double*> (blk + fl)
    XX = GG + <Py_ssize_t> nbo * nbo
    H = XX + <Py_ssize_t> nbo * nbo
    Hs = H + <Py_ssize_t> n_b * n_b
    work = Hs + <Py_ssize_t> n_b * n_b
    qv = work + <Py_ssize_t> n_b * n_b
    e = qv + n_b
    s = e + n_b
    w = s + n_b
    rhs = w + n_b
    free_idx = <int*> (rhs + 2 * n_b)
    is_free = <unsigned char*> (free_idx + n_b)
    # G_A^T (rows) and its products with itself, M and X
    for c in range(n_chan):
        for i in range(n_b):
            for p in range(o):
                GAt[(<Py_ssize_t> i * o + p) * n_chan + c] = \
                    G[<Py_ssize_t> c * n_src + positions[i] * o + p]
    gemm_rm(False, False, nbo, T, n_chan, <floating> 1.0, GAt, n_chan, M, T,
            <floating> 0.0, GtM, T)
    for a in range(nbo):
        for b in range(a, nbo):
            GG[a * nbo + b] = GG[b * nbo + a] = dot(n_chan, GAt + <Py_ssize_t> a * n_chan,
                                                    GAt + <Py_ssize_t> b * n_chan)
            XX[a * nbo + b] = XX[b * nbo + a] = dot(T, X + <Py_ssize_t> a * T,
                                                    X + <Py_ssize_t> b * T)
    # H_ij = sum over the orientations of i and j of GG * XX; q = b - H 1
    for i in range(n_b):
        for k in range(n_b):
            v = 0.0
            for p in range(o):
                for q in range(o):
                    v += GG[(i * o + p) * nbo + k * o + q] * XX[(i * o + p) * nbo + k * o + q]
            H[i * n_b + k] = v
        tr += H[i * n_b + i]
    for i in range(n_b):
        v = 0.0
        for p in range(o):
            v += dot(T, GtM + (<Py_ssize_t> i * o + p) * T, X + (<Py_ssize_t> i * o + p) * T)
        for k in range(n_b):
            v -= H[i * n_b + k]
        qv[i] = v
    ridge = 1e-13 * (tr if tr > 0 else 1e-300) / n_b
    for i in range(n_b):
        H[i * n_b + i] += ridge
        e[i] = 0.0
        is_free[i] = 0
    # Lawson-Hanson: min 0.5 e'He - q'e subject to e >= 0
    n_free = 0
    it = 0
    while it < max_it:
        it += 1
        # w = q - H e, the negative gradient; optimal if w <= 0 on the bound set
        jmax = -1
        wmax = 0.0
        for i in range(n_b):
            v = qv[i]
            for k in range(n_b):
                v -= H[i * n_b + k] * e[k]
            w[i] = v
            if not is_free[i] and v > wmax:
                wmax = v
                jmax = i
        if jmax < 0 or wmax <= 1e-14 * (tr if tr > 0 else 1.0):
            break
        is_free[jmax] = 1
        n_inner = 0
        while n_inner < max_it:
            n_inner += 1
            # s = argmin on the free set (the others held at 0)
            n_free = 0
            for i in range(n_b):
                if is_free[i]:
                    free_idx[n_free] = i
                    n_free += 1
            for a in range(n_free):
                rhs[a] = qv[free_idx[a]]
                for b in range(n_free):
                    Hs[a * n_free + b] = H[free_idx[a] * n_b + free_idx[b]]
            if not _chol_solve(Hs, rhs, n_free, work):
                st = TFX_MAXIT
                break
            for i in range(n_b):
                s[i] = 0.0
            for a in range(n_free):
                s[free_idx[a]] = rhs[a]
            step = 1.0
            for a in range(n_free):
                i = free_idx[a]
                if s[i] <= 0.0:
                    t = e[i] / (e[i] - s[i]) if e[i] - s[i] > 0 else 0.0
                    if t < step:
                        step = t
            if step >= 1.0:
                for i in range(n_b):
                    e[i] = s[i]
                break
            # move toward s until a free variable hits its bound; release it
            for i in range(n_b):
                e[i] = e[i] + step * (s[i] - e[i])
                if is_free[i] and e[i] <= 0.0:
                    e[i] = 0.0
                    is_free[i] = 0
        if st != TFX_OK or n_inner >= max_it:
            st = TFX_MAXIT
            break
    if it >= max_it:
        st = TFX_MAXIT
    for i in range(n_b):
        d_out[i] = 1.0 + e[i] if st == TFX_OK else 1.0
    free(blk)
    return st
