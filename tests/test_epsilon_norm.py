# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Epsilon norm (dual of the TF-MxNE penalty) against an independent bisection."""

import numpy as np
import pytest
from _helpers import eps_norm_ref, eps_norms_ref, mne_phi, multiplicity
from mne.inverse_sparse.mxne_optim import _Phi
from mne.inverse_sparse.mxne_optim import norm_epsilon as mne_norm_epsilon
from mne.inverse_sparse.mxne_optim import norm_epsilon_inf as mne_norm_epsilon_inf
from mne.time_frequency._stft import stft_norm2 as mne_stft_norm2
from numpy.testing import assert_allclose

import tfmxne
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H

RHOS = (0.0, 0.03, 0.5, 0.99, 1.0)
DICTS = [(16, 4), ([16, 8], [4, 2])]


def _mne_phi_op(wsize, tstep, n_times):
    ws, ts = np.atleast_1d(wsize), np.atleast_1d(tstep)
    n_steps = np.ceil(n_times / ts.astype(float)).astype(int)
    return _Phi(ws, ts, n_steps * (ws // 2 + 1), n_times)


def _eps_internal(frame, Y, n_orient, rho, w_space=None, w_time=None):
    """Compiled per-position epsilon norms of MNE-layout coefficients Y."""
    y = np.ascontiguousarray(frame.from_mne(Y))
    ws = None if w_space is None else np.ascontiguousarray(w_space, dtype=float)
    wt = None if w_time is None else frame.from_mne_weights(np.asarray(w_time, float))
    return H.eps_norms(frame.plan, y, n_orient, rho, ws, wt)


def _mne_single_coef_shortcut(mag, c, rho):
    """True where MNE's ``norm_epsilon`` returns max|Y| because only one coefficient
    passes its screening, which is wrong for a coefficient counted twice (c=2)."""
    out = []
    for y in mag:
        idx = y > rho * y.max()
        out.append(idx.sum() == 1 and c[idx][0] == 2 and 0 < rho < 1)
    return np.array(out)


# --------------------------------------------------------------------------
# the reference itself
# --------------------------------------------------------------------------
def test_reference_closed_forms():
    """The bisection reference agrees with closed forms."""
    rng = np.random.default_rng(0)
    y = np.abs(rng.standard_normal(30))
    c = rng.choice([1.0, 2.0], 30)
    # rho = 0: weighted l2 norm; rho = 1: max(y / w)
    assert_allclose(eps_norm_ref(y, c, 0.0, 2.0), np.sqrt(np.sum(c * y**2)) / 2.0)
    w = rng.uniform(0.1, 2, 30)
    assert_allclose(eps_norm_ref(y, c, 1.0, 1.0, w), np.max(y / w))
    # single coefficient with multiplicity c: sqrt(c)(y - rho nu) = (1 - rho) nu
    for cc in (1.0, 2.0):
        for rho in (0.03, 0.5, 0.99):
            nu = eps_norm_ref([3.0], [cc], rho)
            assert_allclose(
                nu, np.sqrt(cc) * 3.0 / (np.sqrt(cc) * rho + 1 - rho), rtol=1e-12
            )
    # all equal magnitudes, c = 1: K (y - rho nu)^2 = (1 - rho)^2 nu^2
    K, rho = 10, 0.3
    assert_allclose(
        eps_norm_ref(np.ones(K), np.ones(K), rho),
        np.sqrt(K) / (np.sqrt(K) * rho + 1 - rho),
        rtol=1e-12,
    )
    # homogeneity and root property
    for rho in (0.03, 0.5, 0.99):
        nu = eps_norm_ref(y, c, rho, 1.5, w)
        assert_allclose(eps_norm_ref(3 * y, c, rho, 1.5, w), 3 * nu, rtol=1e-13)
        f = np.sum(c * np.maximum(y - rho * nu * w, 0) ** 2) - ((1 - rho) * 1.5 * nu) ** 2
        assert abs(f) < 1e-12 * np.sum(c * y**2)


# --------------------------------------------------------------------------
# MNE's test_norm_epsilon, restated
# --------------------------------------------------------------------------
def test_norm_epsilon_mne_cases():
    """MNE's test_norm_epsilon cases on the compiled epsilon norm (wsize 4, tstep 2)."""
    wsize, tstep, n_times = 4, 2, 10
    frame = TFFrame(n_times, wsize, tstep)
    phi = _mne_phi_op(wsize, tstep, n_times)
    n_coefs = frame.n_coefs
    assert n_coefs == 15
    c = multiplicity(wsize, tstep, n_times)

    def eps(Y, rho, w_space=None, w_time=None):
        ws = None if w_space is None else np.array([float(w_space)])
        wt = None if w_time is None else np.asarray(w_time, float)[None]
        return _eps_internal(frame, np.asarray(Y, complex)[None], 1, rho, ws, wt)[0]

    Y = np.zeros(n_coefs)
    assert eps(Y, 0.03) == 0.0
    Y[0] = 2.0
    assert_allclose(eps(Y, 0.03), np.max(Y))  # DC coefficient: counted once
    assert_allclose(eps(Y, 1.0), np.max(Y))
    Y = np.arange(n_coefs, dtype=float)
    assert_allclose(eps(Y, 0.0) ** 2, mne_stft_norm2(Y.reshape(-1, 3, 5)), rtol=1e-13)
    rng = np.random.default_rng(0)
    Y = np.abs(rng.standard_normal(n_coefs))
    assert_allclose(eps(Y, 0.03), eps(Y, 0.03, w_time=np.ones(n_coefs)), rtol=1e-14)
    Y = np.arange(n_coefs) + 1.0
    mult = 2.0
    assert_allclose(
        eps(Y, 0.03, 1.0, np.ones(n_coefs)) / mult,
        eps(Y, 0.03, mult, mult * np.ones(n_coefs)),
        rtol=1e-13,
    )
    # and each value equals the reference and (no weights) MNE's norm_epsilon
    for rho in RHOS:
        for Y in (np.arange(n_coefs) + 1.0, np.abs(rng.standard_normal(n_coefs))):
            ref = eps_norm_ref(Y, c, rho)
            assert_allclose(eps(Y, rho), ref, rtol=1e-10)
            if not _mne_single_coef_shortcut(Y[None], c, rho)[0]:
                assert_allclose(mne_norm_epsilon(Y, rho, phi), ref, rtol=1e-10)


def test_mne_single_coefficient_bug_documented():
    """MNE returns max|Y| when one coefficient passes its screening, ignoring that
    an interior coefficient is counted twice; ours follows the definition."""
    wsize, tstep, n_times = 4, 2, 10
    frame = TFFrame(n_times, wsize, tstep)
    phi = _mne_phi_op(wsize, tstep, n_times)
    c = multiplicity(wsize, tstep, n_times)
    k = int(np.flatnonzero(c == 2)[0])
    Y = np.full(frame.n_coefs, 0.01)
    Y[k] = 3.0
    rho = 0.99
    expected = np.sqrt(2) * 3.0 / (np.sqrt(2) * rho + 1 - rho)
    assert_allclose(eps_norm_ref(Y, c, rho), expected, rtol=1e-12)
    ours = _eps_internal(frame, Y[None].astype(complex), 1, rho)[0]
    assert_allclose(ours, expected, rtol=1e-12)
    assert mne_norm_epsilon(Y, rho, phi) == 3.0  # MNE's (wrong) value


# --------------------------------------------------------------------------
# random coefficients, compiled per-position norms
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wsize, tstep", DICTS)
@pytest.mark.parametrize("n_orient", [1, 2, 3])
def test_eps_norms_random_coefficients(wsize, tstep, n_orient):
    """Arbitrary (not in the frame's range) complex coefficients and weights."""
    n_times, n_pos = 30, 6
    frame = TFFrame(n_times, wsize, tstep)
    c = multiplicity(wsize, tstep, n_times)
    rng = np.random.default_rng(n_orient)
    K = frame.n_coefs
    Y = rng.standard_normal((n_pos * n_orient, K)) + 1j * rng.standard_normal(
        (n_pos * n_orient, K)
    )
    Y[:, c == 1] = Y[:, c == 1].real
    Y[:, rng.random(K) < 0.2] *= 30  # spread of magnitudes
    mag = np.sqrt((np.abs(Y) ** 2).reshape(n_pos, n_orient, K).sum(1))
    for rho in RHOS:
        for weighted in (False, True):
            if weighted:
                w_space = rng.uniform(0.2, 3.0, n_pos)
                w_time = rng.uniform(0.05, 2.0, (n_pos, K))
                w_time[rng.random((n_pos, K)) < 0.3] = 0.0
                w_time[0] = 0.0  # a position entirely held at zero
                w_time[1, :] = 0.0
                w_time[1, 3] = 0.5  # a single free coefficient
            else:
                w_space = w_time = None
            ours = _eps_internal(frame, Y, n_orient, rho, w_space, w_time)
            ref = np.array(
                [
                    eps_norm_ref(
                        mag[j],
                        c,
                        rho,
                        1.0 if w_space is None else w_space[j],
                        None if w_time is None else w_time[j],
                    )
                    for j in range(n_pos)
                ]
            )
            assert_allclose(
                ours, ref, rtol=1e-10, atol=0, err_msg=f"rho={rho} w={weighted}"
            )
            if weighted:
                assert ours[0] == 0.0  # every coefficient held at zero


# --------------------------------------------------------------------------
# public norm_epsilon_inf
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wsize, tstep", DICTS)
@pytest.mark.parametrize("n_orient", [1, 2, 3])
def test_norm_epsilon_inf_vs_reference_and_mne(wsize, tstep, n_orient):
    """norm_epsilon_inf == bisection reference (1e-10) with and without weights; ==
    MNE's norm_epsilon_inf where MNE is correct (no weights, no single-coefficient
    shortcut)."""
    n_times, n_pos, n_sens = 40, 8, 12
    rng = np.random.default_rng(10 * n_orient + np.size(wsize))
    phi = _mne_phi_op(wsize, tstep, n_times)
    c = multiplicity(wsize, tstep, n_times)
    K = len(c)
    for trial in range(2):
        G = rng.standard_normal((n_sens, n_pos * n_orient))
        R = rng.standard_normal((n_sens, n_times))
        if trial:
            R = R * 1e-3 + 1e3 * G[:, :1] @ rng.standard_normal(
                (1, n_times)
            )  # one dominant
        mag = np.sqrt(
            (np.abs(mne_phi(G.T @ R, wsize, tstep)) ** 2)
            .reshape(n_pos, n_orient, K)
            .sum(1)
        )
        for rho in RHOS:
            ref = eps_norms_ref(G, R, rho, n_orient, wsize, tstep)
            ours = tfmxne.norm_epsilon_inf(G, R, rho, n_orient, wsize, tstep)
            assert_allclose(ours, ref.max(), rtol=1e-10)
            shortcut = _mne_single_coef_shortcut(mag, c, rho)
            if not shortcut.any():
                mne_val = mne_norm_epsilon_inf(G, R, phi, rho, n_orient)
                assert_allclose(ours, mne_val, rtol=1e-10)
            # random weights, w_time < 1 and zeros (MNE is wrong there: reference only)
            w_space = rng.uniform(0.3, 3.0, n_pos)
            w_time = rng.uniform(0.05, 2.0, (n_pos, K))
            w_time[rng.random((n_pos, K)) < 0.25] = 0.0
            ref_w = eps_norms_ref(G, R, rho, n_orient, wsize, tstep, w_space, w_time)
            ours_w = tfmxne.norm_epsilon_inf(
                G, R, rho, n_orient, wsize, tstep, w_space=w_space, w_time=w_time
            )
            assert_allclose(ours_w, ref_w.max(), rtol=1e-10)
            # only one kind of weights
            assert_allclose(
                tfmxne.norm_epsilon_inf(
                    G, R, rho, n_orient, wsize, tstep, w_space=w_space
                ),
                eps_norms_ref(G, R, rho, n_orient, wsize, tstep, w_space).max(),
                rtol=1e-10,
            )
            assert_allclose(
                tfmxne.norm_epsilon_inf(G, R, rho, n_orient, wsize, tstep, w_time=w_time),
                eps_norms_ref(G, R, rho, n_orient, wsize, tstep, None, w_time).max(),
                rtol=1e-10,
            )


@pytest.mark.parametrize("n_orient", [1, 3])
def test_norm_epsilon_inf_screening_many_positions(n_orient):
    """Many positions (the screening by upper bounds kicks in): still the exact max."""
    n_times, n_pos, n_sens = 32, 300, 10
    wsize, tstep = [16, 8], [4, 2]
    rng = np.random.default_rng(7)
    G = rng.standard_normal((n_sens, n_pos * n_orient))
    G *= rng.uniform(0.1, 2.0, n_pos * n_orient)[None, :]
    R = rng.standard_normal((n_sens, n_times))
    K = len(multiplicity(wsize, tstep, n_times))
    for rho in (0.03, 0.5, 0.99):
        ref = eps_norms_ref(G, R, rho, n_orient, wsize, tstep)
        assert_allclose(
            tfmxne.norm_epsilon_inf(G, R, rho, n_orient, wsize, tstep),
            ref.max(),
            rtol=1e-10,
        )
        w_space = rng.uniform(0.5, 2.0, n_pos)
        w_time = rng.uniform(0.1, 1.5, (n_pos, K))
        w_time[rng.random((n_pos, K)) < 0.3] = 0.0
        ref = eps_norms_ref(G, R, rho, n_orient, wsize, tstep, w_space, w_time)
        assert_allclose(
            tfmxne.norm_epsilon_inf(G, R, rho, n_orient, wsize, tstep, w_space, w_time),
            ref.max(),
            rtol=1e-10,
        )


def test_norm_epsilon_inf_identities():
    """rho = 0: max_j ||G_j^T R||_F (tight frame); rho = 1: max |Phi(G^T R)|;
    R = 0: 0; homogeneity in R."""
    rng = np.random.default_rng(3)
    n_orient, n_pos, n_times = 2, 5, 50
    G = rng.standard_normal((9, n_pos * n_orient))
    R = rng.standard_normal((9, n_times))
    GtR = (G.T @ R).reshape(n_pos, n_orient, n_times)
    for wsize, tstep in DICTS:
        assert_allclose(
            tfmxne.norm_epsilon_inf(G, R, 0.0, n_orient, wsize, tstep),
            np.sqrt((GtR**2).sum(axis=(1, 2))).max(),
            rtol=1e-12,
        )
        Y = mne_phi(G.T @ R, wsize, tstep)
        mag = np.sqrt((np.abs(Y) ** 2).reshape(n_pos, n_orient, -1).sum(1))
        assert_allclose(
            tfmxne.norm_epsilon_inf(G, R, 1.0, n_orient, wsize, tstep),
            mag.max(),
            rtol=1e-12,
        )
        assert tfmxne.norm_epsilon_inf(G, 0 * R, 0.3, n_orient, wsize, tstep) == 0.0
        a = tfmxne.norm_epsilon_inf(G, R, 0.3, n_orient, wsize, tstep)
        assert_allclose(
            tfmxne.norm_epsilon_inf(G, 7.0 * R, 0.3, n_orient, wsize, tstep),
            7.0 * a,
            rtol=1e-12,
        )
        # monotone in rho for a fixed input: between the l_inf and the l2 values
        vals = [
            tfmxne.norm_epsilon_inf(G, R, r, n_orient, wsize, tstep)
            for r in (1.0, 0.99, 0.5, 0.03, 0.0)
        ]
        assert np.all(np.diff(vals) >= -1e-12 * vals[-1])


def test_norm_epsilon_inf_bad_inputs():
    G = np.ones((3, 4))
    R = np.ones((3, 16))
    with pytest.raises(ValueError, match="l1_ratio"):
        tfmxne.norm_epsilon_inf(G, R, 1.5, 1, 16, 4)
    with pytest.raises(ValueError, match="l1_ratio"):
        tfmxne.norm_epsilon_inf(G, R, -0.1, 1, 16, 4)
    with pytest.raises(ValueError, match="G contains"):
        tfmxne.norm_epsilon_inf(G * np.nan, R, 0.5, 1, 16, 4)
    with pytest.raises(ValueError, match="wsize"):
        tfmxne.norm_epsilon_inf(G, R, 0.5, 1, 18, 2)
    with pytest.raises(ValueError, match="tstep"):
        tfmxne.norm_epsilon_inf(G, R, 0.5, 1, 16, 3)
