# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Anderson acceleration of the block coordinate descent iterates.
#
# Snapshots of the active rows of Z, X and R; an extrapolation is accepted
# only if it lowers the primal objective.
# (included by _engine.pyx: shares its imports and types)

cdef bint _solve_small_spd(double* A, double* b, int n) noexcept nogil:
    """In place Cholesky solve of a small SPD system (A: n x n row-major)."""
    cdef int i, j, k
    cdef double v
    for j in range(n):
        v = A[j * n + j]
        for k in range(j):
            v -= A[j * n + k] * A[j * n + k]
        if v <= 0.0:
            return False
        A[j * n + j] = sqrt(v)
        for i in range(j + 1, n):
            v = A[i * n + j]
            for k in range(j):
                v -= A[i * n + k] * A[j * n + k]
            A[i * n + j] = v / A[j * n + j]
    for i in range(n):
        v = b[i]
        for k in range(i):
            v -= A[i * n + k] * b[k]
        b[i] = v / A[i * n + i]
    for i in range(n - 1, -1, -1):
        v = b[i]
        for k in range(i + 1, n):
            v -= A[k * n + i] * b[k]
        b[i] = v / A[i * n + i]
    return True


cdef void _snapshot(int n_ws, int n_orient, int T, int K2, int n_chan,
                    const unsigned char* active, const floating* Z, const floating* X,
                    const floating* R, floating* sz, floating* sx,
                    floating* sr) noexcept nogil:
    """Copy the active rows of Z and X, and R, into one snapshot slot."""
    cdef int j, k = 0
    for j in range(n_ws):
        if active[j]:
            memcpy(sz + <Py_ssize_t> k * n_orient * K2, Z + <Py_ssize_t> j * n_orient * K2,
                   n_orient * K2 * sizeof(floating))
            memcpy(sx + <Py_ssize_t> k * n_orient * T, X + <Py_ssize_t> j * n_orient * T,
                   n_orient * T * sizeof(floating))
            k += 1
    memcpy(sr, R, <Py_ssize_t> n_chan * T * sizeof(floating))


cdef bint _anderson(const tf_plan* p, int n_ws, int n_orient, int n_chan, int n_act,
                    int K, const unsigned char* active, floating* Z, floating* X,
                    floating* R, const floating* wsp, const floating* wt,
                    double alpha_s, double alpha_t, floating* snapZ, floating* snapX,
                    floating* snapR, Py_ssize_t cap_rows, floating* accZ,
                    floating* accX, const floating* GT, const floating* M,
                    double* gram) noexcept nogil:
    """Anderson extrapolation from K + 1 snapshots of the BCD iterates.

    Accepted only if it lowers the primal objective; returns whether accepted.
    """
    cdef int T = p.n_times, K2 = 2 * p.n_coefs, a, b, j, k
    cdef Py_ssize_t i, nz = <Py_ssize_t> n_act * n_orient * K2
    cdef Py_ssize_t nx = <Py_ssize_t> n_act * n_orient * T
    cdef Py_ssize_t nr = <Py_ssize_t> n_chan * T
    cdef Py_ssize_t sZ = cap_rows * K2, sX = cap_rows * T
    cdef double v, tot, pen_cur, pen_acc, l21, l1, nR_acc, nR_cur
    cdef double* c = gram + K * K
    cdef floating* gf = <floating*> (gram + K * K + K)
    cdef floating* za
    cdef floating* zb
    # successive differences of Z in place (slot a <- Z_{a+1} - Z_a, slot K keeps
    # the latest iterate), then their Gram matrix in one BLAS product
    for a in range(K):
        za = snapZ + a * sZ
        zb = za + sZ
        for i in range(nz):
            za[i] = zb[i] - za[i]
    gemm_rm(False, True, K, K, <int> nz, <floating> 1.0, snapZ, <int> sZ, snapZ,
            <int> sZ, <floating> 0.0, gf, K)
    for a in range(K):
        for b in range(a, K):
            v = 0.5 * (<double> gf[a * K + b] + gf[b * K + a])
            gram[a * K + b] = v
            gram[b * K + a] = v
    v = 0.0
    for a in range(K):
        v += gram[a * K + a]
    if v <= 0.0:
        return False
    for a in range(K):
        gram[a * K + a] += 1e-9 * v
        c[a] = 1.0
    if not _solve_small_spd(gram, c, K):
        return False
    tot = 0.0
    for a in range(K):
        tot += c[a]
    if tot == 0.0 or not isfinite(tot):
        return False
    for a in range(K):
        c[a] /= tot
    # extrapolated Z (active rows, compact) and its penalty:
    # sum_a c_a Z_{a+1} = Z_K - sum_{b >= 1} (c_0 + ... + c_{b-1}) (Z_{b+1} - Z_b)
    for b in range(1, K):
        c[K + b] = c[K + b - 1] + c[b - 1] if b > 1 else c[0]
    zb = snapZ + K * sZ
    for i in range(nz):
        v = zb[i]
        for b in range(1, K):
            v -= c[K + b] * snapZ[b * sZ + i]
        accZ[i] = <floating> v
    pen_acc = 0.0
    pen_cur = 0.0
    k = 0
    for j in range(n_ws):
        if not active[j]:
            continue
        penalty_block(p, accZ + <Py_ssize_t> k * n_orient * K2, n_orient, K2,
                      wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL, &l21, &l1)
        pen_acc += alpha_s * l21 * (wsp[j] if wsp != NULL else 1.0) + alpha_t * l1
        penalty_block(p, Z + <Py_ssize_t> j * n_orient * K2, n_orient, K2,
                      wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL, &l21, &l1)
        pen_cur += alpha_s * l21 * (wsp[j] if wsp != NULL else 1.0) + alpha_t * l1
        k += 1
    # extrapolated X (active rows, compact) and its exact residual M - G_A X_acc,
    # kept in snapshot slot 0, which the combination does not use (recomputed,
    # not combined from the snapshots: rounding must not drift R from M - G X)
    for i in range(nx):
        v = 0.0
        for a in range(K):
            v += c[a] * snapX[(a + 1) * sX + i]
        accX[i] = <floating> v
    memcpy(snapR, M, nr * sizeof(floating))
    k = 0
    for j in range(n_ws):
        if not active[j]:
            continue
        gemm_rm(True, False, n_chan, T, n_orient, <floating> -1.0,
                GT + <Py_ssize_t> j * n_orient * n_chan, n_chan,
                accX + <Py_ssize_t> k * n_orient * T, T, <floating> 1.0, snapR, T)
        k += 1
    nR_acc = dot(<int> nr, snapR, snapR)
    nR_cur = dot(<int> nr, R, R)
    if not (0.5 * nR_acc + pen_acc < 0.5 * nR_cur + pen_cur):
        return False
    # accept: write Z, X, R
    memcpy(R, snapR, nr * sizeof(floating))
    k = 0
    for j in range(n_ws):
        if not active[j]:
            continue
        memcpy(Z + <Py_ssize_t> j * n_orient * K2, accZ + <Py_ssize_t> k * n_orient * K2,
               n_orient * K2 * sizeof(floating))
        memcpy(X + <Py_ssize_t> j * n_orient * T, accX + <Py_ssize_t> k * n_orient * T,
               n_orient * T * sizeof(floating))
        k += 1
    return True
