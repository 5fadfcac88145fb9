"""Reader for the PhysioNet/CinC Challenge 2016 layout, with CirCor-style segmentations.

Layout (Clifford et al., "Recent advances in heart sound analysis", Physiol. Meas. 2017;
Liu et al., "An open access database for the evaluation of heart sound algorithms",
Physiol. Meas. 2016)::

    root/training-a/REFERENCE.csv        one ``name,label`` row per recording, no header;
                                         label -1 normal, 1 abnormal, 0 unsure
    root/training-a/a0001.wav            2 kHz mono (any rate is resampled on load)
    root/training-a/a0001.tsv            optional segmentation: start_s, end_s, state rows
                                         (0 unlabelled, 1 S1, 2 systole, 3 S2, 4 diastole),
                                         as CirCor (Oliveira et al., IEEE JBHI 2022) stores it
    root/training-a/a0001.events.tsv     optional lesion spans: start_s, end_s, kind, state
    root/training-b/...

``root`` may also be one set directory itself (holding ``REFERENCE.csv``). Extra columns
of ``REFERENCE.csv`` (e.g. the signal quality of ``REFERENCE_withSQI.csv``) are ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp_models.heart.states import N_STATES, AbnormalEvent, Segmentation, check_segmentation

log = logging.getLogger(__name__)

LABELS = {-1: "normal", 1: "abnormal", 0: "unsure"}
UNSURE = ("skip", "normal", "abnormal", "raise")


@dataclass(frozen=True)
class HeartRecord:
    """One recording as listed by its set's ``REFERENCE.csv``.

    Attributes
    ----------
    path : the ``.wav`` file (not checked here; the waveform loader reports it).
    name, set_name : record name (``a0001``) and set directory (``training-a``).
    label : -1 normal, 1 abnormal (as in ``REFERENCE.csv``); ``target`` is 0 / 1.
    fold : 1..n_folds, stratified by label (see ``read_physionet2016``).
    segmentation_path, events_path : the ``.tsv`` / ``.events.tsv`` files, if present.
    """

    path: Path
    name: str
    set_name: str
    label: int
    fold: int
    segmentation_path: Path | None = None
    events_path: Path | None = None

    @property
    def target(self) -> int:
        return 1 if self.label == 1 else 0


def _set_dirs(root: Path) -> list[Path]:
    if (root / "REFERENCE.csv").is_file():
        return [root]
    dirs = sorted(p.parent for p in root.glob("*/REFERENCE.csv"))
    if not dirs:
        raise FileNotFoundError(
            f"no PhysioNet 2016 set under {root}: expected {root}/training-*/REFERENCE.csv "
            f"(or {root}/REFERENCE.csv)"
        )
    return dirs


def read_reference(path: Path) -> list[tuple[str, int]]:
    """``(name, label)`` rows of a ``REFERENCE.csv``; errors name the file and line."""
    rows: list[tuple[str, int]] = []
    seen: set[str] = set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 2 or not cells[0]:
            raise ValueError(f"{path}, line {line_no}: expected 'name,label', got {line!r}")
        try:
            label = int(float(cells[1]))
        except ValueError:
            raise ValueError(
                f"{path}, line {line_no}: label {cells[1]!r} is not -1, 0 or 1"
            ) from None
        if label not in LABELS or float(cells[1]) != label:
            raise ValueError(f"{path}, line {line_no}: label {cells[1]!r} is not -1, 0 or 1")
        if cells[0] in seen:
            raise ValueError(f"{path}, line {line_no}: record {cells[0]!r} listed twice")
        seen.add(cells[0])
        rows.append((cells[0], label))
    if not rows:
        raise ValueError(f"{path}: no records")
    return rows


def read_physionet2016(
    root: str | Path, n_folds: int = 5, unsure: str = "skip"
) -> tuple[list[HeartRecord], list[str]]:
    """List the recordings of a PhysioNet 2016 style dataset.

    Parameters
    ----------
    root : dataset directory (see module doc).
    n_folds : recordings, sorted by (set, name), are dealt round-robin into folds
        ``1..n_folds`` separately per label, so every fold has the same class balance.
        (PhysioNet 2016 gives no patient ids; sets come from different databases, so a
        set-wise split is the stricter alternative.)
    unsure : what to do with label 0: ``skip`` (left out, listed in the returned
        names), ``normal`` / ``abnormal`` (counted as such), or ``raise``.

    Returns
    -------
    records, sorted by (set, name); and the ``set/name`` of each unsure recording skipped.

    Raises
    ------
    FileNotFoundError
        No ``REFERENCE.csv`` under ``root``.
    ValueError
        A malformed ``REFERENCE.csv`` line, a record listed twice, or an unsure label with
        ``unsure="raise"``.
    """
    if unsure not in UNSURE:
        raise ValueError(f"data.unsure must be one of {list(UNSURE)}, got {unsure!r}")
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: {root} is not a directory")
    listed: list[tuple[str, str, int, Path]] = []
    skipped: list[str] = []
    names: dict[str, Path] = {}
    for folder in _set_dirs(root):
        ref = folder / "REFERENCE.csv"
        for name, label in read_reference(ref):
            if name in names:
                raise ValueError(f"{ref}: record {name!r} is also listed in {names[name]}")
            names[name] = ref
            if label == 0:
                if unsure == "raise":
                    raise ValueError(f"{ref}: record {name!r} is labelled 0 (unsure)")
                if unsure == "skip":
                    skipped.append(f"{folder.name}/{name}")
                    continue
                label = 1 if unsure == "abnormal" else -1
            listed.append((folder.name, name, label, folder))
    listed.sort()
    counters = {-1: 0, 1: 0}
    records = []
    for set_name, name, label, folder in listed:
        fold = counters[label] % n_folds + 1
        counters[label] += 1
        seg, ev = folder / f"{name}.tsv", folder / f"{name}.events.tsv"
        records.append(
            HeartRecord(
                path=folder / f"{name}.wav",
                name=name,
                set_name=set_name,
                label=label,
                fold=fold,
                segmentation_path=seg if seg.is_file() else None,
                events_path=ev if ev.is_file() else None,
            )
        )
    if skipped:
        log.info("left out %d recording(s) labelled unsure (0)", len(skipped))
    return records, skipped


def _rows(path: Path, n_cols: int) -> list[list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as err:
        raise FileNotFoundError(f"cannot read {path}: {err}") from None
    out = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.strip().split("\t") if "\t" in line else line.split()
        if len(cells) != n_cols:
            raise ValueError(
                f"{path}, line {line_no}: expected {n_cols} tab-separated columns, got {line!r}"
            )
        out.append([line_no, *cells])
    return out


def read_segmentation(path: str | Path) -> Segmentation:
    """Read a CirCor-style segmentation ``.tsv`` (start_s, end_s, state per row).

    Raises
    ------
    ValueError
        Naming the file and line: wrong column count, a non-numeric value, a state
        outside 0..4, an empty span, or spans that overlap or are out of order.
    """
    rows = _rows(Path(path), 3)
    starts, ends, states = [], [], []
    for line_no, a, z, s in rows:
        try:
            starts.append(float(a))
            ends.append(float(z))
            state = float(s)
        except ValueError:
            raise ValueError(f"{path}, line {line_no}: non-numeric value in {(a, z, s)}") from None
        if state != int(state) or not 0 <= state <= N_STATES:
            raise ValueError(f"{path}, line {line_no}: state {s!r} is not in 0..4")
        states.append(int(state))
        if not (np.isfinite(starts[-1]) and np.isfinite(ends[-1])) or starts[-1] < 0:
            raise ValueError(f"{path}, line {line_no}: bad span {(a, z)}")
    seg = Segmentation(np.array(starts), np.array(ends), np.array(states, dtype=np.int8))
    if not len(seg):
        raise ValueError(f"{path}: empty segmentation")
    # Row numbers in check_segmentation's messages are data rows; name the file there.
    check_segmentation(seg, str(path))
    return seg


def read_events(path: str | Path) -> list[AbnormalEvent]:
    """Read a lesion ``.events.tsv`` (start_s, end_s, kind, state per row; may be empty)."""
    events = []
    for line_no, a, z, kind, s in _rows(Path(path), 4):
        try:
            ev = AbnormalEvent(float(a), float(z), kind, int(s))
        except ValueError:
            raise ValueError(f"{path}, line {line_no}: bad row {(a, z, kind, s)}") from None
        if not ev.end_s > ev.start_s or not 1 <= ev.state <= N_STATES:
            raise ValueError(f"{path}, line {line_no}: bad span or state {(a, z, s)}")
        events.append(ev)
    return events


def abnormal_state(events: list[AbnormalEvent]) -> int:
    """The state holding most of the lesions' duration (0 when there is none)."""
    totals = np.zeros(N_STATES + 1)
    for ev in events:
        totals[ev.state] += ev.end_s - ev.start_s
    return int(np.argmax(totals)) if totals.any() else 0
