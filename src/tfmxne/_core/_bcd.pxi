# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Block coordinate descent on a working set (the inner solve, bcd_solve): one
# proximal step per block visit, sequential epochs (or two-thread ones,
# _pipe.pxi), Anderson acceleration (_anderson.pxi), and the gap checks with
# dual extrapolation.
# (included by _engine.pyx: shares its imports and types)

cdef enum:
    N_EXTRAP = 4   # extrapolation steps t = 1, 2, 4, 8 tried at each gap check


ctypedef struct tf_gapstate:
    # what the gap checks of one inner solve carry from one to the next
    double best_d
    double gap
    double p_obj
    int next_gap      # the epoch count of the next check
    int skip          # the last check's candidates did not beat R: skip them once


cdef Py_ssize_t bcd_work_size(const tf_plan* p, int n_orient) noexcept nogil:
    """Elements of ``tf_ws.work``: the pieces of :c:func:`_wk`."""
    return 3 * <Py_ssize_t> n_orient * (p.n_times + 2 * p.n_coefs) + p.max_frames


cdef inline floating* _wk(const tf_ws* w, int k, const floating* tag) noexcept nogil:
    """Piece ``k`` of the inner solve's scratch: 0 ``gtr`` (o T), 1 ``Y`` (o 2K),
    2 ``xnew`` (o T), 3 ``xold`` (o T), 4 ``frames`` (max_frames), 5 ``Yd``
    (2 o 2K)."""
    cdef const tf_plan* p = w.pen.p
    cdef Py_ssize_t oT = <Py_ssize_t> w.pen.n_orient * p.n_times
    cdef Py_ssize_t oK2 = <Py_ssize_t> w.pen.n_orient * 2 * p.n_coefs
    cdef Py_ssize_t off[6]
    off[0] = 0
    off[1] = oT
    off[2] = oT + oK2
    off[3] = 2 * oT + oK2
    off[4] = 3 * oT + oK2
    off[5] = 3 * oT + oK2 + p.max_frames
    return <floating*> w.work + off[k]


cdef double scaled_dual(double nR2, double RM, double nu, double alpha) noexcept nogil:
    """Dual objective of ``s R``, ``s = min(1, alpha / nu)`` (``nu``: dual norm of
    ``G^T R``), from ``||R||^2`` and ``<R, M>``."""
    cdef double scal = 1.0
    if nu > alpha:
        scal = alpha / nu
    return scal * RM - 0.5 * scal * scal * nR2


# --------------------------------------------------------------------------
# One block visit, one epoch
# --------------------------------------------------------------------------
cdef inline double _prox_step(const tf_ws* w, int j, const floating* gtr, double lcj,
                              floating* xnew, floating* dx, int* changed,
                              double* value) noexcept nogil:
    """One proximal gradient step on block j from ``gtr = G_j^T R / lc_j``.

    Z_j, X_j and active[j] are updated (``changed`` set if the support moved),
    ``dx <- X_j new - X_j old`` (``dx`` may be ``xnew``); returns ``||dx||^2``.
    ``value`` (or NULL): the penalty of the new block.
    """
    cdef const tf_plan* p = w.pen.p
    cdef int o, n_orient = w.pen.n_orient, T = p.n_times, K2 = 2 * p.n_coefs
    cdef Py_ssize_t r0 = <Py_ssize_t> j * n_orient, blk = <Py_ssize_t> n_orient * T
    cdef double v, dn = 0.0
    cdef floating* X = <floating*> w.X
    cdef floating* Z = <floating*> w.Z
    cdef floating* Y = _wk(w, 1, gtr)
    cdef floating* frames = _wk(w, 4, gtr)
    stft_rows(p, gtr, n_orient, T, Y, K2, frames)
    if w.active[j]:
        for o in range(n_orient * K2):
            Y[o] += Z[r0 * K2 + o]
    if pen_prox(&w.pen, j, Y, K2, lcj, value):
        if not w.active[j]:
            changed[0] = 1
        istft_rows(p, Y, n_orient, K2, xnew, T, T, frames)
        memcpy(Z + r0 * K2, Y, n_orient * K2 * sizeof(floating))
        w.active[j] = 1
    else:
        if w.active[j]:
            changed[0] = 1
        memset(Z + r0 * K2, 0, n_orient * K2 * sizeof(floating))
        memset(xnew, 0, blk * sizeof(floating))
        w.active[j] = 0
    for o in range(blk):
        v = xnew[o] - X[r0 * T + o]
        X[r0 * T + o] = xnew[o]
        dx[o] = <floating> v
        dn += v * v
    return dn


