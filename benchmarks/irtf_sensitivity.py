# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Sensitivity of irTF-MxNE's reweighting stop, MNE against tfmxne (a table).

Both implementations reweight with ``w = 1 / (2 sqrt(.))`` of the previous
coefficients and stop reweighting when the support is unchanged and
``max |Z_k - Z_(k-1)| < tol ||M||^2`` (complex STFT coefficients in MNE's
layout and scale). This script follows both iterates, reweighting by
reweighting, by recording every weighted solve (MNE's
``_tf_mixed_norm_solver_bcd_active_set`` and tfmxne's ``_tf_solve`` are wrapped
for the duration of a call), and prints:

* ``k``: reweightings done by MNE / tfmxne;
* ``min d/thr``: over the reweightings with an unchanged support, the smallest
  ratio of the coefficient change to the stopping threshold (below 1 the loop
  stops; close to 1 is the knife edge where two correct implementations may
  stop one reweighting apart);
* ``rel``: relative difference of the two source estimates;
* ``worst k``: the largest relative distance between the two iterates at the
  same reweighting (max |Z_mne - Z_tf| / max |Z_mne|);
* ``1 more``: relative change of tfmxne's estimate made by one more
  reweighting after the last one (what stopping one reweighting apart costs);
* ``to fixed pt``: relative distance of tfmxne's estimate to its own answer
  with the reweighting loop converged (tol 1e-12, up to 300 reweightings).

Then the "converged" section runs both with ``tol=1e-12`` and up to 300
reweightings (the loop stops by its own rule) and compares; MNE runs there with
its weighted dual norm computed exactly (``tests/_irtf_ref.py``), so that each of
its inner solves stops at a true duality gap below tol: MNE's own norm is too
small for time weights below 1 (docs/differences_irtf.rst), its gap of a
weighted problem can be negative and its inner solve then stops at the first
check.

``--case`` runs only the irtf-case (``../shared/data/irtf-case``, the arrays MNE
passes to its iterative solver for 'Right visual'): per reweighting, MNE's
default, MNE with converged inner solves (exact dual norm) and tfmxne, with
MNE's reported gap and the true gap (independent NumPy) of each weighted solve.

