# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne.patch_mne(): MNE's TF-MxNE functions run tfmxne; unpatch_mne()
gives MNE's own back, exactly."""

import importlib
import logging

import mne
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import _compat, _patch

KW = dict(alpha=40.0, l1_ratio=0.03, tol=1e-8)
MISSING = object()


def _namespaces():
    """What each patched name is, in its module's own namespace."""
    return {
        (m, n): vars(importlib.import_module(m)).get(n, MISSING)
        for m, n in _patch._TARGETS
    }


@pytest.fixture(autouse=True)
def _always_unpatched():
    tfmxne.unpatch_mne()
    yield
    tfmxne.unpatch_mne()


def test_patch_and_unpatch_exactly(caplog):
    mne_func = mne.inverse_sparse.tf_mixed_norm  # MNE's, taken before the patch
    before = _namespaces()  # (after that access: a lazy loader may cache it)
    assert not tfmxne.mne_is_patched()
    with caplog.at_level(logging.INFO, logger="mne"):
        tfmxne.patch_mne()
        tfmxne.patch_mne()  # again: nothing, and no second message
    msgs = [r.getMessage() for r in caplog.records if "patched MNE" in r.getMessage()]
    assert len(msgs) == 1 and f"MNE {mne.__version__}" in msgs[0]
    assert tfmxne.mne_is_patched()
    # however it is imported after the patch
    from mne.inverse_sparse import tf_mixed_norm
    from mne.inverse_sparse.mxne_inverse import tf_mixed_norm as tf2
    from mne.inverse_sparse.mxne_optim import (
        iterative_tf_mixed_norm_solver,
        tf_mixed_norm_solver,
    )

    assert tf_mixed_norm is tf2 is tfmxne.tf_mixed_norm
    assert mne.inverse_sparse.tf_mixed_norm is tfmxne.tf_mixed_norm
    assert tf_mixed_norm_solver is tfmxne.tf_mixed_norm_solver
    assert iterative_tf_mixed_norm_solver is tfmxne.iterative_tf_mixed_norm_solver
    # where MNE's own tf_mixed_norm looks its solvers up when it runs
    inv = mne.inverse_sparse.mxne_inverse
    assert inv.tf_mixed_norm_solver is tfmxne.tf_mixed_norm_solver
    assert inv.iterative_tf_mixed_norm_solver is tfmxne.iterative_tf_mixed_norm_solver
    # the originals stay reachable (compare_with_mne runs them)
    assert _patch.original("mne.inverse_sparse", "tf_mixed_norm") is mne_func
    with _patch.unpatched():
        assert _namespaces() == before
    assert mne.inverse_sparse.tf_mixed_norm is tfmxne.tf_mixed_norm
    tfmxne.unpatch_mne()
    after = _namespaces()
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    assert mne.inverse_sparse.tf_mixed_norm is mne_func
    assert not tfmxne.mne_is_patched()
    tfmxne.unpatch_mne()  # again: nothing
    assert all(_namespaces()[k] is before[k] for k in before)


def test_patch_as_context_manager():
    mne_func = mne.inverse_sparse.tf_mixed_norm
    with tfmxne.patch_mne(verbose=False) as p:
        assert mne.inverse_sparse.tf_mixed_norm is tfmxne.tf_mixed_norm
        assert "active" in repr(p)
        with tfmxne.patch_mne():  # nested: the outer patch stays
            pass
        assert tfmxne.mne_is_patched()
    assert mne.inverse_sparse.tf_mixed_norm is mne_func
    tfmxne.patch_mne(verbose=False)
    with tfmxne.patch_mne():  # already patched outside: stays patched after
        pass
    assert tfmxne.mne_is_patched()


def test_patch_checks_the_installed_mne(monkeypatch):
    before = _namespaces()
    monkeypatch.setattr(_compat, "MNE_VERSION", (1, 9))
    with pytest.raises(RuntimeError, match=r"MNE 1\.10 or later"):
        tfmxne.patch_mne()
    monkeypatch.undo()

    def tf_mixed_norm(evoked, forward, noise_cov, new_option=1, verbose=None):
        """An MNE whose signature tfmxne does not follow."""

    inv = mne.inverse_sparse.mxne_inverse
    monkeypatch.setattr(inv, "tf_mixed_norm", tf_mixed_norm)
    with pytest.raises(RuntimeError, match="new_option"):
        tfmxne.patch_mne()
    monkeypatch.undo()
    assert not tfmxne.mne_is_patched()
    assert all(_namespaces()[k] is before[k] for k in before)


def test_patched_mne_returns_tfmxne_answer(small_problem):
    """Patched, MNE's tf_mixed_norm (imported after the patch) is tfmxne's
    answer, and MNE's original, held from before the patch, solves with
    tfmxne's solver (exact debiasing: tfmxne's answer to rounding); unpatched,
    MNE's own (its FISTA debiasing is far from exact, so the answers differ)."""
    mne_func = mne.inverse_sparse.tf_mixed_norm
    with threadpool_limits(1):  # one thread count: the same bits
        ours = tfmxne.tf_mixed_norm(*small_problem, verbose=False, **KW)
        with tfmxne.patch_mne(verbose=False):
            from mne.inverse_sparse import tf_mixed_norm

            patched = tf_mixed_norm(*small_problem, verbose=False, **KW)
            through_mne = mne_func(*small_problem, verbose=False, **KW)
        own = mne.inverse_sparse.tf_mixed_norm(*small_problem, verbose=False, **KW)
    np.testing.assert_array_equal(patched.data, ours.data)
    for stc in (through_mne, own):
        for a, b in zip(stc.vertices, ours.vertices):
            np.testing.assert_array_equal(a, b)

    def rel(a):
        return np.linalg.norm(a.data - ours.data) / np.linalg.norm(ours.data)

    # MNE's preparation equals tfmxne's to rounding (tests/test_prepare.py) and
    # both solves are certified at tol 1e-8: within about sqrt(tol) of each other
    assert rel(through_mne) < 2 * np.sqrt(KW["tol"])
    # MNE's own debiasing stops 7e-3 to 4e-2 from its minimiser (docs/differences.rst)
    assert rel(own) > 1e-3


def test_unpatch_removes_what_was_absent(monkeypatch):
    """A name the module did not hold before the patch (MNE's lazy loader
    provides ``mne.inverse_sparse.tf_mixed_norm`` on access) is removed again."""
    pkg = mne.inverse_sparse
    mne_func = pkg.tf_mixed_norm
    monkeypatch.delitem(vars(pkg), "tf_mixed_norm", raising=False)
    tfmxne.patch_mne(verbose=False)
    assert vars(pkg)["tf_mixed_norm"] is tfmxne.tf_mixed_norm
    tfmxne.unpatch_mne()
    assert "tf_mixed_norm" not in vars(pkg)
    assert pkg.tf_mixed_norm is mne_func  # the lazy loader's again
