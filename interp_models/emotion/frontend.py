"""Log-frequency spectrogram: the input representation of Chowdhury et al. (ISMIR 2019).

A magnitude STFT pooled by triangular filters centred on a logarithmic (equal-tempered)
frequency grid, then compressed as ``log10(1 + x)`` -- the design of madmom's
``LogarithmicFilteredSpectrogram`` (Böck et al., "madmom: a new Python audio and music
signal processing library", ACM MM 2016) that the paper used (22.05 kHz, frame 2048,
24 bands per octave, 20 Hz - 16 kHz, 31.25 frames/s). On a log-frequency axis a
transposition is a shift, so a CNN's convolutions see an interval (a minor third, a
semitone clash) the same way in every key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from interp_models.audio.features import Spectrogram


def log_filterbank(
    sample_rate: int,
    n_fft: int,
    bands_per_octave: int = 24,
    f_min: float = 20.0,
    f_max: float = 16000.0,
    f_ref: float = 440.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangular filters on a log grid, merged where bins coincide (``unique_filters``).

    Centres ``f_ref * 2**(k / bands_per_octave)`` within ``[f_min, min(f_max, sr/2)]`` are
    rounded to STFT bins; duplicates are dropped, so at low frequencies (where bins are
    wider than the grid) consecutive bins form the bands. Filter ``i`` rises from bin
    ``b[i]`` to ``b[i+1]`` and falls to ``b[i+2]``; each filter sums to 1.

    Returns
    -------
    fb : float32 (n_bands, n_fft // 2 + 1).
    centres_hz : (n_bands,) centre frequency of each band (its peak bin).
    """
    if bands_per_octave < 1:
        raise ValueError(f"bands_per_octave must be >= 1, got {bands_per_octave}")
    nyquist = sample_rate / 2
    f_max = min(f_max, nyquist)
    if not 0 < f_min < f_max:
        raise ValueError(f"need 0 < f_min < f_max (<= sr/2), got f_min={f_min}, f_max={f_max}")
    k_lo = int(np.floor(bands_per_octave * np.log2(f_min / f_ref)))
    k_hi = int(np.ceil(bands_per_octave * np.log2(f_max / f_ref)))
    freqs = f_ref * 2.0 ** (np.arange(k_lo, k_hi + 1) / bands_per_octave)
    freqs = freqs[(freqs >= f_min) & (freqs <= f_max)]
    bin_hz = sample_rate / n_fft
    bins = np.unique(np.rint(freqs / bin_hz).astype(int))
    bins = bins[(bins >= 0) & (bins <= n_fft // 2)]
    if bins.size < 3:
        raise ValueError("fewer than 3 distinct bins: widen [f_min, f_max] or raise n_fft")
    n_bins = n_fft // 2 + 1
    fb = np.zeros((bins.size - 2, n_bins), dtype=np.float64)
    for i, (lo, mid, hi) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:], strict=True)):
        up = (np.arange(lo, mid + 1) - lo) / max(mid - lo, 1)
        down = (hi - np.arange(mid, hi + 1)) / max(hi - mid, 1)
        fb[i, lo : mid + 1] = up
        fb[i, mid : hi + 1] = down
        fb[i] /= fb[i].sum()
    return fb.astype(np.float32), bins[1:-1] * bin_hz


class LogFrequencySpectrogram(nn.Module):
    """``log10(1 + fb @ |STFT|)`` on a log-frequency filterbank, (batch, bands, frames).

    Parameters
    ----------
    sample_rate, n_fft, hop_length : the STFT (Hann, centred). The paper: 22050, 2048,
        706 (31.25 frames/s).
    bands_per_octave, f_min, f_max : the filterbank (paper: 24, 20, 16000; f_max is
        capped at the Nyquist frequency).
    """

    kind = "logfreq"

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 2048,
        hop_length: int = 706,
        bands_per_octave: int = 24,
        f_min: float = 20.0,
        f_max: float = 16000.0,
    ) -> None:
        super().__init__()
        self.spectrogram = Spectrogram(sample_rate, n_fft=n_fft, hop_length=hop_length)
        self.bands_per_octave = int(bands_per_octave)
        self.f_min, self.f_max = float(f_min), float(f_max)
        fb, centres = log_filterbank(sample_rate, n_fft, bands_per_octave, f_min, f_max)
        self.register_buffer("fb", torch.from_numpy(fb), persistent=False)
        self.centres_hz = centres
        self.num_bins = fb.shape[0]

    @property
    def sample_rate(self) -> int:
        return self.spectrogram.sample_rate

    @property
    def hop_length(self) -> int:
        return self.spectrogram.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mag = self.spectrogram(wave)
        return torch.log10(1.0 + torch.matmul(self.fb.to(mag.dtype), mag))

    def frequencies(self) -> torch.Tensor:
        """Centre frequency in Hz of each band, shape (bands,)."""
        return torch.as_tensor(self.centres_hz, dtype=torch.float32)

    def frame_times(self, n_frames: int) -> torch.Tensor:
        """Time in seconds of each frame's centre, shape (n_frames,)."""
        return self.spectrogram.frame_times(n_frames)

    def settings(self) -> dict[str, Any]:
        """Parameters that fully determine the representation."""
        return {
            **self.spectrogram.settings(),
            "kind": self.kind,
            "bands_per_octave": self.bands_per_octave,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "f_ref": 440.0,
            "compression": "log10(1 + x)",
            "unique_filters": True,
            "filter_norm": "sum",
        }


def build_music_frontend(kind: str, sample_rate: int, **kwargs: Any) -> nn.Module:
    """``logfreq`` here, any other kind from ``interp_models.audio.features.build_frontend``."""
    if kind == LogFrequencySpectrogram.kind:
        return LogFrequencySpectrogram(sample_rate, **kwargs)
    from interp_models.audio.features import build_frontend

    return build_frontend(kind, sample_rate=sample_rate, **kwargs)
