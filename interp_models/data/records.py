"""The one record type every on-disk layout reader produces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClipRecord:
    """One audio clip of a dataset, as listed by its layout's metadata.

    Attributes
    ----------
    path : audio file.
    target : class index (multiclass / binary tasks).
    fold : split unit; readers assign folds so that related clips (same source
        recording, same speaker) share one.
    label : human-readable class name.
    group : what clips sharing a fold have in common (source file, speaker, ...).
    mask_path : ground-truth time-frequency mask of the class event, if the dataset has one.
    """

    path: Path
    target: int
    fold: int
    label: str
    group: str = ""
    mask_path: Path | None = None
