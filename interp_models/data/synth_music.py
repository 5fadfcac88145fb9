"""Built-in music clips whose mid-level qualities and emotion ratings are known exactly.

Each clip is a short piece -- melody over comped chords, a bass line and a drum beat --
rendered from a symbolic score. Its seven mid-level qualities (Aljanaki & Soleymani,
ISMIR 2018) are latent values in [0, 1] that set how the score is written:

=================== ==================================================================
quality             what it changes in the score (0 -> 1)
=================== ==================================================================
melodiousness       leaping, fragmented, buried melody -> stepwise, continuous, prominent
articulation        legato (notes fill their time, soft attacks) -> staccato (short, sharp)
rhythm_stability    tempo wobble, parts landing apart, a weak pulse with missing hits -> a
                    steady, clear beat
rhythm_complexity   plain on-beat patterns -> syncopated kicks, ghost notes, off-beat notes
dissonance          plain triads -> added b9 / tritone / major-7th tones, detuned voices
tonal_stability     chromatic melodic steps, chords side-slipping by semitones out of the
                    key, a wandering bass -> in key over a tonic pedal and drone
minorness           major key, major chords -> minor key, minor chords
=================== ==================================================================

Nuisance factors that are not qualities vary too: tempo (75-145 bpm), loudness (RMS -30 to
-14 dBFS), timbre brightness (harmonic roll-off), the melody and chord instruments, the key.

Shifted test sets (``configs/data/synth_music_shifted.yaml``) change what the training data
never varies, with the qualities, their score rules and the rating mapping unchanged:
``tempo_ranges`` (tempi outside 75-145 bpm; the ratings' tempo term extrapolates linearly),
``instruments`` / ``bass_instrument`` / ``pad_instrument`` (instrument models the default
never uses: a Karplus-Strong plucked string, a drawbar organ, a Chowning FM bell),
``transpose_ranges`` (every pitch moved by a per-clip draw, e.g. off the 12 keys' tuning
grid and out of their registers) and ``reverb_seconds`` / ``reverb_wet`` (a room). At their
defaults these options draw nothing and change no byte of the output, the cache key or
``generator.json``.

The eight emotion ratings follow a known mapping (``TRUE_WEIGHTS``, mostly linear in the
qualities, ``NUISANCE_WEIGHTS`` a smaller part from tempo, loudness and brightness) plus
Gaussian noise, stored on the Soundtracks scale 1..9; the annotated qualities are the
latent ones on the mid-level scale 1..10 plus annotation noise.

On disk (what ``interp_models.data.midlevel.read_midlevel`` reads)::

    root/audio/<song_id>.wav                          mono PCM_16, song ids 1..num_clips
    root/metadata_annotations/annotations.csv         song_id,melodiousness,...,minorness
    root/metadata_annotations/metadata.csv            ';'-separated: song id;Artist;Source
    root/soundtracks/mean_ratings_set1.csv            Number,valence,...,tender,TARGET
    root/meta/generator.json                          config, version, the true mapping
    root/meta/clips.csv                               latent qualities, nuisance, realised
                                                      score statistics per clip
    root/masks/<song_id>.npz                          per-quality evidence masks (below)

Evidence masks: each note or drum hit is tagged with the qualities it carries evidence of
(``EVIDENCE``); ``evidence[j]`` marks the STFT bins (n_fft 1024, hop 512, centred Hann) where
the events tagged ``j`` are within 30 dB of their own peak and louder than everything
else in the clip (the ideal binary mask of Wang, 2005, restricted to those events).

Every random decision of clip ``i`` comes from ``default_rng([seed, i, stream])``, one
stream per aspect (latents, harmony, melody, rhythm, timing, timbre, ratings), and the
per-note decisions are indexed by grid position, so ``synthesize_clip(config, i,
overrides={"minorness": 1.0})`` re-renders the same clip with only that quality changed
-- the listenable contrast of an explanation.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from interp_models.cache import cached_dataset, params_key
from interp_models.data.midlevel import (
    ANNOTATIONS,
    BUILTIN_RATINGS,
    EMOTION_SCALE,
    EMOTIONS,
    METADATA,
    QUALITIES,
    QUALITY_SCALE,
)
from interp_models.data.parallel import write_ranges

#: Bump whenever the synthesis changes (any byte of the output); part of the cache key.
GENERATOR_VERSION = 1

NUISANCES = ("tempo", "loudness", "brightness")
#: tempo bpm, loudness dBFS RMS, brightness (0 dark .. 1 bright); mapped to [-1, 1].
NUISANCE_RANGES = {"tempo": (75.0, 145.0), "loudness": (-30.0, -14.0), "brightness": (0.0, 1.0)}
INSTRUMENTS = ("organ", "clarinet", "piano", "strings", "pluck")
#: Instrument models the default data never uses (for shifted test sets): a plucked string
#: (Karplus-Strong), an organ of drawbar partials (additive), a bell (FM, Chowning 1973).
SHIFTED_INSTRUMENTS = ("ks_string", "drawbar", "fm_bell")
ALL_INSTRUMENTS = INSTRUMENTS + SHIFTED_INSTRUMENTS

# Emotion rating points (scale 1..9) per unit of latent quality (0..1). Rows EMOTIONS,
# columns QUALITIES. Signs follow the relations reported for real music (Chowdhury et al.
# 2019, Fig. 4; Eerola & Vuoskoski 2011): minorness lowers valence and happiness and raises
# sadness, dissonance and tonal instability raise tension, anger and fear, staccato
# articulation raises energy. Exact zeros make "near-zero" weights well defined.
TRUE_WEIGHTS = np.array(
    [
        # mel   art   rstab rcomp diss  tstab minor
        [1.2, 0.0, 0.5, 0.0, -1.5, 1.0, -2.0],  # valence
        [0.0, 2.0, 0.6, 1.2, 0.6, 0.0, 0.0],  # energy
        [-0.8, 0.6, -1.0, 0.6, 2.0, -1.2, 0.5],  # tension
        [-0.8, 1.2, 0.0, 0.5, 2.0, -0.6, 0.4],  # anger
        [-0.6, 0.0, -1.4, 0.0, 1.4, -1.6, 1.0],  # fear
        [0.6, 1.0, 0.8, 0.6, -1.0, 0.8, -2.2],  # happy
        [1.0, -1.4, 0.0, -0.6, 0.0, 0.4, 2.0],  # sad
        [1.6, -1.6, 0.6, -0.6, -1.2, 0.6, 0.0],  # tender
    ]
)
# Rating points per unit of normalised nuisance (-1..1): faster and louder music is rated
# more energetic, brighter timbre slightly more positive. Columns NUISANCES.
NUISANCE_WEIGHTS = np.array(
    [
        [0.0, 0.0, 0.25],
        [0.35, 0.3, 0.0],
        [0.2, 0.0, 0.0],
        [0.0, 0.25, 0.0],
        [0.0, 0.0, -0.15],
        [0.2, 0.0, 0.1],
        [-0.2, 0.0, 0.0],
        [-0.2, -0.2, 0.0],
    ]
)

#: STFT of the stored evidence masks (centred, Hann), and the dominance floor.
MASK_N_FFT = 1024
MASK_HOP = 512
MASK_FLOOR_DB = 30.0

# Bits of ``Event.tags``: which qualities an event carries evidence of.
_BIT = {q: 1 << i for i, q in enumerate(QUALITIES)}
#: What each quality's evidence region is made of (documentation of the tags).
EVIDENCE = {
    "melodiousness": "melody notes",
    "articulation": "melody notes and chord hits (their attacks and lengths)",
    "rhythm_stability": "drum hits (the beat whose timing wobbles or not)",
    "rhythm_complexity": "events of syncopated patterns (off-beat drums, notes, hits)",
    "dissonance": "chord and pad notes, added dissonant tones included",
    "tonal_stability": "tonic drone, bass line (root motion or pedal), chromatic chords / notes",
    "minorness": "chord / pad thirds and melody notes on the mode-defining degrees 3, 6, 7",
}

_LATENT, _HARMONY, _MELODY, _RHYTHM, _TIMING, _TIMBRE, _RATING = range(7)
_TRANSPOSE, _ROOM = 7, 8  # streams drawn from only when the shift options are on
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])  # natural minor
# Diatonic chord roots (semitones above the tonic) by chord quality, per mode.
_DEGREES = {
    (False, False): (0, 5, 7),  # major key, major chords: I IV V
    (False, True): (2, 4, 9),  # major key, minor chords: ii iii vi
    (True, True): (0, 5, 7),  # minor key, minor chords: i iv v
    (True, False): (3, 8, 10),  # minor key, major chords: III VI VII
}
_ADDED = (13, 6, 11)  # dissonant tones above the root: b9, tritone, major 7th
_LEAD_IN_S = 0.06  # first beat slightly after 0 so early jitter never falls off the clip
_TABLE = 4096  # wavetable length


@dataclass(frozen=True)
class SynthMusicConfig:
    """Parameters of the built-in music dataset (all of them enter the cache key).

    ``emotion_noise`` (rating points, 1..9 scale) and ``annotation_noise`` (points,
    1..10 scale) are the s.d. of the noise on the stored ratings; ``nuisance_scale``
    scales the nuisance part of the mapping (0 removes it).

    Shift options (defaults: the training data, byte for byte):

    - ``tempo_ranges``: ``[lo, hi]`` bpm ranges the tempo is drawn from (uniform over
      their union); the ratings still normalise tempo by the training range 75-145.
    - ``instruments``: the pool the melody and chord instruments are drawn from;
      ``bass_instrument`` / ``pad_instrument``: the bass and the held pad and drone
      (any of ``ALL_INSTRUMENTS``).
    - ``transpose_ranges``: ``[lo, hi]`` semitone ranges (within +-12) of a per-clip
      transposition of every pitched note; ``None``: none. A fractional part puts the
      tonic between the 12 equal-tempered keys the default uses.
    - ``reverb_seconds``: RT60 of a synthetic room (exponentially decaying noise; 0:
      dry), ``reverb_wet``: its share of the mix (0..1).
    """

    num_clips: int = 1000
    clip_seconds: float = 4.0
    sample_rate: int = 22050
    seed: int = 0
    emotion_noise: float = 0.3
    annotation_noise: float = 0.25
    nuisance_scale: float = 1.0
    tempo_ranges: tuple[tuple[float, float], ...] = (NUISANCE_RANGES["tempo"],)
    instruments: tuple[str, ...] = INSTRUMENTS
    bass_instrument: str = "pluck"
    pad_instrument: str = "organ"
    transpose_ranges: tuple[tuple[float, float], ...] | None = None
    reverb_seconds: float = 0.0
    reverb_wet: float = 0.3

    def __post_init__(self) -> None:
        # Equal configs must give equal cache keys (4 vs 4.0, lists read back from JSON).
        for name in (
            "clip_seconds",
            "emotion_noise",
            "annotation_noise",
            "nuisance_scale",
            "reverb_seconds",
            "reverb_wet",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "tempo_ranges", _ranges("tempo_ranges", self.tempo_ranges))
        if self.transpose_ranges is not None:
            value = _ranges("transpose_ranges", self.transpose_ranges)
            object.__setattr__(self, "transpose_ranges", value)
        if isinstance(self.instruments, str):
            raise ValueError(f"instruments must be a list of names, got {self.instruments!r}")
        object.__setattr__(self, "instruments", tuple(str(x) for x in self.instruments))
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {self.num_clips}")
        if not 1.0 <= self.clip_seconds <= 30.0:
            raise ValueError(f"clip_seconds must be in [1, 30], got {self.clip_seconds}")
        if self.sample_rate < 16000:  # harmonics and cymbals reach 8 kHz
            raise ValueError(f"sample_rate must be >= 16000, got {self.sample_rate}")
        for name in ("emotion_noise", "annotation_noise", "nuisance_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for lo, hi in self.tempo_ranges:
            if not 30.0 <= lo <= hi <= 300.0:
                raise ValueError(
                    f"tempo_ranges: each [lo, hi] needs 30 <= lo <= hi <= 300 bpm, got {[lo, hi]}"
                )
        for lo, hi in self.transpose_ranges or ():
            if not -12.0 <= lo <= hi <= 12.0:
                raise ValueError(
                    f"transpose_ranges: each [lo, hi] needs -12 <= lo <= hi <= 12 semitones, "
                    f"got {[lo, hi]}"
                )
        if not self.instruments:
            raise ValueError("instruments must name at least one instrument")
        named = [("instruments", x) for x in self.instruments]
        named += [
            ("bass_instrument", self.bass_instrument),
            ("pad_instrument", self.pad_instrument),
        ]
        for name, value in named:
            if value not in ALL_INSTRUMENTS:
                raise ValueError(
                    f"{name}: unknown instrument {value!r}; expected one of {ALL_INSTRUMENTS}"
                )
        if not 0.0 <= self.reverb_seconds <= 5.0:
            raise ValueError(f"reverb_seconds must be in [0, 5], got {self.reverb_seconds}")
        if not 0.0 <= self.reverb_wet <= 1.0:
            raise ValueError(f"reverb_wet must be in [0, 1], got {self.reverb_wet}")

    @property
    def num_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


def _ranges(name: str, value) -> tuple[tuple[float, float], ...]:
    """``value`` as a non-empty tuple of (lo, hi) float pairs (lists from YAML / JSON too)."""
    try:
        out = tuple((float(lo), float(hi)) for lo, hi in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of [lo, hi] pairs, got {value!r}") from None
    if not out:
        raise ValueError(f"{name} must hold at least one [lo, hi] pair")
    return out


#: Fields added for shifted test sets: left out of the cache key and ``generator.json`` at
#: their defaults, so data generated before they existed keeps its key and its files.
SHIFT_FIELDS = (
    "tempo_ranges",
    "instruments",
    "bass_instrument",
    "pad_instrument",
    "transpose_ranges",
    "reverb_seconds",
    "reverb_wet",
)


def config_dict(config: SynthMusicConfig) -> dict:
    """``asdict(config)`` without the shift options that are at their defaults."""
    defaults = {f.name: f.default for f in fields(SynthMusicConfig)}
    out = asdict(config)
    for name in SHIFT_FIELDS:
        if out[name] == defaults[name]:
            del out[name]
    return out


@dataclass(frozen=True)
class Event:
    """One note or drum hit of a score (times in seconds, pitch in MIDI numbers)."""

    onset: float
    duration: float
    pitch: float
    gain: float
    part: str  # melody | chords | pad | bass | kick | snare | hat
    tags: int = 0
    attack: float = 0.005
    release: float = 0.05


@dataclass
class Score:
    """A clip before rendering: its latent factors, events and realised statistics."""

    index: int
    qualities: dict[str, float]
    nuisance: dict[str, float]
    key: int
    minor_mode: bool
    instruments: tuple[str, str]  # melody, chords
    rolloff: float
    events: list[Event]
    stats: dict[str, float] = field(default_factory=dict)
    transpose: float = 0.0  # semitones every pitched event was moved by (shift option)


@dataclass(frozen=True)
class MusicClip:
    """A rendered clip: ``mix`` (as written, float64) and one evidence stem per quality."""

    score: Score
    sample_rate: int
    mix: np.ndarray
    stems: np.ndarray  # (7, num_samples), same scale as mix

    @property
    def song_id(self) -> str:
        return str(self.score.index + 1)


# --------------------------------------------------------------------------- latents


def _rng(config: SynthMusicConfig, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, index, stream])


def normalised_nuisance(nuisance: dict[str, float]) -> np.ndarray:
    """Nuisance factors mapped linearly from their ranges onto [-1, 1], ``NUISANCES`` order."""
    out = []
    for name in NUISANCES:
        lo, hi = NUISANCE_RANGES[name]
        out.append(2.0 * (nuisance[name] - lo) / (hi - lo) - 1.0)
    return np.array(out)


def _draw_from_ranges(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> float:
    """One uniform draw over the union of ``ranges`` (one draw from ``rng`` either way)."""
    if len(ranges) == 1:
        return float(rng.uniform(*ranges[0]))
    u = float(rng.uniform())
    widths = np.array([hi - lo for lo, hi in ranges])
    if widths.sum() == 0:  # fixed values: pick one
        return ranges[min(int(u * len(ranges)), len(ranges) - 1)][0]
    x = u * widths.sum()
    for (lo, _), w in zip(ranges, widths, strict=True):
        if x < w:
            return lo + x
        x -= w
    return ranges[-1][1]


@dataclass(frozen=True)
class _Latents:
    qualities: dict[str, float]
    nuisance: dict[str, float]
    key: int
    instruments: tuple[str, str]
    transpose: float = 0.0


def _latents(
    config: SynthMusicConfig, index: int, overrides: dict[str, float] | None = None
) -> _Latents:
    rng = _rng(config, index, _LATENT)
    qualities = dict(zip(QUALITIES, rng.uniform(0.0, 1.0, len(QUALITIES)).tolist(), strict=True))
    nuisance = {}
    for name in NUISANCES:
        if name == "tempo":
            nuisance[name] = _draw_from_ranges(rng, config.tempo_ranges)
        else:
            nuisance[name] = float(rng.uniform(*NUISANCE_RANGES[name]))
    key = int(rng.integers(12))
    pool = config.instruments
    instruments = tuple(pool[int(i)] for i in rng.integers(len(pool), size=2))
    transpose = 0.0
    if config.transpose_ranges is not None:
        transpose = _draw_from_ranges(_rng(config, index, _TRANSPOSE), config.transpose_ranges)
    for name, value in (overrides or {}).items():
        if name not in qualities:
            raise ValueError(f"overrides: unknown quality {name!r}; expected one of {QUALITIES}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"overrides: {name} must be in [0, 1], got {value}")
        qualities[name] = float(value)
    return _Latents(qualities, nuisance, key, instruments, transpose)


def clip_latents(
    config: SynthMusicConfig, index: int, overrides: dict[str, float] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Latent qualities (0..1) and nuisance factors of clip ``index``, without audio.

    ``overrides`` replaces qualities by name; every draw still happens, so the other
    factors are unchanged.
    """
    lat = _latents(config, index, overrides)
    return lat.qualities, lat.nuisance


