# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Public Cython API of tfmxne (see ``cython_tfmxne.pxd`` for the documentation).

Thin: the entry points check their arguments and call the core's functions
(``tfmxne._core._engine``, cimported through ``_core/_engine.pxd`` and bound at
import time): the plan builder, the STFT kernels and ``tf_solve``, the one
solver, which ``tfmxne.tf_mixed_norm_solver`` runs too.
"""

from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._core._engine cimport (
    istft_rows,
    plan_fill,
    plan_header,
    plan_n_elements,
    stft_rows,
    tf_solve,
    tfx_params_default,
    tfx_result_clear,
)
from ._core._types cimport floating, tf_plan, tf_problem

from ._validation import check_int, check_wsize_tstep

# status codes for Python callers (cast: C enum values)
OK = <int> TFX_OK
MAXIT = <int> TFX_MAXIT
NONFINITE = <int> TFX_NONFINITE
BAD_ARG = <int> TFX_BAD_ARG
NO_MEMORY = <int> TFX_NO_MEMORY
INTERRUPTED = <int> TFX_INTERRUPTED
BAD_ABI = <int> TFX_BAD_ABI
ABI_VERSION = <int> TFX_ABI_VERSION
MAX_DICTS = <int> TFX_MAX_DICTS


# --------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------
cdef inline Py_ssize_t _round64(Py_ssize_t n) noexcept nogil:
    return (n + 63) // 64 * 64


cdef tfx_plan_t* tfx_plan_new(int n_times, int n_dicts, const int* wsizes,
                              const int* tsteps, int is_double) except NULL:
    """Build a plan in one malloc block (caller frees with tfx_plan_free): the
    public header, the core's plan, its tables."""
    cdef int i
    cdef Py_ssize_t hdr, total
    cdef char* blk
    cdef tfx_plan_t* plan
    cdef tf_plan core
    if n_dicts < 1 or n_dicts > TFX_MAX_DICTS:
        raise ValueError(
            f"n_dicts must be in [1, {TFX_MAX_DICTS}], got n_dicts={n_dicts}")
    if wsizes == NULL or tsteps == NULL:
        raise ValueError("wsizes and tsteps must not be NULL")
    check_int(n_times, "n_times", 1)
    check_wsize_tstep([wsizes[i] for i in range(n_dicts)],
                      [tsteps[i] for i in range(n_dicts)])
    if plan_header(&core, n_times, n_dicts, wsizes, tsteps, NULL, is_double,
                   1) != TFX_OK:
        raise ValueError("tfx_plan_new: invalid sizes")
    hdr = _round64(sizeof(tfx_plan_t)) + _round64(sizeof(tf_plan))
    total = hdr + plan_n_elements(&core) * (sizeof(double) if is_double
                                            else sizeof(float))
    blk = <char*> malloc(total)
    if blk == NULL:
        raise MemoryError(f"tfx_plan_new: cannot allocate {total} bytes")
    try:
        plan_fill(&core, blk + hdr, "float64" if is_double else "float32", None)
    except BaseException:
        free(blk)
        raise
    plan = <tfx_plan_t*> blk
    memset(plan, 0, sizeof(tfx_plan_t))
    plan.struct_size = sizeof(tfx_plan_t)
    plan.abi_version = TFX_ABI_VERSION
    plan.core = blk + _round64(sizeof(tfx_plan_t))
    memcpy(plan.core, &core, sizeof(tf_plan))
    plan.n_times = core.n_times
    plan.n_dicts = core.n_dicts
    plan.n_coefs = core.n_coefs
    plan.max_frames = core.max_frames
    plan.is_double = core.is_double
    for i in range(n_dicts):
        plan.wsize[i] = core.d[i].wsize
        plan.tstep[i] = core.d[i].tstep
        plan.n_step[i] = core.d[i].n_step
        plan.n_freq[i] = core.d[i].n_freq
    return plan


cdef void tfx_plan_free(tfx_plan_t* plan) noexcept nogil:
    free(plan)


cdef Py_ssize_t tfx_stft_work_size(const tfx_plan_t* plan) noexcept nogil:
    if plan == NULL:
        return 0
    return plan.max_frames


cdef inline bint _plan_ok(const tfx_plan_t* plan, bint is_double) noexcept nogil:
    """A plan of this ABI for buffers of this precision."""
    return (plan != NULL and plan.abi_version == TFX_ABI_VERSION
            and (plan.is_double != 0) == is_double)


