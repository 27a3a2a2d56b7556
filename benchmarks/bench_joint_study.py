# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Simulation study of the joint solve (several conditions, one support).

Not part of CI. The conditions of a case share one to three focal sources
(same positions), each condition with its own time courses, energies,
background activity and noise, simulated with a *different* forward model than
the one used for the reconstruction, as the automatic-alpha study does
(``tfmxne._testing.simulate``; the cached simulation forwards of
``bench_alpha_study.py``: a finer cortex, tilted orientations, a perturbed
co-registration, another skull conductivity):

* 2 or 4 conditions, 1 to 3 shared point sources (centres at least 30 mm
  apart), Gabor time courses (5-20 Hz, 15-40 ms wide, peaks at 50-200 ms) drawn
  for each condition, each source with a whitened single-trial energy of 5-15 %
  of ``n_chan * n_times`` in each condition;
* background activity (200 random fine-cortex positions, 2-30 Hz) of 0, 30 or
  60 % of the focal sources' energy, cycled over the seeds, drawn per condition;
* noise from the shared covariance for an average of ``nave`` = 3, 10, 60
  trials (the same nave in every condition of a case).

Each case is solved jointly (:func:`tfmxne.solve_joint`) and condition by
condition (:func:`tfmxne.solve`), each with its automatic alpha and l1_ratio
(``alpha=None, l1_ratio=None``), on the shared oct-4 surface forward with the
default options, -0.05..0.3 s. Per condition: the share of the true sources
with an estimated position within 20 mm, the spurious positions (farther than
20 mm from every true source), the time-course correlation (as the
automatic-alpha study); per case: the time of the joint call and of the
independent calls together.

``--real`` solves 'Left Auditory' and 'Left visual' of the shared recordings
jointly and writes a figure of what each condition keeps at the shared
positions (``joint_real.png`` next to this script, or ``--figure``).

Usage::

    python benchmarks/bench_joint_study.py [--quick] [--seeds N] [--first-seed K]
    python benchmarks/bench_joint_study.py --summarize FILE [FILE ...]
    python benchmarks/bench_joint_study.py --real [--figure joint_real.png]

Results go to ``$TFMXNE_BENCH_CACHE/joint-study.json`` (default under /tmp).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_utils import cache_dir, find_sample, get_forward, read_cov
from bench_alpha_study import HIT_MM, TMAX, TMIN, evaluate, simulation_forward

BACKGROUNDS = (0.0, 0.3, 0.6)


def make_conditions(
    ev0, fwd_sim, cov, nave, n_src, n_cond, seed, W, background, energy=(0.05, 0.15)
):
    """``n_cond`` simulated evokeds with the same sources (positions), each with
    its own time courses, energies (whitened single-trial energy of each source
    in ``energy`` times ``n_chan * n_times``), background and noise."""
    from tfmxne._testing import simulate

    evs, courses = [], []
    true_rr = None
    for c in range(n_cond):
        ev, rr, S = simulate.simulate_evoked(
            ev0,
            fwd_sim,
            cov,
            nave,
            n_src,
            W,
            seed=seed + 7919 * c,
            energy=energy,
            background=background,
            positions=true_rr,
        )
        true_rr = rr if true_rr is None else true_rr
        ev.comment = f"condition {c}"
        evs.append(ev)
        courses.append(S)
    return evs, true_rr, courses


def run_case(evs, fwd, cov, true_rr, courses):
    """Joint and independent solves of one case: their evaluations and times."""
    import tfmxne

    out = {}
    t0 = time.perf_counter()
    joint = tfmxne.solve_joint(evs, fwd, cov, verbose=False, on_empty="warn")
    t_joint = time.perf_counter() - t0
    t0 = time.perf_counter()
    indep = [tfmxne.solve(ev, fwd, cov, verbose=False, on_empty="warn") for ev in evs]
    t_indep = time.perf_counter() - t0
    for name, res, t in (("joint", joint, t_joint), ("independent", indep, t_indep)):
        evals = [evaluate(r, fwd, true_rr, S) for r, S in zip(res, courses)]
        out[name] = dict(
            time=t,
            found=float(
                np.mean([np.mean(np.array(e["err_mm"]) <= HIT_MM) for e in evals])
            ),
            spurious=float(np.mean([e["spurious"] for e in evals])),
            n_active=float(np.mean([e["n_active"] for e in evals])),
            corr=float(np.mean([np.mean(e["corr"]) for e in evals])),
            success=float(np.mean([e["success"] for e in evals])),
            alpha=[float(r.alpha) for r in res],
            l1_ratio=[float(r.l1_ratio) for r in res],
            n_solves=[int(r.selection["n_solves"]) for r in res],
        )
    return out


