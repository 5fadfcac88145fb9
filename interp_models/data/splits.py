"""Fold-based splits shared by every data kind (clips, music, heart recordings).

The data classes (:class:`interp_models.data.clips.EventClips`,
:class:`interp_models.data.music.MusicClips`,
:class:`interp_models.data.heart.HeartRecordings`) are plain objects: the reports open a
run's data through them without Lightning, and ``train/`` wraps each in a Lightning
DataModule that only adds the loaders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


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


class SplitData:
    """A dataset read from ``root`` (or generated) and split into ``train`` / ``val`` /
    ``test`` by folds.

    Subclasses set ``root`` in ``__init__``, fill ``split_indices`` in ``setup()`` and
    implement ``builtin_root()`` (for ``root=None``), ``dataset(split)`` and
    ``summary()``. ``prepare_data`` and ``setup`` carry Lightning's hook names so the
    DataModules of ``train/``, which subclass these classes, inherit them unchanged.
    """

    root: str | None
    split_indices: dict[str, np.ndarray]

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
        """Generate the built-in data (once, into the cache) or check that ``root`` exists."""
        self.dataset_root()

    def setup(self, stage: str | None = None) -> None:
        """Read waveforms, features and targets and split them (idempotent)."""
        raise NotImplementedError

    def load_clips(
        self, records: Sequence[Any], channels: int | None = None
    ) -> tuple[list[np.ndarray], list[Any]]:
        """Decode ``records`` at ``self.sample_rate``, padded / cut to ``self.num_samples``
        (cached under ``<cache_dir>/waves``), mono or with ``channels`` channels; a bad file
        raises or, with ``on_bad_file=skip``, is left out, kept in ``self.skipped`` and
        logged.

        Returns the waveforms and the records kept, in order.
        """
        from interp_models.data.waveforms import load_waveforms  # decoding stack only when used

        cache = Path(self.cache_dir) / "waves" if self.cache_dir else None
        waves, kept, self.skipped = load_waveforms(
            records, self.sample_rate, self.num_samples, self.on_bad_file, cache, channels
        )
        log_skipped(self.skipped)
        return waves, list(kept)

    def split_sizes(self) -> dict[str, int]:
        """Number of items of each split."""
        return {s: len(i) for s, i in self.split_indices.items()}

    def dataset(self, split: str) -> Dataset:
        """The items of ``split`` as a torch ``Dataset``."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records about the data of a run."""
        raise NotImplementedError
