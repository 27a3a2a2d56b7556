# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Compiled engine of tfmxne.

Everything in the iteration loops lives here and runs without the GIL, one
concern per included file:

* ``_plan.pxi``: the plan of the multi-dictionary frame (header, table layout,
  tables) and ``TFPlan``;
* ``_stft.pxi``: STFT / ISTFT of a block of signals (a real DFT of the windowed
  frames as one BLAS ``gemm`` per signal and dictionary, overlap-add for the
  inverse), with the framing, windows and scaling of ``mne.time_frequency``;
* ``_penalty.pxi``: the penalty of a block (composite L21 + L1 prox, the
  epsilon-inf dual norm, its value, a cheap upper bound) and the penalty struct;
* ``_threads.pxi`` (threads, ``G^T R``), ``_screen.pxi`` (the screened exact dual
  norm), ``_gain.pxi`` (Lipschitz constants, block Grams);
* ``_bcd.pxi``, ``_pipe.pxi``, ``_anderson.pxi``: the inner solve (block
  coordinate descent on a working set, its two-thread sweep, Anderson
  acceleration, gap checks with dual extrapolation);
* ``_solve.pxi``, ``_mixed.pxi``, ``_debias.pxi``: the outer working-set loop
  over one solver state, the float32 start, exact debiasing;
* ``_params.pxi``: the options, the ABI checks and the entry point ``tf_solve``.

This module's Python functions are the thin production wrappers (buffers in,
nogil loops); the test hooks are in ``tfmxne._testing._hooks``.

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
from libc.float cimport FLT_EPSILON
from libc.math cimport INFINITY, isfinite, sqrt
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_lapack cimport dposv, dsyev

from ._blas cimport dot, gemm_rm, gemm_rm_slim
from ._types cimport (
    TFX_ABI_VERSION, TFX_BAD_ABI, TFX_BAD_ARG, TFX_INTERRUPTED, TFX_MAX_DICTS,
    TFX_MAX_THREADS, TFX_MAXIT, TFX_NO_MEMORY, TFX_NONFINITE, TFX_OK, eps_item,
    floating, sort_item, tf_anderson, tf_bcd_opts, tf_buf, tf_dict, tf_extrap, tf_info,
    tf_momentum, tf_penalty, tf_pipe, tf_pipe_pick, tf_plan, tf_problem, tf_state,
    tf_thr_policy, tf_tuning, tf_ws,
    tfx_info_t, tfx_outer_t, tfx_params_t, tfx_progress_fn, tfx_result_t,
    thr_scratch,
)

cnp.import_array()

include "_plan.pxi"
include "_stft.pxi"
include "_penalty.pxi"
include "_threads.pxi"
include "_screen.pxi"
include "_gain.pxi"
include "_bcd.pxi"
include "_pipe.pxi"
include "_anderson.pxi"
include "_momentum.pxi"
include "_debias.pxi"
include "_solve.pxi"
include "_mixed.pxi"
include "_params.pxi"

cdef tf_tuning _TUNING
tf_tuning_default(&_TUNING)

#: Status codes of the core (``tfmxne/cython_types.pxd``), for Python callers.
STATUS_OK = <int> TFX_OK
STATUS_MAXIT = <int> TFX_MAXIT
STATUS_NONFINITE = <int> TFX_NONFINITE
STATUS_BAD_ARG = <int> TFX_BAD_ARG
STATUS_NO_MEMORY = <int> TFX_NO_MEMORY
STATUS_INTERRUPTED = <int> TFX_INTERRUPTED
STATUS_BAD_ABI = <int> TFX_BAD_ABI
STATUS_NAMES = {STATUS_OK: "converged", STATUS_MAXIT: "iteration cap reached",
                STATUS_NONFINITE: "non-finite values", STATUS_BAD_ARG: "bad arguments",
                STATUS_NO_MEMORY: "out of memory",
                STATUS_INTERRUPTED: "interrupted by the progress callback",
                STATUS_BAD_ABI: "a struct of another ABI version or size"}


