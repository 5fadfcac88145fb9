"""L-MAC (a learned post-hoc masker) and the masked-in / masked-out objective."""

from __future__ import annotations

import pytest
import torch

from evaluate.masking import mel_to_stft_matrix, stft_to_mel
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
    from evaluate.masking import masked_probs

    return masked_probs(model.classifier, logmel, spec, torch.ones_like(spec)).gather(
        1, target[:, None]
    )[:, 0]


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
