# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
# The solver's options (public tfx_params_t, internal tf_tuning): their defaults,
# the ABI checks of the public structs, the one entry point tf_solve, and the
# Python names of the options.
# (included by _engine.pyx: shares its imports and types)

cdef enum:
    # largest struct_size accepted (a garbage size is refused, not trusted)
    _MAX_STRUCT_SIZE = 65536


cdef void tfx_params_default(tfx_params_t* prm) noexcept nogil:
    """The defaults of the public options (their one definition), written into
    the fields within ``prm.struct_size`` (the caller's size: see the ABI policy
    in cython_types.pxd); ``struct_size`` and ``abi_version`` are kept."""
    cdef tfx_params_t d
    cdef size_t n = prm.struct_size if prm.struct_size < sizeof(d) else sizeof(d)
    memset(&d, 0, sizeof(d))
    d.struct_size = prm.struct_size
    d.abi_version = prm.abi_version
    d.n_orient = 1
    d.tol = 1e-8
    d.maxit = 200
    d.dgap_freq = 10
    d.n_threads = 1
    d.debias = 0
    # No float32 start unless asked (tfmxne.solve asks).
    d.mixed = 0
    d.n_conditions = 1
    memcpy(prm, &d, n)


cdef void tf_tuning_default(tf_tuning* t) noexcept nogil:
    """The working-set loop's internal tuning (its one definition)."""
    memset(t, 0, sizeof(tf_tuning))
    # Cap on the outer working-set iterations of one solve (MNE has none).
    t.max_outer = 100
    # Outer iterations without a 10 % decrease of the gap before stopping.
    t.stall_outer = 5
    # The loop stops once its certified gap is below tol / 2: at a gap of tol
    # the iterate can still carry a few spurious positions, which a debiased
    # estimate amplifies (benchmarks/README.md: distance to the optimum).
    t.stop_gap_ratio = 0.5
    # First number of candidate positions added; the increment doubles.
    t.ws_start = 40
    # One prox step per block visit: the BCD sweep is cheapest per unit of
    # decrease with one (the block Gram would keep more steps cheap).
    t.n_inner = 1
    # A growing working set is solved to max(0.1 tol, 0.1 gap) (as celer does:
    # early working sets only as precisely as they deserve), with a first gap
    # check after 3 epochs; a complete one (nothing outside violates) to tol / 4.
    # (0.3 gap before momentum; with it the inner solves are cheap enough that a
    # tighter target saves outer certificates: CPU time over surf, vol7, vol5 at
    # alpha 25, 40, 60 -19 % in all, 7 mm and 5 mm at alpha 40 -16 % and -18 %.)
    t.inner_tol_ratio = 0.1
    t.inner_gap_frac = 0.1
    t.inner_gap_start = 3
    t.complete_tol_ratio = 0.25
    # Anderson acceleration (memory anderson_k, once an inner solve has run
    # anderson_start epochs): off, momentum replaces it. With momentum on, it
    # saves no epoch at the default tol (vol7 alpha 40: 55 epochs with momentum,
    # 63 with both) and about 10 % at tol 1e-8 (125 -> 113), where starting it
    # at epoch 40 saves none (benchmarks/README.md, "What was tried").
    t.anderson_k = 0
    t.anderson_start = 20
    t.dual_extrap = 1
    # The float32 start stops at a gap of 1e-5 ||M||^2 at most: float32
    # objectives carry about 1e-7 relative rounding, so tighter gaps are left
    # to the float64 solve.
    t.mixed_tol_ratio = 1e-5
    # Smallest working set swept by two threads (hand-offs cost more below).
    t.pipe_min_blocks = 16
    # Positions per thread in the first screening hand-off (then doubling up to
    # 8 times that): a hand-off costs ~0.1 ms, one exact evaluation ~50 us.
    t.screen_chunk = 32
    # Polls of a two-thread hand-off before the waiter blocks (a few
    # microseconds: a block visit takes tens).
    t.spin_us = 100
    # Momentum between epochs with adaptive restart in the inner solves: half the
    # epochs of the plain sweep at the default tol (vol7 alpha 40: 102 -> 55;
    # 1e-8: 222 with Anderson -> 125), nearer the optimum at equal tol.
    t.momentum = 1


