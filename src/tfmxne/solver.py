# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Array-level TF-MxNE solvers (same parameters and returns as MNE's).

The problem, for whitened data ``M`` (n_sensors, n_times) and gain ``G``
(n_sensors, n_sources), with ``Z`` the coefficients of the sources in the tight
multi-dictionary STFT frame ``Phi`` and ``X = PhiT(Z)``::

    min_Z  0.5 ||M - G PhiT(Z)||_F^2
           + alpha_space * sum_j w_space_j ||Z_j||_2
           + alpha_time  * sum_j sum_k w_time_jk ||Z_jk||_2

where ``Z_j`` is the block of the ``n_orient`` rows of position ``j`` and
``Z_jk`` one coefficient across orientations (norms count negative frequencies).

Algorithm (all of it in the compiled core, ``tf_solve`` in ``_core/_solve.pxi``,
without the GIL): an outer working-set loop certified by the duality gap of the
full problem (dual norm computed exactly, with screening by a cheap upper
bound), and an inner block coordinate descent on the working set. The working
set grows geometrically from the positions that violate the optimality
conditions most. This module validates the inputs, turns the core's status into
exceptions and warnings, and builds the results; the public Cython API
(``tfmxne.cython_tfmxne``) calls the same ``tf_solve``.
"""

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np
from mne.utils import logger, verbose, warn

from . import _parallel
from ._core import _engine
from ._stft import TFFrame
from ._validation import (
    _short,
    check_bool,
    check_dgap_freq,
    check_float,
    check_int,
    check_real_array,
    check_wsize_tstep,
)

_DEFAULTS = _engine.default_params()
#: Cap on the outer working-set iterations of one solve (MNE has none); the
#: core's default (``tfx_params_default``), overridable here.
MAX_OUTER_ITER = _DEFAULTS["max_outer"]
#: Dual extrapolation of the residuals (the core's default).
DUAL_EXTRAP = bool(_DEFAULTS["dual_extrap"])


def __getattr__(name):
    # removed names that keep working, deprecated, until tfmxne 0.2
    if name == "DUAL_REFINE":
        import warnings

        warnings.warn(
            "tfmxne.solver.DUAL_REFINE is deprecated and has no effect (the Newton-"
            "refined dual points were removed); it will be removed in tfmxne 0.2",
            DeprecationWarning,
            stacklevel=2,
        )
        return False
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dual_norm_screened(
    plan, GtR, n_orient, rho, *, weights=None, stop=None, prev=None, n_thr=None
):
    """:func:`_engine.dual_norm_screened` (the solver's routine) with the
    solver's thread count; ``weights = (w_space, w_time)``, ``stop = (n_min,
    alpha, n_max)``, ``prev = (GtR_prev, nu_prev)`` as there."""
    n_thr = _parallel.solve_threads() if n_thr is None else n_thr
    with _parallel.blas_one_thread() if n_thr > 1 else contextlib.nullcontext():
        return _engine.dual_norm_screened(
            plan,
            GtR,
            n_orient,
            rho,
            weights=weights,
            stop=stop,
            prev=prev,
            n_threads=n_thr,
        )


def _gtr(G, R, n_thr=None):
    """``G^T R`` (C-contiguous), by the core's threads."""
    n_thr = _parallel.solve_threads() if n_thr is None else n_thr
    if n_thr < 2:
        return np.ascontiguousarray(G.T @ R)
    dtype = np.result_type(G, R)
    with _parallel.blas_one_thread():
        return _engine.gtr(
            np.ascontiguousarray(G, dtype=dtype),
            np.ascontiguousarray(R, dtype=dtype),
            n_thr,
        )


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------
def _check_problem(
    M,
    G,
    n_orient,
    alpha_space,
    alpha_time,
    maxit,
    tol,
    dgap_freq,
    wsize,
    tstep,
    dtype=np.float64,
):
    # one internal layout, C order (a copy of an F-ordered or strided input): the
    # full products G^T R, hence the iterates, are the same bits whatever the
    # caller's layout
    M = np.ascontiguousarray(check_real_array(M, "M", 2, dtype=dtype))
    G = np.ascontiguousarray(check_real_array(G, "G", 2, dtype=dtype))
    n_orient = _check_shapes(G, M, n_orient, "M")
    alpha_space, alpha_time = _check_alphas(alpha_space, alpha_time)
    maxit = check_int(maxit, "maxit", 1)
    tol = check_float(tol, "tol", low=0.0, low_open=True)
    dgap_freq = check_dgap_freq(dgap_freq)
    wsize, tstep = check_wsize_tstep(wsize, tstep)
    return M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep


