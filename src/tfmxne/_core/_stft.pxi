# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# STFT / ISTFT of rows of signals: the frames of each dictionary as one BLAS
# product (folded real DFT for long windows), overlap-add for the inverse.
# (included by _engine.pyx: shares its imports and types)

cdef inline int _frame_span(const tf_dict* d, int t, int n_len, int* lo,
                            int* hi) noexcept nogil:
    """Start of frame ``t`` on the signal axis; its samples inside ``[0, n_len)``
    are the frame offsets ``[lo, hi)``."""
    cdef int base = t * d.tstep - d.pad_off
    lo[0] = 0 if base >= 0 else -base
    hi[0] = d.wsize if base + d.wsize <= n_len else n_len - base
    return base


cdef inline void _folded_scratch(const tf_dict* d, floating* work, floating** ev,
                                 floating** od, floating** re,
                                 floating** im) noexcept nogil:
    """Scratch layout shared by the folded analysis and synthesis of one
    dictionary: even and odd halves of the frames (ns x (h + 1) each, within the
    first ns x N entries), then real and imaginary parts (ns x nf each)."""
    cdef Py_ssize_t ns = d.n_step, h = d.wsize // 2
    ev[0] = work
    od[0] = work + ns * (h + 1)
    re[0] = work + ns * d.wsize
    im[0] = re[0] + ns * d.n_freq


cdef inline void _interleave(const floating* re, const floating* im, floating* z,
                             Py_ssize_t n) noexcept nogil:
    """z[2 i] = re[i], z[2 i + 1] = im[i] (one flat loop the compiler vectorises)."""
    cdef Py_ssize_t i
    for i in range(n):
        z[2 * i] = re[i]
        z[2 * i + 1] = im[i]


cdef inline void _deinterleave(const floating* z, floating* re, floating* im,
                               Py_ssize_t n) noexcept nogil:
    """Inverse of :func:`_interleave`."""
    cdef Py_ssize_t i
    for i in range(n):
        re[i] = z[2 * i]
        im[i] = z[2 * i + 1]


cdef inline void _frames_plain(const tf_dict* d, const floating* xr, int T,
                               floating* zt, floating* work) noexcept nogil:
    """One dictionary, plain real DFT: windowed frames times (N, 2 nf)."""
    cdef int t, n, lo, hi, base, N = d.wsize, ns = d.n_step, nf2 = 2 * d.n_freq
    cdef const floating* wa = <const floating*> d.wa
    for t in range(ns):
        base = _frame_span(d, t, T, &lo, &hi)
        if hi < lo:
            hi = lo
        for n in range(lo):
            work[t * N + n] = 0
        for n in range(lo, hi):
            work[t * N + n] = xr[base + n] * wa[t * N + n]
        for n in range(hi, N):
            work[t * N + n] = 0
    gemm_rm(False, False, ns, nf2, N, <floating> 1.0, work, N,
            <const floating*> d.fa, nf2, <floating> 0.0, zt, nf2)


cdef inline void _frames_folded(const tf_dict* d, const floating* xr, int T,
                                floating* zt, floating* work) noexcept nogil:
    """One dictionary, folded real DFT: windowed frames folded into even / odd
    halves, two products (cosine and sine), real and imaginary parts interleaved."""
    cdef int t, n, k, lo, hi, base, N = d.wsize, h = d.wsize // 2
    cdef int ns = d.n_step, nf = d.n_freq
    cdef const floating* wa = <const floating*> d.wa
    cdef const floating* xt
    cdef const floating* wt
    cdef floating* ev
    cdef floating* od
    cdef floating* re
    cdef floating* im
    cdef floating a, b
    _folded_scratch(d, work, &ev, &od, &re, &im)
    for t in range(ns):
        base = _frame_span(d, t, T, &lo, &hi)
        xt = xr + base
        wt = wa + <Py_ssize_t> t * N
        if lo == 0 and hi == N:
            ev[t * (h + 1)] = xt[0] * wt[0]
            ev[t * (h + 1) + h] = xt[h] * wt[h]
            for n in range(1, h):
                a = xt[n] * wt[n]
                b = xt[N - n] * wt[N - n]
                ev[t * (h + 1) + n] = a + b
                od[t * (h - 1) + n - 1] = a - b
        else:   # frame overlapping an edge: zero outside [lo, hi)
            ev[t * (h + 1)] = xt[0] * wt[0] if lo <= 0 < hi else 0
            ev[t * (h + 1) + h] = xt[h] * wt[h] if lo <= h < hi else 0
            for n in range(1, h):
                a = xt[n] * wt[n] if lo <= n < hi else 0
                b = xt[N - n] * wt[N - n] if lo <= N - n < hi else 0
                ev[t * (h + 1) + n] = a + b
                od[t * (h - 1) + n - 1] = a - b
    gemm_rm(False, False, ns, nf, h + 1, <floating> 1.0, ev, h + 1,
            <const floating*> d.fa, nf, <floating> 0.0, re, nf)
    gemm_rm(False, False, ns, nf, h - 1, <floating> 1.0, od, h - 1,
            <const floating*> d.fa + <Py_ssize_t> (h + 1) * nf, nf,
            <floating> 0.0, im, nf)
    _interleave(re, im, zt, <Py_ssize_t> ns * nf)


