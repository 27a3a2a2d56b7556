# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Progress events: the ``progress=`` callback of the solves and its tqdm bar.

One mechanism for every display: the solves call an :class:`_Emitter` that
builds a :class:`ProgressEvent` and hands it to the caller's callback, or to
the built-in :class:`TqdmBar` (``progress='auto'``, and the command line).
"""

import contextlib
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass

from ._validation import _short

#: The stages of the events, from the finest to the coarsest.
STAGES = ("outer", "reweighting", "alpha", "batch")


@dataclass(frozen=True)
class ProgressEvent:
    """What a ``progress`` callback receives: one step of a computation done.

    Attributes
    ----------
    stage : str
        What the step is:

        ``'outer'``
            One outer (working-set) iteration of a convex solve, after its
            duality-gap certificate.
        ``'reweighting'``
            One irTF-MxNE reweighting (``n_tfmxne_iter > 1``) solved.
        ``'alpha'``
            One solve of an alpha path or of an automatic selection.
        ``'batch'``
            One evoked of a batch (a list of evokeds, epochs, Dask) solved.
    step : int
        Steps of this stage done so far, from 1, increasing by one. For
        ``'outer'`` it counts within one convex solve (it starts again at 1
        in each reweighting).
    total : int | None
        Number of steps expected, or ``None`` when convergence decides
        (``'outer'``). For ``'reweighting'`` and for the discrepancy criteria
        of automatic selection it is a maximum: the computation may stop
        earlier, at its answer.
    gap : float | None
        Duality gap: for ``'outer'``, the certificate of the iteration; for
        ``'reweighting'``, the final one of the reweighted solve; for
        ``'alpha'`` and ``'batch'``, the final one of the solve (the ``gap``
        of its :class:`TFMxNEResult`). In the units of the whitened problem
        scaled by alpha_max, as ``TFMxNEResult.gap`` and ``.tol``.
    n_active : int | None
        Active source positions (a position counts once whatever its number
        of orientations): for ``'outer'``, the support the certificate was
        computed on; otherwise that of the solve's result.
    alpha : float | None
        ``'alpha'`` and ``'batch'``: the regularisation of the solve, in
        percent of alpha_max.
    l1_ratio : float | None
        ``'alpha'`` and ``'batch'``: the l1_ratio of the solve.
    """

    stage: str
    step: int
    total: int | None = None
    gap: float | None = None
    n_active: int | None = None
    alpha: float | None = None
    l1_ratio: float | None = None


class _Emitter:
    """Hands :class:`ProgressEvent` to a callback, one call at a time.

    Solves may run in threads (paths, batches, SURE): the calls are serialised
    and the steps of a stage counted under a lock, so that a callback sees
    increasing steps and needs no locking of its own. An exception raised by
    the callback propagates to the caller of the solve; once it has raised,
    the callback is not called again (other threads finish their solves).
    """

    def __init__(self, callback):
        self._callback = callback
        self._lock = threading.Lock()
        self._counts = {}
        self._failed = False

    def __call__(self, stage, step=None, **fields):
        with self._lock:
            if self._failed:
                return
            if step is None:
                step = self._counts.get(stage, 0) + 1
            self._counts[stage] = step
            try:
                self._callback(ProgressEvent(stage, int(step), **fields))
            except BaseException:
                self._failed = True
                raise


class TqdmBar:
    """A tqdm bar driven by :class:`ProgressEvent` (a ``progress`` callback).

    Parameters
    ----------
    desc : str
        Label of the bar.
    count : str
        The stage whose steps the bar counts (one of ``STAGES``); the events
        of the other stages only update the text after the bar (gap, alpha,
        active positions).
    file : file-like | None
        Where to draw (default: ``sys.stderr``).

    The bar is created at the first event, with the tqdm class of MNE's
    ``MNE_TQDM`` setting (none with ``'off'``), and removed by :meth:`close`.
    """

    def __init__(self, desc, count, file=None):
        if count not in STAGES:
            raise ValueError(f"count must be one of {STAGES}, got count={count!r}")
        self.desc = desc
        self.count = count
        self._file = file
        self._bar = None

    def __call__(self, event):
        if self._bar is None:
            tqdm = _tqdm_class()
            if tqdm is None:  # MNE_TQDM='off' (or no tqdm): nothing to draw
                return
            # explicit sizes: tqdm shows nothing on terminals reporting 0 x 0
            size = shutil.get_terminal_size((80, 24))
            self._bar = tqdm(
                total=None,
                desc=self.desc,
                unit="it",
                leave=False,
                file=self._file if self._file is not None else sys.stderr,
                ncols=min(size.columns or 80, 100),
                nrows=size.lines or 24,
            )
        bar = self._bar
        if bar is None:
            return
        if event.stage == self.count:
            if event.total is not None and bar.total != event.total:
                bar.total = event.total
            bar.update(max(event.step - bar.n, 0))
        text = []
        if event.alpha is not None:
            text.append(f"alpha {event.alpha:.3g}")
        if event.n_active is not None:
            text.append(f"{event.n_active} active")
        if event.gap is not None:
            text.append(f"gap {event.gap:.2e}")
        if text:
            bar.set_postfix_str(", ".join(text), refresh=True)

    def close(self):
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _tqdm_backend():
    """MNE's ``MNE_TQDM`` setting (environment or MNE's configuration file):
    ``'off'``, ``'tqdm'``, or a tqdm module such as ``'tqdm.auto'`` (MNE's
    default) or ``'tqdm.notebook'``."""
    import mne

    value = mne.get_config("MNE_TQDM", "tqdm.auto")
    if not isinstance(value, str) or not (
        value in ("off", "tqdm") or value.startswith("tqdm.")
    ):
        raise ValueError(
            "MNE_TQDM must be 'off', 'tqdm' or a tqdm module such as 'tqdm.auto', "
            f"got MNE_TQDM={value!r}"
        )
    return value


def _tqdm_class():
    """The tqdm class MNE's progress bars use (``MNE_TQDM``), or None when tqdm
    is not installed or ``MNE_TQDM='off'``."""
    backend = _tqdm_backend()
    if backend == "off":
        return None
    import importlib

    try:
        return importlib.import_module(backend).tqdm
    except ImportError:
        return None


def bar_enabled(quiet=None):
    """Whether a progress bar is drawn: the one rule of ``progress='auto'``
    and of the command line.

    A bar is drawn when all hold:

    * MNE's ``MNE_TQDM`` is not ``'off'`` and names an installed tqdm module
      (MNE's own bars follow the same setting);
    * not quiet: with ``quiet=None`` (the library), MNE's log level is INFO
      or lower, so that ``verbose=False`` hides it as it hides MNE's bars; the
      command line, which lowers MNE's log level for its own report, passes
      its ``--quiet``;
    * ``TFMXNE_NO_PROGRESS`` is not set;
    * stderr is a terminal, or ``MNE_TQDM`` names a notebook's tqdm (whose
      output is no terminal).
    """
    from mne.utils import logger

    if os.environ.get("TFMXNE_NO_PROGRESS"):
        return False
    if quiet is None:
        quiet = logger.level > logging.INFO
    if quiet:
        return False
    backend = _tqdm_backend()
    if backend == "off":
        return False
    if backend != "tqdm.notebook":
        try:
            if not sys.stderr.isatty():
                return False
        except (AttributeError, ValueError):  # closed or replaced stream
            return False
    return _tqdm_class() is not None


def check_progress(progress):
    """``progress`` is None, 'auto' or a callable; returns it."""
    if (
        progress is None
        or callable(progress)
        or (isinstance(progress, str) and progress == "auto")
    ):
        return progress
    raise TypeError(
        f"progress must be None, 'auto' or a callable, got progress={_short(progress)}"
    )


@contextlib.contextmanager
def session(progress, count, desc):
    """The emitter of a public call: ``None`` (no progress) or an :class:`_Emitter`.

    ``progress='auto'`` draws a :class:`TqdmBar` counting the stage ``count``
    when :func:`bar_enabled`; the bar is closed on exit.
    """
    check_progress(progress)
    bar = None
    if progress is None:
        emit = None
    elif callable(progress):
        emit = _Emitter(progress)
    else:
        bar = TqdmBar(desc, count) if bar_enabled() else None
        emit = _Emitter(bar) if bar is not None else None
    try:
        yield emit
    finally:
        if bar is not None:
            bar.close()
