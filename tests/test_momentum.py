# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Momentum between block coordinate descent epochs, with adaptive restart.

The epoch after the iterate Z_k sweeps from Z_k + k / (k + 3) (Z_k - Z_{k-1});
a step that raises the objective is rejected. Plain momentum (no restart) can
raise the objective, here without bound on correlated gains; with the restart
the objective never rises and the answer is the plain sweep's optimum.
"""

import numpy as np
import pytest
from _helpers import correlated_problem

import tfmxne
from tfmxne import solver as S
from tfmxne._core import _engine
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H


def _working_set(M, G, n_orient, frame):
    """Every position in one working set, cold."""
    n_pos = G.shape[1] // n_orient
    GT = np.ascontiguousarray(G.T)
    return dict(
        GT=GT,
        M=np.ascontiguousarray(M),
        R=np.ascontiguousarray(M.copy()),
        X=np.zeros((G.shape[1], M.shape[1])),
        Z=np.zeros((G.shape[1], 2 * frame.n_coefs)),
        active=np.zeros(n_pos, np.uint8),
        lc=np.ascontiguousarray(S._lipschitz(G, n_orient)),
        gram=H.block_grams(GT, n_orient)[0],
        work=np.empty(H.work_size(frame.plan, n_orient)),
    )


@pytest.mark.parametrize("n_orient", [1, 3])
def test_restart_rejects_the_steps_that_raise_the_objective(n_orient):
    M, G = correlated_problem(0, n_orient)
    frame = TFFrame(M.shape[1], 16, 4)
    amax = tfmxne.norm_epsilon_inf(G, M, 0.1, n_orient, 16, 4)
    opts = dict(alpha_space=0.05 * amax * 0.9, alpha_time=0.05 * amax * 0.1,
                n_orient=n_orient, maxit=80, tol=0.0, dgap_freq=1)  # fmt: skip
    # the objective after every epoch (a gap check per epoch, none stops: tol 0)
    plain_mom = H.bcd(frame.plan, _working_set(M, G, n_orient, frame),
                      momentum="no-restart", **opts)["obj"]  # fmt: skip
    assert np.max(np.diff(plain_mom)) > 0  # plain momentum raises it
    ws = _working_set(M, G, n_orient, frame)
    out = H.bcd(frame.plan, ws, momentum=1, **opts)
    assert out["n_restart"] > 0  # ... and those steps were rejected:
    assert np.all(np.diff(out["obj"]) <= 1e-13 * abs(out["obj"][0]))
    # the residual stays M - G X (R follows the extrapolations linearly)
    np.testing.assert_allclose(ws["R"], M - G @ ws["X"], rtol=0,
                               atol=1e-12 * np.abs(M).max())  # fmt: skip


@pytest.mark.parametrize("n_orient, wsize, tstep", [(1, 16, 4), (3, [16, 8], [4, 2])])
def test_momentum_finds_the_plain_sweeps_optimum(n_orient, wsize, tstep):
    """Whole solves with and without momentum: both certified, the same support,
    objectives within the sum of the gaps, fits within what the gaps allow."""
    M, G = correlated_problem(3, n_orient, n_pos=60)
    frame = TFFrame(M.shape[1], wsize, tstep)
    amax = tfmxne.norm_epsilon_inf(G, M, 0.1, n_orient, wsize, tstep)
    tol = 1e-9 * float(np.sum(M * M))
    outs = [
        _engine.solve(
            frame.plan,
            M,
            G,
            0.05 * amax * 0.9,
            0.05 * amax * 0.1,
            n_orient,
            tol=tol,
            maxit=5000,
            momentum=m,
        )  # fmt: skip
        for m in (0, 1)
    ]
    for o in outs:
        assert o["status"] == _engine.STATUS_OK and o["gap"] < tol
    plain, mom = outs
    np.testing.assert_array_equal(plain["positions"], mom["positions"])
    assert abs(plain["p_obj"] - mom["p_obj"]) <= plain["gap"] + mom["gap"]
    cols = (plain["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()
    fit = np.linalg.norm(G[:, cols] @ (plain["X"] - mom["X"]))
    assert fit <= np.sqrt(2 * plain["gap"]) + np.sqrt(2 * mom["gap"])
