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
import warnings

import numpy as np

from ._problem import noise_energy

__all__ = [
    "goodness_of_fit",
    "plot_brain",
    "plot_selection",
    "plot_tfmxne",
    "source_table",
]

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
    if (
        not _has_display()
        and "matplotlib.pyplot" not in sys.modules
        and not os.environ.get("MPLBACKEND")
    ):
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
            f"{len(src)}: they do not belong together"
        )
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
                    f"{label} source space"
                )
            tc = data[row]
            i_peak = int(np.argmax(np.abs(tc)))
            rows.append(
                dict(
                    index=row,
                    space=label,
                    vertex=int(v),
                    pos=np.asarray(forward["source_rr"][offset + k], float),
                    time=float(estimate.times[i_peak]),
                    amplitude=float(tc[i_peak]),
                    timecourse=tc,
                )
            )
            row += 1
        offset += len(vertno)
    return rows


def goodness_of_fit(result, nave=None):
    """Explained variance of a TF-MxNE fit, where the response is and overall.

    Computed on the whitened data the solver fitted (``M``, after the tapers
    of ``window``) and its fit ``G X``: the explained variance
    ``1 - ||M - G X||^2 / ||M||^2`` over the whole window, over the
    post-stimulus samples (``t > 0``) and at the peak of the fitted response
    (the sample where ``||G X(t)||^2``, the global field power of the fit, is
    largest).

    Parameters
    ----------
    result : TFMxNEResult
        The output of :func:`tfmxne.solve`.
    nave : int | None
        Number of trials averaged in the evoked response. When given, the
        share of the whitened data's energy that the noise alone is expected to
        account for is also returned: the whitened noise of an average of
        ``nave`` trials (at least 1) has variance ``1 / nave`` in each of the
        ``rank`` whitened (PCA) channels, so ``rank / nave`` per sample, times
        the square of the taper of ``window`` where the data are tapered (the
        expected noise energy the automatic alpha uses). Exact for ``pca=True``
        (the default), where the whitened data have ``rank`` rows.

    Returns
    -------
    gof : dict
        ``'whole'``, ``'post'`` and ``'peak'`` (explained variances, fractions;
        ``'post'`` is ``None`` without post-stimulus samples), ``'peak_time'``
        (s), and with ``nave`` ``'noise_post'`` and ``'noise_peak'`` (expected
        noise energy over the data energy, post-stimulus and at the peak).
    """
    M = np.asarray(result._M, dtype=np.float64)
    F = np.asarray(result._gain_active, dtype=np.float64) @ np.asarray(result.X)
    if F.shape != M.shape:  # no active source
        F = np.zeros_like(M)
    R = M - F
    times = np.asarray(result.times)
    m2 = np.sum(M * M, axis=0)
    r2 = np.sum(R * R, axis=0)

    def ev(sel):
        den = float(m2[sel].sum())
        return 1.0 - float(r2[sel].sum()) / den if den > 0 else 0.0

    post = times > 0
    i_peak = int(np.argmax(np.sum(F * F, axis=0)))
    out = dict(
        whole=ev(slice(None)),
        post=ev(post) if post.any() else None,
        peak=ev(slice(i_peak, i_peak + 1)),
        peak_time=float(times[i_peak]),
    )
    if nave is not None:
        if not nave > 0:
            raise ValueError(f"nave must be a positive number, got {nave!r}")
        n_chan, taper = M.shape[0], result._taper
        out["noise_post"] = (
            noise_energy(n_chan, nave, taper, post) / float(m2[post].sum())
            if post.any() and m2[post].sum() > 0
            else None
        )
        out["noise_peak"] = (
            noise_energy(n_chan, nave, taper, [i_peak]) / float(m2[i_peak])
            if m2[i_peak] > 0
            else None
        )
    return out


