/* Authors: The tfmxne developers
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Minimal portable threads for the core: start / join a thread, a monotonic
 * clock, and counters that one thread publishes and another waits for (a short
 * spin, then a blocking wait on a condition variable, so that a waiter whose
 * partner is not scheduled gives its core away instead of spinning). POSIX
 * threads, or the Win32 API on Windows. If a thread cannot start, the callers
 * run its work in the calling thread (same results).
 */
#ifndef TFX_THREADS_H
#define TFX_THREADS_H

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef struct {
    HANDLE h;
    void *(*f)(void *);
    void *arg;
} tfx_thread;
static DWORD WINAPI tfx_trampoline(LPVOID p)
{
    tfx_thread *t = (tfx_thread *)p;
    t->f(t->arg);
    return 0;
}
/* t must stay at the same address until tfx_thread_join */
static int tfx_thread_start(tfx_thread *t, void *(*f)(void *), void *arg)
{
    t->f = f;
    t->arg = arg;
    t->h = CreateThread(NULL, 0, tfx_trampoline, t, 0, NULL);
    return t->h != NULL ? 0 : -1;
}
static int tfx_thread_join(tfx_thread t)
{
    DWORD r = WaitForSingleObject(t.h, INFINITE);
    CloseHandle(t.h);
    return r == WAIT_OBJECT_0 ? 0 : -1;
}
static double tfx_now(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
static void tfx_pause(void) { YieldProcessor(); }
/* sequentially consistent loads and stores */
static long tfx_load(volatile long *p) { return InterlockedCompareExchange(p, 0, 0); }
static void tfx_store_sc(volatile long *p, long v) { InterlockedExchange(p, v); }
typedef struct {
    SRWLOCK lock;
    CONDITION_VARIABLE cv;
} tfx_sync;
static int tfx_sync_init(tfx_sync *s)
{
    InitializeSRWLock(&s->lock);
    InitializeConditionVariable(&s->cv);
    return 0;
}
static void tfx_sync_destroy(tfx_sync *s) { (void)s; }
static void tfx_sync_lock(tfx_sync *s) { AcquireSRWLockExclusive(&s->lock); }
static void tfx_sync_unlock(tfx_sync *s) { ReleaseSRWLockExclusive(&s->lock); }
static void tfx_sync_wait(tfx_sync *s) { SleepConditionVariableSRW(&s->cv, &s->lock, INFINITE, 0); }
static void tfx_sync_wake(tfx_sync *s) { WakeAllConditionVariable(&s->cv); }
#else
#include <pthread.h>
#include <time.h>
typedef pthread_t tfx_thread;
static int tfx_thread_start(tfx_thread *t, void *(*f)(void *), void *arg)
{
    return pthread_create(t, NULL, f, arg);
}
static int tfx_thread_join(tfx_thread t) { return pthread_join(t, NULL); }
static double tfx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static void tfx_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
static long tfx_load(volatile long *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void tfx_store_sc(volatile long *p, long v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
} tfx_sync;
static int tfx_sync_init(tfx_sync *s)
{
    if (pthread_mutex_init(&s->lock, NULL) != 0) return -1;
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        return -1;
    }
    return 0;
}
static void tfx_sync_destroy(tfx_sync *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->lock);
}
static void tfx_sync_lock(tfx_sync *s) { pthread_mutex_lock(&s->lock); }
static void tfx_sync_unlock(tfx_sync *s) { pthread_mutex_unlock(&s->lock); }
static void tfx_sync_wait(tfx_sync *s) { pthread_cond_wait(&s->cv, &s->lock); }
static void tfx_sync_wake(tfx_sync *s) { pthread_cond_broadcast(&s->cv); }
#endif

/* A counter published by one thread and awaited by another. The publisher
 * stores, then wakes the waiters if any sleep; a waiter polls for `spin_us`
 * microseconds (a bound in time, not in polls: a pause instruction lasts from
 * about 10 to 150 cycles depending on the processor), then registers as sleeping and re-checks under the lock before it sleeps
 * (all sequentially consistent: a store either sees the sleeper or is seen by
 * its re-check, so no wake-up is lost). */
typedef struct {
    volatile long value;
    volatile long sleepers;
    tfx_sync *sync;
} tfx_counter;

static void tfx_counter_publish(tfx_counter *c, long v)
{
    tfx_store_sc(&c->value, v);
    if (tfx_load(&c->sleepers)) {
        tfx_sync_lock(c->sync);
        tfx_sync_wake(c->sync);
        tfx_sync_unlock(c->sync);
    }
}

static void tfx_counter_wait(tfx_counter *c, long v, int spin_us)
{
    int i;
    double t_end;
    if (tfx_load(&c->value) >= v) return;
    if (spin_us > 0) {
        t_end = tfx_now() + 1e-6 * (double)spin_us;
        do {
            for (i = 0; i < 64; i++) {
                if (tfx_load(&c->value) >= v) return;
                tfx_pause();
            }
        } while (tfx_now() < t_end);
    }
    if (tfx_load(&c->value) >= v) return;
    tfx_sync_lock(c->sync);
    tfx_store_sc(&c->sleepers, tfx_load(&c->sleepers) + 1);
    while (tfx_load(&c->value) < v) tfx_sync_wait(c->sync);
    tfx_store_sc(&c->sleepers, tfx_load(&c->sleepers) - 1);
    tfx_sync_unlock(c->sync);
}

#endif