Usage: ``python benchmarks/irtf_sensitivity.py [--full] [--case]`` (``--full``
adds noisy variants, more alphas, a slower converged case and the irtf-case;
MNE runs with one BLAS thread, as it is much faster so).
"""

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

import mne
import numpy as np
from mne.inverse_sparse import mxne_optim
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import solver as tsolver

# the independent NumPy reference and MNE with its exact weighted dual norm
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _helpers import multiplicity
from _irtf_ref import (
    irtf_weights,
    mne_exact_dual_norm,
    weighted_gap,
)

BASE = dict(
    l1_ratio=0.05, wsize=[16, 64], tstep=[4, 4], depth=0.9, debias=False, maxit=100000
)


def _sample_path():
    here = Path(__file__).resolve().parent
    for cand in (
        here.parent.parent / "shared" / "data" / "sample",
        here.parent / ".." / "shared" / "data" / "sample",
    ):
        if (cand / "sample-ave.fif.gz").exists():
            return cand.resolve()
    raise SystemExit("shared sample data not found (../shared/data/sample)")


@contextlib.contextmanager
def _record_mne(log):
    orig = mxne_optim._tf_mixed_norm_solver_bcd_active_set
    state = {"mask": None}

    def wrapped(M, G, *args, **kwargs):
        out = orig(M, G, *args, **kwargs)
        X, Z, as_, _, _ = out
        if state["mask"] is None:  # first solve: the whole gain
            state["mask"] = np.ones(G.shape[1], bool)
        mask = state["mask"].copy()
        mask[mask] = as_
        state["mask"] = mask
        log.append(dict(Z=Z.copy(), X=X.copy(), mask=mask, thr=kwargs["tol"]))
        return out

    mxne_optim._tf_mixed_norm_solver_bcd_active_set = wrapped
    try:
        yield
    finally:
        mxne_optim._tf_mixed_norm_solver_bcd_active_set = orig


@contextlib.contextmanager
def _record_tf(log):
    orig = tsolver._tf_solve

    def wrapped(M, G, a_s, a_t, frame, n_orient, maxit, tol, *args, **kwargs):
        res = orig(M, G, a_s, a_t, frame, n_orient, maxit, tol, *args, **kwargs)
        log.append(
            dict(res=res, frame=frame, n_orient=n_orient, thr=tol, n_src=G.shape[1])
        )
        return res

    tsolver._tf_solve = wrapped
    try:
        yield
    finally:
        tsolver._tf_solve = orig


def _tf_steps(log):
    n_src = log[0]["n_src"]
    steps = []
    for e in log:  # positions were mapped back to the full gain by the loop
        res = e["res"]
        mask = np.zeros(n_src, bool)
        mask[tsolver._cols(res.positions, e["n_orient"])] = True
        steps.append(
            dict(Z=e["frame"].to_mne(res.Z), X=np.asarray(res.X), mask=mask, thr=e["thr"])
        )
    return steps


def _changes(steps):
    """max |Z_k - Z_(k-1)| per reweighting (nan where the support changed)."""
    out = []
    for a, b in zip(steps[:-1], steps[1:]):
        same = np.array_equal(a["mask"], b["mask"])
        out.append(float(np.abs(b["Z"] - a["Z"]).max()) if same else np.nan)
    return np.array(out)


def run_mne(evoked, fwd, cov, exact=False, **kw):
    """MNE's tf_mixed_norm (``exact``: its weighted dual norm computed exactly)."""
    log = []
    ctx = mne_exact_dual_norm() if exact else contextlib.nullcontext()
    with threadpool_limits(1), warnings.catch_warnings(), _record_mne(log), ctx:
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stc = mne.inverse_sparse.tf_mixed_norm(evoked, fwd, cov, verbose=False, **kw)
        return stc, log, time.perf_counter() - t0


def run_tf(evoked, fwd, cov, **kw):
    log = []
    with warnings.catch_warnings(), _record_tf(log):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stc = tfmxne.tf_mixed_norm(evoked, fwd, cov, verbose=False, **kw)
        return stc, _tf_steps(log), time.perf_counter() - t0


def _rel(a, b):
    if len(a.data) != len(b.data) or not all(
        np.array_equal(x, y) for x, y in zip(a.vertices, b.vertices)
    ):
        return np.inf  # different supports
    return float(np.linalg.norm(a.data - b.data) / np.linalg.norm(a.data))


def _subset(fwd, step):
    if step == 1:
        return fwd
    verts = [s["vertno"][::step] for s in fwd["src"]]
    stc = mne.SourceEstimate(
        np.zeros((sum(map(len, verts)), 1)), verts, 0, 1, subject="sample"
    )
    return mne.forward.restrict_forward_to_stc(fwd, stc)


def _evoked(path, cond, noise, seed, tmin, tmax, cov):
    ev = mne.read_evokeds(
        path / "sample-ave.fif.gz", condition=cond, baseline=(None, 0), verbose=False
    )
    for i in range(noise):  # noise drawn from the noise covariance (/ sqrt(nave))
        ev = mne.simulation.add_noise(
            ev.copy(), cov, iir_filter=None, random_state=seed + i, verbose=False
        )
    return ev.crop(tmin, tmax)


def _case_path():
    here = Path(__file__).resolve().parent
    for cand in (
        here.parent.parent / "shared" / "data" / "irtf-case",
        Path(os.environ.get("TFMXNE_IRTF_CASE", "/nonexistent")),
    ):
        if (cand / "irtf-case.npz").exists():
            return cand / "irtf-case.npz"
    raise SystemExit("irtf-case data not found (../shared/data/irtf-case)")


