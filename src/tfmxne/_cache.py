# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The cache of prepared forward operators (:func:`tfmxne.clear_cache`).

Preparing the forward operator (channel selection, the covariance's rank and
eigendecomposition, whitening, depth and orientation priors) is the fixed cost
of every solve: 0.1 s on a 500-position surface, 0.3-0.7 s on volume grids of
4000-12000 positions. It depends only on the forward, the noise covariance,
the channels of the data and the options of the ``'forward'`` stage
(``tfmxne._options.of_stage``), so it is kept and reused by every later call
with the same four: the levels of a path, the automatic alpha, the evokeds of
a batch, and repeated calls (a script solving several conditions, or the same
one with other alphas).

The key
-------
An entry is found by the *identity* of the forward and of the noise
covariance (weak references: an entry dies with its forward or covariance)
and is used only if a *fingerprint* taken then still matches:

* the forward: the shape, dtype and channel names of the gain, its
  orientation (``source_ori``, ``surf_ori``, ``nsource``), its channels'
  Info (names, compensation), MNE's identifiers (``info['meas_id']``, the
  source spaces' ``id``, ``type`` and number of positions, the head-MRI
  transform), the identity of its source space object, and a strided sample of
  about 4096 values of each of its arrays ``sol['data']``, ``_orig_sol``
  (MNE's orientation conversion starts from it) and ``source_nn``;
* the noise covariance: names, bads, ``diag``, number of degrees of freedom,
  projectors (descriptions, activity, vectors) and a strided sample of its
  matrix;
* the data's Info (not its identity: every evoked of a recording shares the
  entry): channel names in order, bads, channel kinds, coil types and units,
  projectors (descriptions, activity, vectors), compensation grade,
  ``meas_id``;
* the options of the ``'forward'`` stage, by value (the weights by all their
  values).

