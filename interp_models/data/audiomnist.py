"""Reader for the AudioMNIST layout: ``data/<speaker>/<digit>_<speaker>_<index>.wav``."""

from __future__ import annotations

import re
from pathlib import Path

from interp_models.data.records import ClipRecord

CLASS_NAMES = [str(d) for d in range(10)]
_FILENAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>\d+)_(?P<index>\d+)\.wav$", re.IGNORECASE)


def read_audiomnist(root: str | Path, n_folds: int = 5) -> tuple[list[ClipRecord], list[str]]:
    """List the clips of an AudioMNIST style dataset with speaker-independent folds.

    Parameters
    ----------
    root : dataset directory holding ``data/<speaker>/`` (or ``<speaker>/`` directly
        when there is no ``data/``).
    n_folds : speakers, sorted by id, are dealt round-robin into folds ``1..n_folds``,
        so every clip of a speaker lands in the same fold.

    Returns
    -------
    records : sorted by (speaker, digit, index); ``target`` is the digit, ``group`` the
        speaker id as written in the file name. Files not matching the pattern are
        ignored.
    names : ``["0", ..., "9"]``.

    Raises
    ------
    FileNotFoundError
        No matching file under ``root``.
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    root = Path(root)
    base = root / "data" if (root / "data").is_dir() else root

    found: list[tuple[int, int, int, str, Path]] = []
    for path in base.glob("*/*"):
        match = _FILENAME.match(path.name)
        if match is None or not path.is_file():
            continue
        speaker = match["speaker"]
        found.append((int(speaker), int(match["digit"]), int(match["index"]), speaker, path))
    if not found:
        raise FileNotFoundError(
            f"no AudioMNIST clips (<speaker>/<digit>_<speaker>_<index>.wav) under {root}"
        )

    found.sort(key=lambda f: f[:3] + (str(f[4]),))
    speakers = sorted({f[0] for f in found})
    fold_of = {spk: 1 + pos % n_folds for pos, spk in enumerate(speakers)}
    records = [
        ClipRecord(
            path=path,
            target=digit,
            fold=fold_of[spk_id],
            label=str(digit),
            group=speaker,
        )
        for spk_id, digit, _, speaker, path in found
    ]
    return records, list(CLASS_NAMES)
