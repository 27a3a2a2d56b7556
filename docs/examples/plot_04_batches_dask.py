"""
.. _ex-batches:

Batches in threads, epochs on Dask
==================================

A list of evokeds given to :func:`tfmxne.solve` is solved as a batch: the forward
operator is prepared once and the solves run in parallel threads (the compiled core
releases the GIL). :func:`tfmxne.solve_epochs` solves every epoch of an
:class:`mne.Epochs`, in threads or on the workers of a Dask cluster.

Here the batch is four noisy versions of the bundled response (the evoked plus noise
drawn from its own noise covariance, as four other recordings of it would differ).
"""

# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause

import time

import matplotlib.pyplot as plt
import mne
import numpy as np

import tfmxne
from tfmxne.datasets import sample

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)
evokeds = []
for seed in range(4):
    ev = evoked.copy()
    ev.comment = f"recording {seed}"
    evokeds.append(
        mne.simulation.add_noise(ev, noise_cov, random_state=seed, verbose=False)
    )
params = dict(sample.DEMO_PARAMS)

# %%
# One after another, then in two threads
# --------------------------------------

t0 = time.perf_counter()
one_by_one = [
    tfmxne.solve(ev, forward, noise_cov, verbose=False, **params) for ev in evokeds
]
t_serial = time.perf_counter() - t0

t0 = time.perf_counter()
batch = tfmxne.solve(evokeds, forward, noise_cov, n_jobs=2, verbose=False, **params)
t_batch = time.perf_counter() - t0
print(f"one by one {t_serial:.2f} s, batch of {len(batch)} in 2 threads {t_batch:.2f} s")
for r in batch:
    print(f"  {r.estimate.data.shape[0]} active sources, gap {r.gap:.1e}")

# %%
# Epochs on a Dask cluster
# ------------------------
#
# A local cluster stands in for a real one here; for a real cluster pass
# ``dask.distributed.Client("tcp://scheduler:8786")``. Every worker needs tfmxne
# installed; it prepares the forward operator once and keeps it for the next tasks.
# Each epoch is solved as an evoked response of one trial (``nave=1``).

from dask.distributed import Client  # noqa: E402

epochs = mne.EpochsArray(
    np.stack([ev.data for ev in evokeds]),
    evoked.info,
    tmin=evoked.times[0],
    baseline=None,
    verbose=False,
)
with Client(
    processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
) as client:
    results = tfmxne.solve_epochs(
        epochs, forward, noise_cov, client=client, progress=None, verbose=False, **params
    )
n_active = [0 if r.estimate is None else r.estimate.data.shape[0] for r in results]
print(f"active sources per epoch: {n_active}")

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(np.arange(len(n_active)), n_active)
_ = ax.set(xlabel="epoch", ylabel="active sources", title="solve_epochs on Dask")
