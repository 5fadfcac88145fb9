"""1-D CNN on raw waveforms: the black-box counterpart for waveform explanations.

The layout follows the "M"-series raw-waveform CNNs of Dai, Dai, Qu, Li, Das, "Very deep
convolutional neural networks for raw waveforms", ICASSP 2017: a wide strided stem
convolution acting as a learned filterbank, then blocks of small convolutions with batch
norm and pooling, and a global average over time.

Naming mirrors ``SpectrogramCNN``: hidden layers are ``block1`` ... ``blockN`` (the stem is
``stem``), ``feature_map()`` returns the last block's output and ``embed()`` the clip
embedding. Every ReLU and pooling step is its own module and flattening happens in
``forward`` with ``torch.flatten``, so LRP (zennit rules, or captum's, which rejects
``nn.Flatten``) assigns a rule to every layer and relevance is conserved through pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WaveBlock(nn.Module):
    """Two 1-D conv + batch-norm + ReLU layers followed by max pooling over time."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, pool: int = 4):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.pool(x)


class WaveformCNN(nn.Module):
    """CNN mapping waveforms ``(batch, samples)`` to ``n_outputs`` logits or values.

    Parameters
    ----------
    n_outputs : number of outputs (classes, or regression targets).
    channels : output channels of each block; block ``i`` is named ``block{i+1}``.
    stem_channels, stem_kernel, stem_stride : the strided first convolution (Dai et al.
        2017 use 80 samples, stride 4 at 8 kHz; 5 ms windows at 16 kHz are 80 samples too).
    pool : max-pool factor after the stem and after each block.
    dropout : dropout before the output layer.
    in_channels : input channels: 1 takes ``(batch, samples)``; M > 1 takes the stacked
        waveforms of M microphones ``(batch, M, samples)``, which the stem convolves
        jointly (so it can see the delays between them).
    """

    def __init__(
        self,
        n_outputs: int,
        channels: Sequence[int] = (32, 64, 128),
        stem_channels: int = 32,
        stem_kernel: int = 80,
        stem_stride: int = 4,
        pool: int = 4,
        dropout: float = 0.2,
        in_channels: int = 1,
    ):
        super().__init__()
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        self.in_channels = int(in_channels)
        self.stem = nn.Sequential(
            nn.Conv1d(self.in_channels, stem_channels, stem_kernel, stride=stem_stride, bias=False),
            nn.BatchNorm1d(stem_channels),
            nn.ReLU(),
            nn.MaxPool1d(pool),
        )
        self.block_names: list[str] = []
        in_ch = stem_channels
        for i, out_ch in enumerate(channels, start=1):
            name = f"block{i}"
            self.add_module(name, WaveBlock(in_ch, out_ch, pool=pool))
            self.block_names.append(name)
            in_ch = out_ch
        self.embedding_dim = in_ch
        self.time_pool = nn.AdaptiveAvgPool1d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(in_ch, n_outputs)
        self.min_samples = stem_kernel + stem_stride * (pool ** (len(channels) + 1) - 1)

    def feature_map(self, wave: torch.Tensor) -> torch.Tensor:
        """Last block's output ``(batch, channels, time')``."""
        expected = (2,) if self.in_channels == 1 else (3,)
        if wave.dim() not in expected or (wave.dim() == 3 and wave.shape[1] != self.in_channels):
            shape = (
                "(batch, samples)"
                if self.in_channels == 1
                else f"(batch, {self.in_channels}, samples)"
            )
            raise ValueError(f"expected a {shape} waveform, got shape {tuple(wave.shape)}")
        if wave.shape[-1] < self.min_samples:
            raise ValueError(
                f"waveform of {wave.shape[-1]} samples is shorter than the {self.min_samples} "
                "the stem and pooling layers need"
            )
        x = self.stem(wave.unsqueeze(1) if wave.dim() == 2 else wave)
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Clip embedding ``(batch, embedding_dim)``: time average of the last feature map."""
        return torch.flatten(self.time_pool(self.feature_map(wave)), 1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(wave)))
