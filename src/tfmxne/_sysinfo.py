# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The environment, for a bug report: MNE's ``sys_info`` and tfmxne's part."""

import os
import sys


def _blas_role(filepath):
    """Which package a BLAS library came with, from its path."""
    folders = filepath.replace("\\", "/").lower().split("/")[:-1]
    # (a wheel's libraries lie in numpy.libs/ or scipy.libs/, whatever their names)
    if any(f.startswith("scipy") for f in folders):
        return "SciPy's: the compiled core's products (scipy.linalg.cython_blas)"
    if any(f.startswith("numpy") for f in folders):
        return "NumPy's: the preparation's products"
    return "shared by NumPy and SciPy, or loaded by another package"


def sys_info(fid=None, show_paths=False):
    """Print the environment: MNE's :func:`mne.sys_info`, then tfmxne's.

    tfmxne's part gives its version, the threads one solve uses, the CPUs
    the process may run on, the BLAS libraries loaded (with their versions,
    CPU kernels and thread counts, and which of NumPy and SciPy each came
    with: the compiled core calls SciPy's) and the thread variables set in
    the environment. Include it in a bug report (``tfmxne sys-info`` prints
    the same).

    Parameters
    ----------
    fid : file-like | None
        Where to write; ``None``: standard output.
    show_paths : bool
        Also print where each module and library was loaded from.
    """
    from importlib.metadata import version

    import mne
    from threadpoolctl import threadpool_info

    from . import _parallel

    out = sys.stdout if fid is None else fid
    mne.sys_info(fid=out, show_paths=show_paths, check_version=False)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    lines = ["", "tfmxne:"]
    where = f" ({os.path.dirname(os.path.abspath(__file__))})" if show_paths else ""
    lines.append(f"├ version:        {version('tfmxne')}{where}")
    lines.append(
        f"├ solve threads:  {_parallel.solve_threads()} (the core's own threads: at "
        f"most BLAS's limit, {cpus} usable CPUs of {os.cpu_count()}, "
        f"{_parallel.MAX_SOLVE_THREADS}; one per solve in batches)"
    )
    env = [
        f"{k}={os.environ[k]}"
        for k in (
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_CORETYPE",
            "MNE_TQDM",
            "TFMXNE_NO_PROGRESS",
        )
        if k in os.environ
    ]
    lines.append(
        f"├ environment:    {', '.join(env) if env else '(no thread variable set)'}"
    )
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    lines.append(f"└ BLAS:           {len(libs)} loaded")
    for k, info in enumerate(libs):
        last = k == len(libs) - 1
        lead = "   └ " if last else "   ├ "
        more = "     " if last else "   │ "
        lines.append(
            f"{lead}{info.get('internal_api')} {info.get('version')}, "
            f"{info.get('num_threads')} threads, kernels "
            f"{info.get('architecture') or 'n/a'}, "
            f"threading {info.get('threading_layer') or 'n/a'}"
        )
        lines.append(f"{more}{_blas_role(info.get('filepath', ''))}")
        if show_paths:
            lines.append(f"{more}{info.get('filepath')}")
    print("\n".join(lines), file=out)
