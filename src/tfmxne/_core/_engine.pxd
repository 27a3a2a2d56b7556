# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""C-level declarations of the engine, for cimport by tfmxne.cython_tfmxne (the
public C API) and tfmxne._testing._hooks (the test hooks).

Cython exports these functions in ``_engine.__pyx_capi__``; a cimporting module
binds them at import time. The ``TFPlan`` extension type is not declared: it
stays private to ``_engine`` (``plan_of`` gives its C plan). Signatures must match
the definitions in ``_engine.pyx`` and its included ``.pxi`` files exactly.
"""

from ._types cimport (
    eps_item, floating, tf_anderson, tf_bcd_opts, tf_extrap, tf_info, tf_momentum,
    tf_penalty,
    tf_pipe, tf_plan, tf_problem, tf_tuning, tf_ws, tfx_params_t, tfx_result_t,
    tfx_info_t,
)

# the plan
cdef int plan_header(tf_plan* p, int n_times, int n_dicts, const int* wsizes,
                     const int* tsteps, const int* n_steps, int is_double,
                     int n_segs) noexcept nogil
cdef int plan_segmented(const tf_plan* p, int n_segs, tf_plan* q,
                        void* mult) noexcept nogil
cdef Py_ssize_t plan_n_elements(const tf_plan* p) noexcept nogil
cdef object plan_fill(tf_plan* p, char* buf, object dtype, object scale)
cdef const tf_plan* plan_of(object plan, bint is_double, str name) except NULL
# the frame
cdef void stft_rows(const tf_plan* p, const floating* x, int n_rows, int ldx,
                    floating* z, int ldz, floating* work) noexcept nogil
cdef void istft_rows(const tf_plan* p, const floating* z, int n_rows, int ldz,
                     floating* x, int ldx, int n_out, floating* work) noexcept nogil
# the penalty
cdef void pen_init(tf_penalty* pen, const tf_plan* p, int n_orient, double alpha_s,
                   double alpha_t, const void* ws, const void* wt) noexcept nogil
cdef double eps_norm_block(const tf_plan* p, const floating* Y, int n_orient, int ldy,
                           const floating* wt, double w_s, double rho,
                           eps_item* items) noexcept nogil
cdef bint prox_block(const tf_plan* p, floating* Y, int n_orient, int ldy,
                     const floating* wt, double thr_t, double thr_s,
                     double* norms) noexcept nogil
# the inner solve
cdef Py_ssize_t bcd_work_size(const tf_plan* p, int n_orient) noexcept nogil
cdef Py_ssize_t bcd_snap_size(const tf_plan* p, int anderson_k, Py_ssize_t cap_rows,
                              int n_chan) noexcept nogil
cdef void block_grams_c(const floating* GT, int n_ws, int n_orient, int n_chan,
                        const floating* lc, floating* gram,
                        floating* xgram) noexcept nogil
cdef void bcd_solve(const tf_ws* w, const tf_bcd_opts* opt, tf_anderson* an,
                    tf_extrap* ex, tf_momentum* mo, const tf_pipe* pp,
                    tf_info* info) noexcept nogil
cdef Py_ssize_t momentum_size(const tf_plan* p, int n_ws, int n_orient,
                              int n_chan) noexcept nogil
cdef void momentum_bind(tf_momentum* mo, const tf_ws* w, void* buf,
                        size_t itemsize) noexcept nogil
# debiasing
cdef int _lawson_hanson(const double* H, const double* qv, int n_b, double tr,
                        double* sc, unsigned char* is_free, int* free_idx,
                        double* e) noexcept nogil
# the solve
cdef void tfx_params_default(tfx_params_t* prm) noexcept nogil
cdef void tf_tuning_default(tf_tuning* t) noexcept nogil
cdef int set_options(tfx_params_t* prm, tf_tuning* tun, dict options) except -1
cdef int tf_solve(const tf_plan* p, const tfx_params_t* prm, const tf_tuning* tun,
                  const tf_problem* pb, tfx_result_t* res,
                  tfx_info_t* info) noexcept nogil
cdef void tfx_result_clear(tfx_result_t* res) noexcept nogil
cdef object result_dict(const tfx_result_t* res, int n_orient, int n_chan, int K2,
                        int T, object dtype, int n_cond)
cdef object rows_copy(const void* ptr, Py_ssize_t n_rows, Py_ssize_t n_cols,
                      object dtype)
