"""LightningDataModule for music clips with mid-level and emotion ratings: the loaders of
``interp_models.data.music.MusicClips`` (batches ``{"x", "q", "e", "index"}``)."""

from __future__ import annotations

from typing import Any

from interp_models.data.music import MusicClips
from train.datamodules import SplitDataModule


class MusicDataModule(MusicClips, SplitDataModule):
    """``MusicClips`` with loaders; ``data`` are ``MusicClips``'s parameters."""

    def __init__(
        self, batch_size: int = 16, num_workers: int = 0, shuffle_seed: int = 0, **data: Any
    ):
        SplitDataModule.__init__(self, batch_size, num_workers, shuffle_seed)
        MusicClips.__init__(self, **data)
