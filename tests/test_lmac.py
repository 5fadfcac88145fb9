"""L-MAC (a learned post-hoc masker) and the masked-in / masked-out objective."""

from __future__ import annotations

import pytest
import torch

from evaluate.masking import masked_probs, mel_to_stft_matrix, noise_floor, stft_to_mel
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import TFBins
from evaluate.posthoc.lmac import LMAC
from interp_models.audio.features import LogMel
from interp_models.blackbox.cnn import SpectrogramCNN
from train.masking import mask_objective


def _lmac(seed: int = 0) -> tuple[LMAC, LogMel]:
    torch.manual_seed(seed)
    logmel = LogMel(8000, n_fft=256, hop_length=128, n_mels=16)
    net = SpectrogramCNN(3, channels=(4, 8)).eval()
    return LMAC(net, ["block1", "block2"], logmel.mel_fb, hidden=4).eval(), logmel


def test_mel_masks_reach_stft_bins_as_weighted_means():
    logmel = LogMel(8000, n_fft=256, hop_length=128, n_mels=16)
    to_stft = mel_to_stft_matrix(logmel.mel_fb)
    covered = logmel.mel_fb.sum(dim=0) > 0
    ones = to_stft @ torch.ones(16)
    assert torch.allclose(ones[covered], torch.ones(int(covered.sum())), atol=1e-5)
    assert torch.all(ones[~covered] == 0)
    # stft_to_mel preserves the mass of every covered bin
    rel = torch.rand(1, 129, 5)
    kept = (rel * covered[None, :, None]).sum()
    assert torch.allclose(stft_to_mel(rel, logmel.mel_fb).sum(), kept, rtol=1e-5)


def test_mask_is_in_unit_range_on_the_stft_grid():
    model, logmel = _lmac()
    wave = torch.randn(2, 4000)
    x = logmel(wave)
    mask, logits = model(x)
    assert mask.shape == (2, 129, x.shape[-1]) and logits.shape == (2, 3)
    assert mask.min() >= 0 and mask.max() <= 1


def test_objective_keeps_or_loses_the_class_as_the_mask_says():
    model, logmel = _lmac()
    wave = torch.randn(2, 4000)
    x = logmel(wave)
    spec = torch.log1p(logmel.spectrogram.stft(wave).abs())
    target = model.classifier(x).argmax(dim=1)
    with torch.no_grad():
        keep_all, stats_all = mask_objective(
            model.classifier, logmel, spec, torch.ones_like(spec), target
        )
        keep_none, _ = mask_objective(
            model.classifier, logmel, spec, torch.zeros_like(spec), target
        )
    # keeping every bin gives the classifier its own input: the prediction is kept
    assert stats_all["fid_in"] == 1.0
    assert keep_all["mask_area"] == 1.0 and keep_none["mask_area"] == 0.0
    # masking everything in is masking nothing out, and vice versa
    assert torch.isclose(
        keep_all["mask_out"], -torch.log1p(-_p(model, logmel, spec * 0, target)).mean(), atol=1e-5
    )
    assert keep_none["mask_in"] > 0


def _p(model, logmel, spec, target):
    probs = masked_probs(model.classifier, logmel, spec, torch.ones_like(spec))
    return probs.gather(1, target[:, None])[:, 0]


def test_explainer_call_shape_and_mass_of_what_the_mask_keeps():
    model, logmel = _lmac()
    wave = torch.randn(2, 4000)
    x = logmel(wave)
    e = build_explainer("lmac", model.classifier, logmel, masker=model).attribute(
        x, None, grouping=TFBins(logmel), waves=wave
    )
    assert e.method == "lmac" and e.n_evals == 1 and e.attribution.shape == (2, 16, x.shape[-1])
    mask, _ = model(x)
    spec = torch.log1p(logmel.spectrogram.stft(wave).abs())
    expected = stft_to_mel(mask * spec, logmel.mel_fb)
    assert torch.allclose(e.maps["relevance_map"], expected, atol=1e-5)
    other = (model.classifier(x).argmax(dim=1) + 1) % 3
    with pytest.raises(ValueError, match="prediction only"):
        build_explainer("lmac", model.classifier, logmel, masker=model).attribute(
            x, other, waves=wave
        )
    with pytest.raises(ValueError, match="masker="):
        build_explainer("lmac", model.classifier, logmel).attribute(x, None, waves=wave)


def test_energy_area_and_noise_floor_baseline_have_known_values():
    model, logmel = _lmac()
    wave = torch.randn(2, 4000)
    x = logmel(wave)
    spec = torch.log1p(logmel.spectrogram.stft(wave).abs())
    target = model.classifier(x).argmax(dim=1)
    ones, zeros = torch.ones_like(spec), torch.zeros_like(spec)
    with torch.no_grad():
        all_kept, _ = mask_objective(model.classifier, logmel, spec, ones, target, area="energy")
        half = mask_objective(model.classifier, logmel, spec, ones * 0.5, target, area="energy")
        none_kept, _ = mask_objective(
            model.classifier, logmel, spec, zeros, target, "energy", "floor"
        )
    assert torch.isclose(all_kept["mask_area"], torch.tensor(1.0))
    assert torch.isclose(half[0]["mask_area"], torch.tensor(0.5))
    # with the floor baseline, keeping nothing shows the classifier the clip's noise floor
    floor = noise_floor(spec).expand_as(spec)
    p_floor = masked_probs(model.classifier, logmel, floor, ones)
    expected = torch.nn.functional.nll_loss(torch.log(p_floor), target)
    assert torch.isclose(none_kept["mask_in"], expected, atol=1e-4)
    with pytest.raises(ValueError, match="mask_area_kind"):
        mask_objective(model.classifier, logmel, spec, ones, target, area="median")


def test_floor_baseline_relevance_is_what_the_mask_keeps_above_the_floor():
    torch.manual_seed(0)
    logmel = LogMel(8000, n_fft=256, hop_length=128, n_mels=16)
    net = SpectrogramCNN(3, channels=(4, 8)).eval()
    model = LMAC(net, ["block1", "block2"], logmel.mel_fb, hidden=4, baseline="floor").eval()
    wave = torch.randn(1, 4000)
    x = logmel(wave)
    e = build_explainer("lmac", net, logmel, masker=model).attribute(x, None, waves=wave)
    mask, _ = model(x)
    spec = torch.log1p(logmel.spectrogram.stft(wave).abs())
    expected = stft_to_mel(mask * (spec - noise_floor(spec)).clamp(min=0), logmel.mel_fb)
    assert torch.allclose(e.maps["relevance_map"], expected, atol=1e-5)
    with pytest.raises(ValueError, match="lmac.baseline"):
        LMAC(net, ["block1"], logmel.mel_fb, baseline="pink")
