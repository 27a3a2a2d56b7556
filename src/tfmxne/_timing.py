# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Wall time per stage of the preparation, for the benchmarks.

The preparation marks its stages with :func:`stage`; nothing is measured
unless a caller records them (:func:`record`, as ``benchmarks/bench_prepare.py``
does), so an unrecorded stage costs one context-variable lookup. The recorder
is per context (thread), so the threads of a batch do not mix their stages.
"""

import contextlib
import contextvars
import time

_RECORDER = contextvars.ContextVar("tfmxne_stage_recorder", default=None)


@contextlib.contextmanager
def record():
    """Record the stages run in the block: yields a dict ``name -> seconds``
    (stages run more than once add up)."""
    times = {}
    token = _RECORDER.set(times)
    try:
        yield times
    finally:
        _RECORDER.reset(token)


@contextlib.contextmanager
def stage(name):
    """Mark the block as the stage ``name`` (timed only under :func:`record`)."""
    times = _RECORDER.get()
    if times is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
