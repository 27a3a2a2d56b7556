"""
.. _ex-patch:

Run an unchanged MNE script with tfmxne
=======================================

Some pipelines cannot change their imports (an MNE example, a step of
mne-bids-pipeline). :func:`tfmxne.patch_mne` makes MNE's own
``mne.inverse_sparse.tf_mixed_norm`` and its array-level TF-MxNE solvers run tfmxne,
as scikit-learn-intelex's ``patch_sklearn()`` does for scikit-learn;
:func:`tfmxne.unpatch_mne` restores MNE exactly. Used as a context manager, the patch
lasts for a block.
"""

# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause

import time

import mne

import tfmxne
from tfmxne.datasets import sample

evoked, forward, noise_cov = sample.load()
evoked.crop(*sample.DEMO_CROP)
params = dict(sample.DEMO_PARAMS)


def unchanged_script():
    """Code that calls MNE and knows nothing of tfmxne."""
    from mne.inverse_sparse import tf_mixed_norm

    t0 = time.perf_counter()
    stc = tf_mixed_norm(evoked, forward, noise_cov, verbose=False, **params)
    return stc, time.perf_counter() - t0


with tfmxne.patch_mne():  # logs once that the patch is active
    stc_patched, t_patched = unchanged_script()
stc_mne, t_mne = unchanged_script()  # MNE's own again

print(f"patched: {t_patched:.2f} s, {stc_patched.data.shape[0]} sources")
print(f"MNE:     {t_mne:.2f} s, {stc_mne.data.shape[0]} sources")
print(f"MNE restored: {mne.inverse_sparse.tf_mixed_norm is not tfmxne.tf_mixed_norm}")
