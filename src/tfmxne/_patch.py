# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Patch-in: MNE's TF-MxNE functions run tfmxne, for scripts that cannot
change their imports (as scikit-learn-intelex's ``patch_sklearn()`` does for
scikit-learn).

The patch replaces, in MNE's modules, the names through which MNE's users and
MNE's own code reach its TF-MxNE solvers:

* ``tf_mixed_norm`` in ``mne.inverse_sparse`` and in the module that defines
  it, ``mne.inverse_sparse.mxne_inverse``: any import made after the patch
  (``from mne.inverse_sparse import tf_mixed_norm``, or an attribute looked up
  at call time) gets :func:`tfmxne.tf_mixed_norm`;
* ``tf_mixed_norm_solver`` and ``iterative_tf_mixed_norm_solver`` in
  ``mne.inverse_sparse.mxne_optim`` (where they are defined) and in
  ``mne.inverse_sparse.mxne_inverse`` (where MNE's own ``tf_mixed_norm``
  looks them up when it runs): MNE's original ``tf_mixed_norm``, held by a
  script that imported it before the patch, then prepares the problem as MNE
  does and solves it with tfmxne's array-level solvers.

A reference taken before the patch to one of those functions themselves is not
changed (Python cannot reach into it). :func:`unpatch_mne` puts back exactly
what was in each module's namespace, absent names included.
"""

import contextlib
import inspect
import threading

from mne.utils import logger, verbose

from . import _compat

# (module, name) -> the tfmxne function that replaces it
_TARGETS = (
    ("mne.inverse_sparse", "tf_mixed_norm"),
    ("mne.inverse_sparse.mxne_inverse", "tf_mixed_norm"),
    ("mne.inverse_sparse.mxne_optim", "tf_mixed_norm_solver"),
    ("mne.inverse_sparse.mxne_optim", "iterative_tf_mixed_norm_solver"),
    ("mne.inverse_sparse.mxne_inverse", "tf_mixed_norm_solver"),
    ("mne.inverse_sparse.mxne_inverse", "iterative_tf_mixed_norm_solver"),
)
_MISSING = object()
_LOCK = threading.RLock()
# while patched: {(module, name): what the module's namespace held before}
_SAVED = {}


def _module(name):
    import importlib

    return importlib.import_module(name)


def _replacements():
    from .inverse import tf_mixed_norm
    from .solver import iterative_tf_mixed_norm_solver, tf_mixed_norm_solver

    return {
        "tf_mixed_norm": tf_mixed_norm,
        "tf_mixed_norm_solver": tf_mixed_norm_solver,
        "iterative_tf_mixed_norm_solver": iterative_tf_mixed_norm_solver,
    }


def _check_drop_in(mne_func, ours, where):
    """Any call valid for MNE's function is valid for tfmxne's: MNE's
    positional parameters are tfmxne's first ones, in the same order, and each
    of MNE's keyword-only parameters is a parameter of tfmxne's."""
    theirs = inspect.signature(mne_func).parameters.values()
    mine = inspect.signature(ours).parameters
    positional = [p.name for p in theirs if p.kind is p.POSITIONAL_OR_KEYWORD]
    mine_positional = [n for n, p in mine.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    unknown = [p.name for p in theirs if p.name not in mine]
    if unknown or mine_positional[: len(positional)] != positional:
        raise RuntimeError(
            f"Cannot patch {where}: the installed MNE's signature "
            f"{inspect.signature(mne_func)} is not one tfmxne.{ours.__name__} accepts "
            f"(tfmxne's: {inspect.signature(ours)}); tfmxne follows MNE's signatures "
            "of 1.10 to 1.13"
        )


def original(module, name):
    """MNE's own object for ``module.name``, whether or not MNE is patched."""
    with _LOCK:
        saved = _SAVED.get((module, name), _MISSING)
    if saved is not _MISSING:
        return saved
    return getattr(_module(module), name)


