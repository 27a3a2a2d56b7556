# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Joint solves of several conditions: one support shared by all.

:func:`solve_joint` solves the conditions of an experiment (evokeds with the
same channels, bads, projections, times and sampling rate) as one problem
whose L21 group of a source position spans every condition's STFT
coefficients, so that the conditions share their active positions and each
keeps its own time courses::

    min 1/2 sum_c ||M_c - G Phi^H Z_c||^2
        + alpha_space sum_j sqrt(sum_c ||Z_{j,c}||^2)
        + alpha_time sum_c ||Z_c||_1

The conditions are one data matrix ``[M_1 ... M_C]`` on a frame that does not
cross condition boundaries (``tfmxne._stft.TFFrame(..., n_conditions=C)``);
the compiled core solves it as any other problem. A joint problem is a
:class:`tfmxne._problem.Problem` with ``n_conditions = C`` (made by
:func:`prepare_joint`), so the solves, the automatic alpha
(:func:`tfmxne._select.select`) and irTF-MxNE run on it unchanged; the answer
is then split into one :class:`tfmxne.TFMxNEResult` per condition.
"""

import dataclasses
import time

import numpy as np
from mne.utils import logger, verbose

from . import _compat, _progress
from ._options import check_options, gather
from ._parallel import call_scope
from ._problem import (
    Problem,
    _alpha_max,
    check_inputs,
    prepare_forward,
    taper,
    window_evoked,
)
from ._result import build_result, check_on_empty, handle_empty
from ._select import _choice, is_auto, select
from ._solve import (
    check_regularisation,
    check_run,
    debiased,
    n_workers,
    solve_problem,
)
from ._stft import TFFrame
from ._validation import _short
from .solver import _cols


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------
def _name(k, ev):
    comment = getattr(ev, "comment", None)
    return f"evokeds[{k}]" + (f" ({comment!r})" if comment else "")


def _projs(info):
    """The projectors of ``info``: what makes two sets the same."""
    return [
        (
            p["desc"],
            bool(p["active"]),
            tuple(p["data"]["col_names"]),
            np.asarray(p["data"]["data"], float).tobytes(),
        )
        for p in info["projs"]
    ]


def check_conditions(evokeds):
    """The conditions of a joint solve, checked: a list of Evoked with the same
    channels, bads, projections, sampling rate and times, finite and not zero.

    Each error names the parameter (``evokeds``), the condition (index and
    comment) and what differs from ``evokeds[0]``.
    """
    from mne import Evoked

    if isinstance(evokeds, Evoked):
        raise TypeError(
            "evokeds must be a list of mne.Evoked (the conditions; one evoked is "
            "tfmxne.solve's), got an Evoked"
        )
    if not isinstance(evokeds, list | tuple):
        raise TypeError(
            f"evokeds must be a list of mne.Evoked (the conditions), got "
            f"{_short(evokeds)}"
        )
    evokeds = list(evokeds)
    if not evokeds:
        raise ValueError("evokeds must hold at least one condition, got an empty list")
    for k, ev in enumerate(evokeds):
        if not isinstance(ev, Evoked):
            raise TypeError(f"evokeds[{k}] must be an mne.Evoked, got {_short(ev)}")
        if not np.all(np.isfinite(ev.data)):
            raise ValueError(
                f"{_name(k, ev)}: evoked.data contains NaN or Inf values (the "
                f"condition's data must be finite)"
            )
    ref = evokeds[0]
    n0 = _name(0, ref)
    for k, ev in enumerate(evokeds[1:], 1):
        nk = _name(k, ev)
        if ev.ch_names != ref.ch_names:
            extra = [c for c in ev.ch_names if c not in ref.ch_names]
            missing = [c for c in ref.ch_names if c not in ev.ch_names]
            what = (
                f"{len(extra)} channels not in {n0} ({_short(extra)}), "
                f"{len(missing)} of its channels missing ({_short(missing)})"
                if extra or missing
                else "the same channels in another order"
            )
            raise ValueError(
                f"evokeds: {nk} does not have the channels of {n0}: {what}; the "
                "conditions of a joint solve share their channels"
            )
        if set(ev.info["bads"]) != set(ref.info["bads"]):
            raise ValueError(
                f"evokeds: {nk} has bads {sorted(ev.info['bads'])}, {n0} has "
                f"{sorted(ref.info['bads'])}; the conditions of a joint solve "
                "share their bad channels (mark the union as bad in each)"
            )
        if _projs(ev.info) != _projs(ref.info):
            d0 = [p["desc"] for p in ref.info["projs"]]
            dk = [p["desc"] for p in ev.info["projs"]]
            raise ValueError(
                f"evokeds: {nk} does not have the projections of {n0} ({dk} against "
                f"{d0}, or the same names with other vectors or active states); "
                "the conditions of a joint solve share their projections"
            )
        sf, sf0 = float(ev.info["sfreq"]), float(ref.info["sfreq"])
        if sf != sf0:
            raise ValueError(
                f"evokeds: {nk} is sampled at {sf:g} Hz, {n0} at {sf0:g} Hz; the "
                "conditions of a joint solve share their sampling rate"
            )
        t, t0 = ev.times, ref.times
        if len(t) != len(t0) or abs(t[0] - t0[0]) > 0.5 / sf0:
            raise ValueError(
                f"evokeds: {nk} has {len(t)} samples from {t[0]:.4f} s, {n0} has "
                f"{len(t0)} from {t0[0]:.4f} s; the conditions of a joint solve "
                "share their times (crop them to the same window)"
            )
    return evokeds


def _check_each(evokeds, forward, noise_cov, opts):
    """check_inputs on the first condition (forward, noise_cov, options, data);
    for the others, what their data alone can break, naming the condition."""
    check_inputs(evokeds[0], forward, noise_cov, opts)
    for k, ev in enumerate(evokeds[1:], 1):
        try:
            check_inputs(ev, forward, noise_cov, opts)
        except ValueError as exc:
            raise ValueError(f"{_name(k, ev)}: {exc}") from None


# --------------------------------------------------------------------------
# the joint problem
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class _Condition:
    """One condition inside a joint problem: its tapered evoked, its whitened
    data ``M`` (as a single solve whitens it), its taper, its nave, and the
    scale of its data in the joint problem."""

    evoked: object
    M: np.ndarray
    taper: np.ndarray
    nave: float
    scale: float


def joint_nave(evokeds):
    """The nave of the joint problem: the largest of the conditions' (at least 1)."""
    return max(max(float(ev.nave), 1.0) for ev in evokeds)


