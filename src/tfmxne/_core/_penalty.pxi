# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The penalty of one block: the epsilon norm (its dual norm), the composite
# L21 + L1 prox, its value and a cheap upper bound of the dual norm; and the
# penalty struct (plan, alphas, weights) the solvers call them through.
# (included by _engine.pyx: shares its imports and types)

# --------------------------------------------------------------------------
# Epsilon norm (dual of (1 - rho) w_s ||z||_2 + rho sum_k w_k |z_k|)
# --------------------------------------------------------------------------
cdef int _cmp_desc(const void* a, const void* b) noexcept nogil:
    cdef double ka = (<const eps_item*> a).key
    cdef double kb = (<const eps_item*> b).key
    return (ka < kb) - (ka > kb)


cdef double eps_norm_block(const tf_plan* p, const floating* Y, int n_orient, int ldy,
                           const floating* wt, double w_s, double rho,
                           eps_item* items) noexcept nogil:
    """Epsilon norm of one position from its STFT coefficients.

    Y holds ``n_orient`` rows of interleaved coefficients (row stride ``ldy``);
    ``wt`` the time weights of the position (``NULL``: all ones; a zero weight
    marks a coefficient held at zero, which the dual norm ignores).
    Solves ``sum_k c_k (y_k - rho nu w_k)_+^2 = ((1 - rho) w_s nu)^2``.
    ``items``: scratch of ``n_coefs`` entries.
    """
    cdef int q, o, n = 0, best_i = -1
    cdef double a, w, c, key, best_key = -1.0, s_y2 = 0.0, lb, k2
    cdef const floating* mult = <const floating*> p.mult
    cdef const floating* y0
    cdef double re, im
    k2 = (1.0 - rho) * w_s
    k2 = k2 * k2
    # one pass: magnitudes (one square root each), the l2 case and the largest key
    for q in range(p.n_coefs):
        if wt != NULL and wt[q] == 0:
            continue
        a = 0.0
        y0 = Y + 2 * q
        for o in range(n_orient):
            re = y0[<Py_ssize_t> o * ldy]
            im = y0[<Py_ssize_t> o * ldy + 1]
            a += re * re + im * im
        if a == 0.0:
            continue
        c = mult[q]
        if wt != NULL:
            w = wt[q]
            key = sqrt(a) / w
            c = c * w * w
        else:
            key = sqrt(a)
        s_y2 += c * key * key
        items[n].key = key
        items[n].cw2 = c
        if key > best_key:
            best_key = key
            best_i = n
        n += 1
    if n == 0:
        return 0.0
    if rho <= 0.0:
        return sqrt(s_y2) / w_s
    if rho >= 1.0:
        return best_key
    # lower bound on nu from the largest coefficient alone
    c = sqrt(items[best_i].cw2)
    lb = c * best_key / ((1.0 - rho) * w_s + rho * c)
    return _eps_solve(items, n, rho, k2, lb)


