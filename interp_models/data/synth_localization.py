"""Built-in multichannel source-localization data with known geometry.

A small microphone array (2-4 microphones on a circle, in the horizontal plane) in a
shoebox room or in the free field; one broadband source (a noise burst or a speech-like
harmonic sound) at a random azimuth and distance, at the array's height. The room is
rendered with the image method (Allen and Berkley, "Image method for efficiently
simulating small-room acoustics", JASA 1979) up to a low reflection order, every wall
reflecting with ``beta = sqrt(1 - alpha)``, ``alpha`` from Sabine's formula for the drawn
reverberation time; image delays are fractional (windowed-sinc taps). Independent white
sensor noise sets the SNR. Written here (numpy/scipy): no room simulator is a dependency.

Per clip the ground truth is stored beside the audio: the source direction and position,
the time difference of arrival (TDOA) of every microphone pair, the sample at which the
direct path reaches each microphone and the sample of its first reflection (the
direct-path window is between them).

On disk (a layout a recorded dataset with a calibrated array converts to)::

    root/audio/<stem>.wav        M-channel float32 WAV, one channel per microphone
    root/meta/localization.csv   filename,fold,direction_bin,azimuth_deg,distance_m,
                                 rt60_s,snr_db,source
    root/meta/array.json         microphone positions (m, array centre at 0), speed of
                                 sound, sample rate, direction bins
    root/meta/generator.json     the config and GENERATOR_VERSION
    root/truth/<stem>.npz        see ``ClipTruth``

Clip ``i`` is synthesised from ``np.random.default_rng([seed, i])`` alone, so the files are
byte-identical for a given config whatever order or process makes them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from itertools import combinations, product
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from interp_models.cache import cached_dataset, params_key
from interp_models.data.parallel import write_ranges

#: Bump whenever the synthesis changes (any byte of the output); part of the cache key.
GENERATOR_VERSION = 1
SPEED_OF_SOUND = 343.0
SOURCES = ("noise_burst", "harmonic")
CSV_HEADER = (
    "filename",
    "fold",
    "direction_bin",
    "azimuth_deg",
    "distance_m",
    "rt60_s",
    "snr_db",
    "source",
)

_SINC_HALF = 16  # fractional-delay taps on each side of an image's arrival
_EVENT_SECONDS = (0.25, 0.5)
_WALL_MARGIN_M = 0.5  # the array and the source keep this far from every wall


@dataclass(frozen=True)
class SynthLocalizationConfig:
    """Parameters of the built-in localization data (all enter the cache key).

    ``rt60_s``: the reverberation times a clip draws from (uniformly); 0 is the free
    field (direct path only). ``n_direction_bins``: the classes, equal azimuth sectors of
    the full circle (of 180 degrees for two microphones, which cannot tell front from
    back). ``image_order``: the highest reflection order rendered.
    """

    num_clips: int = 1000
    n_mics: int = 4
    array_radius_m: float = 0.1
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    n_direction_bins: int = 16
    distance_m: tuple[float, float] = (0.8, 1.5)
    rt60_s: tuple[float, ...] = (0.0, 0.4, 0.8)
    room_m: tuple[tuple[float, float], ...] = ((5.0, 8.0), (4.0, 6.0), (2.5, 3.5))
    snr_db: tuple[float, float] = (-10.0, 15.0)
    image_order: int = 3
    sources: tuple[str, ...] = SOURCES
    seed: int = 0
    n_folds: int = 5

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "distance_m", _pair("distance_m", self.distance_m))
        set_(self, "snr_db", _pair("snr_db", self.snr_db))
        set_(self, "rt60_s", tuple(float(r) for r in self.rt60_s))
        set_(self, "room_m", tuple(_pair("room_m", r) for r in self.room_m))
        set_(self, "sources", tuple(self.sources))
        set_(self, "clip_seconds", float(self.clip_seconds))
        set_(self, "array_radius_m", float(self.array_radius_m))
        if not 2 <= self.n_mics <= 4:
            raise ValueError(f"n_mics must be 2, 3 or 4, got {self.n_mics}")
        if self.num_clips < 1 or self.n_folds < 1 or self.n_direction_bins < 2:
            raise ValueError("num_clips and n_folds must be >= 1 and n_direction_bins >= 2")
        if not self.rt60_s or any(not 0.0 <= r <= 2.0 for r in self.rt60_s):
            raise ValueError(f"rt60_s must be values in [0, 2] s, got {self.rt60_s}")
        if len(self.room_m) != 3:
            raise ValueError(f"room_m must give 3 (low, high) ranges, got {self.room_m}")
        if self.distance_m[0] <= self.array_radius_m:
            raise ValueError("distance_m must keep the source outside the array")
        shortest = min(lo for lo, _ in self.room_m[:2])
        if 2 * (self.distance_m[1] + _WALL_MARGIN_M) > shortest:
            raise ValueError(
                f"distance_m {self.distance_m} does not fit the room_m {self.room_m} "
                f"(source and array keep {_WALL_MARGIN_M} m from the walls)"
            )
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise ValueError(f"sources: unknown {unknown}; choose from {list(SOURCES)}")
        if self.clip_seconds < 2 * _EVENT_SECONDS[1]:
            raise ValueError(f"clip_seconds must be >= {2 * _EVENT_SECONDS[1]}")

    @property
    def sector_deg(self) -> float:
        """Width of one direction bin (degrees)."""
        return (180.0 if self.n_mics == 2 else 360.0) / self.n_direction_bins


def _pair(name: str, value) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must be (low, high), got {value}")
    return lo, hi


def mic_positions(n_mics: int, radius: float) -> np.ndarray:
    """(M, 3) microphones evenly on a horizontal circle around the origin (a pair: on x)."""
    angles = np.arange(n_mics) * 2 * np.pi / n_mics
    return np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(n_mics)], 1)


def pair_indices(n_mics: int) -> list[tuple[int, int]]:
    """Microphone pairs ``(i, j)``, ``i < j``, in the order TDOAs are stored."""
    return list(combinations(range(n_mics), 2))


def tdoa_s(source: np.ndarray, mics: np.ndarray, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """(P,) arrival time at mic ``j`` minus at mic ``i`` for each pair ``(i, j)``."""
    arrival = np.linalg.norm(mics - source, axis=1) / c
    return np.array([arrival[j] - arrival[i] for i, j in pair_indices(len(mics))])


# --------------------------------------------------------------------------- room


def image_sources(
    source: np.ndarray, room: np.ndarray, order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image positions (K, 3) and reflection counts (K,) of a shoebox room with one corner
    at the origin (Allen and Berkley 1979): per axis ``x' = (1 - 2q) x + 2 n L``, with
    ``|2n - q|`` reflections; images of at most ``order`` reflections in total."""
    per_axis = []
    for x, length in zip(source, room, strict=True):
        options = [
            ((1 - 2 * q) * x + 2 * n * length, abs(2 * n - q))
            for n in range(-order, order + 1)
            for q in (0, 1)
        ]
        per_axis.append([o for o in options if o[1] <= order])
    positions, counts = [], []
    for combo in product(*per_axis):
        count = sum(c for _, c in combo)
        if count <= order:
            positions.append([p for p, _ in combo])
            counts.append(count)
    return np.array(positions), np.array(counts)