cdef int _epoch_seq(const tf_ws* w, int n_inner, double* penalty,
                    const floating* tag) noexcept nogil:
    """One sequential epoch over the working set; returns whether the support
    changed. ``n_inner`` prox steps per visit (the block's own Gram keeps its
    gradient exact between them), then one update of R. ``penalty`` (or NULL):
    the penalty of the new iterate."""
    cdef const tf_plan* p = w.pen.p
    cdef int j, o, s_in, no = w.pen.n_orient, nc = w.n_chan, T = p.n_times
    cdef int changed = 0
    cdef Py_ssize_t r0
    cdef double lcj, thr_s, nrm, d0, dn, v = 0.0
    cdef const floating* lc = <const floating*> w.lc
    cdef const floating* GTj
    cdef floating* R = <floating*> w.R
    cdef floating* X = <floating*> w.X
    cdef floating* gtr = _wk(w, 0, tag)
    cdef floating* xnew = _wk(w, 2, tag)
    cdef floating* xold = _wk(w, 3, tag)
    for j in range(w.n_ws):
        lcj = lc[j]
        if lcj <= 0:
            continue
        GTj = <const floating*> w.GT + <Py_ssize_t> j * no * nc
        r0 = <Py_ssize_t> j * no
        thr_s = w.pen.alpha_s * pen_ws(&w.pen, j, tag) / lcj
        # gtr = G_j^T R / lc_j
        gemm_rm_slim(no, T, nc, <floating> (1.0 / lcj), GTj, nc, R, T, <floating> 0.0,
                     gtr, T)
        if not w.active[j]:
            nrm = dot(no * T, gtr, gtr)
            if sqrt(nrm) <= thr_s:
                continue   # exact: the prox of Phi(gtr) is zero
        memcpy(xold, X + r0 * T, no * T * sizeof(floating))
        d0 = 0.0
        for s_in in range(n_inner):
            # xnew <- dX = new - X_j ; X_j <- new ; gtr -= Gram_j dX / lc_j
            dn = _prox_step(w, j, gtr, lcj, xnew, xnew, &changed,
                            &v if penalty != NULL else NULL)
            gemm_rm(False, False, no, T, no, <floating> (-1.0 / lcj),
                    <const floating*> w.gram + <Py_ssize_t> j * no * no, no, xnew, T,
                    <floating> 1.0, gtr, T)
            if not w.active[j]:
                break
            if s_in == 0:
                d0 = dn
            elif dn <= 1e-2 * d0:
                break
        # xold <- X_old - X_new ; R += G_j (X_old - X_new)
        for o in range(no * T):
            xold[o] = xold[o] - X[r0 * T + o]
        gemm_rm(True, False, nc, T, no, <floating> 1.0, GTj, nc, xold, T, <floating> 1.0,
                R, T)
        if penalty != NULL:
            penalty[0] += v
    return changed


# --------------------------------------------------------------------------
# Gap checks
# --------------------------------------------------------------------------
cdef double _ws_dual_norm(const tf_ws* w, const floating* R, const floating* dR,
                          double* nu_t) noexcept nogil:
    """Dual norm of ``G_ws^T R`` over the working set (returned) and, if ``dR`` is
    not NULL, of ``G_ws^T (R + t dR)`` for ``t = 2^k``, ``k < N_EXTRAP``
    (``nu_t``). STFT is linear: one extra STFT per block serves every ``t``."""
    cdef const tf_plan* p = w.pen.p
    cdef int j, k, no = w.pen.n_orient, nc = w.n_chan, T = p.n_times
    cdef int K2 = 2 * p.n_coefs
    cdef Py_ssize_t i, nb = <Py_ssize_t> no * K2
    cdef double nu, best = 0.0, t
    cdef const floating* GTj
    cdef floating* gtr = _wk(w, 0, R)
    cdef floating* Y = _wk(w, 1, R)
    cdef floating* gd = _wk(w, 2, R)
    cdef floating* frames = _wk(w, 4, R)
    cdef floating* Yd = _wk(w, 5, R)
    cdef floating* Yt = Yd + nb
    for k in range(N_EXTRAP):
        nu_t[k] = 0.0
    for j in range(w.n_ws):
        GTj = <const floating*> w.GT + <Py_ssize_t> j * no * nc
        gemm_rm_slim(no, T, nc, <floating> 1.0, GTj, nc, R, T, <floating> 0.0, gtr, T)
        stft_rows(p, gtr, no, T, Y, K2, frames)
        nu = pen_dual(&w.pen, j, Y, K2, w.items)
        if nu > best:
            best = nu
        if dR == NULL:
            continue
        gemm_rm_slim(no, T, nc, <floating> 1.0, GTj, nc, dR, T, <floating> 0.0, gd, T)
        stft_rows(p, gd, no, T, Yd, K2, frames)
        for k in range(N_EXTRAP):
            t = <double> (1 << k)
            for i in range(nb):
                Yt[i] = <floating> (Y[i] + t * Yd[i])
            nu = pen_dual(&w.pen, j, Yt, K2, w.items)
            if nu > nu_t[k]:
                nu_t[k] = nu
    return best


