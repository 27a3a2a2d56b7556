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
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.floating | np.integer):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {name}={value}")
    bad = (
        (low is not None and (value < low or (low_open and value == low)))
        or (high is not None and (value > high or (high_open and value == high)))
    )
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        rng = f"{lb}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hb}"
        raise ValueError(f"{name} must be in {rng}, got {name}={value}")
    return value


def check_dgap_freq(dgap_freq):
    """dgap_freq: positive integer or np.inf (never check inside a solve)."""
    if isinstance(dgap_freq, numbers.Real) and not isinstance(dgap_freq, bool):
        if dgap_freq == np.inf:
            return 0
        if dgap_freq > 0 and float(dgap_freq) == int(dgap_freq):
            return int(dgap_freq)
    raise ValueError(f"dgap_freq must be a positive integer or np.inf, got dgap_freq={_short(dgap_freq)}")


def check_wsize_tstep(wsize, tstep):
    """Validate window sizes and steps like MNE; return two tuples of ints."""
    ws = np.atleast_1d(np.asarray(wsize))
    if tstep is None:
        raise ValueError(f"tstep must be an integer or a list of integers, got tstep={tstep!r}")
    ts = np.atleast_1d(np.asarray(tstep))
    if ws.ndim != 1 or ws.size == 0:
        raise ValueError(f"wsize must be an integer or a non-empty list, got wsize={_short(wsize)}")
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"tstep must be an integer or a non-empty list, got tstep={_short(tstep)}")
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
                or (np.issubdtype(np.asarray(v).dtype, np.floating) and float(v) == int(v))
            ):
                raise TypeError(f"{name} must hold integers, got {name}={_short(wsize if name == 'wsize' else tstep)}")
        w, t = int(w), int(t)
        if w <= 0 or w % 4:
            raise ValueError(f"wsize must be a positive multiple of 4, got wsize={w}")
        if t <= 0 or t % 2 or w % t:
            raise ValueError(
                f"tstep must be a positive multiple of 2 that divides wsize, got tstep={t} "
                f"for wsize={w}"
            )
        if t > w // 2:
            raise ValueError(f"tstep must be at most wsize / 2, got tstep={t} for wsize={w}")
        out_w.append(w)
        out_t.append(t)
    return tuple(out_w), tuple(out_t)


def check_bool(value, name):
    """A bool (or NumPy bool); truthy values such as 'yes' or 1 are refused."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {name}={_short(value)}")
    return bool(value)
