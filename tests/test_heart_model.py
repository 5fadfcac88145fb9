"""Segmentation-aware model: exact decomposition, batching, learning; metrics, per-state
aggregation of post-hoc relevance, listenable explanation, figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluate.heart.figures import plot_state_explanation
from evaluate.heart.metrics import binary_scores, state_hit_rate
from evaluate.heart.posthoc import (
    posthoc_state_hits,
    relevance_by_beat_state,
    relevance_by_state,
)
from interp_models.data.synth_pcg import SynthPCGConfig, recording_kind, synthesize_recording
from interp_models.heart.listen import gate, relevant_spans
from interp_models.heart.model import SegmentationAwareNet, beat_index_torch
from interp_models.heart.states import (
    FRAME_RATE,
    AbnormalEvent,
    Segmentation,
    beat_index,
    segments_from_states,
)

HOP = 20  # 1 kHz audio, 50 Hz frames


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are small: one thread is faster than two on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_beat_index_numbers_cycles_from_s1_onsets():
    states = np.array([3, 4, 4, 1, 1, 2, 3, 4, 1, 2, 0, 0])
    assert beat_index(states).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, -1, -1]
    starts_with_s1 = np.array([1, 2, 3, 4, 1, 2])
    assert beat_index(starts_with_s1).tolist() == [0, 0, 0, 0, 1, 1]
    batch = torch.tensor(np.stack([states, np.pad(starts_with_s1, (0, 6))]))
    expected = [beat_index(states).tolist(), [0, 0, 0, 0, 1, 1] + [-1] * 6]
    assert beat_index_torch(batch).tolist() == expected


def test_segmentation_conversions_round_trip():
    states = np.array([0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 4, 0], dtype=np.int8)
    seg = segments_from_states(states, 50)
    assert seg.state.tolist() == [0, 1, 2, 3, 4, 0]
    assert np.array_equal(seg.to_rate(12, 50), states)
    # a 1 kHz version of the same spans: 20 samples per frame
    assert np.array_equal(seg.to_rate(240, 1000), np.repeat(states, 20))
    gap = Segmentation(np.array([0.0, 0.5]), np.array([0.2, 0.7]), np.array([1, 2]))
    assert gap.to_rate(8, 10).tolist() == [1, 1, 0, 0, 0, 2, 2, 0]


def _recording(index: int, cfg: SynthPCGConfig) -> tuple[np.ndarray, np.ndarray]:
    """A built-in recording at 1 kHz (every other sample) and its frame states."""
    rec = synthesize_recording(cfg, index)
    wave = rec.mix[::2].astype(np.float32)  # 2 kHz -> 1 kHz; fine for these tests
    states = segments_from_states(rec.states, 2000).to_frames(len(wave) // HOP)
    return wave, states


@pytest.fixture(scope="module")
def two_recordings():
    cfg = SynthPCGConfig(num_recordings=4, duration_s=(5.0, 8.0))
    return [_recording(i, cfg) for i in (0, 1)]


SUBBANDS = {"frontend": "subbands", "channels": [8, 8], "strides": [4, 5], "kernel_size": 5}


@pytest.mark.parametrize("kw", [{"kernel_size": 3}, SUBBANDS], ids=["spectrogram", "subbands"])
def test_explanation_decomposes_the_logit_exactly(two_recordings, kw):
    torch.manual_seed(0)
    net = SegmentationAwareNet(**kw).eval()
    net.set_reference(torch.tensor([0.3, -0.2, 0.1, 0.5]))
    (w0, s0), (w1, s1) = two_recordings
    n, t = max(len(w0), len(w1)), max(len(s0), len(s1))
    wave = torch.zeros(2, n)
    states = torch.zeros(2, t, dtype=torch.long)
    for k, (w, s) in enumerate(two_recordings):
        wave[k, : len(w)] = torch.from_numpy(w)
        states[k, : len(s)] = torch.from_numpy(s.astype(np.int64))
    lengths = torch.tensor([len(w0), len(w1)])
    logit = net(wave, states, lengths)[:, 0]
    exp = net.explain(wave, states=states, lengths=lengths)
    assert exp.grouping == "states" and exp.labels == ["S1", "systole", "S2", "diastole"]
    assert (exp.target == 0).all()  # the one logit, as for a post-hoc method
    assert torch.equal(exp.maps["negated"], logit <= 0)  # default: the predicted class
    sign = torch.where(exp.maps["negated"], -1.0, 1.0)
    total = exp.attribution.sum(1) + exp.maps["bias"]
    assert torch.allclose(total, sign * logit, atol=1e-5)
    assert torch.allclose(exp.maps["beats"].sum(1), exp.attribution, atol=1e-6)
    assert torch.allclose(exp.maps["logit"], logit)
    flipped = net.explain(wave, states=states, lengths=lengths, negate=~exp.maps["negated"])
    assert torch.allclose(flipped.attribution, -exp.attribution)
    abnormal = net.explain(wave, states=states, lengths=lengths, target=0, negate=False)
    assert torch.allclose(abnormal.attribution.sum(1) + abnormal.maps["bias"], logit, atol=1e-5)
    # relevance: the per-(beat, state) contributions spread over their 50 Hz frames
    assert exp.grid.name == "frames" and exp.relevance.shape == states.shape
    times = exp.grid.axes[0].values
    assert exp.grid.axes[0].unit == "s" and float(times[0]) == pytest.approx(0.5 / net.frame_rate)
    assert torch.allclose(exp.relevance.sum(1), exp.attribution.sum(1), atol=1e-5)
    assert (exp.relevance[states == 0] == 0).all()
    # the reference only moves evidence between baseline and states
    net.set_reference(torch.zeros(4))
    assert torch.allclose(net(wave, states, lengths)[:, 0], logit, atol=1e-5)
    # batching (zero padding) changes nothing: each recording alone gives the same logit
    for k, (w, s) in enumerate(two_recordings):
        alone = net(torch.from_numpy(w)[None], torch.from_numpy(s.astype(np.int64))[None])
        assert alone.item() == pytest.approx(logit[k].item(), abs=1e-4)
    n_beats = exp.maps["beat_mask"][0].any(-1).sum().item()
    assert n_beats == beat_index(s0).max() + 1
    for bad in (1, 2):  # one logit: only output 0 ("normal" is negate=True)
        with pytest.raises(ValueError, match="target"):
            net.explain(wave, states=states, lengths=lengths, target=bad)


def test_model_learns_a_systolic_murmur_and_points_at_systole():
    """A few full-batch steps on loud holosystolic murmurs against normal recordings: the
    decision is learnt, and the largest contribution lands on systole."""
    torch.manual_seed(0)
    cfg = SynthPCGConfig(
        num_recordings=40, duration_s=(4.0, 4.0), murmur_level=(0.8, 1.0), snr_db=(20.0, 25.0)
    )
    idx = [i for i in range(40) if recording_kind(cfg, i) in ("normal", "holosystolic_murmur")]
    data = [(*_recording(i, cfg), int(recording_kind(cfg, i) != "normal")) for i in idx]
    n = min(len(w) for w, _, _ in data)
    wave = torch.from_numpy(np.stack([w[:n] for w, _, _ in data]))
    states = torch.from_numpy(np.stack([s[: n // HOP] for _, s, _ in data]).astype(np.int64))
    y = torch.tensor([lab for _, _, lab in data], dtype=torch.float32)
    assert 4 <= y.sum() <= len(y) - 4
    net = SegmentationAwareNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(25):  # also lets the running span statistics settle
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(wave, states)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    normal = y == 0
    net.set_reference(torch.nanmean(net.state_evidence(wave[normal], states[normal]), 0))
    exp = net.explain(wave, states=states, target=0, negate=False)
    pred = (exp.maps["logit"] > 0).long()
    assert binary_scores(y.long().numpy(), pred.numpy())["macc"] >= 0.9
    detected = (pred == 1) & (y == 1)
    hits = state_hit_rate(exp.attribution[detected].numpy(), np.full(int(detected.sum()), 2))
    assert hits["hit_rate"] == 1.0
    assert exp.attribution[normal].abs().mean() < exp.attribution[detected, 1].mean()


def test_binary_scores_known_answer():
    r = binary_scores([1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 1])
    assert r["sensitivity"] == 0.75 and r["specificity"] == 0.5 and r["macc"] == 0.625
    assert (r["n_abnormal"], r["n_normal"]) == (4, 2)
    assert np.isnan(binary_scores([0, 0], [0, 1])["sensitivity"])


def test_state_hit_rate_known_answer():
    attr = np.array([[0, 2, 0, 1], [0, 0, 0, 3], [5, 1, 0, 0], [0, 1, 0, 0]], dtype=float)
    r = state_hit_rate(attr, np.array([2, 4, 2, 4]))
    assert r["hit_rate"] == 0.5 and r["n"] == 4
    assert r["hit_rate_systole"] == 0.5 and r["hit_rate_diastole"] == 0.5
    with pytest.raises(ValueError, match="1..4"):
        state_hit_rate(attr, np.array([0, 1, 2, 3]))


def test_relevance_is_aggregated_per_beat_and_state():
    states = np.array([1, 1, 2, 2, 2, 3, 4, 4, 1, 2])  # 2 beats at 50 Hz
    sr = 1000
    times = np.arange(len(states) * HOP) / sr
    ones = np.ones(times.size)
    per_beat, mask = relevance_by_beat_state(ones, times, states, FRAME_RATE)
    assert per_beat.tolist() == [[40, 60, 20, 40], [20, 20, 0, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert relevance_by_state(ones, times, states, FRAME_RATE).tolist() == [60, 80, 20, 40]
    assert relevance_by_state(ones, times, states, FRAME_RATE, "mean").tolist() == [1, 1, 1, 1]
    # a (F, T) map is summed over frequency; columns past the segmentation are ignored
    spec_times = np.arange(12) * 0.02 + 0.01  # one column per frame, two beyond the end
    spec = np.zeros((3, 12))
    spec[:, 6] = 1.0  # diastole of beat 0
    assert relevance_by_state(spec, spec_times, states, FRAME_RATE).tolist() == [0, 0, 0, 3]


def test_posthoc_hits_with_a_relevance_that_marks_the_lesion():
    cfg = SynthPCGConfig(num_recordings=8, duration_s=(5.0, 6.0))
    recs = [synthesize_recording(cfg, i) for i in range(8)]
    abnormal = [i for i, r in enumerate(recs) if r.label == 1]
    states = [segments_from_states(r.states, 2000).to_frames(r.states.size // 40) for r in recs]
    truth = np.array([r.events[0].state if r.events else 0 for r in recs])

    def lesion_map(i: int):  # relevance = 1 inside the lesion spans: a perfect explainer
        rec = recs[i]
        rel = np.zeros(rec.mix.size)
        for ev in rec.events:
            rel[int(ev.start_s * 2000) : int(ev.end_s * 2000)] = 1.0
        return rel, np.arange(rec.mix.size) / 2000

    assert posthoc_state_hits(lesion_map, abnormal, states, truth, FRAME_RATE)["hit_rate"] == 1.0

    def s1_map(i: int):  # always pointing at S1: never a hit
        return (recs[i].states == 1).astype(float), np.arange(recs[i].mix.size) / 2000

    assert posthoc_state_hits(s1_map, abnormal, states, truth, FRAME_RATE)["hit_rate"] == 0.0


def test_listenable_explanation_keeps_only_relevant_spans(tmp_path):
    states = np.array([1, 1, 2, 2, 2, 3, 4, 4, 4, 4] * 3)
    beats = np.array([[0.1, 1.0, 0.0, -0.2], [0.0, 0.8, 0.1, -0.1], [0.0, -0.1, 0.0, 0.0]])
    mask = np.ones_like(beats, dtype=bool)
    relevant = relevant_spans(beats, mask, fraction=0.5)
    assert relevant.tolist() == [
        [False, True, False, False],
        [False, True, False, False],
        [False, False, False, False],
    ]
    wave = np.ones(len(states) * HOP)
    out = gate(wave, states, relevant, HOP, 1000)
    assert out[50] == pytest.approx(1.0) and out[250] == pytest.approx(1.0)  # systole centres
    assert out[0] == 0.0 and out[150] == 0.0 and out[450] == 0.0  # S1, diastole, beat 3
    assert relevant_spans(-np.abs(beats), mask).sum() == 0
    fig = plot_state_explanation(
        np.sin(np.arange(wave.size) / 5.0),
        1000,
        states,
        FRAME_RATE,
        beats,
        mask,
        "test",
        tmp_path / "fig.png",
        events=[AbnormalEvent(0.04, 0.1, "x", 2)],
    )
    assert fig.stat().st_size > 10_000
