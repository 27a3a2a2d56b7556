# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The exact dual norm max_j ||Phi(G_j^T R)||_eps over all positions, screened:
# cheap upper bounds first, exact values (one STFT each) only where they matter.
# (included by _engine.pyx: shares its imports and types)

ctypedef struct tf_screen:
    # one screened evaluation (dual_norm_screened)
    const tf_penalty* pen     # rho and the weights of every position
    const void* GtR           # (n_pos * n_orient, T)
    const void* GtR_prev      # with nu_prev: triangle-inequality bounds, or NULL
    const double* nu_prev
    int n_pos
    int n_thr
    int chunk                 # positions per thread in the first hand-off
    thr_scratch* scr          # one per thread
    sort_item* order          # (n_pos,) scratch
    double* nu                # out: exact values where exact[j], bounds elsewhere
    unsigned char* exact      # out
    # the parallel phases: bounds of ranges (todo NULL), exact values of todo[i::]
    const sort_item* todo
    Py_ssize_t n_todo
    int n_parts
    tf_thr_policy* pol        # of the solve's task groups, or NULL


cdef int _cmp_desc_stable(const void* a, const void* b) noexcept nogil:
    """Decreasing key, then increasing index (a stable sort by decreasing key)."""
    cdef const sort_item* x = <const sort_item*> a
    cdef const sort_item* y = <const sort_item*> b
    if x.key > y.key:
        return -1
    if x.key < y.key:
        return 1
    return (x.idx > y.idx) - (x.idx < y.idx)


cdef double _bound_one(const tf_screen* sc, int j, thr_scratch* s,
                       const floating* GtR) noexcept nogil:
    """Upper bound on the epsilon norm of Phi(G_j^T R) (no STFT)."""
    cdef const tf_penalty* pen = sc.pen
    cdef const tf_plan* p = pen.p
    cdef const floating* GtR_prev = <const floating*> sc.GtR_prev
    cdef int T = p.n_times, q, k, o = pen.n_orient
    cdef double w_min = 1.0, ws_j, ub, ubd
    cdef const floating* wt_j = pen_wt(pen, j, GtR)
    cdef floating* d = <floating*> s.dbuf
    cdef Py_ssize_t r0 = <Py_ssize_t> j * o * T
    ws_j = pen_ws(pen, j, GtR)
    if wt_j != NULL:
        w_min = INFINITY
        for q in range(p.n_coefs):
            if wt_j[q] > 0 and wt_j[q] < w_min:
                w_min = wt_j[q]
        if w_min == INFINITY:
            return 0.0   # every coefficient is held at zero
    ub = eps_upper_bound(p, GtR + r0, o, T, ws_j, w_min, pen.rho, s.csum)
    if GtR_prev != NULL and sc.nu_prev[j] < ub:
        for k in range(o * T):
            d[k] = GtR[r0 + k] - GtR_prev[r0 + k]
        ubd = sc.nu_prev[j] + eps_upper_bound(p, d, o, T, ws_j, w_min, pen.rho,
                                              s.csum)
        if ubd < ub:
            ub = ubd
    return ub


cdef double _exact_one(const tf_screen* sc, int j, thr_scratch* s,
                       const floating* GtR) noexcept nogil:
    """Epsilon norm of Phi(G_j^T R) (one STFT of the block)."""
    cdef const tf_plan* p = sc.pen.p
    cdef int K2 = 2 * p.n_coefs
    cdef floating* Y = <floating*> s.Y
    stft_rows(p, GtR + <Py_ssize_t> j * sc.pen.n_orient * p.n_times, sc.pen.n_orient,
              p.n_times, Y, K2, <floating*> s.frames)
    return pen_dual(sc.pen, j, Y, K2, s.items)


cdef void _screen_task_t(tf_screen* c, int i, const floating* GtR) noexcept nogil:
    cdef Py_ssize_t k, lo, hi
    cdef int j
    if c.todo == NULL:        # phase 1: bounds of a range of positions
        lo = _part(c.n_pos, i, c.n_parts)
        hi = _part(c.n_pos, i + 1, c.n_parts)
        for k in range(lo, hi):
            c.nu[k] = _bound_one(c, <int> k, &c.scr[i], GtR)
    else:                     # phase 2: exact values of todo[i::n_parts]
        k = i
        while k < c.n_todo:
            j = <int> c.todo[k].idx
            c.nu[j] = _exact_one(c, j, &c.scr[i], GtR)
            c.exact[j] = 1
            k += c.n_parts


cdef void _screen_task(void* ctx, int i) noexcept nogil:
    cdef tf_screen* c = <tf_screen*> ctx
    if c.pen.p.is_double:
        _screen_task_t(c, i, <const double*> c.GtR)
    else:
        _screen_task_t(c, i, <const float*> c.GtR)


cdef inline bint _stops(double u, double alpha, double best, Py_ssize_t n_eval,
                        int n_min, Py_ssize_t n_max) noexcept nogil:
    """The visit stops at a bound ``u`` (see dual_norm_screened)."""
    return u <= 0.0 or u <= alpha or (u <= best and n_eval >= n_min) or (
        n_max >= 0 and n_eval >= n_max)


