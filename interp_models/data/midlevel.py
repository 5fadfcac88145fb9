"""Readers for the Mid-level Perceptual Features and Soundtracks (Set 1) layouts.

Mid-level Perceptual Features dataset (Aljanaki & Soleymani, "A data-driven approach to
mid-level perceptual musical feature modeling", ISMIR 2018; https://osf.io/5aupt/)::

    root/audio/<song_id>.mp3                          any format ``load_audio`` decodes
    root/metadata_annotations/annotations.csv         song_id, melody, articulation, ...
    root/metadata_annotations/metadata.csv            ';'-separated: song id;...;Artist;...

Soundtracks dataset, Set 1 (Eerola & Vuoskoski, "A comparison of the discrete and
dimensional models of emotion in music", Psychology of Music 39(1), 2011;
https://osf.io/p6vkg/)::

    mean_ratings_set1.csv      Number, valence, energy, tension, anger, fear, happy, sad,
                               tender, TARGET  (mean ratings, 1 = minimal .. 9 = maximal)
    Set1/<NNN>.mp3             the excerpt numbered NNN (zero-padded)

Both are read into one list of ``MusicRecord``; a clip lacking one kind of label carries
NaN there, so a model trained on the union masks its losses (Chowdhury et al., ISMIR 2019,
train the mid-level and emotion heads on the two datasets). The built-in generator
(``synth_music``) writes the mid-level layout and keeps its emotion ratings as
``root/soundtracks/mean_ratings_set1.csv``, whose ``Number`` is the mid-level ``song_id``
of the same clip.

Column names are matched after lower-casing and turning spaces / hyphens into
underscores (the released annotations file has spaces after its commas), and the names
used in the literature are accepted as aliases (``melody`` for melodiousness,
``modality`` for minorness).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

QUALITIES: tuple[str, ...] = (
    "melodiousness",
    "articulation",
    "rhythm_stability",
    "rhythm_complexity",
    "dissonance",
    "tonal_stability",
    "minorness",
)
EMOTIONS: tuple[str, ...] = (
    "valence",
    "energy",
    "tension",
    "anger",
    "fear",
    "happy",
    "sad",
    "tender",
)
#: Rating scales of the released datasets: mid-level annotations are stored on 1..10,
#: Soundtracks mean ratings on 1..9 (Eerola & Vuoskoski, 2011).
QUALITY_SCALE = (1.0, 10.0)
EMOTION_SCALE = (1.0, 9.0)

ANNOTATIONS = Path("metadata_annotations") / "annotations.csv"
METADATA = Path("metadata_annotations") / "metadata.csv"
BUILTIN_RATINGS = Path("soundtracks") / "mean_ratings_set1.csv"
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aiff", ".aif")

_QUALITY_ALIASES = {
    "melodiousness": ("melodiousness", "melody", "melodious"),
    "articulation": ("articulation",),
    "rhythm_stability": ("rhythm_stability", "rhythmic_stability"),
    "rhythm_complexity": ("rhythm_complexity", "rhythmic_complexity"),
    "dissonance": ("dissonance",),
    "tonal_stability": ("tonal_stability",),
    "minorness": ("minorness", "modality", "mode"),
}
_ID_ALIASES = ("song_id", "songid", "id")
_NUMBER_ALIASES = ("number", "stimulus", "id", "nro")

NAN = float("nan")


@dataclass(frozen=True)
class MusicRecord:
    """One music clip and whatever labels its datasets give it.

    Attributes
    ----------
    path : audio file.
    song_id : identifier in its dataset (``song_id`` of the mid-level dataset, or
        ``st<Number>`` for a Soundtracks clip that is not also a mid-level clip).
    fold : split unit, 1..n_folds; clips of one artist share a fold.
    group : what clips sharing a fold have in common (artist, else the clip itself).
    qualities : 7 mid-level ratings in ``QUALITIES`` order, NaN where not annotated.
    emotions : 8 emotion ratings in ``EMOTIONS`` order, NaN where not rated.
    source : ``midlevel`` or ``soundtracks``.
    """

    path: Path
    song_id: str
    fold: int
    group: str
    qualities: tuple[float, ...]
    emotions: tuple[float, ...]
    source: str = "midlevel"

    @property
    def has_qualities(self) -> bool:
        return not any(math.isnan(v) for v in self.qualities)

    @property
    def has_emotions(self) -> bool:
        return not any(math.isnan(v) for v in self.emotions)


def _norm(name: str) -> str:
    return name.strip().strip("\ufeff").lower().replace(" ", "_").replace("-", "_")


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (normalised) and rows of a comma- or semicolon-separated file."""
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: empty file (no header line)")
    # The released metadata.csv is ';'-separated, annotations.csv ','-separated.
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [_norm(c) for c in next(reader)]
    rows = [[c.strip() for c in row] for row in reader if any(c.strip() for c in row)]
    return header, rows


