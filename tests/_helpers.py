# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Shared helpers for the engine tests: independent NumPy references built on MNE.

Nothing here uses tfmxne: the references are written from the definitions, with
MNE's own STFT (:func:`mne.time_frequency.stft` / ``istft``) as the frame.
"""

import contextlib
import pickle
from pathlib import Path

import numpy as np
from mne.time_frequency import istft as mne_istft
from mne.time_frequency import stft as mne_stft
from scipy.optimize import lsq_linear
from threadpoolctl import threadpool_limits


def cached(cache_dir, name, fun):
    """Compute ``fun()`` once per cache folder (pickle)."""
    path = Path(cache_dir) / f"{name}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    out = fun()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(out, f)
    tmp.replace(path)
    return out


def subset_forward(fwd, step):
    """The forward restricted to every ``step``-th position of each source space."""
    import mne

    verts = [s["vertno"][::step] for s in fwd["src"]]
    if fwd["src"].kind == "surface":
        stc = mne.SourceEstimate(
            np.zeros((sum(map(len, verts)), 1)), verts, 0, 1, subject="sample"
        )
    else:
        stc = mne.VolSourceEstimate(
            np.zeros((len(verts[0]), 1)), verts, 0, 1, subject="sample"
        )
    return mne.forward.restrict_forward_to_stc(fwd, stc)


def debias_ref(M, G_A, X, n_orient):
    """Exact debiasing: ``min ||M - sum_j d_j G_j X_j||^2`` s.t. ``d_j >= 1``.

    ``d_j`` is tied over the ``n_orient`` rows of position ``j`` (MNE's
    ``compute_bias`` problem), solved by bounded-variable least squares on the
    columns ``vec(G_j X_j)``. Returns one scaling per row of ``X``.
    """
    n_b = X.shape[0] // n_orient
    if n_b == 0:
        return np.ones(0)
    cols = [
        (
            G_A[:, j * n_orient : (j + 1) * n_orient]
            @ X[j * n_orient : (j + 1) * n_orient]
        ).ravel()
        for j in range(n_b)
    ]
    res = lsq_linear(
        np.stack(cols, 1), M.ravel(), bounds=(1.0, np.inf), method="bvls", tol=1e-14
    )
    return np.repeat(res.x, n_orient)


@contextlib.contextmanager
def mne_exact_debias():
    """Run MNE's solvers with their debiasing problem solved exactly.

    MNE's ``compute_bias`` (FISTA, 1000 iterations, tol 1e-6 on the change of
    the scaling) often stops far from the minimiser of its own problem; "MNE's
    converged optimum" is MNE's code with that step replaced by
    :func:`debias_ref`, which shares nothing with tfmxne.
    """
    from mne.inverse_sparse import mxne_optim

    original = mxne_optim.compute_bias

    def exact(M, G, X, max_iter=1000, tol=1e-6, n_orient=1, verbose=None):
        return debias_ref(M, G, X, n_orient)

    mxne_optim.compute_bias = exact
    try:
        yield
    finally:
        mxne_optim.compute_bias = original


@contextlib.contextmanager
def one_blas_thread():
    """Run MNE's solvers with one BLAS thread.

    MNE's ``_Phi`` multiplies tiny real rows by complex matrices; with a threaded
    OpenBLAS this is ~1000x slower (ms instead of us per product) on small cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def generate_tf_data():
    """Same data as ``_generate_tf_data`` in MNE's ``test_mxne_optim.py``."""
    n, p, t = 30, 40, 64
    rng = np.random.default_rng(1)
    G = rng.standard_normal((n, p))
    G /= np.std(G, axis=0)[None, :]
    X = np.zeros((p, t))
    active_set = [0, 4]
    times = np.linspace(0, 2 * np.pi, t)
    X[0] = np.sin(times)
    X[4] = -2 * np.sin(4 * times)
    X[4, times <= np.pi / 2] = 0
    X[4, times >= np.pi] = 0
    M = np.dot(G, X)
    M += rng.normal(scale=1, size=M.shape)
    return M, G, active_set


