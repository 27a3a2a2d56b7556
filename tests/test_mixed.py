# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Mixed precision (``tfx_params_t.mixed``): a float64 solve started from the
same problem solved in float32. The answer must be certified in float64: the
returned dual point is feasible and its gap (independent NumPy code,
``tests/_helpers.py``) is below tol, at tolerances the float32 start cannot reach
on its own; the answer brackets a tightly solved optimum."""

import re
from pathlib import Path

import numpy as np
import pytest
from _helpers import correlated_problem, dual_ref, objectives_ref

import tfmxne
from tfmxne import cython_tfmxne as ct
from tfmxne import norm_epsilon_inf, tf_mixed_norm_solver
from tfmxne._core import _engine
from tfmxne._stft import TFFrame
from tfmxne._testing import _hooks as H


def _certify(
    M, G, a_s, a_t, wsize, tstep, n_orient, out, info, tol, w_space=None, w_time_mne=None
):
    """Independent primal objective at the result, dual objective and feasibility
    of its theta: the gap they certify is below tol."""
    scale = float(np.sum(M * M))
    frame = TFFrame(M.shape[1], wsize, tstep)
    active = np.zeros(G.shape[1], bool)
    active[(out["positions"][:, None] * n_orient + np.arange(n_orient)).ravel()] = True
    Z = frame.to_mne(out["Z"]) if len(out["Z"]) else out["Z"]
    p_obj = objectives_ref(
        M, G, Z, active, a_s, a_t, wsize, tstep, n_orient, w_space, w_time_mne
    )[0]
    d_obj, nu = dual_ref(
        M, G, out["theta"], a_s, a_t, wsize, tstep, n_orient, w_space, w_time_mne
    )
    assert nu <= (a_s + a_t) * (1 + 1e-12)  # theta is dual feasible
    # a true float64 duality gap (rounding of the reference: 1e-12 ||M||^2)
    assert p_obj - d_obj < tol + 1e-12 * scale
    assert d_obj == pytest.approx(info["d_obj"], rel=1e-10)
    return p_obj, d_obj


@pytest.mark.parametrize(
    "seed, n_orient, wsize, tstep",
    [(0, 3, 16, 4), (1, 1, 16, 4), (2, 3, [8, 16], [2, 4])],
)
@pytest.mark.parametrize("rel_tol", [1e-4, 1e-10])
def test_mixed_answer_is_certified_in_float64(seed, n_orient, wsize, tstep, rel_tol):
    """At tol 1e-4 ||M||^2 and at 1e-10 (far below float32 rounding: the float64
    solve must continue from the start), with one and two dictionaries: a true
    float64 gap below tol, the float32 start did run, and the answer brackets a
    tightly solved optimum as the plain float64 solve does."""
    M, G = correlated_problem(seed, n_orient)
    l1_ratio = 0.1
    amax = norm_epsilon_inf(G, M, l1_ratio, n_orient, wsize, tstep)
    a_s, a_t = 0.1 * amax * (1 - l1_ratio), 0.1 * amax * l1_ratio
    scale = float(np.sum(M * M))
    tol = rel_tol * scale
    _, _, E = tf_mixed_norm_solver(
        M, G, a_s, a_t, wsize, tstep, n_orient, maxit=20000, tol=1e-13, debias=False
    )
    p_star = E[-1]
    for mixed in (0, 1):
        X, act, info, out = H.solve_arrays(
            M,
            G,
            (a_s, a_t),
            (wsize, tstep),
            n_orient=n_orient,
            maxit=3000,
            tol=tol,
            mixed=mixed,
        )
        assert info["status"] == ct.OK and 0 <= info["gap"] < tol
        assert (info["n_iter_start"] > 0) == bool(mixed)
        p_obj, d_obj = _certify(M, G, a_s, a_t, wsize, tstep, n_orient, out, info, tol)
        assert d_obj <= p_star + 1e-10 * abs(p_star)
        assert p_obj >= p_star - 1e-10 * abs(p_star)
        assert p_obj - p_star < tol + 1e-10 * abs(p_star)


def test_mixed_weights_and_warm_start():
    """Weighted problem (the reweighting of irTF-MxNE) with a warm start: the
    float32 start takes both, the float64 answer is certified."""
    wsize, tstep, n_orient = 16, 4, 3
    M, G = correlated_problem(5, n_orient)
    n_pos = G.shape[1] // n_orient
    frame = TFFrame(M.shape[1], wsize, tstep)
    rng = np.random.default_rng(1)
    w_space = rng.uniform(0.5, 2.0, n_pos)
    w_time = rng.uniform(0.5, 2.0, (n_pos, frame.n_coefs))  # internal order
    w_time_mne = frame.to_mne_weights(w_time)
    amax = norm_epsilon_inf(G, M, 0.2, n_orient, wsize, tstep)
    a_s, a_t = 0.15 * amax * 0.8, 0.15 * amax * 0.2
    tol = 1e-8 * float(np.sum(M * M))
    # a warm start: a loose plain solve
    _, _, _, first = H.solve_arrays(
        M,
        G,
        (a_s, a_t),
        (wsize, tstep),
        n_orient=n_orient,
        maxit=3000,
        tol=1e-2 * float(np.sum(M * M)),
    )
    X, act, info, out = H.solve_arrays(
        M,
        G,
        (a_s, a_t),
        (wsize, tstep),
        n_orient=n_orient,
        maxit=3000,
        tol=tol,
        weights=(w_space, w_time),
        warm=(first["positions"], first["Z"]),
        mixed=1,
    )
    assert info["status"] == ct.OK and info["n_iter_start"] > 0
    _certify(M, G, a_s, a_t, wsize, tstep, n_orient, out, info, tol, w_space, w_time_mne)


def test_c_api_default_has_no_float32_start():
    """The C API's defaults (``tfx_params_init``) keep float64 throughout: no
    float32 epochs unless ``mixed`` is asked for."""
    M, G = correlated_problem(2, 1)
    amax = norm_epsilon_inf(G, M, 0.1, 1, 16, 4)
    _, _, info, _ = H.solve_arrays(M, G, (0.2 * amax * 0.9, 0.2 * amax * 0.1), (16, 4))
    assert info["status"] == ct.OK and info["n_iter_start"] == 0 and info["n_iter"] > 0


def _struct_fields(path, struct):
    """Field names of a ``ctypedef struct`` in a .pxd file (independent parse)."""
    lines = Path(path).read_text().splitlines()
    start = lines.index(f"ctypedef struct {struct}:")
    fields = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        code = line.split("#")[0].strip()
        if code:
            fields.append(re.split(r"[\s*]+", code)[-1].split("[")[0])
    return fields


def test_option_names_are_the_struct_fields():
    """One definition of the options: the Python names are the fields of the
    public ``tfx_params_t`` (those a caller sets besides the alphas and n_orient)
    and of the internal ``tf_tuning``; every one has a default."""
    pkg = Path(tfmxne.__file__).parent
    public = _struct_fields(pkg / "cython_types.pxd", "tfx_params_t")
    tuning = _struct_fields(pkg / "_core" / "_types.pxd", "tf_tuning")
    settable = set(public) - {
        "struct_size",
        "abi_version",
        "alpha_space",
        "alpha_time",
        "n_orient",
        "progress",
        "progress_ctx",
    }
    assert set(_engine.PUBLIC_OPTIONS) == settable
    assert set(_engine.default_params()) == settable | set(tuning)
    assert not settable & set(tuning)


def test_solve_uses_the_float32_start(small_problem, monkeypatch):
    """``tfmxne.solve`` asks the core for the float32 start; the reported epochs
    count both phases, and the answer is certified below tol."""
    import tfmxne
    from tfmxne import solver

    outs = []
    orig = solver._engine.solve

    def spy(*a, **k):
        outs.append((k.get("mixed"), orig(*a, **k)))
        return outs[-1][1]

    monkeypatch.setattr(solver._engine, "solve", spy)
    evoked, fwd, cov = small_problem
    res = tfmxne.solve(evoked, fwd, cov, alpha=40.0, l1_ratio=0.03)
    ((mixed, out),) = outs
    assert mixed == 1 and out["n_iter_start"] > 0
    assert res.n_iter == out["n_iter"] + out["n_iter_start"]
    assert res.converged and res.gap == out["gap"] < res.tol


def test_mixed_progress_numbering_and_interruption():
    """Progress counts the outer iterations of both phases as one run (1, 2, ...),
    and an exception from the callback during the float32 start stops the solve
    and propagates."""
    wsize, tstep, n_orient = 16, 4, 3
    M, G = correlated_problem(7, n_orient)
    frame = TFFrame(M.shape[1], wsize, tstep)
    amax = norm_epsilon_inf(G, M, 0.1, n_orient, wsize, tstep)
    a_s, a_t = 0.1 * amax * 0.9, 0.1 * amax * 0.1
    tol = 1e-10 * float(np.sum(M * M))  # the float64 phase must run outer iterations
    steps = []
    out = _engine.solve(
        frame.plan,
        M,
        G,
        a_s,
        a_t,
        n_orient,
        tol=tol,
        maxit=3000,
        mixed=1,
        progress=lambda k, gap, n: steps.append(k),
    )
    assert out["status"] == _engine.STATUS_OK and out["n_iter_start"] > 0
    assert steps == list(range(1, len(steps) + 1))
    assert len(steps) > out["n_outer"]  # the start's outer iterations come first

    class Stop(Exception):
        pass

    def stop(k, gap, n):
        raise Stop

    with pytest.raises(Stop):
        _engine.solve(
            frame.plan,
            M,
            G,
            a_s,
            a_t,
            n_orient,
            tol=tol,
            maxit=3000,
            mixed=1,
            progress=stop,
        )


def test_mixed_records_the_start_then_the_certificate():
    """The outer records of a mixed solve: the float32 start's first (flagged),
    then the float64 solve's, times increasing; the last record is the result's
    certificate."""
    wsize, tstep, n_orient = 16, 4, 3
    M, G = correlated_problem(7, n_orient)
    frame = TFFrame(M.shape[1], wsize, tstep)
    amax = norm_epsilon_inf(G, M, 0.1, n_orient, wsize, tstep)
    tol = 1e-10 * float(np.sum(M * M))
    out = _engine.solve(
        frame.plan,
        M,
        G,
        0.1 * amax * 0.9,
        0.1 * amax * 0.1,
        n_orient,
        tol=tol,
        maxit=3000,
        mixed=1,
    )
    flags = [rec["start"] for rec in out["outer"]]
    n32 = sum(flags)
    assert n32 > 0 and flags == [1] * n32 + [0] * (len(flags) - n32)
    assert len(flags) - n32 == out["n_outer"]
    times = [rec["time"] for rec in out["outer"]]
    assert times == sorted(times)
    assert out["outer"][-1]["gap"] == out["gap"] < tol
