"""VGG-style spectrogram CNN: the black-box counterpart shared by the model families.

The layout follows the small VGG-like audio CNNs of the PANNs / DCASE baselines
(Kong et al., 2020): blocks of two 3x3 convolutions with batch norm, then pooling; the
clip embedding is the time-max plus time-mean of the frequency-averaged last feature map.

Hidden layers are named ``block1`` ... ``blockN`` so interpreters can tap them with
``model.get_submodule("block3")``. Every ReLU is its own module and flattening happens in
``forward`` (not with ``nn.Flatten``), which captum's LRP requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Two 3x3 conv + batch-norm + ReLU layers followed by 2-D average pooling."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int] = (2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.pool = nn.AvgPool2d(pool) if max(pool) > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.pool(x)


class SpectrogramCNN(nn.Module):
    """CNN mapping a spectrogram ``(batch, freq, time)`` to ``n_outputs`` logits or values.

    Parameters
    ----------
    n_outputs : number of outputs (classes, or regression targets).
    channels : output channels of each block; block ``i`` is named ``block{i+1}``.
    dropout : dropout before the output layer.
    """

    def __init__(
        self,
        n_outputs: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
    ):
        super().__init__()
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        # Per-clip input scaling is left to a batch norm over the single input channel so the
        # model accepts any log-magnitude front end without hand-set statistics.
        self.input_norm = nn.BatchNorm2d(1)
        self.block_names: list[str] = []
        in_ch = 1
        for i, out_ch in enumerate(channels, start=1):
            name = f"block{i}"
            self.add_module(name, ConvBlock(in_ch, out_ch))
            self.block_names.append(name)
            in_ch = out_ch
        self.embedding_dim = in_ch
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(in_ch, n_outputs)

    def feature_map(self, spec: torch.Tensor) -> torch.Tensor:
        """Last block's output ``(batch, channels, freq', time')``."""
        if spec.dim() != 3:
            raise ValueError(
                f"expected a (batch, freq, time) spectrogram, got shape {tuple(spec.shape)}"
            )
        x = self.input_norm(spec.unsqueeze(1))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """Clip embedding ``(batch, embedding_dim)``: time max + time mean of the freq-mean."""
        x = self.feature_map(spec).mean(dim=2)
        return x.amax(dim=2) + x.mean(dim=2)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(spec)))