# --------------------------------------------------------------------------
# Helpers of the wrappers (also cimported by tfmxne._testing._hooks)
# --------------------------------------------------------------------------
cdef const tf_plan* plan_of(object plan, bint is_double, str name) except NULL:
    """The C plan of a TFPlan, whose precision must be the buffers' (its tables
    are read as such)."""
    if not isinstance(plan, TFPlan):
        raise TypeError(f"{name}: plan must be a TFPlan, got {type(plan).__name__}")
    if bool((<TFPlan> plan).plan.is_double) != is_double:
        raise ValueError(f"{name}: {'float64' if is_double else 'float32'} buffers "
                         f"with a {plan.dtype} plan")
    return &(<TFPlan> plan).plan


cdef object rows_copy(const void* ptr, Py_ssize_t n_rows, Py_ssize_t n_cols,
                      object dtype):
    """A NumPy copy of a C array (n_rows, n_cols) of ``dtype``."""
    out = np.empty((n_rows, n_cols), dtype=dtype)
    if n_rows * n_cols:
        memcpy(cnp.PyArray_DATA(out), ptr, n_rows * n_cols * out.itemsize)
    return out


cdef class Scratch:
    """Per-thread scratch of the screening (``thr_scratch``), owned by Python."""
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


# --------------------------------------------------------------------------
# The frame
# --------------------------------------------------------------------------
def stft(TFPlan plan not None, const floating[:, ::1] x, floating[:, ::1] z,
         floating[::1] work):
    """z[r] = Phi(x[r]) (internal layout)."""
    cdef const tf_plan* p = plan_of(plan, floating is double, "stft")
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
    cdef const tf_plan* p = plan_of(plan, floating is double, "istft")
    if z.shape[1] != 2 * p.n_coefs or z.shape[0] != x.shape[0] or \
            work.shape[0] < p.max_frames:
        raise ValueError("istft: inconsistent buffer sizes")
    if x.shape[0] == 0 or x.shape[1] == 0:
        return
    with nogil:
        istft_rows(p, &z[0, 0], <int> z.shape[0], <int> z.shape[1],
                   &x[0, 0], <int> x.shape[1], <int> x.shape[1], &work[0])


# --------------------------------------------------------------------------
# Penalties and dual norms
# --------------------------------------------------------------------------
def penalties(TFPlan plan not None, const floating[:, ::1] Z, int n_orient,
              const floating[:, ::1] w_time=None):
    """Per-position weighted l2 norms and (time-weighted) l1 norms."""
    cdef const tf_plan* p = plan_of(plan, floating is double, "penalties")
    cdef int n_pos = Z.shape[0] // n_orient, j
    cdef double[::1] l21 = np.zeros(n_pos)
    cdef double[::1] l1 = np.zeros(n_pos)
    with nogil:
        for j in range(n_pos):
            penalty_block(p, &Z[j * n_orient, 0], n_orient, <int> Z.shape[1],
                          &w_time[j, 0] if w_time is not None else NULL,
                          &l21[j], &l1[j])
    return np.asarray(l21), np.asarray(l1)


def dual_objective(double nR2, double RM, double nu, double alpha):
    """Dual objective of the rescaled residual (``scaled_dual``, the solver's):
    ``s <R, M> - s^2 ||R||^2 / 2``, ``s = min(1, alpha / nu)``."""
    return scaled_dual(nR2, RM, nu, alpha)


