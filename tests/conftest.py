# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Shared fixtures: sample data, forward solutions and MNE references.

Forward solutions and MNE reference results are computed once per test session
and cached in a temporary folder (``TFMXNE_TEST_CACHE`` to reuse a folder across
runs), never in the repository.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest


def _find_sample():
    here = Path(__file__).resolve().parent
    for cand in (
        here.parent.parent / "shared" / "data" / "sample",
        here.parent / ".." / "shared" / "data" / "sample",
        Path(os.environ.get("TFMXNE_SAMPLE", "/nonexistent")),
    ):
        if (cand / "sample-ave.fif.gz").exists():
            return cand.resolve()
    return None


SAMPLE = _find_sample()


@pytest.fixture(scope="session")
def sample_path():
    if SAMPLE is None:
        pytest.skip("shared sample data not found (../shared/data/sample)")
    return SAMPLE


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    env = os.environ.get("TFMXNE_TEST_CACHE")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("tfmxne-cache")


@pytest.fixture(scope="session")
def evoked_full(sample_path):
    import mne

    return mne.read_evokeds(
        sample_path / "sample-ave.fif.gz",
        condition="Left Auditory",
        baseline=(None, 0),
        verbose=False,
    )


@pytest.fixture(scope="session")
def noise_cov(sample_path):
    import mne

    return mne.read_cov(sample_path / "sample-cov.fif", verbose=False)


def _make_fwd(sample_path, cache_dir, kind):
    import mne

    fname = Path(cache_dir) / f"{kind}-fwd.fif"
    if fname.exists():
        return mne.read_forward_solution(fname, verbose=False)
    info = mne.read_evokeds(
        sample_path / "sample-ave.fif.gz", condition=0, verbose=False
    ).info
    bem = str(sample_path / "sample-320-320-320-bem-sol.fif")
    trans = str(sample_path / "sample-trans.fif")
    if kind == "surf":
        src = mne.read_source_spaces(
            sample_path / "sample-oct4-src.fif.gz", verbose=False
        )
    elif kind.startswith("vol"):
        pos = float(kind[3:])
        src = mne.setup_volume_source_space(
            None, pos=pos, bem=bem, mri=None, verbose=False
        )
    elif kind == "mixed":
        surf = mne.read_source_spaces(
            sample_path / "sample-oct4-src.fif.gz", verbose=False
        )
        vol = mne.setup_volume_source_space(
            None, pos=25.0, bem=bem, mri=None, verbose=False
        )
        src = surf + vol
    elif kind == "discrete":
        vol = mne.setup_volume_source_space(
            None, pos=20.0, bem=bem, mri=None, verbose=False
        )
        rr = vol[0]["rr"][vol[0]["vertno"]]
        nn = np.tile([0.0, 0.0, 1.0], (len(rr), 1))
        src = mne.setup_volume_source_space(None, pos=dict(rr=rr, nn=nn), verbose=False)
    else:
        raise ValueError(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fwd = mne.make_forward_solution(info, trans, src, bem, mindist=5.0, verbose=False)
    mne.write_forward_solution(fname, fwd, overwrite=True, verbose=False)
    # the copy on disk (FIF stores the gain in float32), so that a run that computes
    # the forward and a run that reads it use the same gain: the cached MNE
    # references are shared between runs
    return mne.read_forward_solution(fname, verbose=False)


@pytest.fixture(scope="session")
def fwd_surf(sample_path, cache_dir):
    return _make_fwd(sample_path, cache_dir, "surf")


@pytest.fixture(scope="session")
def fwd_vol(sample_path, cache_dir):
    """A coarse grid (15 mm) so that MNE's reference takes seconds.

    Built without an MRI, as in the shared README, MNE makes it a 'discrete'
    source space (VolSourceEstimate output).
    """
    return _make_fwd(sample_path, cache_dir, "vol15")


@pytest.fixture(scope="session")
def fwd_mixed(sample_path, cache_dir):
    return _make_fwd(sample_path, cache_dir, "mixed")


@pytest.fixture(scope="session")
def fwd_discrete(sample_path, cache_dir):
    return _make_fwd(sample_path, cache_dir, "discrete")


@pytest.fixture(scope="session")
def fwd_vol7(sample_path, cache_dir):
    """The 7 mm grid of the benchmarks (4371 positions; minutes to compute)."""
    return _make_fwd(sample_path, cache_dir, "vol7.0")


@pytest.fixture(scope="session")
def small_problem(evoked_full, fwd_surf, noise_cov):
    """(evoked, forward, noise_cov) of a solve taking a fraction of a second:
    'Left Auditory' from 50 to 150 ms, every 4th surface position."""
    from _helpers import subset_forward

    return evoked_full.copy().crop(0.05, 0.15), subset_forward(fwd_surf, 4), noise_cov


@pytest.fixture(autouse=True)
def _empty_prepared_cache():
    """Each test starts without prepared forwards from the tests before it (the
    cache, ``tfmxne._cache``, is tested in test_cache.py): a test that counts or
    intercepts the preparation sees it run, whatever ran before."""
    from tfmxne import _cache

    _cache.clear_cache()
    yield
