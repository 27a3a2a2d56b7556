# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The two-thread block coordinate descent sweep. A helper thread computes
# G_j^T R for the next block and applies the residual updates while the main
# thread runs the STFT, prox and ISTFT of the current one. Hand-offs are
# counters (_threads.h): a waiter polls a little, then blocks, so that when the
# other thread is not scheduled (a busy machine) it gives its core away instead
# of spinning; the arithmetic does not depend on the timing.
# (included by _engine.pyx: shares its imports and types)

ctypedef struct pipe_ctx:
    # shared state of the two-thread sweep
    const tf_ws* w
    const void* xgram         # (n_ws, n_orient, n_orient) G_j^T G_prev
    void* gbuf                # 2 slots of n_orient T: G_j^T R / lc_j of the next visits
    void* dxbuf               # 2 slots of n_orient T: X_new - X_old of the last visits
    int n_vis                 # blocks visited per epoch (lc > 0)
    int spin                  # polls before a wait blocks
    int quit
    int dx_zero[2]            # the update of the visit in that slot is zero
    tfx_sync sync             # one lock and condition for the four counters
    tfx_counter epoch_go      # epochs started by the main thread
    tfx_counter helper_done   # epochs finished by the helper (last R update included)
    tfx_counter g_ready       # visits whose gradient is published
    tfx_counter dx_done       # visits whose update is published


cdef void _helper_epoch(pipe_ctx* c, long e, const floating* tag) noexcept nogil:
    """Helper side of one two-thread epoch: the sensor-space products.

    For each visited block j (visit k): g_k = G_j^T R / lc_j with R lacking only
    the update of the previous visit, then corrected by the cross Gram
    ``G_j^T G_prev`` once that update is published (exact: R - G_prev dX), then
    R itself is updated while the main thread works on block j.
    """
    cdef const tf_ws* w = c.w
    cdef int j, prev = -1, no = w.pen.n_orient, nc = w.n_chan, T = w.pen.p.n_times
    cdef int pz = 1
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> no * T
    cdef const floating* GT = <const floating*> w.GT
    cdef const floating* lc = <const floating*> w.lc
    cdef const floating* xg = <const floating*> c.xgram
    cdef floating* R = <floating*> w.R
    cdef floating* gb = <floating*> c.gbuf
    cdef const floating* dxb = <const floating*> c.dxbuf
    cdef const floating* dx = dxb
    cdef floating* g
    for j in range(w.n_ws):
        if lc[j] <= 0:
            continue
        g = gb + (k & 1) * blk
        gemm_rm_slim(no, T, nc, <floating> (1.0 / lc[j]),
                     GT + <Py_ssize_t> j * no * nc, nc, R, T, <floating> 0.0, g, T)
        pz = 1
        if prev >= 0:
            tfx_counter_wait(&c.dx_done, k, c.spin)
            pz = c.dx_zero[(k - 1) & 1]
            dx = dxb + ((k - 1) & 1) * blk
            if not pz:
                gemm_rm(False, False, no, T, no, <floating> (-1.0 / lc[j]),
                        xg + <Py_ssize_t> j * no * no, no, dx, T, <floating> 1.0, g, T)
        tfx_counter_publish(&c.g_ready, k + 1)
        if prev >= 0 and not pz:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dx, T, <floating> 1.0, R, T)
        prev = j
        k += 1
    if prev >= 0:
        tfx_counter_wait(&c.dx_done, k, c.spin)
        if not c.dx_zero[(k - 1) & 1]:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dxb + ((k - 1) & 1) * blk,
                    T, <floating> 1.0, R, T)
    tfx_counter_publish(&c.helper_done, e + 1)


cdef void* _helper_main(void* arg) noexcept nogil:
    """Helper thread: one helper epoch per epoch started, until told to quit."""
    cdef pipe_ctx* c = <pipe_ctx*> arg
    cdef long e = 0
    while True:
        tfx_counter_wait(&c.epoch_go, e + 1, c.spin)
        if c.quit:
            break
        if c.w.pen.p.is_double:
            _helper_epoch(c, e, <const double*> NULL)
        else:
            _helper_epoch(c, e, <const float*> NULL)
        e += 1
    return NULL


cdef bint pipe_start(pipe_ctx* c, const tf_ws* w, const tf_pipe* pp, int n_inner,
                     tfx_thread* th, const floating* tag) noexcept nogil:
    """Start the helper of a two-thread sweep (``pp`` set, one prox step per
    visit, at least two blocks visited); False: sweep in this thread."""
    cdef int j
    cdef const floating* lc = <const floating*> w.lc
    if pp == NULL or pp.xgram == NULL or pp.buf == NULL or n_inner != 1:
        return False
    memset(c, 0, sizeof(pipe_ctx))
    for j in range(w.n_ws):
        if lc[j] > 0:
            c.n_vis += 1
    if c.n_vis < 2:
        return False
    c.w = w
    c.xgram = pp.xgram
    c.gbuf = pp.buf
    c.dxbuf = <floating*> pp.buf + 2 * <Py_ssize_t> w.pen.n_orient * w.pen.p.n_times
    c.spin = pp.spin
    if tfx_sync_init(&c.sync) != 0:
        return False
    c.epoch_go.sync = c.helper_done.sync = c.g_ready.sync = c.dx_done.sync = &c.sync
    if tfx_thread_start(th, _helper_main, c) != 0:
        tfx_sync_destroy(&c.sync)
        return False
    return True


cdef void pipe_stop(pipe_ctx* c, tfx_thread th) noexcept nogil:
    """Stop and join the helper."""
    c.quit = 1
    tfx_counter_publish(&c.epoch_go, 2147483647)  # (LONG_MAX everywhere)
    tfx_thread_join(th)
    tfx_sync_destroy(&c.sync)


cdef int pipe_epoch(pipe_ctx* c, long e, const tf_ws* w, double* penalty,
                    const floating* tag) noexcept nogil:
    """Main side of one two-thread epoch: STFT, prox and ISTFT of each block from
    the gradient the helper publishes; returns whether the support changed.
    ``penalty`` (or NULL): the penalty of the new iterate."""
    cdef int j, T = w.pen.p.n_times, changed = 0
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> w.pen.n_orient * T
    cdef const floating* lc = <const floating*> w.lc
    cdef const floating* gtr
    cdef floating* dx
    cdef floating* xnew = _wk(w, 2, tag)
    cdef const floating* gb = <const floating*> c.gbuf
    cdef floating* dxb = <floating*> c.dxbuf
    cdef double lcj, thr_s, dn, v
    tfx_counter_publish(&c.epoch_go, e + 1)
    for j in range(w.n_ws):
        lcj = lc[j]
        if lcj <= 0:
            continue
        tfx_counter_wait(&c.g_ready, k + 1, c.spin)
        gtr = gb + (k & 1) * blk
        dx = dxb + (k & 1) * blk
        thr_s = w.pen.alpha_s * pen_ws(&w.pen, j, tag) / lcj
        dn = 0.0
        if w.active[j] or sqrt(dot(<int> blk, gtr, gtr)) > thr_s:
            dn = _prox_step(w, j, gtr, lcj, xnew, dx, &changed,
                            &v if penalty != NULL else NULL)
            if penalty != NULL:
                penalty[0] += v
        c.dx_zero[k & 1] = dn == 0.0
        tfx_counter_publish(&c.dx_done, k + 1)
        k += 1
    tfx_counter_wait(&c.helper_done, e + 1, c.spin)
    return changed
