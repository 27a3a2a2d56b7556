# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Compiled core of tfmxne (private): STFT frames, prox, dual norm, BCD."""
