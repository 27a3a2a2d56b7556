# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Property-based checks of the TF-MxNE solver on small random problems.

Each property is a mathematical fact about the convex problem, checked at the
solution returned by :func:`tfmxne.tf_mixed_norm_solver`:

* the duality gap is a certificate (``0 <= gap <= tol`` up to rounding);
* KKT: the epsilon dual norm of ``Phi(G_j^T R)`` is at most
  ``alpha_space + alpha_time`` for every position, with equality on the support;
* homogeneity: ``(s M, s alpha_space, s alpha_time)`` gives ``s X`` (bitwise for a
  power of two, where every floating point operation of the solver scales exactly);
* ``wsize=[w], tstep=[t]`` is the scalar call;
* ``alpha_time = 0`` is MxNE (time-domain L21): the frame is a Parseval frame, so
  ``||PhiT(Z)_j|| <= ||Z_j||`` with equality for ``Z = Phi(X)``; both problems
  then have the same optimal value and ``PhiT(Z*)`` solves the L21 problem;
* float32 agrees with float64 to float32 accuracy.

The examples are derandomized (reproducible in CI) and kept few and small.
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfmxne
from tfmxne.solver import _cols, _solver_core

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOL = 1e-10


@st.composite
def problems(draw, max_orient=5):
    n_sensors = draw(st.integers(8, 20))
    n_pos = draw(st.integers(4, 12))
    n_times = draw(st.integers(16, 48))
    wsize = draw(st.sampled_from([8, 16]))
    tstep = draw(st.sampled_from([2, 4]))
    n_orient = draw(st.integers(1, max_orient))
    seed = draw(st.integers(0, 2**32 - 1))
    frac = draw(st.floats(0.15, 0.8))
    l1_ratio = draw(st.floats(0.02, 0.9))
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_sensors, n_pos * n_orient))
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for j in rng.choice(n_pos, min(2, n_pos), replace=False):
        X[j * n_orient : (j + 1) * n_orient] = rng.standard_normal(
            (n_orient, 1)
        ) * np.sin(2 * np.pi * t / rng.uniform(4, 16))
    M = G @ X + 0.2 * rng.standard_normal((n_sensors, n_times))
    amax = tfmxne.norm_epsilon_inf(G, M, l1_ratio, n_orient, wsize, tstep)
    alpha = frac * amax
    return dict(
        M=M,
        G=G,
        alpha_space=alpha * (1 - l1_ratio),
        alpha_time=alpha * l1_ratio,
        wsize=wsize,
        tstep=tstep,
        n_orient=n_orient,
    )


def _solve(p, **kw):
    kw = dict(maxit=1000, tol=TOL, debias=False, return_gap=True) | kw
    return tfmxne.tf_mixed_norm_solver(
        p["M"],
        p["G"],
        p["alpha_space"],
        p["alpha_time"],
        p["wsize"],
        p["tstep"],
        p["n_orient"],
        **kw,
    )