cdef double _eps_solve(eps_item* items, int n, double rho, double k2,
                       double nu) noexcept nogil:
    """Root of f(nu) = sum_k cw2_k (key_k - rho nu)_+^2 - k2 nu^2 (decreasing, convex).

    Newton on the convex, decreasing ``sqrt(sum_k cw2_k (key_k - rho nu)_+^2)
    - sqrt(k2) nu`` from a lower bound ``nu`` (monotone from the left), compacting the
    active entries as nu grows; once the active set is that of the root, the
    root of its quadratic piece is returned exactly. Falls back to a sort of
    the entries (exact, O(n log n)) if Newton has not settled in 50 steps.
    """
    cdef int i, m, it
    cdef double S_y2, S_yw, S_w2, A, B, disc, r, f, g, fp, kmin, b_next, thr, kk, cc
    for it in range(50):
        # compact: keep entries active at nu
        m = 0
        S_y2 = S_yw = S_w2 = 0.0
        kmin = INFINITY
        thr = rho * nu
        for i in range(n):
            kk = items[i].key
            if kk > thr:
                cc = items[i].cw2
                items[m].key = kk
                items[m].cw2 = cc
                S_w2 += cc
                S_yw += cc * kk
                S_y2 += cc * kk * kk
                if kk < kmin:
                    kmin = kk
                m += 1
        n = m
        if n == 0:
            return nu
        A = rho * rho * S_w2 - k2
        B = rho * S_yw
        disc = B * B - A * S_y2
        if disc < 0.0:
            disc = 0.0
        r = S_y2 / (B + sqrt(disc))
        if r >= nu and kmin > rho * r:
            return r
        # Newton on g(nu) = sqrt(Q(nu)) - (1 - rho) w_s nu, convex and decreasing
        f = S_y2 - 2.0 * B * nu + rho * rho * S_w2 * nu * nu
        if f <= 0.0:
            return nu
        f = sqrt(f)
        g = f - sqrt(k2) * nu
        if g <= 0.0:
            return nu
        fp = (-B + rho * rho * S_w2 * nu) / f - sqrt(k2)
        if fp >= 0.0:
            break
        r = nu - g / fp
        if not (r > nu):
            return nu
        nu = r
    # fallback: sorted sweep over the breakpoints
    qsort(items, n, sizeof(eps_item), _cmp_desc)
    S_y2 = S_yw = S_w2 = 0.0
    for m in range(n):
        kk = items[m].key
        cc = items[m].cw2
        S_y2 += cc * kk * kk
        S_yw += cc * kk
        S_w2 += cc
        b_next = items[m + 1].key / rho if m + 1 < n else 0.0
        f = S_y2 - 2.0 * rho * b_next * S_yw + (rho * rho * S_w2 - k2) * b_next * b_next
        if f > 0.0 or m == n - 1:
            break
    A = rho * rho * S_w2 - k2
    B = rho * S_yw
    disc = B * B - A * S_y2
    if disc < 0.0:
        disc = 0.0
    return S_y2 / (B + sqrt(disc))


# --------------------------------------------------------------------------
# Prox and penalty of one block
# --------------------------------------------------------------------------
cdef enum:
    PROX_CHUNK = 256   # coefficients per pass of prox_block (stack scratch)


