"""The built-in phonocardiogram generator: determinism, ground truth, layout on disk."""

from __future__ import annotations

import numpy as np
import pytest

from interp_models.data.physionet2016 import read_events, read_physionet2016, read_segmentation
from interp_models.data.synth_pcg import (
    ABNORMAL_KINDS,
    KIND_STATE,
    SynthPCGConfig,
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
    ],
)
def test_bad_config_is_rejected_with_its_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SynthPCGConfig(**bad)