cdef void _visit_serial(tf_screen* sc, int n_min, double alpha, Py_ssize_t n_max,
                        double* out_best, double* out_rest) noexcept nogil:
    """The visit by decreasing bound, in this thread."""
    cdef Py_ssize_t k, n_eval = 0
    cdef int j
    cdef double best = 0.0, rest = 0.0, u
    for k in range(sc.n_pos):
        j = <int> sc.order[k].idx
        u = sc.order[k].key
        if _stops(u, alpha, best, n_eval, n_min, n_max):
            if u > 0.0:
                rest = u
            break
        if sc.pen.p.is_double:
            sc.nu[j] = _exact_one(sc, j, &sc.scr[0], <const double*> sc.GtR)
        else:
            sc.nu[j] = _exact_one(sc, j, &sc.scr[0], <const float*> sc.GtR)
        sc.exact[j] = 1
        n_eval += 1
        if sc.nu[j] > best:
            best = sc.nu[j]
    out_best[0] = best
    out_rest[0] = rest


cdef void _visit_parallel(tf_screen* sc, int n_min, double alpha, Py_ssize_t n_max,
                          double* out_best, double* out_rest) noexcept nogil:
    """The visit in chunks evaluated by ``n_thr`` threads, the sequential rules
    replayed over each chunk in order (evaluations past the stop discarded)."""
    cdef Py_ssize_t k = 0, end, m, mm, size, n_eval = 0, n_ok, n_thr = sc.n_thr
    cdef int j
    cdef double best = 0.0, rest = 0.0, u, floor
    cdef bint stop = False
    size = sc.chunk * n_thr
    while k < sc.n_pos and not stop:
        end = k + size if k + size < sc.n_pos else sc.n_pos
        if n_max >= 0 and end > k + (n_max - n_eval if n_max - n_eval > 1 else 1):
            end = k + (n_max - n_eval if n_max - n_eval > 1 else 1)
        # bounds at or below this floor stop the visit for sure: not evaluated
        floor = alpha if alpha > 0.0 else 0.0
        if n_eval >= n_min and best > floor:
            floor = best
        n_ok = 0
        while k + n_ok < end and sc.order[k + n_ok].key > floor:
            n_ok += 1
        if n_ok > 0:
            sc.todo = sc.order + k
            sc.n_todo = n_ok
            sc.n_parts = <int> (n_thr if n_ok >= n_thr else n_ok)
            run_tasks(sc.n_parts, _screen_task, sc, sc.pol)
        # replay the sequential rules over the chunk
        for m in range(k, end):
            j = <int> sc.order[m].idx
            u = sc.order[m].key
            if _stops(u, alpha, best, n_eval, n_min, n_max):
                if u > 0.0:
                    rest = u
                for mm in range(m, end):      # discard the evaluations past here
                    j = <int> sc.order[mm].idx
                    sc.nu[j] = sc.order[mm].key
                    sc.exact[j] = 0
                stop = True
                break
            n_eval += 1
            if sc.nu[j] > best:
                best = sc.nu[j]
        k = end
        size = 2 * size if 2 * size < 8 * sc.chunk * n_thr else 8 * sc.chunk * n_thr
    out_best[0] = best
    out_rest[0] = rest


cdef void screen_dual_norm(tf_screen* sc, int n_min, double alpha, Py_ssize_t n_max,
                           double* out_best, double* out_rest) noexcept nogil:
    """Exact max over positions of the epsilon norm of Phi(G_j^T R), screened.

    Positions are visited by decreasing upper bound; the visit stops at the first
    bound ``<= 0``, ``<= alpha`` (neither a violator nor a change of the dual
    scaling), ``<= best`` once ``n_min`` positions were evaluated, or after
    ``n_max`` evaluations (``n_max < 0``: no cap). With ``GtR_prev`` and
    ``nu_prev`` (upper bounds at ``GtR_prev``) each bound is also capped by the
    triangle inequality. ``sc.nu`` gets the exact values where ``sc.exact[j]``,
    the bound elsewhere; ``out_best`` the largest exact value, ``out_rest`` the
    largest bound left unevaluated (the dual norm is at most the max of both).

    ``n_thr`` threads: the bounds over ranges of positions, then chunks of the
    visit order evaluated in parallel; the result is the sequential one, bit for
    bit, whatever the thread count.
    """
    cdef Py_ssize_t k
    cdef bint par = sc.n_thr > 1 and sc.n_pos >= 4 * sc.chunk * sc.n_thr
    out_best[0] = 0.0
    out_rest[0] = 0.0
    if sc.n_pos == 0:
        return
    if sc.nu_prev == NULL:
        sc.GtR_prev = NULL
    sc.todo = NULL
    sc.n_todo = 0
    sc.n_parts = sc.n_thr if par else 1
    run_tasks(sc.n_parts, _screen_task, sc, sc.pol)     # bounds, into nu
    for k in range(sc.n_pos):
        sc.order[k].key = sc.nu[k]
        sc.order[k].idx = k
        sc.exact[k] = 0
    qsort(sc.order, sc.n_pos, sizeof(sort_item), _cmp_desc_stable)
    if par:
        _visit_parallel(sc, n_min, alpha, n_max, out_best, out_rest)
    else:
        _visit_serial(sc, n_min, alpha, n_max, out_best, out_rest)
