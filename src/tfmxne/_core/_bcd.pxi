# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Block coordinate descent on a working set.
#
# Gap evaluation on the working set (with dual extrapolation), one prox step
# per block visit, and the inner solver bcd_solve.
# (included by _engine.pyx: shares its imports and types)

# --------------------------------------------------------------------------
# Block coordinate descent on a working set
# --------------------------------------------------------------------------
cdef enum:
    N_EXTRAP = 4   # extrapolation steps t = 1, 2, 4, 8 tried at each gap evaluation
    REFINE_GAP = 1000  # refined dual points only once the gap is below this * tol


cdef double ws_dual_norm(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                         const floating* GT, const floating* R, const floating* dR,
                         const floating* wsp, const floating* wt, double rho,
                         floating* gtr, floating* Y, floating* gd, floating* Yd,
                         floating* frames, eps_item* items, const double* ts,
                         double* nu_t) noexcept nogil:
    """Dual norm of ``G_ws^T R`` over the working set (returned) and, if ``dR`` is
    not NULL, of ``G_ws^T (R + t dR)`` for ``t = ts[k]``, ``k < N_EXTRAP`` (``nu_t``).

    ``gd``: n_orient * T and ``Yd``: 2 * n_orient * 2 K entries of scratch (the
    coefficients of ``dR`` and the extrapolated ones); STFT is linear, so one
    extra STFT per block serves every ``t``."""
    cdef int j, k, T = p.n_times, K2 = 2 * p.n_coefs
    cdef Py_ssize_t i, nb = <Py_ssize_t> n_orient * K2
    cdef double nu, best = 0.0, t, w_s
    cdef floating* Yt = Yd + nb
    cdef const floating* wt_j
    for k in range(N_EXTRAP):
        nu_t[k] = 0.0
    for j in range(n_ws):
        gemm_rm_slim(n_orient, T, n_chan, <floating> 1.0,
                     GT + <Py_ssize_t> j * n_orient * n_chan, n_chan, R, T,
                     <floating> 0.0, gtr, T)
        stft_rows(p, gtr, n_orient, T, Y, K2, frames)
        wt_j = wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL
        w_s = wsp[j] if wsp != NULL else 1.0
        nu = eps_norm_block(p, Y, n_orient, K2, wt_j, w_s, rho, items)
        if nu > best:
            best = nu
        if dR == NULL:
            continue
        gemm_rm_slim(n_orient, T, n_chan, <floating> 1.0,
                     GT + <Py_ssize_t> j * n_orient * n_chan, n_chan, dR, T,
                     <floating> 0.0, gd, T)
        stft_rows(p, gd, n_orient, T, Yd, K2, frames)
        for k in range(N_EXTRAP):
            t = ts[k]
            for i in range(nb):
                Yt[i] = <floating> (Y[i] + t * Yd[i])
            nu = eps_norm_block(p, Yt, n_orient, K2, wt_j, w_s, rho, items)
            if nu > nu_t[k]:
                nu_t[k] = nu
    return best


cdef double scaled_dual(double nR2, double RM, double nu, double alpha) noexcept nogil:
    """Dual objective of ``s R``, ``s = min(1, alpha / nu)`` (``nu``: dual norm of
    ``G^T R``), from ``||R||^2`` and ``<R, M>``."""
    cdef double scal = 1.0
    if nu > alpha:
        scal = alpha / nu
    return scal * RM - 0.5 * scal * scal * nR2


