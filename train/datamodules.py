"""LightningDataModule for clip-level datasets in any supported on-disk layout.

Pipeline: (built-in generator ->) layout reader -> decoded waveforms (cached) ->
front-end features (torch, cached) -> fold-based train / val / test splits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from interp_models.audio.feature_cache import cached_features
from interp_models.audio.features import build_frontend
from interp_models.data.audiomnist import read_audiomnist
from interp_models.data.esc50 import read_esc50
from interp_models.data.synth_events import SynthEventsConfig, ensure_events

log = logging.getLogger(__name__)

LAYOUTS = {"esc50": read_esc50, "audiomnist": read_audiomnist}


class FeatureDataset(Dataset):
    """Items ``{<feature name>: (F, T), ..., "y": target, "index": row in the full table}``."""

    def __init__(
        self, features: dict[str, torch.Tensor], targets: torch.Tensor, indices: np.ndarray
    ):
        self.features, self.targets, self.indices = features, targets, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.indices[i])
        return {**{k: v[j] for k, v in self.features.items()}, "y": self.targets[j], "index": j}


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


def check_folds(
    splits: dict[str, Sequence[int]], n_folds: int | None = None
) -> dict[str, list[int]]:
    """Validate ``{"train_folds": ..., "val_folds": ..., "test_folds": ...}``.

    Parameters
    ----------
    splits : fold numbers of each split, keyed by their config names.
    n_folds : when given, every fold must lie in ``1..n_folds``.

    Returns
    -------
    ``{"train": [...], "val": [...], "test": [...]}`` as ints.

    Raises
    ------
    ValueError : a fold out of range, or two splits sharing a fold.
    """
    for a, fa in splits.items():
        if n_folds is not None:
            bad = [f for f in fa if not 1 <= int(f) <= n_folds]
            if bad:
                raise ValueError(f"data.{a}: folds {bad} outside 1..{n_folds} (data.n_folds)")
        for b, fb in splits.items():
            if a < b and set(fa) & set(fb):
                raise ValueError(f"data.{a} and data.{b} share folds {sorted(set(fa) & set(fb))}")
    return {k.removesuffix("_folds"): [int(f) for f in v] for k, v in splits.items()}


def split_by_folds(
    folds: np.ndarray, selected: dict[str, list[int]], unit: str = "clips"
) -> dict[str, np.ndarray]:
    """Row indices of each split: the rows whose fold is one of the split's folds.

    Parameters
    ----------
    folds : fold number of every row.
    selected : the folds of each split (``check_folds``'s result).
    unit : what a row is, for the error message.

    Raises
    ------
    ValueError : a split that selects no row.
    """
    indices = {s: np.flatnonzero(np.isin(folds, f)) for s, f in selected.items()}
    for split, idx in indices.items():
        if len(idx) == 0:
            raise ValueError(
                f"data.{split}_folds={selected[split]} selects no {unit} "
                f"(folds present: {sorted(set(folds.tolist()))})"
            )
    return indices


def log_skipped(skipped: list[tuple[str, str]]) -> None:
    """Warn about the files ``on_bad_file=skip`` left out."""
    if skipped:
        log.warning("skipped %d unreadable file(s) (data.on_bad_file=skip):", len(skipped))
        for path, reason in skipped:
            log.warning("  %s: %s", path, reason)


class SplitDataModule(L.LightningDataModule):
    """Shared loaders: subclasses set ``batch_size``, ``num_workers``, ``shuffle_seed``,
    ``root`` and implement ``dataset(split)`` for ``train`` / ``val`` / ``test`` (and
    ``builtin_root()`` when ``root`` may be ``None``).

    The training order comes from ``train_sampler`` (an ``EpochSeededSampler``); every
    loader has a private generator because DataLoader otherwise draws its worker base seed
    from the global RNG at each ``iter()``, shifting dropout masks depending on when
    Lightning builds it.
    """

    batch_size: int
    num_workers: int
    shuffle_seed: int
    root: str | None
    split_indices: dict[str, np.ndarray]

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def builtin_root(self) -> Path:
        """The built-in (generated) dataset's directory, generating it if needed."""
        raise NotImplementedError

    def dataset_root(self) -> Path:
        """The dataset directory, generating the built-in data when no root is given."""
        if self.root is None:
            return self.builtin_root()
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data.root: {root} is not a directory")
        return root

    def prepare_data(self) -> None:
        self.dataset_root()

    def split_sizes(self) -> dict[str, int]:
        """Number of items of each split."""
        return {s: len(i) for s, i in self.split_indices.items()}

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


class ClipDataModule(SplitDataModule):
    """Clips of one dataset, as front-end features with fold-based splits.

    Parameters
    ----------
    layout : on-disk layout of ``root`` (``esc50`` or ``audiomnist``).
    root : dataset directory; ``None`` generates the built-in sound-event data
        (ESC-50 layout) from ``num_clips``, ``num_classes``, ``data_seed``, ``snr_db``.
    sample_rate, clip_seconds : every clip is resampled, downmixed, padded / cropped to this.
    train_folds, val_folds, test_folds : disjoint fold numbers of each split.
    on_bad_file : ``raise`` (error naming the file) or ``skip`` (left out and counted).
    features : named front ends, each ``{kind: logmel | stft | log1p_stft, **kwargs}``;
        every batch holds one tensor per name. ``x`` is the model input.
    cache_dir : where generated data, decoded audio and features are cached.
    """

    def __init__(
        self,
        layout: str = "esc50",
        root: str | None = None,
        num_clips: int = 1000,
        num_classes: int = 10,
        data_seed: int = 0,
        snr_db: Sequence[float] = (-3.0, 15.0),
        sample_rate: int = 16000,
        clip_seconds: float = 2.0,
        train_folds: Sequence[int] = (1, 2, 3),
        val_folds: Sequence[int] = (4,),
        test_folds: Sequence[int] = (5,),
        on_bad_file: str = "raise",
        batch_size: int = 32,
        num_workers: int = 0,
        shuffle_seed: int = 0,
        features: dict[str, dict[str, Any]] | None = None,
        cache_dir: str | None = None,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(
                f"data.layout: unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}"
            )
        self.folds = check_folds(
            {"train_folds": train_folds, "val_folds": val_folds, "test_folds": test_folds}
        )
        self.layout, self.root = layout, root
        # Built only when there is no root: the generator validates its own parameters.
        self.synth = (
            SynthEventsConfig(
                num_clips=num_clips,
                num_classes=num_classes,
                clip_seconds=clip_seconds,
                sample_rate=sample_rate,
                seed=data_seed,
                snr_db=tuple(snr_db),
            )
            if root is None
            else None
        )
        self.sample_rate, self.num_samples = sample_rate, int(round(clip_seconds * sample_rate))
        self.on_bad_file = on_bad_file
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed
        features = features or {"x": {"kind": "logmel"}}
        if "x" not in features:
            raise ValueError(f"data.features: needs an entry named x (got {sorted(features)})")
        self.frontends = {
            name: build_frontend(sample_rate=sample_rate, **spec) for name, spec in features.items()
        }
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.skipped: list[tuple[str, str]] = []
        self._loaded = False

    def builtin_root(self) -> Path:
        return ensure_events(self.synth, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        from interp_models.data.waveforms import load_waveforms

        root = self.dataset_root()
        records, self.class_names = LAYOUTS[self.layout](root)
        self.waves, self.records, self.skipped = load_waveforms(
            records,
            self.sample_rate,
            self.num_samples,
            self.on_bad_file,
            cache_dir=self.cache_dir / "waves" if self.cache_dir else None,
        )
        log_skipped(self.skipped)
        self.features = {
            name: torch.from_numpy(
                np.ascontiguousarray(cached_features(frontend, self.waves, self.cache_dir))
            )
            for name, frontend in self.frontends.items()
        }
        self.targets = torch.tensor([r.target for r in self.records], dtype=torch.long)
        folds = np.array([r.fold for r in self.records])
        self.split_indices = split_by_folds(folds, self.folds)
        log.info(
            "data: %s, %d clips, %d classes, splits %s",
            root,
            len(self.records),
            len(self.class_names),
            self.split_sizes(),
        )
        self._loaded = True

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    def split_groups(self) -> dict[str, set[str]]:
        """The record groups (AudioMNIST speaker, ESC-50 source recording) of each split."""
        return {
            split: {self.records[int(j)].group for j in idx}
            for split, idx in self.split_indices.items()
        }

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the data of a run.

        ``groups_per_split`` counts the speakers / source recordings of each split and
        ``groups_shared_by_splits`` lists any that leak across splits (empty when the
        folds are group-disjoint, as both layouts' folds are).
        """
        groups = self.split_groups()
        shared = {g for a in groups for b in groups if a < b for g in groups[a] & groups[b]}
        return {
            "root": str(self.dataset_root()),
            "num_clips": len(self.records),
            "num_classes": self.num_outputs,
            "class_names": list(self.class_names),
            "splits": self.split_sizes(),
            "groups_per_split": {split: len(g) for split, g in groups.items()},
            "groups_shared_by_splits": sorted(shared),
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def dataset(self, split: str) -> FeatureDataset:
        return FeatureDataset(self.features, self.targets, self.split_indices[split])
