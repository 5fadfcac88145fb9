"""Built-in sound-event dataset with exact time-frequency ground truth, in ESC-50's layout.

Every clip holds one *class event* (a distinct time-frequency pattern: harmonic stack,
chirp, noise band, click train, ...) over a background (coloured noise by default) and
0..k *distractor* events drawn from a vocabulary disjoint from the classes (whooshes,
knocks, mains hum, babble).  The class event is scaled to a drawn SNR against everything
else, so some clips are hard.  The parts are kept apart until the final sum, which makes
the ground-truth mask exact.

Optional conditions, all off by default (the defaults reproduce version 1's clips byte for
byte and draw nothing more): weaker events of *other classes* (``max_class_distractors``),
free to overlap the class event; room reverberation of the events and distractors
(``reverb_prob``); slow gain ramps over the clip (``level_change_db``); other background
kinds (``backgrounds``).  The class event, reverberated, stays the ground truth.

On disk (what ``read_esc50`` reads; Piczak, "ESC: Dataset for Environmental Sound
Classification", ACM MM 2015)::

    root/audio/<fold>-<clipid>-A-<target>.wav   mono PCM_16
    root/meta/esc50.csv                          filename,fold,target,category,esc10,src_file,take
    root/meta/generator.json                     config, GENERATOR_VERSION, class list
    root/masks/<stem>.npz                        ground truth, see ``event_masks``

Clip ``i`` is synthesised from ``np.random.default_rng([seed, i])`` alone, so the output
is byte-identical for a given config whatever order or process makes the clips.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from interp_models.cache import cached_dataset, params_key
from interp_models.data.parallel import write_ranges

#: Bump whenever the synthesis changes (any byte of the output); part of the cache key.
GENERATOR_VERSION = 1

#: STFT of the stored masks: ``librosa.stft(y, n_fft=512, hop_length=128)`` (centred, Hann).
MASK_N_FFT = 512
MASK_HOP = 128
#: A bin belongs to the event where its magnitude is within this many dB of its maximum.
MASK_FLOOR_DB = 30.0

_EVENT_SECONDS = (0.3, 1.0)
_RAMP_S = 0.015  # fade in/out of every event, so onsets do not splatter across frequency
_PEAK = (0.3, 0.9)
_DISTRACTOR_LEVEL_DB = (-3.0, 9.0)  # distractor RMS over its span, relative to background
_BACKGROUND_SLOPE = (-2.0, 0.0)  # power ~ f**slope: white (0) to brown (-2)
_LEVEL_KNOTS = 5  # gain ramps: knots evenly spaced over the clip, linear in dB between

Params = dict[str, float]
Ranges = dict[str, tuple[float, float]]
# (params, sample times from the event start, rng) -> (signal, f_low_hz, f_high_hz)
SynthFn = Callable[[Params, np.ndarray, np.random.Generator], tuple[np.ndarray, float, float]]


@dataclass(frozen=True)
class SynthEventsConfig:
    """Parameters of the built-in sound-event dataset (all of them enter the cache key;
    the fields after ``n_folds`` only when they differ from their defaults, so version 1
    configs keep their keys).

    ``snr_db`` is the range of the class event's energy relative to background plus
    (vocabulary) distractors over the event's span.

    ``max_class_distractors``: 0..k events of other classes (uniform count, class uniform
    over the other ``num_classes - 1``, random time: they may overlap the class event),
    each at an RMS over its span ``class_distractor_level_db`` dB relative to the class
    event's RMS over its span (both after reverberation), so always weaker.
    ``reverb_prob``: chance that a clip is reverberant; its room is an exponentially
    decaying noise impulse response with RT60 ~ U(``reverb_rt60_s``) and direct-to-
    reverberant ratio ~ U(``reverb_drr_db``), convolved with the class event and every
    distractor (not the background, which is diffuse already).
    ``level_change_db``: the whole clip (event and rest alike) goes through a gain curve
    linear in dB between evenly spaced knots each ~ U(-x/2, x/2) dB.
    ``backgrounds``: the background kinds a clip draws from (uniformly), see
    ``_BACKGROUNDS``.
    """

    num_clips: int = 1000
    num_classes: int = 10
    clip_seconds: float = 2.0
    sample_rate: int = 16000
    seed: int = 0
    snr_db: tuple[float, float] = (-3.0, 15.0)
    max_distractors: int = 2
    n_folds: int = 5
    max_class_distractors: int = 0
    class_distractor_level_db: tuple[float, float] = (-12.0, -3.0)
    reverb_prob: float = 0.0
    reverb_rt60_s: tuple[float, float] = (0.2, 0.8)
    reverb_drr_db: tuple[float, float] = (0.0, 10.0)
    level_change_db: float = 0.0
    backgrounds: tuple[str, ...] = ("coloured",)

    def __post_init__(self) -> None:
        # Normalise types so that equal configs give equal cache keys (15 vs 15.0, list vs tuple).
        object.__setattr__(self, "clip_seconds", float(self.clip_seconds))
        for name in ("snr_db", "class_distractor_level_db", "reverb_rt60_s", "reverb_drr_db"):
            value = tuple(getattr(self, name))
            if len(value) != 2:
                raise ValueError(f"{name} must be (low, high), got {value}")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        for name in ("reverb_prob", "level_change_db"):
            object.__setattr__(self, name, float(getattr(self, name)))
        backgrounds = self.backgrounds
        object.__setattr__(
            self,
            "backgrounds",
            (backgrounds,) if isinstance(backgrounds, str) else tuple(map(str, backgrounds)),
        )
        if not 1 <= self.num_classes <= len(_KINDS):
            raise ValueError(f"num_classes must be in 1..{len(_KINDS)}, got {self.num_classes}")
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {self.num_clips}")
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be >= 1, got {self.n_folds}")
        if self.clip_seconds < _EVENT_SECONDS[0]:
            raise ValueError(
                f"clip_seconds must be >= {_EVENT_SECONDS[0]}, got {self.clip_seconds}"
            )
        if self.sample_rate < 16000:  # the highest class bands reach 6 kHz
            raise ValueError(f"sample_rate must be >= 16000, got {self.sample_rate}")
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db must be (low, high), got {self.snr_db}")
        if self.max_distractors < 0:
            raise ValueError(f"max_distractors must be >= 0, got {self.max_distractors}")
        if self.max_class_distractors < 0:
            raise ValueError(
                f"max_class_distractors must be >= 0, got {self.max_class_distractors}"
            )
        if self.max_class_distractors and self.num_classes < 2:
            raise ValueError("max_class_distractors > 0 needs num_classes >= 2 (another class)")
        lo, hi = self.class_distractor_level_db
        if not lo <= hi < 0.0:
            raise ValueError(
                "class_distractor_level_db must be (low, high) with high < 0 dB (weaker than "
                f"the class event), got {self.class_distractor_level_db}"
            )
        if not 0.0 <= self.reverb_prob <= 1.0:
            raise ValueError(f"reverb_prob must be in [0, 1], got {self.reverb_prob}")
        lo, hi = self.reverb_rt60_s
        if not 0.0 < lo <= hi <= 5.0:
            raise ValueError(
                f"reverb_rt60_s must be (low, high) with 0 < low <= high <= 5 s, "
                f"got {self.reverb_rt60_s}"
            )
        if self.reverb_drr_db[0] > self.reverb_drr_db[1]:
            raise ValueError(f"reverb_drr_db must be (low, high), got {self.reverb_drr_db}")
        if not 0.0 <= self.level_change_db <= 40.0:
            raise ValueError(f"level_change_db must be in [0, 40], got {self.level_change_db}")
        if not self.backgrounds:
            raise ValueError("backgrounds must name at least one background kind")
        unknown = [b for b in self.backgrounds if b not in _BACKGROUNDS]
        if unknown:
            raise ValueError(
                f"backgrounds: unknown kind(s) {unknown}; expected some of {sorted(_BACKGROUNDS)}"
            )


@dataclass(frozen=True)
class _Kind:
    name: str
    ranges: Ranges  # int bounds -> integer parameter, inclusive
    synth: SynthFn


@dataclass(frozen=True)
class ClipParts:
    """One synthesised clip, its components kept apart (``mix == event + rest``).

    Attributes
    ----------
    event, rest, mix : float64 (num_samples,), as written (after peak normalisation,
        before PCM_16 quantisation); ``event`` is the class event (reverberated when the
        clip is), ``rest`` is background plus distractors of both kinds.
    onset_s, offset_s : class event span (ramps included), fully inside the clip; a
        reverberant event's tail rings on past ``offset_s``.
    f_low_hz, f_high_hz : nominal frequency extent of the event, from its parameters.
    snr_db : drawn event-to-noise energy ratio over ``[onset_s, offset_s)``, noise being
        background plus vocabulary distractors (= event-to-rest without class distractors
        and level changes).
    background : background kind.
    class_distractors, class_distractor_db, class_distractor_spans : the targets of the
        other-class events in ``rest``, their RMS relative to the class event's (dB, < 0)
        and their (onset_s, offset_s).
    rt60_s, drr_db : the room (0.0 and inf when the clip is dry).
    """

    index: int
    target: int
    fold: int
    sample_rate: int
    event: np.ndarray
    rest: np.ndarray
    mix: np.ndarray
    onset_s: float
    offset_s: float
    f_low_hz: float
    f_high_hz: float
    snr_db: float
    event_params: Params = field(default_factory=dict)
    distractors: tuple[str, ...] = ()
    background: str = "coloured"
    class_distractors: tuple[int, ...] = ()
    class_distractor_db: tuple[float, ...] = ()
    class_distractor_spans: tuple[tuple[float, float], ...] = ()
    rt60_s: float = 0.0
    drr_db: float = float("inf")

    @property
    def category(self) -> str:
        return _KINDS[self.target].name

    @property
    def stem(self) -> str:
        """ESC-50 file stem ``<fold>-<clipid>-<take>-<target>``."""
        return f"{self.fold}-{self.index:06d}-A-{self.target}"


# --------------------------------------------------------------------------- signals


def _ramp(n: int, sr: int, ramp_s: float = _RAMP_S) -> np.ndarray:
    """Raised-cosine fade-in/out envelope of length ``n``."""
    r = max(1, min(int(round(ramp_s * sr)), n // 2))
    env = np.ones(n)
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
    env[:r] = up
    env[n - r :] = up[::-1]
    return env


def _gate(t: np.ndarray, period: float, length: float, ramp_s: float = 0.005) -> np.ndarray:
    """Periodic raised-cosine gate: on for ``length`` s every ``period`` s."""
    u = np.mod(t, period)
    edge = np.clip(np.minimum(u, length - u) / ramp_s, 0.0, 1.0)
    return np.where(u < length, 0.5 - 0.5 * np.cos(np.pi * edge), 0.0)


def _band_noise(n: int, sr: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """White noise brick-wall filtered to ``[lo, hi]`` Hz in the DFT domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0.0
    return np.fft.irfft(spec, n)


