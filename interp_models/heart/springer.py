"""Logistic-regression hidden semi-Markov heart-sound segmenter (Springer et al. 2016).

Written from D. B. Springer, L. Tarassenko, G. D. Clifford, "Logistic regression-HSMM-
based heart sound segmentation", IEEE Trans. Biomed. Eng. 63(4):822-832, 2016:

1. Pre-processing (1 kHz): 25-400 Hz Butterworth band-pass and the spike removal of
   Schmidt et al. (Physiol. Meas. 31, 2010).
2. Four envelope features at 50 Hz, each standardised per recording: homomorphic
   envelope, Hilbert envelope, 40-60 Hz power spectral density, and the envelope of the
   level-3 wavelet detail coefficients.
3. Heart rate and systolic interval from the autocorrelation of the homomorphic
   envelope (the paper: highest peak at lags 0.5-2 s; highest peak between 0.2 s and
   half the cycle).
4. Emissions from one logistic regression per state (one versus the rest, scikit-learn),
   turned into scaled likelihoods ``P(state | o) / P(state)`` (the ``P(o)`` of Bayes'
   rule is common to all states at a frame, so it does not change the decoded path).
5. Duration-dependent Viterbi decoding of the cycle S1 -> systole -> S2 -> diastole,
   with Gaussian durations: S1 122 +/- 22 ms, S2 94 +/- 22 ms, systole = systolic interval
   - mean S1 (+/- 25 ms), diastole = cycle - systolic interval - mean S2 (s.d. 7% + 6 ms).
   As in the paper's extended Viterbi, the first and last states may be cut by the ends of
   the recording: their durations are scored with the survival function ``P(D >= d)``.

Departures from the paper, so that it holds at 40-180 bpm and under other chest pieces
(each a ``SpringerSettings`` field; ``LEGACY_SETTINGS`` are the paper's values):

- cycles searched at lags 0.3-1.6 s (``heart_rate_lags_s``); every autocorrelation peak
  there within ``heart_rate_peak_ratio`` of the highest is a candidate cycle (the highest
  is often the systolic lag of slow hearts, or twice the cycle of fast ones), each with
  the autocorrelation's systolic interval and (``systole_prior``) the one a line fitted
  to the training annotations gives for that rate; the candidate whose Viterbi path
  scores best wins;
- S1 and S2 durations shrink when together they would fill more than half the cycle
  (``max_sound_fraction``), the systolic lag search starts lower at fast rates;
- emission posteriors are floored (``emission_floor``: a loud murmur or a burst of
  noise cannot veto a state outright);
- training adds ``augment_copies`` copies of each recording through random chest-piece
  responses (``dsp.random_response``).

The trained segmenter is plain numbers (coefficients, intercepts, state priors and the
settings), saved as JSON and loaded without scikit-learn or pickle.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from interp_models.cache import arrays_digest, cached_array, params_key
from interp_models.heart import dsp
from interp_models.heart.states import DIASTOLE, N_STATES, S1, S2, SYSTOLE

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FEATURE_NAMES = ("homomorphic", "hilbert", "psd", "wavelet")


@dataclass(frozen=True)
class SpringerSettings:
    """Everything that determines the segmenter's features, durations and training.

    Durations are ``(mean_s, sd_s)``; the S1 / S2 / systole defaults are the paper's,
    ``diastole_sd`` = (fraction of the mean, constant s). The departures from the paper
    (module doc) are ``max_sound_fraction``, ``heart_rate_*``, ``systole_prior``,
    ``emission_floor`` and ``augment_copies``; ``LEGACY_SETTINGS`` switch them back.
    """

    sample_rate: int = 1000
    frame_rate: int = 50
    band_hz: tuple[float, float] = (25.0, 400.0)
    spike_removal: bool = True
    lpf_hz: float = 8.0
    psd_band_hz: tuple[float, float] = (40.0, 60.0)
    wavelet_vanishing_moments: int = 10
    wavelet_level: int = 3
    s1_s: tuple[float, float] = (0.122, 0.022)
    s2_s: tuple[float, float] = (0.094, 0.022)
    systole_sd_s: float = 0.025
    diastole_sd: tuple[float, float] = (0.07, 0.006)
    min_systole_s: float = 0.04
    min_diastole_s: float = 0.08
    max_sound_fraction: float = 0.5
    heart_rate_lags_s: tuple[float, float] = (0.3, 1.6)
    heart_rate_peak_ratio: float = 0.3
    heart_rate_candidates: int = 4
    min_systole_lag_s: float = 0.2
    systole_prior: bool = True
    emission_floor: float = 0.05
    augment_copies: int = 2
    C: float = 1.0
    max_frames: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("band_hz", "psd_band_hz", "s1_s", "s2_s", "heart_rate_lags_s", "diastole_sd"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.sample_rate % self.frame_rate:
            raise ValueError(
                f"segmenter.sample_rate ({self.sample_rate}) must be a multiple of "
                f"segmenter.frame_rate ({self.frame_rate})"
            )
        if self.band_hz[1] >= self.sample_rate / 2:
            raise ValueError(f"segmenter.band_hz {self.band_hz} reaches Nyquist")
        lo, hi = self.heart_rate_lags_s
        if not 0 < lo < hi:
            raise ValueError(f"segmenter.heart_rate_lags_s must be (low, high) > 0, got {(lo, hi)}")
        if self.heart_rate_candidates < 1 or not 0 <= self.heart_rate_peak_ratio <= 1:
            raise ValueError(
                "segmenter.heart_rate_candidates must be >= 1 and heart_rate_peak_ratio in "
                f"[0, 1], got {self.heart_rate_candidates}, {self.heart_rate_peak_ratio}"
            )

    @property
    def hop(self) -> int:
        return self.sample_rate // self.frame_rate


#: The paper's choices for the settings this module departs from; segmenter files written
#: before those settings existed load with them.
LEGACY_SETTINGS: dict[str, Any] = {
    "max_sound_fraction": 1.0,
    "heart_rate_lags_s": (0.5, 2.0),
    "heart_rate_peak_ratio": 1.0,
    "heart_rate_candidates": 1,
    "systole_prior": False,
    "emission_floor": 0.0,
    "augment_copies": 0,
}


def envelope_features(wave: np.ndarray, settings: SpringerSettings) -> np.ndarray:
    """The four standardised envelope features of ``wave`` (at ``settings.sample_rate``),
    shape ``(len(wave) // hop, 4)`` in the order of ``FEATURE_NAMES``."""
    s = settings
    sr, hop = s.sample_rate, s.hop
    n_frames = len(wave) // hop
    x = dsp.bandpass(wave, sr, *s.band_hz)
    if s.spike_removal:
        x = dsp.remove_spikes(x, sr)
    feats = [
        dsp.to_frames(dsp.homomorphic_envelope(x, sr, s.lpf_hz), hop, n_frames),
        dsp.to_frames(dsp.hilbert_envelope(x), hop, n_frames),
        dsp.psd_band_feature(x, sr, n_frames, s.frame_rate, s.psd_band_hz),
        dsp.to_frames(
            np.abs(dsp.wavelet_detail(x, s.wavelet_level, s.wavelet_vanishing_moments)),
            hop,
            n_frames,
        ),
    ]
    return np.stack([dsp.standardise(f) for f in feats], axis=1)


def _autocorrelation(x: np.ndarray) -> np.ndarray:
    """Autocorrelation at lags 0..len-1 of the mean-removed ``x``, normalised to 1 at 0."""
    x = x - x.mean()
    n = x.size
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    return ac / ac[0] if ac[0] > 0 else ac


def _refine(ac: np.ndarray, k: int) -> float:
    """Lag ``k`` refined by a parabola through ``ac[k]`` and its neighbours (the 50 Hz grid
    alone quantises a cycle to 20 ms)."""
    if not 1 <= k <= ac.size - 2:
        return float(k)
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(k + np.clip(shift, -0.5, 0.5))


def _peaks(ac: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Local maxima of ``ac`` at lags ``lo..hi``, highest first; the highest value of the
    range when it has none (a monotonic stretch)."""
    lo, hi = max(lo, 1), min(hi, ac.size - 2)
    if hi < lo:
        return np.array([min(max(lo, 1), max(ac.size - 1, 0))])
    k = np.arange(lo, hi + 1)
    k = k[(ac[k] >= ac[k - 1]) & (ac[k] > ac[k + 1])]
    if k.size == 0:
        return np.array([lo + int(np.argmax(ac[lo : hi + 1]))])
    return k[np.argsort(-ac[k], kind="stable")]


def _systole(ac: np.ndarray, cycle_frames: float, settings: SpringerSettings) -> float:
    """Systolic interval (s): the highest autocorrelation peak between
    ``min_systole_lag_s`` (less at fast rates: at most 40% of the cycle) and half the cycle."""
    fr = settings.frame_rate
    lo = int(round(min(settings.min_systole_lag_s * fr, 0.4 * cycle_frames)))
    return _refine(ac, int(_peaks(ac, lo, int(round(cycle_frames / 2)))[0])) / fr


def heart_rate_candidates(
    homomorphic: np.ndarray,
    settings: SpringerSettings,
    systole_fit: tuple[float, float] | None = None,
) -> list[tuple[float, float]]:
    """Candidate (heart rate in bpm, systolic interval in s), most likely first, from the
    autocorrelation of the homomorphic envelope feature.

    Springer et al. (2016, after Schmidt et al. 2010) take the highest autocorrelation
    peak at lags ``heart_rate_lags_s`` as the cycle. Over 40-180 bpm that peak is
    ambiguous: at some rates the S1-to-S2 lag (the systolic peak) or twice the cycle
    (a sub-harmonic) is higher than the cycle itself. So every peak reaching
    ``heart_rate_peak_ratio`` of the highest is a candidate (at most
    ``heart_rate_candidates``, highest first), each with its systolic interval: the
    highest peak between ``min_systole_lag_s`` and half the cycle; ``segment`` keeps the
    candidate whose duration-dependent Viterbi path scores best. Slow hearts often show
    no systolic peak at all; ``systole_fit`` = (a, b), the systolic interval
    ``a + b * heart rate`` learned from the training annotations (``SpringerSegmenter``),
    then adds a candidate systole to every cycle.
    """
    fr = settings.frame_rate
    ac = _autocorrelation(np.asarray(homomorphic, dtype=np.float64))
    lo, hi = settings.heart_rate_lags_s
    peaks = _peaks(ac, int(round(lo * fr)), int(round(hi * fr)))
    top = ac[peaks[0]] if peaks[0] < ac.size else 0.0
    if top > 0:
        peaks = peaks[ac[peaks] >= settings.heart_rate_peak_ratio * top]
    out = []
    for k in peaks[: settings.heart_rate_candidates]:
        cycle = _refine(ac, int(k))
        hr = 60.0 * fr / cycle
        systoles = [_systole(ac, cycle, settings)]
        if systole_fit is not None:
            prior = float(np.clip(systole_fit[0] + systole_fit[1] * hr, 0.1, 0.5 * cycle / fr))
            if min(abs(prior - x) for x in systoles) > 1.0 / fr:
                systoles.append(prior)
        out += [(hr, sys_s) for sys_s in systoles]
    return out


def heart_rate(homomorphic: np.ndarray, settings: SpringerSettings) -> tuple[float, float]:
    """(heart rate in bpm, systolic interval in s) from the homomorphic envelope alone:
    the highest autocorrelation peak (``heart_rate_candidates``' first; ``segment``
    chooses among all of them with the emissions)."""
    return heart_rate_candidates(homomorphic, settings)[0]


@dataclass(frozen=True)
class Durations:
    """Per-state duration log-probabilities on frames ``d = 1..D`` (index ``d - 1``)."""

    log_pmf: np.ndarray  # (4, D) log P(D = d), -inf outside mean +/- 3 sd
    log_sf: np.ndarray  # (4, D) log P(D >= d), for states cut by the recording's ends
    means: np.ndarray  # (4,) in frames


def duration_model(hr_bpm: float, systole_s: float, settings: SpringerSettings) -> Durations:
    """Gaussian state durations at ``settings.frame_rate`` for one recording.

    S1 and S2 take ``s1_s`` and ``s2_s``, shortened in proportion when together they would
    fill more than ``max_sound_fraction`` of the cycle (fast hearts); systole is the
    systolic interval less S1, diastole the rest of the cycle less S2 (at least
    ``min_systole_s`` / ``min_diastole_s``), its s.d. ``diastole_sd[0] * mean +
    diastole_sd[1]``.
    """
    s = settings
    fr = s.frame_rate
    cycle = 60.0 / hr_bpm
    shorten = min(1.0, s.max_sound_fraction * cycle / (s.s1_s[0] + s.s2_s[0]))
    s1, s2 = s.s1_s[0] * shorten, s.s2_s[0] * shorten
    mean_sys = max(systole_s - s1, s.min_systole_s)
    mean_dia = max(cycle - systole_s - s2, s.min_diastole_s)
    means = np.array([s1, mean_sys, s2, mean_dia]) * fr
    sd_dia = s.diastole_sd[0] * mean_dia + s.diastole_sd[1]
    sds = np.array([s.s1_s[1], s.systole_sd_s, s.s2_s[1], sd_dia]) * fr
    lo = np.maximum(1, np.floor(means - 3 * sds)).astype(int)
    hi = np.maximum(lo, np.ceil(means + 3 * sds)).astype(int)
    d = np.arange(1, int(hi.max()) + 1)
    pmf = norm.pdf(d[None, :], means[:, None], sds[:, None])
    pmf[(d[None, :] < lo[:, None]) | (d[None, :] > hi[:, None])] = 0.0
    pmf /= pmf.sum(axis=1, keepdims=True)
    sf = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(D >= d)
    with np.errstate(divide="ignore"):
        return Durations(np.log(pmf), np.log(np.clip(sf, 0.0, 1.0)), means)


def viterbi(
    log_emission: np.ndarray, durations: Durations, return_score: bool = False
) -> np.ndarray | tuple[np.ndarray, float]:
    """Most likely state sequence (values 1..4) of a cyclic explicit-duration HSMM.

    Parameters
    ----------
    log_emission : (T, 4) log emission score of each state at each frame.
    durations : the state duration model.

    Each state is followed by the next in the cycle S1 -> systole -> S2 -> diastole -> S1.
    ``delta[t, j]`` is the best score of a path whose state-``j`` segment ends at frame
    ``t``; a segment starting at frame 0 or ending at the last frame may be cut by the
    recording, so its duration is scored by the survival function instead of the pmf.
    With ``return_score``, also the path's log score (emissions plus durations).
    """
    le = np.asarray(log_emission, dtype=np.float64)
    n, k = le.shape
    if k != N_STATES:
        raise ValueError(f"log_emission must be (T, {N_STATES}), got {le.shape}")
    if n == 0:
        return (np.zeros(0, dtype=np.int8), 0.0) if return_score else np.zeros(0, dtype=np.int8)
    dmax = durations.log_pmf.shape[1]
    cs = np.concatenate([np.zeros((1, k)), np.cumsum(le, axis=0)]).T  # (4, T+1)
    prev = (np.arange(k) - 1) % k
    delta = np.full((n, k), -np.inf)
    best_d = np.zeros((n, k), dtype=np.int64)
    for t in range(n):
        nd = min(dmax, t + 1)
        d = np.arange(1, nd + 1)
        s = t - d + 1  # segment start frames
        emit = cs[:, t + 1][:, None] - cs[:, s]  # (4, nd)
        dur = (durations.log_sf if t == n - 1 else durations.log_pmf)[:, :nd]
        before = delta[np.maximum(s - 1, 0)][:, prev].T  # (4, nd): predecessor state's score
        score = before + dur + emit
        if nd == t + 1:  # the segment starting at frame 0 has no predecessor
            score[:, -1] = durations.log_sf[:, t] + emit[:, -1]
        j_best = np.argmax(score, axis=1)
        delta[t] = score[np.arange(k), j_best]
        best_d[t] = j_best + 1
    states = np.zeros(n, dtype=np.int8)
    t, j = n - 1, int(np.argmax(delta[-1]))
    score = float(delta[-1, j])
    if not np.isfinite(score):
        raise RuntimeError("no state sequence fits the duration model (recording too short?)")
    while t >= 0:
        d = int(best_d[t, j])
        states[t - d + 1 : t + 1] = j + 1
        t, j = t - d, int(prev[j])
    return (states, score) if return_score else states


def annotated_intervals(states: np.ndarray, frame_rate: float) -> tuple[float, float] | None:
    """(heart rate in bpm, systolic interval in s) of an annotated recording: median S1
    onset-to-onset interval and median S1-onset-to-S2-onset interval (None with fewer than
    two whole beats)."""
    s = np.asarray(states)
    s1 = np.flatnonzero((s[1:] == S1) & (s[:-1] != S1)) + 1
    s2 = np.flatnonzero((s[1:] == S2) & (s[:-1] != S2)) + 1
    systoles = []
    for a, b in zip(s1[:-1], s1[1:], strict=True):
        k = s2[(s2 > a) & (s2 < b)]
        if k.size:
            systoles.append(k[0] - a)
    if len(s1) < 3 or not systoles:
        return None
    rate = 60.0 * frame_rate / float(np.median(np.diff(s1)))
    return rate, float(np.median(systoles)) / frame_rate


def _fit_systole(
    frame_states: Sequence[np.ndarray], settings: SpringerSettings
) -> tuple[float, float] | None:
    """Least-squares (a, b) of systolic interval = a + b * heart rate over the annotated
    recordings (as Weissler's QS2 index falls linearly with the rate); None with fewer
    than 5 usable recordings or a rate range under 10 bpm."""
    pairs = [p for s in frame_states if (p := annotated_intervals(s, settings.frame_rate))]
    if len(pairs) < 5:
        return None
    rate, systole = np.array(pairs).T
    if np.ptp(rate) < 10:
        return None
    b, a = np.polyfit(rate, systole, 1)
    return float(a), float(b)


@dataclass
class SpringerSegmenter:
    """A trained segmenter: one logistic regression per state on the four features."""

    settings: SpringerSettings
    coef: np.ndarray  # (4 states, 4 features)
    intercept: np.ndarray  # (4,)
    priors: np.ndarray  # (4,) fraction of training frames in each state
    training: dict[str, Any] = field(default_factory=dict)
    #: (a, b): systolic interval (S1 onset to S2 onset, s) = a + b * heart rate (bpm),
    #: fitted to the training annotations (None: autocorrelation peaks only)
    systole_fit: tuple[float, float] | None = None

    @classmethod
    def fit(
        cls,
        waves: Sequence[np.ndarray],
        frame_states: Sequence[np.ndarray],
        settings: SpringerSettings | None = None,
    ) -> SpringerSegmenter:
        """Train the emission models on labelled recordings.

        Parameters
        ----------
        waves : recordings at ``settings.sample_rate``.
        frame_states : per-frame states (0 unlabelled frames are left out), each of
            length ``len(wave) // settings.hop``.
        """
        from sklearn.linear_model import LogisticRegression  # training only

        settings = settings or SpringerSettings()
        feats, labels = [], []
        for i, (wave, states) in enumerate(zip(waves, frame_states, strict=True)):
            f = envelope_features(wave, settings)
            if len(states) != len(f):
                raise ValueError(
                    f"recording {i}: {len(states)} frame states for {len(f)} feature frames"
                )
            keep = np.asarray(states) > 0
            feats.append(f[keep])
            labels.append(np.asarray(states)[keep])
            for c in range(settings.augment_copies):  # other chest-piece responses
                rng = np.random.default_rng([settings.seed, i, c])
                other = dsp.random_response(wave, settings.sample_rate, rng)
                feats.append(envelope_features(other, settings)[keep])
                labels.append(np.asarray(states)[keep])
        x, y = np.concatenate(feats), np.concatenate(labels).astype(int)
        present = sorted(set(y.tolist()))
        if present != [S1, SYSTOLE, S2, DIASTOLE]:
            raise ValueError(f"training frames must cover states 1..4, got {present}")
        if len(y) > settings.max_frames:  # logistic regression needs no more than this
            pick = np.random.default_rng(settings.seed).choice(
                len(y), settings.max_frames, replace=False
            )
            x, y = x[np.sort(pick)], y[np.sort(pick)]
        coef, intercept = np.zeros((N_STATES, x.shape[1])), np.zeros(N_STATES)
        for j in range(N_STATES):
            lr = LogisticRegression(C=settings.C, max_iter=1000)
            lr.fit(x, (y == j + 1).astype(int))
            coef[j], intercept[j] = lr.coef_[0], lr.intercept_[0]
        priors = np.bincount(y, minlength=N_STATES + 1)[1:] / len(y)
        info = {"recordings": len(waves), "frames": int(len(y))}
        log.info("trained the Springer segmenter on %d frames", len(y))
        return cls(settings, coef, intercept, priors, info, _fit_systole(frame_states, settings))

    def emission_log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """(T, 4) ``log P(state | o_t) - log P(state)`` (scaled likelihoods).

        With ``settings.emission_floor`` = e > 0 the posterior is ``(1 - e) P + e``: no
        frame can veto a state outright (a loud murmur, a friction burst or any other
        sound unlike the training data then costs a bounded amount, and the duration
        model decides).
        """
        z = features @ self.coef.T + self.intercept
        log_post = -np.logaddexp(0.0, -z)  # log sigmoid, stable for large |z|
        e = self.settings.emission_floor
        if e > 0:
            log_post = np.logaddexp(np.log1p(-e) + log_post, np.log(e))
        return log_post - np.log(self.priors)

    def segment(
        self, wave: np.ndarray, return_heart_rate: bool = False
    ) -> np.ndarray | tuple[np.ndarray, float, float]:
        """Per-frame states (1..4, int8) of ``wave`` at ``settings.sample_rate``.

        With ``return_heart_rate``, also the estimated heart rate (bpm) and systolic
        interval (s) the duration model used.
        """
        f = envelope_features(np.asarray(wave, dtype=np.float64), self.settings)
        if len(f) < 4:
            raise ValueError(
                f"recording too short to segment: {len(wave)} samples at "
                f"{self.settings.sample_rate} Hz"
            )
        log_em = self.emission_log_likelihood(f)
        best = None
        fit = self.systole_fit if self.settings.systole_prior else None
        for hr, sys_s in heart_rate_candidates(f[:, 0], self.settings, fit):
            try:
                states, score = viterbi(log_em, duration_model(hr, sys_s, self.settings), True)
            except RuntimeError:
                continue  # this candidate's durations cannot tile the recording
            if best is None or score > best[0]:
                best = (score, states, hr, sys_s)
        if best is None:
            raise RuntimeError("no state sequence fits the duration model (recording too short?)")
        _, states, hr, sys_s = best
        return (states, hr, sys_s) if return_heart_rate else states

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "springer-lr-hsmm",
            "version": FORMAT_VERSION,
            "features": list(FEATURE_NAMES),
            "settings": asdict(self.settings),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "priors": self.priors.tolist(),
            "training": self.training,
            "systole_fit": list(self.systole_fit) if self.systole_fit is not None else None,
        }

    def save(self, path: str | Path) -> Path:
        """Write the segmenter as JSON (numbers only, no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpringerSegmenter:
        """Read a segmenter written by ``save``; errors name the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable segmenter file ({err})") from None
        if data.get("format") != "springer-lr-hsmm" or data.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: not a springer-lr-hsmm segmenter of version {FORMAT_VERSION}"
            )
        try:
            seg = cls(
                SpringerSettings(**{**LEGACY_SETTINGS, **data["settings"]}),
                np.asarray(data["coef"], dtype=np.float64),
                np.asarray(data["intercept"], dtype=np.float64),
                np.asarray(data["priors"], dtype=np.float64),
                data.get("training", {}),
                tuple(float(v) for v in fit) if (fit := data.get("systole_fit")) else None,
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: missing or bad field ({err})") from None
        if seg.coef.shape != (N_STATES, len(FEATURE_NAMES)) or seg.intercept.shape != (N_STATES,):
            raise ValueError(f"{path}: coefficient shapes {seg.coef.shape}, {seg.intercept.shape}")
        return seg


def segment_recordings(
    segmenter: SpringerSegmenter,
    waves: Sequence[np.ndarray],
    n_frames: Sequence[int],
    hop: int,
    cache_root: Path,
) -> list[np.ndarray]:
    """Per-frame states of every recording, cached on disk by segmenter, audio and hop.

    ``n_frames[i]`` is the number of 50 Hz frames of ``waves[i]``; the result is one int8
    state array per recording, stored once under ``cache_root/springer/``.
    """
    key = params_key({"segmenter": segmenter.to_dict(), "waves": arrays_digest(waves), "hop": hop})

    def build() -> np.ndarray:
        start = time.perf_counter()
        out = np.concatenate([segmenter.segment(w) for w in waves]).astype(np.int8)
        log.info("segmented %d recordings in %.1f s", len(waves), time.perf_counter() - start)
        return out

    flat = cached_array(cache_root / "springer" / f"states-{key}.npy", build)
    bounds = np.cumsum([0, *n_frames])
    if flat.shape != (bounds[-1],):
        raise RuntimeError(f"cached segmentation {key} does not match the recordings")
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
