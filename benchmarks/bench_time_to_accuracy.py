# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Time to accuracy: suboptimality P(Z_t) - P* against wall time, MNE vs tfmxne.

The way benchopt compares solvers: each solver is run to a sequence of
stopping tolerances, from scratch each time, every run timed, and the primal
objective of each returned iterate is evaluated by independent NumPy code
(``_bench_utils.tf_primal_objective``: MNE's STFT, norms written from the
definition). Each curve is then suboptimality ``P - P*`` (and distance to the
optimum ``||X_t - X*|| / ||X*||``) against the time the run took, so that a
speed is never quoted without the accuracy it bought.

Problem: the whitened data ``M`` and scaled gain ``G`` that ``tf_mixed_norm``
builds (``tfmxne._problem.prepare``, as ``bench_solver.py``; equal to MNE's to
1e-12), evoked 'Left Auditory' cropped to -0.05..0.3 s (211 samples),
alpha=40, l1_ratio=0.03, wsize=64, tstep=4, maxit=3000, debias=False, on

  surf   oct4 surface, 508 positions, loose='auto'
  vol7   7 mm volume grid, 4371 positions, loose=1

Solvers: ``mne.inverse_sparse.mxne_optim.tf_mixed_norm_solver`` (block
coordinate descent with active set) and ``tfmxne.tf_mixed_norm_solver``, both
called with ``tol = tol_rel * ||M||^2`` for tol_rel = 1e-1 .. 1e-10 (as
``tf_mixed_norm`` scales its tol), plus ``tol = 1e-8`` absolute (the default of
``tf_mixed_norm_solver``). A solver's tolerance sequence stops at its first
timeout (tighter tolerances would only take longer). Each solver is run once,
untimed, before its sequence (imports, caches).

The objective is evaluated at the coefficients ``Z`` each solver computed
(captured from inside the solver, outside the timing): the STFT frame is
redundant, so ``X = Phi^T Z`` does not determine ``Z``, and the objective at
``Phi X`` is larger than at ``Z`` (by about 2e-3 relative on the surface at the
optimum), which would put a floor under every curve.

``P*`` comes from a tfmxne solve at ``--ref-tol`` (1e-12 relative), certified
by its duality gap: the gap tfmxne returns and the gap of MNE's own
``dgap_l21l1`` at the same ``Z*`` (which shares no code with tfmxne). Either
bounds ``P* - min P``; the smaller is the *resolution* of ``P - P*``: below it,
suboptimalities are not resolved, and are shown at the resolution.

The summary table gives, for the accuracy MNE reaches at each of its default
tolerances (1e-4 relative in ``tf_mixed_norm``, 1e-8 absolute in
``tf_mixed_norm_solver``), MNE's time, the time tfmxne needs to reach the same
suboptimality (its first sample, in time, at or below it) and the ratio, with
the distances to the optimum of both; also tfmxne's own run at the same tol.

Examples::

    python benchmarks/bench_time_to_accuracy.py            # both cases, figure
    python benchmarks/bench_time_to_accuracy.py --case surf --json tta.json
    python benchmarks/bench_time_to_accuracy.py --quick --case surf  # smoke, < 1 min
    python benchmarks/bench_time_to_accuracy.py --from-json tta.json --out /tmp
