"""
.. _ex-alpha-path:

A warm-started alpha path
=========================

:func:`tfmxne.tf_mixed_norm_path` solves one problem for a decreasing series of alphas,
each solve starting from the previous answer, and prepares the gain and the whitened
data once. Each result is a :class:`tfmxne.TFMxNEResult`, with its own certified
duality gap.
"""

# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause

import matplotlib.pyplot as plt
import numpy as np

import tfmxne
from tfmxne.datasets import sample

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)
alphas = np.linspace(90, 40, 11)

path = tfmxne.tf_mixed_norm_path(
    evoked, forward, noise_cov, alphas=alphas, l1_ratio=0.03, progress=None, verbose=False
)

n_active = [0 if r.estimate is None else r.estimate.data.shape[0] for r in path]
elapsed = [r.elapsed for r in path]
ev = [r.explained_variance if r.estimate is not None else 0.0 for r in path]
for a, k, t, g in zip(alphas, n_active, elapsed, (r.gap for r in path)):
    print(f"alpha {a:5.1f} %: {k:3d} active sources, gap {g:.1e}, {t:.2f} s")
print(f"whole path: {sum(elapsed):.2f} s")

# %%
# Smaller alphas keep more sources and explain more of the data.

fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
ax.plot(alphas, n_active, "o-", label="active sources")
ax.set(xlabel="alpha (% of alpha_max)", ylabel="active sources")
ax.invert_xaxis()
ax2 = ax.twinx()
ax2.plot(alphas, ev, "s--", color="C1", label="explained variance")
ax2.set(ylabel="explained variance")
_ = fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.95))