def _check_shapes(G, R, n_orient, r_name):
    """Rows of G and of the data match; n_orient divides the sources."""
    n_orient = check_int(n_orient, "n_orient", 1)
    if G.shape[0] != R.shape[0]:
        raise ValueError(
            f"{r_name} and G must have the same number of rows (sensors), got "
            f"{r_name}.shape={R.shape} and G.shape={G.shape}"
        )
    if G.shape[1] % n_orient:
        raise ValueError(
            f"The number of sources (G.shape[1]={G.shape[1]}) must be a multiple of "
            f"n_orient={n_orient}"
        )
    return n_orient


def _check_alphas(alpha_space, alpha_time):
    """Non-negative regularisation parameters, not both zero."""
    alpha_space = check_float(alpha_space, "alpha_space", low=0.0)
    alpha_time = check_float(alpha_time, "alpha_time", low=0.0)
    if alpha_space + alpha_time <= 0:
        raise ValueError(
            "alpha_space and alpha_time cannot both be 0, got "
            f"alpha_space={alpha_space}, alpha_time={alpha_time}"
        )
    return alpha_space, alpha_time


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------
def _lipschitz(G, n_orient):
    """Per-position Lipschitz constants ``||G_j^T G_j||_2`` (the core's)."""
    return _engine.lipschitz(np.ascontiguousarray(G), n_orient)


def _cols(positions, n_orient):
    positions = np.asarray(positions, dtype=np.intp)
    return (positions[:, None] * n_orient + np.arange(n_orient)[None, :]).ravel()


def _dual_objective(nR2, RM, nu, alpha):
    """Dual objective ``s <R, M> - s^2 ||R||^2 / 2`` of the residual R rescaled to
    the feasible dual point ``theta = s R``, ``s = min(1, alpha / nu)`` as in MNE
    (nu: dual norm of G^T R): the core's ``scaled_dual``."""
    return _engine.dual_objective(nR2, RM, nu, alpha)


@dataclass
class _SolveResult:
    """Internal result of one convex solve (internal coefficient layout)."""

    positions: np.ndarray
    Z: np.ndarray
    X: np.ndarray
    R: np.ndarray
    theta: np.ndarray
    gap: float
    p_obj: float
    d_obj: float
    E: list
    n_iter: int
    n_outer: int
    converged: bool
    status: int
    nu_max: float
    #: one record per outer iteration (the core's ``tfx_outer_t`` as dicts:
    #: n_active, n_ws, n_iter, gap, p_obj, d_obj, time) and ``solve``, the
    #: index of the solve (reweighting) it belongs to
    history: list = field(default_factory=list)


@dataclass(frozen=True)
class _Spec:
    """What one convex solve needs besides its arrays: the regularisation, the
    frame, the orientations and the stopping rule."""

    alpha_space: float
    alpha_time: float
    frame: TFFrame
    n_orient: int
    maxit: int
    tol: float
    dgap_freq: int
    #: cap on the outer working-set iterations (None: the core's default)
    max_outer: int | None = None
    #: name of the caller in the non-convergence warnings
    warn_name: str = "tf_mixed_norm_solver"
    #: no RuntimeWarning when it stops before tol (a solve that is not
    #: returned, such as a loose level of the automatic alpha): logged instead
    quiet: bool = False
    #: float32 start of a float64 solve (with ``MIXED_PRECISION``)
    mixed: bool = False
    #: gap at which the float32 start stops, relative to ``||M||^2``, if looser
    #: than its default (``tfx_tuning.mixed_tol_ratio``; None: the default)
    mixed_tol_ratio: float | None = None


