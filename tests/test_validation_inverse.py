# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Bad inputs of tf_mixed_norm / solve raise a clear error before any heavy work.

The preparation (``tfmxne._prepare.prepare``: whitening, depth prior, forward
conversion) is replaced by a sentinel that fails the test if reached (the cache
of prepared forwards is empty at the start of each test: conftest.py), so every
case below also proves that its error is raised by the cheap checks first.
"""

import re

import numpy as np
import pytest

import tfmxne
import tfmxne._prepare as tprepare


class _Reached(Exception):
    pass


@pytest.fixture()
def no_prepare(monkeypatch):
    def fail(*args, **kwargs):
        raise _Reached("the preparation was reached")

    monkeypatch.setattr(tprepare, "prepare", fail)


@pytest.fixture(scope="module")
def evoked(evoked_full):
    return evoked_full.copy().crop(-0.05, 0.15)


def _call(evoked, fwd, cov, **kw):
    args = dict(
        alpha=40.0, l1_ratio=0.03, wsize=16, tstep=4, maxit=50, tol=1e-4, verbose=False
    )
    args.update(kw)
    return tfmxne.tf_mixed_norm(evoked.copy(), fwd, cov, **args)


def _cov_with(cov, fn):
    c = cov.copy()
    c["data"] = fn(c["data"].copy())
    return c


@pytest.mark.parametrize(
    "depth",
    [
        "foo",
        [0.8],
        np.nan,
        np.inf,
        True,
        {"foo": 1},
        {"exp": "foo"},
        {"exp": np.nan},
        {"limit": -1.0},
        {"limit": 0.0},
    ],
)
def test_bad_depth(evoked, fwd_surf, noise_cov, no_prepare, depth):
    with pytest.raises(ValueError, match="depth") as info:
        _call(evoked, fwd_surf, noise_cov, depth=depth)
    assert repr(depth)[:4] in str(info.value)


@pytest.mark.parametrize(
    "rank",
    [{"meg": -1}, {"foo": 3}, {"meg": 2.5}, {"meg": True}, {"meg": "full"}, 5, "foo"],
)
def test_bad_rank(evoked, fwd_surf, noise_cov, no_prepare, rank):
    with pytest.raises(ValueError, match="rank") as info:
        _call(evoked, fwd_surf, noise_cov, rank=rank)
    assert repr(rank) in str(info.value)


def _corr2(d, i, j):
    d[i, j] = d[j, i] = 2 * np.sqrt(d[i, i] * d[j, j])
    return d


def _asym(d, i, j):
    d[i, j] += d[i, i]
    return d


def _zero(d, sel):
    d[sel, :] = 0
    d[:, sel] = 0
    return d


@pytest.mark.parametrize(
    "case, fn, pick, msg",
    [
        # channel 0 is a gradiometer (variance ~1e-23, 1e13 below EEG): an absolute
        # tolerance scaled on the largest entry would miss these two
        ("psd_grad", lambda d: _corr2(d, 0, 1), None, "positive semi-definite"),
        ("psd_eeg", lambda d: _corr2(d, -1, -2), None, "positive semi-definite"),
        ("sym_grad", lambda d: _asym(d, 0, 1), None, "not symmetric"),
        ("sym_eeg", lambda d: _asym(d, -1, -2), None, "not symmetric"),
        ("neg_var", lambda d: _set(d, (3, 3), -d[3, 3]), None, "negative variances"),
        ("all_zero", lambda d: 0 * d, None, "zero on all the 366 channels"),
        ("zero_used", lambda d: _zero(d, slice(306, None)), "eeg", "zero on all the 60"),
    ],
)
def test_bad_noise_cov(evoked, fwd_surf, noise_cov, no_prepare, case, fn, pick, msg):
    ev = evoked.copy().pick(pick) if pick else evoked
    with pytest.raises(ValueError, match="noise_cov") as info:
        _call(ev, fwd_surf, _cov_with(noise_cov, fn))
    assert msg in str(info.value)


def _set(a, idx, v):
    a[idx] = v
    return a


def test_valid_covariances_pass_the_checks(evoked, fwd_surf, noise_cov, no_prepare):
    """Valid covariances (full, diagonal, projected, a zero block) pass."""
    from mne.proj import make_projector

    zero_meg = _cov_with(noise_cov, lambda d: _zero(d, slice(0, 306)))
    # rank deficient (the evoked's SSP and average reference applied): eigenvalues
    # zero up to rounding, some of them slightly negative
    proj = make_projector(evoked.info["projs"], noise_cov.ch_names)[0]
    projected = _cov_with(noise_cov, lambda d: proj @ d @ proj.T)
    assert np.linalg.eigvalsh(projected.data).min() < 0
    for cov in (noise_cov, noise_cov.copy().as_diag(), zero_meg, projected):
        with pytest.raises(_Reached):
            _call(evoked, fwd_surf, cov)


def test_dropped_channels_are_logged(evoked, fwd_surf, noise_cov, no_prepare):
    import mne

    eeg = [c for c in noise_cov.ch_names if c.startswith("EEG")]
    cov = noise_cov.copy().pick_channels(eeg, verbose=False)
    with mne.utils.catch_logging() as log, pytest.raises(_Reached):
        _call(evoked, fwd_surf, cov, verbose=True)
    # the good MEG channels (in the forward, not in the covariance); stim and EOG
    # channels (in neither) are not counted
    n_meg = len(
        [
            c
            for c in evoked.ch_names
            if c.startswith("MEG") and c not in evoked.info["bads"]
        ]
    )
    assert f"    {n_meg} good channels of the evoked are in the forward" in log.getvalue()


def test_zero_evoked(evoked, fwd_surf, noise_cov, no_prepare):
    ev = evoked.copy()
    ev.data[:] = 0
    with pytest.raises(ValueError, match=r"evoked\.data is zero"):
        _call(ev, fwd_surf, noise_cov)


@pytest.mark.parametrize(
    "weights, exc, value",
    [("complex", ValueError, "complex"), ("str", TypeError, "dtype object")],
)
def test_bad_weights_dtype(evoked, fwd_surf, noise_cov, no_prepare, weights, exc, value):
    n = fwd_surf["nsource"]
    w = np.ones(n) + 1j if weights == "complex" else np.array(["a"] * n, dtype=object)
    with pytest.raises(exc, match="weights") as info:
        _call(evoked, fwd_surf, noise_cov, weights=w)
    assert value in str(info.value)
    # real arrays of any numeric dtype (and masks) stay accepted
    for ok in (np.ones(n, int), np.ones(n, np.float32), np.ones(n, bool), [1.0] * n):
        with pytest.raises(_Reached):
            _call(evoked, fwd_surf, noise_cov, weights=ok)


@pytest.mark.parametrize(
    "kw, exc, name",
    [
        (dict(dtype="foo"), ValueError, "dtype"),
        (dict(dtype=None), ValueError, "dtype"),
        (dict(dtype=np.float16), ValueError, "dtype"),
        (dict(return_residual="yes"), TypeError, "return_residual"),
    ],
)
def test_solve_options(evoked, fwd_surf, noise_cov, no_prepare, kw, exc, name):
    with pytest.raises(exc, match=name) as info:
        tfmxne.solve(
            evoked, fwd_surf, noise_cov, alpha=40.0, l1_ratio=0.03, verbose=False, **kw
        )
    assert str(list(kw.values())[0]) in str(info.value)
    for dtype in (np.float32, "float64"):
        with pytest.raises(_Reached):
            tfmxne.solve(
                evoked,
                fwd_surf,
                noise_cov,
                alpha=40.0,
                l1_ratio=0.03,
                dtype=dtype,
                verbose=False,
            )


@pytest.mark.parametrize("loose", ["auto", 0.5, 1.0, {"surface": 0.2}, True])
def test_fixed_forward_needs_loose_zero(evoked, fwd_surf, noise_cov, no_prepare, loose):
    import mne

    fixed = mne.convert_forward_solution(
        fwd_surf, surf_ori=True, force_fixed=True, verbose=False
    )
    with pytest.raises(ValueError, match="loose") as info:
        _call(evoked, fixed, noise_cov, loose=loose)
    assert repr(loose) in str(info.value)
    for ok in (0, 0.0, {"surface": 0.0}):
        with pytest.raises(_Reached):
            _call(evoked, fixed, noise_cov, loose=ok)


@pytest.mark.parametrize(
    "alpha, l1_ratio, exc, message",
    [
        (100.0, 0.03, ValueError, "alpha must be in [0, 100). Got alpha = 100.0"),
        (-1.0, 0.03, ValueError, "alpha must be in [0, 100). Got alpha = -1.0"),
        (0.0, 0.03, ValueError, "alpha must be > 0"),
        ("big", 0.03, ValueError, "None or one of 'signal-share'"),
        ([40.0], 0.03, TypeError, "alpha must be a real number, got [40.0]"),
        (40.0, 1.5, ValueError, "l1_ratio must be in range [0, 1]. Got l1_ratio = 1.5"),
        (40.0, -0.1, ValueError, "Got l1_ratio = -0.1"),
    ],
)
def test_bad_regularisation(
    evoked, fwd_surf, noise_cov, no_prepare, alpha, l1_ratio, exc, message
):
    with pytest.raises(exc, match=re.escape(message)):
        _call(evoked, fwd_surf, noise_cov, alpha=alpha, l1_ratio=l1_ratio)


N_POS = 508  # positions of the shared surface forward


@pytest.mark.parametrize(
    "kw, exc, message",
    [
        (
            dict(wsize=[16, 64], tstep=[4]),
            ValueError,
            "The same number of window sizes and steps must be passed",
        ),
        (
            dict(wsize=30),
            ValueError,
            "wsize must be a positive multiple of 4, got wsize=30",
        ),
        (dict(tstep=3), ValueError, "got tstep=3 for wsize=16"),
        (
            dict(n_tfmxne_iter=0),
            ValueError,
            "n_tfmxne_iter must be >= 1, got n_tfmxne_iter=0",
        ),
        (dict(dgap_freq=0), ValueError, "got dgap_freq=0"),
        (dict(maxit=0), ValueError, "maxit must be >= 1, got maxit=0"),
        (dict(tol=0.0), ValueError, "tol must be in (0.0, inf], got tol=0.0"),
        (dict(tol=-1e-4), ValueError, "got tol=-0.0001"),
        (dict(pick_ori="foo"), ValueError, "got pick_ori='foo'"),
        (
            dict(window=10.0),
            ValueError,
            "window=10.0 (6006 + 6006 samples) is longer than the data (121 samples)",
        ),
        (
            dict(weights=np.ones(3)),
            ValueError,
            f"per source position ({N_POS}), got shape (3,)",
        ),
        (dict(weights=-np.ones(N_POS)), ValueError, "got min(weights)=-1.0"),
        (dict(weights=np.zeros(N_POS)), ValueError, "weights are all zero"),
        (dict(loose=1.5), ValueError, "got loose=1.5"),
        (dict(loose="free"), ValueError, "got loose='free'"),
        (dict(pca="yes"), TypeError, "pca must be a bool, got pca='yes'"),
        (dict(debias=1), TypeError, "debias must be a bool, got debias=1"),
        (dict(weights_min=-1.0), ValueError, "weights_min must be in [0.0, inf]"),
    ],
)
def test_bad_options(evoked, fwd_surf, noise_cov, no_prepare, kw, exc, message):
    """Each option's check names the option and the value received."""
    with pytest.raises(exc, match=re.escape(message)):
        _call(evoked, fwd_surf, noise_cov, **kw)