def _column(header: list[str], aliases: Sequence[str], path: Path, what: str) -> int:
    for alias in aliases:
        if alias in header:
            return header.index(alias)
    raise ValueError(
        f"{path}: required column {what!r} is missing (accepted names: {list(aliases)}; "
        f"found: {header})"
    )


def _float(value: str, path: Path, line: int, column: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise ValueError(
            f"{path}, line {line}: column {column!r}: not a number: {value!r}"
        ) from None
    if not math.isfinite(out):
        raise ValueError(f"{path}, line {line}: column {column!r}: non-finite value {value!r}")
    return out


def _song_id(value: str) -> str:
    """``'12'``, ``'12.0'`` and ``' 12'`` name the same clip."""
    value = value.strip()
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f.is_integer() else value


def read_midlevel_annotations(root: str | Path) -> dict[str, tuple[float, ...]]:
    """Mid-level ratings by song id, from ``root/metadata_annotations/annotations.csv``.

    Raises
    ------
    FileNotFoundError
        The annotations file does not exist.
    ValueError
        A quality column is missing, a value is not a finite number, or a song id repeats.
    """
    path = Path(root) / ANNOTATIONS
    header, rows = _read_table(path)
    id_col = _column(header, _ID_ALIASES, path, "song_id")
    cols = [_column(header, _QUALITY_ALIASES[q], path, q) for q in QUALITIES]
    out: dict[str, tuple[float, ...]] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) < len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {len(header)}")
        sid = _song_id(row[id_col])
        if not sid:
            raise ValueError(f"{path}, line {line}: empty song id")
        if sid in out:
            raise ValueError(f"{path}, line {line}: song id {sid} appears twice")
        out[sid] = tuple(_float(row[c], path, line, header[c]) for c in cols)
    if not out:
        raise ValueError(f"{path}: no annotated clips")
    return out


def read_midlevel_artists(root: str | Path) -> dict[str, str]:
    """Artist by song id from the optional ``metadata.csv`` (empty dict if absent)."""
    path = Path(root) / METADATA
    if not path.is_file():
        return {}
    header, rows = _read_table(path)
    id_col = _column(header, _ID_ALIASES, path, "song id")
    if "artist" not in header:
        return {}
    artist_col = header.index("artist")
    return {
        _song_id(row[id_col]): row[artist_col]
        for row in rows
        if len(row) > max(id_col, artist_col) and row[artist_col]
    }


def read_soundtracks_ratings(path: str | Path) -> dict[int, tuple[float, ...]]:
    """Mean emotion ratings by excerpt ``Number`` from a ``mean_ratings_set1.csv``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file or column, a non-numeric value, a repeated number.
    """
    path = Path(path)
    header, rows = _read_table(path)
    num_col = _column(header, _NUMBER_ALIASES, path, "Number")
    cols = [_column(header, (e,), path, e) for e in EMOTIONS]
    out: dict[int, tuple[float, ...]] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) <= max([num_col, *cols]):
            raise ValueError(f"{path}, line {line}: too few fields ({len(row)})")
        number = _float(row[num_col], path, line, header[num_col])
        if not number.is_integer():
            raise ValueError(f"{path}, line {line}: Number {row[num_col]!r} is not an integer")
        if int(number) in out:
            raise ValueError(f"{path}, line {line}: Number {int(number)} appears twice")
        out[int(number)] = tuple(_float(row[c], path, line, header[c]) for c in cols)
    if not out:
        raise ValueError(f"{path}: no rated excerpts")
    return out


def _audio_index(folder: Path, recursive: bool = False) -> dict[str, Path]:
    """Audio files under ``folder`` by stem (one directory listing, not a stat per clip)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"audio directory not found: {folder}")
    files = folder.rglob("*") if recursive else folder.iterdir()
    index: dict[str, Path] = {}
    for path in sorted(files):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        stem = _song_id(path.stem)
        if stem in index:
            raise ValueError(f"two audio files for clip {stem}: {index[stem]} and {path}")
        index[stem] = path
    return index


def assign_folds(groups: Iterable[str], n_folds: int) -> dict[str, int]:
    """Deal groups round-robin into folds ``1..n_folds`` in the order of their SHA-1.

    Hash order rather than name order, so that alphabetically close artists do not share
    a fold; exact balance (fold sizes differ by at most one group) and independent of
    the machine and of ``PYTHONHASHSEED``.
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    ordered = sorted(set(groups), key=lambda g: hashlib.sha1(g.encode()).hexdigest())
    return {g: 1 + i % n_folds for i, g in enumerate(ordered)}


