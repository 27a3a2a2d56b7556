# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Anderson acceleration of the block coordinate descent iterates: snapshots of
# the active rows of Z, X and of R; an extrapolation is accepted only if it
# lowers the primal objective.
# (included by _engine.pyx: shares its imports and types)


cdef Py_ssize_t bcd_snap_size(const tf_plan* p, int anderson_k, Py_ssize_t cap_rows,
                              int n_chan) noexcept nogil:
    """Elements of ``tf_anderson.snap`` for a memory ``anderson_k`` and at most
    ``cap_rows`` active rows: k + 1 snapshots of Z, X and R, the extrapolated Z
    and X, and room for a small Gram matrix (doubles)."""
    return ((anderson_k + 2) * cap_rows * (2 * p.n_coefs + p.n_times)
            + (anderson_k + 1) * <Py_ssize_t> n_chan * p.n_times
            + 4 * (anderson_k + 1) * (anderson_k + 1) + 64)


cdef inline floating* _snap(const tf_ws* w, const tf_anderson* an, int k,
                            const floating* tag) noexcept nogil:
    """Piece ``k`` of the snapshot buffer: 0 Z slots ((k + 1) cap_rows 2K),
    1 X slots ((k + 1) cap_rows T), 2 R slots ((k + 1) n_chan T), 3 the
    extrapolated Z (cap_rows 2K), 4 the extrapolated X (cap_rows T), 5 the Gram
    scratch (doubles)."""
    cdef const tf_plan* p = w.pen.p
    cdef Py_ssize_t K2 = 2 * p.n_coefs, T = p.n_times, c = an.cap_rows
    cdef Py_ssize_t off[6]
    off[0] = 0
    off[1] = (an.k + 1) * c * K2
    off[2] = off[1] + (an.k + 1) * c * T
    off[3] = off[2] + (an.k + 1) * <Py_ssize_t> w.n_chan * T
    off[4] = off[3] + c * K2
    off[5] = off[4] + c * T + 8
    return <floating*> an.snap + off[k]


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


cdef void _snapshot(const tf_ws* w, const tf_anderson* an, int slot,
                    const floating* tag) noexcept nogil:
    """Copy the active rows of Z and X, and R, into snapshot ``slot``."""
    cdef const tf_plan* p = w.pen.p
    cdef int j, k = 0, o = w.pen.n_orient, T = p.n_times, K2 = 2 * p.n_coefs
    cdef floating* sz = _snap(w, an, 0, tag) + slot * an.cap_rows * K2
    cdef floating* sx = _snap(w, an, 1, tag) + slot * an.cap_rows * T
    cdef floating* sr = _snap(w, an, 2, tag) + slot * <Py_ssize_t> w.n_chan * T
    for j in range(w.n_ws):
        if w.active[j]:
            memcpy(sz + <Py_ssize_t> k * o * K2,
                   <const floating*> w.Z + <Py_ssize_t> j * o * K2,
                   o * K2 * sizeof(floating))
            memcpy(sx + <Py_ssize_t> k * o * T,
                   <const floating*> w.X + <Py_ssize_t> j * o * T,
                   o * T * sizeof(floating))
            k += 1
    memcpy(sr, w.R, <Py_ssize_t> w.n_chan * T * sizeof(floating))


cdef bint _anderson_coefs(floating* snapZ, Py_ssize_t sZ, Py_ssize_t nz, int K,
                          double* gram) noexcept nogil:
    """The Anderson weights ``c`` (``gram + K K``, summing to one) of K + 1
    snapshots of Z (slots ``sZ`` apart, ``nz`` entries each): the successive
    differences (in place, slot a <- Z_{a+1} - Z_a; slot K keeps the latest),
    their regularised Gram matrix, its solve. False if degenerate."""
    cdef int a, b
    cdef Py_ssize_t i
    cdef double v, tot
    cdef double* c = gram + K * K
    cdef floating* gf = <floating*> (gram + K * K + K)
    cdef floating* za
    cdef floating* zb
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
    return True


