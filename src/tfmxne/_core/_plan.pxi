# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The plan of the multi-dictionary frame: its header, the layout of its tables in
# one buffer, and the tables themselves. One definition of each, used by
# TFPlan (Python), tfx_plan_new (the C API) and the float32 copy of the mixed
# solve (plan_copy_f32).
# (included by _engine.pyx: shares its imports and types)

cdef enum:
    # Smallest window computed with the folded (half-product) real DFT; below
    # it the plain DFT is faster (two small products cost more than one).
    FOLD_MIN_WSIZE = 64


cdef int plan_header(tf_plan* p, int n_times, int n_dicts, const int* wsizes,
                     const int* tsteps, const int* n_steps, int is_double,
                     int n_segs) noexcept nogil:
    """Sizes and offsets of a plan (no tables yet) for segments of ``n_times``
    samples, ``n_segs`` of them per row; ``n_steps`` NULL: ``ceil(n_times /
    tstep)`` frames. Returns TFX_OK or TFX_BAD_ARG."""
    cdef int i, N, ts, ns, nf, coef_off = 0, max_frames = 0, fr
    cdef tf_dict* d
    memset(p, 0, sizeof(tf_plan))
    if n_dicts < 1 or n_dicts > TFX_MAX_DICTS or n_times < 0 or n_segs < 1:
        return TFX_BAD_ARG
    p.n_times = n_times
    p.n_dicts = n_dicts
    p.is_double = 1 if is_double else 0
    for i in range(n_dicts):
        N = wsizes[i]
        ts = tsteps[i]
        if N < 4 or ts < 1:
            return TFX_BAD_ARG
        ns = n_steps[i] if n_steps != NULL else (n_times + ts - 1) // ts
        nf = N // 2 + 1
        d = &p.d[i]
        d.wsize = N
        d.folded = 1 if N >= FOLD_MIN_WSIZE else 0
        d.tstep = ts
        d.n_step = ns
        d.n_freq = nf
        d.coef_off = coef_off
        d.pad_off = (N - ts) // 2
        coef_off += ns * nf
        fr = ns * (2 * N + 2) if d.folded else ns * N
        if fr > max_frames:
            max_frames = fr
    p.n_segs = n_segs
    p.seg_times = n_times
    p.seg_coefs = coef_off
    p.n_times = n_segs * n_times
    p.n_coefs = n_segs * coef_off
    p.max_frames = max_frames if max_frames > 1 else 1
    return TFX_OK


cdef inline Py_ssize_t plan_table_size(const tf_dict* d, int k) noexcept nogil:
    """Elements of table ``k`` of a dictionary: 0 analysis DFT, 1 synthesis DFT,
    2 analysis windows, 3 synthesis windows."""
    if k < 2:
        return (1 if d.folded else 2) * <Py_ssize_t> d.wsize * d.n_freq
    return <Py_ssize_t> d.n_step * d.wsize


cdef Py_ssize_t plan_n_elements(const tf_plan* p) noexcept nogil:
    """Elements of the plan's table buffer."""
    cdef Py_ssize_t n = p.n_coefs
    cdef int i, k
    for i in range(p.n_dicts):
        for k in range(4):
            n += plan_table_size(&p.d[i], k)
    return n


cdef void plan_bind(tf_plan* p, char* buf, Py_ssize_t itemsize) noexcept nogil:
    """Point the plan's tables into ``buf`` (plan_n_elements elements of
    ``itemsize`` bytes): per dictionary fa, fs, wa, wsy, then mult."""
    cdef Py_ssize_t off = 0
    cdef int i
    cdef tf_dict* d
    for i in range(p.n_dicts):
        d = &p.d[i]
        d.fa = buf + off * itemsize
        off += plan_table_size(d, 0)
        d.fs = buf + off * itemsize
        off += plan_table_size(d, 1)
        d.wa = buf + off * itemsize
        off += plan_table_size(d, 2)
        d.wsy = buf + off * itemsize
        off += plan_table_size(d, 3)
    p.mult = buf + off * itemsize


