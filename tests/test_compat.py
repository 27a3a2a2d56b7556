# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""MNE's private names are reached through ``tfmxne._compat`` only, and each
call it makes binds to the installed MNE's signature."""

import ast
import inspect
from pathlib import Path

import pytest

import tfmxne
from tfmxne import _compat

PKG = Path(tfmxne.__file__).resolve().parent


def _private(part):
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_mne_uses(tree):
    """``(line, name)`` of every private MNE name a module imports or reads
    (dunder names such as ``mne.__version__`` are public)."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] == "mne"
        ):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if any(_private(part) for part in full.split(".")):
                    found.append((node.lineno, full))
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "mne" and any(_private(p) for p in parts):
                    found.append((node.lineno, a.name))
        elif isinstance(node, ast.Attribute):
            chain, cur = [node.attr], node.value
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "mne":
                chain.reverse()
                if any(_private(p) for p in chain):
                    found.append((node.lineno, "mne." + ".".join(chain)))
    return found


def test_scan_finds_private_names():
    src = (
        "from mne.cov import _smart_eigh\n"
        "from mne.time_frequency._stft import stft_norm2\n"
        "import mne.io._fiff\n"
        "x = mne.cov._smart_eigh\n"
        "from mne.cov import prepare_noise_cov\n"
        "y = mne.cov.prepare_noise_cov\n"
        "v = mne.__version__\n"
    )
    assert [n for _, n in _private_mne_uses(ast.parse(src))] == [
        "mne.cov._smart_eigh",
        "mne.time_frequency._stft.stft_norm2",
        "mne.io._fiff",
        "mne.cov._smart_eigh",
    ]


def test_private_mne_names_only_in_compat():
    offenders = {}
    for path in PKG.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        uses = _private_mne_uses(ast.parse(path.read_text(), str(path)))
        if uses:
            offenders[str(path.relative_to(PKG))] = uses
    assert not offenders, f"private MNE names outside _compat.py: {offenders}"


def test_version_check():
    assert _compat.parse_version("1.13.2") == (1, 13)
    assert _compat.parse_version("1.14.dev0") == (1, 14)
    assert _compat.parse_version("2.0") == (2, 0)
    with pytest.raises(ValueError, match="'abc'"):
        _compat.parse_version("abc")
    assert _compat.check_mne_version("1.10.0") == (1, 10)
    assert _compat.check_mne_version("1.20.1") == (1, 20)
    with pytest.raises(RuntimeError, match=r"MNE 1\.10 or later, found 1\.9\.2"):
        _compat.check_mne_version("1.9.2")
    # the installed MNE is one tfmxne supports (pip kept the declared floor)
    assert _compat.check_mne_version() == _compat.MNE_VERSION >= _compat.MIN_MNE


def _mne_functions():
    from mne.cov import prepare_noise_cov
    from mne.forward.forward import _select_orient_forward, _triage_loose
    from mne.inverse_sparse.mxne_inverse import (
        _make_dipoles_sparse,
        _make_sparse_stc,
        _prepare_gain,
        _prepare_weights,
    )
    from mne.minimum_norm.inverse import _check_reference
    from mne.source_estimate import _make_stc
    from mne.utils.check import _check_depth

    return dict(
        prepare_gain=(_prepare_gain, (1,) * 9, {}),
        prepare_weights=(_prepare_weights, (1,) * 5, {}),
        select_orient_forward=(_select_orient_forward, (1,) * 3, dict(copy=False)),
        triage_loose=(_triage_loose, (1, 1, "auto"), {}),
        check_depth=(_check_depth, (1, "depth_sparse"), {}),
        prepare_noise_cov=(
            prepare_noise_cov,
            (1, 1, 1),
            dict(rank=1, on_rank_mismatch="warn", verbose=None),
        ),
        check_reference=(_check_reference, (1,), {}),
        make_stc=(_make_stc, (1,) * 6, {}),
        make_sparse_stc=(_make_sparse_stc, (1,) * 5, dict(pick_ori=None)),
        make_dipoles_sparse=(_make_dipoles_sparse, (1,) * 7, {}),
    )


@pytest.mark.parametrize("shim", sorted(_mne_functions()))
def test_shim_calls_bind_to_installed_mne(shim):
    """Each shim's call (its arguments, positional or keyword) is one the
    installed MNE's function accepts: a renamed or reordered parameter in a new
    MNE fails here, by name, before it fails deep inside a solve."""
    func, args, kwargs = _mne_functions()[shim]
    assert hasattr(_compat, shim)
    inspect.signature(func).bind(*args, **kwargs)
