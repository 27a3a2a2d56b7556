# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""STFT (tight sine-window Gabor frame) and the multi-dictionary frame.

Same windows, framing and scaling as :func:`mne.time_frequency.stft` and
:func:`mne.time_frequency.istft`, computed frame by frame in the compiled core
(cost linear in the number of samples instead of MNE's dense matrices).
"""

from functools import lru_cache

import numpy as np
from mne.utils import logger, verbose

from ._core import _engine
from ._validation import _short, check_int, check_wsize_tstep


@lru_cache(maxsize=64)
def _get_plan(n_times, wsizes, tsteps, dtype_str, n_segments=1):
    return _engine.TFPlan(
        n_times, wsizes, tsteps, np.dtype(dtype_str), n_segments=n_segments
    )


class TFFrame:
    """Multi-dictionary frame for signals of ``n_times`` samples.

    Dictionaries are concatenated and each scaled by ``1 / sqrt(n_dicts)``, as in
    MNE's private ``_Phi`` / ``_PhiT``, so the union stays a tight frame.

    With ``n_conditions > 1`` (a joint solve), a signal row holds that many
    conditions of ``n_times`` samples side by side, each framed on its own:
    ``n_times`` and ``n_coefs`` then count a whole row, ``cond_times`` and
    ``cond_coefs`` one condition, and the coefficient layouts (internal and
    MNE's) put the conditions one after the other.
    """

    def __init__(self, n_times, wsize, tstep, dtype=np.float64, n_conditions=1):
        self.wsizes, self.tsteps = check_wsize_tstep(wsize, tstep)
        self.n_conditions = check_int(n_conditions, "n_conditions", 1)
        self.cond_times = int(n_times)
        self.n_times = self.cond_times * self.n_conditions
        self.dtype = np.dtype(dtype)
        self.plan = _get_plan(
            self.cond_times, self.wsizes, self.tsteps, self.dtype.str, self.n_conditions
        )
        self.n_coefs = self.plan.n_coefs
        self.cond_coefs = self.plan.seg_coefs
        self.n_steps = self.plan.n_steps
        self.n_freqs = self.plan.n_freqs
        perm = []
        for c in range(self.n_conditions):
            off = c * self.cond_coefs
            for ns, nf in zip(self.n_steps, self.n_freqs):
                t, f = np.meshgrid(np.arange(ns), np.arange(nf), indexing="ij")
                perm.append(off + (f * ns + t).ravel())  # internal -> MNE index
                off += ns * nf
        self._to_mne = np.concatenate(perm) if perm else np.zeros(0, int)
        self._from_mne = np.argsort(self._to_mne)

    def _work(self):
        return np.empty(self.plan.max_frames, dtype=self.dtype)

    def phi(self, x):
        """Internal real coefficients of rows of ``x`` (n, n_times) -> (n, 2 n_coefs)."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        z = np.empty((x.shape[0], 2 * self.n_coefs), dtype=self.dtype)
        _engine.stft(self.plan, x, z, self._work())
        return z

    def phiT(self, z):
        """Signals (n, n_times) from internal real coefficients (n, 2 n_coefs)."""
        z = np.ascontiguousarray(z, dtype=self.dtype)
        x = np.empty((z.shape[0], self.n_times), dtype=self.dtype)
        _engine.istft(self.plan, z, x, self._work())
        return x

    def to_mne(self, z):
        """Internal real coefficients -> MNE's complex layout (n, n_coefs)."""
        if self.n_conditions == 1:
            return internal_to_mne(z, self.n_steps, self.n_freqs)
        z = np.asarray(z)
        k2 = 2 * self.cond_coefs
        return np.concatenate(
            [
                internal_to_mne(z[:, c * k2 : (c + 1) * k2], self.n_steps, self.n_freqs)
                for c in range(self.n_conditions)
            ],
            axis=1,
        )

    def from_mne(self, Z):
        """MNE's complex layout (n, n_coefs) -> internal real coefficients."""
        Z = np.asarray(Z, dtype=np.complex128)
        zc = np.ascontiguousarray(Z[:, self._to_mne])
        return zc.view(np.float64).astype(self.dtype, copy=False)

    def to_mne_weights(self, w):
        """Per-coefficient weights, internal order -> MNE order."""
        out = np.empty_like(w)
        out[:, self._to_mne] = w
        return out

    def from_mne_weights(self, w):
        """Per-coefficient weights, MNE order -> internal order."""
        return np.ascontiguousarray(np.asarray(w)[:, self._to_mne])


def internal_to_mne(z, n_steps, n_freqs):
    """Internal real coefficients (n, 2 n_coefs) -> MNE's complex layout.

    Per dictionary, the internal order is (step, frequency) and MNE's
    (frequency, step): one transposed copy each.
    """
    zc = np.ascontiguousarray(z, dtype=np.float64).view(np.complex128)
    out = np.empty_like(zc)
    off = 0
    for ns, nf in zip(n_steps, n_freqs):
        out[:, off : off + ns * nf].reshape(-1, nf, ns)[...] = (
            zc[:, off : off + ns * nf].reshape(-1, ns, nf).transpose(0, 2, 1)
        )
        off += ns * nf
    return out


def _as_signals(x):
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise ValueError("x is not a real valued array")
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.floating)
        or np.issubdtype(x.dtype, np.integer)
        or x.dtype == bool
    ):
        raise TypeError(f"x must be a real numeric array, got dtype {x.dtype}")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"x must be 1D or 2D, got shape {x.shape}")
    return x


