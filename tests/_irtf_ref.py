# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Independent NumPy reference for the weighted TF-MxNE problems of irTF-MxNE.

Nothing here uses tfmxne. Reweighting ``k`` of irTF-MxNE solves, on the positions
active after reweighting ``k - 1``, the convex problem::

    min_Z 0.5 ||M - G PhiT(Z)||^2 + alpha_space sum_j ws_j ||Z_j||_c
                                  + alpha_time sum_j sum_k c_k wt_jk |Z_jk|

with ``||z||_c^2 = sum_k c_k |z_k|^2`` (``c_k`` = 1 for the DC and Nyquist rows
of each dictionary, 2 otherwise: the half spectrum stands for the full one),
``|Z_jk|`` the norm over the orientations of one coefficient, and the weights of
MNE's ``iterative_tf_mixed_norm_solver`` computed from the previous coefficients:
``ws_j = 1 / (2 sqrt(||Z_j||_c))``, ``wt_jk = 1 / (2 sqrt(|Z_jk|))``, and
``wt_jk = 0`` where ``Z_jk = 0``, which MNE's solver reads as "held at zero"
(an infinite weight: its prox sets those coefficients to zero).

Its dual is ``max <theta, M> - ||theta||^2 / 2`` subject to, for every position,
``nu_j(theta) <= alpha_space + alpha_time``, where ``nu_j`` is the dual norm of
``Omega_j(z) = (1 - rho) ws_j ||z||_c + rho sum_k c_k wt_jk |z_k|`` (``rho =
alpha_time / (alpha_space + alpha_time)``) at ``y = |Phi(G_j^T theta)|``, for the
pairing ``<y, z>_c = sum_k c_k y_k z_k`` (``Phi`` and ``PhiT`` are adjoint for it).
Coefficients held at zero do not enter ``Omega_j``, hence do not constrain
``theta``. ``nu_j`` is the root of the decreasing function::

    f(nu) = sum_k c_k (y_k - rho nu wt_jk)_+^2 - ((1 - rho) ws_j nu)^2

(sum over the coefficients with ``wt_jk > 0``), computed here exactly over the
sorted breakpoints ``y_k / (rho wt_jk)`` and certified from both sides by the
soft-thresholded ``u = (y - rho nu w)_+`` (see :func:`certify_dual_norm`).

