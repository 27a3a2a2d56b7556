# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The public Cython API (``cimport tfmxne.cython_tfmxne``).

A small downstream extension is written to a temporary folder, cythonized with
the folder that holds the installed ``tfmxne`` package on the include path,
compiled, imported, and checked against the Python API. Faster checks of the same
C entry points go through the private hook ``tfmxne._testing._hooks.solve_arrays``.
"""

import importlib
import importlib.resources
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _helpers import correlated_problem, dual_ref, objectives_ref, subset_forward
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import cython_tfmxne as ct
from tfmxne import solver as tsolver
from tfmxne import tf_mixed_norm_solver
from tfmxne._core import _engine
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H


def _problem(seed, n_chan=16, n_pos=20, n_times=40, n_orient=1, n_true=2, noise=0.05):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_chan, n_pos * n_orient))
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, n_true, replace=False)):
        X[j * n_orient] = np.sin(2 * np.pi * t / (6 + 3 * k)) * np.hanning(n_times)
    M = G @ X + noise * rng.standard_normal((n_chan, n_times))
    return M, G


def _alphas(M, G, n_orient, wsize, tstep, frac=0.3, l1_ratio=0.1):
    amax = tfmxne.norm_epsilon_inf(G, M, l1_ratio, n_orient, wsize, tstep)
    return frac * amax * (1 - l1_ratio), frac * amax * l1_ratio


# --------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------
def test_pxd_installed_next_to_package():
    pkg = Path(tfmxne.__file__).parent
    assert (pkg / "cython_tfmxne.pxd").is_file()
    assert (pkg / "_core" / "_types.pxd").is_file()  # cimported by the public pxd
    res = importlib.resources.files("tfmxne").joinpath("cython_tfmxne.pxd")
    assert res.is_file()
    assert "d_tf_mxne_solve" in res.read_text()
    assert importlib.import_module("tfmxne.cython_tfmxne").__pyx_capi__  # exported


# --------------------------------------------------------------------------
# C entry points through the private hook
# --------------------------------------------------------------------------
def _weighted_warm_problem(n_orient, wsize, tstep, seed=7):
    """Correlated columns, weights and a warm start from a looser solve: several
    outer iterations (the working set grows from the warm support)."""
    M, G = correlated_problem(seed, n_orient, n_pos=60)
    frame = TFFrame(M.shape[1], wsize, tstep)
    rng = np.random.default_rng(seed)
    n_pos = G.shape[1] // n_orient
    w_space = rng.uniform(0.5, 2.0, n_pos)
    w_time = rng.uniform(0.5, 2.0, (n_pos, frame.n_coefs))
    w_time[rng.random(w_time.shape) < 0.05] = 0.0  # coefficients held at zero
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, frac=0.05)
    warm = tsolver._tf_solve(
        M, G, tsolver._Spec(4 * a_s, 4 * a_t, frame, n_orient, 50, 1.0, 10)
    )
    return M, G, frame, w_space, w_time, a_s, a_t, warm


def _c_pinned(*args, **kwargs):
    """The C API with BLAS pinned to one thread, as the Python solver runs it (a
    multi-threaded BLAS may round its products differently)."""
    with threadpool_limits(1, user_api="blas"):
        return H.solve_arrays(*args, **kwargs)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_orient, wsize, tstep", [(1, 16, 4), (3, [16, 8], [4, 2])])
def test_c_api_gives_the_python_solver_bits(n_orient, wsize, tstep, n_threads):
    """One solver: the C API and the Python solver run the same core entry point,
    so at equal thread counts they return identical bits, cold and unweighted
    (``tf_mixed_norm_solver``) and weighted with a warm start (the solve that
    irTF-MxNE and the alpha path run)."""
    M, G = correlated_problem(3, n_orient, n_pos=60)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, frac=0.05)
    with threadpool_limits(n_threads, user_api="blas"):
        Xp, actp, Ep, gap = tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            wsize,
            tstep,
            n_orient,
            maxit=500,
            tol=1e-8,
            debias=False,
            return_gap=True,
        )
    X, act, info, out = _c_pinned(
        M,
        G,
        (a_s, a_t),
        (wsize, tstep),
        n_orient=n_orient,
        maxit=500,
        tol=1e-8,
        n_threads=n_threads,
    )
    assert info["status"] == ct.OK and info["n_outer"] >= 3
    assert info["n_threads"] == n_threads
    np.testing.assert_array_equal(act, actp)
    assert np.array_equal(X[act], Xp) and info["gap"] == gap
    assert list(out["obj"]) == list(Ep)
    # debiasing in the core: the same weights as the Python solver's
    with threadpool_limits(n_threads, user_api="blas"):
        Xd, actd, _ = tf_mixed_norm_solver(
            M, G, a_s, a_t, wsize, tstep, n_orient, maxit=500, tol=1e-8, debias=True
        )
    X, act, info, out = _c_pinned(
        M,
        G,
        (a_s, a_t),
        (wsize, tstep),
        n_orient=n_orient,
        maxit=500,
        tol=1e-8,
        n_threads=n_threads,
        debias=1,
    )
    assert info["debias_status"] == ct.OK and np.all(out["debias"] >= 1)
    assert np.array_equal(act, actd) and np.array_equal(X[act], Xd)

    M, G, frame, w_space, w_time, a_s, a_t, warm = _weighted_warm_problem(
        n_orient, wsize, tstep
    )
    assert len(warm.positions)
    with threadpool_limits(n_threads, user_api="blas"):
        ref = tsolver._tf_solve(
            M,
            G,
            tsolver._Spec(a_s, a_t, frame, n_orient, 500, 1e-8, 10),
            weights=(w_space, w_time),
            warm=(warm.positions, warm.Z),
        )
    X, act, info, out = _c_pinned(
        M,
        G,
        (a_s, a_t),
        (wsize, tstep),
        n_orient=n_orient,
        maxit=500,
        tol=1e-8,
        weights=(w_space, w_time),
        warm=(warm.positions, warm.Z),
        n_threads=n_threads,
    )
    assert info["status"] == ct.OK and info["n_outer"] >= 3
    np.testing.assert_array_equal(out["positions"], ref.positions)
    for name in ("Z", "X", "R", "theta"):
        assert np.array_equal(out[name], getattr(ref, name)), name
    assert info["gap"] == ref.gap and info["d_obj"] == ref.d_obj


def _certify(
    M,
    G,
    out,
    a_s,
    a_t,
    wsize,
    tstep,
    n_orient,
    tol,
    w_space=None,
    w_time=None,
    rounding=0.0,
):
    """Check a result's certificate with independent NumPy code: its primal
    objective, and the dual objective and feasibility of its dual point theta."""
    frame = TFFrame(M.shape[1], wsize, tstep)
    active = np.zeros(G.shape[1], bool)
    active[(out["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()] = True
    Z = frame.to_mne(out["Z"].astype(np.float64)) if len(out["Z"]) else out["Z"]
    wt = None if w_time is None else frame.to_mne_weights(w_time)
    p_obj = objectives_ref(
        M, G, Z, active, a_s, a_t, wsize, tstep, n_orient, w_space, wt
    )[0]
    d_obj, nu = dual_ref(
        M,
        G,
        out["theta"].astype(np.float64),
        a_s,
        a_t,
        wsize,
        tstep,
        n_orient,
        w_space,
        wt,
    )
    scale = float(np.sum(M * M))
    assert nu <= (a_s + a_t) * (1 + 1e-12 + rounding)  # theta is dual feasible
    assert p_obj - d_obj < tol + (1e-12 + rounding) * scale  # a true duality gap
    return p_obj, d_obj


@pytest.mark.parametrize("seed, n_orient", [(0, 3), (1, 1), (2, 3)])
def test_c_solver_certificate(seed, n_orient):
    """The returned gap is certified by independent code and brackets the optimum
    (a tightly solved reference)."""
    M, G = correlated_problem(seed, n_orient)
    a_s, a_t = _alphas(M, G, n_orient, 16, 4, frac=0.1)
    tol = 1e-7 * float(np.sum(M * M))
    X, act, info, out = H.solve_arrays(
        M, G, (a_s, a_t), (16, 4), n_orient=n_orient, maxit=3000, tol=tol
    )
    assert info["status"] == ct.OK and 0 <= info["gap"] < tol
    assert info["gap"] == pytest.approx(info["p_obj"] - info["d_obj"], abs=1e-12)
    p_obj, d_obj = _certify(M, G, out, a_s, a_t, 16, 4, n_orient, tol)
    assert p_obj == pytest.approx(info["p_obj"], rel=1e-12)
    assert d_obj == pytest.approx(info["d_obj"], rel=1e-10)
    _, _, E = tf_mixed_norm_solver(
        M, G, a_s, a_t, 16, 4, n_orient, maxit=20000, tol=1e-13, debias=False
    )
    p_star = E[-1]
    assert info["d_obj"] <= p_star + 1e-10 * abs(p_star)
    assert info["p_obj"] >= p_star - 1e-10 * abs(p_star)


def test_c_solver_float32():
    """``s_tf_mxne_solve``: certified in float64 by independent code (up to the
    float32 rounding of the objectives) and equal to the float64 solution within
    what that gap allows."""
    M, G = _problem(1, n_orient=3)
    a_s, a_t = _alphas(M, G, 3, 16, 4)
    scale = float(np.sum(M * M))
    tol = 1e-5 * scale
    X64, act64, _, _ = H.solve_arrays(
        M, G, (a_s, a_t), (16, 4), n_orient=3, maxit=500, tol=1e-10
    )
    X32, act32, info, out = H.solve_arrays(
        M, G, (a_s, a_t), (16, 4), n_orient=3, maxit=500, tol=tol, dtype=np.float32
    )
    assert X32.dtype == np.float32
    assert info["status"] == ct.OK and info["gap"] < tol
    eps32 = float(np.finfo(np.float32).eps)
    _certify(M, G, out, a_s, a_t, 16, 4, 3, tol, rounding=100 * eps32)
    np.testing.assert_array_equal(act32, act64)
    # a gap of 1e-5 ||M||^2 bounds the distance to the optimum by about its root
    assert np.abs(X32 - X64).max() <= 1e-2 * np.abs(X64).max()


def test_c_solver_status_codes():
    M, G = _problem(2)
    # alpha above alpha_max: converged, nothing active
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=1.5)
    X, act, info, _ = H.solve_arrays(M, G, (a_s, a_t), (16, 4))
    assert info["status"] == ct.OK and not act.any() and not X.any()
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=0.05)
    # bad arguments: status TFX_BAD_ARG, empty result
    for kw in (dict(n_orient=3), dict(maxit=0), dict(tol=0.0), dict(tol=np.nan)):
        args = dict(n_orient=1, maxit=200, tol=1e-8) | kw
        X, act, info, _ = H.solve_arrays(M, G[:, :20], (a_s, a_t), (16, 4), **args)
        assert info["status"] == ct.BAD_ARG and not act.any(), kw
    for alphas in ((0.0, 0.0), (-1.0, 1.0), (np.inf, 1.0)):
        _, _, info, _ = H.solve_arrays(M, G, alphas, (16, 4))
        assert info["status"] == ct.BAD_ARG, alphas
    n_coefs = H.plan_info(M.shape[1], [16], [4])["n_coefs"]
    for bad in (
        dict(weights=(np.zeros(20), None)),
        dict(weights=(np.ones(20) * np.nan, None)),
        dict(warm=([25], np.ones((1, 2 * n_coefs)))),
    ):
        _, _, info, _ = H.solve_arrays(M, G, (a_s, a_t), (16, 4), **bad)
        assert info["status"] == ct.BAD_ARG, bad
    # non-finite data: TFX_NONFINITE, empty result
    for bad in ("M", "G"):
        M2, G2 = M.copy(), G.copy()
        (M2 if bad == "M" else G2)[3, 4] = np.nan
        X, act, info, _ = H.solve_arrays(M2, G2, (a_s, a_t), (16, 4))
        assert info["status"] == ct.NONFINITE and not X.any() and not act.any()
    # one epoch per inner solve and a tolerance below rounding: TFX_MAXIT (the
    # stall guard or the outer cap), the last iterate returned with its open gap
    M, G = _problem(2, n_pos=60, n_true=5)
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=0.02)
    X, act, info, _ = H.solve_arrays(M, G, (a_s, a_t), (16, 4), maxit=1, tol=1e-12)
    assert info["status"] == ct.MAXIT and info["gap"] >= 1e-12 and act.any()
    assert info["n_active"] == act.sum() and X[act].any() and not X[~act].any()
    # the outer cap (internal tuning): reached exactly
    frame = TFFrame(M.shape[1], 16, 4)
    out = _engine.solve(
        frame.plan, M, G, a_s, a_t, 1, maxit=1, tol=1e-12, max_outer=3, stall_outer=100
    )
    assert out["status"] == ct.MAXIT and out["n_outer"] == 3 and not out["stalled"]
    assert len(out["outer"]) == 4 and out["gap"] >= 1e-12


def test_plan_new():
    info = H.plan_info(37, [16, 8], [4, 2], False)
    assert info["is_double"] == 0 and info["n_dicts"] == 2
    assert info["n_step"] == [10, 19] and info["n_freq"] == [9, 5]
    assert info["n_coefs"] == 10 * 9 + 19 * 5
    assert info["work_size"] == info["max_frames"] == max(10 * 16, 19 * 8)  # plain DFT
    with pytest.raises(ValueError, match="n_times"):
        H.plan_info(0, [16], [4])
    with pytest.raises(ValueError, match="wsize"):
        H.plan_info(40, [15], [4])
    with pytest.raises(ValueError, match="tstep"):
        H.plan_info(40, [16], [3])
    with pytest.raises(ValueError, match="n_dicts"):
        H.plan_info(40, [], [])


# --------------------------------------------------------------------------
# a downstream extension that cimports the API
# --------------------------------------------------------------------------
DOWNSTREAM = textwrap.dedent('''
    # cython: language_level=3, boundscheck=False, wraparound=False
    import numpy as np
    from libc.string cimport memcpy
    from tfmxne.cython_tfmxne cimport (
        tfx_plan_t, tfx_info_t, tfx_params_t, tfx_result_t, tfx_plan_new, tfx_plan_free,
        tfx_stft_work_size, tfx_params_init, tfx_result_init, tfx_info_init,
        tfx_outer_at, tfx_result_free, d_stft, d_istft, s_stft, d_tf_mxne_solve,
        s_tf_mxne_solve, TFX_OK, TFX_BAD_ARG, TFX_MAX_DICTS,
    )

    OK = <int> TFX_OK
    BAD_ARG = <int> TFX_BAD_ARG


    cdef tfx_plan_t* _plan(int n_times, wsizes, tsteps, int is_double) except NULL:
        cdef int ws[TFX_MAX_DICTS]
        cdef int ts[TFX_MAX_DICTS]
        cdef int i
        for i in range(len(wsizes)):
            ws[i] = wsizes[i]
            ts[i] = tsteps[i]
        return tfx_plan_new(n_times, len(wsizes), ws, ts, is_double)


    def solve(double[:, ::1] M, double[:, ::1] G, double alpha_space,
              double alpha_time, wsizes, tsteps, int n_orient, int maxit, double tol):
        cdef int n_chan = M.shape[0], T = M.shape[1], n_src = G.shape[1], st, i
        cdef tfx_plan_t* plan = _plan(T, wsizes, tsteps, 1)
        cdef tfx_params_t prm
        cdef tfx_result_t res
        cdef tfx_info_t info
        tfx_params_init(&prm, alpha_space, alpha_time, n_orient)
        tfx_result_init(&res)
        tfx_info_init(&info)
        prm.maxit = maxit
        prm.tol = tol
        with nogil:
            st = d_tf_mxne_solve(plan, &prm, &M[0, 0], &G[0, 0], n_chan, n_src, NULL,
                                 NULL, 0, NULL, NULL, &res, &info)
        K2 = 2 * plan.n_coefs
        tfx_plan_free(plan)
        Z = np.empty((res.n_active * n_orient, K2))
        theta = np.empty((n_chan, T))
        cdef double[:, ::1] zv = Z
        cdef double[:, ::1] tv = theta
        if Z.size:
            memcpy(&zv[0, 0], res.Z, Z.size * sizeof(double))
        if st == TFX_OK or res.theta != NULL:
            memcpy(&tv[0, 0], res.theta, theta.size * sizeof(double))
        positions = np.array([res.positions[i] for i in range(res.n_active)], int)
        outer = [(tfx_outer_at(&res, i).gap, tfx_outer_at(&res, i).time)
                 for i in range(res.n_outer)]
        tfx_result_free(&res)
        return dict(status=st, positions=positions, Z=Z, theta=theta, gap=info.gap,
                    p_obj=info.p_obj, d_obj=info.d_obj, n_outer=info.n_outer,
                    outer=outer)


    def wrong_precision(float[:, ::1] M, float[:, ::1] G):
        """A float64 plan passed to float32 entry points."""
        cdef int T = M.shape[1], st1, st2
        cdef tfx_plan_t* plan = _plan(T, [8], [2], 1)
        cdef tfx_params_t prm
        cdef tfx_result_t res
        z = np.zeros((1, 2 * plan.n_coefs), np.float32)
        cdef float[:, ::1] zv = z
        tfx_params_init(&prm, 1.0, 1.0, 1)
        tfx_result_init(&res)
        with nogil:
            st1 = s_tf_mxne_solve(plan, &prm, &M[0, 0], &G[0, 0], M.shape[0],
                                  G.shape[1], NULL, NULL, 0, NULL, NULL, &res, NULL)
            st2 = s_stft(plan, &M[0, 0], 1, T, &zv[0, 0], 2 * plan.n_coefs, NULL)
        tfx_result_free(&res)
        tfx_plan_free(plan)
        return st1, st2


    def stft_roundtrip(double[:, ::1] x, int wsize, int tstep):
        cdef int n = x.shape[0], T = x.shape[1], st1, st2
        cdef tfx_plan_t* plan = _plan(T, [wsize], [tstep], 1)
        z = np.zeros((n, 2 * plan.n_coefs))
        y = np.zeros((n, T))
        work = np.zeros(tfx_stft_work_size(plan))
        cdef double[:, ::1] zv = z
        cdef double[:, ::1] yv = y
        cdef double[::1] wv = work
        with nogil:
            st1 = d_stft(plan, &x[0, 0], n, T, &zv[0, 0], 2 * plan.n_coefs, &wv[0])
            st2 = d_istft(plan, &zv[0, 0], n, 2 * plan.n_coefs, &yv[0, 0], T, NULL)
        shape = (plan.n_step[0], plan.n_freq[0])
        tfx_plan_free(plan)
        return z, y, shape, st1, st2
''')

SETUP = textwrap.dedent("""
    import sys
    from setuptools import Extension, setup
    from Cython.Build import cythonize

    include = sys.argv.pop(1)
    ext = Extension("tfx_downstream", ["tfx_downstream.pyx"],
                    extra_compile_args=["-O0", "-g0"] if sys.platform != "win32" else [])
    setup(name="tfx_downstream", script_args=["build_ext", "--inplace", "-q"],
          ext_modules=cythonize([ext], include_path=[include], quiet=True))
