# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The public Cython API (``cimport tfmxne.cython_tfmxne``).

A small downstream extension is written to a temporary folder, cythonized with
the folder that holds the installed ``tfmxne`` package on the include path,
compiled, imported, and checked against the Python API. Faster checks of the same
C entry points go through the private hook ``cython_tfmxne._solve_arrays``.
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

import tfmxne
from tfmxne import cython_tfmxne as ct
from tfmxne import tf_mixed_norm_solver


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
@pytest.mark.parametrize("n_orient, wsize, tstep", [
    (1, 16, 4), (3, 16, 4), (2, [16, 8], [4, 2]),
])
def test_c_solver_matches_python(n_orient, wsize, tstep):
    M, G = _problem(0, n_orient=n_orient)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep)
    X, act, info = ct._solve_arrays(M, G, a_s, a_t, wsize, tstep, n_orient, 500, 1e-10)
    Xp, actp, _, gap = tf_mixed_norm_solver(
        M, G, a_s, a_t, wsize, tstep, n_orient, maxit=500, tol=1e-10, debias=False,
        return_gap=True)
    assert info["status"] == ct.OK
    assert info["gap"] < 1e-10 and gap < 1e-10
    assert info["n_active"] * n_orient == act.sum() > 0
    np.testing.assert_array_equal(act, actp)
    np.testing.assert_allclose(X[act], Xp, rtol=1e-4, atol=1e-7 * np.abs(Xp).max())
    assert not X[~act].any()


def _correlated_problem(seed, n_orient, n_chan=24, n_pos=40, n_times=48):
    """Neighbouring columns highly correlated (like grid positions): slow BCD
    tails, where the C solver certifies extrapolated dual points."""
    rng = np.random.default_rng(seed)
    G = np.cumsum(rng.standard_normal((n_chan, n_pos * n_orient)), axis=1)
    G /= np.linalg.norm(G, axis=0)
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, 3, replace=False)):
        X[j * n_orient] = np.sin(2 * np.pi * t / (6 + 3 * k)) * np.hanning(n_times)
    return G @ X + 0.3 * rng.standard_normal((n_chan, n_times)), G


@pytest.mark.parametrize("seed, n_orient", [(0, 3), (1, 1), (2, 3)])
def test_c_solver_certificate(seed, n_orient):
    """The C solver's dual value (plain or extrapolated residual) is a lower bound
    of the optimum (a tightly solved Python reference) and certifies its gap."""
    M, G = _correlated_problem(seed, n_orient)
    a_s, a_t = _alphas(M, G, n_orient, 16, 4, frac=0.1)
    tol = 1e-7 * float(np.sum(M * M))
    X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, n_orient, 3000, tol)
    assert info["status"] == ct.OK and 0 <= info["gap"] < tol
    assert info["gap"] == pytest.approx(info["p_obj"] - info["d_obj"], abs=1e-12)
    _, _, E = tf_mixed_norm_solver(M, G, a_s, a_t, 16, 4, n_orient, maxit=20000,
                                   tol=1e-13, debias=False)
    p_star = E[-1]
    assert info["d_obj"] <= p_star + 1e-10 * abs(p_star)
    assert info["p_obj"] >= p_star - 1e-10 * abs(p_star)


def test_c_solver_float32():
    M, G = _problem(1, n_orient=3)
    a_s, a_t = _alphas(M, G, 3, 16, 4)
    X64, act64, _ = ct._solve_arrays(M, G, a_s, a_t, 16, 4, 3, 500, 1e-10)
    X32, act32, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, 3, 500, 1e-3,
                                        dtype=np.float32)
    assert X32.dtype == np.float32
    assert info["status"] == ct.OK
    np.testing.assert_array_equal(act32, act64)
    assert np.abs(X32 - X64).max() <= 1e-3 * np.abs(X64).max()