def prepare_conditions(fwd, evokeds, opts):
    """The :class:`_Condition` of each evoked on the prepared forward ``fwd``.

    Each is whitened as a single solve whitens one evoked (the noise
    covariance as given, as MNE; its tapers), then scaled by
    ``sqrt(nave_c / nave_ref)`` (``nave_ref``: :func:`joint_nave`): every
    condition then has the noise of an average of ``nave_ref`` trials (the
    noise covariance of an average of ``nave`` trials is ``noise_cov /
    nave``), so that one alpha thresholds every condition at the same level
    relative to its noise. Equal naves (one condition too) scale by 1: MNE's
    whitening.
    """
    nave_ref = joint_nave(evokeds)
    out = []
    for ev in evokeds:
        _compat.check_reference(ev)
        ev_t = window_evoked(ev, opts.window)
        sel = [ev.ch_names.index(name) for name in fwd.gain_info["ch_names"]]
        logger.info("Whitening data matrix.")
        M = fwd.whitener @ ev_t.data[sel]
        nave = max(float(ev.nave), 1.0)
        out.append(
            _Condition(
                evoked=ev_t,
                M=M,
                taper=taper(len(ev_t.times), float(ev_t.info["sfreq"]), opts.window),
                nave=ev_t.nave,
                scale=float(np.sqrt(nave / nave_ref)),
            )
        )
    return out


