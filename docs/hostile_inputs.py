# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Run every hostile-input row and regenerate ``docs/hostile_inputs.md``.

Usage::

    python docs/hostile_inputs.py [--sample DIR] [--cache DIR] [--out FILE]

``--sample``: the shared sample data (default: ``TFMXNE_SAMPLE`` or
``../shared/data/sample`` next to the repository); ``--cache``: where the
surface forward solution is cached (default: a folder in the system's
temporary directory). Each row is a call of a public entry point; its outcome
(exception type and message, or what was returned and which warnings were
emitted) is what the call did, not what the code is thought to do.
"""

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MAX_MSG = 200

# ---------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------
# A row: (section, label, param, expect, note, call)
#   param:  the parameter the row is about (a clear error must name it)
#   expect: "raise" (a ValueError / TypeError naming ``param``), "accept" (a
#           valid call) or "by design" (hostile-looking but accepted on
#           purpose, as MNE; ``note`` says why)
ROWS = []


def row(section, label, param=None, expect="raise", note=""):
    def deco(fn):
        ROWS.append((section, label, param, expect, note, fn))
        return fn

    return deco


def _find_sample(arg):
    cands = [
        arg,
        os.environ.get("TFMXNE_SAMPLE"),
        REPO.parent / "shared" / "data" / "sample",
        REPO.parent.parent / "shared" / "data" / "sample",
    ]
    for c in cands:
        if c and (Path(c) / "sample-ave.fif.gz").exists():
            return Path(c).resolve()
    sys.exit("sample data not found: pass --sample DIR")


class Setup:
    """The data every row starts from (fresh copies per row)."""

    def __init__(self, sample, cache):
        import mne

        self.mne = mne
        self.sample = sample
        ev = mne.read_evokeds(
            sample / "sample-ave.fif.gz",
            condition="Left Auditory",
            baseline=(None, 0),
            verbose=False,
        )
        self._evoked = ev.crop(-0.05, 0.15)
        self.cov = mne.read_cov(sample / "sample-cov.fif", verbose=False)
        cache.mkdir(parents=True, exist_ok=True)
        fname = cache / "surf-fwd.fif"
        if not fname.exists():
            info = mne.read_evokeds(
                sample / "sample-ave.fif.gz", condition=0, verbose=False
            ).info
            src = mne.read_source_spaces(sample / "sample-oct4-src.fif.gz", verbose=False)
            fwd = mne.make_forward_solution(
                info,
                str(sample / "sample-trans.fif"),
                src,
                str(sample / "sample-320-320-320-bem-sol.fif"),
                mindist=5.0,
                verbose=False,
            )
            mne.write_forward_solution(fname, fwd, overwrite=True, verbose=False)
        # always the one read from the cache, so that the messages quoting it do
        # not depend on whether this run computed it
        self.fwd = mne.read_forward_solution(fname, verbose=False)
        self.n_pos = self.fwd["nsource"]
        self.n_chan = self.fwd["nchan"]
        rng = np.random.default_rng(0)
        self.M = rng.standard_normal((10, 32))
        self.G = rng.standard_normal((10, 12))

    def evoked(self):
        return self._evoked.copy()

    def fresh_evoked(self):
        """Read again (renaming channels of a copy also renames the shared projs)."""
        ev = self.mne.read_evokeds(
            self.sample / "sample-ave.fif.gz",
            condition="Left Auditory",
            baseline=(None, 0),
            verbose=False,
        )
        return ev.crop(-0.05, 0.15)


S = None  # the Setup, filled in main()
BASE = dict(alpha=40.0, l1_ratio=0.03, wsize=16, tstep=4, maxit=200, tol=1e-4)


def tfmn(**kw):
    import tfmxne

    evoked = kw.pop("evoked", None)
    forward = kw.pop("forward", None)
    noise_cov = kw.pop("noise_cov", None)
    args = dict(BASE)
    args.update(kw)
    return tfmxne.tf_mixed_norm(
        S.evoked() if evoked is None else evoked,
        S.fwd if forward is None else forward,
        S.cov if noise_cov is None else noise_cov,
        verbose=False,
        **args,
    )


_NONE = object()


def _pass(value):
    """Return the value (so that ``evoked=None`` can be told from the default)."""
    return value


def tfmn_with(**kw):
    """Like tfmn, but evoked/forward/noise_cov given here are used even if None."""
    import tfmxne

    args = dict(BASE)
    ev = kw.pop("evoked", _NONE)
    fw = kw.pop("forward", _NONE)
    nc = kw.pop("noise_cov", _NONE)
    args.update(kw)
    return tfmxne.tf_mixed_norm(
        S.evoked() if ev is _NONE else ev,
        S.fwd if fw is _NONE else fw,
        S.cov if nc is _NONE else nc,
        verbose=False,
        **args,
    )


# ---- tf_mixed_norm --------------------------------------------------------
T = "tf_mixed_norm"
row(T, "baseline (valid call)", expect="accept")(lambda: tfmn())
row(T, "evoked=None", "evoked")(lambda: tfmn_with(evoked=None))
row(T, "evoked=ndarray", "evoked")(lambda: tfmn_with(evoked=S.evoked().data))


@row(T, "evoked=EpochsArray (an Epochs, not an Evoked)", "evoked")
def _():
    ev = S.evoked()
    ep = S.mne.EpochsArray(ev.data[None], ev.info, verbose=False)
    return tfmn_with(evoked=ep)


row(T, "forward=dict(fwd)", "forward")(lambda: tfmn_with(forward=dict(S.fwd)))
row(T, "forward=None", "forward")(lambda: tfmn_with(forward=None))
row(T, "noise_cov=ndarray", "noise_cov")(lambda: tfmn_with(noise_cov=S.cov.data))
row(T, "noise_cov=None", "noise_cov")(lambda: tfmn_with(noise_cov=None))


def _ev_with(value):
    ev = S.evoked()
    ev.data[3, 10] = value
    return ev


def _fwd_nan():
    f = S.fwd.copy()
    f["sol"]["data"] = f["sol"]["data"].copy()
    f["sol"]["data"][5, 7] = np.nan
    return f


def _cov_with(fn):
    c = S.cov.copy()
    c["data"] = fn(c["data"].copy())
    return c


def _set(a, idx, v):
    a[idx] = v
    return a


row(T, "NaN in evoked.data", "evoked")(lambda: tfmn(evoked=_ev_with(np.nan)))
row(T, "Inf in evoked.data", "evoked")(lambda: tfmn(evoked=_ev_with(np.inf)))
row(T, "NaN in forward['sol']['data']", "forward")(lambda: tfmn(forward=_fwd_nan()))
row(T, "Inf in noise_cov.data", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _set(d, (2, 2), np.inf)))
)
row(T, "NaN in noise_cov.data", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _set(d, (2, 3), np.nan)))
)


@row(T, "evoked with 1 time point", "evoked")
def _():
    ev = S.evoked()
    return tfmn(evoked=ev.crop(ev.times[0], ev.times[0]))


@row(T, "evoked with 0 time points (EvokedArray of shape (n, 0))", "evoked")
def _():
    ev = S.evoked()
    return tfmn(
        evoked=S.mne.EvokedArray(np.zeros((len(ev.ch_names), 0)), ev.info, verbose=False)
    )


@row(T, "evoked with 2 time points (window=None)", expect="accept")
def _():
    ev = S.evoked()
    return tfmn(evoked=ev.crop(ev.times[60], ev.times[61]), window=None)


@row(T, "evoked EEG only, forward MEG only (no common channel)", "channels")
def _():
    return tfmn(
        evoked=S.evoked().pick("eeg"),
        forward=S.mne.pick_types_forward(S.fwd, meg=True, eeg=False),
    )


@row(
    T,
    "evoked MEG+EEG, noise_cov of the EEG channels only",
    expect="by design",
    note="MNE uses the channels common to the evoked, the forward and the "
    "covariance; the others are dropped (tfmxne logs how many at level INFO).",
)
def _():
    eeg = [c for c in S.cov.ch_names if c.startswith("EEG")]
    return tfmn(noise_cov=S.cov.copy().pick_channels(eeg, verbose=False))


@row(T, "evoked channels renamed (none in forward/cov)", "channels")
def _():
    ev = S.fresh_evoked()
    ev.rename_channels({c: c + "x" for c in ev.ch_names})
    return tfmn(evoked=ev)


@row(T, "all evoked channels marked bad", "channels")
def _():
    ev = S.evoked()
    ev.info["bads"] = list(ev.ch_names)
    return tfmn(evoked=ev)


row(T, "evoked MEG only (subset of the forward channels)", expect="accept")(
    lambda: tfmn(evoked=S.evoked().pick("meg"))
)


@row(
    T,
    "evoked MEG+EEG, forward MEG only",
    expect="by design",
    note="As MNE: the EEG channels, absent from the forward, are dropped (logged "
    "at level INFO).",
)
def _():
    return tfmn(forward=S.mne.pick_types_forward(S.fwd, meg=True, eeg=False))


@row(T, "evoked.data all zero", "evoked")
def _():
    ev = S.evoked()
    ev.data[:] = 0
    return tfmn(evoked=ev)


@row(T, "non-PSD noise_cov (largest eigenvalue negated)", "noise_cov")
def _():
    def neg(d):
        w, v = np.linalg.eigh(d)
        w[-1] = -w[-1]
        return (v * w) @ v.T

    return tfmn(noise_cov=_cov_with(neg))


row(T, "non-symmetric noise_cov (EEG block)", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _set(d, (-1, -2), d[-1, -2] + d[-1, -1])))
)


@row(T, "diagonal noise_cov with a negative variance", "noise_cov")
def _():
    c = S.cov.copy().as_diag()
    c["data"] = c["data"].copy()
    c["data"][4] = -c["data"][4]
    return tfmn(noise_cov=c)


def _corr2(d, i, j):
    """Correlation 2 between channels i and j: positive variances, not PSD."""
    d[i, j] = d[j, i] = 2 * np.sqrt(d[i, i] * d[j, j])
    return d


row(T, "non-PSD noise_cov (correlation 2 between two gradiometers)", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _corr2(d, 0, 1)))
)
row(T, "non-PSD noise_cov (correlation 2 between two EEG channels)", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _corr2(d, -1, -2)))
)


row(T, "non-symmetric noise_cov in the gradiometer block", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: _set(d, (0, 1), d[0, 1] + d[0, 0])))
)


@row(
    T,
    "noise_cov zero on the MEG channels, MEG+EEG evoked",
    "noise_cov",
    expect="by design",
    note="As MNE: the rank of the zero block is 0, so the whitener drops those "
    "channels and the EEG alone is used (tfmxne logs how many at level INFO).",
)
def _():
    def zero_meg(d):
        idx = [k for k, c in enumerate(S.cov.ch_names) if c.startswith("MEG")]
        d[idx, :] = 0
        d[:, idx] = 0
        return d

    return tfmn(noise_cov=_cov_with(zero_meg))


row(T, "all-zero noise_cov", "noise_cov")(
    lambda: tfmn(noise_cov=_cov_with(lambda d: np.zeros_like(d)))
)


@row(
    T,
    "noise_cov zero on every channel used (EEG-only evoked, MEG+EEG cov zero on EEG)",
    "noise_cov",
)
def _():
    def zero_eeg(d):
        idx = [k for k, c in enumerate(S.cov.ch_names) if c.startswith("EEG")]
        d[np.ix_(idx, idx)] = 0
        d[idx, :] = 0
        d[:, idx] = 0
        return d

    return tfmn(evoked=S.evoked().pick("eeg"), noise_cov=_cov_with(zero_eeg))


for _a in ("foo", -1.0, 0.0, 100.0, 150.0, np.nan, np.inf, True, [40]):
    row(T, f"alpha={_a!r}", "alpha")(lambda a=_a: tfmn(alpha=a))
row(T, "alpha=None (automatic choice)", expect="accept")(lambda: tfmn(alpha=None))
for _a in (-0.1, 1.5, np.nan, "foo", [0.03]):
    row(T, f"l1_ratio={_a!r}", "l1_ratio")(lambda a=_a: tfmn(l1_ratio=a))
row(
    T,
    "alpha=99.999 (no source survives)",
    "alpha",
    expect="by design",
    note="`NoActiveSourcesError` (a subclass of `Exception`, as MNE's bare "
    "`Exception`), whose message starts with MNE's text and names alpha.",
)(lambda: tfmn(alpha=99.999))
for _w, _t in (
    (63, 4),
    (0, 4),
    (-16, 4),
    (16.5, 4),
    ("16", 4),
    (16, 3),
    (16, 16),
    (16, 0),
    (16, None),
    ([16, 8], 4),
    ([16, 8], [4]),
    ([], []),
    (16, 32),
    (np.array([16, 8]), np.array([4])),
    ([[16]], [[4]]),
):
    _p = "tstep" if isinstance(_w, int) and _w == 16 else "wsize"
    row(T, f"wsize={_w!r}, tstep={_t!r}", _p)(lambda w=_w, t=_t: tfmn(wsize=w, tstep=t))
row(
    T,
    "wsize=1024, tstep=4 (window longer than the 121 samples)",
    expect="by design",
    note="As MNE: the STFT frames overhang the data, which is zero-padded.",
)(lambda: tfmn(wsize=1024, tstep=4))
for _l in (
    "foo",
    -0.5,
    1.5,
    np.nan,
    None,
    [0.2],
    {"surface": 2.0},
    {"surface": np.nan},
    {"foo": 0.2},
    True,
):
    row(T, f"loose={_l!r}", "loose")(lambda v=_l: tfmn(loose=v))
for _d in (
    "foo",
    -1.0,
    np.nan,
    np.inf,
    [0.8],
    {"exp": -1},
    {"exp": "foo"},
    {"exp": np.nan},
    {"foo": 1},
    {"limit": -1.0},
    True,
):
    row(T, f"depth={_d!r}", "depth")(lambda v=_d: tfmn(depth=v))
for _r in (
    "foo",
    -3,
    5,
    {"meg": -1},
    {"foo": 3},
    1.5,
    {"meg": 2.5},
    {"meg": True},
    {"meg": "full"},
):
    row(T, f"rank={_r!r}", "rank")(lambda v=_r: tfmn(rank=v))
row(T, "rank={'meg': 300} (below the data rank)", expect="accept")(
    lambda: tfmn(rank={"meg": 300})
)
for _p in ("foo", "max-power", 1):
    row(T, f"pick_ori={_p!r}", "pick_ori")(lambda v=_p: tfmn(pick_ori=v))


@row(T, "pick_ori='vector' with a fixed-orientation forward", "pick_ori")
def _():
    f = S.mne.convert_forward_solution(
        S.fwd, surf_ori=True, force_fixed=True, verbose=False
    )
    return tfmn(forward=f, pick_ori="vector", loose=0.0)


def _fixed():
    return S.mne.convert_forward_solution(
        S.fwd, surf_ori=True, force_fixed=True, verbose=False
    )


row(T, "fixed-orientation forward, loose=0.5", "loose")(
    lambda: tfmn(forward=_fixed(), loose=0.5)
)
row(T, "fixed-orientation forward, loose='auto'", "loose")(lambda: tfmn(forward=_fixed()))
row(T, "fixed-orientation forward, loose=0", expect="accept")(
    lambda: tfmn(forward=_fixed(), loose=0)
)
row(T, "alpha=np.float32(40)", expect="accept")(lambda: tfmn(alpha=np.float32(40)))
row(T, "l1_ratio=0.0 (no temporal penalty)", expect="accept")(lambda: tfmn(l1_ratio=0.0))
row(T, "l1_ratio=1.0 (no spatial penalty)", expect="accept")(
    lambda: tfmn(l1_ratio=1.0, alpha=20.0)
)


@row(T, "noise_cov with its channels in reverse order", expect="accept")
def _():
    c = S.cov.copy()
    order = c.ch_names[::-1]
    return tfmn(noise_cov=c.pick_channels(order, ordered=True, verbose=False))


row(T, "window=True", "window")(lambda: tfmn(window=True))


@row(T, "weights: VolSourceEstimate (surface forward)", "weights")
def _():
    return tfmn(
        weights=S.mne.VolSourceEstimate(
            np.ones((S.n_pos, 1)), [np.arange(S.n_pos)], 0.0, 1.0
        )
    )


row(T, "pick_ori='normal', return_as_dipoles=True", "pick_ori")(
    lambda: tfmn(pick_ori="normal", return_as_dipoles=True)
)
for _w in (10.0, (0.15, 0.15), -0.01, (0.02,), "foo", np.nan, (0.02, np.inf)):
    row(T, f"window={_w!r}", "window")(lambda v=_w: tfmn(window=v))
row(T, "window=(0.0, 0.0)", expect="accept")(lambda: tfmn(window=(0.0, 0.0)))


def _w(fn):
    w = np.ones(S.n_pos)
    return fn(w)


row(T, "weights: wrong length (n_pos - 1)", "weights")(
    lambda: tfmn(weights=_w(lambda w: w[:-1]))
)
row(T, "weights: negative entry", "weights")(
    lambda: tfmn(weights=_w(lambda w: _set(w, 3, -1.0)))
)
row(T, "weights: all zero", "weights")(lambda: tfmn(weights=_w(lambda w: 0 * w)))
row(T, "weights: NaN entry", "weights")(
    lambda: tfmn(weights=_w(lambda w: _set(w, 3, np.nan)))
)
row(T, "weights: 2-D array", "weights")(
    lambda: tfmn(weights=_w(lambda w: np.stack([w, w], 1)))
)
row(T, "weights='dSPM' (a str)", "weights")(lambda: tfmn(weights="dSPM"))
row(T, "weights: complex array", "weights")(lambda: tfmn(weights=_w(lambda w: w + 1j)))
row(T, "weights: object array of str", "weights")(
    lambda: tfmn(weights=np.array(["a"] * S.n_pos, dtype=object))
)


def _stc(data=None, drop=0):
    vertices = [s["vertno"] for s in S.fwd["src"]]
    if drop:
        vertices = [vertices[0], vertices[1][:-drop]]
    n = sum(len(v) for v in vertices)
    if data is None:
        data = np.ones((n, 1))
    return S.mne.SourceEstimate(data, vertices, 0.0, 1.0, subject="sample")


row(T, "weights: SourceEstimate with wrong vertices", "weights")(
    lambda: tfmn(weights=_stc(np.ones((S.n_pos - 1, 1)), drop=1))
)
row(
    T,
    "weights: SourceEstimate all negative (abs is used)",
    expect="by design",
    note="As MNE: the absolute value of a source estimate is used (MNE computes "
    "weights from dSPM amplitudes), whereas a negative entry in an array raises.",
)(lambda: tfmn(weights=_stc(-np.ones((S.n_pos, 1)))))
row(T, "weights: SourceEstimate with a NaN", "weights")(
    lambda: tfmn(weights=_stc(_set(np.ones((S.n_pos, 1)), (2, 0), np.nan)))
)
row(T, "weights_min=-1", "weights_min")(lambda: tfmn(weights_min=-1))
row(T, "weights_min=2 (above the scaled maximum 1; drops every position)", "weights_min")(
    lambda: tfmn(weights=np.ones(S.n_pos), weights_min=2)
)
row(T, "weights_min='foo'", "weights_min")(lambda: tfmn(weights_min="foo"))
for _k, _v in (
    ("maxit", 0),
    ("maxit", -5),
    ("maxit", 1.5),
    ("maxit", "10"),
    ("tol", 0.0),
    ("tol", -1e-4),
    ("tol", np.nan),
    ("tol", "1e-4"),
    ("n_tfmxne_iter", 0),
    ("n_tfmxne_iter", 1.5),
    ("dgap_freq", 0),
    ("dgap_freq", "10"),
    ("dgap_freq", np.nan),
    ("pca", "yes"),
    ("debias", 1),
    ("return_residual", "yes"),
    ("return_as_dipoles", 1),
    ("verbose", "loud"),
):
    row(T, f"{_k}={_v!r}", _k)(lambda k=_k, v=_v: tfmn(**{k: v}))
row(T, "pca='white' (a string option of MNE's whitener)", "pca")(
    lambda: tfmn(pca="white")
)

# ---- solve ----------------------------------------------------------------
SV = "solve"


def solve(**kw):
    import tfmxne

    args = dict(BASE)
    ev = kw.pop("evoked", _NONE)
    args.update(kw)
    return tfmxne.solve(
        S.evoked() if ev is _NONE else ev, S.fwd, S.cov, verbose=False, **args
    )


row(SV, "baseline (valid call)", expect="accept")(lambda: solve())
row(SV, "dtype=np.float16", "dtype")(lambda: solve(dtype=np.float16))
row(SV, "dtype='foo'", "dtype")(lambda: solve(dtype="foo"))
row(SV, "dtype=None", "dtype")(lambda: solve(dtype=None))
row(SV, "alpha='aic' (unknown criterion)", "alpha")(lambda: solve(alpha="aic"))
row(SV, "return_residual='yes'", "return_residual")(lambda: solve(return_residual="yes"))
row(SV, "evoked=[] (empty batch)", "evoked")(lambda: solve(evoked=[]))
row(SV, "evoked=[evoked, None] (batch with a non-Evoked)", "evoked")(
    lambda: solve(evoked=[S.evoked(), None])
)
row(SV, "n_jobs='foo' (batch of two)", "n_jobs")(
    lambda: solve(evoked=[S.evoked(), S.evoked()], n_jobs="foo")
)


@row(SV, "batch of two evokeds with different sampling rates", "sampling rate")
def _():
    ev2 = S.evoked().resample(300.0, verbose=False)
    return solve(evoked=[S.evoked(), ev2])


@row(SV, "batch of two evokeds with different channels", "channels")
def _():
    return solve(evoked=[S.evoked(), S.evoked().pick("meg")])


# ---- tfmxne.path ----------------------------------------------------------
P = "tf_mixed_norm_path / solve_epochs"


def path(**kw):
    import tfmxne

    args = dict(
        alphas=[60.0, 40.0], l1_ratio=0.03, wsize=16, tstep=4, maxit=200, tol=1e-4
    )
    args.update(kw)
    return tfmxne.tf_mixed_norm_path(S.evoked(), S.fwd, S.cov, verbose=False, **args)


def _epochs(n=2, data=None):
    ev = S.evoked()
    d = np.repeat(ev.data[None], n, axis=0) if data is None else data
    return S.mne.EpochsArray(d, ev.info, tmin=ev.times[0], verbose=False)


def epochs(ep=None, **kw):
    import tfmxne

    args = dict(BASE)
    args.update(kw)
    ep = _epochs() if ep is None else None if ep is _NONE else ep
    return tfmxne.solve_epochs(ep, S.fwd, S.cov, verbose=False, **args)


row(P, "path: baseline (alphas=[60, 40])", expect="accept")(lambda: path())
for _a in ("foo", [], [150.0], [np.nan], [[40.0]], [0.0]):
    row(P, f"path: alphas={_a!r}", "alphas")(lambda a=_a: path(alphas=a))
row(P, "path: l1_ratio=2", "l1_ratio")(lambda: path(l1_ratio=2.0))
row(P, "path: unknown option foo=1", "foo")(lambda: path(foo=1))
row(P, "path: n_jobs=0", "n_jobs")(lambda: path(n_jobs=0))
row(P, "path: depth='foo'", "depth")(lambda: path(depth="foo"))
row(P, "path: debias='yes'", "debias")(lambda: path(debias="yes"))
row(P, "solve_epochs: baseline (2 epochs)", expect="accept")(lambda: epochs())
row(P, "solve_epochs: epochs=None", "epochs")(lambda: epochs(ep=_NONE))
row(P, "solve_epochs: an Evoked instead of Epochs", "epochs")(
    lambda: epochs(ep=S.evoked())
)
row(P, "solve_epochs: NaN in one epoch", "evoked")(
    lambda: epochs(
        ep=_epochs(data=_set(np.repeat(S.evoked().data[None], 2, 0), (1, 3, 5), np.nan))
    )
)
row(P, "solve_epochs: unknown option foo=1", "foo")(lambda: epochs(foo=1))
row(P, "solve_epochs: dtype='foo'", "dtype")(lambda: epochs(dtype="foo"))
row(P, "solve_epochs: return_residual='yes'", "return_residual")(
    lambda: epochs(return_residual="yes")
)


# ---- array solvers --------------------------------------------------------
A = "tf_mixed_norm_solver"
IT = "iterative_tf_mixed_norm_solver"


def arr(**kw):
    import tfmxne

    M = kw.pop("M", S.M)
    G = kw.pop("G", S.G)
    args = dict(alpha_space=2.0, alpha_time=0.5, wsize=16, tstep=4, verbose=False)
    args.update(kw)
    return tfmxne.tf_mixed_norm_solver(M, G, **args)


def itr(**kw):
    import tfmxne

    M = kw.pop("M", S.M)
    G = kw.pop("G", S.G)
    args = dict(
        alpha_space=2.0, alpha_time=0.5, n_tfmxne_iter=2, wsize=16, tstep=4, verbose=False
    )
    args.update(kw)
    return tfmxne.iterative_tf_mixed_norm_solver(M, G, **args)


row(A, "baseline (valid call)", expect="accept")(lambda: arr())
row(A, "M=None", "M")(lambda: arr(M=None))
row(A, "M='abc'", "M")(lambda: arr(M="abc"))
row(A, "M complex", "M")(lambda: arr(M=S.M + 1j))
row(A, "M object array", "M")(lambda: arr(M=S.M.astype(object)))
row(A, "M 1-D", "M")(lambda: arr(M=S.M[0]))
row(A, "M empty (10, 0)", "M")(lambda: arr(M=S.M[:, :0]))
row(
    A,
    "M with 1 time point",
    "M",
    expect="by design",
    note="As MNE's solver: a 1-sample problem is well posed on arrays (its STFT has "
    "one frame). tf_mixed_norm requires 2 time points (an evoked response).",
)(lambda: arr(M=S.M[:, :1]))
row(A, "M bool", "M")(lambda: arr(M=S.M > 0))
row(A, "M with NaN", "M")(lambda: arr(M=_set(S.M.copy(), (1, 2), np.nan)))
row(A, "G with Inf", "G")(lambda: arr(G=_set(S.G.copy(), (1, 2), np.inf)))
row(A, "G rows != M rows", "G")(lambda: arr(G=S.G[:9]))
row(A, "n_orient=5 (12 sources)", "n_orient")(lambda: arr(n_orient=5))
row(A, "n_orient=0", "n_orient")(lambda: arr(n_orient=0))
row(A, "n_orient=True", "n_orient")(lambda: arr(n_orient=True))
row(A, "n_orient=1.5", "n_orient")(lambda: arr(n_orient=1.5))
row(A, "G with 0 columns", "G")(lambda: arr(G=S.G[:, :0]))
row(A, "M integer dtype", expect="accept")(lambda: arr(M=np.round(S.M * 10).astype(int)))
row(A, "M all zero", expect="accept")(lambda: arr(M=0 * S.M))
for _k, _v in (
    ("alpha_space", -1.0),
    ("alpha_space", np.nan),
    ("alpha_time", "1"),
    ("alpha_space", None),
    ("maxit", 0),
    ("tol", 0.0),
    ("tol", -1.0),
    ("dgap_freq", 0),
    ("dgap_freq", 1.5),
    ("wsize", 63),
    ("tstep", 3),
    ("tstep", 16),
    ("debias", "yes"),
    ("return_gap", "yes"),
    ("debias", None),
):
    row(A, f"{_k}={_v!r}", _k)(lambda k=_k, v=_v: arr(**{k: v}))
row(A, "alpha_space=0.0, alpha_time=0.0", "alpha_space")(
    lambda: arr(alpha_space=0.0, alpha_time=0.0)
)
row(A, "alpha_space=1e6 (everything zero)", expect="accept")(lambda: arr(alpha_space=1e6))
row(A, "wsize=[16, 8], tstep=[4]", "tstep")(lambda: arr(wsize=[16, 8], tstep=[4]))
row(A, "wsize=np.array([16, 8]), tstep=np.array([4])", "tstep")(
    lambda: arr(wsize=np.array([16, 8]), tstep=np.array([4]))
)
row(
    A,
    "active_set_size='foo'",
    expect="by design",
    note="Ignored, as documented (MNE ignores it too).",
)(lambda: arr(active_set_size="foo"))
row(
    A,
    "wsize=64 (longer than the 32 samples)",
    expect="by design",
    note="As MNE: the frames overhang the data.",
)(lambda: arr(wsize=64))
row(A, "return_gap=np.True_", expect="accept")(lambda: arr(return_gap=np.True_))

row(IT, "baseline (valid call)", expect="accept")(lambda: itr())
for _k, _v in (
    ("n_tfmxne_iter", 0),
    ("n_tfmxne_iter", 1.5),
    ("n_tfmxne_iter", None),
    ("maxit", 0),
    ("tol", 0.0),
    ("debias", "yes"),
    ("debias", 1),
    ("n_orient", 5),
    ("alpha_time", -1.0),
    ("dgap_freq", "x"),
):
    row(IT, f"{_k}={_v!r}", _k)(lambda k=_k, v=_v: itr(**{k: v}))
row(IT, "M with 1 time point", "M", expect="by design", note="As tf_mixed_norm_solver.")(
    lambda: itr(M=S.M[:, :1])
)
row(IT, "G with 9 rows (M has 10)", "G")(lambda: itr(G=S.G[:9]))
row(IT, "M with NaN", "M")(lambda: itr(M=_set(S.M.copy(), (0, 0), np.nan)))

# ---- certificates ---------------------------------------------------------
C = "norm_epsilon_inf / dgap_l21l1"


def nei(**kw):
    import tfmxne

    args = dict(G=S.G, R=S.M, l1_ratio=0.2, n_orient=1, wsize=16, tstep=4)
    args.update(kw)
    return tfmxne.norm_epsilon_inf(**args)


def dgap(**kw):
    import tfmxne

    args = dict(
        M=S.M,
        G=S.G,
        Z=np.zeros((0, 9 * 8), complex),
        active_set=np.zeros(12, bool),
        alpha_space=2.0,
        alpha_time=0.5,
        wsize=16,
        tstep=4,
        n_orient=1,
    )
    args.update(kw)
    return tfmxne.dgap_l21l1(**args)


row(C, "norm_epsilon_inf: baseline", expect="accept")(lambda: nei())
row(C, "norm_epsilon_inf: l1_ratio=1.5", "l1_ratio")(lambda: nei(l1_ratio=1.5))
row(C, "norm_epsilon_inf: n_orient=5", "n_orient")(lambda: nei(n_orient=5))
row(C, "norm_epsilon_inf: n_orient=0", "n_orient")(lambda: nei(n_orient=0))
row(C, "norm_epsilon_inf: G rows != R rows", "G")(lambda: nei(G=S.G[:9]))
row(C, "norm_epsilon_inf: wsize=18", "wsize")(lambda: nei(wsize=18, tstep=2))
row(C, "dgap_l21l1: baseline (Z = 0)", expect="accept")(lambda: dgap())
row(C, "dgap_l21l1: M with NaN", "M")(lambda: dgap(M=S.M * np.nan))
row(C, "dgap_l21l1: alpha_space=-1", "alpha_space")(lambda: dgap(alpha_space=-1.0))
row(C, "dgap_l21l1: active_set of wrong length", "active_set")(
    lambda: dgap(active_set=np.zeros(11, bool))
)
row(C, "dgap_l21l1: Z rows != active sources", "Z")(
    lambda: dgap(Z=np.zeros((2, 9 * 8), complex))
)

# ---- stft / istft ---------------------------------------------------------
F = "stft / istft"


def stft(*a, **k):
    import tfmxne

    return tfmxne.stft(*a, verbose=False, **k)


def istft(*a, **k):
    import tfmxne

    return tfmxne.istft(*a, **k)


_X = np.zeros((2, 9, 8), complex)
row(F, "stft: baseline", expect="accept")(lambda: stft(S.M, 16, 4))
row(F, "stft: x complex", "x")(lambda: stft(S.M + 1j, 16, 4))
row(F, "stft: x='abc'", "x")(lambda: stft("abc", 16, 4))
row(F, "stft: x 3-D", "x")(lambda: stft(S.M[None], 16, 4))
row(
    F,
    "stft: x with NaN",
    "x",
    expect="by design",
    note="As MNE's stft: NaN propagates to the coefficients (a transform, not a solver).",
)(lambda: stft(_set(S.M.copy(), (0, 0), np.nan), 16, 4))
row(F, "stft: wsize=18", "wsize")(lambda: stft(S.M, 18, 2))
row(F, "stft: wsize=16, tstep=3", "tstep")(lambda: stft(S.M, 16, 3))
row(F, "stft: wsize='16'", "wsize")(lambda: stft(S.M, "16"))
row(F, "stft: wsize=[16, 8] (several windows)", "wsize")(
    lambda: stft(S.M, [16, 8], [4, 2])
)
row(F, "istft: baseline", expect="accept")(lambda: istft(_X, 4, 32))
row(F, "istft: X 1-D", "X")(lambda: istft(np.zeros(9, complex), 4))
row(F, "istft: X with an even number of rows", "X")(lambda: istft(np.zeros((2, 8, 8)), 4))
row(F, "istft: tstep=3", "tstep")(lambda: istft(_X, 3))
row(F, "istft: tstep=0", "tstep")(lambda: istft(_X, 0))
row(F, "istft: tstep=32", "tstep")(lambda: istft(_X, 32))
row(F, "istft: tstep='4'", "tstep")(lambda: istft(_X, "4"))
row(F, "istft: Tx=-1", "Tx")(lambda: istft(_X, 4, -1))
row(F, "istft: Tx='foo'", "Tx")(lambda: istft(_X, 4, "foo"))
row(F, "istft: X='abc'", "X")(lambda: istft("abc", 4))


# ---------------------------------------------------------------------------
# running and reporting
# ---------------------------------------------------------------------------
def _where(tb):
    """module.function of the frame that raised."""
    last = tb
    while last.tb_next is not None:
        last = last.tb_next
    frame = last.tb_frame
    mod = frame.f_globals.get("__name__", "?")
    func = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    return f"{mod}.{func}"


def _describe(value):
    if isinstance(value, tuple):
        return "tuple(" + ", ".join(type(v).__name__ for v in value) + ")"
    if isinstance(value, list):
        kinds = sorted({type(v).__name__ for v in value})
        return f"list of {len(value)}" + (f" {'/'.join(kinds)}" if kinds else "")
    return type(value).__name__


def _abridge(text, n=MAX_MSG):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _md(text):
    return text.replace("|", "\\|")


def run_row(fn):
    import mne

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mne.utils.use_log_level("error"):
                value = fn()
        except Exception as exc:
            cls = type(exc)
            name = (
                cls.__name__
                if cls.__module__ == "builtins"
                else f"{cls.__module__}.{cls.__name__}"
            )
            return dict(
                exc=name,
                exc_cls=cls,
                msg=str(exc),
                where=_where(exc.__traceback__),
                warnings=[],
            )
    warns = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning):
            continue
        warns.append(f"{w.category.__name__}: {_abridge(w.message, 100)}")
    return dict(
        exc=None,
        exc_cls=None,
        msg=f"returns {_describe(value)}",
        where="",
        warnings=warns,
    )


def _clear(param, out):
    return (
        out["exc_cls"] is not None
        and issubclass(out["exc_cls"], (ValueError, TypeError))
        and param is not None
        and param in out["msg"]
    )


def problems_of(results):
    bad = []
    for num, (section, label, param, expect, _note, _), out in results:
        if expect == "raise" and not _clear(param, out):
            bad.append((num, section, label, param, out))
        elif expect == "accept" and (out["exc"] is not None or out["warnings"]):
            bad.append((num, section, label, param, out))
    return bad


HEADER = """<!-- Authors: The tfmxne developers -->
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<!-- Generated by docs/hostile_inputs.py: edit the script, not this file. -->
# Hostile inputs: what each public entry point does with them

