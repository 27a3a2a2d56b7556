# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The ``tfmxne`` command line.

The main paths run in subprocesses, as a user would (exit status, stdout,
stderr, files); cheaper variations of the error checks call ``cli.main``
in-process.
"""

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tfmxne
from tfmxne import cli
from tfmxne.datasets import sample

TIMEOUT = 300
# issue 17: TF-MxNE sources of 'Left Auditory' on the corrected geometry, in head
# coordinates (mm); the demo must find one within 20 mm of a left and of a right one
AUDITORY_LEFT = np.array([[-60.0, -5.0, 71.0], [-54.0, 6.0, 66.0]])
AUDITORY_RIGHT = np.array([[49.0, 9.0, 78.0]])
NEAR_MM = 20.0
# a small, quick problem for `tfmxne run` (a few seconds)
RUN_PARAMS = dict(alpha=60.0, l1_ratio=0.05, n_tfmxne_iter=2)
RUN_CROP = (0.05, 0.15)


def shared_sample_dir():
    """The shared sample data next to the repository, or skip."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "sample")
    if not os.path.isfile(os.path.join(path, "sample-ave.fif.gz")):
        pytest.skip(f"shared sample data not found in {os.path.abspath(path)}")
    return Path(path).resolve()


def tfmxne_cmd(*args, module="tfmxne.cli", cwd=None):
    """Run the command line in a subprocess; returns the CompletedProcess."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env["COLUMNS"] = "100"
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """FIF files written from the shared sample data (and the bundled forward)."""
    import mne

    from tfmxne.datasets import sample

    src = shared_sample_dir()
    d = tmp_path_factory.mktemp("cli-inputs")
    evokeds = mne.read_evokeds(src / "sample-ave.fif.gz", verbose=False)
    mne.write_evokeds(d / "sample-ave.fif", evokeds, verbose=False)
    cov = mne.read_cov(src / "sample-cov.fif", verbose=False)
    cov.save(d / "sample-cov.fif", verbose=False)
    # the README recipe's surface forward, as bundled (same files, ~5 s saved)
    fwd = sample.load()[1]
    mne.write_forward_solution(d / "sample-fwd.fif", fwd, verbose=False)
    # files that do not belong together: EEG-only data, MEG-only forward
    evokeds[0].copy().pick("eeg").save(d / "eeg-ave.fif", verbose=False)
    with mne.use_log_level("warning"):
        meg_fwd = mne.pick_types_forward(fwd, meg=True, eeg=False)
    mne.write_forward_solution(d / "meg-fwd.fif", meg_fwd, verbose=False)
    return d


@pytest.fixture(scope="module")
def run_result(files, tmp_path_factory):
    """One successful ``tfmxne run`` (quiet, with dipoles), shared by the tests."""
    out = tmp_path_factory.mktemp("cli-run")
    proc = tfmxne_cmd(
        "run",
        "--evoked",
        files / "sample-ave.fif",
        "--condition",
        "Left Auditory",
        "--forward",
        files / "sample-fwd.fif",
        "--cov",
        files / "sample-cov.fif",
        "--tmin",
        RUN_CROP[0],
        "--tmax",
        RUN_CROP[1],
        "--alpha",
        RUN_PARAMS["alpha"],
        "--l1-ratio",
        RUN_PARAMS["l1_ratio"],
        "--n-tfmxne-iter",
        RUN_PARAMS["n_tfmxne_iter"],
        "--dipoles",
        "--out",
        out / "la",
        "--quiet",
    )
    return proc, out


# --------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------
def _report_sources(out):
    """The rows of the report's source table: (hemi, vertex, pos_mm, ms, nAm)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "peak (nAm)" in line) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip() or line.strip().startswith("..."):
            break
        f = line.split()
        rows.append((f[0], int(f[1]), np.array(f[2:5], float), float(f[5]), float(f[6])))
    return rows


def _near(rows, hemi, targets):
    return any(
        h == hemi and np.linalg.norm(targets - pos, axis=1).min() <= NEAR_MM
        for h, _, pos, _, _ in rows
    )


