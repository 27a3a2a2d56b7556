# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public Cython API of tfmxne: the TF-MxNE solver and the STFT frame at C level.

Use from another Cython module (compiled with the directory that contains the
installed ``tfmxne`` package on the include path, ``-I``)::

    from tfmxne.cython_tfmxne cimport (tfx_plan_t, tfx_info_t, tfx_plan_new,
                                       tfx_plan_free, d_tf_mxne_solve, TFX_OK)

    cdef int wsize = 16, tstep = 4
    cdef tfx_plan_t* plan = tfx_plan_new(n_times, 1, &wsize, &tstep, 1)  # GIL
    with nogil:
        status = d_tf_mxne_solve(plan, &M[0, 0], &G[0, 0], n_chan, n_sources, 1,
                                 alpha_space, alpha_time, 200, 1e-8,
                                 &X[0, 0], &active[0], &info)
    tfx_plan_free(plan)

The functions are bound at import time: cimporting this module makes the
downstream extension import ``tfmxne.cython_tfmxne`` (and through it
``tfmxne._core._engine``) when it is itself imported; nothing needs linking.

Entry points
------------
``float64`` entry points start with ``d_``, ``float32`` ones with ``s_``; every
array argument of an ``s_`` function is ``float*``, scalars (alphas, tol) stay
``double``. A plan is built for one precision (``is_double``); passing it to an
entry point of the other precision returns ``TFX_BAD_ARG``.

All entry points except ``tfx_plan_new`` are ``noexcept nogil`` and take plain C
types only (pointers, ints, doubles): no memoryviews, no Python objects. They
never raise; they return a status code.

Plans
-----
``tfx_plan_new(n_times, n_dicts, wsizes, tsteps, is_double)`` needs the GIL (it
validates with the Python checks of tfmxne and raises ``ValueError`` on bad
sizes, ``MemoryError`` on allocation failure; ``except NULL``). It precomputes
the analysis / synthesis tables of the multi-dictionary frame (each dictionary
scaled by ``1 / sqrt(n_dicts)``, exactly the frame of
``tfmxne.tf_mixed_norm_solver`` with ``wsize=list(wsizes), tstep=list(tsteps)``)
and copies everything into ONE ``malloc`` block owned by the caller: the
``tfx_plan_t`` header followed by the tables. Afterwards the plan references no
Python object; release it with ``tfx_plan_free`` (nogil, ``NULL`` is a no-op).
The public fields of ``tfx_plan_t`` (``n_times``, ``n_dicts``, ``n_coefs``,
``max_frames``, ``is_double``, ``wsize[k]``, ``tstep[k]``, ``n_step[k]``,
``n_freq[k]``) are read-only; ``core`` is internal.

Buffer layout
-------------
Every array is row-major (C-contiguous), with the leading dimension (row stride,
in elements) given where the signature has an ``ld*`` argument, else equal to the
row length:

* ``M``: (n_chan, n_times); ``G``: (n_chan, n_sources); ``X_out``: (n_sources,
  n_times), rows of inactive sources are set to zero; ``active_out``:
  (n_sources,) bytes, 1 for active sources (as the Python ``active_set`` mask,
  but over all sources; ``NULL`` allowed). Sources of one position are
  ``n_orient`` consecutive columns of ``G``.
* STFT coefficients (internal layout, ``d_stft`` / ``d_istft``): one row of
  ``2 * plan.n_coefs`` reals per signal. For each dictionary ``k`` (in order,
  concatenated) the complex coefficients are stored time-major,
  ``(n_step[k], n_freq[k])``, as interleaved (real, imaginary) pairs; so the
  coefficient of frame ``t`` and frequency ``f`` of a single-dictionary plan is
  ``z[2 * (t * n_freq + f)] + 1j * z[2 * (t * n_freq + f) + 1]``, which is
  ``tfmxne.stft(x, wsize, tstep)[f, t]`` (MNE's layout is ``(n_freq, n_step)``,
  frequency-major). ``n_freq = wsize // 2 + 1``, ``n_step = ceil(n_times /
  tstep)``. With several dictionaries every dictionary is scaled by
  ``1 / sqrt(n_dicts)`` so that the union stays a tight frame:
  ``istft(stft(x)) == x``.

Scratch memory (who owns it)
----------------------------
* ``d_stft`` / ``d_istft``: the caller may pass ``work`` with at least
  ``tfx_stft_work_size(plan)`` (= ``plan.max_frames``) elements of the plan's
  precision, owned by the caller; with ``work == NULL`` the function mallocs and
  frees it itself (``TFX_NO_MEMORY`` if that fails).
* ``d_tf_mxne_solve`` / ``s_tf_mxne_solve``: allocate all their scratch with
  ``malloc`` and free it before returning (every path, including errors). Peak
  scratch is about ``n_sources * n_times`` (the correlations ``G^T R``) plus the
  working set: ``n_ws * n_orient * (n_chan + n_times + 2 * n_coefs)`` with
  ``n_ws`` the working-set size, plus ``2 * n_chan * n_times`` and the Anderson
  snapshots of the working set, in elements of the precision.

