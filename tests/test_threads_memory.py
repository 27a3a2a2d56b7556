# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Concurrency and memory: solves from several threads at once are bitwise equal
to solves alone, and repeated solves do not grow memory."""

import ctypes
import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import cython_tfmxne as ct
from tfmxne.solver import _solver_core

N_THREADS = 4


def _problem(seed, n_chan=24, n_pos=60, n_times=64, n_orient=1, n_true=4):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_chan, n_pos * n_orient))
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, n_true, replace=False)):
        X[j * n_orient + k % n_orient] = (np.sin(2 * np.pi * t / (5 + 2 * k))
                                         * np.hanning(n_times))
    M = G @ X + 0.1 * rng.standard_normal((n_chan, n_times))
    l1_ratio = 0.1
    amax = tfmxne.norm_epsilon_inf(G, M, l1_ratio, n_orient, 16, 4)
    return M, G, 0.15 * amax * (1 - l1_ratio), 0.15 * amax * l1_ratio


PROBLEMS = [(seed, 1 + seed % 3) for seed in range(8)]


def _python_solve(seed, n_orient, dtype=np.float64):
    M, G, a_s, a_t = _problem(seed, n_orient=n_orient)
    if dtype == np.float64:
        X, act, E, gap = tfmxne.tf_mixed_norm_solver(
            M, G, a_s, a_t, 16, 4, n_orient, maxit=300, tol=1e-8, debias=True,
            return_gap=True)
        return X, act, np.asarray(E), gap
    _, _, _, _, res = _solver_core(M, G, a_s, a_t, 16, 4, n_orient, 300, 1e-4, 10,
                                   dtype=dtype)
    return res.X, res.positions, res.Z, res.gap


def _c_solve(seed, n_orient):
    M, G, a_s, a_t = _problem(seed, n_orient=n_orient)
    X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, n_orient, 300, 1e-8)
    assert info["status"] == ct.OK
    return X, act, info["gap"], info["p_obj"]


def _assert_bitwise(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()
        else:
            assert x == y or (np.isnan(x) and np.isnan(y))


@pytest.mark.parametrize("kind", ["python", "python-float32", "c-api"])
def test_threads_bitwise_equal_to_serial(kind):
    if kind == "python":
        fun = _python_solve
    elif kind == "python-float32":
        def fun(seed, n_orient):
            return _python_solve(seed, n_orient, np.float32)
    else:
        fun = _c_solve
    with threadpool_limits(1):
        alone = [fun(*p) for p in PROBLEMS]
        with ThreadPoolExecutor(N_THREADS) as ex:
            together = list(ex.map(lambda p: fun(*p), PROBLEMS))
        # the same problem from all threads at once (shared inputs and plan cache)
        with ThreadPoolExecutor(N_THREADS) as ex:
            same = list(ex.map(lambda _: fun(*PROBLEMS[1]), range(N_THREADS)))
    assert all(np.abs(r[0]).max(initial=0.0) > 0 for r in alone)  # non-trivial
    for a, b in zip(alone, together):
        _assert_bitwise(a, b)
    for b in same:
        _assert_bitwise(alone[1], b)


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _malloc_in_use():
    """Bytes currently allocated with malloc (glibc >= 2.33), or None."""
    try:
        libc = ctypes.CDLL(None)
        fun = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fun.restype = _MallInfo2
    m = fun()
    return m.uordblks + m.hblkhd


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm")
def test_repeated_solves_do_not_grow_rss():
    M, G, a_s, a_t = _problem(11, n_chan=16, n_pos=30, n_times=48, n_orient=1)
    with threadpool_limits(1):
        for _ in range(20):
            X, act, E = tfmxne.tf_mixed_norm_solver(M, G, a_s, a_t, 16, 4, 1, tol=1e-8)
        assert act.any()
        gc.collect()
        rss0 = _rss_bytes()
        for _ in range(200):
            X, act, E = tfmxne.tf_mixed_norm_solver(M, G, a_s, a_t, 16, 4, 1, tol=1e-8)
        del X, act, E
        gc.collect()
        growth = _rss_bytes() - rss0
    assert growth < 20 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB over 200 solves"


@pytest.mark.skipif(_malloc_in_use() is None, reason="needs glibc mallinfo2")
def test_c_api_frees_all_scratch():
    """Exact malloc accounting: every buffer of the C entry points is freed.

    A single leaked block of the smallest size (32 bytes) per call would show
    as >= 3.2 kB over 100 calls; nothing else allocates in between.
    """
    M, G, a_s, a_t = _problem(12, n_chan=20, n_pos=50, n_times=48, n_orient=2)
    for _ in range(10):
        ct._solve_arrays(M, G, a_s, a_t, 16, 4, 2, 300, 1e-8)
        ct._solve_arrays(M, G, a_s, a_t, [16, 8], [4, 2], 2, 300, 1e-4, np.float32)
        ct._solve_arrays(M, G, a_s, a_t, 16, 4, 3, 300, 1e-8)  # TFX_BAD_ARG path
        ct._plan_info(48, [16], [4])
    gc.collect()
    used0 = _malloc_in_use()
    for _ in range(100):
        X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, 2, 300, 1e-8)
        X, act, info = ct._solve_arrays(M, G, a_s, a_t, [16, 8], [4, 2], 2, 300, 1e-4,
                                        np.float32)
        X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, 3, 300, 1e-8)
        ct._plan_info(48, [16], [4])
    del X, act, info
    gc.collect()
    growth = _malloc_in_use() - used0
    assert growth < 2048, f"malloc'd bytes grew by {growth} over 100 rounds"
