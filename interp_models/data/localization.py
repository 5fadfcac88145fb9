"""Multichannel clips for source localization: the layout of ``synth_localization``.

Pipeline: (built-in generator ->) ``read_localization`` -> decoded M-channel waveforms
(cached) -> fold-based train / val / test splits. The model input ``x`` is the stacked
waveforms (M, samples); the class is the direction bin; the ground truth of each clip
(``truth/<stem>.npz``: TDOAs, direct-path onsets, positions) is kept beside it.
``train.datamodules.LocalizationDataModule`` adds the loaders.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_models.data.clips import FeatureDataset
from interp_models.data.records import ClipRecord
from interp_models.data.splits import SplitData, check_folds, split_by_folds
from interp_models.data.synth_localization import (
    SynthLocalizationConfig,
    cached_localization,
    load_truth,
)

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("filename", "fold", "direction_bin")


def read_localization(root: str | Path) -> tuple[list[ClipRecord], dict[str, Any]]:
    """The clips of ``root`` (``meta/localization.csv``) and its array (``meta/array.json``).

    ``ClipRecord.mask_path`` holds the clip's ``truth/<stem>.npz`` when present; labels are
    the direction sectors (``"0-45 deg"``). Raises ``FileNotFoundError`` / ``ValueError``
    naming the file and line.
    """
    root = Path(root)
    meta, array_file = root / "meta" / "localization.csv", root / "meta" / "array.json"
    for f in (meta, array_file):
        if not f.is_file():
            raise FileNotFoundError(f"localization data: {f} not found")
    array = json.loads(array_file.read_text())
    with meta.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{meta}: required column(s) {missing} missing")
        rows = list(reader)
    records = []
    for line, row in enumerate(rows, start=2):
        try:
            target, fold = int(row["direction_bin"]), int(row["fold"])
        except ValueError as exc:
            raise ValueError(f"{meta}, line {line}: bad direction_bin/fold ({exc})") from None
        if not 0 <= target < array["n_direction_bins"]:
            raise ValueError(f"{meta}, line {line}: direction_bin {target} out of range")
        stem = Path(row["filename"]).stem
        truth = root / "truth" / f"{stem}.npz"
        records.append(
            ClipRecord(
                root / "audio" / row["filename"],
                target,
                fold,
                sector_name(target, array),
                stem,
                truth if truth.is_file() else None,
            )
        )
    return sorted(records, key=lambda r: r.path.name), array


def sector_name(index: int, array: dict[str, Any]) -> str:
    """``"45-90 deg"``: the azimuth sector of a direction bin."""
    width = array["sector_deg"]
    return f"{index * width:g}-{(index + 1) * width:g} deg"


class LocalizationClips(SplitData):
    """Microphone-array clips with their direction class and geometric ground truth.

    Parameters
    ----------
    root : dataset directory in the layout of ``synth_localization``; ``None`` generates
        the built-in data from ``num_clips``, ``n_mics``, ``array_radius_m``,
        ``n_direction_bins``, ``distance_m``, ``rt60_s``, ``room_m``, ``snr_db``,
        ``image_order``, ``sources`` and ``data_seed`` (``SynthLocalizationConfig``).
    sample_rate, clip_seconds : every clip is resampled and padded / cut to this.
    train_folds, val_folds, test_folds : disjoint fold numbers of each split.
    on_bad_file : ``raise`` or ``skip`` (a file with another channel count is bad).
    features : ``{"x": {"kind": "waveform"}}``, the only input these clips have (kept as a
        key so a run names its input like every other run).
    cache_dir : where generated data and decoded audio are cached.
    """

    def __init__(
        self,
        root: str | None = None,
        num_clips: int = 1000,
        n_mics: int = 4,
        array_radius_m: float = 0.1,
        n_direction_bins: int = 16,
        distance_m: Sequence[float] = (0.8, 1.5),
        rt60_s: Sequence[float] = (0.0, 0.4, 0.8),
        room_m: Sequence[Sequence[float]] = ((5.0, 8.0), (4.0, 6.0), (2.5, 3.5)),
        snr_db: Sequence[float] = (-10.0, 15.0),
        image_order: int = 3,
        sources: Sequence[str] = ("noise_burst", "harmonic"),
        data_seed: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        train_folds: Sequence[int] = (1, 2, 3),
        val_folds: Sequence[int] = (4,),
        test_folds: Sequence[int] = (5,),
        on_bad_file: str = "raise",
        features: dict[str, dict[str, Any]] | None = None,
        cache_dir: str | None = None,
    ):
        kinds = {name: spec.get("kind") for name, spec in (features or {}).items()}
        if kinds and kinds != {"x": "waveform"}:
            raise ValueError(
                f"data.features: localization clips have x: waveform only, got {kinds}"
            )
        self.folds = check_folds(
            {"train_folds": train_folds, "val_folds": val_folds, "test_folds": test_folds}
        )
        self.root, self.n_mics = root, int(n_mics)
        self.synth = (
            None
            if root is not None
            else SynthLocalizationConfig(
                num_clips=num_clips,
                n_mics=n_mics,
                array_radius_m=array_radius_m,
                sample_rate=sample_rate,
                clip_seconds=clip_seconds,
                n_direction_bins=n_direction_bins,
                distance_m=tuple(distance_m),
                rt60_s=tuple(rt60_s),
                room_m=tuple(tuple(r) for r in room_m),
                snr_db=tuple(snr_db),
                image_order=image_order,
                sources=tuple(sources),
                seed=data_seed,
            )
        )
        self.sample_rate, self.num_samples = sample_rate, int(round(clip_seconds * sample_rate))
        self.on_bad_file = on_bad_file
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.frontends: dict[str, Any] = {}
        self.skipped: list[tuple[str, str]] = []
        self._loaded = False

    def builtin_root(self) -> Path:
        return cached_localization(self.synth, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        records, self.array = read_localization(self.dataset_root())
        if len(self.array["mic_positions_m"]) != self.n_mics:
            raise ValueError(
                f"data.n_mics: {self.n_mics}, but the array of {self.dataset_root()} has "
                f"{len(self.array['mic_positions_m'])} microphones"
            )
        self.class_names = [
            sector_name(i, self.array) for i in range(self.array["n_direction_bins"])
        ]
        self.waves, self.records = self.load_clips(records, channels=self.n_mics)
        self.features = {"x": torch.from_numpy(np.ascontiguousarray(self.waves))}
        self.targets = torch.tensor([r.target for r in self.records], dtype=torch.long)
        self.split_indices = split_by_folds(np.array([r.fold for r in self.records]), self.folds)
        log.info(
            "data: %s, %d clips, %d microphones, splits %s",
            self.dataset_root(),
            len(self.records),
            self.n_mics,
            self.split_sizes(),
        )
        self._loaded = True

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    def truth(self, row: int):
        """The ``ClipTruth`` of clip ``row`` (None where the dataset has none)."""
        path = self.records[row].mask_path
        return None if path is None else load_truth(path)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the data of a run."""
        return {
            "root": str(self.dataset_root()),
            "num_clips": len(self.records),
            "num_classes": self.num_outputs,
            "class_names": list(self.class_names),
            "n_mics": self.n_mics,
            "splits": self.split_sizes(),
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def dataset(self, split: str) -> FeatureDataset:
        return FeatureDataset(self.features, self.targets, self.split_indices[split])