Every row below was **run** by `docs/hostile_inputs.py` (which writes this
file): the outcome column is the exception type actually raised (or "no
exception", with what was returned and the warnings emitted) and the message
column its text (whitespace collapsed, abridged at {max_msg} characters).
"raised in" is the module and function of the frame that raised.

Generated with tfmxne {tfmxne_version}, MNE {mne_version} and NumPy {numpy_version}. After
changing any validation, regenerate it from the repository root with the package
installed: `python docs/hostile_inputs.py` (`--sample DIR` if the shared sample data
are not in `../shared/data/sample`; under a minute).

Setup of the runs:

* `tf_mixed_norm` and `solve`: MNE `sample` data (`sample-ave.fif.gz`,
  condition `'Left Auditory'`, baseline `(None, 0)`, cropped to -0.05..0.15 s =
  {n_times} samples at 600.6 Hz; `sample-cov.fif`), the surface forward solution
  of the shared `sample-oct4-src.fif.gz` with `mindist=5.0` ({n_pos} positions,
  free orientation, {n_chan} channels), computed once and cached in a temporary
  folder; every call uses `alpha=40, l1_ratio=0.03, wsize=16, tstep=4,
  maxit=200, tol=1e-4` unless the row changes one of them.
* `tf_mixed_norm_path`: the same data and options with `alphas=[60, 40]`;
  `solve_epochs`: an `EpochsArray` of two copies of that evoked.
* array solvers: `M` (10, 32) and `G` (10, 12) standard normal (seed 0),
  `alpha_space=2, alpha_time=0.5, wsize=16, tstep=4` (and `n_tfmxne_iter=2`
  for the iterative solver) unless the row changes them; `norm_epsilon_inf`,
  `dgap_l21l1`, `stft` and `istft` on the same arrays.

Validation lives in `tfmxne._validation` (scalars, arrays, booleans,
`wsize`/`tstep`, `dgap_freq`), `tfmxne.solver._check_problem` (array solvers)
and `tfmxne.inverse._check_inputs` / `_check_depth_rank_loose` /
`_check_weights` (MNE objects). All of it runs before any heavy work (no
whitening, no forward preparation, no solve).

Not covered: the command line (`tfmxne.cli`).

A row is *clear* when it raises a `ValueError` or `TypeError` whose message
names the parameter of the row (for channel mismatches: the word "channels").
"""


def render(results, setup_info):
    out = [HEADER.format(max_msg=MAX_MSG, **setup_info)]
    bad = problems_of(results)
    out.append(
        "## Rows that do not give a clear `ValueError` / `TypeError` naming the "
        "parameter\n"
    )
    if not bad:
        out.append(
            "None: every row expected to fail raises a clear error, and every "
            "valid call runs without exception or warning.\n"
        )
    else:
        out.append(
            "| # | entry point | input | what happens |\n| --- | --- | --- | --- |"
        )
        for num, section, label, _param, o in bad:
            what = (
                f"`{o['exc']}`: {_abridge(o['msg'])} ({o['where']})"
                if o["exc"]
                else o["msg"] + ("; " + "; ".join(o["warnings"]) if o["warnings"] else "")
            )
            out.append(f"| {num} | {section} | {_md(label)} | {_md(what)} |")
        out.append("")
    out.append("## Inputs accepted (or reported) by design\n")
    out.append("Hostile-looking inputs with a behaviour kept on purpose, mostly MNE's:\n")
    out.append(
        "| # | entry point | input | outcome | why |\n| --- | --- | --- | --- | --- |"
    )
    for num, (section, label, _param, expect, note, _), o in results:
        if expect == "by design":
            oc = f"`{o['exc']}`" if o["exc"] else "no exception"
            out.append(f"| {num} | {section} | {_md(label)} | {oc} | {_md(note)} |")
    out.append("")
    out.append("""Note for test writers: in MNE 1.13, `evoked.copy().rename_channels(...)` also
renames the channels inside the projectors shared with the original evoked, which
then fails MNE's average-reference check (`EEG average reference (using a
projector) is mandatory`); build renamed evokeds from a fresh read.
""")
    out.append("## Full table\n")
    current = None
    for num, (section, label, _param, _expect, _note, _), o in results:
        if section != current:
            current = section
            out.append(f"\n### `{section}`\n")
            out.append("| # | input | outcome | message (abridged) | raised in |")
            out.append("| --- | --- | --- | --- | --- |")
        if o["exc"]:
            oc, msg, where = f"`{o['exc']}`", _abridge(o["msg"]), f"`{o['where']}`"
        else:
            oc, where = "no exception", ""
            msg = o["msg"] + (
                "; warns " + "; ".join(o["warnings"]) if o["warnings"] else ""
            )
        out.append(f"| {num} | {_md(label)} | {oc} | {_md(msg)} | {where} |")
    out.append("""
## C API (`tfmxne.cython_tfmxne`)

Not run by this script (it needs a compiled caller); checked in
`tests/test_cython_api.py`. The C entry points never raise (they are
`noexcept nogil`); they return a status code:

| input to `d_tf_mxne_solve` / `s_tf_mxne_solve` | status | result |
| --- | --- | --- |
| `NULL` plan / params / `M` / `G` / result, `n_chan < 1`, `n_sources < 1`, `n_orient < 1`, `n_sources % n_orient != 0` | `TFX_BAD_ARG` (3) | empty |
| plan of the other precision (float64 plan to an `s_` function or the reverse) | `TFX_BAD_ARG` | empty |
| negative, NaN or Inf alpha, or both alphas zero | `TFX_BAD_ARG` | empty |
| `maxit < 1`, `tol <= 0` or NaN, other options out of range | `TFX_BAD_ARG` | empty |
| `w_space` not finite and > 0, `w_time` not finite and >= 0, warm-start position out of range | `TFX_BAD_ARG` | empty |
| NaN / Inf anywhere in `M`, `G` or the warm start | `TFX_NONFINITE` (2) | empty |
| outer cap (`max_outer`, 100) or a stalled gap before `gap < tol` | `TFX_MAXIT` (1) | last iterate, `info.gap` its certificate, `info.stalled` |
| the progress callback returns non-zero | `TFX_INTERRUPTED` (4) | current iterate |
| `malloc` failure | `TFX_NO_MEMORY` (-1) | empty |

`tfx_plan_new` (with the GIL) raises `ValueError` naming `n_times`, `n_dicts`,
`wsize` or `tstep` (the same checks as the Python API) and `MemoryError`.
""")
    return "\n".join(out)


def main(argv=None):
    global S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", default=None)
    ap.add_argument(
        "--cache", default=str(Path(tempfile.gettempdir()) / "tfmxne-hostile")
    )
    ap.add_argument("--out", default=str(HERE / "hostile_inputs.md"))
    ap.add_argument(
        "--only", default=None, help="run only rows whose label contains this"
    )
    args = ap.parse_args(argv)
    S = Setup(_find_sample(args.sample), Path(args.cache))
    results = []
    for num, r in enumerate(ROWS, 1):
        if args.only and args.only not in f"{r[0]} {r[1]}":
            continue
        o = run_row(r[5])
        results.append((num, r, o))
        status = o["exc"] or "ok"
        print(
            f"{num:4d} {r[0]:32s} {r[1][:50]:50s} {status}: {_abridge(o['msg'], 90)}",
            flush=True,
        )
    bad = problems_of(results)
    print(f"{len(results)} rows, {len(bad)} without a clear outcome")
    if args.only:
        return 0
    import mne

    import tfmxne

    info = dict(
        n_times=len(S.evoked().times),
        n_pos=S.n_pos,
        n_chan=S.n_chan,
        tfmxne_version=tfmxne.__version__,
        mne_version=mne.__version__,
        numpy_version=np.__version__,
    )
    Path(args.out).write_text(render(results, info))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
