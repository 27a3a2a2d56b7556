# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""STFT / ISTFT: equality with MNE, tight frame, multi-dictionary frame, cost."""

import tracemalloc

import numpy as np
import pytest
from _helpers import mne_phi, mne_phiT, multiplicity
from hypothesis import given, settings
from hypothesis import strategies as st
from mne.time_frequency import istft as mne_istft
from mne.time_frequency import stft as mne_stft
from mne.time_frequency import stftfreq
from mne.time_frequency._stft import stft_norm1 as mne_stft_norm1
from mne.time_frequency._stft import stft_norm2 as mne_stft_norm2
from numpy.testing import assert_allclose, assert_array_equal

import tfmxne
from tfmxne._stft import TFFrame

T_VALUES = (1, 2, 5, 127, 128, 255, 256, 1337)
WSIZES = (16, 64, 128, 256)
TSTEPS = (2, 4, 8, 64)


def _grid():
    out = []
    for wsize in WSIZES:
        for tstep in sorted(set(TSTEPS) | {wsize // 2}):
            if tstep % 2 == 0 and wsize % tstep == 0 and tstep <= wsize // 2:
                out.append((wsize, tstep))
    return out


GRID = _grid()


def _signals(T, seed=0):
    rng = np.random.default_rng(seed + T)
    t = np.arange(T)
    return np.array(
        [
            rng.standard_normal(T),
            np.sin(2 * np.pi * 23.0 * t / 1000.0) + 1.0,  # MNE's test signal, offset
            3.0 * rng.standard_normal(T) + 10.0,
        ]
    )


@pytest.mark.parametrize("T", T_VALUES)
def test_stft_istft_match_mne(T):
    """stft / istft equal MNE's to 1e-12 max|x|, on the whole (wsize, tstep) grid."""
    x = _signals(T)
    scale = np.abs(x).max()
    for wsize, tstep in GRID:
        X = tfmxne.stft(x, wsize, tstep, verbose=False)
        Xm = mne_stft(x, wsize, tstep, verbose=False)
        assert X.shape == Xm.shape == (3, wsize // 2 + 1, int(np.ceil(T / tstep)))
        assert X.dtype == np.complex128
        assert np.abs(X - Xm).max() < 1e-12 * scale, (wsize, tstep)
        # inverse, on our and on MNE's coefficients, with and without Tx
        for Tx in (T, None):
            xr = tfmxne.istft(X, tstep, Tx=Tx)
            xm = mne_istft(Xm, tstep, Tx=Tx)
            assert xr.shape == xm.shape, (wsize, tstep, Tx)
            assert np.abs(xr - xm).max() < 1e-12 * scale, (wsize, tstep, Tx)
            assert_allclose(
                tfmxne.istft(Xm, tstep, Tx=Tx), xm, rtol=0, atol=1e-12 * scale
            )
        # round trip and norm conservation (tight frame)
        xr = tfmxne.istft(X, tstep, Tx=T)
        assert np.abs(xr - x).max() < 1e-10 * scale, (wsize, tstep)
        assert_allclose(tfmxne.stft_norm2(X), np.sum(x**2, axis=1), rtol=1e-12)
        assert_allclose(tfmxne.stft_norm2(X), mne_stft_norm2(Xm), rtol=1e-12)
        assert_allclose(tfmxne.stft_norm1(X), mne_stft_norm1(Xm), rtol=1e-12)


def test_stft_default_tstep_and_1d_and_dtypes():
    """Defaults (tstep=None), 1-D input, integer/float32/strided/Fortran input."""
    rng = np.random.default_rng(42)
    x = rng.standard_normal((2, 100))
    assert_allclose(
        tfmxne.stft(x, 64, verbose=False),
        mne_stft(x, 64, verbose=False),
        rtol=0,
        atol=1e-13,
    )
    X1 = tfmxne.stft(x[0], 64, 8, verbose=False)
    assert X1.shape == (1, 33, 13)
    assert_allclose(X1, mne_stft(x[0], 64, 8, verbose=False), rtol=0, atol=1e-13)
    for xx in (
        rng.integers(-5, 5, (2, 100)),
        x.astype(np.float32),
        np.asfortranarray(x),
        x[:, ::2],
        x[::-1],
    ):
        assert_allclose(
            tfmxne.stft(xx, 64, 8, verbose=False),
            mne_stft(xx, 64, 8, verbose=False),
            rtol=0,
            atol=1e-12,
        )
    # numpy integer parameters
    assert_allclose(
        tfmxne.stft(x, np.int64(64), np.int32(8), verbose=False),
        mne_stft(x, 64, 8, verbose=False),
        rtol=0,
        atol=1e-13,
    )


def test_stft_frequencies():
    """Peak frequency of a sinusoid, as in MNE's test_stft."""
    sfreq, f, T, wsize, tstep = 1000.0, 23.0, 1337, 256, 4
    t = np.arange(T)
    x = np.sin(2 * np.pi * f * t / sfreq)[None]
    X = tfmxne.stft(x, wsize, tstep, verbose=False)
    freqs = stftfreq(wsize, sfreq=sfreq)
    assert X.shape[1] == len(freqs)
    assert abs(freqs[np.argmax(np.sum(np.abs(X[0]) ** 2, axis=1))] - f) < 1.0


@pytest.mark.parametrize("wsize, tstep", [(16, 4), (64, 8), (256, 128)])
def test_stft_empty(wsize, tstep):
    """0 signals: shape (0, n_freq, n_step), like MNE; istft back to (0, T)."""
    T = 100
    x = np.zeros((0, T))
    X = tfmxne.stft(x, wsize, tstep, verbose=False)
    Xm = mne_stft(x, wsize, tstep, verbose=False)
    assert X.shape == Xm.shape == (0, wsize // 2 + 1, int(np.ceil(T / tstep)))
    xr = tfmxne.istft(X, tstep, T)
    assert xr.shape == mne_istft(Xm, tstep, T).shape == (0, T)
    assert tfmxne.stft_norm2(X).shape == (0,)


def test_istft_tstep_none():
    """istft(X) without tstep works; MNE's crashes (float slicing)."""
    rng = np.random.default_rng(3)
    for wsize, T in ((16, 37), (64, 100), (256, 1000)):
        x = rng.standard_normal((2, T))
        X = mne_stft(x, wsize, verbose=False)  # default tstep = wsize / 2
        with pytest.raises(TypeError):
            mne_istft(X)
        ours = tfmxne.istft(X)
        ref = mne_istft(X, wsize // 2)
        assert ours.shape == ref.shape
        assert_allclose(ours, ref, rtol=0, atol=1e-12)
        assert_allclose(tfmxne.istft(X, Tx=T), x, rtol=0, atol=1e-12)


def test_istft_tx_and_nd():
    """All Tx (0, shorter, longer than n_step * tstep) and N-d leading shapes."""
    rng = np.random.default_rng(4)
    X = mne_stft(rng.standard_normal((6, 100)), 64, 8, verbose=False)
    for Tx in (0, 1, 50, 99, 100, 101, 104, 105, 200):
        ours, ref = tfmxne.istft(X, 8, Tx), mne_istft(X, 8, Tx)
        assert ours.shape == ref.shape, Tx
        assert_allclose(ours, ref, rtol=0, atol=1e-12)
    X3 = X.reshape(2, 3, 33, -1)
    ours, ref = tfmxne.istft(X3, 8, 100), mne_istft(X3, 8, 100)
    assert ours.shape == ref.shape == (2, 3, 100)
    assert_allclose(ours, ref, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    T=st.integers(1, 300),
    w=st.sampled_from([4, 8, 12, 16, 24, 32, 48, 64]),
    k=st.integers(0, 5),
    n=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_stft_property_vs_mne(T, w, k, n, seed):
    """Random shapes, windows and (even, dividing, <= w/2) hops: equal to MNE."""
    divs = [t for t in range(2, w // 2 + 1, 2) if w % t == 0]
    tstep = divs[k % len(divs)]
    x = np.random.default_rng(seed).standard_normal((n, T))
    X = tfmxne.stft(x, w, tstep, verbose=False)
    Xm = mne_stft(x, w, tstep, verbose=False)
    assert X.shape == Xm.shape
    assert np.abs(X - Xm).max() < 1e-12 * np.abs(x).max()
    assert np.abs(tfmxne.istft(X, tstep, T) - x).max() < 1e-10 * np.abs(x).max()


# --------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------
def test_stft_complex_raises():
    x = np.ones((2, 64)) + 1j
    with pytest.raises(ValueError, match="real"):
        tfmxne.stft(x, 16, 4)
    with pytest.raises(ValueError, match="real"):
        mne_stft(x, 16, 4, verbose=False)


@pytest.mark.parametrize(
    "wsize, tstep, name",
    [
        (30, 2, "wsize"),  # not a multiple of 4
        (18, 2, "wsize"),
        (6, 2, "wsize"),
        (16, 3, "tstep"),  # odd
        (16, 5, "tstep"),
        (24, 16, "tstep"),  # not a divider
        (48, 32, "tstep"),
        (16, 16, "tstep"),  # > wsize / 2
        (64, 64, "tstep"),
    ],
)
def test_stft_bad_wsize_tstep(wsize, tstep, name):
    """Same rejections as MNE, with the parameter named in our message."""
    x = np.ones((2, 64))
    with pytest.raises(ValueError):
        mne_stft(x, wsize, tstep, verbose=False)
    with pytest.raises(ValueError, match=name) as exc:
        tfmxne.stft(x, wsize, tstep)
    assert f"{name}={wsize if name == 'wsize' else tstep}" in str(exc.value)


@pytest.mark.parametrize("tstep", [3, 5, 12, 64])
def test_istft_bad_tstep(tstep):
    X = mne_stft(np.ones((1, 64)), 32, 4, verbose=False)  # 17 rows -> wsize 32
    with pytest.raises(ValueError, match="tstep|step size"):
        tfmxne.istft(X, tstep)


def test_istft_bad_shape():
    with pytest.raises(ValueError):
        tfmxne.istft(np.zeros(5, complex))
    with pytest.raises(ValueError, match="odd"):
        tfmxne.istft(np.zeros((1, 16, 4), complex), 4)


# --------------------------------------------------------------------------
# multi-dictionary frame used by the solvers
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "wsize, tstep",
    [(16, 4), ([16, 8], [4, 2]), ([64, 16], [4, 2]), ([32, 16, 8], [4, 4, 2])],
)
@pytest.mark.parametrize("n_times", [1, 37, 64])
def test_tfframe_matches_mne_phi(wsize, tstep, n_times):
    """phi == MNE's _Phi (in MNE layout), phiT == its adjoint, tight frame."""
    rng = np.random.default_rng(n_times)
    x = rng.standard_normal((4, n_times))
    frame = TFFrame(n_times, wsize, tstep)
    z = frame.phi(x)
    assert z.shape == (4, 2 * frame.n_coefs)
    Z = frame.to_mne(z)
    Zm = mne_phi(x, wsize, tstep)
    assert Z.shape == Zm.shape
    assert_allclose(Z, Zm, rtol=0, atol=1e-13)
    assert_array_equal(frame.from_mne(Z), z)
    # phiT of arbitrary coefficients (not in the range of phi) == MNE's istft sum
    Zr = rng.standard_normal(Zm.shape) + 1j * rng.standard_normal(Zm.shape)
    c = multiplicity(wsize, tstep, n_times)
    Zr[:, c == 1] = Zr[:, c == 1].real  # DC / Nyquist are real in a real signal's STFT
    assert_allclose(
        frame.phiT(frame.from_mne(Zr)),
        mne_phiT(Zr, wsize, tstep, n_times),
        rtol=0,
        atol=1e-12,
    )
    # adjointness for the real inner product of the internal layout weighted by c
    zr = frame.from_mne(Zr)
    y = rng.standard_normal((4, n_times))
    lhs = np.sum(frame.to_mne(frame.phi(y)).conj() * Zr * c, axis=1).real
    rhs = np.sum(y * frame.phiT(zr), axis=1)
    assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)
    # tight frame: phiT(phi(x)) == x and the norm counting c_k is conserved
    assert_allclose(frame.phiT(z), x, rtol=0, atol=1e-12)
    assert_allclose((np.abs(Z) ** 2) @ c, np.sum(x**2, axis=1), rtol=1e-12)
    assert_array_equal(
        frame.to_mne_weights(frame.from_mne_weights(np.abs(Zm))), np.abs(Zm)
    )


def test_tfframe_float32():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 50))
    f64 = TFFrame(50, [16, 8], [4, 2])
    f32 = TFFrame(50, [16, 8], [4, 2], dtype=np.float32)
    z32 = f32.phi(x)
    assert z32.dtype == np.float32
    assert_allclose(z32, f64.phi(x), rtol=0, atol=1e-5)
    assert_allclose(f32.phiT(z32), x, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------
# cost linear in the number of samples
# --------------------------------------------------------------------------
def _peak_stft(T, n_signals=2, wsize=64, tstep=4):
    x = np.random.default_rng(0).standard_normal((n_signals, T))
    tracemalloc.start()
    try:
        X = tfmxne.stft(x, wsize, tstep, verbose=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return X, x, peak


def test_stft_long_signal_memory():
    """(2, 100000) with wsize 64 / tstep 4: no T x T operator, peak < 130 MB.

    The frame plan keeps per-frame window tables (2 x n_step x wsize) and a
    frame buffer: linear in T, about 3x the output here.

    The output alone is 2 * 33 * 25000 * 16 bytes = 26.4 MB; a dense operator
    (MNE's ``_Phi``) would be 100000 x 825000 complex numbers.
    """
    T = 100_000
    X, x, peak = _peak_stft(T)
    assert X.shape == (2, 33, 25000)
    assert X.nbytes == 26_400_000
    # spot-check the result against MNE on a window that MNE can afford
    Xm = mne_stft(x[:, :4000], 64, 4, verbose=False)
    assert_allclose(X[:, :, :900], Xm[:, :, :900], rtol=0, atol=1e-12)
    assert peak < 130e6, f"peak traced memory {peak / 1e6:.1f} MB for a 26.4 MB output"


def test_stft_cost_linear():
    """Peak memory grows linearly with T (x4 samples -> about x4 memory)."""
    _, _, p1 = _peak_stft(25_000)
    _, _, p4 = _peak_stft(100_000)
    assert p4 < 4.4 * p1, (p1, p4)
