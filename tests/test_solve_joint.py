# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne.solve_joint on MNE objects: the joint problem of several conditions
(one support shared by all) is the problem its docstring writes.

Complements the array-level tests of the core (``test_joint.py``, whose
independent NumPy reference of the joint objective and duality gap certifies
the answers here too): one condition is ``tfmxne.solve`` bit for bit; two
identical conditions are the single problem with alpha_space / sqrt(2) (alphas
converted from percent through each problem's alpha_max); each condition is
whitened at the noise level of its nave; bad input is refused with an error
naming ``evokeds`` and the condition.
"""

import dataclasses

import mne
import numpy as np
import pytest
from test_joint import joint_ref

import tfmxne
from tfmxne import _options, _problem, joint
from tfmxne._parallel import call_scope


@pytest.fixture(scope="module")
def conditions(small_problem, sample_path):
    """'Left Auditory' and 'Left visual' on the small problem's window and
    forward (naves 3 and 6)."""
    ev_a, fwd, cov = small_problem
    ev_v = mne.read_evokeds(
        sample_path / "sample-ave.fif.gz",
        condition="Left visual",
        baseline=(None, 0),
        verbose=False,
    ).crop(ev_a.times[0], ev_a.times[-1])
    return ev_a, ev_v, fwd, cov


def _same(a, b):
    """Two results of the same computation: every array and number equal."""
    for name in ("X", "active_set", "tf_coefs", "times", "alpha_max", "alpha"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("gap", "tol", "converged", "n_iter", "objective", "l1_ratio"):
        assert getattr(a, name) == getattr(b, name), name
    untimed = [
        dataclasses.replace(o, time=None, certify_seconds=None) for o in a.gap_history
    ]
    assert untimed == [
        dataclasses.replace(o, time=None, certify_seconds=None) for o in b.gap_history
    ]
    assert np.array_equal(a.estimate.data, b.estimate.data)
    for va, vb in zip(a.estimate.vertices, b.estimate.vertices):
        assert np.array_equal(va, vb)
    assert np.array_equal(a.residual.data, b.residual.data)
    assert a.explained_variance == b.explained_variance


@pytest.mark.parametrize(
    "kw",
    [
        dict(alpha=40.0, l1_ratio=0.03),
        dict(
            alpha=30.0,
            l1_ratio=0.05,
            wsize=[16, 64],
            tstep=[4, 4],
            n_tfmxne_iter=2,
            pick_ori="vector",
        ),
        dict(alpha=None, l1_ratio=0.03),
    ],
    ids=["plain", "multidict-irtf-vector", "auto"],
)
def test_one_condition_is_solve(small_problem, kw):
    """One condition: the joint machinery (joint frame, split into conditions)
    gives tfmxne.solve's result, bit for bit."""
    evoked, fwd, cov = small_problem
    single = tfmxne.solve(evoked, fwd, cov, **kw)
    (one,) = tfmxne.solve_joint([evoked], fwd, cov, **kw)
    _same(single, one)
    if kw["alpha"] is None:
        _same_selection(single.selection, one.selection)


def test_two_identical_conditions(small_problem):
    """Two identical conditions: the joint optimum is Z_1 = Z_2 = W, W the
    single problem's at alpha_space / sqrt(2) and the same alpha_time (absolute
    units; n_tfmxne_iter=1); the joint gap at (W, W) is twice the single gap
    at W, and the certified objectives agree: |P_j - 2 P_s| <= gap_j + 2 gap_s."""
    evoked, fwd, cov = small_problem
    alpha, rho = 30.0, 0.1
    kw = dict(tol=1e-8, debias=False, return_residual=False)
    jr = tfmxne.solve_joint([evoked, evoked], fwd, cov, alpha=alpha, l1_ratio=rho, **kw)
    # the joint alphas in absolute (whitened) units, then the single problem's
    amax_j = jr[0].alpha_max / 100.0
    a_s, a_t = alpha * amax_j * (1 - rho), alpha * amax_j * rho
    a_s1 = a_s / np.sqrt(2)
    rho1 = a_t / (a_s1 + a_t)
    opts = _options.check_options({})
    with call_scope():  # (prepared as in a call: the same bits)
        fp = _problem.prepare_forward(evoked.info, fwd, cov, opts)
        p1 = _problem.prepare(fp, evoked, opts, rho1)
        conds = joint.prepare_conditions(fp, [evoked] * 2, opts)
        jp = joint.prepare_joint(fp, conds, opts, rho)
    amax_1 = p1.alpha_max  # (alpha_max / 100)
    alpha1 = (a_s1 + a_t) / amax_1
    single = tfmxne.solve(evoked, fwd, cov, alpha=alpha1, l1_ratio=rho1, **kw)
    np.testing.assert_array_equal(jr[0].active_set, single.active_set)
    np.testing.assert_array_equal(jr[1].active_set, single.active_set)
    assert jr[0].active_set.any()
    # certified objectives (the primal value does not depend on the scaling of
    # the gain by alpha_max): P_j* = 2 P_s*
    p_j, p_s = jr[0]._res.p_obj, single._res.p_obj
    assert abs(p_j - 2 * p_s) <= jr[0].gap + 2 * single.gap + 1e-12 * p_j
    # the fits (the data term is strongly convex in G X): sum_c ||G (X_c - W*)||^2
    # <= 2 gap_j and ||G (W - W*)||^2 <= 2 gap_s, W* the single optimum
    fit_s = single._gain_active @ single.X
    fits = [r._gain_active @ r.X for r in jr]
    tiny = 1e-12 * np.linalg.norm(fit_s)
    assert np.linalg.norm(fits[0] - fits[1]) <= 2 * np.sqrt(jr[0].gap) + tiny
    for fit in fits:
        bound = np.sqrt(2 * jr[0].gap) + np.sqrt(2 * single.gap)
        assert np.linalg.norm(fit - fit_s) <= bound + tiny
    # the gaps at the same point (W, W), by the independent reference
    pos = single._res.positions
    W = single.tf_coefs
    wsz, tsp, n_or = opts.wsize, opts.tstep, p1.n_orient
    # in each problem's own units (its gain scaled by its alpha_max)
    pj, dj = joint_ref([jp.M[:, : p1.M.shape[1]]] * 2, jp.gain, np.hstack([W, W])
                       * (amax_j / amax_1), pos, alpha * (1 - rho), alpha * rho,
                       wsz, tsp, n_or)  # fmt: skip
    ps, ds = joint_ref([p1.M], p1.gain, W, pos, alpha1 * (1 - rho1), alpha1 * rho1,
                       wsz, tsp, n_or)  # fmt: skip
    assert ps == pytest.approx(p_s, rel=1e-9)
    assert pj == pytest.approx(2 * ps, rel=1e-9)
    assert pj - dj == pytest.approx(2 * (ps - ds), rel=1e-6, abs=1e-9 * pj)


def test_naves_scale_the_conditions(conditions):
    """Each condition is whitened at the noise level of its own nave: a
    condition of nave 1 with twice the data of one of nave 4 is the same
    condition of the joint problem (its data scaled by sqrt(1/4)), and its time
    courses come back twice as large; the other condition is unchanged. Scaling
    by powers of two is exact: equal to the bit."""
    ev_a, ev_v, fwd, cov = conditions
    a, v = ev_a.copy(), ev_v.copy()
    a.nave, v.nave = 4, 4
    v2 = v.copy()
    v2.data *= 2.0
    v2.nave = 1
    kw = dict(alpha=40.0, l1_ratio=0.03)
    r4 = tfmxne.solve_joint([a, v], fwd, cov, **kw)
    r1 = tfmxne.solve_joint([a, v2], fwd, cov, **kw)
    assert np.array_equal(r4[0].X, r1[0].X)
    assert np.array_equal(2.0 * r4[1].X, r1[1].X)
    assert r4[0].gap == r1[0].gap
    # without the scaling by nave it would be another problem
    v1 = v.copy()
    v1.nave = 1
    other = tfmxne.solve_joint([a, v1], fwd, cov, **kw)
    assert not np.array_equal(other[0].X, r4[0].X)


def test_joint_answer_certified_and_split(conditions):
    """Two real conditions, multi-dictionary: the answer is certified by the
    independent reference on the joint problem; each result has the shared
    support, its own time courses, residual (data minus its fit), dipoles and
    STFT coefficients; the certificate is the joint one in every result."""
    ev_a, ev_v, fwd, cov = conditions
    kw = dict(alpha=35.0, l1_ratio=0.05, wsize=[16, 64], tstep=[4, 4], tol=1e-8)
    res = tfmxne.solve_joint([ev_a, ev_v], fwd, cov, debias=False, **kw)
    ra, rv = res
    assert ra.active_set.any()
    np.testing.assert_array_equal(ra.active_set, rv.active_set)
    for va, vv in zip(ra.estimate.vertices, rv.estimate.vertices):
        np.testing.assert_array_equal(va, vv)
    assert not np.allclose(ra.X, rv.X)
    for name in ("gap", "tol", "objective", "alpha_max", "converged"):
        assert getattr(ra, name) == getattr(rv, name), name
    assert ra.gap <= ra.tol
    # the independent reference on the prepared joint problem
    opts = _options.check_options(dict(wsize=[16, 64], tstep=[4, 4]))
    with call_scope():  # (prepared as in a call: the same bits)
        fp = _problem.prepare_forward(ev_a.info, fwd, cov, opts)
        conds = joint.prepare_conditions(fp, [ev_a, ev_v], opts)
        jp = joint.prepare_joint(fp, conds, opts, 0.05)
    assert jp.alpha_max * 100 == ra.alpha_max
    n_t = ev_a.data.shape[1]
    Ms = [jp.M[:, :n_t], jp.M[:, n_t:]]
    Z = np.hstack([ra.tf_coefs * conds[0].scale, rv.tf_coefs * conds[1].scale])
    p_ref, d_ref = joint_ref(Ms, jp.gain, Z, ra._res.positions, 35.0 * 0.95,
                             35.0 * 0.05, [16, 64], [4, 4], jp.n_orient)  # fmt: skip
    assert p_ref == pytest.approx(ra._res.p_obj, rel=1e-9)
    assert p_ref - d_ref <= ra.tol * (1 + 1e-9)
    assert p_ref - d_ref >= -1e-9 * p_ref
    # each condition: its own residual is its data minus its fit
    for r, ev in ((ra, ev_a), (rv, ev_v)):
        assert len(r.dipoles()) == r.estimate.data.shape[0]
        fit = r._gain_active @ r.X
        # (the whitened gain and the sensor-space fit differ by rounding through
        # a whitener whose channel types differ by 1e6 in scale)
        diff = r._M - fit - r._whitener @ r.residual.data
        assert np.linalg.norm(diff) <= 1e-8 * np.linalg.norm(r._M)
        assert r.residual.comment == ev.comment
        assert r.tf_coefs.shape[0] == r.X.shape[0]


def test_joint_auto_alpha(conditions):
    """alpha=None on the joint problem: the criterion's noise energy is the sum
    of the conditions' (each at the joint noise level, that of the largest
    nave); one selection, in every result."""
    ev_a, ev_v, fwd, cov = conditions
    ra, rv = tfmxne.solve_joint([ev_a, ev_v], fwd, cov, l1_ratio=0.03)
    sel = ra.selection
    assert sel["criterion"] == "signal-share"
    _same_selection(sel, rv.selection)
    assert sel["alpha"] == ra.alpha == rv.alpha and ra.active_set.any()
    n_white = ra._M.shape[0]
    nave_ref = max(ev_a.nave, ev_v.nave)
    expected = 2 * n_white * np.sum(ra._taper**2) / nave_ref
    assert sel["noise_energy"] == pytest.approx(expected, rel=1e-12)
    assert sel["data_energy"] == pytest.approx(
        sum(np.sum(c._M**2) * min(c_nave / nave_ref, 1.0) for c, c_nave in
            ((ra, ev_a.nave), (rv, ev_v.nave))), rel=1e-12)  # fmt: skip


def test_joint_debias_per_condition(conditions):
    """Debiasing: one scale per position and condition, each the exact
    bound-constrained least squares of its own condition (NumPy reference)."""
    from _helpers import debias_ref

    ev_a, ev_v, fwd, cov = conditions
    kw = dict(alpha=40.0, l1_ratio=0.03)
    deb = tfmxne.solve_joint([ev_a, ev_v], fwd, cov, **kw)
    und = tfmxne.solve_joint([ev_a, ev_v], fwd, cov, debias=False, **kw)
    ds = []
    for r, u in zip(deb, und):
        np.testing.assert_array_equal(r.active_set, u.active_set)
        Xd = r.X.reshape(-1, 3, r.X.shape[1])
        Xu = u.X.reshape(-1, 3, u.X.shape[1])
        d = np.linalg.norm(Xd, axis=(1, 2)) / np.linalg.norm(Xu, axis=(1, 2))
        np.testing.assert_allclose(Xd, d[:, None, None] * Xu, rtol=1e-12, atol=0)
        ref = debias_ref(u._M, u._gain_active, u.X, 3)[::3]
        np.testing.assert_allclose(d, ref, rtol=1e-6)
        assert np.all(d >= 1 - 1e-12)
        ds.append(d)
    assert not np.allclose(ds[0], ds[1])


def _same_selection(a, b):
    assert a.keys() == b.keys()
    for key, val in a.items():
        if isinstance(val, np.ndarray):
            assert np.array_equal(val, b[key], equal_nan=True), key
        else:
            assert val == b[key], key


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
def _with_proj(ev):
    ev = ev.copy()
    vec = np.zeros(len(ev.ch_names))
    vec[[i for i, c in enumerate(ev.ch_names) if c.startswith("MEG")][:3]] = 1.0
    proj = mne.Projection(
        data=dict(nrow=1, ncol=len(vec), row_names=None, col_names=ev.ch_names,
                  data=vec[None] / np.linalg.norm(vec)),
        desc="extra", kind=1, active=False, explained_var=None,
    )  # fmt: skip
    ev.add_proj([proj])
    return ev


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda ev: ev.copy().drop_channels(ev.ch_names[:2]), "channels"),
        (lambda ev: ev.copy().reorder_channels(ev.ch_names[::-1]), "another order"),
        (lambda ev: _with_bads(ev), "bads"),
        (_with_proj, "projections"),
        (lambda ev: ev.copy().crop(ev.times[1], None), "times"),
        (lambda ev: _with_sfreq(ev), "sampled at"),
        (lambda ev: _with_nan(ev), "NaN"),
    ],
    ids=["channels", "order", "bads", "projs", "times", "sfreq", "nan"],
)
def test_bad_conditions(conditions, change, match):
    ev_a, ev_v, fwd, cov = conditions
    bad = change(ev_v)
    bad.comment = "the bad one"
    with pytest.raises(ValueError, match=match) as e:
        tfmxne.solve_joint([ev_a, bad], fwd, cov, alpha=40.0, l1_ratio=0.03)
    msg = str(e.value)
    assert "evokeds[1] ('the bad one')" in msg
    if match != "NaN":
        assert "evokeds: " in msg and f"evokeds[0] ({ev_a.comment!r})" in msg