def _coloured_noise(n: int, sr: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ f**slope (slope 0 white, -1 pink, -2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= (np.maximum(f, 20.0) / 1000.0) ** (slope / 2.0)  # floor: no DC blow-up
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _sweep_phase(t: np.ndarray, f0: float, f1: float, length: float) -> np.ndarray:
    """Phase of an exponential sweep from ``f0`` to ``f1`` Hz over ``length`` s."""
    k = np.log(f1 / f0)
    return 2 * np.pi * f0 * length / k * (np.exp(k * t / length) - 1.0)


def _sr(t: np.ndarray) -> float:
    return 1.0 / (t[1] - t[0])


# --------------------------------------------------------------------------- classes


def _harmonic_stack(p: Params, t: np.ndarray, rng: np.random.Generator):
    k = np.arange(1, int(p["n_harmonics"]) + 1)
    amp = k ** -p["rolloff"]
    phase = rng.uniform(0, 2 * np.pi, k.size)
    x = (amp[:, None] * np.sin(2 * np.pi * p["f0_hz"] * k[:, None] * t + phase[:, None])).sum(0)
    return x, p["f0_hz"], p["f0_hz"] * k[-1]


def _up_chirp(p: Params, t: np.ndarray, rng: np.random.Generator):
    x = np.sin(_sweep_phase(t, p["f_start_hz"], p["f_end_hz"], t[-1]))
    return x, p["f_start_hz"], p["f_end_hz"]


def _down_chirp(p: Params, t: np.ndarray, rng: np.random.Generator):
    x = np.sin(_sweep_phase(t, p["f_start_hz"], p["f_end_hz"], t[-1]))
    return x, p["f_end_hz"], p["f_start_hz"]


def _am_tone(p: Params, t: np.ndarray, rng: np.random.Generator):
    fc, fm = p["carrier_hz"], p["am_hz"]
    env = 1.0 - p["depth"] * (0.5 - 0.5 * np.cos(2 * np.pi * fm * t))
    return env * np.sin(2 * np.pi * fc * t), fc - fm, fc + fm


def _noise_burst(p: Params, t: np.ndarray, rng: np.random.Generator):
    lo, hi = p["f_low_hz"], p["f_high_hz"]
    return _band_noise(t.size, round(_sr(t)), lo, hi, rng), lo, hi


def _click_train(p: Params, t: np.ndarray, rng: np.random.Generator):
    sr, rate, fc, sf_ = _sr(t), p["rate_hz"], p["centre_hz"], p["bandwidth_hz"]
    count = int(t[-1] * rate)
    times = (np.arange(count) + 0.5 + rng.uniform(-0.1, 0.1, count)) / rate
    # Gabor atom: Gaussian spectrum of s.d. ``bandwidth_hz`` around ``centre_hz``.
    sig_t = 1.0 / (2 * np.pi * sf_)
    lag = np.arange(-int(4 * sig_t * sr), int(4 * sig_t * sr) + 1)
    atom = np.exp(-0.5 * (lag / (sig_t * sr)) ** 2) * np.cos(2 * np.pi * fc * lag / sr)
    idx = np.round(times * sr).astype(int)[:, None] + lag
    inside = (idx >= 0) & (idx < t.size)
    x = np.zeros(t.size)
    # Explicit scatter, not np.convolve, whose inner products may go through BLAS.
    np.add.at(x, idx[inside], np.broadcast_to(atom, idx.shape)[inside])
    # 3 s.d. is where a Gaussian spectrum is 39 dB down, below the 30 dB mask floor.
    return x, fc - 3 * sf_, fc + 3 * sf_


def _fm_tone(p: Params, t: np.ndarray, rng: np.random.Generator):
    fc, d, fv = p["carrier_hz"], p["depth"], p["vibrato_hz"]
    phase = 2 * np.pi * fc * (t - d / (2 * np.pi * fv) * np.cos(2 * np.pi * fv * t))
    return np.sin(phase), fc * (1 - d), fc * (1 + d)


def _tone_pips(p: Params, t: np.ndarray, rng: np.random.Generator):
    f = p["freq_hz"]
    gate = _gate(t, 1.0 / p["rate_hz"], p["pip_s"], ramp_s=p["pip_s"] / 2)
    return gate * np.sin(2 * np.pi * f * t), f, f


def _dual_tone(p: Params, t: np.ndarray, rng: np.random.Generator):
    lo, hi = p["low_hz"], p["high_hz"]
    x = np.sin(2 * np.pi * lo * t) + p["high_gain"] * np.sin(2 * np.pi * hi * t + rng.uniform(0, 6))
    return x, lo, hi


_BELL_RATIOS = np.array([1.0, 2.756, 5.404, 8.933])  # free-bar modes (Fletcher & Rossing)


def _bell(p: Params, t: np.ndarray, rng: np.random.Generator):
    f = p["f0_hz"] * _BELL_RATIOS
    amp = np.array([1.0, 0.7, 0.5, 0.35])
    decay = p["decay_s"] / np.sqrt(_BELL_RATIOS)  # higher modes ring shorter
    phase = rng.uniform(0, 2 * np.pi, f.size)
    partials = np.sin(2 * np.pi * f[:, None] * t + phase[:, None])
    x = (amp[:, None] * np.exp(-t / decay[:, None]) * partials).sum(0)
    return x, f[0], f[-1]


def _trill(p: Params, t: np.ndarray, rng: np.random.Generator):
    period, length = 1.0 / p["rate_hz"], p["syllable_s"]
    u = np.mod(t, period)
    phase = _sweep_phase(np.minimum(u, length), p["f_start_hz"], p["f_end_hz"], length)
    gate = _gate(t, period, length, ramp_s=length / 2)
    return gate * np.sin(phase), p["f_end_hz"], p["f_start_hz"]


# Order matters: ``num_classes`` selects the first n, and targets index this tuple.
_KINDS: tuple[_Kind, ...] = (
    _Kind(
        "low_harmonic",
        {"f0_hz": (120.0, 220.0), "n_harmonics": (5, 8), "rolloff": (0.5, 1.0)},
        _harmonic_stack,
    ),
    _Kind(
        "high_harmonic",
        {"f0_hz": (500.0, 800.0), "n_harmonics": (3, 5), "rolloff": (0.5, 1.0)},
        _harmonic_stack,
    ),
    _Kind("up_chirp", {"f_start_hz": (300.0, 600.0), "f_end_hz": (2500.0, 4000.0)}, _up_chirp),
    _Kind("down_chirp", {"f_start_hz": (2500.0, 4000.0), "f_end_hz": (300.0, 600.0)}, _down_chirp),
    _Kind(
        "am_tone",
        {"carrier_hz": (1000.0, 2000.0), "am_hz": (4.0, 12.0), "depth": (0.7, 1.0)},
        _am_tone,
    ),
    _Kind(
        "low_noise_burst", {"f_low_hz": (300.0, 400.0), "f_high_hz": (750.0, 900.0)}, _noise_burst
    ),
    _Kind(
        "high_noise_burst",
        {"f_low_hz": (3000.0, 3500.0), "f_high_hz": (5000.0, 6000.0)},
        _noise_burst,
    ),
    _Kind(
        "click_train",
        {"rate_hz": (15.0, 40.0), "centre_hz": (2000.0, 3000.0), "bandwidth_hz": (300.0, 400.0)},
        _click_train,
    ),
    _Kind(
        "fm_tone",
        {"carrier_hz": (1800.0, 2800.0), "depth": (0.04, 0.08), "vibrato_hz": (4.0, 8.0)},
        _fm_tone,
    ),
    _Kind(
        "tone_pips",
        {"freq_hz": (3500.0, 5000.0), "rate_hz": (5.0, 9.0), "pip_s": (0.04, 0.08)},
        _tone_pips,
    ),
    _Kind(
        "dual_tone",
        {"low_hz": (697.0, 941.0), "high_hz": (1209.0, 1633.0), "high_gain": (0.7, 1.0)},
        _dual_tone,
    ),
    _Kind("bell", {"f0_hz": (300.0, 500.0), "decay_s": (0.15, 0.4)}, _bell),
    _Kind(
        "trill",
        {
            "f_start_hz": (4500.0, 6000.0),
            "f_end_hz": (2500.0, 3500.0),
            "rate_hz": (8.0, 14.0),
            "syllable_s": (0.04, 0.06),
        },
        _trill,
    ),
)


# --------------------------------------------------------------------------- distractors


def _whoosh(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Broadband pink noise under a slow Hann swell: spans every class band at once."""
    return _coloured_noise(n, sr, -1.0, rng) * np.hanning(n)


def _knocks(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """1-3 damped low impacts (a few fast-decaying modes below 350 Hz plus a tap)."""
    x = np.zeros(n)
    t = np.arange(int(0.15 * sr)) / sr
    for _ in range(int(rng.integers(1, 4))):
        modes = rng.uniform(80.0, 350.0, 3)
        decay = rng.uniform(0.015, 0.05)
        hit = (np.exp(-t / decay)[None] * np.sin(2 * np.pi * modes[:, None] * t)).sum(0)
        hit[: int(0.002 * sr)] += rng.standard_normal(int(0.002 * sr)) * 0.5
        start = int(rng.integers(0, max(1, n - t.size)))
        seg = hit[: n - start]
        x[start : start + seg.size] += seg * rng.uniform(0.5, 1.0)
    return x


def _hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Steady mains hum: 50 or 60 Hz with odd-dominated harmonics up to ~400 Hz."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    k = np.arange(1, 8)
    amp = np.where(k % 2 == 1, 1.0, 0.3) * rng.uniform(0.3, 1.0, k.size)
    t = np.arange(n) / sr
    phase = rng.uniform(0, 2 * np.pi, k.size)
    return (amp[:, None] * np.sin(2 * np.pi * f0 * k[:, None] * t + phase[:, None])).sum(0)


def _babble(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise through three vowel-like formant bumps over a broad floor, with a
    3-6 Hz syllabic envelope: speech-like texture, never a narrow band."""
    spec = np.fft.rfft(_coloured_noise(n, sr, -1.0, rng))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    shape = np.full(f.size, 0.3)
    for lo, hi, bw in ((300, 800, 120), (900, 2300, 180), (2400, 3300, 250)):
        shape += np.exp(-0.5 * ((f - rng.uniform(lo, hi)) / bw) ** 2)
    x = np.fft.irfft(spec * shape, n)
    t = np.arange(n) / sr
    syll = 0.55 - 0.45 * np.cos(2 * np.pi * rng.uniform(3.0, 6.0) * t + rng.uniform(0, 6))
    return x * syll


_DISTRACTORS: dict[str, tuple[Callable, tuple[float, float]]] = {
    # name: (synth(n, sr, rng), duration range in s)
    "whoosh": (_whoosh, (0.3, 1.2)),
    "knocks": (_knocks, (0.2, 0.6)),
    "hum": (_hum, (0.8, 2.0)),
    "babble": (_babble, (0.5, 1.5)),
}


# --------------------------------------------------------------------------- backgrounds


def _coloured_background(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise, power ~ f**slope with slope ~ U(-2, 0) (version 1's background)."""
    return _coloured_noise(n, sr, rng.uniform(*_BACKGROUND_SLOPE), rng)


def _rain_background(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Rain on a surface: 300-1000 droplets/s (a few ms of decaying noise each, log-uniform
    amplitudes over 26 dB, high-passed above ~1 kHz) over a soft pink floor; unit RMS."""
    count = int(rng.uniform(300.0, 1000.0) * n / sr)
    width = int(0.004 * sr)
    lag = np.arange(width)
    starts = rng.integers(0, n, count)
    amps = np.exp(rng.uniform(np.log(0.05), 0.0, count))
    decay = rng.uniform(0.0004, 0.0015, count) * sr
    drops = (
        amps[:, None] * np.exp(-lag[None] / decay[:, None]) * rng.standard_normal((count, width))
    )
    idx = starts[:, None] + lag
    inside = idx < n
    x = np.zeros(n)
    np.add.at(x, idx[inside], drops[inside])  # explicit scatter: fixed summation order
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= 1.0 / (1.0 + (1000.0 / np.maximum(f, 1.0)) ** 4)  # 4th-order-ish high-pass
    x = np.fft.irfft(spec, n)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) + 0.3 * _coloured_noise(n, sr, -1.0, rng)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _drone_background(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Machine drone: a 30-90 Hz fundamental with harmonics up to 2 kHz (amplitude ~
    k**-U(0.7, 1.2)) and a slow 0.1-0.5 Hz pitch wobble of 1-3 %, over brown noise at
    -10 dB; unit RMS."""
    f0 = rng.uniform(30.0, 90.0)
    k = np.arange(1, int(2000.0 / f0) + 1)
    amp = k ** -rng.uniform(0.7, 1.2)
    t = np.arange(n) / sr
    depth, rate = rng.uniform(0.01, 0.03), rng.uniform(0.1, 0.5)
    base = 2 * np.pi * f0 * (t + depth / (2 * np.pi * rate) * np.sin(2 * np.pi * rate * t))
    phase = rng.uniform(0, 2 * np.pi, k.size)
    x = (amp[:, None] * np.sin(k[:, None] * base + phase[:, None])).sum(0)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) + 10 ** (-10 / 20) * _coloured_noise(n, sr, -2.0, rng)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


_BACKGROUNDS: dict[str, tuple[Callable, str]] = {
    # name: (synth(n, sr, rng), description)
    "coloured": (_coloured_background, "coloured noise, power ~ f**slope, slope ~ U(-2, 0)"),
    "rain": (_rain_background, "300-1000 high-passed droplets/s over a soft pink floor"),
    "drone": (_drone_background, "30-90 Hz harmonic machine drone over brown noise"),
}


# --------------------------------------------------------------------------- room


def _room_ir(sr: int, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Room impulse response: a unit direct path, then Gaussian noise whose amplitude
    decays by 60 dB over ``rt60`` s (to the end of the response), scaled so that the
    direct-to-reverberant energy ratio is ``drr_db``."""
    n = max(2, int(np.ceil(rt60 * sr)))
    t = np.arange(n) / sr
    h = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60)
    h[0] = 0.0
    h *= np.sqrt(10 ** (-drr_db / 10) / _energy(h))
    h[0] = 1.0
    return h


def _convolve(x: np.ndarray, h: np.ndarray, start: int = 0) -> np.ndarray:
    """Linear convolution ``x * h`` cut to ``len(x)``, by FFT (pocketfft, not BLAS: the same
    bytes in any process); ``x`` is zero before ``start``, and so is the result, exactly."""
    size = x.size + h.size - 1
    nfft = 1 << (size - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: x.size]
    y[:start] = 0.0  # FFT round-off, not signal
    return y


def _level_envelope(n: int, change_db: float, rng: np.random.Generator) -> np.ndarray:
    """Gain over ``n`` samples: linear in dB between ``_LEVEL_KNOTS`` evenly spaced knots,
    each ~ U(-change_db / 2, change_db / 2) dB."""
    knots = rng.uniform(-change_db / 2, change_db / 2, _LEVEL_KNOTS)
    db = np.interp(np.arange(n), np.linspace(0, n - 1, _LEVEL_KNOTS), knots)
    return 10 ** (db / 20)


# --------------------------------------------------------------------------- clips


def class_names(num_classes: int) -> list[str]:
    """Names of the first ``num_classes`` event classes (index = target)."""
    if not 1 <= num_classes <= len(_KINDS):
        raise ValueError(f"num_classes must be in 1..{len(_KINDS)}, got {num_classes}")
    return [k.name for k in _KINDS[:num_classes]]


def clip_target_fold(config: SynthEventsConfig, index: int) -> tuple[int, int]:
    """Class and fold of clip ``index``: classes round-robin (balanced, the remainder going
    to the first classes), and each class's clips dealt round-robin over folds 1..n_folds."""
    return index % config.num_classes, (index // config.num_classes) % config.n_folds + 1


def _draw(ranges: Ranges, rng: np.random.Generator) -> Params:
    out: Params = {}
    for name, (lo, hi) in ranges.items():
        if isinstance(lo, int) and isinstance(hi, int):
            out[name] = int(rng.integers(lo, hi + 1))
        else:
            out[name] = float(rng.uniform(lo, hi))
    return out


def _energy(x: np.ndarray) -> float:
    # Not np.dot: BLAS may sum in a thread- and CPU-dependent order (and is slow here).
    return float(np.sum(x * x))


def _class_pattern(
    kind: _Kind, config: SynthEventsConfig, rng: np.random.Generator
) -> tuple[np.ndarray, Params, float, float]:
    """One event of ``kind``: duration U(0.3, 1.0) s, ramped; (signal, params, f_lo, f_hi)."""
    sr = config.sample_rate
    m = int(rng.uniform(_EVENT_SECONDS[0], min(_EVENT_SECONDS[1], config.clip_seconds)) * sr)
    params = _draw(kind.ranges, rng)
    sig, f_lo, f_hi = kind.synth(params, np.arange(m) / sr, rng)
    return sig * _ramp(m, sr), params, f_lo, f_hi


def _placed(sig: np.ndarray, start: int, n: int, room: np.ndarray | None) -> np.ndarray:
    """``sig`` at sample ``start`` of an ``n``-sample clip, through ``room`` if any."""
    x = np.zeros(n)
    x[start : start + sig.size] = sig
    return x if room is None else _convolve(x, room, start)


def synthesize_clip(config: SynthEventsConfig, index: int) -> ClipParts:
    """Synthesise clip ``index`` of the dataset from ``default_rng([seed, index])``.

    Background: one of ``config.backgrounds`` (version 1: coloured noise, power ~
    f**slope with slope ~ U(-2, 0)).  Distractors: 0..max_distractors of
    whoosh/knocks/hum/babble at random times, each at U(-3, 9) dB RMS re background.
    Class event: duration U(0.3, 1.0) s with 15 ms raised-cosine ramps, random onset fully
    inside the clip, parameters uniform in its class ranges, scaled so that its energy over
    its span is ``snr ~ U(*snr_db)`` dB above the background + distractors there.  Then,
    when enabled, class distractors, reverberation and level changes (see
    ``SynthEventsConfig``; each draws from the generator only when enabled).  The sum is
    scaled to a peak ~ U(0.3, 0.9).
    """
    sr, n = config.sample_rate, int(round(config.clip_seconds * config.sample_rate))
    target, fold = clip_target_fold(config, index)
    rng = np.random.default_rng([config.seed, index])

    backgrounds = config.backgrounds
    background = (
        backgrounds[int(rng.integers(len(backgrounds)))] if len(backgrounds) > 1 else backgrounds[0]
    )
    rest = _BACKGROUNDS[background][0](n, sr, rng)
    # With a room the distractors are reverberated apart from the (diffuse) background;
    # without, they are summed into it in place, as version 1 did (same rounding).
    reverberant = config.reverb_prob > 0.0
    sink = np.zeros(n) if reverberant else rest
    names = list(_DISTRACTORS)
    used = []
    for _ in range(int(rng.integers(0, config.max_distractors + 1))):
        name = names[int(rng.integers(len(names)))]
        synth, (dmin, dmax) = _DISTRACTORS[name]
        m = min(n, int(rng.uniform(dmin, dmax) * sr))
        start = int(rng.integers(0, n - m + 1))
        d = synth(m, sr, rng) * _ramp(m, sr)
        level = 10 ** (rng.uniform(*_DISTRACTOR_LEVEL_DB) / 20)
        sink[start : start + m] += d * level / (np.sqrt(np.mean(d**2)) + 1e-12)
        used.append(name)

    kind = _KINDS[target]
    sig, params, f_lo, f_hi = _class_pattern(kind, config, rng)
    m = sig.size
    onset = int(rng.integers(0, n - m + 1))
    snr = float(rng.uniform(*config.snr_db))

    others = []  # (target, signal, start, level_db) of each class distractor
    for _ in range(int(rng.integers(0, config.max_class_distractors + 1))):
        other = int(rng.integers(config.num_classes - 1))
        other += other >= target
        other_sig = _class_pattern(_KINDS[other], config, rng)[0]
        other_start = int(rng.integers(0, n - other_sig.size + 1))
        others.append(
            (other, other_sig, other_start, float(rng.uniform(*config.class_distractor_level_db)))
        )

    room, rt60, drr = None, 0.0, float("inf")
    if reverberant and rng.random() < config.reverb_prob:
        rt60, drr = (
            float(rng.uniform(*config.reverb_rt60_s)),
            float(rng.uniform(*config.reverb_drr_db)),
        )
        room = _room_ir(sr, rt60, drr, rng)
    if reverberant:
        rest = rest + (sink if room is None else _convolve(sink, room))

    event = _placed(sig, onset, n, room)
    gain = np.sqrt(
        10 ** (snr / 10) * _energy(rest[onset : onset + m]) / _energy(event[onset : onset + m])
    )
    event = gain * event
    event_ms = _energy(event[onset : onset + m]) / m
    for _, other_sig, other_start, level_db in others:
        d = _placed(other_sig, other_start, n, room)
        span = d[other_start : other_start + other_sig.size]
        rest = rest + d * np.sqrt(10 ** (level_db / 10) * event_ms * span.size / _energy(span))

    if config.level_change_db > 0.0:
        envelope = _level_envelope(n, config.level_change_db, rng)
        event, rest = event * envelope, rest * envelope

    scale = rng.uniform(*_PEAK) / np.max(np.abs(event + rest))
    event, rest = event * scale, rest * scale
    return ClipParts(
        index=index,
        target=target,
        fold=fold,
        sample_rate=sr,
        event=event,
        rest=rest,
        mix=event + rest,
        onset_s=onset / sr,
        offset_s=(onset + m) / sr,
        f_low_hz=float(f_lo),
        f_high_hz=float(f_hi),
        snr_db=snr,
        event_params=params,
        distractors=tuple(used),
        background=background,
        class_distractors=tuple(o[0] for o in others),
        class_distractor_db=tuple(o[3] for o in others),
        class_distractor_spans=tuple((o[2] / sr, (o[2] + o[1].size) / sr) for o in others),
        rt60_s=rt60,
        drr_db=drr,
    )


def stft_magnitude(x: np.ndarray, n_fft: int = MASK_N_FFT, hop_length: int = MASK_HOP):
    """|STFT| (1 + n_fft // 2, 1 + len(x) // hop_length), equal to
    ``np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length))`` (centred frames,
    zero padding, periodic Hann) without importing librosa."""
    pad = n_fft // 2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), n_fft)[::hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(frames * window, axis=1)).T


def event_masks(
    event: np.ndarray,
    rest: np.ndarray,
    n_fft: int = MASK_N_FFT,
    hop_length: int = MASK_HOP,
    floor_db: float = MASK_FLOOR_DB,
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth masks (bool, F x T) of an isolated event in its clip.

    ``mask``: bins where the event's STFT magnitude is within ``floor_db`` dB of the
    event's own maximum -- where the event *is*, whatever the SNR.  ``dominant``:
    ``mask`` and the event's magnitude exceeds that of the rest of the clip (the ideal
    binary mask of Wang, "On ideal binary mask as the computational goal of auditory
    scene analysis", 2005, restricted to the event) -- where the event is *audible*; it
    shrinks, possibly to nothing, as the SNR drops.
    """
    e = stft_magnitude(event, n_fft, hop_length)
    mask = e >= e.max() * 10 ** (-floor_db / 20)
    return mask, mask & (e > stft_magnitude(rest, n_fft, hop_length))


# --------------------------------------------------------------------------- writing


CSV_HEADER = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def _conditions(config: SynthEventsConfig, parts: ClipParts) -> dict[str, np.ndarray]:
    """Per-clip conditions stored beside the mask, only for the features ``config``
    enables (a version-1 config writes version 1's mask files)."""
    out: dict[str, np.ndarray] = {}
    if config.backgrounds != ("coloured",):
        out["background"] = np.array(parts.background)
    if config.max_class_distractors:
        out["class_distractors"] = np.array(parts.class_distractors, dtype=np.int64)
        out["class_distractor_db"] = np.array(parts.class_distractor_db, dtype=np.float64)
        out["class_distractor_spans_s"] = np.array(
            parts.class_distractor_spans, dtype=np.float64
        ).reshape(-1, 2)
    if config.reverb_prob > 0.0:
        out["rt60_s"] = np.float64(parts.rt60_s)
        out["drr_db"] = np.float64(parts.drr_db)
    return out


def _write_clip(config: SynthEventsConfig, root: Path, index: int) -> tuple:
    parts = synthesize_clip(config, index)
    sf.write(root / "audio" / f"{parts.stem}.wav", parts.mix, parts.sample_rate, subtype="PCM_16")
    mask, dominant = event_masks(parts.event, parts.rest)
    np.savez_compressed(
        root / "masks" / f"{parts.stem}.npz",
        mask=mask,
        dominant=dominant,
        sample_rate=np.int64(parts.sample_rate),
        n_fft=np.int64(MASK_N_FFT),
        hop_length=np.int64(MASK_HOP),
        onset_s=np.float64(parts.onset_s),
        offset_s=np.float64(parts.offset_s),
        f_low_hz=np.float64(parts.f_low_hz),
        f_high_hz=np.float64(parts.f_high_hz),
        target=np.int64(parts.target),
        snr_db=np.float64(parts.snr_db),
        duration_s=np.float64(parts.mix.size / parts.sample_rate),
        **_conditions(config, parts),
    )
    return (
        f"{parts.stem}.wav",
        parts.fold,
        parts.target,
        parts.category,
        "False",
        f"{index:06d}",
        "A",
    )


def _write_range(args: tuple[SynthEventsConfig, str, int, int]) -> list[tuple]:
    config, root, start, stop = args
    return [_write_clip(config, Path(root), i) for i in range(start, stop)]


def _describe(config: SynthEventsConfig) -> dict:
    return {
        "generator": "interp_models.data.synth_events",
        "version": GENERATOR_VERSION,
        "config": asdict(config),
        "classes": [
            {
                "target": i,
                "name": k.name,
                "duration_s": list(_EVENT_SECONDS),
                "params": {p: list(r) for p, r in k.ranges.items()},
            }
            for i, k in enumerate(_KINDS[: config.num_classes])
        ],
        "distractors": {
            name: {"duration_s": list(d), "level_db_re_background": list(_DISTRACTOR_LEVEL_DB)}
            for name, (_, d) in _DISTRACTORS.items()
        },
        "backgrounds": {name: _BACKGROUNDS[name][1] for name in config.backgrounds},
        "class_distractors": {
            "max_count": config.max_class_distractors,
            "level_db_re_event": list(config.class_distractor_level_db),
            "classes": "any class but the target's, uniform; random onset (may overlap)",
        },
        "reverb": {
            "prob": config.reverb_prob,
            "rt60_s": list(config.reverb_rt60_s),
            "drr_db": list(config.reverb_drr_db),
            "impulse_response": "unit direct path + exponentially decaying Gaussian noise",
            "applied_to": "class event and all distractors (not the background)",
        },
        "level_change": {
            "db": config.level_change_db,
            "curve": f"linear in dB between {_LEVEL_KNOTS} evenly spaced knots "
            "~ U(-db/2, db/2), on the whole clip",
        },
        "snr": "class event energy over its span re background + vocabulary distractors",
        "mask": {
            "n_fft": MASK_N_FFT,
            "hop_length": MASK_HOP,
            "center": True,
            "window": "hann",
            "floor_db": MASK_FLOOR_DB,
            "mask": f"event |STFT| within {MASK_FLOOR_DB:g} dB of its maximum",
            "dominant": "mask & event |STFT| > rest |STFT|",
        },
    }


def generate_events(config: SynthEventsConfig, root: Path, workers: int = 1) -> Path:
    """Write the dataset described by ``config`` into ``root`` (ESC-50 layout, see module).

    ``workers`` > 1 spreads the clips over that many spawned processes (the files are
    identical for any value).  It is opt-in: a spawned child re-imports the caller's main
    module, which must then be guarded by ``if __name__ == "__main__"``.
    """
    root = Path(root)
    for sub in ("audio", "meta", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = write_ranges(_write_range, config, root, config.num_clips, workers)
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
    (root / "meta" / "generator.json").write_text(json.dumps(_describe(config), indent=2) + "\n")
    return root


#: Fields added after version 1's key was fixed: left out of the key at their defaults
#: (which reproduce version 1's clips), so the data cached for an old config is found again.
_KEYED_WHEN_SET = (
    "max_class_distractors",
    "class_distractor_level_db",
    "reverb_prob",
    "reverb_rt60_s",
    "reverb_drr_db",
    "level_change_db",
    "backgrounds",
)


def cache_key(config: SynthEventsConfig) -> str:
    """Cache key of ``config`` under the current ``GENERATOR_VERSION`` (what
    ``interp_models.cache.generator_key`` gives, less the default-valued later fields)."""
    defaults = {f.name: f.default for f in fields(SynthEventsConfig)}
    params = {
        k: v for k, v in asdict(config).items() if not (k in _KEYED_WHEN_SET and v == defaults[k])
    }
    return params_key({**params, "generator_version": GENERATOR_VERSION})


def ensure_events(config: SynthEventsConfig, cache_dir: Path | None = None) -> Path:
    """Return the dataset root for ``config``, generating it once into the cache.

    The entry is ``<cache_dir>/synth_events/<cache_key(config)>``, built under a file lock
    and published atomically (``cached_dir``), so concurrent callers share one build.
    """
    return cached_dataset(
        "synth_events", cache_key(config), lambda tmp: generate_events(config, tmp), cache_dir
    )
