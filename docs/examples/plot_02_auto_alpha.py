"""
.. _ex-auto-alpha:

Choose alpha automatically
==========================

MNE's ``tf_mixed_norm`` needs ``alpha`` (in percent of alpha_max, the smallest value
that leaves no source) and ``l1_ratio``. With ``alpha=None``, :func:`tfmxne.solve`
walks a warm-started path down a grid of alphas and keeps the estimate that minimises
its criterion, ``'signal-share'`` by default: every position kept must explain at least
a share of the data's energy beyond the noise. ``result.selection`` holds the criterion
over the grid.
"""

# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause

import matplotlib.pyplot as plt
import numpy as np

import tfmxne
from tfmxne.datasets import sample

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)

res = tfmxne.solve(evoked, forward, noise_cov, l1_ratio=0.03, verbose=False)
sel = res.selection
print(
    f"criterion {sel['criterion']!r}: alpha {sel['alpha']:.3g} %, "
    f"l1_ratio {sel['l1_ratio']}, {res.estimate.data.shape[0]} active sources, "
    f"{sel['n_solves']} solves"
)

# %%
# The criterion over the grid
# ---------------------------
#
# The walk stops a few alphas after the best one once the criterion no longer improves,
# so the smallest alphas of the grid are not solved.

row = list(sel["l1_ratios"]).index(sel["l1_ratio"])
values, n_active = sel["values"][row], sel["n_active"][row]
solved = np.isfinite(values)
alphas = sel["alphas"]

fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(6.5, 5), layout="constrained")
ax1.plot(alphas[solved], values[solved], "o-")
ax1.axvline(sel["alpha"], color="C3", ls="--", label=f"chosen: {sel['alpha']:.3g} %")
ax1.set(ylabel=f"criterion ({sel['criterion']})")
ax1.legend()
ax2.plot(alphas[solved], n_active[solved], "o-", color="C2")
ax2.axvline(sel["alpha"], color="C3", ls="--")
ax2.set(xlabel="alpha (% of alpha_max)", ylabel="active positions")
ax2.invert_xaxis()
_ = fig.suptitle("Automatic alpha on the bundled data")
