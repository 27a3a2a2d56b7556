# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""TF-MxNE / irTF-MxNE solvers: MNE's own tests, agreement with MNE, certificates."""

import re
import warnings

import numpy as np
import pytest
from _helpers import (
    debias_ref,
    dual_ref,
    eps_norms_ref,
    generate_tf_data,
    mne_phiT,
    multiplicity,
    objectives_ref,
    one_blas_thread,
    random_problem,
    rel_diff,
)
from _irtf_ref import mne_exact_dual_norm
from mne.inverse_sparse import mxne_optim as mo
from numpy.testing import assert_allclose, assert_array_equal, assert_array_less

import tfmxne
import tfmxne.solver as tsolver
from tfmxne._stft import TFFrame
from tfmxne.solver import _solver_core


def _mask(positions, n_orient, n_sources):
    m = np.zeros(n_sources, bool)
    for p in positions:
        m[p * n_orient : (p + 1) * n_orient] = True
    return m


def _solution(res, frame, n_orient):
    """(positions, Z in MNE layout, X) of a core result, rows by increasing position."""
    order = np.argsort(res.positions, kind="stable")
    rows = (order[:, None] * n_orient + np.arange(n_orient)[None, :]).ravel()
    return res.positions[order], frame.to_mne(res.Z[rows]), np.asarray(res.X)[rows]


def _alphas(M, G, n_orient, wsize, tstep, frac, rho):
    amax = tfmxne.norm_epsilon_inf(G, M, rho, n_orient, wsize, tstep)
    return frac * (1 - rho) * amax, frac * rho * amax


def _mne_tf(M, G, a_s, a_t, wsize, tstep, n_orient, **kw):
    with one_blas_thread():
        return mo.tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            wsize=np.atleast_1d(wsize),
            tstep=np.atleast_1d(tstep),
            n_orient=n_orient,
            verbose=False,
            **kw,
        )


# --------------------------------------------------------------------------
# MNE's test_mxne_optim.py, restated on tfmxne
# --------------------------------------------------------------------------
def test_tf_mxne():
    """MNE's test_tf_mxne."""
    M, G, active_set = generate_tf_data()
    X, active_set_hat, E, gap = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        10.0,
        5.0,
        maxit=200,
        tol=1e-8,
        verbose=False,
        n_orient=1,
        tstep=4,
        wsize=32,
        return_gap=True,
    )
    assert_array_less(gap, 1e-8)
    assert_array_equal(np.where(active_set_hat)[0], active_set)
    assert X.shape == (2, M.shape[1])
    assert isinstance(E, list) and len(E) >= 1
    # MNE's solver: same support and estimate
    Xm, Am, _, gm = _mne_tf(
        M, G, 10.0, 5.0, 32, 4, 1, maxit=10000, tol=1e-8, return_gap=True, debias=False
    )
    X0, A0, _ = tfmxne.tf_mixed_norm_solver(
        M, G, 10.0, 5.0, 32, 4, debias=False, verbose=False
    )
    assert_array_equal(A0, Am)
    assert rel_diff(X0, Xm) < 1e-4


def test_tf_mxne_vs_mxne():
    """MNE's test_tf_mxne_vs_mxne: alpha_time = 0 is MxNE (tight frame)."""
    M, G, _ = generate_tf_data()
    X_tf, A_tf, _ = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        60.0,
        0.0,
        maxit=200,
        tol=1e-8,
        verbose=False,
        debias=False,
        n_orient=1,
        tstep=4,
        wsize=32,
    )
    with one_blas_thread():
        X_l21, A_l21, _ = mo.mixed_norm_solver(
            M,
            G,
            60.0,
            maxit=200,
            tol=1e-8,
            verbose=False,
            n_orient=1,
            active_set_size=None,
            debias=False,
        )
    assert_array_equal(A_tf, A_l21)
    assert rel_diff(X_tf, X_l21) < 1e-6
    # and with several orientations and dictionaries
    for n_orient, wsize, tstep in ((2, [64, 16], [4, 2]), (4, 16, 4)):
        X_tf, A_tf, _ = tfmxne.tf_mixed_norm_solver(
            M,
            G,
            60.0,
            0.0,
            wsize,
            tstep,
            n_orient,
            maxit=1000,
            tol=1e-10,
            debias=False,
            verbose=False,
        )
        with one_blas_thread():
            X_l21, A_l21, _ = mo.mixed_norm_solver(
                M,
                G,
                60.0,
                maxit=3000,
                tol=1e-10,
                verbose=False,
                n_orient=n_orient,
                active_set_size=None,
                debias=False,
            )
        assert_array_equal(A_tf, A_l21)
        assert rel_diff(X_tf, X_l21) < 1e-5