def wall_reflection(rt60: float, room: np.ndarray) -> float:
    """``beta = sqrt(1 - alpha)``, ``alpha = 0.161 V / (S RT60)`` (Sabine), capped to [0, 1]."""
    volume = float(np.prod(room))
    surface = 2 * float(room[0] * room[1] + room[0] * room[2] + room[1] * room[2])
    alpha = min(0.161 * volume / (surface * rt60), 1.0)
    return float(np.sqrt(1.0 - alpha))


def impulse_responses(
    images: np.ndarray, counts: np.ndarray, beta: float, mics: np.ndarray, sr: int, c: float
) -> np.ndarray:
    """(M, L) room impulse responses: each image a Hann-windowed sinc at its fractional
    delay, gain ``beta ** reflections / distance`` (so the direct path at 1 m has gain 1)."""
    dist = np.linalg.norm(images[None] - mics[:, None], axis=2)  # (M, K)
    delay = dist / c * sr
    if delay.min() <= _SINC_HALF:
        raise ValueError(f"a source within {_SINC_HALF} samples of a microphone is not rendered")
    length = int(np.ceil(delay.max())) + _SINC_HALF + 2
    h = np.zeros((len(mics), length))
    taps = np.arange(-_SINC_HALF, _SINC_HALF + 1)
    window = 0.5 + 0.5 * np.cos(np.pi * taps / (_SINC_HALF + 1))
    gain = beta ** counts[None] / dist
    for m, k in np.ndindex(delay.shape):
        start = int(np.floor(delay[m, k]))
        frac = delay[m, k] - start
        h[m, start + taps] += gain[m, k] * window * np.sinc(taps - frac)
    return h