cdef bint refine_dir(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                     const floating* GT, const floating* R, const unsigned char* active,
                     const floating* lc, const floating* wsp, const floating* wt,
                     double rho, double alpha, floating* gtr, floating* Y,
                     floating* frames, eps_item* items, floating* d) noexcept nogil:
    """Newton direction ``d`` ((n_chan, T)) toward the active dual constraints.

    For each active block ``j`` of the working set, ``nu_j(theta)``, the epsilon
    norm of ``Phi(G_j^T theta)``, has the gradient ``G_j PhiT(U_j) / C_j`` at
    ``theta = R``, with ``U_j`` the coefficients soft-thresholded at
    ``rho nu_j w`` and ``C_j = rho sum_q mult_q w_q (|y_q| - rho nu_j w_q)_+ +
    ((1 - rho) w_s)^2 nu_j`` (implicit differentiation of the equation
    that defines ``nu_j``). ``d = sum_k c_k G_k PhiT(U_k)`` solves the
    linearised equations ``nu_j(R + d) = alpha`` of the active blocks (their
    KKT conditions at the optimum: the dual optimum is ``M`` minus a combination
    of these normals), a system of the size of the support built from the Gram
    matrices of the rows of ``G`` and of the ``PhiT(U_k)``. Returns False (``d``
    untouched) without active blocks, with ``rho >= 1`` (no gradient), or if
    the system is not positive definite. ``d`` is only a direction: the caller
    scores ``R + t d`` with the exact dual norms and rescales it to feasibility.
    """
    cdef int T = p.n_times, K = p.n_coefs, K2 = 2 * p.n_coefs, o = n_orient
    cdef int nA = 0, m, l, a, b, q, j, info = 0, one = 1, nAo
    cdef double nu, w, thr, am, sh, csum, C, k2, ws_j, v, dmax = 0.0
    cdef const floating* mult = <const floating*> p.mult
    cdef const floating* wt_j
    cdef floating* yo
    cdef int* idx
    cdef floating* W
    cdef floating* GA
    cdef floating* P
    cdef floating* WW
    cdef double* H
    cdef double* rhs
    cdef char uplo = b'U'
    cdef char* blk
    cdef Py_ssize_t r, sz
    if rho >= 1.0 or rho < 0.0:
        return False
    for j in range(n_ws):
        if active[j] and lc[j] > 0:
            nA += 1
    if nA == 0:
        return False
    nAo = nA * o
    sz = (<Py_ssize_t> nAo * (T + n_chan) + 2 * <Py_ssize_t> nAo * nAo) * sizeof(floating)
    sz = (sz + 63) // 64 * 64
    blk = <char*> malloc(sz + (<Py_ssize_t> nA * nA + nA) * sizeof(double)
                         + nA * sizeof(int))
    if blk == NULL:
        return False
    W = <floating*> blk
    GA = W + <Py_ssize_t> nAo * T
    P = GA + <Py_ssize_t> nAo * n_chan
    WW = P + <Py_ssize_t> nAo * nAo
    H = <double*> (blk + sz)
    rhs = H + <Py_ssize_t> nA * nA
    idx = <int*> (rhs + nA)
    m = 0
    for j in range(n_ws):
        if not (active[j] and lc[j] > 0):
            continue
        idx[m] = j
        memcpy(GA + <Py_ssize_t> m * o * n_chan, GT + <Py_ssize_t> j * o * n_chan,
               <Py_ssize_t> o * n_chan * sizeof(floating))
        gemm_rm_slim(o, T, n_chan, <floating> 1.0,
                     GT + <Py_ssize_t> j * o * n_chan, n_chan, R, T, <floating> 0.0,
                     gtr, T)
        stft_rows(p, gtr, o, T, Y, K2, frames)
        wt_j = wt + <Py_ssize_t> j * K if wt != NULL else NULL
        ws_j = wsp[j] if wsp != NULL else 1.0
        nu = eps_norm_block(p, Y, o, K2, wt_j, ws_j, rho, items)
        if not nu > 0:
            free(blk)
            return False
        # U = soft-threshold of Y at rho nu w (in place), and C
        csum = 0.0
        for q in range(K):
            w = wt_j[q] if wt_j != NULL else 1.0
            am = 0.0
            for a in range(o):
                yo = Y + <Py_ssize_t> a * K2 + 2 * q
                am += <double> yo[0] * yo[0] + <double> yo[1] * yo[1]
            am = sqrt(am)
            thr = rho * nu * w
            sh = 0.0
            if w != 0 and am > thr:
                sh = (am - thr) / am
                csum += mult[q] * w * (am - thr)
            for a in range(o):
                yo = Y + <Py_ssize_t> a * K2 + 2 * q
                yo[0] = <floating> (yo[0] * sh)
                yo[1] = <floating> (yo[1] * sh)
        k2 = (1.0 - rho) * ws_j
        C = rho * csum + k2 * k2 * nu
        if not C > 0:
            free(blk)
            return False
        istft_rows(p, Y, o, K2, W + <Py_ssize_t> m * o * T, T, T, frames)
        rhs[m] = C * (alpha - nu)
        m += 1
    # H_ml = <G_m W_m, G_l W_l> = sum over orientation pairs of the two Grams
    gemm_rm(False, True, nAo, nAo, n_chan, <floating> 1.0, GA, n_chan, GA, n_chan,
            <floating> 0.0, P, nAo)
    gemm_rm(False, True, nAo, nAo, T, <floating> 1.0, W, T, W, T, <floating> 0.0,
            WW, nAo)
    for m in range(nA):
        for l in range(nA):
            v = 0.0
            for a in range(o):
                for b in range(o):
                    r = (<Py_ssize_t> m * o + a) * nAo + l * o + b
                    v += <double> P[r] * WW[r]
            H[m * nA + l] = v
        if H[m * nA + m] > dmax:
            dmax = H[m * nA + m]
    if not dmax > 0:
        free(blk)
        return False
    for m in range(nA):      # a small ridge: correlated gains give near-singular H
        H[m * nA + m] += 1e-10 * dmax
    dposv(&uplo, &nA, &one, H, &nA, rhs, &nA, &info)
    if info != 0:
        free(blk)
        return False
    for m in range(nA):
        for r in range(<Py_ssize_t> o * T):
            W[<Py_ssize_t> m * o * T + r] = <floating> (rhs[m] * W[<Py_ssize_t> m * o * T + r])
    # d = sum_m G_m (c_m W_m) = GA^T W
    gemm_rm(True, False, n_chan, T, nAo, <floating> 1.0, GA, n_chan, W, T,
            <floating> 0.0, d, T)
    free(blk)
    return True


