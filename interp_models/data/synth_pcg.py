"""Built-in phonocardiograms with exact ground truth, in the PhysioNet/CinC 2016 layout.

Each recording is a sequence of cardiac cycles at a per-recording heart rate with
respiratory sinus arrhythmia and beat-to-beat jitter. S1 (mitral + tricuspid components)
and S2 (aortic + pulmonary components, A2-P2 split 5-30 ms widening on inspiration) are
falling-frequency chirps under an asymmetric envelope, the shape used by synthetic PCG
models in the literature. The S1-onset-to-S2-onset interval follows the heart rate
(electromechanical systole, Weissler et al., Circulation 1968: QS2 = 546 - 2.1 HR ms,
less ~50 ms from Q to S1). Noise: coloured background at a drawn SNR, breathing
(band-limited noise under the respiratory cycle), stethoscope friction bursts, spikes
(Schmidt et al., Physiol. Meas. 2010, remove such spikes) and mains hum.

Optional shifts (``SynthPCGConfig`` fields, all off by default, so the default data stay
byte-for-byte what they were; ``configs/data/heart_synth_shifted.yaml`` turns them on):
faster and slower hearts (``heart_rate_bpm`` up to 200, ``min_diastole_s`` and
``fast_rate_shortening``: S1 and S2 shorten at fast rates), wide S2 splits
(``s2_split_s``, ``s2_split_resp_s``), physiological S3 and S4 sounds (``s3_fraction``,
``s4_fraction``: low-frequency sounds in early / late diastole that are *not* lesions:
they are neither events nor labels, and the states stay S1 / systole / S2 / diastole),
more stethoscope-friction bursts (``friction_per_s``), speech-like noise
(``speech_fraction``) and another stethoscope frequency response (``stethoscope``).
Their random draws come from a second stream, ``default_rng([seed, index, 1])``, so the
first stream draws exactly what it always did.

Abnormal recordings carry exactly one of four lesions, in every beat:

- ``ejection_murmur``: crescendo-decrescendo band-limited noise in mid systole;
- ``holosystolic_murmur``: flat band-limited noise filling systole;
- ``diastolic_murmur``: high-pitched decrescendo noise in early diastole;
- ``s3_gallop``: an extra low-frequency sound (S3) early in diastole.

Normal recordings may carry an innocent (Still's-like) murmur: a soft, short, musical
(harmonic 90-150 Hz) vibration in early systole.

On disk (read by ``interp_models.data.physionet2016.read_physionet2016``)::

    root/training-<x>/REFERENCE.csv           name,label  (-1 normal, 1 abnormal)
    root/training-<x>/<name>.wav              mono PCM_16 at ``sample_rate``
    root/training-<x>/<name>.tsv              start_s, end_s, state (CirCor segmentation)
    root/training-<x>/<name>.events.tsv       start_s, end_s, kind, state of each lesion
    root/generator.json                       config, version, lesion kinds

Recording ``i`` is synthesised from ``np.random.default_rng([seed, i])`` alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from interp_models.cache import cached_dataset, params_key
from interp_models.heart.states import DIASTOLE, S1, S2, SYSTOLE, AbnormalEvent

#: Bump whenever the synthesis changes (any byte of the output); part of the cache key.
GENERATOR_VERSION = 1

ABNORMAL_KINDS: tuple[str, ...] = (
    "ejection_murmur",
    "holosystolic_murmur",
    "diastolic_murmur",
    "s3_gallop",
)
#: State in which each lesion lies: where a faithful explanation should point.
KIND_STATE: dict[str, int] = {
    "ejection_murmur": SYSTOLE,
    "holosystolic_murmur": SYSTOLE,
    "diastolic_murmur": DIASTOLE,
    "s3_gallop": DIASTOLE,
}

_S1_S = (0.122, 0.012)  # S1 duration mean, s.d. (Springer et al. 2016: 122 +/- 22 ms)
_S2_S = (0.094, 0.010)  # S2 duration
_INNOCENT_LEVEL = (0.06, 0.2)  # RMS re S1: innocent murmurs are soft (grade 1-2/6)
_RAMP_S = 0.01
_FAST_RR_S = 0.6  # S1 and S2 shorten below this cycle length (``fast_rate_shortening``)
_PHYS_S3_GAIN = (0.15, 0.4)  # physiological S3 / S4 amplitude re S1 (lesion S3: 0.35-0.7)
_PHYS_S4_GAIN = (0.15, 0.4)
_FRICTION_LEVEL = (0.2, 1.0)  # RMS re S1 of the extra friction bursts
_SPEECH_LEVEL = (0.1, 0.35)  # RMS re S1 of speech-like noise while talking
STETHOSCOPES: tuple[str, ...] = ("flat", "bell", "diaphragm", "mixed")
#: Fields of the optional shifts, with the defaults that leave the data as they were.
SHIFT_DEFAULTS: dict[str, object] = {
    "min_diastole_s": 0.14,
    "fast_rate_shortening": 0.0,
    "s2_split_s": (0.005, 0.02),
    "s2_split_resp_s": (0.0, 0.012),
    "s3_fraction": 0.0,
    "s4_fraction": 0.0,
    "friction_per_s": 0.0,
    "speech_fraction": 0.0,
    "stethoscope": "flat",
}


@dataclass(frozen=True)
class SynthPCGConfig:
    """Parameters of the built-in PCG dataset (all of them enter the cache key).

    ``snr_db`` is the heart sounds' power over the background noise's, over the whole
    recording (before the stethoscope response). ``murmur_level`` is a murmur's RMS over
    its span relative to the RMS of S1 over its span (innocent murmurs: 0.06-0.2).

    Shifts (defaults: off, the data as before; see the module doc):

    - ``min_diastole_s``: shortest diastole a beat keeps (slower beats are stretched).
    - ``fast_rate_shortening``: S1 and S2 durations times ``(rr / 0.6 s) ** value`` for a
      mean cycle ``rr`` below 0.6 s (0.5: 25% shorter at 180 bpm).
    - ``s2_split_s``, ``s2_split_resp_s``: A2-P2 split at expiration, and its widening on
      inspiration (ranges drawn per recording).
    - ``s3_fraction``, ``s4_fraction``: share of recordings (not ``s3_gallop`` ones) with
      a physiological S3 (120-200 ms after S2 onset) / S4 (just before S1) in every beat
      that has room; not lesions (no events, label unchanged).
    - ``friction_per_s``: mean number of extra stethoscope-friction bursts per second.
    - ``speech_fraction``: share of recordings with speech-like noise (voiced, syllabic,
      in phrases, low-passed as the chest passes it).
    - ``stethoscope``: ``flat`` (as before), ``bell`` (low-frequency resonance, high
      frequencies rolled off), ``diaphragm`` (high-pass, mid-frequency resonance) or
      ``mixed`` (bell or diaphragm per recording); zero-phase, so timings stay exact.
    """

    num_recordings: int = 400
    seed: int = 0
    sample_rate: int = 2000
    duration_s: tuple[float, float] = (5.0, 30.0)
    abnormal_fraction: float = 0.5
    heart_rate_bpm: tuple[float, float] = (50.0, 115.0)
    snr_db: tuple[float, float] = (0.0, 20.0)
    murmur_level: tuple[float, float] = (0.3, 0.8)
    innocent_fraction: float = 0.3
    n_sets: int = 2
    min_diastole_s: float = 0.14
    fast_rate_shortening: float = 0.0
    s2_split_s: tuple[float, float] = (0.005, 0.02)
    s2_split_resp_s: tuple[float, float] = (0.0, 0.012)
    s3_fraction: float = 0.0
    s4_fraction: float = 0.0
    friction_per_s: float = 0.0
    speech_fraction: float = 0.0
    stethoscope: str = "flat"

    def __post_init__(self) -> None:
        for name in (
            "duration_s",
            "heart_rate_bpm",
            "snr_db",
            "murmur_level",
            "s2_split_s",
            "s2_split_resp_s",
        ):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} must be (low, high), got {(lo, hi)}")
            # equal configs must give equal cache keys (15 vs 15.0, list vs tuple)
            object.__setattr__(self, name, (float(lo), float(hi)))
        if self.num_recordings < 1:
            raise ValueError(f"num_recordings must be >= 1, got {self.num_recordings}")
        if self.sample_rate < 1000:  # murmurs reach 500 Hz
            raise ValueError(f"sample_rate must be >= 1000, got {self.sample_rate}")
        if self.duration_s[0] < 2.0:
            raise ValueError(f"duration_s must be >= 2 s (a few beats), got {self.duration_s}")
        if not 0.0 <= self.abnormal_fraction <= 1.0:
            raise ValueError(f"abnormal_fraction must be in [0, 1], got {self.abnormal_fraction}")
        if not 0.0 <= self.innocent_fraction <= 1.0:
            raise ValueError(f"innocent_fraction must be in [0, 1], got {self.innocent_fraction}")
        if not (30.0 <= self.heart_rate_bpm[0] and self.heart_rate_bpm[1] <= 200.0):
            raise ValueError(f"heart_rate_bpm must lie in [30, 200], got {self.heart_rate_bpm}")
        if not 1 <= self.n_sets <= 26:
            raise ValueError(f"n_sets must be in 1..26, got {self.n_sets}")
        for name in ("min_diastole_s", "fast_rate_shortening", "friction_per_s"):
            object.__setattr__(self, name, float(getattr(self, name)))
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.04 <= self.min_diastole_s <= 0.5:
            raise ValueError(f"min_diastole_s must be in [0.04, 0.5], got {self.min_diastole_s}")
        if self.s2_split_s[0] < 0 or self.s2_split_s[1] > 0.1 or self.s2_split_resp_s[0] < 0:
            raise ValueError(
                f"s2_split_s must lie in [0, 0.1] s and s2_split_resp_s be >= 0, got "
                f"{self.s2_split_s}, {self.s2_split_resp_s}"
            )
        for name in ("s3_fraction", "s4_fraction", "speech_fraction"):
            object.__setattr__(self, name, float(getattr(self, name)))
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.stethoscope not in STETHOSCOPES:
            raise ValueError(
                f"stethoscope must be one of {list(STETHOSCOPES)}, got {self.stethoscope!r}"
            )

    def shifted_fields(self) -> dict[str, object]:
        """The shift fields (module doc) whose values differ from the defaults."""
        return {k: getattr(self, k) for k, v in SHIFT_DEFAULTS.items() if getattr(self, k) != v}


@dataclass
class PCGRecording:
    """One synthesised recording, its parts kept apart (``mix == heart + noise``).

    Attributes
    ----------
    states : (n,) int8 state of every sample (1 S1, 2 systole, 3 S2, 4 diastole).
    events : every lesion occurrence (empty for normal recordings).
    kind : lesion kind, ``"normal"`` or ``"innocent"`` (normal with an innocent murmur).
    """

    index: int
    name: str
    set_name: str
    label: int
    kind: str
    sample_rate: int
    heart: np.ndarray
    noise: np.ndarray
    mix: np.ndarray
    states: np.ndarray
    events: list[AbnormalEvent]
    heart_rate_bpm: float
    params: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- signals


def _chirp_sound(
    n: int, sr: int, f_start: float, f_end: float, rng: np.random.Generator
) -> np.ndarray:
    """Falling-frequency chirp under a fast-rise, slow-decay envelope ``u (1 - u)^2``."""
    t = np.arange(n) / sr
    length = n / sr
    phase = 2 * np.pi * (f_start * t + (f_end - f_start) * t**2 / (2 * length))
    u = (np.arange(n) + 0.5) / n
    env = u * (1 - u) ** 2 / (4 / 27)  # peak 1 at u = 1/3
    return env * np.sin(phase + rng.uniform(0, 2 * np.pi))


def _band_noise(n: int, sr: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white noise brick-wall filtered to ``[lo, hi]`` Hz (DFT domain)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _coloured_noise(n: int, sr: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power ~ f**slope above 20 Hz, nothing below (stethoscopes
    do not pass DC)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= (np.maximum(f, 20.0) / 100.0) ** (slope / 2.0)
    spec[f < 10.0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _ramp_env(m: int, sr: int) -> np.ndarray:
    """Flat envelope with raised-cosine ramps of ``_RAMP_S`` at both ends."""
    r = max(1, min(int(_RAMP_S * sr), m // 2))
    env = np.ones(m)
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
    env[:r], env[m - r :] = up, up[::-1]
    return env


def _friction_burst(m: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS rubbing burst: broadband noise under a crackling (sparse, smoothed
    impulse) envelope and a Hann window, as a stethoscope head sliding on skin."""
    crackle = np.zeros(m)
    hits = rng.integers(0, m, size=max(1, int(m / sr * rng.uniform(30, 120))))
    crackle[hits] = rng.uniform(0.3, 1.0, size=hits.size)
    k = max(1, int(0.004 * sr))
    crackle = np.convolve(crackle, np.hanning(2 * k + 1), mode="same") + 0.2
    x = _band_noise(m, sr, rng.uniform(20, 60), rng.uniform(500, 0.45 * sr), rng)
    x *= crackle * np.hanning(m)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _speech_like(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like noise heard through the chest wall, unit RMS while talking.

    Phrases of 0.8-3 s separated by 0.3-2 s pauses; within a phrase, syllables at
    3-6 per second (raised-sine envelopes of random strength); a voiced source (f0
    90-220 Hz with slow intonation, harmonics falling 6 dB per octave) through one
    formant-like resonance, low-passed at 350-600 Hz (the chest passes little above).
    """
    t = np.arange(n) / sr
    f0_mean = rng.uniform(90, 220)
    drift = 1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6))
    f0 = f0_mean * drift
    phase = 2 * np.pi * np.cumsum(f0) / sr
    source = np.zeros(n)
    for k in range(1, int(0.45 * sr / (f0_mean * 0.85)) + 1):
        source += np.where(k * f0 < 0.45 * sr, 1.0 / k, 0.0) * np.sin(k * phase)
    spec = np.fft.rfft(source)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    formant, cutoff = rng.uniform(250, 500), rng.uniform(350, 600)
    spec *= 1 + 3 / (1 + ((f - formant) / 80.0) ** 2)
    spec /= np.sqrt(1 + (f / cutoff) ** 8)
    voiced = np.fft.irfft(spec, n)
    env = np.zeros(n)
    pos = rng.uniform(0.0, 1.0)
    while pos < n / sr:
        phrase = rng.uniform(0.8, 3.0)
        syl = pos
        while syl < min(pos + phrase, n / sr):
            d = 1.0 / rng.uniform(3.0, 6.0)
            a, z = int(syl * sr), min(n, int((syl + d) * sr))
            if z > a:
                env[a:z] += rng.uniform(0.3, 1.0) * np.sin(
                    np.pi * (np.arange(z - a) + 0.5) / (z - a)
                )
            syl += d
        pos += phrase + rng.uniform(0.3, 2.0)
    x = voiced * env
    talking = env > 0.05
    rms = np.sqrt(np.mean(x[talking] ** 2)) if talking.any() else 1.0
    return x / (rms + 1e-12)


def _stethoscope_gain(
    f: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Magnitude response (zero phase) of a ``bell`` or ``diaphragm`` chest piece at
    frequencies ``f``, with per-recording parameters (returned too)."""
    ff = np.maximum(f, 1e-3)

    def peak(fr: float, q: float, db: float) -> np.ndarray:
        g = 10 ** (db / 20)
        return 1 + (g - 1) / (1 + q**2 * (ff / fr - fr / ff) ** 2)

    def highpass(fc: float) -> np.ndarray:  # 2nd-order Butterworth magnitude
        return (ff / fc) ** 2 / np.sqrt(1 + (ff / fc) ** 4)

    def lowpass(fc: float, order: int) -> np.ndarray:
        return 1 / np.sqrt(1 + (ff / fc) ** (2 * order))

    if kind == "bell":  # low frequencies pass, a resonance low down, highs rolled off
        p = {"resonance_hz": rng.uniform(40, 90), "resonance_db": rng.uniform(4, 8)}
        p.update(highpass_hz=rng.uniform(12, 25), lowpass_hz=rng.uniform(150, 300))
        gain = peak(p["resonance_hz"], 1.0, p["resonance_db"]) * highpass(p["highpass_hz"])
        gain *= lowpass(p["lowpass_hz"], 1)
    else:  # diaphragm: low frequencies cut, a resonance in the middle
        p = {"resonance_hz": rng.uniform(150, 300), "resonance_db": rng.uniform(4, 10)}
        p.update(highpass_hz=rng.uniform(50, 100), lowpass_hz=rng.uniform(500, 800))
        gain = peak(p["resonance_hz"], 1.5, p["resonance_db"]) * highpass(p["highpass_hz"])
        gain *= lowpass(p["lowpass_hz"], 2)
    return gain, p


def _filter(x: np.ndarray, sr: int, gain_of: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``x`` through the zero-phase magnitude response ``gain_of`` on bins ``f``."""
    return np.fft.irfft(np.fft.rfft(x, f.size * 2 - 2) * gain_of, f.size * 2 - 2)[: x.size]


def _add(x: np.ndarray, start: int, piece: np.ndarray) -> None:
    """``x[start:start+len(piece)] += piece``, clipped to ``x``."""
    a, b = max(start, 0), min(start + piece.size, x.size)
    if b > a:
        x[a:b] += piece[a - start : b - start]


# --------------------------------------------------------------------------- labels


def recording_kind(config: SynthPCGConfig, index: int) -> str:
    """Lesion kind of recording ``index`` (or ``"normal"`` / ``"innocent"``).

    Abnormal recordings are spread evenly (``floor((i + 1) f) > floor(i f)``) and cycle
    through ``ABNORMAL_KINDS``, so every kind is equally frequent; innocent murmurs are
    spread the same way over the normal ones.
    """
    f = config.abnormal_fraction
    if np.floor((index + 1) * f + 1e-9) > np.floor(index * f + 1e-9):
        n_before = int(np.floor(index * f + 1e-9))
        return ABNORMAL_KINDS[n_before % len(ABNORMAL_KINDS)]
    n_normal_before = index - int(np.floor(index * f + 1e-9))
    g = config.innocent_fraction
    if np.floor((n_normal_before + 1) * g + 1e-9) > np.floor(n_normal_before * g + 1e-9):
        return "innocent"
    return "normal"


def recording_name(config: SynthPCGConfig, index: int) -> tuple[str, str]:
    """(set directory, record name): sets dealt round-robin, PhysioNet-style names."""
    letter = chr(ord("a") + index % config.n_sets)
    return f"training-{letter}", f"{letter}{index // config.n_sets + 1:04d}"


# --------------------------------------------------------------------------- synthesis


def synthesize_recording(config: SynthPCGConfig, index: int) -> PCGRecording:
    """Synthesise recording ``index`` from ``default_rng([seed, index])`` (see module)."""
    sr = config.sample_rate
    rng = np.random.default_rng([config.seed, index])
    xrng = np.random.default_rng([config.seed, index, 1])  # the shifts' draws only
    kind = recording_kind(config, index)
    set_name, name = recording_name(config, index)
    duration = rng.uniform(*config.duration_s)
    n = int(round(duration * sr))
    hr_hi = config.heart_rate_bpm[1]
    if kind == "s3_gallop":  # an S3 needs room in diastole
        hr_hi = min(hr_hi, max(config.heart_rate_bpm[0], 100.0))
    hr = rng.uniform(config.heart_rate_bpm[0], hr_hi)
    rr_mean = 60.0 / hr
    resp_hz, resp_phase = rng.uniform(0.18, 0.33), rng.uniform(0, 2 * np.pi)
    rsa = rng.uniform(0.01, 0.05)  # respiratory sinus arrhythmia depth
    sys_scale = rng.uniform(0.93, 1.07)
    d_s1 = float(np.clip(rng.normal(*_S1_S), 0.09, 0.16))
    d_s2c = float(np.clip(rng.normal(*_S2_S), 0.06, 0.12)) - 0.015  # one S2 component
    if config.fast_rate_shortening > 0 and rr_mean < _FAST_RR_S:
        shorten = (rr_mean / _FAST_RR_S) ** config.fast_rate_shortening
        d_s1, d_s2c = d_s1 * shorten, d_s2c * shorten
    split_base, split_resp = rng.uniform(*config.s2_split_s), rng.uniform(*config.s2_split_resp_s)
    t1_delay = rng.uniform(0.015, 0.03)  # tricuspid after mitral closure
    f_s1 = (rng.uniform(70, 130), rng.uniform(30, 50))
    f_s2 = (rng.uniform(100, 180), rng.uniform(50, 80))
    s2_gain = rng.uniform(0.5, 1.2)  # S2 louder than S1 at the base, softer at the apex
    p2_gain, t1_gain = rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.8)

    def resp(t: float) -> float:  # 0 expiration .. 1 peak inspiration
        return 0.5 + 0.5 * np.sin(2 * np.pi * resp_hz * t + resp_phase)

    # Beat onsets: start half-way into a cycle so the first cycle is cut, as in practice.
    beats: list[dict[str, float]] = []
    t = -rng.uniform(0.0, rr_mean)
    jitter = rng.uniform(0.01, 0.04)  # beat-to-beat variability beyond the RSA
    ectopic_p = rng.choice([0.0, rng.uniform(0.02, 0.08)])  # premature beats, some records
    pause = 0.0
    while t < duration:
        rr = rr_mean * (1 + rsa * (2 * resp(t) - 1) + rng.normal(0, jitter)) + pause
        pause = 0.0
        if rng.random() < ectopic_p:  # premature beat, then a compensatory pause
            early = rng.uniform(0.2, 0.35) * rr_mean
            rr, pause = rr - early, early
        sys_int = (0.496 - 0.0021 * 60.0 / rr) * sys_scale  # S1 onset -> S2 onset
        s1 = d_s1 * rng.uniform(0.95, 1.05)
        split = split_base + split_resp * resp(t)
        s2 = d_s2c + split
        # keep a diastole at fast rates: shorten systole before giving up diastole
        sys_int = min(sys_int, rr - s2 - config.min_diastole_s)
        sys_int = max(sys_int, s1 + 0.06)
        rr = max(rr, sys_int + s2 + config.min_diastole_s)
        beats.append({"on": t, "s1": s1, "s2on": t + sys_int, "s2": s2, "split": split, "rr": rr})
        t += rr

    states = np.zeros(n, dtype=np.int8)
    heart = np.zeros(n)
    s1_env_rms = []
    for b in beats:
        on, s2on = int(round(b["on"] * sr)), int(round(b["s2on"] * sr))
        s1_end, s2_end = on + int(round(b["s1"] * sr)), s2on + int(round(b["s2"] * sr))
        nxt = int(round((b["on"] + b["rr"]) * sr))
        for a, z, s in ((on, s1_end, S1), (s1_end, s2on, SYSTOLE), (s2on, s2_end, S2)):
            states[max(a, 0) : max(min(z, n), 0)] = s
        states[max(s2_end, 0) : max(min(nxt, n), 0)] = DIASTOLE
        amp = rng.uniform(0.8, 1.2)
        m1_len = s1_end - on - int(t1_delay * sr)
        m1 = _chirp_sound(m1_len, sr, *f_s1, rng)
        t1 = t1_gain * _chirp_sound(m1_len, sr, f_s1[0] * 1.1, f_s1[1] * 1.1, rng)
        _add(heart, on, amp * m1)
        _add(heart, on + int(t1_delay * sr), amp * t1)
        c_len = int(round(d_s2c * sr))
        a2 = _chirp_sound(c_len, sr, *f_s2, rng)
        p2 = p2_gain * _chirp_sound(c_len, sr, f_s2[0] * 0.9, f_s2[1] * 0.9, rng)
        _add(heart, s2on, amp * s2_gain * a2)
        _add(heart, s2on + int(round(b["split"] * sr)), amp * s2_gain * p2)
        s1_env_rms.append(np.sqrt(np.mean((amp * m1) ** 2)))
    s1_rms = float(np.mean(s1_env_rms))

    # Lesions (or the innocent murmur): one envelope over the recording times one noise.
    events: list[AbnormalEvent] = []
    env = np.zeros(n)
    level = rng.uniform(*config.murmur_level) * s1_rms
    params: dict[str, float] = {"heart_rate_bpm": hr, "snr_db": 0.0}
    if kind in ("ejection_murmur", "holosystolic_murmur", "diastolic_murmur", "innocent"):
        if kind == "ejection_murmur":
            band = (rng.uniform(60, 150), rng.uniform(250, 450))
        elif kind == "holosystolic_murmur":
            band = (rng.uniform(100, 200), rng.uniform(350, 600))
        elif kind == "diastolic_murmur":
            band = (rng.uniform(150, 250), rng.uniform(400, 600))
        else:
            band = (rng.uniform(90, 150), 0.0)  # f0 of the harmonic vibration
        peak_at = rng.uniform(0.3, 0.5)
        for b in beats:
            s1_end, s2on = b["on"] + b["s1"], b["s2on"]
            s2_end, nxt = s2on + b["s2"], b["on"] + b["rr"]
            if kind == "ejection_murmur":
                a, z = s1_end + rng.uniform(0.01, 0.03), s2on - rng.uniform(0.02, 0.05)
            elif kind == "holosystolic_murmur":
                a, z = s1_end, s2on
            elif kind == "diastolic_murmur":
                a = s2_end + rng.uniform(0.0, 0.02)
                z = a + rng.uniform(0.5, 0.8) * (nxt - a)
            else:  # innocent: short, early-to-mid systole
                a = s1_end + rng.uniform(0.02, 0.05)
                z = a + rng.uniform(0.35, 0.55) * (s2on - a)
            ia, iz = int(round(a * sr)), int(round(z * sr))
            if iz - ia < 4:
                continue
            u = (np.arange(iz - ia) + 0.5) / (iz - ia)
            if kind in ("ejection_murmur", "innocent"):  # crescendo-decrescendo
                shape = np.where(u < peak_at, u / peak_at, (1 - u) / (1 - peak_at))
            elif kind == "holosystolic_murmur":
                shape = np.ones_like(u)
            else:  # decrescendo
                shape = (1 - u) ** 1.5
            _add(env, ia, shape * _ramp_env(iz - ia, sr))
            if kind != "innocent" and iz > 0 and ia < n:
                state = KIND_STATE[kind]
                events.append(AbnormalEvent(max(a, 0.0), min(z, n / sr), kind, state))
        if kind == "innocent":
            f0, tt = band[0], np.arange(n) / sr
            carrier = np.sin(2 * np.pi * f0 * tt) + 0.5 * np.sin(4 * np.pi * f0 * tt + 1.0)
            carrier /= np.sqrt(np.mean(carrier**2))
            level = rng.uniform(*_INNOCENT_LEVEL) * s1_rms
            heart += level * env * carrier
        else:
            heart += level * env * _band_noise(n, sr, *band, rng)
        params.update(band_low_hz=band[0], band_high_hz=band[1], level=level / s1_rms)
    elif kind == "s3_gallop":
        f3 = (rng.uniform(40, 60), rng.uniform(20, 35))
        gain = rng.uniform(0.35, 0.7)
        for b in beats:
            s2_end, nxt = b["s2on"] + b["s2"], b["on"] + b["rr"]
            a = s2_end + rng.uniform(0.03, 0.10)
            z = min(a + rng.uniform(0.04, 0.07), nxt - 0.03)
            ia, iz = int(round(a * sr)), int(round(z * sr))
            if iz - ia < 4:
                continue
            _add(heart, ia, gain * rng.uniform(0.85, 1.15) * _chirp_sound(iz - ia, sr, *f3, rng))
            if iz > 0 and ia < n:
                events.append(AbnormalEvent(max(a, 0.0), min(z, n / sr), kind, DIASTOLE))
        params.update(s3_gain=gain)

    # Physiological S3 / S4 (shifts; not lesions: no events, the label stays).
    extra = []
    if kind != "s3_gallop" and config.s3_fraction > 0 and xrng.random() < config.s3_fraction:
        extra.append("s3")
    if config.s4_fraction > 0 and xrng.random() < config.s4_fraction:
        extra.append("s4")
    for sound in extra:
        lo, hi = _PHYS_S3_GAIN if sound == "s3" else _PHYS_S4_GAIN
        gain = xrng.uniform(lo, hi)  # re the S1 chirp's peak, as the lesion's S3
        freqs = (xrng.uniform(35, 55), xrng.uniform(20, 30))
        for b in beats:
            s2_end, nxt = b["s2on"] + b["s2"], b["on"] + b["rr"]
            length = xrng.uniform(0.04, 0.06)
            if sound == "s3":
                a = max(b["s2on"] + xrng.uniform(0.12, 0.2), s2_end + 0.02)
            else:
                a = nxt - xrng.uniform(0.02, 0.05) - length
            if a < s2_end + 0.02 or a + length > nxt - 0.015:
                continue  # no room in this diastole (fast beats)
            ia = int(round(a * sr))
            m = int(round(length * sr))
            _add(heart, ia, gain * xrng.uniform(0.85, 1.15) * _chirp_sound(m, sr, *freqs, xrng))
        params[f"physiological_{sound}"] = 1.0

    # Noise: background at the drawn SNR, then artefacts relative to the heart sounds.
    snr = rng.uniform(*config.snr_db)
    heart_rms = np.sqrt(np.mean(heart**2))
    noise = _coloured_noise(n, sr, rng.uniform(-2.0, -0.5), rng) * heart_rms / 10 ** (snr / 20)
    tt = np.arange(n) / sr
    if rng.random() < 0.7:  # breathing: louder on inspiration
        breath_env = np.clip(np.sin(2 * np.pi * resp_hz * tt + resp_phase), 0, None) ** 2
        lo = rng.uniform(100, 200)
        noise += rng.uniform(0.03, 0.15) * s1_rms * breath_env * _band_noise(n, sr, lo, 600, rng)
    if rng.random() < 0.5:  # stethoscope friction / movement: broadband rubbing bursts
        for _ in range(int(rng.integers(1, 5))):
            m = int(rng.uniform(0.05, 1.0) * sr)
            start = int(rng.integers(0, max(1, n - m)))
            burst = _band_noise(m, sr, rng.uniform(30, 100), sr / 2 * 0.9, rng) * np.hanning(m)
            _add(noise, start, rng.uniform(0.2, 1.2) * s1_rms * burst)
    if rng.random() < 0.4:  # spikes: short, large, decaying clicks
        for _ in range(int(rng.integers(1, 4))):
            m = max(4, int(rng.uniform(0.001, 0.004) * sr))
            spike = np.exp(-np.arange(m) / (m / 3)) * rng.choice([-1.0, 1.0])
            _add(noise, int(rng.integers(0, n - m)), rng.uniform(1.5, 4.0) * s1_rms * 3 * spike)
    if rng.random() < 0.3:  # mains hum
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        hum = sum(
            (1.0 if k % 2 else 0.3) * np.sin(2 * np.pi * f0 * k * tt + rng.uniform(0, 6))
            for k in range(1, 6)
        )
        noise += rng.uniform(0.02, 0.1) * s1_rms * hum
    if config.friction_per_s > 0:  # shifts: more rubbing of the chest piece
        for _ in range(int(xrng.poisson(config.friction_per_s * duration))):
            m = int(xrng.uniform(0.05, 0.4) * sr)
            if m >= n:
                continue
            level = xrng.uniform(*_FRICTION_LEVEL) * s1_rms
            _add(noise, int(xrng.integers(0, n - m)), level * _friction_burst(m, sr, xrng))
    if config.speech_fraction > 0 and xrng.random() < config.speech_fraction:
        noise += xrng.uniform(*_SPEECH_LEVEL) * s1_rms * _speech_like(n, sr, xrng)
        params["speech"] = 1.0
    stethoscope = config.stethoscope
    if stethoscope == "mixed":
        stethoscope = "bell" if xrng.random() < 0.5 else "diaphragm"
    if stethoscope != "flat":
        f = np.fft.rfftfreq(2 * n, 1.0 / sr)
        gain, p = _stethoscope_gain(f, stethoscope, xrng)
        heart, noise = _filter(heart, sr, gain, f), _filter(noise, sr, gain, f)
        params.update({f"stethoscope_{k}": v for k, v in p.items()})
        params["stethoscope_diaphragm"] = float(stethoscope == "diaphragm")
    params["snr_db"] = snr

    scale = rng.uniform(0.3, 0.9) / np.max(np.abs(heart + noise))
    heart, noise = heart * scale, noise * scale
    return PCGRecording(
        index=index,
        name=name,
        set_name=set_name,
        label=1 if kind in KIND_STATE else -1,
        kind=kind,
        sample_rate=sr,
        heart=heart,
        noise=noise,
        mix=heart + noise,
        states=states,
        events=events,
        heart_rate_bpm=hr,
        params=params,
    )


# --------------------------------------------------------------------------- writing


def _spans(states: np.ndarray, sr: int) -> list[tuple[float, float, int]]:
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [states.size]])
    return [(a / sr, z / sr, int(states[a])) for a, z in zip(starts, ends, strict=True)]


def write_recording(rec: PCGRecording, root: Path) -> None:
    """Write ``rec``'s wav, segmentation ``.tsv`` and lesion ``.events.tsv`` under ``root``."""
    folder = Path(root) / rec.set_name
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{rec.name}.wav", rec.mix, rec.sample_rate, subtype="PCM_16")
    # 6 decimals: sample-exact at any rate up to 1 MHz
    rows = [f"{a:.6f}\t{z:.6f}\t{s}" for a, z, s in _spans(rec.states, rec.sample_rate)]
    (folder / f"{rec.name}.tsv").write_text("\n".join(rows) + "\n")
    ev = [f"{e.start_s:.6f}\t{e.end_s:.6f}\t{e.kind}\t{e.state}" for e in rec.events]
    (folder / f"{rec.name}.events.tsv").write_text("".join(r + "\n" for r in ev))


def _config_fields(config: SynthPCGConfig) -> dict:
    """``asdict(config)`` less the shift fields left at their defaults: the data of such
    a config are those of earlier versions, and so are its cache key and description."""
    return {
        k: v
        for k, v in asdict(config).items()
        if k not in SHIFT_DEFAULTS or k in config.shifted_fields()
    }


def _describe(config: SynthPCGConfig) -> dict:
    return {
        "generator": "interp_models.data.synth_pcg",
        "version": GENERATOR_VERSION,
        "config": _config_fields(config),
        "abnormal_kinds": {k: {"state": KIND_STATE[k]} for k in ABNORMAL_KINDS},
        "states": {"1": "S1", "2": "systole", "3": "S2", "4": "diastole"},
    }


def generate_pcg(config: SynthPCGConfig, root: Path) -> Path:
    """Write the dataset described by ``config`` into ``root`` (layout in the module doc)."""
    root = Path(root)
    labels: dict[str, list[tuple[str, int]]] = {}
    for i in range(config.num_recordings):
        rec = synthesize_recording(config, i)
        write_recording(rec, root)
        labels.setdefault(rec.set_name, []).append((rec.name, rec.label))
    for set_name, rows in labels.items():
        lines = [f"{name},{label}" for name, label in sorted(rows)]
        (root / set_name / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    (root / "generator.json").write_text(json.dumps(_describe(config), indent=2) + "\n")
    return root


def cache_key(config: SynthPCGConfig) -> str:
    """Cache key of ``config`` under the current ``GENERATOR_VERSION`` (shift fields at
    their defaults left out, so the default data keep their key)."""
    return params_key({**_config_fields(config), "generator_version": GENERATOR_VERSION})


def ensure_pcg(config: SynthPCGConfig, cache_dir: Path | None = None) -> Path:
    """Dataset root for ``config``, generated once into ``<cache>/synth_pcg/<key>``."""
    return cached_dataset(
        "synth_pcg", cache_key(config), lambda tmp: generate_pcg(config, tmp), cache_dir
    )
