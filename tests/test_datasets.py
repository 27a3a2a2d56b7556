# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The bundled sample data: contents, attribution and regeneration.

(That the build installs them: ``tests/test_wheel.py``; how long loading takes:
``benchmarks/bench_load.py``.)
"""

import os
from pathlib import Path

import numpy as np
import pytest

from tfmxne.datasets import sample

DATA_FILES = (
    "sample_audvis-ave.fif.gz",
    "sample_audvis-cov.fif.gz",
    "sample-oct4-fwd.fif.gz",
)
MAX_BYTES = 4_000_000  # all bundled files together


def shared_sample_dir():
    """The shared sample data next to the repository, or skip."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "sample")
    if not os.path.isfile(os.path.join(path, "sample-ave.fif.gz")):
        pytest.skip(f"shared sample data not found in {os.path.abspath(path)}")
    return Path(path).resolve()


def test_data_path_and_files():
    path = sample.data_path()
    assert path.is_dir()
    names = {p.name for p in path.iterdir()}
    assert set(DATA_FILES) <= names
    assert {"README.md", "LICENSE"} <= names
    f = sample.fnames()
    assert set(f) == {"evoked", "forward", "noise_cov"}
    assert all(p.is_file() and p.parent == path for p in f.values())
    total = sum((path / n).stat().st_size for n in DATA_FILES)
    assert total < MAX_BYTES, f"bundled data is {total / 1e6:.2f} MB"


def test_load_contents():
    import mne

    evoked, forward, noise_cov = sample.load()
    assert isinstance(evoked, mne.Evoked)
    assert isinstance(forward, mne.Forward)
    assert isinstance(noise_cov, mne.Covariance)
    assert evoked.comment == "Left Auditory"
    assert evoked.baseline is not None and evoked.baseline[1] == 0
    assert evoked.times[0] == pytest.approx(-0.1, abs=2e-3)
    assert evoked.times[-1] == pytest.approx(0.4, abs=2e-3)
    assert len(evoked.ch_names) == 366
    assert evoked.nave == 3
    # oct4: 258 positions per hemisphere, 254 of them more than 5 mm inside the
    # inner skull (mindist=5)
    assert forward["nsource"] == 508
    assert [len(s["vertno"]) for s in forward["src"]] == [254, 254]
    assert forward["src"].kind == "surface"
    assert forward["sol"]["data"].shape == (366, 3 * 508)
    assert forward["sol"]["row_names"] == evoked.ch_names
    assert noise_cov.ch_names == evoked.ch_names
    assert np.all(np.isfinite(evoked.data)) and np.abs(evoked.data).max() > 0


def test_forward_geometry():
    """Positions in metres on the cortex, and the surfaces the demo draws."""
    from mne.io.constants import FIFF
    from scipy.spatial import cKDTree

    _, forward, _ = sample.load()
    assert forward["coord_frame"] == FIFF.FIFFV_COORD_HEAD
    rr = forward["source_rr"]
    for s, hemi_sign in zip(forward["src"], (-1, 1)):
        assert s["coord_frame"] == FIFF.FIFFV_COORD_HEAD
        # the decimated cortical surface of the source space, in full
        assert s["np"] == len(s["rr"]) == 1026
        assert s["ntri"] == len(s["tris"]) == 2048
        assert s["tris"].min() == 0 and s["tris"].max() == s["np"] - 1
        # a closed surface: every edge is shared by exactly two triangles
        edges = np.sort(s["tris"][:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert np.all(counts == 2)
        # a hemisphere is 60-200 mm long in each direction and on its side
        extent = np.ptp(s["rr"], axis=0)
        assert np.all((extent > 0.06) & (extent < 0.2)), extent
        assert hemi_sign * np.median(s["rr"][:, 0]) > 0.02
    # the source positions are the used vertices of the surfaces
    np.testing.assert_array_equal(
        rr, np.concatenate([s["rr"][s["vertno"]] for s in forward["src"]])
    )
    # oct4 spacing: nearest neighbours about 1 cm apart, not 1000 times closer
    d, _ = cKDTree(rr).query(rr, k=2)
    assert 0.005 < np.median(d[:, 1]) < 0.015, np.median(d[:, 1])


def test_load_returns_fresh_objects():
    ev1, fwd1, _ = sample.load()
    ev1.crop(0, 0.1)
    ev2, fwd2, _ = sample.load()
    assert ev2.times[0] < 0
    assert fwd1 is not fwd2


def test_attribution():
    readme = (sample.data_path() / "README.md").read_text()
    assert "BSD-3-Clause" in readme and "MNE-Python" in readme
    lic = (sample.data_path() / "LICENSE").read_text()
    assert "MNE-Python authors" in lic and "Redistribution" in lic


@pytest.mark.slow
def test_make_sample_reproduces(tmp_path):
    """The regeneration script gives the bundled files (same data)."""
    import mne

    from tfmxne.datasets.make_sample import make_sample

    src = shared_sample_dir()
    fnames = make_sample(src, tmp_path)
    assert [f.name for f in fnames] == list(DATA_FILES)
    evoked, forward, noise_cov = sample.load()
    ev = mne.read_evokeds(fnames[0], condition=0, verbose=False)
    np.testing.assert_allclose(ev.data, evoked.data, rtol=1e-6, atol=0)
    assert ev.ch_names == evoked.ch_names
    cov = mne.read_cov(fnames[1], verbose=False)
    np.testing.assert_allclose(cov.data, noise_cov.data, rtol=1e-12)
    fwd = mne.read_forward_solution(fnames[2], verbose=False)
    np.testing.assert_allclose(
        fwd["sol"]["data"],
        forward["sol"]["data"],
        rtol=1e-5,
        atol=1e-6 * np.abs(forward["sol"]["data"]).max(),
    )
    np.testing.assert_allclose(fwd["source_rr"], forward["source_rr"])
    for s_new, s_old in zip(fwd["src"], forward["src"]):
        np.testing.assert_array_equal(s_new["vertno"], s_old["vertno"])
        np.testing.assert_array_equal(s_new["tris"], s_old["tris"])
        np.testing.assert_allclose(s_new["rr"], s_old["rr"])