cdef void _round_f32(const void* src, void* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        (<float*> dst)[i] = <float> (<const double*> src)[i]


cdef void plan_copy_f32(const tf_plan* p, tf_plan* q, float* buf) noexcept nogil:
    """``q``: the float64 plan ``p`` with its tables rounded to float32 into
    ``buf`` (``plan_n_elements(p)`` floats)."""
    cdef int i
    memcpy(q, p, sizeof(tf_plan))
    q.is_double = 0
    plan_bind(q, <char*> buf, sizeof(float))
    for i in range(p.n_dicts):
        _round_f32(p.d[i].fa, q.d[i].fa, plan_table_size(&p.d[i], 0))
        _round_f32(p.d[i].fs, q.d[i].fs, plan_table_size(&p.d[i], 1))
        _round_f32(p.d[i].wa, q.d[i].wa, plan_table_size(&p.d[i], 2))
        _round_f32(p.d[i].wsy, q.d[i].wsy, plan_table_size(&p.d[i], 3))
    _round_f32(p.mult, q.mult, p.n_coefs)


cdef int plan_segmented(const tf_plan* p, int n_segs, tf_plan* q,
                        void* mult) noexcept nogil:
    """``q``: the one-segment plan ``p`` for rows of ``n_segs`` segments (its
    tables shared, the multiplicities tiled into ``mult``: n_segs p.n_coefs
    elements of the plan's precision). Returns TFX_OK or TFX_BAD_ARG."""
    cdef int s
    cdef size_t nb = p.n_coefs * (sizeof(double) if p.is_double else sizeof(float))
    if p.n_segs != 1 or n_segs < 1:
        return TFX_BAD_ARG
    memcpy(q, p, sizeof(tf_plan))
    q.n_segs = n_segs
    q.n_times = n_segs * p.seg_times
    q.n_coefs = n_segs * p.seg_coefs
    for s in range(n_segs):
        memcpy(<char*> mult + s * nb, p.mult, nb)
    q.mult = mult
    return TFX_OK


def _plan_tables(tuple wsizes, tuple tsteps, tuple n_steps, tuple folded, double scale,
                 int n_segs=1):
    """The float64 tables of a plan, in the order of :c:func:`plan_bind`, and the
    largest analysis-window norm of each dictionary."""
    tables, wa_max, mults = [], [], []
    for N, ts, ns, fold in zip(wsizes, tsteps, n_steps, folded):
        nf = N // 2 + 1
        n = np.arange(N)
        win = np.sin((n + 0.5) / N * np.pi)
        # sum of squared windows over the frames, on the padded axis
        s = np.zeros((ns - 1) * ts + N) if ns > 0 else np.zeros(N)
        for t in range(ns):
            s[t * ts : t * ts + N] += win**2
        idx = np.arange(ns)[:, None] * ts + n[None, :]
        sw = s[idx] if ns > 0 else np.zeros((0, N))
        with np.errstate(divide="ignore", invalid="ignore"):
            wa = win[None, :] / np.sqrt(N * sw) * scale
            wsy = win[None, :] / np.sqrt(sw / N) * scale
        # multiplicity of each frequency: 1 for DC and Nyquist, 2 otherwise
        c = np.full(nf, 2.0)
        c[0] = 1.0
        c[nf - 1] = 1.0
        if fold:
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
            fs = np.concatenate([
                ((c[:, None] / N) * np.cos(ang_e.T)).ravel(),
                (-(c[:, None] / N) * np.sin(ang_o.T)).ravel(),
            ])
        else:  # plain real DFT: (N, 2 nf) and (2 nf, N), interleaved
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
        tables += [fa, fs, wa, wsy]
        wa_max.append(float(np.sqrt((wa**2).sum(axis=1)).max()) if ns > 0 else 0.0)
        mults.append(np.tile(c, ns))
    tables.append(np.tile(np.concatenate(mults), n_segs))
    return tables, wa_max


cdef object plan_fill(tf_plan* p, char* buf, object dtype, object scale):
    """Compute the tables of the plan ``p`` (its header set by plan_header) into
    ``buf`` (plan_n_elements elements of ``dtype``) and bind them; ``scale``
    (None: ``1 / sqrt(n_dicts)``) multiplies every dictionary."""
    cdef int i
    cdef Py_ssize_t off = 0, nb
    cdef const unsigned char[::1] raw
    dtype = np.dtype(dtype)
    nd = range(p.n_dicts)
    tables, wa_max = _plan_tables(
        tuple([p.d[i].wsize for i in nd]), tuple([p.d[i].tstep for i in nd]),
        tuple([p.d[i].n_step for i in nd]), tuple([p.d[i].folded != 0 for i in nd]),
        1.0 / np.sqrt(p.n_dicts) if scale is None else float(scale), p.n_segs)
    for a in tables:
        a = np.ascontiguousarray(a, dtype=dtype).reshape(-1)
        nb = a.nbytes
        if nb:
            raw = a.view(np.uint8)
            memcpy(buf + off, &raw[0], nb)
        off += nb
    plan_bind(p, buf, dtype.itemsize)
    for i in range(p.n_dicts):
        p.d[i].wa_max = wa_max[i]


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
    n_segments : int
        Segments (conditions) of ``n_times`` samples side by side in a row, each
        framed on its own; the plan's ``n_times`` and ``n_coefs`` count a row.
    """

    cdef tf_plan plan
    cdef object _buf
    cdef public object dtype
    cdef public tuple wsizes
    cdef public tuple tsteps
    cdef public tuple n_steps
    cdef public tuple n_freqs
    cdef public tuple folded
    cdef public int n_times
    cdef public int n_coefs
    cdef public int n_segments
    cdef public int seg_times
    cdef public int seg_coefs

    def __init__(self, int n_times, wsizes, tsteps, dtype=np.float64, n_steps=None,
                 scale=None, int n_segments=1):
        cdef int i, n_d = len(wsizes)
        cdef int ws[TFX_MAX_DICTS]
        cdef int ts[TFX_MAX_DICTS]
        cdef int ns[TFX_MAX_DICTS]
        if n_d < 1 or n_d > TFX_MAX_DICTS:
            raise ValueError(
                f"between 1 and {TFX_MAX_DICTS} dictionaries are supported, got {n_d}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        for i in range(n_d):
            ws[i] = wsizes[i]
            ts[i] = tsteps[i]
            if n_steps is not None:
                ns[i] = n_steps[i]
        if plan_header(&self.plan, n_times, n_d, ws, ts,
                       ns if n_steps is not None else NULL,
                       self.dtype == np.float64, n_segments) != TFX_OK:
            raise ValueError("TFPlan: invalid sizes")
        self._buf = np.empty(plan_n_elements(&self.plan), dtype=self.dtype)
        plan_fill(&self.plan, <char*> cnp.PyArray_DATA(self._buf), self.dtype, scale)
        self.n_times = self.plan.n_times
        self.n_coefs = self.plan.n_coefs
        self.n_segments = self.plan.n_segs
        self.seg_times = self.plan.seg_times
        self.seg_coefs = self.plan.seg_coefs
        self.wsizes = tuple(self.plan.d[i].wsize for i in range(n_d))
        self.tsteps = tuple(self.plan.d[i].tstep for i in range(n_d))
        self.n_steps = tuple(self.plan.d[i].n_step for i in range(n_d))
        self.n_freqs = tuple(self.plan.d[i].n_freq for i in range(n_d))
        self.folded = tuple(bool(self.plan.d[i].folded) for i in range(n_d))

    @property
    def max_frames(self):
        return self.plan.max_frames

    @property
    def multiplicity(self):
        """Multiplicity of each complex coefficient (1 for DC and Nyquist, else 2)."""
        return self._buf[self._buf.shape[0] - self.plan.n_coefs:]
