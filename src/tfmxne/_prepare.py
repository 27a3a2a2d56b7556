# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Gain preparation of the sparse solvers: one covariance preparation, one pass
over the gain.

MNE's ``_prepare_gain`` (``mne.inverse_sparse``) prepares the noise covariance
three times for one gain: once explicitly, once inside the whitener and once
more inside the depth prior (``limit_depth_chs='whiten'``). Each preparation
estimates the rank (SVDs per channel type) and eigendecomposes the covariance,
which on small problems costs as much as the solve itself. The three are the
same computation on the same channels, so this module does it once and derives
the whitener (with and without PCA) and the depth prior from it, with MNE's
formulas.

It also reads the gain once where MNE (and the first version of this module)
went over it about ten times (a deep copy of the forward, a channel pick, a
dtype conversion, the whitening product, the squares of the depth prior, two
scalings, a Frobenius norm, the copy of the weights, then the solver's
Lipschitz constants, twice): the forward is copied without its arrays (MNE's
orientation conversion and channel pick replace them, never write into them),
its rows are picked only if the channels differ from the forward's, and the
whitening product runs over blocks of columns, each converted to float64 and
whitened in cache, together with the statistics of its columns (squared norms
and, with three orientations, the 3 x 3 Gram matrix of each position). The
depth prior, the Frobenius norm of MNE's scaling and the solver's Lipschitz
constants come from those statistics; one more pass applies the priors, the
scaling and the weights. The steps MNE shares with other inverse methods
(orientation triage and conversion, channel selection, rank estimation,
orientation prior) are MNE's own routines, so the prepared gain is MNE's up
to rounding; the depth options this does not handle (``limit_depth_chs`` other
than ``'whiten'``, ``allow_fixed_depth=False``, the private
``combine_xyz=False``) go to MNE's ``_prepare_gain`` unchanged.
"""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mne.utils import logger

from . import _compat, _parallel
from ._timing import stage

#: Columns of the gain whitened at once (a block and its float64 copy stay in
#: the caches: 366 channels x 384 columns x 8 bytes is 1.1 MB).
BLOCK_COLUMNS = 384


@dataclasses.dataclass(frozen=True)
class PreparedGain:
    """What :func:`prepare` returns: MNE's ``_prepare_gain`` outputs and the
    Lipschitz constants of the gain's positions (``||G_j^T G_j||_2``, the
    solver's; None where MNE's own preparation ran)."""

    forward: object
    gain: np.ndarray
    info: object
    whitener: np.ndarray
    source_weighting: np.ndarray
    mask: np.ndarray | None
    lipschitz: np.ndarray | None


def _light_copy(forward):
    """A copy of ``forward`` that shares its arrays.

    MNE's orientation conversion and channel pick (``copy=False``) assign new
    arrays to the copy (``sol``, ``_orig_sol``, ``source_nn``) and modify its
    Info in place; neither writes into an array, so only the dictionaries they
    change and the Info are copied, not the gain (a deep copy of the forward
    copies the gain twice: ``sol`` and ``_orig_sol``).
    """
    out = forward.__class__(forward)
    out["sol"] = dict(forward["sol"])
    if forward.get("sol_grad") is not None:
        out["sol_grad"] = dict(forward["sol_grad"])
    out["info"] = forward["info"].copy()
    return out


def _select_channels(forward, info, noise_cov):
    """MNE's channel selection of an inverse (``_select_orient_forward``) on the
    light copy ``forward``: the good channels of ``info`` that the forward and
    the covariance have, in the order of ``info``.

    When the forward's rows are already those channels in that order (the
    forward was computed for this recording and no channel is bad) nothing is
    picked: MNE's pick would copy the gain twice to the same values.
    """
    bads = set(info["bads"]) | set(noise_cov["bads"])
    have = set(forward["sol"]["row_names"]) & set(noise_cov["names"])
    ch_names = [c for c in info["ch_names"] if c in have and c not in bads]
    if ch_names != list(forward["sol"]["row_names"]) or ch_names != list(
        forward["info"]["ch_names"]
    ):
        return _compat.select_orient_forward(forward, info, noise_cov)
    if set(info["bads"]) != set(noise_cov["bads"]):
        logger.info(
            'info["bads"] and noise_cov["bads"] differ: the channels bad in either '
            "are left out"
        )
    _compat.check_compensation_grade(forward["info"], info, "forward")
    logger.info("Computing inverse operator with %d channels.", len(ch_names))
    idx = [info["ch_names"].index(c) for c in ch_names]
    return forward, _compat.pick_info(info, idx)


def _block_stats(g, n_orient):
    """Statistics of the whitened columns ``g`` (whole positions): their squared
    norms, and with ``n_orient == 3`` the upper triangle of each position's Gram
    matrix (rows xx, yy, zz, xy, xz, yz)."""
    if n_orient == 1:
        return np.einsum("ij,ij->j", g, g)[None]
    x, y, z = g[:, 0::3], g[:, 1::3], g[:, 2::3]
    return np.stack(
        [
            np.einsum("ij,ij->j", a, b)
            for a, b in ((x, x), (y, y), (z, z), (x, y), (x, z), (y, z))
        ]
    )


def _whiten(whitener, sol, n_orient, depth_whitener=None):
    """``whitener @ sol`` in float64, block by block of columns, with the
    statistics of its columns (:func:`_block_stats`) and, if ``depth_whitener``
    is given, those of ``depth_whitener @ sol`` (the product itself not kept).

    The blocks run in the solver's threads (BLAS on one thread each, as in a
    call); the result is the same for any number of threads.
    """
    n_white, n_src = whitener.shape[0], sol.shape[1]
    gain = np.empty((n_white, n_src))
    n_stat = 1 if n_orient == 1 else 6
    stats = np.empty((n_stat, n_src // n_orient))
    dstats = None if depth_whitener is None else np.empty_like(stats)
    W = np.ascontiguousarray(whitener, dtype=np.float64)
    Wd = None if depth_whitener is None else np.ascontiguousarray(depth_whitener)
    step = BLOCK_COLUMNS - BLOCK_COLUMNS % n_orient
    starts = range(0, n_src, step)

    def block(a):
        b = min(a + step, n_src)
        s = np.ascontiguousarray(sol[:, a:b], dtype=np.float64)
        g = gain[:, a:b]
        np.matmul(W, s, out=g)
        stats[:, a // n_orient : b // n_orient] = _block_stats(g, n_orient)
        if Wd is not None:
            dstats[:, a // n_orient : b // n_orient] = _block_stats(Wd @ s, n_orient)

    n_thr = min(_parallel.solve_threads(), len(starts))
    with _parallel.blas_one_thread():
        if n_thr <= 1:
            for a in starts:
                block(a)
        else:
            with ThreadPoolExecutor(n_thr) as ex:
                list(ex.map(block, starts))
    return gain, stats, dstats


def _largest_eig(stats):
    """Largest eigenvalue of each 3 x 3 Gram matrix of :func:`_block_stats`."""
    xx, yy, zz, xy, xz, yz = stats
    gram = np.empty((stats.shape[1], 3, 3))
    gram[:, 0, 0], gram[:, 1, 1], gram[:, 2, 2] = xx, yy, zz
    gram[:, 0, 1] = gram[:, 1, 0] = xy
    gram[:, 0, 2] = gram[:, 2, 0] = xz
    gram[:, 1, 2] = gram[:, 2, 1] = yz
    return np.linalg.eigvalsh(gram)[:, -1]


def _col_sq(stats, n_orient):
    """Squared norm of every column (source) from :func:`_block_stats`."""
    if n_orient == 1:
        return stats[0]
    return stats[:3].T.ravel()


def _lipschitz(stats, n_orient, d):
    """``||G_j^T G_j||_2`` of the gain scaled by the column factors ``d``."""
    if n_orient == 1:
        return stats[0] * d * d
    dx, dy, dz = d[0::3], d[1::3], d[2::3]
    scaled = stats * np.stack([dx * dx, dy * dy, dz * dz, dx * dy, dx * dz, dy * dz])
    return _largest_eig(scaled)


def _depth_prior(stats, forward, exp, limit, combine_xyz, fixed):
    """MNE's depth prior (``limit_depth_chs='whiten'``) from the statistics of
    the (PCA-)whitened gain's columns."""
    if fixed:
        d = stats[0].copy()
    elif combine_xyz == "fro":
        d = stats[0] + stats[1] + stats[2]
    else:  # 'spectral': largest eigenvalue of each 3 x 3 block Gram
        d = _largest_eig(stats)
    if fixed or combine_xyz == "fro":
        d[d == 0.0] = np.min(d[d != 0.0])
    patch_areas = forward.get("patch_areas", None)
    if patch_areas is not None:
        d /= patch_areas**2
    w = 1.0 / d
    if limit is not None:
        ws = np.sort(w)
        cap = ws[-1]
        if ws[-1] > limit**2 * ws[0]:
            cap = ws[np.flatnonzero(ws > limit**2 * ws[0])[0]]
        w = np.minimum(w / cap, 1)
    prior = w**exp
    return prior if fixed else np.repeat(prior, 3)