def test_iterative_reweighted_tfmxne():
    """MNE's test_iterative_reweighted_tfmxne, plus MNE's own (converged) results."""
    M, G, true_active_set = generate_tf_data()
    wsize, tstep = [64, 16], [4, 2]
    X_tf, _, _ = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        38.0,
        0.5,
        maxit=1000,
        tol=1e-4,
        wsize=wsize,
        tstep=tstep,
        verbose=False,
        n_orient=1,
        debias=False,
    )
    X_bcd, active_set, E = tfmxne.iterative_tf_mixed_norm_solver(
        M,
        G,
        38.0,
        0.5,
        1,
        wsize=wsize,
        tstep=tstep,
        maxit=1000,
        tol=1e-4,
        debias=False,
        verbose=False,
    )
    assert_allclose(X_tf, X_bcd, rtol=1e-3)
    assert_array_equal(np.where(active_set)[0], true_active_set)
    assert len(E) == 1

    for alpha_space, n_iter, n_orient, expected in (
        (50.0, 3, 5, [0, 1, 2, 3, 4]),
        (40.0, 2, 2, [0, 1, 4, 5]),
    ):
        X, active_set, E = tfmxne.iterative_tf_mixed_norm_solver(
            M,
            G,
            alpha_space,
            0.5,
            n_iter,
            wsize=wsize,
            tstep=tstep,
            n_orient=n_orient,
            maxit=1000,
            tol=1e-4,
            debias=False,
            verbose=False,
        )
        assert_array_equal(np.where(active_set)[0], expected)
        assert len(E) == n_iter
        assert np.all(np.diff(E) < 0)  # majorization-minimization decreases E
        # MNE's converged reference: its weighted dual norm exact, so that each
        # weighted problem stops at a true gap below tol (_irtf_ref)
        with one_blas_thread(), mne_exact_dual_norm():
            Xm, Am, Em = mo.iterative_tf_mixed_norm_solver(
                M,
                G,
                alpha_space,
                0.5,
                n_iter,
                wsize=np.array(wsize),
                tstep=np.array(tstep),
                n_orient=n_orient,
                maxit=1000,
                tol=1e-4,
                debias=False,
                verbose=False,
            )
        assert_array_equal(active_set, Am)
        assert rel_diff(X, Xm) < 1e-3
        assert_allclose(E, Em, rtol=1e-3)