"""

import argparse
import json
import signal
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_utils as bu

HERE = Path(__file__).resolve().parent
CASES = {
    "surf": dict(
        fwd="surf", loose="auto", desc="oct4 surface, 508 positions, loose='auto'"
    ),
    "vol7": dict(fwd="vol7", loose=1.0, desc="7 mm volume grid, 4371 positions, loose=1"),
}
PROBLEM = dict(
    alpha=40.0, l1_ratio=0.03, wsize=64, tstep=4, maxit=3000, crop=(-0.05, 0.3)
)
TOLS = tuple(10.0**-k for k in range(1, 11))  # relative: tol = tol_rel * ||M||^2
QUICK_TOLS = (1e-1, 1e-2, 1e-3, 1e-4)
QUICK_CROP = (0.05, 0.15)
# the accuracies the summary table is about: MNE's two default tolerances
MNE_DEFAULT_TOLS = (
    dict(key="rel1e-4", where="tf_mixed_norm", tol=1e-4, kind="relative"),
    dict(key="abs1e-8", where="tf_mixed_norm_solver", tol=1e-8, kind="absolute"),
)
SOLVERS = ("mne", "tfmxne")
LABELS = {"mne": "MNE", "tfmxne": "tfmxne"}
COLORS = {"mne": "tab:blue", "tfmxne": "tab:orange"}


# ---------------------------------------------------------------------------
# problem
# ---------------------------------------------------------------------------
def build_problem(case, args, sample):
    """Whitened data and scaled gain of ``case`` as tf_mixed_norm builds them."""
    spec = CASES[case]
    crop = QUICK_CROP if args.quick else PROBLEM["crop"]
    evoked = bu.read_evoked(sample).crop(*crop)
    cov = bu.read_cov(sample)
    fwd = bu.get_forward(sample, spec["fwd"])
    t0 = time.perf_counter()
    # same call as bench_solver.py: depth 0.8, no weights, PCA, no rank, window 0.02
    p = bu.prepare_problem(
        evoked,
        fwd,
        cov,
        PROBLEM["l1_ratio"],
        PROBLEM["wsize"],
        PROBLEM["tstep"],
        loose=spec["loose"],
    )
    M = np.ascontiguousarray(p.M, dtype=np.float64)
    G = np.ascontiguousarray(p.gain, dtype=np.float64)
    alpha = PROBLEM["alpha"]
    return dict(
        case=case,
        desc=spec["desc"],
        M=M,
        G=G,
        n_orient=int(p.n_orient),
        nM2=float(np.sum(M**2)),
        crop=crop,
        alpha_space=alpha * (1.0 - PROBLEM["l1_ratio"]),
        alpha_time=alpha * PROBLEM["l1_ratio"],
        t_prepare=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------
# running the solvers
# ---------------------------------------------------------------------------
class Capture:
    """Keeps the coefficients ``Z`` of the last solve (MNE's layout).

    Both public solvers return ``X = Phi^T Z`` only; the hooks record ``Z``
    where each computes it, and the conversion to MNE's layout happens after
    the timing. MNE: ``mxne_optim._tf_mixed_norm_solver_bcd_active_set``
    (returns ``X, Z, active_set, E, gap``). tfmxne: ``solver._solver_core``
    (returns ``M, G, n_orient, frame, res`` with ``res.Z`` in the frame's
    internal layout), else ``solver._tf_solve``. If tfmxne's internals change,
    update ``_hook_tfmxne`` (a solve whose Z was not recorded raises).
    """

    def __init__(self):
        self.get = None
        self._hook_mne()
        self._hook_tfmxne()

    def _hook_mne(self):
        from mne.inverse_sparse import mxne_optim

        original = mxne_optim._tf_mixed_norm_solver_bcd_active_set

        def hook(*a, **k):
            out = original(*a, **k)
            Z = out[1]
            self.get = lambda: np.asarray(Z, dtype=np.complex128)
            return out

        mxne_optim._tf_mixed_norm_solver_bcd_active_set = hook

    def _hook_tfmxne(self):
        import tfmxne.solver as tsol

        core = getattr(tsol, "_solver_core", None)
        solve = getattr(tsol, "_tf_solve", None)
        if core is not None:

            def hook(*a, **k):
                out = core(*a, **k)
                frame, res = out[3], out[4]
                self.get = lambda: frame.to_mne(res.Z)
                return out

            tsol._solver_core = hook
        elif solve is not None:  # _tf_solve(M, G, spec, ...)

            def hook(*a, **k):
                res = solve(*a, **k)
                frame = (a[2] if len(a) > 2 else k["spec"]).frame
                self.get = lambda: frame.to_mne(res.Z)
                return res

            tsol._tf_solve = hook
        else:
            raise SystemExit(
                "tfmxne.solver has neither _solver_core nor _tf_solve: "
                "update Capture._hook_tfmxne in bench_time_to_accuracy.py "
                "so that it records the coefficients Z of a solve"
            )


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout


def _solver_fun(name):
    if name == "mne":
        from mne.inverse_sparse.mxne_optim import tf_mixed_norm_solver

        return tf_mixed_norm_solver
    import tfmxne

    return tfmxne.tf_mixed_norm_solver


def solve_once(name, prob, tol_abs, capture, timeout, blas_threads, maxit=None):
    """One solve from scratch on fresh copies; returns a dict (time, X, Z, ...)."""
    from threadpoolctl import threadpool_limits

    fun = _solver_fun(name)
    M, G = prob["M"].copy(), prob["G"].copy()
    limit = (
        threadpool_limits(blas_threads, user_api="blas")
        if blas_threads
        else nullcontext()
    )
    capture.get = None
    signal.signal(signal.SIGALRM, _on_alarm)
    with warnings.catch_warnings(record=True) as wrec, limit:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            out = fun(
                M,
                G,
                prob["alpha_space"],
                prob["alpha_time"],
                wsize=PROBLEM["wsize"],
                tstep=PROBLEM["tstep"],
                n_orient=prob["n_orient"],
                maxit=maxit or PROBLEM["maxit"],
                tol=tol_abs,
                debias=False,
                return_gap=True,
                verbose=False,
            )
        except _Timeout:
            out = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        t = time.perf_counter() - t0
    msgs = sorted({f"{w.category.__name__}: {w.message}" for w in wrec})
    if out is None:
        return dict(status="timeout", time=t, timeout=timeout, warnings=msgs)
    X, active_set, E, gap = out
    if capture.get is None:
        raise RuntimeError(f"the {name} hook did not record Z: see Capture")
    Z = capture.get()
    return dict(
        status="ok",
        time=t,
        X=np.asarray(X, dtype=np.float64),
        active_set=np.asarray(active_set, dtype=bool),
        Z=Z,
        gap=float(gap),
        E_last=float(E[-1]) if len(E) else None,
        warnings=msgs,
    )


def _full(X, active_set):
    out = np.zeros((active_set.size, X.shape[1]))
    out[active_set] = X
    return out


def evaluate(res, prob, ref=None):
    """Independent objective at the run's Z; distance to the reference."""
    if res["status"] != "ok":
        return res
    p_obj, X_syn = bu.tf_primal_objective(
        prob["M"],
        prob["G"],
        res["Z"],
        res["active_set"],
        prob["alpha_space"],
        prob["alpha_time"],
        PROBLEM["wsize"],
        PROBLEM["tstep"],
        prob["n_orient"],
    )
    # the captured Z is the returned X's: X = Phi^T Z up to rounding
    scale = max(np.abs(res["X"]).max() if res["X"].size else 0.0, 1e-300)
    res["synthesis_mismatch"] = (
        float(np.abs(X_syn - res["X"]).max() / scale) if res["X"].size else 0.0
    )
    res["p_obj"] = p_obj
    res["n_active_positions"] = int(res["active_set"].sum() // prob["n_orient"])
    if ref is not None:
        res["subopt"] = p_obj - ref["p_obj"]
        Xf = _full(res["X"], res["active_set"])
        res["dist"] = float(np.linalg.norm(Xf - ref["X_full"]) / ref["nX"])
    return res


def reference(prob, args, capture):
    """P* and X*: tfmxne at --ref-tol, with two duality-gap certificates."""
    from mne.inverse_sparse import mxne_optim

    tol_abs = args.ref_tol * prob["nM2"]
    print(
        f"  optimum: tfmxne at tol {args.ref_tol:g} x ||M||^2 = {tol_abs:.3g} ... ",
        end="",
        flush=True,
    )
    ref = solve_once(
        "tfmxne",
        prob,
        tol_abs,
        capture,
        args.tfmxne_timeout,
        args.blas_threads,
        maxit=100000,
    )
    if ref["status"] != "ok":
        raise SystemExit(f"the reference solve timed out (> {args.tfmxne_timeout:g} s)")
    evaluate(ref, prob)
    # MNE's duality gap at the same Z (its own dual point and epsilon norm)
    T = prob["M"].shape[1]
    wsize, tstep = np.atleast_1d(PROBLEM["wsize"]), np.atleast_1d(PROBLEM["tstep"])
    n_steps = np.ceil(T / tstep.astype(float)).astype(int)
    n_freqs = wsize // 2 + 1
    phi = mxne_optim._Phi(wsize, tstep, n_steps * n_freqs, T)
    phiT = mxne_optim._PhiT(tstep, n_freqs, n_steps, T)
    gap_m, p_m, d_m, _ = mxne_optim.dgap_l21l1(
        prob["M"],
        prob["G"],
        ref["Z"],
        ref["active_set"],
        prob["alpha_space"],
        prob["alpha_time"],
        phi,
        phiT,
        prob["n_orient"],
        -np.inf,
    )
    ref.update(
        tol_abs=tol_abs,
        gap_mne=float(gap_m),
        p_obj_mne=float(p_m),
        d_obj_mne=float(d_m),
        X_full=_full(ref["X"], ref["active_set"]),
    )
    ref["nX"] = float(np.linalg.norm(ref["X_full"]))
    # resolution of P - P*: P* is within either gap of the true minimum (both
    # are valid certificates: tfmxne's is checked against independent code in
    # the tests, MNE's shares nothing with tfmxne); the smaller one holds
    ref["resolution"] = max(min(ref["gap"], ref["gap_mne"]), 0.0)
    ok = ref["resolution"] <= tol_abs
    ref["certified"] = bool(ok)
    print(
        f"{bu.fmt_time(ref['time'])}, {ref['n_active_positions']} positions, "
        f"P* = {ref['p_obj']:.12g}; gap {ref['gap']:.2e} (tfmxne), "
        f"{ref['gap_mne']:.2e} (MNE's dgap_l21l1 at Z*): "
        + ("certified" if ok else "NOT certified (gap > tol)")
    )
    print(
        f"           P(Z*) here vs MNE's dgap_l21l1: {ref['p_obj'] - p_m:+.2e}; "
        f"X = Phi^T Z mismatch {ref['synthesis_mismatch']:.1e}"
    )
    for w in ref["warnings"]:
        print(f"           warning: {w}")
    return ref


def tol_sequence(prob, args):
    """(label, tol_rel, tol_abs) from loose to tight; MNE's defaults always in."""
    rel = sorted(
        set(args.tols) | {d["tol"] for d in MNE_DEFAULT_TOLS if d["kind"] == "relative"},
        reverse=True,
    )
    tols = [(f"{t:.0e}", t, t * prob["nM2"]) for t in rel]
    tols.append(("1e-08 abs", 1e-8 / prob["nM2"], 1e-8))
    return sorted(tols, key=lambda x: -x[2])


def run_curve(name, prob, ref, tols, args, capture):
    timeout = args.mne_timeout if name == "mne" else args.tfmxne_timeout
    # warm: once untimed (imports, caches, first-call costs)
    solve_once(name, prob, tols[0][2], capture, timeout, args.blas_threads)
    samples = []
    stopped = False
    for label, t_rel, t_abs in tols:
        base = dict(solver=name, tol_label=label, tol_rel=t_rel, tol_abs=t_abs)
        if stopped:
            samples.append(dict(base, status="skipped"))
            continue
        res = None
        for _ in range(args.repeat):  # best of --repeat (the solves are deterministic)
            r = solve_once(name, prob, t_abs, capture, timeout, args.blas_threads)
            if res is None or r["status"] != "ok" or r["time"] < res["time"]:
                res = r
            if r["status"] != "ok":
                break
        res = evaluate(res, prob, ref)
        for k in ("X", "Z", "active_set"):
            res.pop(k, None)
        samples.append(dict(base, **res))
        if res["status"] == "ok":
            print(
                f"    {LABELS[name]:<7} tol {label:<10} {bu.fmt_time(res['time']):>8}  "
                f"P-P* {res['subopt']:+.2e}  dist {res['dist']:.1e}  "
                f"gap {res['gap']:.1e}  {res['n_active_positions']} pos"
                + ("  (warned)" if res["warnings"] else "")
            )
        else:
            print(
                f"    {LABELS[name]:<7} tol {label:<10} timeout (> {timeout:g} s): "
                "tighter tolerances skipped"
            )
            stopped = True
    return samples


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
def time_to_reach(samples, target):
    """First sample in time whose suboptimality is at or below ``target``."""
    ok = sorted((s for s in samples if s["status"] == "ok"), key=lambda s: s["time"])
    for s in ok:
        if s["subopt"] <= target:
            return s
    return None


def summarize(case_res):
    ref = case_res["ref"]
    res_floor = ref["resolution"]
    rows = []
    for d in MNE_DEFAULT_TOLS:
        tol_abs = d["tol"] * case_res["nM2"] if d["kind"] == "relative" else d["tol"]
        label = f"{d['tol']:.0e}" if d["kind"] == "relative" else f"{d['tol']:.0e} abs"
        row = dict(
            key=d["key"], where=d["where"], tol=d["tol"], kind=d["kind"], tol_abs=tol_abs
        )
        m = next((s for s in case_res["mne"] if s["tol_label"] == label), None)
        t_same = next((s for s in case_res["tfmxne"] if s["tol_label"] == label), None)
        row["mne"] = _brief(m)
        row["tfmxne_same_tol"] = _brief(t_same)
        if m is not None and m["status"] == "ok":
            # below the resolution of P*, the suboptimality is not resolved
            target = max(m["subopt"], res_floor)
            row["target"] = target
            row["target_at_resolution"] = bool(m["subopt"] <= res_floor)
            reach = time_to_reach(case_res["tfmxne"], target)
            row["tfmxne_reach"] = _brief(reach)
            if reach is not None:
                row["ratio"] = m["time"] / reach["time"]
        rows.append(row)
    return rows


def _brief(s):
    if s is None:
        return None
    keys = (
        "tol_label",
        "status",
        "time",
        "subopt",
        "dist",
        "gap",
        "n_active_positions",
        "timeout",
    )
    return {k: s[k] for k in keys if k in s}


def _f_time(s):
    if not s:
        return "-"
    if s.get("status") == "timeout":
        return f"timeout (> {s['timeout']:g} s)"
    if s.get("status") != "ok":
        return s.get("status", "-")
    return bu.fmt_time(s["time"])


def _f_sub(s, res_floor):
    if not s or s.get("status") != "ok":
        return "-"
    return (
        f"<= {res_floor:.1e} (res.)" if s["subopt"] <= res_floor else f"{s['subopt']:.1e}"
    )


def _f_dist(s):
    return f"{s['dist']:.1e}" if s and s.get("status") == "ok" else "-"


SUMMARY_HEADER = [
    "case",
    "MNE tol (default of)",
    "MNE time",
    "MNE P-P*",
    "MNE dist",
    "tfmxne time to same P-P*",
    "tfmxne P-P* / dist there",
    "ratio",
    "tfmxne at same tol: time, P-P*, dist",
]


def summary_rows(results):
    rows = []
    for c in results:
        res_floor = c["ref"]["resolution"]
        for r in c["summary"]:
            tol = (
                f"{r['tol']:g} x ||M||^2"
                if r["kind"] == "relative"
                else f"{r['tol']:g} absolute"
            )
            reach = r.get("tfmxne_reach")
            same = r.get("tfmxne_same_tol")
            if r.get("target") is None:
                t_reach, there = "-", "-"
            elif reach is None:
                t_reach, there = "not reached", "-"
            else:
                t_reach = _f_time(reach)
                there = f"{_f_sub(reach, res_floor)} / {_f_dist(reach)}"
            rows.append(
                [
                    c["case"],
                    f"{tol} ({r['where']})",
                    _f_time(r["mne"]),
                    _f_sub(r["mne"], res_floor),
                    _f_dist(r["mne"]),
                    t_reach,
                    there,
                    f"{r['ratio']:.1f}x" if r.get("ratio") else "-",
                    (
                        f"{_f_time(same)}, {_f_sub(same, res_floor)}, {_f_dist(same)}"
                        if same
                        else "-"
                    ),
                ]
            )
    return rows


CURVE_HEADER = [
    "case",
    "solver",
    "tol",
    "time",
    "P-P*",
    "dist",
    "gap (solver)",
    "positions",
]


def curve_rows(results):
    rows = []
    for c in results:
        for name in SOLVERS:
            for s in c[name]:
                ok = s["status"] == "ok"
                rows.append(
                    [
                        c["case"],
                        LABELS[name],
                        s["tol_label"],
                        _f_time(s),
                        f"{s['subopt']:+.2e}" if ok else "-",
                        f"{s['dist']:.1e}" if ok else "-",
                        f"{s['gap']:.1e}" if ok else "-",
                        str(s["n_active_positions"]) if ok else "-",
                    ]
                )
    return rows


def print_markdown_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")


# ---------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------
def plot(results, path, tols_text):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(
        2, n, figsize=(max(5.2 * n, 7.5), 7.0), squeeze=False, constrained_layout=True
    )
    for j, c in enumerate(results):
        res_floor = c["ref"]["resolution"]
        ax_s, ax_d = axes[0, j], axes[1, j]
        y_floor = res_floor / 3.0 if res_floor > 0 else 1e-16
        for name in SOLVERS:
            # joined in the order of the tolerances (loose to tight), the
            # curve's parameter, as benchopt joins its stopping criteria
            ok = [s for s in c[name] if s["status"] == "ok"]
            if not ok:
                continue
            t = np.array([s["time"] for s in ok])
            sub = np.array([s["subopt"] for s in ok])
            dist = np.array([s["dist"] for s in ok])
            ax_s.plot(
                t,
                np.maximum(sub, y_floor),
                "o-",
                color=COLORS[name],
                label=LABELS[name],
                ms=4,
            )
            ax_d.plot(
                t,
                np.maximum(dist, 1e-16),
                "o-",
                color=COLORS[name],
                label=LABELS[name],
                ms=4,
            )
        for r, marker in zip(c["summary"], ("*", "D")):
            m = r.get("mne")
            if not m or m.get("status") != "ok":
                continue
            lab = (
                f"MNE at tol {r['tol']:g}"
                + (" x ||M||^2" if r["kind"] == "relative" else " abs")
                + f" ({r['where']})"
            )
            ax_s.plot(
                m["time"],
                max(m["subopt"], y_floor),
                marker,
                color="k",
                ms=9,
                mfc="none",
                label=lab,
            )
            ax_d.plot(m["time"], m["dist"], marker, color="k", ms=9, mfc="none")
            reach = r.get("tfmxne_reach")
            if reach:
                y = max(r["target"], y_floor)
                ax_s.plot([reach["time"], m["time"]], [y, y], ":", color="k", lw=1)
                ax_s.plot(
                    reach["time"],
                    max(reach["subopt"], y_floor),
                    marker,
                    color=COLORS["tfmxne"],
                    ms=9,
                    mfc="none",
                )
        if res_floor > 0:
            ax_s.axhspan(
                y_floor / 3,
                res_floor,
                color="0.85",
                zorder=0,
                label="not resolved (gap of P*)",
            )
        ax_s.set(
            xscale="log",
            yscale="log",
            ylabel="P(Z_t) - P*",
            title=f"{c['case']}: {c['desc']}\n{c['M_shape'][0]} whitened channels "
            f"x {c['M_shape'][1]} samples",
        )
        ax_d.set(
            xscale="log",
            yscale="log",
            xlabel="wall time of the solve (s)",
            ylabel="||X_t - X*|| / ||X*||",
        )
        for ax in (ax_s, ax_d):
            ax.grid(True, which="major", alpha=0.4)
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=3 if n > 1 else 2,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        "Time to accuracy: each point is one solve from scratch to a "
        f"tolerance\n(tol = {tols_text} x ||M||^2 and 1e-8 absolute; "
        "debias=False)",
        fontsize=9,
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument("--case", choices=("surf", "vol7", "all"), default="all")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: crop 0.05..0.15 s, tol 1e-1..1e-4 (and 1e-8 abs), "
        "reference at 1e-10, MNE timeout 60 s, figure in a temp folder",
    )
    ap.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder of time_to_accuracy.png (default: benchmarks/; a "
        "temporary folder with --quick)",
    )
    ap.add_argument("--json", default=None, metavar="PATH", help="write all numbers here")
    ap.add_argument(
        "--tols",
        default=None,
        metavar="T1,T2,...",
        help="relative tolerances of the curves (default 1e-1,1e-2,...,1e-10;"
        " 1e-1,...,1e-4 with --quick); MNE's defaults, 1e-4 relative "
        "and 1e-8 absolute, are always added",
    )
    ap.add_argument(
        "--ref-tol",
        type=float,
        default=None,
        help="relative tol of the reference tfmxne solve (default 1e-12; "
        "1e-10 with --quick)",
    )
    ap.add_argument(
        "--mne-timeout",
        type=float,
        default=None,
        help="seconds after which one MNE solve is stopped (default 600; 60 "
        "with --quick); tighter tolerances are then skipped",
    )
    ap.add_argument(
        "--tfmxne-timeout",
        type=float,
        default=300.0,
        help="same for tfmxne (a safety net, default 300)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each sample N times, keep the fastest (default 1)",
    )
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS threads of both solvers (threadpoolctl); default: "
        "library default",
    )
    ap.add_argument("--data", default=None, help="sample data folder")
    ap.add_argument(
        "--from-json",
        default=None,
        metavar="PATH",
        help="no solve: print the tables and redraw the figure from the "
        "--json output of an earlier run",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.tols is None:
        args.tols = QUICK_TOLS if args.quick else TOLS
    else:
        try:
            args.tols = tuple(float(t) for t in args.tols.split(",") if t.strip())
        except ValueError:
            ap.error(f"--tols: expected comma-separated numbers, got {args.tols!r}")
        if not args.tols or min(args.tols) <= 0:
            ap.error(f"--tols: expected positive tolerances, got {args.tols!r}")
    if args.ref_tol is None:
        args.ref_tol = 1e-10 if args.quick else 1e-12
    if args.mne_timeout is None:
        args.mne_timeout = 60.0 if args.quick else 600.0
    if args.out is None:
        args.out = (
            Path(tempfile.gettempdir()) / "tfmxne-tta-quick" if args.quick else HERE
        )
    return args


def report(results, ref_tol, tols_text, out):
    print("\n== all samples ==")
    print_markdown_table(CURVE_HEADER, curve_rows(results))
    print("\n== time to MNE's accuracy at its default tolerances ==")
    print("<!-- generated by benchmarks/bench_time_to_accuracy.py -->")
    print_markdown_table(SUMMARY_HEADER, summary_rows(results))
    for c in results:
        r = c["ref"]
        print(
            f"\n{c['case']}: P* = {r['p_obj']:.12g} (tfmxne at {ref_tol:g} x "
            f"||M||^2, {bu.fmt_time(r['time'])}); resolution of P-P* "
            f"{r['resolution']:.1e} ({r['resolution'] / c['nM2']:.1e} x ||M||^2); "
            f"dist = ||X_t - X*|| / ||X*||, debias=False"
            + ("" if r["certified"] else "; P* NOT certified")
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_path = out / "time_to_accuracy.png"
    plot(results, fig_path, tols_text)
    print(f"\nwrote {fig_path} ({fig_path.stat().st_size / 1024:.0f} KB)")


def main(argv=None):
    args = parse_args(argv)
    tols_text = ", ".join(f"{t:g}" for t in sorted(set(args.tols) | {1e-4}, reverse=True))
    if args.from_json:
        payload = json.loads(Path(args.from_json).read_text())
        a = payload["args"]
        tols_text = ", ".join(
            f"{t:g}" for t in sorted(set(a.get("tols", TOLS)) | {1e-4}, reverse=True)
        )
        report(payload["cases"], a["ref_tol"], tols_text, args.out)
        return payload["cases"]
    import mne

    mne.set_log_level("ERROR")
    bu.warn_if_busy()
    sample = bu.find_sample(args.data)
    cases = list(CASES) if args.case == "all" else [args.case]
    capture = Capture()
    env = bu.environment()
    import tfmxne

    env.update(python_executable=sys.executable, tfmxne_file=tfmxne.__file__)
    print(
        f"tfmxne {env['tfmxne']}, MNE {env['mne']}, numpy {env['numpy']}; "
        f"{env['cpu_count']} CPUs; BLAS threads {args.blas_threads or 'default'}"
        + ("; QUICK smoke run" if args.quick else "")
    )
    t_start = time.perf_counter()
    results = []
    for case in cases:
        prob = build_problem(case, args, sample)
        M = prob["M"]
        print(
            f"\ncase {case}: {prob['desc']}; M {M.shape[0]} x {M.shape[1]} "
            f"(crop {prob['crop'][0]:g}..{prob['crop'][1]:g} s), G {prob['G'].shape}, "
            f"||M||^2 = {prob['nM2']:.6g}; alpha_space {prob['alpha_space']:g}, "
            f"alpha_time {prob['alpha_time']:g}"
        )
        ref = reference(prob, args, capture)
        tols = tol_sequence(prob, args)
        case_res = dict(
            case=case,
            desc=prob["desc"],
            M_shape=list(M.shape),
            G_shape=list(prob["G"].shape),
            n_orient=prob["n_orient"],
            nM2=prob["nM2"],
            crop=prob["crop"],
            alpha_space=prob["alpha_space"],
            alpha_time=prob["alpha_time"],
        )
        case_res["ref"] = {
            k: v for k, v in ref.items() if k not in ("X", "Z", "active_set", "X_full")
        }
        for name in ("tfmxne", "mne"):
            case_res[name] = run_curve(name, prob, ref, tols, args, capture)
        low = [
            s
            for n in SOLVERS
            for s in case_res[n]
            if s["status"] == "ok" and s["subopt"] < -ref["resolution"]
        ]
        if low:
            print(
                f"  WARNING: {len(low)} sample(s) below P* by more than its gap: "
                "the certificate of P* is wrong"
            )
        case_res["summary"] = summarize(case_res)
        results.append(case_res)
        del prob, ref

    total = time.perf_counter() - t_start
    report(results, args.ref_tol, tols_text, args.out)
    print(f"total {total:.0f} s")
    if args.json:
        payload = dict(
            args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            problem=PROBLEM,
            env=env,
            total_time=total,
            cases=results,
        )
        Path(args.json).write_text(json.dumps(payload, indent=1, default=bu.jsonable))
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
