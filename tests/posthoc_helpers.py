"""Tiny seeded models, front ends and clips shared by the post-hoc and metric tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from interp_models.audio.features import Log1pSpectrogram, LogMel, Spectrogram
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.blackbox.wavecnn import WaveformCNN

SR, N_SAMPLES, N_CLASSES = 8000, 2048, 3


@dataclass
class Tiny:
    waves: torch.Tensor  # (2, N)
    logmel: LogMel
    log1p: Log1pSpectrogram
    stft: Spectrogram  # coarse analysis STFT for waveform TF groupings
    x: torch.Tensor  # (2, 16, T) log-mel
    spec_model: SpectrogramCNN
    wave_model: WaveformCNN
    W: torch.Tensor  # (129, 6) dictionary over log1p-STFT bins


def _warm(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """A few train-mode passes so batch-norm statistics are not the identity."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(inputs)
    return model.eval()


def tone_clips(n: int = 2, seed: int = 0) -> torch.Tensor:
    """Tones (500 Hz, 2 kHz) in quiet noise, one tone starting half-way: (n, N)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N_SAMPLES) / SR
    waves = 0.01 * torch.randn(n, N_SAMPLES, generator=g)
    waves[:, N_SAMPLES // 2 :] += 0.3 * torch.sin(2 * torch.pi * 2000 * t[N_SAMPLES // 2 :])
    waves += 0.2 * torch.sin(2 * torch.pi * 500 * t)
    return waves


def tiny(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    waves = tone_clips(seed=seed)
    logmel = LogMel(SR, n_fft=256, hop_length=64, n_mels=16)
    log1p = Log1pSpectrogram(SR, n_fft=256, hop_length=64)
    x = logmel(waves)
    spec_model = _warm(SpectrogramCNN(N_CLASSES, channels=(4, 8)), x)
    wave_model = _warm(
        WaveformCNN(N_CLASSES, channels=(4, 8), stem_channels=4, stem_kernel=16), waves
    )
    W = torch.rand(log1p.num_bins, 6, generator=torch.Generator().manual_seed(seed))
    stft = Spectrogram(SR, n_fft=128, hop_length=64)
    return Tiny(waves, logmel, log1p, stft, x, spec_model, wave_model, W)


class LinearSpec(nn.Module):
    """``f(x) = A flatten(x) + b``: attributions known in closed form."""

    def __init__(self, shape: tuple[int, ...], n_classes: int = N_CLASSES, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(int(torch.tensor(shape).prod()), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread while a module's tests run: these models are tiny, and on a
    shared 2-core machine two spinning threads per op make them ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
