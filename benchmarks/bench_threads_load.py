# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Threads under load: tfmxne's default threads against one thread, with another
process busy on the machine and without.

For each case (``surf``: 508 positions, ``loose='auto'``; ``vol7``: the 7 mm grid,
``loose=1``; the benchmarks' standard problem: 'Left Auditory' cropped to
-0.05..0.3 s, alpha=40, l1_ratio=0.03, tol=1e-4), ``tf_mixed_norm`` is called in
this process in alternating pairs (default threads, then one thread through
``threadpoolctl``; the order flips every pair), first with one unpinned busy-loop
process running (``--load``, default on), then idle (``--idle``). Prints the
median and 90th percentile of each and their ratios (default / one thread):
under load the default must not be slower than one thread, idle it should keep
its gain.

    python benchmarks/bench_threads_load.py --pairs 15 --cases surf,vol7
"""

import argparse
import json
import multiprocessing as mp
import os
import time
import warnings

import _bench_utils as bu
import numpy as np


def _busy(stop):
    """A busy loop, unpinned (the scheduler places it)."""
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def _problem(sample, name):
    evoked = bu.read_evoked(sample).crop(-0.05, 0.3)
    cov = bu.read_cov(sample)
    fwd = bu.get_forward(sample, name)
    loose = "auto" if name == "surf" else 1.0
    return evoked, fwd, cov, dict(alpha=40.0, l1_ratio=0.03, loose=loose, tol=1e-4)


def _timed(fun):
    t0 = time.perf_counter()
    fun()
    return time.perf_counter() - t0


def _pairs(solve, n_pairs):
    """Alternating (default, one thread) timings, the order flipped every pair."""
    from threadpoolctl import threadpool_limits

    def one():
        with threadpool_limits(1, user_api="blas"):
            solve()

    dflt, single = [], []
    for k in range(n_pairs):
        order = (solve, one) if k % 2 == 0 else (one, solve)
        t = [_timed(f) for f in order]
        dflt.append(t[0] if k % 2 == 0 else t[1])
        single.append(t[1] if k % 2 == 0 else t[0])
    return np.array(dflt), np.array(single)


def _summary(d, s):
    md, ms = np.median(d), np.median(s)
    pd, ps = np.percentile(d, 90), np.percentile(s, 90)
    return dict(
        default_median=md,
        one_median=ms,
        default_p90=pd,
        one_p90=ps,
        median_ratio=md / ms,
        p90_ratio=pd / ps,
        default_runs=d.tolist(),
        one_runs=s.tolist(),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="sample data folder")
    ap.add_argument("--cases", default="surf,vol7")
    ap.add_argument("--pairs", type=int, default=15, help="alternating pairs (>= 10)")
    ap.add_argument("--no-load", action="store_true", help="skip the loaded runs")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle runs")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    import mne

    import tfmxne

    mne.set_log_level("ERROR")
    warnings.simplefilter("ignore")
    sample = bu.find_sample(args.data)
    print(bu.environment())
    out = {}
    for name in args.cases.split(","):
        evoked, fwd, cov, kw = _problem(sample, name)

        def solve(evoked=evoked, fwd=fwd, cov=cov, kw=kw):
            tfmxne.tf_mixed_norm(evoked, fwd, cov, **kw)

        solve()  # warm-up (imports, plans)
        modes = ([] if args.no_load else ["load"]) + ([] if args.no_idle else ["idle"])
        for mode in modes:
            stop = mp.Event()
            busy = mp.Process(target=_busy, args=(stop,), daemon=True)
            if mode == "load":
                busy.start()
                time.sleep(0.5)
            try:
                d, s = _pairs(solve, args.pairs)
            finally:
                if mode == "load":
                    stop.set()
                    busy.join(5)
            r = _summary(d, s)
            out[f"{name}/{mode}"] = r
            print(
                f"{name:5s} {mode:4s}: default median {r['default_median']:.3f} s, "
                f"p90 {r['default_p90']:.3f} s | one thread median "
                f"{r['one_median']:.3f} s, p90 {r['one_p90']:.3f} s | ratio "
                f"median {r['median_ratio']:.2f}, p90 {r['p90_ratio']:.2f}",
                flush=True,
            )
    print(f"cpus: {os.cpu_count()}, load average at the end: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=bu.jsonable)


if __name__ == "__main__":
    main()
