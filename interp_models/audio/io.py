"""Reading and writing audio files as float32 mono waveforms."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from interp_models.errors import InputError

log = logging.getLogger(__name__)

# Extensions libsndfile decodes itself; for these its verdict on a file is final, so a
# corrupt .wav is reported at once instead of being handed on to audioread.
_SNDFILE_EXTENSIONS = frozenset(f".{fmt.lower()}" for fmt in sf.available_formats())
# Frames per read when a file breaks off mid-stream: at most this many decodable frames
# before the break are lost.
_SALVAGE_BLOCK = 512


class AudioReadError(InputError, RuntimeError):
    """An audio file could not be decoded into a usable waveform.

    Attributes
    ----------
    path : the offending file.
    reason : what was wrong with it.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read audio file {str(self.path)!r}: {reason}")


def _riff_promised_frames(path: Path) -> int | None:
    """Frames the ``data`` chunk of a RIFF/WAVE header promises; None if not a plain WAV
    header (RF64, streaming placeholder sizes, no ``fmt``/``data`` chunk)."""
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while len(chunk := f.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return size // block_align if block_align and size != 0xFFFFFFFF else None
            pad = size % 2  # chunks are padded to an even size
            if chunk[:4] == b"fmt " and size >= 14:
                block_align = int.from_bytes(f.read(size)[12:14], "little")
                size = 0
            f.seek(size + pad, 1)
    return None


def _read_frames(f: sf.SoundFile) -> tuple[np.ndarray, bool]:
    """All frames of ``f``, or if decoding breaks off, the frames before the break; and
    whether it broke off."""
    try:
        return f.read(dtype="float32", always_2d=True), False
    except sf.SoundFileError:
        f.seek(0)
        blocks = []
        try:
            for block in f.blocks(_SALVAGE_BLOCK, dtype="float32", always_2d=True):
                blocks.append(block)
        except sf.SoundFileError:
            pass
        if not blocks:
            raise
        return np.concatenate(blocks), True


def _read_sndfile(path: Path) -> tuple[np.ndarray, int]:
    """Decode a libsndfile format, warning (naming the file) if it holds fewer frames than
    its header promises: a WAV's ``data`` chunk (libsndfile clamps its own count to the
    file), or the frame count of a stream that breaks off (e.g. FLAC)."""
    try:
        with sf.SoundFile(path) as f:
            data, broke_off = _read_frames(f)
            riff = _riff_promised_frames(path) if f.format in ("WAV", "WAVEX") else None
            promised, sr = max(f.frames if broke_off else 0, riff or 0), f.samplerate
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise AudioReadError(path, f"unreadable or corrupt ({exc})") from exc
    if 0 < len(data) < promised:
        msg = "%s: truncated: the header promises %d samples, the file holds %d (reading those)"
        log.warning(msg, path, promised, len(data))
    elif len(data) == 0 and promised:
        raise AudioReadError(path, f"truncated: no audio frames of the {promised} promised")
    return data, int(sr)


def _read_native(path: Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a (frames, channels) float32 array and its sample rate."""
    if path.suffix.lower() in _SNDFILE_EXTENSIONS:
        return _read_sndfile(path)
    try:
        # librosa warns that it fell back to audioread; that is the expected path here.
        with warnings.catch_warnings(action="ignore"):
            wave, sr = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except Exception as exc:  # audioread backends raise assorted exception types
        raise AudioReadError(path, f"unsupported or corrupt format ({exc!r})") from exc
    wave = np.asarray(wave, dtype=np.float32)
    # librosa returns (samples,) or (channels, samples)
    data = wave[:, None] if wave.ndim == 1 else wave.T
    return data, int(sr)


def check_audio_file(path: str | Path) -> None:
    """Fail early, before loading a model for it, if ``path`` cannot be an audio file.

    Raises
    ------
    AudioReadError
        Missing, not a regular file, empty, or (for libsndfile's formats) a header
        libsndfile rejects.
    """
    path = Path(path)
    _check_exists(path)
    if path.suffix.lower() in _SNDFILE_EXTENSIONS:
        try:
            sf.info(path)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise AudioReadError(path, f"unreadable or corrupt ({exc})") from exc


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioReadError(path, "file does not exist")
    if not path.is_file():
        raise AudioReadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioReadError(path, "empty file (0 bytes)")


def load_audio(
    path: str | Path, sample_rate: int, num_samples: int | None = None, channels: int | None = None
) -> np.ndarray:
    """Load an audio file as a finite float32 mono waveform (or ``channels`` of them).

    Parameters
    ----------
    path : audio file; anything libsndfile reads (any PCM/float subtype), other
        formats through ``librosa.load``.
    sample_rate : output rate; the file is resampled (soxr_hq) when its rate differs.
    num_samples : if given, zero-pad at the end or crop to the first ``num_samples``.
    channels : None averages the channels (mono); a number keeps them, and the file must
        have exactly that many (a microphone array's recording).

    Returns
    -------
    1-D float32 array, or (channels, samples) with ``channels``. Channels are averaged
    without ``channels``. All-zero (silent) files are valid. A
    truncated file (fewer samples than its header promises) gives the samples present,
    with a logged warning naming the file and both counts.

    Raises
    ------
    AudioReadError
        Missing, empty, unreadable or corrupt file, or non-finite samples.
    """
    path = Path(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if num_samples is not None and num_samples < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}")
    _check_exists(path)
    data, file_rate = _read_native(path)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioReadError(path, "no audio frames")
    if not np.isfinite(data).all():
        raise AudioReadError(path, "contains non-finite samples (NaN or inf)")

    if channels is None:
        wave = data.mean(axis=1, dtype=np.float32)
    elif data.shape[1] != channels:
        raise AudioReadError(path, f"has {data.shape[1]} channels, expected {channels}")
    else:
        wave = np.ascontiguousarray(data.T, dtype=np.float32)
    if file_rate != sample_rate:
        wave = librosa.resample(wave, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    wave = np.ascontiguousarray(wave, dtype=np.float32)

    if num_samples is not None:
        if wave.shape[-1] >= num_samples:
            wave = wave[..., :num_samples].copy()
        else:
            pad = [(0, 0)] * (wave.ndim - 1) + [(0, num_samples - wave.shape[-1])]
            wave = np.pad(wave, pad)
    if not np.isfinite(wave).all():  # guard the promise even if a decoder misbehaves
        raise AudioReadError(path, "decoding produced non-finite samples")
    return wave


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int) -> None:
    """Write a 1-D float waveform as a 16-bit PCM wav, creating parent directories.

    A wave whose peak exceeds 1 is scaled down as a whole to peak 0.99 rather than
    clipped, so listening examples keep their shape.

    Raises
    ------
    ValueError
        ``wave`` is not 1-D or contains NaN/inf.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"write_audio expects a 1-D wave, got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise ValueError(f"refusing to write non-finite samples to {str(path)!r}")
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > 1.0:
        wave = wave * (0.99 / peak)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, int(sample_rate), subtype="PCM_16", format="WAV")