# --------------------------------------------------------------------------
# sources on the cortical surface
# --------------------------------------------------------------------------
# orthographic views in the forward's frame (head or MRI: x right, y anterior,
# z up): screen right, screen up, towards the viewer (right-handed)
_VIEWS = {
    "left": ((0, -1, 0), (0, 0, 1), (-1, 0, 0), "left hemisphere, lateral", "lh"),
    "right": ((0, 1, 0), (0, 0, 1), (1, 0, 0), "right hemisphere, lateral", "rh"),
    "top": ((1, 0, 0), (0, 1, 0), (0, 0, 1), "top (anterior up)", None),
    "front": ((-1, 0, 0), (0, 0, 1), (0, 1, 0), "front", None),
    "back": ((1, 0, 0), (0, 0, 1), (0, -1, 0), "back", None),
}
_MARKER_AREA = 400.0  # points^2, the strongest source of a brain panel
_OCCLUSION_TOL = 3e-3  # m: a source this far behind the surface drawn over it is hidden


def _surfaces(forward):
    """(label, vertices, triangles) of each triangulated surface source space."""
    out = []
    for s in forward["src"]:
        tris = s.get("tris")
        if (
            s["type"] == "surf"
            and tris is not None
            and len(tris)
            and s.get("rr") is not None
        ):
            out.append(
                (_space_label(s), np.asarray(s["rr"], float), np.asarray(tris, int))
            )
    return out


def _source_colors(estimate):
    """One colour per row of the estimate: the colour cycle by decreasing peak."""
    from matplotlib import rcParams

    cycle = rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    data = np.asarray(estimate.data)
    if data.ndim == 3:
        data = np.linalg.norm(data, axis=1)
    order = np.argsort(-np.max(np.abs(data), axis=1), kind="stable")
    colors = [None] * len(order)
    for rank, k in enumerate(order):
        colors[k] = cycle[rank % len(cycle)]
    return colors


def _occluded(points, depth, tri_xy, tri_depth):
    """Whether each projected point lies behind a projected triangle (by depth)."""
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12  # triangles seen edge-on hide nothing
    den = np.where(ok, den, 1.0)
    hidden = np.zeros(len(points), bool)
    for i, (q, dq) in enumerate(zip(points, depth)):
        w = q - a
        u = (w[:, 0] * v1[:, 1] - v1[:, 0] * w[:, 1]) / den
        v = (v0[:, 0] * w[:, 1] - w[:, 0] * v0[:, 1]) / den
        inside = ok & (u >= 0) & (v >= 0) & (u + v <= 1)
        if inside.any():
            d = (
                (1 - u - v) * tri_depth[:, 0] + u * tri_depth[:, 1] + v * tri_depth[:, 2]
            )[inside]
            hidden[i] = bool(np.any(d > dq + _OCCLUSION_TOL))
    return hidden