def prepare_joint(fwd, conds, opts, l1_ratio):
    """The joint :class:`tfmxne._problem.Problem` of the conditions ``conds``
    (:func:`prepare_conditions`) at ``l1_ratio``.

    ``M`` holds the conditions' scaled whitened data side by side, ``evoked``
    is their data side by side in time (an ``EvokedArray`` of the first
    condition's info, scaled, nave ``nave_ref``; one condition: its own tapered
    evoked), ``taper`` their tapers; alpha_max is the exact dual norm of
    ``G^T [M_1 ... M_C]`` on the joint frame.
    """
    n_cond = len(conds)
    if n_cond == 1:
        c = conds[0]
        M, ev, tp, nave = c.M, c.evoked, c.taper, c.nave
    else:
        M = np.hstack([c.M * c.scale for c in conds])
        ev0 = conds[0].evoked
        nave = max(max(float(c.nave), 1.0) for c in conds)
        from mne import EvokedArray

        ev = EvokedArray(
            np.hstack([c.evoked.data * c.scale for c in conds]),
            ev0.info.copy(),
            tmin=ev0.times[0],
            comment=" + ".join(str(c.evoked.comment) for c in conds),
            nave=nave,
            verbose=False,
        )
        tp = np.concatenate([c.taper for c in conds])
    alpha_max, (GtM, nu, exact) = _alpha_max(
        fwd.gain, M, fwd.n_orient, l1_ratio, opts.wsize, opts.tstep, n_cond
    )
    if not alpha_max > 0:
        raise ValueError(
            "The whitened data of every condition are zero (or orthogonal to the "
            "gain): alpha_max = 0, no source can be estimated"
        )
    GtM /= alpha_max
    return Problem(
        fwd=fwd,
        evoked=ev,
        M=M,
        gain=fwd.gain / alpha_max,
        source_weighting=fwd.source_weighting / alpha_max,
        alpha_max=alpha_max,
        l1_ratio=l1_ratio,
        wsize=opts.wsize,
        tstep=opts.tstep,
        taper=tp,
        nave=nave,
        screen0=(GtM, nu / alpha_max, exact),
        n_conditions=n_cond,
    )