def test_c_solver_status_codes():
    M, G = _problem(2)
    # alpha above alpha_max: converged, nothing active
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=1.5)
    X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4)
    assert info["status"] == ct.OK and not act.any() and not X.any()
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=0.05)
    # bad arguments: outputs untouched (zeros from the hook), status TFX_BAD_ARG
    for kw in (dict(n_orient=3), dict(maxit=0), dict(tol=0.0), dict(tol=np.nan)):
        args = dict(n_orient=1, maxit=200, tol=1e-8) | kw
        _, _, info = ct._solve_arrays(M, G[:, :20], a_s, a_t, 16, 4, **args)
        assert info["status"] == ct.BAD_ARG, kw
    for alphas in ((0.0, 0.0), (-1.0, 1.0), (np.inf, 1.0)):
        _, _, info = ct._solve_arrays(M, G, *alphas, 16, 4)
        assert info["status"] == ct.BAD_ARG, alphas
    # non-finite data: TFX_NONFINITE, zero output
    for bad in ("M", "G"):
        M2, G2 = M.copy(), G.copy()
        (M2 if bad == "M" else G2)[3, 4] = np.nan
        X, act, info = ct._solve_arrays(M2, G2, a_s, a_t, 16, 4)
        assert info["status"] == ct.NONFINITE and not X.any() and not act.any()
    # iteration cap: TFX_MAXIT, last iterate returned with its (open) gap
    # (100 outer iterations of one epoch each cannot reach a tiny gap here)
    M, G = _problem(2, n_pos=60, n_true=5)
    a_s, a_t = _alphas(M, G, 1, 16, 4, frac=0.02)
    X, act, info = ct._solve_arrays(M, G, a_s, a_t, 16, 4, maxit=1, tol=1e-12)
    assert info["status"] == ct.MAXIT and info["n_outer"] == 100
    assert info["gap"] >= 1e-12 and act.any()
    assert info["n_active"] == act.sum() and X[act].any() and not X[~act].any()


def test_plan_new():
    info = ct._plan_info(37, [16, 8], [4, 2], False)
    assert info["is_double"] == 0 and info["n_dicts"] == 2
    assert info["n_step"] == [10, 19] and info["n_freq"] == [9, 5]
    assert info["n_coefs"] == 10 * 9 + 19 * 5
    assert info["work_size"] == info["max_frames"] == max(10 * 16, 19 * 8)  # plain DFT
    with pytest.raises(ValueError, match="n_times"):
        ct._plan_info(0, [16], [4])
    with pytest.raises(ValueError, match="wsize"):
        ct._plan_info(40, [15], [4])
    with pytest.raises(ValueError, match="tstep"):
        ct._plan_info(40, [16], [3])
    with pytest.raises(ValueError, match="n_dicts"):
        ct._plan_info(40, [], [])