def mne_is_patched():
    """Whether MNE's TF-MxNE functions currently run tfmxne.

    Returns
    -------
    patched : bool
        ``True`` between :func:`patch_mne` and :func:`unpatch_mne`.
    """
    with _LOCK:
        return bool(_SAVED)


class _Patch:
    """What :func:`patch_mne` returns: also a context manager that, on exit,
    unpatches if this call patched."""

    def __init__(self, patched_here):
        self._patched_here = patched_here

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._patched_here:
            unpatch_mne()
        return False

    def __repr__(self):
        return f"<tfmxne patch of MNE: {'active' if mne_is_patched() else 'undone'}>"


@verbose
def patch_mne(verbose=None):
    """Make MNE's TF-MxNE functions run tfmxne, without changing any import.

    After the call, :func:`mne.inverse_sparse.tf_mixed_norm` is
    :func:`tfmxne.tf_mixed_norm` however it is imported, and MNE's array-level
    solvers (``tf_mixed_norm_solver``, ``iterative_tf_mixed_norm_solver`` of
    ``mne.inverse_sparse.mxne_optim``) are tfmxne's, also where MNE's own code
    looks them up. An existing pipeline (an MNE example, an mne-bids-pipeline
    step) then runs tfmxne without an edit. The installed MNE is checked first
    (version 1.10 or later, signatures tfmxne accepts); a message is logged
    once, when the patch becomes active. Patching again does nothing.

    Parameters
    ----------
    %(verbose)s

    Returns
    -------
    patch : context manager
        Use ``with tfmxne.patch_mne(): ...`` to patch for a block only: on exit
        MNE is restored if this call patched it.

    See Also
    --------
    unpatch_mne, mne_is_patched
    """
    with _LOCK:
        if _SAVED:
            return _Patch(False)
        _compat.check_mne_version()
        repl = _replacements()
        mods = {m: _module(m) for m, _ in _TARGETS}
        # the namespaces first: reading a lazily loaded name may cache it
        saved = {(m, n): vars(mods[m]).get(n, _MISSING) for m, n in _TARGETS}
        try:
            for m, n in _TARGETS:
                _check_drop_in(getattr(mods[m], n), repl[n], f"{m}.{n}")
        finally:
            for (m, n), obj in saved.items():
                if obj is _MISSING:
                    vars(mods[m]).pop(n, None)
        for (m, n), obj in saved.items():
            _SAVED[(m, n)] = obj
            setattr(mods[m], n, repl[n])
    import mne

    logger.info(
        f"tfmxne patched MNE {mne.__version__}: "
        "mne.inverse_sparse.tf_mixed_norm and MNE's TF-MxNE solvers run tfmxne "
        "(tfmxne.unpatch_mne() restores MNE's)"
    )
    return _Patch(True)


def unpatch_mne():
    """Restore MNE's own TF-MxNE functions, exactly as before :func:`patch_mne`.

    Each name the patch replaced gets back the object it held (a name the
    module did not hold, such as a lazily loaded attribute, is removed
    again). Does nothing if MNE is not patched.

    See Also
    --------
    patch_mne, mne_is_patched
    """
    with _LOCK:
        for (m, n), obj in _SAVED.items():
            mod = _module(m)
            if obj is _MISSING:
                vars(mod).pop(n, None)
            else:
                setattr(mod, n, obj)
        _SAVED.clear()


@contextlib.contextmanager
def unpatched():
    """MNE's own functions for the duration of the block (re-patched after if
    MNE was patched): :func:`tfmxne.compare_with_mne` runs MNE's solver."""
    with _LOCK:
        was = dict(_SAVED)
        unpatch_mne()
        try:
            yield
        finally:
            if was:
                mods = {m: _module(m) for m, _ in was}
                repl = _replacements()
                for (m, n), obj in was.items():
                    _SAVED[(m, n)] = obj
                    setattr(mods[m], n, repl[n])