def _draw_view(ax, view, surfaces, frame, markers):
    """One panel of :func:`plot_brain`: the surfaces seen from ``view``, shaded,
    and the sources (``markers``), open where the surface hides them."""
    from matplotlib.collections import PolyCollection

    centre, pad = frame
    rows = markers["rows"]
    h, v, d = (np.asarray(x, float) for x in _VIEWS[view][:3])
    name, hemi = _VIEWS[view][3:]
    # a lateral view shows its hemisphere and the sources outside the other
    keep = [k for k, (lab, _, _) in enumerate(surfaces) if hemi in (None, lab)]
    if not keep:  # no such hemisphere: show everything
        keep = list(range(len(surfaces)))
    other = {lab for lab, _, _ in surfaces} - {surfaces[k][0] for k in keep}
    rr = np.concatenate([surfaces[k][1] for k in keep])
    offsets = np.cumsum([0] + [len(surfaces[k][1]) for k in keep[:-1]])
    tris = np.concatenate([surfaces[k][2] + o for k, o in zip(keep, offsets)])
    # shading from vertex normals (area-weighted), smoother than facets
    fn = np.cross(rr[tris[:, 1]] - rr[tris[:, 0]], rr[tris[:, 2]] - rr[tris[:, 0]])
    vn = np.zeros_like(rr)
    for j in range(3):
        np.add.at(vn, tris[:, j], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-30)
    light = np.abs(vn @ d)[tris].mean(axis=1)
    xy = (rr - centre) @ np.stack([h, v], axis=1)
    depth = (rr - centre) @ d
    tri_depth = depth[tris]
    order = np.argsort(tri_depth.mean(axis=1), kind="stable")  # far first
    shade = 0.32 + 0.6 * light[order]
    fc = np.repeat(shade[:, None], 3, axis=1)
    ax.add_collection(
        PolyCollection(
            xy[tris[order]], facecolors=fc, edgecolors=fc, linewidths=0.2, zorder=1
        )
    )
    shown = [k for k in markers["order"] if rows[k]["space"] not in other]
    if shown:
        pxy = (markers["pos"] - centre) @ np.stack([h, v], axis=1)
        pdepth = (markers["pos"] - centre) @ d
        hidden = np.zeros(len(rows), bool)
        hidden[shown] = _occluded(pxy[shown], pdepth[shown], xy[tris], tri_depth)
        for k in shown:
            _draw_marker(ax, markers, k, pxy[k], hidden[k])
    # tight around the surfaces shown (each panel has its own scale)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(name, fontsize=9)


def _draw_marker(ax, markers, k, xy, hidden):
    """Source ``k`` at ``xy``: a disc, or an open circle where it is hidden."""
    row, color = markers["rows"][k], markers["colors"][k]
    style = (
        dict(facecolors="none", edgecolors=[color], linewidths=2.0, zorder=3)
        if hidden
        else dict(c=[color], edgecolors="k", linewidths=0.8, zorder=4)
    )
    ax.scatter(
        xy[0],
        xy[1],
        s=markers["sizes"][k],
        label=f"{row['space']} {row['vertex']}",
        gid="hidden" if hidden else "visible",
        **style,
    )


