# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end speed: ``mne.inverse_sparse.tf_mixed_norm`` vs ``tfmxne.tf_mixed_norm``.

Every run (one implementation on one case) is a fresh Python process: this same
script in its hidden ``--worker`` mode, which loads the data (not timed), times
the ``tf_mixed_norm`` call alone (wall and CPU time), and writes a JSON (times,
memory, warnings) and an ``.npz`` (vertices and data of the estimate). Peak
memory is therefore that run's own: the kernel's peak-RSS mark is reset just
before the call (Linux ``/proc/self/clear_refs``), so ``peak RSS`` is the peak
resident memory during the call (inputs included) and ``+call`` is that peak
minus the resident memory just before the call. The parent also reports each
process's total wall time (interpreter start, imports, data loading, call).

Cases (sample data, 'Left Auditory', cropped to -0.05..0.3 s = 211 samples unless
said; alpha=40, l1_ratio=0.03, tol=1e-4, wsize=64, tstep=4):

  a  surf        surface, 508 positions, loose='auto'
  b  vol7        7 mm volume grid, 4371 positions, loose=1
  c  vol5        5 mm volume grid, 11942 positions, loose=1
  d  long        whole evoked resampled to 1801.8 Hz (1263 samples), surface
  e  multi       wsize=[16, 64], tstep=[4, 4], n_tfmxne_iter=10, alpha=30,
                 l1_ratio=0.05, surface
  f  vol7-tight  7 mm volume grid at tol=1e-8

Each case also runs a reference worker: tfmxne at tol=1e-10 (``--ref-tol``),
the *converged optimum* (certified by its duality gap; exact debiasing, which
is MNE's debiasing problem solved to its minimiser). Every worker records the
debiasing scaling it applied (MNE's ``compute_bias``, tfmxne's ``_debias``),
so one call gives both the debiased estimate and the estimate before
debiasing; the report prints the four relative distances to the optimum
(MNE / tfmxne, with and without debiasing), ``||est - opt|| / ||opt||`` on the
union of the active vertices.

then a scaling table on the surface source space: time vs n_times (the whole
evoked, 421 samples at 600.6 Hz, resampled to 200, 500, 1000, 2000 samples) and
vs n_sources (every 4th, every 2nd, all positions of the surface forward, on
the 211-sample crop), with a least-squares log-log slope per implementation.

MNE runs stop after ``--mne-timeout`` seconds of solving (reported as
"timeout (> N s)", the speedup then a lower bound). The whole run keeps to
``--budget`` seconds (default 29 min): MNE timeouts are shortened when time
runs out, and in the scaling table MNE is skipped beyond its own budget and
beyond a size at which it timed out.

Examples::

    python benchmarks/bench_end_to_end.py --json e2e.json --markdown
    python benchmarks/bench_end_to_end.py --cases a,d,e --skip-scaling
    python benchmarks/bench_end_to_end.py --quick          # smoke run (~1 min)
    # A/B: also time the tfmxne of another install (e.g. an older commit's venv)
    python benchmarks/bench_end_to_end.py --python-b ../old/.venv/bin/python \
        --label-a new --label-b old --json ab.json --markdown
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_utils as bu

DEFAULT_CROP = (-0.05, 0.3)
BASE = dict(
    fwd="surf",
    crop=DEFAULT_CROP,
    resample=None,
    n_times=None,
    src_step=1,
    loose="auto",
    alpha=40.0,
    l1_ratio=0.03,
    tol=1e-4,
    wsize=64,
    tstep=4,
    n_tfmxne_iter=1,
)
CASES = {
    "a": dict(name="surf", desc="surface, 508 positions, loose='auto'"),
    "b": dict(
        name="vol7", desc="7 mm volume, 4371 positions, loose=1", fwd="vol7", loose=1.0
    ),
    "c": dict(
        name="vol5", desc="5 mm volume, 11942 positions, loose=1", fwd="vol5", loose=1.0
    ),
    "d": dict(
        name="long", desc="whole evoked at 1801.8 Hz, surface", crop=None, resample=1801.8
    ),
    "e": dict(
        name="multi",
        desc="wsize [16,64], tstep [4,4], 10 reweightings, "
        "alpha 30, l1_ratio 0.05, surface",
        wsize=[16, 64],
        tstep=[4, 4],
        n_tfmxne_iter=10,
        alpha=30.0,
        l1_ratio=0.05,
    ),
    "f": dict(
        name="vol7-tight",
        desc="7 mm volume, loose=1, tol=1e-8",
        fwd="vol7",
        loose=1.0,
        tol=1e-8,
    ),
}
SCALING_N_TIMES = (200, 500, 1000, 2000)
SCALING_SRC_STEPS = (4, 2, 1)
IMPLS = ("mne", "tfmxne")


# ===========================================================================
# worker: one implementation on one problem, in its own process
# ===========================================================================
def _build_problem(spec, sample):
    """Evoked, forward and noise covariance of ``spec`` (not timed)."""
    evoked = bu.read_evoked(sample)
    if spec.get("crop") is not None:
        evoked.crop(*spec["crop"])
    if spec.get("resample") is not None:
        evoked = evoked.copy().resample(spec["resample"], verbose=False)
    if spec.get("n_times") is not None:
        evoked = bu.resample_to_n_times(evoked, spec["n_times"])
    cov = bu.read_cov(sample)
    fwd = bu.get_forward(sample, spec["fwd"], log=lambda m: print(m, file=sys.stderr))
    fwd = bu.subsample_forward(fwd, spec.get("src_step", 1))
    return evoked, fwd, cov


def _write_json(path, obj):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=bu.jsonable))
    os.replace(tmp, path)


