# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne: fast, exact time-frequency mixed-norm estimates (TF-MxNE) for M/EEG."""

from ._cache import clear_cache
from ._compare import compare_with_mne
from ._patch import mne_is_patched, patch_mne, unpatch_mne
from ._progress import ProgressEvent
from ._stft import istft, stft, stft_norm1, stft_norm2
from ._sysinfo import sys_info
from ._version import __version__
from .inverse import NoActiveSourcesError, TFMxNEResult, solve, tf_mixed_norm
from .joint import solve_joint
from .path import solve_epochs, tf_mixed_norm_path
from .solver import (
    dgap_l21l1,
    iterative_tf_mixed_norm_solver,
    norm_epsilon_inf,
    tf_mixed_norm_solver,
)

#: The public API (the documentation's reference is made from this list); the
#: submodules ``tfmxne.viz`` and ``tfmxne.datasets`` have their own.
__all__ = [
    # MNE's drop-in and the richer solve
    "tf_mixed_norm",
    "solve",
    "solve_joint",
    "TFMxNEResult",
    "NoActiveSourcesError",
    # alpha paths, epochs and batches
    "tf_mixed_norm_path",
    "solve_epochs",
    "ProgressEvent",
    # array-level solvers and their tools, with MNE's signatures
    "tf_mixed_norm_solver",
    "iterative_tf_mixed_norm_solver",
    "norm_epsilon_inf",
    "dgap_l21l1",
    "stft",
    "istft",
    "stft_norm1",
    "stft_norm2",
    # against MNE, in MNE, and the environment
    "compare_with_mne",
    "patch_mne",
    "unpatch_mne",
    "mne_is_patched",
    "sys_info",
    "clear_cache",
    "__version__",
]
