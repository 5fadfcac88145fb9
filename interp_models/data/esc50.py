"""Reader for the ESC-50 layout: ``meta/esc50.csv`` plus ``audio/<filename>``."""

from __future__ import annotations

import csv
from pathlib import Path

from interp_models.data.records import ClipRecord

REQUIRED_COLUMNS = ("filename", "fold", "target", "category")


def read_esc50(root: str | Path) -> tuple[list[ClipRecord], list[str]]:
    """List the clips of an ESC-50 style dataset.

    Parameters
    ----------
    root : directory holding ``meta/esc50.csv`` and ``audio/``; an optional
        ``masks/<stem>.npz`` per clip is attached as its ground-truth mask.

    Returns
    -------
    records : sorted by filename; ``group`` is the ``src_file`` column when present
        (clips cut from one recording share a fold) else the file stem. Listed audio
        files are not checked for existence here; the waveform loader reports them.
    names : class names indexed by target. Targets absent from the csv get the
        placeholder ``"class_<i>"`` so indices stay aligned.

    Raises
    ------
    FileNotFoundError
        The metadata csv does not exist.
    ValueError
        A required column is missing, a value is malformed, or one target maps to two
        categories.
    """
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"ESC-50 metadata file not found: {meta}")

    with meta.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        for col in REQUIRED_COLUMNS:
            if col not in columns:
                raise ValueError(f"{meta}: required column {col!r} is missing (has {columns})")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]

    records: list[ClipRecord] = []
    categories: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            target, fold = int(row["target"]), int(row["fold"])
        except ValueError as exc:
            raise ValueError(f"{meta}, line {line}: bad target/fold ({exc})") from None
        filename, category = row["filename"], row["category"]
        if not filename:
            raise ValueError(f"{meta}, line {line}: empty 'filename'")
        if categories.setdefault(target, category) != category:
            raise ValueError(
                f"{meta}: target {target} is both {categories[target]!r} and {category!r}"
            )
        stem = Path(filename).stem
        mask = root / "masks" / f"{stem}.npz"
        records.append(
            ClipRecord(
                path=root / "audio" / filename,
                target=target,
                fold=fold,
                label=category,
                group=row.get("src_file") or stem,
                mask_path=mask if mask.is_file() else None,
            )
        )

    records.sort(key=lambda r: r.path.name)
    n_classes = max(categories) + 1 if categories else 0
    names = [categories.get(i, f"class_{i}") for i in range(n_classes)]
    return records, names
