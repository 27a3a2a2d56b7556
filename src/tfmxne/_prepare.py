# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Gain preparation of the sparse solvers with one eigendecomposition.

MNE's ``_prepare_gain`` (``mne.inverse_sparse``) prepares the noise covariance
three times for one gain: once explicitly, once inside the whitener and once
more inside the depth prior (``limit_depth_chs='whiten'``). Each preparation
estimates the rank (SVDs per channel type) and eigendecomposes the covariance,
which on small problems costs as much as the solve itself. The three are the
same computation on the same channels, so this module does it once and derives
the whitener (with and without PCA) and the depth prior from it, with MNE's
formulas, in MNE's order of operations.

The steps MNE shares with other inverse methods (orientation triage and
conversion, channel selection, rank estimation, orientation prior, weights)
are MNE's own routines, so the prepared gain is MNE's up to rounding; the
depth options this does not handle (``limit_depth_chs`` other than
``'whiten'``, ``allow_fixed_depth=False``, the private ``combine_xyz=False``)
go to MNE's ``_prepare_gain`` unchanged.
"""

import numpy as np
from mne.forward import compute_orient_prior, convert_forward_solution, is_fixed_orient
from mne.utils import logger

from . import _compat
from .solver import _gtr


def _whiten(whitener, sol):
    """``whitener @ sol`` by the core's threads (BLAS is pinned to one thread
    during a call: see ``tfmxne._parallel.call_scope``)."""
    # (one conversion of the stored gain, often float32 in Fortran order, to
    # float64 in C order: the product MNE's ``whitener @ sol`` computes)
    return _gtr(
        np.ascontiguousarray(whitener.T, dtype=np.float64),
        np.ascontiguousarray(sol, dtype=np.float64),
    )


def _depth_prior(Gw, forward, exp, limit, combine_xyz, fixed):
    """MNE's depth prior (``limit_depth_chs='whiten'``) of a whitened gain."""
    if fixed or combine_xyz == "fro":
        d = np.sum(Gw**2, axis=0)
        if not fixed:
            d = d.reshape(-1, 3).sum(axis=1)
        d[d == 0.0] = np.min(d[d != 0.0])
    else:  # 'spectral': largest eigenvalue of each 3 x 3 block Gram
        Gb = Gw.reshape(Gw.shape[0], -1, 3)
        d = np.linalg.norm(np.einsum("svj,svk->vjk", Gb, Gb), ord=2, axis=(1, 2))
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


def prepare_gain(
    forward, info, noise_cov, pca, depth, loose, rank, weights=None, weights_min=None
):
    """Same inputs and outputs as MNE's ``_prepare_gain`` (sparse solvers).

    Returns ``(forward, gain, gain_info, whitener, source_weighting, mask)``.
    """
    from mne.cov import compute_whitener

    depth = _compat.check_depth(depth)
    if (
        not isinstance(depth.get("limit_depth_chs"), str)
        or depth["limit_depth_chs"] != "whiten"
        or depth.get("allow_fixed_depth") is not True
        or depth.get("combine_xyz") not in ("fro", "spectral")
        or set(depth)
        - {"exp", "limit", "limit_depth_chs", "combine_xyz", "allow_fixed_depth"}
    ):
        return _compat.prepare_gain(
            forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min
        )
    forward = forward.copy()
    loose = _compat.triage_loose(forward["src"], loose)
    fixed_inverse = all(v == 0.0 for v in loose.values())
    if fixed_inverse and "volume" in loose:
        raise ValueError(
            "Computing inverse solutions for volume source spaces with fixed "
            "orientations is not supported."
        )
    if loose.get("volume", 1) < 1:
        raise ValueError(
            "Computing inverse solutions with restricted orientations (loose < 1) is "
            "not supported for volume source spaces."
        )
    exp = depth["exp"]
    if exp is not None:
        exp = float(exp)
        if exp < 0:
            raise ValueError(
                f"depth exponent should be greater than or equal to 0, got {exp}"
            )
        exp = exp or None
    if fixed_inverse:
        if not is_fixed_orient(forward):
            logger.info("Converting forward solution to fixed orientation")
            convert_forward_solution(forward, force_fixed=True, use_cps=True, copy=False)
    else:
        if is_fixed_orient(forward):
            raise ValueError(
                "Forward operator has fixed orientation and can only be used to make "
                "a fixed-orientation inverse operator."
            )
        if any(v < 1.0 for v in loose.values()) and not forward["surf_ori"]:
            logger.info("Converting forward solution to surface orientation")
            convert_forward_solution(forward, surf_ori=True, use_cps=True, copy=False)
    forward, info_picked = _compat.select_orient_forward(forward, info, noise_cov)
    logger.info("Selected %d channels", len(info_picked["ch_names"]))
    fixed = is_fixed_orient(forward)

    # the one preparation (rank + eigendecomposition) MNE repeats three times
    cov = _compat.prepare_noise_cov(
        noise_cov, info, info_picked["ch_names"], rank, on_rank_mismatch="warn"
    )
    whitener = compute_whitener(cov, pca=pca, verbose=False)[0]
    logger.info("Whitening the forward solution.")
    gain = _whiten(whitener, forward["sol"]["data"])

    source_std = np.ones(gain.shape[1], dtype=gain.dtype)
    if exp is not None:
        logger.info("Creating the depth weighting matrix...")
        # MNE whitens the depth gain with the PCA whitener; without PCA the
        # whitener is that one rotated (same column norms up to rounding), but
        # keep MNE's product so the prior is MNE's up to rounding
        Gw = (
            gain
            if pca is True
            else (
                _whiten(
                    compute_whitener(cov, pca=True, verbose=False)[0],
                    forward["sol"]["data"],
                )
            )
        )
        source_std *= _depth_prior(
            Gw, forward, exp, depth["limit"], depth["combine_xyz"], fixed
        )
        del Gw
    if not fixed_inverse:
        source_std *= compute_orient_prior(forward, loose=loose)
    np.sqrt(source_std, out=source_std)
    gain *= source_std
    logger.info("Adjusting source covariance matrix.")
    scale = np.sqrt((cov["eig"] > 0).sum() / np.linalg.norm(gain, ord="fro") ** 2)
    source_std *= scale
    gain *= scale

    mask = None
    if weights is not None:
        gain, source_std, mask = _compat.prepare_weights(
            forward, gain, source_std, weights, weights_min
        )
    return forward, gain, info_picked, whitener, source_std, mask
