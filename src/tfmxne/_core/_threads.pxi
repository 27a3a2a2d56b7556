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
    long tfx_load(volatile long* p)
    void tfx_store_sc(volatile long* p, long v)
    int tfx_sync_init(tfx_sync* s)
    void tfx_sync_destroy(tfx_sync* s)
    void tfx_counter_publish(tfx_counter* c, long v)
    void tfx_counter_wait(tfx_counter* c, long v, int spin_us)


# A threaded step (an epoch of a two-thread sweep, a group of tasks) in which
# the calling thread waited for another thread that was not running (another
# process holds the core) is followed by steps run by the calling thread alone
# (the same arithmetic), THR_BACKOFF_MIN of them, twice as many after each
# further slow step up to THR_BACKOFF_MAX; then threads are tried again
# (benchmarks/bench_threads_load.py).
cdef enum:
    THR_BACKOFF_MIN = 2
    THR_BACKOFF_MAX = 64

# a wait this long cannot be a thread's start on an idle machine (tens of us)
cdef double THR_SLOW_WAIT = 2e-4


cdef inline bint thr_alone(tf_thr_policy* pol) noexcept nogil:
    """Whether the next threaded step runs alone (``pol`` NULL: never)."""
    if pol == NULL or pol.alone_left <= 0:
        return False
    pol.alone_left -= 1
    return True


cdef inline void thr_observe(tf_thr_policy* pol, bint slow) noexcept nogil:
    """Record whether a threaded step found a thread not running."""
    if pol == NULL:
        return
    if pol.backoff < THR_BACKOFF_MIN:
        pol.backoff = THR_BACKOFF_MIN
    if slow:
        pol.alone_left = pol.backoff
        pol.backoff = min(2 * pol.backoff, <int> THR_BACKOFF_MAX)
    else:
        pol.backoff = THR_BACKOFF_MIN


ctypedef void (*task_fn)(void* ctx, int i) noexcept nogil

ctypedef struct _task:
    task_fn f
    void* ctx
    int i


cdef void* _task_main(void* arg) noexcept nogil:
    cdef _task* t = <_task*> arg
    t.f(t.ctx, t.i)
    return NULL


cdef void run_tasks(int n, task_fn f, void* ctx, tf_thr_policy* pol) noexcept nogil:
    """``f(ctx, i)`` for ``i < n`` (``n <= TFX_MAX_THREADS``): task 0 in this
    thread, the others in threads of their own; a task whose thread cannot start
    (no thread support) runs here after task 0, so results never depend on it.
    ``pol`` (or NULL): all in this thread while it says so; a group whose
    threads kept this one waiting longer than its own task, and over
    THR_SLOW_WAIT seconds, counts as slow."""
    cdef tfx_thread th[TFX_MAX_THREADS]
    cdef _task tk[TFX_MAX_THREADS]
    cdef int started[TFX_MAX_THREADS]
    cdef int i
    cdef double t_start, t_own, t_wait
    if n > 1 and thr_alone(pol):
        for i in range(n):
            f(ctx, i)
        return
    t_start = tfx_now()
    for i in range(1, n):
        tk[i].f = f
        tk[i].ctx = ctx
        tk[i].i = i
        started[i] = tfx_thread_start(&th[i], _task_main, &tk[i]) == 0
    f(ctx, 0)
    t_own = tfx_now()     # this thread's own work (and the starts) ends
    for i in range(1, n):
        if started[i]:
            tfx_thread_join(th[i])
        else:
            f(ctx, i)
    if n > 1:
        t_wait = tfx_now() - t_own
        t_own -= t_start
        thr_observe(pol, t_wait > t_own and t_wait > THR_SLOW_WAIT)


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
                  floating* out, int n_thr, int chunk, tf_thr_policy* pol) noexcept nogil:
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
    run_tasks(c.n_parts, _gtr_task, &c, pol)
