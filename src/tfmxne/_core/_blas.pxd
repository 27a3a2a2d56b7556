# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Row-major, const-correct fused wrappers over scipy.linalg.cython_blas."""

from scipy.linalg.cython_blas cimport dgemm, sgemm, ddot, sdot
from ._types cimport floating

cdef enum:
    # largest m n k of a gemm_rm_slim panel (OpenBLAS's small-matrix limit)
    SLIM_MNK = 1000000


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


cdef inline void gemm_rm_slim(int m, int n, int k, floating alpha,
                              const floating* A, int lda, const floating* B, int ldb,
                              floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha * A @ B + beta * C for a few rows m and long
    rows n (a block's G_j^T R): in column panels of at most SLIM_MNK / (m k)
    columns. OpenBLAS packs B whole for a product above its small-matrix limit
    (m n k > 1e6), which for long signals costs more than the product itself."""
    cdef int c0 = 0, w, panel = SLIM_MNK // (m * k if m * k > 0 else 1)
    if panel < 64:
        panel = 64
    while c0 < n:
        w = panel if n - c0 > panel else n - c0
        gemm_rm(False, False, m, w, k, alpha, A, lda, B + c0, ldb, beta, C + c0, ldc)
        c0 += w


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
