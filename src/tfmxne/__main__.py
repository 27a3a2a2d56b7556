# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""``python -m tfmxne``: the ``tfmxne`` command line (see :mod:`tfmxne.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
