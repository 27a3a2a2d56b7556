# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Threads and BLAS: how many threads a solve may use, and BLAS pinning.

The compiled core runs its own threads (``G^T R``, the screening of the dual
norm, the two-thread sweep of the block coordinate descent), at most the count
it is given; its BLAS products are small and must run on one BLAS thread each,
so a solve pins BLAS to one thread (``threadpoolctl``) while it runs. A whole
call of the pipeline (preparation, solves, debiasing, residual) runs in
:func:`call_scope`: BLAS pinned once, from the start, so that the idle threads
of a multi-threaded BLAS product in the preparation do not spin (OpenBLAS
busy-waits for a while after each product) on the cores the solve's threads
need. Within a batch (solves in parallel threads, BLAS pinned once for all),
solves use one thread each and do not touch the process-wide BLAS limits.
"""

import contextlib
import contextvars
import os
import threading

#: Most threads a single solve uses.
MAX_SOLVE_THREADS = 4

_BATCH_DEPTH = [0]
_BATCH_LOCK = threading.Lock()
_CONTROLLER = []
# threads of the solves of the current call_scope (None: not in one)
_CALL_THREADS = contextvars.ContextVar("tfmxne_call_threads", default=None)


def _controller():
    if not _CONTROLLER:  # cached: a fresh ThreadpoolController costs ~0.5 ms
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextlib.contextmanager
def batch_scope():
    """Solves inside run in a batch: BLAS is pinned once by the caller (threadpool
    limits are process-wide and must not be toggled by each thread)."""
    with _BATCH_LOCK:
        _BATCH_DEPTH[0] += 1
    try:
        yield
    finally:
        with _BATCH_LOCK:
            _BATCH_DEPTH[0] -= 1


def in_batch():
    return _BATCH_DEPTH[0] > 0


def blas_one_thread():
    """One BLAS thread for the duration of a solve; a no-op inside a batch or a
    :func:`call_scope` (BLAS is pinned already)."""
    if in_batch() or _CALL_THREADS.get() is not None:
        return contextlib.nullcontext()
    return _controller().limit(limits=1, user_api="blas")


@contextlib.contextmanager
def call_scope():
    """Run a whole call on one BLAS thread, its solves on :func:`solve_threads`
    as counted on entry (the threads BLAS may use then). Nested scopes and
    batches leave things as they are."""
    if in_batch() or _CALL_THREADS.get() is not None:
        yield
        return
    token = _CALL_THREADS.set(solve_threads())
    try:
        with _controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        _CALL_THREADS.reset(token)


def solve_threads():
    """Threads for one solve: as many as BLAS may use now (so ``threadpoolctl``
    limits set by the caller apply; in a :func:`call_scope`, as many as it could
    when the scope started), at most the CPUs and :data:`MAX_SOLVE_THREADS`; one
    inside a batch, whose solves already run in parallel."""
    if in_batch():
        return 1
    n = _CALL_THREADS.get()
    if n is not None:
        return n
    libs = _controller().select(user_api="blas").lib_controllers
    n = min((lib.num_threads for lib in libs), default=1)
    return max(1, min(n, os.cpu_count() or 1, MAX_SOLVE_THREADS))


def _after_fork_in_child():
    """Locks do not survive ``fork`` in a usable state: the child gets fresh ones."""
    global _BATCH_LOCK
    _BATCH_LOCK = threading.Lock()
    _BATCH_DEPTH[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