cdef bint prox_block(const tf_plan* p, floating* Y, int n_orient, int ldy,
                     const floating* wt, double thr_t, double thr_s,
                     double* norms) noexcept nogil:
    """In place: TF soft-threshold (per coefficient, across orientations) then
    group shrink (weighted l2 over the block). Returns whether Y is non-zero;
    ``norms`` (or NULL): the l2 norm and the (time-weighted) l1 norm of the
    result, as :c:func:`penalty_block` computes them up to rounding.

    Chunks of PROX_CHUNK coefficients, branch-free passes (magnitudes, shrink
    factors, scaling) so that the compiler vectorises them; the factor
    ``1 - t / max(a, t)`` is ``1 - t / a`` above the threshold and exactly 0
    at or below it."""
    cdef double a2[PROX_CHUNK]
    cdef double sh[PROX_CHUNK]
    cdef int q0, nq, q, o, K2 = 2 * p.n_coefs
    cdef double a, t, den, s, one, keep, acc = 0.0, nrm, l1 = 0.0
    cdef const floating* mult = <const floating*> p.mult
    cdef floating* yo
    cdef Py_ssize_t i
    q0 = 0
    while q0 < p.n_coefs:
        nq = PROX_CHUNK if p.n_coefs - q0 > PROX_CHUNK else p.n_coefs - q0
        # squared magnitude of each coefficient across orientations
        yo = Y + 2 * q0
        for q in range(nq):
            a2[q] = (<double> yo[2 * q] * yo[2 * q]
                     + <double> yo[2 * q + 1] * yo[2 * q + 1])
        for o in range(1, n_orient):
            yo = Y + <Py_ssize_t> o * ldy + 2 * q0
            for q in range(nq):
                a2[q] += (<double> yo[2 * q] * yo[2 * q]
                          + <double> yo[2 * q + 1] * yo[2 * q + 1])
        # soft-threshold factors
        if wt != NULL:
            for q in range(nq):
                a = sqrt(a2[q])
                t = thr_t * wt[q0 + q]
                den = a if a > t else t
                # den == 0 only if t == 0: divide by 1; a zero weight zeroes the
                # coefficient (selects of constants: the loop stays branch-free)
                one = 1.0 if den == 0.0 else 0.0
                keep = 1.0 if wt[q0 + q] != 0 else 0.0
                sh[q] = (1.0 - t / (den + one)) * keep
        elif thr_t > 0.0:
            for q in range(nq):
                a = sqrt(a2[q])
                den = a if a > thr_t else thr_t
                sh[q] = 1.0 - thr_t / den
        else:
            for q in range(nq):
                sh[q] = 1.0
        for q in range(nq):
            acc += mult[q0 + q] * a2[q] * sh[q] * sh[q]
        if norms != NULL:
            for q in range(nq):
                l1 += (mult[q0 + q] * (wt[q0 + q] if wt != NULL else 1.0)
                       * sqrt(a2[q]) * sh[q])
        for o in range(n_orient):
            yo = Y + <Py_ssize_t> o * ldy + 2 * q0
            for q in range(nq):
                yo[2 * q] = <floating> (yo[2 * q] * sh[q])
                yo[2 * q + 1] = <floating> (yo[2 * q + 1] * sh[q])
        q0 += nq
    nrm = sqrt(acc)
    if nrm <= thr_s:
        for o in range(n_orient):
            memset(Y + <Py_ssize_t> o * ldy, 0, K2 * sizeof(floating))
        if norms != NULL:
            norms[0] = norms[1] = 0.0
        return False
    s = 1.0 - thr_s / nrm
    if norms != NULL:
        norms[0] = s * nrm
        norms[1] = s * l1
    for o in range(n_orient):
        yo = Y + <Py_ssize_t> o * ldy
        for i in range(K2):
            yo[i] = <floating> (yo[i] * s)
    return True


cdef void penalty_block(const tf_plan* p, const floating* Z, int n_orient, int ldz,
                        const floating* wt, double* l21, double* l1) noexcept nogil:
    """Weighted l2 norm and (time-weighted) l1 norm of one block."""
    cdef int q, o
    cdef double a, s2 = 0.0, s1 = 0.0, re, im
    cdef const floating* mult = <const floating*> p.mult
    for q in range(p.n_coefs):
        a = 0.0
        for o in range(n_orient):
            re = Z[<Py_ssize_t> o * ldz + 2 * q]
            im = Z[<Py_ssize_t> o * ldz + 2 * q + 1]
            a += re * re + im * im
        if a == 0.0:
            continue
        s2 += mult[q] * a
        if wt != NULL:
            s1 += mult[q] * sqrt(a) * wt[q]
        else:
            s1 += mult[q] * sqrt(a)
    l21[0] = sqrt(s2)
    l1[0] = s1


