"""Mid-level emotion models, their explanation, and every metric on known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluate.emotion.figures import plot_effect_bars, plot_mapping, plot_relative_effects
from evaluate.emotion.metrics import (
    mapping_agreement,
    pearson_per_output,
    regression_report,
    rmse_per_output,
    standardise_mapping,
    top_quality_agreement,
)
from evaluate.metrics.localization import relevance_mass_inside
from interp_models.data.midlevel import EMOTIONS, QUALITIES
from interp_models.emotion.frontend import LogFrequencySpectrogram, log_filterbank
from interp_models.emotion.models import A2E, MidLevelEmotionModel
from train.emotion.module import masked_mse
from train.emotion.pipeline import fit_linear_map


def test_pearson_and_rmse_known_answers():
    t = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 4.0], [4.0, 8.0]])
    p = np.array([[2.0, 8.0], [4.0, 0.0], [6.0, 4.0], [8.0, 2.0]])
    r = pearson_per_output(p, t)
    assert r[0] == pytest.approx(1.0)  # p = 2 t
    # column 1 over rows 0, 2, 3: t = (2, 4, 8), p = (8, 4, 2) -> r by hand
    tc, pc = np.array([2, 4, 8]) - 14 / 3, np.array([8, 4, 2]) - 14 / 3
    assert r[1] == pytest.approx((tc * pc).sum() / np.sqrt((tc**2).sum() * (pc**2).sum()))
    rmse = rmse_per_output(p, t)
    assert rmse[0] == pytest.approx(np.sqrt(np.mean([1, 4, 9, 16])))
    assert rmse[1] == pytest.approx(np.sqrt(np.mean([36, 0, 36])))
    assert np.isnan(pearson_per_output(np.ones((3, 1)), np.arange(3.0)[:, None])[0])
    means, per = regression_report(p, t, ["a", "b"], "emotion")
    assert means["emotion_r"] == pytest.approx(np.mean(r)) and per["rmse_b"] == rmse[1]
    with pytest.raises(ValueError, match="NaN"):
        pearson_per_output(np.full((2, 1), np.nan), np.ones((2, 1)))


def test_mapping_agreement_known_answers():
    true = np.array([[1.0, -2.0, 0.0], [0.5, 0.01, -1.0]])
    same = mapping_agreement(true * 3, true)
    assert same["spearman"] == pytest.approx(1.0) and same["sign_agreement"] == 1.0
    assert same["n_signed"] == 4  # 0.0 and 0.01 are below 0.1 * max|w| = 0.2
    flipped = true.copy()
    flipped[0, 0] = -1.0  # one of four signed weights wrong
    flipped[1, 1] = -0.01  # a near-zero weight: its sign does not count
    out = mapping_agreement(flipped, true)
    assert out["sign_agreement"] == 0.75
    assert mapping_agreement(-true, true)["spearman"] == pytest.approx(-1.0)
    w = standardise_mapping(np.array([[2.0, 1.0]]), np.array([3.0, 0.5]), np.array([2.0]))
    np.testing.assert_allclose(w, [[3.0, 0.25]])
    eff = np.array([[0.1, -0.9, 0.2], [0.5, 0.1, 0.0]])
    assert top_quality_agreement(eff, np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])) == 0.5


def test_relevance_mass_inside_nothing_to_score_is_nan():
    rel = torch.zeros(3, 2, 3)
    rel[0, 0, :3] = 1.0
    rel[0, 1, 0] = 1.0
    rel[0, 1, 1] = -5.0  # negative relevance is ignored
    rel[2, 0, 0] = 1.0
    ev = torch.zeros(3, 2, 3, dtype=torch.bool)
    ev[0, 0, :] = True
    ev[1, 0, 0] = True  # clip 1: no positive relevance -> NaN
    share = relevance_mass_inside(rel, ev, nothing=float("nan"))  # clip 2: empty mask -> NaN
    assert share[0].item() == pytest.approx(0.75)
    assert torch.isnan(share[1:]).all()
    with pytest.raises(ValueError, match="bool"):
        relevance_mass_inside(rel, ev.float(), nothing=float("nan"))


def test_explanation_is_the_model():
    torch.manual_seed(0)
    model = MidLevelEmotionModel(channels=(4, 8)).eval()
    x = torch.randn(5, 24, 30)
    ex = model.explain(x)
    q, e = model.forward_both(x)
    assert ex.grouping == "qualities" and ex.labels == list(QUALITIES)
    assert torch.equal(ex.target, e.argmax(1))
    w, b = model.emotion_head.weight, model.emotion_head.bias
    for i in range(5):
        t = ex.target[i]
        torch.testing.assert_close(ex.attribution[i], w[t] * q[i])
        torch.testing.assert_close(ex.attribution[i].sum() + b[t], e[i, t])
    rel = ex.maps["relative_effects"]
    torch.testing.assert_close(rel.abs().sum(-1), torch.ones(5, len(EMOTIONS)))
    fixed = model.explain(x, target=2)
    assert (fixed.target == 2).all()
    with pytest.raises(ValueError, match="target"):
        model.explain(x, target=8)
    assert MidLevelEmotionModel.relative_effects(torch.zeros(1, 2, 3)).abs().sum() == 0


def test_models_standardise_and_share_the_backbone():
    a2e, mid = A2E(channels=(4, 8)), MidLevelEmotionModel(channels=(4, 8))
    assert a2e(torch.randn(2, 20, 16)).shape == (2, 8)
    assert mid.embed(torch.randn(2, 20, 16)).shape == a2e.embed(torch.randn(2, 20, 16)).shape
    mid.set_stats({"emotion_mean": [5.0] * 8, "emotion_std": [2.0] * 8})
    torch.testing.assert_close(mid.to_ratings(torch.ones(1, 8)), torch.full((1, 8), 7.0))
    with pytest.raises(ValueError, match="quality_mean"):
        mid.set_stats({"quality_mean": [0.0] * 3})


def test_masked_mse_and_linear_map_known_answers():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, float("nan")], [3.0, 2.0]])
    loss = masked_mse(pred, target)
    assert loss.item() == pytest.approx((1 + 0 + 4) / 3)
    loss.backward()
    assert pred.grad[0, 1] == 0
    assert masked_mse(pred, torch.full((2, 2), float("nan"))).item() == 0
    rng = np.random.default_rng(0)
    q = rng.standard_normal((50, 7))
    w, b = rng.standard_normal((8, 7)), rng.standard_normal(8)
    e = q @ w.T + b
    e[3] = np.nan  # an unrated clip is left out
    w_hat, b_hat, r2 = fit_linear_map(q, e)
    np.testing.assert_allclose(w_hat, w, atol=1e-8)
    np.testing.assert_allclose(b_hat, b, atol=1e-8)
    assert r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need more than 7"):
        fit_linear_map(q[:5], e[:5])


def test_log_frequency_front_end():
    fb, centres = log_filterbank(22050, 2048, 12, 40.0, 8000.0)
    np.testing.assert_allclose(fb.sum(1), 1.0, rtol=1e-6)
    assert np.all(np.diff(centres) > 0) and centres[0] >= 40 - 11 and centres[-1] <= 8000 + 11
    fe = LogFrequencySpectrogram(22050, bands_per_octave=12, f_min=40.0, f_max=8000.0)
    t = torch.arange(22050) / 22050
    spec = fe(torch.sin(2 * torch.pi * 440.0 * t))
    assert spec.shape == (1, fb.shape[0], 1 + 22050 // 706)
    peak = fe.frequencies()[spec[0, :, 10].argmax()]
    assert abs(float(peak) - 440.0) < 20  # the band holding A4
    assert fe.settings()["kind"] == "logfreq"


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    p1 = plot_effect_bars(rng.standard_normal(7), QUALITIES, "clip", tmp_path / "a.png", 0.3)
    p2 = plot_relative_effects(
        rng.uniform(-1, 1, (10, 8, 7)), QUALITIES, EMOTIONS, tmp_path / "b.png"
    )
    p3 = plot_mapping(rng.standard_normal((8, 7)), None, QUALITIES, EMOTIONS, tmp_path / "c.png")
    for p in (p1, p2, p3):
        assert p.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="effects"):
        plot_effect_bars(np.zeros(3), QUALITIES, "x", tmp_path / "d.png")
