"""Our Springer features and heart rate against an independent port: ``pcg-springer-features``.

``pcg-springer-features`` (PyPI, MIT; a Python port of the features and Schmidt heart rate
of Springer's Matlab code) is optional: without it these tests skip. It imports two
functions from ``torch_ecg.utils.utils_signal`` (``butter_bandpass_filter``,
``normalize``); ``torch_ecg`` itself cannot be installed here cleanly (it pins
pandas < 3 and pulls some 30 more packages: wfdb, biosppy, boto3, pyarrow, ...), and its
``utils_signal`` cannot be imported alone (the package ``__init__`` and ``utils_data``
import wfdb and torch). So when ``torch_ecg`` is absent, **this module injects a tiny shim
for those two functions into ``sys.modules``** (``_torch_ecg_shim``: the Butterworth design
and z-score of torch_ecg 0.0.33, re-typed from its source, MIT) for the import only, and
removes it again. Everything else compared is the port's own code.

Known design differences, hence the tolerances: the port band-passes with order-2
Butterworth filters (ours: order-2 high-pass, order-4 low-pass), takes its PSD over 25 ms
Hamming windows (ours: 50 ms Hann), its wavelet feature from the decimated db7 transform
(ours: undecimated Daubechies) and samples features from t = 0 (ours: frame centres); its
Schmidt heart rate searches cycles of 0.3-2 s and takes the highest autocorrelation value,
even at the edge of the systolic search range (ours: the highest local maximum).
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
from scipy import signal

from interp_models.data.synth_pcg import SynthPCGConfig, synthesize_recording
from interp_models.heart import springer
from interp_models.heart.states import FRAME_RATE

SR = 1000
#: Our settings with the port's wavelet (db7) and its heart-rate search window (0.3-2 s).
SETTINGS = springer.SpringerSettings(wavelet_vanishing_moments=7, heart_rate_lags_s=(0.3, 2.0))


def _torch_ecg_shim() -> dict[str, types.ModuleType]:
    """Modules ``torch_ecg``, ``torch_ecg.utils`` and ``torch_ecg.utils.utils_signal`` with
    the two functions the port uses, as torch_ecg 0.0.33 defines them."""

    def design(low_hz: float, high_hz: float, fs: float, order: int):
        nyq = 0.5 * fs
        low, high = low_hz / nyq, high_hz / nyq
        if low <= 0:
            return signal.butter(order, high, btype="low")
        if high >= 1:
            return signal.butter(order, low, btype="high")
        return signal.butter(order, [low, high], btype="band")

    def butter_bandpass_filter(data, lowcut, highcut, fs, order, btype=None, verbose=0):
        data = np.asarray(data)
        if btype is None:
            return signal.filtfilt(*design(lowcut, highcut, fs, order), data).astype(data.dtype)
        first, second = ((0, highcut), (lowcut, fs))  # "lohi": low-pass, then high-pass
        if btype.lower() == "hilo":
            first, second = second, first
        y = signal.filtfilt(*design(*first, fs, order), data)
        return signal.filtfilt(*design(*second, fs, order), y).astype(data.dtype)

    def normalize(sig, method, mean=0.0, std=1.0, **_):
        sig = np.asarray(sig)
        if method != "z-score":
            raise NotImplementedError(method)
        return ((sig - sig.mean()) / (sig.std() + 1e-7)) * std + mean

    mods = {n: types.ModuleType(n) for n in ("torch_ecg", "torch_ecg.utils")}
    mods["torch_ecg.utils.utils_signal"] = utils_signal = types.ModuleType(
        "torch_ecg.utils.utils_signal"
    )
    utils_signal.butter_bandpass_filter = butter_bandpass_filter
    utils_signal.normalize = normalize
    return mods


@pytest.fixture(scope="module")
def port():
    """The ``pcg_springer_features`` package (skips without it)."""
    if importlib.util.find_spec("pcg_springer_features") is None:
        pytest.skip("pcg-springer-features is not installed")
    shim = {} if importlib.util.find_spec("torch_ecg") else _torch_ecg_shim()
    sys.modules.update(shim)
    try:
        return pytest.importorskip("pcg_springer_features")
    finally:
        for name in shim:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def recordings() -> list[np.ndarray]:
    """Six built-in recordings of 6-9 s at 1 kHz (normal and with lesions)."""
    cfg = SynthPCGConfig(num_recordings=6, duration_s=(6.0, 9.0), snr_db=(10.0, 20.0), seed=3)
    return [signal.resample_poly(synthesize_recording(cfg, i).mix, 1, 2) for i in range(6)]


def _their_features(port, wave: np.ndarray, n_frames: int) -> np.ndarray:
    """The port's four features at 50 Hz, interpolated to our frame centres."""
    theirs = port.get_springer_features(wave, SR, FRAME_RATE, feature_format="channel_last")
    t_theirs = np.arange(len(theirs)) / FRAME_RATE
    t_ours = (np.arange(n_frames) + 0.5) / FRAME_RATE
    return np.stack([np.interp(t_ours, t_theirs, theirs[:, k]) for k in range(4)], axis=1)


def _smooth(x: np.ndarray) -> np.ndarray:
    """~100 ms Hann smoothing: the scale of a heart sound."""
    k = np.hanning(7)[1:-1]
    return np.convolve(x, k / k.sum(), mode="same")


def test_envelope_features_match_the_port(port, recordings):
    corr = []
    for wave in recordings:
        ours = springer.envelope_features(wave, SETTINGS)
        theirs = _their_features(port, wave, len(ours))
        raw = [np.corrcoef(ours[:, k], theirs[:, k])[0, 1] for k in range(2)]
        smooth = [np.corrcoef(_smooth(ours[:, k]), _smooth(theirs[:, k]))[0, 1] for k in (2, 3)]
        corr.append(raw + smooth)
    corr = np.array(corr)  # (recordings, features)
    # homomorphic and Hilbert envelopes: the same up to the band-pass (measured >= 0.98)
    assert corr[:, 0].min() > 0.99 and corr[:, 1].min() > 0.97, corr
    # PSD and wavelet: other windows / a decimated transform; alike at the scale of a sound
    # (measured 0.84-0.97)
    assert np.median(corr[:, 2:], axis=0).min() > 0.9 and corr[:, 2:].min() > 0.8, corr


def test_heart_rate_matches_schmidt(port, recordings):
    for wave in recordings:
        hr_theirs, sys_theirs = port.get_schmidt_heart_rate(wave, SR)
        hr_ours, sys_ours = springer.heart_rate(
            springer.envelope_features(wave, SETTINGS)[:, 0], SETTINGS
        )
        assert hr_ours == pytest.approx(hr_theirs, abs=2.0)
        if sys_theirs > 0.2 + 1e-9:  # theirs at the edge of its range is no peak
            assert sys_ours == pytest.approx(sys_theirs, abs=0.02)
