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
from libc.float cimport FLT_EPSILON
from libc.stdlib cimport qsort, malloc, calloc, realloc, free
from libc.string cimport memset, memcpy

from ._types cimport (floating, tf_plan, tf_dict, eps_item, tf_info, bcd_args,
                      tf_problem, TFX_MAX_DICTS, TFX_OK, TFX_MAXIT, TFX_NONFINITE,
                      TFX_BAD_ARG, TFX_NO_MEMORY, TFX_INTERRUPTED, tfx_params_t,
                      tfx_info_t, tfx_outer_t, tfx_result_t, tfx_progress_fn)
from ._blas cimport gemm_rm, gemm_rm_slim, dot
from scipy.linalg.cython_lapack cimport dsyev, dposv

cnp.import_array()

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
# Solvers (nogil): the two-thread sweep, Anderson acceleration, block
# coordinate descent on a working set, and the working-set solve
# --------------------------------------------------------------------------
include "_two_thread.pxi"
include "_anderson.pxi"
include "_bcd.pxi"
include "_solve.pxi"


cdef tfx_params_t _DEFAULTS
tfx_params_default(&_DEFAULTS)


# --------------------------------------------------------------------------
# Python-facing entry points (thin: buffers in, nogil loops)
# --------------------------------------------------------------------------
cdef _check_precision(TFPlan plan, bint is_double, str name):
    """The buffers' precision must be the plan's (its tables are read as such)."""
    if bool(plan.plan.is_double) != is_double:
        raise ValueError(f"{name}: {'float64' if is_double else 'float32'} buffers "
                         f"with a {plan.dtype} plan")