cdef double ws_penalty(const tf_ws* w, const floating* tag) noexcept nogil:
    """Penalty of the working set's active blocks."""
    cdef int j, K2 = 2 * w.pen.p.n_coefs
    cdef double pen = 0.0
    for j in range(w.n_ws):
        if w.active[j]:
            pen += pen_value(&w.pen, j, <const floating*> w.Z
                             + <Py_ssize_t> j * w.pen.n_orient * K2, K2)
    return pen


cdef int _gap_check(const tf_ws* w, const tf_bcd_opts* opt, tf_extrap* ex,
                    tf_gapstate* g, int it, tf_info* info,
                    const floating* tag) noexcept nogil:
    """The duality gap of the working-set problem after epoch ``it`` (primal
    objective, dual points R and, with ``ex``, the extrapolated ones); returns 1
    to stop (gap < tol, or a non-finite residual)."""
    cdef const tf_plan* p = w.pen.p
    cdef Py_ssize_t ir, nr = <Py_ssize_t> w.n_chan * p.n_times
    cdef const floating* R = <const floating*> w.R
    cdef const floating* M = <const floating*> w.M
    cdef floating* rprev = <floating*> ex.rprev if ex != NULL else NULL
    cdef const floating* dR = NULL
    cdef double nu_t[N_EXTRAP]
    cdef double nR2, nu, RM, d_obj, d_plain, dRM, RdR, ndR2, te
    cdef double alpha = w.pen.alpha_s + w.pen.alpha_t
    cdef int ek
    nR2 = dot(<int> nr, R, R)
    if not isfinite(nR2):
        info.status = TFX_NONFINITE
        info.n_iter = it + 1
        return 1
    g.p_obj = 0.5 * nR2 + ws_penalty(w, tag)
    if ex != NULL and ex.state >= 1 and not g.skip:   # rprev <- R - R_prev
        for ir in range(nr):
            rprev[ir] = R[ir] - rprev[ir]
        dR = rprev
    g.skip = 0
    nu = _ws_dual_norm(w, R, dR, nu_t)
    RM = dot(<int> nr, R, M)
    d_obj = scaled_dual(nR2, RM, nu, alpha)
    if d_obj > g.best_d:
        g.best_d = d_obj
    if dR != NULL:
        ex.t_best = 0.0
        d_plain = d_obj
        # not better than R itself (e.g. after Anderson jumps): skip the
        # candidates at the next check (half the cost where useless)
        g.skip = 1
        dRM = dot(<int> nr, dR, M)
        RdR = dot(<int> nr, R, dR)
        ndR2 = dot(<int> nr, dR, dR)
        for ek in range(N_EXTRAP):
            te = <double> (1 << ek)
            d_obj = scaled_dual(nR2 + 2.0 * te * RdR + te * te * ndR2, RM + te * dRM,
                                nu_t[ek], alpha)
            if d_obj > g.best_d:
                g.best_d = d_obj
                ex.t_best = te
            if d_obj > d_plain:
                g.skip = 0
    g.gap = g.p_obj - g.best_d
    if ex != NULL:
        if dR != NULL and (g.gap < opt.tol or it == opt.maxit - 1):
            ex.state = 2    # keep R - R_prev for the caller
        else:
            memcpy(rprev, R, nr * sizeof(floating))
            ex.state = 1
    if info.n_obj < info.max_hist:
        info.hist[info.n_obj] = g.p_obj
        info.n_obj += 1
    if g.gap < opt.tol:
        info.status = TFX_OK
        info.n_iter = it + 1
        return 1
    return 0


