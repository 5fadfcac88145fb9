"""Selectivity of the mid-level quality units: the measures on known answers, and the
one-quality contrasts the selective regime trains on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from evaluate.emotion.selectivity import (
    contrast_changes,
    contrast_summary,
    factor_auc,
    factor_summary,
)
from interp_models.data.midlevel import QUALITIES
from interp_models.data.music_contrasts import contrast_plan, contrast_set, rating_change
from interp_models.data.synth_music import SynthMusicConfig, clip_latents, synthesize_clip
from train.emotion.augment import SpectralAugment

NAMES = ["a", "b", "c"]


def _linear_model(response: np.ndarray):
    """A 'model' whose predicted qualities are ``response @ levels`` of a rendered clip:
    the renderer writes the clip's levels into the first samples of the waveform."""

    def render(index: int, overrides: dict[str, float]) -> np.ndarray:
        levels = np.full(len(NAMES), 0.5) + 0.01 * index
        for name, value in overrides.items():
            levels[NAMES.index(name)] = value
        return np.concatenate([levels, np.zeros(5)])

    def predict(waves: np.ndarray) -> np.ndarray:
        return waves[:, : len(NAMES)] @ response.T

    return render, predict


def test_contrast_matrix_and_dominance_known_answers():
    # unit k reads 9 * level_k plus a leak of 1.5 * level_a into unit c
    response = 9.0 * np.eye(3)
    response[2, 0] = 1.5
    render, predict = _linear_model(response)
    changes = contrast_changes(predict, render, range(4), NAMES)
    assert changes.shape == (4, 3, 3)
    s = contrast_summary(changes, NAMES, n_boot=50)
    matrix = np.array(s["matrix"])
    expected = response.T  # row: the changed quality, column: the read unit
    np.testing.assert_allclose(matrix, expected, atol=1e-9)
    assert s["row_dominance"]["a"] == pytest.approx(6.0)  # changing a moves c by 1.5
    assert s["col_dominance"]["c"] == pytest.approx(6.0)  # unit c moves when a changes
    assert s["dominance"] == {"a": 6.0, "b": None, "c": 6.0}  # None: nothing off-diagonal
    assert s["min_dominance"] == pytest.approx(6.0)
    np.testing.assert_allclose(np.array(s["matrix_ci95"]), 0.0, atol=1e-9)  # no clip variance


def test_factor_auc_known_answers():
    # a full 2^3 factorial design, twice: every pair of factors is exactly independent
    factors = np.array(list(itertools.product([0, 1], repeat=3)) * 2)
    predicted = factors.astype(float).copy()
    predicted[:, 2] = 1.0 - factors[:, 0]  # unit c follows factor a, inverted
    auc = factor_auc(predicted, factors)
    np.testing.assert_allclose(np.diag(auc)[:2], 1.0)
    assert auc[0, 1] == pytest.approx(0.5) and auc[0, 2] == pytest.approx(0.0)
    assert auc[2, 2] == pytest.approx(0.5)
    s = factor_summary(auc, NAMES, NAMES)
    assert s["own_factor_auc"] == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert s["largest_off_factor_deviation"]["c"] == pytest.approx(0.5)
    assert s["min_own_factor_auc"] == pytest.approx(0.5)
    unlabelled = factors.copy()
    unlabelled[:, 1] = -1
    assert np.isnan(factor_auc(predicted, unlabelled)[1]).all()


def test_contrast_plan_moves_one_quality_to_the_far_end():
    config = SynthMusicConfig(num_clips=6, clip_seconds=1.0)
    plan = contrast_plan(config, [0, 3, 5], per_clip=2)
    assert plan.shape == (6, 4)
    assert all(len(set(pair[:, 1])) == 2 for pair in np.split(plan, 3))  # distinct per clip
    for index, j, old, new in plan:
        latents, _ = clip_latents(config, int(index))
        assert old == latents[QUALITIES[int(j)]]
        assert new == (0.0 if old > 0.5 else 1.0)
    change = rating_change(plan)
    assert (np.count_nonzero(change, axis=1) == 1).all()
    moved = change[np.arange(6), plan[:, 1].astype(int)]
    np.testing.assert_allclose(moved, 9 * (plan[:, 3] - plan[:, 2]))
    with pytest.raises(ValueError, match="contrasts_per_clip"):
        contrast_plan(config, [0], per_clip=8)


def test_contrast_set_renders_the_planned_clip_and_caches(tmp_path):
    config = SynthMusicConfig(num_clips=4, clip_seconds=1.0)
    plan, waves = contrast_set(config, [1, 2], per_clip=1, cache_dir=tmp_path)
    index, j, _, new = plan[0]
    expected = synthesize_clip(config, int(index), {QUALITIES[int(j)]: new}).mix
    np.testing.assert_array_equal(waves[0], expected.astype(np.float32))
    assert not np.array_equal(waves[0], synthesize_clip(config, int(index)).mix)
    again = contrast_set(config, [1, 2], per_clip=1, cache_dir=tmp_path)[1]
    np.testing.assert_array_equal(again, waves)
    assert len(list((tmp_path / "music_contrasts").iterdir())) >= 1


def test_spectral_augment_known_answers():
    torch.manual_seed(0)
    mag = torch.rand(3, 10, 5) * 4
    x = torch.log10(1 + mag)
    alt = torch.stack([x, x.flip(-1)], 1)  # (3, 2, 10, 5): two re-renders per clip
    assert not SpectralAugment().active
    gained = SpectralAugment(gain_db=6.0)
    gx, galt = gained(x, alt)
    ratio = (10**gx - 1) / mag  # one gain per clip, the same for every bin
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-4)
    assert (ratio.amax() <= 10 ** (6 / 20) + 1e-4) and not torch.allclose(ratio, torch.ones(1))
    # the re-renders of a clip get the clip's draw
    assert torch.allclose((10 ** galt[:, 0] - 1) / mag, ratio, rtol=1e-4)
    moved = SpectralAugment(shift_bands=1.0)._shift(mag, torch.tensor([1.0, 0.0, -0.5]))
    assert torch.allclose(moved[0, 1:], mag[0, :-1]) and torch.allclose(moved[0, 0], mag[0, 0])
    assert torch.allclose(moved[1], mag[1])
    assert torch.allclose(moved[2, :-1], (mag[2, :-1] + mag[2, 1:]) / 2)  # half a band down
    (sx,) = SpectralAugment(shift_bands=2.0, tilt_db=6.0, eq_db=3.0)(x)
    assert sx.shape == x.shape and torch.isfinite(sx).all() and (sx >= 0).all()
    with pytest.raises(ValueError, match="tilt_db"):
        SpectralAugment(tilt_db=-1)
