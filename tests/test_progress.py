# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The ``progress=`` callback of tfmxne.solve and of the path functions.

Real solves on the sample data: the events must be the solver's own
certificates (the records of every outer iteration that the core returns with
its result, ``TFMxNEResult.gap_history``: another way out of the core than the
callback), with steps that count up by one.
"""

import io
import sys

import mne
import numpy as np
import pytest

import tfmxne
from tfmxne import _progress

KW = dict(alpha=40.0, l1_ratio=0.03, tol=1e-8)


@pytest.fixture()
def float64_only(monkeypatch):
    """Solves without the float32 start (whose outer iterations report events
    but are not in the result): every event has its record."""
    from tfmxne import solver

    monkeypatch.setattr(solver, "MIXED_PRECISION", False)


def _n_positions(res, fwd):
    n_orient = 1 if mne.forward.is_fixed_orient(fwd) else 3
    return int(res.active_set.sum()) // n_orient


def _check_outer_runs(outer):
    """'outer' steps count 1, 2, ... within each convex solve."""
    runs = []
    for e in outer:
        assert e.total is None
        if e.step == 1:
            runs.append([])
        runs[-1].append(e)
        assert e.step == len(runs[-1])
    return runs


def test_solve_outer_events_are_the_certificates(small_problem, float64_only):
    events = []
    res = tfmxne.solve(*small_problem, progress=events.append, **KW)
    assert all(isinstance(e, tfmxne.ProgressEvent) for e in events)
    assert {e.stage for e in events} == {"outer"}
    assert len(_check_outer_runs(events)) == 1
    assert len(events) >= 3  # a real working-set run, not a one-shot
    # the certificates the core recorded, one per outer iteration
    assert len(res.gap_history) == len(events)
    for e, rec in zip(events, res.gap_history):
        assert (e.gap, e.n_active) == (rec.gap, rec.n_active)
    # the last one is the result's certificate
    last = events[-1]
    assert last.gap == res.gap and res.converged and last.gap < res.tol
    assert last.n_active == _n_positions(res, small_problem[1]) > 0


def test_irtf_reweighting_events(small_problem, float64_only):
    events = []
    res = tfmxne.solve(*small_problem, n_tfmxne_iter=3, progress=events.append, **KW)
    outer = [e for e in events if e.stage == "outer"]
    rew = [e for e in events if e.stage == "reweighting"]
    assert len(outer) + len(rew) == len(events)
    runs = _check_outer_runs(outer)
    assert [e.step for e in rew] == list(range(1, len(rew) + 1))
    assert len(rew) == len(runs) >= 2 and all(e.total == 3 for e in rew)
    # the outer events of each reweighting's solve are its records
    assert len(res.gap_history) == len(outer)
    for k, run in enumerate(runs):
        recs = [h for h in res.gap_history if h.solve == k]
        assert [(e.gap, e.n_active) for e in run] == [(h.gap, h.n_active) for h in recs]
    # each reweighting event follows its solve's outer events, with its last
    # certificate
    k = 0
    for e in events:
        if e.stage == "reweighting":
            assert events[k - 1].stage == "outer"
            assert (e.gap, e.n_active) == (events[k - 1].gap, events[k - 1].n_active)
        k += 1
    assert events[-1].stage == "reweighting" and events[-1].gap == res.gap
    assert events[-1].n_active == _n_positions(res, small_problem[1])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_path_alpha_events(small_problem, n_jobs):
    events = []
    alphas = [70.0, 50.0, 40.0]
    path = tfmxne.tf_mixed_norm_path(
        *small_problem,
        alphas=alphas,
        l1_ratio=0.03,
        tol=1e-6,
        n_jobs=n_jobs,
        progress=events.append,
    )
    assert [e.stage for e in events] == ["alpha"] * 3
    assert [e.step for e in events] == [1, 2, 3]
    assert all(e.total == 3 and e.l1_ratio == 0.03 for e in events)
    got = sorted((e.alpha, e.gap, e.n_active) for e in events)
    want = sorted((r.alpha, r.gap, _n_positions(r, small_problem[1])) for r in path)
    assert got == want


def test_batch_and_selection_events(small_problem, monkeypatch):
    evoked, fwd, cov = small_problem
    ev2 = evoked.copy()
    ev2.data = ev2.data * 0.8
    events = []
    res = tfmxne.solve([evoked, ev2], fwd, cov, progress=events.append, **KW)
    assert [(e.stage, e.step, e.total) for e in events] == [
        ("batch", 1, 2),
        ("batch", 2, 2),
    ]
    assert [e.gap for e in events] == [r.gap for r in res]
    # automatic selection: one event per solve of the grid, none of the inner ones
    monkeypatch.setattr(tfmxne.path, "AUTO_ALPHAS", np.array([70.0, 40.0]))
    events = []
    res = tfmxne.solve(
        *small_problem, alpha="bic", l1_ratio=0.03, tol=1e-6, progress=events.append
    )
    assert [(e.stage, e.step, e.total, e.alpha) for e in events] == [
        ("alpha", 1, 2, 70.0),
        ("alpha", 2, 2, 40.0),
    ]
    assert res.gap in [e.gap for e in events]


class _Stop(Exception):
    pass


def test_callback_errors_propagate(small_problem):
    calls = []

    def stop_at_second(event):
        calls.append(event)
        if len(calls) == 2:
            raise _Stop("user stop")

    with pytest.raises(_Stop, match="user stop"):
        tfmxne.solve(*small_problem, progress=stop_at_second, **KW)
    assert len(calls) == 2  # the solve ended there
    calls.clear()
    with pytest.raises(_Stop):
        tfmxne.tf_mixed_norm_path(
            *small_problem,
            alphas=[70.0, 60.0, 50.0, 40.0],
            n_jobs=2,
            progress=stop_at_second,
            tol=1e-6,
        )
    assert len(calls) == 2  # not called again once it raised
    with pytest.raises(TypeError, match="progress must be None, 'auto' or a callable"):
        tfmxne.solve(*small_problem, progress="yes", **KW)


def test_auto_bar_follows_terminal_and_log_level(monkeypatch):
    class _Tty(io.StringIO):
        def isatty(self):
            return True

    with _progress.session("auto", "outer", "x") as emit:
        assert emit is None  # under pytest stderr is not a terminal
    monkeypatch.setattr(sys, "stderr", _Tty())
    monkeypatch.delenv("TFMXNE_NO_PROGRESS", raising=False)
    with mne.use_log_level("warning"):
        with _progress.session("auto", "outer", "x") as emit:
            assert emit is None  # verbose=False hides it, as MNE's bars
    with mne.use_log_level("info"):
        with _progress.session("auto", "outer", "x") as emit:
            assert isinstance(emit, _progress._Emitter)
            emit("outer", 1, gap=3.0, n_active=2)
        monkeypatch.setenv("TFMXNE_NO_PROGRESS", "1")
        with _progress.session("auto", "outer", "x") as emit:
            assert emit is None


def test_tqdm_bar_counts_its_stage():
    out = io.StringIO()
    bar = _progress.TqdmBar("irTF-MxNE", "reweighting", file=out)
    E = tfmxne.ProgressEvent
    bar(E("outer", 1, gap=5.0, n_active=0))
    bar(E("outer", 2, gap=1e-3, n_active=4))
    assert bar._bar.n == 0  # the outer iterations only update the text
    bar(E("reweighting", 1, total=3, gap=1e-3, n_active=4))
    assert (bar._bar.n, bar._bar.total) == (1, 3)
    bar(E("reweighting", 2, total=3, gap=2e-4, n_active=3))
    assert bar._bar.n == 2
    text = out.getvalue()
    assert "irTF-MxNE" in text and "gap 2.00e-04" in text and "3 active" in text
    bar.close()
    assert bar._bar is None
    with pytest.raises(ValueError, match="count"):
        _progress.TqdmBar("x", "epoch")


@pytest.mark.parametrize("quiet", [None, False])
def test_one_rule_for_library_and_command_line(monkeypatch, quiet):
    """``progress='auto'`` and the command line's bar follow one rule
    (``_progress.bar_enabled``), MNE's ``MNE_TQDM`` included."""
    import tqdm

    from tfmxne import cli

    class _Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", _Tty())
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a report piped to a file
    monkeypatch.delenv("TFMXNE_NO_PROGRESS", raising=False)

    def draws():
        lib = _progress.bar_enabled(quiet=quiet)
        with _progress.session("auto", "outer", "x") as emit:
            assert (emit is not None) == _progress.bar_enabled()
        assert (type(cli.make_progress()) is not cli.Progress) == _progress.bar_enabled(
            quiet=False
        )
        return lib

    with mne.use_log_level("info"):
        monkeypatch.delenv("MNE_TQDM", raising=False)
        assert draws()
        monkeypatch.setenv("MNE_TQDM", "off")  # MNE's switch for its own bars
        assert not draws()
        assert type(cli.make_progress()) is cli.Progress
        monkeypatch.setenv("MNE_TQDM", "tqdm")
        assert draws()
        bar = _progress.TqdmBar("x", "outer", file=io.StringIO())
        bar(tfmxne.ProgressEvent("outer", 1, gap=1.0, n_active=1))
        assert type(bar._bar) is tqdm.tqdm  # MNE_TQDM's class, not tqdm.auto's
        bar.close()
        monkeypatch.setenv("MNE_TQDM", "tqdm.bogus_module")
        assert not draws()  # an uninstalled backend: no bar, no crash
        monkeypatch.setenv("MNE_TQDM", "rich")
        with pytest.raises(ValueError, match="MNE_TQDM must be .* got MNE_TQDM='rich'"):
            _progress.bar_enabled(quiet=quiet)
        monkeypatch.setenv("MNE_TQDM", "tqdm")
        monkeypatch.setenv("TFMXNE_NO_PROGRESS", "1")
        assert not draws()
    monkeypatch.delenv("TFMXNE_NO_PROGRESS")
    with mne.use_log_level("warning"):
        # the library hides its bar with MNE's log level (verbose=False); the
        # command line lowers that level for its report and passes --quiet
        assert not _progress.bar_enabled()
        assert _progress.bar_enabled(quiet=False)
        assert not _progress.bar_enabled(quiet=True)


def test_tqdm_bar_off_draws_nothing(monkeypatch):
    monkeypatch.setenv("MNE_TQDM", "off")
    out = io.StringIO()
    bar = _progress.TqdmBar("x", "outer", file=out)
    bar(tfmxne.ProgressEvent("outer", 1, gap=1.0, n_active=1))
    bar.close()
    assert bar._bar is None and out.getvalue() == ""
