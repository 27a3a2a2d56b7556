# cython: language_level=3, boundscheck=False, wraparound=False
# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""TF-MxNE from Cython through tfmxne's C API: one dictionary, float64.

Compiled and run by tests/test_docs_capi.py, shown on the C API page.
"""

import numpy as np

from libc.string cimport memcpy
from tfmxne.cython_tfmxne cimport (
    TFX_MAXIT,
    TFX_OK,
    d_tf_mxne_solve,
    tfx_info_init,
    tfx_info_t,
    tfx_params_init,
    tfx_params_t,
    tfx_plan_free,
    tfx_plan_new,
    tfx_plan_t,
    tfx_result_free,
    tfx_result_init,
    tfx_result_t,
)


def solve(double[:, ::1] M, double[:, ::1] G, double alpha_space, double alpha_time,
          int wsize=16, int tstep=4, int n_orient=1, double tol=1e-8):
    """Solve TF-MxNE on whitened data ``M`` and gain ``G`` (C-contiguous float64).

    Returns ``(X, positions, gap, status)``: the time courses of the active
    sources (n_active * n_orient, n_times), their position indices, the
    certified duality gap and the solver's status (TFX_OK: gap < tol).
    """
    cdef int n_chan = M.shape[0], n_times = M.shape[1], n_sources = G.shape[1]
    cdef int status, i, n_rows
    cdef tfx_params_t params
    cdef tfx_result_t result
    cdef tfx_info_t info
    if G.shape[0] != n_chan:
        raise ValueError("M and G must have as many rows (channels)")
    # the STFT frame: built with the GIL (it raises on bad sizes), freed by us
    cdef tfx_plan_t* plan = tfx_plan_new(n_times, 1, &wsize, &tstep, 1)
    # every struct passed to the API is initialised first (its size and ABI
    # version, checked by the solver; the parameters get their defaults)
    tfx_params_init(&params, alpha_space, alpha_time, n_orient)
    tfx_result_init(&result)
    tfx_info_init(&info)
    params.tol = tol
    with nogil:  # the whole solve runs without the GIL
        status = d_tf_mxne_solve(plan, &params, &M[0, 0], &G[0, 0], n_chan, n_sources,
                                 NULL, NULL, 0, NULL, NULL, &result, &info)
    tfx_plan_free(plan)
    if status != TFX_OK and status != TFX_MAXIT:
        tfx_result_free(&result)
        raise RuntimeError(f"tfmxne's solver failed with status {status}")
    n_rows = result.n_active * n_orient
    X = np.zeros((n_rows, n_times))
    cdef double[:, ::1] X_view = X
    if n_rows:
        memcpy(&X_view[0, 0], result.X, n_rows * n_times * sizeof(double))
    positions = np.array([result.positions[i] for i in range(result.n_active)], dtype=int)
    gap = info.gap
    tfx_result_free(&result)  # the result's arrays are the caller's to free
    return X, positions, gap, status
