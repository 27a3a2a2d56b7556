# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne against MNE-Python's own TF-MxNE on the same problem."""

import inspect
import time

import numpy as np
from mne.utils import verbose

from . import _compat, _patch
from .inverse import solve
from .solver import dgap_l21l1


def _vertices(stc):
    return stc.vertices if isinstance(stc.vertices, list) else [stc.vertices]


def _union_difference(est, stc):
    """``||est - stc|| / ||stc||`` over the union of their sources (a source one
    of them lacks counts as zero there)."""
    rows = {}
    for which, e in ((0, est), (1, stc)):
        if e is None:
            continue
        data = e.data.reshape(e.data.shape[0], -1)  # vector estimates: (n, 3 T)
        k = 0
        for s, verts in enumerate(_vertices(e)):
            for v in verts:
                rows.setdefault((s, int(v)), [None, None])[which] = data[k]
                k += 1
    num = den = 0.0
    for a, b in rows.values():
        a = 0.0 if a is None else a
        b = 0.0 if b is None else b
        num += float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))
        den += float(np.sum(np.asarray(b) ** 2))
    return float(np.sqrt(num / den)) if den > 0 else (0.0 if num == 0 else np.inf)


def _certificates(record, result, wsize, tstep):
    """Objective, true duality gap and dual value of both answers on the
    problem MNE solved (its whitened data and gain, scaled by alpha_max)."""
    M, G, n_orient = record["M"], record["G"], record["n_orient"]
    a_s, a_t = record["alpha_space"], record["alpha_time"]
    out = {}
    for who, Z, active in (
        ("mne", record["Z"], record["active_set"]),
        ("tfmxne", result.tf_coefs, np.asarray(result.active_set)),
    ):
        gap, p_obj, d_obj = dgap_l21l1(M, G, Z, active, a_s, a_t, wsize, tstep, n_orient)
        out[who] = (p_obj, gap, d_obj)
    return out