#: Float32 start of the float64 solves of ``tfmxne.solve`` / ``tf_mixed_norm``
#: (the core's ``tfx_params_t.mixed``; the array-level solvers stay in float64).
MIXED_PRECISION = True


def _warn_unconverged(spec, out, max_outer):
    """The RuntimeWarning of a solve that stopped before its tolerance."""
    gap, tol, name = out["gap"], spec.tol, spec.warn_name
    if out["stalled"]:
        warn(
            f"{name} did not converge: the duality gap stalled at {gap:.3e} >= tol "
            f"{tol:.3e} for {_DEFAULTS['stall_outer']} outer iterations (objective "
            f"{out['p_obj']:.6e}: tol may be below the rounding error of the "
            "objectives). Increase tol.",
            RuntimeWarning,
        )
    else:
        warn(
            f"{name} did not converge: duality gap {gap:.3e} >= tol {tol:.3e} "
            f"after {out['n_outer']} outer working-set iterations (cap {max_outer}) "
            f"and {out['n_iter']} block coordinate descent epochs (maxit="
            f"{spec.maxit} per inner solve). Increase maxit or tol.",
            RuntimeWarning,
        )


def _tf_solve(
    M, G, spec, *, lc=None, weights=None, warm=None, screen_init=None, on_outer=None
):
    """Solve the (weighted) convex TF-MxNE problem with the core's ``tf_solve``.

    ``spec``: a :class:`_Spec`. ``weights = (w_space, w_time)`` (either None),
    ``w_time`` in the internal coefficient order, shape (n_positions, n_coefs).
    ``warm = (init_positions, Z_init)``: rows of ``Z_init`` (internal layout)
    belong to ``init_positions``. ``screen_init = (G^T M, nu, exact)``: the
    dual-norm screening of the unweighted problem at ``R = M`` (as
    ``dual_norm_screened`` returns it, e.g. from the computation of alpha_max),
    reused by the first outer iteration of a cold, unweighted start.
    ``on_outer(n_outer, gap, n_active)`` is called after the certificate of
    every outer iteration (an exception it raises stops the solve and
    propagates). ``spec.mixed`` (float64 frames, with ``MIXED_PRECISION``): the
    core first solves the problem in float32 and starts the float64 solve,
    which certifies the answer, from its result (``tfx_params_t.mixed``).
    The result holds the dual point ``theta`` (feasible for the dual of this
    problem) whose dual objective ``d_obj`` certifies ``gap``.
    """
    frame = spec.frame
    dtype = frame.dtype
    n_thr = _parallel.solve_threads()  # (before BLAS is pinned for the solve)
    max_outer = MAX_OUTER_ITER if spec.max_outer is None else spec.max_outer

    def arr(a):
        return None if a is None else np.ascontiguousarray(a, dtype=dtype)

    def report(n_outer, gap, n_active):
        logger.info(f"    outer {n_outer}: dgap {gap:.2e} :: n_active {n_active}")
        if on_outer is not None:
            on_outer(n_outer, gap, n_active)

    if weights is not None:
        weights = (arr(weights[0]), arr(weights[1]))
    if warm is not None and warm[0] is not None and len(warm[0]):
        warm = (np.asarray(warm[0]), arr(np.reshape(warm[1], (-1, 2 * frame.n_coefs))))
    else:
        warm = None
    if screen_init is not None:
        screen_init = (arr(screen_init[0]), screen_init[1], screen_init[2])
    with _parallel.blas_one_thread():
        out = _engine.solve(
            frame.plan,
            np.ascontiguousarray(M, dtype=dtype),
            np.ascontiguousarray(G, dtype=dtype),
            float(spec.alpha_space),
            float(spec.alpha_time),
            int(spec.n_orient),
            lc=arr(lc),
            weights=weights,
            warm=warm,
            screen_init=screen_init,
            progress=report,
            tol=spec.tol,
            maxit=spec.maxit,
            dgap_freq=spec.dgap_freq,
            max_outer=max_outer,
            n_threads=n_thr,
            dual_extrap=int(DUAL_EXTRAP),
            mixed=int(bool(spec.mixed and MIXED_PRECISION)),
            **(
                {}
                if spec.mixed_tol_ratio is None
                else {"mixed_tol_ratio": float(spec.mixed_tol_ratio)}
            ),
        )
    status = out["status"]
    if status == _engine.STATUS_NO_MEMORY:
        raise MemoryError("TF-MxNE core: out of memory")
    if status not in (_engine.STATUS_OK, _engine.STATUS_MAXIT):
        raise RuntimeError(
            f"TF-MxNE core failed: {_engine.STATUS_NAMES.get(status, status)}"
        )
    if status == _engine.STATUS_MAXIT and spec.quiet:
        logger.info(f"    stopped at gap {out['gap']:.3e} >= tol {spec.tol:.3e}")
    elif status == _engine.STATUS_MAXIT:
        _warn_unconverged(spec, out, max_outer)
    if out["n_restart"]:
        logger.debug(
            f"    momentum: {out['n_restart']} step(s) rejected (adaptive restart)"
        )
    return _SolveResult(
        positions=out["positions"],
        Z=out["Z"],
        X=out["X"],
        R=out["R"],
        theta=out["theta"],
        gap=out["gap"],
        p_obj=out["p_obj"],
        d_obj=out["d_obj"],
        E=out["obj"],
        n_iter=out["n_iter"] + out["n_iter_start"],  # (float32 start)
        n_outer=out["n_outer"],
        converged=status == _engine.STATUS_OK,
        status=status,
        nu_max=out["nu_max"],
        history=[dict(rec, solve=0) for rec in out["outer"]],
    )


