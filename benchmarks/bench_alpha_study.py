# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Simulation study of the automatic choice of alpha, with forward-model error.

Not part of CI. One to three focal sources with transient oscillatory time
courses are simulated with a *different* forward model than the one used for
the reconstruction (``tfmxne._testing.simulate``, shared with the tests):

* a finer cortex: every vertex of the surfaces stored with the shared oct-4
  source space (2 x 1026, about 6 mm apart; about 2030 kept 3 mm inside the inner
  skull) against the 508 positions of the reconstruction, about 10 mm apart;
* orientations: normals tilted by 20 degrees (random tangential directions);
* co-registration: the head-to-MRI transform rotated by 2 degrees and shifted
  by 4 mm (two such forwards, alternated over the seeds);
* conductivity: the three-layer BEM solved again with a skull conductivity of
  0.0125 S/m instead of 0.006 S/m;
* sources are points or 10 mm patches (every fine-cortex position of the
  hemisphere within 10 mm, each with its own orientation), plus background
  activity: 200 random positions with independent 2-30 Hz time courses whose
  energy is 0, 30 or 60 % of the focal sources' (cycled over the seeds).

Noise is drawn from the shared noise covariance at the level of an average of
``nave`` = 3, 10 or 60 trials. The reconstruction uses the shared oct-4
surface forward (mindist 5 mm) with tfmxne's default options.

For each case the data path is solved once over ``STUDY_ALPHAS`` (l1_ratio
0.03; stopped after the first level with more than ``K_STOP`` positions,
where no case can succeed) with, for seeds below ``--sure-seeds``, SURE's
perturbed path, and every path-based criterion is evaluated on it with its
constants swept; the default (``alpha=None, l1_ratio=None``) is run end to
end with :func:`tfmxne.solve` (timed, against one solve at its choice). Per
criterion: success rate (every true source has an estimated position within
20 mm and at most 2 spurious positions per true source), localisation error,
spurious positions, time-course correlation, chosen alpha, time.

Usage::

    python benchmarks/bench_alpha_study.py [--quick] [--seeds N] [--out FILE]
    python benchmarks/bench_alpha_study.py --summarize FILE   # the table again
    python benchmarks/bench_alpha_study.py --real [default,sure,...]  # sample data

Results go to ``$TFMXNE_BENCH_CACHE/alpha-study.json`` (default under /tmp).
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_utils import cache_dir, find_sample, get_forward, read_cov

L1 = 0.03
TMIN, TMAX = -0.05, 0.3
HIT_MM = 20.0


