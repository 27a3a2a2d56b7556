# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""irTF-MxNE (multi-dictionary, reweighted) against MNE at the converged reweighting.

Reweighting is not convex and, at MNE's default ``tol`` with a handful of
reweightings, neither implementation reaches the fixed point of the
reweighting: on the sample data the 5th reweighting still moves the
coefficients by 500-20000 times the stopping threshold ``tol ||M||^2``, and the
iterates pass through expansive phases (coefficients shrinking to zero, where
the weight ``1 / (2 sqrt|z|)`` is steep) that amplify the differences of two
inner solves both certified at ``tol``. What both implementations must agree
on is the point the reweighting converges to: here both are run with a tight
tolerance (``tol=1e-12``, which is also the duality-gap tolerance of every
inner solve) and enough reweightings for the loop to stop by its own rule.

Thresholds: a solution certified by a duality gap ``eps`` fits the data within
``sqrt(2 eps)`` of the optimum (the objective grows at least quadratically in
the fit), so with ``eps = tol ||M||^2`` errors are of order ``sqrt(tol)``
relative; the tests allow ``10 sqrt(tol)``. See benchmarks/irtf_sensitivity.py
for the measured sensitivity of the stopping rule.
"""

import warnings

import mne
import numpy as np
import pytest
from _helpers import cached, mne_exact_debias, subset_forward
from mne.inverse_sparse import mxne_optim
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import solver as tsolver
from tfmxne._stft import TFFrame

TOL = 1e-12
N_ITER = 200  # a cap the loop does not reach (it stops after 40-70 here)
KW = dict(
    alpha=30.0,
    l1_ratio=0.05,
    wsize=[16, 64],
    tstep=[4, 4],
    depth=0.9,
    tol=TOL,
    n_tfmxne_iter=N_ITER,
    maxit=100000,
)
RTOL = 10 * np.sqrt(TOL)


@pytest.fixture(scope="module")
def problem(sample_path, fwd_surf, noise_cov):
    evoked = mne.read_evokeds(
        sample_path / "sample-ave.fif.gz",
        condition="Left visual",
        baseline=(None, 0),
        verbose=False,
    ).crop(0.05, 0.15)
    return evoked, subset_forward(fwd_surf, 4), noise_cov


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a)


def _same_vertices(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.vertices, b.vertices))


def test_irtf_converged_matches_mne(problem, cache_dir):
    """Both run to the reweighting's fixed point, with exact debiasing, agree."""
    evoked, fwd, cov = problem

    def run():
        with threadpool_limits(1), warnings.catch_warnings(), mne_exact_debias():
            warnings.simplefilter("ignore")
            return mne.inverse_sparse.tf_mixed_norm(
                evoked, fwd, cov, debias=True, verbose=False, **KW
            )

    ref = cached(cache_dir, "mne-irtf-converged-lvis", run)
    ours = tfmxne.tf_mixed_norm(evoked, fwd, cov, debias=True, **KW)
    assert _same_vertices(ref, ours)
    assert _rel(ref.data, ours.data) < RTOL


def _prepared(evoked, fwd, cov, l1_ratio, wsize, tstep):
    """Whitened data and scaled gain as MNE's tf_mixed_norm builds them."""
    from mne.inverse_sparse.mxne_inverse import _prepare_gain

    _, gain, gain_info, whitener, _, _ = _prepare_gain(
        fwd, evoked.info, cov, True, 0.9, "auto", None, None, 0.0
    )
    sel = [evoked.ch_names.index(c) for c in gain_info["ch_names"]]
    M = whitener @ evoked.data[sel]
    n_coefs = [int(np.ceil(M.shape[1] / t)) * (w // 2 + 1) for w, t in zip(wsize, tstep)]
    phi = mxne_optim._Phi(np.array(wsize), np.array(tstep), np.array(n_coefs), M.shape[1])
    alpha_max = 0.01 * mxne_optim.norm_epsilon_inf(gain, M, phi, l1_ratio, 3)
    return M, gain / alpha_max


def test_irtf_stop_is_a_fixed_point(problem):
    """Where tfmxne's reweighting stops, one more reweighting by MNE's own solver
    (weights from tfmxne's coefficients, warm start there) stays put: the stop
    is the fixed point, not a point one knife-edge reweighting away from it."""
    evoked, fwd, cov = problem
    wsize, tstep, l1_ratio, alpha = [16, 64], [4, 4], 0.05, 30.0
    M, G = _prepared(evoked, fwd, cov, l1_ratio, wsize, tstep)
    tol = TOL * float(np.sum(M * M))
    a_s, a_t = alpha * (1 - l1_ratio), alpha * l1_ratio
    frame = TFFrame(M.shape[1], wsize, tstep)
    res, _, k_done = tsolver._iterative_core(
        np.ascontiguousarray(M), G, a_s, a_t, N_ITER, frame, 3, 100000, tol, 10
    )
    assert k_done < N_ITER  # stopped by its rule
    cols = tsolver._cols(res.positions, 3)
    Z = frame.to_mne(res.Z)  # (n_active, n_coefs), MNE's complex layout
    # MNE's weights: 1 / (2 sqrt(.)) of the position norm and of each coefficient
    c = np.concatenate(
        [
            np.where((np.arange(w // 2 + 1) % (w // 2) == 0)[:, None], 1.0, 2.0)
            * np.ones((1, int(np.ceil(M.shape[1] / t))))
            for w, t in zip(wsize, tstep)
        ],
        axis=None,
    )
    mag = np.abs(Z) ** 2
    pos2 = (mag * c).reshape(-1, 3, Z.shape[1]).sum(axis=(1, 2))
    coef = np.sqrt(mag.reshape(-1, 3, Z.shape[1]).sum(axis=1))
    w_space = 1.0 / (2.0 * np.sqrt(np.sqrt(pos2)))
    with np.errstate(divide="ignore"):
        w_time = np.where(coef > 0, 1.0 / (2.0 * np.sqrt(coef)), 0.0)
    GA = G[:, cols]
    lc = np.array(
        [
            np.linalg.norm(GA[:, 3 * j : 3 * j + 3].T @ GA[:, 3 * j : 3 * j + 3], 2)
            for j in range(len(res.positions))
        ]
    )
    n_steps = np.array([int(np.ceil(M.shape[1] / t)) for t in tstep])
    n_freqs = np.array(wsize) // 2 + 1
    phi = mxne_optim._Phi(np.array(wsize), np.array(tstep), n_steps * n_freqs, M.shape[1])
    phiT = mxne_optim._PhiT(np.array(tstep), n_freqs, n_steps, M.shape[1])
    with threadpool_limits(1):
        X2, Z2, as2, _, _ = mxne_optim._tf_mixed_norm_solver_bcd_active_set(
            M,
            GA,
            a_s,
            a_t,
            lc,
            phi,
            phiT,
            Z_init=Z,
            w_space=w_space,
            w_time=w_time,
            n_orient=3,
            maxit=100000,
            tol=tol,
            dgap_freq=10,
        )
    assert as2.all()
    assert _rel(X2, res.X) < RTOL