""")


@pytest.fixture(scope="module")
def downstream(tmp_path_factory):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    folder = tmp_path_factory.mktemp("downstream")
    (folder / "tfx_downstream.pyx").write_text(DOWNSTREAM)
    (folder / "setup.py").write_text(SETUP)
    # the directory that holds the installed package (src/ for an editable install)
    include = str(Path(tfmxne.__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "setup.py", include],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode:
        if "command 'gcc' failed" in proc.stderr or "No such file" in proc.stderr:
            pytest.skip(f"no working C compiler: {proc.stderr[-300:]}")
        raise AssertionError(f"downstream build failed:\n{proc.stdout}\n{proc.stderr}")
    sys.path.insert(0, str(folder))
    try:
        mod = importlib.import_module("tfx_downstream")
    finally:
        sys.path.remove(str(folder))
    return mod


@pytest.fixture(scope="module")
def real_problem(fwd_surf, evoked_full, noise_cov):
    """The sample subject's whitened MEG + EEG response (80-150 ms) and whitened
    free-orientation gain on every 4th position of the oct4 surface, scaled as
    MNE's sparse solvers do (no depth weighting)."""
    from mne.inverse_sparse.mxne_inverse import _prepare_gain

    fwd = subset_forward(fwd_surf, 4)
    evoked = evoked_full.copy().crop(0.08, 0.15)
    _, gain, gain_info, whitener, _, _ = _prepare_gain(
        fwd,
        evoked.info,
        noise_cov,
        pca=True,
        depth=None,
        loose=1.0,
        rank=None,
        weights=None,
        weights_min=None,
    )
    sel = [evoked.ch_names.index(name) for name in gain_info["ch_names"]]
    M = np.ascontiguousarray(whitener @ evoked.data[sel])
    return M, np.ascontiguousarray(gain)


