"""
.. _ex-brain-tf:

Sources on the brain and their time-frequency maps
==================================================

:mod:`tfmxne.viz` draws a result with matplotlib only (no 3D backend needed): the
active sources on the source space's own cortical surfaces, and each source's
time-frequency map, the moduli of its STFT coefficients (the quantity the L1 penalty
of TF-MxNE makes sparse).
"""

# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause

import matplotlib.pyplot as plt
import numpy as np

import tfmxne
from tfmxne import viz
from tfmxne.datasets import sample

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)
res = tfmxne.solve(evoked, forward, noise_cov, verbose=False, **sample.DEMO_PARAMS)
for row in viz.source_table(res.estimate, forward):
    x, y, z = 1e3 * row["pos"]
    print(
        f"{row['space']} vertex {row['vertex']:6d} at ({x:4.0f}, {y:4.0f}, {z:4.0f}) mm: "
        f"peak {1e9 * row['amplitude']:5.1f} nAm at {1e3 * row['time']:.0f} ms"
    )

# %%
# The sources on the cortex
# -------------------------
#
# Marker area is proportional to the peak amplitude; an open marker is a source hidden
# below the surface in that view (the auditory cortex lies in the Sylvian fissure).

fig = viz.plot_brain(res.estimate, forward)

# %%
# Time-frequency maps
# -------------------
#
# ``res.tf_coefs_of(k)`` gives the coefficients of the k-th active source, one
# (n_freqs, n_steps) map per dictionary and orientation.

n_show = min(3, res.estimate.data.shape[0])
fig, axes = plt.subplots(1, n_show, figsize=(3.2 * n_show, 3), layout="constrained")
axes = np.atleast_1d(axes)
for k, ax in enumerate(axes):
    maps = res.tf_coefs_of(k)
    tf = np.sqrt(sum(np.abs(np.asarray(m)) ** 2 for m in np.atleast_3d(maps)))
    extent = [1e3 * evoked.times[0], 1e3 * evoked.times[-1], 0, evoked.info["sfreq"] / 2]
    ax.imshow(tf, aspect="auto", origin="lower", extent=extent, cmap="viridis")
    ax.set(title=f"source {k}", xlabel="time (ms)", ylim=(0, 100))
_ = axes[0].set(ylabel="frequency (Hz)")

# %%
# Everything in one figure
# ------------------------
#
# :func:`tfmxne.viz.plot_tfmxne` is the figure of ``tfmxne demo``: whitened data and
# residual, the brain, the time courses and the time-frequency maps, a source in the
# same colour in every panel.

fig = viz.plot_tfmxne(res, evoked, forward=forward)
