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
    int spin_us               # microseconds of polling before a wait blocks
    long n_epochs             # two-thread epochs run (the counters' epoch)
    int running               # the helper: 0 not started, 1 running, -1 failed
    tfx_thread th
    int quit
    int dx_zero[2]            # the update of the visit in that slot is zero
    tfx_sync sync             # one lock and condition for the four counters
    tfx_counter epoch_go      # epochs started by the main thread
    tfx_counter helper_done   # epochs finished by the helper (last R update included)
    tfx_counter g_ready       # visits whose gradient is published
    tfx_counter dx_done       # visits whose update is published


cdef inline void _visit_grad(pipe_ctx* c, int j, long k,
                             const floating* tag) noexcept nogil:
    """Visit k (block j), helper side, first part: g_k = G_j^T R / lc_j into
    slot k, R lacking only the update of visit k - 1."""
    cdef const tf_ws* w = c.w
    cdef int no = w.pen.n_orient, nc = w.n_chan, T = w.pen.p.n_times
    cdef floating* g = <floating*> c.gbuf + (k & 1) * <Py_ssize_t> no * T
    gemm_rm_slim(no, T, nc, <floating> (1.0 / (<const floating*> w.lc)[j]),
                 <const floating*> w.GT + <Py_ssize_t> j * no * nc, nc,
                 <floating*> w.R, T, <floating> 0.0, g, T)


cdef inline bint _visit_correct(pipe_ctx* c, int j, long k,
                                const floating* tag) noexcept nogil:
    """Visit k, helper side, once visit k - 1's update is published: g_k minus
    the cross Gram ``G_j^T G_prev`` times that update (exact: g of
    R - G_prev dX). Returns whether that update is zero."""
    cdef const tf_ws* w = c.w
    cdef int no = w.pen.n_orient, T = w.pen.p.n_times
    cdef Py_ssize_t blk = <Py_ssize_t> no * T
    if c.dx_zero[(k - 1) & 1]:
        return True
    gemm_rm(False, False, no, T, no, <floating> (-1.0 / (<const floating*> w.lc)[j]),
            <const floating*> c.xgram + <Py_ssize_t> j * no * no, no,
            <const floating*> c.dxbuf + ((k - 1) & 1) * blk, T, <floating> 1.0,
            <floating*> c.gbuf + (k & 1) * blk, T)
    return False


cdef inline void _visit_update_r(pipe_ctx* c, int prev, long k,
                                 const floating* tag) noexcept nogil:
    """R -= G_prev dX of visit k - 1 (block ``prev``)."""
    cdef const tf_ws* w = c.w
    cdef int no = w.pen.n_orient, nc = w.n_chan, T = w.pen.p.n_times
    gemm_rm(True, False, nc, T, no, <floating> -1.0,
            <const floating*> w.GT + <Py_ssize_t> prev * no * nc, nc,
            <const floating*> c.dxbuf + ((k - 1) & 1) * <Py_ssize_t> no * T, T,
            <floating> 1.0, <floating*> w.R, T)


cdef inline void _visit_prox(pipe_ctx* c, int j, long k, floating* xnew,
                             int* changed, double* penalty) noexcept nogil:
    """Visit k (block j), main side: the prox step from g_k; its update dX goes
    to slot k (``dx_zero`` says whether it is zero)."""
    cdef const tf_ws* w = c.w
    cdef Py_ssize_t blk = <Py_ssize_t> w.pen.n_orient * w.pen.p.n_times
    cdef const floating* gtr = <const floating*> c.gbuf + (k & 1) * blk
    cdef double lcj = (<const floating*> w.lc)[j], dn = 0.0, v
    cdef double thr_s = w.pen.alpha_s * pen_ws(&w.pen, j, gtr) / lcj
    if w.active[j] or sqrt(dot(<int> blk, gtr, gtr)) > thr_s:
        dn = _prox_step(w, j, gtr, lcj, xnew, <floating*> c.dxbuf + (k & 1) * blk,
                        changed, &v if penalty != NULL else NULL)
        if penalty != NULL:
            penalty[0] += v
    c.dx_zero[k & 1] = dn == 0.0


