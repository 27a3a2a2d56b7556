# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Exact debiasing: min ||M - G_A diag(d) X||^2 subject to d >= 1, one weight per
# position, on the small normal equations, by the Lawson-Hanson active-set
# method.
# (included by _engine.pyx: shares its imports and types)

cdef bint _chol_solve(double* A, double* b, int n, double* work) noexcept nogil:
    """Solve A x = b (A SPD, n x n; A and b overwritten, x in b) with LAPACK
    ``dposv`` on a copy in ``work`` (n * n); False if A is not positive definite."""
    cdef char uplo = b'U'
    cdef int one = 1, info = 0
    memcpy(work, A, <Py_ssize_t> n * n * sizeof(double))
    dposv(&uplo, &n, &one, work, &n, b, &n, &info)
    return info == 0


ctypedef struct tf_debias:
    # one debiasing problem: min ||M - G_A diag(d) X||^2, d >= 1 (see debias_c)
    const void* M             # (n_chan, T), leading dimension ldm
    int ldm
    const void* G             # (n_chan, n_src)
    int n_chan
    int n_src
    int T
    int o                     # orientations per position
    const int* positions      # (n_b,) columns of G (positions)
    int n_b
    const void* X             # (n_b o, T), leading dimension ldx
    int ldx


cdef double _normal_equations(const tf_debias* db, floating* GAt, double* H,
                              double* qv) noexcept nogil:
    """``H`` (n_b x n_b) and ``qv`` of the debiasing problem in ``e = d - 1``:
    ``H_ik = <G_i X_i, G_k X_k>`` (summed over orientations), ``q = b - H 1``;
    returns the trace of H. Scratch after ``GAt``: G_A^T M (n_b o T); after
    ``H``'s room (n_b^2): GG and XX (2 (n_b o)^2)."""
    cdef int n_b = db.n_b, o = db.o, n_chan = db.n_chan, n_src = db.n_src, T = db.T
    cdef int ldx = db.ldx
    cdef const floating* M = <const floating*> db.M
    cdef const floating* G = <const floating*> db.G
    cdef const floating* X = <const floating*> db.X
    cdef const int* positions = db.positions
    cdef int nbo = n_b * o, a, b, p, q, c, i, k
    cdef double v, tr = 0.0
    cdef floating* GtM = GAt + <Py_ssize_t> nbo * n_chan
    cdef double* GG = H + <Py_ssize_t> n_b * n_b
    cdef double* XX = GG + <Py_ssize_t> nbo * nbo
    # G_A^T (rows) and its products with itself, M and X
    for c in range(n_chan):
        for i in range(n_b):
            for p in range(o):
                GAt[(<Py_ssize_t> i * o + p) * n_chan + c] = \
                    G[<Py_ssize_t> c * n_src + positions[i] * o + p]
    gemm_rm(False, False, nbo, T, n_chan, <floating> 1.0, GAt, n_chan, M, db.ldm,
            <floating> 0.0, GtM, T)
    for a in range(nbo):
        for b in range(a, nbo):
            GG[a * nbo + b] = GG[b * nbo + a] = dot(
                n_chan, GAt + <Py_ssize_t> a * n_chan, GAt + <Py_ssize_t> b * n_chan)
            XX[a * nbo + b] = XX[b * nbo + a] = dot(T, X + <Py_ssize_t> a * ldx,
                                                    X + <Py_ssize_t> b * ldx)
    # H_ij = sum over the orientations of i and j of GG * XX; q = b - H 1
    for i in range(n_b):
        for k in range(n_b):
            v = 0.0
            for p in range(o):
                for q in range(o):
                    v += (GG[(i * o + p) * nbo + k * o + q]
                          * XX[(i * o + p) * nbo + k * o + q])
            H[i * n_b + k] = v
        tr += H[i * n_b + i]
    for i in range(n_b):
        v = 0.0
        for p in range(o):
            v += dot(T, GtM + (<Py_ssize_t> i * o + p) * T,
                     X + (<Py_ssize_t> i * o + p) * ldx)
        for k in range(n_b):
            v -= H[i * n_b + k]
        qv[i] = v
    return tr


