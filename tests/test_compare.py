# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne.compare_with_mne: MNE's TF-MxNE on the same problem, compared."""

import mne
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tfmxne

TOL = 1e-8
# no debiasing: MNE's (FISTA, 1000 iterations) stops far from its minimiser
KW = dict(alpha=40.0, l1_ratio=0.03, tol=TOL, debias=False)


def test_compare_with_mne(small_problem):
    ours = tfmxne.solve(*small_problem, return_residual=False, **KW)
    with threadpool_limits(1):  # MNE's many small products crawl oversubscribed
        cmp = tfmxne.compare_with_mne(*small_problem, ours, verbose=False, **KW)
    stc = cmp["mne_estimate"]
    assert isinstance(stc, mne.SourceEstimate)
    assert cmp["same_support"]
    for mine, theirs, common, a, b in zip(
        ours.estimate.vertices,
        stc.vertices,
        cmp["common"],
        cmp["only_tfmxne"],
        cmp["only_mne"],
    ):
        np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_array_equal(common, mine)
        assert len(a) == len(b) == 0
    rel = np.linalg.norm(ours.estimate.data - stc.data) / np.linalg.norm(stc.data)
    assert cmp["relative_difference"] == pytest.approx(rel, rel=1e-12)
    # both stop at a duality gap below tol ||M||^2: each estimate is within
    # about sqrt(tol) (relative) of the optimum (see test_inverse)
    assert rel < 2 * np.sqrt(TOL), rel
    assert cmp["tfmxne_time"] == ours.elapsed > 0 and cmp["mne_time"] > 0
    assert cmp["speedup"] == pytest.approx(cmp["mne_time"] / cmp["tfmxne_time"])


def test_compare_with_mne_different_supports(small_problem):
    """A result of another alpha: the supports differ and are listed."""
    other = tfmxne.solve(
        *small_problem, return_residual=False, **dict(KW, alpha=70.0, tol=1e-4)
    )
    with threadpool_limits(1):
        cmp = tfmxne.compare_with_mne(
            *small_problem, other, verbose=False, **dict(KW, tol=1e-4)
        )
    assert not cmp["same_support"] and cmp["relative_difference"] is None
    stc = cmp["mne_estimate"]
    for mine, theirs, common, a, b in zip(
        other.estimate.vertices,
        stc.vertices,
        cmp["common"],
        cmp["only_tfmxne"],
        cmp["only_mne"],
    ):
        assert set(common) | set(a) == set(mine) and set(common) | set(b) == set(theirs)
        assert not set(a) & set(theirs) and not set(b) & set(mine)


def test_compare_with_mne_bad_params(small_problem):
    with pytest.raises(ValueError, match="alpha must be given as a number"):
        tfmxne.compare_with_mne(*small_problem, alpha=None, l1_ratio=0.03)
    with pytest.raises(TypeError, match="return_residual"):
        tfmxne.compare_with_mne(
            *small_problem, alpha=40.0, l1_ratio=0.03, return_residual=True
        )
