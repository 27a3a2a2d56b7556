# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Two-thread block coordinate descent sweep.
#
# A helper thread computes G_j^T R for the next block and applies the residual
# updates while the main thread runs the STFT, prox and ISTFT of the current
# one (see bcd_solve in _bcd.pxi).
# (included by _engine.pyx: shares its imports and types)

cdef extern from "_threads.h" nogil:
    ctypedef int tfx_thread   # opaque (pthread_t, or a struct on Windows)
    int tfx_thread_start(tfx_thread* t, void* (*f)(void*) noexcept nogil, void* arg)
    int tfx_thread_join(tfx_thread t)
    void tfx_yield()
    long tfx_load(const long* p)
    void tfx_store(long* p, long v)


ctypedef struct pipe_ctx:
    # shared state of the two-thread sweep (see bcd_solve); counters are
    # published with release and read with acquire order
    const void* GT
    void* R
    const void* lc
    const void* xgram
    void* gbuf          # 2 slots of n_orient * T: G_j^T R / lc_j of the next visits
    void* dxbuf         # 2 slots of n_orient * T: X_new - X_old of the last visits
    int n_ws
    int n_orient
    int n_chan
    int T
    int n_vis           # blocks visited per epoch (lc > 0)
    int is_double
    long epoch_go       # epochs started by the main thread
    long helper_done    # epochs finished by the helper (last R update included)
    long g_ready        # visits whose gradient is published
    long dx_done        # visits whose update is published
    long quit
    int dx_zero[2]      # the update of the visit in that slot is zero


cdef inline void _wait_at_least(long* p, long v) noexcept nogil:
    """Spin until the counter at p reaches v (yielding the CPU now and then)."""
    cdef int spins = 0
    while tfx_load(p) < v:
        spins += 1
        if spins >= 64:
            tfx_yield()
            spins = 0


cdef void _helper_epoch(pipe_ctx* c, long e, const floating* GT, floating* R,
                        const floating* lc, const floating* xg, floating* gb,
                        const floating* dxb) noexcept nogil:
    """Helper side of one two-thread epoch: the sensor-space products.

    For each visited block j (visit k): g_k = G_j^T R / lc_j with R lacking only
    the update of the previous visit, then corrected by the 3 x 3 cross Gram
    ``G_j^T G_prev`` once that update is published (exact: R - G_prev dX), then R
    itself is updated while the main thread works on block j.
    """
    cdef int j, prev = -1, no = c.n_orient, nc = c.n_chan, T = c.T, pz = 1
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> no * T
    cdef floating* g
    cdef const floating* dx = dxb
    for j in range(c.n_ws):
        if lc[j] <= 0:
            continue
        g = gb + (k & 1) * blk
        gemm_rm_slim(no, T, nc, <floating> (1.0 / lc[j]),
                     GT + <Py_ssize_t> j * no * nc, nc, R, T, <floating> 0.0, g, T)
        pz = 1
        if prev >= 0:
            _wait_at_least(&c.dx_done, k)
            pz = c.dx_zero[(k - 1) & 1]
            dx = dxb + ((k - 1) & 1) * blk
            if not pz:
                gemm_rm(False, False, no, T, no, <floating> (-1.0 / lc[j]),
                        xg + <Py_ssize_t> j * no * no, no, dx, T, <floating> 1.0, g, T)
        tfx_store(&c.g_ready, k + 1)
        if prev >= 0 and not pz:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dx, T, <floating> 1.0, R, T)
        prev = j
        k += 1
    if prev >= 0:
        _wait_at_least(&c.dx_done, k)
        if not c.dx_zero[(k - 1) & 1]:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dxb + ((k - 1) & 1) * blk,
                    T, <floating> 1.0, R, T)
    tfx_store(&c.helper_done, e + 1)


cdef void* _helper_main(void* arg) noexcept nogil:
    """Helper thread: one helper epoch per epoch started, until told to quit."""
    cdef pipe_ctx* c = <pipe_ctx*> arg
    cdef long e = 0
    cdef int spins
    while True:
        spins = 0
        while tfx_load(&c.epoch_go) <= e and not tfx_load(&c.quit):
            spins += 1
            if spins >= 64:
                tfx_yield()
                spins = 0
        if tfx_load(&c.epoch_go) <= e:
            break
        if c.is_double:
            _helper_epoch(c, e, <const double*> c.GT, <double*> c.R,
                          <const double*> c.lc, <const double*> c.xgram,
                          <double*> c.gbuf, <const double*> c.dxbuf)
        else:
            _helper_epoch(c, e, <const float*> c.GT, <float*> c.R,
                          <const float*> c.lc, <const float*> c.xgram,
                          <float*> c.gbuf, <const float*> c.dxbuf)
        e += 1
    return NULL


cdef int _main_epoch(const tf_plan* p, pipe_ctx* c, long e, int n_ws, int n_orient,
                     floating* X, floating* Z, unsigned char* active,
                     const floating* lc, const floating* wsp, const floating* wt,
                     double alpha_s, double alpha_t, floating* Y, floating* xnew,
                     floating* frames, const floating* gb,
                     floating* dxb) noexcept nogil:
    """Main side of one two-thread epoch: STFT, prox and ISTFT of each block from
    the gradient the helper publishes; returns whether the support changed."""
    cdef int j, T = p.n_times, changed = 0
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> n_orient * T
    cdef const floating* gtr
    cdef floating* dx
    cdef double lcj, thr_s, thr_t, dn
    cdef bint nz
    tfx_store(&c.epoch_go, e + 1)
    for j in range(n_ws):
        lcj = lc[j]
        if lcj <= 0:
            continue
        _wait_at_least(&c.g_ready, k + 1)
        gtr = gb + (k & 1) * blk
        dx = dxb + (k & 1) * blk
        thr_s = alpha_s * (wsp[j] if wsp != NULL else 1.0) / lcj
        thr_t = alpha_t / lcj
        dn = 0.0
        if active[j] or sqrt(dot(<int> blk, gtr, gtr)) > thr_s:
            dn = _prox_step(p, j, n_orient, gtr, X, Z, active, wt, thr_t, thr_s, Y,
                            xnew, frames, dx, &changed, &nz)
        c.dx_zero[k & 1] = dn == 0.0
        tfx_store(&c.dx_done, k + 1)
        k += 1
    _wait_at_least(&c.helper_done, e + 1)
    return changed
