# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Concurrency and memory: solves from several threads at once are bitwise equal
to solves alone, and repeated solves do not grow memory."""

import ctypes
import gc
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import cython_tfmxne as ct
from tfmxne._testing import _hooks as H
from tfmxne.solver import _solver_core

N_THREADS = 4


def _problem(seed, n_chan=24, n_pos=60, n_times=64, n_orient=1, n_true=4):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_chan, n_pos * n_orient))
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, n_true, replace=False)):
        X[j * n_orient + k % n_orient] = np.sin(2 * np.pi * t / (5 + 2 * k)) * np.hanning(
            n_times
        )
    M = G @ X + 0.1 * rng.standard_normal((n_chan, n_times))
    l1_ratio = 0.1
    amax = tfmxne.norm_epsilon_inf(G, M, l1_ratio, n_orient, 16, 4)
    return M, G, 0.15 * amax * (1 - l1_ratio), 0.15 * amax * l1_ratio


PROBLEMS = [(seed, 1 + seed % 3) for seed in range(8)]


def _python_solve(seed, n_orient, dtype=np.float64):
    M, G, a_s, a_t = _problem(seed, n_orient=n_orient)
    if dtype == np.float64:
        X, act, E, gap = tfmxne.tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            16,
            4,
            n_orient,
            maxit=300,
            tol=1e-8,
            debias=True,
            return_gap=True,
        )
        return X, act, np.asarray(E), gap
    _, _, _, _, res = _solver_core(
        M, G, a_s, a_t, 16, 4, n_orient, 300, 1e-4, 10, dtype=dtype
    )
    return res.X, res.positions, res.Z, res.gap


def _c_solve(seed, n_orient):
    M, G, a_s, a_t = _problem(seed, n_orient=n_orient)
    X, act, info, _ = H.solve_arrays(
        M, G, (a_s, a_t), (16, 4), n_orient=n_orient, maxit=300, tol=1e-8
    )
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
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


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


def _c_calls(M, G, a_s, a_t):
    """The C entry points: float64, float32 multi-dictionary, a TFX_BAD_ARG path,
    the ABI refusals, a plan."""
    kw = dict(maxit=300, tol=1e-8)
    H.solve_arrays(M, G, (a_s, a_t), (16, 4), n_orient=2, **kw)
    H.solve_arrays(
        M,
        G,
        (a_s, a_t),
        ([16, 8], [4, 2]),
        n_orient=2,
        maxit=300,
        tol=1e-4,
        dtype=np.float32,
    )
    H.solve_arrays(M, G, (a_s, a_t), (16, 4), n_orient=3, **kw)  # TFX_BAD_ARG
    H.abi_probe(M, G, a_s, a_t)
    H.plan_info(48, [16], [4])


@pytest.mark.skipif(_malloc_in_use() is None, reason="needs glibc mallinfo2")
def test_c_api_frees_all_scratch():
    """Exact malloc accounting: every buffer of the C entry points is freed.

    A single leaked block of the smallest size (32 bytes) per call would show
    as >= 3.2 kB over 100 calls; nothing else allocates in between.
    """
    M, G, a_s, a_t = _problem(12, n_chan=20, n_pos=50, n_times=48, n_orient=2)
    for _ in range(10):
        _c_calls(M, G, a_s, a_t)
    gc.collect()
    used0 = _malloc_in_use()
    for _ in range(100):
        _c_calls(M, G, a_s, a_t)
    gc.collect()
    growth = _malloc_in_use() - used0
    assert growth < 2048, f"malloc'd bytes grew by {growth} over 100 rounds"


# --------------------------------------------------------------------------
# threaded screening: same result as the sequential kernel, bit for bit
# --------------------------------------------------------------------------
def _screen_problem(n_orient, n_pos=700, n_times=64, seed=0):
    from tfmxne._stft import TFFrame

    rng = np.random.default_rng(seed)
    frame = TFFrame(n_times, [16, 32], [4, 8])
    scale = rng.lognormal(0.0, 1.0, n_pos).repeat(n_orient)[:, None]
    GtR = np.ascontiguousarray(scale * rng.standard_normal((n_pos * n_orient, n_times)))
    GtR_prev = np.ascontiguousarray(GtR + 0.05 * rng.standard_normal(GtR.shape))
    w_space = rng.uniform(0.5, 2.0, n_pos)
    w_time = rng.uniform(0.5, 2.0, (n_pos, frame.n_coefs))
    w_time[rng.random(w_time.shape) < 0.1] = 0.0  # coefficients held at zero
    return frame.plan, GtR, GtR_prev, w_space, w_time


@pytest.mark.parametrize("n_thr", [2, 3])
@pytest.mark.parametrize("n_orient", [1, 3])
@pytest.mark.parametrize(
    "rules",
    [
        dict(),  # exact dual norm
        dict(n_min=300, alpha=0.0, n_max=600),  # capped, working-set growth
        dict(n_min=40, alpha=2.0, n_max=-1),  # stop below alpha
        dict(n_min=0, alpha=1e9, n_max=-1),  # nothing to evaluate
        dict(n_min=650, alpha=0.5, n_max=690),  # cap inside the last chunk
    ],
)
@pytest.mark.parametrize("extras", ["plain", "weights+tracking"])
def test_threaded_screening_bitwise_equal(n_thr, n_orient, rules, extras):
    from tfmxne._core import _engine
    from tfmxne.solver import _dual_norm_screened

    plan, GtR, GtR_prev, w_space, w_time = _screen_problem(n_orient)
    rho = 0.2
    ws = wt = prev = nu_prev = None
    if extras != "plain":
        ws, wt, prev = w_space, w_time, GtR_prev
        nu_prev = _engine.dual_norm_screened(plan, prev, n_orient, rho, weights=(ws, wt))[
            2
        ]
    kw = dict(
        weights=(ws, wt),
        prev=(prev, nu_prev),
        stop=(rules.get("n_min", 0), rules.get("alpha", 0.0), rules.get("n_max", -1)),
    )
    ref = _engine.dual_norm_screened(plan, GtR, n_orient, rho, **kw)
    got = _dual_norm_screened(plan, GtR, n_orient, rho, **kw, n_thr=n_thr)
    assert got[0] == ref[0] and got[1] == ref[1]
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[3], ref[3])
    if not rules:  # the exact dual norm really was computed
        exact_all = H.eps_norms(
            plan, np.ascontiguousarray(_stft_internal(plan, GtR)), n_orient, rho, ws, wt
        )
        assert got[0] == pytest.approx(exact_all.max(), rel=1e-13)


def _stft_internal(plan, x):
    from tfmxne._core import _engine

    z = np.empty((x.shape[0], 2 * plan.n_coefs))
    _engine.stft(plan, x, z, np.empty(plan.max_frames))
    return z


def test_threaded_gtr_and_thread_count():
    from tfmxne._core import _engine
    from tfmxne._parallel import batch_scope, solve_threads
    from tfmxne.solver import _gtr

    rng = np.random.default_rng(3)
    G = rng.standard_normal((40, 900))
    R = rng.standard_normal((40, 50))
    out = _gtr(G, R, 2)
    assert out.flags.c_contiguous and out.shape == (900, 50)
    np.testing.assert_allclose(out, G.T @ R, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        _gtr(np.asfortranarray(G), R, 3), G.T @ R, rtol=1e-12, atol=1e-12
    )
    # the screening follows the caller's BLAS limit and stays serial in a batch
    with threadpool_limits(1, user_api="blas"):
        assert solve_threads() == 1
    with batch_scope():
        assert solve_threads() == 1
    assert 1 <= solve_threads() <= (os.cpu_count() or 1)
    plan = _screen_problem(1, n_pos=10)[0]
    with pytest.raises(ValueError, match="inconsistent"):
        _engine.dual_norm_screened(
            plan, np.zeros((10, 64)), 1, 0.2, weights=(np.ones(9), None)
        )


def test_solve_with_screening_threads_matches_one_thread():
    rng = np.random.default_rng(5)
    n_chan, n_pos, n_times, n_orient = 30, 400, 64, 3
    G = rng.standard_normal((n_chan, n_pos * n_orient))
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, 3, replace=False)):
        X[j * n_orient + k] = np.sin(2 * np.pi * t / (6 + 3 * k)) * np.hanning(n_times)
    M = G @ X + 0.05 * rng.standard_normal((n_chan, n_times))
    amax = tfmxne.norm_epsilon_inf(G, M, 0.1, n_orient, 16, 4)
    kw = dict(wsize=16, tstep=4, n_orient=n_orient, maxit=500, tol=1e-8, debias=False)
    X2, act2, _ = tfmxne.tf_mixed_norm_solver(
        M, G, 0.3 * amax * 0.9, 0.3 * amax * 0.1, **kw
    )
    with threadpool_limits(1, user_api="blas"):
        X1, act1, _ = tfmxne.tf_mixed_norm_solver(
            M, G, 0.3 * amax * 0.9, 0.3 * amax * 0.1, **kw
        )
    np.testing.assert_array_equal(act1, act2)
    np.testing.assert_allclose(X2, X1, rtol=1e-8, atol=1e-10 * np.abs(X1).max())


def _sweep(prob, xgram, alpha, maxit, *, n_orient, w_space=None, w_time=None, **opts):
    """``maxit`` epochs of the inner solver from zero on the working set of
    ``prob = (plan, GT, M, lc, grams)`` at ``alpha`` (l1_ratio 0.2), no stop:
    (R, X, Z, active, info)."""
    plan, GT, M, lc, grams = prob
    n_ws, T, dtype = GT.shape[0] // n_orient, M.shape[1], M.dtype
    R = M.copy()
    X = np.zeros((n_ws * n_orient, T), dtype)
    Z = np.zeros((n_ws * n_orient, 2 * plan.n_coefs), dtype)
    act = np.zeros(n_ws, np.uint8)
    arrays = dict(
        GT=GT,
        M=M,
        R=R,
        X=X,
        Z=Z,
        active=act,
        lc=lc,
        gram=grams,
        work=np.empty(H.work_size(plan, n_orient), dtype),
        w_space=w_space,
        w_time=w_time,
        xgram=xgram,
    )
    r = H.bcd(
        plan,
        arrays,
        alpha_space=0.8 * alpha,
        alpha_time=0.2 * alpha,
        n_orient=n_orient,
        maxit=maxit,
        tol=0.0,
        dgap_freq=10,
        **opts,
    )
    return R, X, Z, act, r


# --------------------------------------------------------------------------
# two-thread sweep of the block coordinate descent
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n_orient", [1, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_two_thread_sweep_matches_sequential(n_orient, dtype, weighted):
    from tfmxne._stft import TFFrame
    from tfmxne.solver import _lipschitz

    rng = np.random.default_rng(11)
    n_chan, n_ws, T = 20, 15, 48
    G = rng.standard_normal((n_chan, n_ws * n_orient)).astype(dtype)
    GT = np.ascontiguousarray(G.T)
    X_true = np.zeros((n_ws * n_orient, T))
    X_true[[0, 2 * n_orient, 7 * n_orient, 11 * n_orient]] = rng.standard_normal((4, T))
    M = (G @ X_true + 0.1 * rng.standard_normal((n_chan, T))).astype(dtype)
    frame = TFFrame(T, [16, 8], [4, 2], dtype=dtype)
    plan = frame.plan
    lc = _lipschitz(G.astype(np.float64), n_orient).astype(dtype)
    lc[4] = 0.0  # a block the sweep skips: the cross Grams must skip it too
    grams = H.block_grams(GT, n_orient)[0]
    amax = tfmxne.norm_epsilon_inf(
        G.astype(np.float64), M.astype(np.float64), 0.2, n_orient, [16, 8], [4, 2]
    )
    w_s = rng.uniform(0.5, 1.5, n_ws).astype(dtype) if weighted else None
    w_t = rng.uniform(0.5, 1.5, (n_ws, frame.n_coefs)).astype(dtype) if weighted else None
    out = []
    for n_thr in (1, 2):
        xg = H.block_grams(GT, n_orient, lc)[1] if n_thr > 1 else None
        R, X, _, act, r = _sweep(
            (plan, GT, M, lc, grams),
            xg,
            0.05 * amax,
            40,
            n_orient=n_orient,
            w_space=w_s,
            w_time=w_t,
            n_threads=n_thr,
        )
        assert r["status"] in (0, 1) and r["n_iter"] == 40
        # the residual stays M - G X, the skipped block stays zero
        np.testing.assert_allclose(
            R, M - G @ X, atol=1e-4 if dtype == np.float32 else 1e-12
        )
        assert not X[4 * n_orient : 5 * n_orient].any()
        out.append((X, act, r["p_obj"]))
    (X1, a1, p1), (X2, a2, p2) = out
    np.testing.assert_array_equal(a1, a2)
    assert a1.sum() >= 2  # several blocks really were updated
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    assert p2 == pytest.approx(p1, rel=rtol)
    np.testing.assert_allclose(X2, X1, rtol=rtol, atol=rtol * np.abs(X1).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_thread_sweep_alone_is_the_same_arithmetic(dtype):
    """The epochs a two-thread sweep runs in its main thread alone (when the
    helper thread is found slower, on a busy machine) give the same bits as
    with both threads, whether every epoch, none or some run alone; the
    automatic choice, which depends on timings, too."""
    from tfmxne._stft import TFFrame
    from tfmxne.solver import _lipschitz

    rng = np.random.default_rng(3)
    n_chan, n_ws, T, n_orient = 24, 20, 48, 3
    G = rng.standard_normal((n_chan, n_ws * n_orient)).astype(dtype)
    GT = np.ascontiguousarray(G.T)
    X_true = np.zeros((n_ws * n_orient, T))
    X_true[[0, 5 * n_orient + 1, 12 * n_orient]] = rng.standard_normal((3, T))
    M = (G @ X_true + 0.1 * rng.standard_normal((n_chan, T))).astype(dtype)
    plan = TFFrame(T, 16, 4, dtype=dtype).plan
    lc = _lipschitz(G.astype(np.float64), n_orient).astype(dtype)
    grams, xg = H.block_grams(GT, n_orient, lc)
    amax = tfmxne.norm_epsilon_inf(
        G.astype(np.float64), M.astype(np.float64), 0.2, n_orient, 16, 4
    )
    out = {}
    prob = (plan, GT, M, lc, grams)
    kw = dict(n_orient=n_orient, n_threads=2, momentum=1)
    for mode in ("two", "alone", "probe", "auto"):
        R, X, Z, act, r = _sweep(prob, xg, 0.05 * amax, 30, pipe=mode, **kw)
        assert r["n_iter"] == 30
        out[mode] = (R, X, Z, act, r["p_obj"])
    assert out["two"][3].sum() >= 2  # several blocks really were updated
    for mode in ("alone", "probe", "auto"):
        for a, b in zip(out["two"], out[mode]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="pipe must be"):
        _sweep(prob, xg, 0.05 * amax, 1, pipe="fast", **kw)


def test_cross_grams_follow_the_visit_order():
    rng = np.random.default_rng(2)
    GT = rng.standard_normal((5 * 2, 7))
    lc = np.array([1.0, 0.0, 2.0, 1.0, 0.0])
    xg = H.block_grams(GT, 2, lc)[1]
    B = GT.reshape(5, 2, 7)
    np.testing.assert_array_equal(xg[[0, 1, 4]], 0.0)  # first visit, skipped blocks
    np.testing.assert_allclose(xg[2], B[2] @ B[0].T)
    np.testing.assert_allclose(xg[3], B[3] @ B[2].T)


def _child_screen(n_orient):
    from tfmxne.solver import _dual_norm_screened

    plan, GtR = _screen_problem(n_orient)[:2]
    return _dual_norm_screened(plan, GtR, n_orient, 0.2, n_thr=2)[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_screening_threads_work_in_a_forked_child():
    """A child forked after the parent ran threaded screenings (the core starts
    its threads per call and keeps none, and the batch lock is renewed at fork)
    computes the same dual norm instead of hanging."""
    import multiprocessing as mp
    import warnings

    ref = _child_screen(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        with mp.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_child_screen, (3,)).get(timeout=120)
    assert got == ref


_PROBE = r"""
#include <stdio.h>
#include "_threads.h"
static tfx_sync sync;
static tfx_counter go = {0, 0, &sync}, done = {0, 0, &sync};
static void *work(void *arg) {
    (void)arg;
    for (long k = 1; k <= 1000; k++) {
        tfx_counter_wait(&go, k, k % 2 ? 0 : 100);   /* blocking and spinning waits */
        tfx_counter_publish(&done, k);
    }
    return NULL;
}
int main(void) {
    tfx_thread th;
    if (tfx_sync_init(&sync) != 0) return 1;
    if (tfx_thread_start(&th, work, NULL) != 0) return 2;
    for (long k = 1; k <= 1000; k++) {
        tfx_counter_publish(&go, k);
        tfx_counter_wait(&done, k, k % 3 ? 0 : 100);
    }
    if (tfx_thread_join(th) != 0) return 3;
    if (tfx_load(&done.value) != 1000) return 4;
    tfx_sync_destroy(&sync);
    printf("ok %f\n", tfx_now());
    return 0;
}
"""


def _build_probe(tmp_path, compiler, exe, extra=()):
    import subprocess

    core = Path(__file__).resolve().parents[1] / "src" / "tfmxne" / "_core"
    if not (core / "_threads.h").is_file():
        pytest.skip("needs the source tree")
    (tmp_path / "probe.c").write_text(_PROBE)
    cmd = [
        compiler,
        "-O2",
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{core}",
        str(tmp_path / "probe.c"),
        "-o",
        str(exe),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("gcc") is None,
    reason="needs gcc and POSIX threads",
)
def test_thread_layer_handoffs_posix(tmp_path):
    """The POSIX branch of the thread layer: 1000 hand-offs each way between two
    threads, with blocking and spinning waits, arrive in order (none lost)."""
    import subprocess

    exe = tmp_path / "probe"
    _build_probe(tmp_path, "gcc", exe, ["-D_POSIX_C_SOURCE=200809L", "-pthread"])
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stdout + run.stderr


@pytest.mark.skipif(
    shutil.which("x86_64-w64-mingw32-gcc") is None,
    reason="needs the MinGW-w64 cross compiler",
)
def test_thread_layer_builds_and_runs_on_windows(tmp_path):
    """The Win32 branch of the core's thread layer compiles without warnings for
    Windows and, where Wine is installed, passes the same hand-offs."""
    import subprocess

    exe = tmp_path / "probe.exe"
    _build_probe(tmp_path, "x86_64-w64-mingw32-gcc", exe)
    wine = (
        shutil.which("wine64")
        or shutil.which("wine")
        or ("/usr/lib/wine/wine64" if Path("/usr/lib/wine/wine64").is_file() else None)
    )
    if wine is None:
        return
    run = subprocess.run(
        [wine, str(exe)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"WINEDEBUG": "-all"},
    )
    assert run.returncode == 0 and "ok" in run.stdout, (run.returncode, run.stdout)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_call_scope_pins_blas_for_the_whole_call(small_problem, monkeypatch):
    """A call runs on one BLAS thread from its start (the preparation included),
    its solves on the threads BLAS had before; nested scopes change nothing."""
    from tfmxne import _parallel, _prepare

    with threadpool_limits(2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("BLAS runs one thread only here")
        n_before = _parallel.solve_threads()
        with _parallel.call_scope():
            inner = (_parallel.solve_threads(), _blas_threads())
            with _parallel.call_scope():
                nested = (_parallel.solve_threads(), _blas_threads())
        assert inner == nested == (n_before, 1)
        assert _blas_threads() == 2 and _parallel.solve_threads() == n_before

        seen = []
        whiten = _prepare._whiten

        def spy(*a):
            seen.append((_parallel.solve_threads(), _blas_threads()))
            return whiten(*a)

        monkeypatch.setattr(_prepare, "_whiten", spy)
        evoked, forward, cov = small_problem
        tfmxne.tf_mixed_norm(evoked, forward, cov, alpha=50.0, verbose=False)
        assert seen == [(n_before, 1)]
        assert _blas_threads() == 2
