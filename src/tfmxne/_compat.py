# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""MNE's private functions, reached in one place for every supported MNE.

tfmxne reuses MNE's preparation of the problem (orientation triage, channel
selection, weights, the reference check) and builds MNE's own result objects
(sparse source estimates, dipoles) with functions MNE does not make public.
A private function can change in any MNE release, so no other module of
tfmxne imports one: each is reached here, under a name of tfmxne's, and where
MNE releases differ the difference is handled here once, with the version it
depends on written next to it.

Supported: MNE 1.10 and later (``MIN_MNE``); CI runs the suite on the newest
release and on 1.10. What differs among 1.10 to 1.13 in what tfmxne calls
(read in their sources):

* ``prepare_noise_cov``: ``verbose`` is keyword-only from 1.11 on (it was the
  seventh positional parameter), so every argument after the first three is
  passed here by keyword.
* ``_check_reference``: from 1.13 on MNE picks the channels of ``ch_names``
  inside ``Info._skip_checks()``, which older releases do not have; tfmxne
  checks whole evokeds (no ``ch_names``), the call that is the same in all.
* Reading an ``Info`` writes to it before 1.13: ``pick_types`` (called by
  ``_check_reference``, the channel selection and the noise covariance's
  preparation) runs ``Info._check_consistency()``, which unlocks the Info,
  reassigns its channel names and locks it again. Two threads doing so on one
  evoked (the solves of a path or a batch with ``n_jobs`` > 1) interleave the
  unlock and the lock, and one of them fails ("ch_names cannot be set
  directly"). 1.13 only reads. On older MNE, those calls hold one lock
  (:func:`info_guard`).
* ``Info._skip_checks()`` (1.13 on) lets internal callers skip the
  re-validation of an Info that is already consistent (``pick_info`` and
  the picks of ``prepare_noise_cov`` otherwise run ``_check_consistency``,
  about 26 000 ``_validate_type`` calls per preparation); older releases do
  not have it and validate again (:func:`trusted_info`).
* ``_make_dipoles_sparse``: 1.13 reshapes the goodness of fit with
  ``reshape(copy=False)`` (NumPy >= 2.1), 1.10 to 1.12 by assigning
  ``.shape``; the dipoles are the same, and the call is the same.

Everything else tfmxne reaches here, and MNE's whole TF-MxNE solver that
tfmxne is compared with (:func:`record_mne_tf_solves` observes its private
working-set solver), has the same code in 1.10.0 and 1.13.2.
"""

import contextlib
import re
import threading

import mne

#: The oldest MNE release tfmxne supports (``pyproject.toml`` declares it).
MIN_MNE = (1, 10)


def parse_version(version):
    """``(major, minor)`` of a version string such as ``'1.13.2'`` or ``'1.14.dev0'``."""
    match = re.match(r"\s*(\d+)\.(\d+)", str(version))
    if match is None:
        raise ValueError(f"Cannot read an MNE version from {version!r}")
    return int(match.group(1)), int(match.group(2))


MNE_VERSION = parse_version(mne.__version__)

# (see the module's docstring: before 1.13, reading an Info writes to it)
_INFO_WRITES_ON_READ = MNE_VERSION < (1, 13)
_INFO_LOCK = threading.RLock()


def info_guard():
    """Context of an MNE call that reads a caller's ``Info`` and may run in
    several threads at once: one lock before MNE 1.13, nothing from 1.13 on."""
    return _INFO_LOCK if _INFO_WRITES_ON_READ else contextlib.nullcontext()


@contextlib.contextmanager
def trusted_info(*infos):
    """Context of an MNE call on ``infos``, Info objects MNE built and checked
    (an evoked's, a forward's), that need no re-validation.

    From MNE 1.13 on, ``Info._skip_checks()`` on each (its flag is set on the
    caller's Info for the duration of the call, under one lock, so that two
    threads cannot leave it set); before, MNE validates them again, and
    :func:`info_guard` serialises the writes that validation does.
    """
    if not all(hasattr(info, "_skip_checks") for info in infos):
        with info_guard():
            yield
        return
    with _INFO_LOCK, contextlib.ExitStack() as stack:
        for info in infos:
            stack.enter_context(info._skip_checks())
        yield


def __getattr__(name):
    # MNE's source estimate module costs a third of tfmxne's import time: it is
    # imported on first use
    if name == "BaseSourceEstimate":
        from mne.source_estimate import _BaseSourceEstimate

        #: MNE's base class of every source estimate (``isinstance`` checks).
        globals()["BaseSourceEstimate"] = _BaseSourceEstimate
        return _BaseSourceEstimate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_mne_version(version=None):
    """Raise ``RuntimeError`` if ``version`` (default: the installed MNE) is
    older than :data:`MIN_MNE`; return it as ``(major, minor)``."""
    found = MNE_VERSION if version is None else parse_version(version)
    if found < MIN_MNE:
        raise RuntimeError(
            f"tfmxne needs MNE {MIN_MNE[0]}.{MIN_MNE[1]} or later, found "
            f"{version if version is not None else mne.__version__}"
        )
    return found


# ---------------------------------------------------------------------------
# preparation of the gain (mne.inverse_sparse, mne.forward, mne.cov)
# ---------------------------------------------------------------------------
def prepare_gain(forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min):
    """MNE's ``_prepare_gain`` of the sparse solvers (same in 1.10 to 1.13)."""
    from mne.inverse_sparse.mxne_inverse import _prepare_gain

    with info_guard():
        return _prepare_gain(
            forward, info, noise_cov, pca, depth, loose, rank, weights, weights_min
        )


def prepare_weights(forward, gain, source_weighting, weights, weights_min):
    """MNE's ``_prepare_weights`` (same in 1.10 to 1.13)."""
    from mne.inverse_sparse.mxne_inverse import _prepare_weights

    return _prepare_weights(forward, gain, source_weighting, weights, weights_min)


def select_orient_forward(forward, info, noise_cov):
    """MNE's ``_select_orient_forward`` on ``forward`` in place (``copy=False``)."""
    from mne.forward.forward import _select_orient_forward

    with trusted_info(info, forward["info"]):
        return _select_orient_forward(forward, info, noise_cov, copy=False)


def pick_info(info, sel):
    """MNE's ``pick_info`` (a copy with the channels ``sel``) of a consistent Info."""
    from mne import pick_info as _pick_info

    with trusted_info(info):
        return _pick_info(info, sel)


def compensation_grade(info):
    """The CTF compensation grade of ``info`` (0 without compensation): MNE's
    ``get_current_comp`` (same in 1.10 to 1.13)."""
    from mne._fiff.compensator import get_current_comp

    return get_current_comp(info) or 0


def check_compensation_grade(info1, info2, name1):
    """MNE's ``_check_compensation_grade`` (same in 1.10 to 1.13): raises if the
    CTF compensation grades of the two Infos differ."""
    from mne.utils.check import _check_compensation_grade

    return _check_compensation_grade(info1, info2, name1)


def triage_loose(src, loose):
    """MNE's ``_triage_loose`` with ``fixed='auto'``: a dict of loose values per
    source space kind."""
    from mne.forward.forward import _triage_loose

    return _triage_loose(src, loose, "auto")


def check_depth(depth):
    """MNE's ``_check_depth`` with the sparse solvers' defaults (``'depth_sparse'``)."""
    from mne.utils.check import _check_depth

    return _check_depth(depth, "depth_sparse")


def prepare_noise_cov(noise_cov, info, ch_names, rank, *, on_rank_mismatch, verbose=None):
    """MNE's public ``prepare_noise_cov``; the keywords keep one call valid in
    1.10 (``verbose`` positional) and 1.11+ (``verbose`` keyword-only)."""
    from mne.cov import prepare_noise_cov as _prepare_noise_cov

    with trusted_info(info):
        return _prepare_noise_cov(
            noise_cov,
            info,
            ch_names,
            rank=rank,
            on_rank_mismatch=on_rank_mismatch,
            verbose=verbose,
        )


def check_reference(inst):
    """MNE's ``_check_reference`` on all channels of ``inst``: raises if EEG
    needs an average reference projector that ``inst`` lacks.

    Called without ``ch_names``, which is the call whose code is the same in
    1.10 to 1.13 (1.13 picks ``ch_names`` inside ``Info._skip_checks()``).
    """
    from mne.minimum_norm.inverse import _check_reference

    with trusted_info(inst.info):
        return _check_reference(inst)


# ---------------------------------------------------------------------------
# MNE's result objects
# ---------------------------------------------------------------------------
def make_stc(data, vertices, src_type, tmin, tstep, subject):
    """MNE's ``_make_stc``: the source estimate class for ``src_type``."""
    from mne.source_estimate import _make_stc

    return _make_stc(data, vertices, src_type, tmin, tstep, subject)


def make_sparse_stc(X, active_set, forward, tmin, tstep, pick_ori=None):
    """MNE's ``_make_sparse_stc`` (same in 1.10 to 1.13)."""
    from mne.inverse_sparse.mxne_inverse import _make_sparse_stc

    return _make_sparse_stc(X, active_set, forward, tmin, tstep, pick_ori=pick_ori)


def make_dipoles_sparse(X, active_set, forward, tmin, tstep, M, gain_active):
    """MNE's ``_make_dipoles_sparse``: the estimate as a list of :class:`mne.Dipole`.

    Its goodness-of-fit reshape differs between 1.10-1.12 and 1.13 (see the
    module's docstring); the call and the dipoles do not.
    """
    from mne.inverse_sparse.mxne_inverse import _make_dipoles_sparse

    return _make_dipoles_sparse(X, active_set, forward, tmin, tstep, M, gain_active)


# ---------------------------------------------------------------------------
# MNE's TF-MxNE solver, observed
# ---------------------------------------------------------------------------
_RECORD_LOCK = threading.RLock()  # held for the block: nested recordings nest


@contextlib.contextmanager
def record_mne_tf_solves():
    """Within the context, every convex TF-MxNE solve MNE runs is recorded.

    Yields a list; each solve of MNE's working-set solver
    (``mxne_optim._tf_mixed_norm_solver_bcd_active_set``, which MNE's
    ``tf_mixed_norm_solver`` calls; the same code in 1.10 to 1.13) appends a
    dict with the problem it was given (``M``, ``G``, ``alpha_space``,
    ``alpha_time``, ``n_orient``) and what it returned before debiasing
    (``X``, ``Z``: complex coefficients of the active rows in MNE's layout,
    ``active_set``, ``E``, ``gap``: MNE's own certificate). MNE's results are
    unchanged; the module attribute is restored on exit.
    """
    from mne.inverse_sparse import mxne_optim

    name = "_tf_mixed_norm_solver_bcd_active_set"
    records = []
    with _RECORD_LOCK:
        original = getattr(mxne_optim, name)

        def recording(M, G, alpha_space, alpha_time, *args, **kwargs):
            out = original(M, G, alpha_space, alpha_time, *args, **kwargs)
            X, Z, active_set, E, gap = out
            records.append(
                dict(
                    M=M.copy(),
                    G=G.copy(),
                    alpha_space=float(alpha_space),
                    alpha_time=float(alpha_time),
                    n_orient=int(kwargs.get("n_orient", 1)),
                    X=X.copy(),
                    Z=Z.copy(),
                    active_set=active_set.copy(),
                    E=list(E),
                    gap=float(gap),
                )
            )
            return out

        setattr(mxne_optim, name, recording)
        try:
            yield records
        finally:
            setattr(mxne_optim, name, original)