# --------------------------------------------------------------------------
# Screening bound on the epsilon norm (no STFT needed)
# --------------------------------------------------------------------------
cdef double eps_upper_bound(const tf_plan* p, const floating* x, int n_orient, int ldx,
                            double w_s, double w_min, double rho,
                            double* csum) noexcept nogil:
    """Upper bound on the epsilon norm of Phi(x) for one position.

    Uses ||Phi(x)|| = ||x|| (tight frame) and, per dictionary, the largest
    coefficient magnitude bounded by Cauchy-Schwarz over each frame (of each
    segment). csum: scratch of n_times + 1 doubles.
    """
    cdef int T = p.n_times, o, n, di, t, lo, hi, base, s, off, Ts = p.seg_times
    cdef double ny2 = 0.0, v, ymax = 0.0, e, emax
    cdef const tf_dict* d
    csum[0] = 0.0
    for n in range(T):
        v = 0.0
        for o in range(n_orient):
            v += <double> x[<Py_ssize_t> o * ldx + n] * x[<Py_ssize_t> o * ldx + n]
        csum[n + 1] = csum[n] + v
    ny2 = csum[T]
    if ny2 <= 0.0:
        return 0.0
    if rho <= 0.0:
        return sqrt(ny2) / w_s
    for di in range(p.n_dicts):
        d = &p.d[di]
        emax = 0.0
        for s in range(p.n_segs):
            off = s * Ts
            for t in range(d.n_step):
                base = t * d.tstep - d.pad_off
                lo = base if base > 0 else 0
                hi = base + d.wsize if base + d.wsize < Ts else Ts
                if hi > lo:
                    e = csum[off + hi] - csum[off + lo]
                    if e > emax:
                        emax = e
        v = d.wa_max * sqrt(emax)
        if v > ymax:
            ymax = v
    if ymax <= 0.0:
        return 0.0
    v = sqrt(ny2)
    return v / ((1.0 - rho) * w_s + rho * w_min * v / ymax)


# --------------------------------------------------------------------------
# The penalty struct: the kernels above with a block's weights and thresholds
# --------------------------------------------------------------------------
cdef void pen_init(tf_penalty* pen, const tf_plan* p, int n_orient, double alpha_s,
                   double alpha_t, const void* ws, const void* wt) noexcept nogil:
    """The penalty with these alphas and weights (NULL: all ones)."""
    pen.p = p
    pen.n_orient = n_orient
    pen.alpha_s = alpha_s
    pen.alpha_t = alpha_t
    pen.rho = alpha_t / (alpha_s + alpha_t) if alpha_s + alpha_t > 0 else 0.0
    pen.ws = ws
    pen.wt = wt


cdef inline double pen_ws(const tf_penalty* pen, int j,
                          const floating* tag) noexcept nogil:
    """Space weight of block ``j`` (``tag``: the precision, unused)."""
    return (<const floating*> pen.ws)[j] if pen.ws != NULL else 1.0


cdef inline const floating* pen_wt(const tf_penalty* pen, int j,
                                   const floating* tag) noexcept nogil:
    """Time weights of block ``j``, or NULL (``tag``: the precision, unused)."""
    if pen.wt == NULL:
        return NULL
    return <const floating*> pen.wt + <Py_ssize_t> j * pen.p.n_coefs


cdef inline bint pen_prox(const tf_penalty* pen, int j, floating* Y, int ldy,
                          double lc, double* value) noexcept nogil:
    """Prox of block ``j`` at step ``1 / lc`` (in place); whether Y is non-zero.
    ``value`` (or NULL): the penalty of the result."""
    cdef double norms[2]
    cdef bint nz = prox_block(pen.p, Y, pen.n_orient, ldy, pen_wt(pen, j, Y),
                              pen.alpha_t / lc, pen.alpha_s * pen_ws(pen, j, Y) / lc,
                              norms if value != NULL else NULL)
    if value != NULL:
        value[0] = pen.alpha_s * norms[0] * pen_ws(pen, j, Y) + pen.alpha_t * norms[1]
    return nz


cdef inline double pen_dual(const tf_penalty* pen, int j, const floating* Y, int ldy,
                            eps_item* items) noexcept nogil:
    """Dual norm (epsilon norm) of block ``j`` from its coefficients ``Y``."""
    return eps_norm_block(pen.p, Y, pen.n_orient, ldy, pen_wt(pen, j, Y),
                          pen_ws(pen, j, Y), pen.rho, items)


cdef inline double pen_value(const tf_penalty* pen, int j, const floating* Z,
                             int ldz) noexcept nogil:
    """Penalty of block ``j`` at its coefficients ``Z``."""
    cdef double l21, l1
    penalty_block(pen.p, Z, pen.n_orient, ldz, pen_wt(pen, j, Z), &l21, &l1)
    return pen.alpha_s * l21 * pen_ws(pen, j, Z) + pen.alpha_t * l1
