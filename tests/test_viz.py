# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Figures and fit summaries: the brain panels, the goodness of fit, the demo figure."""

from types import SimpleNamespace

import numpy as np
import pytest

import tfmxne
from tfmxne.datasets import sample
from tfmxne.viz import goodness_of_fit, plot_brain, plot_tfmxne, source_table

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    """The demo's solve on the bundled data (about 1 s)."""
    evoked, forward, noise_cov = sample.load()
    evoked.crop(*sample.DEMO_CROP)
    result = tfmxne.solve(
        evoked, forward, noise_cov, return_residual=True, **sample.DEMO_PARAMS
    )
    return result, evoked, forward, noise_cov


def _markers(ax):
    """The source markers of a brain panel: {label: collection}."""
    out = {}
    for c in ax.collections:
        if c.get_gid() in ("visible", "hidden"):
            assert c.get_label() not in out
            out[c.get_label()] = c
    return out


def _marker_color(c):
    cols = c.get_facecolor() if c.get_gid() == "visible" else c.get_edgecolor()
    assert len(cols) == 1
    return tuple(cols[0])


# --------------------------------------------------------------------------
# plot_brain on the demo
# --------------------------------------------------------------------------
def test_plot_brain_markers_per_view(demo):
    result, _, forward, _ = demo
    rows = source_table(result.estimate, forward)
    views = ("left", "top", "right", "front")
    fig = plot_brain(result.estimate, forward, views=views)
    try:
        axes = [ax for ax in fig.axes if ax.collections]
        assert len(axes) == len(views)
        labels = {f"{r['space']} {r['vertex']}": r for r in rows}
        for ax, view in zip(axes, views):
            markers = _markers(ax)
            # a lateral view shows the sources of its hemisphere; the others all
            hemi = {"left": "lh", "right": "rh"}.get(view)
            expected = {lab for lab, r in labels.items() if hemi in (None, r["space"])}
            assert set(markers) == expected, view
            # the surfaces: one polygon per triangle of the hemispheres shown
            n_tri = sum(
                len(s["tris"])
                for s in forward["src"]
                if hemi in (None, {101: "lh", 102: "rh"}[int(s["id"])])
            )
            polys = [c for c in ax.collections if c.get_gid() is None]
            assert len(polys) == 1 and len(polys[0].get_paths()) == n_tri
    finally:
        plt.close(fig)


def test_plot_brain_positions_and_sizes(demo):
    """Markers sit at the projected source positions, area proportional to peak."""
    result, _, forward, _ = demo
    rows = source_table(result.estimate, forward)
    assert len(rows) >= 2
    # screen axes of each view in the forward's (head) frame
    proj = {
        "top": np.array([[1, 0, 0], [0, 1, 0]]),
        "front": np.array([[-1, 0, 0], [0, 0, 1]]),
    }
    fig = plot_brain(result.estimate, forward, views=tuple(proj), max_size=300.0)
    try:
        axes = [ax for ax in fig.axes if ax.collections]
        amp = np.array([abs(r["amplitude"]) for r in rows])
        for ax, view in zip(axes, proj):
            markers = _markers(ax)
            xy = np.array(
                [markers[f"{r['space']} {r['vertex']}"].get_offsets()[0] for r in rows]
            )
            pos = np.array([r["pos"] for r in rows]) @ proj[view].T
            # same picture up to a translation (the centring of the view)
            np.testing.assert_allclose(xy - xy[0], pos - pos[0], atol=1e-12)
            sizes = np.array(
                [markers[f"{r['space']} {r['vertex']}"].get_sizes()[0] for r in rows]
            )
            np.testing.assert_allclose(
                sizes, np.maximum(300.0 * amp / amp.max(), 12.0), rtol=1e-12
            )
    finally:
        plt.close(fig)


