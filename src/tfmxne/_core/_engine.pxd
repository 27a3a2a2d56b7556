# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""C-level declarations of the engine, for cimport by tfmxne.cython_tfmxne.

Only nogil functions are declared here (Cython exports them in
``_engine.__pyx_capi__``; a cimporting module binds them at import time). The
``TFPlan`` extension type is deliberately *not* declared: it stays private to
``_engine``. Signatures must match the definitions in ``_engine.pyx`` and its
included ``.pxi`` files exactly.
"""

from ._types cimport floating, tf_plan, tf_problem, tfx_params_t, tfx_info_t
from ._types cimport tfx_result_t

cdef void stft_rows(const tf_plan* p, const floating* x, int n_rows, int ldx,
                    floating* z, int ldz, floating* work) noexcept nogil
cdef void istft_rows(const tf_plan* p, const floating* z, int n_rows, int ldz,
                     floating* x, int ldx, int n_out, floating* work) noexcept nogil
cdef void tfx_params_default(tfx_params_t* prm) noexcept nogil
cdef int tf_solve(const tf_plan* p, const tfx_params_t* prm, const tf_problem* pb,
                  tfx_result_t* res, tfx_info_t* info) noexcept nogil
cdef void tfx_result_clear(tfx_result_t* res) noexcept nogil
cdef int set_param(tfx_params_t* prm, str key, object value) except -1