def _position_norms(p, X, active):
    """Epsilon dual norm of Phi(G_j^T R) for every position, R = M - G X."""
    M, G, o = p["M"], p["G"], p["n_orient"]
    R = M - G[:, active] @ X if active.any() else M
    rho = p["alpha_time"] / (p["alpha_space"] + p["alpha_time"])
    return np.array(
        [
            tfmxne.norm_epsilon_inf(
                G[:, _cols([j], o)], R, rho, o, p["wsize"], p["tstep"]
            )
            for j in range(G.shape[1] // o)
        ]
    )


@SETTINGS
@given(problems())
def test_gap_certificate_and_kkt(p):
    X, active, E, gap = _solve(p)
    nM2 = float(np.sum(p["M"] ** 2))
    assert -1e-10 * max(1.0, nM2) <= gap <= TOL
    o = p["n_orient"]
    alpha = p["alpha_space"] + p["alpha_time"]
    act_pos = active.reshape(-1, o).any(axis=1)
    assert np.array_equal(active, np.repeat(act_pos, o))  # whole blocks
    nu = _position_norms(p, X, active)
    # dual feasibility everywhere (zero blocks: <= alpha), equality on the support;
    # the gap bounds ||R - R*||^2 <= 2 gap, hence the small slack
    assert np.all(nu <= alpha * (1 + 1e-6)), (nu / alpha).max()
    np.testing.assert_allclose(nu[act_pos], alpha, rtol=1e-4)


@SETTINGS
@given(problems(), st.sampled_from([0.25, 0.5, 2.0, 8.0, 0.3, 3.7]))
def test_homogeneity(p, s):
    X, active, _, gap = _solve(p)
    q = p | dict(
        M=s * p["M"], alpha_space=s * p["alpha_space"], alpha_time=s * p["alpha_time"]
    )
    Xs, active_s, _, gap_s = _solve(q, tol=TOL * s**2)
    assert gap_s <= TOL * s**2
    if np.log2(s) == int(np.log2(s)):
        # every operation scales exactly by a power of two: bitwise
        np.testing.assert_array_equal(active_s, active)
        np.testing.assert_array_equal(Xs, s * X)
        return
    scale = max(np.abs(X).max(initial=0.0), 1e-300)
    if not np.array_equal(active_s, active):  # only borderline sources may differ
        o = p["n_orient"]
        nu = _position_norms(p, X, active) / (p["alpha_space"] + p["alpha_time"])
        diff = (active_s != active).reshape(-1, o).any(axis=1)
        assert np.all(nu[diff] > 1 - 1e-3)
        full = np.zeros((len(active), X.shape[1]))
        full[active] = X
        full_s = np.zeros_like(full)
        full_s[active_s] = Xs
        np.testing.assert_allclose(full_s / s, full, atol=1e-3 * scale)
        return
    np.testing.assert_allclose(Xs / s, X, rtol=1e-4, atol=1e-6 * scale)


@SETTINGS
@given(problems())
def test_single_dictionary_list_is_scalar(p):
    X, active, E, gap = _solve(p)
    q = p | dict(wsize=[p["wsize"]], tstep=[p["tstep"]])
    X1, active1, E1, gap1 = _solve(q)
    np.testing.assert_array_equal(active1, active)
    np.testing.assert_array_equal(X1, X)
    assert E1 == E and gap1 == gap


@SETTINGS
@given(problems(max_orient=3))
def test_alpha_time_zero_is_mxne(p):
    from mne.inverse_sparse.mxne_optim import mixed_norm_solver

    alpha = p["alpha_space"] + p["alpha_time"]
    q = p | dict(alpha_space=alpha, alpha_time=0.0)
    X, active, _, gap = _solve(q, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MNE's own convergence chatter
        Xm, active_m, _ = mixed_norm_solver(
            p["M"],
            p["G"],
            alpha,
            maxit=3000,
            tol=1e-12 * float(np.sum(p["M"] ** 2)),
            n_orient=p["n_orient"],
            debias=False,
            verbose=False,
        )
    np.testing.assert_array_equal(active, active_m)
    scale = max(np.abs(Xm).max(initial=0.0), 1e-300)
    np.testing.assert_allclose(X, Xm, rtol=1e-3, atol=1e-6 * scale)


@SETTINGS
@given(problems())
def test_float32_matches_float64(p):
    args = (
        p["M"],
        p["G"],
        p["alpha_space"],
        p["alpha_time"],
        p["wsize"],
        p["tstep"],
        p["n_orient"],
        1000,
    )
    nM2 = float(np.sum(p["M"] ** 2))
    _, _, o, _, r64 = _solver_core(*args, TOL, 10)
    _, _, _, _, r32 = _solver_core(*args, 1e-6 * nM2, 10, dtype=np.float32)
    assert r32.X.dtype == np.float32 and r32.converged
    n_pos, T = p["G"].shape[1] // o, p["M"].shape[1]

    def full(res):
        out = np.zeros((n_pos * o, T))
        out[_cols(res.positions, o)] = res.X
        return out

    X64, X32 = full(r64), full(r32)
    s64 = np.zeros(n_pos, bool)
    s64[r64.positions] = True
    s32 = np.zeros(n_pos, bool)
    s32[r32.positions] = True
    scale = max(np.abs(X64).max(initial=0.0), 1e-300)
    # support: equal except on borderline positions (dual norm within 1e-3 of alpha)
    if not np.array_equal(s32, s64):
        act = np.repeat(s64, o)
        nu = _position_norms(p, X64[act], act) / (p["alpha_space"] + p["alpha_time"])
        assert np.all(nu[s32 != s64] > 1 - 1e-3), nu[s32 != s64]
    assert np.abs(X32 - X64).max() <= 1e-3 * scale