@pytest.mark.slow  # (compiles an extension: about 5 s)
@pytest.mark.parametrize("wsize, tstep", [([16], [4]), ([16, 8], [4, 2])])
def test_downstream_solves_a_real_problem(downstream, real_problem, wsize, tstep):
    """A compiled extension that cimports the .pxd solves the sample subject's
    problem: its result is certified by independent code, and is the Python
    solver's."""
    M, G = real_problem
    n_orient = 3
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, frac=0.2, l1_ratio=0.05)
    tol = 1e-8 * float(np.sum(M * M))
    out = downstream.solve(M, G, a_s, a_t, wsize, tstep, n_orient, 2000, tol)
    assert out["status"] == downstream.OK == 0
    assert len(out["positions"]) > 0 and out["gap"] < tol
    # the outer records, read with the library's stride: gaps ending below tol,
    # times increasing
    assert len(out["outer"]) == out["n_outer"] >= 2 and out["outer"][-1][0] < tol
    times = [t for _, t in out["outer"]]
    assert times == sorted(times) and times[0] >= 0
    _certify(M, G, out, a_s, a_t, wsize, tstep, n_orient, tol)
    with threadpool_limits(1, user_api="blas"):
        Xp, actp, _ = tf_mixed_norm_solver(
            M, G, a_s, a_t, wsize, tstep, n_orient, maxit=2000, tol=tol, debias=False
        )
    cols = (out["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()
    assert np.array_equal(np.flatnonzero(actp), cols)


@pytest.mark.slow  # (compiles an extension: about 5 s)
def test_downstream_stft(downstream):
    x = np.random.default_rng(4).standard_normal((3, 37))
    z, y, (n_step, n_freq), st1, st2 = downstream.stft_roundtrip(x, 16, 4)
    assert st1 == st2 == downstream.OK
    zc = z.view(np.complex128).reshape(3, n_step, n_freq).transpose(0, 2, 1)
    np.testing.assert_allclose(zc, tfmxne.stft(x, 16, 4), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12)  # tight frame


@pytest.mark.slow  # (compiles an extension: about 5 s)
def test_downstream_wrong_precision(downstream):
    M, G = _problem(5)
    st = downstream.wrong_precision(M.astype(np.float32), G.astype(np.float32))
    assert st == (downstream.BAD_ARG, downstream.BAD_ARG) == (3, 3)


# --------------------------------------------------------------------------
# the ABI of the public structs
# --------------------------------------------------------------------------
#: Byte offsets of the public fields at TFX_ABI_VERSION 2 on 64-bit targets
#: (LP64 and LLP64 alike: no ``long`` in the public structs). Appending a field
#: adds an entry; an entry that changes is an ABI break (bump the version).
ABI_V2_LAYOUT = {
    "tfx_params_t": dict(
        struct_size=0,
        abi_version=8,
        n_orient=12,
        alpha_space=16,
        alpha_time=24,
        tol=32,
        maxit=40,
        dgap_freq=44,
        n_threads=48,
        debias=52,
        mixed=56,
        progress=64,
        progress_ctx=72,
        n_conditions=80,
    ),
    "tfx_info_t": dict(
        struct_size=0,
        abi_version=8,
        status=12,
        n_iter=16,
        n_outer=20,
        n_active=24,
        stalled=28,
        n_accel_try=32,
        n_accel=36,
        n_threads=40,
        debias_status=44,
        n_iter_start=48,
        gap=56,
        p_obj=64,
        d_obj=72,
        nu_max=80,
        seconds=88,
        n_restart=96,
    ),
    "tfx_outer_t": dict(
        n_active=0,
        n_ws=4,
        n_iter=8,
        gap=16,
        p_obj=24,
        d_obj=32,
        time=40,
        start=48,
        certify_seconds=56,
    ),
    "tfx_result_t": dict(
        struct_size=0,
        abi_version=8,
        n_active=12,
        positions=16,
        Z=24,
        X=32,
        debias=40,
        R=48,
        theta=56,
        obj=64,
        n_obj=72,
        n_outer=76,
        outer=80,
        outer_stride=88,
    ),
    "tfx_plan_t": dict(
        struct_size=0,
        abi_version=8,
        n_times=12,
        n_dicts=16,
        n_coefs=20,
        max_frames=24,
        is_double=28,
        wsize=32,
        tstep=96,
        n_step=160,
        n_freq=224,
        core=288,
    ),
    "constants": dict(TFX_ABI_VERSION=2, TFX_MAX_DICTS=16),
}


@pytest.mark.skipif(sys.maxsize < 2**32, reason="offsets stored for 64-bit targets")
def test_public_offsets_do_not_move():
    layout = ct._abi_layout()
    for struct, fields in ABI_V2_LAYOUT.items():
        got = {k: v for k, v in layout[struct].items() if k != "size"}
        # fields may be appended (new keys), never moved or removed
        assert {k: got.get(k) for k in fields} == fields, struct
        assert set(got) == set(fields), f"{struct}: store the appended fields here"
    assert ct.ABI_VERSION == ABI_V2_LAYOUT["constants"]["TFX_ABI_VERSION"]


def test_abi_mismatch_is_a_status_not_a_crash():
    """Structs of another ABI version or size are refused with TFX_BAD_ABI and left
    untouched; a caller compiled with the version-2 sizes is served."""
    M, G = _problem(3)
    a_s, a_t = _alphas(M, G, 1, 16, 4)
    probes = H.abi_probe(M, G, a_s, a_t)
    assert probes.pop("v2") == ct.OK
    for name, (st, untouched) in probes.items():
        assert st == ct.BAD_ABI == 5, name
        assert untouched, name