def _weights(weights, weights_min, n_orient, n_src):
    """The weights per source scaled by their maximum, and the mask of the
    sources kept (weight above ``weights_min``, itself scaled)."""
    if isinstance(weights, _compat.BaseSourceEstimate):
        weights = np.max(np.abs(weights.data), axis=1)
    weights = np.asarray(weights, dtype=float)
    w_max = np.max(weights)
    if weights_min is not None and weights_min > w_max:
        raise ValueError(
            f"weights_min={weights_min} is above the largest weight ({w_max}): no "
            "source position would be kept"
        )
    w = np.repeat(weights / w_max, n_orient)
    if len(w) != n_src:
        raise ValueError(
            f"weights must have one value per source position, got {len(weights)} "
            f"for {n_src // n_orient} positions"
        )
    mask = None if weights_min is None else w > weights_min / w_max
    return w, mask


def _check_loose(forward, loose):
    """The loose value per source space kind; MNE's errors for the volume ones."""
    loose = _compat.triage_loose(forward["src"], loose)
    if all(v == 0.0 for v in loose.values()) and "volume" in loose:
        raise ValueError(
            "Computing inverse solutions for volume source spaces with fixed "
            "orientations is not supported."
        )
    if loose.get("volume", 1) < 1:
        raise ValueError(
            "Computing inverse solutions with restricted orientations (loose < 1) is "
            "not supported for volume source spaces."
        )
    return loose


