"""Probe music with labelled binary quality factors, written independently of synth_music.

What it is for: an independent test of *quality selectivity*. A music-emotion model whose
seven mid-level quality units were trained on ``interp_models.data.synth_music`` should, if
each unit has learnt its musical property, respond to that property on music the training
generator did not write. This module is that music. It is genuinely different from
``synth_music``: its own composer and renderer, other instruments (a Karplus-Strong plucked
string, an additive drawbar organ, a Chowning FM bell and a band-limited sawtooth through a
low-pass, the "analog pad"), no drums or percussion of any kind, any of 12 tonics with up to
+-50 cents of detune, tempi of 60-170 bpm, random part levels and a Schroeder room
(parallel combs and allpasses plus discrete early reflections) instead of a noise tail.

Each clip is a melody over comped chords and a bass line. Its seven binary factors carry
the names (and order) of ``QUALITIES``; 1 means more of that quality:

=================== ====================================== ===================================
factor              0                                      1
=================== ====================================== ===================================
melodiousness       leaps of 4-7 scale steps (a fifth to   stepwise (mostly 1-2 scale steps),
                    an octave), rests, the melody 10 dB    continuous, prominent melody
                    lower in the mix
articulation        legato: notes fill 95-100% of their    staccato: notes sound 15-30% of
                    inter-onset interval, soft attacks     their interval, sharp attacks
rhythm_stability    +-6-10% sinusoidal tempo drift, each   steady tempo, every onset on the
                    part's onsets jittered by 20-60 ms     16th-note grid
rhythm_complexity   on-beat quarter and half notes only    syncopated: onsets on off-beat
                                                           16ths, notes tied across beats
dissonance          plain triads                           triads plus minor-second (b9),
                                                           tritone or major-7th tones and a
                                                           doubled voice detuned 10-25 cents
tonal_stability     chromatic melody (most notes out of    diatonic melody from and to the
                    key), chords side-slipping by          tonic; I-IV-V progression from and
                    semitones out of the key, a wandering  to the tonic chord; bass on the
                    chromatic bass                         chord roots
minorness           major key, major chords                minor key, minor chords
=================== ====================================== ===================================

Factors are balanced: for each factor ``f`` a random permutation (``default_rng([seed,
1000 + f])``) of a half-zeros, half-ones vector assigns the values to the clips, so every
column sums to ``num_clips // 2`` and the factors are drawn independently of each other.

Determinism contract: every random decision of clip ``i`` comes from
``numpy.random.default_rng([seed, i, stream])``, one stream per aspect (key and tempo,
instruments, mix, room, melody, harmony, rhythm, timing, articulation, dynamics, timbre,
excitation). Each stream draws all its values, for both values of every factor, at a fixed
size set by the tempo alone, and the factors only choose among them. So
``render_probe(config, i, overrides={"articulation": 0})`` re-renders clip ``i`` with only
that factor changed: the instruments, key, tempo, mix, room and the other factors'
realisation stay as they were (a melody's pitches follow its sounding notes in order, so
factors that add or remove notes -- rhythm_complexity, melodiousness -- re-flow it).
A clip's factor values come from the set-wide permutations, so they depend on
``num_clips``; its score and audio given those values do not.

Audio: mono float32 at ``sample_rate``, scaled to a random RMS of -28..-16 dBFS and then,
where that would put the peak above 0.98, down to a 0.98 peak.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from interp_models.cache import cached_dataset, generator_key
from interp_models.data.midlevel import QUALITIES

#: Bump whenever the output changes (any byte); part of the cache key.
PROBE_VERSION = 1
INSTRUMENTS = ("ks_string", "drawbar", "fm_bell", "saw_pad")
PARTS = ("melody", "chords", "bass")

TEMPO_RANGE = (60.0, 170.0)  # bpm
MAX_DETUNE_CENTS = 50.0
LEVEL_RANGE_DB = 6.0  # each part's level is drawn within +-this
LOUDNESS_RANGE = (-28.0, -16.0)  # dBFS RMS
RT60_RANGE = (0.2, 1.2)  # s
WET_RANGE = (0.1, 0.4)
BURIED_MELODY_DB = -10.0  # melody level change at melodiousness = 0

_STREAMS = (
    "key",
    "instruments",
    "mix",
    "room",
    "melody",
    "harmony",
    "rhythm",
    "timing",
    "articulation",
    "dynamics",
    "timbre",
    "excitation",
)
_FACTOR_STREAM = 1000  # factor f's permutation: default_rng([seed, 1000 + f])
_CELL = 8  # sixteenths per chord (two beats of 4/4)
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)  # natural minor: i, iv, v are all minor
# Onset patterns in sixteenths within one two-beat cell, per part (melody, chords, bass).
_PLAIN = (((0, 4), (0, 4), (0,)), ((0,), (0, 4)), ((0, 4), (0,), (0, 4)))
_SYNCO = (
    ((0, 3, 6), (3, 6), (2, 5), (0, 3, 5), (1, 3, 6), (2, 6), (0, 2, 5, 7), (3, 5, 7)),
    ((2, 6), (0, 3, 6), (3, 6), (3, 5), (1, 6)),
    ((0, 3, 6), (0, 6), (3, 6), (0, 3), (2, 6), (0, 3, 5)),
)
_CHROMATIC_STARTS = (1, 3, 4, 6, 8, 9, 10, 11)  # first chord root of an unstable clip
_CLUSTER = (13, 6, 11)  # b9, tritone, major 7th above the chord root
_LAST_ONSET_GAP = 0.05  # s: no note starts later than this before the clip's end
_REGISTER = {"melody": 60, "chords": 48, "bass": 36}
_RELEASE = {"ks_string": 0.06, "drawbar": 0.04, "fm_bell": 0.15, "saw_pad": 0.2}
_PART_GAIN = {"melody": 0.9, "chords": 0.55, "bass": 0.8}


@dataclass(frozen=True)
class ProbeConfig:
    """Parameters of a probe set (all of them enter the cache key).

    num_clips : clips in the set (factors are exactly balanced when even).
    seed : root of every random stream.
    sample_rate : Hz.
    clip_seconds : length of each clip.
    """

    num_clips: int = 96
    seed: int = 0
    sample_rate: int = 22050
    clip_seconds: float = 4.0

    def __post_init__(self) -> None:
        for name in ("num_clips", "seed", "sample_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if isinstance(self.clip_seconds, bool) or not isinstance(
            self.clip_seconds, int | float | np.floating
        ):
            raise ValueError(f"clip_seconds must be a number, got {self.clip_seconds!r}")
        object.__setattr__(self, "clip_seconds", float(self.clip_seconds))
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {self.num_clips}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.sample_rate < 16000:
            raise ValueError(f"sample_rate must be >= 16000, got {self.sample_rate}")
        if not 1.0 <= self.clip_seconds <= 30.0:
            raise ValueError(f"clip_seconds must be in [1, 30], got {self.clip_seconds}")

    @property
    def num_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))


@dataclass(frozen=True)
class Note:
    """One note of a probe score.

    onset_s, duration_s : when it starts and how long it is held (the release follows).
    pitch_midi : MIDI pitch, fractional (the clip's detune and any detuned doubling in).
    velocity : amplitude factor in (0, 1].
    part : ``"melody"``, ``"chords"`` or ``"bass"``.
    instrument : one of ``INSTRUMENTS``.
    attack_s, release_s : envelope ramps (short for staccato, long for legato).
    """

    onset_s: float
    duration_s: float
    pitch_midi: float
    velocity: float
    part: str
    instrument: str
    attack_s: float = 0.005
    release_s: float = 0.03


@dataclass(frozen=True)
class ProbeSetting:
    """The nuisance of clip ``i``: what no factor changes.

    tonic : pitch class of the key (0 = C); detune_cents : shift of every pitch.
    tempo_bpm : quarter notes per minute. instruments : melody, chords, bass.
    levels_db : random level of melody, chords, bass. loudness_dbfs : final RMS.
    rt60_s, wet : the room's decay time and share of the mix.
    """

    tonic: int
    detune_cents: float
    tempo_bpm: float
    instruments: tuple[str, str, str]
    levels_db: tuple[float, float, float]
    loudness_dbfs: float
    rt60_s: float
    wet: float

    @property
    def beat_s(self) -> float:
        """Seconds per beat (quarter note)."""
        return 60.0 / self.tempo_bpm


def _rng(config: ProbeConfig, index: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, index, _STREAMS.index(stream) + 1])


def _check_index(config: ProbeConfig, index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"index must be an integer, got {index!r}")
    if not 0 <= index < config.num_clips:
        raise ValueError(f"index {index} out of range for num_clips={config.num_clips}")
    return int(index)


def probe_factors(config: ProbeConfig) -> np.ndarray:
    """Binary factors of every clip, ``(num_clips, 7)`` int8 in ``QUALITIES`` order."""
    cols = []
    for f in range(len(QUALITIES)):
        half = np.zeros(config.num_clips, dtype=np.int8)
        half[: config.num_clips // 2] = 1
        cols.append(np.random.default_rng([config.seed, _FACTOR_STREAM + f]).permutation(half))
    return np.stack(cols, axis=1)


def _factors(
    config: ProbeConfig, index: int, overrides: Mapping[str, int] | None
) -> dict[str, int]:
    index = _check_index(config, index)
    values = dict(zip(QUALITIES, probe_factors(config)[index].tolist(), strict=True))
    for key, value in (overrides or {}).items():
        if key not in QUALITIES:
            raise ValueError(f"override {key!r} is not a factor; expected one of {QUALITIES}")
        if value not in (0, 1):
            raise ValueError(f"override {key!r} must be 0 or 1, got {value!r}")
        values[key] = int(value)
    return values


def probe_setting(config: ProbeConfig, index: int) -> ProbeSetting:
    """The key, tempo, instruments, mix and room of clip ``index`` (no factor changes them)."""
    index = _check_index(config, index)
    key = _rng(config, index, "key")
    tonic = int(key.integers(12))
    detune = float(key.uniform(-MAX_DETUNE_CENTS, MAX_DETUNE_CENTS))
    tempo = float(key.uniform(*TEMPO_RANGE))
    picks = _rng(config, index, "instruments").integers(len(INSTRUMENTS), size=3)
    mix = _rng(config, index, "mix")
    levels = mix.uniform(-LEVEL_RANGE_DB, LEVEL_RANGE_DB, size=3)
    loudness = float(mix.uniform(*LOUDNESS_RANGE))
    room = _room_params(_rng(config, index, "room"))
    return ProbeSetting(
        tonic=tonic,
        detune_cents=detune,
        tempo_bpm=tempo,
        instruments=tuple(INSTRUMENTS[k] for k in picks),
        levels_db=tuple(float(x) for x in levels),
        loudness_dbfs=loudness,
        rt60_s=room["rt60"],
        wet=room["wet"],
    )


# --------------------------------------------------------------------------- composing


@dataclass(frozen=True)
class _Clock:
    """Grid position (in sixteenths) -> seconds, steady or drifting and jittered."""

    beat_s: float
    steady: bool
    depth: float
    period_beats: float
    phase: float
    jitter: np.ndarray  # (3, n_pos + 1) seconds per part and grid position

    def nominal(self, pos: int) -> float:
        beats = pos / 4.0
        if not self.steady:
            w = 2.0 * math.pi / self.period_beats
            beats += self.depth / w * (math.cos(self.phase) - math.cos(w * beats + self.phase))
        return beats * self.beat_s

    def onset(self, part: int, pos: int) -> float:
        if self.steady:
            return pos * self.beat_s / 4.0
        return max(0.0, float(self.nominal(pos) + self.jitter[part, pos]))


def _n_cells(setting: ProbeSetting, config: ProbeConfig) -> int:
    return max(2, int((config.clip_seconds - 0.3) // (2.0 * setting.beat_s)) + 1)


def _clock(config: ProbeConfig, index: int, beat_s: float, n_pos: int, steady: bool) -> _Clock:
    rng = _rng(config, index, "timing")
    depth, period, phase = rng.uniform(0.06, 0.10), rng.uniform(3.0, 8.0), rng.uniform(0, 6.28)
    jitter = rng.uniform(0.02, 0.06, size=(3, n_pos + 1)) * rng.choice([-1, 1], (3, n_pos + 1))
    return _Clock(beat_s, steady, float(depth), float(period), float(phase), jitter)


def _slots(config: ProbeConfig, index: int, n_cells: int, complex_: bool) -> list[np.ndarray]:
    """Per part the grid positions of its onsets (a pattern per cell, drawn for both)."""
    rng = _rng(config, index, "rhythm")
    plain = rng.random((3, n_cells))
    synco = rng.random((3, n_cells))
    out = []
    for p in range(3):
        table, u = (_SYNCO[p], synco[p]) if complex_ else (_PLAIN[p], plain[p])
        pos = [c * _CELL + o for c in range(n_cells) for o in table[int(u[c] * len(table))]]
        out.append(np.array(pos, dtype=int))
    return out


def _scale_semis(degree: int, scale: tuple[int, ...]) -> int:
    return 12 * (degree // 7) + scale[degree % 7]


def _walk(steps: np.ndarray, lo: int, hi: int) -> list[int]:
    """Degrees from 0 taking ``steps`` in turn, a step leaving ``[lo, hi]`` reflected."""
    out = [0]
    for s in steps:
        nxt = out[-1] + int(s)
        out.append(nxt if lo <= nxt <= hi else out[-1] - int(s))
    return out


def _chromatic(
    semis: list[int], scale: tuple[int, ...], mask: np.ndarray, signs: np.ndarray
) -> list[int]:
    """Move the masked notes a semitone out of the key (``signs`` breaks ties)."""
    out = list(semis)
    for j, s in enumerate(semis):
        if not mask[j] or s % 12 not in scale:
            continue
        options = [s + d for d in (int(signs[j]), -int(signs[j])) if (s + d) % 12 not in scale]
        out[j] = options[0]
    return out


def _melody_pitches(draws: dict, n: int, factors: dict[str, int]) -> list[int]:
    """Semitones above the tonic of ``n`` sounding melody notes."""
    scale = _MINOR if factors["minorness"] else _MAJOR
    if factors["melodiousness"]:
        degrees = _walk(draws["steps"][: n - 1], -3, 9)
    else:
        degrees = _walk(draws["leaps"][: n - 1], -5, 12)
    if factors["tonal_stability"]:
        # End on a tonic: the one nearest the note before (a step or two) in a smooth
        # melody, the one nearest where the leap would have gone otherwise.
        near = degrees[-2] if factors["melodiousness"] and n > 1 else degrees[-1]
        degrees[-1] = 7 * round(near / 7)
        return [_scale_semis(d, scale) for d in degrees]
    mask = draws["chroma"][:n].copy()
    mask[0] = mask[-1] = True  # neither start nor end on the tonic
    semis = [_scale_semis(d, scale) for d in degrees]
    return _chromatic(semis, scale, mask, draws["signs"])


def _melody_draws(config: ProbeConfig, index: int, n_pos: int) -> dict:
    rng = _rng(config, index, "melody")
    steps = rng.choice([-2, -1, 0, 1, 2], size=n_pos, p=[0.15, 0.3, 0.1, 0.3, 0.15])
    leaps = rng.integers(4, 8, size=n_pos) * rng.choice([-1, 1], size=n_pos)
    return {
        "steps": steps,
        "leaps": leaps,
        "rest": rng.random(n_pos) < 0.35,
        "chroma": rng.random(n_pos) < 0.6,
        "signs": rng.choice([-1, 1], size=n_pos),
    }


def _harmony_draws(config: ProbeConfig, index: int, n_cells: int, n_pos: int) -> dict:
    rng = _rng(config, index, "harmony")
    return {
        "middle": rng.random(n_cells),
        "cadence": rng.random(),
        "start": _CHROMATIC_STARTS[int(rng.integers(len(_CHROMATIC_STARTS)))],
        "slips": rng.choice([-1, 1], size=n_cells),
        "inversion": rng.random(n_cells) < 0.35,
        "cluster": rng.permuted(np.tile(np.arange(3), (n_cells, 1)), axis=1),
        "n_cluster": rng.integers(1, 3, size=n_cells),
        "double": rng.integers(3, size=n_cells),
        "cents": rng.uniform(10, 25, size=n_cells) * rng.choice([-1, 1], size=n_cells),
        "bass_start": int(rng.integers(12)),
        "bass_steps": rng.choice([-2, -1, 1, 2], size=n_pos),
        "bass_octave": rng.random(n_pos) < 0.2,
    }


def _roots(draws: dict, n_cells: int, stable: bool) -> list[int]:
    """Chord roots in semitones above the tonic, one per cell."""
    if stable:  # I (IV|V|I)* (V|IV) I
        roots = [0]
        for k in range(1, n_cells - 1):
            options = [r for r in (5, 7, 0) if r != roots[-1]]
            roots.append(options[int(draws["middle"][k] * len(options))])
        if n_cells >= 3:
            roots[-1] = 7 if draws["cadence"] < 0.7 else 5
        return roots + [0]
    roots = [draws["start"]]
    for k in range(1, n_cells):
        roots.append(roots[-1] + int(draws["slips"][k]))
    if roots[-1] % 12 == 0 and n_cells > 1:
        roots[-1] = roots[-2] - int(draws["slips"][-1])
    return [r % 12 for r in roots]


def _sounding_roots(
    draws: dict, positions: np.ndarray, clock: _Clock, n_cells: int, stable: bool, cfg: ProbeConfig
) -> list[int]:
    """Roots per cell, the progression ending on the last cell whose chord sounds."""
    heard = [p for p in positions if clock.onset(1, p) < cfg.clip_seconds - _LAST_ONSET_GAP]
    n_heard = max(2, heard[-1] // _CELL + 1)
    roots = _roots(draws, n_heard, stable)
    return roots + roots[-1:] * (n_cells - n_heard)


def _chord(root_pc: int, cell: int, draws: dict, factors: dict[str, int]) -> list[float]:
    """Pitches (semitones, MIDI) of the chord of ``cell``."""
    root = _REGISTER["chords"] + root_pc
    third = 3 if factors["minorness"] else 4
    tones = [third, 7, 12] if draws["inversion"][cell] else [0, third, 7]
    pitches = [float(root + t) for t in tones]
    if factors["dissonance"]:
        picks = draws["cluster"][cell][: draws["n_cluster"][cell]]
        pitches += [float(root + _CLUSTER[k]) for k in picks]
        pitches.append(pitches[int(draws["double"][cell])] + draws["cents"][cell] / 100.0)
    return pitches


def _bass_pitches(
    positions: np.ndarray, roots: list[int], tonic: int, draws: dict, stable: bool
) -> list[float]:
    """Bass pitches (MIDI): the chord roots, or a chromatic walk ignoring them."""
    if stable:
        return [
            float(
                _REGISTER["bass"] + (tonic + roots[p // _CELL]) % 12 + 12 * draws["bass_octave"][p]
            )
            for p in positions
        ]
    out = [_REGISTER["bass"] + draws["bass_start"]]
    for s in draws["bass_steps"][: len(positions) - 1]:
        nxt = out[-1] + int(s)
        out.append(nxt if 31 <= nxt <= 52 else out[-1] - int(s))
    return [float(x) for x in out]


def _articulate(config: ProbeConfig, index: int, n_pos: int, staccato: bool) -> dict:
    """Per part and grid position: held fraction of the interval, attack, release, velocity."""
    art = _rng(config, index, "articulation")
    shape = (3, n_pos + 1)
    stac = (art.uniform(0.15, 0.30, shape), art.uniform(0.002, 0.005, shape))
    leg = (art.uniform(0.95, 1.0, shape), art.uniform(0.03, 0.08, shape))
    release = (art.uniform(0.01, 0.03, shape), art.uniform(0.5, 1.0, shape))
    vel = _rng(config, index, "dynamics").random(shape)
    frac, attack = stac if staccato else leg
    return {
        "frac": frac,
        "attack": attack,
        "release": release[0 if staccato else 1],  # staccato: seconds; legato: x instrument's
        "staccato": staccato,
        "vel": vel,
    }


def _part_notes(
    part: int,
    positions: np.ndarray,
    nexts: np.ndarray,
    pitches: list[list[float]],
    clock: _Clock,
    art: dict,
    setting: ProbeSetting,
    cfg: ProbeConfig,
) -> list[Note]:
    """Notes of one part: ``pitches[j]`` is a list of pitches sounding at ``positions[j]``."""
    name, instrument = PARTS[part], setting.instruments[part]
    vel_lo, vel_hi = {"melody": (0.75, 1.0), "chords": (0.6, 0.8), "bass": (0.75, 0.95)}[name]
    notes = []
    for pos, nxt, chord in zip(positions, nexts, pitches, strict=True):
        onset = clock.onset(part, pos)
        if onset >= cfg.clip_seconds - _LAST_ONSET_GAP:
            continue
        ioi = clock.nominal(nxt) - clock.nominal(pos)
        release = art["release"][part, pos] * (1.0 if art["staccato"] else _RELEASE[instrument])
        for pitch in chord:
            notes.append(
                Note(
                    onset_s=onset,
                    duration_s=float(art["frac"][part, pos] * ioi),
                    pitch_midi=float(pitch + setting.detune_cents / 100.0),
                    velocity=float(vel_lo + (vel_hi - vel_lo) * art["vel"][part, pos]),
                    part=name,
                    instrument=instrument,
                    attack_s=float(art["attack"][part, pos]),
                    release_s=float(release),
                )
            )
    return notes


def _nexts(positions: np.ndarray, end: int) -> np.ndarray:
    return np.append(positions[1:], end)


def _melody_slots(
    positions: np.ndarray,
    end: int,
    draws: dict,
    clock: _Clock,
    factors: dict[str, int],
    cfg: ProbeConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Sounding melody positions and their next-slot positions (rests keep their time)."""
    nexts = _nexts(positions, end)
    keep = np.array([clock.onset(0, p) < cfg.clip_seconds - _LAST_ONSET_GAP for p in positions])
    if not factors["melodiousness"]:
        rest = draws["rest"][positions].copy()
        rest[0] = False
        keep &= ~rest
    return positions[keep], nexts[keep]


def compose_probe(
    config: ProbeConfig, index: int, overrides: Mapping[str, int] | None = None
) -> list[Note]:
    """The score of clip ``index`` (factor values from ``probe_factors`` unless overridden).

    Returns
    -------
    Notes sorted by onset, then part (melody, chords, bass), then pitch.
    """
    factors = _factors(config, index, overrides)
    setting = probe_setting(config, index)
    n_cells = _n_cells(setting, config)
    n_pos = n_cells * _CELL
    clock = _clock(config, index, setting.beat_s, n_pos, bool(factors["rhythm_stability"]))
    slots = _slots(config, index, n_cells, bool(factors["rhythm_complexity"]))
    art = _articulate(config, index, n_pos, bool(factors["articulation"]))
    mel, harm = _melody_draws(config, index, n_pos), _harmony_draws(config, index, n_cells, n_pos)
    stable = bool(factors["tonal_stability"])
    roots = _sounding_roots(harm, slots[1], clock, n_cells, stable, config)

    m_pos, m_next = _melody_slots(slots[0], n_pos, mel, clock, factors, config)
    base = _REGISTER["melody"] + setting.tonic - (12 if setting.tonic > 6 else 0)
    m_pitch = [[base + s] for s in _melody_pitches(mel, len(m_pos), factors)]
    c_pos = slots[1]
    c_pitch = [
        _chord((setting.tonic + roots[p // _CELL]) % 12, p // _CELL, harm, factors) for p in c_pos
    ]
    b_pos = slots[2]
    b_pitch = [[x] for x in _bass_pitches(b_pos, roots, setting.tonic, harm, stable)]

    args = (clock, art, setting, config)
    notes = _part_notes(0, m_pos, m_next, m_pitch, *args)
    notes += _part_notes(1, c_pos, _nexts(c_pos, n_pos), c_pitch, *args)
    notes += _part_notes(2, b_pos, _nexts(b_pos, n_pos), b_pitch, *args)
    return sorted(notes, key=lambda n: (n.onset_s, PARTS.index(n.part), n.pitch_midi))


# --------------------------------------------------------------------------- instruments


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _timbres(config: ProbeConfig, index: int) -> list[dict]:
    """Per part the parameters of every instrument (all drawn, one used)."""
    rng = _rng(config, index, "timbre")
    out = []
    for _ in PARTS:
        bars = rng.integers(0, 9, size=9)
        bars[2] = max(bars[2], 6)  # the 8' fundamental always speaks
        out.append(
            {
                "ks_t60": rng.uniform(0.8, 3.0),
                "ks_bright": rng.uniform(0.25, 0.9),
                "drawbars": bars,
                "fm_ratio": float(rng.choice([1.0, 1.4, 2.0, 3.5])),
                "fm_index": rng.uniform(1.5, 5.0),
                "fm_index_tau": rng.uniform(0.15, 0.8),
                "fm_tau": rng.uniform(0.6, 2.5),
                "saw_cutoff": rng.uniform(700.0, 3000.0),
                "saw_cents": rng.uniform(4.0, 12.0),
            }
        )
    return out


def _ks_string(f0: float, n: int, sr: int, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong: a noise burst circulating in a delay line with a two-point average.

    The loop (``N`` + 1/2 samples) is tuned to the nearest period at or below ``sr / f0``;
    reading the result back slightly slower sets the exact pitch.
    """
    period = sr / f0
    delay = max(2, int(period - 0.5))
    ratio = (delay + 0.5) / period  # <= 1
    m = int(math.ceil(n * ratio)) + 2
    gain = 10.0 ** (-3.0 * (delay + 0.5) / (sr * p["ks_t60"] * math.sqrt(220.0 / f0)))
    b = p["ks_bright"]
    burst = signal.lfilter([b], [1.0, b - 1.0], rng.uniform(-1.0, 1.0, delay))
    burst *= 0.5 / (np.std(burst) + 1e-9)
    y = _ks_loop(burst, max(m, delay), 0.5 * gain)
    return np.interp(np.arange(n) * ratio, np.arange(len(y)), y)


def _ks_loop(burst: np.ndarray, m: int, g: float) -> np.ndarray:
    """``m`` samples of ``y[n] = burst[n] + g * (y[n - N] + y[n - N - 1])``, ``N = len(burst)``.

    Short delays run as one IIR filter; long ones a period at a time (each period depends
    only on the one before).
    """
    delay = len(burst)
    if delay <= 48:
        x = np.zeros(m)
        x[:delay] = burst
        a = np.zeros(delay + 2)
        a[0], a[delay], a[delay + 1] = 1.0, -g, -g
        return signal.lfilter([1.0], a, x)
    buf = np.zeros(m + 1)  # buf[0] is the silence before the pluck
    buf[1 : delay + 1] = burst
    q = delay + 1
    while q < len(buf):
        e = min(q + delay, len(buf))
        buf[q:e] = g * (buf[q - delay : e - delay] + buf[q - delay - 1 : e - delay - 1])
        q = e
    return buf[1:]


_FOOTAGES = (1, 3, 2, 4, 6, 8, 10, 12, 16)  # harmonics of f0 / 2: 16', 5 1/3', 8', ... 1'


def _drawbar(f0: float, n: int, sr: int, p: dict) -> np.ndarray:
    """Additive organ: nine sine partials at drawbar footages, 3 dB per drawbar step."""
    size = 1024
    phase = np.arange(size) / size
    table = np.zeros(size + 1)
    for h, bar in zip(_FOOTAGES, p["drawbars"], strict=True):
        if bar > 0 and h * f0 / 2.0 < 0.45 * sr:
            table[:size] += 10.0 ** (-3.0 * (8 - bar) / 20.0) * np.sin(2 * np.pi * h * phase)
    table[size] = table[0]
    table /= np.abs(table).max() + 1e-9
    cycles = np.arange(n) * (f0 / 2.0 / sr)
    idx = (cycles - np.floor(cycles)) * size
    return 0.7 * np.interp(idx, np.arange(size + 1), table)


def _fm_bell(f0: float, n: int, sr: int, p: dict) -> np.ndarray:
    """Chowning FM: a sine carrier phase-modulated with a decaying index."""
    t = np.arange(n) / sr
    fm = p["fm_ratio"] * f0
    peak = min(p["fm_index"], max(0.0, (0.45 * sr - f0) / fm - 1.0))
    index = peak * np.exp(-t / p["fm_index_tau"])
    amp = np.exp(-t / (p["fm_tau"] * math.sqrt(440.0 / max(f0, 55.0))))
    modulator = index * np.sin(_turns(fm * t))
    return amp * np.sin(_turns(f0 * t) + modulator.astype(np.float32))


def _turns(cycles: np.ndarray) -> np.ndarray:
    """Phase in radians (float32, for fast sines) of ``cycles``, whole turns removed."""
    return (2.0 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)


def _saw(f: float, n: int, sr: int, phase0: float) -> np.ndarray:
    """Sawtooth band-limited by polyBLEP corrections at each wrap."""
    dt = f / sr
    ph = phase0 + dt * np.arange(n)
    ph -= np.floor(ph)
    out = 2.0 * ph - 1.0
    lo = ph < dt
    x = ph[lo] / dt
    out[lo] -= 2.0 * x - x * x - 1.0
    hi = ph > 1.0 - dt
    x = (ph[hi] - 1.0) / dt
    out[hi] -= x * x + 2.0 * x + 1.0
    return out


def _saw_pad(f0: float, n: int, sr: int, p: dict) -> np.ndarray:
    """Two detuned band-limited saws through a second-order Butterworth low-pass."""
    spread = 2.0 ** (p["saw_cents"] / 1200.0)
    x = _saw(f0 * spread, n, sr, 0.0) + _saw(f0 / spread, n, sr, 0.37)
    cutoff = min(max(p["saw_cutoff"], 2.0 * f0), 0.45 * sr)
    return 0.4 * signal.sosfilt(_lowpass(float(cutoff), sr), x)


@functools.lru_cache(maxsize=256)
def _lowpass(cutoff: float, sr: int) -> np.ndarray:
    return signal.butter(2, cutoff, btype="low", fs=sr, output="sos")


def _envelope(n_on: int, n: int, n_attack: int) -> np.ndarray:
    env = np.ones(n)
    a = min(n_attack, n_on, n)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if n > n_on:
        env[n_on:] = (1.0 - np.arange(n - n_on) / (n - n_on)) ** 2
    return env


def _voice(note: Note, n: int, sr: int, p: dict, rng: np.random.Generator) -> np.ndarray:
    f0 = _hz(note.pitch_midi)
    if note.instrument == "ks_string":
        return _ks_string(f0, n, sr, p, rng)
    if note.instrument == "drawbar":
        return _drawbar(f0, n, sr, p)
    if note.instrument == "fm_bell":
        return _fm_bell(f0, n, sr, p)
    return _saw_pad(f0, n, sr, p)


# --------------------------------------------------------------------------- room and mix


def _room_params(rng: np.random.Generator) -> dict:
    return {
        "rt60": float(rng.uniform(*RT60_RANGE)),
        "wet": float(rng.uniform(*WET_RANGE)),
        "scale": float(rng.uniform(0.85, 1.2)),
        "taps": rng.uniform(0.005, 0.035, size=4),
        "tap_gains": rng.uniform(0.15, 0.45, size=4),
    }


def _delay_filter(x: np.ndarray, delay: int, b: list[float], a: list[float]) -> np.ndarray:
    """``lfilter(b, a)`` in powers of ``z**-delay``: a comb or Schroeder allpass."""
    rows = -(-len(x) // delay)
    padded = np.zeros(rows * delay)
    padded[: len(x)] = x
    y = signal.lfilter(b, a, padded.reshape(rows, delay), axis=0)
    return y.reshape(-1)[: len(x)]


def _schroeder(x: np.ndarray, sr: int, room: dict) -> np.ndarray:
    """Early reflections plus four parallel feedback combs into two series allpasses
    (Schroeder, 1962)."""
    early = np.zeros_like(x)
    for tap, g in zip(room["taps"], room["tap_gains"], strict=True):
        d = int(tap * sr)
        early[d:] += g * x[: len(x) - d]
    tail = np.zeros_like(x)
    for ms in (29.7, 37.1, 41.1, 43.7):
        d = int(ms * room["scale"] * sr / 1000.0)
        g = 10.0 ** (-3.0 * d / (sr * room["rt60"]))
        tail += _delay_filter(x, d, [1.0], [1.0, -g])
    for ms in (5.0, 1.7):
        tail = _delay_filter(tail, int(ms * sr / 1000.0), [-0.7, 1.0], [1.0, -0.7])
    return early + tail / 4.0


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) + 1e-12


def _mix_room_level(
    parts: dict, gains: dict, room: dict, setting: ProbeSetting, sr: int
) -> np.ndarray:
    """Mix the parts, add the room, set the loudness, keep the peak below 0.98."""
    dry = sum(gains[k] * parts[k] for k in PARTS)
    wet = _schroeder(dry, sr, room)
    out = (1.0 - setting.wet) * dry + setting.wet * wet * (_rms(dry) / _rms(wet))
    out *= 10.0 ** (setting.loudness_dbfs / 20.0) / _rms(out)
    peak = float(np.abs(out).max())
    if peak > 0.98:
        out *= 0.98 / peak
    return out.astype(np.float32)


def render_probe(
    config: ProbeConfig, index: int, overrides: Mapping[str, int] | None = None
) -> np.ndarray:
    """Audio of clip ``index``: ``(num_samples,)`` float32, peak <= 0.98.

    ``overrides`` (factor name -> 0/1) re-renders the same clip with those factors changed.
    """
    factors = _factors(config, index, overrides)
    notes = compose_probe(config, index, factors)
    setting = probe_setting(config, index)
    parts = _render_parts(config, index, notes)
    gains = {k: _PART_GAIN[k] * 10.0 ** (setting.levels_db[j] / 20.0) for j, k in enumerate(PARTS)}
    if not factors["melodiousness"]:
        gains["melody"] *= 10.0 ** (BURIED_MELODY_DB / 20.0)
    voices = max(1, sum(n.part == "chords" for n in notes) // max(1, _chord_hits(notes)))
    gains["chords"] /= math.sqrt(voices)
    room = _room_params(_rng(config, index, "room"))
    return _mix_room_level(parts, gains, room, setting, config.sample_rate)


def _render_parts(config: ProbeConfig, index: int, notes: list[Note]) -> dict[str, np.ndarray]:
    """Each part's dry signal: every note's voice under its envelope, at its velocity."""
    sr, total = config.sample_rate, config.num_samples
    timbres = _timbres(config, index)
    parts = {k: np.zeros(total) for k in PARTS}
    for k, note in enumerate(notes):
        start = int(round(note.onset_s * sr))
        n_on = max(1, int(round(note.duration_s * sr)))
        n = min(n_on + int(round(note.release_s * sr)), total - start)
        if n <= 0:
            continue
        excite = np.random.default_rng([config.seed, index, len(_STREAMS), k + 1])
        wave = _voice(note, n, sr, timbres[PARTS.index(note.part)], excite)
        envelope = _envelope(n_on, n, int(round(note.attack_s * sr)))
        parts[note.part][start : start + n] += note.velocity * wave * envelope
    return parts


def _chord_hits(notes: list[Note]) -> int:
    return len({n.onset_s for n in notes if n.part == "chords"})


# --------------------------------------------------------------------------- the set


def probe_set(config: ProbeConfig, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every clip and its factors, built once into ``<cache>/synth_probe/<key>``.

    Returns
    -------
    waves : ``(num_clips, num_samples)`` float32.
    factors : ``(num_clips, 7)`` int8 in ``QUALITIES`` order.
    """

    def build(tmp: Path) -> None:
        waves = np.stack([render_probe(config, i) for i in range(config.num_clips)])
        np.save(tmp / "waves.npy", waves, allow_pickle=False)
        np.save(tmp / "factors.npy", probe_factors(config), allow_pickle=False)

    root = cached_dataset("synth_probe", generator_key(config, PROBE_VERSION), build, cache_dir)
    waves = np.load(root / "waves.npy", allow_pickle=False)
    return waves, np.load(root / "factors.npy", allow_pickle=False)


def probe_contrasts(config: ProbeConfig, n_clips: int, cache_dir: Path | None = None) -> np.ndarray:
    """Clips ``0..n_clips-1`` re-rendered with each factor 0 and then 1, built once into
    ``<cache>/synth_probe_contrasts/<key>``: ``(n_clips, 7, 2, num_samples)`` float32 in
    ``QUALITIES`` order (the one-factor contrasts of the selectivity measure)."""
    if not 1 <= n_clips <= config.num_clips:
        raise ValueError(f"n_clips must be in [1, {config.num_clips}], got {n_clips}")

    def build(tmp: Path) -> None:
        waves = [
            [[render_probe(config, i, {q: v}) for v in (0, 1)] for q in QUALITIES]
            for i in range(n_clips)
        ]
        np.save(tmp / "waves.npy", np.asarray(waves, dtype=np.float32), allow_pickle=False)

    key = generator_key(config, PROBE_VERSION) + f"-{n_clips}"
    root = cached_dataset("synth_probe_contrasts", key, build, cache_dir)
    return np.load(root / "waves.npy", allow_pickle=False)