@verbose
def stft(x, wsize, tstep=None, verbose=None):
    """STFT with a sine window, as :func:`mne.time_frequency.stft`.

    Parameters
    ----------
    x : array, shape (n_signals, n_times) or (n_times,)
        Real signals.
    wsize : int
        Window length in samples, a multiple of 4.
    tstep : int | None
        Hop in samples, a multiple of 2 dividing ``wsize`` and at most
        ``wsize / 2``. Default ``wsize / 2``.
    %(verbose)s

    Returns
    -------
    X : array, shape (n_signals, wsize // 2 + 1, n_step)
        Complex STFT coefficients, ``n_step = ceil(n_times / tstep)``.
    """
    x = _as_signals(x)
    if np.ndim(wsize) != 0 or (tstep is not None and np.ndim(tstep) != 0):
        raise ValueError(
            "stft takes one window: wsize and tstep must be integers, got "
            f"wsize={_short(wsize)}, tstep={_short(tstep)}"
        )
    if tstep is None:
        tstep = int(wsize) // 2 if float(wsize) == int(wsize) else wsize
    (wsize,), (tstep,) = check_wsize_tstep(wsize, tstep)
    n_signals, T = x.shape
    n_step = int(np.ceil(T / float(tstep)))
    n_freq = wsize // 2 + 1
    logger.info(f"Number of frequencies: {n_freq}")
    logger.info(f"Number of time steps: {n_step}")
    if n_signals == 0 or T == 0:
        return np.zeros((n_signals, n_freq, n_step), dtype=np.complex128)
    plan = _engine.TFPlan(T, (wsize,), (tstep,), np.float64, scale=1.0)
    z = np.empty((n_signals, 2 * plan.n_coefs))
    xx = np.ascontiguousarray(x, dtype=np.float64)
    _engine.stft(plan, xx, z, np.empty(plan.max_frames))
    Z = z.view(np.complex128).reshape(n_signals, n_step, n_freq)
    return np.ascontiguousarray(Z.transpose(0, 2, 1))


