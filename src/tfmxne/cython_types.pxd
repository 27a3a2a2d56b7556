# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public C types of tfmxne: status codes, solver parameters, info and results.

The one definition of these types, shared by the public API
(``tfmxne.cython_tfmxne``) and the compiled core (``tfmxne._core``). See
``cython_tfmxne.pxd`` for how to use them.
"""

# Status codes: return value of the entry points and ``tfx_info_t.status``.
cdef enum:
    TFX_NO_MEMORY = -1      # malloc failed (outputs untouched)
    TFX_OK = 0              # converged: certified duality gap < tol
    TFX_MAXIT = 1           # cap reached (or the gap stalled) before gap < tol
    TFX_NONFINITE = 2       # a NaN/Inf in the inputs or the iterates
    TFX_BAD_ARG = 3         # NULL pointer, inconsistent sizes or invalid option
    TFX_INTERRUPTED = 4     # the progress callback asked to stop

cdef enum:
    TFX_MAX_DICTS = 16

# Called after the certificate of every outer working-set iteration (not in the
# inner loops), without the GIL; return non-zero to stop the solve
# (TFX_INTERRUPTED, the result is the current iterate).
ctypedef int (*tfx_progress_fn)(void* ctx, int n_outer, double gap,
                                int n_active) noexcept nogil

ctypedef struct tfx_params_t:
    # problem
    double alpha_space      # L21 (spatial) regularisation, >= 0
    double alpha_time       # L1 (time-frequency) regularisation, >= 0, not both 0
    int n_orient            # sources per position (consecutive columns of G)
    # stopping
    double tol              # stop when the certified gap of the full problem < tol
    int maxit               # block coordinate descent epochs per inner solve
    int dgap_freq           # epochs between inner gap evaluations (<= 0: maxit)
    int max_outer           # cap on outer working-set iterations
    int stall_outer         # outer iterations without a 10 % gap decrease: stop
    double stop_gap_ratio   # the loop aims at gap < stop_gap_ratio * tol
    # working set and inner solves
    int ws_start            # first number of candidate positions added
    int n_inner             # prox steps per block visit
    double inner_tol_ratio  # inner tol of a growing working set: at least ...
    double inner_gap_frac   # ... max(inner_tol_ratio * tol, inner_gap_frac * gap)
    int inner_gap_start     # epochs before the first gap check of such a solve
    double complete_tol_ratio  # inner tol of a complete working set (* tol)
    int anderson_k          # Anderson memory (0: off)
    int anderson_start      # epochs of an inner solve before Anderson starts
    int dual_extrap         # 1: dual extrapolation of the residuals
    int dual_refine         # 1: Newton-refined dual points (certificate)
    # mixed precision (float64 plans only): first solve the problem in float32
    # (half the memory traffic) to a gap of max(stop_gap_ratio tol,
    # mixed_tol_ratio ||M||^2), then start the float64 solve, which certifies
    # the answer, from its result
    int mixed
    double mixed_tol_ratio
    # threads (the core's own; BLAS is called as is)
    int n_threads           # threads for G^T R, screening and the BCD sweep
    int pipe_min_blocks     # smallest working set swept by two threads
    int screen_chunk        # positions per thread in a screening hand-off
    # debiasing: X of the result rescaled per position, d >= 1 minimising the
    # least-squares misfit (the weights are returned in tfx_result_t.debias)
    int debias
    # progress (NULL: none)
    tfx_progress_fn progress
    void* progress_ctx
    # room for options of later versions (set to 0 by tfx_params_default)
    int reserved_int[14]
    double reserved_double[15]

ctypedef struct tfx_info_t:
    int status              # as returned
    int n_iter              # total block coordinate descent epochs
    int n_outer             # outer working-set iterations
    int n_active            # active positions of the result
    int stalled             # 1 if the gap stopped decreasing (see stall_outer)
    int n_accel_try         # Anderson extrapolations tried ...
    int n_accel             # ... and accepted
    int n_threads           # threads actually used
    int debias_status       # TFX_OK, or TFX_MAXIT if debiasing failed (weights 1)
    int n_iter_start        # epochs of the float32 start (params.mixed), 0 if none
    double gap              # duality gap of the full problem at the result
    double p_obj            # primal objective at the result
    double d_obj            # best dual objective (the certificate)
    double nu_max           # dual norm of G^T R at the last outer iteration
    double reserved[7]

# One outer working-set iteration (diagnostics).
ctypedef struct tfx_outer_t:
    int n_active            # active positions entering this certificate
    int n_ws                # working set of the inner solve that follows (0: none)
    int n_iter              # its epochs
    double gap
    double p_obj
    double d_obj

# Result of a solve. The core allocates every pointer with malloc; release them
# with tfx_result_free (cython_tfmxne) or free(). Arrays are in the precision of
# the plan (void*: cast to double* or float*), row-major.
ctypedef struct tfx_result_t:
    int n_active            # active positions
    int* positions          # (n_active,) increasing position indices
    void* Z                 # (n_active * n_orient, 2 * n_coefs) coefficients
    void* X                 # (n_active * n_orient, n_times) = PhiT(Z), times the
                            # debiasing weights if params.debias
    double* debias          # (n_active,) debiasing weights, or NULL
    void* R                 # (n_chan, n_times) residual M - G X
    void* theta             # (n_chan, n_times) the dual point of the certificate
    double* obj             # (n_obj,) primal objective at every gap evaluation
    int n_obj
    tfx_outer_t* outer      # (n_outer,) per outer iteration
    int n_outer