# --------------------------------------------------------------------------
# STFT / ISTFT
# --------------------------------------------------------------------------
cdef int _transform(const tfx_plan_t* plan, const floating* src, int ld_src,
                    floating* dst, int ld_dst, int n_rows, floating* work,
                    bint inverse) noexcept nogil:
    """STFT of time rows into coefficient rows, or (``inverse``) back, with the
    argument checks and the scratch (``work`` or an own allocation) of the C API."""
    cdef floating* own = NULL
    cdef int ld_time = ld_dst if inverse else ld_src
    cdef int ld_coef = ld_src if inverse else ld_dst
    if not _plan_ok(plan, floating is double) or n_rows < 0:
        return TFX_BAD_ARG
    if n_rows == 0:
        return TFX_OK
    if (src == NULL or dst == NULL or ld_time < plan.n_times
            or ld_coef < 2 * plan.n_coefs):
        return TFX_BAD_ARG
    if work == NULL:
        own = <floating*> malloc(plan.max_frames * sizeof(floating))
        if own == NULL:
            return TFX_NO_MEMORY
        work = own
    if inverse:
        istft_rows(<const tf_plan*> plan.core, src, n_rows, ld_src, dst, ld_dst,
                   plan.n_times, work)
    else:
        stft_rows(<const tf_plan*> plan.core, src, n_rows, ld_src, dst, ld_dst, work)
    free(own)
    return TFX_OK


cdef int d_stft(const tfx_plan_t* plan, const double* x, int n_rows, int ldx,
                double* z, int ldz, double* work) noexcept nogil:
    return _transform(plan, x, ldx, z, ldz, n_rows, work, False)


cdef int s_stft(const tfx_plan_t* plan, const float* x, int n_rows, int ldx,
                float* z, int ldz, float* work) noexcept nogil:
    return _transform(plan, x, ldx, z, ldz, n_rows, work, False)


cdef int d_istft(const tfx_plan_t* plan, const double* z, int n_rows, int ldz,
                 double* x, int ldx, double* work) noexcept nogil:
    return _transform(plan, z, ldz, x, ldx, n_rows, work, True)


cdef int s_istft(const tfx_plan_t* plan, const float* z, int n_rows, int ldz,
                 float* x, int ldx, float* work) noexcept nogil:
    return _transform(plan, z, ldz, x, ldx, n_rows, work, True)


# --------------------------------------------------------------------------
# Solver: the core's tf_solve
# --------------------------------------------------------------------------
cdef void tfx_params_defaults(tfx_params_t* params) noexcept nogil:
    """The defaults of the fields within ``params.struct_size`` (tfx_params_init)."""
    if params != NULL:
        tfx_params_default(params)


cdef void _problem(tf_problem* pb, const floating* M, const floating* G, int n_chan,
                   int n_sources, const floating* w_space, const floating* w_time,
                   int n_init, const int* init_pos,
                   const floating* Z_init) noexcept nogil:
    """The core's problem struct from the arguments of an entry point."""
    memset(pb, 0, sizeof(tf_problem))
    pb.n_chan = n_chan
    pb.n_sources = n_sources
    pb.M = M
    pb.G = G
    pb.w_space = w_space
    pb.w_time = w_time
    pb.n_init = n_init
    pb.init_pos = init_pos
    pb.Z_init = Z_init


cdef inline const tf_plan* _core(const tfx_plan_t* plan, bint is_double) noexcept nogil:
    """The core's plan (NULL for a missing plan or one of the other precision:
    tf_solve checks the structs, then refuses it)."""
    return <const tf_plan*> plan.core if _plan_ok(plan, is_double) else NULL


cdef int d_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const double* M, const double* G, int n_chan, int n_sources,
                         const double* w_space, const double* w_time, int n_init,
                         const int* init_pos, const double* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil:
    cdef tf_problem pb
    _problem(&pb, M, G, n_chan, n_sources, w_space, w_time, n_init, init_pos, Z_init)
    return tf_solve(_core(plan, True), params, NULL, &pb, result, info)


cdef int s_tf_mxne_solve(const tfx_plan_t* plan, const tfx_params_t* params,
                         const float* M, const float* G, int n_chan, int n_sources,
                         const float* w_space, const float* w_time, int n_init,
                         const int* init_pos, const float* Z_init,
                         tfx_result_t* result, tfx_info_t* info) noexcept nogil:
    cdef tf_problem pb
    _problem(&pb, M, G, n_chan, n_sources, w_space, w_time, n_init, init_pos, Z_init)
    return tf_solve(_core(plan, False), params, NULL, &pb, result, info)


cdef void tfx_result_free(tfx_result_t* result) noexcept nogil:
    """Free a result's arrays (an initialised result of this ABI; others are left
    alone)."""
    if (result != NULL and result.abi_version == TFX_ABI_VERSION
            and result.struct_size >= sizeof(tfx_result_t)):
        tfx_result_clear(result)