def _debias(M, G_A, X, n_orient):
    """Exact debiasing: min ||M - G_A diag(d) X||^2 s.t. d >= 1, tied per position.

    The core's ``debias_c`` (the C API's too): the bound-constrained least
    squares problem on the small Gram matrix of the fitted components, solved
    exactly by an active-set method, instead of MNE's FISTA, which can stop
    unconverged after 1000 iterations. Returns the weights, one per row of X.
    """
    if X.shape[0] == 0:
        return np.ones(0)
    with _parallel.blas_one_thread():  # as inside tf_solve: the same bits
        d, status = _engine.debias(
            np.ascontiguousarray(M, dtype=np.float64),
            np.ascontiguousarray(G_A, dtype=np.float64),
            np.ascontiguousarray(X, dtype=np.float64),
            n_orient,
        )
    if status != _engine.STATUS_OK:
        warn(
            "Debiasing did not converge: the active-set solver hit its iteration "
            "cap; returning the estimate without debiasing.",
            RuntimeWarning,
        )
        return np.ones(X.shape[0])
    logger.info(
        f"Debiasing: exact bound-constrained solve on "
        f"{X.shape[0] // n_orient} position(s)"
    )
    return d


# --------------------------------------------------------------------------
# public solvers
# --------------------------------------------------------------------------
def _solver_core(
    M,
    G,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    maxit,
    tol,
    dgap_freq,
    dtype=np.float64,
    max_outer=None,
):
    M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep = (
        _check_problem(
            M,
            G,
            n_orient,
            alpha_space,
            alpha_time,
            maxit,
            tol,
            dgap_freq,
            wsize,
            tstep,
            dtype=dtype,
        )
    )
    frame = TFFrame(M.shape[1], wsize, tstep, dtype=dtype)
    logger.info("Using block coordinate descent with active set approach")
    spec = _Spec(
        alpha_space,
        alpha_time,
        frame,
        n_orient,
        maxit,
        tol,
        dgap_freq,
        max_outer=max_outer,
    )
    res = _tf_solve(M, G, spec)
    return M, G, n_orient, frame, res


