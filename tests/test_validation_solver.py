# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Bad inputs of the array solvers raise ValueError / TypeError naming the parameter."""

import re
import warnings

import numpy as np
import pytest

import tfmxne

N_SENS, N_SRC, N_TIMES = 6, 6, 32


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N_SENS, N_TIMES)), rng.standard_normal((N_SENS, N_SRC))


def _call(solver, M, G, **kw):
    args = dict(
        alpha_space=1.0,
        alpha_time=0.5,
        wsize=16,
        tstep=4,
        n_orient=1,
        maxit=5,
        tol=1e-8,
        dgap_freq=10,
        verbose=False,
    )
    n_iter = kw.pop("n_tfmxne_iter", 1)
    args.update(kw)
    if solver == "tf":
        return tfmxne.tf_mixed_norm_solver(M, G, **args)
    a_s, a_t = args.pop("alpha_space"), args.pop("alpha_time")
    return tfmxne.iterative_tf_mixed_norm_solver(M, G, a_s, a_t, n_iter, **args)


def _with_nan(a, value):
    a = a.copy()
    a[1, 2] = value
    return a


# (id, kwargs or data transform, exception, regex naming the parameter, value text
# or compiled regex for the value)
CASES = [
    ("rows", dict(G=lambda M, G: G[:-1]), ValueError, r"M and G", "G.shape=(5, 6)"),
    ("n_orient_multiple", dict(n_orient=4), ValueError, r"n_orient", "n_orient=4"),
    ("n_orient_zero", dict(n_orient=0), ValueError, r"n_orient", "n_orient=0"),
    ("n_orient_neg", dict(n_orient=-3), ValueError, r"n_orient", "n_orient=-3"),
    ("n_orient_float", dict(n_orient=1.5), TypeError, r"n_orient", "1.5"),
    (
        "nan_M",
        dict(M=lambda M, G: _with_nan(M, np.nan)),
        ValueError,
        r"\bM\b",
        "non-finite",
    ),
    (
        "inf_M",
        dict(M=lambda M, G: _with_nan(M, np.inf)),
        ValueError,
        r"\bM\b",
        "non-finite",
    ),
    (
        "nan_G",
        dict(G=lambda M, G: _with_nan(G, np.nan)),
        ValueError,
        r"\bG\b",
        "non-finite",
    ),
    (
        "inf_G",
        dict(G=lambda M, G: _with_nan(G, -np.inf)),
        ValueError,
        r"\bG\b",
        "non-finite",
    ),
    (
        "neg_alpha_space",
        dict(alpha_space=-1.0),
        ValueError,
        r"alpha_space",
        "alpha_space=-1.0",
    ),
    (
        "neg_alpha_time",
        dict(alpha_time=-0.5),
        ValueError,
        r"alpha_time",
        "alpha_time=-0.5",
    ),
    ("nan_alpha_space", dict(alpha_space=np.nan), ValueError, r"alpha_space", "nan"),
    (
        "both_zero",
        dict(alpha_space=0.0, alpha_time=0.0),
        ValueError,
        r"alpha_space.*alpha_time",
        "alpha_space=0.0, alpha_time=0.0",
    ),
    ("wsize_not_mult4", dict(wsize=18, tstep=2), ValueError, r"wsize", "wsize=18"),
    (
        "wsize_list_not_mult4",
        dict(wsize=[16, 10], tstep=[4, 2]),
        ValueError,
        r"wsize",
        "wsize=10",
    ),
    ("tstep_odd", dict(tstep=3), ValueError, r"tstep", "tstep=3"),
    ("tstep_not_divider", dict(wsize=24, tstep=8 + 2), ValueError, r"tstep", "tstep=10"),
    ("tstep_too_big", dict(wsize=16, tstep=16), ValueError, r"tstep", "tstep=16"),
    (
        "tstep_list_odd",
        dict(wsize=[16, 8], tstep=[4, 1]),
        ValueError,
        r"tstep",
        "tstep=1",
    ),
    (
        "len_mismatch",
        dict(wsize=[16, 8], tstep=[4]),
        ValueError,
        r"wsize|tstep",
        re.compile(r"wsize = \[.*16.*8.*\]"),
    ),
    (
        "len_mismatch2",
        dict(wsize=16, tstep=[4, 2]),
        ValueError,
        r"wsize|tstep",
        re.compile(r"tstep = \[.*4.*2.*\]"),
    ),
    ("maxit_zero", dict(maxit=0), ValueError, r"maxit", "maxit=0"),
    ("maxit_neg", dict(maxit=-5), ValueError, r"maxit", "maxit=-5"),
    ("tol_zero", dict(tol=0.0), ValueError, r"\btol\b", "tol=0.0"),
    ("tol_neg", dict(tol=-1e-8), ValueError, r"\btol\b", "tol=-1e-08"),
    ("dgap_freq_zero", dict(dgap_freq=0), ValueError, r"dgap_freq", "dgap_freq=0"),
    ("dgap_freq_neg", dict(dgap_freq=-2), ValueError, r"dgap_freq", "dgap_freq=-2"),
    ("M_1d", dict(M=lambda M, G: M[0]), ValueError, r"\bM\b", "(32,)"),
    ("M_3d", dict(M=lambda M, G: M[None]), ValueError, r"\bM\b", "(1, 6, 32)"),
    ("G_1d", dict(G=lambda M, G: G[:, 0]), ValueError, r"\bG\b", "(6,)"),
    ("M_complex", dict(M=lambda M, G: M + 1j), ValueError, r"\bM\b", "complex"),
    ("M_str", dict(M=lambda M, G: "data"), TypeError, r"\bM\b", "'data'"),
    ("G_none", dict(G=lambda M, G: None), TypeError, r"\bG\b", "None"),
]