cdef bint _anderson_step(const tf_ws* w, const tf_anderson* an, int n_act,
                         const floating* tag) noexcept nogil:
    """Anderson extrapolation from the k + 1 snapshots of the BCD iterates.

    Accepted only if it lowers the primal objective; returns whether accepted.
    """
    cdef const tf_plan* p = w.pen.p
    cdef int T = p.n_times, K2 = 2 * p.n_coefs, a, b, j, k, K = an.k
    cdef int o = w.pen.n_orient, n_chan = w.n_chan
    cdef Py_ssize_t i, nz = <Py_ssize_t> n_act * o * K2
    cdef Py_ssize_t nx = <Py_ssize_t> n_act * o * T
    cdef Py_ssize_t nr = <Py_ssize_t> n_chan * T
    cdef Py_ssize_t sZ = an.cap_rows * K2, sX = an.cap_rows * T
    cdef double v, pen_cur, pen_acc, nR_acc, nR_cur
    cdef floating* snapZ = _snap(w, an, 0, tag)
    cdef floating* snapX = _snap(w, an, 1, tag)
    cdef floating* snapR = _snap(w, an, 2, tag)
    cdef floating* accZ = _snap(w, an, 3, tag)
    cdef floating* accX = _snap(w, an, 4, tag)
    cdef double* gram = <double*> _snap(w, an, 5, tag)
    cdef double* c = gram + K * K
    cdef floating* zb
    cdef floating* Z = <floating*> w.Z
    cdef floating* X = <floating*> w.X
    cdef floating* R = <floating*> w.R
    if not _anderson_coefs(snapZ, sZ, nz, K, gram):
        return False
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
    for j in range(w.n_ws):
        if not w.active[j]:
            continue
        pen_acc += pen_value(&w.pen, j, accZ + <Py_ssize_t> k * o * K2, K2)
        pen_cur += pen_value(&w.pen, j, Z + <Py_ssize_t> j * o * K2, K2)
        k += 1
    # extrapolated X (active rows, compact) and its exact residual M - G_A X_acc,
    # kept in snapshot slot 0, which the combination does not use (recomputed,
    # not combined from the snapshots: rounding must not drift R from M - G X)
    for i in range(nx):
        v = 0.0
        for a in range(K):
            v += c[a] * snapX[(a + 1) * sX + i]
        accX[i] = <floating> v
    memcpy(snapR, w.M, nr * sizeof(floating))
    k = 0
    for j in range(w.n_ws):
        if not w.active[j]:
            continue
        gemm_rm(True, False, n_chan, T, o, <floating> -1.0,
                <const floating*> w.GT + <Py_ssize_t> j * o * n_chan, n_chan,
                accX + <Py_ssize_t> k * o * T, T, <floating> 1.0, snapR, T)
        k += 1
    nR_acc = dot(<int> nr, snapR, snapR)
    nR_cur = dot(<int> nr, R, R)
    if not (0.5 * nR_acc + pen_acc < 0.5 * nR_cur + pen_cur):
        return False
    # accept: write Z, X, R
    memcpy(R, snapR, nr * sizeof(floating))
    k = 0
    for j in range(w.n_ws):
        if not w.active[j]:
            continue
        memcpy(Z + <Py_ssize_t> j * o * K2, accZ + <Py_ssize_t> k * o * K2,
               o * K2 * sizeof(floating))
        memcpy(X + <Py_ssize_t> j * o * T, accX + <Py_ssize_t> k * o * T,
               o * T * sizeof(floating))
        k += 1
    return True


cdef void anderson_track(const tf_ws* w, tf_anderson* an, int changed, tf_info* info,
                         const floating* tag) noexcept nogil:
    """After an epoch: snapshot the iterate while the support is unchanged and
    small enough; every k + 1 snapshots, try an extrapolation."""
    cdef int j, n_act = 0
    for j in range(w.n_ws):
        n_act += w.active[j]
    if changed or n_act != an.n_act_prev:
        an.n_snap = 0
    an.n_act_prev = n_act
    if n_act > 0 and <Py_ssize_t> n_act * w.pen.n_orient <= an.cap_rows:
        _snapshot(w, an, an.n_snap, tag)
        an.n_snap += 1
        if an.n_snap == an.k + 1:
            info.n_accel_try += 1
            info.n_accel += _anderson_step(w, an, n_act, tag)
            an.n_snap = 0
