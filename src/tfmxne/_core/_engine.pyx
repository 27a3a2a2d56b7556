# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Compiled engine of tfmxne.

Everything in the iteration loops lives here and runs without the GIL:

* the multi-dictionary STFT / ISTFT of a block of signals (a real DFT of the
  windowed frames as one BLAS ``gemm`` per signal and dictionary, overlap-add for
  the inverse), with the framing, windows and scaling of ``mne.time_frequency``;
* the composite prox of the L21 + L1 penalty on STFT coefficients;
* the epsilon-inf dual norm (exact, per position: one pass over the coefficients,
  then Newton steps on the piecewise-quadratic equation) and a cheap upper bound
  used to screen positions;
* block coordinate descent epochs over a working set, with the duality gap.

Coefficient layout (internal): for each signal row, the complex coefficients of
each dictionary are stored time-major, ``(n_step, n_freq)``, as interleaved real
and imaginary parts; dictionaries are concatenated. ``n_coefs`` counts complex
coefficients, a row holds ``2 * n_coefs`` reals. Multiplicities (1 for DC and
Nyquist, 2 otherwise) make the real inner product of two rows of coefficients
equal to that of the two-sided spectra, so that the frame is tight:
``istft(stft(x)) == x`` and ``||stft(x)||_mult == ||x||``.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt, fabs, isfinite, INFINITY
from libc.stdlib cimport qsort
from libc.string cimport memset, memcpy

from ._types cimport floating, tf_plan, tf_dict, eps_item, tf_info, TFX_MAX_DICTS
from ._types cimport TFX_OK, TFX_MAXIT, TFX_NONFINITE, TFX_BAD_ARG
from ._blas cimport gemm_rm, dot

cnp.import_array()

cdef extern from "_threads.h" nogil:
    ctypedef int tfx_thread   # opaque (pthread_t); only passed through
    int tfx_thread_start(tfx_thread* t, void* (*f)(void*) noexcept nogil, void* arg)
    int tfx_thread_join(tfx_thread t)
    void tfx_yield()
    long tfx_load(const long* p)
    void tfx_store(long* p, long v)


ctypedef struct pipe_ctx:
    # shared state of the two-thread sweep (see bcd_solve); counters are
    # published with release and read with acquire order
    const void* GT
    void* R
    const void* lc
    const void* xgram
    void* gbuf          # 2 slots of n_orient * T: G_j^T R / lc_j of the next visits
    void* dxbuf         # 2 slots of n_orient * T: X_new - X_old of the last visits
    int n_ws
    int n_orient
    int n_chan
    int T
    int n_vis           # blocks visited per epoch (lc > 0)
    int is_double
    long epoch_go       # epochs started by the main thread
    long helper_done    # epochs finished by the helper (last R update included)
    long g_ready        # visits whose gradient is published
    long dx_done        # visits whose update is published
    long quit
    int dx_zero[2]      # the update of the visit in that slot is zero

MAX_DICTS = TFX_MAX_DICTS
#: Smallest window computed with the folded (half-product) real DFT; below it
#: the plain DFT is faster (two small products cost more than one).
FOLD_MIN_WSIZE = 64


