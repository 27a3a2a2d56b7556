# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public C types of tfmxne: status codes, solver parameters, info and results.

The one definition of these types, shared by the public API
(``tfmxne.cython_tfmxne``) and the compiled core (``tfmxne._core``). See
``cython_tfmxne.pxd`` for how to use them.

ABI policy
----------
Every public struct starts with ``struct_size`` and ``abi_version``:

* ``struct_size`` is ``sizeof`` the struct *as the caller was compiled*: the
  inline initialisers of ``cython_tfmxne.pxd`` (``tfx_params_init``,
  ``tfx_info_init``, ``tfx_result_init``) set it in the caller's own module, so a
  library newer than the caller reads and writes only the fields the caller
  knows, and gives the fields it appended their defaults. ``tfx_plan_t`` is
  allocated by the library, which sets both fields itself.
* ``abi_version`` is ``TFX_ABI_VERSION`` as the caller was compiled; the entry
  points refuse another version with ``TFX_BAD_ABI`` (never a crash).

Public structs are append-only: a new field goes at the end, and a library that
appends one keeps ``TFX_ABI_VERSION``. ``TFX_ABI_VERSION`` is bumped by any other
change: a field removed, moved, renamed to another meaning or retyped, a change
of ``TFX_MAX_DICTS`` (it sizes arrays inside ``tfx_plan_t``), a changed meaning
of a status code or of an option's value, or a changed entry-point signature.
Arrays of records (``tfx_result_t.outer``) are read with the stride the library
states (``outer_stride``), so that records can grow too (``tfx_outer_at``).
``tests/test_cython_api.py`` stores the offset of every public field and fails
when one moves.

What is public: the options a caller sets (alphas, orientations, tolerance,
epochs, gap frequency, threads, debiasing, the float32 start, the progress
callback) and everything the library returns (info, result, outer records, the
plan's sizes). The working-set and acceleration tuning of the solver is internal
(``tfmxne/_core/_types.pxd``, ``tf_tuning``) and may change in any release.
"""

# ABI version of the public structs and entry points (see the policy above).
cdef enum:
    TFX_ABI_VERSION = 2

# Status codes: return value of the entry points and ``tfx_info_t.status``.
cdef enum:
    TFX_NO_MEMORY = -1      # malloc failed (outputs untouched)
    TFX_OK = 0              # converged: certified duality gap < tol
    TFX_MAXIT = 1           # cap reached (or the gap stalled) before gap < tol
    TFX_NONFINITE = 2       # a NaN/Inf in the inputs or the iterates
    TFX_BAD_ARG = 3         # NULL pointer, inconsistent sizes or invalid option
    TFX_INTERRUPTED = 4     # the progress callback asked to stop
    TFX_BAD_ABI = 5         # a struct of another ABI version or of an unknown size

# Most dictionaries of a multi-dictionary frame (sizes arrays of tfx_plan_t).
cdef enum:
    TFX_MAX_DICTS = 16

# Called after the certificate of every outer working-set iteration (not in the
# inner loops), without the GIL; return non-zero to stop the solve
# (TFX_INTERRUPTED, the result is the current iterate).
ctypedef int (*tfx_progress_fn)(void* ctx, int n_outer, double gap,
                                int n_active) noexcept nogil

ctypedef struct tfx_params_t:
    size_t struct_size      # sizeof(tfx_params_t) of the caller (tfx_params_init)
    int abi_version         # TFX_ABI_VERSION of the caller (tfx_params_init)
    int n_orient            # sources per position (consecutive columns of G)
    double alpha_space      # L21 (spatial) regularisation, >= 0
    double alpha_time       # L1 (time-frequency) regularisation, >= 0, not both 0
    double tol              # stop when the certified gap of the full problem < tol
    int maxit               # block coordinate descent epochs per inner solve
    int dgap_freq           # epochs between inner gap evaluations (<= 0: maxit)
    int n_threads           # threads of the core (G^T R, screening, BCD sweep)
    # debias 1: X rescaled per position by the exact debiasing weights d >= 1
    # (returned in tfx_result_t.debias); mixed 1 (float64 plans): solve in
    # float32 first, then certify in float64 from that start
    int debias
    int mixed
    tfx_progress_fn progress  # NULL: none
    void* progress_ctx
    # n_conditions > 1: a joint solve of that many conditions (one support
    # across them): M, the rows of Z and X and w_time hold the conditions side
    # by side (M: (n_chan, n_conditions * n_times)); the plan is one
    # condition's. The debiasing weights are then per position and condition.
    int n_conditions
    # (version 2 ends here; later fields are appended below)

ctypedef struct tfx_info_t:
    size_t struct_size      # sizeof(tfx_info_t) of the caller (tfx_info_init)
    int abi_version         # TFX_ABI_VERSION of the caller (tfx_info_init)
    int status              # as returned
    int n_iter              # total block coordinate descent epochs
    int n_outer             # outer working-set iterations
    int n_active            # active positions of the result
    int stalled             # 1 if the gap stopped decreasing before tol
    int n_accel_try         # Anderson extrapolations tried ...
    int n_accel             # ... and accepted
    int n_threads           # threads actually used
    int debias_status       # TFX_OK, or TFX_MAXIT if debiasing failed (weights 1)
    int n_iter_start        # epochs of the float32 start (params.mixed), 0 if none
    double gap              # duality gap of the full problem at the result
    double p_obj            # primal objective at the result
    double d_obj            # best dual objective (the certificate)
    double nu_max           # dual norm of G^T R at the last outer iteration
    double seconds          # wall time of the solve
    int n_restart           # momentum steps rejected (adaptive restart)

# One outer working-set iteration (diagnostics); read them with tfx_outer_at.
ctypedef struct tfx_outer_t:
    int n_active            # active positions entering this certificate
    int n_ws                # working set of the inner solve that follows (0: none)
    int n_iter              # its epochs
    double gap
    double p_obj
    double d_obj
    double time             # seconds since the solve started, at the certificate
    int start               # 1: an iteration of the float32 start (params.mixed)
    double certify_seconds  # seconds the certificate took (G^T R, dual norms)

# Result of a solve. The core allocates every pointer with malloc; release them
# with tfx_result_free. Arrays are in the precision of the plan (void*: cast to
# double* or float*), row-major.
ctypedef struct tfx_result_t:
    size_t struct_size      # sizeof(tfx_result_t) of the caller (tfx_result_init)
    int abi_version         # TFX_ABI_VERSION of the caller (tfx_result_init)
    int n_active            # active positions
    int* positions          # (n_active,) increasing position indices
    void* Z                 # (n_active * n_orient, 2 * n_coefs) coefficients
    # X: (n_active * n_orient, n_times) = PhiT(Z), times the debiasing weights
    # if params.debias
    void* X
    double* debias          # (n_active, n_conditions) debiasing weights, or NULL
    void* R                 # (n_chan, n_times) residual M - G X (before debiasing)
    void* theta             # (n_chan, n_times) the dual point of the certificate
    double* obj             # (n_obj,) primal objective at every gap evaluation
    int n_obj
    int n_outer             # records in outer
    void* outer             # n_outer tfx_outer_t records, outer_stride bytes apart
    int outer_stride        # sizeof(tfx_outer_t) of the library
