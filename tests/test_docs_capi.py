# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The C API page's Cython module (docs/c_api/tfmxne_capi_example.pyx)
compiles against the installed tfmxne and gives the Python solver's answer."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tfmxne

EXAMPLE = (
    Path(__file__).resolve().parent.parent / "docs" / "c_api" / "tfmxne_capi_example.pyx"
)

SETUP = """
import sys
from Cython.Build import cythonize
from setuptools import Extension, setup

include = sys.argv.pop(1)
ext = Extension("tfmxne_capi_example", ["tfmxne_capi_example.pyx"],
                extra_compile_args=["-O0", "-g0"] if sys.platform != "win32" else [])
setup(name="tfmxne_capi_example", script_args=["build_ext", "--inplace", "-q"],
      ext_modules=cythonize([ext], include_path=[include], quiet=True))
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    if not EXAMPLE.exists():
        pytest.skip("not running from a source checkout")
    folder = tmp_path_factory.mktemp("capi_example")
    (folder / EXAMPLE.name).write_text(EXAMPLE.read_text())
    (folder / "setup.py").write_text(SETUP)
    include = str(Path(tfmxne.__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "setup.py", include],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode:
        if "command 'gcc' failed" in proc.stderr and "error:" not in proc.stderr:
            pytest.skip(f"no working C compiler: {proc.stderr[-300:]}")
        raise AssertionError(f"the docs' C API example does not build:\n{proc.stderr}")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("tfmxne_capi_example")
    finally:
        sys.path.remove(str(folder))


@pytest.mark.parametrize("n_orient", [1, 3])
def test_docs_capi_example_solves(example, n_orient):
    rng = np.random.default_rng(1)
    n_pos = 15
    G = rng.standard_normal((20, n_pos * n_orient))
    t = np.arange(64)
    S = np.stack([np.sin(2 * np.pi * t / 16), np.cos(2 * np.pi * t / 11)]) * np.hanning(
        64
    )
    M = G[:, [0, 7 * n_orient]] @ S + 0.05 * rng.standard_normal((20, 64))
    amax = tfmxne.norm_epsilon_inf(G, M, 0.2, n_orient, 16, 4)
    a_s, a_t = 0.3 * amax * 0.8, 0.3 * amax * 0.2
    with threadpool_limits(1, user_api="blas"):
        X, positions, gap, status = example.solve(
            np.ascontiguousarray(M), np.ascontiguousarray(G), a_s, a_t, 16, 4, n_orient
        )
        Xp, active, _, gap_p = tfmxne.tf_mixed_norm_solver(
            M,
            G,
            a_s,
            a_t,
            16,
            4,
            n_orient,
            tol=1e-8,
            debias=False,
            return_gap=True,
            verbose=False,
        )
    assert status == 0 and 0 <= gap < 1e-8
    np.testing.assert_array_equal(np.flatnonzero(active[::n_orient]), positions)
    assert {0, 7} <= set(positions.tolist())
    # both certified at tol 1e-8: the same optimum within rounding of the gap
    np.testing.assert_allclose(X, Xp, rtol=0, atol=1e-5 * np.abs(Xp).max())