# --------------------------------------------------------------------------
# The inner solve
# --------------------------------------------------------------------------
# Two-thread epochs or epochs of the main thread alone: the way with the
# fewer seconds per block visit so far (an average of the last timings of
# each), the other timed again after PICK_PROBE_MIN epochs, then after four
# times as many each time it stays the slower, up to PICK_PROBE_MAX. Another
# process on the machine can make the second thread a loss: each of its waits
# for a core stalls the sweep (epochs 4x slower than alone on the 7 mm grid
# next to one busy process), so a probe of the slower way is costly there.
cdef enum:
    PICK_PROBE_MIN = 4
    PICK_PROBE_MAX = 256


# What the last solve in this process found (1: alone was faster, 0: both
# threads, -1: unknown). A solve that starts where alone was faster times the
# epochs with both threads only at its first probe, after 4 PICK_PROBE_MIN
# epochs, not first (on a busy machine each such epoch costs several alone).
# A hint: solves that run at once may overwrite each other's.
cdef volatile long _PICK_LAST = -1


cdef inline void pick_init(tf_pipe_pick* pk) noexcept nogil:
    """A solve's pick, from what the last solve found."""
    memset(pk, 0, sizeof(tf_pipe_pick))
    if tfx_load(&_PICK_LAST) == 1:
        pk.t_two = -1.0         # slower until timed
        pk.until_probe = pk.probe_gap = 4 * PICK_PROBE_MIN


cdef inline void _pick_remember(const tf_pipe_pick* pk) noexcept nogil:
    if pk.t_two > 0.0 and pk.t_one > 0.0:
        tfx_store_sc(&_PICK_LAST, pk.t_one < pk.t_two)


cdef inline bint _pick_two(tf_pipe_pick* pk) noexcept nogil:
    """Whether the next epoch runs with both threads (both ways are timed first,
    unless the last solve found alone faster: ``t_two`` -1)."""
    cdef bint two
    if pk.t_two == 0.0:
        return True
    if pk.t_one == 0.0:
        return False
    two = 0.0 < pk.t_two <= pk.t_one
    if pk.until_probe <= 0:
        pk.until_probe = pk.probe_gap
        return not two
    pk.until_probe -= 1
    return two


cdef inline void _pick_record(tf_pipe_pick* pk, bint two, double t) noexcept nogil:
    """Record ``t`` seconds per visit of an epoch run ``two`` ways."""
    cdef bint was = 0.0 < pk.t_two <= pk.t_one, probe = pk.t_one != 0.0 and two != was
    if pk.probe_gap < PICK_PROBE_MIN:
        pk.probe_gap = PICK_PROBE_MIN
    if two:
        pk.t_two = t if pk.t_two <= 0.0 else 0.5 * (pk.t_two + t)
    else:
        pk.t_one = t if pk.t_one == 0.0 else 0.5 * (pk.t_one + t)
    if pk.t_one == 0.0 or pk.t_two <= 0.0:
        return
    _pick_remember(pk)
    if (pk.t_two <= pk.t_one) != was:
        pk.probe_gap = PICK_PROBE_MIN
    elif probe:
        pk.probe_gap = min(4 * pk.probe_gap, <int> PICK_PROBE_MAX)
    if probe:
        pk.until_probe = pk.probe_gap


cdef int _pipe_or_alone(pipe_ctx* c, tf_pipe_pick* pk, const tf_ws* w,
                        double* penalty, const floating* tag) noexcept nogil:
    """One epoch of a started pipe, with both threads or the main thread alone
    (_pick_two); the same bits either way."""
    cdef bint two = _pick_two(pk) and pipe_launch(c)
    cdef double t0 = tfx_now()
    cdef int changed
    if two:
        changed = pipe_epoch(c, c.n_epochs, w, penalty, tag)
        c.n_epochs += 1
    else:
        changed = pipe_epoch_alone(c, w, penalty, tag)
    _pick_record(pk, two, (tfx_now() - t0) / c.n_vis)
    return changed