def summarize(cases, markdown=True):
    """The study's table: per number of conditions, sources and method, the
    share of true sources found (within 20 mm), the spurious positions per
    condition and the time per case, at each nave."""
    naves = sorted({c["nave"] for c in cases})
    n_conds = sorted({c["n_cond"] for c in cases})
    n_srcs = sorted({c["n_src"] for c in cases})
    head = (
        "| conditions | sources | solve | "
        + " | ".join(f"nave {n}: found . spurious" for n in naves)
        + " | corr | time s (per case) | cases |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for C in n_conds:
        for n_src in n_srcs + ["all"]:
            for m in ("joint", "independent"):
                sel = [
                    c
                    for c in cases
                    if c["n_cond"] == C and (n_src == "all" or c["n_src"] == n_src)
                ]
                if not sel:
                    continue
                cells = []
                for nv in naves:
                    s = [c[m] for c in sel if c["nave"] == nv]
                    if not s:
                        cells.append("-")
                        continue
                    cells.append(
                        f"{100 * np.mean([x['found'] for x in s]):.0f}% . "
                        f"{np.mean([x['spurious'] for x in s]):.1f}"
                    )
                corr = np.mean([c[m]["corr"] for c in sel])
                t = np.mean([c[m]["time"] for c in sel])
                label = f"**{n_src}**" if n_src == "all" else str(n_src)
                lines.append(
                    f"| {C} | {label} | {m} | " + " | ".join(cells) + f" | {corr:.2f} | "
                    f"{t:.1f} | {len(sel) // len(naves)} x {len(naves)} |"
                )
    text = "\n".join(lines)
    print(text)
    return text


def simulate_study(args):
    import mne

    from tfmxne import _options, _problem

    mne.set_log_level("WARNING")
    naves = [int(x) for x in args.naves.split(",")]
    n_conds = [int(x) for x in args.conditions.split(",")]
    n_srcs = [int(x) for x in args.nsrc.split(",")]
    energy = tuple(float(x) for x in args.energy.split(","))
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
    fp = _problem.prepare_forward(ev0.info, fwd, cov, _options.check_options({}))
    gi = list(fp.gain_info["ch_names"])
    W = fp.whitener[:, [gi.index(c) for c in ev0.ch_names]]
    out_file = Path(args.out) if args.out else cache_dir() / "joint-study.json"
    cases = []
    t_start = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        bg = BACKGROUNDS[seed % len(BACKGROUNDS)]
        fwd_sim = fwd_sims[seed % len(fwd_sims)]
        for n_cond in n_conds:
            for n_src in n_srcs:
                for nave in naves:
                    evs, true_rr, courses = make_conditions(
                        ev0, fwd_sim, cov, nave, n_src, n_cond,
                        seed=1 + 100 * n_src + seed, W=W, background=bg,
                        energy=energy,
                    )  # fmt: skip
                    case = dict(
                        n_cond=n_cond, n_src=n_src, nave=nave, seed=seed, background=bg,
                        energy=list(energy),
                    )  # fmt: skip
                    case.update(run_case(evs, fwd, cov, true_rr, courses))
                    cases.append(case)
                    j, i = case["joint"], case["independent"]
                    print(
                        f"C={n_cond} n_src={n_src} nave={nave:2d} seed={seed}: joint "
                        f"found {j['found']:.2f} spur {j['spurious']:.1f} "
                        f"({j['time']:.1f} s) | indep found {i['found']:.2f} spur "
                        f"{i['spurious']:.1f} ({i['time']:.1f} s)",
                        flush=True,
                    )
                    out_file.write_text(json.dumps(cases))
    print(f"total {time.perf_counter() - t_start:.0f} s; results in {out_file}")
    summarize(cases)


# --------------------------------------------------------------------------
# the shared recordings
# --------------------------------------------------------------------------
def _positions(r, fwd):
    n_or = r.active_set.size // fwd["nsource"]
    return np.flatnonzero(r.active_set.reshape(-1, n_or).any(axis=1)), n_or


def _amplitudes(r, n_or):
    """Time course of each active position (the norm over orientations), Am."""
    X = r.X.reshape(-1, n_or, r.X.shape[1])
    return np.linalg.norm(X, axis=1)


def real_data(figure, alphas):
    """'Left Auditory' and 'Left visual' solved jointly: what each keeps at the
    shared positions (printed), and a figure."""
    import mne

    import tfmxne

    sample = find_sample()
    cov = read_cov(sample)
    fwd = get_forward(sample, "surf")
    evs = [
        mne.read_evokeds(
            sample / "sample-ave.fif.gz", condition=c, baseline=(None, 0), verbose=False
        ).crop(TMIN, TMAX)
        for c in ("Left Auditory", "Left visual")
    ]
    runs = {}
    t0 = time.perf_counter()
    runs["joint, automatic alpha"] = tfmxne.solve_joint(evs, fwd, cov, verbose=False)
    t_joint = time.perf_counter() - t0
    for a in alphas:
        runs[f"joint, alpha {a:g}"] = tfmxne.solve_joint(
            evs, fwd, cov, alpha=a, l1_ratio=0.03, verbose=False
        )
    t0 = time.perf_counter()
    runs["independent, automatic alpha"] = [
        tfmxne.solve(ev, fwd, cov, verbose=False) for ev in evs
    ]
    t_indep = time.perf_counter() - t0
    print(f"times: joint {t_joint:.2f} s, independent {t_indep:.2f} s (both automatic)")
    rows = {}
    for name, res in runs.items():
        print(f"\n{name}: alpha {res[0].alpha:.3g} %, l1_ratio {res[0].l1_ratio:g}")
        for ev, r in zip(evs, res):
            pos, n_or = _positions(r, fwd)
            amp = _amplitudes(r, n_or)
            energy = np.sum(amp**2, axis=1)
            share = energy / energy.sum() if energy.sum() > 0 else energy
            rows[(name, ev.comment)] = (pos, amp)
            print(f"  {ev.comment} ({len(pos)} positions, explained variance "
                  f"{100 * r.explained_variance:.1f} %):")  # fmt: skip
            for k, p in enumerate(pos):
                x, y, z = 1e3 * fwd["source_rr"][p]
                i = int(np.argmax(amp[k]))
                print(f"    ({x:5.0f} {y:5.0f} {z:5.0f}) mm: peak {1e9 * amp[k, i]:6.1f} "
                      f"nAm at {1e3 * r.times[i]:5.0f} ms, {100 * share[k]:5.1f} % of "
                      "the condition's source energy")  # fmt: skip
    if figure:
        _figure(runs, evs, fwd, figure, alphas)
        print(f"\nfigure: {figure}")


def _figure(runs, evs, fwd, fname, alphas):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfmxne.viz import plot_brain

    shown = ["joint, automatic alpha"] + [f"joint, alpha {a:g}" for a in alphas[-1:]]
    fig = plt.figure(figsize=(15, 4.2 * len(shown) + 1.0))
    outer = fig.add_gridspec(len(shown), 1, hspace=0.35)
    cond_colors = ("tab:blue", "tab:red")
    for row, name in enumerate(shown):
        res = runs[name]
        pos, n_or = _positions(res[0], fwd)
        amps = [_amplitudes(r, n_or) for r in res]
        order = np.argsort(-np.max(np.maximum(amps[0], amps[1]), axis=1))[:8]
        g = outer[row].subgridspec(2, 6, height_ratios=[1.3, 1.0], hspace=0.55,
                                   wspace=0.35)  # fmt: skip
        # the shared positions (marker size: the largest peak over the conditions)
        est = res[0].estimate.copy()
        est.data = np.maximum(np.abs(amps[0]), np.abs(amps[1]))
        # the positions whose time courses are shown in colour, the others grey
        palette = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                   "tab:olive")  # fmt: skip
        colors = ["0.6"] * len(pos)
        for j, k in enumerate(order[:6]):
            colors[k] = palette[j]
        views = ("left", "top", "right")
        axes = [fig.add_subplot(g[0, 2 * i : 2 * i + 2]) for i in range(3)]
        plot_brain(est, fwd, views=views, colors=colors, axes=axes)
        axes[1].set_title(
            f"{name}: alpha {res[0].alpha:.3g} % of the joint alpha_max, "
            f"{len(pos)} shared positions\n(top)", fontsize=10
        )  # fmt: skip
        times = 1e3 * res[0].times
        for j, k in enumerate(order[:6]):
            ax = fig.add_subplot(g[1, j])
            for c, (ev, amp) in enumerate(zip(evs, amps)):
                ax.plot(times, 1e9 * amp[k], color=cond_colors[c], lw=1.2,
                        label=ev.comment)  # fmt: skip
            x, y, z = 1e3 * fwd["source_rr"][pos[k]]
            ax.set_title(f"({x:.0f}, {y:.0f}, {z:.0f}) mm", fontsize=9,
                         color=colors[k])  # fmt: skip
            ax.set_xlabel("time (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("amplitude (nAm)", fontsize=8)
                ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        "'Left Auditory' (N=3) and 'Left visual' (N=6) solved jointly: the shared "
        "positions (head coordinates) and what each condition keeps there",
        fontsize=12,
    )
    fig.savefig(fname, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, nave 10 and 60")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--naves", default="3,10,60")
    ap.add_argument("--conditions", default="2,4")
    ap.add_argument("--nsrc", default="1,2,3")
    ap.add_argument(
        "--energy",
        default="0.05,0.15",
        help="range of each source's whitened single-trial energy, in units of "
        "n_chan * n_times (default: the automatic-alpha study's, 0.05,0.15)",
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--summarize", nargs="+", metavar="FILE")
    ap.add_argument("--real", action="store_true")
    ap.add_argument(
        "--figure", default=str(Path(__file__).resolve().parent / "joint_real.png")
    )
    ap.add_argument("--real-alphas", default="30")
    args = ap.parse_args()
    if args.summarize:
        cases = []
        for f in args.summarize:
            cases += json.loads(Path(f).read_text())
        summarize(cases)
        return
    if args.real:
        alphas = [float(x) for x in args.real_alphas.split(",") if x]
        real_data(args.figure, alphas)
        return
    if args.quick:
        args.seeds, args.naves = 1, "10,60"
    simulate_study(args)


if __name__ == "__main__":
    main()