def istft(X, tstep=None, Tx=None):
    """Inverse STFT, as :func:`mne.time_frequency.istft` (also with ``tstep=None``).

    Parameters
    ----------
    X : array, shape (..., wsize / 2 + 1, n_step)
        Complex STFT coefficients.
    tstep : int | None
        Hop in samples; default ``wsize / 2``.
    Tx : int | None
        Number of samples to return; default ``n_step * tstep``.

    Returns
    -------
    x : array, shape (..., Tx)
        Real signals.
    """
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must have ndim >= 2, got {X.ndim}")
    n_win, n_step = X.shape[-2:]
    signal_shape = X.shape[:-2]
    if n_win % 2 == 0 or n_win < 3:
        raise ValueError(
            "X must have an odd number of rows (wsize / 2 + 1) >= 3 (the STFT "
            f"matrix), got {n_win} rows (X.shape={X.shape})."
        )
    wsize = 2 * (n_win - 1)
    if tstep is None:
        tstep = wsize // 2
    if isinstance(tstep, float) and tstep == int(tstep):
        tstep = int(tstep)
    if isinstance(tstep, bool) or not isinstance(tstep, int | np.integer) or tstep <= 0:
        raise ValueError(f"tstep must be a positive integer, got tstep={tstep!r}")
    tstep = int(tstep)
    if wsize % tstep:
        raise ValueError(
            "The step size must be a divider of two times the number of rows of "
            f"the STFT matrix minus two, got tstep={tstep} for wsize={wsize}."
        )
    if tstep % 2:
        raise ValueError(f"The step size must be a multiple of 2, got tstep={tstep}.")
    if tstep > wsize / 2:
        raise ValueError(
            "The step size must be smaller than the number of rows of the STFT "
            f"matrix minus one, got tstep={tstep} for wsize={wsize}."
        )
    T = n_step * tstep
    if Tx is None:
        Tx = T
    Tx = check_int(Tx, "Tx")
    if Tx < 0:
        raise ValueError(f"Tx must be non-negative, got Tx={Tx}")
    off = (wsize - tstep) // 2
    n_out = max(0, min(Tx, T + 1, T + wsize - tstep - off))
    n_sig = int(np.prod(signal_shape)) if signal_shape else 1
    if n_sig == 0 or n_out == 0 or n_step == 0:
        return np.zeros(signal_shape + (n_out,))
    plan = _engine.TFPlan(
        n_out, (wsize,), (tstep,), np.float64, n_steps=(n_step,), scale=1.0
    )
    Zi = (
        np.ascontiguousarray(
            np.swapaxes(X.reshape(n_sig, n_win, n_step), 1, 2), dtype=np.complex128
        )
        .reshape(n_sig, -1)
        .view(np.float64)
    )
    x = np.empty((n_sig, n_out))
    _engine.istft(plan, np.ascontiguousarray(Zi), x, np.empty(plan.max_frames))
    return x.reshape(signal_shape + (n_out,))


def stft_norm2(X):
    """Squared l2 norm of each signal's STFT, counting the negative frequencies.

    Same as :func:`mne.time_frequency.stft_norm2`: :func:`stft` keeps the
    frequencies from 0 to Nyquist only, so every other frequency counts twice.

    Parameters
    ----------
    X : array, shape (n_signals, n_freqs, n_steps)
        STFT coefficients, as :func:`stft` returns them.

    Returns
    -------
    norms2 : array, shape (n_signals,)
        The squared l2 norm of each signal's coefficients over the whole
        spectrum (by Parseval, the squared norm of the signal for a tight
        frame).
    """
    X2 = np.abs(X) ** 2
    return 2.0 * X2.sum(axis=(1, 2)) - X2[:, 0].sum(axis=1) - X2[:, -1].sum(axis=1)


def stft_norm1(X):
    """l1 norm of each signal's STFT, counting the negative frequencies.

    Same as MNE's ``stft_norm1`` (``mne.time_frequency``): the frequencies
    strictly between 0 and Nyquist count twice, as in :func:`stft_norm2`.

    Parameters
    ----------
    X : array, shape (n_signals, n_freqs, n_steps)
        STFT coefficients, as :func:`stft` returns them.

    Returns
    -------
    norms1 : array, shape (n_signals,)
        The sum of the moduli of each signal's coefficients over the whole
        spectrum (the time-frequency l1 penalty of TF-MxNE, unweighted).
    """
    Xa = np.abs(X)
    return 2.0 * Xa.sum(axis=(1, 2)) - Xa[:, 0].sum(axis=1) - Xa[:, -1].sum(axis=1)
