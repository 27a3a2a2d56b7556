# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The preparation of a solve, stage by stage, and the cache that skips it.

Usage::

    python benchmarks/bench_prepare.py [--fwd vol7,vol5] [--repeat 7]

For each forward (the problem of ``bench_end_to_end.py``: 'Left Auditory',
-0.05..0.3 s, ``loose=1`` on the grids, ``'auto'`` on the surface), in one
process: the first preparation (cold: MNE's lazily imported modules load
then), then ``--repeat`` preparations of the forward operator with the cache
bypassed and of the problem of the evoked (whitened data, alpha_max, the
gain scaled by it), each stage timed by ``tfmxne._timing`` (median and range
over the runs), and the lookup that a later call with the same inputs pays
instead (the cache's key and fingerprint, :mod:`tfmxne._cache`).

Stages of the forward operator: ``copy`` (the forward without its arrays),
``orient`` (MNE's orientation triage and conversion), ``select`` (channels),
``cov`` (the covariance's rank and eigendecomposition, MNE's), ``whitener``,
``whiten`` (the one pass over the gain: float64 blocks whitened with their
column statistics), ``priors`` (depth, orientation, MNE's scaling, from the
statistics), ``scale`` (the gain times its column factors; the Lipschitz
constants). Of the problem: ``reference`` (MNE's EEG reference check),
``data`` (taper, whitening), ``alpha_max`` (``G^T M`` and its dual norms),
``gain_copy`` (the gain divided by alpha_max).
"""

import argparse
import time
import warnings

import mne
import numpy as np
from _bench_utils import find_sample, get_forward, read_cov, read_evoked, warn_if_busy


def _table(runs):
    names = []
    for r in runs:
        names += [k for k in r if k not in names]
    rows = []
    for k in names + ["total"]:
        v = 1e3 * np.array(
            [sum(r.values()) if k == "total" else r.get(k, 0) for r in runs]
        )
        rows.append(f"{k} {np.median(v):.1f} [{v.min():.1f}-{v.max():.1f}]")
    return "  ".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fwd", default="vol7,vol5")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    mne.set_log_level("WARNING")
    warnings.simplefilter("ignore")
    warn_if_busy()
    from tfmxne import _cache, _options, _parallel, _problem, _timing

    sample = find_sample(args.data)
    evoked = read_evoked(sample).crop(-0.05, 0.3)
    cov = read_cov(sample)
    for name in args.fwd.split(","):
        fwd = get_forward(sample, name)
        loose = "auto" if name == "surf" else 1.0
        opts = _options.check_options(dict(loose=loose))
        _cache.clear_cache()
        with _parallel.call_scope():
            t0 = time.perf_counter()
            fp = _problem.prepare_forward(evoked.info, fwd, cov, opts)
            _problem.prepare(fp, evoked, opts, 0.03)
            cold = time.perf_counter() - t0
            fwd_runs, prob_runs, hits = [], [], []
            for _ in range(args.repeat):
                with _timing.record() as t:
                    fp = _problem.prepare_forward(
                        evoked.info, fwd, cov, opts, cache=False
                    )
                fwd_runs.append(t)
                with _timing.record() as t:
                    _problem.prepare(fp, evoked, opts, 0.03)
                prob_runs.append(t)
                t0 = time.perf_counter()
                _problem.prepare_forward(evoked.info, fwd, cov, opts)
                hits.append(time.perf_counter() - t0)
        print(
            f"{name}: gain {fp.gain.shape[0]} x {fp.gain.shape[1]}, first preparation "
            f"in this process {cold:.3f} s; median [range] of {args.repeat} runs, ms:"
        )
        print(f"  forward operator: {_table(fwd_runs)}")
        print(f"  problem:          {_table(prob_runs)}")
        h = 1e3 * np.array(hits)
        print(
            f"  cached (a later call): {np.median(h):.2f} [{h.min():.2f}-{h.max():.2f}]"
        )
        del fp


if __name__ == "__main__":
    main()