# --------------------------------------------------------------------------
# a downstream extension that cimports the API
# --------------------------------------------------------------------------
DOWNSTREAM = textwrap.dedent('''
    # cython: language_level=3, boundscheck=False, wraparound=False
    import numpy as np
    from tfmxne.cython_tfmxne cimport (
        tfx_plan_t, tfx_info_t, tfx_plan_new, tfx_plan_free, tfx_stft_work_size,
        d_stft, d_istft, s_stft, d_tf_mxne_solve, s_tf_mxne_solve, TFX_OK, TFX_BAD_ARG,
    )

    OK = <int> TFX_OK
    BAD_ARG = <int> TFX_BAD_ARG


    cdef tfx_plan_t* _plan(int n_times, wsizes, tsteps, int is_double) except NULL:
        cdef int ws[16]
        cdef int ts[16]
        cdef int i
        for i in range(len(wsizes)):
            ws[i] = wsizes[i]
            ts[i] = tsteps[i]
        return tfx_plan_new(n_times, len(wsizes), ws, ts, is_double)


    def solve(double[:, ::1] M, double[:, ::1] G, double alpha_space,
              double alpha_time, wsizes, tsteps, int n_orient, int maxit, double tol):
        cdef int n_chan = M.shape[0], T = M.shape[1], n_src = G.shape[1], st
        cdef tfx_plan_t* plan = _plan(T, wsizes, tsteps, 1)
        X = np.full((n_src, T), np.nan)
        act = np.zeros(n_src, np.uint8)
        cdef double[:, ::1] Xv = X
        cdef unsigned char[::1] av = act
        cdef tfx_info_t info
        with nogil:
            st = d_tf_mxne_solve(plan, &M[0, 0], &G[0, 0], n_chan, n_src, n_orient,
                                 alpha_space, alpha_time, maxit, tol, &Xv[0, 0],
                                 &av[0], &info)
        tfx_plan_free(plan)
        return X, act.astype(bool), st, info.gap, info.n_active


    def wrong_precision(float[:, ::1] M, float[:, ::1] G):
        """A float64 plan passed to float32 entry points."""
        cdef int T = M.shape[1], st1, st2
        cdef tfx_plan_t* plan = _plan(T, [8], [2], 1)
        X = np.zeros((G.shape[1], T), np.float32)
        z = np.zeros((1, 2 * plan.n_coefs), np.float32)
        cdef float[:, ::1] Xv = X
        cdef float[:, ::1] zv = z
        with nogil:
            st1 = s_tf_mxne_solve(plan, &M[0, 0], &G[0, 0], M.shape[0], G.shape[1],
                                  1, 1.0, 1.0, 10, 1e-6, &Xv[0, 0], NULL, NULL)
            st2 = s_stft(plan, &M[0, 0], 1, T, &zv[0, 0], 2 * plan.n_coefs, NULL)
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

SETUP = textwrap.dedent('''
    import sys
    from setuptools import Extension, setup
    from Cython.Build import cythonize

    include = sys.argv.pop(1)
    ext = Extension("tfx_downstream", ["tfx_downstream.pyx"],
                    extra_compile_args=["-O0", "-g0"] if sys.platform != "win32" else [])
    setup(name="tfx_downstream", script_args=["build_ext", "--inplace", "-q"],
          ext_modules=cythonize([ext], include_path=[include], quiet=True))
''')


@pytest.fixture(scope="module")
def downstream(tmp_path_factory):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    folder = tmp_path_factory.mktemp("downstream")
    (folder / "tfx_downstream.pyx").write_text(DOWNSTREAM)
    (folder / "setup.py").write_text(SETUP)
    # the directory that holds the installed package (src/ for an editable install)
    include = str(Path(tfmxne.__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, "setup.py", include], cwd=folder,
                          capture_output=True, text=True, timeout=300,
                          env=os.environ | {"PYTHONWARNINGS": "ignore"})
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


@pytest.mark.parametrize("n_orient, wsize, tstep", [(1, [16], [4]), (3, [16, 8], [4, 2])])
def test_downstream_solve_matches_python(downstream, n_orient, wsize, tstep):
    M, G = _problem(3, n_chan=14, n_pos=15, n_times=36, n_orient=n_orient)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, frac=0.25)
    X, act, st, gap, n_act = downstream.solve(M, G, a_s, a_t, wsize, tstep, n_orient,
                                             500, 1e-10)
    Xp, actp, _ = tf_mixed_norm_solver(M, G, a_s, a_t, wsize, tstep, n_orient,
                                       maxit=500, tol=1e-10, debias=False)
    assert st == downstream.OK == 0
    assert gap < 1e-10 and n_act * n_orient == act.sum() > 0
    np.testing.assert_array_equal(act, actp)
    np.testing.assert_allclose(X[act], Xp, rtol=1e-4, atol=1e-7 * np.abs(Xp).max())
    assert not X[~act].any()  # zero rows written for inactive sources


def test_downstream_stft(downstream):
    x = np.random.default_rng(4).standard_normal((3, 37))
    z, y, (n_step, n_freq), st1, st2 = downstream.stft_roundtrip(x, 16, 4)
    assert st1 == st2 == downstream.OK
    zc = z.view(np.complex128).reshape(3, n_step, n_freq).transpose(0, 2, 1)
    np.testing.assert_allclose(zc, tfmxne.stft(x, 16, 4), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12)  # tight frame


def test_downstream_wrong_precision(downstream):
    M, G = _problem(5)
    st = downstream.wrong_precision(M.astype(np.float32), G.astype(np.float32))
    assert st == (downstream.BAD_ARG, downstream.BAD_ARG) == (3, 3)
