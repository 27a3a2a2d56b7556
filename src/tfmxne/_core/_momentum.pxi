# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# Momentum between block coordinate descent epochs, with adaptive restart
# (Xu and Yin, SIAM J. Imaging Sci. 2013; O'Donoghue and Candes 2015): the epoch
# after the iterate Z_k sweeps from Y = Z_k + beta_k (Z_k - Z_{k-1}),
# beta_k = k / (k + 3); X = PhiT(Z) and R = M - G X follow linearly. A step whose
# objective is above that of Z_k is rejected: Z_k is restored and k restarts at
# 0 (a plain epoch follows, and plain epochs never raise the objective).
# (included by _engine.pyx: shares its imports and types)


cdef Py_ssize_t momentum_size(const tf_plan* p, int n_ws, int n_orient,
                              int n_chan) noexcept nogil:
    """Bytes of the momentum buffers (Zp, Xp, Rp, actp) in one precision's
    elements plus the flags; see :c:func:`momentum_bind`."""
    return (<Py_ssize_t> n_ws * n_orient * (2 * p.n_coefs + p.n_times)
            + <Py_ssize_t> n_chan * p.n_times)


cdef void momentum_bind(tf_momentum* mo, const tf_ws* w, void* buf,
                        size_t itemsize) noexcept nogil:
    """Point the momentum state at ``buf`` (momentum_size elements of
    ``itemsize`` bytes, then n_ws flags) and reset it."""
    cdef const tf_plan* p = w.pen.p
    cdef Py_ssize_t nz = <Py_ssize_t> w.n_ws * w.pen.n_orient * 2 * p.n_coefs
    cdef Py_ssize_t nx = <Py_ssize_t> w.n_ws * w.pen.n_orient * p.n_times
    cdef Py_ssize_t nr = <Py_ssize_t> w.n_chan * p.n_times
    mo.Zp = buf
    mo.Xp = <char*> buf + nz * itemsize
    mo.Rp = <char*> buf + (nz + nx) * itemsize
    mo.actp = <unsigned char*> buf + (nz + nx + nr) * itemsize
    mo.k = 0
    mo.n_restart = 0
    mo.restart = 1
    mo.f_prev = INFINITY


cdef inline void _mix_rows(floating* A, floating* Ap, Py_ssize_t n, double beta,
                           bint had) noexcept nogil:
    """A <- A + beta (A - Ap), Ap <- A (the old A); ``had``: Ap holds the row
    (else it is taken as zero)."""
    cdef Py_ssize_t i
    cdef floating a
    if had:
        for i in range(n):
            a = A[i]
            A[i] = <floating> (a + beta * (a - Ap[i]))
            Ap[i] = a
    else:
        for i in range(n):
            a = A[i]
            A[i] = <floating> (a + beta * a)
            Ap[i] = a


cdef void momentum_before(const tf_ws* w, tf_momentum* mo,
                          const floating* tag) noexcept nogil:
    """Before an epoch: keep the iterate Z_k (and X, R, the support) and, after
    k > 0 accepted steps, move to the extrapolated point Y."""
    cdef const tf_plan* p = w.pen.p
    cdef int j, o = w.pen.n_orient
    cdef Py_ssize_t rz = <Py_ssize_t> o * 2 * p.n_coefs, rx = <Py_ssize_t> o * p.n_times
    cdef Py_ssize_t nr = <Py_ssize_t> w.n_chan * p.n_times
    cdef double beta = mo.k / (mo.k + 3.0)
    cdef floating* Z = <floating*> w.Z
    cdef floating* X = <floating*> w.X
    cdef floating* Zp = <floating*> mo.Zp
    cdef floating* Xp = <floating*> mo.Xp
    cdef bint was
    for j in range(w.n_ws):
        was = w.active[j] != 0
        if mo.k > 0 and (was or mo.actp[j]):
            _mix_rows(Z + j * rz, Zp + j * rz, rz, beta, mo.actp[j] != 0)
            _mix_rows(X + j * rx, Xp + j * rx, rx, beta, mo.actp[j] != 0)
            w.active[j] = 1
        elif was:
            memcpy(Zp + j * rz, Z + j * rz, rz * sizeof(floating))
            memcpy(Xp + j * rx, X + j * rx, rx * sizeof(floating))
        mo.actp[j] = was
    if mo.k > 0:
        _mix_rows(<floating*> w.R, <floating*> mo.Rp, nr, beta, True)
    else:
        memcpy(mo.Rp, w.R, nr * sizeof(floating))


cdef int momentum_after(const tf_ws* w, tf_momentum* mo, double penalty,
                        const floating* tag) noexcept nogil:
    """After an epoch (``penalty``: of the new iterate): accept the step, or
    reject it if it raised the objective (the iterate before the epoch is
    restored). Returns 1 if the support may have changed (a rejection)."""
    cdef const tf_plan* p = w.pen.p
    cdef int j, o = w.pen.n_orient
    cdef Py_ssize_t rz = <Py_ssize_t> o * 2 * p.n_coefs, rx = <Py_ssize_t> o * p.n_times
    cdef Py_ssize_t nr = <Py_ssize_t> w.n_chan * p.n_times
    cdef double f = 0.5 * dot(<int> nr, <const floating*> w.R,
                              <const floating*> w.R) + penalty
    cdef floating* Z = <floating*> w.Z
    cdef floating* X = <floating*> w.X
    if mo.k == 0 or f <= mo.f_prev or not mo.restart:
        mo.f_prev = f
        mo.k += 1
        return 0
    for j in range(w.n_ws):
        if mo.actp[j]:
            memcpy(Z + j * rz, <floating*> mo.Zp + j * rz, rz * sizeof(floating))
            memcpy(X + j * rx, <floating*> mo.Xp + j * rx, rx * sizeof(floating))
        elif w.active[j]:
            memset(Z + j * rz, 0, rz * sizeof(floating))
            memset(X + j * rx, 0, rx * sizeof(floating))
        w.active[j] = mo.actp[j]
    memcpy(w.R, mo.Rp, nr * sizeof(floating))
    mo.k = 0
    mo.n_restart += 1
    return 1
