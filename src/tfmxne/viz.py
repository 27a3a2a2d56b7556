# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Plots of TF-MxNE results (matplotlib).

matplotlib is an optional dependency (``pip install tfmxne[plot]``); it is
imported only when a plot is made. Without a display (for example on a server
or in CI) the non-interactive Agg backend is selected, so figures can always be
saved to files.
"""

import os
import sys

import numpy as np

__all__ = ["plot_tfmxne", "source_table"]

_HEMI = {101: "lh", 102: "rh"}  # FIFFV_MNE_SURF_LEFT_HEMI, FIFFV_MNE_SURF_RIGHT_HEMI


def _has_display():
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _pyplot():
    """Import pyplot, with the Agg backend when there is no display."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "plotting needs matplotlib: pip install matplotlib (or tfmxne[plot])"
        ) from exc
    if (not _has_display() and "matplotlib.pyplot" not in sys.modules
            and not os.environ.get("MPLBACKEND")):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------
# active sources as a table (shared by the command line report)
# --------------------------------------------------------------------------
def _space_label(s):
    if s["type"] == "surf":
        return _HEMI.get(int(s["id"]), "surf")
    return {"vol": "vol", "discrete": "discrete"}.get(s["type"], str(s["type"]))


def source_table(estimate, forward):
    """Describe the active sources of a sparse estimate.

    Parameters
    ----------
    estimate : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | MixedSourceEstimate
        A sparse source estimate, as returned by :func:`tfmxne.tf_mixed_norm`.
    forward : Forward
        The forward solution the estimate was computed with (for the positions).

    Returns
    -------
    rows : list of dict
        One per active source, in the order of the estimate's rows, with keys
        ``'index'`` (row of the estimate), ``'space'`` (``'lh'``, ``'rh'``,
        ``'vol'`` or ``'discrete'``), ``'vertex'`` (vertex number in its source
        space), ``'pos'`` (position in metres, in the forward's coordinate frame,
        from ``forward['source_rr']``), ``'time'`` (latency of the peak, s),
        ``'amplitude'`` (value at the peak, Am; the norm for vector estimates)
        and ``'timecourse'`` (Am, the norm for vector estimates).
    """
    data = np.asarray(estimate.data)
    if data.ndim == 3:  # vector estimates: (n_sources, 3, n_times)
        data = np.linalg.norm(data, axis=1)
    vertices = estimate.vertices
    if not isinstance(vertices, list | tuple):
        vertices = [vertices]
    src = forward["src"]
    if len(vertices) != len(src):
        raise ValueError(
            f"the estimate has {len(vertices)} source spaces, the forward "
            f"{len(src)}: they do not belong together")
    rows = []
    row = 0
    offset = 0
    for s, verts in zip(src, vertices):
        vertno = np.asarray(s["vertno"])
        label = _space_label(s)
        for v in np.asarray(verts):
            k = int(np.searchsorted(vertno, v))
            if k >= len(vertno) or vertno[k] != v:
                raise ValueError(
                    f"vertex {int(v)} of the estimate is not in the forward's "
                    f"{label} source space")
            tc = data[row]
            i_peak = int(np.argmax(np.abs(tc)))
            rows.append(dict(
                index=row, space=label, vertex=int(v),
                pos=np.asarray(forward["source_rr"][offset + k], float),
                time=float(estimate.times[i_peak]), amplitude=float(tc[i_peak]),
                timecourse=tc))
            row += 1
        offset += len(vertno)
    return rows


# --------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------
def _whiten(evoked, residual, noise_cov):
    import mne

    names = residual.ch_names
    ev = evoked.copy().pick(names)
    if not np.allclose(ev.times, residual.times):
        ev.crop(residual.times[0], residual.times[-1])
    W, _ = mne.cov.compute_whitener(noise_cov, residual.info, pca=True, verbose=False)
    return W @ ev.data, W @ residual.data