cdef object _screened(const tf_plan* p, const floating[:, ::1] GtR, int n_orient,
                      double rho, const floating[::1] w_space,
                      const floating[:, ::1] w_time, const floating[:, ::1] GtR_prev,
                      const double[::1] nu_prev, tuple stop, int n_thr, Scratch s):
    """dual_norm_screened on typed buffers (see there)."""
    cdef tf_penalty pen
    cdef tf_screen sc
    cdef int n_pos = GtR.shape[0] // n_orient, n_min = stop[0]
    cdef double alpha = stop[1], best, rest
    cdef Py_ssize_t n_max = stop[2]
    cdef bint track = GtR_prev is not None and nu_prev is not None
    if (w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != p.n_coefs)) or (
            track and (GtR_prev.shape[0] != GtR.shape[0]
                       or GtR_prev.shape[1] != GtR.shape[1]
                       or nu_prev.shape[0] != n_pos)):
        raise ValueError("dual_norm_screened: inconsistent buffer sizes")
    cdef double[::1] nu = np.empty(n_pos)
    cdef unsigned char[::1] exact = np.zeros(n_pos, dtype=np.uint8)
    order = np.empty(2 * n_pos, dtype=np.float64)   # room for n_pos sort_items
    cdef double[::1] ov = order
    # (rho is the epsilon norm's: the alphas of the penalty are not used here)
    pen_init(&pen, p, n_orient, 1.0 - rho, rho,
             &w_space[0] if w_space is not None else NULL,
             &w_time[0, 0] if w_time is not None else NULL)
    pen.rho = rho
    sc.pen = &pen
    sc.GtR = &GtR[0, 0]
    sc.GtR_prev = &GtR_prev[0, 0] if track else NULL
    sc.nu_prev = &nu_prev[0] if track else NULL
    sc.n_pos = n_pos
    sc.n_thr = n_thr
    sc.chunk = _TUNING.screen_chunk
    sc.pol = NULL
    sc.scr = s.scr
    sc.order = <sort_item*> &ov[0]
    sc.nu = &nu[0]
    sc.exact = &exact[0]
    with nogil:
        screen_dual_norm(&sc, n_min, alpha, n_max, &best, &rest)
    return best, rest, np.asarray(nu), np.asarray(exact).astype(bool)