@pytest.mark.parametrize("l1_ratio", [0.05, 0.1])
def test_dgapl21l1(l1_ratio):
    """MNE's test_dgapl21l1 with our dgap_l21l1 on our solutions Z."""
    n_orient = 2
    M, G, _ = generate_tf_data()
    n_sources = G.shape[1]
    wsize, tstep = [64, 16], [4, 2]
    K = len(multiplicity(wsize, tstep, M.shape[1]))
    alpha_max = tfmxne.norm_epsilon_inf(G, M, l1_ratio, n_orient, wsize, tstep)
    alpha_space, alpha_time = (1.0 - l1_ratio) * alpha_max, l1_ratio * alpha_max
    Z = np.zeros((n_sources, K), complex)
    gap, p_obj, d_obj = tfmxne.dgap_l21l1(
        M, G, Z, np.ones(n_sources, bool), alpha_space, alpha_time, wsize, tstep, n_orient
    )
    assert_allclose(0.0, gap, atol=1e-12 * p_obj)
    assert_allclose(p_obj, 0.5 * np.sum(M**2), rtol=1e-14)
    # an empty Z with an empty active set is the same point
    gap0, _, _ = tfmxne.dgap_l21l1(
        M,
        G,
        np.zeros((0, K), complex),
        np.zeros(n_sources, bool),
        alpha_space,
        alpha_time,
        wsize,
        tstep,
        n_orient,
    )
    assert_allclose(gap0, gap, atol=1e-12 * p_obj)
    for div in (1.01, 5.0):
        _, _, _, gap_pub = tfmxne.tf_mixed_norm_solver(
            M,
            G,
            alpha_space / div,
            alpha_time / div,
            maxit=200,
            tol=1e-8,
            verbose=False,
            debias=False,
            n_orient=n_orient,
            tstep=tstep,
            wsize=wsize,
            return_gap=True,
        )
        assert_array_less(-1e-10, gap_pub)
        assert_array_less(gap_pub, 1e-8)
        _, _, _, frame, res = _solver_core(
            M,
            G,
            alpha_space / div,
            alpha_time / div,
            wsize,
            tstep,
            n_orient,
            200,
            1e-8,
            10,
        )
        pos, Zs, _ = _solution(res, frame, n_orient)
        active_set = _mask(pos, n_orient, n_sources)
        assert active_set.sum() > 1
        # MNE's test asserts that its gap (rescaled residual) at the solution is
        # below tol; tfmxne's contract is a true duality gap below tol, checked
        # with the returned dual point by independent code
        p_ref, _, _ = objectives_ref(
            M,
            G,
            Zs,
            active_set,
            alpha_space / div,
            alpha_time / div,
            wsize,
            tstep,
            n_orient,
        )
        _assert_certificate(
            res,
            M,
            G,
            p_ref,
            alpha_space / div,
            alpha_time / div,
            wsize,
            tstep,
            n_orient,
            1e-8,
        )
        assert gap_pub == res.gap
        gap, p_obj, d_obj = tfmxne.dgap_l21l1(
            M,
            G,
            Zs,
            active_set,
            alpha_space / div,
            alpha_time / div,
            wsize,
            tstep,
            n_orient,
        )
        # MNE's dgap_l21l1 on the same point (no weights: MNE is right, up to its
        # single-coefficient shortcut, which the gap at the optimum is robust to)
        ws, ts = np.array(wsize), np.array(tstep)
        n_steps = np.ceil(M.shape[1] / ts).astype(int)
        phi = mo._Phi(ws, ts, n_steps * (ws // 2 + 1), M.shape[1])
        phiT = mo._PhiT(ts, ws // 2 + 1, n_steps, M.shape[1])
        with one_blas_thread():
            gm, pm, dm, _ = mo.dgap_l21l1(
                M,
                G,
                Zs,
                active_set,
                alpha_space / div,
                alpha_time / div,
                phi,
                phiT,
                n_orient,
                -np.inf,
            )
        assert_allclose(p_obj, pm, rtol=1e-12)
        assert_allclose(d_obj, dm, rtol=1e-10)


# --------------------------------------------------------------------------
# agreement with MNE's solvers on random problems
# --------------------------------------------------------------------------
@pytest.mark.parametrize("wsize, tstep", [(16, 4), ([16, 8], [4, 2])])
@pytest.mark.parametrize("n_orient", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_with_mne(seed, n_orient, wsize, tstep):
    """Same support and X within 1e-4 of MNE's tf_mixed_norm_solver at tol 1e-8;
    debias=True equals the exactly debiased MNE estimate."""
    M, G = random_problem(seed, n_orient=n_orient, n_pos=10, n_times=40)
    rho = (0.1, 0.3, 0.6)[seed]
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.4, rho)
    Xm, Am, Em, gm = _mne_tf(
        M,
        G,
        a_s,
        a_t,
        wsize,
        tstep,
        n_orient,
        maxit=10000,
        tol=1e-8,
        debias=False,
        return_gap=True,
    )
    assert gm < 1e-8
    X, A, E, gap = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        a_s,
        a_t,
        wsize,
        tstep,
        n_orient,
        maxit=200,
        tol=1e-8,
        debias=False,
        return_gap=True,
        verbose=False,
    )
    assert gap < 1e-8
    assert A.dtype == bool and A.shape == (G.shape[1],)
    assert_array_equal(A, Am)
    assert A.any()
    assert rel_diff(X, Xm) < 1e-4
    # objective values are comparable: same problem, same optimum
    assert_allclose(E[-1], Em[-1], rtol=1e-8)
    Xd, Ad, _ = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        a_s,
        a_t,
        wsize,
        tstep,
        n_orient,
        maxit=200,
        tol=1e-8,
        debias=True,
        verbose=False,
    )
    assert_array_equal(Ad, Am)
    d = debias_ref(M, G[:, Am], Xm, n_orient)
    assert np.all(d >= 1.0)
    assert rel_diff(Xd, Xm * d[:, None]) < 1e-4


@pytest.mark.parametrize("n_orient", [1, 3])
def test_debias_with_dependent_positions(n_orient):
    """Debiasing with positions whose columns G_j X_j are linearly dependent (a
    position repeated, another nearly so), where the free set's normal matrix
    is singular or nearly: no failure, the bounded least-squares optimum of an
    independent solver (its objective; the weights themselves are not unique),
    weights >= 1."""
    rng = np.random.default_rng(4)
    n_chan, T, n_b = 30, 40, 6
    G = rng.standard_normal((n_chan, n_b * n_orient))
    X = rng.standard_normal((n_b * n_orient, T))
    o = n_orient
    G[:, 1 * o : 2 * o] = G[:, 0:o]  # position 1 repeats position 0 ...
    X[1 * o : 2 * o] = X[0:o]
    G[:, 3 * o : 4 * o] = G[:, 2 * o : 3 * o] * (1 + 1e-9)  # ... 3 nearly repeats 2
    X[3 * o : 4 * o] = X[2 * o : 3 * o]
    d_true = np.repeat([2.5, 0.5, 3.0, 1.0, 1.7, 4.0], o)
    M = G @ (X * d_true[:, None]) + 0.01 * rng.standard_normal((n_chan, T))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "did not converge" fallback
        d = tsolver._debias(M, G, X, n_orient)
    d_ref = debias_ref(M, G, X, n_orient)
    assert np.all(d >= 1.0)

    def objective(w):
        return np.sum((M - G @ (X * w[:, None])) ** 2)

    assert objective(d) <= objective(d_ref) * (1 + 1e-9)


def test_lawson_hanson_matches_nnls():
    """The debiasing's active-set solver on 60 random problems, a third with
    nearly dependent columns (up to 1e-9 apart): it stops (status OK) at the
    optimum of scipy's NNLS, to rounding of the objective."""
    from scipy.optimize import nnls

    from tfmxne._testing import _hooks as H

    rng = np.random.default_rng(7)
    for k in range(60):
        n = int(rng.integers(3, 40))
        A = rng.standard_normal((80, n)) * rng.uniform(0.01, 10.0, n)
        if k % 3 == 0:  # pairs of nearly equal columns
            A[:, 1::2] = A[:, : n - n % 2 : 2][:, : n // 2] * (
                1 + 10.0 ** rng.uniform(-9, -4, n // 2)
            )
        b = A @ rng.uniform(-1, 2, n) + rng.standard_normal(80)
        e, status = H.lawson_hanson(A.T @ A, A.T @ b)
        assert status == 0
        assert np.all(e >= 0)
        x_ref, _ = nnls(A, b, maxiter=50 * n)
        f, f_ref = np.sum((A @ e - b) ** 2), np.sum((A @ x_ref - b) ** 2)
        assert f <= f_ref * (1 + 1e-8) + 1e-10


def test_debias_matches_mne_compute_bias():
    """debias=True: same scaling as MNE's compute_bias when that FISTA converges."""
    from mne.inverse_sparse.mxne_debiasing import compute_bias

    M, G, _ = generate_tf_data()
    for n_orient in (1, 2):
        X, A, _ = tfmxne.tf_mixed_norm_solver(
            M, G, 10.0, 5.0, 32, 4, n_orient, debias=False, verbose=False
        )
        Xd, Ad, _ = tfmxne.tf_mixed_norm_solver(
            M, G, 10.0, 5.0, 32, 4, n_orient, debias=True, verbose=False
        )
        assert_array_equal(A, Ad)
        with one_blas_thread():
            d = compute_bias(
                M, G[:, A], X, max_iter=20000, tol=1e-12, n_orient=n_orient, verbose=False
            )
        assert_allclose(Xd, X * d[:, None], rtol=1e-6, atol=1e-8 * np.abs(Xd).max())
        with one_blas_thread():
            Xm, Am, _ = _mne_tf(
                M, G, 10.0, 5.0, 32, 4, n_orient, maxit=10000, tol=1e-8, debias=True
            )
        assert_array_equal(A, Am)
        assert rel_diff(Xd, Xm) < 1e-4


@pytest.mark.parametrize("n_orient", [1, 3])
@pytest.mark.parametrize("seed", [0, 2])
def test_iterative_one_iteration_agrees_with_mne(seed, n_orient):
    """n_tfmxne_iter=1 (convex problem): same as MNE's iterative solver, and as
    our tf_mixed_norm_solver."""
    wsize, tstep = [16, 8], [4, 2]
    M, G = random_problem(seed, n_orient=n_orient, n_pos=10, n_times=40)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.3, 0.2)
    with one_blas_thread():
        Xm, Am, Em = mo.iterative_tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            1,
            wsize=np.array(wsize),
            tstep=np.array(tstep),
            maxit=10000,
            tol=1e-8,
            debias=False,
            n_orient=n_orient,
            verbose=False,
        )
    X, A, E = tfmxne.iterative_tf_mixed_norm_solver(
        M,
        G,
        a_s,
        a_t,
        1,
        wsize,
        tstep,
        maxit=3000,
        tol=1e-8,
        debias=False,
        n_orient=n_orient,
        verbose=False,
    )
    assert_array_equal(A, Am)
    assert rel_diff(X, Xm) < 1e-4
    assert_allclose(E, Em, rtol=1e-6)
    X1, A1, _ = tfmxne.tf_mixed_norm_solver(
        M, G, a_s, a_t, wsize, tstep, n_orient, debias=False, verbose=False
    )
    assert_array_equal(A, A1)
    assert rel_diff(X, X1) < 1e-6