def _depth_exp(depth):
    exp = depth["exp"]
    if exp is None:
        return None
    exp = float(exp)
    if exp < 0:
        raise ValueError(
            f"depth exponent should be greater than or equal to 0, got {exp}"
        )
    return exp or None


def _orient(forward, loose):
    """MNE's orientation conversion of the forward (in place, on the copy)."""
    from mne.forward import convert_forward_solution, is_fixed_orient

    if all(v == 0.0 for v in loose.values()):
        if not is_fixed_orient(forward):
            logger.info("Converting forward solution to fixed orientation")
            convert_forward_solution(forward, force_fixed=True, use_cps=True, copy=False)
        return
    if is_fixed_orient(forward):
        raise ValueError(
            "Forward operator has fixed orientation and can only be used to make "
            "a fixed-orientation inverse operator."
        )
    if any(v < 1.0 for v in loose.values()) and not forward["surf_ori"]:
        logger.info("Converting forward solution to surface orientation")
        convert_forward_solution(forward, surf_ori=True, use_cps=True, copy=False)


def _mne_handles(depth):
    """Whether the depth options are ones this module does not prepare itself."""
    return (
        not isinstance(depth.get("limit_depth_chs"), str)
        or depth["limit_depth_chs"] != "whiten"
        or depth.get("allow_fixed_depth") is not True
        or depth.get("combine_xyz") not in ("fro", "spectral")
        or bool(
            set(depth)
            - {"exp", "limit", "limit_depth_chs", "combine_xyz", "allow_fixed_depth"}
        )
    )


