# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Joint solves of several conditions (one support shared by all), at the array
level: the core's segmented frame (conditions side by side in one row, each
framed on its own), through the Python engine and through the C API.

The joint problem, for conditions c with data M_c and coefficients Z_c::

    min 1/2 sum_c ||M_c - G PhiT(Z_c)||^2
        + alpha_space sum_j sqrt(sum_c ||Z_{j,c}||^2) + alpha_time sum_c ||Z_c||_1

is checked against an independent NumPy reference of its objective and duality
gap (MNE's STFT, per condition).
"""

import numpy as np
import pytest
from _helpers import correlated_problem, eps_norm_ref, mne_phi, mne_phiT, multiplicity
from threadpoolctl import threadpool_limits

from tfmxne import solver as S
from tfmxne._core import _engine
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H


def _conditions(seed, n_orient, n_cond, wsize, tstep, n_pos=30, n_times=40):
    """A gain and n_cond data sets with sources at the same positions and
    different time courses."""
    _, G = correlated_problem(seed, n_orient, n_pos=n_pos, n_times=n_times)
    rng = np.random.default_rng(seed + 100)
    pos = rng.choice(n_pos, 3, replace=False)
    t = np.arange(n_times)
    Ms = []
    for c in range(n_cond):
        X = np.zeros((n_pos * n_orient, n_times))
        for k, j in enumerate(pos):
            X[j * n_orient + (c % n_orient)] = np.sin(
                2 * np.pi * t / (5 + 2 * k + c)
            ) * np.hanning(n_times)
        Ms.append(G @ X + 0.1 * rng.standard_normal((G.shape[0], n_times)))
    return Ms, G


def joint_ref(Ms, G, Z, positions, a_s, a_t, wsize, tstep, n_orient):
    """Independent (p_obj, d_obj) of the joint problem at ``Z``: rows of the
    active positions, each the conditions' MNE-layout coefficients side by side;
    the dual point is the residual rescaled to feasibility (the epsilon norm of
    each position over every condition's coefficients)."""
    n_cond, T = len(Ms), Ms[0].shape[1]
    c1 = multiplicity(wsize, tstep, T)
    K = len(c1)
    cols = (np.asarray(positions)[:, None] * n_orient + np.arange(n_orient)).ravel()
    Rs = []
    for c in range(n_cond):
        Zc = Z[:, c * K : (c + 1) * K]
        X = mne_phiT(Zc, wsize, tstep, T) if len(Z) else np.zeros((0, T))
        Rs.append(Ms[c] - G[:, cols] @ X)
    R, M = np.hstack(Rs), np.hstack(Ms)
    c = np.tile(c1, n_cond)
    mag2 = (np.abs(Z) ** 2).reshape(len(positions), n_orient, -1).sum(axis=1)
    p_obj = (0.5 * np.sum(R**2) + a_s * np.sum(np.sqrt(mag2 @ c))
             + a_t * np.sum(np.sqrt(mag2) * c))  # fmt: skip
    n_pos = G.shape[1] // n_orient
    Y = np.hstack([mne_phi(G.T @ Rc, wsize, tstep) for Rc in Rs])
    mag = np.sqrt((np.abs(Y) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1))
    alpha = a_s + a_t
    nu = max(eps_norm_ref(mag[j], c, a_t / alpha) for j in range(n_pos))
    s = min(1.0, alpha / nu)
    d_obj = s * np.sum(R * M) - 0.5 * s**2 * np.sum(R**2)
    return float(p_obj), float(d_obj)


def _solve(Ms, G, a_s, a_t, wsize, tstep, n_orient, tol, **kw):
    frame = TFFrame(Ms[0].shape[1], wsize, tstep, n_conditions=len(Ms))
    spec = S._Spec(a_s, a_t, frame, n_orient, 5000, tol, 10)
    return frame, S._tf_solve(np.hstack(Ms), G, spec, **kw)


def _alphas(Ms, G, n_orient, wsize, tstep, frac, l1_ratio):
    """alpha_space, alpha_time at ``frac`` of the joint problem's alpha_max."""
    frame = TFFrame(Ms[0].shape[1], wsize, tstep, n_conditions=len(Ms))
    GtM = np.ascontiguousarray(G.T @ np.hstack(Ms))
    amax = _engine.dual_norm_screened(frame.plan, GtM, n_orient, l1_ratio)[0]
    return frac * amax * (1 - l1_ratio), frac * amax * l1_ratio


def test_one_condition_is_the_ordinary_solve():
    """A segmented frame of one condition is the ordinary frame: same bits."""
    M, G = correlated_problem(4, 3)
    a_s, a_t = _alphas([M], G, 3, [16, 8], [4, 2], 0.1, 0.1)
    frame = TFFrame(M.shape[1], [16, 8], [4, 2])
    one = S._tf_solve(M, G, S._Spec(a_s, a_t, frame, 3, 5000, 1e-10, 10))
    _, joint = _solve([M], G, a_s, a_t, [16, 8], [4, 2], 3, 1e-10)
    for name in ("positions", "Z", "X", "R", "theta"):
        assert np.array_equal(getattr(one, name), getattr(joint, name)), name
    assert one.gap == joint.gap and one.E == joint.E


@pytest.mark.parametrize("n_orient, wsize, tstep", [(1, 16, 4), (3, [16, 8], [4, 2])])
def test_two_identical_conditions(n_orient, wsize, tstep):
    """Two identical conditions: the joint optimum is Z_1 = Z_2 = W, W the single
    problem's with alpha_space / sqrt(2) and the same alpha_time, and the joint
    gap at (W, W) is twice the single gap at W (independent reference)."""
    M, G = correlated_problem(6, n_orient)
    a_s, a_t = _alphas([M, M], G, n_orient, wsize, tstep, 0.15, 0.2)
    tol = 1e-10 * float(np.sum(M * M))
    frame1 = TFFrame(M.shape[1], wsize, tstep)
    single = S._tf_solve(
        M, G, S._Spec(a_s / np.sqrt(2), a_t, frame1, n_orient, 5000, tol / 2, 10)
    )
    frame, joint = _solve([M, M], G, a_s, a_t, wsize, tstep, n_orient, tol)
    K2 = 2 * frame1.n_coefs
    # the conditions are updated by the same operations: equal to the bit
    assert np.array_equal(joint.Z[:, :K2], joint.Z[:, K2:])
    np.testing.assert_array_equal(joint.positions, single.positions)
    # both certified: P_joint(Z) - P*_joint < tol and P_joint(W, W) = 2 P_single(W)
    W = frame1.to_mne(single.Z)
    pj, dj = joint_ref([M, M], G, np.hstack([W, W]), single.positions, a_s, a_t,
                       wsize, tstep, n_orient)  # fmt: skip
    ps, ds = joint_ref([M], G, W, single.positions, a_s / np.sqrt(2), a_t, wsize,
                       tstep, n_orient)  # fmt: skip
    assert pj == pytest.approx(2 * ps, rel=1e-12)
    assert pj - dj == pytest.approx(2 * (ps - ds), rel=1e-6, abs=1e-9 * pj)
    # the strongly convex fit: ||G (X - X*)||^2 <= 2 gap for each answer
    bound = np.sqrt(2 * joint.gap) + np.sqrt(2 * 2 * single.gap)
    cols = (single.positions[:, None] * n_orient + np.arange(n_orient)).ravel()
    fit = np.linalg.norm(G[:, cols] @ (joint.X[:, : M.shape[1]] - single.X))
    assert fit <= bound + 1e-12 * np.linalg.norm(M)


@pytest.mark.parametrize("n_orient, wsize, tstep", [(1, 16, 4), (3, [16, 8], [4, 2])])
@pytest.mark.parametrize("n_cond", [2, 3])
def test_joint_answer_is_certified(n_orient, wsize, tstep, n_cond):
    """Different conditions: the answer's gap, by the independent reference, is
    below tol; the support is one (every condition's rows of a position are
    zero or not together); the core's objectives are the reference's."""
    Ms, G = _conditions(2, n_orient, n_cond, wsize, tstep)
    a_s, a_t = _alphas(Ms, G, n_orient, wsize, tstep, 0.2, 0.1)
    tol = 1e-8 * sum(float(np.sum(M * M)) for M in Ms)
    with threadpool_limits(1, user_api="blas"):  # (one thread: the C call's bits)
        frame, res = _solve(Ms, G, a_s, a_t, wsize, tstep, n_orient, tol)
    assert res.converged and len(res.positions) > 0
    p_ref, d_ref = joint_ref(Ms, G, frame.to_mne(res.Z), res.positions, a_s, a_t,
                             wsize, tstep, n_orient)  # fmt: skip
    assert p_ref == pytest.approx(res.p_obj, rel=1e-12)
    assert p_ref - d_ref < tol + 1e-12 * abs(p_ref)
    assert p_ref - d_ref >= -1e-12 * abs(p_ref)  # (weak duality)
    # the C API's joint solve (a one-condition plan, n_conditions) is the same
    with threadpool_limits(1, user_api="blas"):
        X, act, info, out = H.solve_arrays(
            np.hstack(Ms), G, (a_s, a_t), (wsize, tstep), n_orient=n_orient,
            maxit=5000, tol=tol, n_conditions=n_cond, n_threads=1,
        )  # fmt: skip
    assert info["status"] == 0
    np.testing.assert_array_equal(out["positions"], res.positions)
    assert np.array_equal(out["Z"], res.Z)


def test_joint_debiasing_per_condition():
    """Debiasing: one weight per position and condition, each the exact
    bound-constrained least squares of its condition (NumPy reference)."""
    from _helpers import debias_ref

    Ms, G = _conditions(5, 1, 2, 16, 4)
    a_s, a_t = _alphas(Ms, G, 1, 16, 4, 0.3, 0.1)
    T = Ms[0].shape[1]
    X, act, info, out = H.solve_arrays(
        np.hstack(Ms), G, (a_s, a_t), (16, 4), maxit=5000, tol=1e-10,
        n_conditions=2, debias=1,
    )  # fmt: skip
    _, _, _, plain = H.solve_arrays(
        np.hstack(Ms), G, (a_s, a_t), (16, 4), maxit=5000, tol=1e-10,
        n_conditions=2,
    )  # fmt: skip
    n_act = len(out["positions"])
    assert info["debias_status"] == 0 and out["debias"].shape == (n_act * 2,)
    d = out["debias"].reshape(-1, 2)
    assert not np.allclose(d[:, 0], d[:, 1])  # different conditions, different weights
    for c in range(2):
        Xc = plain["X"][:, c * T : (c + 1) * T]
        ref = debias_ref(Ms[c], G[:, out["positions"]], Xc, 1)
        np.testing.assert_allclose(d[:, c], ref, rtol=1e-6)
        np.testing.assert_allclose(out["X"][:, c * T : (c + 1) * T], d[:, c:c + 1] * Xc,
                                   rtol=1e-12)  # fmt: skip


def test_joint_conditions_of_a_segmented_plan_are_refused_by_the_c_api():
    """n_conditions on the C API takes a one-condition plan; nonsense counts are
    refused (TFX_BAD_ARG), not crashes."""
    Ms, G = _conditions(1, 1, 2, 16, 4)
    for bad in (0, -2):
        _, _, info, _ = H.solve_arrays(np.hstack(Ms), G, (1.0, 0.1), (16, 4),
                                       n_conditions=bad)  # fmt: skip
        assert info["status"] == 3, bad


def test_joint_frame_layouts():
    """The joint frame: each condition framed on its own (the ordinary frame's
    coefficients side by side), tight, MNE's layout per condition."""
    f1 = TFFrame(37, [16, 8], [4, 2])
    f3 = TFFrame(37, [16, 8], [4, 2], n_conditions=3)
    x = np.random.default_rng(0).standard_normal((4, 3 * 37))
    z = f3.phi(x)
    parts = [f1.phi(x[:, c * 37 : (c + 1) * 37]) for c in range(3)]
    assert np.array_equal(z, np.hstack(parts))
    np.testing.assert_allclose(f3.phiT(z), x, atol=1e-12)
    assert np.array_equal(f3.to_mne(z), np.hstack([f1.to_mne(p) for p in parts]))
    np.testing.assert_array_equal(f3.from_mne(f3.to_mne(z)), z)
    assert f3.n_coefs == 3 * f1.n_coefs and f3.plan.n_times == 3 * 37