@pytest.mark.parametrize("solver", ["tf", "iterative"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(solver, case):
    _, kw, exc, name, value = case
    M, G = _data()
    kw = dict(kw)
    if "M" in kw:
        M = kw.pop("M")(M, G)
    if "G" in kw:
        G = kw.pop("G")(M, G)
    with pytest.raises(exc, match=name) as info:
        _call(solver, M, G, **kw)
    if isinstance(value, re.Pattern):
        assert value.search(str(info.value)), str(info.value)
    else:
        assert value in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "n_iter, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError)]
)
def test_bad_n_tfmxne_iter(n_iter, exc):
    M, G = _data()
    with pytest.raises(exc, match="n_tfmxne_iter") as info:
        _call("iterative", M, G, n_tfmxne_iter=n_iter)
    assert str(n_iter) in str(info.value)


def test_valid_edge_values_accepted():
    """Values at the edge of validity are accepted (no over-strict checks)."""
    M, G = _data()
    for kw in (
        dict(alpha_space=0.0),
        dict(alpha_time=0.0),
        dict(maxit=1, tol=1e3),
        dict(dgap_freq=np.inf),
        dict(dgap_freq=1),
        dict(n_orient=3),
        dict(n_orient=np.int64(2)),
        dict(wsize=np.int64(16), tstep=np.int32(8)),
        dict(wsize=[16], tstep=[4]),
        dict(wsize=(16, 8), tstep=(4, 2)),
        dict(wsize=np.array([16, 4]), tstep=np.array([4, 2])),
        dict(wsize=4, tstep=2),
    ):
        for solver in ("tf", "iterative"):
            with warnings.catch_warnings():
                # acceptance only: 5 epochs per inner solve need not converge
                warnings.filterwarnings(
                    "ignore", "tf_mixed_norm_solver did not converge", RuntimeWarning
                )
                warnings.filterwarnings(
                    "ignore", "iterative_tf_mixed_norm_solver did not", RuntimeWarning
                )
                X, A, E = _call(solver, M, G, **kw)
            assert X.shape[1] == N_TIMES and A.shape == (N_SRC,)


def test_dgap_l21l1_bad_inputs():
    M, G = _data()
    Z = np.zeros((0, 17 * 8), complex)
    act = np.zeros(N_SRC, bool)
    with pytest.raises(ValueError, match=r"\bM\b"):
        tfmxne.dgap_l21l1(M * np.nan, G, Z, act, 1.0, 0.5, 16, 4, 1)
    with pytest.raises(ValueError, match=r"\bG\b"):
        tfmxne.dgap_l21l1(M, G[:, 0], Z, act, 1.0, 0.5, 16, 4, 1)
    with pytest.raises(ValueError, match=re.escape("wsize")):
        tfmxne.dgap_l21l1(M, G, Z, act, 1.0, 0.5, 18, 2, 1)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_iterative_debias_bool(value):
    M, G = _data()
    with pytest.raises(TypeError, match="debias") as info:
        _call("iterative", M, G, debias=value)
    assert repr(value) in str(info.value)
    with pytest.raises(TypeError, match="return_gap"):
        _call("tf", M, G, return_gap=value)


def test_norm_epsilon_inf_bad_inputs():
    M, G = _data()
    with pytest.raises(ValueError, match="n_orient=4"):
        tfmxne.norm_epsilon_inf(G, M, 0.2, 4, 16, 4)
    with pytest.raises(ValueError, match="n_orient=0"):
        tfmxne.norm_epsilon_inf(G, M, 0.2, 0, 16, 4)
    with pytest.raises(ValueError, match=r"R and G .*G\.shape=\(5, 6\)"):
        tfmxne.norm_epsilon_inf(G[:-1], M, 0.2, 1, 16, 4)


def test_dgap_l21l1_bad_shapes_and_alphas():
    M, G = _data()
    Z = np.zeros((0, 9 * 8), complex)
    act = np.zeros(N_SRC, bool)
    with pytest.raises(ValueError, match="alpha_space=-1.0"):
        tfmxne.dgap_l21l1(M, G, Z, act, -1.0, 0.5, 16, 4, 1)
    with pytest.raises(ValueError, match=r"active_set.*\(6,\)"):
        tfmxne.dgap_l21l1(M, G, Z, act[:-1], 1.0, 0.5, 16, 4, 1)
    with pytest.raises(ValueError, match=r"Z must have one row per active source \(0\)"):
        tfmxne.dgap_l21l1(M, G, np.zeros((2, 9 * 8), complex), act, 1.0, 0.5, 16, 4, 1)
    with pytest.raises(ValueError, match="M and G"):
        tfmxne.dgap_l21l1(M, G[:-1], Z, act, 1.0, 0.5, 16, 4, 1)


def test_stft_istft_bad_inputs():
    M, _ = _data()
    with pytest.raises(ValueError, match=r"wsize=\[16, 8\]"):
        tfmxne.stft(M, [16, 8], [4, 2], verbose=False)
    X = tfmxne.stft(M, 16, 4, verbose=False)
    with pytest.raises(ValueError, match=r"X must have an odd number of rows.*got 8"):
        tfmxne.istft(X[:, :8], 4)
    with pytest.raises(TypeError, match="Tx"):
        tfmxne.istft(X, 4, "foo")
    # numpy integers and integral floats stay accepted for Tx
    assert tfmxne.istft(X, 4, np.int64(N_TIMES)).shape == M.shape
