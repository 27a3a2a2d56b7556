# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Row-major, const-correct fused wrappers over scipy.linalg.cython_blas."""

from scipy.linalg.cython_blas cimport dgemm, sgemm, ddot, sdot
from ._types cimport floating


cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k,
                         floating alpha, const floating* A, int lda,
                         const floating* B, int ldb, floating beta,
                         floating* C, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha * op(A) @ op(B) + beta * C."""
    cdef char ca = b'T' if trans_a else b'N'
    cdef char cb = b'T' if trans_b else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is double:
        dgemm(&cb, &ca, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)
    else:
        sgemm(&cb, &ca, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)


cdef inline double dot(int n, const floating* x, const floating* y) noexcept nogil:
    """Inner product accumulated in double precision."""
    cdef int i
    cdef int one = 1
    cdef double s = 0.0
    if floating is double:
        if n <= 0:
            return 0.0
        return ddot(&n, <double*> x, &one, <double*> y, &one)
    else:
        for i in range(n):
            s += <double> x[i] * <double> y[i]
        return s
