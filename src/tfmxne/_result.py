# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""What a TF-MxNE solve returns: :class:`TFMxNEResult`, its records, its estimate.

Built from a prepared problem and the solver's answer by :func:`build`; the
MNE objects of the answer (the source estimate, MNE's residual evoked, dipoles)
are made here with MNE's routines.
"""

import dataclasses
import time
import warnings

import numpy as np
from mne.utils import logger, warn

from . import _compat
from ._stft import internal_to_mne


class NoActiveSourcesError(Exception):
    """No source survives the regularisation (alpha too large).

    A subclass of ``Exception``, so code written for MNE (which raises a bare
    ``Exception``) keeps working; the message starts with MNE's text.
    """


@dataclasses.dataclass(frozen=True)
class OuterIteration:
    """One outer (working-set) iteration of a solve, after its certificate.

    Attributes
    ----------
    solve : int
        Which convex solve of the call it belongs to (0-based: with
        ``n_tfmxne_iter > 1``, the reweighting; 0 otherwise).
    gap : float
        Duality gap of the full problem (whitened, scaled by alpha_max, as
        ``TFMxNEResult.gap``).
    p_obj, d_obj : float
        Primal and dual objectives of the certificate (``gap = p_obj - d_obj``).
    n_active : int
        Active source positions.
    n_ws : int
        Positions in the working set of the inner solve that followed (0 after
        the last certificate).
    n_iter : int
        Block coordinate descent epochs of that inner solve.
    time : float | None
        Seconds since the start of the solve (``None`` where the core does not
        record it).
    start : bool
        Whether it is an iteration of the float32 start of a float64 solve (its
        gap is a float32 computation; the answer is certified by the float64
        iterations that follow).
    certify_seconds : float | None
        Seconds its certificate took (``G^T R`` over every source and the
        screened dual norms; the rest of the time between two records is the
        inner solve's epochs).

    Notes
    -----
    ``TFMxNEResult.gap_history`` held floats (the gaps) in the development
    versions: ``float()`` of a record and its comparisons with numbers still
    give its gap, with a ``DeprecationWarning``, until tfmxne 0.2; use ``.gap``.
    """

    solve: int
    gap: float
    p_obj: float
    d_obj: float
    n_active: int
    n_ws: int
    n_iter: int
    time: float | None = None
    start: bool = False
    certify_seconds: float | None = None

    @classmethod
    def _from_core(cls, record):
        """From the core's record (a dict; keys it does not have keep their
        default, keys this class does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        vals = {k: v for k, v in record.items() if k in names}
        if "start" in vals:
            vals["start"] = bool(vals["start"])
        return cls(**vals)

    def _old_gap(self):
        warnings.warn(
            "gap_history now holds OuterIteration records, not gaps: use "
            "record.gap (the float behaviour of a record goes in tfmxne 0.2)",
            DeprecationWarning,
            stacklevel=3,
        )
        return self.gap

    def __float__(self):
        return float(self._old_gap())

    def __lt__(self, other):
        return self._old_gap() < other

    def __le__(self, other):
        return self._old_gap() <= other

    def __gt__(self, other):
        return self._old_gap() > other

    def __ge__(self, other):
        return self._old_gap() >= other


@dataclasses.dataclass(eq=False, repr=False)
class TFMxNEResult:
    """Everything a TF-MxNE solve produced.

    Attributes
    ----------
    estimate : SourceEstimate | VectorSourceEstimate | VolSourceEstimate | ... | None
        What :func:`tf_mixed_norm` returns (without ``return_as_dipoles``);
        ``None`` where no source survives (paths, batches).
    residual : Evoked | None
        The data minus the fit (on the channels used), as MNE's residual;
        ``None`` without ``return_residual``.
    alpha, l1_ratio : float
        The regularisation used (alpha in percent of ``alpha_max``).
    alpha_max : float
        Smallest regularisation (in units of the whitened gain) for which the
        estimate is zero; alpha is a percentage of it.
    gap : float
        Final duality gap (whitened, scaled problem).
    tol : float
        Absolute tolerance used on the gap (``tol * ||M||^2``).
    converged : bool
        Whether the gap reached the tolerance.
    n_iter : int
        Block coordinate descent epochs of the solve, its float32 start
        included (with ``n_tfmxne_iter > 1``: of the last reweighting's solve;
        ``gap_history`` has the epochs of each).
    explained_variance : float
        ``1 - ||M - G X||^2 / ||M||^2`` on the whitened data.
    objective : list of float
        Primal objective at each gap evaluation (with ``n_tfmxne_iter > 1``:
        the objective after each reweighting, as MNE).
    gap_history : list of OuterIteration
        One record per outer (working-set) iteration of every convex solve of
        the call (each reweighting of irTF-MxNE): gap, primal and dual
        objectives, active positions, working-set size, epochs. The float32
        start of a float64 solve is not recorded (its epochs are in
        ``n_iter``); the records are those of the solve that certifies.
    active_set : ndarray of bool
        Active sources (over all sources of the forward).
    X : ndarray, shape (n_active_sources, n_times)
        Source amplitudes (Am), rows of ``active_set``.
    times : ndarray
        The times of the estimate (s).
    n_freqs, n_steps, wsize, tstep : tuple of int
        The STFT frame: per dictionary, frequencies, time steps, window
        length and hop.
    elapsed : float
        Seconds spent in the solve.
    residual_norm2 : float
        ``||M - G X||^2`` on the whitened data.
    selection : dict | None
        With an automatic alpha (or ``l1_ratio=None``): the criterion, its
        values over the grid, the choice and the number of solves (see
        :func:`tfmxne.solve`); ``None`` for a given alpha and l1_ratio.
    tf_coefs : ndarray, complex, shape (n_active_sources, n_coefs)
        STFT coefficients of the active sources in MNE's layout (per dictionary,
        ``(n_freqs, n_steps)`` flattened), of the whitened, scaled problem before
        debiasing.
    """

    estimate: object
    residual: object
    alpha: float
    l1_ratio: float
    alpha_max: float
    gap: float
    tol: float
    converged: bool
    n_iter: int
    explained_variance: float
    objective: list
    gap_history: list
    active_set: np.ndarray
    X: np.ndarray
    times: np.ndarray
    n_freqs: tuple
    n_steps: tuple
    wsize: tuple
    tstep: tuple
    elapsed: float
    residual_norm2: float
    selection: dict | None = None
    # the solve's own objects, for dipoles(), tf_coefs, plots and the criteria
    _forward: object = None  # MNE's prepared forward (None after Dask)
    _sfreq: float = None
    _M: np.ndarray = None  # whitened (tapered) data the solver fitted
    _gain_active: np.ndarray = None  # whitened gain columns of X (Am units)
    _whitener: np.ndarray = None  # the solve's whitener (channels: _ch_names)
    _ch_names: list = None  # channels of the whitener's columns
    _taper: np.ndarray = None  # the window's taper of the data (per sample)
    _res: object = None  # the solver's answer (internal layout)
    _tf_coefs: np.ndarray = None  # MNE's layout, made on first use

    def dipoles(self):
        """The active sources as a list of :class:`mne.Dipole` (as MNE returns;
        an empty list where no source is active)."""
        if not self.active_set.any():
            return []
        return _compat.make_dipoles_sparse(
            self.X,
            self.active_set,
            self._forward,
            self.times[0],
            1.0 / self._sfreq,
            self._M,
            self._gain_active,
        )

    @property
    def tf_coefs(self):
        if self._tf_coefs is None:
            self._tf_coefs = internal_to_mne(self._res.Z, self.n_steps, self.n_freqs)
        return self._tf_coefs

    def tf_coefs_of(self, k):
        """Complex STFT coefficients of active source ``k`` per dictionary.

        Returns a list with one array of shape (n_freqs, n_steps) per dictionary.
        """
        out, off = [], 0
        for nf, ns in zip(self.n_freqs, self.n_steps):
            out.append(self.tf_coefs[k, off : off + nf * ns].reshape(nf, ns))
            off += nf * ns
        return out

    def _n_positions(self):
        """Active source positions (a position counts once)."""
        return int(len(self._res.positions)) if self._res is not None else 0

    def __repr__(self):
        n = int(self.active_set.sum())
        return (
            f"<TFMxNEResult | {n} active sources, alpha={self.alpha:g}, "
            f"l1_ratio={self.l1_ratio:g}, gap={self.gap:.2e}, converged="
            f"{self.converged}, explained variance={self.explained_variance:.3f}>"
        )


#: What a call does when no source survives (``on_empty``).
ON_EMPTY = ("raise", "warn")


def check_on_empty(on_empty):
    """One of :data:`ON_EMPTY`."""
    if not isinstance(on_empty, str) or on_empty not in ON_EMPTY:
        raise ValueError(f"on_empty must be 'raise' or 'warn', got on_empty={on_empty!r}")
    return on_empty


def no_active_error(alpha, alpha_max):
    """The :class:`NoActiveSourcesError` of a solve at ``alpha`` (percent)."""
    return NoActiveSourcesError(
        "No active dipoles found. alpha_space/alpha_time are too big "
        f"(alpha={alpha} % of alpha_max, alpha_max={alpha_max:.6g} in whitened "
        "units; lower alpha)."
    )


def handle_empty(results, on_empty, pick_ori, what="the estimate"):
    """``results`` (TFMxNEResult, one call's: one evoked, or the conditions of a
    joint solve) where no source survives: raise (``on_empty='raise'``), or
    give each the empty estimate (:func:`empty_estimate`) with a
    ``RuntimeWarning``. Results with active sources are left as they are."""
    empty = [r for r in results if r.estimate is None]
    if not empty:
        return results
    r = empty[0]
    if on_empty == "raise":
        raise no_active_error(r.alpha, r.alpha_max)
    warn(
        f"No active dipoles found at alpha={r.alpha:g} % of alpha_max (l1_ratio="
        f"{r.l1_ratio:g}): {what} is empty (no vertices); on_empty='warn'. Lower "
        "alpha to keep sources.",
        RuntimeWarning,
    )
    for r in empty:
        if r._forward is None:  # (a Dask result: without its forward)
            continue
        r.estimate = empty_estimate(
            r._forward, r.times[0], 1.0 / r._sfreq, len(r.times), pick_ori
        )
    return results


# --------------------------------------------------------------------------
# the MNE objects of an answer
# --------------------------------------------------------------------------
def empty_estimate(forward, tmin, tstep, n_times, pick_ori):
    """The estimate of no active source: MNE's class of the estimates of
    ``forward`` and ``pick_ori`` (as :func:`make_estimate`), with no vertices
    (one empty array per source space) and data of shape ``(0, n_times)``
    (``(0, 3, n_times)`` for a vector estimate), starting at ``tmin``."""
    import mne
    from mne.forward import is_fixed_orient

    src = forward["src"]
    vertices = [np.zeros(0, np.int64) for _ in src]
    subject = src[0]["subject_his_id"]
    if pick_ori == "vector" and not is_fixed_orient(forward):
        kind = {
            "surface": mne.VectorSourceEstimate,
            "mixed": mne.MixedVectorSourceEstimate,
        }.get(src.kind, mne.VolVectorSourceEstimate)
        return kind(np.zeros((0, 3, n_times)), vertices, tmin, tstep, subject)
    return _compat.make_stc(
        np.zeros((0, n_times)), vertices, src.kind, tmin, tstep, subject
    )


def _normal_component(X, active_idx, forward, n_orient):
    """Signed component along the local cortical normal of each active position."""
    if n_orient == 1:
        return X
    nn_src = forward["source_nn"].reshape(-1, 3, 3)
    # surface normals of the active positions
    normals = np.concatenate([s["nn"][s["vertno"]] for s in forward["src"]])
    out = np.empty((len(active_idx), X.shape[1]))
    for k, p in enumerate(active_idx):
        v = nn_src[p].T @ X[3 * k : 3 * k + 3]  # xyz (head coords) time courses
        out[k] = normals[p] @ v
    return out


def compute_residual(forward, evoked, X, active_set, info):
    """MNE's residual (data minus the fit, the fit projected by the evoked's active
    projectors) on the channels of ``info``, with one copy of the evoked instead
    of MNE's two (the copies dominate the cost of a small solve, and hold the GIL)."""
    from mne.proj import make_projector

    ch_names = info["ch_names"]
    row = {c: k for k, c in enumerate(forward["sol"]["row_names"])}
    sel = [row[c] for c in ch_names]
    residual = evoked.copy().pick(ch_names)
    # (the active columns of the channels only: not a copy of the whole gain)
    fit = forward["sol"]["data"][np.ix_(sel, np.flatnonzero(active_set))] @ X
    active = [p for p in evoked.info["projs"] if p["active"]]
    if active:
        proj, ncomp, _ = make_projector(active, ch_names, bads=residual.info["bads"])
        if ncomp:
            fit = proj @ fit
    residual.data -= fit
    return residual


def make_estimate(X, active_set, forward, tmin, tstep, pick_ori):
    """The source estimate of ``X`` (rows of ``active_set``), as MNE makes it;
    ``pick_ori='normal'``: the signed normal component."""
    if pick_ori != "normal":
        return _compat.make_sparse_stc(
            X, active_set, forward, tmin, tstep, pick_ori=pick_ori
        )
    from mne.forward import is_fixed_orient

    n_orient = 1 if is_fixed_orient(forward) else 3
    active_idx = np.unique(np.flatnonzero(active_set) // n_orient)
    Xn = _normal_component(X, active_idx, forward, n_orient)
    vertices, start = [], 0
    for s in forward["src"]:
        stop = start + len(s["vertno"])
        sel = active_idx[(active_idx >= start) & (active_idx < stop)] - start
        vertices.append(s["vertno"][sel])
        start = stop
    src = forward["src"]
    return _compat.make_stc(Xn, vertices, src.kind, tmin, tstep, src[0]["subject_his_id"])


# --------------------------------------------------------------------------
# the result of a solve
# --------------------------------------------------------------------------
def build_result(p, res, X, active_set, E, frame, alpha, opts, return_residual, t0):
    """The :class:`TFMxNEResult` of the solver's answer ``res`` on the problem
    ``p`` (``X``: its time courses, debiased, rows of the mask ``active_set``
    over the problem's sources; ``E``: the objectives; ``frame``: the STFT)."""
    M = p.M
    nM2 = float(np.sum(M * M))
    common = dict(
        alpha=alpha,
        l1_ratio=p.l1_ratio,
        alpha_max=p.alpha_max * 100.0,
        gap=res.gap,
        tol=opts.tol * nM2,
        converged=bool(res.converged),
        n_iter=res.n_iter,
        objective=list(E),
        gap_history=[OuterIteration._from_core(r) for r in res.history],
        times=p.evoked.times.copy(),
        n_freqs=frame.n_freqs,
        n_steps=frame.n_steps,
        wsize=frame.wsizes,
        tstep=frame.tsteps,
        _forward=p.forward,
        _sfreq=p.evoked.info["sfreq"],
        _M=M,
        _whitener=p.fwd.whitener,
        _ch_names=list(p.gain_info["ch_names"]),
        _taper=p.taper,
        _res=res,
    )
    mask = p.mask
    if not active_set.any():
        residual = None
        if return_residual:
            residual = p.evoked.copy().pick(p.gain_info["ch_names"])
        return TFMxNEResult(
            estimate=None,
            residual=residual,
            explained_variance=0.0,
            active_set=np.zeros(len(mask) if mask is not None else len(active_set), bool),
            X=np.zeros((0, M.shape[1])),
            elapsed=time.perf_counter() - t0,
            residual_norm2=nM2,
            _gain_active=np.zeros((M.shape[0], 0)),
            _tf_coefs=np.zeros((0, frame.n_coefs), complex),
            **common,
        )
    gain_active = p.gain[:, active_set]
    rn2 = float(np.sum((M - gain_active @ X) ** 2))
    ev = 1.0 - rn2 / nM2 if nM2 > 0 else 0.0
    if mask is not None:
        full = np.zeros(len(mask), bool)
        full[mask] = active_set
        active_set = full
    X = X * p.source_weighting[active_set][:, None]
    gain_active = gain_active / p.source_weighting[active_set]
    tstep_s = 1.0 / p.evoked.info["sfreq"]
    estimate = make_estimate(
        X, active_set, p.forward, p.evoked.times[0], tstep_s, opts.pick_ori
    )
    residual = None
    if return_residual:
        residual = compute_residual(p.forward, p.evoked, X, active_set, p.gain_info)
    logger.info("[done]")
    return TFMxNEResult(
        estimate=estimate,
        residual=residual,
        explained_variance=ev,
        active_set=active_set,
        X=X,
        elapsed=time.perf_counter() - t0,
        residual_norm2=rn2,
        _gain_active=gain_active,
        **common,
    )
