"""Tests for interp_models.audio.features: STFT inversion, log-mel, frontend registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_models.audio.features import (
    Log1pSpectrogram,
    LogMel,
    Spectrogram,
    build_frontend,
)

SR = 16000


def _noise(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, samples, generator=gen)


def _sine(freq: float, samples: int = SR) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float32) / SR
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


@pytest.mark.parametrize("phase_kind", ["complex", "angle"])
def test_stft_round_trip_center(phase_kind: str) -> None:
    spec = Spectrogram(SR, n_fft=512, hop_length=128)
    wave = _noise(2, 8000 + 37)  # length not a multiple of the hop
    x = spec.stft(wave)
    assert x.shape == (2, spec.num_bins, 1 + wave.shape[1] // 128)
    mag = spec(wave)
    torch.testing.assert_close(mag, x.abs())
    phase = x / x.abs().clamp_min(1e-12) if phase_kind == "complex" else torch.angle(x)
    back = spec.istft(mag, phase, length=wave.shape[1])
    assert back.shape == wave.shape
    assert (back - wave).abs().max() < 1e-4


def test_stft_round_trip_no_center_away_from_edges() -> None:
    spec = Spectrogram(SR, n_fft=256, hop_length=64, win_length=200, center=False)
    wave = _noise(1, 4000)
    x = spec.stft(wave)
    back = spec.istft(x.abs(), torch.angle(x), length=wave.shape[1])
    inner = slice(256, 4000 - 256)
    assert (back[:, inner] - wave[:, inner]).abs().max() < 1e-4


def test_log1p_invert_round_trip_and_single_wave() -> None:
    spec = Log1pSpectrogram(SR, n_fft=512, hop_length=128)
    wave = _noise(1, 6000)[0]  # 1-D input gains a batch dim
    log_mag = spec(wave)
    assert log_mag.shape[0] == 1 and log_mag.shape[1] == spec.num_bins
    x = spec.stft(wave)
    torch.testing.assert_close(log_mag, torch.log1p(x.abs()))
    back = spec.invert(log_mag, torch.angle(x), length=6000)
    assert back.shape == (1, 6000)
    assert (back[0] - wave).abs().max() < 1e-4


def test_batch_matches_single() -> None:
    waves = _noise(3, 5000, seed=1)
    for frontend in (Spectrogram(SR), Log1pSpectrogram(SR), LogMel(SR)):
        batched = frontend(waves)
        for i in range(3):
            torch.testing.assert_close(frontend(waves[i])[0], batched[i], rtol=1e-4, atol=1e-4)


def test_logmel_shape_and_silence() -> None:
    mel = LogMel(SR, n_fft=1024, hop_length=256, n_mels=40)
    out = mel(torch.zeros(2, SR))
    assert out.shape == (2, 40, 1 + SR // 256)
    assert mel.num_bins == 40
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.full_like(out, float(np.log(1e-6))))
    assert list(mel.state_dict()) == []  # filterbank and window are derived, not saved


def test_logmel_sine_peaks_at_nearest_band() -> None:
    mel = LogMel(SR, n_mels=64)
    out = mel(_sine(1000.0))
    band = int(out[0].mean(dim=1).argmax())
    centres = mel.frequencies()
    assert band == int((centres - 1000.0).abs().argmin())


def test_stft_sine_peaks_at_its_bin() -> None:
    spec = Spectrogram(SR, n_fft=1024)
    mag = spec(_sine(1000.0))
    freq = spec.frequencies()[mag[0].mean(dim=1).argmax()]
    assert abs(float(freq) - 1000.0) <= SR / 1024


def test_frequencies_and_frame_times() -> None:
    spec = Spectrogram(SR, n_fft=512, hop_length=160)
    freqs = spec.frequencies()
    assert freqs.shape == (257,)
    assert freqs[0] == 0 and float(freqs[-1]) == pytest.approx(SR / 2)
    assert (freqs.diff() > 0).all()
    mel_freqs = LogMel(SR, n_mels=32, f_min=50.0, f_max=7000.0).frequencies()
    assert mel_freqs.shape == (32,)
    assert (mel_freqs.diff() > 0).all() and 50.0 < mel_freqs[0] and mel_freqs[-1] < 7000.0

    torch.testing.assert_close(spec.frame_times(3), torch.tensor([0.0, 0.01, 0.02]))
    no_center = Spectrogram(SR, n_fft=512, hop_length=160, center=False)
    assert float(no_center.frame_times(1)[0]) == pytest.approx(256 / SR)


def test_settings_and_build_frontend() -> None:
    spec = build_frontend("log1p_stft", sample_rate=SR, n_fft=512, hop_length=128)
    assert isinstance(spec, Log1pSpectrogram)
    settings = spec.settings()
    assert settings["kind"] == "log1p_stft"
    assert settings["win_length"] == 512 and settings["center"] is True
    assert isinstance(build_frontend("stft", sample_rate=SR), Spectrogram)
    mel = build_frontend("logmel", sample_rate=SR, n_mels=48)
    assert mel.settings()["kind"] == "logmel" and mel.settings()["n_mels"] == 48
    assert mel.settings()["f_max"] == SR / 2
    with pytest.raises(ValueError, match=r"'cqt'.*logmel"):
        build_frontend("cqt", sample_rate=SR)


def test_gradients_are_finite_on_silence() -> None:
    wave = torch.zeros(1, 4000, requires_grad=True)
    for frontend in (Log1pSpectrogram(SR), LogMel(SR)):
        frontend(wave).sum().backward()
        assert torch.isfinite(wave.grad).all()
        wave.grad = None
