"""Signal processing for phonocardiograms: filters, spike removal, envelopes, wavelets.

Everything is numpy / scipy on one 1-D recording; the choices follow Springer et al.,
"Logistic regression-HSMM-based heart sound segmentation", IEEE TBME 63(4), 2016, and
the methods it builds on (Schmidt et al., Physiol. Meas. 31, 2010).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import signal
from scipy.special import comb


def bandpass(x: np.ndarray, sr: float, low_hz: float = 25.0, high_hz: float = 400.0) -> np.ndarray:
    """Zero-phase Butterworth band-pass (order-2 high-pass, order-4 low-pass), as
    Springer et al. pre-filter the PCG to 25-400 Hz."""
    x = np.asarray(x, dtype=np.float64)
    if high_hz >= sr / 2:
        raise ValueError(f"band-pass upper edge {high_hz} Hz must be below Nyquist ({sr / 2} Hz)")
    if x.size < 40:  # sosfiltfilt needs a few times the filter order of padding
        return x - x.mean()
    hp = signal.butter(2, low_hz, "highpass", fs=sr, output="sos")
    lp = signal.butter(4, high_hz, "lowpass", fs=sr, output="sos")
    return signal.sosfiltfilt(lp, signal.sosfiltfilt(hp, x))


def remove_spikes(x: np.ndarray, sr: float, window_s: float = 0.5) -> np.ndarray:
    """Schmidt et al. (2010) spike removal.

    The signal is cut into ``window_s`` windows; while some window's maximum absolute
    amplitude (MAA) exceeds three times the median MAA, the largest spike of that window
    -- from the zero crossing before its peak to the one after -- is set to zero.
    """
    x = np.array(x, dtype=np.float64)
    win = max(1, int(round(window_s * sr)))
    n_win = x.size // win
    if n_win < 2:
        return x
    frames = x[: n_win * win].reshape(n_win, win)  # a view: edits land in x
    for _ in range(20 * n_win):  # each pass removes one spike; the bound only guards
        maa = np.abs(frames).max(axis=1)
        median = np.median(maa)
        w = int(np.argmax(maa))
        if maa[w] <= 3 * median or median == 0:
            break
        frame = frames[w]
        peak = int(np.argmax(np.abs(frame)))
        crossings = np.flatnonzero(np.abs(np.diff(np.sign(frame))) > 1)
        before, after = crossings[crossings < peak], crossings[crossings >= peak]
        start = int(before[-1]) + 1 if before.size else 0
        stop = int(after[0]) + 1 if after.size else win
        frame[start:stop] = 0.0
    return x


def hilbert_envelope(x: np.ndarray) -> np.ndarray:
    """Magnitude of the analytic signal."""
    return np.abs(signal.hilbert(x))


def homomorphic_envelope(x: np.ndarray, sr: float, lpf_hz: float = 8.0) -> np.ndarray:
    """``exp(lowpass(log |hilbert(x)|))`` with a zero-phase 1st-order Butterworth at
    ``lpf_hz`` (Schmidt et al. 2010; Springer et al. 2016 use 8 Hz)."""
    env = np.log(hilbert_envelope(x) + 1e-10)  # log(0) on digital silence
    sos = signal.butter(1, lpf_hz, "lowpass", fs=sr, output="sos")
    return np.exp(signal.sosfiltfilt(sos, env))


def psd_band_feature(
    x: np.ndarray,
    sr: float,
    n_frames: int,
    frame_rate: float,
    band_hz: tuple[float, float] = (40.0, 60.0),
    window_s: float = 0.05,
) -> np.ndarray:
    """Mean power spectral density in ``band_hz`` over time, on ``n_frames`` frames.

    Springer et al. (2016) add this to the envelopes because S1 and S2 concentrate their
    power around 40-60 Hz. The short-time PSD (Hann window of ``window_s``, half
    overlap, 1 Hz bins) is interpolated at the frame centres.
    """
    nper = max(8, int(round(window_s * sr)))
    if x.size < nper:
        return np.zeros(n_frames)
    f, t, p = signal.spectrogram(
        x, fs=sr, window="hann", nperseg=nper, noverlap=nper // 2, nfft=max(nper, int(sr))
    )
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    power = p[band].mean(axis=0)
    centres = (np.arange(n_frames) + 0.5) / frame_rate
    return np.interp(centres, t, power)


@cache
def daubechies_lowpass(n_vanishing: int) -> np.ndarray:
    """Daubechies' orthonormal low-pass filter with ``n_vanishing`` vanishing moments
    (length ``2 * n_vanishing``), by spectral factorisation (Daubechies, "Ten lectures on
    wavelets", 1992, ch. 6): the minimum-phase root of each pair of
    ``P(y) = sum_k C(N-1+k, k) y^k`` with ``y = (2 - z - 1/z) / 4``."""
    n = int(n_vanishing)
    if not 1 <= n <= 20:
        raise ValueError(f"n_vanishing must be in 1..20, got {n_vanishing}")
    coeffs = [comb(n - 1 + k, k, exact=True) for k in range(n)]
    y_roots = np.roots(coeffs[::-1]) if n > 1 else np.array([])
    zeros = []
    for y in y_roots:  # each y-root gives z and 1/z; keep the one inside the unit circle
        b = 1 - 2 * y
        z = b + np.sqrt(b * b - 1 + 0j)
        zeros.append(z if abs(z) < 1 else 1 / z)
    poly = np.array([1.0 + 0j])
    for _ in range(n):
        poly = np.convolve(poly, [1.0, 1.0])  # the N zeros at z = -1
    for z in zeros:
        poly = np.convolve(poly, [1.0, -z])
    h = np.real(poly)
    return h * np.sqrt(2) / h.sum()


def wavelet_detail(x: np.ndarray, level: int = 3, n_vanishing: int = 10) -> np.ndarray:
    """Detail coefficients at ``level`` of the undecimated (a trous) Daubechies wavelet
    transform, aligned with ``x`` (same length).

    At 1 kHz, level 3 spans about 62-125 Hz, where Springer et al. (2016) take their
    wavelet envelope.
    """
    h = daubechies_lowpass(n_vanishing)
    g = h[::-1] * (-1.0) ** np.arange(h.size)  # quadrature-mirror high-pass

    def upsample(f: np.ndarray, factor: int) -> np.ndarray:
        out = np.zeros((f.size - 1) * factor + 1)
        out[::factor] = f
        return out

    filt = np.array([1.0])
    for j in range(level - 1):
        filt = np.convolve(filt, upsample(h, 2**j))
    filt = np.convolve(filt, upsample(g, 2 ** (level - 1)))
    return signal.oaconvolve(np.asarray(x, dtype=np.float64), filt, mode="same")


def random_response(
    x: np.ndarray,
    sr: float,
    rng: np.random.Generator,
    tilt_db_per_octave: float = 4.0,
    highpass_hz: tuple[float, float] = (10.0, 150.0),
    resonance_hz: tuple[float, float] = (40.0, 400.0),
    resonance_db: float = 10.0,
) -> np.ndarray:
    """``x`` through a random zero-phase frequency response, as another chest piece or
    microphone would colour it (training augmentation; timings are unchanged).

    The response: a spectral tilt drawn from +/- ``tilt_db_per_octave`` (around 100 Hz),
    a 2nd-order Butterworth high-pass with its corner log-uniform in ``highpass_hz``, and
    a resonance (Q 0.7-2) log-uniform in ``resonance_hz`` of -``resonance_db`` / 2 to
    +``resonance_db``.
    """
    x = np.asarray(x, dtype=np.float64)
    n_fft = 2 * x.size
    f = np.maximum(np.fft.rfftfreq(n_fft, 1.0 / sr), 1e-3)
    tilt = rng.uniform(-tilt_db_per_octave, tilt_db_per_octave)
    fc = np.exp(rng.uniform(*np.log(highpass_hz)))
    fr = np.exp(rng.uniform(*np.log(resonance_hz)))
    q, peak_db = rng.uniform(0.7, 2.0), rng.uniform(-resonance_db / 2, resonance_db)
    gain = 10 ** (tilt * np.log2(f / 100.0) / 20)
    gain *= (f / fc) ** 2 / np.sqrt(1 + (f / fc) ** 4)
    gain *= 1 + (10 ** (peak_db / 20) - 1) / (1 + q**2 * (f / fr - fr / f) ** 2)
    return np.fft.irfft(np.fft.rfft(x, n_fft) * gain, n_fft)[: x.size]


def to_frames(env: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """Anti-aliased decimation of an envelope by ``hop``, sampled at frame centres.

    Frame ``k`` covers samples ``[k hop, (k + 1) hop)``; its value is the low-passed
    envelope at the frame centre, so features line up with ``Segmentation.to_frames``.
    """
    shifted = np.asarray(env, dtype=np.float64)[hop // 2 :]
    if shifted.size == 0:
        return np.zeros(n_frames)
    out = signal.resample_poly(shifted, 1, hop) if shifted.size > 2 * hop else shifted[::hop]
    if out.size >= n_frames:
        return out[:n_frames]
    return np.pad(out, (0, n_frames - out.size), mode="edge")


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (a constant signal maps to zeros)."""
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def firwin_bank(bands_hz: tuple[tuple[float, float], ...], sr: float, n_taps: int) -> np.ndarray:
    """Linear-phase FIR band-pass filters (Hamming windowed sinc), shape (n_bands, n_taps)."""
    if n_taps % 2 == 0:
        raise ValueError(f"n_taps must be odd (zero-phase centring), got {n_taps}")
    return np.stack(
        [signal.firwin(n_taps, [lo, hi], pass_zero=False, fs=sr) for lo, hi in bands_hz]
    )