def _mne_case_chain(d, n_iter, exact):
    """MNE's iterative solver on the case arrays; per weighted solve: the columns
    of G, the weights, MNE-layout coefficients of those columns, MNE's gap."""
    log, mask = [], [np.ones(d["G"].shape[1], bool)]
    orig = mxne_optim._tf_mixed_norm_solver_bcd_active_set

    def wrapped(M, G, *args, **kwargs):
        X, Z, act, E, gap = orig(M, G, *args, **kwargs)
        cols = np.flatnonzero(mask[-1])
        mask.append(mask[-1].copy())
        mask[-1][cols] = act
        Zf = np.zeros((len(cols), Z.shape[1]), complex)
        Zf[act] = Z
        log.append(
            dict(cols=cols, Z=Zf, X=X, act=act.copy(), gap=gap,
                 w_space=kwargs.get("w_space"), w_time=kwargs.get("w_time"))
        )  # fmt: skip
        return X, Z, act, E, gap

    ctx = mne_exact_dual_norm() if exact else contextlib.nullcontext()
    mxne_optim._tf_mixed_norm_solver_bcd_active_set = wrapped
    try:
        t0 = time.perf_counter()
        with threadpool_limits(1), ctx:
            _, _, E = mxne_optim.iterative_tf_mixed_norm_solver(
                d["M"], d["G"], d["a_s"], d["a_t"], n_iter, wsize=np.array(d["wsize"]),
                tstep=np.array(d["tstep"]), maxit=10000, tol=d["tol"], debias=False,
                n_orient=d["n_orient"], dgap_freq=d["dgap_freq"], verbose=False,
            )  # fmt: skip
        return log, E, time.perf_counter() - t0
    finally:
        mxne_optim._tf_mixed_norm_solver_bcd_active_set = orig


