"""Labelled clips of one dataset in any supported on-disk layout (ESC-50, AudioMNIST).

Pipeline: (built-in generator ->) layout reader -> decoded waveforms (cached) ->
front-end features (torch, cached) -> fold-based train / val / test splits.
``train.datamodules.ClipDataModule`` adds the loaders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from interp_models.audio.feature_cache import cached_features
from interp_models.audio.features import build_frontend
from interp_models.data.audiomnist import read_audiomnist
from interp_models.data.esc50 import read_esc50
from interp_models.data.splits import SplitData, check_folds, split_by_folds
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


class EventClips(SplitData):
    """Clips of one dataset, as front-end features with fold-based splits.

    Parameters
    ----------
    layout : on-disk layout of ``root`` (``esc50`` or ``audiomnist``).
    root : dataset directory; ``None`` generates the built-in sound-event data
        (ESC-50 layout) from ``num_clips``, ``num_classes``, ``data_seed``, ``snr_db``
        and the generator's conditions ``max_distractors``, ``max_class_distractors``,
        ``class_distractor_level_db``, ``reverb_prob``, ``reverb_rt60_s``,
        ``reverb_drr_db``, ``level_change_db``, ``backgrounds`` (see
        ``SynthEventsConfig``; their defaults are the generator's version-1 data, which
        runs from before they existed reopen). Ignored with a ``root``.
    sample_rate, clip_seconds : every clip is resampled, downmixed, padded / cropped to this.
    train_folds, val_folds, test_folds : disjoint fold numbers of each split.
    on_bad_file : ``raise`` (error naming the file) or ``skip`` (left out and counted).
    features : named front ends, each ``{kind: logmel | stft | log1p_stft, **kwargs}``;
        every item holds one tensor per name. ``x`` is the model input.
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
        max_distractors: int = 2,
        max_class_distractors: int = 0,
        class_distractor_level_db: Sequence[float] = (-12.0, -3.0),
        reverb_prob: float = 0.0,
        reverb_rt60_s: Sequence[float] = (0.2, 0.8),
        reverb_drr_db: Sequence[float] = (0.0, 10.0),
        level_change_db: float = 0.0,
        backgrounds: Sequence[str] = ("coloured",),
        sample_rate: int = 16000,
        clip_seconds: float = 2.0,
        train_folds: Sequence[int] = (1, 2, 3),
        val_folds: Sequence[int] = (4,),
        test_folds: Sequence[int] = (5,),
        on_bad_file: str = "raise",
        features: dict[str, dict[str, Any]] | None = None,
        cache_dir: str | None = None,
    ):
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
                max_distractors=max_distractors,
                max_class_distractors=max_class_distractors,
                class_distractor_level_db=tuple(class_distractor_level_db),
                reverb_prob=reverb_prob,
                reverb_rt60_s=tuple(reverb_rt60_s),
                reverb_drr_db=tuple(reverb_drr_db),
                level_change_db=level_change_db,
                backgrounds=tuple(backgrounds),
            )
            if root is None
            else None
        )
        self.sample_rate, self.num_samples = sample_rate, int(round(clip_seconds * sample_rate))
        self.on_bad_file = on_bad_file
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
        root = self.dataset_root()
        records, self.class_names = LAYOUTS[self.layout](root)
        self.waves, self.records = self.load_clips(records)
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