cdef void ws_primal(const tf_plan* p, int n_ws, int n_orient, const floating* Z,
                    const unsigned char* active, const floating* wsp,
                    const floating* wt, double alpha_s, double alpha_t,
                    double* pen) noexcept nogil:
    cdef int j, K2 = 2 * p.n_coefs
    cdef double l21, l1
    pen[0] = 0.0
    for j in range(n_ws):
        if not active[j]:
            continue
        penalty_block(p, Z + <Py_ssize_t> j * n_orient * K2, n_orient, K2,
                      wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL,
                      &l21, &l1)
        pen[0] += alpha_s * l21 * (wsp[j] if wsp != NULL else 1.0) + alpha_t * l1




cdef inline double _prox_step(const tf_plan* p, int j, int n_orient,
                              const floating* gtr, floating* X, floating* Z,
                              unsigned char* active, const floating* wt, double thr_t,
                              double thr_s, floating* Y, floating* xnew,
                              floating* frames, floating* dx, int* changed,
                              bint* nz) noexcept nogil:
    """One proximal gradient step on block j from ``gtr = G_j^T R / lc_j``.

    Z_j, X_j and active[j] are updated (``changed`` set if the support moved),
    ``dx <- X_j new - X_j old`` (``dx`` may be ``xnew``); returns ``||dx||^2``.
    """
    cdef int o, T = p.n_times, K2 = 2 * p.n_coefs
    cdef Py_ssize_t r0 = <Py_ssize_t> j * n_orient, blk = <Py_ssize_t> n_orient * T
    cdef double v, dn = 0.0
    stft_rows(p, gtr, n_orient, T, Y, K2, frames)
    if active[j]:
        for o in range(n_orient * K2):
            Y[o] += Z[r0 * K2 + o]
    nz[0] = prox_block(p, Y, n_orient, K2,
                       wt + <Py_ssize_t> j * p.n_coefs if wt != NULL else NULL,
                       thr_t, thr_s)
    if nz[0]:
        if not active[j]:
            changed[0] = 1
        istft_rows(p, Y, n_orient, K2, xnew, T, T, frames)
        memcpy(Z + r0 * K2, Y, n_orient * K2 * sizeof(floating))
        active[j] = 1
    else:
        if active[j]:
            changed[0] = 1
        memset(Z + r0 * K2, 0, n_orient * K2 * sizeof(floating))
        memset(xnew, 0, blk * sizeof(floating))
        active[j] = 0
    for o in range(blk):
        v = xnew[o] - X[r0 * T + o]
        X[r0 * T + o] = xnew[o]
        dx[o] = <floating> v
        dn += v * v
    return dn



