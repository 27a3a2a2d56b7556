# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The compiled L21 + L1 proximal operator against an independent NumPy one."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from tfmxne._core import _engine
from tfmxne._testing import _hooks as H

# (n_times, wsizes, tsteps): coefficient counts below, at and well above the
# engine's chunk of 256 coefficients, one and two dictionaries
PLANS = [
    (24, (16,), (4,)),
    (211, (64,), (4,)),
    (80, (16, 32), (4, 8)),
    (128, (64,), (16,)),
]


def _prox_ref(plan, Y, n_orient, thr_t, thr_s, w_time=None):
    """Soft-threshold each TF coefficient (its magnitude across orientations),
    then shrink each position's group (l2 with conjugate multiplicity)."""
    n_pos = Y.shape[0] // n_orient
    mult = np.asarray(plan.multiplicity, dtype=np.float64)
    Yc = Y.astype(np.float64).reshape(n_pos, n_orient, -1, 2)
    mag = np.sqrt((Yc**2).sum(axis=(1, 3)))  # (n_pos, n_coefs)
    t = thr_t if w_time is None else thr_t * np.asarray(w_time, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sh = np.where(mag > t, 1.0 - t / mag, 0.0)
    if w_time is not None:
        sh = np.where(np.asarray(w_time) == 0, 0.0, sh)
    out = Yc * sh[:, None, :, None]
    nrm = np.sqrt((mag**2 * sh**2 * mult).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(nrm > thr_s, 1.0 - thr_s / nrm, 0.0)
    out *= g[:, None, None, None]
    return out.reshape(Y.shape), nrm > thr_s


@pytest.mark.parametrize("n_times, wsizes, tsteps", PLANS)
@pytest.mark.parametrize("n_orient", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("thr_t", [0.0, 0.7])
def test_prox_matches_numpy(n_times, wsizes, tsteps, n_orient, weighted, thr_t):
    rng = np.random.RandomState(n_times + 7 * n_orient + int(weighted))
    plan = _engine.TFPlan(n_times, wsizes, tsteps)
    n_pos, K = 9, plan.n_coefs
    Y = rng.randn(n_pos * n_orient, 2 * K)
    Y[:, 4:40] = 0.0  # exact zeros (0 / 0 must not leak)
    Y[n_orient : 2 * n_orient] = 0.0  # an all-zero position
    Y[2 * n_orient : 3 * n_orient] *= 1e-3  # a position the group shrink removes
    w_time = None
    if weighted:
        w_time = rng.uniform(0.2, 3.0, (n_pos, K))
        w_time[:, ::5] = 0.0  # zero weight: coefficient held at zero
    # group threshold between the small and the regular positions
    thr_s = 0.3 * np.sqrt(2 * K * n_orient)
    want, want_nz = _prox_ref(plan, Y, n_orient, thr_t, thr_s, w_time)
    got = Y.copy()
    nz = H.prox(plan, got, n_orient, thr_t, thr_s, w_time)
    assert np.isfinite(got).all()
    assert_array_equal(nz, want_nz)
    assert not nz[1] and not nz[2] and nz[0]
    assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # float32 buffers: same operator (on the rounded inputs) to single precision
    got32 = Y.astype(np.float32)
    w32 = None if w_time is None else w_time.astype(np.float32)
    plan32 = _engine.TFPlan(n_times, wsizes, tsteps, np.float32)
    want32, want32_nz = _prox_ref(plan, got32, n_orient, thr_t, thr_s, w32)
    nz32 = H.prox(plan32, got32, n_orient, thr_t, thr_s, w32)
    assert_array_equal(nz32, want32_nz)
    assert_allclose(got32, want32, rtol=1e-5, atol=1e-6)


def test_prox_bad_buffers():
    plan = _engine.TFPlan(24, (16,), (4,))
    Y = np.zeros((4, 2 * plan.n_coefs))
    with pytest.raises(ValueError, match="inconsistent"):
        H.prox(plan, Y, 3, 0.1, 0.1)
    with pytest.raises(ValueError, match="w_time"):
        H.prox(plan, Y, 2, 0.1, 0.1, np.ones((3, plan.n_coefs)))
    # the plan's tables are read in the buffers' precision: a mismatch is refused
    with pytest.raises(ValueError, match="float32 buffers with a float64 plan"):
        H.prox(plan, Y.astype(np.float32), 2, 0.1, 0.1)
    with pytest.raises(ValueError, match="float64 buffers with a float32 plan"):
        _engine.stft(
            _engine.TFPlan(24, (16,), (4,), np.float32),
            np.zeros((2, 24)),
            np.zeros((2, 2 * plan.n_coefs)),
            np.zeros(plan.max_frames),
        )
