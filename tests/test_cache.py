# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""The cache of prepared forward operators (``tfmxne._cache``): reused when the
forward, the noise covariance, the channels and the options are the same, never
a stale answer when one of them is replaced or changed in place (what the
fingerprint detects), and the documented limit (a change the fingerprint's
sample misses) undone by ``tfmxne.clear_cache()``."""

import copy

import numpy as np
import pytest

import tfmxne
from tfmxne import _cache, _prepare

KW = dict(alpha=60.0, l1_ratio=0.03, verbose=False)


@pytest.fixture
def inputs(small_problem):
    """Private copies (the tests change them in place), an empty cache."""
    evoked, forward, noise_cov = small_problem
    tfmxne.clear_cache()
    yield evoked.copy(), copy.deepcopy(forward), copy.deepcopy(noise_cov)
    tfmxne.clear_cache()


def _answer(evoked, forward, noise_cov, **kw):
    res = tfmxne.solve(evoked, forward, noise_cov, **dict(KW, **kw))
    return res.X, res.active_set, res.alpha_max


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def _fresh(evoked, forward, noise_cov, **kw):
    tfmxne.clear_cache()
    return _answer(evoked, forward, noise_cov, **kw)


def _count_preparations(monkeypatch):
    calls = []
    orig = _prepare.prepare

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(_prepare, "prepare", counting)
    return calls


def test_reused_by_repeated_calls_paths_and_batches(inputs, monkeypatch):
    evoked, forward, noise_cov = inputs
    calls = _count_preparations(monkeypatch)
    first = _answer(evoked, forward, noise_cov)
    assert len(calls) == 1
    # another call, another evoked object of the same channels, a path, a batch
    assert _same(_answer(evoked, forward, noise_cov), first)
    other = evoked.copy()
    other.data *= 1.1
    tfmxne.solve(other, forward, noise_cov, **KW)
    path = tfmxne.tf_mixed_norm_path(
        evoked, forward, noise_cov, alphas=[70.0, 60.0], l1_ratio=0.03, verbose=False
    )
    tfmxne.solve([evoked, other], forward, noise_cov, **KW)
    assert len(calls) == 1
    assert all(r.converged and r.gap <= r.tol for r in path)
    tfmxne.clear_cache()
    assert _same(_answer(evoked, forward, noise_cov), first)  # the same bits
    assert len(calls) == 2
    # no cache: every call prepares
    monkeypatch.setenv("TFMXNE_CACHE_MB", "0")
    tfmxne.clear_cache()
    _answer(evoked, forward, noise_cov)
    _answer(evoked, forward, noise_cov)
    assert len(calls) == 4


def _scale_gain_row(ev, fwd, cov, kw):
    # a whole channel of the gain, in place (the conversion to surface
    # orientations starts from _orig_sol: both arrays)
    fwd["sol"]["data"][7] *= 3.0
    fwd["_orig_sol"][7] *= 3.0


def _scale_gain_source(ev, fwd, cov, kw):
    fwd["sol"]["data"][:, 30:33] *= 4.0
    fwd["_orig_sol"][:, 30:33] *= 4.0


def _replace_forward(ev, fwd, cov, kw):
    new = copy.deepcopy(fwd)
    new["_orig_sol"][:, :60] *= 2.0
    new["sol"]["data"][:, :60] *= 2.0
    return dict(forward=new)


def _scale_cov_channel(ev, fwd, cov, kw):
    k = cov.ch_names.index(ev.ch_names[10])
    cov["data"][k, :] *= 4.0
    cov["data"][:, k] *= 4.0


def _replace_cov(ev, fwd, cov, kw):
    new = copy.deepcopy(cov)
    d = np.linspace(1.0, 2.0, len(new.ch_names))
    new["data"] = new["data"] * np.outer(d, d)
    return dict(noise_cov=new)


def _mark_bad(ev, fwd, cov, kw):
    ev.info["bads"] = ev.info["bads"] + [ev.ch_names[20]]


def _pick_channels(ev, fwd, cov, kw):
    return dict(evoked=ev.copy().pick(ev.ch_names[:300]))


def _drop_projector(ev, fwd, cov, kw):
    with ev.info._unlock():
        ev.info["projs"] = ev.info["projs"][1:]


def _option(name, value):
    def change(ev, fwd, cov, kw):
        kw[name] = value

    change.__name__ = f"option_{name}"
    return change


def _weights(ev, fwd, cov, kw):
    kw["weights"] = np.linspace(0.2, 1.0, fwd["nsource"])


CHANGES = [
    _scale_gain_row,
    _scale_gain_source,
    _replace_forward,
    _scale_cov_channel,
    _replace_cov,
    _mark_bad,
    _pick_channels,
    _drop_projector,
    _option("loose", 0.5),
    _option("depth", 0.5),
    _option("pca", False),
    _option("rank", dict(meg=300, eeg=58)),
    _weights,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.lstrip("_"))
def test_no_stale_answer(inputs, change):
    """After each change the cached call gives the answer of a fresh preparation,
    and that answer differs from the one before the change (the change matters,
    so a stale answer would be caught)."""
    evoked, forward, noise_cov = inputs
    before = _answer(evoked, forward, noise_cov)
    kw = {}
    args = dict(evoked=evoked, forward=forward, noise_cov=noise_cov)
    args.update(change(evoked, forward, noise_cov, kw) or {})
    after = _answer(**args, **kw)  # the cache holds the entry of `before`
    assert not _same(after, before)
    assert _same(after, _fresh(**args, **kw))


def test_change_missed_by_the_sample(inputs):
    """The documented limit: one gain value changed in place between the
    fingerprint's samples is not seen; clear_cache() is the remedy."""
    evoked, forward, noise_cov = inputs
    before = _answer(evoked, forward, noise_cov)
    # flat index 1 (memory order) is never sampled: the step is odd and > 1
    for a in (forward["_orig_sol"], forward["sol"]["data"]):
        flat = a.ravel(order="K")
        assert flat.size // _cache.N_SAMPLES > 1 and np.shares_memory(flat, a)
        flat[1] *= 1e3
    stale = _answer(evoked, forward, noise_cov)
    assert _same(stale, before)
    fresh = _fresh(evoked, forward, noise_cov)
    assert not _same(fresh, before)