cdef void _bcd_run(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                    const floating* GT, const floating* M, floating* R,
                    floating* X, floating* Z, unsigned char* active,
                    const floating* lc, const floating* wsp, const floating* wt,
                    double alpha_s, double alpha_t, int maxit, double tol,
                    int dgap_freq, floating* work, eps_item* items,
                    double* obj_hist, int max_hist, tf_info* info,
                    int anderson_k, floating* snap, Py_ssize_t cap_rows,
                    const floating* gram, int n_inner, int gap_start,
                    const floating* xgram, floating* pipe, floating* rprev,
                    double* extrap, floating* tref, double* refine) noexcept nogil:
    """Block coordinate descent on a working set until the gap < tol (the body of
    :c:func:`bcd_solve`, which passes the fields of its ``bcd_args``).

    GT: (n_ws * n_orient, n_chan) rows of G^T; M, R: (n_chan, T);
    X: (n_ws * n_orient, T) = PhiT(Z) kept in sync; Z: (n_ws * n_orient, 2 K).
    work: 3 * n_orient * (T + 2 K) + max_frames entries.
    R must equal M - G_ws X on entry.
    anderson_k > 0: Anderson acceleration with that memory, using ``snap``
    ((anderson_k + 2) * cap_rows * (2 K + T) + (anderson_k + 1) * n_chan * T
    entries + room for a small Gram matrix) while at most cap_rows rows are active.
    The gap is first evaluated after ``gap_start`` epochs, then after intervals
    that double up to ``dgap_freq`` (loose inner tolerances are met early).

    Two threads (``xgram`` and ``pipe`` not NULL, one prox step per visit): a
    helper thread computes ``G_j^T R`` and the residual updates while this one
    does the STFT, prox and ISTFT of the previous block. ``xgram``
    ((n_ws, n_orient, n_orient)): ``G_j^T G_i`` with ``i`` the block visited
    before ``j``; ``pipe``: 4 * n_orient * T entries. The iterates equal the
    sequential sweep's up to rounding (the gradient of a block is corrected by
    the cross Gram instead of recomputed). Falls back to one thread if the
    helper cannot start.

    Dual extrapolation (``rprev``: n_chan * T entries, ``extrap``: 2 doubles,
    both not NULL): BCD residuals converge linearly, so at each gap evaluation
    the dual points ``R + t (R - R_prev)`` (``R_prev``: the residual at the
    previous evaluation, t = 1, 2, 4, 8), rescaled to feasibility, are scored
    beside ``R``; the best dual objective counts. ``extrap[0]`` is the state of
    ``rprev`` (0: empty, 1: R at the last evaluation, 2: ``R - R_prev`` of the
    last evaluation, left on return for the caller's own certificate) and is
    carried from call to call; ``extrap[1]`` returns the ``t`` of the best point
    of the last evaluation (0: ``R`` itself). An evaluation where no candidate
    beats ``R`` skips the candidates at the next one.

    Refined dual point (``tref``: n_chan * T entries, ``refine``: 1 double,
    both not NULL): at each gap evaluation whose gap is still above ``tol``,
    and below ``REFINE_GAP tol``,
    the points ``R + t d`` (``d``: :c:func:`refine_dir`, a Newton step onto
    the active constraints; t = 0.5, 1, 1.5, 2), rescaled to feasibility, are
    scored too; ``refine[0]`` returns 1 if the best dual point of the last
    evaluation is one of them, left in ``tref`` for the caller's certificate.
    """
    cdef pipe_ctx ctx
    cdef pipe_ctx* c = NULL
    cdef tfx_thread th
    cdef int n_vis = 0
    cdef int T = p.n_times, K2 = 2 * p.n_coefs, it, j, o
    cdef int n_snap = 0, n_act = 0, n_act_prev = -1, changed = 0
    cdef floating* snapZ = snap
    cdef floating* snapX = snapZ + (anderson_k + 1) * cap_rows * K2
    cdef floating* snapR = snapX + (anderson_k + 1) * cap_rows * T
    cdef floating* accZ = snapR + (anderson_k + 1) * <Py_ssize_t> n_chan * T
    cdef floating* accX = accZ + cap_rows * K2
    cdef double* agram = <double*> (accX + cap_rows * T + 8)
    cdef Py_ssize_t r0, blk = <Py_ssize_t> n_orient * K2
    cdef floating* gtr = work
    cdef floating* Y = gtr + n_orient * T
    cdef floating* xnew = Y + n_orient * K2
    cdef floating* xold = xnew + n_orient * T
    cdef floating* frames = xold + n_orient * T
    # (within the work size: 3 n_o (T + 2 K) + max_frames)
    cdef floating* Yd = frames + p.max_frames
    cdef double rho, lcj, thr_s, thr_t, nrm, nR2, pen, nu, d_obj, d0, dn
    cdef double RM, dRM, RdR, ndR2, te, alpha = alpha_s + alpha_t
    cdef double nu_t[N_EXTRAP]
    cdef double ts_ext[N_EXTRAP]
    cdef double ts_ref[N_EXTRAP]
    cdef double RMd, Rd, nd2, t_ref
    cdef int ek, rstate = 0
    cdef bint ext_skip = False
    cdef double d_plain
    cdef Py_ssize_t ir, nr = <Py_ssize_t> n_chan * T
    cdef const floating* dR = NULL
    cdef int s_in, next_gap
    cdef double best_d = -INFINITY, gap = INFINITY, p_obj = INFINITY
    cdef bint nz
    cdef const floating* GTj
    info.status = TFX_MAXIT
    info.n_obj = 0
    for ek in range(N_EXTRAP):
        ts_ext[ek] = <double> (1 << ek)
        ts_ref[ek] = 0.5 * (ek + 1)
    if tref != NULL and refine != NULL:
        refine[0] = 0.0
    if xgram != NULL and pipe != NULL and n_inner == 1:
        for j in range(n_ws):
            if lc[j] > 0:
                n_vis += 1
    if n_vis >= 2:
        memset(&ctx, 0, sizeof(pipe_ctx))
        ctx.GT = GT
        ctx.R = R
        ctx.lc = lc
        ctx.xgram = xgram
        ctx.gbuf = pipe
        ctx.dxbuf = pipe + 2 * <Py_ssize_t> n_orient * T
        ctx.n_ws = n_ws
        ctx.n_orient = n_orient
        ctx.n_chan = n_chan
        ctx.T = T
        ctx.n_vis = n_vis
        ctx.is_double = floating is double
        if tfx_thread_start(&th, _helper_main, &ctx) == 0:
            c = &ctx
    rho = alpha_t / (alpha_s + alpha_t) if alpha_s + alpha_t > 0 else 0.0
    if rprev != NULL and extrap != NULL:
        rstate = <int> extrap[0]
        if rstate == 2:   # R - R_prev left by the previous call, whose last
            # evaluation was at the current R: that is the previous residual now
            memcpy(rprev, R, nr * sizeof(floating))
            rstate = 1
        extrap[1] = 0.0
    if dgap_freq <= 0:
        dgap_freq = maxit
    next_gap = gap_start if 0 < gap_start < dgap_freq else dgap_freq
    for it in range(maxit):
        changed = 0
        if c != NULL:
            changed = _main_epoch(p, c, it, n_ws, n_orient, X, Z, active, lc, wsp, wt,
                                  alpha_s, alpha_t, Y, xnew, frames, pipe,
                                  pipe + 2 * <Py_ssize_t> n_orient * T)
        else:
            for j in range(n_ws):
                lcj = lc[j]
                if lcj <= 0:
                    continue
                GTj = GT + <Py_ssize_t> j * n_orient * n_chan
                r0 = <Py_ssize_t> j * n_orient
                thr_s = alpha_s * (wsp[j] if wsp != NULL else 1.0) / lcj
                thr_t = alpha_t / lcj
                # gtr = G_j^T R / lc_j
                gemm_rm_slim(n_orient, T, n_chan, <floating> (1.0 / lcj),
                             GTj, n_chan, R, T, <floating> 0.0, gtr, T)
                if not active[j]:
                    nrm = dot(n_orient * T, gtr, gtr)
                    if sqrt(nrm) <= thr_s:
                        continue   # exact: the prox of Phi(gtr) is zero
                # a few proximal gradient steps on this block (its own 3 x 3 Gram
                # keeps gtr exact without touching the sensors), then one update of R
                memcpy(xold, X + r0 * T, n_orient * T * sizeof(floating))
                d0 = 0.0
                for s_in in range(n_inner):
                    # xnew <- dX = new - X_j ; X_j <- new ; gtr -= Gram_j dX / lc_j
                    dn = _prox_step(p, j, n_orient, gtr, X, Z, active, wt, thr_t,
                                    thr_s, Y, xnew, frames, xnew, &changed, &nz)
                    gemm_rm(False, False, n_orient, T, n_orient, <floating> (-1.0 / lcj),
                            gram + <Py_ssize_t> j * n_orient * n_orient, n_orient,
                            xnew, T, <floating> 1.0, gtr, T)
                    if not nz:
                        break
                    if s_in == 0:
                        d0 = dn
                    elif dn <= 1e-2 * d0:
                        break
                # xold <- X_old - X_new ; R += G_j (X_old - X_new)
                for o in range(n_orient * T):
                    xold[o] = xold[o] - X[r0 * T + o]
                gemm_rm(True, False, n_chan, T, n_orient, <floating> 1.0, GTj, n_chan,
                        xold, T, <floating> 1.0, R, T)
        if anderson_k > 0:
            n_act = 0
            for j in range(n_ws):
                n_act += active[j]
            if changed or n_act != n_act_prev:
                n_snap = 0
            n_act_prev = n_act
            if n_act > 0 and <Py_ssize_t> n_act * n_orient <= cap_rows:
                _snapshot(n_ws, n_orient, T, K2, n_chan, active, Z, X, R,
                          snapZ + n_snap * cap_rows * K2, snapX + n_snap * cap_rows * T,
                          snapR + n_snap * <Py_ssize_t> n_chan * T)
                n_snap += 1
                if n_snap == anderson_k + 1:
                    info.n_accel_try += 1
                    info.n_accel += _anderson(p, n_ws, n_orient, n_chan, n_act, anderson_k, active, Z, X,
                              R, wsp, wt, alpha_s, alpha_t, snapZ, snapX, snapR,
                              cap_rows, accZ, accX, GT, M, agram)
                    n_snap = 0
        if it + 1 == next_gap or it == maxit - 1:
            next_gap = it + 1 + (it + 1 if it + 1 < dgap_freq else dgap_freq)
            nR2 = dot(n_chan * T, R, R)
            if not isfinite(nR2):
                info.status = TFX_NONFINITE
                info.n_iter = it + 1
                break
            ws_primal(p, n_ws, n_orient, Z, active, wsp, wt, alpha_s, alpha_t, &pen)
            p_obj = 0.5 * nR2 + pen
            dR = NULL
            if rstate >= 1 and not ext_skip:   # rprev <- R - R_prev
                for ir in range(nr):
                    rprev[ir] = R[ir] - rprev[ir]
                dR = rprev
            ext_skip = False
            nu = ws_dual_norm(p, n_ws, n_orient, n_chan, GT, R, dR, wsp, wt, rho, gtr,
                              Y, xnew, Yd, frames, items, ts_ext, nu_t)
            RM = dot(<int> nr, R, M)
            d_obj = scaled_dual(nR2, RM, nu, alpha)
            if d_obj > best_d:
                best_d = d_obj
            if dR != NULL:
                extrap[1] = 0.0
                d_plain = d_obj
                # not better than R itself (e.g. after Anderson jumps): skip the
                # candidates at the next evaluation (half the cost where useless)
                ext_skip = True
                dRM = dot(<int> nr, dR, M)
                RdR = dot(<int> nr, R, dR)
                ndR2 = dot(<int> nr, dR, dR)
                for ek in range(N_EXTRAP):
                    te = <double> (1 << ek)
                    d_obj = scaled_dual(nR2 + 2.0 * te * RdR + te * te * ndR2,
                                         RM + te * dRM, nu_t[ek], alpha)
                    if d_obj > best_d:
                        best_d = d_obj
                        extrap[1] = te
                    if d_obj > d_plain:
                        ext_skip = False
            if tref != NULL and refine != NULL:
                refine[0] = 0.0
                # only in the tail (the refined gap is then much smaller than
                # the rescaled residual's: no use, at its cost, earlier)
                if tol <= p_obj - best_d < REFINE_GAP * tol and refine_dir(
                        p, n_ws, n_orient, n_chan, GT, R, active, lc, wsp, wt, rho,
                        alpha, gtr, Y, frames, items, tref):
                    ws_dual_norm(p, n_ws, n_orient, n_chan, GT, R, tref, wsp, wt, rho,
                                 gtr, Y, xnew, Yd, frames, items, ts_ref, nu_t)
                    RMd = dot(<int> nr, tref, M)
                    Rd = dot(<int> nr, R, tref)
                    nd2 = dot(<int> nr, tref, tref)
                    t_ref = 0.0
                    for ek in range(N_EXTRAP):
                        te = ts_ref[ek]
                        d_obj = scaled_dual(nR2 + 2.0 * te * Rd + te * te * nd2,
                                            RM + te * RMd, nu_t[ek], alpha)
                        if d_obj > best_d:
                            best_d = d_obj
                            t_ref = te
                    if t_ref > 0:
                        for ir in range(nr):
                            tref[ir] = <floating> (R[ir] + t_ref * tref[ir])
                        refine[0] = 1.0
            gap = p_obj - best_d
            if rprev != NULL and extrap != NULL:
                if dR != NULL and (gap < tol or it == maxit - 1):
                    rstate = 2    # keep R - R_prev for the caller
                else:
                    memcpy(rprev, R, nr * sizeof(floating))
                    rstate = 1
            if info.n_obj < max_hist:
                obj_hist[info.n_obj] = p_obj
                info.n_obj += 1
            if gap < tol:
                info.status = TFX_OK
                info.n_iter = it + 1
                break
    else:
        info.n_iter = maxit
    info.gap = gap
    info.p_obj = p_obj
    info.d_obj = best_d
    if rprev != NULL and extrap != NULL:
        extrap[0] = rstate
    info.n_active = 0
    for j in range(n_ws):
        info.n_active += active[j]
    if c != NULL:
        tfx_store(&ctx.quit, 1)
        tfx_thread_join(th)


