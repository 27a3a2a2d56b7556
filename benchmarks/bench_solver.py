# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Engine anchor: MNE's and tfmxne's TF-MxNE solvers on the same whitened problem.

Builds the whitened data ``M`` and the scaled gain ``G`` exactly as
``tf_mixed_norm`` does (``tfmxne._problem.prepare``: PCA whitening, depth
weighting, half-Hanning tapers, gain scaled by alpha_max / 100 so that alpha is
in percent), then solves it in this one process with

* ``mne.inverse_sparse.mxne_optim.tf_mixed_norm_solver`` (once), and
* ``tfmxne.tf_mixed_norm_solver`` (best of ``--repeat``),
* the public C API, ``d_tf_mxne_solve`` of ``tfmxne.cython_tfmxne`` (through its
  test hook; same options and thread count; best of ``--repeat``), whose result
  must be the Python solver's bit for bit (one solver in the core),

with ``alpha_space = alpha * (1 - l1_ratio)``, ``alpha_time = alpha * l1_ratio``,
``tol_abs = tol * sum(M ** 2)`` and ``maxit=3000``, as ``tf_mixed_norm`` calls
them. Prints both times, their ratio, the active-set sizes (positions), the
relative difference of ``X`` when the active sets agree (else the number of
positions in their symmetric difference) and both final duality gaps.

Default (the anchor): 7 mm volume grid (4371 positions x 3 orientations,
loose=1, 362 whitened channels), evoked 'Left Auditory' cropped to
-0.05..0.3 s (211 samples), alpha=40, l1_ratio=0.03, tol=1e-4, wsize=64,
tstep=4, debias=True.

Examples::

    python benchmarks/bench_solver.py                 # the anchor (minutes: MNE)
    python benchmarks/bench_solver.py --fwd surf --repeat 5
    python benchmarks/bench_solver.py --quick         # smoke run, seconds
    python benchmarks/bench_solver.py --blas-threads 1 --json solver.json