# --------------------------------------------------------------------------
# ABI checks of the public structs
# --------------------------------------------------------------------------
cdef size_t _params_v2_size() noexcept nogil:
    """Size of tfx_params_t at ABI version 2 (the end of ``n_conditions``)."""
    cdef tfx_params_t d
    return <size_t> (<char*> &d.n_conditions - <char*> &d) + sizeof(int)


cdef size_t _info_v2_size() noexcept nogil:
    cdef tfx_info_t d
    return <size_t> (<char*> &d.n_restart - <char*> &d) + sizeof(int)


cdef size_t _result_v2_size() noexcept nogil:
    cdef tfx_result_t d
    return <size_t> (<char*> &d.outer_stride - <char*> &d) + sizeof(int)


cdef inline bint _abi_ok(size_t size, int version, size_t v2_size,
                         size_t lib_size) noexcept nogil:
    """A caller's struct: the library's ABI version, at least the version-2
    fields, at most what this library knows (a caller compiled against a newer
    tfmxne than the one installed is refused)."""
    return version == TFX_ABI_VERSION and v2_size <= size <= lib_size


cdef int _read_params(const tfx_params_t* prm, tfx_params_t* out) noexcept nogil:
    """The caller's options with the defaults of the fields it does not know."""
    if prm == NULL:
        return TFX_BAD_ARG
    if not _abi_ok(prm.struct_size, prm.abi_version, _params_v2_size(),
                   sizeof(tfx_params_t)):
        return TFX_BAD_ABI
    out.struct_size = sizeof(tfx_params_t)
    out.abi_version = TFX_ABI_VERSION
    tfx_params_default(out)
    memcpy(out, prm, prm.struct_size)
    return TFX_OK


cdef void tfx_result_clear(tfx_result_t* res) noexcept nogil:
    """Free the arrays of a result (NULL-safe) and zero it (its size and ABI
    version kept)."""
    cdef size_t size
    cdef int version
    if res == NULL:
        return
    size = res.struct_size
    version = res.abi_version
    free(res.positions)
    free(res.Z)
    free(res.X)
    free(res.R)
    free(res.theta)
    free(res.obj)
    free(res.outer)
    free(res.debias)
    memset(res, 0, sizeof(tfx_result_t))
    res.struct_size = size
    res.abi_version = version


cdef int _joint_plan(const tf_plan* p, int n_cond, tf_plan* q,
                     void** mult) noexcept nogil:
    """The plan of rows of ``n_cond`` conditions from a one-condition plan (its
    tiled multiplicities in ``mult``, to free)."""
    if n_cond < 1 or p.n_segs != 1:
        return TFX_BAD_ARG
    mult[0] = malloc(<Py_ssize_t> n_cond * p.n_coefs
                     * (sizeof(double) if p.is_double else sizeof(float)))
    if mult[0] == NULL:
        return TFX_NO_MEMORY
    return plan_segmented(p, n_cond, q, mult[0])


