"""Music clips with mid-level and emotion ratings.

Pipeline: (built-in generator ->) ``read_midlevel`` (Mid-level layout, Soundtracks
ratings) -> decoded waveforms (cached) -> front-end features (cached) -> fold splits.
Targets are z-scored with training-split statistics; a missing label stays NaN and is
masked out of losses and metrics. Items: ``{"x": (F, T), "q": (7,), "e": (8,), "index"}``.
``train.emotion.data.MusicDataModule`` adds the loaders.
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
from interp_models.data.midlevel import EMOTIONS, QUALITIES, MusicRecord, read_midlevel
from interp_models.data.splits import SplitData, check_folds, split_by_folds
from interp_models.data.synth_music import SynthMusicConfig, ensure_music, read_generator

log = logging.getLogger(__name__)


class MusicDataset(Dataset):
    """Items ``{"x", "q", "e", "index"}``; with ``contrasts`` (re-renders ``(n, K, F, T)``
    and the quality changes they make ``(n, K, 7)``, aligned with ``indices``) also
    ``"x_alt"`` and ``"d"`` (``interp_models.data.music_contrasts``)."""

    def __init__(
        self,
        x: torch.Tensor,
        q: torch.Tensor,
        e: torch.Tensor,
        indices: np.ndarray,
        contrasts: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        self.x, self.q, self.e, self.indices = x, q, e, indices
        self.contrasts = contrasts

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.indices[i])
        item = {"x": self.x[j], "q": self.q[j], "e": self.e[j], "index": j}
        if self.contrasts is not None:
            item["x_alt"], item["d"] = self.contrasts[0][i], self.contrasts[1][i]
        return item


class MusicClips(SplitData):
    """Music clips of the Mid-level Perceptual Features layout, with emotion ratings.

    Parameters
    ----------
    root : Mid-level dataset directory; ``None`` generates the built-in data
        (``interp_models.data.synth_music``) from ``num_clips``, ``data_seed``,
        ``clip_seconds``, ``sample_rate``, ``emotion_noise``, ``annotation_noise``,
        ``nuisance_scale``.
    tempo_ranges, instruments, bass_instrument, pad_instrument, transpose_ranges,
    reverb_seconds, reverb_wet : the built-in data's shift options (``SynthMusicConfig``;
        ``configs/data/synth_music_shifted.yaml``); ``None`` keeps the training data's.
    ratings, ratings_audio : Soundtracks ``mean_ratings_set1.csv`` and its audio
        directory (see ``read_midlevel``); ``None`` for the built-in layout.
    sample_rate, clip_seconds : clips are resampled, downmixed and cut / padded to this
        (the first ``clip_seconds`` of a longer clip).
    train_folds, val_folds, test_folds : disjoint folds (1..5) of each split.
    on_bad_file : ``raise`` or ``skip`` an undecodable audio file.
    features : ``{"x": {kind: logfreq | logmel | ..., **kwargs}}``, the model input.
    contrasts_per_clip : built-in data only; > 0 adds to every training item that many
        one-quality re-renders of the clip (``x_alt``) and the quality changes they make
        (``d``, standardised), for training selective quality units
        (``interp_models.data.music_contrasts``); 0: none.
    cache_dir : where generated data, decoded audio and features are cached.
    """

    def __init__(
        self,
        root: str | None = None,
        ratings: str | None = None,
        ratings_audio: str | None = None,
        num_clips: int = 1000,
        data_seed: int = 0,
        emotion_noise: float = 0.3,
        annotation_noise: float = 0.25,
        nuisance_scale: float = 1.0,
        tempo_ranges: Sequence[Sequence[float]] | None = None,
        instruments: Sequence[str] | None = None,
        bass_instrument: str | None = None,
        pad_instrument: str | None = None,
        transpose_ranges: Sequence[Sequence[float]] | None = None,
        reverb_seconds: float | None = None,
        reverb_wet: float | None = None,
        sample_rate: int = 22050,
        clip_seconds: float = 4.0,
        train_folds: Sequence[int] = (1, 2, 3),
        val_folds: Sequence[int] = (4,),
        test_folds: Sequence[int] = (5,),
        on_bad_file: str = "raise",
        features: dict[str, dict[str, Any]] | None = None,
        contrasts_per_clip: int = 0,
        cache_dir: str | None = None,
    ):
        self.folds = check_folds(
            {"train_folds": train_folds, "val_folds": val_folds, "test_folds": test_folds}
        )
        if root is None and (ratings is not None or ratings_audio is not None):
            raise ValueError("data.ratings / data.ratings_audio need data.root (real datasets)")
        self.root, self.ratings, self.ratings_audio = root, ratings, ratings_audio
        shift = {
            "tempo_ranges": tempo_ranges,
            "instruments": instruments,
            "bass_instrument": bass_instrument,
            "pad_instrument": pad_instrument,
            "transpose_ranges": transpose_ranges,
            "reverb_seconds": reverb_seconds,
            "reverb_wet": reverb_wet,
        }
        shift = {k: v for k, v in shift.items() if v is not None}  # None: the default
        if root is not None and shift:
            raise ValueError(
                f"data.{', data.'.join(shift)}: options of the built-in music (data.root: null)"
            )
        self.synth = (
            SynthMusicConfig(
                num_clips=num_clips,
                clip_seconds=clip_seconds,
                sample_rate=sample_rate,
                seed=data_seed,
                emotion_noise=emotion_noise,
                annotation_noise=annotation_noise,
                nuisance_scale=nuisance_scale,
                **shift,
            )
            if root is None
            else None
        )
        self.sample_rate, self.num_samples = sample_rate, int(round(clip_seconds * sample_rate))
        self.on_bad_file = on_bad_file
        features = features or {"x": {"kind": "logfreq"}}
        if set(features) != {"x"}:
            raise ValueError(
                f"data.features: expected exactly one entry, x (got {sorted(features)})"
            )
        self.frontend = build_frontend(sample_rate=sample_rate, **features["x"])
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if contrasts_per_clip and root is not None:
            raise ValueError("data.contrasts_per_clip: re-renders need the built-in music")
        self.contrasts_per_clip = int(contrasts_per_clip)
        self.quality_names, self.emotion_names = list(QUALITIES), list(EMOTIONS)
        self.skipped: list[tuple[str, str]] = []
        self._loaded = False

    def builtin_root(self) -> Path:
        return ensure_music(self.synth, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        root = self.dataset_root()
        records = read_midlevel(root, self.ratings, self.ratings_audio)
        self.waves, kept = self.load_clips(records)
        self.records: list[MusicRecord] = kept
        x = cached_features(self.frontend, self.waves, self.cache_dir)
        self.x = torch.from_numpy(np.ascontiguousarray(x))
        self.quality_ratings = np.array([r.qualities for r in self.records], dtype=np.float64)
        self.emotion_ratings = np.array([r.emotions for r in self.records], dtype=np.float64)
        folds = np.array([r.fold for r in self.records])
        self.split_indices = split_by_folds(folds, self.folds)
        train = self.split_indices["train"]
        self.use_stats(
            {
                "quality_mean": _nanstat(np.nanmean, self.quality_ratings[train], 0.0),
                "quality_std": _nanstat(np.nanstd, self.quality_ratings[train], 1.0),
                "emotion_mean": _nanstat(np.nanmean, self.emotion_ratings[train], 0.0),
                "emotion_std": _nanstat(np.nanstd, self.emotion_ratings[train], 1.0),
            }
        )
        self.generator = read_generator(root)
        if self.contrasts_per_clip:
            self._load_contrasts()
        log.info("data: %s, %d clips, splits %s", root, len(self.records), self.split_sizes())
        self._loaded = True

    def _load_contrasts(self) -> None:
        """Render (cached) and featurise the training clips' one-quality contrasts."""
        from interp_models.data.music_contrasts import contrast_set, rating_change

        train = self.split_indices["train"]
        indices = [int(self.records[int(r)].song_id) - 1 for r in train]
        k = self.contrasts_per_clip
        plan, waves = contrast_set(self.synth, indices, k, cache_dir=self.cache_dir, workers=2)
        x_alt = cached_features(self.frontend, waves, self.cache_dir)
        self.contrast_x = torch.from_numpy(np.ascontiguousarray(x_alt)).reshape(
            len(train), k, *x_alt.shape[1:]
        )
        self.contrast_change = rating_change(plan).reshape(len(train), k, -1)

    def use_stats(self, stats: dict[str, Any]) -> None:
        """Standardise the ratings (``q``, ``e``) with ``stats``: the training split's by
        default; a trained model's own when another dataset is scored with it."""
        self.stats = {k: np.asarray(v, dtype=np.float64) for k, v in stats.items()}
        q = (self.quality_ratings - self.stats["quality_mean"]) / self.stats["quality_std"]
        e = (self.emotion_ratings - self.stats["emotion_mean"]) / self.stats["emotion_std"]
        self.q, self.e = torch.tensor(q, dtype=torch.float32), torch.tensor(e, dtype=torch.float32)

    def labelled(self, split: str, kind: str) -> int:
        """Clips of ``split`` with ``kind`` (``qualities`` / ``emotions``) labels."""
        ratings = self.quality_ratings if kind == "qualities" else self.emotion_ratings
        return int(np.isfinite(ratings[self.split_indices[split]]).all(1).sum())

    def require(self, kind: str, splits: Sequence[str] = ("train", "val", "test")) -> None:
        """Fail with a clear message when a split has no clip labelled with ``kind``."""
        for split in splits:
            if self.labelled(split, kind) == 0:
                raise ValueError(
                    f"data: the {split} split has no clip with {kind} ratings; this model "
                    f"needs them (check data.ratings / the folds)"
                )

    @property
    def num_outputs(self) -> int:
        return len(self.emotion_names)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the data of a run."""
        return {
            "root": str(self.dataset_root()),
            "num_clips": len(self.records),
            "class_names": list(self.emotion_names),  # the outputs, as other runs name them
            "qualities": list(self.quality_names),
            "emotions": list(self.emotion_names),
            "splits": self.split_sizes(),
            "labelled": {
                s: {k: self.labelled(s, k) for k in ("qualities", "emotions")}
                for s in self.split_indices
            },
            "rating_stats_train": {
                k: [round(float(x), 4) for x in v] for k, v in self.stats.items()
            },
            "frontend": self.frontend.settings(),
            "input_shape": list(self.x.shape[1:]),
            "builtin": self.generator is not None,
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def dataset(self, split: str) -> MusicDataset:
        contrasts = None
        if split == "train" and self.contrasts_per_clip:
            d = self.contrast_change / self.stats["quality_std"]  # rating points -> z
            contrasts = (self.contrast_x, torch.tensor(d, dtype=torch.float32))
        return MusicDataset(self.x, self.q, self.e, self.split_indices[split], contrasts)


def _nanstat(fn, values: np.ndarray, fallback: float) -> np.ndarray:
    """Per-column statistic over finite entries; ``fallback`` for unlabelled or constant
    columns (a std of 0 would divide by zero)."""
    out = np.full(values.shape[1], fallback)
    for k in range(values.shape[1]):
        col = values[:, k][np.isfinite(values[:, k])]
        if col.size >= 2:
            v = float(fn(col))
            if fn is not np.nanstd or v > 0:
                out[k] = v
    return out