What it detects, and what it does not
-------------------------------------
Replacing any of the objects, or any change to the metadata above (picking or
renaming channels, marking bads, adding, removing, activating a projector,
converting the forward's orientation, another option), gives a new
preparation. An in-place change of the gain, the covariance matrix or the
orientations is detected when it touches a sampled value: scaling an array,
changing a whole channel (a row of the gain, a row and column of the
covariance) or a whole source, which the strided samples cross. A change of a
few values that misses the samples (one entry of the gain or the covariance)
is *not* detected, nor is an in-place change of the source space's own arrays
(positions, normals, patch information): after such a change call
:func:`tfmxne.clear_cache` (or pass a copy).

Memory
------
Entries are kept most recently used first, within ``TFMXNE_CACHE_MB``
megabytes (environment variable, read at each insertion; default 1024) of
prepared gains; the oldest go first, a gain larger than the budget is not
kept, and ``TFMXNE_CACHE_MB=0`` turns the cache off. An entry also holds the
forward's arrays it shares (the prepared forward is a light copy), released
with the entry; an entry whose forward or covariance is gone (weak
references) is dropped at the next lookup.
"""

import collections
import os
import threading
import weakref

import numpy as np

from . import _compat

#: Values sampled from each array of the fingerprint.
N_SAMPLES = 4096
#: Default budget of the cache (MB of prepared gains); ``TFMXNE_CACHE_MB``.
DEFAULT_MB = 1024

_LOCK = threading.Lock()
_ENTRIES = collections.OrderedDict()  # key -> _Entry, most recent last
_STATS = {"hits": 0, "misses": 0}


class _Entry:
    __slots__ = ("refs", "fingerprint", "value", "nbytes")

    def __init__(self, refs, fingerprint, value, nbytes):
        self.refs, self.fingerprint, self.value, self.nbytes = (
            refs,
            fingerprint,
            value,
            nbytes,
        )


def budget():
    """The cache's budget in bytes (``TFMXNE_CACHE_MB``)."""
    text = os.environ.get("TFMXNE_CACHE_MB", "")
    try:
        mb = float(text) if text.strip() else DEFAULT_MB
    except ValueError:
        mb = DEFAULT_MB
    return max(0.0, mb) * 2.0**20


def clear_cache():
    """Forget the prepared forward operators that tfmxne keeps for reuse.

    Every call of :func:`tfmxne.solve`, :func:`tfmxne.tf_mixed_norm`,
    :func:`tfmxne.tf_mixed_norm_path` and :func:`tfmxne.solve_epochs` keeps
    its prepared forward operator (the whitened gain with its priors, the
    whitener, the channels) for the next call with the same forward, noise
    covariance, channels and options, which then skips the preparation. The
    cache is keyed on the identity of the forward and the covariance and
    checked against a cheap fingerprint of them (shapes, channel names,
    projectors, MNE's identifiers and a strided sample of their arrays); its
    memory is bounded by the environment variable ``TFMXNE_CACHE_MB``
    (default 1024 MB; 0 turns it off).

    Call this after changing a few values of a forward's gain or of a noise
    covariance *in place* (a change the sample may miss) or of a source
    space's arrays, or to release the memory. Replacing an object, scaling an
    array, changing a whole channel or source, picking channels, marking bads,
    changing projectors or options are detected without it (see the
    documentation's "Reusing the preparation").
    """
    with _LOCK:
        _ENTRIES.clear()


def stats():
    """Hits, misses and entries (for tests and benchmarks)."""
    with _LOCK:
        return dict(_STATS, entries=len(_ENTRIES))


# --------------------------------------------------------------------------
# fingerprints
# --------------------------------------------------------------------------
def _sample(a):
    """About :data:`N_SAMPLES` values of ``a`` spread over its memory, with its
    shape and dtype (the stride is odd, so that the samples cross the rows and
    columns of a 2D array rather than fall in a few of them)."""
    if a is None:
        return None
    a = np.asarray(a)
    flat = a.ravel(order="K")  # (a view for C or F order arrays)
    step = max(1, flat.size // N_SAMPLES) | 1
    return (a.shape, a.dtype.str, flat[::step].tobytes())


def _projs(projs):
    return tuple(
        (
            p["desc"],
            bool(p["active"]),
            _sample(p["data"]["data"]),
            tuple(p["data"]["col_names"]),
        )
        for p in projs
    )


def _meas_id(info):
    mid = info.get("meas_id")
    if mid is None:
        return None
    return (int(mid["secs"]), int(mid["usecs"]), tuple(np.ravel(mid["machid"]).tolist()))


def _comp_grade(info):
    return _compat.compensation_grade(info)


def _info_print(info):
    """The data's channels as the preparation reads them."""
    return (
        tuple(info["ch_names"]),
        tuple(info["bads"]),
        tuple((int(c["kind"]), int(c["coil_type"]), int(c["unit"])) for c in info["chs"]),
        _projs(info["projs"]),
        _comp_grade(info),
        _meas_id(info),
    )


def _forward_print(fwd):
    src = fwd["src"]
    trans = fwd.get("mri_head_t")
    return (
        _sample(fwd["sol"]["data"]),
        _sample(fwd.get("_orig_sol")),
        _sample(fwd.get("source_nn")),
        tuple(fwd["sol"]["row_names"]),
        tuple(fwd["info"]["ch_names"]),
        _comp_grade(fwd["info"]),
        _meas_id(fwd["info"]),
        int(fwd["source_ori"]),
        bool(fwd["surf_ori"]),
        int(fwd["nsource"]),
        id(src),
        tuple((s.get("id"), s.get("type"), int(s["nuse"])) for s in src),
        None if trans is None else trans["trans"].tobytes(),
    )


def _cov_print(cov):
    return (
        tuple(cov["names"]),
        tuple(cov["bads"]),
        bool(cov["diag"]),
        cov.get("nfree"),
        _projs(cov["projs"]),
        _sample(cov["data"]),
    )


def _option_value(value):
    """A hashable form of an option's value (arrays and dicts by value)."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _option_value(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_option_value(v) for v in value))
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.dtype.str, value.tobytes())
    if hasattr(value, "data") and hasattr(value, "vertices"):  # a source estimate
        vert = value.vertices if isinstance(value.vertices, list) else [value.vertices]
        return (
            "stc",
            tuple(np.asarray(v).tobytes() for v in vert),
            _option_value(np.asarray(value.data)),
        )
    return ("value", type(value).__name__, repr(value))


def key_of(info, forward, noise_cov, options):
    """The lookup key (identities) and the fingerprint of one preparation."""
    refs = (weakref.ref(forward), weakref.ref(noise_cov))
    fingerprint = (
        _forward_print(forward),
        _cov_print(noise_cov),
        _info_print(info),
        tuple(sorted((k, _option_value(v)) for k, v in options.items())),
    )
    return (id(forward), id(noise_cov)), refs, fingerprint


# --------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------
def _alive(entry, forward, noise_cov):
    return entry.refs[0]() is forward and entry.refs[1]() is noise_cov


def get(info, forward, noise_cov, options, make):
    """The prepared forward of these inputs: the cached one if its key and
    fingerprint match, else ``make()`` (kept within the budget)."""
    ids, refs, fingerprint = key_of(info, forward, noise_cov, options)
    key = (ids, fingerprint)
    with _LOCK:
        _drop_dead()
        entry = _ENTRIES.get(key)
        if entry is not None and _alive(entry, forward, noise_cov):
            _ENTRIES.move_to_end(key)
            _STATS["hits"] += 1
            return entry.value
        _STATS["misses"] += 1
    value = make()
    nbytes = _nbytes(value)
    limit = budget()
    with _LOCK:
        # entries of these objects before an in-place change can never match again
        for k in [
            k
            for k, e in _ENTRIES.items()
            if k[0] == ids and e.fingerprint[:2] != fingerprint[:2]
        ]:
            del _ENTRIES[k]
        if nbytes > limit:
            return value
        _ENTRIES[key] = _Entry(refs, fingerprint, value, nbytes)
        _ENTRIES.move_to_end(key)
        total = sum(e.nbytes for e in _ENTRIES.values())
        while total > limit and len(_ENTRIES) > 1:
            _, old = _ENTRIES.popitem(last=False)
            total -= old.nbytes
    return value


def _drop_dead():
    """Entries whose forward or covariance is gone (their ids may be reused)."""
    for key in [
        k for k, e in _ENTRIES.items() if e.refs[0]() is None or e.refs[1]() is None
    ]:
        del _ENTRIES[key]


def _nbytes(value):
    return int(value.gain.nbytes + value.whitener.nbytes)