def irtf_case(n_iter=6):
    """The irtf-case: MNE's default, MNE with converged inner solves, tfmxne."""
    z = np.load(_case_path())
    d = dict(
        M=z["M"], G=z["G"], a_s=float(z["alpha_space"]), a_t=float(z["alpha_time"]),
        wsize=[int(w) for w in z["wsize"]], tstep=[int(t) for t in z["tstep"]],
        n_orient=int(z["n_orient"]), tol=float(z["tol"]), dgap_freq=int(z["dgap_freq"]),
    )  # fmt: skip
    M, G, no = d["M"], d["G"], d["n_orient"]
    c = multiplicity(d["wsize"], d["tstep"], M.shape[1])
    print(
        f"\nirtf-case ({_case_path()}): {M.shape[0]} x {M.shape[1]}, "
        f"{G.shape[1] // no} positions, tol {d['tol']:.3e} (absolute); E = the "
        "reweighted objective; rel = |X - X_tf| / |X_tf|; gap: MNE's reported / "
        "the true gap of that weighted problem (NumPy)"
    )
    runs = {}
    for name, exact in (("default", False), ("exact", True)):
        runs[name] = _mne_case_chain(d, n_iter, exact)
    tf_log = []
    with _record_tf(tf_log):
        t0 = time.perf_counter()
        _, _, E_tf = tfmxne.iterative_tf_mixed_norm_solver(
            M, G, d["a_s"], d["a_t"], n_iter, d["wsize"], d["tstep"], maxit=10000,
            tol=d["tol"], debias=False, n_orient=no, dgap_freq=d["dgap_freq"],
            verbose=False,
        )  # fmt: skip
        t_tf = time.perf_counter() - t0
    head = (
        f"{'k':>3}{'E mne':>13}{'E mne exact':>13}{'E tfmxne':>13}"
        f"{'rel mne':>10}{'rel exact':>11}{'gap mne (true)':>24}"
        f"{'gap exact':>11}{'gap tf':>10}"
    )
    print(head)
    print("-" * len(head))
    for k in range(n_iter):
        tf = tf_log[k]["res"]
        X_tf = np.asarray(tf.X)
        row = f"{k + 1:>3}"
        for name in ("default", "exact"):
            row += f"{runs[name][1][k]:>13.4f}"
        row += f"{E_tf[k]:>13.4f}"
        gaps = []
        for name in ("default", "exact"):
            m = runs[name][0][k]
            same = np.array_equal(
                m["cols"][m["act"]], tsolver._cols(np.asarray(tf.positions), no)
            )
            rel = np.linalg.norm(m["X"] - X_tf) / np.linalg.norm(X_tf)
            row += f"{rel if same else np.inf:>{10 if name == 'default' else 11}.1e}"
            ws, wt = (None, None)
            if k:
                prev = runs[name][0][k - 1]
                ws, wt = irtf_weights(prev["Z"][prev["act"]], no, c)
            true = weighted_gap(
                M, G[:, m["cols"]], m["Z"], d["a_s"], d["a_t"], d["wsize"],
                d["tstep"], no, ws, wt,
            )["gap"]  # fmt: skip
            gaps.append((m["gap"], true))
        row += f"{gaps[0][0]:>12.2e} ({gaps[0][1]:.2e})"
        row += f"{gaps[1][1]:>11.2e}{tf.gap:>10.2e}"
        print(row, flush=True)
    print(
        f"time (s): MNE default {runs['default'][2]:.1f}, MNE exact norm "
        f"{runs['exact'][2]:.1f}, tfmxne {t_tf:.1f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--case", action="store_true", help="only the irtf-case")
    args = parser.parse_args()
    mne.set_log_level("WARNING")
    if args.case:
        irtf_case()
        return
    path = _sample_path()
    info = mne.read_evokeds(path / "sample-ave.fif.gz", condition=0, verbose=False).info
    src = mne.read_source_spaces(path / "sample-oct4-src.fif.gz", verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fwd = mne.make_forward_solution(
            info,
            str(path / "sample-trans.fif"),
            src,
            str(path / "sample-320-320-320-bem-sol.fif"),
            mindist=5.0,
            verbose=False,
        )
    cov = mne.read_cov(path / "sample-cov.fif", verbose=False)

    conds = ["Left Auditory", "Left visual"]
    grid = [(c, 0, a) for c in conds for a in (30.0, 45.0)]
    if args.full:
        grid = [(c, n, a) for c in conds for n in (0, 1, 3) for a in (20.0, 30.0, 45.0)]
    print(
        "irTF-MxNE, wsize=[16, 64], tstep=[4, 4], n_tfmxne_iter=5, depth=0.9, "
        "l1_ratio=0.05, tol=1e-8, debias=False; surface (508 positions, loose 0.2), "
        "0.05-0.15 s; noise n: n draws from the noise covariance added"
    )
    head = (
        f"{'case':<24}{'n_act':>6}{'k':>6}{'min d/thr':>11}{'rel':>10}"
        f"{'worst k':>10}{'1 more':>10}{'to fixed pt':>13}{'t mne/tf (s)':>14}"
    )
    print(head)
    print("-" * len(head))
    for cond, noise, alpha in grid:
        ev = _evoked(path, cond, noise, 0, 0.05, 0.15, cov)
        kw = dict(BASE, alpha=alpha, tol=1e-8, n_tfmxne_iter=5)
        stc_m, log_m, t_m = run_mne(ev, fwd, cov, **kw)
        stc_t, log_t, t_t = run_tf(ev, fwd, cov, **kw)
        d = _changes(log_t)
        d_ok = d[np.isfinite(d)]
        margin = d_ok.min() / log_t[0]["thr"] if len(d_ok) else np.nan
        worst = max(
            (
                np.abs(a["Z"] - b["Z"]).max() / np.abs(a["Z"]).max()
                if np.array_equal(a["mask"], b["mask"])
                else np.inf
            )
            for a, b in zip(log_m, log_t)
        )
        more = run_tf(ev, fwd, cov, **dict(kw, n_tfmxne_iter=len(log_t) + 1))[0]
        conv = run_tf(ev, fwd, cov, **dict(kw, tol=1e-12, n_tfmxne_iter=300))[0]
        name = f"{cond[5:]} n{noise} a{alpha:.0f}"
        print(
            f"{name:<24}{len(stc_t.data):>6}{len(log_m):>3}/{len(log_t):<2}"
            f"{margin:>11.2g}{_rel(stc_m, stc_t):>10.1e}{worst:>10.1e}"
            f"{_rel(stc_t, more):>10.1e}{_rel(conv, stc_t):>13.1e}"
            f"{t_m:>8.1f}/{t_t:<5.1f}",
            flush=True,
        )

    print(
        "\nPer reweighting, 'Left visual', alpha 30, tol=1e-8, n_tfmxne_iter=30: "
        "change / threshold on each side, distance of the two iterates"
    )
    ev = _evoked(path, "Left visual", 0, 0, 0.05, 0.15, cov)
    kw = dict(BASE, alpha=30.0, tol=1e-8, n_tfmxne_iter=30)
    stc_m, log_m, _ = run_mne(ev, fwd, cov, **kw)
    stc_t, log_t, _ = run_tf(ev, fwd, cov, **kw)
    dm = np.r_[np.nan, _changes(log_m)] / log_m[0]["thr"]
    dt = np.r_[np.nan, _changes(log_t)] / log_t[0]["thr"]
    head = f"{'k':>4}{'d/thr mne':>12}{'d/thr tf':>12}{'max dZ/max Z':>14}{'rel X_k':>10}"
    print(head)
    print("-" * len(head))
    for k in range(max(len(log_m), len(log_t))):
        a = log_m[k] if k < len(log_m) else None
        b = log_t[k] if k < len(log_t) else None
        dz = rx = np.nan
        if a is not None and b is not None and np.array_equal(a["mask"], b["mask"]):
            dz = np.abs(a["Z"] - b["Z"]).max() / np.abs(a["Z"]).max()
            rx = np.linalg.norm(a["X"] - b["X"]) / np.linalg.norm(a["X"])
        print(
            f"{k + 1:>4}{dm[k] if k < len(dm) else np.nan:>12.3g}"
            f"{dt[k] if k < len(dt) else np.nan:>12.3g}{dz:>14.1e}{rx:>10.1e}"
        )
    print(
        f"final estimates: {len(log_m)} / {len(log_t)} reweightings, "
        f"rel {_rel(stc_m, stc_t):.1e}"
    )

    print(
        "\nConverged reweighting: tol=1e-12 (gap of every solve and the stopping "
        "threshold), n_tfmxne_iter=300 (cap not reached), every 4th vertex; MNE "
        "with its weighted dual norm exact (inner solves to a true gap < tol)"
    )
    head = (
        f"{'case':<24}{'k mne/tf':>10}{'last d/thr':>14}{'rel':>10}"
        f"{'worst k':>10}{'t mne/tf (s)':>14}"
    )
    print(head)
    print("-" * len(head))
    conv_cases = [("Left visual", 30.0)]
    if args.full:
        conv_cases.append(("Left Auditory", 30.0))
    fwd4 = _subset(fwd, 4)
    for cond, alpha in conv_cases:
        ev = _evoked(path, cond, 0, 0, 0.05, 0.15, cov)
        kw = dict(BASE, alpha=alpha, tol=1e-12, n_tfmxne_iter=300)
        stc_m, log_m, t_m = run_mne(ev, fwd4, cov, exact=True, **kw)
        stc_t, log_t, t_t = run_tf(ev, fwd4, cov, **kw)
        last = "/".join(f"{_changes(lg)[-1] / lg[0]['thr']:.2g}" for lg in (log_m, log_t))
        worst = max(
            (
                np.abs(a["Z"] - b["Z"]).max() / np.abs(a["Z"]).max()
                if np.array_equal(a["mask"], b["mask"])
                else np.inf
            )
            for a, b in zip(log_m, log_t)
        )
        name = f"{cond[5:]} a{alpha:.0f}"
        print(
            f"{name:<24}{len(log_m):>5}/{len(log_t):<4}{last:>14}"
            f"{_rel(stc_m, stc_t):>10.1e}{worst:>10.1e}{t_m:>8.1f}/{t_t:<5.1f}",
            flush=True,
        )
    if args.full:
        irtf_case()


if __name__ == "__main__":
    main()
