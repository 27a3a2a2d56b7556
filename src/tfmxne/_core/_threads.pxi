# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Threads of the core (_threads.h): run n tasks, G^T R over all sources.
# (included by _engine.pyx: shares its imports and types)

cdef extern from "_threads.h" nogil:
    ctypedef int tfx_thread   # opaque (pthread_t, or a struct on Windows)
    ctypedef struct tfx_sync:
        pass
    ctypedef struct tfx_counter:
        long value
        long sleepers
        tfx_sync* sync
    int tfx_thread_start(tfx_thread* t, void* (*f)(void*) noexcept nogil, void* arg)
    int tfx_thread_join(tfx_thread t)
    double tfx_now()
    int tfx_sync_init(tfx_sync* s)
    void tfx_sync_destroy(tfx_sync* s)
    void tfx_counter_publish(tfx_counter* c, long v)
    void tfx_counter_wait(tfx_counter* c, long v, int spin)


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
    cdef Py_ssize_t lo = _part(c.n_src, i, c.n_parts)
    cdef Py_ssize_t hi = _part(c.n_src, i + 1, c.n_parts)
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