"""

import argparse
import json
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_utils as bu


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--fwd",
        choices=sorted(bu.FWD_KINDS),
        default=None,
        help="source space (default vol7; surf with --quick)",
    )
    ap.add_argument(
        "--tol",
        type=float,
        default=None,
        help="relative tolerance (default 1e-4; 1e-3 with --quick)",
    )
    ap.add_argument("--alpha", type=float, default=40.0, help="alpha in %% of alpha_max")
    ap.add_argument("--l1-ratio", type=float, default=0.03)
    ap.add_argument("--wsize", type=int, default=64)
    ap.add_argument("--tstep", type=int, default=4)
    ap.add_argument(
        "--loose",
        default=None,
        help="loose (default 1 on volume grids, 'auto' on the surface)",
    )
    ap.add_argument(
        "--crop",
        type=float,
        nargs=2,
        default=None,
        metavar=("TMIN", "TMAX"),
        help="crop of the evoked in s (default -0.05 0.3; 0.05 0.15 with --quick)",
    )
    ap.add_argument(
        "--maxit",
        type=int,
        default=3000,
        help="maxit of both solvers (3000 as tf_mixed_norm)",
    )
    ap.add_argument("--no-debias", action="store_true", help="debias=False")
    ap.add_argument("--repeat", type=int, default=1, help="tfmxne: best of N (default 1)")
    ap.add_argument("--skip-mne", action="store_true", help="time tfmxne only")
    ap.add_argument(
        "--mne-timeout",
        type=float,
        default=None,
        help="stop MNE's solver after this many seconds (reported as a "
        "timeout, the speedup as a lower bound); default: no limit",
    )
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS threads of both solvers (threadpoolctl); default: "
        "library default (all cores). tfmxne always runs its inner "
        "solves on one BLAS thread.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: surface, crop 0.05..0.15 s, tol 1e-3",
    )
    ap.add_argument("--data", default=None, help="sample data folder")
    ap.add_argument("--json", default=None, metavar="PATH", help="write all numbers here")
    args = ap.parse_args(argv)
    if args.fwd is None:
        args.fwd = "surf" if args.quick else "vol7"
    if args.tol is None:
        args.tol = 1e-3 if args.quick else 1e-4
    if args.crop is None:
        args.crop = (0.05, 0.15) if args.quick else (-0.05, 0.3)
    if args.loose is None:
        args.loose = "auto" if args.fwd == "surf" else 1.0
    elif args.loose != "auto":
        args.loose = float(args.loose)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def _positions(active_set, n_orient):
    return np.flatnonzero(np.asarray(active_set).reshape(-1, n_orient).any(axis=1))


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout


def _run(fun, M, G, a_space, a_time, args, n_orient, tol_abs, timeout=None):
    """One timed solve on fresh copies; returns (time, cpu time, outputs, warnings).

    ``outputs`` is None when ``timeout`` (seconds) was hit.
    """
    from threadpoolctl import threadpool_limits

    M = M.copy()
    G = G.copy()
    limit = (
        threadpool_limits(args.blas_threads, user_api="blas")
        if args.blas_threads
        else nullcontext()
    )
    if timeout:
        signal.signal(signal.SIGALRM, _on_alarm)
    with warnings.catch_warnings(record=True) as w, limit:
        warnings.simplefilter("always")
        c0 = time.process_time()
        t0 = time.perf_counter()
        try:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            out = fun(
                M,
                G,
                a_space,
                a_time,
                wsize=args.wsize,
                tstep=args.tstep,
                n_orient=n_orient,
                maxit=args.maxit,
                tol=tol_abs,
                debias=not args.no_debias,
                return_gap=True,
                verbose=False,
            )
        except _Timeout:
            out = None
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
        t = time.perf_counter() - t0
        c = time.process_time() - c0
    msgs = [f"{x.category.__name__}: {x.message}" for x in w]
    return t, c, out, msgs


def _c_api_solver(
    M,
    G,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    maxit,
    tol,
    debias,
    return_gap,
    verbose,
):
    """``tf_mixed_norm_solver``'s signature on the C API (``d_tf_mxne_solve``),
    with the thread count and BLAS pinning the Python solver uses."""
    from tfmxne import _parallel
    from tfmxne._testing import _hooks

    n_thr = _parallel.solve_threads()
    with _parallel.blas_one_thread():
        X, act, info, out = _hooks.solve_arrays(
            M,
            G,
            (alpha_space, alpha_time),
            (wsize, tstep),
            n_orient=n_orient,
            maxit=maxit,
            tol=tol,
            n_threads=n_thr,
            debias=int(debias),
        )
    return X[act], act, list(out["obj"]), info["gap"]


def main(argv=None):
    args = parse_args(argv)
    import mne
    from mne.inverse_sparse.mxne_optim import tf_mixed_norm_solver as mne_solver

    import tfmxne

    mne.set_log_level("ERROR")
    bu.warn_if_busy()
    sample = bu.find_sample(args.data)
    evoked = bu.read_evoked(sample).crop(*args.crop)
    cov = bu.read_cov(sample)
    fwd = bu.get_forward(sample, args.fwd)

    t0 = time.perf_counter()
    p = bu.prepare_problem(
        evoked, fwd, cov, args.l1_ratio, args.wsize, args.tstep, loose=args.loose
    )
    t_prep = time.perf_counter() - t0
    M = np.ascontiguousarray(p.M, dtype=np.float64)
    G = np.asarray(p.gain, dtype=np.float64)
    n_orient = p.n_orient
    nM2 = float(np.sum(M**2))
    tol_abs = args.tol * nM2
    a_space = args.alpha * (1.0 - args.l1_ratio)
    a_time = args.alpha * args.l1_ratio
    n_pos = G.shape[1] // n_orient

    print(
        f"problem: fwd={args.fwd} ({n_pos} positions x {n_orient} orientations, "
        f"loose={args.loose}), M {M.shape[0]} whitened channels x {M.shape[1]} samples "
        f"(crop {args.crop[0]:g}..{args.crop[1]:g} s), G {G.shape[0]}x{G.shape[1]}"
    )
    print(
        f"         alpha={args.alpha:g} l1_ratio={args.l1_ratio:g} -> alpha_space="
        f"{a_space:g} alpha_time={a_time:g}; tol={args.tol:g} relative "
        f"(tol_abs={tol_abs:.4g}); wsize={args.wsize} tstep={args.tstep} "
        f"maxit={args.maxit} debias={not args.no_debias}; preparation {t_prep:.2f} s"
    )
    from threadpoolctl import threadpool_info

    nth = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
    print(
        f"         BLAS threads during the solves: {args.blas_threads or 'default'} "
        f"(library default {nth}); tfmxne: best of {args.repeat}"
    )

    result = dict(
        args=dict(vars(args).items()),
        env=bu.environment(),
        problem=dict(
            n_channels=M.shape[0],
            n_times=M.shape[1],
            n_positions=n_pos,
            n_orient=n_orient,
            nM2=nM2,
            tol_abs=tol_abs,
            alpha_space=a_space,
            alpha_time=a_time,
            alpha_max=float(p.alpha_max),
            t_prepare=t_prep,
        ),
    )

    # tfmxne
    times, cpus = [], []
    out_t = None
    for _ in range(args.repeat):
        t, c, out, msgs_t = _run(
            tfmxne.tf_mixed_norm_solver, M, G, a_space, a_time, args, n_orient, tol_abs
        )
        times.append(t)
        cpus.append(c)
        out_t = out
    X_t, as_t, E_t, gap_t = out_t
    pos_t = _positions(as_t, n_orient)
    t_t = min(times)
    result["tfmxne"] = dict(
        status="ok",
        time=t_t,
        times=times,
        cpu_times=cpus,
        n_active_positions=len(pos_t),
        gap=float(gap_t),
        gap_rel=float(gap_t) / nM2,
        final_objective=float(E_t[-1]) if len(E_t) else None,
        warnings=msgs_t,
    )

    rows = [
        (
            "tfmxne",
            t_t,
            cpus[int(np.argmin(times))],
            len(pos_t),
            gap_t,
            E_t[-1] if len(E_t) else np.nan,
            msgs_t,
        )
    ]

    # the C API: same solver, same bits, same speed
    times_c, cpus_c = [], []
    for _ in range(args.repeat):
        t, c, out_c, msgs_c = _run(
            _c_api_solver, M, G, a_space, a_time, args, n_orient, tol_abs
        )
        times_c.append(t)
        cpus_c.append(c)
    X_c, as_c, E_c, gap_c = out_c
    same_bits = bool(np.array_equal(as_c, as_t) and np.array_equal(X_c, X_t))
    result["c_api"] = dict(
        time=min(times_c), times=times_c, gap=float(gap_c), identical_to_python=same_bits
    )
    rows.append(
        (
            "C API",
            min(times_c),
            cpus_c[int(np.argmin(times_c))],
            len(_positions(as_c, n_orient)),
            gap_c,
            E_c[-1] if len(E_c) else np.nan,
            msgs_c,
        )
    )
    mne_done = False
    if not args.skip_mne:
        t_m, c_m, out_m, msgs_m = _run(
            mne_solver,
            M,
            G,
            a_space,
            a_time,
            args,
            n_orient,
            tol_abs,
            timeout=args.mne_timeout,
        )
    if not args.skip_mne and out_m is None:
        result["mne"] = dict(status="timeout", timeout=args.mne_timeout, time=t_m)
    elif not args.skip_mne:
        mne_done = True
        X_m, as_m, E_m, gap_m = out_m
        pos_m = _positions(as_m, n_orient)
        result["mne"] = dict(
            status="ok",
            time=t_m,
            cpu_time=c_m,
            n_active_positions=len(pos_m),
            gap=float(gap_m),
            gap_rel=float(gap_m) / nM2,
            final_objective=float(E_m[-1]) if len(E_m) else None,
            warnings=msgs_m,
        )
        rows.insert(
            0,
            ("MNE", t_m, c_m, len(pos_m), gap_m, E_m[-1] if len(E_m) else np.nan, msgs_m),
        )

    print()
    if not args.skip_mne and not mne_done:
        print(
            f"MNE: stopped after {bu.fmt_time(t_m)} (--mne-timeout {args.mne_timeout:g})"
        )
    print(
        f"{'solver':<8} {'time':>10} {'cpu':>10} {'active pos':>11} "
        f"{'final gap':>11} {'gap/|M|^2':>10} {'gap<=tol':>8} {'objective':>14}"
    )
    for name, t, c, na, gap, obj, _ in rows:
        ok = "ok" if gap <= tol_abs else "NOT <= tol"
        objs = f"{obj:.8g}" if np.isfinite(obj) else "-"
        print(
            f"{name:<8} {bu.fmt_time(t):>10} {bu.fmt_time(c):>10} {na:>11d} "
            f"{gap:>11.4g} {gap / nM2:>10.3g} {ok:>8} {objs:>14}"
        )
    for name, *_, msgs in rows:
        for m in msgs:
            print(f"  warning ({name}): {m}")

    print(f"C API / Python time: {min(times_c) / t_t:.2f}; identical bits: {same_bits}")
    if not args.skip_mne and not mne_done:
        result["comparison"] = dict(speedup_lower_bound=args.mne_timeout / t_t)
        print(
            f"\nMNE: timeout (> {args.mne_timeout:g} s); speedup > "
            f"{args.mne_timeout / t_t:.0f}x"
        )
    elif not args.skip_mne:
        ratio = t_m / t_t
        same = np.array_equal(as_m, as_t)
        comp = dict(speedup=ratio, same_active_set=bool(same))
        print(f"\nspeedup (MNE / tfmxne): {ratio:.1f}x")
        if same:
            denom = np.linalg.norm(X_m)
            rel = float(np.linalg.norm(X_t - X_m) / denom) if denom > 0 else float("nan")
            comp["rel_diff_X"] = rel
            print(
                f"active sets agree ({len(pos_t)} positions); "
                f"||X_tfmxne - X_mne|| / ||X_mne|| = {rel:.3g}"
            )
        else:
            sym = np.setxor1d(pos_m, pos_t)
            comp["sym_diff_positions"] = int(len(sym))
            comp["common_positions"] = int(len(np.intersect1d(pos_m, pos_t)))
            print(
                f"active sets differ: {len(sym)} positions in the symmetric difference "
                f"({comp['common_positions']} common; MNE {len(pos_m)}, tfmxne "
                f"{len(pos_t)})"
            )
        result["comparison"] = comp
    else:
        print("\n(MNE skipped)")

    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=bu.jsonable))
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
