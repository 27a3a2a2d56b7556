# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Input checks shared by the solvers and the MNE-facing layer.

Every check raises a ``ValueError`` or ``TypeError`` that names the parameter and
the value received, before any heavy work.
"""

import numbers
import operator

import numpy as np


def _short(value):
    """Compact repr of a received value for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    r = repr(value)
    return r if len(r) < 80 else r[:77] + "..."


def check_real_array(x, name, ndim, dtype=None, allow_empty=False):
    """Return ``x`` as a finite real array of ``ndim`` dims (a view when possible)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array, got {_short(x)}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be an array, got {_short(x)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real valued, got dtype {arr.dtype}")
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or Inf)")
    return arr


def check_int(value, name, min_value=None):
    """Integer (not bool) at least ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        try:
            ok = float(value) == int(value)
        except Exception:
            ok = False
        if isinstance(value, bool) or not ok or isinstance(value, str):
            raise TypeError(f"{name} must be an integer, got {_short(value)}")
    value = operator.index(value) if not isinstance(value, float) else int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {name}={value}")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """Finite real scalar in the given interval."""
    if isinstance(value, bool) or not isinstance(
        value, numbers.Real | np.floating | np.integer
    ):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {name}={value}")
    bad = (low is not None and (value < low or (low_open and value == low))) or (
        high is not None and (value > high or (high_open and value == high))
    )
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        lo = low if low is not None else "-inf"
        hi = high if high is not None else "inf"
        rng = f"{lb}{lo}, {hi}{hb}"
        raise ValueError(f"{name} must be in {rng}, got {name}={value}")
    return value


def check_dgap_freq(dgap_freq):
    """dgap_freq: positive integer or np.inf (never check inside a solve)."""
    if isinstance(dgap_freq, numbers.Real) and not isinstance(dgap_freq, bool):
        if dgap_freq == np.inf:
            return 0
        if dgap_freq > 0 and float(dgap_freq) == int(dgap_freq):
            return int(dgap_freq)
    raise ValueError(
        "dgap_freq must be a positive integer or np.inf, got "
        f"dgap_freq={_short(dgap_freq)}"
    )


def check_wsize_tstep(wsize, tstep):
    """Validate window sizes and steps like MNE; return two tuples of ints."""
    ws = np.atleast_1d(np.asarray(wsize))
    if tstep is None:
        raise ValueError(
            f"tstep must be an integer or a list of integers, got tstep={tstep!r}"
        )
    ts = np.atleast_1d(np.asarray(tstep))
    if ws.ndim != 1 or ws.size == 0:
        raise ValueError(
            f"wsize must be an integer or a non-empty list, got wsize={_short(wsize)}"
        )
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(
            f"tstep must be an integer or a non-empty list, got tstep={_short(tstep)}"
        )
    if len(ws) != len(ts):
        raise ValueError(
            "The same number of window sizes and steps must be passed. "
            f"Got tstep = {ts.tolist()} and wsize = {ws.tolist()}"
        )
    out_w, out_t = [], []
    for w, t in zip(ws, ts):
        for name, v in (("wsize", w), ("tstep", t)):
            if isinstance(v, np.bool_) or not (
                np.issubdtype(np.asarray(v).dtype, np.integer)
                or (
                    np.issubdtype(np.asarray(v).dtype, np.floating) and float(v) == int(v)
                )
            ):
                raise TypeError(
                    f"{name} must hold integers, got "
                    f"{name}={_short(wsize if name == 'wsize' else tstep)}"
                )
        w, t = int(w), int(t)
        if w <= 0 or w % 4:
            raise ValueError(f"wsize must be a positive multiple of 4, got wsize={w}")
        if t <= 0 or t % 2 or w % t:
            raise ValueError(
                "tstep must be a positive multiple of 2 that divides wsize, got "
                f"tstep={t} "
                f"for wsize={w}"
            )
        if t > w // 2:
            raise ValueError(
                f"tstep must be at most wsize / 2, got tstep={t} for wsize={w}"
            )
        out_w.append(w)
        out_t.append(t)
    return tuple(out_w), tuple(out_t)


def check_bool(value, name):
    """A bool (or NumPy bool); truthy values such as 'yes' or 1 are refused."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {name}={_short(value)}")
    return bool(value)


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_alpha(alpha):
    """alpha of tf_mixed_norm: a number in (0, 100), in percent of alpha_max."""
    alpha = check_float(alpha, "alpha")
    if not 0.0 <= alpha < 100.0:
        raise ValueError(f"alpha must be in [0, 100). Got alpha = {alpha}")
    if alpha == 0.0:
        raise ValueError(
            "alpha must be > 0: alpha = 0 removes the regularisation and the problem "
            "has no sparse solution. Got alpha = 0.0"
        )
    return alpha