# --------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------
cdef class TFPlan:
    """Precomputed multi-dictionary STFT frame for signals of ``n_times`` samples.

    Parameters
    ----------
    n_times : int
        Number of time samples of the signals.
    wsizes, tsteps : sequence of int
        Window lengths and hops (already validated).
    dtype : numpy dtype
        float64 or float32.
    n_steps : sequence of int | None
        Number of frames per dictionary; default ``ceil(n_times / tstep)``.
    scale : float | None
        Scaling of every dictionary; default ``1 / sqrt(n_dicts)``.
    """

    cdef tf_plan plan
    cdef public object arrays
    cdef public object dtype
    cdef public tuple wsizes
    cdef public tuple tsteps
    cdef public tuple n_steps
    cdef public tuple n_freqs
    cdef public tuple folded
    cdef public int n_times
    cdef public int n_coefs

    def __init__(self, int n_times, wsizes, tsteps, dtype=np.float64,
                 n_steps=None, scale=None):
        cdef int i, n_d = len(wsizes)
        if n_d < 1 or n_d > TFX_MAX_DICTS:
            raise ValueError(f"between 1 and {TFX_MAX_DICTS} dictionaries are "
                             f"supported, got {n_d}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        if scale is None:
            scale = 1.0 / np.sqrt(n_d)
        self.arrays = []
        self.n_times = n_times
        self.wsizes = tuple(int(w) for w in wsizes)
        self.tsteps = tuple(int(t) for t in tsteps)
        if n_steps is None:
            n_steps = [int(np.ceil(n_times / float(t))) for t in self.tsteps]
        self.n_steps = tuple(int(s) for s in n_steps)
        self.n_freqs = tuple(w // 2 + 1 for w in self.wsizes)
        self.folded = tuple(w >= FOLD_MIN_WSIZE for w in self.wsizes)
        memset(&self.plan, 0, sizeof(tf_plan))
        self.plan.n_times = n_times
        self.plan.n_dicts = n_d
        self.plan.is_double = self.dtype == np.float64
        coef_off = 0
        max_frames = 0
        mults = []
        for i in range(n_d):
            N = self.wsizes[i]
            ts = self.tsteps[i]
            ns = self.n_steps[i]
            nf = N // 2 + 1
            n = np.arange(N)
            win = np.sin((n + 0.5) / N * np.pi)
            # sum of squared windows over the frames, on the padded axis
            s = np.zeros((ns - 1) * ts + N) if ns > 0 else np.zeros(N)
            for t in range(ns):
                s[t * ts:t * ts + N] += win ** 2
            idx = np.arange(ns)[:, None] * ts + n[None, :]
            sw = s[idx] if ns > 0 else np.zeros((0, N))
            with np.errstate(divide="ignore", invalid="ignore"):
                wa = win[None, :] / np.sqrt(N * sw) * scale
                wsy = win[None, :] / np.sqrt(sw / N) * scale
            # multiplicity of each frequency: 1 for DC and Nyquist, 2 otherwise
            c = np.full(nf, 2.0)
            c[0] = 1.0
            c[nf - 1] = 1.0
            folded = self.folded[i]
            if folded:
                # Real DFT of a frame folded around its middle: with
                # e[n] = x[n] + x[N - n] (e[0] = x[0], e[N/2] = x[N/2]) and
                # o[n] = x[n] - x[N - n] (0 < n < N/2), Re X_k = sum_n e[n] cos and
                # Im X_k = -sum_n o[n] sin: half the products of the plain DFT.
                # fa stacks the cosine ((N/2 + 1) x nf) and sine ((N/2 - 1) x nf)
                # analysis matrices; fs the synthesis ones (nf x (N/2 + 1) then
                # nf x (N/2 - 1)), which give the even and odd parts of a frame.
                h = N // 2
                ne = np.arange(h + 1)
                no = np.arange(1, h)
                k = np.arange(nf)
                # exact angle reduction for accuracy
                ang_e = 2.0 * np.pi * ((ne[:, None] * k[None, :]) % N) / N
                ang_o = 2.0 * np.pi * ((no[:, None] * k[None, :]) % N) / N
                fa = np.concatenate([np.cos(ang_e).ravel(), -np.sin(ang_o).ravel()])
                fs = np.concatenate([((c[:, None] / N) * np.cos(ang_e.T)).ravel(),
                                     (-(c[:, None] / N) * np.sin(ang_o.T)).ravel()])
            else:   # plain real DFT: (N, 2 nf) and (2 nf, N), interleaved
                # exact angle reduction for accuracy
                ang = 2.0 * np.pi * ((np.arange(nf)[None, :] * n[:, None]) % N) / N
                fa = np.empty((N, 2 * nf))
                fa[:, 0::2] = np.cos(ang)
                fa[:, 1::2] = -np.sin(ang)
                fa[:, 1] = 0.0
                fa[:, 2 * nf - 1] = 0.0
                fs = np.empty((2 * nf, N))
                fs[0::2] = (c[:, None] / N) * np.cos(ang.T)
                fs[1::2] = -(c[:, None] / N) * np.sin(ang.T)
                fs[1] = 0.0
                fs[2 * nf - 1] = 0.0
            arrs = [np.ascontiguousarray(a, dtype=self.dtype)
                    for a in (fa, fs, wa, wsy)]
            self.arrays.extend(arrs)
            self.plan.d[i].wsize = N
            self.plan.d[i].folded = folded
            self.plan.d[i].tstep = ts
            self.plan.d[i].n_step = ns
            self.plan.d[i].n_freq = nf
            self.plan.d[i].coef_off = coef_off
            self.plan.d[i].pad_off = (N - ts) // 2
            self.plan.d[i].fa = cnp.PyArray_DATA(arrs[0])
            self.plan.d[i].fs = cnp.PyArray_DATA(arrs[1])
            self.plan.d[i].wa = cnp.PyArray_DATA(arrs[2])
            self.plan.d[i].wsy = cnp.PyArray_DATA(arrs[3])
            self.plan.d[i].wa_max = float(np.sqrt((wa ** 2).sum(axis=1)).max()) \
                if ns > 0 else 0.0
            coef_off += ns * nf
            max_frames = max(max_frames, ns * (2 * N + 2) if folded else ns * N)
            mults.append(np.tile(c, ns))
        mult = np.ascontiguousarray(np.concatenate(mults), dtype=self.dtype)
        self.arrays.append(mult)
        self.plan.mult = cnp.PyArray_DATA(mult)
        self.plan.n_coefs = coef_off
        self.plan.max_frames = max(max_frames, 1)
        self.n_coefs = coef_off

    @property
    def max_frames(self):
        return self.plan.max_frames

    @property
    def multiplicity(self):
        return self.arrays[len(self.arrays) - 1]


# --------------------------------------------------------------------------
# STFT / ISTFT of rows (nogil)
# --------------------------------------------------------------------------
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
    """Analysis: z[r] = Phi(x[r]) for r < n_rows; work >= p.max_frames."""
    cdef int r, di
    cdef floating* zt
    for r in range(n_rows):
        for di in range(p.n_dicts):
            zt = z + <Py_ssize_t> r * ldz + 2 * p.d[di].coef_off
            if p.d[di].folded:
                _frames_folded(&p.d[di], x + <Py_ssize_t> r * ldx, p.n_times, zt, work)
            else:
                _frames_plain(&p.d[di], x + <Py_ssize_t> r * ldx, p.n_times, zt, work)


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
    """Synthesis: x[r, :n_out] = PhiT(z[r]); work >= p.max_frames."""
    cdef int r, di, n
    cdef floating* xr
    cdef const floating* zt
    for r in range(n_rows):
        xr = x + <Py_ssize_t> r * ldx
        for n in range(n_out):
            xr[n] = 0
        for di in range(p.n_dicts):
            zt = z + <Py_ssize_t> r * ldz + 2 * p.d[di].coef_off
            if p.d[di].folded:
                _synth_folded(&p.d[di], zt, xr, n_out, work)
            else:
                _synth_plain(&p.d[di], zt, xr, n_out, work)


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
                     const floating* wt, double thr_t, double thr_s) noexcept nogil:
    """In place: TF soft-threshold (per coefficient, across orientations) then
    group shrink (weighted l2 over the block). Returns whether Y is non-zero.

    Chunks of PROX_CHUNK coefficients, branch-free passes (magnitudes, shrink
    factors, scaling) so that the compiler vectorises them; the factor
    ``1 - t / max(a, t)`` is ``1 - t / a`` above the threshold and exactly 0
    at or below it."""
    cdef double a2[PROX_CHUNK]
    cdef double sh[PROX_CHUNK]
    cdef int q0, nq, q, o, K2 = 2 * p.n_coefs
    cdef double a, t, den, s, one, keep, acc = 0.0, nrm
    cdef const floating* mult = <const floating*> p.mult
    cdef floating* yo
    cdef Py_ssize_t i
    q0 = 0
    while q0 < p.n_coefs:
        nq = PROX_CHUNK if p.n_coefs - q0 > PROX_CHUNK else p.n_coefs - q0
        # squared magnitude of each coefficient across orientations
        yo = Y + 2 * q0
        for q in range(nq):
            a2[q] = <double> yo[2 * q] * yo[2 * q] + <double> yo[2 * q + 1] * yo[2 * q + 1]
        for o in range(1, n_orient):
            yo = Y + <Py_ssize_t> o * ldy + 2 * q0
            for q in range(nq):
                a2[q] += <double> yo[2 * q] * yo[2 * q] + <double> yo[2 * q + 1] * yo[2 * q + 1]
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
        return False
    s = 1.0 - thr_s / nrm
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
    coefficient magnitude bounded by Cauchy-Schwarz over each frame.
    csum: scratch of n_times + 1 doubles.
    """
    cdef int T = p.n_times, o, n, di, t, lo, hi, base
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
        for t in range(d.n_step):
            base = t * d.tstep - d.pad_off
            lo = base if base > 0 else 0
            hi = base + d.wsize if base + d.wsize < T else T
            if hi > lo:
                e = csum[hi] - csum[lo]
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
# Python-facing entry points (thin: buffers in, nogil loops)
# --------------------------------------------------------------------------
cdef _check_precision(TFPlan plan, bint is_double, str name):
    """The buffers' precision must be the plan's (its tables are read as such)."""
    if bool(plan.plan.is_double) != is_double:
        raise ValueError(f"{name}: {'float64' if is_double else 'float32'} buffers "
                         f"with a {plan.dtype} plan")


def stft(TFPlan plan, const floating[:, ::1] x, floating[:, ::1] z,
         floating[::1] work):
    """z[r] = Phi(x[r]) (internal layout)."""
    _check_precision(plan, floating is double, "stft")
    cdef const tf_plan* p = &plan.plan
    if x.shape[1] != p.n_times or z.shape[1] != 2 * p.n_coefs or \
            z.shape[0] != x.shape[0] or work.shape[0] < p.max_frames:
        raise ValueError("stft: inconsistent buffer sizes")
    if x.shape[0] == 0:
        return
    with nogil:
        stft_rows(p, &x[0, 0], <int> x.shape[0], <int> x.shape[1],
                  &z[0, 0], <int> z.shape[1], &work[0])


def istft(TFPlan plan, const floating[:, ::1] z, floating[:, ::1] x,
          floating[::1] work):
    """x[r] = PhiT(z[r]) (internal layout); x may be shorter than n_times."""
    _check_precision(plan, floating is double, "istft")
    cdef const tf_plan* p = &plan.plan
    if z.shape[1] != 2 * p.n_coefs or z.shape[0] != x.shape[0] or \
            work.shape[0] < p.max_frames:
        raise ValueError("istft: inconsistent buffer sizes")
    if x.shape[0] == 0 or x.shape[1] == 0:
        return
    with nogil:
        istft_rows(p, &z[0, 0], <int> z.shape[0], <int> z.shape[1],
                   &x[0, 0], <int> x.shape[1], <int> x.shape[1], &work[0])


def eps_norms(TFPlan plan, const floating[:, ::1] Y, int n_orient, double rho,
              const floating[::1] w_space=None, const floating[:, ::1] w_time=None):
    """Epsilon norm of each position from its coefficients (internal layout)."""
    _check_precision(plan, floating is double, "eps_norms")
    cdef const tf_plan* p = &plan.plan
    cdef int n_pos = Y.shape[0] // n_orient, j
    cdef double[::1] out = np.zeros(n_pos)
    cdef double[::1] scratch = np.empty(2 * max(p.n_coefs, 1))
    cdef eps_item* items = <eps_item*> &scratch[0]
    cdef const floating* wt_j
    cdef double ws_j
    if Y.shape[1] != 2 * p.n_coefs:
        raise ValueError("eps_norms: inconsistent buffer sizes")
    with nogil:
        for j in range(n_pos):
            wt_j = &w_time[j, 0] if w_time is not None else NULL
            ws_j = w_space[j] if w_space is not None else 1.0
            out[j] = eps_norm_block(p, &Y[j * n_orient, 0], n_orient,
                                    <int> Y.shape[1], wt_j, ws_j, rho, items)
    return np.asarray(out)


def prox(TFPlan plan, floating[:, ::1] Y, int n_orient, double thr_t, double thr_s,
         const floating[:, ::1] w_time=None):
    """In place L21 + L1 prox of each position's coefficients (internal layout).

    ``thr_t``: time threshold (times ``w_time[j]`` per coefficient if given, a
    zero weight zeroing the coefficient); ``thr_s``: group threshold. Returns
    the mask of positions left non-zero.
    """
    _check_precision(plan, floating is double, "prox")
    cdef const tf_plan* p = &plan.plan
    cdef int n_pos, j
    if n_orient < 1 or Y.shape[0] % n_orient or Y.shape[1] != 2 * p.n_coefs:
        raise ValueError("prox: inconsistent buffer sizes")
    n_pos = Y.shape[0] // n_orient
    if w_time is not None and (w_time.shape[0] != n_pos or w_time.shape[1] != p.n_coefs):
        raise ValueError("prox: w_time must have shape (n_positions, n_coefs)")
    cdef unsigned char[::1] nz = np.zeros(n_pos, dtype=np.uint8)
    if n_pos == 0:
        return np.zeros(0, dtype=bool)
    with nogil:
        for j in range(n_pos):
            nz[j] = prox_block(p, &Y[j * n_orient, 0], n_orient, <int> Y.shape[1],
                               &w_time[j, 0] if w_time is not None else NULL,
                               thr_t, thr_s)
    return np.asarray(nz).astype(bool)


def penalties(TFPlan plan, const floating[:, ::1] Z, int n_orient,
              const floating[:, ::1] w_time=None):
    """Per-position weighted l2 norms and (time-weighted) l1 norms."""
    _check_precision(plan, floating is double, "penalties")
    cdef const tf_plan* p = &plan.plan
    cdef int n_pos = Z.shape[0] // n_orient, j
    cdef double[::1] l21 = np.zeros(n_pos)
    cdef double[::1] l1 = np.zeros(n_pos)
    with nogil:
        for j in range(n_pos):
            penalty_block(p, &Z[j * n_orient, 0], n_orient, <int> Z.shape[1],
                          &w_time[j, 0] if w_time is not None else NULL,
                          &l21[j], &l1[j])
    return np.asarray(l21), np.asarray(l1)


def screen_bounds(TFPlan plan, const floating[:, ::1] GtR, int n_orient, double rho,
                  const floating[::1] w_space=None, const floating[:, ::1] w_time=None,
                  const floating[:, ::1] GtR_prev=None, const double[::1] nu_prev=None):
    """Cheap upper bound on the epsilon norm of Phi(GtR_j) for every position.

    First phase of :func:`dual_norm_screened` (see there for ``GtR_prev`` and
    ``nu_prev``); no STFT is computed.
    """
    _check_precision(plan, floating is double, "screen_bounds")
    cdef const tf_plan* p = &plan.plan
    cdef int T = p.n_times
    cdef int n_pos = GtR.shape[0] // n_orient, j, k, q
    cdef double[::1] ub = np.zeros(n_pos)
    cdef double[::1] csum = np.empty(T + 1)
    cdef double w_min, ws_j, ubd
    cdef floating[:, ::1] dbuf = np.empty((n_orient, T), dtype=plan.dtype)
    cdef bint track = GtR_prev is not None and nu_prev is not None
    cdef Py_ssize_t r0
    if GtR.shape[1] != T or (track and (
            GtR_prev.shape[0] != GtR.shape[0] or GtR_prev.shape[1] != T
            or nu_prev.shape[0] != n_pos)) or (
            w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != p.n_coefs)):
        raise ValueError("screen_bounds: inconsistent buffer sizes")
    with nogil:
        for j in range(n_pos):
            ws_j = w_space[j] if w_space is not None else 1.0
            w_min = 1.0
            if w_time is not None:
                w_min = INFINITY
                for q in range(p.n_coefs):
                    if w_time[j, q] > 0 and w_time[j, q] < w_min:
                        w_min = w_time[j, q]
                if w_min == INFINITY:
                    ub[j] = 0.0   # every coefficient is held at zero
                    continue
            ub[j] = eps_upper_bound(p, &GtR[j * n_orient, 0], n_orient, T, ws_j,
                                    w_min, rho, &csum[0])
            if track and nu_prev[j] < ub[j]:
                r0 = <Py_ssize_t> j * n_orient
                for q in range(n_orient):
                    for k in range(T):
                        dbuf[q, k] = GtR[r0 + q, k] - GtR_prev[r0 + q, k]
                ubd = nu_prev[j] + eps_upper_bound(p, &dbuf[0, 0], n_orient, T, ws_j,
                                                   w_min, rho, &csum[0])
                if ubd < ub[j]:
                    ub[j] = ubd
    return np.asarray(ub)


def screen_eval(TFPlan plan, const floating[:, ::1] GtR, int n_orient, double rho,
                const floating[::1] w_space, const floating[:, ::1] w_time,
                const Py_ssize_t[::1] order, double[::1] nu, unsigned char[::1] exact,
                int n_min=0, double alpha=0.0, Py_ssize_t n_max=-1):
    """Exact epsilon norms along ``order`` until a stopping rule; second phase of
    :func:`dual_norm_screened`.

    ``nu`` holds the upper bounds on entry, ``order`` visits positions by
    decreasing bound; each evaluated position gets its exact value in ``nu`` and
    ``exact[j] = 1``. Only the entries listed in ``order`` are read or written,
    so calls on disjoint orders may run in parallel threads on shared arrays
    (the GIL is released). Returns ``(best, rest)``: the largest exact value
    and the largest bound left unevaluated along ``order``.
    """
    _check_precision(plan, floating is double, "screen_eval")
    cdef const tf_plan* p = &plan.plan
    cdef int T = p.n_times
    cdef int n_pos = GtR.shape[0] // n_orient, j, n_eval = 0
    cdef Py_ssize_t k
    cdef double best = 0.0, rest = 0.0, ub_j, ws_j
    cdef floating[:, ::1] Y = np.empty((n_orient, 2 * p.n_coefs), dtype=plan.dtype)
    cdef floating[::1] work = np.empty(p.max_frames, dtype=plan.dtype)
    cdef double[::1] scratch = np.empty(2 * max(p.n_coefs, 1))
    cdef eps_item* items = <eps_item*> &scratch[0]
    cdef const floating* wt_j
    if GtR.shape[1] != T or nu.shape[0] != n_pos or exact.shape[0] != n_pos or (
            w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != p.n_coefs)):
        raise ValueError("screen_eval: inconsistent buffer sizes")
    for k in range(order.shape[0]):
        if order[k] < 0 or order[k] >= n_pos:
            raise ValueError("screen_eval: position index out of range")
    with nogil:
        for k in range(order.shape[0]):
            j = <int> order[k]
            ub_j = nu[j]
            if ub_j <= 0.0:
                break
            # below alpha: neither a violator nor a change of the dual scaling;
            # below best: no change of the scaling, still a candidate violator
            if ub_j <= alpha or (ub_j <= best and n_eval >= n_min):
                rest = ub_j
                break
            if n_max >= 0 and n_eval >= n_max:
                rest = ub_j
                break
            stft_rows(p, &GtR[j * n_orient, 0], n_orient, T, &Y[0, 0],
                      2 * p.n_coefs, &work[0])
            wt_j = &w_time[j, 0] if w_time is not None else NULL
            ws_j = w_space[j] if w_space is not None else 1.0
            nu[j] = eps_norm_block(p, &Y[0, 0], n_orient, 2 * p.n_coefs, wt_j,
                                   ws_j, rho, items)
            exact[j] = 1
            n_eval += 1
            if nu[j] > best:
                best = nu[j]
    return best, rest


def dual_norm_screened(TFPlan plan, const floating[:, ::1] GtR, int n_orient,
                       double rho, const floating[::1] w_space=None,
                       const floating[:, ::1] w_time=None, int n_min=0,
                       double alpha=0.0, Py_ssize_t n_max=-1,
                       const floating[:, ::1] GtR_prev=None,
                       const double[::1] nu_prev=None):
    """Exact max over positions of the epsilon norm of Phi(GtR_j), with screening.

    Positions are visited in decreasing order of a cheap upper bound; the loop
    stops once the bound of the next position is at most ``alpha`` (no
    remaining position violates the optimality conditions or changes the dual
    scaling ``min(1, alpha / nu)``), or at most ``best`` once ``n_min`` positions
    were evaluated (the remaining ones cannot change the scaling; ``n_min`` asks
    for enough exact violators to grow a working set), or when ``n_max``
    positions were evaluated (``n_max < 0``: no cap).

    With ``GtR_prev`` and ``nu_prev`` (upper bounds on the epsilon norms at
    ``GtR_prev``, same weights), the bound of each position is also capped by
    ``nu_prev_j + bound(GtR_j - GtR_prev_j)`` (triangle inequality of the norm):
    once the residual changes little between calls, few positions need an STFT.

    Returns
    -------
    nu_max : float
        Max of the exact values (``alpha = 0`` and no cap: the dual norm).
    nu_rest : float
        Largest bound among the positions not evaluated (0 if none); the dual
        norm is at most ``max(nu_max, nu_rest)``, a valid value for a gap.
    nu : ndarray, shape (n_positions,)
        Exact values where evaluated, the upper bound elsewhere.
    exact : ndarray of bool
        Which entries of ``nu`` are exact.
    """
    _check_precision(plan, floating is double, "dual_norm_screened")
    cdef int n_pos = GtR.shape[0] // n_orient
    if n_pos == 0:
        if GtR.shape[1] != plan.plan.n_times:
            raise ValueError("dual_norm_screened: inconsistent buffer sizes")
        return 0.0, 0.0, np.zeros(0), np.zeros(0, bool)
    nu = screen_bounds(plan, GtR, n_orient, rho, w_space, w_time, GtR_prev, nu_prev)
    order = np.argsort(-nu, kind="stable").astype(np.intp)
    exact = np.zeros(n_pos, dtype=np.uint8)
    best, rest = screen_eval(plan, GtR, n_orient, rho, w_space, w_time, order, nu,
                             exact, n_min, alpha, n_max)
    return best, rest, nu, exact.astype(bool)


# --------------------------------------------------------------------------
# Block coordinate descent on a working set
# --------------------------------------------------------------------------
cdef enum:
    N_EXTRAP = 4   # extrapolation steps t = 1, 2, 4, 8 tried at each gap evaluation


cdef double ws_dual_norm(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                         const floating* GT, const floating* R, const floating* dR,
                         const floating* wsp, const floating* wt, double rho,
                         floating* gtr, floating* Y, floating* gd, floating* Yd,
                         floating* frames, eps_item* items, double* nu_t) noexcept nogil:
    """Dual norm of ``G_ws^T R`` over the working set (returned) and, if ``dR`` is
    not NULL, of ``G_ws^T (R + t dR)`` for ``t = 2^k``, ``k < N_EXTRAP`` (``nu_t``).

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
        gemm_rm(False, False, n_orient, T, n_chan, <floating> 1.0,
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
        gemm_rm(False, False, n_orient, T, n_chan, <floating> 1.0,
                GT + <Py_ssize_t> j * n_orient * n_chan, n_chan, dR, T,
                <floating> 0.0, gd, T)
        stft_rows(p, gd, n_orient, T, Yd, K2, frames)
        for k in range(N_EXTRAP):
            t = <double> (1 << k)
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


cdef inline void _wait_at_least(long* p, long v) noexcept nogil:
    """Spin until the counter at p reaches v (yielding the CPU now and then)."""
    cdef int spins = 0
    while tfx_load(p) < v:
        spins += 1
        if spins >= 64:
            tfx_yield()
            spins = 0


cdef void _helper_epoch(pipe_ctx* c, long e, const floating* GT, floating* R,
                        const floating* lc, const floating* xg, floating* gb,
                        const floating* dxb) noexcept nogil:
    """Helper side of one two-thread epoch: the sensor-space products.

    For each visited block j (visit k): g_k = G_j^T R / lc_j with R lacking only
    the update of the previous visit, then corrected by the 3 x 3 cross Gram
    ``G_j^T G_prev`` once that update is published (exact: R - G_prev dX), then R
    itself is updated while the main thread works on block j.
    """
    cdef int j, prev = -1, no = c.n_orient, nc = c.n_chan, T = c.T, pz = 1
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> no * T
    cdef floating* g
    cdef const floating* dx = dxb
    for j in range(c.n_ws):
        if lc[j] <= 0:
            continue
        g = gb + (k & 1) * blk
        gemm_rm(False, False, no, T, nc, <floating> (1.0 / lc[j]),
                GT + <Py_ssize_t> j * no * nc, nc, R, T, <floating> 0.0, g, T)
        pz = 1
        if prev >= 0:
            _wait_at_least(&c.dx_done, k)
            pz = c.dx_zero[(k - 1) & 1]
            dx = dxb + ((k - 1) & 1) * blk
            if not pz:
                gemm_rm(False, False, no, T, no, <floating> (-1.0 / lc[j]),
                        xg + <Py_ssize_t> j * no * no, no, dx, T, <floating> 1.0, g, T)
        tfx_store(&c.g_ready, k + 1)
        if prev >= 0 and not pz:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dx, T, <floating> 1.0, R, T)
        prev = j
        k += 1
    if prev >= 0:
        _wait_at_least(&c.dx_done, k)
        if not c.dx_zero[(k - 1) & 1]:
            gemm_rm(True, False, nc, T, no, <floating> -1.0,
                    GT + <Py_ssize_t> prev * no * nc, nc, dxb + ((k - 1) & 1) * blk,
                    T, <floating> 1.0, R, T)
    tfx_store(&c.helper_done, e + 1)


cdef void* _helper_main(void* arg) noexcept nogil:
    """Helper thread: one helper epoch per epoch started, until told to quit."""
    cdef pipe_ctx* c = <pipe_ctx*> arg
    cdef long e = 0
    cdef int spins
    while True:
        spins = 0
        while tfx_load(&c.epoch_go) <= e and not tfx_load(&c.quit):
            spins += 1
            if spins >= 64:
                tfx_yield()
                spins = 0
        if tfx_load(&c.epoch_go) <= e:
            break
        if c.is_double:
            _helper_epoch(c, e, <const double*> c.GT, <double*> c.R,
                          <const double*> c.lc, <const double*> c.xgram,
                          <double*> c.gbuf, <const double*> c.dxbuf)
        else:
            _helper_epoch(c, e, <const float*> c.GT, <float*> c.R,
                          <const float*> c.lc, <const float*> c.xgram,
                          <float*> c.gbuf, <const float*> c.dxbuf)
        e += 1
    return NULL


cdef int _main_epoch(const tf_plan* p, pipe_ctx* c, long e, int n_ws, int n_orient,
                     floating* X, floating* Z, unsigned char* active,
                     const floating* lc, const floating* wsp, const floating* wt,
                     double alpha_s, double alpha_t, floating* Y, floating* xnew,
                     floating* frames, const floating* gb,
                     floating* dxb) noexcept nogil:
    """Main side of one two-thread epoch: STFT, prox and ISTFT of each block from
    the gradient the helper publishes; returns whether the support changed."""
    cdef int j, T = p.n_times, changed = 0
    cdef long k = e * c.n_vis
    cdef Py_ssize_t blk = <Py_ssize_t> n_orient * T
    cdef const floating* gtr
    cdef floating* dx
    cdef double lcj, thr_s, thr_t, dn
    cdef bint nz
    tfx_store(&c.epoch_go, e + 1)
    for j in range(n_ws):
        lcj = lc[j]
        if lcj <= 0:
            continue
        _wait_at_least(&c.g_ready, k + 1)
        gtr = gb + (k & 1) * blk
        dx = dxb + (k & 1) * blk
        thr_s = alpha_s * (wsp[j] if wsp != NULL else 1.0) / lcj
        thr_t = alpha_t / lcj
        dn = 0.0
        if active[j] or sqrt(dot(<int> blk, gtr, gtr)) > thr_s:
            dn = _prox_step(p, j, n_orient, gtr, X, Z, active, wt, thr_t, thr_s, Y,
                            xnew, frames, dx, &changed, &nz)
        c.dx_zero[k & 1] = dn == 0.0
        tfx_store(&c.dx_done, k + 1)
        k += 1
    _wait_at_least(&c.helper_done, e + 1)
    return changed


cdef void bcd_solve(const tf_plan* p, int n_ws, int n_orient, int n_chan,
                    const floating* GT, const floating* M, floating* R,
                    floating* X, floating* Z, unsigned char* active,
                    const floating* lc, const floating* wsp, const floating* wt,
                    double alpha_s, double alpha_t, int maxit, double tol,
                    int dgap_freq, floating* work, eps_item* items,
                    double* obj_hist, int max_hist, tf_info* info,
                    int anderson_k, floating* snap, Py_ssize_t cap_rows,
                    const floating* gram, int n_inner, int gap_start,
                    const floating* xgram, floating* pipe, floating* rprev,
                    double* extrap) noexcept nogil:
    """Block coordinate descent on a working set until the gap < tol.

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
                gemm_rm(False, False, n_orient, T, n_chan, <floating> (1.0 / lcj),
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
                              Y, xnew, Yd, frames, items, nu_t)
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


def work_size(TFPlan plan, int n_orient):
    """Scratch length needed by :func:`bcd`."""
    return 3 * n_orient * (plan.n_times + 2 * plan.n_coefs) + plan.plan.max_frames


def snap_size(TFPlan plan, int anderson_k, Py_ssize_t cap_rows, int n_chan):
    """Scratch length needed for Anderson acceleration in :func:`bcd`."""
    K2 = 2 * plan.n_coefs
    return ((anderson_k + 2) * cap_rows * (K2 + plan.n_times)
            + (anderson_k + 1) * n_chan * plan.n_times
            + 4 * (anderson_k + 1) ** 2 + 64)


def bcd(TFPlan plan, const floating[:, ::1] GT, const floating[:, ::1] M,
        floating[:, ::1] R, floating[:, ::1] X, floating[:, ::1] Z,
        unsigned char[::1] active, const floating[::1] lc,
        const floating[::1] w_space, const floating[:, ::1] w_time,
        double alpha_space, double alpha_time, int n_orient, int maxit,
        double tol, int dgap_freq, floating[::1] work, int anderson_k=0,
        floating[::1] snap=None, Py_ssize_t cap_rows=0,
        const floating[:, :, ::1] gram=None, int n_inner=1, int gap_start=0,
        const floating[:, :, ::1] xgram=None, int n_threads=1,
        floating[:, ::1] rprev=None, double[::1] extrap=None):
    """Run :c:func:`bcd_solve` on a working set; arrays are updated in place.

    ``n_threads >= 2`` with ``xgram`` (cross Grams, see ``bcd_solve``) and
    ``n_inner == 1``: two-thread sweeps. ``rprev`` ((n_chan, T)) and ``extrap``
    (2 doubles, ``extrap[0] = 0`` at the start of a solve): dual extrapolation,
    state carried between calls (see ``bcd_solve``).

    Returns ``(status, n_iter, gap, p_obj, d_obj, n_active, obj_history,
    (n_accel_try, n_accel))``: the last pair counts the Anderson extrapolations
    tried and accepted.
    """
    _check_precision(plan, floating is double, "bcd")
    cdef const tf_plan* p = &plan.plan
    cdef int n_ws = active.shape[0], n_chan = M.shape[0], T = p.n_times
    cdef int K2 = 2 * p.n_coefs
    cdef tf_info info
    cdef int max_hist = maxit if maxit > 0 else 1
    cdef double[::1] hist = np.zeros(max_hist)
    cdef double[::1] scratch = np.empty(2 * max(p.n_coefs, 1))
    if (GT.shape[0] != n_ws * n_orient or GT.shape[1] != n_chan or M.shape[1] != T
            or R.shape[0] != n_chan or R.shape[1] != T
            or X.shape[0] != n_ws * n_orient or X.shape[1] != T
            or Z.shape[0] != n_ws * n_orient or Z.shape[1] != K2
            or lc.shape[0] != n_ws
            or (w_space is not None and w_space.shape[0] != n_ws)
            or (w_time is not None and (w_time.shape[0] != n_ws
                                        or w_time.shape[1] != p.n_coefs))
            or work.shape[0] < work_size(plan, n_orient)
            or gram is None or gram.shape[0] != n_ws or gram.shape[1] != n_orient
            or gram.shape[2] != n_orient or n_inner < 1
            or (anderson_k > 0 and (snap is None or snap.shape[0] < snap_size(
                plan, anderson_k, cap_rows, n_chan)))
            or (xgram is not None and (xgram.shape[0] != n_ws
                                       or xgram.shape[1] != n_orient
                                       or xgram.shape[2] != n_orient))
            or (rprev is None) != (extrap is None)
            or (rprev is not None and (rprev.shape[0] != n_chan or rprev.shape[1] != T
                                       or extrap.shape[0] < 2
                                       or extrap[0] not in (0.0, 1.0, 2.0)))):
        return (<int> TFX_BAD_ARG, 0, np.inf, np.inf, -np.inf, 0, np.zeros(0), (0, 0))
    cdef floating[::1] pipe = None
    if n_threads >= 2 and xgram is not None and n_inner == 1 and n_ws >= 2:
        pipe = np.empty(4 * n_orient * T, dtype=plan.dtype)
    memset(&info, 0, sizeof(tf_info))
    if n_ws == 0:
        return (<int> TFX_OK, 0, 0.0, 0.5 * float(np.sum(np.square(M))),
                0.5 * float(np.sum(np.square(M))), 0, np.zeros(0), (0, 0))
    with nogil:
        bcd_solve(p, n_ws, n_orient, n_chan, &GT[0, 0], &M[0, 0], &R[0, 0],
                  &X[0, 0], &Z[0, 0], &active[0], &lc[0],
                  &w_space[0] if w_space is not None else NULL,
                  &w_time[0, 0] if w_time is not None else NULL,
                  alpha_space, alpha_time, maxit, tol, dgap_freq, &work[0],
                  <eps_item*> &scratch[0], &hist[0], max_hist, &info,
                  anderson_k if snap is not None else 0,
                  &snap[0] if snap is not None else NULL, cap_rows, &gram[0, 0, 0],
                  n_inner, gap_start,
                  &xgram[0, 0, 0] if pipe is not None else NULL,
                  &pipe[0] if pipe is not None else NULL,
                  &rprev[0, 0] if rprev is not None else NULL,
                  &extrap[0] if extrap is not None else NULL)
    return (info.status, info.n_iter, info.gap, info.p_obj, info.d_obj,
            info.n_active, np.asarray(hist)[:info.n_obj].copy(),
            (info.n_accel_try, info.n_accel))