def test_demo_report_and_figure(tmp_path):
    """The README's demo: 2-20 sources, in both auditory cortices, and a figure."""
    from matplotlib.image import imread

    fig = tmp_path / "demo.png"
    proc = tfmxne_cmd("demo", "--out", fig, module="tfmxne")  # python -m tfmxne
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in (
        "active source",
        "hemi",
        "vertex",
        "peak (ms)",
        "peak (nAm)",
        "alpha=80 % of alpha_max",
        "alpha is fixed",
        "explained variance",
        "after the stimulus (t > 0)",
        "at the peak of the fitted response",
        "over the whole window",
        "an average of 3 trials",
        "duality gap",
        "converged",
        "time:",
    ):
        assert text in out, (text, out)
    assert "Traceback" not in proc.stderr
    rows = _report_sources(out)
    n = int(out.split(" active source")[0].split("\n")[-1])
    assert 2 <= n <= 20 and len(rows) == n, out
    assert _near(rows, "lh", AUDITORY_LEFT), out
    assert _near(rows, "rh", AUDITORY_RIGHT), out
    assert fig.is_file()
    img = imread(fig)
    h, w = img.shape[:2]
    assert w > 800 and h > 600, img.shape
    assert img[..., :3].std() > 0.05  # not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png"]


@pytest.mark.parametrize("alpha", sample.DEMO_ALPHA_RANGE)
def test_demo_alpha_range(alpha):
    """The stated range of the demo's alpha keeps a source in each auditory cortex."""
    import mne

    from tfmxne.viz import source_table

    evoked, forward, noise_cov = sample.load()
    evoked.crop(*sample.DEMO_CROP)
    params = dict(sample.DEMO_PARAMS, alpha=alpha)
    with mne.use_log_level("warning"):
        stc = tfmxne.tf_mixed_norm(evoked, forward, noise_cov, **params)
    rows = [
        (r["space"], r["vertex"], 1e3 * r["pos"], 0, 0)
        for r in source_table(stc, forward)
    ]
    assert 2 <= len(rows) <= 20
    assert _near(rows, "lh", AUDITORY_LEFT) and _near(rows, "rh", AUDITORY_RIGHT)


