# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Batches: several evokeds on one forward, in threads or on a Dask cluster.

The forward operator is prepared once for the batch (once per Dask worker);
each evoked becomes its own prepared problem and solve. :func:`solve_epochs`
(public as ``tfmxne.solve_epochs``) is a batch of the epochs of an
:class:`mne.Epochs`.
"""

import numpy as np
from mne.utils import verbose

from . import _progress
from ._options import check_options, with_defaults
from ._parallel import call_scope
from ._problem import check_inputs, prepare, prepare_forward
from ._select import is_auto, solve_auto
from ._solve import (
    check_regularisation,
    check_run,
    in_threads,
    n_workers,
    report,
    solve_problem,
)
from ._validation import _short


def _check_batch(evokeds):
    if len(evokeds) == 0:
        raise ValueError("evoked must be an Evoked or a non-empty list of Evoked, got []")
    ref = evokeds[0]
    for k, ev in enumerate(evokeds):
        if not hasattr(ev, "info") or not hasattr(ev, "data"):
            raise TypeError(f"evoked[{k}] must be an mne.Evoked, got {_short(ev)}")
        if (
            ev.ch_names != ref.ch_names
            or ev.info["sfreq"] != ref.info["sfreq"]
            or set(ev.info["bads"]) != set(ref.info["bads"])
        ):
            raise ValueError(
                f"evoked[{k}] does not have the channels, bads and sampling rate of "
                "evoked[0]: a batch shares one prepared forward operator"
            )


def solve_many(
    evokeds,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    opts,
    return_residual,
    dtype,
    n_jobs,
    client,
    emit,
):
    """:func:`tfmxne.solve` on a list of evokeds: one result per evoked.

    With an automatic alpha or l1_ratio, each evoked is its own selection (in
    turn, locally); otherwise a batch (:func:`solve_batch`). ``emit``
    receives a 'batch' event after each evoked.
    """
    if not is_auto(alpha, l1_ratio):
        return solve_batch(
            evokeds,
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            opts,
            return_residual,
            dtype,
            n_jobs,
            client,
            emit,
        )
    out = []
    for ev in evokeds:
        r = solve_auto(
            ev, forward, noise_cov, alpha, l1_ratio, opts, return_residual, 1, None
        )
        out.append(r)
        report(emit, "batch", r, len(evokeds))
    return out


def solve_batch(
    evokeds,
    forward,
    noise_cov,
    alpha,
    l1_ratio,
    opts,
    return_residual,
    dtype,
    n_jobs,
    client,
    emit,
):
    """Solve each of ``evokeds`` (same channels) at one (alpha, l1_ratio), on one
    prepared forward, in ``n_jobs`` threads or on the Dask ``client``.

    An evoked where no source survives gives a result with ``estimate=None``.
    """
    _check_batch(evokeds)
    workers = n_workers(n_jobs)
    if client is not None:
        return _dask_batch(
            client,
            evokeds,
            forward,
            noise_cov,
            (alpha, l1_ratio),
            opts,
            (return_residual, dtype),
            emit,
        )
    for ev in evokeds:
        check_inputs(ev, forward, noise_cov, opts)
    alpha, l1_ratio = check_regularisation(alpha, l1_ratio)
    fwd = prepare_forward(evokeds[0].info, forward, noise_cov, opts)

    def one(ev):
        p = prepare(fwd, ev, opts, l1_ratio)
        r = solve_problem(p, alpha, opts, return_residual=return_residual, dtype=dtype)
        report(emit, "batch", r, len(evokeds))
        return r

    return in_threads([lambda ev=ev: one(ev) for ev in evokeds], workers)


def _dask_task(evoked, forward, noise_cov, reg, opts, return_residual, dtype):
    """Runs on a Dask worker: the forward and the covariance are scattered once
    to each worker, so the worker's cache of prepared forwards
    (:mod:`tfmxne._cache`) prepares the forward once per worker."""
    check_inputs(evoked, forward, noise_cov, opts)
    alpha, l1_ratio = check_regularisation(*reg)
    fwd = prepare_forward(evoked.info, forward, noise_cov, opts)
    p = prepare(fwd, evoked, opts, l1_ratio)
    r = solve_problem(p, alpha, opts, return_residual=return_residual, dtype=dtype)
    r._forward = None  # keep the payload small; dipoles need the forward locally
    return r


def _dask_batch(client, evokeds, forward, noise_cov, reg, opts, run, emit):
    """The batch on the Dask ``client``: ``reg = (alpha, l1_ratio)``, ``run =
    (return_residual, dtype)``."""
    fwd_f = client.scatter(forward, broadcast=True)
    cov_f = client.scatter(noise_cov, broadcast=True)
    futs = [
        client.submit(_dask_task, ev, fwd_f, cov_f, reg, opts, *run, pure=False)
        for ev in evokeds
    ]
    out = []
    for f in futs:  # (in order: the events follow the evokeds)
        r = f.result()
        r._forward = None
        out.append(r)
        report(emit, "batch", r, len(futs))
    return out


@verbose
def solve_epochs(
    epochs,
    forward,
    noise_cov,
    alpha=None,
    l1_ratio=None,
    n_jobs=1,
    client=None,
    return_residual=True,
    dtype=np.float64,
    progress="auto",
    verbose=None,
    **options,
):
    """TF-MxNE on every epoch of an :class:`mne.Epochs` (a batch).

    Parameters
    ----------
    epochs : Epochs
        The epochs; each is solved as an evoked response with ``nave=1``.
    forward : Forward
        The forward solution.
    noise_cov : Covariance
        The noise covariance.
    alpha, l1_ratio : float
        As in :func:`tfmxne.tf_mixed_norm` (numbers; automatic selection per
        epoch is available through :func:`tfmxne.solve` on single evokeds).
    n_jobs : int
        Threads (the compiled core releases the GIL); -1 for all cores.
    client : dask.distributed.Client | None
        Spread the epochs over the workers of a Dask cluster instead.
    return_residual : bool
        Compute the residuals.
    dtype : numpy dtype
        float64 or float32 iterations.
    progress : callable | 'auto' | None
        Called with a :class:`tfmxne.ProgressEvent` of stage ``'batch'`` after
        each epoch is solved (``total`` = number of epochs); ``'auto'``
        (default) and ``None`` and the handling of the calls and of their
        errors as in :func:`tfmxne.tf_mixed_norm_path`.
    %(verbose)s
    **options
        Other options of :func:`tfmxne.tf_mixed_norm`.

    Returns
    -------
    results : list of TFMxNEResult
        One per epoch (``estimate=None`` where no source survives).
    """
    from mne import Epochs

    if not isinstance(epochs, Epochs) and not hasattr(epochs, "iter_evoked"):
        raise TypeError(f"epochs must be an mne.Epochs, got {_short(epochs)}")
    opts = check_options(with_defaults(options))
    _progress.check_progress(progress)
    evokeds = list(epochs.iter_evoked(copy=True))
    with _progress.session(progress, "batch", "epochs") as emit, call_scope():
        dtype = check_run(dtype, return_residual)
        return solve_many(
            evokeds,
            forward,
            noise_cov,
            alpha,
            l1_ratio,
            opts,
            return_residual,
            dtype,
            n_jobs,
            client,
            emit,
        )