def dual_norm_screened(TFPlan plan not None, GtR, int n_orient, double rho, *,
                       weights=None, stop=None, prev=None, int n_threads=1):
    """Exact max over positions of the epsilon norm of Phi(GtR_j), with screening
    (:c:func:`screen_dual_norm`, the routine of the solver).

    ``weights = (w_space, w_time)`` (either None). Positions are visited in
    decreasing order of a cheap upper bound; with ``stop = (n_min, alpha,
    n_max)`` the visit stops once the bound of the next position is at most
    ``alpha`` (no remaining position violates the optimality conditions or
    changes the dual scaling ``min(1, alpha / nu)``), or at most ``best`` once
    ``n_min`` positions were evaluated, or when ``n_max`` positions were
    evaluated (``n_max < 0``: no cap); default ``(0, 0.0, -1)``: the exact dual
    norm. With ``prev = (GtR_prev, nu_prev)`` (upper bounds at ``GtR_prev``,
    same weights) each bound is also capped by ``nu_prev_j + bound(GtR_j -
    GtR_prev_j)`` (triangle inequality). ``n_threads``: threads of the core (the
    result does not depend on it). The arrays are C-contiguous, of the plan's
    precision.

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
    w_space, w_time = weights if weights is not None else (None, None)
    GtR_prev, nu_prev = prev if prev is not None else (None, None)
    stop = (0, 0.0, -1) if stop is None else tuple(stop)
    if n_orient < 1 or GtR.shape[0] % n_orient or GtR.shape[1] != plan.n_times:
        raise ValueError("dual_norm_screened: inconsistent buffer sizes")
    if GtR.shape[0] == 0:
        return 0.0, 0.0, np.zeros(0), np.zeros(0, bool)
    n_thr = max(1, min(n_threads, TFX_MAX_THREADS))
    s = Scratch(plan, n_orient, n_thr)
    if plan.dtype == np.float64:
        return _screened[double](&plan.plan, GtR, n_orient, rho, w_space, w_time,
                                 GtR_prev, nu_prev, stop, n_thr, s)
    return _screened[float](&plan.plan, GtR, n_orient, rho, w_space, w_time,
                            GtR_prev, nu_prev, stop, n_thr, s)


# --------------------------------------------------------------------------
# Products of the gain, debiasing
# --------------------------------------------------------------------------
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
                <int> R.shape[1], &o[0, 0], n_thr, _TUNING.screen_chunk, NULL)
    return out


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
    cdef tf_debias db
    if n_b == 0 or M.shape[0] == 0:
        return np.ones(0), int(st)
    db.M = &M[0, 0]
    db.ldm = M.shape[1]
    db.G = &G_A[0, 0]
    db.n_chan = M.shape[0]
    db.n_src = G_A.shape[1]
    db.T = M.shape[1]
    db.o = n_orient
    db.positions = &pos[0]
    db.n_b = n_b
    db.X = &X[0, 0]
    db.ldx = X.shape[1]
    with nogil:
        st = debias_c(&db, &d[0], &M[0, 0])
    if st == TFX_NO_MEMORY:
        raise MemoryError("debias: out of memory")
    return np.repeat(np.asarray(d), n_orient), int(st)


# --------------------------------------------------------------------------
# The solve (Python wrapper of tf_solve)
# --------------------------------------------------------------------------
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


cdef object result_dict(const tfx_result_t* res, int n_orient, int n_chan, int K2,
                        int T, object dtype, int n_cond):
    """The arrays of a result as NumPy copies, and its outer records; ``n_cond``
    debiasing weights per position (a joint solve's conditions)."""
    cdef int i
    cdef const tfx_outer_t* rec
    out = {"positions": np.array([res.positions[i] for i in range(res.n_active)],
                                 dtype=np.intp),
           "Z": rows_copy(res.Z, res.n_active * n_orient, K2, dtype),
           "X": rows_copy(res.X, res.n_active * n_orient, T, dtype),
           "obj": [res.obj[i] for i in range(res.n_obj)],
           "debias": None if res.debias == NULL else np.array(
               [res.debias[i] for i in range(res.n_active * n_cond)])}
    if res.R != NULL:
        out["R"] = rows_copy(res.R, n_chan, T, dtype)
        out["theta"] = rows_copy(res.theta, n_chan, T, dtype)
    records = []
    for i in range(res.n_outer):
        rec = <const tfx_outer_t*> (<const char*> res.outer
                                    + <Py_ssize_t> i * res.outer_stride)
        records.append(rec[0])
    out["outer"] = records
    return out


cdef int _problem_arrays(tf_problem* pb, const floating[:, ::1] M,
                         const floating[:, ::1] G, int n_orient, int K,
                         const floating[::1] lc, const floating[::1] w_space,
                         const floating[:, ::1] w_time) except -1:
    """Point ``pb`` at the data, checking the shapes."""
    cdef int n_pos
    if M.shape[0] != G.shape[0] or n_orient < 1 or G.shape[1] % n_orient:
        raise ValueError("solve: inconsistent buffer sizes")
    n_pos = G.shape[1] // n_orient
    if (lc is not None and lc.shape[0] != n_pos) or (
            w_space is not None and w_space.shape[0] != n_pos) or (
            w_time is not None and (w_time.shape[0] != n_pos
                                    or w_time.shape[1] != K)):
        raise ValueError("solve: inconsistent buffer sizes")
    memset(pb, 0, sizeof(tf_problem))
    pb.n_chan = M.shape[0]
    pb.n_sources = G.shape[1]
    pb.M = &M[0, 0]
    pb.G = &G[0, 0]
    pb.lc = &lc[0] if lc is not None else NULL
    pb.w_space = &w_space[0] if w_space is not None else NULL
    pb.w_time = &w_time[0, 0] if w_time is not None else NULL
    return 0


def solve(TFPlan plan not None, const floating[:, ::1] M, const floating[:, ::1] G,
          double alpha_space, double alpha_time, int n_orient, *,
          const floating[::1] lc=None, weights=None, warm=None, screen_init=None,
          progress=None, **options):
    """Run the core's solve (:c:func:`tf_solve`) on arrays.

    ``options``: any option of :func:`default_params` (tol, maxit, n_threads,
    ... and the internal tuning). ``weights = (w_space, w_time)`` (either None),
    ``w_time`` in the internal coefficient order; ``warm = (init_positions,
    Z_init)``, rows of ``Z_init`` (internal layout) for ``init_positions``;
    ``screen_init = (G^T M, nu, exact)`` from :func:`dual_norm_screened` at
    ``R = M`` (unweighted). Arrays are C-contiguous, of the plan's precision.
    ``progress``: ``progress(n_outer, gap, n_active)`` after every outer
    certificate; an exception it raises stops the solve and is raised here.

    Returns
    -------
    out : dict
        ``status``, ``positions``, ``Z``, ``X``, ``R``, ``theta``, ``obj`` (primal
        objective at each gap evaluation), ``outer`` (one record per outer
        iteration: n_active, n_ws, n_iter, gap, p_obj, d_obj, time), and the
        fields of the info struct (``gap``, ``p_obj``, ``d_obj``, ``n_iter``,
        ``n_outer``, ``n_active``, ``stalled``, ``seconds``, ...).
    """
    cdef const tf_plan* p = plan_of(plan, floating is double, "solve")
    cdef tfx_params_t prm
    cdef tf_tuning tun
    cdef tf_problem pb
    cdef tfx_result_t res
    cdef tfx_info_t info
    cdef int st, K2 = 2 * p.n_coefs, T = p.n_times
    cdef const floating[::1] w_space = None
    cdef const floating[:, ::1] w_time = None
    cdef const floating[:, ::1] Z_init = None
    cdef int[::1] init_v
    cdef const floating[:, ::1] gtr_v
    cdef double[::1] nu_v
    cdef unsigned char[::1] ex_v
    if weights is not None:
        w_space, w_time = weights
    params_init(&prm)
    tun = _TUNING
    prm.alpha_space = alpha_space
    prm.alpha_time = alpha_time
    prm.n_orient = n_orient
    set_options(&prm, &tun, options)
    if M.shape[1] != T:
        raise ValueError("solve: inconsistent buffer sizes")
    _problem_arrays(&pb, M, G, n_orient, p.n_coefs, lc, w_space, w_time)
    if warm is not None and len(warm[0]):
        init_arr = np.ascontiguousarray(warm[0], dtype=np.intc)
        init_v = init_arr
        Z_init = warm[1]
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
                nu_v.shape[0] != G.shape[1] // n_orient or ex_v.shape[0] != nu_v.shape[0]:
            raise ValueError("solve: screen_init does not match the problem")
        pb.screen_gtr = &gtr_v[0, 0]
        pb.screen_nu = &nu_v[0]
        pb.screen_exact = &ex_v[0]
    holder = [progress, None]
    if progress is not None:
        prm.progress = _progress_trampoline
        prm.progress_ctx = <void*> holder
    memset(&res, 0, sizeof(res))
    res.struct_size = sizeof(res)
    res.abi_version = TFX_ABI_VERSION
    memset(&info, 0, sizeof(info))
    info.struct_size = sizeof(info)
    info.abi_version = TFX_ABI_VERSION
    with nogil:
        st = tf_solve(p, &prm, &tun, &pb, &res, &info)
    try:
        out = dict(info)
        out["status"] = st
        out.update(result_dict(&res, n_orient, M.shape[0], K2, T, plan.dtype,
                               plan.n_segments * prm.n_conditions))
    finally:
        tfx_result_clear(&res)
    if holder[1] is not None:
        raise holder[1]
    return out
