# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Helpers for the tests and the benchmarks (private; not part of the API).

``simulate``: evoked responses simulated with forward-model error, shared by
the tests of the automatic alpha and ``benchmarks/bench_alpha_study.py``.
``_hooks`` (compiled): the core's kernels and the C API's entry points on NumPy
arrays, for the tests and the benchmarks that measure a kernel alone.
Nothing in the rest of the package imports from here.
"""