def _weights_ref(Z, n_orient, c):
    """MNE's irTF-MxNE reweighting, from its formulas (MNE layout)."""
    n_pos = len(Z) // n_orient
    mag2 = (np.abs(Z) ** 2).reshape(n_pos, n_orient, -1).sum(1)
    w_space = 1.0 / (2.0 * np.sqrt(np.sqrt(mag2 @ c)))
    g_time = np.sqrt(np.sqrt(mag2))
    w_time = np.zeros_like(g_time)
    w_time[g_time > 0] = 1.0 / (2.0 * g_time[g_time > 0])
    return w_space, w_time


@pytest.mark.parametrize(
    "wsize, tstep, n_orient, seed",
    [(16, 4, 1, 0), ([16, 8], [4, 2], 2, 1), (16, 4, 3, 2), ([16, 8], [4, 2], 1, 3)],
)
def test_iterative_reweighting_certified(wsize, tstep, n_orient, seed):
    """Each reweighted solve is the optimum of the weighted problem MNE defines.

    Weights are recomputed here from the previous iterate with MNE's formulas
    (w_space = 1 / (2 sqrt ||Z_j||), w_time = 1 / (2 sqrt |Z_jk|), 0 where Z_jk = 0),
    and the duality gap of the weighted problem on the previous support is computed
    with the independent reference. (MNE's own solver is not a usable reference for
    k >= 2: its weighted epsilon norm is wrong for w_time < 1, so it stops with a
    negative reported gap far from the optimum, or crashes.)
    """
    M, G = random_problem(seed, n_orient=n_orient, n_pos=10, n_times=40)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.3, 0.2)
    frame = TFFrame(M.shape[1], wsize, tstep)
    c = multiplicity(wsize, tstep, M.shape[1])
    prev = None
    for k in (1, 2, 3, 4):
        spec = tsolver._Spec(a_s, a_t, frame, n_orient, 3000, 1e-8, 10)
        res, E, k_done = tsolver._iterative_core(M, G, spec, k)
        assert k_done == k
        assert len(E) == k
        # the public solver returns the same estimate
        X_pub, A_pub, E_pub = tfmxne.iterative_tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            k,
            wsize,
            tstep,
            debias=False,
            n_orient=n_orient,
            verbose=False,
        )
        pos, Z, X_res = _solution(res, frame, n_orient)
        assert_array_equal(A_pub, _mask(pos, n_orient, G.shape[1]))
        assert_allclose(X_pub, X_res, rtol=0, atol=1e-12 * np.abs(X_pub).max())
        assert_allclose(E_pub, E, rtol=1e-12)
        assert_allclose(
            X_res,
            mne_phiT(Z, wsize, tstep, M.shape[1]),
            rtol=0,
            atol=1e-10 * np.abs(X_res).max(),
        )
        if prev is None:
            G_k, w_space, w_time = G, None, None
            act = _mask(pos, n_orient, G.shape[1])
        else:
            pos_prev, Z_prev = prev
            w_space, w_time = _weights_ref(Z_prev, n_orient, c)
            G_k = G[:, _mask(pos_prev, n_orient, G.shape[1])]
            assert np.all(np.isin(pos, pos_prev))  # support only shrinks
            act = np.repeat(np.isin(pos_prev, pos), n_orient)
        p_obj, _, _ = objectives_ref(
            M, G_k, Z, act, a_s, a_t, wsize, tstep, n_orient, w_space, w_time
        )
        _assert_certificate(
            res, M, G_k, p_obj, a_s, a_t, wsize, tstep, n_orient, 1e-8, w_space, w_time
        )
        if w_time is not None:  # coefficients with zero weight stay at zero
            rows = np.isin(pos_prev, pos)
            held = np.repeat(w_time[rows] == 0, n_orient, axis=0)
            assert np.all(Z[held] == 0)
        # E: the L0.5 objective of MNE's iterative solver
        mag2 = (np.abs(Z) ** 2).reshape(len(pos), n_orient, -1).sum(1)
        GX = G[:, _mask(pos, n_orient, G.shape[1])] @ X_res
        E_ref = (
            0.5 * np.sum((M - GX) ** 2)
            + a_s * np.sum(np.sqrt(np.sqrt(mag2 @ c)))
            + a_t * np.sum(np.sqrt(np.sqrt(mag2)) @ c)
        )
        assert_allclose(E[-1], E_ref, rtol=1e-10)
        prev = (pos.copy(), Z)


