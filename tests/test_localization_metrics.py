"""evaluate.localization.metrics: known answers on synthesised clips and a hand-built model."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from evaluate.localization.metrics import (
    REGIONS,
    angular_error_deg,
    by_condition,
    direct_path_share,
    perturbation_curve,
    perturbation_faithfulness,
    perturbation_summary,
    region_bounds,
    segment_bounds,
    segment_scores,
    tdoa_error,
    tdoa_from_relevance,
    tdoa_hit_rate,
    time_regions,
)
from interp_models.data.synth_localization import (
    SynthLocalizationConfig,
    pair_indices,
    synthesise,
)

SR = 16000
MAX_LAG = 0.2 / 343.0 * SR + 1  # array diameter 0.2 m, plus a sample


@cache
def clip(rt60: float, index: int = 0, snr: float = 60.0):
    """A noise-burst clip (broadband, so even its short direct window fixes the delay)."""
    config = SynthLocalizationConfig(
        num_clips=2, rt60_s=(rt60,), snr_db=(snr, snr), sources=("noise_burst",)
    )
    x, truth = synthesise(config, index)
    return x.astype(np.float64), truth


# --------------------------------------------------------------------------- direction


def test_angular_error_wraps_and_is_vectorised():
    assert angular_error_deg(15, 1.0, 22.5) == pytest.approx(12.25)
    assert angular_error_deg(0, 359.0, 22.5) == pytest.approx(12.25)
    err = angular_error_deg(np.array([0, 8, 3]), np.array([191.25, 191.25, 78.75]), 22.5)
    np.testing.assert_allclose(err, [180.0, 0.0, 0.0])
    assert angular_error_deg(torch.tensor([4]), [10.0], 22.5) == pytest.approx(91.25)


# --------------------------------------------------------------------------- time regions


@pytest.mark.parametrize("index", [0, 1])
def test_time_regions_partition_and_direct_window_at_the_rise(index):
    x, truth = clip(0.4, index)
    masks = time_regions(truth, x.shape[1], SR)
    assert list(masks) == list(REGIONS)
    total = sum(m.astype(int) for m in masks.values())
    assert total.shape == x.shape and (total == 1).all()  # disjoint and covering
    bounds = region_bounds(truth, x.shape[1], SR)
    assert masks["direct"].any(axis=1).all()
    noise = np.concatenate([x[m, : bounds[m, 0] - 16] for m in range(len(x))]).std()
    for m in range(len(x)):
        first_rise = int(np.argmax(np.abs(x[m]) > 10 * noise))
        assert masks["direct"][m, first_rise], (m, first_rise, bounds[m])
        assert not masks["direct"][m, : int(np.floor(truth.direct_onset[m]))].any()


def test_time_regions_free_field_direct_is_the_whole_event():
    x, truth = clip(0.0)
    masks = time_regions(truth, x.shape[1], SR)
    assert not masks["reverberant"].any()
    length = (truth.event_offset_s - truth.event_onset_s) * SR
    np.testing.assert_allclose(masks["direct"].sum(axis=1), length, atol=1)
    assert masks["after"].any(axis=1).all()


# --------------------------------------------------------------------------- shares


def test_direct_path_share_of_the_direct_window_and_of_a_uniform_map():
    x, truth = clip(0.4)
    masks = time_regions(truth, x.shape[1], SR)
    share = direct_path_share(masks["direct"].astype(float), truth, SR)
    chance = masks["direct"].mean()
    assert share["share_direct"] == pytest.approx(1.0)
    assert share["positive_share_direct"] == pytest.approx(1.0)
    assert share["chance_direct"] == pytest.approx(chance)
    assert share["direct_enrichment"] == pytest.approx(1.0 / chance)
    np.testing.assert_allclose(share["per_mic"]["share_direct"], 1.0)
    uniform = direct_path_share(-np.ones(x.shape), truth, SR)  # signs: |R| still uniform
    for region in REGIONS:
        assert uniform[f"share_{region}"] == pytest.approx(uniform[f"chance_{region}"])
        assert np.isnan(uniform[f"positive_share_{region}"])  # no positive relevance
    assert uniform["direct_enrichment"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- TDOA


def test_tdoa_from_free_field_signals():
    x, truth = clip(0.0)
    est = tdoa_from_relevance(x, pair_indices(4), MAX_LAG)
    err = tdoa_error(est, truth, SR)
    assert err.shape == (6,) and (err < 1.0).all(), err
    assert tdoa_hit_rate(err) == 1.0


@pytest.mark.parametrize("index", [0, 1])
def test_tdoa_from_relevance_in_the_direct_windows_of_a_reverberant_clip(index):
    x, truth = clip(0.8, index)
    relevance = torch.from_numpy(x * time_regions(truth, x.shape[1], SR)["direct"])
    err = tdoa_error(tdoa_from_relevance(relevance, None, MAX_LAG), truth, SR)
    assert (err < 1.0).all(), err


def test_tdoa_of_an_empty_trace_is_nan_and_a_miss():
    x, truth = clip(0.0)
    x = x.copy()
    x[2] = 0.0
    est = tdoa_from_relevance(x, None, MAX_LAG)
    assert np.isnan(est[[1, 3, 5]]).all() and np.isfinite(est[[0, 2, 4]]).all()
    assert tdoa_hit_rate(tdoa_error(est, truth, SR)) == pytest.approx(0.5)


# --------------------------------------------------------------------------- perturbation

M, N, S = 4, 1600, 8  # G = 32 groups of 200 samples
MIC, SEG = 1, 2  # the only group the model listens to
SECTOR, AZIMUTH = 22.5, 3.5 * 22.5  # the true azimuth is the centre of bin 3


class OneWindowModel(torch.nn.Module):
    """Logits from the energy of one (mic, segment) through a fixed linear map: bin 3 while
    the window keeps its energy (about 1), bin 11 once it is (even half) removed."""

    def __init__(self):
        super().__init__()
        weight, bias = torch.zeros(16), torch.zeros(16)
        weight[3], bias[11] = 2.0, 1.4
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        energy = x[:, MIC, SEG * 200 : (SEG + 1) * 200].pow(2).mean(dim=1, keepdim=True)
        return energy * self.weight + self.bias


@cache
def waves() -> torch.Tensor:
    return torch.randn(M, N, generator=torch.Generator().manual_seed(0))


def _relevance() -> np.ndarray:
    rel = np.zeros((M, N))
    rel[MIC, SEG * 200 : (SEG + 1) * 200] = 1.0
    return rel


def _first_change(curve) -> float:
    changed = np.flatnonzero(~curve["same_bin"])
    return float(curve["fractions"][changed[0]]) if changed.size else 1.0


def test_segments():
    np.testing.assert_array_equal(segment_bounds(10, 3), [0, 3, 7, 10])
    rel = np.arange(20.0).reshape(2, 10)
    np.testing.assert_allclose(segment_scores(rel, 3), [[3, 18, 24], [33, 58, 54]])
    with pytest.raises(ValueError):
        segment_bounds(10, 11)


def test_perturbation_relevance_order_changes_the_prediction_first():
    model = OneWindowModel()
    rel = perturbation_curve(model, waves(), _relevance(), AZIMUTH, SECTOR, n_segments=S)
    assert model.calls == 1  # 7 inputs (unperturbed + 6 fractions) in one batch
    np.testing.assert_array_equal(rel["removed"], [0, 2, 3, 6, 10, 16])
    assert rel["error_deg"][0] == 0.0 and rel["same_bin"][0] and rel["pred_bin"][0] == 3
    assert not rel["same_bin"][1:].any()
    np.testing.assert_allclose(rel["error_deg"][1:], 180.0)
    seg = segment_scores(_relevance(), S)
    again = perturbation_curve(model, waves(), seg, AZIMUTH, SECTOR, batch_size=2)
    assert model.calls == 1 + 4  # ceil(7 / 2) calls
    np.testing.assert_array_equal(again["pred_bin"], rel["pred_bin"])

    rand = [
        perturbation_curve(model, waves(), seg, AZIMUTH, SECTOR, order="random", seed=k)
        for k in range(8)
    ]
    assert all(r["error_deg"][0] == 0.0 for r in rand)
    assert np.mean([_first_change(r) for r in rand]) > _first_change(rel) == 0.05
    summary = perturbation_summary(rel, rand)
    assert summary["auc_relevance"] == pytest.approx(180.0 * (0.5 - 0.025))
    assert summary["auc_difference"] > 0 and summary["changed_auc_difference"] > 0


def test_perturbation_faithfulness_and_baseline():
    model = OneWindowModel()
    out = perturbation_faithfulness(
        model, waves(), _relevance(), AZIMUTH, SECTOR, n_random=4, n_segments=S
    )
    assert len(out["curves_random"]) == 4 and out["auc_difference"] > 0
    # a baseline equal to the clip removes nothing: the prediction never changes
    same = perturbation_curve(
        model, waves(), _relevance(), AZIMUTH, SECTOR, baseline=waves().clone(), n_segments=S
    )
    assert same["same_bin"].all()
    with pytest.raises(ValueError):
        perturbation_curve(model, waves(), _relevance(), AZIMUTH, SECTOR, order="worst")


# --------------------------------------------------------------------------- conditions


def test_by_condition_groups_and_intervals():
    values = [1.0, 3.0, 10.0, 20.0, 5.0, float("nan")]
    rt60 = [0.4, 0.4, 0.0, 0.4, 0.8, 0.8]
    snr = [5.0, 14.0, -5.0, 15.0, -20.0, 3.0]
    out = by_condition(values, rt60, snr)
    assert list(out) == [
        "rt60=0 s, snr -10..0 dB",
        "rt60=0.4 s, snr 0..15 dB",
        "rt60=0.8 s, snr <-10 dB",
        "rt60=0.8 s, snr 0..15 dB",
        "all",
    ]
    group = out["rt60=0.4 s, snr 0..15 dB"]
    assert group["n"] == 3 and group["mean"] == pytest.approx(8.0)
    assert group["ci95"] == pytest.approx(1.96 * np.std([1, 3, 20], ddof=1) / np.sqrt(3))
    assert out["rt60=0.8 s, snr 0..15 dB"]["n"] == 0  # only a NaN
    assert out["all"]["n"] == 5 and out["all"]["mean"] == pytest.approx(39.0 / 5)