def read_midlevel(
    root: str | Path,
    ratings: str | Path | None = None,
    ratings_audio: str | Path | None = None,
    n_folds: int = 5,
) -> list[MusicRecord]:
    """List the clips of a Mid-level Perceptual Features dataset, with emotion ratings.

    Parameters
    ----------
    root : directory holding ``audio/`` and ``metadata_annotations/annotations.csv``.
    ratings : a Soundtracks ``mean_ratings_set1.csv``; ``None`` uses
        ``root/soundtracks/mean_ratings_set1.csv`` when it exists (the built-in layout).
    ratings_audio : the Soundtracks audio directory (``Set1/``, searched recursively for
        ``<Number>.<ext>``). ``None``: every ``Number`` is a ``song_id`` of ``root`` and
        the ratings label those clips.
    n_folds : artists (``metadata.csv``), else single clips, dealt into folds by
        ``assign_folds``; Soundtracks-only clips are dealt separately.

    Returns
    -------
    records sorted by (source, numeric song id). Listed audio files must exist; their
    decoding is checked later by the waveform loader.

    Raises
    ------
    FileNotFoundError
        Annotations, ratings or an annotated clip's audio file missing (named).
    ValueError
        Malformed tables (file and line named), or ratings for a clip that does not exist.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"mid-level dataset root is not a directory: {root}")
    annotations = read_midlevel_annotations(root)
    audio = _audio_index(root / "audio")
    missing = sorted(set(annotations) - set(audio), key=_sort_key)
    if missing:
        raise FileNotFoundError(
            f"{root / 'audio'}: no audio file for {len(missing)} annotated clip(s), "
            f"first: song_id {missing[0]} (expected {root / 'audio' / missing[0]}.mp3)"
        )
    artists = read_midlevel_artists(root)

    if ratings is None and (root / BUILTIN_RATINGS).is_file():
        ratings = root / BUILTIN_RATINGS
    rated = read_soundtracks_ratings(ratings) if ratings is not None else {}

    no_emotion = (NAN,) * len(EMOTIONS)
    no_quality = (NAN,) * len(QUALITIES)
    groups = {sid: f"artist:{artists[sid]}" if sid in artists else f"clip:{sid}" for sid in audio}
    folds = assign_folds((groups[s] for s in annotations), n_folds)
    emotions_of: dict[str, tuple[float, ...]] = {}
    extra: list[MusicRecord] = []
    if ratings_audio is None:
        unknown = sorted(str(n) for n in rated if str(n) not in annotations)
        if unknown:
            raise ValueError(
                f"{ratings}: {len(unknown)} rated Number(s) are not song ids of {root} "
                f"(first: {unknown[0]}); give data.ratings_audio for separate Soundtracks audio"
            )
        emotions_of = {str(n): r for n, r in rated.items()}
    else:
        st_audio = _audio_index(Path(ratings_audio).expanduser(), recursive=True)
        st_folds = assign_folds((f"soundtracks:{n}" for n in rated), n_folds)
        for number, values in rated.items():
            path = st_audio.get(str(number))
            if path is None:
                raise FileNotFoundError(
                    f"{ratings_audio}: no audio file for Soundtracks excerpt {number} "
                    f"(expected e.g. {number:03d}.mp3)"
                )
            extra.append(
                MusicRecord(
                    path=path,
                    song_id=f"st{number}",
                    fold=st_folds[f"soundtracks:{number}"],
                    group=f"soundtracks:{number}",
                    qualities=no_quality,
                    emotions=values,
                    source="soundtracks",
                )
            )
    records = [
        MusicRecord(
            path=audio[sid],
            song_id=sid,
            fold=folds[groups[sid]],
            group=groups[sid],
            qualities=values,
            emotions=emotions_of.get(sid, no_emotion),
        )
        for sid, values in annotations.items()
    ]
    records.sort(key=lambda r: _sort_key(r.song_id))
    extra.sort(key=lambda r: _sort_key(r.song_id[2:]))
    return records + extra


def _sort_key(song_id: str) -> tuple[int, int | str]:
    return (0, int(song_id)) if song_id.isdigit() else (1, song_id)