def true_mapping(config: SynthMusicConfig) -> dict:
    """The generator's emotion model in the units of the stored ratings.

    ``emotion = intercept + weights @ quality_rating + nuisance_weights @ nuisance + noise``
    with quality ratings on 1..10, emotions on 1..9, nuisance normalised to [-1, 1]; also
    the per-unit-latent weights and the best Pearson r any model can reach per emotion
    from the qualities alone (``ceiling_r_qualities``) and with the nuisance factors too
    (``ceiling_r_all``), ignoring the clipping of ratings to 1..9.
    """
    span = QUALITY_SCALE[1] - QUALITY_SCALE[0]
    weights = TRUE_WEIGHTS / span
    nuis = NUISANCE_WEIGHTS * config.nuisance_scale
    intercept = 5.0 - TRUE_WEIGHTS @ np.full(len(QUALITIES), 0.5)
    # emotion = intercept + W_latent q = intercept' + (W_latent / span) (rating - lo)
    intercept_rating = intercept - weights @ np.full(len(QUALITIES), QUALITY_SCALE[0])
    var_q = (TRUE_WEIGHTS**2).sum(1) / 12.0  # latent ~ U(0, 1)
    var_n = (nuis**2).sum(1) / 3.0  # nuisance ~ U(-1, 1)
    var_e = config.emotion_noise**2
    total = var_q + var_n + var_e
    return {
        "emotions": list(EMOTIONS),
        "qualities": list(QUALITIES),
        "nuisances": list(NUISANCES),
        "weights": weights.tolist(),
        "intercept": intercept_rating.tolist(),
        "weights_per_unit_latent": TRUE_WEIGHTS.tolist(),
        "intercept_latent": intercept.tolist(),
        "nuisance_weights": nuis.tolist(),
        "nuisance_ranges": {k: list(v) for k, v in NUISANCE_RANGES.items()},
        "emotion_noise_sd": config.emotion_noise,
        "annotation_noise_sd": config.annotation_noise,
        "units": "emotion points (1..9) per quality point (1..10); nuisance in [-1, 1]",
        "ceiling_r_qualities": np.sqrt(var_q / total).tolist(),
        "ceiling_r_all": np.sqrt((var_q + var_n) / total).tolist(),
    }


