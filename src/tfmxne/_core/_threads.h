/* Authors: The tfmxne developers
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Minimal threads and atomics for the two-thread block coordinate descent of the
 * engine: one helper thread, counters published with release / acquire order.
 * Without POSIX threads (Windows) starting a thread fails and the engine runs its
 * sequential sweep.
 */
#ifndef TFX_THREADS_H
#define TFX_THREADS_H

#if defined(_WIN32)
typedef void *tfx_thread;
static int tfx_thread_start(tfx_thread *t, void *(*f)(void *), void *arg)
{
    (void)t; (void)f; (void)arg;
    return -1;
}
static int tfx_thread_join(tfx_thread t) { (void)t; return -1; }
static void tfx_yield(void) {}
static long tfx_load(const long *p) { return *(const volatile long *)p; }
static void tfx_store(long *p, long v) { *(volatile long *)p = v; }
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