def test_demo_figure_colours_match(demo):
    """A source has the same colour on the brain, in the time courses and TF maps."""
    result, evoked, forward, noise_cov = demo
    fig = plot_tfmxne(result, evoked, forward=forward)
    try:
        tc_ax = [ax for ax in fig.axes if ax.get_title().endswith("active sources")]
        assert len(tc_ax) == 1
        lines = {
            ln.get_label().split(" (")[0]: ln
            for ln in tc_ax[0].get_lines()
            if not ln.get_label().startswith("_")
        }
        n = len(source_table(result.estimate, forward))
        assert len(lines) == n
        brain_axes = [ax for ax in fig.axes if _markers(ax)]
        assert len(brain_axes) == 3  # left, top, right
        seen = set()
        for ax in brain_axes:
            for label, c in _markers(ax).items():
                assert _marker_color(c) == to_rgba(lines[label].get_color()), label
                seen.add(label)
        assert seen == set(lines)  # every source is drawn somewhere
        # the time-frequency titles
        for ax in fig.axes:
            key = ax.get_title().split(" (")[0]
            if key in lines and ax is not tc_ax[0]:
                assert to_rgba(ax.title.get_color()) == to_rgba(lines[key].get_color())
        # distinct colours for distinct sources (up to the length of the cycle)
        cols = {to_rgba(ln.get_color()) for ln in lines.values()}
        assert len(cols) == min(n, 10)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------
# plot_brain on a synthetic surface: occlusion, errors
# --------------------------------------------------------------------------
def _toy(points, amplitudes):
    """A flat square (2 triangles, z = 0) and sources at ``points`` (m)."""
    corners = np.array(
        [[-0.05, -0.05, 0.0], [0.05, -0.05, 0.0], [0.05, 0.05, 0.0], [-0.05, 0.05, 0.0]]
    )
    rr = np.concatenate([corners, np.asarray(points, float)])
    vertno = np.arange(4, len(rr))
    src = [
        dict(
            type="surf",
            id=101,
            rr=rr,
            tris=np.array([[0, 1, 2], [0, 2, 3]]),
            vertno=vertno,
        )
    ]
    forward = {"src": src, "source_rr": rr[vertno]}
    data = np.outer(amplitudes, [0.0, 1.0, 0.5])
    estimate = SimpleNamespace(data=data, vertices=[vertno], times=np.array([0, 1, 2.0]))
    return estimate, forward


def test_plot_brain_occlusion():
    # A 2 cm below the square, B 2 cm above it, C beside it
    est, fwd = _toy(
        [[0.0, 0.0, -0.02], [0.01, 0.0, 0.02], [0.2, 0.0, -0.02]], [1e-8, 2e-8, 3e-8]
    )
    fig = plot_brain(est, fwd, views=("top", "front"))
    try:
        top, front = [_markers(ax) for ax in fig.axes]
        assert {k: c.get_gid() for k, c in top.items()} == {
            "lh 4": "hidden",
            "lh 5": "visible",
            "lh 6": "visible",
        }
        # seen edge-on, the square hides nothing
        assert {c.get_gid() for c in front.values()} == {"visible"}
    finally:
        plt.close(fig)


def test_plot_brain_errors(demo):
    est, fwd = _toy([[0.0, 0.0, 0.01]], [1e-8])
    with pytest.raises(ValueError, match="views must be"):
        plot_brain(est, fwd, views=("side",))
    with pytest.raises(ValueError, match="one colour per active source"):
        plot_brain(est, fwd, colors=["r", "g"])
    fig, axes = plt.subplots(1, 2)
    try:
        with pytest.raises(ValueError, match="one axes per view"):
            plot_brain(est, fwd, views=("top",), axes=axes)
    finally:
        plt.close(fig)
    fwd["src"][0]["type"] = "vol"
    with pytest.raises(ValueError, match="no triangulated surface"):
        plot_brain(est, fwd)