cdef int _lawson_hanson(const double* H, const double* qv, int n_b, double tr,
                        double* sc, unsigned char* is_free, int* free_idx,
                        double* e) noexcept nogil:
    """``e >= 0`` minimising ``0.5 e'He - q'e`` (active set); returns TFX_OK or
    TFX_MAXIT. Scratch ``sc``: 2 n_b^2 + 4 n_b doubles.

    ``is_free``: 0 at the bound, 1 free, 2 left at the bound for good: a
    variable whose release would make the free set's H singular (its column
    depends on theirs) or whose free-set minimiser is not positive (rounding
    in a nearly dependent set; it would be released at once and chosen again,
    a cycle). Either way its gradient is zero to rounding: no descent is lost.
    """
    cdef int i, k, a, b, n_free, jmax, imin, it = 0, n_inner, max_it = 10 * (n_b + 10)
    cdef int st = TFX_OK
    cdef double v, wmax, step, t
    cdef double* Hs = sc
    cdef double* work = Hs + <Py_ssize_t> n_b * n_b
    cdef double* s = work + <Py_ssize_t> n_b * n_b
    cdef double* w = s + n_b
    cdef double* rhs = w + n_b
    for i in range(n_b):
        e[i] = 0.0
        is_free[i] = 0
    while it < max_it:
        it += 1
        # w = q - H e, the negative gradient; optimal if w <= 0 on the bound set
        jmax = -1
        wmax = 0.0
        for i in range(n_b):
            v = qv[i]
            for k in range(n_b):
                v -= H[i * n_b + k] * e[k]
            w[i] = v
            if is_free[i] == 0 and v > wmax:
                wmax = v
                jmax = i
        if jmax < 0 or wmax <= 1e-14 * (tr if tr > 0 else 1.0):
            break
        is_free[jmax] = 1
        n_inner = 0
        while n_inner < max_it:
            n_inner += 1
            # s = argmin on the free set (the others held at 0)
            n_free = 0
            for i in range(n_b):
                if is_free[i] == 1:
                    free_idx[n_free] = i
                    n_free += 1
            for a in range(n_free):
                rhs[a] = qv[free_idx[a]]
                for b in range(n_free):
                    Hs[a * n_free + b] = H[free_idx[a] * n_b + free_idx[b]]
            if not _chol_solve(Hs, rhs, n_free, work):
                if n_inner == 1:      # the new variable made H singular
                    is_free[jmax] = 2
                    break
                st = TFX_MAXIT
                break
            for i in range(n_b):
                s[i] = 0.0
            for a in range(n_free):
                s[free_idx[a]] = rhs[a]
            if n_inner == 1 and s[jmax] <= 0.0:   # no descent along it: a cycle
                is_free[jmax] = 2
                break
            step = 1.0
            imin = -1
            for a in range(n_free):
                i = free_idx[a]
                if s[i] <= 0.0:
                    t = e[i] / (e[i] - s[i]) if e[i] - s[i] > 0 else 0.0
                    if t < step:
                        step = t
                        imin = i
            if step >= 1.0:
                for i in range(n_b):
                    e[i] = s[i]
                break
            # move toward s until a free variable hits its bound; release it (the
            # one that set the step, whatever rounding left of it: else a tiny
            # positive remainder would stop it again at a step near 0, forever)
            for i in range(n_b):
                e[i] = e[i] + step * (s[i] - e[i])
                if is_free[i] == 1 and (e[i] <= 0.0 or i == imin):
                    e[i] = 0.0
                    is_free[i] = 0
        if st != TFX_OK or n_inner >= max_it:
            return TFX_MAXIT
    if it >= max_it:
        return TFX_MAXIT
    return TFX_OK


cdef int debias_c(const tf_debias* db, double* d_out,
                  const floating* tag) noexcept nogil:
    """Exact debiasing weights: ``d = argmin ||M - G_A diag(d) X||^2`` subject to
    ``d >= 1``, one weight per position (its ``n_orient`` rows share it).

    The bound-constrained least squares problem is solved on its small normal
    equations ``H e = q`` (``e = d - 1 >= 0``, ``H`` with a 1e-13 relative ridge)
    by the Lawson-Hanson active-set method, exactly up to rounding (MNE's FISTA
    can stop unconverged). ``db``: the data (``X`` rows of the positions
    ``positions`` of ``G``). Returns TFX_OK, TFX_MAXIT (weights set to 1) or
    TFX_NO_MEMORY.
    """
    cdef int n_b = db.n_b, nbo = db.n_b * db.o, i, st
    cdef Py_ssize_t fl, nd
    cdef double tr, ridge
    cdef char* blk
    cdef double* H
    cdef double* qv
    cdef double* e
    cdef double* sc
    cdef int* free_idx
    if n_b == 0:
        return TFX_OK
    fl = (<Py_ssize_t> nbo * (db.n_chan + db.T) * sizeof(floating) + 63) // 64 * 64
    # H, then GG and XX (the normal equations) or Hs, work, s, w, rhs (the solve)
    nd = (<Py_ssize_t> n_b * n_b + 2 * <Py_ssize_t> nbo * nbo
          + 2 * <Py_ssize_t> n_b * n_b + 6 * <Py_ssize_t> n_b)
    blk = <char*> malloc(fl + nd * sizeof(double) + n_b * sizeof(int) + n_b)
    if blk == NULL:
        return TFX_NO_MEMORY
    H = <double*> (blk + fl)
    qv = H + nd - 2 * n_b
    e = qv + n_b
    free_idx = <int*> (H + nd)
    tr = _normal_equations(db, <floating*> blk, H, qv)
    ridge = 1e-13 * (tr if tr > 0 else 1e-300) / n_b
    for i in range(n_b):
        H[i * n_b + i] += ridge
    sc = H + <Py_ssize_t> n_b * n_b
    st = _lawson_hanson(H, qv, n_b, tr, sc, <unsigned char*> (free_idx + n_b),
                        free_idx, e)
    for i in range(n_b):
        d_out[i] = 1.0 + e[i] if st == TFX_OK else 1.0
    free(blk)
    return st
