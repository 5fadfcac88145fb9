"""The built-in phonocardiogram generator: determinism, ground truth, layout on disk."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
import yaml
from conftest import ROOT

from interp_models.data.physionet2016 import read_events, read_physionet2016, read_segmentation
from interp_models.data.synth_pcg import (
    ABNORMAL_KINDS,
    KIND_STATE,
    SynthPCGConfig,
    cache_key,
    generate_pcg,
    recording_kind,
    synthesize_recording,
)
from interp_models.heart.states import DIASTOLE, S1, S2, SYSTOLE, segments_from_states

SR = 2000
SHORT = SynthPCGConfig(num_recordings=8, duration_s=(5.0, 7.0), snr_db=(15.0, 25.0))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def test_same_seed_same_recording_other_seed_other_recording():
    a, b = synthesize_recording(SHORT, 3), synthesize_recording(SHORT, 3)
    assert np.array_equal(a.mix, b.mix) and np.array_equal(a.states, b.states)
    assert a.events == b.events
    other = synthesize_recording(SynthPCGConfig(**{**SHORT.__dict__, "seed": 1}), 3)
    assert not np.array_equal(a.mix[:1000], other.mix[:1000])


def test_labels_are_balanced_over_kinds():
    cfg = SynthPCGConfig(num_recordings=40, abnormal_fraction=0.5)
    kinds = [recording_kind(cfg, i) for i in range(40)]
    assert sum(k in KIND_STATE for k in kinds) == 20
    assert all(kinds.count(k) == 5 for k in ABNORMAL_KINDS)
    assert {"normal", "innocent"} <= set(kinds)


@pytest.mark.parametrize("index", range(8))
def test_every_sample_has_a_state_and_states_cycle(index):
    rec = synthesize_recording(SHORT, index)
    assert rec.states.shape == rec.mix.shape and set(np.unique(rec.states)) <= {1, 2, 3, 4}
    seg = segments_from_states(rec.states, SR)
    order = seg.state.astype(int)
    assert np.all((order[1:] - order[:-1]) % 4 == 1)  # S1 -> systole -> S2 -> diastole -> S1
    inner = slice(1, -1)  # the first and last spans are cut by the recording
    lengths = (seg.end_s - seg.start_s)[inner]
    s1 = lengths[order[inner] == S1]
    s2 = lengths[order[inner] == S2]
    assert np.all((s1 > 0.08) & (s1 < 0.17)) and np.all((s2 > 0.05) & (s2 < 0.14))
    onsets = seg.start_s[order == S1][1:]  # beats wholly inside
    assert abs(60 / np.mean(np.diff(onsets)) - rec.heart_rate_bpm) < 0.08 * rec.heart_rate_bpm


def test_heart_sounds_lie_in_their_spans():
    rec = synthesize_recording(SHORT, 0)  # normal, no murmur
    assert rec.kind == "normal"
    sounds = _rms(rec.heart[(rec.states == S1) | (rec.states == S2)])
    assert sounds > 10 * _rms(rec.heart[rec.states == SYSTOLE])
    assert sounds > 10 * _rms(rec.heart[rec.states == DIASTOLE])


@pytest.mark.parametrize("kind", ABNORMAL_KINDS)
def test_lesions_lie_in_their_state_in_every_beat(kind):
    cfg = SynthPCGConfig(num_recordings=8, duration_s=(5.0, 7.0))
    index = next(i for i in range(8) if recording_kind(cfg, i) == kind)
    rec = synthesize_recording(cfg, index)
    assert rec.label == 1 and rec.events
    state = KIND_STATE[kind]
    inside = np.zeros(rec.mix.size, dtype=bool)
    for ev in rec.events:
        assert ev.kind == kind and ev.state == state
        span = slice(int(round(ev.start_s * SR)), int(round(ev.end_s * SR)))
        inside[span] = True
        assert np.mean(rec.states[span] == state) > 0.97
    n_beats = np.sum(np.diff((rec.states == S1).astype(int)) == 1)
    assert len(rec.events) >= n_beats - 1  # one lesion per beat
    # The lesion is energy where a normal heart is silent: the other silent state.
    quiet = DIASTOLE if state == SYSTOLE else SYSTOLE
    assert _rms(rec.heart[inside]) > 5 * _rms(rec.heart[rec.states == quiet])


def test_layout_round_trips_through_the_physionet_reader(tmp_path):
    cfg = SynthPCGConfig(num_recordings=6, duration_s=(5.0, 6.0))
    generate_pcg(cfg, tmp_path)
    records, unsure = read_physionet2016(tmp_path, n_folds=3)
    assert len(records) == 6 and unsure == []
    assert {r.set_name for r in records} == {"training-a", "training-b"}
    for rec in records:
        i = (int(rec.name[1:]) - 1) * cfg.n_sets + ord(rec.name[0]) - ord("a")
        truth = synthesize_recording(cfg, i)
        assert rec.label == truth.label and rec.path.is_file()
        seg = read_segmentation(rec.segmentation_path)
        assert np.array_equal(seg.to_rate(truth.states.size, SR), truth.states)  # sample-exact
        events = read_events(rec.events_path)
        assert [(e.kind, e.state) for e in events] == [(e.kind, e.state) for e in truth.events]
        assert np.allclose([e.start_s for e in events], [e.start_s for e in truth.events])
    assert (tmp_path / "generator.json").is_file()


@pytest.mark.parametrize(
    "bad",
    [
        {"num_recordings": 0},
        {"duration_s": (8.0, 5.0)},
        {"duration_s": (1.0, 5.0)},
        {"abnormal_fraction": 1.5},
        {"sample_rate": 500},
        {"heart_rate_bpm": (20.0, 100.0)},
        {"heart_rate_bpm": (40.0, 210.0)},
        {"stethoscope": "horn"},
        {"s3_fraction": 1.5},
        {"min_diastole_s": 0.01},
        {"s2_split_s": (0.0, 0.2)},
    ],
)
def test_bad_config_is_rejected_with_its_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SynthPCGConfig(**bad)


# --------------------------------------------------------------------------- shifts

SHIFTED_YAML = ROOT / "configs" / "data" / "heart_synth_shifted.yaml"


def _digest(config: SynthPCGConfig) -> str:
    h = hashlib.sha1()
    for i in range(config.num_recordings):
        rec = synthesize_recording(config, i)
        h.update(rec.states.tobytes())
        h.update(
            repr([(round(e.start_s, 6), round(e.end_s, 6), e.kind) for e in rec.events]).encode()
        )
    return h.hexdigest()


def test_default_shift_fields_keep_the_data_and_its_cache_key():
    """The shift fields at their defaults change nothing: same states and lesions as the
    generator before them (digest taken then), same cache key as the built-in data had."""
    assert SHORT.shifted_fields() == {}
    assert _digest(SHORT) == "6adc5c90884181cefc8aa1180cccc392592e110e"
    assert cache_key(SynthPCGConfig(num_recordings=800)) == "451cb0b66ea98a0b"
    shifted = replace(SHORT, speech_fraction=0.5)
    assert shifted.shifted_fields() == {"speech_fraction": 0.5}
    assert cache_key(shifted) != cache_key(SHORT)


def test_shifts_draw_from_their_own_stream():
    """Extra sounds and noise, and another chest piece, leave the heart's timing, lesions
    and labels alone (their draws come from a second random stream)."""
    on = replace(SHORT, s3_fraction=1.0, s4_fraction=1.0, friction_per_s=0.5, speech_fraction=1.0)
    for index in range(4):
        a, b = synthesize_recording(SHORT, index), synthesize_recording(on, index)
        c = synthesize_recording(replace(on, stethoscope="mixed"), index)
        for other in (b, c):
            assert np.array_equal(a.states, other.states) and a.events == other.events
            assert (a.label, a.kind, a.heart_rate_bpm) == (
                other.label,
                other.kind,
                other.heart_rate_bpm,
            )
            assert np.allclose(other.mix, other.heart + other.noise)
        assert not np.allclose(a.noise, b.noise) and not np.allclose(b.mix, c.mix)


def test_physiological_s3_and_s4_lie_in_diastole_and_are_no_lesions():
    index = next(i for i in range(8) if recording_kind(SHORT, i) == "normal")
    plain = synthesize_recording(SHORT, index)
    for field in ("s3_fraction", "s4_fraction"):
        rec = synthesize_recording(replace(SHORT, **{field: 1.0}), index)
        # the recording's final scaling differs: compare at the scale of the S1 sounds
        s1 = rec.states == S1
        ratio = np.dot(rec.heart[s1], plain.heart[s1]) / np.dot(plain.heart[s1], plain.heart[s1])
        added = np.abs(rec.heart - ratio * plain.heart) > 1e-6 * np.abs(rec.heart).max()
        assert added.sum() > 0.02 * rec.states.size  # one sound per beat
        assert np.all(rec.states[added] == DIASTOLE)
        assert rec.label == -1 and rec.events == [] and rec.kind == "normal"
        assert rec.params[f"physiological_{field[:2]}"] == 1.0


def _inner_lengths(rec, state: int) -> np.ndarray:
    seg = segments_from_states(rec.states, SR)
    inner = slice(1, -1)  # the first and last spans are cut by the recording
    return (seg.end_s - seg.start_s)[inner][seg.state[inner] == state]


def test_fast_hearts_keep_their_rate():
    cfg = replace(
        SHORT, heart_rate_bpm=(170.0, 180.0), min_diastole_s=0.08, fast_rate_shortening=0.5
    )
    for index in range(4):
        rec = synthesize_recording(cfg, index)
        seg = segments_from_states(rec.states, SR)
        order = seg.state.astype(int)
        assert np.all((order[1:] - order[:-1]) % 4 == 1)
        onsets = seg.start_s[order == S1][1:]
        assert abs(60 / np.mean(np.diff(onsets)) - rec.heart_rate_bpm) < 0.05 * rec.heart_rate_bpm
        assert np.all(_inner_lengths(rec, S1) < 0.11)  # ~25% shorter than at rest (0.122 s)


def test_wide_splits_widen_s2():
    wide = replace(SHORT, s2_split_s=(0.06, 0.06), s2_split_resp_s=(0.02, 0.02))
    for index in range(4):  # same S2 components, splits 60-80 ms instead of 5-32 ms
        narrow = _inner_lengths(synthesize_recording(SHORT, index), S2)
        widened = _inner_lengths(synthesize_recording(wide, index), S2)
        assert 0.04 < np.mean(widened) - np.mean(narrow) < 0.08


def test_the_shifted_config_is_the_heart_config_with_shifts():
    shifted = yaml.safe_load(SHIFTED_YAML.read_text())
    default = yaml.safe_load((SHIFTED_YAML.parent / "heart_synth.yaml").read_text())
    assert {k: v for k, v in shifted.items() if k != "synth"} == {
        k: v for k, v in default.items() if k != "synth"
    }
    cfg = SynthPCGConfig(**shifted["synth"])
    assert cfg.heart_rate_bpm == (40.0, 180.0) and cfg.seed != default["synth"]["seed"]
    assert set(cfg.shifted_fields()) == {
        "min_diastole_s",
        "fast_rate_shortening",
        "s2_split_s",
        "s2_split_resp_s",
        "s3_fraction",
        "s4_fraction",
        "friction_per_s",
        "speech_fraction",
        "stethoscope",
    }
    kinds = [recording_kind(cfg, i) for i in range(cfg.num_recordings)]
    assert sum(k in KIND_STATE for k in kinds) >= 100  # scored as a whole
