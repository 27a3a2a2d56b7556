# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The checks against the data, and the prepared problem every solve takes.

A call runs one way: check (the options, :mod:`tfmxne._options`; the inputs
against each other, :func:`check_inputs`), prepare (:func:`prepare_forward`
once, then :func:`prepare` for each evoked and l1_ratio), solve and build the
result (:mod:`tfmxne._solve`). Paths, the automatic alpha and batches take
their problems from the same two functions.

The preparation is MNE's (channel selection, whitening with rank and PCA,
depth weighting, loose orientation, weights, time window, alpha as a
percentage of alpha_max): the same MNE routines, except that the noise
covariance is prepared once instead of three times
(:func:`tfmxne._prepare.prepare_gain`, equal to MNE's ``_prepare_gain``), so
that only the solver differs.

:class:`PreparedForward` depends only on the forward, the noise covariance,
the channels of the data and the options of the ``'forward'`` stage
(``tfmxne._options.of_stage``); :class:`Problem` adds one evoked, one
l1_ratio and one STFT dictionary. :func:`prepare_forward` keeps its results
in a cache keyed on those inputs (:mod:`tfmxne._cache`).
"""

import dataclasses
import numbers

import numpy as np
from mne.utils import logger

from . import _cache, _compat, _parallel, _prepare
from ._options import of_stage
from ._stft import TFFrame
from ._timing import stage
from ._validation import _short, check_window
from .solver import _dual_norm_screened, _gtr


# --------------------------------------------------------------------------
# checks (cheap, before any heavy work)
# --------------------------------------------------------------------------
def check_inputs(evoked, forward, noise_cov, opts):
    """Check the MNE objects of a solve against each other and against ``opts``.

    ``opts`` are checked options (:func:`tfmxne._options.check_options`); this
    checks what needs the data: the types of the objects, the options that
    depend on the forward or on the data, the values of the data and of the
    covariance, the channels in common.
    """
    _check_objects(evoked, forward, noise_cov)
    _check_against_forward(forward, opts)
    _check_data(evoked, forward, noise_cov)
    lr = check_window(opts.window)
    if lr is not None:
        sfreq = float(evoked.info["sfreq"])
        n_l, n_r = int(lr[0] * sfreq), int(lr[1] * sfreq)
        if n_l + n_r > evoked.data.shape[1]:
            raise ValueError(
                f"window={opts.window!r} ({n_l} + {n_r} samples) is longer than the "
                f"data ({evoked.data.shape[1]} samples)"
            )
    if opts.weights is not None:
        _check_weights(opts.weights, forward)


def _check_objects(evoked, forward, noise_cov):
    from mne import Covariance, Evoked, Forward

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
    from mne.forward import is_fixed_orient

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
        w = _weights_array(weights, n_pos)
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or Inf values")
    if not np.any(w > 0):
        raise ValueError("weights are all zero: no source could be active")


def _weights_array(weights, n_pos):
    if isinstance(weights, str) or not hasattr(weights, "__len__"):
        raise TypeError(
            f"weights must be None, a source estimate or an array, got {_short(weights)}"
        )
    w = np.asarray(weights)
    if np.iscomplexobj(w):
        raise ValueError(f"weights must be real valued, got dtype {w.dtype}")
    if not (
        np.issubdtype(w.dtype, np.floating)
        or np.issubdtype(w.dtype, np.integer)
        or w.dtype == bool
    ):
        raise TypeError(f"weights must be a real numeric array, got {_short(weights)}")
    w = w.astype(float)
    if w.ndim != 1 or len(w) != n_pos:
        raise ValueError(
            f"weights must have one value per source position ({n_pos}), got shape "
            f"{w.shape}"
        )
    if np.any(w < 0):
        raise ValueError(f"weights must be non-negative, got min(weights)={w.min()}")
    return w


# --------------------------------------------------------------------------
# the prepared forward operator
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class PreparedForward:
    """The forward operator as the solver sees it, for one set of channels.

    Depends on the forward, the noise covariance, the channels of the data and
    the options of the ``'forward'`` stage only: every evoked with those
    channels, every l1_ratio and every alpha share it.

    Attributes
    ----------
    forward : Forward
        MNE's prepared forward (channels picked, orientation converted).
    gain : ndarray, shape (n_white, n_sources)
        Whitened gain with depth, orientation and weights priors.
    gain_info : Info
        The channels used (those of ``whitener``'s columns).
    whitener : ndarray, shape (n_white, n_channels)
        The whitener (rank and PCA as the options ask).
    source_weighting : ndarray, shape (n_sources,)
        Prior standard deviation of each source (the gain's column scaling).
    mask : ndarray of bool | None
        The positions kept by ``weights_min`` (None: all).
    n_orient : int
        Sources per position (1 or 3).
    lipschitz : ndarray, shape (n_positions,) | None
        ``||G_j^T G_j||_2`` of each position of ``gain`` (the solver's step
        sizes), computed with the gain (None: the solver computes them).
    """

    forward: object
    gain: np.ndarray
    gain_info: object
    whitener: np.ndarray
    source_weighting: np.ndarray
    mask: np.ndarray | None
    n_orient: int
    lipschitz: np.ndarray | None = None


def prepare_forward(info, forward, noise_cov, opts, cache=True):
    """The :class:`PreparedForward` of ``forward`` for the channels of ``info``
    (from the cache of prepared forwards, :mod:`tfmxne._cache`, unless
    ``cache`` is False)."""
    options = of_stage(opts, "forward")
    if not cache:
        return _prepare_forward(info, forward, noise_cov, options)
    return _cache.get(
        info,
        forward,
        noise_cov,
        options,
        lambda: _prepare_forward(info, forward, noise_cov, options),
    )


def _prepare_forward(info, forward, noise_cov, options):
    from mne.forward import is_fixed_orient

    out = _prepare.prepare(forward, info, noise_cov, **options)
    # shared by every call that finds it in the cache: read-only
    for a in (out.gain, out.whitener, out.source_weighting, out.lipschitz):
        if a is not None:
            a.flags.writeable = False
    return PreparedForward(
        forward=out.forward,
        gain=out.gain,
        gain_info=out.info,
        whitener=out.whitener,
        source_weighting=out.source_weighting,
        mask=out.mask,
        n_orient=1 if is_fixed_orient(out.forward) else 3,
        lipschitz=out.lipschitz,
    )


# --------------------------------------------------------------------------
# the problem of one evoked
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """The whitened problem of one evoked at one l1_ratio and STFT dictionary.

    The gain and the source weighting are scaled by ``alpha_max / 100`` so that
    alpha is a percentage; ``screen0`` is the dual-norm screening of ``R = M``
    computed with alpha_max (``(G^T M, nu, exact)`` in the scaled units), which
    the first outer iteration of a cold solve on this ``M`` reuses.

    Attributes
    ----------
    fwd : PreparedForward
        The prepared forward operator.
    evoked : Evoked
        The evoked, tapered at both ends by ``window``.
    M : ndarray, shape (n_white, n_times)
        The whitened (tapered) data.
    gain : ndarray, shape (n_white, n_sources)
        ``fwd.gain / alpha_max``.
    source_weighting : ndarray, shape (n_sources,)
        ``fwd.source_weighting / alpha_max``.
    alpha_max : float
        alpha_max / 100 in the units of ``fwd.gain``.
    l1_ratio : float
        The share of the temporal penalty ``alpha_max`` was computed for.
    wsize, tstep : tuple of int
        The STFT dictionary.
    taper : ndarray, shape (n_times,)
        The taper of ``window`` (ones without one).
    nave : float
        Trials averaged in the evoked.
    screen0 : tuple | None
        The screening of ``R = M`` (None: not available for this ``M``).
    n_conditions : int
        Conditions side by side in ``M`` (a joint solve, :mod:`tfmxne.joint`):
        ``M``, ``taper`` and the times of ``evoked`` hold them one after the
        other, each framed on its own (:meth:`frame`); 1 otherwise.
    """

    fwd: PreparedForward
    evoked: object
    M: np.ndarray
    gain: np.ndarray
    source_weighting: np.ndarray
    alpha_max: float
    l1_ratio: float
    wsize: tuple
    tstep: tuple
    taper: np.ndarray
    nave: float
    screen0: tuple | None
    n_conditions: int = 1

    @property
    def n_orient(self):
        return self.fwd.n_orient

    @property
    def lipschitz(self):
        """``||G_j^T G_j||_2`` of each position of ``gain`` (``gain`` is
        ``fwd.gain / alpha_max``), or None (the solver computes them)."""
        if self.fwd.lipschitz is None:
            return None
        return self.fwd.lipschitz / self.alpha_max**2

    @property
    def mask(self):
        return self.fwd.mask

    @property
    def forward(self):
        return self.fwd.forward

    @property
    def gain_info(self):
        return self.fwd.gain_info

    def frame(self, dtype=np.float64):
        """The STFT frame of ``M``'s rows (each condition framed on its own)."""
        return TFFrame(
            self.M.shape[1] // self.n_conditions,
            self.wsize,
            self.tstep,
            dtype=np.dtype(dtype),
            n_conditions=self.n_conditions,
        )

    def blocks(self):
        """The columns of ``M`` of each condition (slices)."""
        n = self.M.shape[1] // self.n_conditions
        return [slice(c * n, (c + 1) * n) for c in range(self.n_conditions)]

    def noise_var(self):
        """Variance of the whitened noise per channel and sample (:func:`noise_var`)."""
        return noise_var(self.nave)

    def noise_energy(self):
        """Expected energy of the whitened noise in ``M`` (:func:`noise_energy`)."""
        return noise_energy(self.M.shape[0], self.nave, self.taper)

    def with_data(self, M):
        """The same problem with other whitened data (no screening: it is ``M``'s)."""
        return dataclasses.replace(self, M=M, screen0=None)


def noise_var(nave):
    """Variance of the whitened noise of an evoked average: ``1 / nave``.

    MNE whitens with the single-trial covariance; an average of ``nave``
    trials (counted as at least 1) has noise variance ``1 / nave`` per
    whitened channel and sample.
    """
    return 1.0 / max(float(nave), 1.0)


def noise_energy(n_chan, nave, taper, samples=slice(None)):
    """Expected energy of the whitened noise of an evoked average over ``samples``:
    ``noise_var(nave) * n_chan * sum(taper[samples]**2)`` (``n_chan`` whitened
    channels, the data tapered by ``taper``, the weights of ``window``)."""
    n_eff = float(np.sum(np.asarray(taper, dtype=float)[samples] ** 2))
    return noise_var(nave) * n_chan * n_eff


def taper(n, sfreq, window):
    """The weights of :func:`window_evoked` (ones where ``window`` is None)."""
    out = np.ones(n)
    if window is None:
        return out
    if isinstance(window, numbers.Real):
        lsize = rsize = float(window)
    else:
        lsize, rsize = window
    nl, nr = int(lsize * sfreq), int(rsize * sfreq)
    if nl > 0:
        out[:nl] = np.hanning(2 * nl)[:nl]
    if nr > 0:
        out[n - nr :] = np.hanning(2 * nr)[nr:]
    return out


def window_evoked(evoked, window):
    """Taper both ends with half Hanning windows (copy), without MNE's 0 bug;
    ``window=None``: the evoked itself."""
    if window is None:
        return evoked
    evoked = evoked.copy()
    evoked.data *= taper(len(evoked.times), float(evoked.info["sfreq"]), window)[None, :]
    return evoked


def _alpha_max(gain, M, n_orient, l1_ratio, wsize, tstep, n_conditions=1, GtM=None):
    """alpha_max / 100 as MNE: epsilon-inf dual norm of (G, M), exact (``M``:
    ``n_conditions`` side by side, on their joint frame; ``GtM``: ``G^T M`` if
    already computed, not modified).

    Also returns the screening it was computed with, ``(G^T M, nu, exact)``,
    which the first outer iteration of a solve would otherwise recompute.
    """
    frame = TFFrame(
        M.shape[1] // n_conditions,
        wsize,
        tstep,
        dtype=np.float64,
        n_conditions=n_conditions,
    )
    n_thr = _parallel.solve_threads()
    GtM = _gtr(gain, M, n_thr) if GtM is None else GtM.copy()
    nu_max, _, nu, exact = _dual_norm_screened(
        frame.plan, GtM, n_orient, l1_ratio, n_thr=n_thr
    )
    return nu_max * 0.01, (GtM, nu, exact)


@dataclasses.dataclass(frozen=True, eq=False)
class Data:
    """What :func:`prepare` computes from the evoked alone (any l1_ratio):
    the tapered evoked, its whitened data, the taper and ``G^T M``."""

    evoked: object
    M: np.ndarray
    taper: np.ndarray
    GtM: np.ndarray


def prepare_data(fwd, evoked, opts):
    """The :class:`Data` of ``evoked`` on the prepared forward ``fwd`` (the
    part of :func:`prepare` that the problems of several l1_ratios share)."""
    with stage("reference"):
        _compat.check_reference(evoked)
    with stage("data"):
        all_ch_names = evoked.ch_names
        ev = window_evoked(evoked, opts.window)
        sel = [all_ch_names.index(name) for name in fwd.gain_info["ch_names"]]
        logger.info("Whitening data matrix.")
        M = fwd.whitener @ ev.data[sel]
    with stage("alpha_max"):
        GtM = _gtr(fwd.gain, M, _parallel.solve_threads())
    tp = taper(len(ev.times), float(ev.info["sfreq"]), opts.window)
    return Data(evoked=ev, M=M, taper=tp, GtM=GtM)


def prepare(fwd, evoked, opts, l1_ratio, data=None):
    """The :class:`Problem` of ``evoked`` on the prepared forward ``fwd``
    (``data``: its :func:`prepare_data`, shared by the problems of several
    l1_ratios; None: computed here)."""
    if data is None:
        data = prepare_data(fwd, evoked, opts)
    ev, M = data.evoked, data.M
    with stage("alpha_max"):
        alpha_max, (GtM, nu, exact) = _alpha_max(
            fwd.gain, M, fwd.n_orient, l1_ratio, opts.wsize, opts.tstep, GtM=data.GtM
        )
    if not alpha_max > 0:
        raise ValueError(
            "The whitened data are zero (or orthogonal to the gain): alpha_max = 0, no "
            "source can be estimated"
        )
    with stage("gain_copy"):
        # the screening at R = M, in the units of the scaled gain (the epsilon
        # norm is positively homogeneous)
        GtM /= alpha_max
        gain = fwd.gain / alpha_max
    return Problem(
        fwd=fwd,
        evoked=ev,
        M=M,
        gain=gain,
        source_weighting=fwd.source_weighting / alpha_max,
        alpha_max=alpha_max,
        l1_ratio=l1_ratio,
        wsize=opts.wsize,
        tstep=opts.tstep,
        taper=data.taper,
        nave=ev.nave,
        screen0=(GtM, nu / alpha_max, exact),
    )