cdef void stft_rows(const tf_plan* p, const floating* x, int n_rows, int ldx,
                    floating* z, int ldz, floating* work) noexcept nogil:
    """Analysis: z[r] = Phi(x[r]) for r < n_rows (each segment of a row on its
    own); work >= p.max_frames."""
    cdef int r, di, s
    cdef floating* zt
    cdef const floating* xs
    for r in range(n_rows):
        for s in range(p.n_segs):
            xs = x + <Py_ssize_t> r * ldx + <Py_ssize_t> s * p.seg_times
            for di in range(p.n_dicts):
                zt = (z + <Py_ssize_t> r * ldz
                      + 2 * (<Py_ssize_t> s * p.seg_coefs + p.d[di].coef_off))
                if p.d[di].folded:
                    _frames_folded(&p.d[di], xs, p.seg_times, zt, work)
                else:
                    _frames_plain(&p.d[di], xs, p.seg_times, zt, work)


cdef inline void _synth_plain(const tf_dict* d, const floating* zt, floating* xr,
                              int n_out, floating* work) noexcept nogil:
    """One dictionary, plain inverse real DFT, windowed overlap-add into xr."""
    cdef int t, n, lo, hi, base, N = d.wsize, ns = d.n_step, nf2 = 2 * d.n_freq
    cdef const floating* wsy = <const floating*> d.wsy
    gemm_rm(False, False, ns, N, nf2, <floating> 1.0, zt, nf2,
            <const floating*> d.fs, N, <floating> 0.0, work, N)
    for t in range(ns):
        base = _frame_span(d, t, n_out, &lo, &hi)
        for n in range(lo, hi):
            xr[base + n] += work[t * N + n] * wsy[t * N + n]


cdef inline void _synth_folded(const tf_dict* d, const floating* zt, floating* xr,
                               int n_out, floating* work) noexcept nogil:
    """One dictionary, folded inverse real DFT: real and imaginary parts split,
    two products giving the even and odd parts of each frame, unfolded,
    windowed and overlap-added into xr."""
    cdef int t, n, k, lo, hi, base, N = d.wsize, h = d.wsize // 2
    cdef int ns = d.n_step, nf = d.n_freq
    cdef const floating* wsy = <const floating*> d.wsy
    cdef const floating* wt
    cdef floating* xt
    cdef floating* ev
    cdef floating* od
    cdef floating* re
    cdef floating* im
    cdef floating a, b
    _folded_scratch(d, work, &ev, &od, &re, &im)
    _deinterleave(zt, re, im, <Py_ssize_t> ns * nf)
    gemm_rm(False, False, ns, h + 1, nf, <floating> 1.0, re, nf,
            <const floating*> d.fs, h + 1, <floating> 0.0, ev, h + 1)
    gemm_rm(False, False, ns, h - 1, nf, <floating> 1.0, im, nf,
            <const floating*> d.fs + <Py_ssize_t> nf * (h + 1), h - 1,
            <floating> 0.0, od, h - 1)
    for t in range(ns):
        base = _frame_span(d, t, n_out, &lo, &hi)
        xt = xr + base
        wt = wsy + <Py_ssize_t> t * N
        if lo == 0 and hi == N:
            xt[0] += ev[t * (h + 1)] * wt[0]
            xt[h] += ev[t * (h + 1) + h] * wt[h]
            for n in range(1, h):
                a = ev[t * (h + 1) + n]
                b = od[t * (h - 1) + n - 1]
                xt[n] += (a + b) * wt[n]
                xt[N - n] += (a - b) * wt[N - n]
        else:
            if lo <= 0 < hi:
                xt[0] += ev[t * (h + 1)] * wt[0]
            if lo <= h < hi:
                xt[h] += ev[t * (h + 1) + h] * wt[h]
            for n in range(1, h):
                a = ev[t * (h + 1) + n]
                b = od[t * (h - 1) + n - 1]
                if lo <= n < hi:
                    xt[n] += (a + b) * wt[n]
                if lo <= N - n < hi:
                    xt[N - n] += (a - b) * wt[N - n]


cdef void istft_rows(const tf_plan* p, const floating* z, int n_rows, int ldz,
                     floating* x, int ldx, int n_out, floating* work) noexcept nogil:
    """Synthesis: x[r, :n_out] = PhiT(z[r]); work >= p.max_frames. With several
    segments, each is synthesised on its own and ``n_out`` must be n_times."""
    cdef int r, di, n, s
    cdef int seg_out = n_out if p.n_segs == 1 else p.seg_times
    cdef floating* xr
    cdef const floating* zt
    for r in range(n_rows):
        for s in range(p.n_segs):
            xr = x + <Py_ssize_t> r * ldx + <Py_ssize_t> s * p.seg_times
            for n in range(seg_out):
                xr[n] = 0
            for di in range(p.n_dicts):
                zt = (z + <Py_ssize_t> r * ldz
                      + 2 * (<Py_ssize_t> s * p.seg_coefs + p.d[di].coef_off))
                if p.d[di].folded:
                    _synth_folded(&p.d[di], zt, xr, seg_out, work)
                else:
                    _synth_plain(&p.d[di], zt, xr, seg_out, work)