def split(jp, conds, r, opts, return_residual, t0):
    """One :class:`tfmxne.TFMxNEResult` per condition from ``r``, the result of
    the joint problem ``jp``.

    Each holds the condition's time courses (debiased per position and
    condition, back in the condition's units), estimate, residual, fit and
    STFT coefficients; the regularisation, the certificate (gap, tol,
    objectives, outer iterations), the support and the selection are the
    joint problem's, the same in every result.
    """
    t_split = time.perf_counter()
    res = r._res
    n_orient = jp.n_orient
    active_set = np.zeros(jp.gain.shape[1], bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if active_set.any() and opts.debias:
        X = debiased(jp, X, active_set)
    frame = TFFrame(jp.M.shape[1] // jp.n_conditions, jp.wsize, jp.tstep)
    k2 = 2 * frame.n_coefs
    out = []
    for c, (cond, cols) in enumerate(zip(conds, jp.blocks())):
        s = cond.scale
        coefs = slice(c * k2, (c + 1) * k2)
        res_c = dataclasses.replace(
            res,
            Z=res.Z[:, coefs] / s,
            X=res.X[:, cols] / s,
            R=None if res.R is None else res.R[:, cols] / s,
            theta=None if res.theta is None else res.theta[:, cols] / s,
        )
        p_c = dataclasses.replace(
            jp,
            evoked=cond.evoked,
            M=cond.M,
            taper=cond.taper,
            nave=cond.nave,
            screen0=None,
            n_conditions=1,
        )
        r_c = build_result(
            p_c,
            res_c,
            X[:, cols] / s,
            active_set,
            r.objective,
            frame,
            r.alpha,
            opts,
            return_residual,
            t0,
        )
        r_c.tol = r.tol
        r_c.selection = None if r.selection is None else dict(r.selection)
        # the joint solve's time (for an automatic choice: the solve kept) and
        # the split so far
        r_c.elapsed = r.elapsed + (time.perf_counter() - t_split)
        out.append(r_c)
    return out


# --------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------
def _solve_conditions(evokeds, forward, noise_cov, reg, opts, run, n_jobs, emit, t0):
    """What :func:`solve_joint` runs once its options are checked."""
    (alpha, l1_ratio), (return_residual, dtype, on_empty) = reg, run
    dtype = check_run(dtype, return_residual)
    on_empty = check_on_empty(on_empty)
    n_workers(n_jobs)
    evokeds = check_conditions(evokeds)
    _check_each(evokeds, forward, noise_cov, opts)
    auto = is_auto(alpha, l1_ratio)
    if auto:
        _choice(alpha, l1_ratio)
    else:
        alpha, l1_ratio = check_regularisation(alpha, l1_ratio)
    fwd = prepare_forward(evokeds[0].info, forward, noise_cov, opts)
    conds = prepare_conditions(fwd, evokeds, opts)
    problems = {}

    def make_problem(l1):
        problems[l1] = p = prepare_joint(fwd, conds, opts, l1)
        return p

    logger.info(
        f"Joint solve of {len(conds)} condition(s): "
        + ", ".join(
            f"{c.evoked.comment!r} (nave {c.nave:g}, scale {c.scale:.4g})" for c in conds
        )
    )
    if auto:
        r = select(make_problem, alpha, l1_ratio, opts, n_jobs, emit)
        jp = problems[r.l1_ratio]
    else:
        jp = make_problem(l1_ratio)
        r = solve_problem(
            jp,
            alpha,
            opts,
            return_residual=False,
            dtype=dtype,
            emit=emit,
            t0=t0,
        )
    results = split(jp, conds, r, opts, return_residual, t0)
    return handle_empty(
        results, on_empty, opts.pick_ori, what="the estimate of every condition"
    )


@verbose
def solve_joint(
    evokeds,
    forward,
    noise_cov,
    loose="auto",
    depth=0.8,
    maxit=3000,
    tol=1e-4,
    weights=None,
    weights_min=0.0,
    pca=True,
    debias=True,
    wsize=64,
    tstep=4,
    window=0.02,
    alpha=None,
    l1_ratio=None,
    dgap_freq=10,
    rank=None,
    pick_ori=None,
    n_tfmxne_iter=1,
    return_residual=True,
    dtype=np.float64,
    n_jobs=1,
    on_empty="raise",
    progress=None,
    verbose=None,
):
    r"""TF-MxNE of several conditions with one support shared by all.

    The conditions (for example the responses to several stimuli in one
    session) are solved as one problem: the group of a source position spans
    its STFT coefficients in every condition, so a position is active in all
    the conditions or in none, and each condition keeps its own time courses
    (the multi-task group Lasso across conditions, with TF-MxNE's
    time-frequency L1 per condition)::

        min 1/2 sum_c ||M_c - G Phi^H Z_c||^2
            + alpha_space sum_j sqrt(sum_c ||Z_{j,c}||^2)
            + alpha_time sum_c ||Z_c||_1

    (``M_c`` the whitened data of condition c, ``Z_{j,c}`` the coefficients of
    position j in condition c, the L1 over every coefficient of every
    condition, orientations grouped per coefficient as in
    :func:`tf_mixed_norm`). A list given to :func:`tfmxne.solve` is a batch of
    independent solves instead.

    Parameters
    ----------
    evokeds : list of Evoked
        The conditions: the same channels, bads, projections, sampling rate
        and times (their nave may differ).
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance (of one trial, as MNE's).
    loose, depth, maxit, tol, weights, weights_min, pca, debias, wsize, tstep, window, dgap_freq, rank, pick_ori, n_tfmxne_iter
        As in :func:`tf_mixed_norm`; ``tol`` is relative to the squared norm of
        the joint whitened data (every condition), ``debias`` gives one scale
        per position and condition, ``n_tfmxne_iter > 1`` reweights on the
        joint groups.
    alpha : float | None | str
        Regularisation in percent of the joint problem's alpha_max (the
        smallest for which every condition's estimate is zero: the exact dual
        norm of ``G^T [M_1 ... M_C]`` on the joint frame), or a criterion of
        the automatic choice as in :func:`tfmxne.solve` (``None``:
        ``'signal-share'``), applied to the joint problem: its noise energy is
        the sum of the conditions', its signal the joint data's beyond it.
    l1_ratio : float | None
        Share of the temporal penalty, in [0, 1] (see Notes for how its
        weight changes with the number of conditions); ``None``: chosen with
        alpha as in :func:`tfmxne.solve`.
    return_residual : bool
        Compute each condition's residual evoked (default True).
    dtype : numpy dtype
        float64 (default) or float32 for the iterations of the solver.
    n_jobs : int
        Threads (-1: all cores) for the automatic choice (its l1_ratio grid,
        or SURE's two paths).
    on_empty : 'raise' | 'warn'
        When no source survives (in every condition at once: the support is
        shared): ``'raise'`` (default) a :class:`NoActiveSourcesError`;
        ``'warn'`` a ``RuntimeWarning`` and results whose estimates are empty
        (no vertices; see :func:`tf_mixed_norm`).
    progress : callable | 'auto' | None
        As in :func:`tfmxne.solve` (the outer iterations of the joint solve,
        or the solves of the automatic choice).
    %(verbose)s

    Returns
    -------
    results : list of TFMxNEResult
        One per condition, in the order of ``evokeds``, with the same active
        positions: each has its condition's estimate, residual, time courses
        ``X``, explained variance and STFT coefficients (``tf_coefs``); the
        regularisation (``alpha``, ``l1_ratio``, ``alpha_max``), the
        certificate (``gap``, ``tol``, ``converged``, ``objective``,
        ``gap_history``) and ``selection`` are the joint problem's, the same
        in every result.

    Notes
    -----
    **Whitening.** Each condition is whitened as :func:`tf_mixed_norm`
    whitens one evoked (with ``noise_cov`` as given: for one evoked MNE does
    not scale it by nave, a common scale of the data being absorbed by alpha
    in percent of alpha_max). Across conditions the scale is not common: a
    condition averaged over more trials is less noisy. Each condition's
    whitened data are therefore scaled by ``sqrt(nave_c / nave_ref)``
    (``nave_ref`` the largest nave), which is whitening it with the
    covariance of its own average, ``noise_cov / nave_c``, up to a factor
    common to all: every condition then has the same noise level, and one
    alpha thresholds each at the same level relative to its noise (a noisier
    condition does not buy active positions with its noise). The time
    courses are scaled back. With equal naves (and with one condition) the
    factor is 1 and the data are MNE's; one condition is :func:`tfmxne.solve`,
    bit for bit.

    **l1_ratio and the number of conditions.** If the C conditions had the
    same response, the group norm of a position would be ``sqrt(C)`` times a
    condition's and its L1 norm C times: the joint problem is then C times
    the single problem with ``alpha_space / sqrt(C)`` and the same
    ``alpha_time``. The spatial penalty weighs ``sqrt(C)`` times less
    against the time-frequency L1 than in a single solve: the same
    ``l1_ratio`` acts as the larger ratio ``l1_ratio / (l1_ratio + (1 -
    l1_ratio) / sqrt(C))`` of a single solve (0.03 acts as 0.042 with two
    conditions and as 0.058 with four), so the estimate is sparser in time
    and frequency. To keep a single solve's balance, divide by that factor:
    ``l1_ratio_joint = l1_ratio / (l1_ratio + (1 - l1_ratio) sqrt(C))``
    (0.03 becomes 0.0214 with two conditions and 0.0152 with four). The
    percentages of alpha change too: alpha_max of the joint problem lies
    between alpha_max of one condition's (pure L1) and ``sqrt(C)`` times it
    (pure L21). For conditions with different responses these hold for
    conditions of equal energy at a position, and approximately otherwise.
    """
    t0 = time.perf_counter()
    opts = check_options(gather(locals()))
    count = "alpha" if is_auto(alpha, l1_ratio) else "outer"
    if count == "outer" and n_tfmxne_iter != 1:
        count = "reweighting"
    labels = {"alpha": "alpha selection", "outer": "TF-MxNE", "reweighting": "irTF-MxNE"}
    with _progress.session(progress, count, labels[count]) as emit, call_scope():
        return _solve_conditions(
            evokeds,
            forward,
            noise_cov,
            (alpha, l1_ratio),
            opts,
            (return_residual, dtype, on_empty),
            n_jobs,
            emit,
            t0,
        )