# --------------------------------------------------------------------------
# duality-gap certificate with an independent NumPy computation
# --------------------------------------------------------------------------
def _assert_certificate(
    res, M, G, p_obj, a_s, a_t, wsize, tstep, n_orient, tol, w_space=None, w_time=None
):
    """The reported gap is certified by the returned dual point, recomputed
    independently: theta is feasible, its dual objective is the reported one, and
    the primal (independent, at Z) minus it is within [-1e-10 ||M||^2, tol]."""
    scale = max(1.0, np.sum(M**2))
    d_theta, nu = dual_ref(
        M, G, res.theta, a_s, a_t, wsize, tstep, n_orient, w_space, w_time
    )
    assert nu <= (a_s + a_t) * (1 + 1e-10), (nu, a_s + a_t)
    assert abs(res.d_obj - d_theta) <= 1e-10 * scale
    assert abs(res.p_obj - p_obj) <= 1e-10 * scale
    assert -1e-10 * scale <= p_obj - d_theta <= tol
    assert -1e-10 * scale <= res.gap < tol
    assert_allclose(res.gap, res.p_obj - res.d_obj, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize(
    "n_orient, wsize, tstep, seed, rho, frac",
    [
        (1, 16, 4, 0, 0.2, 0.3),
        (2, 16, 4, 1, 0.2, 0.3),
        (3, 16, 4, 2, 0.5, 0.2),
        (4, 16, 4, 3, 0.05, 0.3),
        (5, 16, 4, 4, 0.2, 0.3),
        (1, [16, 8], [4, 2], 5, 0.3, 0.2),
        (3, [32, 16, 8], [4, 4, 2], 6, 0.2, 0.3),
        (2, 16, 4, 7, 1.0, 0.3),  # alpha_space = 0
        (2, 16, 4, 8, 0.0, 0.3),  # alpha_time = 0
    ],
)
def test_gap_certificate(n_orient, wsize, tstep, seed, rho, frac):
    M, G = random_problem(seed, n_orient=n_orient, n_pos=12, n_times=40, n_true=3)
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, frac, rho)
    tol = 1e-8
    M_, G_, n_or, frame, res = _solver_core(
        M, G, a_s, a_t, wsize, tstep, n_orient, 1000, tol, 10
    )
    assert res.converged
    assert n_or == n_orient
    n_src = G.shape[1]
    pos, Z, X_res = _solution(res, frame, n_orient)
    act = _mask(pos, n_orient, n_src)
    assert Z.shape == (act.sum(), len(multiplicity(wsize, tstep, M.shape[1])))
    assert np.all(np.any(Z.reshape(len(pos), -1) != 0, axis=1))  # no empty rows
    assert_allclose(
        X_res,
        mne_phiT(Z, wsize, tstep, M.shape[1]),
        rtol=0,
        atol=1e-10 * np.abs(X_res).max(),
    )
    p_obj, d_obj, R = objectives_ref(M, G, Z, act, a_s, a_t, wsize, tstep, n_orient)
    _assert_certificate(res, M, G, p_obj, a_s, a_t, wsize, tstep, n_orient, tol)
    # public certificate on the same point
    gap_pub, p_pub, d_pub = tfmxne.dgap_l21l1(
        M, G, Z, act, a_s, a_t, wsize, tstep, n_orient
    )
    assert_allclose(p_pub, p_obj, rtol=1e-12)
    assert_allclose(d_pub, d_obj, rtol=1e-10)
    # the public solver returns the same support and estimate
    X, A, E, g = tfmxne.tf_mixed_norm_solver(
        M,
        G,
        a_s,
        a_t,
        wsize,
        tstep,
        n_orient,
        maxit=1000,
        tol=tol,
        debias=False,
        return_gap=True,
        verbose=False,
    )
    assert_array_equal(A, act)
    assert_allclose(X, X_res, rtol=0, atol=1e-12 * np.abs(X).max())
    assert g == res.gap


