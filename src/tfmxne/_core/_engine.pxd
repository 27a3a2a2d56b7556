# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""C-level declarations of the engine kernels, for cimport by other modules.

Only the nogil kernels are declared here (Cython then exports each fused
specialisation in ``_engine.__pyx_capi__``; a cimporting module binds them at
import time). The ``TFPlan`` extension type is deliberately *not* declared: it
stays private to ``_engine`` (its attributes are declared in ``_engine.pyx``).
Signatures must match the definitions in ``_engine.pyx`` exactly.
"""

from ._types cimport floating, tf_plan, eps_item, tf_info

cdef void stft_rows(const tf_plan* p, const floating* x, int n_rows, int ldx,
                    floating* z, int ldz, floating* work) noexcept nogil
cdef void istft_rows(const tf_plan* p, const floating* z, int n_rows, int ldz,
                     floating* x, int ldx, int n_out, floating* work) noexcept nogil
cdef double eps_norm_block(const tf_plan* p, const floating* Y, int n_orient, int ldy,
                           const floating* wt, double w_s, double rho,
                           eps_item* items) noexcept nogil
cdef bint prox_block(const tf_plan* p, floating* Y, int n_orient, int ldy,
                     const floating* wt, double thr_t, double thr_s) noexcept nogil
cdef void penalty_block(const tf_plan* p, const floating* Z, int n_orient, int ldz,
                        const floating* wt, double* l21, double* l1) noexcept nogil
cdef double scaled_dual(double nR2, double RM, double nu, double alpha) noexcept nogil
cdef void bcd_solve(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                    const floating* GT, const floating* M, floating* R,
                    floating* X, floating* Z, unsigned char* active,
                    const floating* lc, const floating* wsp, const floating* wt,
                    double alpha_s, double alpha_t, int maxit, double tol,
                    int dgap_freq, floating* work, eps_item* items,
                    double* obj_hist, int max_hist, tf_info* info,
                    int anderson_k, floating* snap, Py_ssize_t cap_rows,
                    const floating* gram, int n_inner, int gap_start,
                    const floating* xgram, floating* pipe, floating* rprev,
                    double* extrap) noexcept nogil
