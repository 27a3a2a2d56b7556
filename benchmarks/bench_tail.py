# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The slow tail of a grid solve: block coordinate descent against second-order
steps and Anderson extrapolation, on the working set of the real problem.

Usage::

    python benchmarks/bench_tail.py [--fwd vol7] [--start-outer 6] [--epochs 120]

The problem is the one ``tf_mixed_norm`` solves on the sample data (alpha 40,
l1_ratio 0.03, wsize 64, tstep 4, ``loose=1`` on a grid, ``'auto'`` on the
surface). A float64 solve stopped after ``--start-outer`` outer iterations
gives the start; the working
set is its support joined with that of the optimum (a tol = 1e-10 ||M||^2
solve), so every method below solves the same restricted problem, whose
optimum is P*. The objective is evaluated by NumPy from the definition at every
point. Costs are in epochs: one Hessian-vector product (synthesis, G, G^T,
analysis of the working set) costs about one epoch of the sweep.

1. Block coordinate descent: the core's kernel (``tfmxne._testing._hooks.bcd``), one epoch
   at a time, without acceleration.
2. Anderson extrapolation of the coefficients (memory ``--anderson-k``, tried
   every 10 epochs, kept if the objective decreases), as an offline check of
   what the core's own Anderson step can gain.
3. Newton-CG on the support of the current iterate: the problem restricted
   to its nonzero coefficients is smooth; each Newton step (preconditioned
   conjugate gradients on the restricted Hessian, then a backtracking line
   search on the true objective) is followed by one sweep that lets the
   support change (Bareilles, Iutzeler and Malick 2022, in its simplest form).