def plot_tfmxne(result, evoked=None, noise_cov=None, *, max_sources=8, fmax=100.0,
                forward=None, title=None, fname=None, dpi=100, show=False):
    """Plot a TF-MxNE result: data, residual, source time courses, TF maps.

    The figure has three parts: a butterfly plot of the whitened sensor data next
    to the whitened residual (same scale, in units of noise standard deviation),
    the time courses of the active sources (nAm), and for each active source
    the magnitude of its STFT coefficients (first dictionary, frequency against
    time).

    Parameters
    ----------
    result : TFMxNEResult
        The output of :func:`tfmxne.solve` (with a residual).
    evoked : Evoked | None
        The data given to the solve. ``None``: the whitened data and residual
        the solver worked on (after PCA, so "virtual channels") are shown.
    noise_cov : Covariance | None
        The noise covariance, to whiten ``evoked`` and the residual. Needed when
        ``evoked`` is given.
    max_sources : int
        At most this many sources (the strongest) get a time-frequency map.
    fmax : float
        Highest frequency shown in the time-frequency maps (Hz; clipped to
        Nyquist).
    forward : Forward | None
        When given, the sources are labelled with their positions (mm).
    title : str | None
        Figure title (default: a summary of the result).
    fname : path-like | None
        Save the figure there (format from the extension).
    dpi : int
        Resolution (dots per inch) of the figure.
    show : bool
        Show the figure (with an interactive backend).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.

    Notes
    -----
    The residual is computed on the data tapered at both ends (the ``window``
    parameter of the solve), so the first and last milliseconds of the residual
    are small even where the data are not.
    """
    plt = _pyplot()
    import matplotlib.gridspec as gridspec

    est = result.estimate
    times_ms = 1e3 * np.asarray(result.times)
    data = np.asarray(est.data)
    if data.ndim == 3:
        data = np.linalg.norm(data, axis=1)
    n_pos = data.shape[0]
    peak = np.max(np.abs(data), axis=1)
    order = np.argsort(-peak, kind="stable")
    shown = order[:max(int(max_sources), 0)]
    n_tf = len(shown)
    labels = _labels(est, forward)

    # whitened data and residual
    if evoked is not None:
        if noise_cov is None:
            raise ValueError("noise_cov is needed to whiten evoked; pass noise_cov")
        if result.residual is None:
            raise ValueError("the result has no residual (solve with return_residual=True)")
        Mw, Rw = _whiten(evoked, result.residual, noise_cov)
    else:
        Mw = np.asarray(result._M)
        Rw = Mw - np.asarray(result._gain_active) @ np.asarray(result.X)

    n_cols = 4
    n_tf_rows = int(np.ceil(n_tf / n_cols)) if n_tf else 0
    height = 7.0 + 2.4 * n_tf_rows
    fig = plt.figure(figsize=(14, height), dpi=dpi)
    gs = gridspec.GridSpec(2 + n_tf_rows, n_cols, figure=fig,
                           height_ratios=[3.0, 3.0] + [2.4] * n_tf_rows,
                           hspace=0.55, wspace=0.3, left=0.06, right=0.97,
                           top=1.0 - 0.8 / height, bottom=0.75 / height)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])

    # 1. butterfly: data and residual
    ax_d = fig.add_subplot(gs[0, :2])
    ax_r = fig.add_subplot(gs[0, 2:], sharey=ax_d)
    lim = float(np.max(np.abs(Mw))) if Mw.size else 1.0
    for ax, arr, name in ((ax_d, Mw, "whitened data"), (ax_r, Rw, "whitened residual")):
        ax.plot(times_ms, arr.T, color="k", lw=0.4, alpha=0.35)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_title(f"{name} ({arr.shape[0]} channels)")
        ax.set_xlabel("time (ms)")
        ax.set_xlim(times_ms[0], times_ms[-1])
    ax_d.set_ylabel("noise SD")
    ax_d.set_ylim(-1.05 * lim, 1.05 * lim)
    ev_pct = 100.0 * float(result.explained_variance)
    ax_r.text(0.99, 0.97, f"explained variance {ev_pct:.1f} %", ha="right", va="top",
              transform=ax_r.transAxes, fontsize=9)

    # 2. source time courses
    ax_s = fig.add_subplot(gs[1, :])
    for rank, k in enumerate(order):
        ax_s.plot(times_ms, 1e9 * data[k], color=colors[rank % len(colors)], lw=1.2,
                  label=labels[k])
    ax_s.axhline(0, color="0.5", lw=0.5)
    ax_s.set_xlim(times_ms[0], times_ms[-1])
    ax_s.set_xlabel("time (ms)")
    ax_s.set_ylabel("amplitude (nAm)")
    ax_s.set_title(f"{n_pos} active source{'s' if n_pos != 1 else ''}")
    if n_pos <= 16:
        ax_s.legend(fontsize=8, ncol=min(4, max(n_pos, 1)), loc="upper right")

    # 3. time-frequency maps (first dictionary)
    n_rows_tf = np.asarray(result.tf_coefs).shape[0]
    n_orient = max(n_rows_tf // max(n_pos, 1), 1)
    wsize = int(np.atleast_1d(result.wsize)[0])
    tstep = int(np.atleast_1d(result.tstep)[0])
    sfreq = 1.0 / float(est.tstep)
    n_freqs = int(np.atleast_1d(result.n_freqs)[0])
    n_steps = int(np.atleast_1d(result.n_steps)[0])
    df = sfreq / wsize
    f_top = min(float(fmax), sfreq / 2.0) if fmax is not None else sfreq / 2.0
    n_f = min(n_freqs, int(np.floor(f_top / df)) + 1)
    t0 = times_ms[0]
    t1 = t0 + 1e3 * n_steps * tstep / sfreq
    for i, k in enumerate(shown):
        ax = fig.add_subplot(gs[2 + i // n_cols, i % n_cols])
        power = 0.0
        for o in range(n_orient):
            c = result.tf_coefs_of(k * n_orient + o)[0]
            power = power + np.abs(c) ** 2
        mag = np.sqrt(power)[:n_f]
        im = ax.imshow(mag, origin="lower", aspect="auto", cmap="viridis",
                       extent=(t0, t1, -df / 2, (n_f - 0.5) * df),
                       interpolation="nearest")
        ax.set_xlim(times_ms[0], times_ms[-1])
        ax.set_ylim(0.0, (n_f - 0.5) * df)
        ax.set_title(labels[k], fontsize=9, color=colors[i % len(colors)])
        if i % n_cols == 0:
            ax.set_ylabel("frequency (Hz)")
        ax.set_xlabel("time (ms)", fontsize=8)
        ax.tick_params(labelsize=8)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
    if n_tf:
        fig.text(0.01, 0.01,
                 f"time-frequency maps: |STFT coefficients| of the {n_tf} strongest "
                 f"source{'s' if n_tf != 1 else ''} (first dictionary, wsize={wsize}, "
                 f"tstep={tstep}; whitened, scaled units)", fontsize=8)
    if title is None:
        title = (f"TF-MxNE: {n_pos} active source{'s' if n_pos != 1 else ''}, "
                 f"alpha={result.alpha:g} % of alpha_max, l1_ratio={result.l1_ratio:g}")
    fig.suptitle(title)
    if fname is not None:
        fig.savefig(fname, dpi=dpi)
    if show:
        plt.show()
    return fig


def _labels(estimate, forward):
    vertices = estimate.vertices
    if not isinstance(vertices, list | tuple):
        vertices = [vertices]
    if forward is not None:
        return [f"{r['space']} {r['vertex']} ({_mm(r['pos'])})"
                for r in source_table(estimate, forward)]
    names = ["lh", "rh"] if len(vertices) == 2 else [f"src{i}" for i in range(len(vertices))]
    if len(vertices) == 1:
        names = ["vertex"]
    return [f"{names[i]} {int(v)}" for i, verts in enumerate(vertices) for v in verts]


def _mm(pos):
    return ", ".join(f"{1e3 * x:.0f}" for x in pos) + " mm"