def clip_ratings(config: SynthMusicConfig, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(quality ratings on 1..10, emotion ratings on 1..9) of clip ``index``."""
    qualities, nuisance = clip_latents(config, index)
    q = np.array([qualities[name] for name in QUALITIES])
    rng = _rng(config, index, _RATING)
    z_q, z_e = rng.standard_normal(len(QUALITIES)), rng.standard_normal(len(EMOTIONS))
    lo, hi = QUALITY_SCALE
    q_rating = np.clip(lo + (hi - lo) * q + config.annotation_noise * z_q, lo, hi)
    intercept = 5.0 - TRUE_WEIGHTS @ np.full(len(QUALITIES), 0.5)
    n = normalised_nuisance(nuisance)
    emotion = intercept + TRUE_WEIGHTS @ q + config.nuisance_scale * NUISANCE_WEIGHTS @ n
    emotion = np.clip(emotion + config.emotion_noise * z_e, *EMOTION_SCALE)
    return q_rating, emotion


# --------------------------------------------------------------------------- score


def _midi_hz(pitch: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(pitch) - 69.0) / 12.0)


class _Grid:
    """Onset times of 16th-note grid positions under tempo wobble and jitter.

    Per-beat durations vary by ``25 % * (1 - stability)`` s.d. (the tempo wobbles) and
    every part's onset at every grid position is displaced on its own by
    ``60 ms * (1 - stability)`` s.d. (clipped at 2.5 s.d.): an unsteady ensemble whose
    drums, bass, chords and melody no longer land together.
    """

    PARTS = ("drums", "bass", "chords", "melody")

    def __init__(self, tempo: float, n_beats: int, stability: float, rng: np.random.Generator):
        wobble = np.clip(rng.standard_normal(n_beats), -2.0, 2.0)
        jitter = np.clip(rng.standard_normal((len(self.PARTS), 4 * n_beats + 4)), -2.5, 2.5)
        instability = 1.0 - stability
        self.beat = 60.0 / tempo
        self.beat_dur = self.beat * (1.0 + 0.25 * instability * wobble)
        self.beat_start = _LEAD_IN_S + np.concatenate([[0.0], np.cumsum(self.beat_dur)[:-1]])
        self.jitter = 0.06 * instability * jitter
        self.n_positions = 4 * n_beats

    def time(self, p: int, part: str | None = None) -> float:
        """Onset of position ``p`` played by ``part`` (None: the undisplaced grid)."""
        if p >= self.n_positions:  # the end of the last beat
            return float(self.beat_start[-1] + self.beat_dur[-1])
        b, sub = divmod(p, 4)
        shift = 0.0 if part is None else self.jitter[self.PARTS.index(part), p]
        return float(max(0.0, self.beat_start[b] + sub * self.beat_dur[b] / 4 + shift))


def _articulation(a: float, ioi: float) -> tuple[float, float, float]:
    """(sounding duration, attack, release) of a note with inter-onset interval ``ioi``:
    legato (a=0) holds 105 % of the interval with soft attacks, staccato (a=1) 15 %."""
    return ioi * (1.05 - 0.9 * a), 0.003 + 0.03 * (1.0 - a), 0.02 + 0.08 * (1.0 - a)


# Per-beat onset patterns (16th offsets within the beat).
_PLAIN_MELODY = ((0,), (0, 2))
_SYNC_MELODY = ((1, 3), (0, 3), (2,), (0, 1, 3), (3,), (1, 2))
_SYNC_COMP = ((2,), (1, 3), (3,), (0, 3))
_SYNC_KICKS = (3, 6, 10, 11, 14)  # 16th positions in a bar
_GHOST_SNARES = (7, 15)


def compose(config: SynthMusicConfig, index: int, overrides: dict[str, float] | None = None):
    """The score of clip ``index`` (see the module docstring for what each quality does)."""
    lat = _latents(config, index, overrides)
    q, nuisance, key, instruments = lat.qualities, lat.nuisance, lat.key, lat.instruments
    m, a = q["melodiousness"], q["articulation"]
    stab, c = q["rhythm_stability"], q["rhythm_complexity"]
    d, t, mu = q["dissonance"], q["tonal_stability"], q["minorness"]
    rolloff = 2.4 - 1.6 * nuisance["brightness"]  # harmonic k has amplitude k**-rolloff

    tempo = nuisance["tempo"]
    n_beats = int(math.ceil((config.clip_seconds - _LEAD_IN_S) * tempo / 60.0)) + 1
    n_pos = 4 * n_beats
    grid = _Grid(tempo, n_beats, stab, _rng(config, index, _TIMING))
    minor_mode = mu >= 0.5
    scale = _MINOR if minor_mode else _MAJOR
    events: list[Event] = []

    # Harmony: one chord per two beats, drawn per slot.
    hr = _rng(config, index, _HARMONY)
    n_chords = (n_beats + 1) // 2
    u_minor, u_chrom, u_degree, u_pedal = hr.uniform(size=(4, n_chords))
    u_add = hr.uniform(size=(n_chords, len(_ADDED)))
    detune = hr.uniform(-1.0, 1.0, size=(n_chords, 3 + len(_ADDED)))
    outside = np.setdiff1d(np.arange(12), scale)
    chords = []  # (root pc re key, is minor, chromatic, midi notes, detunes, third index)
    n_minor = n_chromatic = n_added = 0
    for k in range(n_chords):
        chromatic = k > 0 and u_chrom[k] < 0.8 * (1.0 - t)
        is_minor = minor_mode if k == 0 else bool(u_minor[k] < mu)
        if chromatic:
            # Side-slip: the chord a semitone off the previous one, out of the key (a
            # hallmark of unstable tonality), the direction drawn when both leave it.
            prev = chords[-1][0]
            ways = [s for s in (1, -1) if (prev + s) % 12 in outside] or [1, -1]
            root = (prev + ways[int(u_degree[k] * len(ways))]) % 12
        elif k == 0:
            root = 0
        else:
            root = _DEGREES[(minor_mode, is_minor)][int(u_degree[k] * 3)]
        base = 57 + (key + root) % 12  # chord root A3..G#4: semitones resolved by the STFT
        triad = [base, base + (3 if is_minor else 4), base + 7]
        # Root position on purpose: the third sits 3 (minor) or 4 (major) semitones above
        # the lowest chord tone in every chord, one interval pattern per mode.
        voiced, third = triad, 1
        added = [base + iv for j, iv in enumerate(_ADDED) if u_add[k, j] < d]
        chords.append((root, is_minor, chromatic, voiced + added, third, len(voiced)))
        n_minor += is_minor
        n_chromatic += chromatic
        n_added += len(added)

    def chord_at(p: int):
        return chords[min(p // 8, n_chords - 1)]

    rr = _rng(config, index, _RHYTHM)
    u_sync_comp, u_comp_pat = rr.uniform(size=(2, n_beats))
    u_sync_mel, u_mel_pat = rr.uniform(size=(2, n_beats))
    u_kick = rr.uniform(size=n_pos)
    u_drop = rr.uniform(size=n_beats)
    u_pulse = rr.uniform(size=n_pos)
    n_sync = n_events_rhythm = 0

    # Chord comping: a hit per beat, or a syncopated pattern.
    comp: list[tuple[int, bool]] = []
    for b in range(n_beats):
        if u_sync_comp[b] < c:
            pattern, sync = _SYNC_COMP[int(u_comp_pat[b] * len(_SYNC_COMP))], True
        else:
            pattern, sync = (0,), False
        comp += [(4 * b + o, sync) for o in pattern]
    for i, (p, sync) in enumerate(comp):
        nxt = comp[i + 1][0] if i + 1 < len(comp) else p + 4
        dur, att, rel = _articulation(a, grid.time(nxt) - grid.time(p))
        _, is_minor, chromatic, notes, third, n_triad = chord_at(p)
        k = min(p // 8, n_chords - 1)
        for j, pitch in enumerate(notes):
            tags = _BIT["dissonance"] | _BIT["articulation"]
            tags |= _BIT["minorness"] if j == third else 0
            tags |= _BIT["tonal_stability"] if chromatic else 0
            tags |= _BIT["rhythm_complexity"] if sync else 0
            pitch_f = pitch + 0.35 * d * detune[k, j]  # up to 35 cents apart: beating
            events.append(
                Event(grid.time(p, "chords"), dur, pitch_f, 0.12, "chords", tags, att, rel)
            )
        n_sync += sync
        n_events_rhythm += 1

    # Pad: the harmony held softly through each chord, whatever the articulation, so the
    # voicing (mode, added tones) is always there to hear.
    for k, (_, _, chromatic, notes, third, _) in enumerate(chords):
        start, stop = grid.time(8 * k, "chords"), grid.time(8 * k + 8, "chords")
        for j, pitch in enumerate(notes):
            tags = _BIT["dissonance"] | (_BIT["minorness"] if j == third else 0)
            tags |= _BIT["tonal_stability"] if chromatic else 0
            pitch_f = pitch + 0.35 * d * detune[k, j]
            events.append(Event(start, stop - start, pitch_f, 0.05, "pad", tags, 0.06, 0.1))

    # Drone: the tonic and its fifth held through the clip, as loud as the tonality is
    # stable -- a pedal point anchors the key (absent at tonal_stability 0).
    if t > 0:
        end = config.clip_seconds
        for pitch in (57 + key % 12, 64 + key % 12):
            tag = _BIT["tonal_stability"]
            events.append(Event(0.0, end, float(pitch), 0.12 * t, "pad", tag, 0.2, 0.1))

    # Bass: on every chord's first and second beat (+ pushes if syncopated) the chord root,
    # or, in a stable tonality, a tonic pedal under the diatonic chords.
    for k, (root, _, chromatic, *_) in enumerate(chords):
        if not chromatic and u_pedal[k] < t:
            root = 0
        pushed = u_sync_comp[min(2 * k, n_beats - 1)] < c
        positions = [8 * k, 8 * k + 4] + ([8 * k + 3, 8 * k + 6] if pushed else [])
        for p in sorted(set(positions)):
            if p >= n_pos:
                continue
            sync = p % 4 != 0
            tags = _BIT["tonal_stability"] | (_BIT["rhythm_complexity"] if sync else 0)
            pitch = 40 + (key + root) % 12  # E2..D#3
            dur, att, rel = _articulation(a, grid.time(p + 2) - grid.time(p))
            onset = grid.time(p, "bass")
            events.append(Event(onset, max(dur, 0.08), pitch, 0.3, "bass", tags, att, rel))

    # Drums: kick on 1 and 3, snare on 2 and 4, closed hat on eighths; syncopation adds
    # off-beat kicks and ghost snares and drops the on-beat kick of beat 3. An unstable
    # rhythm has a weaker pulse (pulse clarity, Lartillot et al., ISMIR 2008): drums down
    # to -20 dB, and up to 60 % of the hats and 40 % of the on-beat kicks missing.
    pulse_gain = 10 ** (-20.0 * (1.0 - stab) / 20)
    for p in range(n_pos):
        bar_pos, beat = p % 16, p // 4
        hits = []
        pulse_kick = bar_pos == 0 or (bar_pos == 8 and u_drop[beat] >= 0.6 * c)
        if pulse_kick and u_pulse[p] >= 0.4 * (1.0 - stab):
            hits.append(("kick", 0.55, False))
        if bar_pos in _SYNC_KICKS and u_kick[p] < c:
            hits.append(("kick", 0.45, True))
        if bar_pos in (4, 12):
            hits.append(("snare", 0.35, False))
        if bar_pos in _GHOST_SNARES and u_kick[p] < c:
            hits.append(("snare", 0.15, True))
        if bar_pos % 2 == 0 and u_pulse[p] >= 0.6 * (1.0 - stab):
            hits.append(("hat", 0.10, False))
        for part, gain, sync in hits:
            tags = _BIT["rhythm_stability"] | (_BIT["rhythm_complexity"] if sync else 0)
            gain *= pulse_gain
            events.append(Event(grid.time(p, "drums"), 0.0, 0.0, gain, part, tags))
            n_sync += sync
            n_events_rhythm += 1

    # Melody: a scale-degree walk; stepwise when melodious, leaping when not.
    mr = _rng(config, index, _MELODY)
    u_rest, u_leap, u_dir, u_size, u_chr, u_chr_dir = mr.uniform(size=(6, n_pos))
    start_degree = int(mr.integers(0, 5))
    positions: list[tuple[int, bool]] = []
    for b in range(n_beats):
        if u_sync_mel[b] < c:
            pattern, sync = _SYNC_MELODY[int(u_mel_pat[b] * len(_SYNC_MELODY))], True
        else:
            pattern, sync = _PLAIN_MELODY[int(u_mel_pat[b] * len(_PLAIN_MELODY))], False
        positions += [(4 * b + o, sync) for o in pattern]
    # A melodious clip has a clear, prominent line; otherwise it is buried (-15 dB).
    melody_gain = 0.22 * 10 ** ((-15.0 + 15.0 * m) / 20)
    degree, direction = start_degree, 1
    intervals, n_leaps, n_notes, n_chromatic_notes = [], 0, 0, 0
    prev_pitch = None
    mode_degrees = {2, 5, 6}  # scale degrees 3, 6, 7: where major and minor differ
    for i, (p, sync) in enumerate(positions):
        if i > 0 and u_rest[p] < 0.5 * (1.0 - m):
            continue  # a rest: fragmented melody
        if i > 0:
            if u_leap[p] < 0.8 * (1.0 - m):
                step = 4 + int(u_size[p] * 5)  # a 5th to a 9th
                direction = 1 if u_dir[p] < 0.5 else -1
                n_leaps += 1
            else:
                step = 1 + (u_size[p] > 0.7)
                direction = direction if u_dir[p] < 0.7 else -direction
            degree += direction * step
            if degree > 9 or degree < -3:  # reflect off the range (about D4..B5)
                direction = -direction
                degree += 2 * direction * step
                degree = int(np.clip(degree, -3, 9))
        octave, deg = divmod(degree, 7)
        pitch = 72 + key + 12 * octave + int(scale[deg])  # tonic C5..B5, above the chords
        _, _, _, notes, third, n_triad = chord_at(p)
        if p % 4 == 0:  # on the beat the melody lands on a chord tone if one is near
            pcs = [n % 12 for n in notes[:n_triad]]
            near = [pitch + s for s in (0, -1, 1, -2, 2) if (pitch + s) % 12 in pcs]
            if near:
                pitch = near[0]
        tags = _BIT["melodiousness"] | _BIT["articulation"]
        tags |= _BIT["rhythm_complexity"] if sync else 0
        rel_pc = (pitch - key) % 12
        if rel_pc in scale[list(mode_degrees)] or (pitch % 12) == notes[third] % 12:
            tags |= _BIT["minorness"]
        if u_chr[p] < 0.6 * (1.0 - t):
            # A chromatic step: a semitone from the previous note (or from the scale
            # note for the first), out of the key -- chromatic lines, not just wrong notes.
            ref = prev_pitch if prev_pitch is not None else pitch
            ups = [s for s in (1, -1) if (ref + s - key) % 12 not in scale]
            if not ups:
                ref, ups = pitch, [s for s in (1, -1) if (rel_pc + s) % 12 not in scale]
            if ups:
                pitch = ref + (ups[0] if len(ups) == 1 else (1 if u_chr_dir[p] < 0.5 else -1))
                tags |= _BIT["tonal_stability"]
                tags &= ~_BIT["minorness"]
                n_chromatic_notes += 1
        nxt = positions[i + 1][0] if i + 1 < len(positions) else p + 4
        dur, att, rel = _articulation(a, grid.time(nxt) - grid.time(p))
        onset = grid.time(p, "melody")
        events.append(Event(onset, dur, float(pitch), melody_gain, "melody", tags, att, rel))
        if prev_pitch is not None:
            intervals.append(abs(pitch - prev_pitch))
        prev_pitch = pitch
        n_notes += 1
        n_sync += sync
        n_events_rhythm += 1

    onsets = np.array([grid.time(p, "drums") for p in range(0, n_pos, 4)])
    stats = {
        "tempo_bpm": tempo,
        "n_chords": n_chords,
        "minor_chord_fraction": n_minor / n_chords,
        "chromatic_chord_fraction": n_chromatic / n_chords,
        "added_tones_per_chord": n_added / n_chords,
        "melody_notes": n_notes,
        "melody_leap_fraction": n_leaps / max(1, n_notes - 1),
        "melody_mean_interval": float(np.mean(intervals)) if intervals else 0.0,
        "chromatic_note_fraction": n_chromatic_notes / max(1, n_notes),
        "syncopated_fraction": n_sync / max(1, n_events_rhythm),
        "beat_interval_cv": float(np.std(np.diff(onsets)) / np.mean(np.diff(onsets))),
        "duration_fraction": 1.05 - 0.9 * a,
    }
    if lat.transpose != 0.0:  # the whole score moves; every interval stays as composed
        drums = ("kick", "snare", "hat")
        events = [
            e if e.part in drums else replace(e, pitch=e.pitch + lat.transpose) for e in events
        ]
    return Score(
        index=index,
        qualities=q,
        nuisance=nuisance,
        key=key,
        minor_mode=minor_mode,
        instruments=instruments,
        rolloff=rolloff,
        events=events,
        stats=stats,
        transpose=lat.transpose,
    )


# --------------------------------------------------------------------------- rendering


def _wavetable(instrument: str, rolloff: float, n_harmonics: int) -> np.ndarray:
    k = np.arange(1, n_harmonics + 1)
    amp = k ** -(rolloff * (0.8 if instrument == "strings" else 1.0))
    if instrument == "clarinet":  # closed pipe: odd harmonics only
        amp = np.where(k % 2 == 1, amp, 0.0)
    phase = np.arange(_TABLE) / _TABLE
    table = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * phase)).sum(0)
    return table / np.max(np.abs(table))


# Drawbar organ: footages 16' 5 1/3' 8' 4' 2 2/3' 2' 1 3/5' 1 1/3' 1' sound these
# multiples of the played pitch; levels 0..8 (a drawbar step is about 3 dB), registration
# "60 8645 032".
_DRAWBAR_RATIOS = np.array([0.5, 1.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
_DRAWBAR_LEVELS = np.array([6, 0, 8, 6, 4, 5, 0, 3, 2])
_KS_LOSS = 0.998  # Karplus-Strong loss factor per period
_KS_PLUCK = 0.18  # pluck position, fraction of the string length from the bridge
_FM_RATIO, _FM_INDEX_DECAY_S, _FM_DECAY_S = 1.4, 0.35, 1.2  # Chowning's bell, c:m = 1:1.4


def _shifted_wave(instrument: str, f0: float, t: np.ndarray, rolloff: float, sr: int, tables: dict):
    """Unit-peak waveform of one of ``SHIFTED_INSTRUMENTS`` at ``f0`` Hz over times ``t``.

    Brightness (``rolloff`` 0.8 bright .. 2.4 dark) tilts each model's upper partials.
    """
    dark = rolloff - 0.8  # 0 .. 1.6
    nyquist = 0.45 * sr
    if instrument == "drawbar":  # additive: a wavetable at f0 / 2 (the 16' sub-octave)
        keep = _DRAWBAR_RATIOS * f0 < nyquist
        key = ("drawbar", rolloff, tuple(keep))
        if key not in tables:
            amp = np.where(_DRAWBAR_LEVELS > 0, 10 ** (-3.0 * (8 - _DRAWBAR_LEVELS) / 20), 0.0)
            amp = amp * _DRAWBAR_RATIOS ** (-0.5 * dark) * keep
            phase = np.arange(_TABLE) / _TABLE
            k = np.rint(2 * _DRAWBAR_RATIOS)[:, None]
            table = (amp[:, None] * np.sin(2 * np.pi * k * phase)).sum(0)
            tables[key] = table / np.max(np.abs(table))
        return tables[key][(0.5 * f0 * t * _TABLE).astype(np.int64) % _TABLE]
    if instrument == "ks_string":
        # Karplus-Strong in closed form: its loop (a two-point average and a loss factor)
        # scales harmonic k by LOSS * |cos(pi k f0 / sr)| per period, so high harmonics
        # and high notes die away fast; the pluck position combs the initial spectrum.
        k = np.arange(1, int(max(1, min(12, nyquist // f0))) + 1)
        amp = np.abs(np.sin(np.pi * k * _KS_PLUCK)) * k ** -(0.5 + 0.5 * dark)
        gain = _KS_LOSS * np.abs(np.cos(np.pi * k * f0 / sr))
        rate = -f0 * np.log(np.maximum(gain, 1e-6))  # 1 / s
        partials = np.exp(-rate[:, None] * t) * np.sin(2 * np.pi * f0 * k[:, None] * t)
        return (amp[:, None] * partials).sum(0) / amp.sum()
    # fm_bell: sin(2 pi f0 t + I(t) sin(2 pi 1.4 f0 t)), an inharmonic spectrum whose
    # modulation index decays faster than the tone (Chowning, JAES 1973); the index is
    # capped so that the sidebands stay below Nyquist.
    fm = _FM_RATIO * f0
    index = min(1.0 + 5.0 * (1.0 - dark / 1.6), max(0.0, (nyquist - f0) / fm - 1.0))
    mod = index * np.exp(-t / _FM_INDEX_DECAY_S) * np.sin(2 * np.pi * fm * t)
    return np.sin(2 * np.pi * f0 * t + mod) * np.exp(-t / _FM_DECAY_S)


def _note(ev: Event, instrument: str, rolloff: float, sr: int, tables: dict) -> np.ndarray:
    n = max(1, int(round((ev.duration + ev.release) * sr)))
    if instrument in SHIFTED_INSTRUMENTS:
        t = np.arange(n) / sr
        wave = _shifted_wave(instrument, float(_midi_hz(ev.pitch)), t, rolloff, sr, tables)
        env = np.minimum(1.0, t / ev.attack)
        after = t > ev.duration
        env[after] *= np.exp(-(t[after] - ev.duration) / (ev.release / 4))
        return ev.gain * wave * env
    t = np.arange(n) / sr
    f0 = float(_midi_hz(ev.pitch))
    n_harm = int(max(1, min(12, 0.45 * sr // f0)))
    key = (instrument, n_harm)
    if key not in tables:
        tables[key] = _wavetable(instrument, rolloff, n_harm)
    if instrument == "strings":  # 5.5 Hz vibrato, +-15 cents
        freq = f0 * 2.0 ** (0.15 / 12 * np.sin(2 * np.pi * 5.5 * t))
        cycles = np.cumsum(freq) / sr
    else:
        cycles = f0 * t
    wave = tables[key][(cycles * _TABLE).astype(np.int64) % _TABLE]
    attack = ev.attack + (0.02 if instrument == "strings" else 0.0)
    env = np.minimum(1.0, t / attack)
    if instrument in ("piano", "pluck"):  # struck / plucked: decays while held
        env = env * np.exp(-t / (0.7 if instrument == "piano" else 0.25))
    after = t > ev.duration
    env[after] *= np.exp(-(t[after] - ev.duration) / (ev.release / 4))
    return ev.gain * wave * env


def _drum(part: str, gain: float, sr: int, noise: np.ndarray) -> np.ndarray:
    if part == "kick":  # falling sine 110 -> 45 Hz
        t = np.arange(int(0.3 * sr)) / sr
        f = 45.0 + 65.0 * np.exp(-t / 0.03)
        return gain * np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    if part == "snare":  # noise burst plus a 190 Hz body
        t = np.arange(int(0.2 * sr)) / sr
        body = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.04)
        return gain * (noise[: t.size] * np.exp(-t / 0.07) + body)
    t = np.arange(int(0.06 * sr)) / sr  # closed hat: noise tilted up (+6 dB/octave)
    hp = np.diff(noise[: t.size + 1])
    return gain * hp * np.exp(-t / 0.02)


def render(score: Score, config: SynthMusicConfig) -> MusicClip:
    """Render ``score``: the mix at its loudness, and the evidence stem of each quality."""
    sr, n = config.sample_rate, config.num_samples
    mix = np.zeros(n)
    stems = np.zeros((len(QUALITIES), n))
    tables: dict = {}
    noise = _rng(config, score.index, _TIMBRE).standard_normal(int(0.25 * sr))
    noise /= np.max(np.abs(noise))
    for ev in score.events:
        start = int(round(ev.onset * sr))
        if start >= n:
            continue
        if ev.part in ("kick", "snare", "hat"):
            x = _drum(ev.part, ev.gain, sr, noise)
        else:
            instrument = score.instruments[0] if ev.part == "melody" else score.instruments[1]
            if ev.part == "bass":
                instrument = config.bass_instrument
            elif ev.part == "pad":
                instrument = config.pad_instrument
            x = _note(ev, instrument, score.rolloff, sr, tables)
        x = x[: n - start]
        mix[start : start + x.size] += x
        for j in range(len(QUALITIES)):
            if ev.tags >> j & 1:
                stems[j, start : start + x.size] += x
    if config.reverb_seconds > 0 and config.reverb_wet > 0:
        mix, stems = _room(config, score.index, np.vstack([mix, stems]))
    rms = math.sqrt(float(np.sum(mix * mix)) / n)
    gain = 10 ** (score.nuisance["loudness"] / 20) / max(rms, 1e-12)
    peak = float(np.max(np.abs(mix))) * gain
    if peak > 0.99:  # rare: a very peaky loud clip is turned down rather than clipped
        gain *= 0.99 / peak
    return MusicClip(score, sr, mix * gain, stems * gain)


def _room(config: SynthMusicConfig, index: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` (mix, then stems) in a synthetic room: the dry signal plus
    ``reverb_wet`` of its convolution with unit-energy exponentially decaying noise that
    falls 60 dB in ``reverb_seconds`` (the tail past the clip's end is cut). Linear, so
    the stems stay the parts of the mix they were."""
    sr, n = config.sample_rate, x.shape[1]
    t = np.arange(int(config.reverb_seconds * sr)) / sr
    ir = _rng(config, index, _ROOM).standard_normal(t.size) * 10 ** (
        -3.0 * t / config.reverb_seconds
    )
    ir /= np.sqrt(np.sum(ir * ir))
    size = 1 << int(np.ceil(np.log2(n + ir.size)))
    wet = np.fft.irfft(np.fft.rfft(x, size, axis=1) * np.fft.rfft(ir, size), size, axis=1)[:, :n]
    out = (1.0 - config.reverb_wet) * x + config.reverb_wet * wet
    return out[0], out[1:]


def synthesize_clip(
    config: SynthMusicConfig, index: int, overrides: dict[str, float] | None = None
) -> MusicClip:
    """Compose and render clip ``index``; ``overrides`` sets qualities (0..1) by name."""
    if not 0 <= index < config.num_clips:
        raise ValueError(f"clip index must be in [0, {config.num_clips}), got {index}")
    return render(compose(config, index, overrides), config)


# --------------------------------------------------------------------------- masks


def stft_magnitude(x: np.ndarray, n_fft: int = MASK_N_FFT, hop_length: int = MASK_HOP):
    """|STFT| (1 + n_fft // 2, 1 + len(x) // hop_length): centred, zero-padded, periodic
    Hann (``np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length, pad_mode="constant"))``)."""
    pad = n_fft // 2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), n_fft)[::hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(frames * window, axis=1)).T


def evidence_masks(clip: MusicClip, floor_db: float = MASK_FLOOR_DB) -> np.ndarray:
    """Bool (7, F, T): where each quality's evidence events dominate the clip.

    A bin is evidence of quality ``j`` when the stem of the events tagged ``j`` is within
    ``floor_db`` of that stem's own maximum and louder than the rest of the mix there.
    A quality whose stem is silent (no tagged events) has an empty mask.
    """
    out = []
    for stem in clip.stems:
        s = stft_magnitude(stem)
        if s.max() <= 0:
            out.append(np.zeros_like(s, dtype=bool))
            continue
        rest = stft_magnitude(clip.mix - stem)
        out.append((s >= s.max() * 10 ** (-floor_db / 20)) & (s > rest))
    return np.stack(out)


@dataclass(frozen=True)
class EvidenceMasks:
    """The per-quality evidence masks of one clip (``masks/<song_id>.npz``)."""

    evidence: np.ndarray  # bool (7, F, T)
    sample_rate: int
    n_fft: int
    hop_length: int

    def on_grid(self, freqs_hz: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """Sample the masks at another grid's band and frame centres (nearest bin).

        Returns bool (7, len(freqs_hz), len(times_s)); False outside the stored grid.
        """
        freqs = np.asarray(freqs_hz, dtype=float)
        times = np.asarray(times_s, dtype=float)
        fi = np.rint(freqs * self.n_fft / self.sample_rate).astype(int)
        ti = np.rint(times * self.sample_rate / self.hop_length).astype(int)
        n_f, n_t = self.evidence.shape[1:]
        ok_f = (fi >= 0) & (fi < n_f)
        ok_t = (ti >= 0) & (ti < n_t)
        out = self.evidence[:, np.clip(fi, 0, n_f - 1)][:, :, np.clip(ti, 0, n_t - 1)]
        return out & ok_f[None, :, None] & ok_t[None, None, :]


def save_evidence(path: Path, masks: np.ndarray, sample_rate: int) -> None:
    np.savez_compressed(
        path,
        evidence=np.packbits(masks, axis=-1),
        shape=np.array(masks.shape, dtype=np.int64),
        qualities=np.array(QUALITIES),
        sample_rate=np.int64(sample_rate),
        n_fft=np.int64(MASK_N_FFT),
        hop_length=np.int64(MASK_HOP),
    )


def load_evidence(path: str | Path) -> EvidenceMasks:
    """Read a ``masks/<song_id>.npz`` written by the generator.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or keys / quality names that do not match this version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evidence mask file not found: {path}")
    with np.load(path, allow_pickle=False) as z:
        missing = {"evidence", "shape", "qualities", "sample_rate", "n_fft", "hop_length"} - set(
            z.files
        )
        if missing:
            raise ValueError(f"{path}: missing keys {sorted(missing)}")
        if tuple(z["qualities"].tolist()) != QUALITIES:
            raise ValueError(f"{path}: qualities {z['qualities'].tolist()} != {list(QUALITIES)}")
        shape = tuple(int(s) for s in z["shape"])
        bits = np.unpackbits(z["evidence"], axis=-1, count=shape[-1]).astype(bool)
        return EvidenceMasks(bits, int(z["sample_rate"]), int(z["n_fft"]), int(z["hop_length"]))


# --------------------------------------------------------------------------- writing

_CLIP_COLUMNS = (
    "song_id",
    *(f"latent_{q}" for q in QUALITIES),
    *NUISANCES,
    "key",
    "minor_mode",
    "melody_instrument",
    "chord_instrument",
)


def _clip_columns(config: SynthMusicConfig) -> tuple[str, ...]:
    """Columns of ``meta/clips.csv`` before the score statistics (``transpose`` only when
    the option is on)."""
    return _CLIP_COLUMNS + (("transpose",) if config.transpose_ranges is not None else ())


def _write_clip(config: SynthMusicConfig, root: Path, index: int) -> dict:
    clip = synthesize_clip(config, index)
    sf.write(root / "audio" / f"{clip.song_id}.wav", clip.mix, clip.sample_rate, subtype="PCM_16")
    save_evidence(root / "masks" / f"{clip.song_id}.npz", evidence_masks(clip), clip.sample_rate)
    q_rating, e_rating = clip_ratings(config, index)
    s = clip.score
    return {
        "song_id": clip.song_id,
        "qualities": q_rating.tolist(),
        "emotions": e_rating.tolist(),
        "clip": [
            clip.song_id,
            *(round(s.qualities[q], 6) for q in QUALITIES),
            *(round(s.nuisance[n], 6) for n in NUISANCES),
            s.key,
            int(s.minor_mode),
            *s.instruments,
            *((round(s.transpose, 6),) if config.transpose_ranges is not None else ()),
        ],
        "stats": {k: round(float(v), 6) for k, v in s.stats.items()},
    }


def _write_range(args: tuple[SynthMusicConfig, str, int, int]) -> list[dict]:
    config, root, start, stop = args
    return [_write_clip(config, Path(root), i) for i in range(start, stop)]


def generate_music(config: SynthMusicConfig, root: Path, workers: int = 1) -> Path:
    """Write the dataset described by ``config`` into ``root`` (layout in the module doc).

    ``workers`` > 1 spreads clips over spawned processes (identical files for any value;
    the caller's main module must be guarded by ``if __name__ == "__main__"``).
    """
    root = Path(root)
    for sub in ("audio", "metadata_annotations", "soundtracks", "meta", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = write_ranges(_write_range, config, root, config.num_clips, workers)

    def fmt(values: list[float]) -> list[str]:
        return [f"{v:.4f}" for v in values]

    with open(root / ANNOTATIONS, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["song_id", *QUALITIES])
        w.writerows([r["song_id"], *fmt(r["qualities"])] for r in rows)
    with open(root / METADATA, "w", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow(["song id", "Artist", "Source", "Genre"])
        w.writerows(
            [r["song_id"], f"synth-{r['song_id']}", "synth_music", "synthetic"] for r in rows
        )
    with open(root / BUILTIN_RATINGS, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["Number", *EMOTIONS, "TARGET"])
        for r in rows:
            # TARGET: the strongest of the discrete emotions, as the set's intended emotion.
            discrete = dict(zip(EMOTIONS[3:], r["emotions"][3:], strict=True))
            w.writerow([r["song_id"], *fmt(r["emotions"]), max(discrete, key=discrete.get).upper()])
    stat_names = list(rows[0]["stats"])
    with open(root / "meta" / "clips.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*_clip_columns(config), *stat_names])
        w.writerows([*r["clip"], *(r["stats"][k] for k in stat_names)] for r in rows)
    describe = {
        "generator": "interp_models.data.synth_music",
        "version": GENERATOR_VERSION,
        "config": config_dict(config),
        "true_mapping": true_mapping(config),
        "quality_scale": list(QUALITY_SCALE),
        "emotion_scale": list(EMOTION_SCALE),
        "evidence": EVIDENCE,
        "mask": {
            "n_fft": MASK_N_FFT,
            "hop_length": MASK_HOP,
            "center": True,
            "window": "hann",
            "floor_db": MASK_FLOOR_DB,
        },
    }
    (root / "meta" / "generator.json").write_text(json.dumps(describe, indent=2) + "\n")
    return root


def read_generator(root: str | Path) -> dict | None:
    """``meta/generator.json`` of a built-in dataset, or None for a real dataset."""
    path = Path(root) / "meta" / "generator.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if info.get("generator") != "interp_models.data.synth_music":
        return None
    return info


def config_from_root(root: str | Path) -> SynthMusicConfig | None:
    """The config that generated ``root`` (for re-synthesis), or None for real data."""
    info = read_generator(root)
    return SynthMusicConfig(**info["config"]) if info else None


def cache_key(config: SynthMusicConfig) -> str:
    """Cache key of ``config`` under the current ``GENERATOR_VERSION`` (that of
    ``interp_models.cache.generator_key``, shift options at their defaults left out)."""
    return params_key({**config_dict(config), "generator_version": GENERATOR_VERSION})


def ensure_music(config: SynthMusicConfig, cache_dir: Path | None = None) -> Path:
    """The dataset root for ``config``, generated once into ``<cache>/synth_music/<key>``
    under a file lock and published atomically (``interp_models.cache.cached_dir``)."""
    return cached_dataset(
        "synth_music", cache_key(config), lambda tmp: generate_music(config, tmp), cache_dir
    )
