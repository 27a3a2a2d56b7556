# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""``tfmxne sys-info``: MNE's system information and tfmxne's."""

import io

from threadpoolctl import threadpool_info

import tfmxne
from tfmxne import _parallel, cli
from tfmxne._sysinfo import _blas_role, sys_info


def test_sys_info_command(capsys):
    assert cli.main(["sys-info", "--show-paths"]) == 0
    out = capsys.readouterr().out
    mne_part, _, ours = out.partition("\ntfmxne:\n")
    assert "Platform" in mne_part and "mne" in mne_part  # MNE's sys_info first
    assert f"version:        {tfmxne.__version__}" in ours
    assert f"solve threads:  {_parallel.solve_threads()} " in ours
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and f"{len(blas)} loaded" in ours
    for info in blas:  # each library with its version, threads and path
        assert f"{info['internal_api']} {info['version']}, {info['num_threads']} " in ours
        assert info["filepath"] in ours
    # the core's BLAS is SciPy's: it is named as such
    assert "SciPy's: the compiled core's products" in ours


def test_sys_info_to_a_file_without_paths():
    out = io.StringIO()
    sys_info(fid=out)
    text = out.getvalue()
    assert "tfmxne:" in text
    assert not any(i["filepath"] in text for i in threadpool_info())


def test_blas_role_from_the_folder():
    sp = "/x/site-packages/scipy.libs/libscipy_openblas-1.so"
    np_ = "/x/site-packages/numpy.libs/libscipy_openblas64_-2.so"  # NumPy's, by folder
    assert _blas_role(sp).startswith("SciPy's")
    assert _blas_role(np_).startswith("NumPy's")
    assert _blas_role("/usr/lib/x86_64-linux-gnu/libopenblas.so.0").startswith("shared")