def stft(TFPlan plan not None, const floating[:, ::1] x, floating[:, ::1] z,
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


def istft(TFPlan plan not None, const floating[:, ::1] z, floating[:, ::1] x,
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


def eps_norms(TFPlan plan not None, const floating[:, ::1] Y, int n_orient, double rho,
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


def prox(TFPlan plan not None, floating[:, ::1] Y, int n_orient, double thr_t, double thr_s,
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


def penalties(TFPlan plan not None, const floating[:, ::1] Z, int n_orient,
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


cdef _check_screen_args(TFPlan plan, const floating[:, ::1] GtR, int n_orient,
                        const floating[::1] w_space, const floating[:, ::1] w_time,
                        str name):
    _check_precision(plan, floating is double, name)
    if n_orient < 1 or GtR.shape[0] % n_orient or GtR.shape[1] != plan.plan.n_times:
        raise ValueError(f"{name}: inconsistent buffer sizes")
    n_pos = GtR.shape[0] // n_orient
    if (w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != plan.plan.n_coefs)):
        raise ValueError(f"{name}: inconsistent buffer sizes")
    return n_pos


cdef class _Scratch:
    """Per-thread scratch of the screening (see ``thr_scratch``)."""
    cdef thr_scratch scr[TFX_MAX_THREADS]
    cdef object bufs

    def __init__(self, TFPlan plan, int n_orient, int n_thr):
        cdef const tf_plan* p = &plan.plan
        cdef int i
        self.bufs = []
        for i in range(n_thr):
            Y = np.empty(n_orient * 2 * p.n_coefs + 1, dtype=plan.dtype)
            fr = np.empty(p.max_frames + 1, dtype=plan.dtype)
            db = np.empty(n_orient * p.n_times + 1, dtype=plan.dtype)
            cs = np.empty(p.n_times + 1)
            it = np.empty(2 * max(p.n_coefs, 1))
            self.bufs.append((Y, fr, db, cs, it))
            self.scr[i].Y = cnp.PyArray_DATA(Y)
            self.scr[i].frames = cnp.PyArray_DATA(fr)
            self.scr[i].dbuf = cnp.PyArray_DATA(db)
            self.scr[i].csum = <double*> cnp.PyArray_DATA(cs)
            self.scr[i].items = <eps_item*> cnp.PyArray_DATA(it)


def dual_norm_screened(TFPlan plan not None, const floating[:, ::1] GtR, int n_orient,
                       double rho, const floating[::1] w_space=None,
                       const floating[:, ::1] w_time=None, int n_min=0,
                       double alpha=0.0, Py_ssize_t n_max=-1,
                       const floating[:, ::1] GtR_prev=None,
                       const double[::1] nu_prev=None, int n_threads=1):
    """Exact max over positions of the epsilon norm of Phi(GtR_j), with screening
    (:c:func:`dual_norm_screened_c`, the routine of the solver).

    Positions are visited in decreasing order of a cheap upper bound; the visit
    stops once the bound of the next position is at most ``alpha`` (no
    remaining position violates the optimality conditions or changes the dual
    scaling ``min(1, alpha / nu)``), or at most ``best`` once ``n_min`` positions
    were evaluated, or when ``n_max`` positions were evaluated (``n_max < 0``:
    no cap). With ``GtR_prev`` and ``nu_prev`` (upper bounds at ``GtR_prev``,
    same weights) each bound is also capped by ``nu_prev_j + bound(GtR_j -
    GtR_prev_j)`` (triangle inequality). ``n_threads``: threads of the core (the
    result does not depend on it).

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
    cdef int n_pos = _check_screen_args(plan, GtR, n_orient, w_space, w_time,
                                        "dual_norm_screened")
    cdef bint track = GtR_prev is not None and nu_prev is not None
    if track and (GtR_prev.shape[0] != GtR.shape[0] or GtR_prev.shape[1] != GtR.shape[1]
                  or nu_prev.shape[0] != n_pos):
        raise ValueError("dual_norm_screened: inconsistent buffer sizes")
    if n_pos == 0:
        return 0.0, 0.0, np.zeros(0), np.zeros(0, bool)
    cdef int n_thr = max(1, min(n_threads, TFX_MAX_THREADS))
    cdef double best, rest
    cdef double[::1] nu = np.empty(n_pos)
    cdef unsigned char[::1] exact = np.zeros(n_pos, dtype=np.uint8)
    order = np.empty(2 * n_pos, dtype=np.float64)   # room for n_pos sort_items
    cdef double[::1] ov = order
    cdef _Scratch s = _Scratch(plan, n_orient, n_thr)
    cdef int chunk = _DEFAULTS.screen_chunk
    with nogil:
        dual_norm_screened_c(&plan.plan, &GtR[0, 0], n_pos, n_orient, rho,
                             &w_space[0] if w_space is not None else NULL,
                             &w_time[0, 0] if w_time is not None else NULL,
                             n_min, alpha, n_max, &GtR_prev[0, 0] if track else NULL,
                             &nu_prev[0] if track else NULL, n_thr, chunk, s.scr,
                             <sort_item*> &ov[0], &nu[0], &exact[0], &best, &rest)
    return best, rest, np.asarray(nu), np.asarray(exact).astype(bool)


def lipschitz(const floating[:, ::1] G, int n_orient):
    """Per-position Lipschitz constants ``||G_j^T G_j||_2`` (the solver's)."""
    if n_orient < 1 or G.shape[1] % n_orient:
        raise ValueError("lipschitz: n_orient must divide the columns of G")
    n_pos = G.shape[1] // n_orient
    out = np.empty(n_pos, dtype=np.float64 if floating is double else np.float32)
    cdef floating[::1] lc = out
    cdef int st = 0
    if n_pos == 0 or G.shape[0] == 0:
        out[:] = 0
        return out
    with nogil:
        st = lipschitz_c(&G[0, 0], <int> G.shape[0], <int> G.shape[1], n_orient, &lc[0])
    if st != 0:
        raise MemoryError("lipschitz: out of memory")
    return out




def work_size(TFPlan plan not None, int n_orient):
    """Scratch length needed by :func:`bcd`."""
    return bcd_work_size(&plan.plan, n_orient)


def snap_size(TFPlan plan not None, int anderson_k, Py_ssize_t cap_rows, int n_chan):
    """Scratch length needed for Anderson acceleration in :func:`bcd`."""
    return bcd_snap_size(&plan.plan, anderson_k, cap_rows, n_chan)


def bcd(TFPlan plan not None, const floating[:, ::1] GT, const floating[:, ::1] M,
        floating[:, ::1] R, floating[:, ::1] X, floating[:, ::1] Z,
        unsigned char[::1] active, const floating[::1] lc,
        const floating[::1] w_space, const floating[:, ::1] w_time,
        double alpha_space, double alpha_time, int n_orient, int maxit,
        double tol, int dgap_freq, floating[::1] work, int anderson_k=0,
        floating[::1] snap=None, Py_ssize_t cap_rows=0,
        const floating[:, :, ::1] gram=None, int n_inner=1, int gap_start=0,
        const floating[:, :, ::1] xgram=None, int n_threads=1,
        floating[:, ::1] rprev=None, double[::1] extrap=None):
    """Run the inner solver :c:func:`bcd_solve` on a working set (for tests of
    the kernel: the solver itself runs it from :c:func:`tf_solve`); arrays are
    updated in place.

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
    cdef bcd_args a
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
    memset(&a, 0, sizeof(bcd_args))
    a.n_ws = n_ws
    a.n_orient = n_orient
    a.n_chan = n_chan
    a.GT = &GT[0, 0]
    a.M = &M[0, 0]
    a.R = &R[0, 0]
    a.X = &X[0, 0]
    a.Z = &Z[0, 0]
    a.active = &active[0]
    a.lc = &lc[0]
    a.wsp = &w_space[0] if w_space is not None else NULL
    a.wt = &w_time[0, 0] if w_time is not None else NULL
    a.gram = &gram[0, 0, 0]
    a.xgram = &xgram[0, 0, 0] if pipe is not None else NULL
    a.alpha_s = alpha_space
    a.alpha_t = alpha_time
    a.tol = tol
    a.maxit = maxit
    a.dgap_freq = dgap_freq
    a.gap_start = gap_start
    a.n_inner = n_inner
    a.anderson_k = anderson_k if snap is not None else 0
    a.cap_rows = cap_rows
    a.work = &work[0]
    a.items = <eps_item*> &scratch[0]
    a.snap = &snap[0] if snap is not None else NULL
    a.pipe = &pipe[0] if pipe is not None else NULL
    a.rprev = &rprev[0, 0] if rprev is not None else NULL
    a.extrap = &extrap[0] if extrap is not None else NULL
    a.hist = &hist[0]
    a.max_hist = max_hist
    with nogil:
        bcd_solve(p, &a, &info)
    return (info.status, info.n_iter, info.gap, info.p_obj, info.d_obj,
            info.n_active, np.asarray(hist)[:info.n_obj].copy(),
            (info.n_accel_try, info.n_accel))


# --------------------------------------------------------------------------
# The solve (Python wrapper of tf_solve)
# --------------------------------------------------------------------------
#: Status codes of the core (``tfmxne/cython_types.pxd``), for Python callers.
STATUS_OK = <int> TFX_OK
STATUS_MAXIT = <int> TFX_MAXIT
STATUS_NONFINITE = <int> TFX_NONFINITE
STATUS_BAD_ARG = <int> TFX_BAD_ARG
STATUS_NO_MEMORY = <int> TFX_NO_MEMORY
STATUS_INTERRUPTED = <int> TFX_INTERRUPTED
STATUS_NAMES = {STATUS_OK: "converged", STATUS_MAXIT: "iteration cap reached",
                STATUS_NONFINITE: "non-finite values", STATUS_BAD_ARG: "bad arguments",
                STATUS_NO_MEMORY: "out of memory",
                STATUS_INTERRUPTED: "interrupted by the progress callback"}

def default_params():
    """The solver's default options (``tfx_params_default``), as a dict."""
    cdef tfx_params_t prm
    tfx_params_default(&prm)
    return {"tol": prm.tol, "maxit": prm.maxit, "dgap_freq": prm.dgap_freq,
            "max_outer": prm.max_outer, "stall_outer": prm.stall_outer,
            "stop_gap_ratio": prm.stop_gap_ratio, "ws_start": prm.ws_start,
            "n_inner": prm.n_inner, "inner_tol_ratio": prm.inner_tol_ratio,
            "inner_gap_frac": prm.inner_gap_frac,
            "inner_gap_start": prm.inner_gap_start,
            "complete_tol_ratio": prm.complete_tol_ratio,
            "anderson_k": prm.anderson_k, "anderson_start": prm.anderson_start,
            "dual_extrap": prm.dual_extrap, "dual_refine": prm.dual_refine,
            "mixed": prm.mixed, "mixed_tol_ratio": prm.mixed_tol_ratio,
            "n_threads": prm.n_threads,
            "pipe_min_blocks": prm.pipe_min_blocks,
            "screen_chunk": prm.screen_chunk}


cdef int _progress_trampoline(void* ctx, int n_outer, double gap,
                              int n_active) noexcept nogil:
    with gil:
        return _call_progress(<list> ctx, n_outer, gap, n_active)


cdef int _call_progress(list holder, int n_outer, double gap, int n_active):
    try:
        holder[0](n_outer, gap, n_active)
        return 0
    except BaseException as exc:   # re-raised by solve() after the core returns
        holder[1] = exc
        return 1


cdef object _rows(void* ptr, Py_ssize_t n_rows, Py_ssize_t n_cols, object dtype):
    """A numpy copy of a core result array."""
    out = np.empty((n_rows, n_cols), dtype=dtype)
    if n_rows * n_cols:
        memcpy(cnp.PyArray_DATA(out), ptr, n_rows * n_cols * out.itemsize)
    return out


def solve(TFPlan plan not None, const floating[:, ::1] M, const floating[:, ::1] G,
          double alpha_space, double alpha_time, int n_orient, *,
          const floating[::1] lc=None, const floating[::1] w_space=None,
          const floating[:, ::1] w_time=None, init_positions=None,
          const floating[:, ::1] Z_init=None, screen_init=None, progress=None,
          **options):
    """Run the core's solve (:c:func:`tf_solve`) on arrays.

    ``options``: any field of :func:`default_params` (tol, maxit, n_threads, ...).
    ``w_time`` is in the internal coefficient order; ``Z_init`` rows (internal
    layout) belong to ``init_positions``; ``screen_init = (G^T M, nu, exact)``
    from :func:`dual_norm_screened` at ``R = M`` (unweighted). ``progress``:
    ``progress(n_outer, gap, n_active)`` after every outer certificate; an
    exception it raises stops the solve and is raised here.

    Returns
    -------
    out : dict
        ``status``, ``positions``, ``Z``, ``X``, ``R``, ``theta``, ``obj`` (primal
        objective at each gap evaluation), ``outer`` (one record per outer
        iteration), and the fields of the info struct (``gap``, ``p_obj``,
        ``d_obj``, ``n_iter``, ``n_outer``, ``n_active``, ``stalled``, ...).
    """
    _check_precision(plan, floating is double, "solve")
    cdef const tf_plan* p = &plan.plan
    cdef tfx_params_t prm
    cdef tf_problem pb
    cdef tfx_result_t res
    cdef tfx_info_t info
    cdef int st, i, n_pos, K2 = 2 * p.n_coefs, T = p.n_times
    cdef int[::1] init_v
    cdef const floating[:, ::1] gtr_v
    cdef double[::1] nu_v
    cdef unsigned char[::1] ex_v
    tfx_params_default(&prm)
    prm.alpha_space = alpha_space
    prm.alpha_time = alpha_time
    prm.n_orient = n_orient
    for key, val in options.items():
        set_param(&prm, key, val)
    if M.shape[0] != G.shape[0] or M.shape[1] != T or n_orient < 1 or \
            G.shape[1] % n_orient:
        raise ValueError("solve: inconsistent buffer sizes")
    n_pos = G.shape[1] // n_orient
    if (lc is not None and lc.shape[0] != n_pos) or (
            w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != p.n_coefs)):
        raise ValueError("solve: inconsistent buffer sizes")
    memset(&pb, 0, sizeof(tf_problem))
    pb.n_chan = M.shape[0]
    pb.n_sources = G.shape[1]
    pb.M = &M[0, 0]
    pb.G = &G[0, 0]
    pb.lc = &lc[0] if lc is not None else NULL
    pb.w_space = &w_space[0] if w_space is not None else NULL
    pb.w_time = &w_time[0, 0] if w_time is not None else NULL
    if init_positions is not None and len(init_positions):
        init_arr = np.ascontiguousarray(init_positions, dtype=np.intc)
        init_v = init_arr
        if Z_init is None or Z_init.shape[0] != init_arr.shape[0] * n_orient or \
                Z_init.shape[1] != K2:
            raise ValueError("solve: Z_init must have n_orient rows per initial "
                             "position and 2 * n_coefs columns")
        pb.n_init = init_arr.shape[0]
        pb.init_pos = &init_v[0]
        pb.Z_init = &Z_init[0, 0]
    if screen_init is not None:
        gtr_v = screen_init[0]
        nu_v = np.ascontiguousarray(screen_init[1], dtype=np.float64)
        ex_v = np.ascontiguousarray(screen_init[2], dtype=np.uint8)
        if gtr_v.shape[0] != G.shape[1] or gtr_v.shape[1] != T or \
                nu_v.shape[0] != n_pos or ex_v.shape[0] != n_pos:
            raise ValueError("solve: screen_init does not match the problem")
        pb.screen_gtr = &gtr_v[0, 0]
        pb.screen_nu = &nu_v[0]
        pb.screen_exact = &ex_v[0]
    holder = [progress, None]
    if progress is not None:
        prm.progress = _progress_trampoline
        prm.progress_ctx = <void*> holder
    with nogil:
        st = tf_solve(p, &prm, &pb, &res, &info)
    dtype = plan.dtype
    n_chan = M.shape[0]
    try:
        out = dict(info)
        out["status"] = st
        out["positions"] = np.array([res.positions[i] for i in range(res.n_active)],
                                    dtype=np.intp)
        out["Z"] = _rows(res.Z, res.n_active * n_orient, K2, dtype)
        out["X"] = _rows(res.X, res.n_active * n_orient, T, dtype)
        if res.R != NULL:
            out["R"] = _rows(res.R, n_chan, T, dtype)
            out["theta"] = _rows(res.theta, n_chan, T, dtype)
        out["obj"] = [res.obj[i] for i in range(res.n_obj)]
        out["debias"] = None if res.debias == NULL else np.array(
            [res.debias[i] for i in range(res.n_active)])
        out["outer"] = [res.outer[i] for i in range(res.n_outer)]
    finally:
        tfx_result_clear(&res)
    if holder[1] is not None:
        raise holder[1]
    return out


cdef int set_param(tfx_params_t* prm, str key, object value) except -1:
    """Set the option ``key`` (a field of :func:`default_params`) of ``prm``; the
    one place that maps option names to the struct (the C API's test hook too)."""
    if key == "tol": prm.tol = float(value)
    elif key == "stop_gap_ratio": prm.stop_gap_ratio = float(value)
    elif key == "inner_tol_ratio": prm.inner_tol_ratio = float(value)
    elif key == "inner_gap_frac": prm.inner_gap_frac = float(value)
    elif key == "complete_tol_ratio": prm.complete_tol_ratio = float(value)
    elif key == "maxit": prm.maxit = int(value)
    elif key == "dgap_freq": prm.dgap_freq = int(value)
    elif key == "max_outer": prm.max_outer = int(value)
    elif key == "stall_outer": prm.stall_outer = int(value)
    elif key == "ws_start": prm.ws_start = int(value)
    elif key == "n_inner": prm.n_inner = int(value)
    elif key == "inner_gap_start": prm.inner_gap_start = int(value)
    elif key == "anderson_k": prm.anderson_k = int(value)
    elif key == "anderson_start": prm.anderson_start = int(value)
    elif key == "dual_extrap": prm.dual_extrap = int(value)
    elif key == "dual_refine": prm.dual_refine = int(value)
    elif key == "mixed": prm.mixed = int(value)
    elif key == "mixed_tol_ratio": prm.mixed_tol_ratio = float(value)
    elif key == "n_threads": prm.n_threads = int(value)
    elif key == "pipe_min_blocks": prm.pipe_min_blocks = int(value)
    elif key == "screen_chunk": prm.screen_chunk = int(value)
    elif key == "debias": prm.debias = int(value)
    else:
        raise TypeError(f"unknown solver option {key!r}")
    return 0


def gtr(const floating[:, ::1] G, const floating[:, ::1] R, int n_threads=1):
    """``G^T R`` (C-contiguous) by the core's threads over blocks of sources."""
    if G.shape[0] != R.shape[0]:
        raise ValueError("gtr: G and R must have the same number of rows")
    out = np.zeros((G.shape[1], R.shape[1]),
                   dtype=np.float64 if floating is double else np.float32)
    cdef floating[:, ::1] o = out
    cdef int n_thr = max(1, min(n_threads, TFX_MAX_THREADS))
    if out.size == 0 or G.shape[0] == 0:
        return out
    with nogil:
        gtr_all(&G[0, 0], &R[0, 0], <int> G.shape[0], <int> G.shape[1],
                <int> R.shape[1], &o[0, 0], n_thr, _DEFAULTS.screen_chunk)
    return out


def block_grams(const floating[:, ::1] GT, int n_orient, const floating[::1] lc=None):
    """Block Gram matrices of a working set from rows of G^T (the solver's):
    ``(gram, xgram)`` with ``gram[j] = G_j^T G_j`` and, if ``lc`` is given, the
    cross Grams ``xgram[j] = G_j^T G_i`` of the two-thread sweep (``i``: the
    block visited before ``j``, blocks with ``lc <= 0`` skipped), else None."""
    if n_orient < 1 or GT.shape[0] % n_orient:
        raise ValueError("block_grams: n_orient must divide the rows of GT")
    n_ws = GT.shape[0] // n_orient
    if lc is not None and lc.shape[0] != n_ws:
        raise ValueError("block_grams: lc must have one entry per block")
    dtype = np.float64 if floating is double else np.float32
    gram = np.zeros((n_ws, n_orient, n_orient), dtype=dtype)
    xgram = None if lc is None else np.zeros((n_ws, n_orient, n_orient), dtype=dtype)
    cdef floating[:, :, ::1] g = gram
    cdef floating[:, :, ::1] xg = xgram
    if n_ws == 0:
        return gram, xgram
    with nogil:
        block_grams_c(&GT[0, 0], n_ws, n_orient, <int> GT.shape[1],
                    &lc[0] if lc is not None else NULL, &g[0, 0, 0],
                    &xg[0, 0, 0] if lc is not None else NULL)
    return gram, xgram


def debias(const floating[:, ::1] M, const floating[:, ::1] G_A,
           const floating[:, ::1] X, int n_orient):
    """Debiasing weights (:c:func:`debias_c`, the solver's) of the rows ``X`` of
    the columns ``G_A``; returns ``(d, status)``, ``d`` of shape (n_rows,)
    (each position's weight repeated over its orientations)."""
    if n_orient < 1 or G_A.shape[1] % n_orient or X.shape[0] != G_A.shape[1] or \
            M.shape[0] != G_A.shape[0] or M.shape[1] != X.shape[1]:
        raise ValueError("debias: inconsistent shapes")
    cdef int n_b = G_A.shape[1] // n_orient, st = TFX_OK
    cdef int[::1] pos = np.arange(n_b, dtype=np.intc)
    cdef double[::1] d = np.ones(n_b)
    if n_b == 0 or M.shape[0] == 0:
        return np.ones(0), int(st)
    with nogil:
        st = debias_c(&M[0, 0], &G_A[0, 0], <int> M.shape[0], <int> G_A.shape[1],
                      <int> M.shape[1], n_orient, &pos[0], n_b, &X[0, 0], &d[0])
    if st == TFX_NO_MEMORY:
        raise MemoryError("debias: out of memory")
    return np.repeat(np.asarray(d), n_orient), int(st)
