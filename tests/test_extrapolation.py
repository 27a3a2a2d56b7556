# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Dual extrapolation: the inner solver scores ``R + t (R - R_prev)`` beside
``R``; checked against an independent NumPy dual objective, and the solver's
certificate stays a certificate."""

import numpy as np
import pytest
from _helpers import eps_norms_ref, objectives_ref, random_problem
from numpy.testing import assert_allclose, assert_array_equal

from tfmxne import solver as S
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H

WSIZE, TSTEP = 16, 4


def _state(M, G, n_orient, frame):
    n_pos = G.shape[1] // n_orient
    GT = np.ascontiguousarray(G.T)
    T, K2 = M.shape[1], 2 * frame.n_coefs
    return dict(
        GT=GT,
        M=np.ascontiguousarray(M),
        R=np.ascontiguousarray(M.copy()),
        X=np.zeros((n_pos * n_orient, T)),
        Z=np.zeros((n_pos * n_orient, K2)),
        active=np.zeros(n_pos, np.uint8),
        lc=np.ascontiguousarray(S._lipschitz(G, n_orient)),
        gram=H.block_grams(GT, n_orient)[0],
        work=np.empty(H.work_size(frame.plan, n_orient)),
    )


def _run(frame, st, n_orient, a_s, a_t, n_epochs, extrap):
    """``n_epochs`` epochs, tol 0: exactly one gap evaluation, at the end.
    ``extrap``: the dual extrapolation's residual ``'rprev'`` and ``'state'``,
    carried from call to call (updated here)."""
    out = H.bcd(
        frame.plan,
        dict(st, rprev=extrap["rprev"]),
        alpha_space=a_s,
        alpha_time=a_t,
        n_orient=n_orient,
        maxit=n_epochs,
        tol=0.0,
        dgap_freq=n_epochs,
        extrap_state=extrap["state"],
    )
    extrap["state"], extrap["t_best"] = out["extrap_state"], out["t_best"]
    return out


def _dual_ref(M, G, theta, alpha, rho, n_orient):
    """D(s theta), s = min(1, alpha / dual norm), by the NumPy bisection."""
    nu = eps_norms_ref(G, theta, rho, n_orient, WSIZE, TSTEP).max()
    s = 1.0 if nu <= alpha else alpha / nu
    th = s * theta
    return float(np.vdot(th, M) - 0.5 * np.vdot(th, th))


@pytest.mark.parametrize("n_orient", [1, 3])
def test_engine_extrapolated_candidates(n_orient):
    M, G = random_problem(3, n_sensors=20, n_pos=10, n_orient=n_orient, n_times=40)
    frame = TFFrame(M.shape[1], WSIZE, TSTEP)
    alpha = 0.2 * np.abs(G.T @ M).max()
    a_s, a_t = 0.9 * alpha, 0.1 * alpha
    rho = a_t / alpha
    st = _state(M, G, n_orient, frame)
    rprev = np.empty_like(st["R"])
    extrap = dict(rprev=rprev, state=0)
    # first evaluation: no previous residual; R is kept for the next one
    _run(frame, st, n_orient, a_s, a_t, 2, extrap)
    assert extrap["state"] == 1 and extrap["t_best"] == 0
    assert_array_equal(rprev, st["R"])
    R1 = st["R"].copy()
    # second evaluation: candidates R + t (R - R1), t = 1, 2, 4, 8
    out = _run(frame, st, n_orient, a_s, a_t, 3, extrap)
    R2 = st["R"]
    assert extrap["state"] == 2  # R - R_prev left for the caller
    assert_allclose(rprev, R2 - R1, rtol=0, atol=1e-15 * np.abs(R2).max())
    cands = {0.0: _dual_ref(M, G, R2, alpha, rho, n_orient)}
    for t in (1.0, 2.0, 4.0, 8.0):
        cands[t] = _dual_ref(M, G, R2 + t * (R2 - R1), alpha, rho, n_orient)
    t_best = max(cands, key=cands.get)
    assert out["d_obj"] == pytest.approx(cands[t_best], rel=1e-9, abs=1e-12)
    assert extrap["t_best"] == t_best
    # the reported gap is P - that dual value, P by the NumPy reference
    act = np.repeat(st["active"].astype(bool), n_orient)
    p_ref = objectives_ref(
        M, G, frame.to_mne(st["Z"][act]), act, a_s, a_t, WSIZE, TSTEP, n_orient
    )[0]
    assert out["p_obj"] == pytest.approx(p_ref, rel=1e-10)
    assert out["gap"] == pytest.approx(p_ref - cands[t_best], rel=1e-7, abs=1e-10)
    # a next call restarts from the current residual (not from R1)
    R3_prev = R2.copy()
    _run(frame, st, n_orient, a_s, a_t, 2, extrap)
    assert extrap["state"] == 2
    assert_allclose(rprev, st["R"] - R3_prev, rtol=0, atol=1e-15 * np.abs(R2).max())


def test_engine_bad_arrays():
    M, G = random_problem(1)
    frame = TFFrame(M.shape[1], WSIZE, TSTEP)
    st = _state(M, G, 1, frame)
    opts = dict(
        alpha_space=0.1, alpha_time=0.1, n_orient=1, maxit=5, tol=0.0, dgap_freq=5
    )
    with pytest.raises(ValueError, match="rprev must be"):
        H.bcd(frame.plan, dict(st, rprev=np.empty((2, 2))), **opts)
    with pytest.raises(ValueError, match="snap too small"):
        H.bcd(frame.plan, st, anderson_k=5, cap_rows=4, **opts)


@pytest.mark.parametrize("n_orient", [1, 3])
def test_solver_certificate_with_extrapolation(n_orient, monkeypatch):
    """Extrapolated or not, the returned theta is dual feasible and certifies
    the gap (independent NumPy dual norm), and both settings agree."""
    M, G = random_problem(
        5, n_sensors=24, n_pos=30, n_orient=n_orient, n_times=48, n_true=4, noise=0.5
    )
    frame = TFFrame(M.shape[1], WSIZE, TSTEP)
    alpha = 0.08 * np.abs(G.T @ M).max()
    a_s, a_t = 0.95 * alpha, 0.05 * alpha
    tol = 1e-7 * float(np.sum(M * M))
    res = {}
    for flag in (False, True):
        monkeypatch.setattr(S, "DUAL_EXTRAP", flag)
        r = S._tf_solve(M, G, S._Spec(a_s, a_t, frame, n_orient, 3000, tol, 10))
        assert r.converged and r.gap < tol
        nu = eps_norms_ref(G, r.theta, a_t / alpha, n_orient, WSIZE, TSTEP).max()
        assert nu <= alpha * (1 + 1e-9)
        d_ref = float(np.vdot(r.theta, M) - 0.5 * np.vdot(r.theta, r.theta))
        assert r.d_obj == pytest.approx(d_ref, rel=1e-10, abs=1e-12)
        assert r.p_obj - d_ref < tol
        res[flag] = r
    assert_array_equal(res[False].positions, res[True].positions)
    assert abs(res[False].p_obj - res[True].p_obj) <= max(res[False].gap, res[True].gap)