# --------------------------------------------------------------------------
# The layout of the public structs (tests/test_cython_api.py stores it)
# --------------------------------------------------------------------------
def _abi_layout():
    """Byte offsets of the public fields and the struct sizes of this build."""
    cdef tfx_params_t p
    cdef tfx_info_t i
    cdef tfx_outer_t o
    cdef tfx_result_t r
    cdef tfx_plan_t pl

    cdef Py_ssize_t P = <Py_ssize_t> &p, In = <Py_ssize_t> &i, Ou = <Py_ssize_t> &o
    cdef Py_ssize_t R = <Py_ssize_t> &r, L = <Py_ssize_t> &pl
    return {
        "tfx_params_t": dict(
            struct_size=<Py_ssize_t> &p.struct_size - P,
            abi_version=<Py_ssize_t> &p.abi_version - P,
            n_orient=<Py_ssize_t> &p.n_orient - P,
            alpha_space=<Py_ssize_t> &p.alpha_space - P,
            alpha_time=<Py_ssize_t> &p.alpha_time - P,
            tol=<Py_ssize_t> &p.tol - P, maxit=<Py_ssize_t> &p.maxit - P,
            dgap_freq=<Py_ssize_t> &p.dgap_freq - P,
            n_threads=<Py_ssize_t> &p.n_threads - P,
            debias=<Py_ssize_t> &p.debias - P, mixed=<Py_ssize_t> &p.mixed - P,
            progress=<Py_ssize_t> &p.progress - P,
            progress_ctx=<Py_ssize_t> &p.progress_ctx - P,
            n_conditions=<Py_ssize_t> &p.n_conditions - P,
            size=sizeof(tfx_params_t)),
        "tfx_info_t": dict(
            struct_size=<Py_ssize_t> &i.struct_size - In,
            abi_version=<Py_ssize_t> &i.abi_version - In,
            status=<Py_ssize_t> &i.status - In, n_iter=<Py_ssize_t> &i.n_iter - In,
            n_outer=<Py_ssize_t> &i.n_outer - In, n_active=<Py_ssize_t> &i.n_active - In,
            stalled=<Py_ssize_t> &i.stalled - In,
            n_accel_try=<Py_ssize_t> &i.n_accel_try - In,
            n_accel=<Py_ssize_t> &i.n_accel - In,
            n_threads=<Py_ssize_t> &i.n_threads - In,
            debias_status=<Py_ssize_t> &i.debias_status - In,
            n_iter_start=<Py_ssize_t> &i.n_iter_start - In,
            gap=<Py_ssize_t> &i.gap - In, p_obj=<Py_ssize_t> &i.p_obj - In,
            d_obj=<Py_ssize_t> &i.d_obj - In, nu_max=<Py_ssize_t> &i.nu_max - In,
            seconds=<Py_ssize_t> &i.seconds - In,
            n_restart=<Py_ssize_t> &i.n_restart - In, size=sizeof(tfx_info_t)),
        "tfx_outer_t": dict(
            n_active=<Py_ssize_t> &o.n_active - Ou, n_ws=<Py_ssize_t> &o.n_ws - Ou,
            n_iter=<Py_ssize_t> &o.n_iter - Ou, gap=<Py_ssize_t> &o.gap - Ou,
            p_obj=<Py_ssize_t> &o.p_obj - Ou, d_obj=<Py_ssize_t> &o.d_obj - Ou,
            time=<Py_ssize_t> &o.time - Ou, start=<Py_ssize_t> &o.start - Ou,
            certify_seconds=<Py_ssize_t> &o.certify_seconds - Ou,
            size=sizeof(tfx_outer_t)),
        "tfx_result_t": dict(
            struct_size=<Py_ssize_t> &r.struct_size - R,
            abi_version=<Py_ssize_t> &r.abi_version - R,
            n_active=<Py_ssize_t> &r.n_active - R,
            positions=<Py_ssize_t> &r.positions - R, Z=<Py_ssize_t> &r.Z - R,
            X=<Py_ssize_t> &r.X - R, debias=<Py_ssize_t> &r.debias - R,
            R=<Py_ssize_t> &r.R - R, theta=<Py_ssize_t> &r.theta - R,
            obj=<Py_ssize_t> &r.obj - R, n_obj=<Py_ssize_t> &r.n_obj - R,
            n_outer=<Py_ssize_t> &r.n_outer - R, outer=<Py_ssize_t> &r.outer - R,
            outer_stride=<Py_ssize_t> &r.outer_stride - R,
            size=sizeof(tfx_result_t)),
        "tfx_plan_t": dict(
            struct_size=<Py_ssize_t> &pl.struct_size - L,
            abi_version=<Py_ssize_t> &pl.abi_version - L,
            n_times=<Py_ssize_t> &pl.n_times - L, n_dicts=<Py_ssize_t> &pl.n_dicts - L,
            n_coefs=<Py_ssize_t> &pl.n_coefs - L,
            max_frames=<Py_ssize_t> &pl.max_frames - L,
            is_double=<Py_ssize_t> &pl.is_double - L,
            wsize=<Py_ssize_t> &pl.wsize - L, tstep=<Py_ssize_t> &pl.tstep - L,
            n_step=<Py_ssize_t> &pl.n_step - L, n_freq=<Py_ssize_t> &pl.n_freq - L,
            core=<Py_ssize_t> &pl.core - L, size=sizeof(tfx_plan_t)),
        "constants": dict(TFX_ABI_VERSION=<int> TFX_ABI_VERSION,
                          TFX_MAX_DICTS=<int> TFX_MAX_DICTS),
    }
