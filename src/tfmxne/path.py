# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Beyond MNE: alpha paths (and the names of the automatic alpha and batches).

:func:`tf_mixed_norm_path` prepares the forward operator and the data once
and walks a grid of alphas with warm starts. The automatic choice of alpha
lives in :mod:`tfmxne._select`, batches and Dask in :mod:`tfmxne._batch`; their
public names are shown here: :func:`solve_epochs` and the constants of the
criteria (``AUTO_ALPHAS``, ``SIGNAL_SHARE``, ...), which an assignment here
(``tfmxne.path.SIGNAL_SHARE = 0.05``) sets for the criteria.
"""

import sys
import types

import numpy as np
from mne.utils import verbose

from . import _progress, _select
from ._batch import solve_epochs
from ._options import check_options, with_defaults
from ._parallel import call_scope
from ._problem import check_inputs, prepare, prepare_forward
from ._select import (  # noqa: F401 (public names of the criteria)
    AUTO_ALPHAS,
    AUTO_L1_RATIOS,
    AUTO_REFINE,
    BIC_PENALTY,
    CRITERIA,
    MODEL_ERROR,
    SIGNAL_L1_RATIO,
    SIGNAL_LOOSE_TOL,
    SIGNAL_PATIENCE,
    SIGNAL_POLISH_MARGIN,
    SIGNAL_SHARE,
)
from ._solve import n_workers, report, solve_path
from ._validation import _short, check_l1_ratio

#: Number of default path values (like scikit-learn's lasso_path: from 90 % to 10 %).
PATH_N_ALPHAS = 10


def _check_alphas(alphas):
    """The path's grid: numbers in (0, 100), decreasing."""
    if alphas is None:
        alphas = np.geomspace(90.0, 10.0, PATH_N_ALPHAS)
    given = alphas
    try:
        alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(
            f"alphas must be a non-empty 1D array of numbers, got {_short(given)}"
        ) from None
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)):
        raise ValueError(
            f"alphas must be a non-empty 1D array of numbers, got {_short(alphas)}"
        )
    if np.any(alphas <= 0) or np.any(alphas >= 100):
        raise ValueError(f"alphas must be in (0, 100), got alphas={alphas.tolist()}")
    return np.sort(alphas)[::-1]


@verbose
def tf_mixed_norm_path(
    evoked,
    forward,
    noise_cov,
    alphas=None,
    l1_ratio=0.03,
    n_jobs=1,
    client=None,
    progress="auto",
    verbose=None,
    **options,
):
    """TF-MxNE along a decreasing grid of alphas, warm-started.

    Each level starts from the previous level's answer (solved in float32 to
    3 ``tol`` from there, then in float64) and is certified at ``tol`` like
    a single solve.

    Parameters
    ----------
    evoked : Evoked
        The data.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    alphas : array of float | None
        Regularisation values in percent of alpha_max, in (0, 100). They are
        solved in decreasing order; default: ``PATH_N_ALPHAS`` values spaced
        geometrically from 90 to 10 (scikit-learn's ``lasso_path`` convention).
    l1_ratio : float
        Share of the temporal penalty, in [0, 1].
    n_jobs : int
        Threads (-1: all cores). With more than one, the grid is dealt into
        ``n_jobs`` interleaved chains, each warm-started along itself and
        solved in its own thread (BLAS pinned to one thread per chain).
    client : dask.distributed.Client | None
        Run the path on a Dask worker instead of in this process.
    progress : callable | 'auto' | None
        Called with a :class:`tfmxne.ProgressEvent` of stage ``'alpha'`` after
        each alpha is solved (``total`` = number of alphas; with a Dask
        client, when the results arrive). ``'auto'`` (default): a tqdm bar on
        stderr when it is a terminal and MNE's log level is INFO or lower
        (``verbose=False`` hides it; so does the environment variable
        ``TFMXNE_NO_PROGRESS``); ``None``: nothing. The calls are serialised
        (one at a time, steps increasing) even when the chains run in
        threads. An exception raised by the callback is not caught: it stops
        the path and propagates (with ``n_jobs > 1``, once the solves under
        way have finished).
    %(verbose)s
    **options
        Any option of :func:`tfmxne.tf_mixed_norm` (loose, depth, maxit, tol,
        weights, weights_min, pca, debias, wsize, tstep, window, dgap_freq, rank,
        pick_ori, n_tfmxne_iter).

    Returns
    -------
    results : list of TFMxNEResult
        One per alpha, in the order of ``alphas`` after sorting decreasingly.
        Where no source survives, a result with ``estimate=None`` and an empty
        ``active_set`` (no exception).
    """
    options = with_defaults(options)
    opts = check_options(options)
    workers = n_workers(n_jobs)
    _progress.check_progress(progress)
    alphas = _check_alphas(alphas)
    with _progress.session(progress, "alpha", "alpha path") as emit:
        if client is not None:
            fut = client.submit(
                _path_task,
                evoked,
                forward,
                noise_cov,
                alphas,
                l1_ratio,
                options,
                n_jobs,
                pure=False,
            )
            results = fut.result()
            for r in results:
                report(emit, "alpha", r, len(alphas))
            return results
        check_inputs(evoked, forward, noise_cov, opts)
        l1_ratio = check_l1_ratio(l1_ratio)
        with call_scope():
            fwd = prepare_forward(evoked.info, forward, noise_cov, opts)
            p = prepare(fwd, evoked, opts, l1_ratio)
            return solve_path(
                p, alphas, opts, emit=emit, total=len(alphas), n_workers=workers
            )


def _path_task(evoked, forward, noise_cov, alphas, l1_ratio, options, n_jobs=1):
    return tf_mixed_norm_path(
        evoked,
        forward,
        noise_cov,
        alphas=alphas,
        l1_ratio=l1_ratio,
        n_jobs=n_jobs,
        progress=None,
        verbose=False,
        **options,
    )


class _PathModule(types.ModuleType):
    """``tfmxne.path``: an assignment to a constant of the criteria (a name of
    ``tfmxne._select.PUBLIC``) sets it where the criteria read it."""

    def __setattr__(self, name, value):
        if name in _select.PUBLIC:
            setattr(_select, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _PathModule

__all__ = ["tf_mixed_norm_path", "solve_epochs"]
