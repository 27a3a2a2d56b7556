# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""MNE-facing TF-MxNE: Evoked / Forward / Covariance in, source estimates out.

The public entry points :func:`tf_mixed_norm` (MNE's drop-in) and
:func:`solve`. A call checks its options once (:mod:`tfmxne._options`) and
runs one way: a single solve (:mod:`tfmxne._solve`), an automatic alpha
(:mod:`tfmxne._select`) or a batch (:mod:`tfmxne._batch`), each of which
checks the data, prepares the problem once and builds the results
(:mod:`tfmxne._problem`, :mod:`tfmxne._result`).
"""

import time

import numpy as np
from mne.utils import verbose

from . import _progress
from ._batch import solve_batch, solve_many
from ._options import check_options, gather
from ._parallel import call_scope
from ._result import (  # noqa: F401 (public here too)
    NoActiveSourcesError,
    OuterIteration,
    TFMxNEResult,
    check_on_empty,
    handle_empty,
)
from ._select import is_auto, solve_auto
from ._solve import check_run, solve_one
from ._validation import check_bool

#: The stage whose steps measure the progress of a call (for a bar), its label.
_BARS = {
    "outer": "TF-MxNE",
    "reweighting": "irTF-MxNE",
    "alpha": "alpha selection",
    "batch": "batch",
}


def _counted_stage(evoked, alpha, l1_ratio, n_tfmxne_iter, client):
    """The stage whose steps measure the progress of :func:`solve` (for a bar)."""
    if isinstance(evoked, list | tuple) or client is not None:
        return "batch"
    if is_auto(alpha, l1_ratio):
        return "alpha"
    return "reweighting" if n_tfmxne_iter != 1 else "outer"


def _run(evoked, forward, noise_cov, reg, opts, run, n_jobs, client, emit, t0):
    """What :func:`solve` runs once its options are checked (``reg = (alpha,
    l1_ratio)``, ``run = (return_residual, dtype, on_empty)``): a batch (list of
    evokeds or Dask) reports 'batch' events, an automatic selection 'alpha'
    events, a single solve 'outer' (and 'reweighting') events."""
    (alpha, l1_ratio), (return_residual, dtype, on_empty) = reg, run
    dtype = check_run(dtype, return_residual)
    on_empty = check_on_empty(on_empty)
    args = (forward, noise_cov, alpha, l1_ratio, opts, return_residual, dtype)
    if isinstance(evoked, list | tuple):
        return solve_many(list(evoked), *args, n_jobs, client, emit)
    if client is not None:
        r = solve_batch([evoked], *args, 1, client, emit)[0]
    elif is_auto(alpha, l1_ratio):
        r = solve_auto(evoked, *args[:-1], n_jobs, emit)
    else:
        r = solve_one(evoked, *args, emit, t0, raise_empty=on_empty == "raise")
    return handle_empty([r], on_empty, opts.pick_ori)[0]


@verbose
def solve(
    evoked,
    forward,
    noise_cov,
    loose="auto",
    depth=0.8,
    maxit=3000,
    tol=1e-4,
    weights=None,
    weights_min=0.0,
    pca=True,
    debias=True,
    wsize=64,
    tstep=4,
    window=0.02,
    alpha=None,
    l1_ratio=None,
    dgap_freq=10,
    rank=None,
    pick_ori=None,
    n_tfmxne_iter=1,
    return_residual=True,
    dtype=np.float64,
    n_jobs=1,
    client=None,
    progress=None,
    on_empty="raise",
    verbose=None,
):
    """TF-MxNE on MNE objects, returning a :class:`TFMxNEResult` (or a list).

    Same parameters as :func:`tf_mixed_norm` (see there), plus the options MNE
    lacks.

    Parameters
    ----------
    evoked : Evoked | list of Evoked
        The data. A list is a batch: the forward is prepared once and the
        evokeds (same channels and sampling rate) are solved independently, in
        ``n_jobs`` threads or on a Dask ``client`` (:func:`tfmxne.solve_joint`
        solves conditions with one support shared by all instead).
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    loose, depth, maxit, tol, weights, weights_min, pca, debias, wsize, tstep, window, dgap_freq, rank, pick_ori, n_tfmxne_iter
        As in :func:`tf_mixed_norm`.
    alpha : float | None | str
        Regularisation in percent of alpha_max, or a criterion that chooses it
        on a warm-started grid (``tfmxne.path.AUTO_ALPHAS``, 90 to 5 percent of
        alpha_max); ``result.selection`` holds the curve and the choice.
        ``'signal-share'`` (what ``None`` means): the minimum along the path
        of ``U + tfmxne.path.SIGNAL_SHARE * k`` (k active positions, E the
        whitened data energy beyond the expected noise energy, U the share of
        E the active positions leave unexplained, estimated without bias from
        the least-squares refit on their gain columns: its residual plus the
        noise energy the refit absorbs, minus the expected noise energy), i.e.
        every position kept must explain at least that share of the signal,
        noise taken out; the grid is walked down on l1_ratio
        ``tfmxne.path.SIGNAL_L1_RATIO`` and stops once
        ``tfmxne.path.SIGNAL_PATIENCE`` levels after the best, with more
        positions than it, have not improved on it. ``'model-discrepancy'``: the largest
        alpha whose whitened residual energy is at most the expected noise
        energy plus ``tfmxne.path.MODEL_ERROR**2`` times the data energy
        beyond it; the grid is walked down and stops at the answer.
        ``'discrepancy'``: the same with noise only (``rank * n_times / nave``).
        ``'sure'``: minimise Stein's
        unbiased risk estimate (finite-difference Monte Carlo degrees of
        freedom, Deledalle et al. 2014, as MNE's ``mixed_norm(alpha='sure')``;
        with ``n_tfmxne_iter > 1``, on the reweighted problem). ``'bic'``: an
        information criterion on the debiased fit,
        ``N log(RSS / N) + tfmxne.path.BIC_PENALTY * k log N`` (k active
        positions, N = rank * n_times). The full grid is solved for 'sure'
        and 'bic'. ``benchmarks/README.md`` compares them on simulations with
        forward-model error.
    l1_ratio : float | None
        Share of the temporal penalty; ``None``: chosen by the same criterion
        over ``tfmxne.path.AUTO_L1_RATIOS`` ('signal-share': the others are
        solved at the alpha chosen on ``SIGNAL_L1_RATIO`` and the lowest value
        wins; the discrepancy criteria: all l1_ratios walk the alpha grid
        together and the first level where one meets the target decides;
        ties: fewest active positions).
    return_residual : bool
        Compute the residual evoked (default True).
    dtype : numpy dtype
        float64 (default) or float32 for the iterations of the solver.
    n_jobs : int
        Threads (-1: all cores) for a batch, or for the two paths of SURE
        (data and perturbed data) in automatic selection.
    client : dask.distributed.Client | None
        Solve a batch on the workers of a Dask cluster.
    progress : callable | 'auto' | None
        Progress of the computation: ``progress(event)`` is called with a
        :class:`tfmxne.ProgressEvent` after each step. A single solve reports
        its outer working-set iterations (stage ``'outer'``, with the duality
        gap of each and the size of the support), and with
        ``n_tfmxne_iter > 1`` its reweightings (``'reweighting'``); an
        automatic selection reports each solve of its grid (``'alpha'``); a
        batch each evoked (``'batch'``). ``None`` (default): no progress.
        ``'auto'``: a tqdm bar on stderr when it is a terminal and MNE's log
        level is INFO or lower. The calls are serialised (one at a time,
        steps increasing within a stage) even when solves run in threads. An
        exception raised by the callback is not caught: it stops the
        computation and propagates to the caller (in threads, once the
        solves under way have finished).
    on_empty : 'raise' | 'warn'
        What a single evoked where no source survives gives: ``'raise'``
        (default, as MNE) a :class:`NoActiveSourcesError`; ``'warn'`` a
        ``RuntimeWarning`` and a result whose ``estimate`` is the empty
        estimate (see :func:`tf_mixed_norm`), for scripts over many subjects.
        A batch (a list of evokeds) gives ``estimate=None`` for such an evoked
        whatever ``on_empty``.
    %(verbose)s

    Returns
    -------
    result : TFMxNEResult | list of TFMxNEResult
        The estimate and the diagnostics; with automatic selection,
        ``result.selection`` holds the criterion curve and the choice. In a
        batch, an evoked where no source survives gives a result with
        ``estimate=None`` instead of an exception.
    """
    t0 = time.perf_counter()
    opts = check_options(gather(locals()))
    count = _counted_stage(evoked, alpha, l1_ratio, n_tfmxne_iter, client)
    with _progress.session(progress, count, _BARS[count]) as emit, call_scope():
        return _run(
            evoked,
            forward,
            noise_cov,
            (alpha, l1_ratio),
            opts,
            (return_residual, dtype, on_empty),
            n_jobs,
            client,
            emit,
            t0,
        )


@verbose
def tf_mixed_norm(
    evoked,
    forward,
    noise_cov,
    loose="auto",
    depth=0.8,
    maxit=3000,
    tol=1e-4,
    weights=None,
    weights_min=0.0,
    pca=True,
    debias=True,
    wsize=64,
    tstep=4,
    window=0.02,
    return_residual=False,
    return_as_dipoles=False,
    alpha=None,
    l1_ratio=None,
    dgap_freq=10,
    rank=None,
    pick_ori=None,
    n_tfmxne_iter=1,
    verbose=None,
    *,
    on_empty="raise",
):
    """Time-frequency mixed-norm estimate (TF-MxNE): drop-in for MNE's.

    Same signature, preprocessing and returns as
    :func:`mne.inverse_sparse.tf_mixed_norm` (MNE 1.13), computed by tfmxne's
    compiled solver.

    Parameters
    ----------
    evoked : Evoked
        Evoked data to invert.
    forward : Forward
        Forward operator.
    noise_cov : Covariance
        Noise covariance to compute whitener.
    loose : float | 'auto' | dict
        Weighting of the tangential source orientations (0: fixed, 1: free).
    depth : None | float | dict
        Depth weighting exponent (``None``: no depth weighting).
    maxit : int
        Maximum number of block coordinate descent epochs per inner solve.
    tol : float
        Tolerance on the duality gap, relative to ``||M||^2`` of whitened data.
    weights : None | array | SourceEstimate
        Weights of the source positions (e.g. from dSPM); scaled by their max.
    weights_min : float
        Positions with a (scaled) weight at or below this are dropped.
    pca : bool
        Whitening with PCA (drop the zero-variance directions).
    debias : bool
        Remove the amplitude bias of the estimate.
    wsize : int | list of int
        STFT window length(s) in samples, multiples of 4.
    tstep : int | list of int
        STFT hop(s) in samples, multiples of 2 dividing ``wsize``.
    window : float | (float, float) | None
        Length in seconds of the half-Hanning tapers at both ends of the data.
    return_residual : bool
        Also return the residual evoked.
    return_as_dipoles : bool
        Return a list of :class:`mne.Dipole` instead of a source estimate.
    alpha : float | None | str
        Regularisation in (0, 100), in percent of alpha_max. ``None`` (MNE
        crashes there) selects it automatically, as ``'signal-share'``;
        ``'model-discrepancy'``, ``'sure'``, ``'discrepancy'`` and ``'bic'``
        are the other criteria;
        see :func:`tfmxne.solve`.
    l1_ratio : float | None
        Share of the temporal (L1) penalty in [0, 1]; ``None``: selected by the
        same criterion over a small grid.
    dgap_freq : int | np.inf
        Frequency of the duality-gap evaluations of the inner solver.
    rank : None | 'full' | dict
        Rank of the noise covariance (see :func:`mne.compute_rank`).
    pick_ori : None | 'vector' | 'normal'
        ``'vector'``: keep the three components; ``'normal'``: the signed
        component normal to the cortex (surface source spaces), as
        :func:`mne.minimum_norm.apply_inverse` (MNE's tf_mixed_norm rejects it).
    n_tfmxne_iter : int
        Number of irTF-MxNE reweightings (1: plain TF-MxNE).
    %(verbose)s
    on_empty : 'raise' | 'warn'
        When no source survives: ``'raise'`` (default, as MNE) a
        :class:`NoActiveSourcesError`; ``'warn'`` a ``RuntimeWarning`` (through
        MNE's ``warn``) and the empty estimate (see Notes). Keyword only (not
        in MNE's signature).

    Returns
    -------
    stc : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | list of Dipole
        The estimate, or dipoles with ``return_as_dipoles``.
    residual : Evoked
        The residual, when ``return_residual``.

    Raises
    ------
    NoActiveSourcesError
        When no source survives and ``on_empty='raise'`` (message starts with
        MNE's "No active dipoles found").

    Notes
    -----
    The empty estimate (``on_empty='warn'``) is a source estimate of the class
    a non-empty one would have (``SourceEstimate``, ``VectorSourceEstimate``,
    ``VolSourceEstimate``, ``MixedSourceEstimate``, ...), with no vertices (one
    empty array per source space), data of shape ``(0, n_times)``
    (``(0, 3, n_times)`` for ``pick_ori='vector'``), the times and subject of a
    non-empty one. A script over many subjects can treat it as any other
    estimate: test ``len(stc.data) == 0``, save it, read its times, stack
    counts, where ``None`` would fail at the first attribute. With
    ``return_as_dipoles`` it is an empty list; the residual is the data (on
    the channels used, after the tapers of ``window``): nothing is fitted.
    """
    # the options MNE's signature adds to solve()'s; solve() validates the rest
    check_bool(return_residual, "return_residual")
    check_bool(return_as_dipoles, "return_as_dipoles")
    if pick_ori == "normal" and return_as_dipoles:
        raise ValueError(
            "pick_ori='normal' cannot be combined with return_as_dipoles=True (dipoles "
            "carry their own orientation), got pick_ori='normal'"
        )
    res = solve(
        evoked,
        forward,
        noise_cov,
        alpha=alpha,
        l1_ratio=l1_ratio,
        return_residual=return_residual,
        on_empty=on_empty,
        **gather(locals()),
    )
    out = res.dipoles() if return_as_dipoles else res.estimate
    if return_residual:
        return out, res.residual
    return out
