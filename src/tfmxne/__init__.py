# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne: fast, exact time-frequency mixed-norm estimates (TF-MxNE) for M/EEG."""

from ._compare import compare_with_mne  # noqa: F401
from ._progress import ProgressEvent  # noqa: F401
from ._stft import istft, stft, stft_norm1, stft_norm2  # noqa: F401
from ._version import __version__  # noqa: F401
from .inverse import (  # noqa: F401
    NoActiveSourcesError,
    TFMxNEResult,
    solve,
    tf_mixed_norm,
)
from .path import solve_epochs, tf_mixed_norm_path  # noqa: F401
from .solver import (  # noqa: F401
    dgap_l21l1,
    iterative_tf_mixed_norm_solver,
    norm_epsilon_inf,
    tf_mixed_norm_solver,
)
