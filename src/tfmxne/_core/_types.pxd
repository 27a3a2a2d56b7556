# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Private C types of the core: fused float type, plan and kernel structs."""

ctypedef fused floating:
    float
    double

# status codes, TFX_MAX_DICTS and the solver's parameter / info / result structs
# are public (one definition, in tfmxne/cython_types.pxd)
from tfmxne.cython_types cimport (
    TFX_NO_MEMORY, TFX_OK, TFX_MAXIT, TFX_NONFINITE, TFX_BAD_ARG, TFX_INTERRUPTED,
    TFX_MAX_DICTS, tfx_params_t, tfx_info_t, tfx_outer_t, tfx_result_t,
    tfx_progress_fn,
)

ctypedef struct tf_dict:
    int wsize
    int folded        # 1: folded real DFT (matrices below), 0: plain (N x 2 nf)
    int tstep
    int n_step
    int n_freq
    int coef_off      # offset of this dictionary in the complex coefficient axis
    int pad_off       # (wsize - tstep) // 2
    void* fa          # real DFT, row-major: plain (wsize, 2 n_freq) interleaved, or
                      # folded cos (wsize/2+1, n_freq) then sin (wsize/2-1, n_freq)
    void* fs          # inverse: plain (2 n_freq, wsize), or folded
                      # cos (n_freq, wsize/2+1) then sin (n_freq, wsize/2-1)
    void* wa          # (n_step, wsize) analysis windows of each frame
    void* wsy         # (n_step, wsize) synthesis windows of each frame
    double wa_max     # max over frames of the l2 norm of an analysis window

ctypedef struct tf_plan:
    int n_times       # samples of the signals
    int n_dicts
    int n_coefs       # complex coefficients per signal (all dictionaries)
    int max_frames    # scratch size: max over dictionaries of n_step * wsize (plain)
                      # or n_step * (2 wsize + 2) (folded)
    int is_double
    void* mult        # (n_coefs,) 1 for DC / Nyquist, 2 otherwise
    tf_dict d[16]

ctypedef struct eps_item:
    # one coefficient of the epsilon norm: key = |y| / w (magnitude over its time
    # weight) and cw2 = c w^2 (multiplicity times squared weight), from which
    # c y^2 = cw2 key^2 and c y w = cw2 key
    double key
    double cw2

ctypedef struct tf_info:
    int n_iter
    int n_active
    int status
    int n_obj
    int n_accel_try
    int n_accel
    double gap
    double p_obj
    double d_obj

ctypedef struct bcd_args:
    # one inner solve on a working set (see bcd_solve); arrays in the plan's
    # precision, row-major
    int n_ws
    int n_orient
    int n_chan
    const void* GT          # (n_ws * n_orient, n_chan) rows of G^T
    const void* M           # (n_chan, T)
    void* R                 # (n_chan, T), = M - G_ws X on entry, updated
    void* X                 # (n_ws * n_orient, T), = PhiT(Z), updated
    void* Z                 # (n_ws * n_orient, 2 K), updated
    unsigned char* active   # (n_ws,), updated
    const void* lc          # (n_ws,) Lipschitz constants (<= 0: block skipped)
    const void* wsp         # (n_ws,) space weights or NULL
    const void* wt          # (n_ws, K) time weights or NULL
    const void* gram        # (n_ws, n_orient, n_orient) G_j^T G_j
    const void* xgram       # (n_ws, n_orient, n_orient) cross Grams or NULL
    double alpha_s
    double alpha_t
    double tol
    int maxit
    int dgap_freq
    int gap_start
    int n_inner
    int anderson_k
    Py_ssize_t cap_rows
    # scratch (sizes: see bcd_solve)
    void* work
    eps_item* items
    void* snap
    void* pipe              # two-thread sweep buffer or NULL
    void* rprev             # dual extrapolation state or NULL ...
    double* extrap          # ... with its 2 doubles
    void* tref              # refined dual point (n_chan, T) or NULL ...
    double* refine          # ... with its 1 double (1: tref is the best point)
    double* hist            # (max_hist,) primal objective at each gap evaluation
    int max_hist

ctypedef struct tf_problem:
    # input of tf_solve; arrays in the plan's precision, row-major
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
    # the float32 start of a float64 solve (tfx_params_t.mixed; NULL otherwise):
    # the start hands its last screening to the float64 solve, whose first
    # outer iteration bounds the dual norms from it (triangle inequality)
    void* keep_gtr              # out: G^T R of the last certificate (n_sources, T) ...
    double* keep_nu             # ... and upper bounds of its dual norms (n_pos,)
    int* kept                   # ... set to 1 once they are written
    const float* seed_gtr       # in: a float32 G^T R (n_sources, T) and upper
    const double* seed_nu       # bounds of its dual norms, as exact float64 values
