"""Heart-sound recordings in the PhysioNet/CinC 2016 layout.

One class serves both model kinds of the heart family:

- ``input: segments`` (segmentation-aware model): items ``{"wave": (N,), "states": (T,),
  "y", "index"}`` of whole recordings with one cardiac state per 50 Hz frame from the
  active segmentation (ground truth read from the ``.tsv`` files, or another one the
  pipeline adds, e.g. the Springer segmenter's); ``collate_recordings`` zero-pads them
  into batches with a ``length``.
- ``input: spectrogram`` (black box): items ``{"x": (F, T), "y", "index"}`` of a front
  end over the first ``clip_seconds`` of each recording (zero-padded if shorter).

``train.heart.data.HeartDataModule`` adds the loaders (and the training crops).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from interp_models.audio.feature_cache import cached_features
from interp_models.audio.features import build_frontend
from interp_models.audio.io import AudioReadError, load_audio
from interp_models.data.physionet2016 import (
    HeartRecord,
    abnormal_state,
    read_events,
    read_physionet2016,
    read_segmentation,
)
from interp_models.data.splits import SplitData, check_folds, log_skipped, split_by_folds
from interp_models.data.synth_pcg import SynthPCGConfig, ensure_pcg
from interp_models.errors import NoUsableDataError
from interp_models.heart.states import FRAME_RATE

log = logging.getLogger(__name__)

INPUTS = ("segments", "spectrogram")
CLASS_NAMES = ["normal", "abnormal"]


class RecordingDataset(Dataset):
    """Recordings with their per-frame states (``input: segments``).

    Items requested as ``(position, epoch)`` (training, by ``train``'s epoch-tagged
    sampler) are cropped to a random window of ``crop_frames`` frames drawn from
    ``(seed, epoch, recording)``; plain positions give the whole recording.
    """

    def __init__(
        self,
        data: HeartRecordings,
        indices: np.ndarray,
        states: list[np.ndarray],
        crop_frames: int | None = None,
        seed: int = 0,
    ):
        self.data, self.indices, self.states = data, indices, states
        self.crop_frames, self.seed = crop_frames, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        i, epoch = item if isinstance(item, tuple) else (item, None)
        j = int(self.indices[i])
        wave, states = self.data.waves[j], self.states[j]
        n, hop = len(states), self.data.hop
        if epoch is not None and self.crop_frames and n > self.crop_frames:
            f0 = int(np.random.default_rng([self.seed, epoch, j]).integers(0, n - self.crop_frames))
            states = states[f0 : f0 + self.crop_frames]
            wave = wave[f0 * hop : (f0 + self.crop_frames) * hop]
        return {
            "wave": torch.from_numpy(np.ascontiguousarray(wave)),
            "states": torch.from_numpy(states.astype(np.int64)),
            "y": int(self.data.records[j].target),
            "index": j,
        }


def collate_recordings(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Zero-pad waves and states (state 0 = unlabelled) to the longest of the batch."""
    n = max(len(it["wave"]) for it in items)
    t = max(len(it["states"]) for it in items)
    wave = torch.zeros(len(items), n)
    states = torch.zeros(len(items), t, dtype=torch.long)
    for k, it in enumerate(items):
        wave[k, : len(it["wave"])] = it["wave"]
        states[k, : len(it["states"])] = it["states"]
    return {
        "wave": wave,
        "states": states,
        "length": torch.tensor([len(it["wave"]) for it in items]),
        "y": torch.tensor([it["y"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


class SpectrogramDataset(Dataset):
    """Fixed-length front-end features (``input: spectrogram``)."""

    def __init__(self, x: torch.Tensor, targets: torch.Tensor, indices: np.ndarray):
        self.x, self.targets, self.indices = x, targets, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.indices[i])
        return {"x": self.x[j], "y": self.targets[j], "index": j}


class HeartRecordings(SplitData):
    """Heart-sound recordings with labels, segmentations and lesion spans.

    Parameters
    ----------
    root : dataset directory in the PhysioNet 2016 layout; ``None`` generates the built-in
        recordings (``interp_models.data.synth_pcg``) from ``synth``.
    synth : ``SynthPCGConfig`` fields of the built-in data (``num_recordings``, ``seed``,
        ``duration_s``, ``abnormal_fraction``, ``snr_db``, ...).
    sample_rate : recordings are resampled to this rate (a multiple of 50 Hz).
    n_folds, train_folds, val_folds, test_folds : label-stratified folds and the disjoint
        folds of each split.
    unsure : recordings labelled 0: ``skip``, ``normal``, ``abnormal`` or ``raise``.
    on_bad_file : ``raise`` (error naming the file) or ``skip`` (left out and listed).
    input : ``segments`` or ``spectrogram`` (see module doc).
    clip_seconds, features : the black box's excerpt length and named front ends
        (``x`` is its input), as in ``interp_models.data.clips.EventClips``.
    cache_dir : where generated data and features are cached.
    """

    def __init__(
        self,
        root: str | None = None,
        synth: dict[str, Any] | None = None,
        sample_rate: int = 1000,
        n_folds: int = 5,
        train_folds: Sequence[int] = (1, 2, 3),
        val_folds: Sequence[int] = (4,),
        test_folds: Sequence[int] = (5,),
        unsure: str = "skip",
        on_bad_file: str = "raise",
        input: str = "segments",
        clip_seconds: float = 5.0,
        features: dict[str, dict[str, Any]] | None = None,
        cache_dir: str | None = None,
    ):
        if input not in INPUTS:
            raise ValueError(f"data.input: expected one of {list(INPUTS)}, got {input!r}")
        if on_bad_file not in ("raise", "skip"):
            raise ValueError(f"data.on_bad_file: expected raise or skip, got {on_bad_file!r}")
        if sample_rate % FRAME_RATE:
            raise ValueError(f"data.sample_rate must be a multiple of {FRAME_RATE} Hz")
        self.folds = check_folds(
            {"train_folds": train_folds, "val_folds": val_folds, "test_folds": test_folds},
            n_folds,
        )
        self.root = root
        if root is None:
            try:
                self.synth = SynthPCGConfig(**(synth or {}))
            except TypeError as err:
                raise ValueError(f"data.synth: {err}") from None
        else:
            self.synth = None
        self.sample_rate, self.hop = int(sample_rate), int(sample_rate) // FRAME_RATE
        self.n_folds = int(n_folds)
        self.unsure, self.on_bad_file, self.input = unsure, on_bad_file, input
        self.clip_samples = int(round(clip_seconds * sample_rate))
        features = features or {"x": {"kind": "logmel", "n_fft": 128, "hop_length": 32}}
        if "x" not in features:
            raise ValueError(f"data.features: needs an entry named x (got {sorted(features)})")
        self.feature_specs = features
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.skipped: list[tuple[str, str]] = []
        self.unsure_skipped: list[str] = []
        self.segmentations: dict[str, list[np.ndarray]] = {}
        self.active = "ground_truth"
        self._loaded = False

    # ------------------------------------------------------------------ loading

    def builtin_root(self) -> Path:
        return ensure_pcg(self.synth, self.cache_dir)

    def _decode(self, records: list[HeartRecord]) -> list[np.ndarray | AudioReadError]:
        def work(rec: HeartRecord) -> np.ndarray | AudioReadError:
            try:
                return load_audio(rec.path, self.sample_rate)
            except AudioReadError as err:
                return err

        # soundfile and soxr release the GIL, so threads decode in parallel.
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(records)))) as pool:
            return list(pool.map(work, records))

    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        root = self.dataset_root()
        records, self.unsure_skipped = read_physionet2016(root, self.n_folds, self.unsure)
        kept, waves = [], []
        min_len = 4 * self.hop
        for rec, out in zip(records, self._decode(records), strict=True):
            if isinstance(out, np.ndarray) and len(out) < min_len:
                out = AudioReadError(rec.path, f"shorter than {min_len} samples")
            if isinstance(out, AudioReadError):
                if self.on_bad_file == "raise":
                    raise out
                self.skipped.append((str(rec.path), out.reason))
                continue
            kept.append(rec)
            waves.append(out)
        if not kept:
            raise NoUsableDataError(f"no readable recording under {root}")
        log_skipped(self.skipped)
        self.records, self.waves = kept, waves
        self.n_frames = [len(w) // self.hop for w in waves]
        gt = []
        for rec, n in zip(kept, self.n_frames, strict=True):
            gt.append(
                read_segmentation(rec.segmentation_path).to_frames(n)
                if rec.segmentation_path
                else None
            )
        self.ground_truth = gt
        if all(s is not None for s in gt):
            self.segmentations["ground_truth"] = gt
        self.events = [read_events(r.events_path) if r.events_path else None for r in kept]
        self.abnormal_states = np.array(
            [abnormal_state(ev) if ev is not None else 0 for ev in self.events]
        )
        self.targets = torch.tensor([r.target for r in kept], dtype=torch.long)
        folds = np.array([r.fold for r in kept])
        self.split_indices = split_by_folds(folds, self.folds, "recordings")
        if self.input == "spectrogram":
            fixed = np.zeros((len(waves), self.clip_samples), dtype=np.float32)
            for k, w in enumerate(waves):
                m = min(len(w), self.clip_samples)
                fixed[k, :m] = w[:m]
            self.clip_waves = fixed
            self.features = {
                name: torch.from_numpy(
                    np.ascontiguousarray(
                        cached_features(
                            build_frontend(sample_rate=self.sample_rate, **spec),
                            fixed,
                            self.cache_dir,
                        )
                    )
                )
                for name, spec in self.feature_specs.items()
            }
        log.info(
            "data: %s, %d recordings (%d abnormal), splits %s",
            root,
            len(kept),
            int(self.targets.sum()),
            self.split_sizes(),
        )
        self._loaded = True

    # ------------------------------------------------------------------ segmentations

    def add_segmentation(self, name: str, states: list[np.ndarray]) -> None:
        """Register per-frame states of every recording under ``name``."""
        if len(states) != len(self.records):
            raise ValueError(f"segmentation {name!r}: {len(states)} for {len(self.records)}")
        for k, (s, n) in enumerate(zip(states, self.n_frames, strict=True)):
            if len(s) != n:
                raise ValueError(
                    f"segmentation {name!r}, {self.records[k].path}: {len(s)} frames, expected {n}"
                )
        self.segmentations[name] = list(states)

    def use_segmentation(self, name: str) -> None:
        """Make ``name`` the segmentation the ``segments`` batches carry."""
        if name not in self.segmentations:
            if name == "ground_truth":
                missing = [
                    str(r.path)
                    for r, g in zip(self.records, self.ground_truth, strict=True)
                    if g is None
                ]
                raise ValueError(
                    f"segmentation=ground_truth: {len(missing)} recording(s) have no .tsv "
                    f"segmentation, e.g. {missing[0]}"
                )
            raise ValueError(
                f"segmentation: unknown {name!r}; available {sorted(self.segmentations)}"
            )
        self.active = name

    # ------------------------------------------------------------------ interface

    @property
    def num_outputs(self) -> int:
        return 1  # one abnormality logit (BinaryTask)

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the data of a run."""
        lesions: dict[str, int] = {}
        for ev in self.events:
            if ev:
                lesions[ev[0].kind] = lesions.get(ev[0].kind, 0) + 1
        return {
            "root": str(self.dataset_root()),
            "num_recordings": len(self.records),
            "num_abnormal": int(self.targets.sum()),
            "class_names": self.class_names,
            "sets": sorted({r.set_name for r in self.records}),
            "splits": {
                s: {"recordings": len(i), "abnormal": int(self.targets[i].sum())}
                for s, i in self.split_indices.items()
            },
            "seconds": round(sum(len(w) for w in self.waves) / self.sample_rate, 1),
            "with_segmentation": sum(g is not None for g in self.ground_truth),
            "lesion_kinds": lesions,
            "input": self.input,
            "segmentation": self.active if self.input == "segments" else None,
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
            "unsure_skipped": list(self.unsure_skipped),
        }

    def dataset(
        self,
        split: str,
        segmentation: str | None = None,
        crop_frames: int | None = None,
        seed: int = 0,
    ) -> Dataset:
        """The recordings of ``split`` (``segmentation`` overrides the active one), or their
        features for ``input: spectrogram``; ``crop_frames`` and ``seed`` set the training
        crops of ``(position, epoch)`` items (see ``RecordingDataset``)."""
        idx = self.split_indices[split]
        if self.input == "spectrogram":
            return SpectrogramDataset(self.features["x"], self.targets, idx)
        name = segmentation or self.active
        if name not in self.segmentations:
            self.use_segmentation(name)  # raises with the reason
        return RecordingDataset(self, idx, self.segmentations[name], crop_frames, seed)
