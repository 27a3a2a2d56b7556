# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Test hooks: the core's kernels and the C API on NumPy arrays (private).

Not used by the package itself: the tests check the kernels through these, and
``benchmarks/bench_tail.py`` runs the inner solver one epoch at a time.
"""

import numpy as np

cimport numpy as cnp
from libc.string cimport memcpy, memset

from tfmxne._core._engine cimport (
    _lawson_hanson,
    bcd_snap_size,
    bcd_solve,
    bcd_work_size,
    block_grams_c,
    momentum_bind,
    momentum_size,
    eps_norm_block,
    pen_init,
    plan_of,
    prox_block,
    result_dict,
)
from tfmxne._core._types cimport (
    eps_item,
    floating,
    tf_anderson,
    tf_bcd_opts,
    tf_extrap,
    tf_info,
    tf_momentum,
    tf_pipe,
    tf_pipe_pick,
    tf_plan,
    tf_ws,
)
from tfmxne.cython_tfmxne cimport (
    d_tf_mxne_solve,
    s_tf_mxne_solve,
    tfx_info_init,
    tfx_info_t,
    tfx_params_init,
    tfx_params_t,
    tfx_plan_free,
    tfx_plan_new,
    tfx_plan_t,
    tfx_result_free,
    tfx_result_init,
    tfx_result_t,
    tfx_stft_work_size,
    TFX_MAX_DICTS,
)

from tfmxne._validation import check_wsize_tstep

cnp.import_array()


# --------------------------------------------------------------------------
# Kernels of the penalty
# --------------------------------------------------------------------------
def eps_norms(plan, const floating[:, ::1] Y, int n_orient, double rho,
              const floating[::1] w_space=None, const floating[:, ::1] w_time=None):
    """Epsilon norm of each position from its coefficients (internal layout)."""
    cdef const tf_plan* p = plan_of(plan, floating is double, "eps_norms")
    cdef int n_pos = Y.shape[0] // n_orient, j
    cdef double[::1] out = np.zeros(n_pos)
    cdef double[::1] scratch = np.empty(2 * max(p.n_coefs, 1))
    cdef eps_item* items = <eps_item*> &scratch[0]
    if Y.shape[1] != 2 * p.n_coefs:
        raise ValueError("eps_norms: inconsistent buffer sizes")
    with nogil:
        for j in range(n_pos):
            out[j] = eps_norm_block(p, &Y[j * n_orient, 0], n_orient, <int> Y.shape[1],
                                    &w_time[j, 0] if w_time is not None else NULL,
                                    w_space[j] if w_space is not None else 1.0, rho,
                                    items)
    return np.asarray(out)


def prox(plan, floating[:, ::1] Y, int n_orient, double thr_t, double thr_s,
         const floating[:, ::1] w_time=None, bint norms=False):
    """In place L21 + L1 prox of each position's coefficients (internal layout).

    ``thr_t``: time threshold (times ``w_time[j]`` per coefficient if given, a
    zero weight zeroing the coefficient); ``thr_s``: group threshold. Returns
    the mask of positions left non-zero, and with ``norms`` the (n_positions, 2)
    l2 and (time-weighted) l1 norms of the results the prox reports.
    """
    cdef const tf_plan* p = plan_of(plan, floating is double, "prox")
    cdef int n_pos, j
    if n_orient < 1 or Y.shape[0] % n_orient or Y.shape[1] != 2 * p.n_coefs:
        raise ValueError("prox: inconsistent buffer sizes")
    n_pos = Y.shape[0] // n_orient
    if w_time is not None and (w_time.shape[0] != n_pos or w_time.shape[1] != p.n_coefs):
        raise ValueError("prox: w_time must have shape (n_positions, n_coefs)")
    cdef unsigned char[::1] nz = np.zeros(n_pos, dtype=np.uint8)
    cdef double[:, ::1] nv = np.zeros((n_pos, 2))
    if n_pos == 0:
        return np.zeros(0, dtype=bool)
    with nogil:
        for j in range(n_pos):
            nz[j] = prox_block(p, &Y[j * n_orient, 0], n_orient, <int> Y.shape[1],
                               &w_time[j, 0] if w_time is not None else NULL,
                               thr_t, thr_s, &nv[j, 0] if norms else NULL)
    if norms:
        return np.asarray(nz).astype(bool), np.asarray(nv)
    return np.asarray(nz).astype(bool)


# --------------------------------------------------------------------------
# The inner solver
# --------------------------------------------------------------------------
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


def work_size(plan, int n_orient):
    """Scratch length needed by :func:`bcd`."""
    return bcd_work_size(plan_of(plan, plan.dtype == np.float64, "work_size"), n_orient)


def snap_size(plan, int anderson_k, Py_ssize_t cap_rows, int n_chan):
    """Scratch length needed for Anderson acceleration in :func:`bcd`."""
    return bcd_snap_size(plan_of(plan, plan.dtype == np.float64, "snap_size"),
                         anderson_k, cap_rows, n_chan)


cdef void* _ptr(object a):
    return cnp.PyArray_DATA(a) if a is not None else NULL


def bcd(plan, dict arrays, **opts):
    """Run the inner solver :c:func:`bcd_solve` on a working set; the arrays are
    updated in place (the solver runs it from :c:func:`tf_solve`).

    ``arrays``: C-contiguous arrays of the plan's precision: ``GT`` (n_ws o,
    n_chan), ``M`` and ``R`` (n_chan, T), ``X`` (n_ws o, T), ``Z`` (n_ws o, 2K),
    ``active`` (n_ws,) uint8, ``lc`` (n_ws,), ``gram`` (n_ws, o, o), ``work``
    (:func:`work_size`); optional ``w_space``, ``w_time``, ``xgram`` (cross
    Grams: with ``n_threads >= 2``, the two-thread sweep), ``snap``
    (:func:`snap_size`, with ``anderson_k``), ``rprev`` (n_chan, T: dual
    extrapolation, its state in ``opts['extrap_state']``, carried by the
    caller). ``opts``: alpha_space, alpha_time, n_orient, maxit, tol, dgap_freq,
    and optional anderson_k, cap_rows, n_inner, gap_start, n_threads,
    extrap_state, spin_us, momentum (1: momentum with adaptive restart,
    "no-restart": plain momentum, which may raise the objective), pipe (how a
    two-thread sweep runs its epochs: "auto", the solver's timed choice;
    "two", always both threads; "alone", always the main thread alone;
    "probe", both threads with the main thread alone at each probe).

    Returns a dict: status, n_iter, gap, p_obj, d_obj, n_active, obj (primal
    objective at each gap check), n_accel_try, n_accel, n_restart,
    extrap_state, t_best.
    """
    M = arrays["M"]
    is_double = M.dtype == np.float64
    cdef const tf_plan* p = plan_of(plan, is_double, "bcd")
    cdef tf_ws w
    cdef tf_bcd_opts o
    cdef tf_anderson an
    cdef tf_extrap ex
    cdef tf_pipe pp
    cdef tf_pipe_pick pol
    cdef tf_momentum mo
    cdef tf_info info
    cdef int n_orient = opts["n_orient"], maxit = opts["maxit"]
    dtype = M.dtype
    n_ws = arrays["active"].shape[0]
    n_chan, T = M.shape
    shapes = dict(GT=(n_ws * n_orient, n_chan), M=(n_chan, T), R=(n_chan, T),
                  X=(n_ws * n_orient, T), Z=(n_ws * n_orient, 2 * p.n_coefs),
                  lc=(n_ws,), gram=(n_ws, n_orient, n_orient),
                  w_space=(n_ws,), w_time=(n_ws, p.n_coefs),
                  xgram=(n_ws, n_orient, n_orient), rprev=(n_chan, T))
    for key, shape in shapes.items():
        a = arrays.get(key)
        if a is not None and (a.shape != shape or a.dtype != dtype
                              or not a.flags.c_contiguous):
            raise ValueError(f"bcd: {key} must be C-contiguous {dtype} of shape "
                             f"{shape}")
    if T != p.n_times or arrays["work"].shape[0] < bcd_work_size(p, n_orient):
        raise ValueError("bcd: inconsistent sizes")
    hist = np.zeros(max(maxit, 1))
    memset(&w, 0, sizeof(w))
    pen_init(&w.pen, p, n_orient, opts["alpha_space"], opts["alpha_time"],
             _ptr(arrays.get("w_space")), _ptr(arrays.get("w_time")))
    w.n_ws = n_ws
    w.n_chan = n_chan
    w.GT = _ptr(arrays["GT"])
    w.M = _ptr(M)
    w.R = _ptr(arrays["R"])
    w.X = _ptr(arrays["X"])
    w.Z = _ptr(arrays["Z"])
    w.active = <unsigned char*> _ptr(arrays["active"])
    w.lc = _ptr(arrays["lc"])
    w.gram = _ptr(arrays["gram"])
    w.work = _ptr(arrays["work"])
    items = np.empty(2 * max(p.n_coefs, 1))
    w.items = <eps_item*> _ptr(items)
    o.tol = opts["tol"]
    o.maxit = maxit
    o.dgap_freq = opts["dgap_freq"]
    o.gap_start = opts.get("gap_start", 0)
    o.n_inner = opts.get("n_inner", 1)
    an.k = opts.get("anderson_k", 0)
    an.cap_rows = opts.get("cap_rows", 0)
    snap = arrays.get("snap")
    if an.k > 0 and (snap is None or snap.shape[0] < bcd_snap_size(p, an.k, an.cap_rows,
                                                                   n_chan)):
        raise ValueError("bcd: snap too small for anderson_k and cap_rows")
    an.snap = _ptr(snap)
    ex.rprev = _ptr(arrays.get("rprev"))
    ex.state = opts.get("extrap_state", 0)
    ex.t_best = 0.0
    pipe = None
    if opts.get("n_threads", 1) >= 2 and arrays.get("xgram") is not None:
        pipe = np.empty(4 * n_orient * T, dtype=dtype)
    pp.xgram = _ptr(arrays.get("xgram"))
    pp.buf = _ptr(pipe)
    pp.spin_us = opts.get("spin_us", 100)
    memset(&pol, 0, sizeof(pol))
    mode = opts.get("pipe", "auto")
    if mode not in ("auto", "two", "alone", "probe"):
        raise ValueError(f"bcd: pipe must be auto, two, alone or probe, got {mode!r}")
    if mode != "auto":
        pol.t_two = -1.0 if mode == "alone" else 1e-300
        pol.t_one = 0.0 if mode == "alone" else 1e300
        pol.until_probe = pol.probe_gap = 4 if mode == "probe" else 1 << 30
    pp.pick = &pol
    memset(&info, 0, sizeof(info))
    info.hist = <double*> _ptr(hist)
    info.max_hist = hist.shape[0]
    use_mo = bool(opts.get("momentum", 0))
    mom_buf = np.empty(momentum_size(p, n_ws, n_orient, n_chan) * dtype.itemsize
                       + n_ws, np.uint8) if use_mo else None
    if use_mo:
        momentum_bind(&mo, &w, _ptr(mom_buf), dtype.itemsize)
        mo.restart = opts.get("momentum") != "no-restart"
    if n_ws > 0:
        with nogil:
            bcd_solve(&w, &o, &an if an.k > 0 else NULL,
                      &ex if ex.rprev != NULL else NULL, &mo if use_mo else NULL,
                      &pp if pp.buf != NULL else NULL, &info)
    else:
        info.status = 0
    return dict(status=info.status, n_iter=info.n_iter, gap=info.gap,
                p_obj=info.p_obj, d_obj=info.d_obj, n_active=info.n_active,
                obj=hist[:info.n_obj].copy(), n_accel_try=info.n_accel_try,
                n_accel=info.n_accel, n_restart=info.n_restart,
                extrap_state=ex.state, t_best=ex.t_best)


# --------------------------------------------------------------------------
# The C API on arrays
# --------------------------------------------------------------------------
cdef tfx_plan_t* _new_plan(int T, wsize, tstep, bint is_double) except NULL:
    cdef int wsv[TFX_MAX_DICTS]
    cdef int tsv[TFX_MAX_DICTS]
    cdef int i, n_d
    ws, ts = check_wsize_tstep(wsize, tstep)
    n_d = len(ws)
    if n_d > TFX_MAX_DICTS:
        raise ValueError(f"at most {TFX_MAX_DICTS} dictionaries")
    for i in range(n_d):
        wsv[i] = ws[i]
        tsv[i] = ts[i]
    return tfx_plan_new(T, n_d, wsv, tsv, is_double)


def solve_arrays(M, G, alphas, frame, *, n_orient=1, dtype=np.float64, weights=None,
                 warm=None, **options):
    """Run ``d_/s_tf_mxne_solve`` (the public C API) without the GIL on arrays.

    ``alphas = (alpha_space, alpha_time)``; ``frame = (wsize, tstep)``;
    ``weights = (w_space, w_time)`` (either may be None); ``warm =
    (init_positions, Z_init)``; ``options``: public fields of ``tfx_params_t``
    (``tol``, ``maxit``, ``dgap_freq``, ``n_threads``, ``debias``, ``mixed``).
    Returns ``(X, active, info, result)``: ``X`` (n_sources, n_times) and the
    boolean ``active`` mask over sources, the info fields, and the result
    arrays (``positions``, ``Z``, ``X``, ``R``, ``theta``, ``obj``, ``outer``).
    """
    dtype = np.dtype(dtype)
    M = np.ascontiguousarray(M, dtype=dtype)
    G = np.ascontiguousarray(G, dtype=dtype)
    w_space, w_time = weights if weights is not None else (None, None)
    init_positions, Z_init = warm if warm is not None else (None, None)
    cdef int n_chan = M.shape[0], T = M.shape[1], n_src = G.shape[1], st, n_init = 0
    cdef int no = n_orient
    if G.shape[0] != n_chan:
        raise ValueError("M and G must have the same number of rows")
    arrs = [None if a is None else np.ascontiguousarray(a, dtype=dtype)
            for a in (w_space, w_time, Z_init)]
    pos_a = None if init_positions is None else np.ascontiguousarray(
        init_positions, dtype=np.intc)
    if pos_a is not None:
        n_init = len(pos_a)
    cdef tfx_params_t prm
    cdef tfx_result_t res
    cdef tfx_info_t info
    tfx_params_init(&prm, alphas[0], alphas[1], no)
    tfx_result_init(&res)
    tfx_info_init(&info)
    for key, val in options.items():
        if key not in ("tol", "maxit", "dgap_freq", "n_threads", "debias", "mixed",
                       "n_conditions"):
            raise TypeError(f"not a public option of tfx_params_t: {key!r}")
        setattr_param(&prm, key, val)
    cdef int n_cond = options.get("n_conditions", 1)
    cdef tfx_plan_t* plan = _new_plan(T // max(n_cond, 1), frame[0], frame[1],
                                      dtype == np.float64)
    K2 = 2 * plan.n_coefs * max(n_cond, 1)
    n_pos = n_src // no if no > 0 else 0
    if (n_init and arrs[2].shape != (n_init * no, K2)) or (
            arrs[0] is not None and arrs[0].shape != (n_pos,)) or (
            arrs[1] is not None and arrs[1].shape != (n_pos, K2 // 2)):
        tfx_plan_free(plan)
        raise ValueError("solve_arrays: weights or warm start of the wrong shape")
    cdef void* ws_p = _ptr(arrs[0])
    cdef void* wt_p = _ptr(arrs[1])
    cdef void* z_p = _ptr(arrs[2]) if n_init else NULL
    cdef void* pos_p = _ptr(pos_a) if n_init else NULL
    cdef void* m_p = _ptr(M)
    cdef void* g_p = _ptr(G)
    try:
        if dtype == np.float64:
            with nogil:
                st = d_tf_mxne_solve(plan, &prm, <double*> m_p, <double*> g_p, n_chan,
                                     n_src, <double*> ws_p, <double*> wt_p, n_init,
                                     <int*> pos_p, <double*> z_p, &res, &info)
        else:
            with nogil:
                st = s_tf_mxne_solve(plan, &prm, <float*> m_p, <float*> g_p, n_chan,
                                     n_src, <float*> ws_p, <float*> wt_p, n_init,
                                     <int*> pos_p, <float*> z_p, &res, &info)
        out = result_dict(&res, no, n_chan, K2, T, dtype, max(n_cond, 1))
    finally:
        tfx_result_free(&res)
        tfx_plan_free(plan)
    positions = out["positions"]
    X = np.zeros((n_src, T), dtype=dtype)
    active = np.zeros(n_src, dtype=bool)
    cols = (positions[:, None] * no + np.arange(no)).ravel()
    X[cols] = out["X"]
    active[cols] = True
    info_d = dict(info)
    info_d["status"] = st
    return X, active, info_d, out


cdef void setattr_param(tfx_params_t* prm, str key, object val):
    if key == "tol":
        prm.tol = val
    elif key == "maxit":
        prm.maxit = val
    elif key == "dgap_freq":
        prm.dgap_freq = val
    elif key == "n_threads":
        prm.n_threads = val
    elif key == "debias":
        prm.debias = val
    elif key == "n_conditions":
        prm.n_conditions = val
    else:
        prm.mixed = val


def plan_info(int n_times, wsizes, tsteps, bint is_double=True):
    """Build a plan with ``tfx_plan_new``, return its public fields, free it."""
    cdef int i, n_d = len(wsizes)
    cdef tfx_plan_t* plan = _new_plan(n_times, wsizes, tsteps, is_double) \
        if n_d else NULL
    if plan == NULL:
        raise ValueError(f"n_dicts must be in [1, {TFX_MAX_DICTS}], got n_dicts=0")
    out = dict(n_times=plan.n_times, n_dicts=plan.n_dicts, n_coefs=plan.n_coefs,
               max_frames=plan.max_frames, is_double=plan.is_double,
               wsize=[plan.wsize[i] for i in range(n_d)],
               tstep=[plan.tstep[i] for i in range(n_d)],
               n_step=[plan.n_step[i] for i in range(n_d)],
               n_freq=[plan.n_freq[i] for i in range(n_d)],
               work_size=tfx_stft_work_size(plan), abi_version=plan.abi_version,
               struct_size=plan.struct_size)
    tfx_plan_free(plan)
    return out


def abi_probe(M, G, double a_s, double a_t):
    """Statuses of ``d_tf_mxne_solve`` with manipulated struct headers: ``'v2'``, a
    caller whose parameter struct ends with the version-2 fields; then for each
    bad header ``(status, fine)``, ``fine`` meaning: a bad result or info struct
    left untouched, or (bad parameters) an empty result and ``info.status`` set."""
    cdef double[:, ::1] Mv = np.ascontiguousarray(M, dtype=np.float64)
    cdef double[:, ::1] Gv = np.ascontiguousarray(G, dtype=np.float64)
    cdef int n_chan = Mv.shape[0], T = Mv.shape[1], n_src = Gv.shape[1]
    cdef tfx_plan_t* plan = _new_plan(T, 16, 4, True)
    cdef tfx_params_t prm
    cdef tfx_result_t res
    cdef tfx_result_t res0
    cdef tfx_info_t info
    cdef tfx_info_t info0
    cdef size_t v2 = <size_t> (<char*> &prm.n_conditions - <char*> &prm) + sizeof(int)
    out = {}
    cases = ("v2", "params_old_version", "params_too_small", "params_newer_caller",
             "result_uninitialised", "result_old_version", "info_wrong_version")
    try:
        for case in cases:
            tfx_params_init(&prm, a_s, a_t, 1)
            tfx_result_init(&res)
            tfx_info_init(&info)
            if case == "v2":
                prm.struct_size = v2
            elif case == "params_old_version":
                prm.abi_version = 1
            elif case == "params_too_small":
                prm.struct_size = 16
            elif case == "params_newer_caller":
                prm.struct_size = sizeof(tfx_params_t) + 8
            elif case == "result_uninitialised":
                memset(&res, 0xAB, sizeof(res))
            elif case == "result_old_version":
                res.abi_version = 1
            else:
                info.abi_version = 3
            memcpy(&res0, &res, sizeof(res))
            memcpy(&info0, &info, sizeof(info))
            st = d_tf_mxne_solve(plan, &prm, &Mv[0, 0], &Gv[0, 0], n_chan, n_src, NULL,
                                 NULL, 0, NULL, NULL, &res, &info)
            if case == "v2":
                out[case] = st
                tfx_result_free(&res)
                continue
            if case.startswith("params"):
                fine = (res.n_active == 0 and res.Z == NULL and res.outer == NULL
                        and info.status == st)
            else:
                fine = (bytes((<unsigned char*> &res)[:sizeof(res)])
                        == bytes((<unsigned char*> &res0)[:sizeof(res)])
                        and bytes((<unsigned char*> &info)[:sizeof(info)])
                        == bytes((<unsigned char*> &info0)[:sizeof(info)]))
            tfx_result_free(&res)
            out[case] = (st, fine)
    finally:
        tfx_plan_free(plan)
    return out


def lawson_hanson(H, q):
    """The debiasing's active-set solver (:c:func:`_lawson_hanson`) on the
    normal equations ``H`` (n, n) and ``q`` (n,): ``e >= 0`` minimising
    ``0.5 e'He - q'e``. Returns ``(e, status)``."""
    cdef double[:, ::1] Hv = np.ascontiguousarray(H, dtype=np.float64)
    cdef double[::1] qv = np.ascontiguousarray(q, dtype=np.float64)
    cdef int n = qv.shape[0], st
    if Hv.shape[0] != n or Hv.shape[1] != n:
        raise ValueError(f"lawson_hanson: H must be ({n}, {n}), got {H.shape}")
    e = np.zeros(n)
    sc = np.empty(2 * n * n + 4 * n)
    flags = np.zeros(n, np.uint8)
    idx = np.zeros(n, np.intc)
    cdef double[::1] ev = e, scv = sc
    cdef unsigned char[::1] fv = flags
    cdef int[::1] iv = idx
    cdef double tr = float(np.trace(H))
    with nogil:
        st = _lawson_hanson(&Hv[0, 0], &qv[0], n, tr, &scv[0], &fv[0], &iv[0], &ev[0])
    return e, st
