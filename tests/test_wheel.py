# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Build the sdist and the wheel, install the wheel in a fresh venv, solve from it.

Slow (a few minutes: a full compile and a dependency install), so under the
``slow`` marker: ``pytest -m slow tests/test_wheel.py``.
"""

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import tfmxne

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_build_and_install_wheel(tmp_path):
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not running from a source checkout")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("tfmxne-*.whl"))
    sdists = list(dist.glob("tfmxne-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    # the public Cython API and its types (the downstream compile needs both)
    assert "tfmxne/cython_tfmxne.pxd" in names and "tfmxne/cython_types.pxd" in names
    assert any(
        n.startswith("tfmxne/_core/_engine") and n.endswith((".so", ".pyd"))
        for n in names
    )
    assert any(
        n.startswith("tfmxne/datasets/data/") and n.endswith(".fif.gz") for n in names
    )
    assert "tfmxne/datasets/data/README.md" in names
    # the code's licence (PEP 639 license-files) and the data's, in the metadata
    dist_info = f"tfmxne-{tfmxne.__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert f"{dist_info}/licenses/src/tfmxne/datasets/data/LICENSE" in names
    meta = zipfile.ZipFile(wheels[0]).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in meta.splitlines()
    assert (
        "BSD 3-Clause License"
        in zipfile.ZipFile(wheels[0]).read(f"{dist_info}/licenses/LICENSE").decode()
    )
    with tarfile.open(sdists[0]) as tf:
        snames = tf.getnames()
    for name in ("LICENSE", "CITATION.cff", "CONTRIBUTING.md"):
        assert f"tfmxne-{tfmxne.__version__}/{name}" in snames
    assert any(n.endswith("src/tfmxne/_core/_engine.pyx") for n in snames)
    assert any(n.endswith("src/tfmxne/_core/_solve.pxi") for n in snames)
    assert any(n.endswith("sample-oct4-fwd.fif.gz") for n in snames)
    # fresh venv, wheel installed from the file, then a solve and the bundled data
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    code = (
        "import numpy as np, tfmxne\n"
        "from tfmxne.datasets import sample\n"
        "ev, fwd, cov = sample.load()\n"
        "ev.crop(0.05, 0.15)\n"
        "stc = tfmxne.tf_mixed_norm(ev, fwd, cov, alpha=40, l1_ratio=0.03)\n"
        "assert stc.data.shape[1] == len(ev.times)\n"
        "rng = np.random.default_rng(0)\n"
        "G = rng.standard_normal((20, 30)); M = G[:, :2] @ rng.standard_normal((2, 32))\n"
        "X, a, E = tfmxne.tf_mixed_norm_solver(M, G, 5.0, 1.0, wsize=16, tstep=4)\n"
        "assert a.any()\n"
        "print('ok', tfmxne.__file__)\n"
    )
    out = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    last = out.stdout.strip().splitlines()[-1]  # MNE logs to stdout before it
    assert last.startswith("ok")
    assert str(venv) in last  # imported from the installed wheel


def test_version_has_one_source():
    """The version is typed once, in meson.build's project(); the installed
    metadata and ``tfmxne.__version__`` are both read from it."""
    from importlib.metadata import version

    assert tfmxne.__version__ == version("tfmxne")
    meson = ROOT / "meson.build"
    if not meson.exists():
        pytest.skip("not running from a source checkout")
    found = re.search(r"version:\s*'([^']+)'", meson.read_text())
    assert found and found.group(1) == tfmxne.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert not re.search(r"^version\s*=", pyproject, flags=re.MULTILINE)


def test_meson_installs_every_file():
    """Each Python module of the package and each bundled data file is in its
    folder's meson.build.

    (An editable install imports from the source tree and would not notice a
    file that the wheel leaves out; the slow build test above checks the
    wheel itself.)
    """
    src = ROOT / "src" / "tfmxne"
    if not (src / "meson.build").exists():
        pytest.skip("not running from a source checkout")
    folders = [d for d in [src, *src.iterdir()] if d.is_dir() and list(d.glob("*.py"))]
    assert {d.name for d in folders} >= {"tfmxne", "_core", "datasets"}
    for d in folders:
        text = (d / "meson.build").read_text()
        for py in d.glob("*.py"):
            assert f"'{py.name}'" in text, f"{py.relative_to(src)} not in meson.build"
    top = (src / "meson.build").read_text()
    for sub in ("_core", "datasets"):
        assert f"subdir('{sub}')" in top
    data = src / "datasets" / "data"
    listed = set(re.findall(r"'([^']+)'", (src / "datasets" / "meson.build").read_text()))
    for path in data.iterdir():
        assert f"data/{path.name}" in listed, (
            f"datasets/data/{path.name} not in meson.build"
        )