def run_worker(args):
    import mne
    import mne.inverse_sparse.mxne_inverse
    from mne.inverse_sparse import tf_mixed_norm as mne_tf_mixed_norm

    import tfmxne
    import tfmxne.inverse

    mne.set_log_level("ERROR")
    spec = json.loads(args.spec)
    out = Path(args.out)
    t_load0 = time.perf_counter()
    sample = bu.find_sample(args.data)
    evoked, fwd, cov = _build_problem(spec, sample)
    t_load = time.perf_counter() - t_load0
    fun = mne_tf_mixed_norm if args.impl == "mne" else tfmxne.tf_mixed_norm
    kw = dict(
        alpha=spec["alpha"],
        l1_ratio=spec["l1_ratio"],
        tol=spec["tol"],
        loose=spec["loose"],
        wsize=spec["wsize"],
        tstep=spec["tstep"],
        n_tfmxne_iter=spec["n_tfmxne_iter"],
    )
    if args.impl == "ref":
        kw.update(tol=args.ref_tol, maxit=100000)
    scalings = _record_debiasing(args.impl)
    info = dict(
        impl=args.impl,
        spec=spec,
        t_load=t_load,
        n_times=len(evoked.times),
        sfreq=float(evoked.info["sfreq"]),
        n_positions=int(fwd["nsource"]),
        timeout=args.timeout,
        pid=os.getpid(),
        env=bu.environment(),
        python=sys.executable,
        tfmxne_file=tfmxne.__file__,
        debias_recorded=scalings is not None,
    )

    rss_before = bu.current_rss_mb()
    maxrss_load = bu.maxrss_mb()
    reset_ok = bu.reset_peak_rss()
    info.update(rss_before_mb=rss_before, maxrss_load_mb=maxrss_load, peak_reset=reset_ok)

    def on_timeout(signum, frame):  # runs between bytecodes once the limit is hit
        info.update(
            status="timeout", time=time.perf_counter() - t0, maxrss_call_mb=bu.maxrss_mb()
        )
        _write_json(out, info)
        os._exit(3)

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    signal.signal(signal.SIGALRM, on_timeout)
    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    with warnings.catch_warnings(record=True) as wrec:
        warnings.simplefilter("always")
        c0 = time.process_time()
        t0 = time.perf_counter()
        try:
            stc = fun(evoked, fwd, cov, verbose=False, **kw)
            status, err = "ok", None
        except Exception as exc:  # e.g. no active source: report, don't crash
            stc, status, err = None, "error", f"{type(exc).__name__}: {exc}"
        t_call = time.perf_counter() - t0
        c_call = time.process_time() - c0
    signal.setitimer(signal.ITIMER_REAL, 0)
    maxrss_call = bu.maxrss_mb()
    if args.tracemalloc:
        info["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2.0**20
        tracemalloc.stop()
    info.update(
        status=status,
        error=err,
        time=t_call,
        cpu_time=c_call,
        maxrss_call_mb=maxrss_call,
        maxrss_process_mb=max(maxrss_load, maxrss_call),
        call_increment_mb=maxrss_call - rss_before,
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in wrec}),
    )
    if stc is not None:
        verts = stc.vertices if isinstance(stc.vertices, list) else [stc.vertices]
        keys = np.concatenate(
            [np.c_[np.full(len(v), h), v] for h, v in enumerate(verts)]
        ).astype(np.int64)
        data = np.asarray(stc.data)
        # the estimate before debiasing: the debiasing scaling is one factor per
        # position (tied over orientations), applied before the components are
        # combined, so it divides each row of the estimate
        nodebias = data
        if scalings is None:  # hook unavailable: the estimate before debiasing unknown
            nodebias = None
        elif scalings:
            d = np.asarray(scalings[-1], dtype=float)
            if len(d) % len(keys) == 0 and len(d) > 0:
                d_pos = d[:: len(d) // len(keys)]
                nodebias = data / d_pos.reshape((-1,) + (1,) * (data.ndim - 1))
            info["debias_mean_scaling"] = float(np.mean(d))
        arrays = dict(keys=keys, data=data)
        if nodebias is not None:
            arrays["nodebias"] = nodebias
        np.savez(out.with_suffix(".npz"), **arrays)
        info["n_active"] = int(len(keys))
        info["stc_type"] = type(stc).__name__
    _write_json(out, info)


def _record_debiasing(impl):
    """Wrap the implementation's debiasing step to record the scaling it applies
    (one call per solve; its cost is unchanged). None if the function is absent
    (another install of tfmxne, see --python-b)."""
    scalings = []
    if impl == "mne":
        from mne.inverse_sparse import mxne_optim as mod

        name = "compute_bias"
    else:
        import importlib

        # where tf_mixed_norm calls it (older installs: _pipeline, then inverse)
        for where in ("tfmxne._solve", "tfmxne._pipeline", "tfmxne.inverse"):
            try:
                mod = importlib.import_module(where)
                break
            except ImportError:
                continue
        name = "_debias"
    original = getattr(mod, name, None)
    if original is None:
        print(
            f"note: {mod.__name__}.{name} not found: the estimate before debiasing "
            "is not recorded",
            file=sys.stderr,
        )
        return None

    def wrapper(*a, **k):
        d = original(*a, **k)
        scalings.append(np.array(d, dtype=float))
        return d

    setattr(mod, name, wrapper)
    return scalings


# ===========================================================================
# parent
# ===========================================================================
class Runner:
    """Spawns the workers and keeps the global time budget."""

    def __init__(self, args, tmpdir):
        self.args = args
        self.tmpdir = Path(tmpdir)
        self.deadline = time.monotonic() + args.budget
        self.count = 0
        self.env = os.environ.copy()
        if args.blas_threads:
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                self.env[k] = str(args.blas_threads)

    def remaining(self):
        return self.deadline - time.monotonic()

    def run(self, impl, spec, timeout, label, python=None, name=None):
        """Run one worker; returns its result dict (status ok/timeout/error/...).

        ``python``: the interpreter of the worker (default: this one), hence the
        tfmxne it imports; ``name``: how the progress line calls it.
        """
        self.count += 1
        base = self.tmpdir / f"run{self.count:03d}-{impl}"
        out = base.with_suffix(".json")
        cmd = [
            python or sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--impl",
            impl,
            "--spec",
            json.dumps(spec),
            "--out",
            str(out),
            "--timeout",
            f"{timeout:g}",
        ]
        if self.args.data:
            cmd += ["--data", self.args.data]
        if impl == "ref":
            cmd += ["--ref-tol", f"{self.args.ref_tol:g}"]
        if self.args.tracemalloc:
            cmd.append("--tracemalloc")
        print(f"  [{label}] {name or impl:<6} ... ", end="", flush=True)
        t0 = time.perf_counter()
        with open(base.with_suffix(".log"), "w") as log:
            try:
                # backstop: the worker stops itself after `timeout` s of solving;
                # this also covers interpreter start and data loading
                proc = subprocess.run(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    timeout=timeout + 120,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
        wall = time.perf_counter() - t0
        if out.exists():
            res = json.loads(out.read_text())
        else:
            res = dict(
                impl=impl,
                spec=spec,
                time=None,
                timeout=timeout,
                status="timeout" if rc is None else "crashed",
            )
        res["process_wall"] = wall
        res["returncode"] = rc
        npz = base.with_suffix(".npz")
        res["_npz"] = str(npz) if npz.exists() else None
        if res["status"] == "ok":
            print(
                f"{bu.fmt_time(res['time'])} (process {wall:.1f} s, "
                f"{res.get('n_active', '?')} active)"
            )
        elif res["status"] == "timeout":
            print(f"timeout (> {timeout:g} s)")
        else:
            tail = base.with_suffix(".log").read_text().strip().splitlines()[-3:]
            msg = res.get("error") or " | ".join(tail)
            print(f"{res['status']}: {msg}")
            res["error"] = msg
        return res


def compare(res_m, res_t):
    """Agreement of two estimates: relative difference or vertex overlap."""
    if not (res_m.get("_npz") and res_t.get("_npz")):
        return None
    a, b = np.load(res_m["_npz"]), np.load(res_t["_npz"])
    km, dm = a["keys"], a["data"]
    kt, dt = b["keys"], b["data"]
    ref = np.linalg.norm(dm)
    out = dict(n_mne=int(len(km)), n_tfmxne=int(len(kt)))
    if km.shape == kt.shape and np.array_equal(km, kt) and dm.shape == dt.shape:
        out.update(
            same_vertices=True,
            common=int(len(km)),
            rel_diff=float(np.linalg.norm(dt - dm) / ref) if ref > 0 else None,
        )
        return out
    sm = {tuple(k) for k in km.tolist()}
    st = {tuple(k) for k in kt.tolist()}
    union = sorted(sm | st)
    idx = {k: i for i, k in enumerate(union)}
    um = np.zeros((len(union), dm.shape[1]))
    ut = np.zeros((len(union), dt.shape[1]))
    um[[idx[tuple(k)] for k in km.tolist()]] = dm
    ut[[idx[tuple(k)] for k in kt.tolist()]] = dt
    out.update(
        same_vertices=False,
        common=len(sm & st),
        union=len(union),
        rel_diff_union=float(np.linalg.norm(ut - um) / ref)
        if ref > 0 and um.shape == ut.shape
        else None,
    )
    return out


def _on_union(ka, da, kb, db):
    """Two estimates on the union of their vertices (zeros where inactive)."""
    union = sorted({tuple(k) for k in ka.tolist()} | {tuple(k) for k in kb.tolist()})
    idx = {k: i for i, k in enumerate(union)}
    out = []
    for keys, data in ((ka, da), (kb, db)):
        u = np.zeros((len(union),) + data.shape[1:])
        u[[idx[tuple(k)] for k in keys.tolist()]] = data
        out.append(u)
    return out


def distances(res, res_ref):
    """Relative distances of ``res`` to the optimum ``res_ref``, with and
    without debiasing: ``||est - opt|| / ||opt||`` on the union of vertices."""
    if not (res.get("_npz") and res_ref.get("_npz")):
        return None
    a, b = np.load(res["_npz"]), np.load(res_ref["_npz"])
    out = {}
    for field in ("data", "nodebias"):
        if field not in a.files or field not in b.files:
            out[field] = None
            continue
        ua, ub = _on_union(a["keys"], a[field], b["keys"], b[field])
        nb = np.linalg.norm(ub)
        out[field] = float(np.linalg.norm(ua - ub) / nb) if nb > 0 else None
    return out


def _speedup(res_m, res_t):
    """(value, is_lower_bound) or (None, False)."""
    if res_t.get("status") != "ok" or not res_t.get("time"):
        return None, False
    if res_m.get("status") == "ok":
        return res_m["time"] / res_t["time"], False
    if res_m.get("status") == "timeout":
        return res_m["timeout"] / res_t["time"], True
    return None, False


def _fmt_speed(s, lower):
    if s is None:
        return "-"
    return f"> {s:.0f}x" if lower else (f"{s:.1f}x" if s < 100 else f"{s:.0f}x")


def _fmt_res_time(res):
    if res is None:
        return "-"
    st = res.get("status")
    if st == "ok":
        return bu.fmt_time(res["time"])
    if st == "timeout":
        return f"timeout (> {res['timeout']:g} s)"
    if st == "skipped":
        return "skipped"
    return st or "-"


def _fmt_agree(comp):
    if comp is None:
        return "-"
    if comp["same_vertices"]:
        rd = comp.get("rel_diff")
        return (
            f"same {comp['common']} vertices, rel. diff {rd:.1e}"
            if rd is not None
            else f"same {comp['common']} vertices"
        )
    s = f"overlap {comp['common']}/{comp['union']}"
    if comp.get("rel_diff_union") is not None:
        s += f", rel. diff {comp['rel_diff_union']:.1e}"
    return s


def _mem(res):
    v = res.get("maxrss_call_mb") if res else None
    return f"{v:.0f}" if v is not None and res.get("status") == "ok" else "-"


def _inc(res):
    v = res.get("call_increment_mb") if res else None
    return f"{v:.0f}" if v is not None and res.get("status") == "ok" else "-"


def _nact(res):
    return str(res["n_active"]) if res and res.get("n_active") is not None else "-"


def case_spec(cid, quick):
    spec = dict(BASE)
    spec.update({k: v for k, v in CASES[cid].items() if k not in ("name", "desc")})
    if quick:
        if spec["crop"] is not None:
            spec["crop"] = (0.05, 0.15)
        spec["tol"] = spec["tol"] * 10
    return spec


def run_cases(args, runner, case_ids):
    results = []
    for i, cid in enumerate(case_ids):
        spec = case_spec(cid, args.quick)
        name = CASES[cid]["name"]
        print(
            f"\ncase ({cid}) {name}: {CASES[cid]['desc']}"
            + (
                f"  [quick: crop {spec['crop']}, tol {spec['tol']:g}]"
                if args.quick
                else ""
            )
        )
        # tfmxne first: it is fast and keeps the MNE run last against the budget
        res_t = runner.run(
            "tfmxne",
            spec,
            args.tfmxne_timeout,
            cid,
            name=f"tfmxne ({args.label_a})" if args.python_b else None,
        )
        res_b = None
        if args.python_b:
            res_b = runner.run(
                "tfmxne",
                spec,
                args.tfmxne_timeout,
                cid,
                python=args.python_b,
                name=f"tfmxne ({args.label_b})",
            )
        if args.no_mne:
            res_m = dict(status="skipped")
        else:
            # keep ~20 s per remaining tfmxne case run and ~2 min for the
            # tfmxne runs of the scaling table; shorten MNE if time runs out
            reserve = 20 * (len(case_ids) - i - 1) + (0 if args.skip_scaling else 120)
            left = runner.remaining() - reserve
            tmo = max(10.0, min(args.mne_timeout, left))
            if tmo < args.mne_timeout:
                print(f"  (budget: MNE timeout shortened to {tmo:.0f} s)")
            res_m = runner.run("mne", spec, tmo, cid)
        sp, lower = _speedup(res_m, res_t)
        comp = compare(res_m, res_t)
        dist = None
        if not args.no_ref:
            res_r = runner.run("ref", spec, args.tfmxne_timeout, f"{cid} optimum")
            dist = {
                impl: distances(r, res_r)
                for impl, r in (("mne", res_m), ("tfmxne", res_t))
            }
            if res_b is not None:
                dist["tfmxne_b"] = distances(res_b, res_r)
        results.append(
            dict(
                id=cid,
                name=name,
                desc=CASES[cid]["desc"],
                spec=spec,
                n_times=res_t.get("n_times"),
                n_positions=res_t.get("n_positions"),
                mne=res_m,
                tfmxne=res_t,
                speedup=sp,
                speedup_is_lower_bound=lower,
                comparison=comp,
                distances=dist,
            )
        )
        if res_b is not None:
            sp_b, lower_b = _speedup(res_m, res_b)
            results[-1].update(
                tfmxne_b=res_b,
                speedup_b=sp_b,
                speedup_b_is_lower_bound=lower_b,
                comparison_ab=compare(res_b, res_t),
            )
    return results


def _slope(points, impl):
    xs = [p["x"] for p in points if p[impl].get("status") == "ok"]
    ys = [p[impl]["time"] for p in points if p[impl].get("status") == "ok"]
    if len(xs) < 2:
        return None, len(xs)
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]), len(xs)


