# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Simulated evoked responses with forward-model error (private).

Shared by the simulation study of the automatic alpha
(``benchmarks/bench_alpha_study.py``) and the tests: the data are made with
*another* forward model than the one used for the reconstruction, so that a
criterion that fits the data down to the noise level pays for the model's
error with spurious sources, as on real recordings.

The simulation forward (:func:`model_error_forward`) differs from the
reconstruction's oct-4 surface forward in every way real ones do:

* a finer cortex: every vertex of the decimated surfaces stored with the
  oct-4 source space (1026 per hemisphere, about 6 mm apart, against 258 in
  use, about 10 mm apart), so sources lie between the reconstruction's
  positions and extended sources cover several of them;
* orientations: the surface normals tilted by ``tilt_deg`` (random
  tangential directions);
* co-registration: the head-to-MRI transform rotated by ``rot_deg`` about a
  random axis and shifted by ``shift_mm``;
* conductivity: a three-layer BEM recomputed with another skull conductivity.

:func:`simulate_evoked` places focal sources (points or patches of the fine
cortex, each position with its own orientation) with transient oscillatory
time courses, optionally many weak background sources, and adds noise drawn
from a covariance at the level of an average of ``nave`` trials.
"""

import warnings

import numpy as np

#: Minimum distance (mm) between the centres of two simulated sources.
MIN_SEP_MM = 30.0


def _rotation(axis, angle_rad):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array(
        [[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]]
    )
    return np.eye(3) + np.sin(angle_rad) * K + (1.0 - np.cos(angle_rad)) * K @ K


def perturbed_trans(trans, shift_mm, rot_deg, rng):
    """``trans`` rotated by ``rot_deg`` (random axis) and shifted by ``shift_mm``."""
    import mne

    T = trans["trans"].copy()
    T[:3, :3] = _rotation(rng.standard_normal(3), np.deg2rad(rot_deg)) @ T[:3, :3]
    sh = rng.standard_normal(3)
    T[:3, 3] = T[:3, 3] + 1e-3 * shift_mm * sh / np.linalg.norm(sh)
    return mne.transforms.Transform(trans["from"], trans["to"], T)


def fine_cortex(src):
    """All vertices of the surfaces of a surface source space (MRI coordinates).

    Returns positions, normals and the hemisphere of each (0 or 1).
    """
    rr = np.concatenate([s["rr"] for s in src])
    nn = np.concatenate([s["nn"] for s in src])
    hemi = np.concatenate([np.full(len(s["rr"]), h) for h, s in enumerate(src)])
    return rr, nn, hemi


def tilted(nn, deg, rng):
    """Unit vectors ``nn`` tilted by ``deg`` degrees in random tangential directions."""
    t = rng.standard_normal(nn.shape)
    t -= np.sum(t * nn, axis=1, keepdims=True) * nn
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    out = nn + np.tan(np.deg2rad(deg)) * t
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def model_error_forward(
    info,
    src,
    trans,
    bem_fname,
    *,
    seed=0,
    shift_mm=4.0,
    rot_deg=2.0,
    tilt_deg=20.0,
    skull_sigma=0.0125,
    mindist=3.0,
):
    """A fixed-orientation forward of the fine cortex with model error.

    Parameters
    ----------
    info : Info
        Measurement info (the channels).
    src : SourceSpaces
        The surface source space of the reconstruction (its full surfaces
        give the fine cortex).
    trans : Transform
        The head-to-MRI transform of the reconstruction (perturbed here).
    bem_fname : path-like
        Three-layer BEM (surfaces and conductivities; solved again with the
        skull conductivity ``skull_sigma``).
    seed : int
        Seed of the random tilts, rotation axis and shift direction.
    shift_mm, rot_deg, tilt_deg, skull_sigma, mindist : float
        Co-registration shift and rotation, orientation tilt, skull
        conductivity (S/m), minimum distance of a position to the inner skull
        (mm).

    Returns
    -------
    fwd : Forward
        Fixed orientation (the tilted normals); ``fwd["hemi"]`` holds the
        hemisphere of each position.
    """
    import mne

    rng = np.random.default_rng(1000 + seed)
    rr, nn, hemi = fine_cortex(src)
    nn = tilted(nn, tilt_deg, rng)
    vsrc = mne.setup_volume_source_space(None, pos=dict(rr=rr, nn=nn), verbose=False)
    trans2 = perturbed_trans(trans, shift_mm, rot_deg, rng)
    surfs = mne.read_bem_surfaces(bem_fname, verbose=False)
    for s in surfs:
        if s["id"] == mne.io.constants.FIFF.FIFFV_BEM_SURF_ID_SKULL:
            s["sigma"] = skull_sigma
    bem = mne.make_bem_solution(surfs, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fwd = mne.make_forward_solution(
            info, trans2, vsrc, bem, mindist=mindist, verbose=False
        )
        fwd = mne.convert_forward_solution(
            fwd, surf_ori=True, force_fixed=True, verbose=False
        )
    fwd["hemi"] = hemi[fwd["src"][0]["vertno"]]
    return fwd


def gabor(times, rng):
    """A transient oscillation: Gabor atom of 5-20 Hz, 15-40 ms wide, at 50-200 ms."""
    f = rng.uniform(5.0, 20.0)
    t0 = rng.uniform(0.05, 0.2)
    w = rng.uniform(0.015, 0.04)
    ph = rng.uniform(0, 2 * np.pi)
    return np.exp(-0.5 * ((times - t0) / w) ** 2) * np.cos(
        2 * np.pi * f * (times - t0) + ph
    )


def _smooth_noise(times, rng, n):
    """``n`` random time courses of 2-30 Hz (sums of random sinusoids)."""
    f = rng.uniform(2.0, 30.0, (n, 8, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, 8, 1))
    a = rng.standard_normal((n, 8, 1))
    return np.sum(a * np.cos(2 * np.pi * f * times + ph), axis=1)


def simulate_evoked(
    ev0,
    fwd_sim,
    cov,
    nave,
    n_src,
    whitener,
    *,
    seed=0,
    extent=0.0,
    energy=(0.05, 0.15),
    background=0.0,
    n_background=200,
    positions=None,
):
    """Focal sources (plus background) on ``fwd_sim``, noise of ``nave`` trials.

    Parameters
    ----------
    ev0 : Evoked
        Template (channels of ``fwd_sim``, times).
    fwd_sim : Forward
        Fixed-orientation simulation forward (:func:`model_error_forward`).
    cov : Covariance
        Single-trial noise covariance.
    nave : int
        Trials averaged: the noise covariance is divided by it.
    n_src : int
        Number of focal sources (centres at least ``MIN_SEP_MM`` apart).
    whitener : array, shape (n_white, n_channels)
        Whitener of the channels of ``ev0``: each source's whitened energy is
        drawn in ``energy`` times ``n_channels * n_times`` (single trial).
    seed : int
        Seed of positions, time courses, energies and noise.
    extent : float
        Patch radius (mm): every position of the same hemisphere within it
        carries the time course with its own orientation (0: one position).
    energy : tuple of float
        Range of the whitened single-trial energy of each source.
    background : float
        Whitened energy of the background sources, relative to the focal
        sources' total (0: none).
    n_background : int
        Number of background positions (random, independent time courses).
    positions : list of array | None
        Centres (head coordinates, m) to use instead of random ones: the
        nearest positions of ``fwd_sim``.

    Returns
    -------
    evoked : Evoked
        The simulated data (``nave`` set).
    true_rr : array, shape (n_src, 3)
        Source centres (head coordinates, m).
    S : array, shape (n_src, n_times)
        Source time courses (A m).
    """
    import mne

    rng = np.random.default_rng(seed)
    rr = fwd_sim["source_rr"]
    hemi = fwd_sim.get("hemi", np.zeros(len(rr), int))
    if positions is not None:
        idx = [
            int(np.argmin(np.linalg.norm(rr - np.asarray(p), axis=1))) for p in positions
        ]
    else:
        idx = []
        for _ in range(100 * n_src):
            if len(idx) == n_src:
                break
            k = int(rng.integers(len(rr)))
            if all(np.linalg.norm(rr[k] - rr[j]) * 1e3 > MIN_SEP_MM for j in idx):
                idx.append(k)
    times = ev0.times
    Gs = fwd_sim["sol"]["data"]
    cols = []
    for k in idx:
        near = (np.linalg.norm(rr - rr[k], axis=1) * 1e3 <= extent) & (hemi == hemi[k])
        near[k] = True
        cols.append(Gs[:, near].sum(axis=1))
    G = np.stack(cols, axis=1)
    S = np.array([gabor(times, rng) for _ in idx])
    N = whitener.shape[0] * len(times)
    e_tot = 0.0
    for t in range(len(idx)):
        e = np.sum((whitener @ np.outer(G[:, t], S[t])) ** 2)
        target = rng.uniform(*energy) * N
        S[t] *= np.sqrt(target / e)
        e_tot += target
    data = G @ S
    if background > 0:
        bidx = rng.choice(len(rr), n_background, replace=False)
        B = Gs[:, bidx] @ _smooth_noise(times, rng, n_background)
        B *= np.sqrt(background * e_tot / np.sum((whitener @ B) ** 2))
        data = data + B
    ev = ev0.copy()
    ev.data = data
    c = cov.copy()
    c["data"] = c["data"] / nave
    ev = mne.simulation.add_noise(ev, c, random_state=seed, verbose=False)
    ev.nave = nave
    return ev, rr[idx], S
