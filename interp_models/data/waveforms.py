"""Decode a dataset's clips into one fixed-length waveform array, optionally cached."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from interp_models.audio.io import AudioReadError, load_audio
from interp_models.cache import cached_array, params_key
from interp_models.data.records import ClipRecord
from interp_models.errors import NoUsableDataError

log = logging.getLogger(__name__)

ON_BAD_FILE = ("raise", "skip")
_MAX_WORKERS = 4


def _file_stamp(path: Path) -> list:
    """(path, size, mtime_ns) of a file, so an edited or replaced file changes the key."""
    abspath = os.path.abspath(path)
    try:
        st = os.stat(abspath)
    except OSError:
        return [abspath, None, None]
    return [abspath, st.st_size, st.st_mtime_ns]


def _decode(
    records: Sequence[ClipRecord],
    sample_rate: int,
    num_samples: int,
    on_bad_file: str,
    channels: int | None = None,
) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Decode all records; return (waves of the kept ones, kept indices, skipped)."""
    out = np.zeros((len(records), *_shape(num_samples, channels)), dtype=np.float32)

    def work(i: int) -> AudioReadError | None:
        try:
            out[i] = load_audio(records[i].path, sample_rate, num_samples, channels)
        except AudioReadError as exc:
            return exc
        return None

    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    # soundfile and soxr release the GIL, so threads decode in parallel.
    pool = ThreadPoolExecutor(max_workers=max(1, min(_MAX_WORKERS, len(records))))
    try:
        for i, error in enumerate(pool.map(work, range(len(records)))):
            if error is None:
                kept.append(i)
            elif on_bad_file == "raise":
                raise error
            else:
                skipped.append((str(records[i].path), error.reason))
    finally:
        # on "raise", do not decode the rest of the dataset just to throw it away
        pool.shutdown(wait=True, cancel_futures=True)

    if not kept:
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise NoUsableDataError(f"all {len(records)} audio files failed to decode{first}")
    waves = out if len(kept) == len(records) else out[kept]
    return waves, kept, skipped


def _shape(num_samples: int, channels: int | None) -> tuple[int, ...]:
    return (num_samples,) if channels is None else (channels, num_samples)


def _write_json(path: Path, obj: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_waveforms(
    records: Sequence[ClipRecord],
    sample_rate: int,
    num_samples: int,
    on_bad_file: str = "raise",
    cache_dir: Path | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, list[ClipRecord], list[tuple[str, str]]]:
    """Decode every record into a float32 array of fixed-length mono waveforms (or of
    ``channels``-channel ones: ``load_audio``'s ``channels``).

    Parameters
    ----------
    records : clips to decode; output rows follow their order.
    sample_rate, num_samples : target rate and length (zero-padded / cropped).
    on_bad_file : ``"raise"`` propagates the first ``AudioReadError``; ``"skip"``
        leaves bad files out, lists them in ``skipped`` and logs a warning.
    cache_dir : if given, the decoded array is cached there, keyed by the settings and
        every file's (path, size, mtime_ns); the kept/skipped lists are stored in a JSON
        sidecar written before the array is published.

    Returns
    -------
    waves : (n_kept, num_samples) or (n_kept, channels, num_samples) float32, finite.
    kept_records : records of the rows of ``waves``.
    skipped : (path, reason) of each file left out.

    Raises
    ------
    AudioReadError
        A file is bad and ``on_bad_file="raise"``.
    NoUsableDataError
        Every file is bad (a ``RuntimeError``).
    """
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(
            f"data.on_bad_file must be one of {list(ON_BAD_FILE)}, got {on_bad_file!r}"
        )
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    records = list(records)
    if not records:
        raise ValueError("load_waveforms got no records")

    if cache_dir is None:
        waves, kept, skipped = _decode(records, sample_rate, num_samples, on_bad_file, channels)
    else:
        key = params_key(
            {
                "what": "waves",
                "sample_rate": int(sample_rate),
                "num_samples": int(num_samples),
                "on_bad_file": on_bad_file,
                "files": [_file_stamp(r.path) for r in records],
                # only when set, so the keys of mono data cached before stay the same
                **({"channels": int(channels)} if channels is not None else {}),
            }
        )
        npy = Path(cache_dir) / f"waves-{key}.npy"
        sidecar = npy.with_suffix(".json")

        def build() -> np.ndarray:
            arr, kept_, skipped_ = _decode(records, sample_rate, num_samples, on_bad_file, channels)
            _write_json(sidecar, {"kept": kept_, "skipped": skipped_})
            return arr

        waves = cached_array(npy, build)
        try:
            index = json.loads(sidecar.read_text())
            kept = [int(i) for i in index["kept"]]
            skipped = [(str(p), str(r)) for p, r in index["skipped"]]
        except (OSError, ValueError, KeyError, TypeError):
            # sidecar lost or damaged after publication: its array cannot be trusted to
            # line up with the records, so decode again without the cache.
            log.warning("waveform cache index %s unreadable; decoding without cache", sidecar)
            waves, kept, skipped = _decode(records, sample_rate, num_samples, on_bad_file, channels)
        if waves.shape != (len(kept), *_shape(num_samples, channels)):
            log.warning("waveform cache %s has shape %s; decoding again", npy, waves.shape)
            waves, kept, skipped = _decode(records, sample_rate, num_samples, on_bad_file, channels)

    if skipped:
        log.warning(
            "skipped %d of %d audio files that failed to decode (first: %s: %s)",
            len(skipped),
            len(records),
            *skipped[0],
        )
    if not np.isfinite(waves).all():
        raise RuntimeError("decoded waveforms contain non-finite values")
    return waves, [records[i] for i in kept], skipped