def run_scaling(args, runner):
    axes = {"n_times": [], "n_sources": []}
    n_times_list = (200, 500) if args.quick else SCALING_N_TIMES
    steps = (4, 2) if args.quick else SCALING_SRC_STEPS
    specs = {"n_times": [], "n_sources": []}
    for n in n_times_list:
        s = dict(BASE, crop=None, n_times=n)
        specs["n_times"].append((n, s))
    for step in steps:
        s = dict(BASE, src_step=step)
        if args.quick:
            s.update(crop=(0.05, 0.15))
        specs["n_sources"].append((step, s))
    if args.quick:
        for lst in specs.values():
            for _, s in lst:
                s["tol"] = s["tol"] * 10
    mne_spent = 0.0
    for axis, lst in specs.items():
        print(f"\nscaling vs {axis} (surface):")
        mne_blocked = args.no_mne
        for key, spec in lst:
            label = f"{axis}={key}" if axis == "n_times" else f"every {key}"
            res_t = runner.run("tfmxne", spec, args.tfmxne_timeout, label)
            mne_left = args.scaling_mne_budget - mne_spent
            tmo = min(args.scaling_mne_timeout, mne_left, runner.remaining() - 30)
            if mne_blocked or tmo < 5:
                res_m = dict(status="skipped")
                print(f"  [{label}] mne    ... skipped")
            else:
                res_m = runner.run("mne", spec, tmo, label)
                mne_spent += res_m.get("time") or tmo
                if res_m.get("status") != "ok":
                    mne_blocked = True  # larger sizes would only take longer
            x = res_t.get("n_times") if axis == "n_times" else res_t.get("n_positions")
            sp, lower = _speedup(res_m, res_t)
            axes[axis].append(
                dict(
                    key=key,
                    x=x,
                    spec=spec,
                    mne=res_m,
                    tfmxne=res_t,
                    speedup=sp,
                    speedup_is_lower_bound=lower,
                )
            )
    slopes = {
        axis: {
            impl: dict(zip(("slope", "n_points"), _slope(pts, impl))) for impl in IMPLS
        }
        for axis, pts in axes.items()
    }
    return dict(axes=axes, slopes=slopes)


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------
def _case_rows(results):
    rows = []
    for r in results:
        m, t = r["mne"], r["tfmxne"]
        rows.append(
            [
                f"({r['id']}) {r['name']}",
                str(r.get("n_positions") or "-"),
                str(r.get("n_times") or "-"),
                _fmt_res_time(m),
                _fmt_res_time(t),
                _fmt_speed(r["speedup"], r["speedup_is_lower_bound"]),
                f"{_mem(m)} / {_mem(t)}",
                f"{_inc(m)} / {_inc(t)}",
                f"{_nact(m)} / {_nact(t)}",
                _fmt_agree(r["comparison"]),
                f"{m.get('process_wall', 0):.0f} / {t.get('process_wall', 0):.0f}"
                if m.get("process_wall")
                else f"- / {t.get('process_wall', 0):.0f}",
            ]
        )
    return rows