def _with_bads(ev):
    ev = ev.copy()
    ev.info["bads"] = ev.info["bads"] + [ev.ch_names[5]]
    return ev


def _with_sfreq(ev):
    ev = ev.copy()
    with ev.info._unlock():
        ev.info["sfreq"] = ev.info["sfreq"] / 2
    return ev


def _with_nan(ev):
    ev = ev.copy()
    ev.data[3, 4] = np.nan
    return ev


def test_bad_conditions_structure(conditions):
    ev_a, ev_v, fwd, cov = conditions
    kw = dict(alpha=40.0, l1_ratio=0.03)
    with pytest.raises(ValueError, match="evokeds must hold at least one condition"):
        tfmxne.solve_joint([], fwd, cov, **kw)
    with pytest.raises(TypeError, match="evokeds must be a list of mne.Evoked.*got an"):
        tfmxne.solve_joint(ev_a, fwd, cov, **kw)
    with pytest.raises(TypeError, match=r"evokeds\[1\] must be an mne.Evoked"):
        tfmxne.solve_joint([ev_a, ev_v.data], fwd, cov, **kw)
    zero = ev_v.copy()
    zero.data[:] = 0.0
    with pytest.raises(ValueError, match=r"evokeds\[1\] \('Left visual'\): evoked.data"):
        tfmxne.solve_joint([ev_a, zero], fwd, cov, **kw)
    with pytest.raises(ValueError, match="on_empty must be 'raise' or 'warn'"):
        tfmxne.solve_joint([ev_a], fwd, cov, on_empty="ignore", **kw)
    with pytest.raises(TypeError, match="forward must be an instance of mne.Forward"):
        tfmxne.solve_joint([ev_a, ev_v], None, cov, **kw)
    before = ev_v.data.copy()
    tfmxne.solve_joint([ev_a, ev_v], fwd, cov, **kw)
    assert np.array_equal(ev_v.data, before)  # inputs untouched


# --------------------------------------------------------------------------
# empty answers on request
# --------------------------------------------------------------------------
def test_joint_on_empty(conditions):
    ev_a, ev_v, fwd, cov = conditions
    kw = dict(alpha=99.99, l1_ratio=0.03)
    with pytest.raises(tfmxne.NoActiveSourcesError, match="No active dipoles found"):
        tfmxne.solve_joint([ev_a, ev_v], fwd, cov, **kw)
    with pytest.warns(RuntimeWarning, match="every condition is empty"):
        res = tfmxne.solve_joint([ev_a, ev_v], fwd, cov, on_empty="warn", **kw)
    for r, ev in zip(res, (ev_a, ev_v)):
        assert isinstance(r.estimate, mne.SourceEstimate)
        assert r.estimate.data.shape == (0, len(ev.times))
        np.testing.assert_allclose(r.estimate.times, ev.times)
        assert r.dipoles() == []
        assert r.residual.comment == ev.comment
