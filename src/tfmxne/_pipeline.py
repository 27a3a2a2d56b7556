# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The prepared problem: input checks, preparation, one solve, its result.

The layer under the public functions: :mod:`tfmxne.path` (paths, automatic
alpha, batches) and :mod:`tfmxne.inverse` (``tf_mixed_norm``, ``solve``) are
built on it, and it imports neither (the imports of the package go one way).

The preparation (channel selection, whitening with rank and PCA, depth
weighting, loose orientation, weights, time window, alpha as a percentage of
alpha_max) is MNE's: the same MNE 1.13 routines, except that the noise
covariance is prepared once instead of three times (``_prepare.prepare_gain``,
bit-identical to MNE's ``_prepare_gain``), so that only the solver differs.
"""

import numbers
import time

import numpy as np
from mne import Covariance, Evoked, Forward
from mne.forward import is_fixed_orient
from mne.utils import logger

from . import _compat, _parallel
from ._prepare import prepare_gain
from ._stft import TFFrame, internal_to_mne
from ._validation import _short, check_alpha, check_bool, check_l1_ratio, check_window
from .solver import (
    _cols,
    _debias,
    _dual_norm_screened,
    _gtr,
    _iterative_core,
    _tf_solve,
)


class NoActiveSourcesError(Exception):
    """No source survives the regularisation (alpha too large).

    A subclass of ``Exception``, so code written for MNE (which raises a bare
    ``Exception``) keeps working; the message starts with MNE's text.
    """


# --------------------------------------------------------------------------
# validation (cheap, before any heavy work)
# --------------------------------------------------------------------------
def _check_inputs(evoked, forward, noise_cov, alpha, l1_ratio, opts):
    """Check the arguments of a solve against each other and against the data.

    ``opts`` are checked options (:func:`tfmxne._options.check_options`); this
    checks what needs the data: the types of the MNE objects, ``alpha`` and
    ``l1_ratio``, the options that depend on the forward or on the data, the
    values of the data and of the covariance, the channels in common.
    Returns the checked ``(alpha, l1_ratio)``.
    """
    _check_objects(evoked, forward, noise_cov)
    if alpha is None or isinstance(alpha, str):
        raise ValueError(
            "alpha must be a number in (0, 100) here (automatic selection is done by "
            f"the caller), got alpha={alpha!r}"
        )
    alpha = check_alpha(alpha)
    l1_ratio = check_l1_ratio(l1_ratio)
    _check_against_forward(forward, opts)
    _check_data(evoked, forward, noise_cov)
    lr = check_window(opts.window)
    if lr is not None:
        sfreq = float(evoked.info["sfreq"])
        n_l, n_r = int(lr[0] * sfreq), int(lr[1] * sfreq)
        if n_l + n_r > evoked.data.shape[1]:
            raise ValueError(
                f"window={opts.window!r} ({n_l} + {n_r} samples) is longer than the data "
                f"({evoked.data.shape[1]} samples)"
            )
    if opts.weights is not None:
        _check_weights(opts.weights, forward)
    return alpha, l1_ratio


def _check_objects(evoked, forward, noise_cov):
    if not isinstance(evoked, Evoked):
        raise TypeError(f"evoked must be an instance of mne.Evoked, got {_short(evoked)}")
    if not isinstance(forward, Forward):
        raise TypeError(
            f"forward must be an instance of mne.Forward, got {_short(forward)}"
        )
    if not isinstance(noise_cov, Covariance):
        raise TypeError(
            f"noise_cov must be an instance of mne.Covariance, got {_short(noise_cov)}"
        )


def _check_against_forward(forward, opts):
    """The options the source space or the orientation of the forward restricts."""
    pick_ori, loose = opts.pick_ori, opts.loose
    if pick_ori == "normal" and forward["src"].kind not in ("surface", "discrete"):
        raise ValueError(
            "pick_ori='normal' needs a surface (or discrete) source space, as "
            f"mne.minimum_norm.apply_inverse; got a {forward['src'].kind} source space"
        )
    if pick_ori == "vector" and is_fixed_orient(forward):
        raise ValueError(
            "pick_ori='vector' cannot be combined with a fixed orientation forward "
            "solution."
        )
    if is_fixed_orient(forward):
        vals = list(loose.values()) if isinstance(loose, dict) else [loose]
        if not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and v == 0
            for v in vals
        ):
            raise ValueError(
                "loose must be 0 with a fixed-orientation forward solution (it has no "
                f"tangential components to weight), got loose={loose!r}"
            )


def _check_data(evoked, forward, noise_cov):
    """Finite values, a usable covariance, good channels in common."""
    data = evoked.data
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError(
            f"evoked must have at least 2 time points, got {data.shape[1]} "
            f"(evoked.data.shape={data.shape})"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("evoked.data contains NaN or Inf values")
    if not np.all(np.isfinite(forward["sol"]["data"])):
        raise ValueError("forward['sol']['data'] (the gain) contains NaN or Inf values")
    var = _check_cov(noise_cov)
    common = (
        set(evoked.ch_names) & set(forward["sol"]["row_names"]) & set(noise_cov.ch_names)
    )
    good = [c for c in evoked.ch_names if c in common and c not in evoked.info["bads"]]
    if not good:
        raise ValueError(
            "evoked, forward and noise_cov have no good channels in common (evoked: "
            f"{len(evoked.ch_names)} channels, forward: {forward['nchan']}, noise_cov: "
            f"{len(noise_cov.ch_names)})"
        )
    # (channels in neither, such as stim or EOG, are not data channels)
    fwd_cov = set(forward["sol"]["row_names"]) | set(noise_cov.ch_names)
    n_drop = sum(
        c in fwd_cov and c not in common
        for c in evoked.ch_names
        if c not in evoked.info["bads"]
    )
    if n_drop:
        logger.info(
            f"    {n_drop} good channels of the evoked are in the forward or in "
            "noise_cov but not in both, and are not used (as MNE)"
        )
    cov_idx = [noise_cov.ch_names.index(c) for c in good]
    if not np.any(var[cov_idx] > 0):
        raise ValueError(
            f"noise_cov is zero on all the {len(good)} channels used: it cannot "
            "whiten the data"
        )
    n_zero = int(np.sum(var[cov_idx] == 0))
    if n_zero:
        logger.info(
            f"    noise_cov has zero variance on {n_zero} of the {len(good)} "
            "channels used: the whitener (rank) drops them, as MNE"
        )
    if not np.any(data[[evoked.ch_names.index(c) for c in good]]):
        raise ValueError(
            f"evoked.data is zero on all the {len(good)} channels used: no source can "
            "be estimated"
        )


def _check_cov(noise_cov):
    """Finite, symmetric, positive semi-definite; returns the variances."""
    cov = noise_cov.data
    if not np.all(np.isfinite(cov)):
        raise ValueError("noise_cov.data contains NaN or Inf values")
    var = np.diag(cov) if not noise_cov["diag"] else cov
    if np.any(var < 0):
        raise ValueError(
            f"noise_cov has negative variances, got min(variance)={var.min():.3e}"
        )
    if noise_cov["diag"]:
        return var
    # in correlation units: channel types differ by ~1e13 in variance, so an
    # absolute tolerance would hide an error in the small (gradiometer) block
    scale = np.sqrt(var)
    scale[scale == 0] = scale.max() if scale.max() > 0 else 1.0
    corr = cov / scale[:, None] / scale[None, :]
    if not np.allclose(corr, corr.T, rtol=0.0, atol=1e-8):
        k = np.unravel_index(np.argmax(np.abs(corr - corr.T)), corr.shape)
        raise ValueError(
            "noise_cov.data is not symmetric: entries "
            f"{noise_cov.ch_names[k[0]]}/{noise_cov.ch_names[k[1]]} differ by "
            f"{abs(corr[k] - corr[k[::-1]]):.2e} in correlation units"
        )
    # cheap test first (Cholesky with a tiny ridge), eigenvalues only to report
    try:
        np.linalg.cholesky(corr + 1e-6 * np.eye(len(corr)))
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(corr)
        raise ValueError(
            "noise_cov is not positive semi-definite: smallest eigenvalue "
            f"{ev.min():.3e} of the correlation matrix (largest {ev.max():.3e})"
        ) from None
    return var


def _check_bools(**flags):
    for name, val in flags.items():
        check_bool(val, name)


def _check_solve_options(dtype, return_residual):
    """The options solve() adds to tf_mixed_norm's: dtype and return_residual."""
    check_bool(return_residual, "return_residual")
    try:  # (np.dtype(None) is float64: None is refused explicitly)
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got dtype={_short(dtype)}")
    return dt


def _check_weights(weights, forward):
    n_pos = forward["nsource"]
    if isinstance(weights, _compat.BaseSourceEstimate):
        fv = [s["vertno"] for s in forward["src"]]
        wv = (
            weights.vertices if isinstance(weights.vertices, list) else [weights.vertices]
        )
        if len(fv) != len(wv) or any(
            len(a) != len(b) or np.any(a != b) for a, b in zip(fv, wv)
        ):
            raise ValueError(
                "weights (a source estimate) must have the vertices of the forward "
                f"source space: got {[len(v) for v in wv]} vertices per space, forward "
                f"has {[len(v) for v in fv]} (or different vertex numbers)"
            )
        w = np.max(np.abs(weights.data), axis=tuple(range(1, weights.data.ndim)))
    else:
        if isinstance(weights, str) or not hasattr(weights, "__len__"):
            raise TypeError(
                "weights must be None, a source estimate or an array, got "
                f"{_short(weights)}"
            )
        w = np.asarray(weights)
        if np.iscomplexobj(w):
            raise ValueError(f"weights must be real valued, got dtype {w.dtype}")
        if not (
            np.issubdtype(w.dtype, np.floating)
            or np.issubdtype(w.dtype, np.integer)
            or w.dtype == bool
        ):
            raise TypeError(
                f"weights must be a real numeric array, got {_short(weights)}"
            )
        w = w.astype(float)
        if w.ndim != 1 or len(w) != n_pos:
            raise ValueError(
                f"weights must have one value per source position ({n_pos}), got shape "
                f"{w.shape}"
            )
        if np.any(w < 0):
            raise ValueError(f"weights must be non-negative, got min(weights)={w.min()}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or Inf values")
    if not np.any(w > 0):
        raise ValueError("weights are all zero: no source could be active")


# --------------------------------------------------------------------------
# preparation
# --------------------------------------------------------------------------
def _taper(n, sfreq, window):
    """The weights of :func:`_window_evoked` (ones where ``window`` is None)."""
    taper = np.ones(n)
    if window is None:
        return taper
    if isinstance(window, numbers.Real):
        lsize = rsize = float(window)
    else:
        lsize, rsize = window
    nl, nr = int(lsize * sfreq), int(rsize * sfreq)
    if nl > 0:
        taper[:nl] = np.hanning(2 * nl)[:nl]
    if nr > 0:
        taper[n - nr :] = np.hanning(2 * nr)[nr:]
    return taper


def _window_evoked(evoked, window):
    """Taper both ends with half Hanning windows (copy), without MNE's 0 bug;
    ``window=None``: the evoked itself."""
    if window is None:
        return evoked
    evoked = evoked.copy()
    taper = _taper(len(evoked.times), float(evoked.info["sfreq"]), window)
    evoked.data *= taper[None, :]
    return evoked


class _Prepared:
    """Whitened data and scaled gain, shared by solves on the same forward."""


class _PreparedForward:
    """Whitened, depth-weighted gain shared by every solve on the same forward."""


def _prepare_forward_part(
    info, forward, noise_cov, loose, depth, weights, weights_min, pca, rank
):
    forward_p, gain, gain_info, whitener, source_weighting, mask = prepare_gain(
        forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min
    )
    fp = _PreparedForward()
    fp.forward = forward_p
    fp.gain = gain
    fp.gain_info = gain_info
    fp.whitener = whitener
    fp.source_weighting = source_weighting
    fp.mask = mask
    fp.n_orient = 1 if is_fixed_orient(forward_p) else 3
    fp.ch_names = list(info["ch_names"])
    return fp


def _alpha_max(gain, M, n_orient, l1_ratio, wsize, tstep):
    """alpha_max / 100 as MNE: epsilon-inf dual norm of (G, M), exact.

    Also returns the screening it was computed with, ``(G^T M, nu, exact)``,
    which the first outer iteration of a solve would otherwise recompute.
    """
    frame = TFFrame(M.shape[1], wsize, tstep, dtype=np.float64)
    n_thr = _parallel.solve_threads()
    GtM = _gtr(gain, M, n_thr)
    nu_max, _, nu, exact = _dual_norm_screened(
        frame.plan, GtM, n_orient, l1_ratio, n_thr=n_thr
    )
    return nu_max * 0.01, (GtM, nu, exact)


def _prepare_data(fp, evoked, window, l1_ratio, wsize, tstep):
    _compat.check_reference(evoked)
    all_ch_names = evoked.ch_names
    ev = _window_evoked(evoked, window)
    sel = [all_ch_names.index(name) for name in fp.gain_info["ch_names"]]
    logger.info("Whitening data matrix.")
    M = fp.whitener @ ev.data[sel]
    alpha_max, (GtM, nu, exact) = _alpha_max(
        fp.gain, M, fp.n_orient, l1_ratio, wsize, tstep
    )
    if not alpha_max > 0:
        raise ValueError(
            "The whitened data are zero (or orthogonal to the gain): alpha_max = 0, no "
            "source can be estimated"
        )
    p = _Prepared()
    p.forward = fp.forward
    p.gain = fp.gain / alpha_max
    p.source_weighting = fp.source_weighting / alpha_max
    p.mask = fp.mask
    p.gain_info = fp.gain_info
    p.whitener = fp.whitener
    p.M = M
    p.evoked = ev
    p.n_orient = fp.n_orient
    p.alpha_max = alpha_max
    p.sel = sel
    p.nave = ev.nave
    p.taper = _taper(len(ev.times), float(ev.info["sfreq"]), window)
    # the screening at R = M, in the units of the scaled gain (the epsilon norm
    # is positively homogeneous); valid for this M, l1_ratio and dictionary only
    GtM /= alpha_max
    p.screen0 = (
        M,
        l1_ratio,
        tuple(np.atleast_1d(wsize)),
        tuple(np.atleast_1d(tstep)),
        (GtM, nu / alpha_max, exact),
    )
    return p


def _prepare(
    evoked,
    forward,
    noise_cov,
    loose,
    depth,
    weights,
    weights_min,
    pca,
    rank,
    window,
    l1_ratio,
    wsize,
    tstep,
    dtype=np.float64,
):
    fp = _prepare_forward_part(
        evoked.info, forward, noise_cov, loose, depth, weights, weights_min, pca, rank
    )
    return _prepare_data(fp, evoked, window, l1_ratio, wsize, tstep)


# --------------------------------------------------------------------------
# result object
# --------------------------------------------------------------------------
class TFMxNEResult:
    """Everything a TF-MxNE solve produced.

    Attributes
    ----------
    estimate : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | ...
        What :func:`tf_mixed_norm` returns (without ``return_as_dipoles``).
    residual : Evoked
        The data minus the fit (on the channels used), as MNE's residual.
    alpha, l1_ratio : float
        The regularisation used (alpha in percent of ``alpha_max``).
    alpha_max : float
        Smallest regularisation (in units of the whitened gain) for which the
        estimate is zero; alpha is a percentage of it.
    gap : float
        Final duality gap (whitened, scaled problem).
    tol : float
        Absolute tolerance used on the gap (``tol * ||M||^2``).
    converged : bool
        Whether the gap reached the tolerance.
    n_iter : int
        Block coordinate descent epochs (all solves).
    explained_variance : float
        ``1 - ||M - G X||^2 / ||M||^2`` on the whitened data.
    objective : list of float
        Primal objective at each gap evaluation.
    gap_history : list of float
        Duality gaps at each outer iteration of each solve.
    tf_coefs : ndarray, complex, shape (n_active_sources, n_coefs)
        STFT coefficients of the active sources in MNE's layout (per dictionary,
        ``(n_freqs, n_steps)`` flattened), of the whitened, scaled problem before
        debiasing.
    active_set : ndarray of bool
        Active sources (over all sources of the forward).
    X : ndarray, shape (n_active_sources, n_times)
        Source amplitudes (Am), rows of ``active_set``.
    elapsed : float
        Seconds spent in the solve.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def dipoles(self):
        """The active sources as a list of :class:`mne.Dipole` (as MNE returns)."""
        return _compat.make_dipoles_sparse(
            self.X,
            self.active_set,
            self._forward,
            self.times[0],
            1.0 / self._sfreq,
            self._M,
            self._gain_active,
        )

    @property
    def tf_coefs(self):
        # MNE's layout of the solver's coefficients, made on first use
        if self.__dict__.get("_tf_coefs") is None:
            self._tf_coefs = internal_to_mne(self._res.Z, self.n_steps, self.n_freqs)
        return self._tf_coefs

    def tf_coefs_of(self, k):
        """Complex STFT coefficients of active source ``k`` per dictionary.

        Returns a list with one array of shape (n_freqs, n_steps) per dictionary.
        """
        out, off = [], 0
        for nf, ns in zip(self.n_freqs, self.n_steps):
            out.append(self.tf_coefs[k, off : off + nf * ns].reshape(nf, ns))
            off += nf * ns
        return out

    def __repr__(self):
        n = int(self.active_set.sum())
        return (
            f"<TFMxNEResult | {n} active sources, alpha={self.alpha:g}, "
            f"l1_ratio={self.l1_ratio:g}, gap={self.gap:.2e}, converged="
            f"{self.converged}, explained variance={self.explained_variance:.3f}>"
        )


# --------------------------------------------------------------------------
# estimates
# --------------------------------------------------------------------------
def _normal_component(X, active_idx, forward, n_orient):
    """Signed component along the local cortical normal of each active position."""
    if n_orient == 1:
        return X
    nn_src = forward["source_nn"].reshape(-1, 3, 3)
    # surface normals of the active positions
    normals = np.concatenate([s["nn"][s["vertno"]] for s in forward["src"]])
    out = np.empty((len(active_idx), X.shape[1]))
    for k, p in enumerate(active_idx):
        v = nn_src[p].T @ X[3 * k : 3 * k + 3]  # xyz (head coords) time courses
        out[k] = normals[p] @ v
    return out


def _compute_residual(forward, evoked, X, active_set, info):
    """MNE's residual (data minus the fit, the fit projected by the evoked's active
    projectors) on the channels of ``info``, with one copy of the evoked instead
    of MNE's two (the copies dominate the cost of a small solve, and hold the GIL)."""
    from mne.proj import make_projector

    ch_names = info["ch_names"]
    row = {c: k for k, c in enumerate(forward["sol"]["row_names"])}
    sel = [row[c] for c in ch_names]
    residual = evoked.copy().pick(ch_names)
    fit = forward["sol"]["data"][sel][:, active_set] @ X
    active = [p for p in evoked.info["projs"] if p["active"]]
    if active:
        proj, ncomp, _ = make_projector(active, ch_names, bads=residual.info["bads"])
        if ncomp:
            fit = proj @ fit
    residual.data -= fit
    return residual