def plot_brain(
    estimate,
    forward,
    *,
    views=("left", "top", "right"),
    colors=None,
    max_size=_MARKER_AREA,
    axes=None,
    title=None,
    fname=None,
    dpi=100,
    show=False,
):
    """Draw the active sources on the triangulated cortical surfaces.

    The surfaces are those of the forward's own surface source spaces
    (``forward['src'][i]['rr']`` and ``['tris']``, in the forward's coordinate
    frame), drawn with matplotlib in orthographic views and shaded by the
    angle of each triangle to the viewer. Each active source is a disc at its
    position (``forward['source_rr']``) whose area is proportional to its peak
    amplitude; sources hidden by the surface in a view (in a sulcus, or
    below the top of the brain) are drawn as open circles. A lateral view shows
    one hemisphere and leaves out the sources of the other. Each marker is a
    scatter collection labelled ``'<space> <vertex>'`` (as the first words of
    the time-course labels of :func:`plot_tfmxne`), with gid ``'visible'`` or
    ``'hidden'``.

    Parameters
    ----------
    estimate : SourceEstimate | VectorSourceEstimate | MixedSourceEstimate
        A sparse source estimate computed with ``forward``.
    forward : Forward
        Its forward solution, with at least one triangulated surface source
        space.
    views : sequence of str
        Viewpoints, among ``'left'``, ``'right'`` (lateral), ``'top'``,
        ``'front'`` and ``'back'``; one panel each.
    colors : list | None
        One matplotlib colour per active source, in the order of the
        estimate's rows. ``None``: the colour cycle by decreasing peak amplitude,
        as the time courses of :func:`plot_tfmxne`.
    max_size : float
        Marker area (points^2) of the strongest source.
    axes : list of Axes | None
        One axes per view to draw in; ``None``: a new figure.
    title : str | None
        Figure title (only for a new figure).
    fname : path-like | None
        Save the figure there (format from the extension).
    dpi : int
        Resolution (dots per inch).
    show : bool
        Show the figure (with an interactive backend).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    plt = _pyplot()
    views = [views] if isinstance(views, str) else list(views)
    bad = [v for v in views if v not in _VIEWS]
    if not views or bad:
        raise ValueError(
            f"views must be a non-empty sequence of {sorted(_VIEWS)}, got {views!r}"
        )
    surfaces = _surfaces(forward)
    if not surfaces:
        raise ValueError(
            "the forward has no triangulated surface source space to draw (volume "
            "or discrete source spaces only, or surfaces without 'tris')"
        )
    rows = source_table(estimate, forward)
    if colors is None:
        colors = _source_colors(estimate)
    colors = list(colors)
    if len(colors) != len(rows):
        raise ValueError(
            f"colors must give one colour per active source ({len(rows)}), "
            f"got {len(colors)}"
        )
    if axes is None:
        fig, axes = plt.subplots(
            1, len(views), figsize=(3.6 * len(views), 3.4), dpi=dpi, squeeze=False
        )
        axes = list(axes[0])
        if title is not None:
            fig.suptitle(title)
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(views):
            raise ValueError(
                f"axes must have one axes per view ({len(views)}), got {len(axes)}"
            )
        fig = axes[0].figure

    all_rr = np.concatenate([v for _, v, _ in surfaces])
    centre = 0.5 * (all_rr.min(axis=0) + all_rr.max(axis=0))
    pad = 0.03 * float(np.ptp(all_rr, axis=0).max())
    pos = np.array([r["pos"] for r in rows]).reshape(-1, 3)
    amp = np.abs(np.array([r["amplitude"] for r in rows], float))
    sizes = max_size * amp / amp.max() if len(amp) and amp.max() > 0 else amp
    sizes = np.maximum(sizes, 0.04 * max_size)
    markers = dict(
        rows=rows,
        pos=pos,
        sizes=sizes,
        colors=colors,
        order=np.argsort(-sizes, kind="stable"),  # small markers on top
    )
    for ax, view in zip(axes, views):
        _draw_view(ax, view, surfaces, (centre, pad), markers)
    if fname is not None:
        fig.savefig(fname, dpi=dpi)
    if show:
        plt.show()
    return fig


# --------------------------------------------------------------------------
# the automatic choice of alpha
# --------------------------------------------------------------------------
_CRITERION_LABELS = {
    "signal-share": "unexplained signal share + c k",
    "model-discrepancy": "residual energy / target",
    "discrepancy": "residual energy / target",
    "sure": "SURE",
    "bic": "BIC",
}


def _selection_points(sel, i):
    """(alphas, values, n_active) solved for row ``i`` of the l1_ratio grid,
    the refined points of the discrepancy criteria included, by alpha."""
    a = np.asarray(sel["alphas"], float)
    v = np.asarray(sel["values"], float)[i]
    k = np.asarray(sel["n_active"])[i]
    ref = sel.get("refined_alphas")
    if ref is not None and len(ref):
        a = np.concatenate([a, np.asarray(ref, float)])
        v = np.concatenate([v, np.asarray(sel["refined_values"], float)[i]])
        k = np.concatenate([k, np.asarray(sel["refined_n_active"])[i]])
    keep = np.isfinite(v) & (k >= 0)
    order = np.argsort(-a[keep])
    return a[keep][order], v[keep][order], k[keep][order]


def plot_selection(result, axes=None, fname=None, show=False):
    """Plot the criterion of an automatic choice of alpha over its grid.

    For each l1_ratio of the grid, the criterion's value at every alpha that
    was solved (the walk stops once the answer is known, so the smallest
    alphas may be missing) and the number of active positions there; the
    choice is marked (star, dashed line).

    Parameters
    ----------
    result : TFMxNEResult
        A result with ``selection`` (:func:`tfmxne.solve` with ``alpha=None``,
        a criterion, or ``l1_ratio=None``).
    axes : sequence of two matplotlib Axes | None
        Where to draw the criterion and the active positions (``None``: a new
        figure).
    fname : path-like | None
        Save the figure there (format from the extension).
    show : bool
        Show the figure (with an interactive backend).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    sel = result.selection
    if sel is None:
        raise ValueError(
            "the result has no automatic choice to plot (selection is None: alpha and "
            "l1_ratio were given)"
        )
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
    ax_v, ax_k = axes
    fig = ax_v.figure
    crit = sel["criterion"]
    l1s = list(np.asarray(sel["l1_ratios"], float))
    for i, l1 in enumerate(l1s):
        a, v, k = _selection_points(sel, i)
        if not len(a):
            continue
        style = dict(marker="o", ms=3.5, lw=1.2, color=f"C{i}", label=f"l1_ratio {l1:g}")
        ax_v.plot(a, v, **style)
        ax_k.plot(a, k, **style)
        if l1 == sel["l1_ratio"]:
            j = int(np.argmin(np.abs(a - sel["alpha"])))
            for ax, y in ((ax_v, v[j]), (ax_k, k[j])):
                ax.plot(a[j], y, marker="*", ms=14, color="C3", mec="k", zorder=5)
    from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

    grid = np.asarray(sel["alphas"], float)
    nice = np.array([1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 99])
    lo, hi = grid.min() / 1.05, grid.max() * 1.05
    ticks = nice[(nice >= lo) & (nice <= hi)]
    for ax in (ax_v, ax_k):
        ax.axvline(sel["alpha"], color="C3", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(hi, lo)  # (decreasing: the walk goes down the grid)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.set_xlabel("alpha (% of alpha_max)")
    if crit in ("model-discrepancy", "discrepancy"):
        ax_v.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax_v.set_ylabel(_CRITERION_LABELS.get(crit, crit))
    ax_k.set_ylabel("active positions")
    n_solves = sel.get("n_solves")
    ax_v.set_title(
        f"automatic alpha ({crit!r}): {sel['alpha']:.3g} % of alpha_max, "
        f"l1_ratio {sel['l1_ratio']:g}"
        + (f" ({n_solves} solves)" if n_solves is not None else ""),
        fontsize=10,
    )
    ax_k.set_title("active positions along the grid", fontsize=10)
    ax_v.legend(fontsize=8)
    if fname is not None:
        fig.savefig(fname)
    if show:
        plt.show()
    return fig


# --------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------
def _whiten(result, evoked):
    """``evoked`` and the residual whitened by the solve's own whitener (its
    channels, rank and PCA as the solve used them)."""
    W = np.asarray(result._whitener)
    names = result._ch_names
    residual = result.residual
    ev = evoked
    if not np.allclose(ev.times, residual.times):
        ev = ev.copy().crop(residual.times[0], residual.times[-1])
    data = ev.data[[ev.ch_names.index(c) for c in names]]
    res = residual.data[[residual.ch_names.index(c) for c in names]]
    return W @ data, W @ res


def plot_tfmxne(
    result,
    evoked=None,
    noise_cov=None,
    *,
    max_sources=8,
    fmax=100.0,
    forward=None,
    brain_views=("left", "top", "right"),
    title=None,
    fname=None,
    dpi=100,
    show=False,
    selection=True,
):
    """Plot a TF-MxNE result: data, residual, sources on the brain, time courses.

    The figure has four parts: a butterfly plot of the whitened sensor data next
    to the whitened residual (same scale, in units of noise standard deviation)
    with the explained variance (whole window, post-stimulus, at the peak of
    the fit: :func:`goodness_of_fit`); the active sources on the cortical
    surfaces (:func:`plot_brain`, when ``forward`` has triangulated surface
    source spaces); the time courses of the active sources (nAm); and for each
    of the strongest sources the magnitude of its STFT coefficients (first
    dictionary, frequency against time). A source has the same colour in every
    panel.

    Parameters
    ----------
    result : TFMxNEResult
        The output of :func:`tfmxne.solve` (with a residual).
    evoked : Evoked | None
        The data given to the solve, whitened (with the residual) by the
        solve's own whitener. ``None``: the whitened data and residual the
        solver worked on (after the tapers of ``window``) are shown.
    noise_cov : None
        Not used (the solve's whitener is); deprecated, and removed in 0.2.
    max_sources : int
        At most this many sources (the strongest) get a time-frequency map.
    fmax : float
        Highest frequency shown in the time-frequency maps (Hz; clipped to
        Nyquist).
    forward : Forward | None
        When given, the sources are labelled with their positions (mm) and
        drawn on the cortical surfaces of its source spaces.
    brain_views : sequence of str
        Viewpoints of the brain panels (see :func:`plot_brain`); empty: no
        brain panels.
    title : str | None
        Figure title (default: a summary of the result).
    fname : path-like | None
        Save the figure there (format from the extension).
    dpi : int
        Resolution (dots per inch) of the figure.
    show : bool
        Show the figure (with an interactive backend).
    selection : bool
        When the result comes from an automatic choice of alpha
        (``result.selection``), add a row with the criterion over the grid and
        the choice marked (:func:`plot_selection`).

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

    if noise_cov is not None:
        warnings.warn(
            "plot_tfmxne: noise_cov is not used (the figure whitens with the solve's "
            "own whitener, kept on the result) and will be removed in tfmxne 0.2",
            DeprecationWarning,
            stacklevel=2,
        )
    est = result.estimate
    data = np.asarray(est.data)
    if data.ndim == 3:
        data = np.linalg.norm(data, axis=1)
    n_pos = data.shape[0]
    order = np.argsort(-np.max(np.abs(data), axis=1), kind="stable")
    shown = order[: max(int(max_sources), 0)]
    Mw, Rw = _whitened_data(result, evoked)
    brain_views = [brain_views] if isinstance(brain_views, str) else list(brain_views)
    brain = bool(forward is not None and brain_views and _surfaces(forward) and n_pos > 0)
    n_cols = 4
    n_tf_rows = int(np.ceil(len(shown) / n_cols)) if len(shown) else 0
    with_sel = bool(selection) and getattr(result, "selection", None) is not None
    ratios = [3.0] + ([3.8] if brain else []) + [3.0] + [2.4] * n_tf_rows
    ratios += [2.6] if with_sel else []
    height = sum(ratios) + 1.0 + 0.55 * (len(ratios) - 1)
    fig = plt.figure(figsize=(14, height), dpi=dpi)
    gs = gridspec.GridSpec(
        len(ratios),
        n_cols,
        figure=fig,
        height_ratios=ratios,
        hspace=0.55,
        wspace=0.3,
        left=0.06,
        right=0.97,
        top=1.0 - 0.8 / height,
        bottom=0.75 / height,
    )
    gof = goodness_of_fit(result)
    _butterfly(fig, gs[0, :2], gs[0, 2:], result, Mw, Rw, gof, n_pos)
    colors, labels = _source_colors(est), _labels(est, forward)
    if brain:
        _brain_panels(fig, gs[1, :], est, forward, brain_views, colors)
    row_s = 2 if brain else 1
    ax_s = fig.add_subplot(gs[row_s, :])
    _time_courses(ax_s, result, data, order, colors, labels, 1e3 * gof["peak_time"])
    _tf_maps(fig, gs, row_s + 1, n_cols, result, shown, colors, labels, fmax)
    if with_sel:
        plot_selection(
            result, axes=[fig.add_subplot(gs[-1, :2]), fig.add_subplot(gs[-1, 2:])]
        )
    if title is None:
        title = (
            f"TF-MxNE: {n_pos} active source{'s' if n_pos != 1 else ''}, "
            f"alpha={result.alpha:g} % of alpha_max, l1_ratio={result.l1_ratio:g}"
        )
    fig.suptitle(title)
    if fname is not None:
        fig.savefig(fname, dpi=dpi)
    if show:
        plt.show()
    return fig


def _whitened_data(result, evoked):
    """The whitened data and residual of the figure: of ``evoked`` by the solve's
    own whitener, or (None) those the solver worked on."""
    if evoked is not None:
        if result.residual is None:
            raise ValueError(
                "the result has no residual (solve with return_residual=True)"
            )
        return _whiten(result, evoked)
    Mw = np.asarray(result._M)
    return Mw, Mw - np.asarray(result._gain_active) @ np.asarray(result.X)


def _brain_panels(fig, spec, est, forward, views, colors):
    """The sources on the cortical surfaces, one panel per view, and the key."""
    sub = spec.subgridspec(
        1, len(views) + 1, wspace=0.02, width_ratios=[1.0] * len(views) + [0.75]
    )
    axes_b = [fig.add_subplot(sub[0, i]) for i in range(len(views))]
    plot_brain(est, forward, views=views, colors=colors, axes=axes_b)
    _brain_key(fig.add_subplot(sub[0, -1]), est, forward)


def _butterfly(fig, spec_d, spec_r, result, Mw, Rw, gof, n_pos):
    """Whitened data and residual, their RMS, the fit's RMS and the explained
    variance."""
    times_ms = 1e3 * np.asarray(result.times)
    t_peak = 1e3 * gof["peak_time"]
    ax_d = fig.add_subplot(spec_d)
    ax_r = fig.add_subplot(spec_r, sharey=ax_d)
    lim = float(np.max(np.abs(Mw))) if Mw.size else 1.0
    for ax, arr, name in ((ax_d, Mw, "whitened data"), (ax_r, Rw, "whitened residual")):
        ax.plot(times_ms, arr.T, color="0.55", lw=0.4, alpha=0.3)
        ax.axhline(0, color="0.5", lw=0.5)
        # root mean square over channels: the response stands out of the noise
        ax.plot(
            times_ms,
            np.sqrt(np.mean(arr**2, axis=0)),
            color="k",
            lw=1.6,
            label="RMS over channels",
        )
        if n_pos:
            ax.axvline(t_peak, color="0.3", lw=0.8, ls="--")
        ax.set_title(f"{name} ({arr.shape[0]} channels)")
        ax.set_xlabel("time (ms)")
        ax.set_xlim(times_ms[0], times_ms[-1])
    if n_pos:
        fit = Mw - Rw
        ax_d.plot(
            times_ms,
            np.sqrt(np.mean(fit**2, axis=0)),
            color="k",
            lw=1.2,
            ls=":",
            label="RMS of the fit",
        )
    ax_d.legend(fontsize=8, loc="lower right")
    ax_d.set_ylabel("noise SD")
    ax_d.set_ylim(-1.05 * lim, 1.05 * lim)
    text = f"explained variance: {100 * gof['whole']:.1f} % (whole window)"
    if gof["post"] is not None:
        text += f", {100 * gof['post']:.1f} % (t > 0)"
    if n_pos:
        text += (
            f",\n{100 * gof['peak']:.1f} % at the peak of the fit ({t_peak:.0f} ms, "
            "dashed)"
        )
    ax_r.text(
        0.99,
        0.97,
        text,
        ha="right",
        va="top",
        transform=ax_r.transAxes,
        fontsize=8,
        bbox=dict(facecolor="w", edgecolor="none", alpha=0.8),
    )


def _time_courses(ax_s, result, data, order, colors, labels, t_peak):
    """The time courses of the active sources (nAm)."""
    times_ms = 1e3 * np.asarray(result.times)
    n_pos = data.shape[0]
    for k in order:
        ax_s.plot(times_ms, 1e9 * data[k], color=colors[k], lw=1.2, label=labels[k])
    ax_s.axhline(0, color="0.5", lw=0.5)
    if n_pos:
        ax_s.axvline(t_peak, color="0.3", lw=0.8, ls="--")
    ax_s.set_xlim(times_ms[0], times_ms[-1])
    ax_s.set_xlabel("time (ms)")
    ax_s.set_ylabel("amplitude (nAm)")
    ax_s.set_title(f"{n_pos} active source{'s' if n_pos != 1 else ''}")
    if n_pos <= 16:
        ax_s.legend(fontsize=8, ncol=min(4, max(n_pos, 1)), loc="upper right")


def _tf_maps(fig, gs, row_tf, n_cols, result, shown, colors, labels, fmax):
    """|STFT coefficients| (first dictionary) of the sources ``shown``."""
    est = result.estimate
    n_pos = len(colors)
    times_ms = 1e3 * np.asarray(result.times)
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
        ax = fig.add_subplot(gs[row_tf + i // n_cols, i % n_cols])
        power = 0.0
        for o in range(n_orient):
            c = result.tf_coefs_of(k * n_orient + o)[0]
            power = power + np.abs(c) ** 2
        mag = np.sqrt(power)[:n_f]
        im = ax.imshow(
            mag,
            origin="lower",
            aspect="auto",
            cmap="viridis",
            extent=(t0, t1, -df / 2, (n_f - 0.5) * df),
            interpolation="nearest",
        )
        ax.set_xlim(times_ms[0], times_ms[-1])
        ax.set_ylim(0.0, (n_f - 0.5) * df)
        ax.set_title(labels[k], fontsize=9, color=colors[k])
        if i % n_cols == 0:
            ax.set_ylabel("frequency (Hz)")
        ax.set_xlabel("time (ms)", fontsize=8)
        ax.tick_params(labelsize=8)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
    if len(shown):
        n_tf = len(shown)
        fig.text(
            0.01,
            0.01,
            f"time-frequency maps: |STFT coefficients| of the {n_tf} strongest "
            f"source{'s' if n_tf != 1 else ''} (first dictionary, wsize={wsize}, "
            f"tstep={tstep}; whitened, scaled units)",
            fontsize=8,
        )


def _brain_key(ax, estimate, forward):
    """Legend of the brain panels: marker sizes and open/filled markers."""
    rows = source_table(estimate, forward)
    amp = np.abs([r["amplitude"] for r in rows])
    ax.set_axis_off()
    top = float(amp.max()) if len(amp) else 0.0
    if top <= 0:
        return
    # the sizes plot_brain gives to 100 %, 50 % and 20 % of the largest peak
    ref = [top, top / 2, top / 5]
    for i, a in enumerate(ref):
        y = 0.86 - 0.13 * i
        ax.scatter(
            [0.12],
            [y],
            s=max(_MARKER_AREA * a / top, 0.04 * _MARKER_AREA),
            c="0.6",
            edgecolors="k",
            linewidths=0.8,
            transform=ax.transAxes,
            clip_on=False,
        )
        ax.text(
            0.25, y, f"{1e9 * a:.0f} nAm", va="center", fontsize=8, transform=ax.transAxes
        )
    ax.text(
        0.0,
        0.47,
        "marker area: peak amplitude\nfilled: visible in this view\n"
        "open: below the surface\n(in a sulcus, or seen from\nabove)\n"
        "colours: as the time courses",
        va="top",
        fontsize=8,
        transform=ax.transAxes,
    )


def _labels(estimate, forward):
    vertices = estimate.vertices
    if not isinstance(vertices, list | tuple):
        vertices = [vertices]
    if forward is not None:
        return [
            f"{r['space']} {r['vertex']} ({_mm(r['pos'])})"
            for r in source_table(estimate, forward)
        ]
    names = (
        ["lh", "rh"] if len(vertices) == 2 else [f"src{i}" for i in range(len(vertices))]
    )
    if len(vertices) == 1:
        names = ["vertex"]
    return [f"{names[i]} {int(v)}" for i, verts in enumerate(vertices) for v in verts]


def _mm(pos):
    return ", ".join(f"{1e3 * x:.0f}" for x in pos) + " mm"