# --------------------------------------------------------------------------- sources


def _noise_burst(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Broadband noise (200 Hz up to 6-7.5 kHz) with raised-cosine ends."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < 200.0) | (f > rng.uniform(6000.0, 7500.0))] = 0.0
    return np.fft.irfft(spec, n) * _fade(n, sr)


def _harmonic(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like: a gliding f0 (100-250 Hz) with harmonics to 5 kHz under a two-formant
    envelope, amplitude-modulated at a syllable rate of 3-6 Hz."""
    t = np.arange(n) / sr
    f0 = rng.uniform(100.0, 250.0) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = rng.uniform([400.0, 1200.0], [900.0, 2500.0])
    x = np.zeros(n)
    for k in range(1, int(5000 / f0.max()) + 1):
        fk = k * f0.mean()
        amp = sum(np.exp(-0.5 * ((fk - f) / 300.0) ** 2) for f in formants) + 0.05
        x += amp * np.sin(k * phase)
    syllables = 0.55 - 0.45 * np.cos(2 * np.pi * rng.uniform(3.0, 6.0) * t)
    return x * syllables * _fade(n, sr)


def _fade(n: int, sr: int, ramp_s: float = 0.01) -> np.ndarray:
    r = max(1, min(int(ramp_s * sr), n // 2))
    env = np.ones(n)
    env[:r] = env[n - r :][::-1] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
    return env


# --------------------------------------------------------------------------- one clip


@dataclass(frozen=True)
class ClipTruth:
    """One clip's ground truth (``truth/<stem>.npz``).

    Attributes
    ----------
    azimuth_deg, distance_m : the source direction (counter-clockwise from mic 0's axis)
        and distance from the array centre; ``direction_bin`` its class.
    source_pos, mic_pos, room_m : positions in the room (m; room corner at the origin).
    tdoa_s : (P,) arrival at mic j minus at mic i per pair (``pair_indices``).
    direct_onset : (M,) sample at which the direct path of the source's onset arrives.
    first_reflection : (M,) sample of the first reflection's arrival of that onset (the
        clip's length in the free field).
    event_onset_s, event_offset_s : the source signal's span as emitted.
    rt60_s, snr_db, source : the conditions.
    """

    azimuth_deg: float
    distance_m: float
    direction_bin: int
    source_pos: np.ndarray
    mic_pos: np.ndarray
    room_m: np.ndarray
    tdoa_s: np.ndarray
    direct_onset: np.ndarray
    first_reflection: np.ndarray
    event_onset_s: float
    event_offset_s: float
    rt60_s: float
    snr_db: float
    source: str

    def save(self, path: Path) -> None:
        np.savez(path, **{k: np.asarray(v) for k, v in asdict(self).items()})


def load_truth(path: str | Path) -> ClipTruth:
    """Read ``truth/<stem>.npz`` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        values = {k: z[k] for k in z.files}
    scalars = {k: v.item() for k, v in values.items() if v.ndim == 0}
    return ClipTruth(**{**values, **scalars})


def synthesise(config: SynthLocalizationConfig, index: int) -> tuple[np.ndarray, ClipTruth]:
    """Clip ``index``: (M, N) float32 signals and their ``ClipTruth``."""
    rng = np.random.default_rng([config.seed, index])
    sr, n = config.sample_rate, int(round(config.clip_seconds * config.sample_rate))
    room = np.array([rng.uniform(lo, hi) for lo, hi in config.room_m])
    centre = np.array(
        [
            rng.uniform(
                _WALL_MARGIN_M + config.distance_m[1],
                room[a] - _WALL_MARGIN_M - config.distance_m[1],
            )
            for a in range(2)
        ]
        + [rng.uniform(1.0, min(2.0, room[2] - 0.5))]
    )
    mics = centre + mic_positions(config.n_mics, config.array_radius_m)
    direction_bin = int(rng.integers(config.n_direction_bins))
    azimuth = (direction_bin + rng.uniform(0.05, 0.95)) * config.sector_deg
    distance = rng.uniform(*config.distance_m)
    rad = np.deg2rad(azimuth)
    source = centre + distance * np.array([np.cos(rad), np.sin(rad), 0.0])
    rt60 = float(config.rt60_s[rng.integers(len(config.rt60_s))])
    order = config.image_order if rt60 > 0 else 0
    images, counts = image_sources(source, room, order)
    h = impulse_responses(
        images, counts, wall_reflection(rt60, room) if rt60 else 0.0, mics, sr, SPEED_OF_SOUND
    )
    kind = config.sources[rng.integers(len(config.sources))]
    length = int(rng.uniform(*_EVENT_SECONDS) * sr)
    onset = int(rng.integers(0, n // 2 - length // 2))
    dry = np.zeros(n)
    dry[onset : onset + length] = (_noise_burst if kind == "noise_burst" else _harmonic)(
        length, sr, rng
    )
    wet = fftconvolve(dry[None], h, axes=1)[:, :n]
    snr = rng.uniform(*config.snr_db)
    span = slice(onset, min(onset + length + h.shape[1], n))
    noise_power = np.mean(wet[0, span] ** 2) / 10 ** (snr / 10)
    mix = wet + rng.standard_normal(wet.shape) * np.sqrt(noise_power)
    mix = (mix / (np.abs(mix).max() + 1e-12) * rng.uniform(0.3, 0.9)).astype(np.float32)
    return mix, ClipTruth(
        azimuth_deg=float(azimuth),
        distance_m=float(distance),
        direction_bin=direction_bin,
        source_pos=source,
        mic_pos=mics,
        room_m=room,
        tdoa_s=tdoa_s(source, mics),
        direct_onset=onset + np.linalg.norm(mics - source, axis=1) / SPEED_OF_SOUND * sr,
        first_reflection=onset + _first_reflection(images, counts, mics) * sr / SPEED_OF_SOUND
        if order
        else np.full(config.n_mics, float(n)),
        event_onset_s=onset / sr,
        event_offset_s=(onset + length) / sr,
        rt60_s=rt60,
        snr_db=float(snr),
        source=str(kind),
    )


def _first_reflection(images: np.ndarray, counts: np.ndarray, mics: np.ndarray) -> np.ndarray:
    """(M,) distance of the nearest image with at least one reflection, per microphone."""
    reflected = images[counts > 0]
    return np.linalg.norm(reflected[None] - mics[:, None], axis=2).min(axis=1)


# --------------------------------------------------------------------------- on disk


def _stem(config: SynthLocalizationConfig, index: int) -> tuple[str, int]:
    fold = index % config.n_folds + 1
    return f"{fold}-{index:06d}", fold


def _write_range(args: tuple[SynthLocalizationConfig, str, int, int]) -> list[tuple]:
    config, root, start, stop = args
    rows = []
    for index in range(start, stop):
        mix, truth = synthesise(config, index)
        stem, fold = _stem(config, index)
        sf.write(Path(root) / "audio" / f"{stem}.wav", mix.T, config.sample_rate, subtype="FLOAT")
        truth.save(Path(root) / "truth" / f"{stem}.npz")
        rows.append(
            (
                f"{stem}.wav",
                fold,
                truth.direction_bin,
                round(truth.azimuth_deg, 3),
                round(truth.distance_m, 4),
                truth.rt60_s,
                round(truth.snr_db, 2),
                truth.source,
            )
        )
    return rows


def array_description(config: SynthLocalizationConfig) -> dict:
    """``meta/array.json``: what a model needs to know about the array."""
    return {
        "mic_positions_m": mic_positions(config.n_mics, config.array_radius_m).tolist(),
        "speed_of_sound": SPEED_OF_SOUND,
        "sample_rate": config.sample_rate,
        "n_direction_bins": config.n_direction_bins,
        "sector_deg": config.sector_deg,
        "pairs": pair_indices(config.n_mics),
    }


def generate_localization(config: SynthLocalizationConfig, root: Path, workers: int = 1) -> Path:
    """Write the dataset described by ``config`` into ``root`` (layout: see module)."""
    root = Path(root)
    for sub in ("audio", "meta", "truth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = write_ranges(_write_range, config, root, config.num_clips, workers)
    with open(root / "meta" / "localization.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    (root / "meta" / "array.json").write_text(
        json.dumps(array_description(config), indent=2) + "\n"
    )
    described = {**asdict(config), "generator_version": GENERATOR_VERSION}
    (root / "meta" / "generator.json").write_text(json.dumps(described, indent=2) + "\n")
    return root


def cached_localization(config: SynthLocalizationConfig, cache_dir: Path | None = None) -> Path:
    """The dataset of ``config``, generated once under ``<cache>/synth_localization/<key>``."""
    key = params_key({**asdict(config), "generator_version": GENERATOR_VERSION})
    return cached_dataset(
        "synth_localization", key, lambda d: generate_localization(config, d), cache_dir
    )
