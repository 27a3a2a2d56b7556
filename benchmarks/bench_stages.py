# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Where the time of a ``tfmxne.tf_mixed_norm`` call goes, per stage.

For each case of ``bench_end_to_end.py`` (same data and options), one process
times the call, first cold (the first call of the process: lazy imports of MNE's
solver module, the first preparation) then warm (median of ``--repeat`` calls,
the prepared-forward cache cleared before each so that the preparation is
paid), split into:

  preparation  the forward, the noise covariance, the data (the stages of
               ``tfmxne._timing``, summed; ``--detail`` lists them)
  certificates every outer certificate of the solver (``G^T R`` over all sources
               and the screened dual norms): the sum of ``certify_seconds`` of
               the solve's ``gap_history`` (float32 start included)
  epochs       the rest of the solver's time: the inner solves' block
               coordinate descent epochs (and their working-set setup)
  debiasing    the exact debiasing of the active set
  result       the source estimate, residual and result objects
  other        the call minus all of the above (checks, dispatch)

plus the outer iterations and epochs of the solve. Run it on an idle machine.

Examples::

    python benchmarks/bench_stages.py                 # cases b,c,d (vol7, vol5, long)
    python benchmarks/bench_stages.py --cases a,e --repeat 5 --detail
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_utils as bu
import bench_end_to_end as e2e

STAGES = ("preparation", "certificates", "epochs", "debiasing", "result", "other")


class _Clock:
    """Seconds spent in a few functions of tfmxne, wrapped in place."""

    def __init__(self):
        import tfmxne._solve as sv

        self.sv = sv
        self.reset()
        self.saved = {}
        for name in ("_tf_solve", "_iterative_core", "_debias", "build_result"):
            if hasattr(sv, name):
                self.saved[name] = getattr(sv, name)
                setattr(sv, name, self._wrap(name, self.saved[name]))

    def _wrap(self, name, fun):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                out = fun(*args, **kwargs)
                res = out[0] if isinstance(out, tuple) else out
                self.records += getattr(res, "history", None) or []
                return out
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + (
                    time.perf_counter() - t0
                )

        return timed

    def reset(self):
        self.seconds = {}
        self.records = []  # the solver's outer records (dicts)


def _one_call(spec, evoked, fwd, cov, clock):
    import tfmxne
    from tfmxne import _timing

    kw = {k: spec[k] for k in ("alpha", "l1_ratio", "tol", "loose", "wsize", "tstep")}
    tfmxne.clear_cache()
    clock.reset()
    with _timing.record() as prep:
        t0 = time.perf_counter()
        tfmxne.tf_mixed_norm(
            evoked,
            fwd,
            cov,
            n_tfmxne_iter=spec["n_tfmxne_iter"],
            return_as_dipoles=False,
            **kw,
        )
        total = time.perf_counter() - t0
    s, recs = clock.seconds, clock.records
    solve = s.get("_tf_solve", 0.0) + s.get("_iterative_core", 0.0)
    cert = sum(r.get("certify_seconds", 0.0) for r in recs)
    out = dict(
        total=total,
        preparation=sum(prep.values()),
        certificates=cert,
        epochs=solve - cert,
        debiasing=s.get("_debias", 0.0),
        result=s.get("build_result", 0.0),
        n_outer=len(recs),
        n_iter=sum(r["n_iter"] for r in recs),
        detail=dict(prep),
    )
    out["other"] = total - sum(out[k] for k in STAGES[:-1])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="b,c,d", help="ids of bench_end_to_end's cases")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls (median)")
    ap.add_argument("--detail", action="store_true", help="the preparation's stages")
    ap.add_argument("--data", default=None, help="sample data folder")
    args = ap.parse_args()
    import mne

    mne.set_log_level("ERROR")
    bu.warn_if_busy()
    sample = bu.find_sample(args.data)
    clock = _Clock()
    head = f"{'case':12s} {'call':6s} {'total':>8s}" + "".join(
        f" {s:>12s}" for s in STAGES
    )
    print(head + "  outer  epochs")
    for cid in e2e._case_ids(args.cases):
        spec = e2e.case_spec(cid, False)
        evoked, fwd, cov = e2e._build_problem(spec, sample)
        runs = [_one_call(spec, evoked, fwd, cov, clock) for _ in range(args.repeat + 1)]
        warm = {k: float(np.median([r[k] for r in runs[1:]])) for k in ("total", *STAGES)}
        for label, r in (("cold", runs[0]), ("warm", warm)):
            line = f"{e2e.CASES[cid]['name']:12s} {label:6s} {r['total']:7.3f}s"
            line += "".join(f" {r[s]:11.3f}s" for s in STAGES)
            print(line + f"  {runs[0]['n_outer']:5d}  {runs[0]['n_iter']:6d}")
        if args.detail:
            det = {
                k: np.median([r["detail"].get(k, 0.0) for r in runs[1:]])
                for k in runs[1]["detail"]
            }
            print(
                "   preparation (warm): "
                + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in det.items())
            )


if __name__ == "__main__":
    main()