def test_memory_budget(inputs, monkeypatch):
    """Entries beyond the budget are dropped, oldest first; a gain larger than
    the budget is not kept."""
    evoked, forward, noise_cov = inputs
    _answer(evoked, forward, noise_cov)
    (entry,) = _cache._ENTRIES.values()
    monkeypatch.setenv("TFMXNE_CACHE_MB", str(1.5 * entry.nbytes / 2**20))
    _answer(evoked, forward, noise_cov, loose=0.5)  # a second entry: over budget
    assert len(_cache._ENTRIES) == 1
    (kept,) = _cache._ENTRIES.values()
    assert kept.fingerprint != entry.fingerprint  # the newest stays
    monkeypatch.setenv("TFMXNE_CACHE_MB", str(0.5 * entry.nbytes / 2**20))
    tfmxne.clear_cache()
    _answer(evoked, forward, noise_cov)
    assert len(_cache._ENTRIES) == 0


def test_entry_dies_with_its_forward(inputs):
    evoked, forward, noise_cov = inputs
    fwd2 = copy.deepcopy(forward)
    _answer(evoked, fwd2, noise_cov)
    assert _cache.stats()["entries"] == 1
    del fwd2
    _answer(evoked, forward, noise_cov)  # the dead entry is dropped on the next call
    assert _cache.stats()["entries"] == 1


def test_cached_arrays_are_read_only(inputs):
    evoked, forward, noise_cov = inputs
    res = tfmxne.solve(evoked, forward, noise_cov, **KW)
    with pytest.raises(ValueError, match="read-only"):
        res._whitener[0, 0] = 1.0