@verbose
def tf_mixed_norm_solver(
    M,
    G,
    alpha_space,
    alpha_time,
    wsize=64,
    tstep=4,
    n_orient=1,
    maxit=200,
    tol=1e-8,
    active_set_size=None,
    debias=True,
    return_gap=False,
    dgap_freq=10,
    verbose=None,
):
    """Solve TF-MxNE (L21 + L1 on STFT coefficients) on arrays.

    Same parameters and returns as
    :func:`mne.inverse_sparse.mxne_optim.tf_mixed_norm_solver`.

    Parameters
    ----------
    M : array, shape (n_sensors, n_times)
        The (whitened) data.
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    alpha_space : float >= 0
        Regularization of the spatial (L21) penalty.
    alpha_time : float >= 0
        Regularization of the temporal (L1) penalty.
    wsize : int | list of int
        Window length(s) of the STFT; multiples of 4.
    tstep : int | list of int
        Hop(s) of the STFT; multiples of 2 dividing ``wsize`` (same length).
    n_orient : int
        Number of dipoles per position (1, 3, or any positive integer).
    maxit : int
        Maximum number of block coordinate descent epochs per inner solve.
    tol : float > 0
        Stop when the duality gap of the full problem is below ``tol``.
    active_set_size : None
        Accepted and ignored, as in MNE.
    debias : bool
        Remove the amplitude bias of the estimate.
    return_gap : bool
        Also return the final duality gap.
    dgap_freq : int | np.inf
        Compute the gap of the inner problem every ``dgap_freq`` epochs.
    %(verbose)s

    Returns
    -------
    X : array, shape (n_active, n_times)
        Time courses of the active sources.
    active_set : array of bool, shape (n_sources,)
        Mask of the active sources.
    E : list of float
        Primal objective at each gap evaluation.
    gap : float
        The final duality gap (if ``return_gap``).

    Notes
    -----
    The outer loop is capped at :data:`MAX_OUTER_ITER` working-set iterations;
    reaching the cap emits a ``RuntimeWarning`` with the gap reached. ``M`` and
    ``G`` are used in C order (an F-ordered ``G`` is copied), so the result does
    not depend on the caller's memory layout.
    """
    check_bool(debias, "debias")
    check_bool(return_gap, "return_gap")
    M, G, n_orient, frame, res = _solver_core(
        M, G, alpha_space, alpha_time, wsize, tstep, n_orient, maxit, tol, dgap_freq
    )
    n_src = G.shape[1]
    active_set = np.zeros(n_src, bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if debias and active_set.any():
        X = X * _debias(M, G[:, active_set], X, n_orient)[:, None]
    if return_gap:
        return X, active_set, res.E, res.gap
    return X, active_set, res.E


def _reweights(frame, Z, n_orient):
    """irTF-MxNE weights from the previous coefficients (internal layout).

    ``w_space = 1 / (2 sqrt(||Z_j||))``, ``w_time = 1 / (2 sqrt(|Z_jk|))`` and 0
    (coefficient held at zero) where ``Z_jk == 0``.
    """
    n_pos = Z.shape[0] // n_orient
    mag2 = (Z.astype(np.float64) ** 2).reshape(n_pos, n_orient, -1, 2).sum(axis=(1, 3))
    mult = frame.plan.multiplicity.astype(np.float64)
    g_space = np.sqrt(np.sqrt(mag2 @ mult))
    g_time = np.sqrt(np.sqrt(mag2))
    with np.errstate(divide="ignore"):
        w_time = np.where(g_time > 0, 1.0 / (2.0 * g_time), 0.0)
    return 1.0 / (2.0 * g_space), w_time, g_space, g_time


def _iterative_core(
    M,
    G,
    spec,
    n_tfmxne_iter,
    *,
    warm=None,
    progress=None,
    screen_init=None,
    on_outer=None,
):
    """Reweighted solves; returns (result on the final support, E, n_iter_done).

    ``spec``: the :class:`_Spec` of every solve (``spec.mixed``: the first one
    only); ``warm = (init_positions, Z_init)`` starts the first one.
    ``progress(k)`` is called after reweighting ``k`` (0-based); ``on_outer`` is
    passed to every solve (see :func:`_tf_solve`).
    """
    frame, n_orient = spec.frame, spec.n_orient
    n_pos = G.shape[1] // n_orient
    lc_all = _lipschitz(G, n_orient)
    positions = np.arange(n_pos)
    E = []
    res = None
    mult = frame.plan.multiplicity.astype(np.float64)
    k_done = 0
    history = []  # the outer iterations of every solve
    for k in range(n_tfmxne_iter):
        k_done = k + 1
        if k == 0:
            weights, Gk, lck, start = None, G, lc_all, warm
        else:
            w_space, w_time, _, _ = _reweights(frame, res.Z, n_orient)
            weights = (w_space, w_time)
            positions = res.positions.copy()
            Gk = G[:, _cols(positions, n_orient)]
            lck = lc_all[positions]
            start = (np.arange(len(positions)), res.Z)
        Z_prev = None if res is None else res.Z.copy()
        pos_prev = None if res is None else res.positions.copy()
        new = _tf_solve(
            M,
            Gk,
            replace(spec, mixed=spec.mixed and k == 0),
            lc=lck,
            weights=weights,
            warm=start,
            screen_init=screen_init if k == 0 else None,
            on_outer=on_outer,
        )
        new.positions = positions[new.positions]  # back to indices into G
        history += [dict(rec, solve=k) for rec in new.history]
        new.history = history
        res = new
        if progress is not None:
            progress(k)
        if len(res.positions):
            _, _, g_space, g_time = _reweights(frame, res.Z, n_orient)
            GX = G[:, _cols(res.positions, n_orient)] @ res.X
            p_obj = (
                0.5 * float(np.sum((M - GX) ** 2))
                + spec.alpha_space * g_space.sum()
                + spec.alpha_time * float((g_time @ mult).sum())
            )
            E.append(p_obj)
            logger.info(
                f"Iteration {k + 1}: active set size={len(res.positions)}, E={p_obj:f}"
            )
            if k > 0 and pos_prev is not None and np.array_equal(pos_prev, res.positions):
                zc = res.Z.astype(np.float64).reshape(len(res.Z), -1, 2)
                zp = Z_prev.astype(np.float64).reshape(len(Z_prev), -1, 2)
                max_diff = float(np.sqrt(((zc - zp) ** 2).sum(-1)).max())
                if max_diff < spec.tol:
                    logger.info(f"Convergence reached after {k} reweightings!")
                    break
        else:
            E.append(0.5 * float(np.sum(M**2)))
            logger.info(f"Iteration {k + 1}: as_size=0, E={E[-1]:f}")
            break
    return res, E, k_done


@verbose
def iterative_tf_mixed_norm_solver(
    M,
    G,
    alpha_space,
    alpha_time,
    n_tfmxne_iter,
    wsize=64,
    tstep=4,
    maxit=3000,
    tol=1e-8,
    debias=True,
    n_orient=1,
    dgap_freq=10,
    verbose=None,
):
    """Solve irTF-MxNE (iteratively reweighted TF-MxNE) on arrays.

    Same parameters and returns as
    :func:`mne.inverse_sparse.mxne_optim.iterative_tf_mixed_norm_solver`: the
    first iteration is TF-MxNE; each following one reweights the L21 and L1
    penalties by ``1 / (2 sqrt(.))`` of the previous solution (a majorization of
    the L0.5 quasi-norms) on the previous support.

    Parameters
    ----------
    M : array, shape (n_sensors, n_times)
        The (whitened) data.
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    alpha_space : float >= 0
        Regularization of the spatial penalty.
    alpha_time : float >= 0
        Regularization of the temporal penalty.
    n_tfmxne_iter : int >= 1
        Number of reweighting iterations.
    wsize, tstep : int | list of int
        STFT window length(s) and hop(s).
    maxit : int
        Maximum number of BCD epochs per inner solve.
    tol : float > 0
        Duality-gap tolerance of each solve, and tolerance on the change of the
        coefficients between reweightings.
    debias : bool
        Remove the amplitude bias of the estimate.
    n_orient : int
        Number of dipoles per position.
    dgap_freq : int | np.inf
        Frequency of the inner gap evaluations.
    %(verbose)s

    Returns
    -------
    X : array, shape (n_active, n_times)
        Time courses of the active sources.
    active_set : array of bool, shape (n_sources,)
        Mask of the active sources.
    E : list of float
        Objective (with the L0.5 penalties) after each reweighting.
    """
    n_tfmxne_iter = check_int(n_tfmxne_iter, "n_tfmxne_iter", 1)
    check_bool(debias, "debias")
    M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep = (
        _check_problem(
            M, G, n_orient, alpha_space, alpha_time, maxit, tol, dgap_freq, wsize, tstep
        )
    )
    frame = TFFrame(M.shape[1], wsize, tstep)
    M = np.ascontiguousarray(M)
    spec = _Spec(
        alpha_space,
        alpha_time,
        frame,
        n_orient,
        maxit,
        tol,
        dgap_freq,
        warn_name="iterative_tf_mixed_norm_solver",
    )
    res, E, _ = _iterative_core(M, G, spec, n_tfmxne_iter)
    active_set = np.zeros(G.shape[1], bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    if debias and active_set.any():
        X = X * _debias(M, G[:, active_set], X, n_orient)[:, None]
    return X, active_set, E


# --------------------------------------------------------------------------
# certificates on MNE's coefficient layout (for users and tests)
# --------------------------------------------------------------------------
def norm_epsilon_inf(
    G, R, l1_ratio, n_orient, wsize=64, tstep=4, w_space=None, w_time=None
):
    """Max over positions of the epsilon norm of ``Phi(G_j^T R)`` (exact).

    The dual norm of the TF-MxNE penalty: at ``R = M`` it is alpha_max, the
    smallest regularisation (``alpha_space + alpha_time``) for which the
    estimate is zero. MNE computes each position's epsilon norm by sorting;
    this solves for it exactly (a Newton iteration), with the same value up
    to rounding. Same arguments as MNE's ``norm_epsilon_inf``
    (``mne.inverse_sparse.mxne_optim``), with the frame given by ``wsize``
    and ``tstep`` instead of MNE's private ``_Phi`` object.

    Parameters
    ----------
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    R : array, shape (n_sensors, n_times)
        The residual (the data for alpha_max).
    l1_ratio : float in [0, 1]
        Share of the time-frequency l1 penalty: ``alpha_time / (alpha_space +
        alpha_time)``.
    n_orient : int
        Number of dipoles per position (1 fixed, 3 free).
    wsize, tstep : int | list of int
        Window length(s) and hop(s) of the STFT (one per dictionary).
    w_space : array, shape (n_positions,) | None
        Weights of the l2 (spatial) part of each position's norm.
    w_time : array, shape (n_positions, n_coefs) | None
        Weights of the l1 (time-frequency) part, in MNE's coefficient order.

    Returns
    -------
    nu : float
        The largest epsilon norm over the positions.
    """
    G = check_real_array(G, "G", 2, dtype=np.float64)
    R = check_real_array(R, "R", 2, dtype=np.float64)
    l1_ratio = check_float(l1_ratio, "l1_ratio", 0.0, 1.0)
    n_orient = _check_shapes(G, R, n_orient, "R")
    frame = TFFrame(R.shape[1], wsize, tstep)
    GtR = np.ascontiguousarray(G.T @ R)
    wt = frame.from_mne_weights(w_time) if w_time is not None else None
    ws = None if w_space is None else np.ascontiguousarray(w_space, dtype=np.float64)
    return _dual_norm_screened(
        frame.plan, GtR, int(n_orient), l1_ratio, weights=(ws, wt)
    )[0]


def dgap_l21l1(
    M,
    G,
    Z,
    active_set,
    alpha_space,
    alpha_time,
    wsize,
    tstep,
    n_orient,
    w_space=None,
    w_time=None,
):
    """Duality gap of TF-MxNE at ``Z`` (MNE layout, rows of the active sources).

    The certificate of a TF-MxNE estimate: the primal objective minus the dual
    objective of a feasible dual point (the residual rescaled by its exact
    epsilon-inf dual norm). It is non-negative and bounds the estimate's
    distance to the optimal objective. As MNE's ``dgap_l21l1``
    (``mne.inverse_sparse.mxne_optim``), with the frame given by ``wsize``
    and ``tstep`` instead of MNE's private ``_Phi`` objects, and without the
    best dual objective carried between calls.

    Parameters
    ----------
    M : array, shape (n_sensors, n_times)
        The data.
    G : array, shape (n_sensors, n_sources)
        The gain matrix.
    Z : array, shape (n_active, n_coefs)
        Complex STFT coefficients of the active sources, in MNE's layout (every
        dictionary's coefficients concatenated).
    active_set : array of bool, shape (n_sources,)
        The sources ``Z`` holds the coefficients of.
    alpha_space, alpha_time : float
        Weights of the l21 (spatial) and l1 (time-frequency) penalties.
    wsize, tstep : int | list of int
        Window length(s) and hop(s) of the STFT (one per dictionary).
    n_orient : int
        Number of dipoles per position.
    w_space : array, shape (n_positions,) | None
        Weights of the l21 penalty.
    w_time : array, shape (n_positions, n_coefs) | None
        Weights of the l1 penalty, in MNE's coefficient order.

    Returns
    -------
    gap : float
        The duality gap, ``p_obj - d_obj``.
    p_obj : float
        The primal objective at ``Z``.
    d_obj : float
        The dual objective at the rescaled residual.
    """
    M = check_real_array(M, "M", 2, dtype=np.float64)
    G = check_real_array(G, "G", 2, dtype=np.float64)
    n_orient = _check_shapes(G, M, n_orient, "M")
    alpha_space, alpha_time = _check_alphas(alpha_space, alpha_time)
    frame = TFFrame(M.shape[1], wsize, tstep)
    active_set = np.asarray(active_set)
    if active_set.dtype != bool or active_set.shape != (G.shape[1],):
        raise ValueError(
            f"active_set must be a boolean mask of shape ({G.shape[1]},) (one entry per "
            f"column of G), got {_short(active_set)}"
        )
    n_act = int(active_set.sum())
    if len(Z) != n_act or (n_act and np.ndim(Z) != 2):
        raise ValueError(
            f"Z must have one row per active source ({n_act}), got shape {np.shape(Z)}"
        )
    Zi = frame.from_mne(Z) if len(Z) else np.zeros((0, 2 * frame.n_coefs))
    X = frame.phiT(Zi)
    R = M - G[:, active_set] @ X
    wt = frame.from_mne_weights(w_time) if w_time is not None else None
    act_pos = active_set[::n_orient]
    l21, l1 = _engine.penalties(
        frame.plan,
        np.ascontiguousarray(Zi),
        n_orient,
        wt[act_pos] if wt is not None else None,
    )
    ws = np.ones(len(l21)) if w_space is None else np.asarray(w_space)[act_pos]
    p_obj = (
        0.5 * float(np.sum(R**2))
        + alpha_space * float(l21 @ ws)
        + alpha_time * float(l1.sum())
    )
    nu = _dual_norm_screened(
        frame.plan,
        np.ascontiguousarray(G.T @ R),
        n_orient,
        alpha_time / (alpha_space + alpha_time),
        weights=(
            None if w_space is None else np.ascontiguousarray(w_space, dtype=np.float64),
            wt,
        ),
    )[0]
    d_obj = _dual_objective(
        float(np.sum(R**2)), float(np.vdot(R, M)), nu, alpha_space + alpha_time
    )
    return p_obj - d_obj, p_obj, d_obj