def test_gap_certificate_many_positions():
    """A larger free-orientation problem (screening, several working-set rounds)."""
    n_orient, wsize, tstep = 3, [16, 8], [4, 2]
    M, G = random_problem(
        11, n_sensors=24, n_orient=n_orient, n_pos=120, n_times=48, n_true=6
    )
    a_s, a_t = _alphas(M, G, n_orient, wsize, tstep, 0.1, 0.2)
    _, _, _, frame, res = _solver_core(
        M, G, a_s, a_t, wsize, tstep, n_orient, 1000, 1e-8, 10
    )
    assert res.converged and res.n_outer > 2
    pos, Z, _ = _solution(res, frame, n_orient)
    act = _mask(pos, n_orient, G.shape[1])
    assert act.sum() > 6 * n_orient
    p_obj, _, _ = objectives_ref(M, G, Z, act, a_s, a_t, wsize, tstep, n_orient)
    _assert_certificate(res, M, G, p_obj, a_s, a_t, wsize, tstep, n_orient, 1e-8)


def test_empty_solution_above_alpha_max():
    """alpha >= alpha_max: Z = 0 is optimal (MNE crashes on this case)."""
    M, G = random_problem(0, n_orient=2, n_times=37)
    a_s, a_t = _alphas(M, G, 2, 16, 4, 1.01, 0.2)
    X, A, E, gap = tfmxne.tf_mixed_norm_solver(
        M, G, a_s, a_t, 16, 4, 2, return_gap=True, verbose=False
    )
    assert X.shape == (0, 37)
    assert not A.any() and A.shape == (G.shape[1],)
    assert_allclose(E, [0.5 * np.sum(M**2)])
    assert gap == 0.0
    X, A, E = tfmxne.iterative_tf_mixed_norm_solver(
        M, G, a_s, a_t, 3, 16, 4, n_orient=2, verbose=False
    )
    assert X.shape == (0, 37) and not A.any()
    assert_allclose(E, [0.5 * np.sum(M**2)])
    # just below: one position, the one with the largest epsilon norm
    a_s, a_t = _alphas(M, G, 2, 16, 4, 0.99, 0.2)
    X, A, _ = tfmxne.tf_mixed_norm_solver(M, G, a_s, a_t, 16, 4, 2, verbose=False)
    nus = eps_norms_ref(G, M, 0.2, 2, 16, 4)
    assert_array_equal(np.flatnonzero(A), [2 * nus.argmax(), 2 * nus.argmax() + 1])


def test_solver_options():
    """active_set_size is ignored, dgap_freq=np.inf works, E is a list of floats."""
    M, G, true = generate_tf_data()
    ref = tfmxne.tf_mixed_norm_solver(M, G, 10.0, 5.0, 32, 4, verbose=False)
    for kw in (dict(active_set_size=3), dict(dgap_freq=np.inf), dict(dgap_freq=1)):
        X, A, E = tfmxne.tf_mixed_norm_solver(M, G, 10.0, 5.0, 32, 4, verbose=False, **kw)
        assert_array_equal(np.flatnonzero(A), true)
        assert rel_diff(X, ref[0]) < 1e-6
        assert isinstance(E, list) and all(np.isscalar(e) for e in E)
    X, A, E = tfmxne.iterative_tf_mixed_norm_solver(
        M, G, 10.0, 5.0, 2, 32, 4, dgap_freq=np.inf, verbose=False
    )
    assert_array_equal(np.flatnonzero(A), true)