CASE_HEADER = [
    "case",
    "positions",
    "samples",
    "MNE",
    "tfmxne",
    "speedup",
    "peak RSS MB (M/T)",
    "+call MB (M/T)",
    "active (M/T)",
    "agreement",
    "process s (M/T)",
]
SCALE_HEADER = ["size", "MNE", "tfmxne", "speedup", "active (M/T)"]
DIST_HEADER = [
    "case",
    "MNE debiased",
    "tfmxne debiased",
    "MNE no debias",
    "tfmxne no debias",
    "closer",
]


def _dist_rows(results):
    def f(d, impl, field):
        v = (d or {}).get(impl) or {}
        return f"{v[field]:.1e}" if v.get(field) is not None else "-"

    rows = []
    for r in results:
        d = r.get("distances")
        if not d:
            continue
        closer = []
        for field in ("data", "nodebias"):
            m, t = (d.get("mne") or {}).get(field), (d.get("tfmxne") or {}).get(field)
            closer.append(
                "-" if m is None or t is None else ("tfmxne" if t <= m else "MNE")
            )
        rows.append(
            [
                f"({r['id']}) {r['name']}",
                f(d, "mne", "data"),
                f(d, "tfmxne", "data"),
                f(d, "mne", "nodebias"),
                f(d, "tfmxne", "nodebias"),
                " / ".join(closer),
            ]
        )
    return rows


