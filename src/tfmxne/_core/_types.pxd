# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Private C types of the core: the plan, the penalty, the tuning, the states.

The public types (status codes, ``TFX_MAX_DICTS``, the parameter, info, outer
record and result structs) are defined once, in ``tfmxne/cython_types.pxd``.
"""

ctypedef fused floating:
    float
    double

from tfmxne.cython_types cimport (
    TFX_ABI_VERSION, TFX_NO_MEMORY, TFX_OK, TFX_MAXIT, TFX_NONFINITE, TFX_BAD_ARG,
    TFX_INTERRUPTED, TFX_BAD_ABI, TFX_MAX_DICTS, tfx_params_t, tfx_info_t,
    tfx_outer_t, tfx_result_t, tfx_progress_fn,
)

cdef enum:
    TFX_MAX_THREADS = 64    # most threads of one solve


# --------------------------------------------------------------------------
# The frame
# --------------------------------------------------------------------------
ctypedef struct tf_dict:
    int wsize
    int folded        # 1: folded real DFT (matrices below), 0: plain (N x 2 nf)
    int tstep
    int n_step
    int n_freq
    int coef_off      # offset of this dictionary in the complex coefficient axis
    int pad_off       # (wsize - tstep) // 2
    void* fa          # real DFT, row-major: plain (wsize, 2 n_freq) interleaved,
    #                   or folded cos (wsize/2+1, n_freq) then sin (wsize/2-1, n_freq)
    void* fs          # inverse: plain (2 n_freq, wsize), or folded
    #                   cos (n_freq, wsize/2+1) then sin (n_freq, wsize/2-1)
    void* wa          # (n_step, wsize) analysis windows of each frame
    void* wsy         # (n_step, wsize) synthesis windows of each frame
    double wa_max     # max over frames of the l2 norm of an analysis window

ctypedef struct tf_plan:
    # tables in one buffer, in this order (plan_bind): per dictionary fa, fs, wa,
    # wsy (sizes: plan_table_size), then mult. A signal row may hold n_segs
    # segments (conditions) side by side, each framed on its own: n_times and
    # n_coefs count the whole row, seg_times and seg_coefs one segment
    int n_times       # samples of a row (n_segs * seg_times)
    int n_dicts
    int n_coefs       # complex coefficients of a row (n_segs * seg_coefs)
    int n_segs
    int seg_times
    int seg_coefs
    int max_frames    # scratch size: max over dictionaries of n_step * wsize
    #                   (plain) or n_step * (2 wsize + 2) (folded)
    int is_double
    void* mult        # (n_coefs,) 1 for DC / Nyquist, 2 otherwise (every segment)
    tf_dict d[TFX_MAX_DICTS]

ctypedef struct eps_item:
    # one coefficient of the epsilon norm: key = |y| / w (magnitude over its time
    # weight) and cw2 = c w^2 (multiplicity times squared weight), from which
    # c y^2 = cw2 key^2 and c y w = cw2 key
    double key
    double cw2

ctypedef struct sort_item:
    double key
    Py_ssize_t idx


# --------------------------------------------------------------------------
# The penalty: alpha_s sum_j ws_j ||Z_j|| + alpha_t sum_jk wt_jk ||Z_jk||
# --------------------------------------------------------------------------
ctypedef struct tf_penalty:
    const tf_plan* p
    int n_orient
    double alpha_s
    double alpha_t
    double rho        # alpha_t / (alpha_s + alpha_t): the epsilon norm's
    const void* ws    # (n_blocks,) space weights, or NULL (all ones)
    const void* wt    # (n_blocks, n_coefs) time weights, or NULL (all ones)


# --------------------------------------------------------------------------
# Internal tuning of the working-set loop (not part of the C ABI)
# --------------------------------------------------------------------------
ctypedef struct tf_tuning:
    int max_outer             # cap on outer working-set iterations
    int stall_outer           # outer iterations without a 10 % gap decrease: stop
    double stop_gap_ratio     # the loop aims at gap < stop_gap_ratio * tol
    int ws_start              # first number of candidate positions added
    int n_inner               # prox steps per block visit
    double inner_tol_ratio    # inner tol of a growing working set: at least ...
    double inner_gap_frac     # ... max(inner_tol_ratio tol, inner_gap_frac gap)
    int inner_gap_start       # epochs before the first gap check of such a solve
    double complete_tol_ratio  # inner tol of a complete working set (* tol)
    int anderson_k            # Anderson memory (0: off)
    int anderson_start        # epochs of an inner solve before Anderson starts
    int dual_extrap           # 1: dual extrapolation of the residuals
    double mixed_tol_ratio    # the float32 start stops at max(stop_gap_ratio
    #                           tol, mixed_tol_ratio ||M||^2)
    int pipe_min_blocks       # smallest working set swept by two threads
    int screen_chunk          # positions per thread in a screening hand-off
    int spin_us               # microseconds a two-thread hand-off polls before blocking
    int momentum              # 1: momentum with adaptive restart in inner solves


# --------------------------------------------------------------------------
# The problem of tf_solve
# --------------------------------------------------------------------------
ctypedef struct tf_problem:
    # arrays in the plan's precision, row-major
    int n_chan
    int n_sources
    const void* M               # (n_chan, T)
    const void* G               # (n_chan, n_sources)
    const void* lc              # (n_pos,) Lipschitz constants, or NULL (computed)
    const void* w_space         # (n_pos,) or NULL
    const void* w_time          # (n_pos, K) internal order, or NULL
    int n_init                  # warm start: positions and their coefficient rows
    const int* init_pos
    const void* Z_init          # (n_init * n_orient, 2 K)
    const void* screen_gtr      # screening of R = M (G^T M, bounds / exact values
    const double* screen_nu     # and which are exact) from alpha_max, or NULL
    const unsigned char* screen_exact
    # the float32 start of a float64 solve hands its last screening over (the
    # float64 solve's first certificate bounds its dual norms from it)
    void* keep_gtr              # out: G^T R of the last certificate (n_sources, T)
    double* keep_nu             # ... and upper bounds of its dual norms (n_pos,)
    int* kept                   # ... set to 1 once they are written
    const float* seed_gtr       # in: a float32 G^T R (n_sources, T) and upper
    const double* seed_nu       # bounds of its dual norms, as exact float64 values


# --------------------------------------------------------------------------
# One inner solve (block coordinate descent on a working set)
# --------------------------------------------------------------------------
ctypedef struct tf_ws:
    # a working-set problem; arrays in the plan's precision, row-major
    tf_penalty pen            # weights of the working set's blocks
    int n_ws
    int n_chan
    const void* GT            # (n_ws * n_orient, n_chan) rows of G^T
    const void* M             # (n_chan, T)
    void* R                   # (n_chan, T), = M - G_ws X, updated
    void* X                   # (n_ws * n_orient, T), = PhiT(Z), updated
    void* Z                   # (n_ws * n_orient, 2 K), updated
    unsigned char* active     # (n_ws,), updated
    const void* lc            # (n_ws,) Lipschitz constants (<= 0: block skipped)
    const void* gram          # (n_ws, n_orient, n_orient) G_j^T G_j
    void* work                # bcd_work_size elements
    eps_item* items           # n_coefs items

ctypedef struct tf_bcd_opts:
    double tol
    int maxit
    int dgap_freq
    int gap_start             # first gap check after that many epochs (0: dgap_freq)
    int n_inner               # prox steps per block visit

ctypedef struct tf_info:
    # what an inner solve returns
    int status
    int n_iter
    int n_active
    int n_accel_try
    int n_accel
    int n_restart             # momentum steps rejected
    double gap
    double p_obj
    double d_obj
    double* hist              # in: room for max_hist primal objectives ...
    int max_hist
    int n_obj                 # ... out: how many were written (one per gap check)

ctypedef struct tf_extrap:
    # dual extrapolation (R + t (R - R_prev), carried from call to call)
    void* rprev               # (n_chan, T)
    int state                 # 0: empty, 1: R at the last gap check, 2: R - R_prev
    #                           of the last check, left for the caller's certificate
    double t_best             # t of the best dual point of the last check (0: R)
    int skip                  # 1: no candidate beat R last time: skip them once

ctypedef struct tf_anderson:
    int k                     # memory (0: off)
    Py_ssize_t cap_rows       # most active rows it extrapolates
    void* snap                # bcd_snap_size elements
    int n_snap
    int n_act_prev

ctypedef struct tf_momentum:
    # momentum between epochs with adaptive restart (_momentum.pxi): the epoch
    # after iterate Z_k starts from Y = Z_k + k / (k + 3) (Z_k - Z_{k-1}); a step
    # that raises the objective is rejected (Z_k restored, k reset to 0)
    void* Zp                  # (n_ws o, 2K): Z_{k-1}, then Z_k during an epoch
    void* Xp                  # (n_ws o, T): likewise for X
    void* Rp                  # (n_chan, T): likewise for R
    unsigned char* actp       # (n_ws,): likewise for the support
    int k                     # accepted momentum epochs since the last restart
    int n_restart             # steps rejected
    int restart               # 1: reject a step that raises the objective (0: the
    #                           plain momentum of the tests, which may raise it)
    double f_prev             # objective at the iterate before the last epoch

ctypedef struct tf_thr_policy:
    # whether the next threaded steps (epochs of a two-thread sweep, or task
    # groups) run with their threads or in the calling thread alone, after one
    # found a thread not running (_threads.pxi); carried through a solve
    int alone_left            # steps still to run alone
    int backoff               # steps alone after the next slow threaded one

ctypedef struct tf_pipe_pick:
    # which way the epochs of two-thread sweeps run, with both threads or the
    # main thread alone (the same arithmetic), from the measured seconds per
    # block visit of each (_bcd.pxi); carried through a solve
    double t_two              # seconds per visit with both threads (0: unknown)
    double t_one              # seconds per visit alone (0: unknown)
    int until_probe           # epochs before the slower way is timed again
    int probe_gap             # epochs between such probes

ctypedef struct tf_pipe:
    # the two-thread sweep of one inner solve (see _pipe.pxi); NULL buffers: off
    const void* xgram         # (n_ws, n_orient, n_orient) cross Grams G_j^T G_prev
    void* buf                 # 4 n_orient T elements
    int spin_us               # microseconds of polling before a wait blocks
    tf_pipe_pick* pick        # the solve's (updated by each inner solve)


# --------------------------------------------------------------------------
# Per-thread scratch of the screening
# --------------------------------------------------------------------------
ctypedef struct thr_scratch:
    void* Y             # n_orient * 2 K
    void* frames        # max_frames
    void* dbuf          # n_orient * T
    double* csum        # T + 1
    eps_item* items     # n_coefs


# --------------------------------------------------------------------------
# The solver state of tf_solve (allocated in state_alloc, freed in state_free)
# --------------------------------------------------------------------------
ctypedef struct tf_buf:
    # a growable buffer (capacity in bytes)
    void* ptr
    size_t cap

ctypedef struct tf_state:
    # the problem (read only)
    const tf_plan* p
    const tfx_params_t* prm
    const tf_tuning* tun
    const tf_problem* pb
    tf_penalty pen            # the full problem's penalty
    int n_chan
    int n_src
    int n_pos
    Py_ssize_t nr             # n_chan * T
    Py_ssize_t n_big          # n_sources * T
    double tol                # the loop's target: stop_gap_ratio * tol
    int n_thr
    double t0                 # start time (tfx_now)
    double t_cert             # start of the current certificate (tfx_now)
    # fixed buffers
    void* lc                  # (n_pos,)
    void* gtr[2]              # G^T R of a certificate and of the one before
    double* nu[2]             # its dual norms (exact values or upper bounds)
    unsigned char* ex[2]      # which of them are exact
    sort_item* order          # (n_pos,)
    unsigned char* in_A       # (n_pos,) membership of the support
    int* A                    # (n_pos,) the support
    int* ws                   # (n_pos,) the working set
    void* R                   # (n_chan, T) residual
    void* theta               # (n_chan, T) dual point of the best certificate
    void* rprev               # (n_chan, T) dual extrapolation, or NULL
    void* work                # bcd_work_size
    eps_item* items           # n_coefs
    double* ihist             # maxit
    void* pipe                # 4 n_orient T (two threads), or NULL
    thr_scratch* scr          # n_thr
    void* scr_mem
    # growable buffers: the support's rows and the working set's arrays
    tf_buf ZA                 # (nA n_orient, 2 K)
    tf_buf XA                 # (nA n_orient, T)
    tf_buf Zws                # (n_ws n_orient, 2 K)
    tf_buf Xws                # (n_ws n_orient, T)
    tf_buf GT                 # (n_ws n_orient, n_chan)
    tf_buf grams              # (n_ws, n_orient, n_orient)
    tf_buf xgram              # (n_ws, n_orient, n_orient)
    tf_buf lc_ws              # (n_ws,)
    tf_buf ws_w               # (n_ws,)
    tf_buf wt_w               # (n_ws, K)
    tf_buf act                # (n_ws,)
    tf_buf snap               # Anderson snapshots
    tf_buf mom                # momentum: Zp, Xp, Rp, actp
    # iteration state
    int cur                   # buffers of the next certificate (gtr[cur], ...)
    int have_prev             # the other buffers hold the previous certificate
    int nA                    # support size
    int n_ws                  # working set size
    int n_grow                # next increment of the working set
    int n_outer
    int n_iter
    int n_stall
    int hist_cap
    int n_accel_try
    int n_accel
    int n_restart
    int converged
    int stalled
    double gap
    double best_gap
    double best_d
    double p_obj
    double nu_max
    double nu_rest
    tf_extrap extrap
    tf_pipe_pick pipe_pick    # two-thread sweeps
    tf_thr_policy pol_tasks   # task groups (screening, G^T R)
