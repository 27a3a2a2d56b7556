# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public Cython API of tfmxne: the TF-MxNE solver and the STFT frame at C level.

Use from another Cython module (compiled with the directory that contains the
installed ``tfmxne`` package on the include path, ``-I``)::

    from tfmxne.cython_tfmxne cimport (
        tfx_plan_t, tfx_params_t, tfx_result_t, tfx_info_t, tfx_plan_new,
        tfx_plan_free, tfx_params_init, tfx_result_init, tfx_info_init,
        d_tf_mxne_solve, tfx_result_free, TFX_OK)

    cdef int wsize = 16, tstep = 4
    cdef tfx_plan_t* plan = tfx_plan_new(n_times, 1, &wsize, &tstep, 1)  # GIL
    cdef tfx_params_t prm
    cdef tfx_result_t res
    cdef tfx_info_t info
    tfx_params_init(&prm, alpha_space, alpha_time, n_orient)   # the defaults
    tfx_result_init(&res)
    tfx_info_init(&info)
    prm.tol = 1e-8
    with nogil:
        status = d_tf_mxne_solve(plan, &prm, &M[0, 0], &G[0, 0], n_chan,
                                 n_sources, NULL, NULL, 0, NULL, NULL, &res, &info)
    # res.positions[:res.n_active], (<double*> res.X) ... then:
    tfx_result_free(&res)
    tfx_plan_free(plan)

The functions are bound at import time: cimporting this module makes the
downstream extension import ``tfmxne.cython_tfmxne`` (and through it
``tfmxne._core._engine``) when it is itself imported; nothing needs linking.
The types (status codes, ``tfx_params_t``, ``tfx_info_t``, ``tfx_outer_t``,
``tfx_result_t``) are defined once, in ``tfmxne/cython_types.pxd``, and
re-exported here.

ABI
---
Every struct a caller passes starts with ``struct_size`` and ``abi_version``,
set by the inline initialisers below in the caller's own module:
``tfx_params_init``, ``tfx_result_init`` and ``tfx_info_init`` must be called
on every parameter, result and info struct before it is passed. The entry
points return ``TFX_BAD_ABI`` (5), touching nothing, for a struct of another
ABI version or of an unknown size (for example one that was never
initialised, or a caller compiled against a newer tfmxne than the one
installed). A tfmxne that appends fields to the structs keeps
``TFX_ABI_VERSION``, gives the fields an older caller does not know their
defaults and writes only the fields it knows; see ``cython_types.pxd`` for
what bumps the version. Outer records are read with ``tfx_outer_at``.

One solver
----------
``d_tf_mxne_solve`` / ``s_tf_mxne_solve`` run the core's ``tf_solve``, the
solver of ``tfmxne.tf_mixed_norm_solver`` and of everything built on it: at
equal options and thread counts the C API returns the Python solver's bits.

Entry points
------------
``float64`` entry points start with ``d_``, ``float32`` ones with ``s_``; every
array argument of an ``s_`` function is ``float*``, scalars stay ``double``. A
plan is built for one precision (``is_double``); passing it to an entry point
of the other precision returns ``TFX_BAD_ARG``. All entry points except
``tfx_plan_new`` are ``noexcept nogil`` and take plain C types only; they never
raise, they return a status code.

Plans
-----
``tfx_plan_new(n_times, n_dicts, wsizes, tsteps, is_double)`` needs the GIL (it
validates with the Python checks of tfmxne and raises ``ValueError`` on bad
sizes, ``MemoryError`` on allocation failure; ``except NULL``). It precomputes
the tables of the multi-dictionary frame (each dictionary scaled by
``1 / sqrt(n_dicts)``, the frame of ``tfmxne.tf_mixed_norm_solver`` with
``wsize=list(wsizes), tstep=list(tsteps)``; at most ``TFX_MAX_DICTS``) into
ONE ``malloc`` block owned by the caller; release it with ``tfx_plan_free``
(nogil, ``NULL`` is a no-op). Its public fields are read-only; ``core`` is
internal.

Buffer layout
-------------
Row-major (C-contiguous) arrays, leading dimension given where the signature
has an ``ld*`` argument, else the row length:

* ``M``: (n_chan, n_times); ``G``: (n_chan, n_sources), the ``n_orient``
  sources of a position in consecutive columns.
* ``w_space`` (n_positions,) > 0 and ``w_time`` (n_positions, n_coefs) >= 0
  (0 holds a coefficient at zero), ``NULL`` for unweighted: the penalty becomes
  ``alpha_space sum_j w_space_j ||Z_j|| + alpha_time sum_jk w_time_jk ||Z_jk||``.
* Warm start: ``n_init`` positions ``init_pos`` and their coefficient rows
  ``Z_init`` (n_init * n_orient, 2 * n_coefs); ``0, NULL, NULL`` for a cold start.
* STFT coefficients (internal layout): one row of ``2 * plan.n_coefs`` reals
  per signal. For each dictionary ``k`` (concatenated) the complex coefficients
  are stored time-major, ``(n_step[k], n_freq[k])``, as interleaved (real,
  imaginary) pairs: the coefficient of frame ``t`` and frequency ``f`` of a
  single-dictionary plan is ``z[2 * (t * n_freq + f)] + 1j * z[2 * (t * n_freq
  + f) + 1]``, which is ``tfmxne.stft(x, wsize, tstep)[f, t]``.
  ``n_freq = wsize // 2 + 1``, ``n_step = ceil(n_times / tstep)``; the frame is
  tight: ``istft(stft(x)) == x``.

