# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Shared C types of the core: fused float type, status codes, plan structs."""

ctypedef fused floating:
    float
    double

# Status codes returned by the nogil kernels; Python decides what to raise or warn.
cpdef enum Status:
    TFX_OK = 0              # converged: gap < tol
    TFX_MAXIT = 1           # iteration cap reached before gap < tol
    TFX_NONFINITE = 2       # a NaN/Inf appeared in the iterates
    TFX_BAD_ARG = 3         # inconsistent sizes passed to the kernel

cdef enum:
    TFX_MAX_DICTS = 16

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
