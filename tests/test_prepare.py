# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne's gain preparation (one covariance preparation) against MNE's
``_prepare_gain`` (three): same gain, whitener, source weighting, channels and
mask over the options of ``tf_mixed_norm``."""

import copy

import mne
import numpy as np
import pytest
from mne.inverse_sparse.mxne_inverse import _prepare_gain

from tfmxne._prepare import prepare_gain

SPECTRAL = dict(exp=0.5, limit=10.0, combine_xyz="spectral")


@pytest.fixture(scope="module")
def info(evoked_full):
    return evoked_full.info


def _compare(fwd, info, cov, **kw):
    args = dict(
        pca=True, depth=0.8, loose="auto", rank=None, weights=None, weights_min=None
    )
    args.update(kw)
    fwd_before = copy.deepcopy(fwd["sol"]["data"])
    ref = _prepare_gain(fwd, info, cov, **args)
    out = prepare_gain(fwd, info, cov, **args)
    np.testing.assert_array_equal(fwd["sol"]["data"], fwd_before)  # input untouched
    for k, name in ((1, "gain"), (3, "whitener"), (4, "source_weighting")):
        np.testing.assert_allclose(
            out[k], ref[k], rtol=1e-12, atol=1e-14 * np.abs(ref[k]).max(), err_msg=name
        )
    assert out[2]["ch_names"] == ref[2]["ch_names"]
    assert (out[5] is None) == (ref[5] is None)
    if ref[5] is not None:
        np.testing.assert_array_equal(out[5], ref[5])
    assert out[0]["surf_ori"] == ref[0]["surf_ori"]
    assert mne.forward.is_fixed_orient(out[0]) == mne.forward.is_fixed_orient(ref[0])
    np.testing.assert_array_equal(out[0]["source_nn"], ref[0]["source_nn"])


@pytest.mark.parametrize("loose", ["auto", 0.0, 0.4, 1.0])
@pytest.mark.parametrize("depth", [0.8, None, SPECTRAL], ids=["d0.8", "dNone", "dspec"])
def test_prepare_gain_matches_mne(fwd_surf, info, noise_cov, loose, depth):
    _compare(fwd_surf, info, noise_cov, loose=loose, depth=depth)


@pytest.mark.parametrize(
    "kw",
    [
        dict(pca=False),
        dict(pca=False, loose=0.0, depth=SPECTRAL),
        dict(rank="full"),
        dict(rank=dict(meg=300, eeg=58)),
        dict(rank="info"),
        dict(depth=0.0),
        dict(depth=dict(exp=0.8, limit=2.0)),
        # options the one-preparation path leaves to MNE (must still be MNE's)
        dict(depth=dict(exp=0.8, limit_depth_chs=True)),
        dict(depth=dict(exp=0.8, allow_fixed_depth=False), loose=0.2),
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
@pytest.mark.filterwarnings("ignore:The largest eigenvalue:RuntimeWarning")
def test_prepare_gain_options(fwd_surf, info, noise_cov, kw):
    _compare(fwd_surf, info, noise_cov, **kw)


def test_prepare_gain_weights_bads_spaces(fwd_surf, fwd_mixed, fwd_vol, info, noise_cov):
    w = np.random.RandomState(0).rand(fwd_surf["nsource"])
    _compare(fwd_surf, info, noise_cov, weights=w, weights_min=0.3)
    _compare(fwd_mixed, info, noise_cov)
    _compare(fwd_vol, info, noise_cov, loose=1.0)
    info2 = info.copy()
    info2["bads"] = info["bads"] + ["MEG 0113", "EEG 010"]
    _compare(fwd_surf, info2, noise_cov)


def test_prepare_gain_prepares_covariance_once(fwd_surf, info, noise_cov, monkeypatch):
    """The point of the module: one rank estimate + eigendecomposition, not three."""
    import mne.cov

    calls = []
    orig = mne.cov._smart_eigh

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(mne.cov, "_smart_eigh", counting)
    prepare_gain(fwd_surf, info, noise_cov, True, 0.8, "auto", None)
    assert len(calls) == 1


def test_prepare_gain_errors(fwd_surf, info, noise_cov):
    """Same errors as MNE (free orientation asked of a fixed forward, negative depth)."""
    fixed = mne.convert_forward_solution(
        fwd_surf, force_fixed=True, use_cps=True, verbose=False
    )
    for args in (
        (fixed, info, noise_cov, True, 0.8, 1.0, None),
        (fwd_surf, info, noise_cov, True, -0.5, "auto", None),
    ):
        with pytest.raises(ValueError) as ref:
            _prepare_gain(*args)
        with pytest.raises(ValueError) as out:
            prepare_gain(*args)
        assert str(out.value) == str(ref.value)


@pytest.mark.parametrize("projs", ["active", "none", "mixed"])
def test_residual_matches_mne(fwd_surf, evoked_full, noise_cov, projs):
    """tfmxne's residual (one copy of the evoked) is MNE's ``_compute_residual``,
    including the projection of the fit by the evoked's active projectors."""
    from mne.inverse_sparse.mxne_inverse import _compute_residual

    from tfmxne._result import compute_residual as ours

    ev = evoked_full.copy().crop(0.05, 0.1)
    with ev.info._unlock():
        if projs == "none":
            ev.info["projs"] = []
        elif projs == "mixed":
            for p in ev.info["projs"][:2]:
                p["active"] = False
    fwd, _, info, _, _, _ = prepare_gain(
        fwd_surf, ev.info, noise_cov, True, 0.8, "auto", None
    )
    active = np.zeros(fwd["sol"]["data"].shape[1], bool)
    active[[3, 4, 5, 300, 301, 302]] = True
    X = 1e-8 * np.random.RandomState(0).randn(6, len(ev.times))
    ref = _compute_residual(fwd, ev, X, active, info)
    out = ours(fwd, ev, X, active, info)
    assert out.ch_names == ref.ch_names and out.info["projs"] == ref.info["projs"]
    np.testing.assert_allclose(
        out.data, ref.data, rtol=1e-12, atol=1e-12 * np.abs(ref.data).max()
    )
    assert not np.allclose(out.data, ev.copy().pick(info["ch_names"]).data)
