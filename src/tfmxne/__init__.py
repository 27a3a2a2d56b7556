# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne: fast, exact time-frequency mixed-norm estimates (TF-MxNE) for M/EEG."""

__version__ = "0.1.0"

from ._stft import stft, istft, stft_norm1, stft_norm2  # noqa: F401
from .solver import (  # noqa: F401
    tf_mixed_norm_solver,
    iterative_tf_mixed_norm_solver,
    norm_epsilon_inf,
    dgap_l21l1,
)
from .inverse import (  # noqa: F401
    tf_mixed_norm,
    solve,
    TFMxNEResult,
    NoActiveSourcesError,
)
from .path import tf_mixed_norm_path, solve_epochs  # noqa: F401
from ._progress import ProgressEvent  # noqa: F401
from ._compare import compare_with_mne  # noqa: F401