AB_HEADER = [
    "case",
    "tfmxne A",
    "tfmxne B",
    "B / A",
    "MNE / A",
    "MNE / B",
    "dist A (deb. / no deb.)",
    "dist B (deb. / no deb.)",
    "A vs B",
    "peak RSS MB (A/B)",
]


def _ab_rows(results):
    def dd(d, key):
        v = (d or {}).get(key) or {}
        return " / ".join(
            f"{v[f]:.1e}" if v.get(f) is not None else "-" for f in ("data", "nodebias")
        )

    rows = []
    for r in results:
        if "tfmxne_b" not in r:
            continue
        a, b = r["tfmxne"], r["tfmxne_b"]
        ratio, _ = _speedup(b, a)  # time of B / time of A (A's speedup over B)
        rows.append(
            [
                f"({r['id']}) {r['name']}",
                _fmt_res_time(a),
                _fmt_res_time(b),
                _fmt_speed(ratio, b.get("status") == "timeout"),
                _fmt_speed(r["speedup"], r["speedup_is_lower_bound"]),
                _fmt_speed(r["speedup_b"], r["speedup_b_is_lower_bound"]),
                dd(r.get("distances"), "tfmxne"),
                dd(r.get("distances"), "tfmxne_b"),
                _fmt_agree(r.get("comparison_ab")),
                f"{_mem(a)} / {_mem(b)}",
            ]
        )
    return rows


