"""The Springer LR-HSMM segmenter: its pieces on known answers, and training end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from evaluate.heart.metrics import (
    heart_rate_from_states,
    match_within,
    sound_detection,
    sound_detection_by_rate,
)
from interp_models.audio.io import load_audio
from interp_models.data.physionet2016 import read_physionet2016, read_segmentation
from interp_models.data.synth_pcg import SynthPCGConfig, generate_pcg, synthesize_recording
from interp_models.heart import dsp
from interp_models.heart.springer import (
    LEGACY_SETTINGS,
    SpringerSegmenter,
    SpringerSettings,
    duration_model,
    envelope_features,
    heart_rate,
    heart_rate_candidates,
    viterbi,
)
from interp_models.heart.states import FRAME_RATE, segments_from_states

SETTINGS = SpringerSettings()


def test_daubechies_filters_are_the_known_orthonormal_ones():
    s3 = np.sqrt(3)
    db2 = np.array([1 + s3, 3 + s3, 3 - s3, 1 - s3]) / (4 * np.sqrt(2))
    assert np.allclose(dsp.daubechies_lowpass(2), db2)
    h = dsp.daubechies_lowpass(10)
    assert h.size == 20 and h.sum() == pytest.approx(np.sqrt(2))
    for m in range(10):  # orthonormal to its even shifts
        assert np.dot(h[: h.size - 2 * m], h[2 * m :]) == pytest.approx(float(m == 0), abs=1e-9)
    # level-3 detail at 1 kHz passes ~62-125 Hz: a 90 Hz tone survives, a 10 Hz one does not
    t = np.arange(4000) / 1000
    keep = dsp.wavelet_detail(np.sin(2 * np.pi * 90 * t))[500:-500]
    drop = dsp.wavelet_detail(np.sin(2 * np.pi * 10 * t))[500:-500]
    assert np.std(keep) > 20 * np.std(drop)


def test_spike_removal_zeroes_the_spike_only():
    rng = np.random.default_rng(0)
    x = 0.1 * np.sin(2 * np.pi * 30 * np.arange(5000) / 1000) + 0.01 * rng.standard_normal(5000)
    spiky = x.copy()
    spiky[2600:2603] += [3.0, 5.0, 3.0]
    out = dsp.remove_spikes(spiky, 1000)
    assert np.abs(out[2590:2615]).max() < 0.2
    untouched = np.ones(5000, dtype=bool)
    untouched[2550:2650] = False
    assert np.array_equal(out[untouched], spiky[untouched])


def _envelope(hr_bpm: float, systole_s: float, seconds: float = 10.0) -> np.ndarray:
    """50 Hz envelope with an S1 bump every cycle and a smaller S2 bump ``systole_s`` later."""
    t = np.arange(int(seconds * FRAME_RATE)) / FRAME_RATE
    env = np.zeros_like(t)
    for on in np.arange(0.1, seconds, 60 / hr_bpm):
        env += np.exp(-0.5 * ((t - on - 0.05) / 0.02) ** 2)
        env += 0.7 * np.exp(-0.5 * ((t - on - systole_s - 0.04) / 0.02) ** 2)
    return env


@pytest.mark.parametrize(("hr", "systole"), [(60.0, 0.34), (75.0, 0.3), (110.0, 0.25)])
def test_heart_rate_and_systole_from_autocorrelation(hr, systole):
    est_hr, est_sys = heart_rate(_envelope(hr, systole), SETTINGS)
    assert est_hr == pytest.approx(hr, rel=0.02)
    assert est_sys == pytest.approx(systole, abs=0.025)


@pytest.mark.parametrize(("hr", "systole"), [(42.0, 0.41), (125.0, 0.2), (175.0, 0.15)])
def test_heart_rate_candidates_hold_slow_and_fast_hearts(hr, systole):
    """At 40-180 bpm the true cycle is among the candidates; the paper's 0.5-2 s search
    window cannot see a cycle under 0.5 s (a fast heart is taken at half its rate)."""
    cands = heart_rate_candidates(_envelope(hr, systole, seconds=12.0), SETTINGS)
    assert 1 <= len(cands) <= SETTINGS.heart_rate_candidates
    assert min(abs(c[0] - hr) for c in cands) < 0.03 * hr
    paper = SpringerSettings(**{**LEGACY_SETTINGS, "augment_copies": 0})
    if hr > 120:
        assert heart_rate(_envelope(hr, systole, seconds=12.0), paper)[0] < 0.6 * hr


def test_systole_fit_adds_a_candidate_systole():
    env = _envelope(60.0, 0.34)
    plain = heart_rate_candidates(env, SETTINGS)
    fitted = heart_rate_candidates(env, SETTINGS, systole_fit=(0.5, -0.0021))
    assert set(plain) < set(fitted)
    assert any(abs(s - (0.5 - 0.0021 * h)) < 1e-9 for h, s in fitted)


def test_duration_model_shortens_sounds_at_fast_rates():
    slow, fast = duration_model(60.0, 0.34, SETTINGS), duration_model(175.0, 0.15, SETTINGS)
    assert slow.means[0] == pytest.approx(0.122 * FRAME_RATE)  # the paper's S1 at rest
    assert fast.means[0] + fast.means[2] == pytest.approx(0.5 * 60 / 175 * FRAME_RATE)
    assert fast.means.sum() == pytest.approx(60 / 175 * FRAME_RATE, rel=0.1)  # one cycle


def test_emission_floor_bounds_the_penalty_of_an_outlier_frame():
    seg = SpringerSegmenter(
        SETTINGS, np.eye(4) * 50.0, np.zeros(4), np.full(4, 0.25), systole_fit=None
    )
    frame = np.array([[100.0, -100.0, -100.0, -100.0]])  # certainly S1 to the regressions
    floored = seg.emission_log_likelihood(frame)
    assert floored.min() == pytest.approx(np.log(SETTINGS.emission_floor / 0.25), abs=1e-6)
    seg.settings = replace(SETTINGS, emission_floor=0.0)
    assert seg.emission_log_likelihood(frame).min() < -1000


def test_random_response_keeps_timing():
    x = np.zeros(4000)
    x[2000] = 1.0
    a = dsp.random_response(x, 1000, np.random.default_rng(0))
    b = dsp.random_response(x, 1000, np.random.default_rng(1))
    assert np.argmax(np.abs(a)) == np.argmax(np.abs(b)) == 2000  # zero phase
    assert not np.allclose(a, b)
    assert np.array_equal(a, dsp.random_response(x, 1000, np.random.default_rng(0)))


def test_viterbi_recovers_a_noisy_state_sequence_cut_at_both_ends():
    rng = np.random.default_rng(0)
    durations = duration_model(72.0, 0.32, SETTINGS)
    # truth: durations drawn around the model's means, starting and ending mid-state
    truth = []
    state = 2
    while len(truth) < 600:
        d = max(2, int(round(durations.means[state - 1] * rng.uniform(0.9, 1.1))))
        truth += [state] * d
        state = state % 4 + 1
    truth = np.array(truth[7:557])
    log_em = np.full((truth.size, 4), -1.5)
    log_em[np.arange(truth.size), truth - 1] = 0.0
    flip = rng.random(truth.size) < 0.25  # a quarter of the frames favour a wrong state
    log_em[flip] = rng.permutation(log_em[flip].T).T
    log_em = log_em + 0.3 * rng.standard_normal(log_em.shape)
    decoded = viterbi(log_em, durations)
    assert np.mean(decoded == truth) > 0.9
    assert decoded[0] == truth[0] and decoded[-1] == truth[-1]
    again, score = viterbi(log_em, durations, return_score=True)
    assert np.array_equal(again, decoded) and np.isfinite(score)
    # a duration model of twice the rate explains the same frames worse
    assert viterbi(log_em, duration_model(144.0, 0.2, SETTINGS), return_score=True)[1] < score


def test_sound_detection_on_known_cases():
    # reference: S1 at frames 10-15, S2 at 30-34; estimate shifted by 2 frames (40 ms)
    ref = np.array([4] * 10 + [1] * 6 + [2] * 14 + [3] * 5 + [4] * 15)
    est = np.roll(ref, 2)
    est[:2] = 4
    assert sound_detection([(ref, est)], FRAME_RATE)["f1"] == 1.0
    late = np.roll(ref, 4)  # 80 ms: outside the 60 ms tolerance
    late[:4] = 4
    r = sound_detection([(ref, late)], FRAME_RATE)
    assert (r["tp"], r["fp"], r["fn"], r["f1"]) == (0, 2, 2, 0.0)
    extra = ref.copy()
    extra[44:46] = 1  # a spurious S1 in diastole
    r = sound_detection([(ref, extra)], FRAME_RATE)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 0) and r["f1"] == pytest.approx(0.8)
    unlabelled = np.where(np.arange(ref.size) >= 40, 0, ref)  # detections there don't count
    assert sound_detection([(unlabelled, extra)], FRAME_RATE)["fp"] == 0
    assert match_within(np.array([1.0, 2.0]), np.array([1.05, 1.1, 2.2]), 0.06) == 1


def _beats(cycle: list[tuple[int, int]], seconds: float) -> np.ndarray:
    """Frame states repeating ``cycle`` = [(state, frames), ...] for ``seconds``."""
    one = np.concatenate([np.full(n, state) for state, n in cycle])
    return np.resize(one, int(seconds * FRAME_RATE)).astype(np.int8)


def test_sound_detection_by_rate_on_known_cases():
    slow = _beats([(1, 5), (2, 12), (3, 4), (4, 29)], 10.0)  # 50 frames: 60 bpm
    fast = _beats([(1, 4), (2, 4), (3, 3), (4, 9)], 10.0)  # 20 frames: 150 bpm
    odd = _beats([(1, 5), (2, 10), (3, 5), (4, 80)], 10.0)  # 100 frames: 30 bpm
    assert heart_rate_from_states(slow, FRAME_RATE) == pytest.approx(60.0)
    assert heart_rate_from_states(fast, FRAME_RATE) == pytest.approx(150.0)
    assert np.isnan(heart_rate_from_states(np.full(100, 4), FRAME_RATE))
    missed = np.full_like(fast, 4)  # no sound found at all
    pairs = [(slow, slow), (fast, missed), (odd, odd)]
    r = sound_detection_by_rate(pairs, FRAME_RATE, bands=[(40, 80), (80, 120), (120, 150)])
    assert list(r) == ["40-80", "80-120", "120-150", "all"]
    assert (r["40-80"]["recordings"], r["40-80"]["f1"], r["40-80"]["rate_bpm"]) == (1, 1.0, 60.0)
    assert r["80-120"]["recordings"] == 0 and np.isnan(r["80-120"]["f1"])
    # the last band holds its upper edge; every sound of the fast heart was missed
    n_fast = 2 * 25  # 25 whole beats in 10 s, one S1 and one S2 each
    assert (r["120-150"]["recordings"], r["120-150"]["tp"], r["120-150"]["fn"]) == (1, 0, n_fast)
    assert r["120-150"]["f1"] == 0.0 and r["120-150"]["recall"] == 0.0
    n_slow, n_odd = 2 * 10, 2 * 5
    assert r["all"]["recordings"] == 3 and r["all"]["outside_bands"] == 1  # 30 bpm
    assert r["all"]["tp"] == n_slow + n_odd and r["all"]["fn"] == n_fast
    assert r["all"]["f1"] == pytest.approx(2 * 30 / (2 * 30 + n_fast))
    with pytest.raises(ValueError, match="low < high"):
        sound_detection_by_rate(pairs, FRAME_RATE, bands=[(80, 40)])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """18 built-in recordings of 6-9 s at 1 kHz with their frame states."""
    root = generate_pcg(
        SynthPCGConfig(num_recordings=18, duration_s=(6.0, 9.0), seed=3),
        tmp_path_factory.mktemp("pcg"),
    )
    records, _ = read_physionet2016(root)
    waves = [load_audio(r.path, 1000) for r in records]
    states = [
        read_segmentation(r.segmentation_path).to_frames(len(w) // SETTINGS.hop)
        for r, w in zip(records, waves, strict=True)
    ]
    return waves, states


def test_trained_segmenter_finds_s1_and_s2_on_held_out_recordings(labelled, tmp_path):
    waves, states = labelled
    feats = envelope_features(waves[0], SETTINGS)
    assert feats.shape == (len(waves[0]) // 20, 4)
    assert np.allclose(feats.mean(0), 0, atol=1e-6) and np.allclose(feats.std(0), 1)
    seg = SpringerSegmenter.fit(waves[:12], states[:12], SETTINGS)
    est = [seg.segment(w) for w in waves[12:]]
    scores = sound_detection(zip(states[12:], est, strict=True), FRAME_RATE)
    assert scores["f1"] > 0.93, scores
    # saved as plain JSON and reloaded to the same segmentations
    path = seg.save(tmp_path / "segmenter.json")
    assert json.loads(path.read_text())["format"] == "springer-lr-hsmm"
    again = SpringerSegmenter.load(path)
    assert all(np.array_equal(a, again.segment(w)) for a, w in zip(est, waves[12:], strict=True))


@pytest.mark.parametrize("rates", [(40.0, 48.0), (160.0, 180.0)])
def test_trained_segmenter_holds_slow_and_fast_hearts(labelled, rates):
    """Trained at 50-115 bpm, it segments hearts at 40-180 bpm; the paper's settings take
    a fast heart at half its rate. (Some fast recordings still come out with S1 and S2
    swapped: systole and diastole are then about as long, so only the sounds' character
    tells them apart; the rate is then right, the F1 0.)"""
    waves, states = labelled
    cfg = SynthPCGConfig(
        num_recordings=3,
        duration_s=(6.0, 8.0),
        snr_db=(10.0, 20.0),
        heart_rate_bpm=rates,
        min_diastole_s=0.08,
        fast_rate_shortening=0.5,
        abnormal_fraction=0.0,
        seed=13,
    )
    recs = [synthesize_recording(cfg, i) for i in range(3)]
    test_waves = [signal.resample_poly(r.mix, 1, 2) for r in recs]
    truth = [
        segments_from_states(r.states, r.sample_rate).to_frames(len(w) // SETTINGS.hop)
        for r, w in zip(recs, test_waves, strict=True)
    ]
    seg = SpringerSegmenter.fit(waves, states, SETTINGS)
    found = [seg.segment(w, return_heart_rate=True) for w in test_waves]
    assert sound_detection(zip(truth, [f[0] for f in found], strict=True), FRAME_RATE)["f1"] > 0.95
    for (_, hr, _), r in zip(found, recs, strict=True):
        assert hr == pytest.approx(r.heart_rate_bpm, rel=0.08)
    if rates[0] > 120:
        paper = SpringerSettings(**{**LEGACY_SETTINGS, "augment_copies": 0})
        old = SpringerSegmenter.fit(waves, states, paper)
        est = [old.segment(w) for w in test_waves]
        assert sound_detection(zip(truth, est, strict=True), FRAME_RATE)["f1"] < 0.8


def test_segmenter_files_without_the_new_settings_load_with_the_papers(labelled, tmp_path):
    waves, states = labelled
    seg = SpringerSegmenter.fit(waves[:8], states[:8], replace(SETTINGS, augment_copies=0))
    data = seg.to_dict()
    assert data["systole_fit"] is not None
    for key in LEGACY_SETTINGS:
        data["settings"].pop(key)
    data.pop("systole_fit")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = SpringerSegmenter.load(path)
    assert old.systole_fit is None
    assert all(getattr(old.settings, k) == v for k, v in LEGACY_SETTINGS.items())


def test_segmenter_errors_name_the_problem(labelled, tmp_path):
    waves, states = labelled
    with pytest.raises(ValueError, match="frame states"):
        SpringerSegmenter.fit(waves[:1], [states[0][:-5]])
    with pytest.raises(ValueError, match="states 1..4"):
        SpringerSegmenter.fit(waves[:1], [np.where(states[0] == 3, 4, states[0])])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        SpringerSegmenter.load(bad)
    with pytest.raises(ValueError, match="multiple"):
        SpringerSettings(sample_rate=1010)
