# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne.compare_with_mne: MNE's TF-MxNE on the same problem, compared."""

import mne
import numpy as np
import pytest
from _helpers import objectives_ref
from threadpoolctl import threadpool_limits

import tfmxne
from tfmxne import _compat

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
    # on MNE's problem (its gain equals tfmxne's to rounding) tfmxne's answer
    # has the gap tfmxne certified; both are below tol ||M||^2 (MNE's stop)
    p = cmp["objective"]["tfmxne"]
    assert cmp["duality_gap"]["tfmxne"] == pytest.approx(ours.gap, abs=1e-10 * p)
    assert cmp["closer"] in ("tfmxne", "mne", "tie")
    assert (
        "closer to the optimum" in cmp["summary"] or "same to rounding" in cmp["summary"]
    )


def test_compare_with_mne_different_supports(small_problem):
    """A result of another alpha: the supports differ and are listed."""
    other = tfmxne.solve(
        *small_problem, return_residual=False, **dict(KW, alpha=70.0, tol=1e-4)
    )
    with threadpool_limits(1), _compat.record_mne_tf_solves() as records:
        cmp = tfmxne.compare_with_mne(
            *small_problem, other, verbose=False, **dict(KW, tol=1e-4)
        )
    assert not cmp["same_support"]
    # the difference over the union of the sources, a source one lacks as zero
    stc, est = cmp["mne_estimate"], other.estimate
    rows = {}
    for k, e in enumerate((est, stc)):
        i = 0
        for s, verts in enumerate(e.vertices):
            for v in verts:
                rows.setdefault((s, v), [np.zeros(e.data.shape[1])] * 2)[k] = e.data[i]
                i += 1
    num = sum(np.sum((a - b) ** 2) for a, b in rows.values())
    den = sum(np.sum(b**2) for _, b in rows.values())
    assert cmp["relative_difference"] == pytest.approx(np.sqrt(num / den), rel=1e-12)
    # both answers measured on MNE's problem, checked by an independent
    # NumPy objective and dual point
    (rec,) = records
    args = (rec["alpha_space"], rec["alpha_time"], 64, 4, rec["n_orient"])
    for who, Z, act in (
        ("mne", rec["Z"], rec["active_set"]),
        ("tfmxne", other.tf_coefs, other.active_set),
    ):
        p_ref, d_ref, _ = objectives_ref(rec["M"], rec["G"], Z, act, *args)
        assert cmp["objective"][who] == pytest.approx(p_ref, rel=1e-10)
        assert cmp["duality_gap"][who] == pytest.approx(p_ref - d_ref, abs=1e-9 * p_ref)
        assert cmp["duality_gap"][who] >= -1e-9 * p_ref
        assert -1e-9 * p_ref <= cmp["suboptimality"][who] <= cmp["duality_gap"][who]
    # tfmxne at alpha 70 answers another problem: MNE's answer to this one is
    # closer to its optimum, and the report says so
    lower = min(cmp["objective"], key=cmp["objective"].get)
    assert cmp["closer"] == lower == "mne"
    assert cmp["objective_difference"] == pytest.approx(
        cmp["objective"]["mne"] - cmp["objective"]["tfmxne"]
    )
    assert "mne is closer to the optimum" in cmp["summary"]
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