Solver
------
``d_tf_mxne_solve`` minimises ``0.5 ||M - G PhiT(Z)||_F^2 + alpha_space sum_j
||Z_j||_2 + alpha_time sum_{j,k} ||Z_jk||_2`` (``Z_jk``: one coefficient across
the ``n_orient`` rows of position ``j``; norms count negative frequencies) with
the algorithm of ``tfmxne.tf_mixed_norm_solver`` (``debias=False``): a working
set grown from the positions violating the optimality conditions most, an inner
block coordinate descent on it (same compiled kernel, ``maxit`` epochs at most
per inner solve, Anderson acceleration, dual extrapolation) and, at every outer
iteration, the duality gap of the FULL problem with the exact dual norm over ALL
positions (no screening), at the rescaled residual and, when the inner solve's
best dual point was the extrapolated residual ``R + t (R - R_prev)``, at that one.
It stops when that gap is ``< tol`` (``TFX_OK``), or with
``TFX_MAXIT`` after 100 outer iterations or when no position violates the
optimality conditions while the gap is still open (rounding floor: ``tol`` below
the precision of the objectives). ``X_out = PhiT(Z)``. ``info`` (may be ``NULL``)
receives ``n_iter`` (total BCD epochs), ``n_outer``, ``n_active`` (active
POSITIONS), ``status``, ``gap`` (full-problem certificate at the returned
iterate), ``p_obj``, ``d_obj``. BLAS (``scipy.linalg.cython_blas``) is called
as is: pin its threads from the caller if needed.

Status codes (return value and ``info.status``)
-----------------------------------------------
``TFX_OK`` (0) converged / done; ``TFX_MAXIT`` (1) cap reached, the result is
the last iterate and ``info.gap`` says how far it is; ``TFX_NONFINITE`` (2) NaN
or Inf in ``M`` or ``G`` or in the iterates (``X_out`` zeroed);
``TFX_BAD_ARG`` (3) NULL pointer, inconsistent sizes, plan of the other
precision, ``n_sources`` not a multiple of ``n_orient``, negative / non-finite
alphas or both zero, ``maxit < 1``, ``tol <= 0`` (outputs untouched);
``TFX_NO_MEMORY`` (-1, the only code not shared with the core) malloc failed.
The constants are C enum values; cast them (``<int> TFX_OK``) before handing
them to Python code (the core's ``cpdef enum`` has no Python module to convert
to, and a direct conversion emits a ``UserWarning``).

Thread safety
-------------
A plan is read-only after ``tfx_plan_new``: any number of threads may use the
same plan at once, with or without the GIL. The entry points keep no global
state, so concurrent calls are safe as long as their OUTPUT buffers (and
caller-provided ``work``) are distinct; inputs may be shared. Do not free a plan
while a call is using it.
"""

from tfmxne.cython_types cimport (
    TFX_NO_MEMORY,
    TFX_OK,
    TFX_MAXIT,
    TFX_NONFINITE,
    TFX_BAD_ARG,
    TFX_INTERRUPTED,
    TFX_MAX_DICTS,
    tfx_params_t,
    tfx_info_t,
    tfx_outer_t,
    tfx_result_t,
    tfx_progress_fn,
)

ctypedef struct tfx_plan_t:
    int n_times        # samples per signal
    int n_dicts        # number of STFT dictionaries
    int n_coefs        # complex coefficients per signal (all dictionaries)
    int max_frames     # scratch elements needed by d_stft / d_istft
    int is_double      # 1: float64 plan (d_*), 0: float32 plan (s_*)
    int wsize[16]
    int tstep[16]
    int n_step[16]
    int n_freq[16]
    void* core         # internal (the core's tables, inside this plan's block)

# plans (constructor with the GIL)
cdef tfx_plan_t* tfx_plan_new(int n_times, int n_dicts, const int* wsizes,
                              const int* tsteps, int is_double) except NULL
cdef void tfx_plan_free(tfx_plan_t* plan) noexcept nogil
cdef Py_ssize_t tfx_stft_work_size(const tfx_plan_t* plan) noexcept nogil

# STFT frame, internal coefficient layout
cdef int d_stft(const tfx_plan_t* plan, const double* x, int n_rows, int ldx,
                double* z, int ldz, double* work) noexcept nogil
cdef int s_stft(const tfx_plan_t* plan, const float* x, int n_rows, int ldx,
                float* z, int ldz, float* work) noexcept nogil
cdef int d_istft(const tfx_plan_t* plan, const double* z, int n_rows, int ldz,
                 double* x, int ldx, double* work) noexcept nogil
cdef int s_istft(const tfx_plan_t* plan, const float* z, int n_rows, int ldz,
                 float* x, int ldx, float* work) noexcept nogil

# TF-MxNE
cdef void tfx_params_init(tfx_params_t* params, double alpha_space, double alpha_time,
                          int n_orient) noexcept nogil
cdef int d_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const double* M, const double* G, int n_chan, int n_sources,
                         const double* w_space, const double* w_time, int n_init,
                         const int* init_pos, const double* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil
cdef int s_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const float* M, const float* G, int n_chan, int n_sources,
                         const float* w_space, const float* w_time, int n_init,
                         const int* init_pos, const float* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil
cdef void tfx_result_free(tfx_result_t* result) noexcept nogil