def _make_estimate(X, active_set, forward, tmin, tstep, pick_ori):
    if pick_ori != "normal":
        return _compat.make_sparse_stc(
            X, active_set, forward, tmin, tstep, pick_ori=pick_ori
        )
    n_orient = 1 if is_fixed_orient(forward) else 3
    active_idx = np.unique(np.flatnonzero(active_set) // n_orient)
    Xn = _normal_component(X, active_idx, forward, n_orient)
    vertices, start = [], 0
    for s in forward["src"]:
        stop = start + len(s["vertno"])
        sel = active_idx[(active_idx >= start) & (active_idx < stop)] - start
        vertices.append(s["vertno"][sel])
        start = stop
    src = forward["src"]
    return _compat.make_stc(Xn, vertices, src.kind, tmin, tstep, src[0]["subject_his_id"])


# --------------------------------------------------------------------------
# one solve
# --------------------------------------------------------------------------
def _solver_hooks(emit, n_tfmxne_iter):
    """The solver's callbacks that turn its iterations into progress events.

    ``on_outer(n_outer, gap, n_active)`` after each outer certificate gives an
    'outer' event; ``progress(k)`` after reweighting ``k`` a 'reweighting' one
    with the last certificate of that reweighting's solve.
    """
    if emit is None:
        return None, None
    last = {}

    def on_outer(n_outer, gap, n_active):
        last.update(gap=gap, n_active=n_active)
        emit("outer", n_outer, gap=gap, n_active=n_active)

    def on_reweighting(k):
        emit("reweighting", k + 1, total=n_tfmxne_iter, **last)

    return on_outer, on_reweighting


def _solve_prepared(
    p,
    alpha,
    l1_ratio,
    maxit,
    tol,
    debias,
    wsize,
    tstep,
    dgap_freq,
    pick_ori,
    n_tfmxne_iter,
    return_residual,
    dtype,
    t0=None,
    Z_init=None,
    init_positions=None,
    raise_empty=True,
    emit=None,
):
    """Solve the prepared problem ``p`` at (alpha, l1_ratio): a TFMxNEResult.

    ``emit`` (a :class:`tfmxne._progress._Emitter` or None) receives the
    'outer' and 'reweighting' events of the solve.
    """
    t0 = time.perf_counter() if t0 is None else t0
    on_outer, on_reweighting = _solver_hooks(emit, n_tfmxne_iter)
    M = p.M
    n_orient = p.n_orient
    tol_abs = tol * float(np.sum(M * M))
    alpha_space = alpha * (1.0 - l1_ratio)
    alpha_time = alpha * l1_ratio
    frame = TFFrame(M.shape[1], wsize, tstep, dtype=dtype)
    Mc = np.ascontiguousarray(M, dtype=dtype)
    G = np.asarray(p.gain, dtype=dtype)
    screen = None
    s0 = getattr(p, "screen0", None)
    # (float64 only: the screening is exact for the float64 gain)
    if (
        s0 is not None
        and Z_init is None
        and np.dtype(dtype) == np.float64
        and s0[0] is M
        and s0[1:4]
        == (l1_ratio, tuple(np.atleast_1d(wsize)), tuple(np.atleast_1d(tstep)))
    ):
        screen = s0[4]
    logger.info("Using block coordinate descent with active set approach")
    if n_tfmxne_iter == 1:
        res = _tf_solve(
            Mc,
            G,
            alpha_space,
            alpha_time,
            frame,
            n_orient,
            maxit,
            tol_abs,
            dgap_freq,
            Z_init=Z_init,
            init_positions=init_positions,
            warn_name="tf_mixed_norm",
            screen_init=screen,
            on_outer=on_outer,
            mixed=True,
        )
        E = res.E
    else:
        res, E, _ = _iterative_core(
            Mc,
            G,
            alpha_space,
            alpha_time,
            n_tfmxne_iter,
            frame,
            n_orient,
            maxit,
            tol_abs,
            dgap_freq,
            log_name="tf_mixed_norm",
            Z_init=Z_init,
            init_positions=init_positions,
            progress=on_reweighting,
            screen_init=screen,
            on_outer=on_outer,
            mixed=True,
        )
    n_src = p.gain.shape[1]
    active_set = np.zeros(n_src, bool)
    active_set[_cols(res.positions, n_orient)] = True
    X = np.asarray(res.X, dtype=np.float64)
    gain = p.gain
    if active_set.any() and debias:
        X = X * _debias(M, gain[:, active_set], X, n_orient)[:, None]
    nM2 = float(np.sum(M * M))
    if not active_set.any():
        if raise_empty:
            raise NoActiveSourcesError(
                "No active dipoles found. alpha_space/alpha_time are too big "
                f"(alpha={alpha} % of alpha_max, alpha_max={p.alpha_max * 100:.6g} in "
                "whitened units; lower alpha)."
            )
        full = np.zeros(len(p.mask) if p.mask is not None else n_src, bool)
        return TFMxNEResult(
            estimate=None,
            residual=p.evoked.copy().pick(p.gain_info["ch_names"])
            if return_residual
            else None,
            alpha=alpha,
            l1_ratio=l1_ratio,
            alpha_max=p.alpha_max * 100.0,
            gap=res.gap,
            tol=tol_abs,
            converged=bool(res.converged),
            n_iter=res.n_iter,
            explained_variance=0.0,
            objective=list(E),
            gap_history=[res.gap],
            _tf_coefs=np.zeros((0, frame.n_coefs), complex),
            active_set=full,
            X=np.zeros((0, M.shape[1])),
            times=p.evoked.times.copy(),
            n_freqs=frame.n_freqs,
            n_steps=frame.n_steps,
            wsize=frame.wsizes,
            tstep=frame.tsteps,
            elapsed=time.perf_counter() - t0,
            residual_norm2=nM2,
            _forward=p.forward,
            _sfreq=p.evoked.info["sfreq"],
            _M=M,
            _gain_active=np.zeros((M.shape[0], 0)),
            _res=res,
        )
    gain_active = gain[:, active_set]
    rn2 = float(np.sum((M - gain_active @ X) ** 2))
    ev = 1.0 - rn2 / nM2 if nM2 > 0 else 0.0
    if p.mask is not None:
        full = np.zeros(len(p.mask), bool)
        full[p.mask] = active_set
        active_set = full
    X = X * p.source_weighting[active_set][:, None]
    gain_active = gain_active / p.source_weighting[active_set]
    forward = p.forward
    tmin = p.evoked.times[0]
    tstep_s = 1.0 / p.evoked.info["sfreq"]
    estimate = _make_estimate(X, active_set, forward, tmin, tstep_s, pick_ori)
    residual = None
    if return_residual:
        residual = _compute_residual(forward, p.evoked, X, active_set, p.gain_info)
    logger.info("[done]")
    return TFMxNEResult(
        estimate=estimate,
        residual=residual,
        alpha=alpha,
        l1_ratio=l1_ratio,
        alpha_max=p.alpha_max * 100.0,
        gap=res.gap,
        tol=tol_abs,
        converged=bool(res.converged),
        n_iter=res.n_iter,
        explained_variance=ev,
        objective=list(E),
        gap_history=[res.gap],
        active_set=active_set,
        X=X,
        times=p.evoked.times.copy(),
        n_freqs=frame.n_freqs,
        n_steps=frame.n_steps,
        wsize=frame.wsizes,
        tstep=frame.tsteps,
        elapsed=time.perf_counter() - t0,
        residual_norm2=rn2,
        _forward=forward,
        _sfreq=p.evoked.info["sfreq"],
        _M=M,
        _gain_active=gain_active,
        _res=res,
    )


def _solve_one(
    evoked,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    o,
    return_residual,
    dtype,
    emit=None,
    t0=None,
):
    """Check, prepare and solve one evoked at a given (alpha, l1_ratio)."""
    t0 = time.perf_counter() if t0 is None else t0
    alpha, l1_ratio = _check_inputs(evoked, forward, noise_cov, alpha, l1_ratio, o)
    p = _prepare(
        evoked,
        forward,
        noise_cov,
        o.loose,
        o.depth,
        o.weights,
        o.weights_min,
        o.pca,
        o.rank,
        o.window,
        l1_ratio,
        o.wsize,
        o.tstep,
    )
    return _solve_prepared(
        p,
        alpha,
        l1_ratio,
        o.maxit,
        o.tol,
        o.debias,
        o.wsize,
        o.tstep,
        o.dgap_freq,
        o.pick_ori,
        o.n_tfmxne_iter,
        return_residual,
        dtype,
        t0,
        emit=emit,
    )