def check_l1_ratio(l1_ratio):
    """l1_ratio of tf_mixed_norm: a number in [0, 1]."""
    if l1_ratio is None:
        raise ValueError("l1_ratio must be a number in [0, 1] here, got l1_ratio=None")
    l1_ratio = check_float(l1_ratio, "l1_ratio")
    if not 0.0 <= l1_ratio <= 1.0:
        raise ValueError(f"l1_ratio must be in range [0, 1]. Got l1_ratio = {l1_ratio}")
    return l1_ratio


#: Channel types a ``rank`` dict may name.
RANK_CH_TYPES = (
    "meg",
    "mag",
    "grad",
    "eeg",
    "seeg",
    "ecog",
    "dbs",
    "csd",
    "fnirs",
    "hbo",
    "hbr",
    "eog",
    "ecg",
    "emg",
    "misc",
)
#: Keys of a ``depth`` dict (those of MNE's depth prior).
DEPTH_KEYS = ("exp", "limit", "limit_depth_chs", "combine_xyz", "allow_fixed_depth")


def check_depth(depth):
    """depth: None, a non-negative number or a dict of MNE's depth prior."""
    if depth is not None and not isinstance(depth, dict):
        if not _real(depth) or not np.isfinite(depth) or depth < 0:
            raise ValueError(
                "depth must be None, a non-negative number or a dict, got "
                f"depth={depth!r}"
            )
    if isinstance(depth, dict):
        unknown = set(depth) - set(DEPTH_KEYS)
        if unknown:
            raise ValueError(
                f"depth has unknown keys {sorted(map(str, unknown))} (allowed: "
                f"{', '.join(repr(k) for k in DEPTH_KEYS)}), got depth={depth!r}"
            )
        exp = depth.get("exp", 0.8)
        if exp is not None and not (_real(exp) and np.isfinite(exp) and exp >= 0):
            raise ValueError(
                f"depth['exp'] must be None or a non-negative number, got depth={depth!r}"
            )
        limit = depth.get("limit", 10.0)
        if limit is not None and not (_real(limit) and np.isfinite(limit) and limit > 0):
            raise ValueError(
                f"depth['limit'] must be None or a positive number, got depth={depth!r}"
            )
    return depth


def check_rank(rank):
    """rank: None, 'full', 'info' or a dict {channel type: non-negative integer}."""
    if rank is None or (isinstance(rank, str) and rank in ("full", "info")):
        return rank
    if not isinstance(rank, dict):
        raise ValueError(
            f"rank must be None, 'full', 'info' or a dict, got rank={rank!r}"
        )
    for key, val in rank.items():
        if key not in RANK_CH_TYPES:
            raise ValueError(
                f"rank has an unknown channel type {key!r}, got rank={rank!r}"
            )
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 0:
            raise ValueError(
                f"rank[{key!r}] must be a non-negative integer, got rank={rank!r}"
            )
    return rank


def check_loose(loose):
    """loose: 'auto', a number in [0, 1] or a dict (MNE checks the dict)."""
    if isinstance(loose, str):
        ok = loose == "auto"
    else:
        ok = isinstance(loose, dict) or (_real(loose) and 0.0 <= float(loose) <= 1.0)
    if not ok:
        raise ValueError(
            f"loose must be 'auto', a number in [0, 1] or a dict, got loose={loose!r}"
        )
    return loose


def check_pick_ori(pick_ori):
    """pick_ori: None, 'vector' or 'normal'."""
    if pick_ori is None or (
        isinstance(pick_ori, str) and pick_ori in ("vector", "normal")
    ):
        return pick_ori
    raise ValueError(
        f"pick_ori must be None, 'vector' or 'normal', got pick_ori={pick_ori!r}"
    )


def check_window(window):
    """window: None, seconds (both ends) or two; returns None or (left, right)."""
    if window is None:
        return None
    if _real(window):
        lr = (float(window), float(window))
    elif (
        isinstance(window, tuple | list)
        and len(window) == 2
        and all(_real(w) for w in window)
    ):
        lr = (float(window[0]), float(window[1]))
    else:
        raise ValueError(
            "window must be None, a number of seconds or a tuple of two, got "
            f"window={window!r}"
        )
    if min(lr) < 0 or not np.all(np.isfinite(lr)):
        raise ValueError(f"window must be non-negative and finite, got window={window!r}")
    return lr