@pytest.mark.slow
def test_demo_compare_mne(tmp_path):
    proc = tfmxne_cmd("demo", "--compare-mne", "--no-figure", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MNE time" in proc.stdout and "speed-up" in proc.stdout
    assert (
        "relative difference" in proc.stdout or "different active sources" in proc.stdout
    )
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------
def test_run_writes_readable_files(run_result):
    import mne

    proc, out = run_result
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --quiet
    names = sorted(p.name for p in out.iterdir())
    assert {"la-lh.stc", "la-rh.stc", "la-res-ave.fif", "la.png"} <= set(names)
    assert not [n for n in names if n.startswith(".")]  # no staging leftovers
    stc = mne.read_source_estimate(out / "la")
    assert isinstance(stc, mne.SourceEstimate)
    assert stc.data.shape[0] >= 1
    res = mne.read_evokeds(out / "la-res-ave.fif", verbose=False)
    assert len(res) == 1
    np.testing.assert_allclose(res[0].times, stc.times, atol=1e-6)
    dips = sorted(n for n in names if n.startswith("la-dip"))
    assert len(dips) == stc.data.shape[0]
    for n in dips:
        assert n.endswith(".dip")
        assert len(mne.read_dipole(out / n, verbose=False).times) == len(stc.times)


def test_run_matches_tf_mixed_norm(run_result, files):
    import mne

    proc, out = run_result
    assert proc.returncode == 0, proc.stderr
    evoked = mne.read_evokeds(
        files / "sample-ave.fif", condition="Left Auditory", verbose=False
    ).crop(*RUN_CROP)
    fwd = mne.read_forward_solution(files / "sample-fwd.fif", verbose=False)
    cov = mne.read_cov(files / "sample-cov.fif", verbose=False)
    stc_ref, res_ref = tfmxne.tf_mixed_norm(
        evoked, fwd, cov, return_residual=True, **RUN_PARAMS
    )
    stc = mne.read_source_estimate(out / "la")
    for a, b in zip(stc.vertices, stc_ref.vertices):
        np.testing.assert_array_equal(a, b)
    # .stc files store float32
    scale = np.abs(stc_ref.data).max()
    np.testing.assert_allclose(stc.data, stc_ref.data, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(stc.tmin, stc_ref.tmin, atol=1e-6)
    res = mne.read_evokeds(out / "la-res-ave.fif", verbose=False)[0]
    assert res.ch_names == res_ref.ch_names
    np.testing.assert_allclose(
        res.data, res_ref.data, rtol=1e-5, atol=1e-6 * np.abs(res_ref.data).max()
    )
    # dipoles: amplitudes (nAm, 3 decimals) and positions (mm, 2 decimals)
    offsets = np.cumsum([0] + [len(s["vertno"]) for s in fwd["src"]])
    idx = np.concatenate(
        [
            o + np.searchsorted(s["vertno"], v)
            for o, s, v in zip(offsets, fwd["src"], stc_ref.vertices)
        ]
    )
    for k, i in enumerate(idx):
        dip = mne.read_dipole(out / f"la-dip{k:02d}.dip", verbose=False)
        np.testing.assert_allclose(dip.pos[0], fwd["source_rr"][i], atol=1e-5)
        np.testing.assert_allclose(
            dip.amplitude, np.abs(stc_ref.data[k]), atol=2e-12, rtol=1e-3
        )


def _bad_args(
    files,
    out,
    *args,
    evoked="sample-ave.fif",
    fwd="sample-fwd.fif",
    cov="sample-cov.fif",
    condition=("--condition", "Left Auditory"),
):
    return [
        "run",
        "--evoked",
        files / evoked,
        "--forward",
        files / fwd,
        "--cov",
        files / cov,
        *condition,
        "--tmin",
        "0.05",
        "--tmax",
        "0.15",
        "--out",
        out / "x",
        *args,
    ]


# run in subprocesses: the exit status and stderr exactly as a user sees them
BAD_CASES = {
    "missing-evoked": (dict(evoked="nope-ave.fif"), (), "evoked file not found"),
    "unknown-condition": (
        dict(condition=("--condition", "Right Auditory")),
        (),
        "unknown condition 'Right Auditory'",
    ),
    "mismatched-files": (
        dict(evoked="eeg-ave.fif", fwd="meg-fwd.fif", condition=()),
        (),
        "no good channels in common",
    ),
    "alpha-too-large": (
        dict(),
        ("--alpha", "150"),
        "--alpha: alpha must be in [0, 100). Got alpha = 150.0",
    ),
    "verbose-traceback": (
        dict(evoked="eeg-ave.fif", fwd="meg-fwd.fif", condition=()),
        ("--verbose",),
        "no good channels in common",
    ),
}
# the same checks in-process (cheaper): cli.main returns the exit status
BAD_CASES_INPROCESS = {
    "no-active-source": (dict(), ("--alpha", "99.99"), "No active dipoles found"),
    "wrong-file-type": (dict(fwd="sample-cov.fif"), (), "cannot read the forward"),
    "missing-forward": (dict(fwd="nope-fwd.fif"), (), "forward file not found"),
    "missing-cov": (dict(cov="nope-cov.fif"), (), "covariance file not found"),
    "ambiguous-condition": (
        dict(condition=()),
        (),
        "choose one (or several) with --condition",
    ),
    "condition-index": (dict(condition=("--condition", "7")), (), "out of range"),
    "alpha-zero": (dict(), ("--alpha", "0"), "--alpha: alpha must be > 0"),
    "alpha-not-a-number": (dict(), ("--alpha", "lots"), "--alpha: expected a number"),
    "l1-ratio": (
        dict(),
        ("--l1-ratio", "1.5"),
        "--l1-ratio: l1_ratio must be in range [0, 1]",
    ),
    "wsize": (dict(), ("--wsize", "30"), "wsize must be a positive multiple of 4"),
    "tstep": (dict(), ("--wsize", "64", "--tstep", "6"), "tstep must be"),
    "window": (
        dict(),
        ("--window", "0.1", "0.1", "0.1"),
        "--window: window must be None, a number of seconds or a tuple of two",
    ),
    "window-negative": (
        dict(),
        ("--window", "-0.1"),
        "--window: window must be non-negative",
    ),
    "rank": (dict(), ("--rank", "most"), "--rank: expected"),
    "rank-type": (
        dict(),
        ("--rank", "meg=300,fnirs=2,brain=3"),
        "--rank: rank has an unknown channel type 'brain'",
    ),
    "loose": (
        dict(),
        ("--loose", "2"),
        "--loose: loose must be 'auto', a number in [0, 1]",
    ),
    "maxit": (dict(), ("--maxit", "0"), "--maxit: maxit must be >= 1, got maxit=0"),
    "tol": (dict(), ("--tol", "0"), "--tol: tol must be in (0.0, inf]"),
    "time-window": (dict(), ("--tmin", "2", "--tmax", "3"), "outside the data"),
}


@pytest.fixture(scope="module")
def bad_runs(files, tmp_path_factory):
    """All bad invocations, run concurrently (each is mostly interpreter start-up)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = {}
    for case, (kw, args, _) in BAD_CASES.items():
        out = tmp_path_factory.mktemp(f"bad-{case}")
        jobs[case] = (_bad_args(files, out, *args, **kw), out)
    n_workers = max(2, min(len(jobs), os.cpu_count() or 2))
    with ThreadPoolExecutor(n_workers) as pool:
        futures = {
            case: pool.submit(tfmxne_cmd, *argv) for case, (argv, _) in jobs.items()
        }
        return {case: (fut.result(), jobs[case][1]) for case, fut in futures.items()}


@pytest.mark.parametrize("case", [c for c in BAD_CASES if c != "verbose-traceback"])
def test_run_bad_invocation(case, bad_runs):
    proc, out = bad_runs[case]
    message = BAD_CASES[case][2]
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tfmxne: error:"), lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert list(out.iterdir()) == []  # nothing written


def test_verbose_shows_traceback(bad_runs):
    proc, out = bad_runs["verbose-traceback"]
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    last = error_lines(proc)[-1]
    assert last.startswith("tfmxne: error: ") and "no good channels" in last
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("case", list(BAD_CASES_INPROCESS))
def test_run_bad_invocation_inprocess(case, files, tmp_path, capsys):
    kw, args, message = BAD_CASES_INPROCESS[case]
    argv = [str(a) for a in _bad_args(files, tmp_path, *args, **kw)]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tfmxne: error:"), captured.err
    assert message in lines[0], lines[0]
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_run_vector_needs_h5io(files, tmp_path, capsys, monkeypatch):
    # simulate a machine without h5io (a None entry makes `import h5io` fail)
    monkeypatch.setitem(sys.modules, "h5io", None)
    argv = [str(a) for a in _bad_args(files, tmp_path, "--pick-ori", "vector")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "tfmxne: error: saving vector or mixed source estimates needs the h5io package"
    )
    assert list(tmp_path.iterdir()) == []


def test_warnings_printed_once_on_stderr(capsys):
    """MNE/tfmxne warnings (warnings module and MNE's log) -> one line each."""
    import warnings

    from mne.utils import warn

    collector = cli._WarningCollector()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with cli._mne_logging(False, collector=collector):
            warn("solver did not converge:\n  increase maxit")
            warn("This filename (x.fif) does not conform to MNE naming conventions")
    cli._print_warnings(caught, collector.messages)
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "tfmxne: warning: solver did not converge: increase maxit"
    ]
    assert captured.out == ""


@pytest.mark.slow
def test_run_warns_when_not_converged(files, tmp_path, capsys):
    """Solver warnings reach stderr as one 'tfmxne: warning:' line each, and
    the report says the fixed-alpha solve did not converge."""
    argv = [
        "run",
        "--evoked",
        files / "sample-ave.fif",
        "--condition",
        "0",
        "--forward",
        files / "sample-fwd.fif",
        "--cov",
        files / "sample-cov.fif",
        "--tmin",
        "0.09",
        "--tmax",
        "0.11",
        "--wsize",
        "8",
        "--tstep",
        "2",
        "--window",
        "none",
        "--maxit",
        "1",
        "--tol",
        "1e-12",
        "--alpha",
        "40",
        "--l1-ratio",
        "0.03",
        "--no-figure",
        "--out",
        tmp_path / "nc",
    ]
    assert cli.main([str(a) for a in argv]) == 0
    captured = capsys.readouterr()
    warn = [line for line in captured.err.splitlines() if line.strip()]
    assert warn and all(w.startswith("tfmxne: warning: ") for w in warn), captured.err
    assert any("did not converge" in w for w in warn)
    assert "NOT converged" in captured.out
    assert (tmp_path / "nc-lh.stc").is_file() and (tmp_path / "nc-res-ave.fif").is_file()


def _quick_run(files, out, *extra):
    return [
        str(a)
        for a in (
            "run",
            "--evoked",
            files / "sample-ave.fif",
            "--condition",
            "Left Auditory",
            "--forward",
            files / "sample-fwd.fif",
            "--cov",
            files / "sample-cov.fif",
            "--tmin",
            RUN_CROP[0],
            "--tmax",
            RUN_CROP[1],
            "--alpha",
            RUN_PARAMS["alpha"],
            "--l1-ratio",
            RUN_PARAMS["l1_ratio"],
            "--no-figure",
            "--quiet",
            "--out",
            out,
            *extra,
        )
    ]


def test_run_creates_output_dir(files, tmp_path, capsys):
    """`--out results/subject01` (the README's example) on a fresh machine."""
    out = tmp_path / "nonexistent_dir" / "deeper" / "sub01"
    assert cli.main(_quick_run(files, out)) == 0, capsys.readouterr().err
    assert out.parent.is_dir()
    names = sorted(p.name for p in out.parent.iterdir())
    assert {"sub01-lh.stc", "sub01-rh.stc", "sub01-res-ave.fif"} <= set(names), names
    assert not [n for n in names if n.startswith(".")]
    # relative to the working directory, as in the README
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert cli.main(_quick_run(files, "results/subject01")) == 0
    finally:
        os.chdir(cwd)
    assert (tmp_path / "results" / "subject01-lh.stc").is_file()


def test_run_output_dir_not_created_on_failure(files, tmp_path, capsys):
    out = tmp_path / "nodir" / "x"
    assert cli.main(_quick_run(files, out, "--alpha", "99.99")) == 2
    assert "No active dipoles found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing created
    (tmp_path / "afile").write_text("")
    assert cli.main(_quick_run(files, tmp_path / "afile" / "sub" / "x")) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"tfmxne: error: cannot create the directory of --out "
        f"({tmp_path / 'afile' / 'sub'}): {tmp_path / 'afile'} is not a "
        "directory"
    ]


# --------------------------------------------------------------------------
# help and options
# --------------------------------------------------------------------------
def _console_script():
    exe = Path(sys.executable).parent / ("tfmxne.exe" if os.name == "nt" else "tfmxne")
    return str(exe) if exe.exists() else shutil.which("tfmxne")


def test_help_console_script():
    script = _console_script()
    argv = [script] if script else [sys.executable, "-m", "tfmxne"]
    proc = subprocess.run(
        argv + ["run", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: tfmxne run")
    for opt in (
        "--evoked",
        "--alpha",
        "--l1-ratio",
        "--quiet",
        "--verbose",
        "--compare-mne",
    ):
        assert opt in proc.stdout


@pytest.mark.parametrize("command", ["demo", "run"])
def test_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tfmxne {command}")
    for opt in ("--alpha", "--l1-ratio", "--quiet", "--verbose", "--compare-mne"):
        assert opt in out


def test_top_level_help():
    text = cli.build_parser().format_help()
    assert text.startswith("usage: tfmxne")
    assert "demo" in text and "run" in text


def _subparser(name):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices[name]


@pytest.mark.parametrize("name", ["demo", "run"])
def test_every_option_documented(name):
    import argparse

    for action in _subparser(name)._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings


def test_run_covers_tf_mixed_norm_options():
    """Each parameter of tf_mixed_norm is an option of `tfmxne run` (MNE's names)."""
    opts = {o for a in _subparser("run")._actions for o in a.option_strings}
    skip = {"evoked", "forward", "noise_cov", "verbose", "return_residual"}
    alias = {"return_as_dipoles": "--dipoles", "pca": "--no-pca", "debias": "--no-debias"}
    for p in inspect.signature(tfmxne.tf_mixed_norm).parameters:
        if p in skip:
            continue
        opt = alias.get(p, "--" + p.replace("_", "-"))
        assert opt in opts, p
    assert {
        "--evoked",
        "--forward",
        "--cov",
        "--out",
        "--condition",
        "--tmin",
        "--tmax",
        "--baseline",
    } <= opts


# --------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------
class _Recorder(cli.Progress):
    def __init__(self):
        self.events = []
        self.closed = 0

    def __call__(self, event):
        self.events.append(event)

    def close(self):
        self.closed += 1


@pytest.mark.parametrize("n_tfmxne_iter", [1, 2])
def test_progress_of_the_command(files, tmp_path, monkeypatch, n_tfmxne_iter):
    """The command's display receives the solve's events and is closed once."""
    rec = _Recorder()
    seen = []

    def fake(enabled=True, iterative=False, auto=False):
        seen.append((enabled, iterative, auto))
        return rec

    monkeypatch.setattr(cli, "make_progress", fake)
    argv = [str(a) for a in _quick_run(files, tmp_path / "p")]
    argv += ["--n-tfmxne-iter", str(n_tfmxne_iter)]
    assert cli.main(argv) == 0
    assert seen == [(False, n_tfmxne_iter > 1, False)] and rec.closed == 1  # (--quiet)
    stages = {e.stage for e in rec.events}
    assert stages == ({"outer", "reweighting"} if n_tfmxne_iter > 1 else {"outer"})
    assert all(np.isfinite(e.gap) for e in rec.events)


def test_no_progress_bar_without_terminal():
    # under pytest stdout is captured, not a terminal
    assert type(cli.make_progress()) is cli.Progress
    assert type(cli.make_progress(enabled=False)) is cli.Progress


# --------------------------------------------------------------------------
# automatic alpha, several conditions, joint solves, empty answers
# --------------------------------------------------------------------------
def _run_argv(files, out, *extra, condition=("Left Auditory",)):
    return [
        str(a)
        for a in (
            "run",
            "--evoked",
            files / "sample-ave.fif",
            "--condition",
            *condition,
            "--forward",
            files / "sample-fwd.fif",
            "--cov",
            files / "sample-cov.fif",
            "--tmin",
            RUN_CROP[0],
            "--tmax",
            RUN_CROP[1],
            "--out",
            out,
            *extra,
        )
    ]


def _inputs(files, *conditions):
    import mne

    evs = [
        mne.read_evokeds(files / "sample-ave.fif", condition=c, verbose=False).crop(
            *RUN_CROP
        )
        for c in conditions
    ]
    fwd = mne.read_forward_solution(files / "sample-fwd.fif", verbose=False)
    cov = mne.read_cov(files / "sample-cov.fif", verbose=False)
    return evs, fwd, cov


def _same_stc(path, ref):
    import mne

    stc = mne.read_source_estimate(path)
    for a, b in zip(stc.vertices, ref.vertices):
        np.testing.assert_array_equal(a, b)
    scale = np.abs(ref.data).max()
    np.testing.assert_allclose(stc.data, ref.data, rtol=1e-5, atol=1e-6 * scale)


def test_run_chooses_alpha_by_default(files, tmp_path, capsys):
    """No --alpha: the library's automatic choice (alpha and l1_ratio), reported
    with its solves and time; the figure has the criterion's row; --alpha auto
    says the same; the estimate is tfmxne.solve's with alpha=None."""
    out = tmp_path / "auto"
    assert cli.main(_run_argv(files, out)) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    (evoked,), fwd, cov = _inputs(files, "Left Auditory")
    ref = tfmxne.solve(evoked, fwd, cov)
    sel = ref.selection
    flat = " ".join(text.split())
    assert "alpha and l1_ratio chosen automatically ('signal-share'" in flat
    assert f"alpha={ref.alpha:.4g} % of alpha_max, l1_ratio={ref.l1_ratio:g}, in " in flat
    assert f"in {sel['n_solves']} solves and " in flat and " s in all; the solve" in flat
    _same_stc(out, ref.estimate)
    assert (tmp_path / "auto.png").is_file()
    args = cli.build_parser().parse_args(_run_argv(files, tmp_path, "--alpha", "auto"))
    assert cli._solver_params(args)["alpha"] is None
    # a given alpha: one solve, l1_ratio 0.03 unless given
    assert cli.main(_run_argv(files, tmp_path / "f", "--alpha", "60", "--no-figure")) == 0
    fixed = capsys.readouterr().out
    assert "chosen automatically" not in fixed and "l1_ratio=0.03," in fixed
    _same_stc(tmp_path / "f", tfmxne.tf_mixed_norm(evoked, fwd, cov, alpha=60.0,
                                                   l1_ratio=0.03))  # fmt: skip


def test_figure_of_an_automatic_run_shows_the_criterion(files):
    """plot_tfmxne of an automatic result: a row with the criterion over the grid
    and the active positions, the choice marked (a star at the chosen alpha)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfmxne import viz

    (evoked,), fwd, cov = _inputs(files, "Left Auditory")
    res = tfmxne.solve(evoked, fwd, cov, l1_ratio=0.03)
    fig = viz.plot_tfmxne(res, evoked)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("automatic alpha ('signal-share')") for t in titles)
    ax = [a for a in fig.axes if a.get_title().startswith("automatic alpha")][0]
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_xdata()[0] == pytest.approx(res.alpha)
    n_plain = len(viz.plot_tfmxne(res, evoked, selection=False).axes)
    assert len(fig.axes) == n_plain + 2
    plt.close("all")
    fixed = tfmxne.solve(evoked, fwd, cov, alpha=60.0, l1_ratio=0.03)
    with pytest.raises(ValueError, match="no automatic choice"):
        viz.plot_selection(fixed)


def test_run_several_conditions(files, tmp_path, capsys):
    """--condition A B: one output set per condition (BASENAME-A-...), each the
    independent solve of its condition; --joint: solve_joint's."""
    conds = ("Left Auditory", "Left visual")
    fixed = ("--alpha", "50", "--l1-ratio", "0.03", "--no-figure", "--quiet")
    evs, fwd, cov = _inputs(files, *conds)
    assert cli.main(_run_argv(files, tmp_path / "ind", *fixed, condition=conds)) == 0
    for ev in evs:
        ref = tfmxne.tf_mixed_norm(ev, fwd, cov, alpha=50.0, l1_ratio=0.03)
        _same_stc(tmp_path / f"ind-{ev.comment.replace(' ', '_')}", ref)
    argv = _run_argv(files, tmp_path / "jt", *fixed, "--joint", condition=conds)
    assert cli.main(argv) == 0, capsys.readouterr().err
    joint = tfmxne.solve_joint(evs, fwd, cov, alpha=50.0, l1_ratio=0.03)
    for ev, r in zip(evs, joint):
        name = tmp_path / f"jt-{ev.comment.replace(' ', '_')}"
        _same_stc(name, r.estimate)
        assert (tmp_path / f"{name.name}-res-ave.fif").is_file()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("jt"))
    assert len(names) == 6, names  # lh, rh, residual per condition


@pytest.mark.parametrize(
    "conds, extra, message",
    [
        (("Left Auditory", "Left visual"), ("--joint", "--compare-mne"), "MNE has no"),
        (("Left visual", "1"), (), "--condition names 'Left visual' twice"),
        (("Left visual", "Right"), (), "unknown condition 'Right'"),
        (("0",), ("--alpha", "ninety"), "--alpha: expected a number, got 'ninety'"),
    ],
)
def test_run_several_conditions_errors(files, tmp_path, capsys, conds, extra, message):
    argv = _run_argv(files, tmp_path / "x", "--alpha", "50", *extra, condition=conds)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []


def test_run_on_empty_warn(files, tmp_path, capsys):
    """--on-empty warn: a warning, exit 0, an empty estimate and the residual
    written; the default stops with the error."""
    import mne

    argv = _run_argv(files, tmp_path / "e", "--alpha", "99.99", "--no-figure")
    assert cli.main(argv) == 2
    assert "No active dipoles found" in capsys.readouterr().err
    assert cli.main(argv + ["--on-empty", "warn"]) == 0
    captured = capsys.readouterr()
    assert "tfmxne: warning: No active dipoles found at alpha=99.99" in captured.err
    assert "0 active sources" in captured.out
    stc = mne.read_source_estimate(tmp_path / "e")
    assert stc.data.shape[0] == 0
    assert (tmp_path / "e-res-ave.fif").is_file()