cdef void bcd_solve(const tf_plan* p, const bcd_args* a, tf_info* info) noexcept nogil:
    """Inner solve on a working set described by ``a`` (see ``bcd_args``), in the
    precision of the plan; ``info`` receives the status, epochs, gap, objectives
    and ``a.hist`` the primal objective at each gap evaluation (``info.n_obj``).
    Scratch: ``a.work`` :c:func:`bcd_work_size`, ``a.items`` ``n_coefs`` items,
    ``a.snap`` :c:func:`bcd_snap_size` (if ``anderson_k > 0``), ``a.pipe``
    ``4 n_orient T`` (two threads), ``a.rprev`` and ``a.tref`` ``n_chan T``."""
    if p.is_double:
        _bcd_run(p, a.n_ws, a.n_orient, a.n_chan, <const double*> a.GT,
                 <const double*> a.M, <double*> a.R, <double*> a.X, <double*> a.Z,
                 a.active, <const double*> a.lc, <const double*> a.wsp,
                 <const double*> a.wt, a.alpha_s, a.alpha_t, a.maxit, a.tol,
                 a.dgap_freq, <double*> a.work, a.items, a.hist, a.max_hist, info,
                 a.anderson_k, <double*> a.snap, a.cap_rows, <const double*> a.gram,
                 a.n_inner, a.gap_start, <const double*> a.xgram, <double*> a.pipe,
                 <double*> a.rprev, a.extrap, <double*> a.tref, a.refine)
    else:
        _bcd_run(p, a.n_ws, a.n_orient, a.n_chan, <const float*> a.GT,
                 <const float*> a.M, <float*> a.R, <float*> a.X, <float*> a.Z,
                 a.active, <const float*> a.lc, <const float*> a.wsp,
                 <const float*> a.wt, a.alpha_s, a.alpha_t, a.maxit, a.tol,
                 a.dgap_freq, <float*> a.work, a.items, a.hist, a.max_hist, info,
                 a.anderson_k, <float*> a.snap, a.cap_rows, <const float*> a.gram,
                 a.n_inner, a.gap_start, <const float*> a.xgram, <float*> a.pipe,
                 <float*> a.rprev, a.extrap, <float*> a.tref, a.refine)


cdef Py_ssize_t bcd_work_size(const tf_plan* p, int n_orient) noexcept nogil:
    """Elements of ``bcd_args.work``."""
    return 3 * <Py_ssize_t> n_orient * (p.n_times + 2 * p.n_coefs) + p.max_frames


cdef Py_ssize_t bcd_snap_size(const tf_plan* p, int anderson_k, Py_ssize_t cap_rows,
                              int n_chan) noexcept nogil:
    """Elements of ``bcd_args.snap`` for Anderson acceleration with ``cap_rows``."""
    return ((anderson_k + 2) * cap_rows * (2 * p.n_coefs + p.n_times)
            + (anderson_k + 1) * <Py_ssize_t> n_chan * p.n_times
            + 4 * (anderson_k + 1) * (anderson_k + 1) + 64)
