# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Newton-refined dual points (``tfx_params_t.dual_refine``): the certificate
scores ``R + t d``, ``d`` a Newton step onto the active dual constraints, after
an exact dual norm over every position. Its gap must stay a true duality gap:
checked with independent NumPy code (``tests/_helpers.py``) and against a
tightly solved optimum."""

import numpy as np
import pytest
from _helpers import correlated_problem, dual_ref, eps_norms_ref, objectives_ref

from tfmxne import cython_tfmxne as ct
from tfmxne import solver as S
from tfmxne import tf_mixed_norm_solver
from tfmxne._stft import TFFrame


def _alphas(M, G, n_orient, wsize, tstep, frac, l1_ratio):
    from tfmxne import norm_epsilon_inf

    amax = norm_epsilon_inf(G, M, l1_ratio, n_orient, wsize, tstep)
    return frac * amax * (1 - l1_ratio), frac * amax * l1_ratio


@pytest.mark.parametrize(
    "seed, n_orient, l1_ratio", [(0, 3, 0.1), (1, 1, 0.1), (2, 3, 0.5), (3, 1, 0.0)]
)
def test_refined_certificate_is_a_true_gap(seed, n_orient, l1_ratio):
    """With the refined point on, the returned theta is dual feasible and its
    dual objective (independent NumPy code) certifies the gap below tol; the
    gap brackets a tightly solved optimum; the refinement certifies in fewer
    epochs than the rescaled / extrapolated residuals alone (a wrong Newton
    direction never wins and leaves the epochs unchanged)."""
    wsize, tstep = 16, 4
    M, G = correlated_problem(seed, n_orient)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.1, l1_ratio)
    scale = float(np.sum(M * M))
    tol = 1e-8 * scale
    runs = {}
    for flag in (0, 1):
        X, act, info, out = ct._solve_arrays(
            M, G, a_s, a_t, wsize, tstep, n_orient, 3000, tol, dual_refine=flag
        )
        assert info["status"] == ct.OK and 0 <= info["gap"] < tol
        frame = TFFrame(M.shape[1], wsize, tstep)
        active = np.zeros(G.shape[1], bool)
        active[(out["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()] = (
            True
        )
        Z = frame.to_mne(out["Z"]) if len(out["Z"]) else out["Z"]
        p_obj = objectives_ref(M, G, Z, active, a_s, a_t, wsize, tstep, n_orient)[0]
        d_obj, nu = dual_ref(M, G, out["theta"], a_s, a_t, wsize, tstep, n_orient)
        assert nu <= (a_s + a_t) * (1 + 1e-12)  # theta is dual feasible
        assert p_obj - d_obj < tol + 1e-12 * scale  # a true duality gap
        assert d_obj == pytest.approx(info["d_obj"], rel=1e-10)
        runs[flag] = (info, p_obj, d_obj)
    _, _, E = tf_mixed_norm_solver(
        M, G, a_s, a_t, wsize, tstep, n_orient, maxit=20000, tol=1e-13, debias=False
    )
    p_star = E[-1]
    for _info, p_obj, d_obj in runs.values():
        assert d_obj <= p_star + 1e-10 * abs(p_star)
        assert p_obj >= p_star - 1e-10 * abs(p_star)
    assert runs[1][0]["n_iter"] < runs[0][0]["n_iter"]


@pytest.mark.parametrize("n_orient", [1, 3])
def test_refined_certificate_weighted_python_solver(n_orient, monkeypatch):
    """The Python solver with ``DUAL_REFINE``, space and time weights (irTF-MxNE's
    problems): feasible theta for the weighted dual norm and a true gap."""
    wsize, tstep = 16, 4
    M, G = correlated_problem(7, n_orient)
    frame = TFFrame(M.shape[1], wsize, tstep)
    rng = np.random.default_rng(3)
    n_pos = G.shape[1] // n_orient
    w_space = rng.uniform(0.5, 2.0, n_pos)
    w_time = rng.uniform(0.5, 2.0, (n_pos, frame.n_coefs))
    w_time[rng.random(w_time.shape) < 0.1] = 0.0  # coefficients held at zero
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.1, 0.2)
    tol = 1e-8 * float(np.sum(M * M))
    monkeypatch.setattr(S, "DUAL_REFINE", True)
    r = S._tf_solve(
        M, G, a_s, a_t, frame, n_orient, 3000, tol, 10, w_space=w_space, w_time=w_time
    )
    assert r.converged and 0 <= r.gap < tol
    wt = frame.to_mne_weights(w_time)
    nu = eps_norms_ref(
        G, r.theta, a_t / (a_s + a_t), n_orient, wsize, tstep, w_space, wt
    ).max()
    assert nu <= (a_s + a_t) * (1 + 1e-12)
    d_obj = float(np.sum(M * r.theta)) - 0.5 * float(np.sum(r.theta**2))
    assert d_obj == pytest.approx(r.d_obj, rel=1e-10)
    active = np.zeros(G.shape[1], bool)
    active[(r.positions[:, None] * n_orient + np.arange(n_orient)).ravel()] = True
    Z = frame.to_mne(r.Z) if len(r.Z) else r.Z
    p_obj = objectives_ref(
        M, G, Z, active, a_s, a_t, wsize, tstep, n_orient, w_space, wt
    )[0]
    assert p_obj - d_obj < tol + 1e-12 * float(np.sum(M * M))


@pytest.mark.parametrize("n_orient", [1, 3])
def test_refined_certificate_float32_and_threads(n_orient):
    """float32 (certified in float64 up to the float32 rounding of the
    objectives) and two core threads (the refined point is certified by the
    threaded screening: same result as one thread up to rounding)."""
    wsize, tstep = 16, 4
    M, G = correlated_problem(4, n_orient)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.1, 0.1)
    scale = float(np.sum(M * M))
    eps32 = float(np.finfo(np.float32).eps)
    for dtype, tol, rounding in (
        (np.float32, 1e-5 * scale, 100 * eps32),
        (np.float64, 1e-8 * scale, 0.0),
    ):
        res = []
        for n_threads in (1, 2):
            X, act, info, out = ct._solve_arrays(
                M,
                G,
                a_s,
                a_t,
                wsize,
                tstep,
                n_orient,
                3000,
                tol,
                dtype=dtype,
                dual_refine=1,
                n_threads=n_threads,
            )
            assert info["status"] == ct.OK and 0 <= info["gap"] < tol
            frame = TFFrame(M.shape[1], wsize, tstep)
            active = np.zeros(G.shape[1], bool)
            active[
                (out["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()
            ] = True
            Z = frame.to_mne(out["Z"].astype(np.float64))
            p_obj = objectives_ref(M, G, Z, active, a_s, a_t, wsize, tstep, n_orient)[0]
            d_obj, nu = dual_ref(
                M, G, out["theta"].astype(np.float64), a_s, a_t, wsize, tstep, n_orient
            )
            assert nu <= (a_s + a_t) * (1 + 1e-12 + rounding)
            assert p_obj - d_obj < tol + (1e-12 + rounding) * scale
            res.append(out["positions"])
        np.testing.assert_array_equal(res[0], res[1])
