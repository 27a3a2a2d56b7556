# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Full-size comparisons with MNE's converged optimum (minutes each): ``pytest -m slow``.

Whole problems of the benchmarks (evoked cropped to -0.05..0.3 s, alpha=40,
l1_ratio=0.03). The reference is MNE's own code at tol=1e-10 with its debiasing
problem solved exactly (``_helpers.mne_exact_debias``); tfmxne runs at
tol=1e-8, so the estimates agree to ``sqrt(tol)`` (see test_inverse.py).
"""

import warnings

import mne
import numpy as np
import pytest
from _helpers import cached, mne_exact_debias
from threadpoolctl import threadpool_limits

import tfmxne

TOL = 1e-8
KW = dict(alpha=40.0, l1_ratio=0.03)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, loose, debias",
    [("surf", "auto", True), ("surf", "auto", False), ("vol7", 1.0, True)],
)
def test_fullsize_parity(kind, loose, debias, evoked_full, noise_cov, cache_dir, request):
    fwd = request.getfixturevalue("fwd_surf" if kind == "surf" else "fwd_vol7")
    ev = evoked_full.copy().crop(-0.05, 0.3)

    def run():
        with threadpool_limits(1), warnings.catch_warnings(), mne_exact_debias():
            warnings.simplefilter("ignore")
            return mne.inverse_sparse.tf_mixed_norm(
                ev,
                fwd,
                noise_cov,
                loose=loose,
                debias=debias,
                tol=1e-10,
                maxit=100000,
                verbose=False,
                **KW,
            )

    ref = cached(cache_dir, f"mne-full-{kind}-{debias}", run)
    res = tfmxne.solve(ev, fwd, noise_cov, loose=loose, debias=debias, tol=TOL, **KW)
    assert res.converged and res.gap <= res.tol
    ours = res.estimate
    assert len(ref.vertices) == len(ours.vertices)
    for a, b in zip(ref.vertices, ours.vertices):
        np.testing.assert_array_equal(a, b)
    rel = np.linalg.norm(ref.data - ours.data) / np.linalg.norm(ref.data)
    assert rel < np.sqrt(TOL), rel