Then the fixed costs of a cold call (a fresh process's first preparation and
alpha_max), which bound what any solver can reach end to end.
"""

import argparse
import sys
import time
import warnings

import mne
import numpy as np
from _bench_utils import (
    find_sample,
    get_forward,
    read_cov,
    read_evoked,
    tf_multiplicity,
)


def _problem(fwd_name):
    from tfmxne import _options, _parallel, _problem, solver
    from tfmxne._stft import TFFrame

    sample = find_sample()
    evoked = read_evoked(sample).crop(-0.05, 0.3)
    cov = read_cov(sample)
    fwd = get_forward(sample, fwd_name)
    with _parallel.call_scope():
        t0 = time.perf_counter()
        loose = "auto" if fwd_name == "surf" else 1.0  # (as bench_end_to_end.py)
        opts = _options.check_options(dict(loose=loose, window=0.01))
        fp = _problem.prepare_forward(evoked.info, fwd, cov, opts)
        t1 = time.perf_counter()
        p = _problem.prepare(fp, evoked, opts, 0.03)
        t2 = time.perf_counter()
    print(f"cold preparation: gain {t1 - t0:.3f} s, data and alpha_max {t2 - t1:.3f} s")
    M, G, n_orient = p.M, np.ascontiguousarray(p.gain), p.n_orient
    a_s, a_t = 40 * 0.97, 40 * 0.03
    frame = TFFrame(M.shape[1], 64, 4)
    nM2 = float(np.sum(M**2))
    saved = solver.MIXED_PRECISION
    solver.MIXED_PRECISION = False
    try:
        spec = solver._Spec(
            a_s, a_t, frame, n_orient, 100000, 1e-10 * nM2, 10, max_outer=1000
        )
        ref = solver._tf_solve(M, G, spec)
        return M, G, n_orient, a_s, a_t, frame, ref, nM2
    finally:
        solver.MIXED_PRECISION = saved


class Restricted:
    """The problem on the working set W (positions), objective from the definition."""

    def __init__(self, M, G, n_orient, a_s, a_t, frame, W):
        self.M, self.no, self.a_s, self.a_t, self.frame = M, n_orient, a_s, a_t, frame
        self.W = W
        cols = (W[:, None] * n_orient + np.arange(n_orient)).ravel()
        self.GW = np.ascontiguousarray(G[:, cols])
        self.K = frame.n_coefs
        T = M.shape[1]
        # multiplicity of each complex coefficient in the internal order
        self.c = frame.from_mne_weights(tf_multiplicity(64, 4, T)[None, :])[0]

    def embed(self, positions, Z):
        out = np.zeros((len(self.W) * self.no, 2 * self.K))
        idx = np.searchsorted(self.W, positions)
        out[(idx[:, None] * self.no + np.arange(self.no)).ravel()] = Z
        return out

    def norms(self, Z):
        z = Z.reshape(len(self.W), self.no, self.K, 2)
        m2 = (z**2).sum(axis=(1, 3))
        return z, np.sqrt(m2), np.sqrt(m2 @ self.c)

    def objective(self, Z):
        R = self.M - self.GW @ self.frame.phiT(Z)
        _, nk, nj = self.norms(Z)
        return 0.5 * np.sum(R * R) + self.a_s * nj.sum() + self.a_t * np.sum(nk @ self.c)


def _sweeper(pb):
    from tfmxne._testing import _hooks

    no, GW = pb.no, pb.GW
    GT = np.ascontiguousarray(GW.T)
    blocks = [GW[:, j * no : (j + 1) * no] for j in range(len(pb.W))]
    lc = np.array([np.linalg.norm(b, 2) ** 2 for b in blocks])
    gram = np.stack([b.T @ b for b in blocks])
    work = np.empty(_hooks.work_size(pb.frame.plan, no))
    active = np.ones(len(pb.W), np.uint8)

    def epoch(Z):
        Z = Z.copy()
        X = pb.frame.phiT(Z)
        R = pb.M - GW @ X
        _hooks.bcd(
            pb.frame.plan,
            dict(
                GT=GT, M=pb.M, R=R, X=X, Z=Z, active=active, lc=lc, gram=gram, work=work
            ),
            alpha_space=pb.a_s,
            alpha_time=pb.a_t,
            n_orient=no,
            maxit=1,
            tol=0.0,
            dgap_freq=0,
        )
        return Z

    return epoch, np.trace(gram, axis1=1, axis2=2) / no


def _newton_step(pb, Z, curv, n_cg):
    """One Newton-CG step on the support of Z (c-weighted metric), line-searched."""
    frame, GW, c2 = pb.frame, pb.GW, np.repeat(pb.c, 2)
    z, nk, nj = pb.norms(Z)
    S = nk > 0
    mask = np.broadcast_to(S[:, None, :, None], z.shape).reshape(Z.shape)
    snk = np.where(S, nk, 1.0)[:, None, :, None]
    snj = np.where(nj > 0, nj, 1.0)[:, None, None, None]
    R = pb.M - GW @ frame.phiT(Z)
    g = (
        -frame.phi(GW.T @ R) + (pb.a_s * z / snj + pb.a_t * z / snk).reshape(Z.shape)
    ) * mask

    def hess(v):
        vz = v.reshape(z.shape)
        hd = frame.phi(GW.T @ (GW @ frame.phiT(v)))
        zv = ((z * vz).sum(axis=(1, 3)) @ pb.c)[:, None, None, None]
        zvk = (z * vz).sum(axis=(1, 3))[:, None, :, None]
        h = pb.a_s * (vz / snj - z * zv / snj**3) + pb.a_t * (vz / snk - z * zvk / snk**3)
        return (hd + h.reshape(v.shape)) * mask

    def ip(a, b):
        return float(np.sum(a * b * c2))

    # Jacobi-like preconditioner: mean curvature of each block's data term
    diag = (curv[:, None, None, None] + pb.a_s / snj + pb.a_t / snk) * np.ones(z.shape)
    diag = diag.reshape(Z.shape)
    x = np.zeros_like(Z)
    r = -g
    y = r / diag
    d = y.copy()
    ry = ip(r, y)
    r0 = np.sqrt(ip(r, r))
    it = 0
    for it in range(1, n_cg + 1):  # noqa: B007 (returned)
        Hd = hess(d)
        dHd = ip(d, Hd)
        if dHd <= 0:
            break
        step = ry / dHd
        x += step * d
        r -= step * Hd
        if np.sqrt(ip(r, r)) < 1e-3 * r0:
            break
        y = r / diag
        ry, ry_old = ip(r, y), ry
        d = y + (ry / ry_old) * d
    f0, t = pb.objective(Z), 1.0
    for _ in range(30):
        if pb.objective(Z + t * x) < f0:
            return Z + t * x, it, t
        t *= 0.5
    return Z, it, 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fwd", default="vol7", choices=["surf", "vol7", "vol5"])
    ap.add_argument("--start-outer", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--anderson-k", type=int, default=5)
    ap.add_argument("--newton-steps", type=int, default=8)
    ap.add_argument("--cg", type=int, default=30)
    args = ap.parse_args()
    mne.set_log_level("ERROR")
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits

    from tfmxne import solver

    M, G, no, a_s, a_t, frame, ref, nM2 = _problem(args.fwd)
    solver.MIXED_PRECISION = False
    spec = solver._Spec(
        a_s, a_t, frame, no, 3000, 0.5e-4 * nM2, 10, max_outer=args.start_outer
    )
    start = solver._tf_solve(M, G, spec)
    W = np.union1d(start.positions, ref.positions)
    pb = Restricted(M, G, no, a_s, a_t, frame, W)
    p_star = pb.objective(pb.embed(ref.positions, ref.Z))
    Z0 = pb.embed(start.positions, start.Z)
    print(
        f"working set {len(W)} positions (start {len(start.positions)}, optimum "
        f"{len(ref.positions)}); start gap {start.gap:.3g}, P - P* "
        f"{pb.objective(Z0) - p_star:.3e}"
    )
    with threadpool_limits(1, user_api="blas"):
        epoch, curv = _sweeper(pb)
        marks = {10, 20, 40, 60, 80, 100, 120, args.epochs}
        print("\n1. block coordinate descent (epochs: P - P*)")
        Z, t0 = Z0, time.perf_counter()
        for e in range(1, args.epochs + 1):
            Z = epoch(Z)
            if e in marks:
                print(f"   {e:4d}: {pb.objective(Z) - p_star:.3e}")
        print(
            f"   ({(time.perf_counter() - t0) / args.epochs * 1e3:.1f} ms per epoch "
            "with the NumPy objective)"
        )

        k = args.anderson_k
        print(f"\n2. Anderson, memory {k}, tried every 10 epochs")
        Z, snaps = Z0, [Z0]
        for e in range(1, args.epochs + 1):
            Z = epoch(Z)
            snaps = (snaps + [Z])[-(k + 2) :]
            if e % 10 or len(snaps) < k + 2:
                continue
            U = np.stack([(snaps[i + 1] - snaps[i]).ravel() for i in range(k + 1)])
            gram = U @ U.T
            gram += 1e-10 * np.trace(gram) * np.eye(k + 1)
            w = np.linalg.solve(gram, np.ones(k + 1))
            w /= w.sum()
            Zx = sum(w[i] * snaps[i + 1] for i in range(k + 1))
            fx, fz = pb.objective(Zx) - p_star, pb.objective(Z) - p_star
            kept = fx < fz
            if kept:
                Z, snaps = Zx, [Zx]
            print(
                f"   {e:4d}: {'kept    ' if kept else 'rejected'} extrapolated "
                f"{fx:.3e}, sweep {fz:.3e}, max |weight| {np.abs(w).max():.3g}"
            )

        print(
            f"\n3. Newton-CG on the support ({args.cg} CG iterations at most) + 1 sweep"
            ", after 5 sweeps (cost in epochs: P - P*)"
        )
        Z = Z0
        for _ in range(5):
            Z = epoch(Z)
        cost = 5
        for _ in range(args.newton_steps):
            Z, n_cg, t = _newton_step(pb, Z, curv, args.cg)
            Z = epoch(Z)
            cost += n_cg + 2  # CG products, the line search's product, the sweep
            print(
                f"   {cost:4d}: {pb.objective(Z) - p_star:.3e}  (CG {n_cg}, step {t:g})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