@verbose
def compare_with_mne(evoked, forward, noise_cov, result=None, *, verbose=None, **params):
    """Run :func:`mne.inverse_sparse.tf_mixed_norm` on a problem and compare.

    MNE's solver is run on the same data and parameters as tfmxne's (it is
    slow: tens of seconds on a full source space where tfmxne takes one).

    Parameters
    ----------
    evoked : Evoked
        The data.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    result : TFMxNEResult | None
        tfmxne's result on this problem with these ``params``; ``None``: it is
        computed here by :func:`tfmxne.solve`.
    %(verbose)s
    **params
        Parameters of :func:`mne.inverse_sparse.tf_mixed_norm` (``alpha``,
        ``l1_ratio``, ``loose``, ``depth``, ``maxit``, ``tol``, ``wsize``,
        ``tstep``, ..., but not ``return_residual`` and
        ``return_as_dipoles``), given to both solvers; ``alpha`` and ``l1_ratio``
        must be numbers (MNE has no automatic selection).

    Returns
    -------
    comparison : dict
        ``'mne_estimate'``: MNE's source estimate; ``'mne_time'``: seconds
        MNE took; ``'tfmxne_time'``: seconds tfmxne took
        (``result.elapsed``); ``'speedup'``: their ratio; ``'same_support'``:
        whether both estimates have the same vertices; ``'relative_difference'``:
        ``||tfmxne - MNE|| / ||MNE||`` of the estimates' data, over the union
        of their sources (a source one estimate lacks is zero in it);
        ``'common'``, ``'only_tfmxne'``, ``'only_mne'``: the vertices, one
        array per source space, found by both estimates, by tfmxne's only, by
        MNE's only.

        Both answers are then measured on the one problem MNE solved (its
        whitened data and gain scaled by alpha_max, before debiasing), by the
        same code (:func:`tfmxne.dgap_l21l1`): ``'objective'``,
        ``'duality_gap'`` (each answer's true gap: its objective minus the
        dual value of its own residual, rescaled to be feasible) and
        ``'suboptimality'`` (its objective minus the best dual value of the
        two, a lower bound of the optimum shared by both: an upper bound of
        its distance to the optimal objective), each a dict with keys
        ``'tfmxne'`` and ``'mne'``; ``'closer'``: which answer has the lower
        objective (``'tfmxne'``, ``'mne'`` or ``'tie'`` when they are equal
        to rounding); ``'objective_difference'``: MNE's objective minus
        tfmxne's (positive when tfmxne is closer); ``'summary'``: one
        sentence saying so. With ``n_tfmxne_iter > 1`` (a non-convex
        problem, no duality gap) these are ``None``.

    Raises
    ------
    Exception
        What MNE raises is not caught (for example its bare ``Exception``
        when no source survives alpha).
    """
    for name in ("return_residual", "return_as_dipoles"):
        if name in params:
            raise TypeError(
                f"compare_with_mne compares source estimates: {name} is not one of its "
                "parameters"
            )
    for name in ("alpha", "l1_ratio"):
        value = params.get(name)
        if value is None or isinstance(value, str):
            raise ValueError(
                f"{name} must be given as a number (MNE has no automatic selection), "
                f"got {name}={value!r}"
            )
    if result is None:
        result = solve(evoked, forward, noise_cov, return_residual=False, **params)
    # MNE's own solver, also when tfmxne.patch_mne() is active
    with _patch.unpatched():
        mne_tf_mixed_norm = _patch.original("mne.inverse_sparse", "tf_mixed_norm")
        t0 = time.perf_counter()
        with _compat.record_mne_tf_solves() as records:
            stc = mne_tf_mixed_norm(evoked, forward, noise_cov, **params)
        t_mne = time.perf_counter() - t0
    t_ours = float(result.elapsed)
    est = result.estimate
    ours_v = (
        _vertices(est) if est is not None else [np.zeros(0, int) for _ in forward["src"]]
    )
    mne_v = _vertices(stc)
    same = len(ours_v) == len(mne_v) and all(
        np.array_equal(a, b) for a, b in zip(ours_v, mne_v)
    )
    rel = _union_difference(est, stc)
    convex = int(params.get("n_tfmxne_iter", 1)) == 1 and len(records) == 1
    objective = gaps = subopt = closer = diff = None
    summary = (
        "irTF-MxNE (n_tfmxne_iter > 1) is not convex: no duality gap to compare"
        if not convex
        else None
    )
    if convex:
        defaults = inspect.signature(mne_tf_mixed_norm).parameters
        wsize = params.get("wsize", defaults["wsize"].default)
        tstep = params.get("tstep", defaults["tstep"].default)
        cert = _certificates(records[0], result, wsize, tstep)
        d_best = max(c[2] for c in cert.values())
        objective = {k: c[0] for k, c in cert.items()}
        gaps = {k: c[1] for k, c in cert.items()}
        subopt = {k: c[0] - d_best for k, c in cert.items()}
        diff = objective["mne"] - objective["tfmxne"]
        # equal to rounding: the objective's own rounding, ~1e-12 of it
        if abs(diff) <= 1e-12 * max(abs(objective["tfmxne"]), 1.0):
            closer = "tie"
        else:
            closer = "tfmxne" if diff > 0 else "mne"
        summary = (
            f"On the problem MNE solved, tfmxne's objective is {objective['tfmxne']:.6g} "
            f"(true duality gap {gaps['tfmxne']:.2e}) and MNE's {objective['mne']:.6g} "
            f"(gap {gaps['mne']:.2e}): "
            + (
                "the same to rounding"
                if closer == "tie"
                else f"{closer} is closer to the optimum: its objective is lower by "
                f"{abs(diff):.2e}; the optimal value is at most {subopt['mne']:.2e} "
                f"below MNE's and {subopt['tfmxne']:.2e} below tfmxne's"
            )
            + f"; relative difference of the estimates {rel:.2e}"
            + ("" if same else " (different supports)")
            + "."
        )
    return dict(
        mne_estimate=stc,
        mne_time=t_mne,
        tfmxne_time=t_ours,
        speedup=t_mne / t_ours if t_ours > 0 else np.inf,
        same_support=same,
        relative_difference=rel,
        common=[np.intersect1d(a, b) for a, b in zip(ours_v, mne_v)],
        only_tfmxne=[np.setdiff1d(a, b) for a, b in zip(ours_v, mne_v)],
        only_mne=[np.setdiff1d(b, a) for a, b in zip(ours_v, mne_v)],
        objective=objective,
        duality_gap=gaps,
        suboptimality=subopt,
        closer=closer,
        objective_difference=diff,
        summary=summary,
    )