cdef void _bcd_run(const tf_ws* w, const tf_bcd_opts* opt, tf_anderson* an,
                   tf_extrap* ex, tf_momentum* mo, const tf_pipe* pp, tf_info* info,
                   const floating* tag) noexcept nogil:
    cdef pipe_ctx ctx
    cdef tf_gapstate g
    cdef int it, j, dgap_freq = opt.dgap_freq if opt.dgap_freq > 0 else opt.maxit
    cdef int changed, n_acc
    cdef double pen
    cdef bint piped = pipe_start(&ctx, w, pp, opt.n_inner, tag)
    info.status = TFX_MAXIT
    info.n_obj = 0
    g.best_d = -INFINITY
    g.gap = INFINITY
    g.p_obj = INFINITY
    g.skip = 0
    g.next_gap = opt.gap_start if 0 < opt.gap_start < dgap_freq else dgap_freq
    if ex != NULL:
        if ex.state == 2:   # R - R_prev left by the previous call, whose last
            # check was at the current R: that is the previous residual now
            memcpy(ex.rprev, w.R, <Py_ssize_t> w.n_chan * w.pen.p.n_times
                   * sizeof(floating))
            ex.state = 1
        ex.t_best = 0.0
    if an != NULL:
        an.n_snap = 0
        an.n_act_prev = -1
    for it in range(opt.maxit):
        pen = 0.0
        if mo != NULL:
            momentum_before(w, mo, tag)
        if piped:
            changed = _pipe_or_alone(&ctx, pp.pick, w, &pen if mo != NULL else NULL,
                                     tag)
        else:
            changed = _epoch_seq(w, opt.n_inner, &pen if mo != NULL else NULL, tag)
        if mo != NULL and momentum_after(w, mo, pen, tag):
            changed = 1
        if an != NULL and an.k > 0:
            n_acc = info.n_accel
            anderson_track(w, an, changed, info, tag)
            if mo != NULL and info.n_accel != n_acc:
                mo.k = 0      # an accepted extrapolation: momentum starts afresh
        if it + 1 == g.next_gap or it == opt.maxit - 1:
            g.next_gap = it + 1 + (it + 1 if it + 1 < dgap_freq else dgap_freq)
            if _gap_check(w, opt, ex, &g, it, info, tag):
                break
    else:
        info.n_iter = opt.maxit
    info.gap = g.gap
    info.p_obj = g.p_obj
    info.d_obj = g.best_d
    if mo != NULL:
        info.n_restart = mo.n_restart
    info.n_active = 0
    for j in range(w.n_ws):
        info.n_active += w.active[j]
    if piped:
        pipe_stop(&ctx)


cdef void bcd_solve(const tf_ws* w, const tf_bcd_opts* opt, tf_anderson* an,
                    tf_extrap* ex, tf_momentum* mo, const tf_pipe* pp,
                    tf_info* info) noexcept nogil:
    """Block coordinate descent on the working set ``w`` until its gap < tol.

    ``w.R`` must equal ``M - G_ws X`` on entry; R, X, Z and the support are
    updated in place. The gap is first checked after ``opt.gap_start`` epochs,
    then after intervals that double up to ``dgap_freq`` (loose inner
    tolerances are met early). ``info`` receives the status, epochs, gap,
    objectives and, in ``info.hist``, the primal objective at each check.

    ``an`` (or NULL): Anderson acceleration (``an.k`` > 0, ``an.snap``
    :c:func:`bcd_snap_size` elements) while at most ``an.cap_rows`` rows are
    active. ``mo`` (or NULL): momentum between epochs with adaptive restart
    (_momentum.pxi; bound to its buffers by momentum_bind, its state carried
    from call to call). ``pp`` (or NULL): the two-thread sweep (one prox step
    per visit).

    ``ex`` (or NULL): dual extrapolation. BCD residuals converge linearly, so at
    each gap check the dual points ``R + t (R - R_prev)`` (``R_prev``: the
    residual at the previous check, t = 1, 2, 4, 8), rescaled to feasibility,
    are scored beside ``R``; the best dual objective counts. ``ex.state`` is
    carried from call to call (2 on return: ``ex.rprev`` holds ``R - R_prev`` of
    the last check, for the caller's certificate); ``ex.t_best`` returns the
    ``t`` of the best point of the last check (0: ``R`` itself). A check where
    no candidate beats ``R`` skips the candidates at the next one.
    """
    if w.pen.p.is_double:
        _bcd_run(w, opt, an, ex, mo, pp, info, <const double*> NULL)
    else:
        _bcd_run(w, opt, an, ex, mo, pp, info, <const float*> NULL)
