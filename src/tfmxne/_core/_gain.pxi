# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Products of the gain: Lipschitz constants and block Gram matrices.
# (included by _engine.pyx: shares its imports and types)

cdef int lipschitz_c(const floating* G, int n_chan, int n_src, int n_orient,
                     floating* lc) noexcept nogil:
    """``lc[j] = ||G_j^T G_j||_2`` for every position (largest eigenvalue of the
    block Gram matrix, LAPACK ``dsyev``). Returns 0, or a status code."""
    cdef int n_pos = n_src // n_orient, j, a, b, c, o = n_orient, lwork, info
    cdef double* acc
    cdef double* gram
    cdef double* w
    cdef double* work
    cdef double v
    cdef const floating* row
    cdef char jobz = b'N'
    cdef char uplo = b'U'
    if o == 1:
        acc = <double*> calloc(n_src if n_src > 0 else 1, sizeof(double))
        if acc == NULL:
            return TFX_NO_MEMORY
        for c in range(n_chan):
            row = G + <Py_ssize_t> c * n_src
            for j in range(n_src):
                acc[j] += <double> row[j] * row[j]
        for j in range(n_src):
            lc[j] = <floating> acc[j]
        free(acc)
        return 0
    lwork = 3 * o + 8
    gram = <double*> malloc((o * o + o + lwork) * sizeof(double))
    if gram == NULL:
        return TFX_NO_MEMORY
    w = gram + o * o
    work = w + o
    for j in range(n_pos):
        for a in range(o):
            for b in range(a, o):
                v = 0.0
                for c in range(n_chan):
                    row = G + <Py_ssize_t> c * n_src + j * o
                    v += <double> row[a] * row[b]
                gram[a * o + b] = v
                gram[b * o + a] = v
        dsyev(&jobz, &uplo, &o, gram, &o, w, work, &lwork, &info)
        lc[j] = <floating> (w[o - 1] if info == 0 else INFINITY)
    free(gram)
    return 0


cdef void block_grams_c(const floating* GT, int n_ws, int n_orient, int n_chan,
                        const floating* lc, floating* gram,
                        floating* xgram) noexcept nogil:
    """``gram[j] = G_j^T G_j`` ((n_ws, n_orient, n_orient)) from rows of G^T and,
    if ``xgram`` is not NULL, ``xgram[j] = G_j^T G_i`` with ``i`` the block the
    sweep visits just before ``j`` (``lc > 0``; zero for the first visited)."""
    cdef int j, a, b, o = n_orient, prev = -1
    cdef Py_ssize_t oo = <Py_ssize_t> o * o
    cdef const floating* Bj
    for j in range(n_ws):
        Bj = GT + <Py_ssize_t> j * o * n_chan
        for a in range(o):
            for b in range(o):
                gram[j * oo + a * o + b] = <floating> dot(n_chan, Bj + a * n_chan,
                                                          Bj + b * n_chan)
        if xgram == NULL:
            continue
        memset(xgram + j * oo, 0, oo * sizeof(floating))
        if lc[j] <= 0:
            continue
        if prev >= 0:
            for a in range(o):
                for b in range(o):
                    xgram[j * oo + a * o + b] = <floating> dot(
                        n_chan, Bj + a * n_chan,
                        GT + (<Py_ssize_t> prev * o + b) * n_chan)
        prev = j