def prepare(
    forward, info, noise_cov, pca, depth, loose, rank, weights=None, weights_min=None
):
    """The prepared gain of the sparse solvers: a :class:`PreparedGain`.

    Same inputs and results as MNE's ``_prepare_gain``; ``forward`` and the
    other inputs are not modified.
    """
    from mne.cov import compute_whitener
    from mne.forward import compute_orient_prior, is_fixed_orient

    depth = _compat.check_depth(depth)
    if _mne_handles(depth):
        out = _compat.prepare_gain(
            forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min
        )
        return PreparedGain(*out, lipschitz=None)
    with stage("copy"):
        forward = _light_copy(forward)
    with stage("orient"):
        loose = _check_loose(forward, loose)
        exp = _depth_exp(depth)
        _orient(forward, loose)
    with stage("select"):
        forward, info_picked = _select_channels(forward, info, noise_cov)
        logger.info("Selected %d channels", len(info_picked["ch_names"]))
    fixed = is_fixed_orient(forward)
    n_orient = 1 if fixed else 3
    with stage("cov"):
        # the one preparation (rank + eigendecomposition) MNE repeats three times
        cov = _compat.prepare_noise_cov(
            noise_cov, info, info_picked["ch_names"], rank, on_rank_mismatch="warn"
        )
    with stage("whitener"):
        whitener = compute_whitener(cov, pca=pca, verbose=False)[0]
        # MNE's depth prior whitens with the PCA whitener; without PCA the
        # whitener is that one rotated (same column norms up to rounding), but
        # the prior is computed from MNE's product
        depth_whitener = None
        if exp is not None and pca is not True:
            depth_whitener = compute_whitener(cov, pca=True, verbose=False)[0]
    with stage("whiten"):
        logger.info("Whitening the forward solution.")
        gain, stats, dstats = _whiten(
            whitener, forward["sol"]["data"], n_orient, depth_whitener
        )
    with stage("priors"):
        source_std = np.ones(gain.shape[1])
        if exp is not None:
            logger.info("Creating the depth weighting matrix...")
            source_std *= _depth_prior(
                stats if dstats is None else dstats,
                forward,
                exp,
                depth["limit"],
                depth["combine_xyz"],
                fixed,
            )
        if not all(v == 0.0 for v in loose.values()):
            source_std *= compute_orient_prior(forward, loose=loose)
        np.sqrt(source_std, out=source_std)
        logger.info("Adjusting source covariance matrix.")
        # MNE's scaling: the whitened gain times source_std has squared
        # Frobenius norm rank (sum over the columns of squared norm x source_std^2)
        fro2 = float(np.sum(_col_sq(stats, n_orient) * source_std**2))
        source_std *= np.sqrt((cov["eig"] > 0).sum() / fro2)
        d = source_std
        mask = None
        if weights is not None:
            w, mask = _weights(weights, weights_min, n_orient, gain.shape[1])
            source_std = source_std * w
            d = source_std
    with stage("scale"):
        gain *= d
        lc = _lipschitz(stats, n_orient, d)
        if mask is not None:
            gain = gain[:, mask]
            lc = lc[mask[::n_orient]]
            logger.info(f"Reducing source space to {int(mask.sum()) // n_orient} sources")
    return PreparedGain(forward, gain, info_picked, whitener, source_std, mask, lc)


def prepare_gain(
    forward, info, noise_cov, pca, depth, loose, rank, weights=None, weights_min=None
):
    """Same inputs and outputs as MNE's ``_prepare_gain`` (sparse solvers).

    Returns ``(forward, gain, gain_info, whitener, source_weighting, mask)``.
    """
    out = prepare(forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min)
    return (out.forward, out.gain, out.info, out.whitener, out.source_weighting, out.mask)
