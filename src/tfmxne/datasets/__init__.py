# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Small data sets shipped with tfmxne (for the demo, examples and tests)."""

from . import sample

__all__ = ["sample"]
