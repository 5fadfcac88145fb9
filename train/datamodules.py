"""Lightning DataModules: the plain data classes of ``interp_models.data`` plus loaders.

Each DataModule subclasses its data class (so the pipelines read ``dm.records``,
``dm.features``, ``dm.summary()``, ... as before) and :class:`SplitDataModule`, which adds
the loader-only settings (``batch_size``, ``num_workers``, ``shuffle_seed``) and the
epoch-seeded loaders. ``interp_models.families.DATA`` names the DataModule of each data
class; :func:`build_datamodule` turns a run's ``data:`` config section into one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class
from torch.utils.data import DataLoader, Dataset, Sampler

from interp_models.config import check_keys, construct
from interp_models.data.clips import EventClips
from interp_models.data.localization import LocalizationClips
from interp_models.families import DEFAULT_DATA, data_kind, hook


class EpochSeededSampler(Sampler[int]):
    """Random order that depends only on ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before every epoch, so a run resumed from a checkpoint
    sees exactly the batches an uninterrupted run would.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SplitDataModule(L.LightningDataModule):
    """Loaders over a ``SplitData``: DataModules list it after their data class, which
    provides ``dataset(split)``, ``split_indices``, ``prepare_data`` and ``setup``.

    The training order comes from ``train_sampler`` (an ``EpochSeededSampler``); every
    loader has a private generator because DataLoader otherwise draws its worker base seed
    from the global RNG at each ``iter()``, shifting dropout masks depending on when
    Lightning builds it.
    """

    split_indices: dict[str, np.ndarray]

    def __init__(self, batch_size: int, num_workers: int, shuffle_seed: int):
        super().__init__()
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed

    def train_sampler(self, n: int) -> Sampler:
        """The shuffled order of ``n`` training items (a function of seed and epoch)."""
        return EpochSeededSampler(n, self.shuffle_seed)

    def collate_fn(self) -> Callable[[list[Any]], Any] | None:
        """How items form a batch; ``None`` is DataLoader's default collation."""
        return None

    def make_loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        """DataLoader over ``ds``: ``train_sampler`` order when ``shuffle``, else in order."""
        sampler = self.train_sampler(len(ds)) if shuffle else None
        generator = torch.Generator().manual_seed(self.shuffle_seed)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn(),
        )

    def _loader(self, split: str) -> DataLoader:
        return self.make_loader(self.dataset(split), shuffle=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


class ClipDataModule(EventClips, SplitDataModule):
    """``EventClips`` with loaders; ``data`` are ``EventClips``'s parameters."""

    def __init__(
        self, batch_size: int = 32, num_workers: int = 0, shuffle_seed: int = 0, **data: Any
    ):
        SplitDataModule.__init__(self, batch_size, num_workers, shuffle_seed)
        EventClips.__init__(self, **data)


class LocalizationDataModule(LocalizationClips, SplitDataModule):
    """``LocalizationClips`` with loaders; ``data`` are ``LocalizationClips``'s parameters."""

    def __init__(
        self, batch_size: int = 32, num_workers: int = 0, shuffle_seed: int = 0, **data: Any
    ):
        SplitDataModule.__init__(self, batch_size, num_workers, shuffle_seed)
        LocalizationClips.__init__(self, **data)


def build_datamodule(section: Mapping[str, Any], cache_dir: str | None) -> L.LightningDataModule:
    """The DataModule of a run's ``data:`` config section (``_target_``: a data class).

    ``_target_`` names a class of ``interp_models.data`` (old runs' DataModule names are
    accepted through ``interp_models.families.ALIASES``), or any LightningDataModule class
    taking the section's keys. An unknown key is rejected by name.
    """
    section = dict(section)
    target = section.pop("_target_", DEFAULT_DATA)
    kind = data_kind(target)
    if kind is None:
        return construct(get_class(target), section, "data", cache_dir=cache_dir)
    accepted = [*inspect.signature(get_class(kind.data)).parameters, *kind.loader_keys]
    check_keys(section, accepted, "data", hidden=("cache_dir",))
    return construct(hook(kind.datamodule), section, "data", cache_dir=cache_dir)