Options: ``tfx_params_t``
-------------------------
``tfx_params_init(&prm, alpha_space, alpha_time, n_orient)`` sets the defaults
of ``tfmxne.tf_mixed_norm_solver`` (tol 1e-8, maxit 200, dgap_freq 10, one
thread, no debiasing, no float32 start); change fields afterwards.
``n_threads``: threads of the core (``G^T R``, the screening, the two-thread
sweep); BLAS is called as is, single-threaded products are fastest (pin BLAS
to one thread). ``debias``: rescale each active position's time courses by the
exact debiasing weight (in ``result.debias``). ``progress``: a nogil callback
after every outer iteration. ``mixed`` (float64 plans): solve the problem in
float32 first and start the float64 solve, which certifies the answer, from
its result (``info.n_iter_start``: the float32 epochs); answers for different
``n_threads`` then agree within tol, not to rounding; a solve interrupted
during the float32 start returns ``TFX_INTERRUPTED`` with an empty result.
The working-set and acceleration tuning is internal (the library's defaults).

Results: ``tfx_result_t``
-------------------------
For the statuses ``TFX_OK``, ``TFX_MAXIT`` and ``TFX_INTERRUPTED`` (but see
``mixed``) the result holds ``n_active`` positions (increasing), their
coefficients ``Z`` and time courses ``X`` (``PhiT(Z)``, debiased if asked), the
residual ``R``, the dual point ``theta`` that certifies ``info.gap``, the
objective history and one record per outer iteration (``tfx_outer_at(&res,
i)``, ``i < res.n_outer``: active positions, working-set size, epochs, gap,
objectives, seconds since the start), all ``malloc``'d by the solver: release
them with ``tfx_result_free`` (also safe on an empty, initialised result).
Otherwise it is empty.

Status codes (return value and ``info.status``)
-----------------------------------------------
``TFX_OK`` (0) converged: the duality gap of the full problem is < tol;
``TFX_MAXIT`` (1) the outer cap or a stalled gap stopped it, ``info.gap`` says
how far the result is (``info.stalled`` tells which); ``TFX_NONFINITE`` (2) NaN
or Inf in ``M``, ``G`` or the iterates; ``TFX_BAD_ARG`` (3) NULL pointer,
inconsistent sizes, plan of the other precision, ``n_sources`` not a multiple
of ``n_orient``, invalid alphas, tol, maxit, weights or warm start;
``TFX_INTERRUPTED`` (4) the progress callback asked to stop; ``TFX_BAD_ABI``
(5) a struct of another ABI version or size; ``TFX_NO_MEMORY`` (-1) malloc
failed. They are C enum values: cast them (``<int> TFX_OK``) before handing
them to Python code.

Thread safety
-------------
A plan is read-only after ``tfx_plan_new``: any number of threads may use it at
once, with or without the GIL. The entry points keep no global state, so
concurrent calls are safe with distinct results. Do not free a plan while a
call uses it.
"""

from libc.string cimport memset

from tfmxne.cython_types cimport (
    TFX_ABI_VERSION,
    TFX_BAD_ABI,
    TFX_BAD_ARG,
    TFX_INTERRUPTED,
    TFX_MAX_DICTS,
    TFX_MAXIT,
    TFX_NO_MEMORY,
    TFX_NONFINITE,
    TFX_OK,
    tfx_info_t,
    tfx_outer_t,
    tfx_params_t,
    tfx_progress_fn,
    tfx_result_t,
)

ctypedef struct tfx_plan_t:
    size_t struct_size          # sizeof(tfx_plan_t) of the library that made it
    int abi_version             # TFX_ABI_VERSION of that library
    int n_times                 # samples per signal
    int n_dicts                 # number of STFT dictionaries
    int n_coefs                 # complex coefficients per signal (all dictionaries)
    int max_frames              # scratch elements needed by d_stft / d_istft
    int is_double               # 1: float64 plan (d_*), 0: float32 plan (s_*)
    int wsize[TFX_MAX_DICTS]
    int tstep[TFX_MAX_DICTS]
    int n_step[TFX_MAX_DICTS]
    int n_freq[TFX_MAX_DICTS]
    void* core                  # internal (the core's tables, inside this block)

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
cdef void tfx_params_defaults(tfx_params_t* params) noexcept nogil
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


# --------------------------------------------------------------------------
# Initialisers, compiled into the caller (its own sizeof: see ABI above)
# --------------------------------------------------------------------------
cdef inline void tfx_params_init(tfx_params_t* params, double alpha_space,
                                 double alpha_time, int n_orient) noexcept nogil:
    """The defaults, then the alphas and the number of orientations."""
    memset(params, 0, sizeof(tfx_params_t))
    params.struct_size = sizeof(tfx_params_t)
    params.abi_version = TFX_ABI_VERSION
    tfx_params_defaults(params)
    params.alpha_space = alpha_space
    params.alpha_time = alpha_time
    params.n_orient = n_orient


cdef inline void tfx_result_init(tfx_result_t* result) noexcept nogil:
    """An empty result (before the first solve into it)."""
    memset(result, 0, sizeof(tfx_result_t))
    result.struct_size = sizeof(tfx_result_t)
    result.abi_version = TFX_ABI_VERSION


cdef inline void tfx_info_init(tfx_info_t* info) noexcept nogil:
    """An empty info struct (before a solve writes it)."""
    memset(info, 0, sizeof(tfx_info_t))
    info.struct_size = sizeof(tfx_info_t)
    info.abi_version = TFX_ABI_VERSION


cdef inline const tfx_outer_t* tfx_outer_at(const tfx_result_t* result,
                                            int i) noexcept nogil:
    """Outer record ``i`` of a result (``0 <= i < result.n_outer``)."""
    return <const tfx_outer_t*> (<const char*> result.outer
                                 + <Py_ssize_t> i * result.outer_stride)