The duality gap of ``Z`` with the rescaled residual ``theta = R min(1, alpha /
max_j nu_j(R))`` bounds the suboptimality of ``Z``; since the data fit is
1-strongly convex in ``G X``, it also bounds the distance to the optimal fit:
``||G (X - X*)||_F^2 <= 2 (P(Z) - P*) <= 2 gap`` (for any optimum ``Z*``,
``P(Z) - P* >= <grad, G(X - X*)> + ||G(X - X*)||^2 / 2 + pen(Z) - pen(Z*)`` and the
optimality of ``Z*`` makes the rest non-negative). Two answers of the same
weighted problem with gaps ``g1`` and ``g2`` thus fit the data within
``sqrt(2 g1) + sqrt(2 g2)`` of each other.
"""

import contextlib

import numpy as np
from _helpers import mne_phi, mne_phiT, multiplicity


def weighted_dual_norm(y, c, rho, w_s=1.0, w=None):
    """Dual norm of ``(1 - rho) w_s ||z||_c + rho sum_k c_k w_k |z_k|`` at ``|y|``.

    ``w_k == 0``: coefficient held at zero (no constraint). Returns ``(nu, u)`` with
    ``u`` the soft-thresholded ``|y|`` at ``rho nu w`` (zero where ``w == 0``), the
    witness used by :func:`certify_dual_norm`.
    """
    y = np.abs(np.asarray(y, dtype=float)).ravel()
    c = np.asarray(c, dtype=float).ravel()
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float).ravel()
    assert y.shape == c.shape == w.shape and np.all(w >= 0) and w_s > 0
    keep = w > 0
    u = np.zeros_like(y)
    yk, ck, wk = y[keep], c[keep], w[keep]
    if not np.any(yk > 0):
        return 0.0, u
    if rho <= 0.0:
        u[keep] = yk
        return float(np.sqrt(np.sum(ck * yk**2)) / w_s), u
    if rho >= 1.0:
        return float(np.max(yk / wk)), u
    k2 = ((1.0 - rho) * w_s) ** 2
    t = yk / (rho * wk)  # breakpoints: coefficient k is active for nu < t_k
    order = np.argsort(-t)
    t = t[order]
    s_y2 = np.cumsum((ck * yk**2)[order])
    s_yw = np.cumsum((ck * yk * wk)[order])
    s_w2 = np.cumsum((ck * wk**2)[order])
    # f at the breakpoint t[m], where the first m entries are active (f(t[0]) < 0)
    f = np.full(len(t), -np.inf)
    f[1:] = (
        s_y2[:-1] - 2.0 * rho * t[1:] * s_yw[:-1] + (rho**2 * s_w2[:-1] - k2) * t[1:] ** 2
    )
    nonneg = np.flatnonzero(f >= 0)
    m = nonneg[0] if len(nonneg) else len(t)  # the root has the first m active
    a = rho**2 * s_w2[m - 1] - k2
    b = rho * s_yw[m - 1]
    cc = s_y2[m - 1]
    nu = cc / (b + np.sqrt(max(b * b - a * cc, 0.0)))  # root of a nu^2 - 2 b nu + cc
    u[keep] = np.maximum(yk - rho * nu * wk, 0.0)
    return float(nu), u


def certify_dual_norm(y, c, rho, w_s, w, nu, u, rtol=1e-10):
    """Check ``nu`` from both sides; returns ``<y, u>_c / Omega(u)``.

    Lower bound: ``nu >= <y, u>_c / Omega(u)`` for any ``u`` (definition of a dual
    norm). Upper bound: ``y = u + v`` with ``||u||_c <= (1 - rho) w_s nu`` and
    ``|v_k| <= rho nu w_k`` on the constrained coefficients gives ``<y, z>_c <= nu
    Omega(z)`` for every ``z`` (Cauchy-Schwarz on ``u``, Hoelder on ``v``).
    """
    y = np.abs(np.asarray(y, dtype=float)).ravel()
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float).ravel()
    keep = w > 0
    norm_u = np.sqrt(np.sum(c * u**2))
    v = y - u
    assert norm_u <= (1 - rho) * w_s * nu * (1 + rtol) + 1e-300
    assert np.all(v[keep] <= rho * nu * w[keep] * (1 + rtol) + 1e-300)
    assert np.all(u[~keep] == 0)
    omega = (1 - rho) * w_s * norm_u + rho * np.sum(c * w * u)
    return float(np.sum(c * y * u) / omega) if omega > 0 else 0.0


def position_dual_norms(
    G, theta, rho, n_orient, wsize, tstep, w_space=None, w_time=None, check=False
):
    """``nu_j(theta)`` of every position (weights in MNE's layout)."""
    n_pos = G.shape[1] // n_orient
    Y = mne_phi(G.T @ theta, wsize, tstep)
    mag = np.sqrt((np.abs(Y) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1))
    c = multiplicity(wsize, tstep, theta.shape[1])
    out = np.empty(n_pos)
    for j in range(n_pos):
        w_s = 1.0 if w_space is None else float(w_space[j])
        w = None if w_time is None else w_time[j]
        out[j], u = weighted_dual_norm(mag[j], c, rho, w_s, w)
        if check and out[j] > 0:
            lower = certify_dual_norm(mag[j], c, rho, w_s, w, out[j], u)
            assert abs(lower - out[j]) <= 1e-9 * out[j], (j, lower, out[j])
    return out


def weighted_gap(
    M,
    G,
    Z,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    w_space=None,
    w_time=None,
    theta=None,
    check=False,
):
    """True duality gap of the weighted problem at ``Z``.

    ``Z``: MNE-layout coefficients of every column of ``G`` (zero rows allowed).
    ``theta``: the dual point to rescale (default: the residual). Returns a dict
    with ``gap``, ``p_obj``, ``d_obj``, ``nu`` (max dual norm of ``theta`` before
    rescaling), ``X`` and ``R``.
    """
    n_times = M.shape[1]
    n_pos = G.shape[1] // n_orient
    c = multiplicity(wsize, tstep, n_times)
    X = mne_phiT(Z, wsize, tstep, n_times)
    R = M - G @ X
    mag2 = (np.abs(Z) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1)
    ws = np.ones(n_pos) if w_space is None else np.asarray(w_space, dtype=float)
    wt = np.ones_like(mag2) if w_time is None else np.asarray(w_time, dtype=float)
    assert np.all(mag2[wt == 0] == 0), "a coefficient held at zero is not zero"
    p_obj = (
        0.5 * float(np.sum(R**2))
        + alpha_space * float(np.sum(ws * np.sqrt(mag2 @ c)))
        + alpha_time * float(np.sum(wt * np.sqrt(mag2) * c))
    )
    alpha = alpha_space + alpha_time
    theta = R if theta is None else theta
    nu = position_dual_norms(
        G, theta, alpha_time / alpha, n_orient, wsize, tstep, w_space, w_time, check
    ).max()
    th = theta * min(1.0, alpha / nu) if nu > 0 else theta
    d_obj = float(np.sum(M * th)) - 0.5 * float(np.sum(th**2))
    return dict(gap=p_obj - d_obj, p_obj=p_obj, d_obj=d_obj, nu=nu, X=X, R=R)


def irtf_weights(Z, n_orient, c):
    """MNE's reweighting from MNE-layout coefficients: (w_space, w_time)."""
    n_pos = len(Z) // n_orient
    mag2 = (np.abs(Z) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1)
    w_space = 1.0 / (2.0 * np.sqrt(np.sqrt(mag2 @ c)))
    g = np.sqrt(np.sqrt(mag2))
    w_time = np.zeros_like(g)
    w_time[g > 0] = 1.0 / (2.0 * g[g > 0])
    return w_space, w_time


def reweighted_objective(M, GX, Z, alpha_space, alpha_time, n_orient, c):
    """E, the non-convex objective MNE's iterative solver logs."""
    n_pos = len(Z) // n_orient
    mag2 = (np.abs(Z) ** 2).reshape(n_pos, n_orient, -1).sum(axis=1)
    return (
        0.5 * float(np.sum((M - GX) ** 2))
        + alpha_space * float(np.sum(np.sqrt(np.sqrt(mag2 @ c))))
        + alpha_time * float(np.sum(np.sqrt(np.sqrt(mag2)) @ c))
    )


def _mne_multiplicity(phi):
    """``c`` of MNE's ``_Phi`` (its layout: per dictionary, frequency-major)."""
    out = []
    for nf, ns in zip(np.atleast_1d(phi.n_freqs), np.atleast_1d(phi.n_steps)):
        c = np.full((int(nf), int(ns)), 2.0)
        c[[0, -1]] = 1.0
        out.append(c.ravel())
    return np.concatenate(out)


def _exact_norm_epsilon(Y, l1_ratio, phi, w_space=1.0, w_time=None):
    """Same arguments as MNE's ``mxne_optim.norm_epsilon``; the exact value."""
    return weighted_dual_norm(Y, _mne_multiplicity(phi), l1_ratio, w_space, w_time)[0]


@contextlib.contextmanager
def mne_exact_dual_norm():
    """Run MNE's solvers with their epsilon norm computed exactly.

    MNE's ``norm_epsilon`` (1.10 to 1.13 at least) screens the coefficients with
    ``Y > l1_ratio * L`` where ``L = max(Y / (w_space (1 - l1_ratio) + l1_ratio
    w_time))`` is a lower bound on the norm; a coefficient is active at the root
    when ``Y > l1_ratio * nu * w_time``, so for ``w_time < 1`` it drops active
    coefficients and returns too small a norm: the rescaled residual is not dual
    feasible, its "gap" can be negative and the inner solves stop at their first
    check. (It also returns ``max(Y / w_time)`` when a single coefficient passes,
    which is the norm only for ``c_k = 1`` and ``w_space = w_time``.) With this
    context, MNE's own algorithm and stopping rule run with the exact norm, so
    each inner solve stops at a true gap below ``tol``.
    """
    from mne.inverse_sparse import mxne_optim

    original = mxne_optim.norm_epsilon
    mxne_optim.norm_epsilon = _exact_norm_epsilon
    try:
        yield
    finally:
        mxne_optim.norm_epsilon = original
