"""The Springer LR-HSMM segmenter: its pieces on known answers, and training end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluate.heart.metrics import match_within, sound_detection
from interp_models.audio.io import load_audio
from interp_models.data.physionet2016 import read_physionet2016, read_segmentation
from interp_models.data.synth_pcg import SynthPCGConfig, generate_pcg
from interp_models.heart import dsp
from interp_models.heart.springer import (
    SpringerSegmenter,
    SpringerSettings,
    duration_model,
    envelope_features,
    heart_rate,
    viterbi,
)
from interp_models.heart.states import FRAME_RATE

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
    decoded = viterbi(log_em + 0.3 * rng.standard_normal(log_em.shape), durations)
    assert np.mean(decoded == truth) > 0.9
    assert decoded[0] == truth[0] and decoded[-1] == truth[-1]


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