cdef int tf_solve(const tf_plan* p, const tfx_params_t* prm, const tf_tuning* tun,
                  const tf_problem* pb, tfx_result_t* res,
                  tfx_info_t* info) noexcept nogil:
    """Solve the (weighted) convex TF-MxNE problem; the one entry point.

    ``pb`` holds the data (precision of the plan), optional Lipschitz constants,
    weights, warm start and the screening of ``R = M``; ``prm`` the public
    options (checked against the ABI policy of cython_types.pxd), ``tun`` the
    internal tuning (NULL: the defaults). On return ``res`` holds the result
    (malloc'd arrays, release with ``tfx_result_clear``) for the statuses OK,
    MAXIT and INTERRUPTED, and is empty otherwise; ``info`` (or NULL) the
    diagnostics. Writes only the fields within the caller's struct sizes.
    Returns the status. Thread-safe: no global state.
    """
    cdef tfx_params_t P
    cdef tf_tuning U
    cdef tfx_result_t out
    cdef tfx_info_t inf
    cdef tf_plan q
    cdef void* mult = NULL
    cdef int st
    if res == NULL or not _abi_ok(res.struct_size, res.abi_version,
                                  _result_v2_size(), sizeof(tfx_result_t)):
        return TFX_BAD_ARG if res == NULL else TFX_BAD_ABI
    if info != NULL and not _abi_ok(info.struct_size, info.abi_version,
                                    _info_v2_size(), sizeof(tfx_info_t)):
        return TFX_BAD_ABI
    memset(&out, 0, sizeof(out))
    memset(&inf, 0, sizeof(inf))
    st = _read_params(prm, &P)
    if tun == NULL:
        tf_tuning_default(&U)
        tun = &U
    if st == TFX_OK and p != NULL and P.n_conditions != 1:
        # a joint solve: the plan of one condition, for rows of all of them
        st = _joint_plan(p, P.n_conditions, &q, &mult)
        p = &q
    if st == TFX_OK:
        st = _check_solve_args(p, &P, tun, pb)
    if st == TFX_OK:
        st = (_check_values(p, P.n_orient, pb, <const double*> NULL) if p.is_double
              else _check_values(p, P.n_orient, pb, <const float*> NULL))
    if st == TFX_OK and p.is_double and P.mixed:
        st = tf_solve_mixed(p, &P, tun, pb, &out, &inf)
    elif st == TFX_OK and p.is_double:
        st = _tf_solve_t(p, &P, tun, pb, &out, &inf, <const double*> NULL)
    elif st == TFX_OK:
        st = _tf_solve_t(p, &P, tun, pb, &out, &inf, <const float*> NULL)
    free(mult)
    inf.status = st
    out.struct_size = res.struct_size
    out.abi_version = res.abi_version
    memcpy(res, &out, res.struct_size)
    if info != NULL:
        inf.struct_size = info.struct_size
        inf.abi_version = info.abi_version
        memcpy(info, &inf, info.struct_size)
    return st


# --------------------------------------------------------------------------
# Python names of the options
# --------------------------------------------------------------------------
cdef tfx_params_t _P0


cdef inline size_t _off(const void* field) noexcept nogil:
    return <size_t> (<const char*> field - <const char*> &_P0)


#: The public options a Python caller sets by name, with their byte offset in
#: tfx_params_t and C type ('d' double, 'i' int); the alphas and n_orient are
#: arguments of solve. The internal tuning (tf_tuning) is set by its field names
#: (Cython converts the struct to and from a dict). tests/test_mixed.py checks
#: that these are exactly the public struct's option fields.
PUBLIC_OPTIONS = {
    "tol": (_off(&_P0.tol), "d"),
    "maxit": (_off(&_P0.maxit), "i"),
    "dgap_freq": (_off(&_P0.dgap_freq), "i"),
    "n_threads": (_off(&_P0.n_threads), "i"),
    "debias": (_off(&_P0.debias), "i"),
    "mixed": (_off(&_P0.mixed), "i"),
    "n_conditions": (_off(&_P0.n_conditions), "i"),
}


cdef void params_init(tfx_params_t* prm) noexcept nogil:
    """A full-size parameter struct of this library with the defaults."""
    prm.struct_size = sizeof(tfx_params_t)
    prm.abi_version = TFX_ABI_VERSION
    tfx_params_default(prm)


cdef int set_options(tfx_params_t* prm, tf_tuning* tun, dict options) except -1:
    """Set options by name (a public field of PUBLIC_OPTIONS or a tuning field);
    the one place that maps option names to the structs."""
    cdef dict tuning = tun[0]
    cdef char* base = <char*> prm
    for key, val in options.items():
        if key in PUBLIC_OPTIONS:
            off, kind = PUBLIC_OPTIONS[key]
            if kind == "d":
                (<double*> (base + <size_t> off))[0] = float(val)
            else:
                (<int*> (base + <size_t> off))[0] = int(val)
        elif key in tuning:
            tuning[key] = type(tuning[key])(val)
        else:
            raise TypeError(f"unknown solver option {key!r}")
    tun[0] = tuning
    return 0


def default_params():
    """The solver's default options (public and internal tuning), as a dict."""
    cdef tfx_params_t prm
    cdef tf_tuning tun
    cdef char* base = <char*> &prm
    params_init(&prm)
    tf_tuning_default(&tun)
    out = {}
    for key, (off, kind) in PUBLIC_OPTIONS.items():
        out[key] = ((<double*> (base + <size_t> off))[0] if kind == "d"
                    else (<int*> (base + <size_t> off))[0])
    out.update(<dict> tun)
    return out