def simulation_forward(sample, fwd_surf, info, seed=0):
    """The study's simulation forward (tfmxne._testing.simulate.model_error_forward), cached."""
    import mne

    from tfmxne._testing import simulate as _simulate

    fname = cache_dir() / f"alpha-study-fine{seed}-fwd.fif"
    hname = fname.with_suffix(".hemi.npy")
    if fname.exists() and hname.exists():
        fwd = mne.read_forward_solution(fname, verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fwd = mne.convert_forward_solution(
                fwd, surf_ori=True, force_fixed=True, verbose=False
            )
        fwd["hemi"] = np.load(hname)
        return fwd
    src = mne.read_source_spaces(sample / "sample-oct4-src.fif.gz", verbose=False)
    trans = mne.read_trans(sample / "sample-trans.fif")
    fwd = _simulate.model_error_forward(
        info, src, trans, sample / "sample-320-320-320-bem-sol.fif", seed=seed
    )
    hemi = fwd.pop("hemi")
    mne.write_forward_solution(fname, fwd, overwrite=True, verbose=False)
    np.save(hname, hemi)
    fwd["hemi"] = hemi
    return fwd


def make_case(ev0, fwd_sim, cov, nave, n_src, seed, W, extent=0.0, background=0.0):
    """One simulated case (tfmxne._testing.simulate.simulate_evoked): sources with
    whitened single-trial energies of 5-15 % of N each (the real 'Left
    Auditory' response: about 17 % of N above the noise)."""
    from tfmxne._testing import simulate as _simulate

    return _simulate.simulate_evoked(
        ev0, fwd_sim, cov, nave, n_src, W, seed=seed, extent=extent, background=background
    )


#: The study's paths stop after the first level with more active positions than
#: this (no case can succeed there: at most 2 spurious positions per source);
#: a criterion choosing beyond it fails the case.
K_STOP = 60
#: Grid of the study's paths (percent of alpha_max): the default grid's span,
#: twice as fine.
STUDY_ALPHAS = np.geomspace(90.0, 5.0, 23)


def data_and_sure_paths(sim, fwd, cov, seed, sure=True, alphas=STUDY_ALPHAS, l1=L1):
    """The data path and SURE's perturbed path (as tfmxne._select does),
    both stopped after the first level with more than ``K_STOP`` positions."""
    from tfmxne import _options, _problem, _select, _solve

    opts = _options.check_options({})
    fp = _problem.prepare_forward(sim.info, fwd, cov, opts)
    p = _problem.prepare(fp, sim, opts, l1)
    sigma2 = p.noise_var()
    n_chan = p.M.shape[0]
    eps = 2.0 * np.sqrt(sigma2) / n_chan**0.3
    delta = np.random.default_rng(0).standard_normal(p.M.shape)
    pe = p.with_data(p.M + eps * delta)
    path, sure_v = [], []
    warm = [None, None]
    for a in alphas:
        out = []
        for w, (q, rr) in enumerate(((p, True), (pe, False))):
            if w == 1 and not sure:
                break
            r = _solve.solve_problem(q, float(a), opts, return_residual=rr, warm=warm[w])
            warm[w] = _solve.warm_start(r) or warm[w]
            out.append(r)
        path.append(out[0])
        if sure:
            dof = (
                float(
                    np.sum((_select._fit(pe, out[1]) - _select._fit(p, out[0])) * delta)
                )
                / eps
            )
            sure_v.append(out[0].residual_norm2 - p.M.size * sigma2 + 2.0 * sigma2 * dof)
        if out[0]._n_positions() > K_STOP:
            break
    return path, sure_v, p


def evaluate(r, fwd, true_rr, S):
    """Localisation, spurious positions and time-course correlation of one estimate."""
    n_or = 3 if r.active_set.size == 3 * fwd["nsource"] else 1
    pos = np.flatnonzero(r.active_set.reshape(-1, n_or).any(axis=1))
    out = dict(
        n_active=int(len(pos)),
        alpha=float(r.alpha),
        l1_ratio=float(r.l1_ratio),
        pos=pos.tolist(),
    )
    if len(pos) == 0:
        out.update(
            err_mm=[np.inf] * len(true_rr),
            spurious=0,
            corr=[0.0] * len(true_rr),
            success=False,
        )
        return out
    est_rr = fwd["source_rr"][pos]
    D = np.linalg.norm(est_rr[:, None] - true_rr[None], axis=2) * 1e3
    err = D.min(axis=0)
    spurious = int(np.sum(D.min(axis=1) > HIT_MM))
    Xp = r.X.reshape(len(pos), n_or, -1)
    corr = []
    for t in range(len(true_rr)):
        k = int(np.argmin(D[:, t]))
        u = np.linalg.svd(Xp[k], full_matrices=False)[2][0]
        corr.append(float(abs(np.corrcoef(u, S[t])[0, 1])))
    out.update(
        err_mm=err.tolist(),
        spurious=spurious,
        corr=corr,
        success=bool(np.all(err <= HIT_MM) and spurious <= 2 * len(true_rr)),
    )
    return out


def path_stats(path, nave):
    """What the path-based criteria need from each solve of the data path
    (``rss_ls``, ``rank_ls``: the least-squares refit tfmxne's 'signal-share'
    scores, ``tfmxne._select._refit_rss``)."""
    from tfmxne import _select

    rows = []
    for r in path:
        rss_ls, rank_ls = _select._refit_rss(r)
        n_or = (
            3
            if r.active_set.size % 3 == 0
            and r._res is not None
            and getattr(r._res, "positions", None) is not None
            else 1
        )
        rows.append(
            dict(
                alpha=float(r.alpha),
                rss=float(r.residual_norm2),
                rss_ls=rss_ls,
                rank_ls=rank_ls,
                k_pos=int(len(r._res.positions)) if r._res is not None else 0,
                k_coef=int(np.count_nonzero(r.tf_coefs)),
                n_or=n_or,
            )
        )
    return rows


def choose_model_discrepancy(rows, noise, m2, eps):
    target = noise + eps**2 * max(m2 - noise, 0.0)
    for j, row in enumerate(rows):
        if row["k_pos"] and row["rss"] <= target:
            return j
    return len(rows) - 1


def choose_bic(rows, N, gamma, key):
    vals = [
        N * np.log(row["rss"] / N) + gamma * row[key] * np.log(N)
        if row["k_pos"]
        else np.inf
        for row in rows
    ]
    return int(np.argmin(vals))


def _end_to_end(case, e2e, sim, fwd, cov, true_rr, S, seed, args):
    """Criteria run through :func:`tfmxne.solve` (timed)."""
    import tfmxne

    extent = case["extent"]
    for name in e2e:
        if name == "sure-irl" and (seed >= args.irl_seeds or extent > 0):
            continue
        kw = dict(l1_ratio=L1, verbose=False)
        if name == "default":
            kw = dict(alpha=None, l1_ratio=None, verbose=False)
        elif name == "sure-irl":
            kw.update(alpha="sure", n_tfmxne_iter=3)
        else:
            kw.update(alpha=name)
        t0 = time.perf_counter()
        r = tfmxne.solve(sim, fwd, cov, **kw)
        dt = time.perf_counter() - t0
        ev = evaluate(r, fwd, true_rr, S)
        ev["time"] = dt
        if name == "default":
            t0 = time.perf_counter()
            tfmxne.solve(sim, fwd, cov, alpha=r.alpha, l1_ratio=r.l1_ratio, verbose=False)
            ev["t_one"] = time.perf_counter() - t0
            ev["n_solves"] = r.selection.get("n_solves")
        case["crit"][name] = ev


AUDITORY_MM = {
    "left": [(-60.0, -5.0, 71.0), (-54.0, 6.0, 66.0)],
    "right": [(49.0, 9.0, 78.0)],
}


def real_data(criteria):
    """The automatic choice on the shared recordings (a check, not a tuning)."""
    import mne

    import tfmxne

    sample = find_sample()
    cov = read_cov(sample)
    fwd = get_forward(sample, "surf")
    for cond in ("Left Auditory", "Left visual"):
        ev = mne.read_evokeds(
            sample / "sample-ave.fif.gz",
            condition=cond,
            baseline=(None, 0),
            verbose=False,
        ).crop(TMIN, TMAX)
        for crit in criteria:
            t, t1 = np.inf, np.inf
            for _ in range(3):  # best of 3 (busy machines)
                t0 = time.perf_counter()
                r = tfmxne.solve(
                    ev, fwd, cov, alpha=None if crit == "default" else crit, verbose=False
                )
                t = min(t, time.perf_counter() - t0)
                t0 = time.perf_counter()
                tfmxne.solve(
                    ev, fwd, cov, alpha=r.alpha, l1_ratio=r.l1_ratio, verbose=False
                )
                t1 = min(t1, time.perf_counter() - t0)
            pos = np.flatnonzero(r.active_set.reshape(-1, 3).any(axis=1))
            rr = fwd["source_rr"][pos] * 1e3
            hits = {
                side: min(
                    float(np.min(np.linalg.norm(rr - np.array(p), axis=1))) for p in pts
                )
                for side, pts in AUDITORY_MM.items()
            }
            print(
                f"{cond:14s} {crit:18s} alpha {r.alpha:5.1f} l1_ratio {r.l1_ratio:<5g}"
                f" {len(pos):4d} positions; nearest to left/right auditory "
                f"{hits['left']:.0f}/{hits['right']:.0f} mm; {t:.2f} s = "
                f"{t / t1:.1f} x one solve ({t1:.2f} s), "
                f"{r.selection['n_solves']} solves",
                flush=True,
            )


def main():
    import mne

    from tfmxne import _select

    mne.set_log_level("WARNING")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, nave 10 and 60")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first-seed .. first-seed + seeds - 1 (to add cases)",
    )
    ap.add_argument("--naves", default="3,10,60")
    ap.add_argument("--nsrc", default="1,2,3")
    ap.add_argument(
        "--end-to-end",
        default="default",
        help="criteria run end to end with tfmxne.solve",
    )
    ap.add_argument(
        "--extent",
        default="0,10",
        help="source extents (mm) to simulate: 0 = point sources",
    )
    ap.add_argument(
        "--background",
        default="0,0.3,0.6",
        help="background energy relative to the focal sources, per case "
        "(cycled over the seeds)",
    )
    ap.add_argument(
        "--irl-seeds",
        type=int,
        default=1,
        help="SURE on the reweighted problem only for seeds below this",
    )
    ap.add_argument(
        "--no-paths", action="store_true", help="only the end-to-end runs (same cases)"
    )
    ap.add_argument(
        "--sure-seeds",
        type=int,
        default=1,
        help="SURE's perturbed path only for seeds below this",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.naves = 2, "10,60"
    naves = [int(x) for x in args.naves.split(",")]
    nsrcs = [int(x) for x in args.nsrc.split(",")]
    e2e = [x for x in args.end_to_end.split(",") if x]
    extents = [float(x) for x in args.extent.split(",")]
    backgrounds = [float(x) for x in args.background.split(",")]
    sample = find_sample()
    cov = read_cov(sample)
    fwd = get_forward(sample, "surf")
    ev0 = mne.read_evokeds(
        sample / "sample-ave.fif.gz",
        condition="Left Auditory",
        baseline=(None, 0),
        verbose=False,
    ).crop(TMIN, TMAX)
    ev0 = ev0.pick(["meg", "eeg"], exclude="bads")
    fwd_sims = [simulation_forward(sample, fwd, ev0.info, seed=k) for k in range(2)]
    ev0 = ev0.pick(fwd_sims[0]["sol"]["row_names"])
    from tfmxne import _options, _problem

    fp = _problem.prepare_forward(ev0.info, fwd, cov, _options.check_options({}))
    gi = list(fp.gain_info["ch_names"])
    W = fp.whitener[:, [gi.index(c) for c in ev0.ch_names]]
    out_file = Path(args.out) if args.out else cache_dir() / "alpha-study.json"
    cases = []
    t_start = time.perf_counter()
    for nave, extent in [(nv, ex) for ex in extents for nv in naves]:
        for n_src in nsrcs:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                bg = backgrounds[seed % len(backgrounds)]
                fwd_sim = fwd_sims[seed % len(fwd_sims)]
                sim, true_rr, S = make_case(
                    ev0,
                    fwd_sim,
                    cov,
                    nave,
                    n_src,
                    seed=1 + 100 * n_src + seed,
                    W=W,
                    extent=extent,
                    background=bg,
                )
                case = dict(
                    nave=nave,
                    n_src=n_src,
                    seed=seed,
                    crit={},
                    extent=extent,
                    background=bg,
                    nAm=(np.abs(S).max(axis=1) * 1e9).tolist(),
                )
                if args.no_paths:
                    _end_to_end(case, e2e, sim, fwd, cov, true_rr, S, seed, args)
                    cases.append(case)
                    out_file.write_text(json.dumps(cases))
                    continue
                t0 = time.perf_counter()
                path, sure, p = data_and_sure_paths(
                    sim, fwd, cov, seed, sure=seed < args.sure_seeds
                )
                case["t_path"] = time.perf_counter() - t0
                N = int(p.M.size)
                m2 = float(np.sum(p.M**2))
                case["snr"] = m2 / (N / nave)  # whitened energy / expected noise energy
                case["base_var"] = _select._baseline_noise_var(p)
                case["noise"] = p.noise_energy()  # as the criteria compute it
                case["rows"] = path_stats(path, nave)
                for row, v in zip(case["rows"], sure):
                    row["sure"] = v
                case["evals"] = [evaluate(r, fwd, true_rr, S) for r in path]
                case["N"], case["m2"], case["n_chan"] = N, m2, int(p.M.shape[0])
                _end_to_end(case, e2e, sim, fwd, cov, true_rr, S, seed, args)
                cases.append(case)
                print(
                    f"extent {extent:g} nave {nave:3d} n_src {n_src} seed {seed}: "
                    f"snr {case['snr']:.2f} path {case['t_path']:.1f} s "
                    f"({len(path)} levels) "
                    + " ".join(
                        f"{k}: a={v['alpha']:.3g} n={v['n_active']} "
                        f"ok={int(v['success'])}"
                        for k, v in case["crit"].items()
                    ),
                    flush=True,
                )
                out_file.write_text(json.dumps(cases))
    print(f"total {time.perf_counter() - t_start:.0f} s; results in {out_file}")
    summarize(cases)


def choose_sure(rows):
    return int(np.argmin([row["sure"] for row in rows]))


def share_values(c, cc, kappa=1.0, refit=True):
    """'signal-share' values along a case's path.

    ``refit`` (tfmxne's default): ``U + cc k``, U the unexplained share of the
    signal estimated from the least-squares refit on the active positions,
    ``(RSS_A + kappa sigma^2 n_t rank(G_A) - noise) / E`` (kappa = 1: the
    noise energy the refit absorbs, taken out without bias). Otherwise the
    earlier form ``RSS / E + cc k`` on the debiased estimate.
    """
    noise, m2 = _noise(c), c["m2"]
    E = max(m2 - noise, 1e-3 * m2)
    n_chan = c.get("n_chan", 362)  # the study's whitened channels (older files)
    vals = []
    for row in c["rows"]:
        k = row["k_pos"]
        if not k:
            vals.append(np.inf)
        elif refit:
            rank = row.get("rank_ls", row["n_or"] * k)
            vals.append(
                (row["rss_ls"] + kappa * noise / n_chan * rank - noise) / E + cc * k
            )
        else:
            vals.append(row["rss"] / E + cc * k)
    return vals


def choose_sparse_walk(rows, vals, patience):
    """'signal-share' as the default walks it: down the grid, stopped once
    ``patience`` successive levels with more positions than the best so far
    have not lowered the value (the answer is that best level)."""
    best, fails = None, 0
    for j, (row, v) in enumerate(zip(rows, vals)):
        if not row["k_pos"]:
            continue
        if best is None or v < best[0]:
            best, fails = (v, j, row["k_pos"]), 0
        elif row["k_pos"] > best[2]:
            fails += 1
            if fails >= patience:
                break
    return len(rows) - 1 if best is None else best[1]


def _noise(c):
    """Expected whitened noise energy of a case (tapered, as tfmxne computes it)."""
    return c.get("noise", c["N"] / c["nave"])


def pickers(
    eps_grid=(0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9),
    gammas=(100, 300, 1000),
    cs=(0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05),
    kappas=(0, 1, 2),
):
    """Criterion name -> function of a case giving the evaluation it chooses.

    'discrepancy' is model-discrepancy with no model error; SURE is evaluated on
    the same data path with its own perturbed path (tfmxne's estimator, one
    probe); the end-to-end runs (``c["crit"]``) are added by name.
    """
    out = {
        "oracle": lambda c: max(c["evals"], key=lambda e: (e["success"], -e["spurious"]))
    }
    out["sure"] = lambda c: (
        c["evals"][choose_sure(c["rows"])] if "sure" in c["rows"][0] else None
    )
    for eps in eps_grid:
        name = "discrepancy" if eps == 0 else f"model-discrepancy {eps:g}"
        out[name] = lambda c, eps=eps: c["evals"][
            choose_model_discrepancy(c["rows"], _noise(c), c["m2"], eps)
        ]
    for g in gammas:
        out[f"bic {g:g}"] = lambda c, g=g: c["evals"][
            choose_bic(c["rows"], c["N"], g, "k_pos")
        ]
    for cc in cs:
        # as tfmxne walks it (patience SIGNAL_PATIENCE = 3): on the refit with
        # the absorbed noise taken out (kappa 1, the default; 0 and 2 beside
        # it), on the debiased estimate's RSS (the earlier form), with patience 1
        for kap in kappas:
            name = f"signal-share {cc:g}" + ("" if kap == 1 else f" kappa {kap:g}")
            out[name] = lambda c, cc=cc, kap=kap: c["evals"][
                choose_sparse_walk(c["rows"], share_values(c, cc, kap), 3)
            ]
        out[f"signal-share {cc:g} debiased RSS"] = lambda c, cc=cc: c["evals"][
            choose_sparse_walk(c["rows"], share_values(c, cc, refit=False), 3)
        ]
        out[f"signal-share {cc:g} patience 1"] = lambda c, cc=cc: c["evals"][
            choose_sparse_walk(c["rows"], share_values(c, cc), 1)
        ]
        out[f"signal-share {cc:g} patience 2"] = lambda c, cc=cc: c["evals"][
            choose_sparse_walk(c["rows"], share_values(c, cc), 2)
        ]
    return out


TABLE_ROWS = (
    "oracle",
    "sure",
    "sure-irl",
    "discrepancy",
    "model-discrepancy 0.4",
    "model-discrepancy 0.7",
    "bic 300",
    "signal-share 0.03 debiased RSS",
    "signal-share 0.02",
    "signal-share 0.025",
    "signal-share 0.03",
    "signal-share 0.035",
    "signal-share 0.04",
    "signal-share 0.03 kappa 0",
    "signal-share 0.03 kappa 2",
    "signal-share 0.03 patience 1",
    "signal-share 0.03 patience 2",
    "default",
)


def summarize(cases, markdown=False, rows=None):
    """Per criterion and (source extent, nave): success rate, mean spurious
    positions, mean chosen alpha per number of sources; then the median
    localisation error, mean time-course correlation (nave 10 and 60) and time."""
    with_paths = [c for c in cases if "rows" in c]
    picks = pickers() if with_paths else {}
    for n in sorted({k for c in cases for k in c["crit"]}):
        picks[n] = lambda c, n=n: c["crit"].get(n)
    groups = sorted({(c.get("extent", 0.0), c["nave"]) for c in cases})
    nsrcs = sorted({c["n_src"] for c in cases})
    head = (
        ["criterion"]
        + [f"{'point' if ex == 0 else f'{ex:g} mm'}, nave {nv}" for ex, nv in groups]
        + ["err mm / corr (nave 10, 60)", "time s"]
    )
    print(
        "\ncell: success rate (every source within 20 mm, <= 2 spurious positions "
        "per source) . mean spurious positions . mean alpha for "
        f"{'/'.join(map(str, nsrcs))} sources"
    )
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("| " + " | ".join("---" for _ in head) + " |")
    for name, pick in picks.items():
        if rows is not None and name not in rows:
            continue
        cells, errs, corrs, tms = [], [], [], []
        for ex, nv in groups:
            evs = [
                (c, pick(c))
                for c in cases
                if (c.get("extent", 0.0), c["nave"]) == (ex, nv)
                and ("rows" in c or name in c["crit"])
            ]
            evs = [(c, e) for c, e in evs if e is not None]
            if not evs:
                cells.append("-")
                continue
            succ = np.mean([e["success"] for _, e in evs])
            spur = np.mean([e["spurious"] for _, e in evs])
            al = "/".join(
                f"{np.mean([e['alpha'] for c, e in evs if c['n_src'] == ns]):.0f}"
                if any(c["n_src"] == ns for c, _ in evs)
                else "-"
                for ns in nsrcs
            )
            if nv >= 10:
                errs += [x for _, e in evs for x in e["err_mm"]]
                corrs += [x for _, e in evs for x in e["corr"]]
            tms += [e["time"] for _, e in evs if "time" in e]
            if name == "sure":
                tms += [c["t_path"] for c, _ in evs]
            n = f" ({len(evs)})" if len(evs) < 8 else ""
            cells.append(f"{succ:.0%}{n} . {spur:.1f} . {al}")
        cells.append(f"{np.median(errs):.0f} / {np.mean(corrs):.2f}" if errs else "-")
        cells.append(f"{np.mean(tms):.1f}" if tms else "-")
        if markdown:
            print(f"| {name} | " + " | ".join(cells) + " |")
        else:
            print(f"{name:22s} " + " | ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--summarize":
        summarize(
            sum((json.loads(Path(f).read_text()) for f in sys.argv[2:]), []),
            markdown=True,
            rows=TABLE_ROWS,
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "--real":
        real_data(sys.argv[2].split(",") if len(sys.argv) > 2 else ["default"])
    else:
        main()
