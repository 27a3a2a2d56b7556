# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""tfmxne against MNE-Python's own TF-MxNE on the same problem."""

import time

import numpy as np
from mne.utils import verbose

from .inverse import solve


def _vertices(stc):
    return stc.vertices if isinstance(stc.vertices, list) else [stc.vertices]


@verbose
def compare_with_mne(evoked, forward, noise_cov, result=None, *, verbose=None, **params):
    """Run :func:`mne.inverse_sparse.tf_mixed_norm` on a problem and compare.

    MNE's solver is run on the same data and parameters as tfmxne's (it is
    slow: tens of seconds on a full source space where tfmxne takes one).

    Parameters
    ----------
    evoked : Evoked
        The data.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    result : TFMxNEResult | None
        tfmxne's result on this problem with these ``params``; ``None``: it is
        computed here by :func:`tfmxne.solve`.
    %(verbose)s
    **params
        Parameters of :func:`mne.inverse_sparse.tf_mixed_norm` (``alpha``,
        ``l1_ratio``, ``loose``, ``depth``, ``maxit``, ``tol``, ``wsize``,
        ``tstep``, ..., but not ``return_residual`` and
        ``return_as_dipoles``), given to both solvers; ``alpha`` and ``l1_ratio``
        must be numbers (MNE has no automatic selection).

    Returns
    -------
    comparison : dict
        ``'mne_estimate'``: MNE's source estimate; ``'mne_time'``: seconds
        MNE took; ``'tfmxne_time'``: seconds tfmxne took
        (``result.elapsed``); ``'speedup'``: their ratio; ``'same_support'``:
        whether both estimates have the same vertices; ``'relative_difference'``:
        ``||tfmxne - MNE|| / ||MNE||`` of the estimates' data when the
        supports are the same, else ``None``; ``'common'``, ``'only_tfmxne'``,
        ``'only_mne'``: the vertices, one array per source space, found by both
        estimates, by tfmxne's only, by MNE's only.

    Raises
    ------
    Exception
        What MNE raises is not caught (for example its bare ``Exception``
        when no source survives alpha).
    """
    from mne.inverse_sparse import tf_mixed_norm as mne_tf_mixed_norm

    for name in ("return_residual", "return_as_dipoles"):
        if name in params:
            raise TypeError(
                f"compare_with_mne compares source estimates: {name} is not one of its "
                "parameters"
            )
    for name in ("alpha", "l1_ratio"):
        value = params.get(name)
        if value is None or isinstance(value, str):
            raise ValueError(
                f"{name} must be given as a number (MNE has no automatic selection), "
                f"got {name}={value!r}"
            )
    if result is None:
        result = solve(evoked, forward, noise_cov, return_residual=False, **params)
    t0 = time.perf_counter()
    stc = mne_tf_mixed_norm(evoked, forward, noise_cov, **params)
    t_mne = time.perf_counter() - t0
    t_ours = float(result.elapsed)
    est = result.estimate
    ours_v = (
        _vertices(est) if est is not None else [np.zeros(0, int) for _ in forward["src"]]
    )
    mne_v = _vertices(stc)
    same = len(ours_v) == len(mne_v) and all(
        np.array_equal(a, b) for a, b in zip(ours_v, mne_v)
    )
    rel = None
    if same and est is not None:
        den = float(np.linalg.norm(stc.data))
        rel = float(np.linalg.norm(est.data - stc.data)) / den if den > 0 else 0.0
    return dict(
        mne_estimate=stc,
        mne_time=t_mne,
        tfmxne_time=t_ours,
        speedup=t_mne / t_ours if t_ours > 0 else np.inf,
        same_support=same,
        relative_difference=rel,
        common=[np.intersect1d(a, b) for a, b in zip(ours_v, mne_v)],
        only_tfmxne=[np.setdiff1d(a, b) for a, b in zip(ours_v, mne_v)],
        only_mne=[np.setdiff1d(b, a) for a, b in zip(ours_v, mne_v)],
    )