def _scale_rows(pts, axis):
    rows = []
    for p in pts:
        size = (
            f"{p['x']} samples"
            if axis == "n_times"
            else f"{p['x']} positions (every {p['key']})"
        )
        rows.append(
            [
                size,
                _fmt_res_time(p["mne"]),
                _fmt_res_time(p["tfmxne"]),
                _fmt_speed(p["speedup"], p["speedup_is_lower_bound"]),
                f"{_nact(p['mne'])} / {_nact(p['tfmxne'])}",
            ]
        )
    return rows


def _slope_text(sl):
    parts = []
    for impl in IMPLS:
        s = sl[impl]
        parts.append(
            f"{'MNE' if impl == 'mne' else impl} "
            + (
                f"{s['slope']:.2f} ({s['n_points']} points)"
                if s["slope"] is not None
                else "n/a"
            )
        )
    return "log-log slope: " + ", ".join(parts)


def print_text_table(header, rows):
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def print_markdown_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")


def report(results, scaling, markdown, ab_labels=None):
    printer = print_markdown_table if markdown else print_text_table
    if markdown:
        print("\n<!-- generated by benchmarks/bench_end_to_end.py --markdown -->")
    if results:
        print("\n### End-to-end cases\n" if markdown else "\n== end-to-end cases ==")
        printer(CASE_HEADER, _case_rows(results))
        rows = _dist_rows(results)
        if rows:
            title = "Distance to the converged optimum (tfmxne at --ref-tol)"
            print(f"\n### {title}\n" if markdown else f"\n== {title.lower()} ==")
            printer(DIST_HEADER, rows)
        rows = _ab_rows(results)
        if rows:
            la, lb = ab_labels or ("A", "B")
            title = f"A/B: tfmxne A = {la} vs B = {lb} (--python-b)"
            print(f"\n### {title}\n" if markdown else f"\n== {title} ==")
            printer(AB_HEADER, rows)
            r0 = next(r for r in results if "tfmxne_b" in r)
            for tag, res in (("A", r0["tfmxne"]), ("B", r0["tfmxne_b"])):
                print(
                    ("\n" if markdown and tag == "A" else "")
                    + f"{tag} = {la if tag == 'A' else lb}: {res.get('python', '?')} "
                    f"(tfmxne from {res.get('tfmxne_file', '?')})"
                    + ("  " if markdown else "")
                )
        if not markdown:
            for r in results:
                for impl in IMPLS + (("tfmxne_b",) if "tfmxne_b" in r else ()):
                    for w in r[impl].get("warnings") or []:
                        print(f"  ({r['id']}) {impl} warning: {w}")
    if scaling:
        for axis, pts in scaling["axes"].items():
            title = f"Scaling vs {axis} (surface)"
            print(f"\n### {title}\n" if markdown else f"\n== {title.lower()} ==")
            printer(SCALE_HEADER, _scale_rows(pts, axis))
            print(("\n" if markdown else "") + _slope_text(scaling["slopes"][axis]))


