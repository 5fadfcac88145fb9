"""Time-frequency front ends: STFT magnitude, log1p-STFT, log-mel and log-frequency.

Every front end maps waveforms (batch, samples) -- or a single 1-D waveform, which gains
a batch dimension -- to (batch, num_bins, frames) on the input's device, and records
its parameters in ``settings()`` so saved artifacts can name the representation they
were made with.
"""

from __future__ import annotations

from typing import Any

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LOGMEL_FLOOR = 1e-6
"""Added to mel power before the log so silence maps to ``log(1e-6)`` (about -13.8)
instead of ``-inf``; small next to the mel power of audible signals."""


def _as_batch(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Add a leading batch dimension when ``x`` has ``ndim - 1`` dims."""
    if x.dim() == ndim - 1:
        return x.unsqueeze(0)
    if x.dim() != ndim:
        raise ValueError(f"expected a {ndim - 1}-D or {ndim}-D tensor, got shape {tuple(x.shape)}")
    return x


class Spectrogram(nn.Module):
    """STFT magnitude ``|X|`` with a Hann window, plus its inverse given a phase.

    Frames are zero-padded at both ends when ``center`` is true (librosa's default
    ``pad_mode="constant"``), so frame ``t`` is centred on sample ``t * hop_length``
    and clips shorter than ``n_fft`` are accepted.
    """

    kind = "stft"

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        center: bool = True,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if not 0 < win_length <= n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}")
        if hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {hop_length}")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length)
        self.center = bool(center)
        self.num_bins = self.n_fft // 2 + 1
        # Derived from the settings, so it is not part of a checkpoint.
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def _window_for(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.real.dtype if x.is_complex() else x.dtype
        return self.window.to(device=x.device, dtype=dtype)

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex STFT (batch, num_bins, frames) of ``wave`` (batch, samples) or (samples,)."""
        wave = _as_batch(wave, 2)
        if not wave.is_floating_point():
            wave = wave.float()
        return torch.stft(
            wave,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._window_for(wave),
            center=self.center,
            pad_mode="constant",
            return_complex=True,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Magnitude ``|X|`` (batch, num_bins, frames)."""
        return self.stft(wave).abs()

    def istft(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        """Waveform (batch, length) from a magnitude and a phase.

        Parameters
        ----------
        magnitude : (batch, num_bins, frames) or (num_bins, frames), non-negative.
        phase : same shape; either complex unit phasors ``X / |X|`` or real angles (rad).
        length : number of output samples (the original clip length).

        With ``center=False`` the first and last samples are only partly covered by the
        window; samples no window reaches come back as 0.
        """
        magnitude = _as_batch(magnitude, 3)
        phase = _as_batch(phase, 3)
        if phase.is_complex():
            spec = magnitude.to(phase.dtype) * phase
        else:
            spec = torch.polar(magnitude, phase.to(magnitude.dtype))
        if not self.center:
            return self._istft_uncentered(spec, int(length))
        return torch.istft(
            spec,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self._window_for(spec),
            center=self.center,
            length=int(length),
        )

    def _istft_uncentered(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        # torch.istft(center=False) refuses any window that is zero at the frame edges
        # (Hann is), so overlap-add by hand and leave samples no window covers at 0.
        window = self._window_for(spec)
        left = (self.n_fft - self.win_length) // 2
        window = F.pad(window, (left, self.n_fft - self.win_length - left))
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * window[None, :, None]
        n_frames = spec.shape[-1]
        total = self.n_fft + self.hop_length * (n_frames - 1)
        fold = {
            "output_size": (1, total),
            "kernel_size": (1, self.n_fft),
            "stride": (1, self.hop_length),
        }
        wave = F.fold(frames, **fold)[:, 0, 0]
        envelope = F.fold(window.square()[None, :, None].expand(1, -1, n_frames), **fold)[0, 0, 0]
        nonzero = envelope > 1e-11
        wave = torch.where(nonzero, wave / torch.where(nonzero, envelope, 1.0), 0.0)
        if total >= length:
            return wave[:, :length]
        return F.pad(wave, (0, length - total))

    def frequencies(self) -> torch.Tensor:
        """Centre frequency in Hz of each bin, shape (num_bins,)."""
        return torch.fft.rfftfreq(self.n_fft, d=1.0 / self.sample_rate, device=self.window.device)

    def frame_times(self, n_frames: int) -> torch.Tensor:
        """Time in seconds of each frame's centre, shape (n_frames,)."""
        offset = 0 if self.center else self.n_fft // 2
        frames = torch.arange(n_frames, dtype=torch.float64, device=self.window.device)
        return ((frames * self.hop_length + offset) / self.sample_rate).float()

    def settings(self) -> dict[str, Any]:
        """Parameters that fully determine the representation."""
        return {
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "win_length": self.win_length,
            "center": self.center,
            "window": "hann",
            "pad_mode": "constant",
        }


class Log1pSpectrogram(Spectrogram):
    """``log1p(|X|)`` STFT magnitude, the input of Listen-to-Interpret (Parekh et al., 2022)."""

    kind = "log1p_stft"

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``log(1 + |X|)`` (batch, num_bins, frames)."""
        return torch.log1p(self.stft(wave).abs())

    def invert(self, log_mag: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        """Waveform (batch, length) from a log1p magnitude and a phase (see ``istft``)."""
        # A decoder may output slightly negative values; expm1 keeps them > -1, clamp to 0.
        return self.istft(torch.expm1(log_mag).clamp_min(0.0), phase, length)


class FilterbankSpectrogram(nn.Module):
    """Base of the front ends that pool a Hann-window STFT (``self.spectrogram``) into bands.

    Subclasses set ``kind``, ``num_bins``, implement ``forward`` and ``frequencies``, and
    list their own parameters in ``band_settings()``; timing and the STFT settings are
    shared.
    """

    kind: str

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.spectrogram = Spectrogram(sample_rate, n_fft=n_fft, hop_length=hop_length)

    @property
    def sample_rate(self) -> int:
        return self.spectrogram.sample_rate

    @property
    def hop_length(self) -> int:
        return self.spectrogram.hop_length

    @property
    def n_fft(self) -> int:
        return self.spectrogram.n_fft

    def frame_times(self, n_frames: int) -> torch.Tensor:
        """Time in seconds of each frame's centre, shape (n_frames,)."""
        return self.spectrogram.frame_times(n_frames)

    def band_settings(self) -> dict[str, Any]:
        """The filterbank's parameters (``settings()`` adds them to the STFT's)."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Parameters that fully determine the representation."""
        return {**self.spectrogram.settings(), "kind": self.kind, **self.band_settings()}


class LogMel(FilterbankSpectrogram):
    """Log mel power spectrogram ``log(mel_power + 1e-6)`` (see ``LOGMEL_FLOOR``).

    The filterbank is librosa's (Slaney mel scale, Slaney area normalisation) applied to
    the Hann-window power STFT ``|X|**2``.
    """

    kind = "logmel"

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__(sample_rate, n_fft, hop_length)
        self.f_min = float(f_min)
        self.f_max = float(sample_rate) / 2 if f_max is None else float(f_max)
        self.n_mels = int(n_mels)
        self.num_bins = self.n_mels
        fb = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=self.f_min, fmax=self.f_max
        )
        self.register_buffer("mel_fb", torch.from_numpy(fb.astype(np.float32)), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log mel power (batch, n_mels, frames)."""
        spec = self.spectrogram.stft(wave)
        # re**2 + im**2 rather than abs()**2: no sqrt, so the gradient is defined at 0
        return self.from_power(spec.real.square() + spec.imag.square())

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        """Log mel of a power spectrogram (batch, n_fft // 2 + 1, frames) of this STFT.

        Lets a modified (e.g. masked) STFT magnitude reach a log-mel classifier without an
        inverse STFT round trip.
        """
        mel = torch.matmul(self.mel_fb.to(device=power.device, dtype=power.dtype), power)
        return torch.log(mel + LOGMEL_FLOOR)

    def frequencies(self) -> torch.Tensor:
        """Centre frequency in Hz of each mel band, shape (n_mels,)."""
        hz = librosa.mel_frequencies(self.n_mels + 2, fmin=self.f_min, fmax=self.f_max)[1:-1]
        return torch.as_tensor(hz, dtype=torch.float32, device=self.mel_fb.device)

    def band_settings(self) -> dict[str, Any]:
        return {
            "n_mels": self.n_mels,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "mel_scale": "slaney",
            "log_floor": LOGMEL_FLOOR,
        }


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


class LogFrequencySpectrogram(FilterbankSpectrogram):
    """``log10(1 + fb @ |STFT|)`` on a log-frequency filterbank, (batch, bands, frames).

    The input representation of Chowdhury et al. (ISMIR 2019): madmom's
    ``LogarithmicFilteredSpectrogram`` (Böck et al., ACM MM 2016). On a log-frequency axis
    a transposition is a shift, so a CNN's convolutions see an interval the same way in
    every key.

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
        super().__init__(sample_rate, n_fft, hop_length)
        self.bands_per_octave = int(bands_per_octave)
        self.f_min, self.f_max = float(f_min), float(f_max)
        fb, centres = log_filterbank(sample_rate, n_fft, bands_per_octave, f_min, f_max)
        self.register_buffer("fb", torch.from_numpy(fb), persistent=False)
        self.centres_hz = centres
        self.num_bins = fb.shape[0]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``log10(1 + fb @ |X|)`` (batch, bands, frames)."""
        mag = self.spectrogram(wave)
        return torch.log10(1.0 + torch.matmul(self.fb.to(mag.dtype), mag))

    def frequencies(self) -> torch.Tensor:
        """Centre frequency in Hz of each band, shape (bands,)."""
        return torch.as_tensor(self.centres_hz, dtype=torch.float32)

    def band_settings(self) -> dict[str, Any]:
        return {
            "bands_per_octave": self.bands_per_octave,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "f_ref": 440.0,
            "compression": "log10(1 + x)",
            "unique_filters": True,
            "filter_norm": "sum",
        }


class Waveform(nn.Module):
    """The waveform itself, (batch, samples): the "front end" of end-to-end models
    (``WaveformCNN``), so a waveform run reads, caches and splits its data like the others."""

    kind = "waveform"

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples), or (batch, channels, samples) of a microphone array, as is."""
        wave = wave if wave.dim() == 3 else _as_batch(wave, 2)
        return wave if wave.is_floating_point() else wave.float()

    def settings(self) -> dict[str, Any]:
        """Parameters that fully determine the representation."""
        return {"kind": self.kind, "sample_rate": self.sample_rate}


_FRONTENDS: dict[str, type[nn.Module]] = {
    Waveform.kind: Waveform,
    Spectrogram.kind: Spectrogram,
    Log1pSpectrogram.kind: Log1pSpectrogram,
    LogMel.kind: LogMel,
    LogFrequencySpectrogram.kind: LogFrequencySpectrogram,
}


def build_frontend(kind: str, **kwargs: Any) -> nn.Module:
    """Front end by name: ``"stft"``, ``"log1p_stft"``, ``"logmel"``, ``"logfreq"`` or
    ``"waveform"`` (the samples themselves, for end-to-end models).

    ``kwargs`` go to the class constructor (``sample_rate`` is required).
    """
    try:
        cls = _FRONTENDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown frontend kind {kind!r}; valid kinds: {sorted(_FRONTENDS)}"
        ) from None
    return cls(**kwargs)