# --------------------------------------------------------------------------
# goodness of fit
# --------------------------------------------------------------------------
def test_goodness_of_fit_against_mne_whitener():
    """Explained variances recomputed from the residual evoked and MNE's whitener."""
    import mne

    evoked, forward, noise_cov = sample.load()
    evoked.crop(*sample.DEMO_CROP)
    params = dict(sample.DEMO_PARAMS, window=None)  # the data as given, no tapers
    result = tfmxne.solve(evoked, forward, noise_cov, return_residual=True, **params)
    gof = goodness_of_fit(result, nave=evoked.nave)
    res = result.residual
    W, _, rank = mne.cov.compute_whitener(
        noise_cov, res.info, pca=True, return_rank=True, verbose=False
    )
    rank = sum(rank.values()) if isinstance(rank, dict) else int(rank)
    m2 = np.sum((W @ evoked.copy().pick(res.ch_names).data) ** 2, axis=0)
    r2 = np.sum((W @ res.data) ** 2, axis=0)
    f2 = np.sum((W @ (evoked.copy().pick(res.ch_names).data - res.data)) ** 2, axis=0)
    post = evoked.times > 0
    i = int(np.argmax(f2))
    # whitened products of order 1e3 in float64: agreement to 1e-9
    assert gof["whole"] == pytest.approx(1 - r2.sum() / m2.sum(), abs=1e-9)
    assert gof["whole"] == pytest.approx(result.explained_variance, abs=1e-12)
    assert gof["post"] == pytest.approx(1 - r2[post].sum() / m2[post].sum(), abs=1e-9)
    assert gof["peak_time"] == evoked.times[i]
    assert gof["peak"] == pytest.approx(1 - r2[i] / m2[i], abs=1e-9)
    assert gof["noise_post"] == pytest.approx(
        rank * post.sum() / evoked.nave / m2[post].sum(), rel=1e-9
    )
    assert gof["noise_peak"] == pytest.approx(rank / evoked.nave / m2[i], rel=1e-9)
    # the response is post-stimulus: the fit explains more there than overall
    assert gof["peak"] > gof["post"] > gof["whole"] > 0
    with pytest.raises(ValueError, match="nave must be a positive number"):
        goodness_of_fit(result, nave=0)


@pytest.mark.parametrize(
    "options",
    [dict(pca=False), dict(rank={"meg": 300, "eeg": 58})],
    ids=["pca=False", "rank"],
)
def test_figure_whitens_as_the_solve(options):
    """The butterfly panels whiten the evoked and the residual with the solve's
    own whitener: without PCA (one whitened row per channel) or with a given
    rank, the whitened data drawn are the data the solver fitted (no taper:
    window=None) and the residual drawn is their residual."""
    evoked, forward, noise_cov = sample.load()
    evoked.crop(*sample.DEMO_CROP)
    params = dict(sample.DEMO_PARAMS, window=None, **options)
    result = tfmxne.solve(evoked, forward, noise_cov, return_residual=True, **params)
    M = result._M
    R = M - result._gain_active @ result.X
    n_white = 366 if options.get("pca", True) is False else 358
    assert M.shape[0] == n_white  # (the default PCA whitener has 362 rows here)
    fig = plot_tfmxne(result, evoked, brain_views=())
    try:
        drawn = {}
        for name in ("whitened data", "whitened residual"):
            (ax,) = [a for a in fig.axes if a.get_title().startswith(name + " (")]
            assert ax.get_title() == f"{name} ({n_white} channels)"
            drawn[name] = np.array([ln.get_ydata() for ln in ax.get_lines()[:n_white]])
        # the data: the solver's product itself (same whitener, same channels),
        # to the rounding of a 366-term product, relative to the data's scale
        # (an element near zero differs by 9e-12 of itself under NumPy 1.25)
        np.testing.assert_allclose(
            drawn["whitened data"], M, rtol=0, atol=1e-12 * np.abs(M).max()
        )
        # the residual evoked is MNE's: the fit projected by the active SSP
        # projectors, which the whitener annihilates up to the rounding of its
        # eigendecomposition (about 1e-8 of the data here)
        rel = np.linalg.norm(drawn["whitened residual"] - R) / np.linalg.norm(R)
        assert rel < 1e-6, rel
    finally:
        plt.close(fig)
    with pytest.warns(DeprecationWarning, match="noise_cov is not used"):
        plt.close(plot_tfmxne(result, evoked, noise_cov, brain_views=()))
