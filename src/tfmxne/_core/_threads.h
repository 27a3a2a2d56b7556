/* Authors: The tfmxne developers
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Minimal portable threads and atomics for the core: start / join a thread,
 * yield, and counters published with release / acquire order. POSIX threads,
 * or the Win32 API on Windows. If a thread cannot start, the callers run its
 * work in the calling thread (same results).
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
static void tfx_yield(void) { SwitchToThread(); }
/* full barriers: at least acquire (load) / release (store) on every target */
static long tfx_load(const long *p)
{
    return InterlockedCompareExchange((volatile LONG *)p, 0, 0);
}
static void tfx_store(long *p, long v) { InterlockedExchange((volatile LONG *)p, v); }
#else
#include <pthread.h>
#include <sched.h>
typedef pthread_t tfx_thread;
static int tfx_thread_start(tfx_thread *t, void *(*f)(void *), void *arg)
{
    return pthread_create(t, NULL, f, arg);
}
static int tfx_thread_join(tfx_thread t) { return pthread_join(t, NULL); }
static void tfx_yield(void) { sched_yield(); }
static long tfx_load(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void tfx_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
#endif

#endif