cdef void _helper_epoch(pipe_ctx* c, long e, const floating* tag) noexcept nogil:
    """Helper side of one two-thread epoch: the sensor-space products.

    For each visited block j (visit k): g_k from R lacking only the update of
    the previous visit, then corrected once that update is published, then R
    itself updated while the main thread works on block j.
    """
    cdef const tf_ws* w = c.w
    cdef const floating* lc = <const floating*> w.lc
    cdef int j, prev = -1
    cdef bint pz
    cdef long k = e * c.n_vis
    for j in range(w.n_ws):
        if lc[j] <= 0:
            continue
        _visit_grad(c, j, k, tag)
        pz = True
        if prev >= 0:
            tfx_counter_wait(&c.dx_done, k, c.spin_us)
            pz = _visit_correct(c, j, k, tag)
        tfx_counter_publish(&c.g_ready, k + 1)
        if not pz:
            _visit_update_r(c, prev, k, tag)
        prev = j
        k += 1
    if prev >= 0:
        tfx_counter_wait(&c.dx_done, k, c.spin_us)
        if not c.dx_zero[(k - 1) & 1]:
            _visit_update_r(c, prev, k, tag)
    tfx_counter_publish(&c.helper_done, e + 1)


cdef void* _helper_main(void* arg) noexcept nogil:
    """Helper thread: one helper epoch per epoch started, until told to quit."""
    cdef pipe_ctx* c = <pipe_ctx*> arg
    cdef long e = 0
    while True:
        tfx_counter_wait(&c.epoch_go, e + 1, c.spin_us)
        if c.quit:
            break
        if c.w.pen.p.is_double:
            _helper_epoch(c, e, <const double*> NULL)
        else:
            _helper_epoch(c, e, <const float*> NULL)
        e += 1
    return NULL


cdef bint pipe_start(pipe_ctx* c, const tf_ws* w, const tf_pipe* pp, int n_inner,
                     const floating* tag) noexcept nogil:
    """Set up a two-thread sweep (``pp`` set, one prox step per visit, at least
    two blocks visited); False: sweep in this thread. Its helper thread starts
    with the first epoch that has both threads (pipe_launch)."""
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
    c.spin_us = pp.spin_us
    if tfx_sync_init(&c.sync) != 0:
        return False
    c.epoch_go.sync = c.helper_done.sync = c.g_ready.sync = c.dx_done.sync = &c.sync
    return True


cdef bint pipe_launch(pipe_ctx* c) noexcept nogil:
    """Start the helper thread if not yet done; False if it cannot start
    (then every epoch runs alone)."""
    if c.running == 0:
        c.running = 1 if tfx_thread_start(&c.th, _helper_main, c) == 0 else -1
    return c.running == 1


cdef void pipe_stop(pipe_ctx* c) noexcept nogil:
    """Stop and join the helper, if it started."""
    if c.running == 1:
        c.quit = 1
        tfx_counter_publish(&c.epoch_go, 2147483647)  # (LONG_MAX everywhere)
        tfx_thread_join(c.th)
    tfx_sync_destroy(&c.sync)


cdef int pipe_epoch(pipe_ctx* c, long e, const tf_ws* w, double* penalty,
                    const floating* tag) noexcept nogil:
    """Main side of one two-thread epoch (the ``e``-th): STFT, prox and ISTFT
    of each block from the gradient the helper publishes; returns whether the
    support changed. ``penalty`` (or NULL): the penalty of the new iterate."""
    cdef int j, changed = 0
    cdef long k = e * c.n_vis
    cdef const floating* lc = <const floating*> w.lc
    cdef floating* xnew = _wk(w, 2, tag)
    tfx_counter_publish(&c.epoch_go, e + 1)
    for j in range(w.n_ws):
        if lc[j] <= 0:
            continue
        tfx_counter_wait(&c.g_ready, k + 1, c.spin_us)
        _visit_prox(c, j, k, xnew, &changed, penalty)
        tfx_counter_publish(&c.dx_done, k + 1)
        k += 1
    tfx_counter_wait(&c.helper_done, e + 1, c.spin_us)
    return changed


cdef int pipe_epoch_alone(pipe_ctx* c, const tf_ws* w, double* penalty,
                          const floating* tag) noexcept nogil:
    """The two-thread epoch's arithmetic in this thread alone, in the same
    order (the same bits), while the helper sleeps: for a machine on which the
    helper is not scheduled. Returns whether the support changed."""
    cdef int j, prev = -1, changed = 0
    cdef long k = 0
    cdef const floating* lc = <const floating*> w.lc
    cdef floating* xnew = _wk(w, 2, tag)
    for j in range(w.n_ws):
        if lc[j] <= 0:
            continue
        _visit_grad(c, j, k, tag)
        if prev >= 0 and not _visit_correct(c, j, k, tag):
            _visit_update_r(c, prev, k, tag)
        _visit_prox(c, j, k, xnew, &changed, penalty)
        prev = j
        k += 1
    if prev >= 0 and not c.dx_zero[(k - 1) & 1]:
        _visit_update_r(c, prev, k, tag)
    return changed