# --------------------------------------------------------------------------
# convergence guard
# --------------------------------------------------------------------------
def _hard_problem():
    M, G = random_problem(0, n_sensors=20, n_pos=40, n_orient=1, n_times=64, n_true=5)
    G = G + 0.9 * np.roll(G, 1, axis=1)  # correlated columns
    G /= np.linalg.norm(G, axis=0)
    a_s, a_t = _alphas(M, G, 1, 16, 4, 0.05, 0.1)
    return M, G, a_s, a_t


_GAP_MSG = re.compile(r"duality gap (\S+) >= tol (\S+)")


def test_maxit_warns():
    """maxit=1 with a tight tol: RuntimeWarning naming the gap and tol."""
    M, G, a_s, a_t = _hard_problem()
    # with a normal maxit the problem converges silently
    _, _, _, gap = tfmxne.tf_mixed_norm_solver(
        M, G, a_s, a_t, 16, 4, maxit=1000, tol=1e-10, return_gap=True, verbose=False
    )
    assert gap < 1e-10
    with pytest.warns(RuntimeWarning, match=r"duality gap .* >= tol 1\.000e-10") as rec:
        _, _, _, gap = tfmxne.tf_mixed_norm_solver(
            M, G, a_s, a_t, 16, 4, maxit=1, tol=1e-10, return_gap=True, verbose=False
        )
    assert gap >= 1e-10
    msgs = [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1
    m = _GAP_MSG.search(msgs[0])
    assert_allclose(float(m.group(1)), gap, rtol=1e-3)
    assert "maxit=1" in msgs[0]
    with pytest.warns(
        RuntimeWarning, match=r"iterative_tf_mixed_norm_solver .*duality gap"
    ):
        tfmxne.iterative_tf_mixed_norm_solver(
            M, G, a_s, a_t, 1, 16, 4, maxit=1, tol=1e-10, verbose=False
        )


def test_outer_cap_warns(monkeypatch):
    """The outer working-set loop is capped by MAX_OUTER_ITER, with a warning."""
    M, G, a_s, a_t = _hard_problem()
    monkeypatch.setattr(tsolver, "MAX_OUTER_ITER", 1)
    with pytest.warns(RuntimeWarning, match=r"duality gap .* >= tol .*cap 1\)"):
        X, A, E = tfmxne.tf_mixed_norm_solver(
            M, G, a_s, a_t, 16, 4, maxit=1000, tol=1e-10, verbose=False
        )
    assert np.all(np.isfinite(X))


def test_outer_cap_gap_is_gap_of_returned_estimate(monkeypatch):
    """When the outer cap stops the solve, the reported gap (warning, return_gap,
    res.gap) must bound the suboptimality of the estimate actually returned and not
    be that of the previous iterate (regression: it reported the gap before the
    last inner solve)."""
    M, G, _ = generate_tf_data()
    monkeypatch.setattr(tsolver, "MAX_OUTER_ITER", 1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _, _, _, frame, res = _solver_core(M, G, 10.0, 5.0, 32, 4, 1, 200, 1e-8, 10)
    pos, Z, X_res = _solution(res, frame, 1)
    act = _mask(pos, 1, G.shape[1])
    p_obj, d_obj, _ = objectives_ref(M, G, Z, act, 10.0, 5.0, 32, 4, 1)
    true_gap = p_obj - d_obj
    assert true_gap >= -1e-10 * max(1.0, p_obj)
    msgs = [str(w.message) for w in rec]
    assert res.gap <= true_gap + 1e-6 * max(1.0, p_obj), (
        f"reported gap {res.gap:.3e} but the returned estimate has gap {true_gap:.3e}; "
        f"warnings: {msgs}"
    )


# --------------------------------------------------------------------------
# inputs never modified; dtype / memory layout
# --------------------------------------------------------------------------
def _variants(M, G):
    yield "C float64", M.copy(), G.copy()
    yield "F G", M.copy(), np.asfortranarray(G)
    yield "float32", M.astype(np.float32), G.astype(np.float32)
    yield (
        "F float32",
        np.asfortranarray(M.astype(np.float32)),
        np.asfortranarray(G.astype(np.float32)),
    )
    yield "strided", np.repeat(M, 2, axis=1)[:, ::2], np.repeat(G, 2, axis=0)[::2]


def test_inputs_not_modified_and_layouts():
    M0, G0 = random_problem(3, n_orient=1, n_pos=10, n_times=32)
    a_s, a_t = _alphas(M0, G0, 1, 16, 4, 0.4, 0.2)
    wsize, tstep = [16, 8], [4, 2]
    K = len(multiplicity(wsize, tstep, 32))
    for name, M, G in _variants(M0, G0):
        Mc, Gc = M.copy(order="K"), G.copy(order="K")
        flags = (M.flags.f_contiguous, G.flags.f_contiguous)
        M64 = np.ascontiguousarray(M, dtype=np.float64)
        G64 = np.ascontiguousarray(G, dtype=np.float64)
        ref = tfmxne.tf_mixed_norm_solver(M64, G64, a_s, a_t, wsize, tstep, verbose=False)
        out = tfmxne.tf_mixed_norm_solver(M, G, a_s, a_t, wsize, tstep, verbose=False)
        assert out[0].dtype == np.float64, name
        assert_array_equal(out[1], ref[1])
        # one internal layout: the same bits whatever the caller's layout/dtype
        assert_array_equal(out[0], ref[0], err_msg=name)
        assert not np.shares_memory(out[0], M)
        ref_i = tfmxne.iterative_tf_mixed_norm_solver(
            M64, G64, a_s, a_t, 3, wsize, tstep, verbose=False
        )
        out_i = tfmxne.iterative_tf_mixed_norm_solver(
            M, G, a_s, a_t, 3, wsize, tstep, verbose=False
        )
        assert_array_equal(out_i[1], ref_i[1])
        assert_array_equal(out_i[0], ref_i[0], err_msg=name)
        tfmxne.norm_epsilon_inf(G, M, 0.3, 1, wsize, tstep)
        w_space = np.ones(G.shape[1])
        w_time = np.ones((G.shape[1], K))
        wsc, wtc = w_space.copy(), w_time.copy()
        tfmxne.norm_epsilon_inf(G, M, 0.3, 1, wsize, tstep, w_space, w_time)
        Z = np.ones((2, K), complex)
        Zc = Z.copy()
        act = np.zeros(G.shape[1], bool)
        act[[1, 4]] = True
        actc = act.copy()
        tfmxne.dgap_l21l1(M, G, Z, act, a_s, a_t, wsize, tstep, 1, w_space, w_time)
        for a, b in (
            (M, Mc),
            (G, Gc),
            (w_space, wsc),
            (w_time, wtc),
            (Z, Zc),
            (act, actc),
        ):
            assert_array_equal(a, b, err_msg=name)
            assert a.dtype == b.dtype
        assert (M.flags.f_contiguous, G.flags.f_contiguous) == flags
    # the STFT leaves its inputs alone too
    x = M0.copy()
    X = tfmxne.stft(x, 16, 4, verbose=False)
    Xc = X.copy()
    tfmxne.istft(X, 4, 32)
    tfmxne.stft_norm2(X)
    tfmxne.stft_norm1(X)
    assert_array_equal(x, M0)
    assert_array_equal(X, Xc)


@pytest.mark.parametrize("n_orient", [1, 3])
@pytest.mark.parametrize("wsize, tstep", [(16, 4), ([16, 8], [4, 2])])
def test_dgap_l21l1_arbitrary_point_with_weights(n_orient, wsize, tstep):
    """dgap_l21l1 at an arbitrary (non-optimal) Z, with and without weights, equals
    the independent primal / dual objectives."""
    rng = np.random.default_rng(n_orient)
    M, G = random_problem(1, n_orient=n_orient, n_pos=10, n_times=40)
    c = multiplicity(wsize, tstep, 40)
    K = len(c)
    act = np.zeros(10 * n_orient, bool)
    act[2 * n_orient : 4 * n_orient] = True
    Z = rng.standard_normal((2 * n_orient, K)) + 1j * rng.standard_normal(
        (2 * n_orient, K)
    )
    Z[:, c == 1] = Z[:, c == 1].real
    w_space = rng.uniform(0.5, 2.0, 10)
    w_time = rng.uniform(0.05, 2.0, (10, K))
    w_time[rng.random((10, K)) < 0.2] = 0.0
    for ws, wt in ((None, None), (w_space, None), (None, w_time), (w_space, w_time)):
        gap, p_obj, d_obj = tfmxne.dgap_l21l1(
            M, G, Z, act, 1.0, 0.5, wsize, tstep, n_orient, ws, wt
        )
        p_ref, d_ref, _ = objectives_ref(
            M, G, Z, act, 1.0, 0.5, wsize, tstep, n_orient, ws, wt
        )
        assert_allclose(p_obj, p_ref, rtol=1e-12)
        assert_allclose(d_obj, d_ref, rtol=1e-10)
        assert_allclose(gap, p_obj - d_obj, rtol=1e-12)
        assert gap > 0


def test_solver_core_float32():
    """The float32 engine reaches a certified (float64-evaluated) solution."""
    M, G, true = generate_tf_data()
    tol = 1e-2
    _, _, _, frame, res = _solver_core(
        M, G, 10.0, 5.0, 32, 4, 1, 200, tol, 10, dtype=np.float32
    )
    assert res.converged
    assert res.Z.dtype == np.float32
    assert_array_equal(np.sort(res.positions), true)
    pos, Z, X_res = _solution(res, frame, 1)
    act = _mask(pos, 1, G.shape[1])
    p_obj, d_obj, _ = objectives_ref(M, G, Z, act, 10.0, 5.0, 32, 4, 1)
    assert p_obj - d_obj < tol
    X64, _, _ = tfmxne.tf_mixed_norm_solver(
        M, G, 10.0, 5.0, 32, 4, debias=False, verbose=False
    )
    assert rel_diff(X_res.astype(np.float64), X64) < 1e-3


def test_removed_dual_refine_is_deprecated():
    with pytest.warns(DeprecationWarning, match="DUAL_REFINE"):
        assert tsolver.DUAL_REFINE is False
    with pytest.raises(AttributeError, match="NOT_A_NAME"):
        tsolver.NOT_A_NAME  # noqa: B018