def _strip(obj):
    """Drop the private temp-file keys before writing the JSON."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument(
        "--cases",
        default=None,
        help="comma-separated case ids or names (a..f, surf, vol7, ...), "
        "'all' (default) or 'none'; --quick default: a",
    )
    ap.add_argument(
        "--mne-timeout",
        type=float,
        default=None,
        help="seconds of solving after which MNE is stopped (default 300; "
        "60 with --quick)",
    )
    ap.add_argument(
        "--tfmxne-timeout",
        type=float,
        default=600.0,
        help="same for tfmxne (a safety net, default 600)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="total seconds for the whole run (default 1740 = 29 min; 600 with --quick)",
    )
    ap.add_argument("--skip-scaling", action="store_true", help="no scaling table")
    ap.add_argument(
        "--scaling-mne-timeout",
        type=float,
        default=None,
        help="MNE timeout per scaling point (default 120; 30 with --quick)",
    )
    ap.add_argument(
        "--scaling-mne-budget",
        type=float,
        default=None,
        help="total MNE seconds in the scaling table (default 300; 60 with --quick)",
    )
    ap.add_argument("--no-mne", action="store_true", help="time tfmxne only")
    ap.add_argument(
        "--no-ref",
        action="store_true",
        help="skip the converged-optimum reference runs (no distances)",
    )
    ap.add_argument(
        "--ref-tol",
        type=float,
        default=1e-10,
        help="tolerance of the converged-optimum reference (default 1e-10)",
    )
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OMP/OPENBLAS/MKL_NUM_THREADS of the workers (default: "
        "library default, all cores)",
    )
    ap.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also record the tracemalloc peak of the call (slows "
        "Python-level allocations a little)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: case a only, crop 0.05..0.15 s, tol x10, small "
        "scaling table, short timeouts",
    )
    ap.add_argument(
        "--python-b",
        default=None,
        metavar="PYTHON",
        help="also time tfmxne as imported by this interpreter (another "
        "install, e.g. the venv of an older commit) on every case, in "
        "the same run, and print an A/B table; A is the tfmxne of the "
        "interpreter running this script. Cases only (not the scaling "
        "table); the optimum (ref) is computed by A",
    )
    ap.add_argument("--label-a", default="A", help="name of A in the A/B table")
    ap.add_argument("--label-b", default="B", help="name of B in the A/B table")
    ap.add_argument("--json", default=None, metavar="PATH", help="write all numbers here")
    ap.add_argument(
        "--markdown",
        action="store_true",
        help="print the final tables as Markdown (for benchmarks/README.md)",
    )
    ap.add_argument(
        "--keep-tmp",
        action="store_true",
        help="keep the workers' logs, JSON and npz files",
    )
    ap.add_argument("--data", default=None, help="sample data folder")
    # hidden worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", choices=IMPLS + ("ref",), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=600.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    if args.mne_timeout is None:
        args.mne_timeout = 60.0 if q else 300.0
    if args.budget is None:
        args.budget = 600.0 if q else 1740.0
    if args.scaling_mne_timeout is None:
        args.scaling_mne_timeout = 30.0 if q else 120.0
    if args.scaling_mne_budget is None:
        args.scaling_mne_budget = 60.0 if q else 300.0
    if args.cases is None:
        args.cases = "a" if q else "all"
    if args.python_b is not None and not Path(args.python_b).is_file():
        ap.error(f"--python-b: no such interpreter: {args.python_b!r}")
    return args


def _case_ids(text):
    if text == "all":
        return list(CASES)
    if text == "none":
        return []
    by_name = {c["name"]: k for k, c in CASES.items()}
    ids = []
    for tok in filter(None, (t.strip() for t in text.split(","))):
        cid = tok if tok in CASES else by_name.get(tok)
        if cid is None:
            raise SystemExit(
                f"unknown case {tok!r}: use {', '.join(CASES)} or {', '.join(by_name)}"
            )
        ids.append(cid)
    return ids


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    case_ids = _case_ids(args.cases)
    t_start = time.perf_counter()
    bu.warn_if_busy()
    sample = bu.find_sample(args.data)
    # compute missing forwards here, so that no worker spends its timeout on it
    need = {case_spec(c, args.quick)["fwd"] for c in case_ids}
    if not args.skip_scaling:
        need.add("surf")
    for name in sorted(need):
        bu.ensure_forward(sample, name)
    env = bu.environment()
    print(
        f"tfmxne {env['tfmxne']}, MNE {env['mne']}, numpy {env['numpy']}; "
        f"{env['cpu_count']} CPUs; BLAS {[b['num_threads'] for b in env['blas']]} "
        f"threads (workers: {args.blas_threads or 'default'}); cache {bu.cache_dir()}"
    )
    print(
        f"cases: {','.join(case_ids) or 'none'}; MNE timeout {args.mne_timeout:g} s; "
        f"budget {args.budget:g} s" + ("; QUICK smoke run" if args.quick else "")
    )
    if args.python_b:
        print(
            f"A/B: tfmxne A = {args.label_a} ({sys.executable}), B = {args.label_b} "
            f"({args.python_b})"
        )
    tmp = tempfile.mkdtemp(prefix="tfmxne-e2e-")
    runner = Runner(args, tmp)
    results = run_cases(args, runner, case_ids)
    scaling = None if args.skip_scaling else run_scaling(args, runner)
    total = time.perf_counter() - t_start
    labels = (args.label_a, args.label_b)
    report(results, scaling, markdown=False, ab_labels=labels)
    if args.markdown:
        report(results, scaling, markdown=True, ab_labels=labels)
    print(f"\ntotal benchmark time: {total:.0f} s ({runner.count} worker processes)")
    if args.json:
        payload = dict(
            args={
                k: v
                for k, v in vars(args).items()
                if k not in ("worker", "impl", "spec", "out", "timeout")
            },
            env=env,
            total_time=total,
            cases=results,
            scaling=scaling,
        )
        Path(args.json).write_text(
            json.dumps(_strip(payload), indent=1, default=bu.jsonable)
        )
        print(f"wrote {args.json}")
    if args.keep_tmp:
        print(f"worker files kept in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
