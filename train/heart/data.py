"""LightningDataModule for heart-sound recordings: the loaders of
``interp_models.data.heart.HeartRecordings``.

``input: segments`` batches are ``{"wave": (B, N), "states": (B, T), "length": (B,), "y",
"index"}`` (``collate_recordings``), the training ones cropped to ``train_crop_s``;
``input: spectrogram`` batches are ``{"x": (B, F, T), "y", "index"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from interp_models.data.heart import HeartRecordings, collate_recordings
from interp_models.heart.states import FRAME_RATE
from train.datamodules import EpochSeededSampler, SplitDataModule


class EpochTaggedSampler(EpochSeededSampler):
    """``EpochSeededSampler`` yielding ``(position, epoch)``, so a dataset can draw its
    augmentation from ``(seed, epoch, item)`` alone -- also inside worker processes, and
    identically in a resumed run."""

    def __iter__(self):
        return ((i, self.epoch) for i in super().__iter__())


class HeartDataModule(HeartRecordings, SplitDataModule):
    """``HeartRecordings`` with loaders; ``data`` are ``HeartRecordings``'s parameters.

    Parameters
    ----------
    train_crop_s : ``segments`` training batches hold a random window of this length of
        each recording, drawn anew every epoch (augmentation, and shorter batches);
        ``None`` trains on whole recordings. Validation and test always see everything.
    """

    def __init__(
        self,
        batch_size: int = 16,
        num_workers: int = 0,
        shuffle_seed: int = 0,
        train_crop_s: float | None = 10.0,
        **data: Any,
    ):
        SplitDataModule.__init__(self, batch_size, num_workers, shuffle_seed)
        HeartRecordings.__init__(self, **data)
        if train_crop_s is not None and train_crop_s < 2.0:
            raise ValueError(f"data.train_crop_s must be >= 2 s (a few beats), got {train_crop_s}")
        self.crop_frames = None if train_crop_s is None else int(round(train_crop_s * FRAME_RATE))

    def dataset(self, split: str, segmentation: str | None = None) -> Dataset:
        return super().dataset(split, segmentation, self.crop_frames, self.shuffle_seed)

    def train_sampler(self, n: int) -> Sampler:
        """``segments`` training items are ``(position, epoch)`` pairs: the crops are drawn
        from them (``EpochTaggedSampler``)."""
        if self.input == "segments":
            return EpochTaggedSampler(n, self.shuffle_seed)
        return super().train_sampler(n)

    def collate_fn(self) -> Callable[[list[Any]], Any] | None:
        return collate_recordings if self.input == "segments" else None

    def loader(
        self, split: str, segmentation: str | None = None, shuffle: bool = False
    ) -> DataLoader:
        """DataLoader of ``split``; ``segmentation`` overrides the active one. ``shuffle``
        gives the epoch-seeded training order (and crops, for ``segments``)."""
        return self.make_loader(self.dataset(split, segmentation), shuffle)