def random_problem(
    seed, n_sensors=16, n_pos=12, n_orient=1, n_times=48, n_true=2, noise=0.3
):
    """Small random sparse problem: (M, G) with ``n_true`` oscillating positions."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_sensors, n_pos * n_orient))
    G /= np.linalg.norm(G, axis=0)[None, :]
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for j in rng.choice(n_pos, n_true, replace=False):
        f = rng.uniform(0.02, 0.2)
        env = np.exp(
            -0.5 * ((t - rng.uniform(0.3, 0.7) * n_times) / (0.15 * n_times)) ** 2
        )
        for o in range(n_orient):
            X[j * n_orient + o] = rng.uniform(1, 3) * env * np.sin(2 * np.pi * f * t + o)
    M = G @ X + noise * rng.standard_normal((n_sensors, n_times))
    return M, G


def _dicts(wsize, tstep):
    ws = [int(w) for w in np.atleast_1d(wsize)]
    ts = [int(t) for t in np.atleast_1d(tstep)]
    assert len(ws) == len(ts)
    return ws, ts


def mne_phi(x, wsize, tstep):
    """MNE-layout coefficients of the rows of ``x`` (like MNE's private ``_Phi``).

    Per dictionary the (n_freqs, n_steps) STFT flattened freq-major; dictionaries
    concatenated and scaled by ``1 / sqrt(n_dicts)``.
    """
    ws, ts = _dicts(wsize, tstep)
    x = np.atleast_2d(x)
    parts = [mne_stft(x, w, t, verbose=False).reshape(len(x), -1) for w, t in zip(ws, ts)]
    return np.hstack(parts) / np.sqrt(len(ws))


def mne_phiT(Z, wsize, tstep, n_times):
    """Adjoint of :func:`mne_phi` (signals from MNE-layout coefficients)."""
    ws, ts = _dicts(wsize, tstep)
    Z = np.atleast_2d(Z)
    x = np.zeros((len(Z), n_times))
    off = 0
    for w, t in zip(ws, ts):
        nf, ns = w // 2 + 1, int(np.ceil(n_times / t))
        block = Z[:, off : off + nf * ns].reshape(len(Z), nf, ns)
        x += mne_istft(block, t, n_times)
        off += nf * ns
    assert off == Z.shape[1]
    return x / np.sqrt(len(ws))


def multiplicity(wsize, tstep, n_times):
    """c_k in MNE layout: 1 for the DC and Nyquist rows, 2 for the others."""
    ws, ts = _dicts(wsize, tstep)
    out = []
    for w, t in zip(ws, ts):
        nf, ns = w // 2 + 1, int(np.ceil(n_times / t))
        c = np.full((nf, ns), 2.0)
        c[0] = 1.0
        c[-1] = 1.0
        out.append(c.ravel())
    return np.concatenate(out)


def eps_norm_ref(y, c, rho, w_space=1.0, w_time=None):
    """Dual norm of ``(1 - rho) w_s ||z||_2 + rho sum_k c_k w_k |z_k|`` at ``|y|``.

    ``||z||_2^2 = sum_k c_k |z_k|^2``. Coefficients with ``w_k == 0`` are held at
    zero in the primal, so the dual ignores them. The norm is the root of the
    decreasing function ``f(nu) = sum_k c_k (y_k - rho nu w_k)_+^2
    - ((1 - rho) w_s nu)^2``, found by bisection and polished by solving the
    quadratic exactly on the coefficients active at the bracketed root.
    """
    y = np.abs(np.asarray(y, dtype=float)).ravel()
    c = np.asarray(c, dtype=float).ravel()
    w = np.ones_like(y) if w_time is None else np.asarray(w_time, dtype=float).ravel()
    assert y.shape == c.shape == w.shape
    assert np.all(w >= 0) and w_space > 0 and 0 <= rho <= 1
    keep = w > 0
    y, c, w = y[keep], c[keep], w[keep]
    if y.size == 0 or not np.any(y > 0):
        return 0.0
    l2 = np.sqrt(np.sum(c * y**2))
    if rho == 1:
        return float(np.max(y / w))
    if rho == 0:
        return float(l2 / w_space)

    def f(nu):
        return (
            np.sum(c * np.maximum(y - rho * nu * w, 0.0) ** 2)
            - ((1 - rho) * w_space * nu) ** 2
        )

    lo = 0.0
    hi = min(np.max(y / w) / rho, l2 / ((1 - rho) * w_space))
    assert f(hi) <= 1e-12 * l2**2
    for _ in range(2000):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    nu = 0.5 * (lo + hi)
    act = y > rho * nu * w
    a = rho**2 * np.sum(c[act] * w[act] ** 2) - ((1 - rho) * w_space) ** 2
    b = rho * np.sum(c[act] * w[act] * y[act])
    cc = np.sum(c[act] * y[act] ** 2)
    root = cc / (b + np.sqrt(max(b * b - a * cc, 0.0)))
    if abs(root - nu) <= 1e-8 * nu:
        nu = root
    return float(nu)


def eps_norms_ref(G, R, rho, n_orient, wsize, tstep, w_space=None, w_time=None):
    """Per-position epsilon norms of ``Phi(G_j^T R)`` (MNE layout weights)."""
    n_times = R.shape[1]
    n_pos = G.shape[1] // n_orient
    Y = mne_phi(G.T @ R, wsize, tstep)
    mag = np.sqrt((np.abs(Y) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1))
    c = multiplicity(wsize, tstep, n_times)
    return np.array(
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


def objectives_ref(
    M,
    G,
    Z,
    active_set,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    w_space=None,
    w_time=None,
):
    """Independent (p_obj, d_obj, R) of TF-MxNE at ``Z`` (MNE layout, active rows).

    The dual point is ``R * min(1, (alpha_space + alpha_time) / nu)`` with ``nu``
    the epsilon norm over ALL positions.
    """
    n_times = M.shape[1]
    active_set = np.asarray(active_set, bool)
    n_pos = G.shape[1] // n_orient
    c = multiplicity(wsize, tstep, n_times)
    X = mne_phiT(Z, wsize, tstep, n_times) if len(Z) else np.zeros((0, n_times))
    R = M - G[:, active_set] @ X
    act_pos = np.flatnonzero(active_set.reshape(n_pos, n_orient)[:, 0])
    if len(Z):
        mag2 = (np.abs(Z) ** 2).reshape(len(act_pos), n_orient, -1).sum(axis=1)
        ws = np.ones(len(act_pos)) if w_space is None else np.asarray(w_space)[act_pos]
        wt = 1.0 if w_time is None else np.asarray(w_time)[act_pos]
        l21 = float(np.sum(ws * np.sqrt(mag2 @ c)))
        l1 = float(np.sum(wt * np.sqrt(mag2) * c[None, :]))
    else:
        l21 = l1 = 0.0
    nR2 = float(np.sum(R**2))
    p_obj = 0.5 * nR2 + alpha_space * l21 + alpha_time * l1
    alpha = alpha_space + alpha_time
    nu = eps_norms_ref(
        G, R, alpha_time / alpha, n_orient, wsize, tstep, w_space, w_time
    ).max()
    scal = 1.0 if nu <= alpha else alpha / nu
    d_obj = scal * float(np.sum(M * R)) - 0.5 * scal**2 * nR2
    return p_obj, d_obj, R


def dual_ref(
    M,
    G,
    theta,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    w_space=None,
    w_time=None,
):
    """Independent dual objective ``<theta, M> - ||theta||^2 / 2`` of a dual point
    and its dual norm (max epsilon norm of ``Phi(G_j^T theta)``), which must not
    exceed ``alpha_space + alpha_time`` for theta to be feasible."""
    alpha = alpha_space + alpha_time
    nu = eps_norms_ref(
        G, theta, alpha_time / alpha, n_orient, wsize, tstep, w_space, w_time
    ).max()
    return float(np.sum(M * theta)) - 0.5 * float(np.sum(theta**2)), nu


def correlated_problem(seed, n_orient, n_chan=24, n_pos=40, n_times=48):
    """Neighbouring columns highly correlated (like grid positions): slow block
    coordinate descent tails, where the certificate matters. Returns (M, G)."""
    rng = np.random.default_rng(seed)
    G = np.cumsum(rng.standard_normal((n_chan, n_pos * n_orient)), axis=1)
    G /= np.linalg.norm(G, axis=0)
    X = np.zeros((n_pos * n_orient, n_times))
    t = np.arange(n_times)
    for k, j in enumerate(rng.choice(n_pos, 3, replace=False)):
        X[j * n_orient] = np.sin(2 * np.pi * t / (6 + 3 * k)) * np.hanning(n_times)
    return G @ X + 0.3 * rng.standard_normal((n_chan, n_times)), G


def rel_diff(a, b):
    """max |a - b| / max |b| (0 when both are empty)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    if b.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(float).tiny))
