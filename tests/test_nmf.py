"""NMF dictionary, interpreter and its Lightning module on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluate.masking import masked_probs
from evaluate.nmf.scoring import random_components
from interp_models.audio.features import Log1pSpectrogram, LogMel
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.nmf.dictionary import Dictionary, DictionarySettings, learn_dictionary
from interp_models.nmf.interpreter import NMFInterpreter
from train.nmf.module import NMFInterpreterModule, soft_cross_entropy


def _known_parts(seed: int = 0, f: int = 40, k: int = 3, n: int = 30, t: int = 20):
    g = torch.Generator().manual_seed(seed)
    W = torch.zeros(f, k)
    for j in range(k):  # three disjoint spectral bumps
        W[8 + 10 * j : 12 + 10 * j, j] = torch.tensor([0.5, 1.0, 1.0, 0.5])
    W = W / W.norm(dim=0)
    H = torch.rand(n, k, t, generator=g) ** 3
    return W, torch.einsum("fk,nkt->nft", W, H)


def test_dictionary_recovers_known_spectral_shapes(tmp_path):
    W, spec = _known_parts()
    d = learn_dictionary(spec, DictionarySettings(n_components=3, max_iter=300, stft={"n_fft": 78}))
    cos = (W.T @ d.W).abs()  # unit columns: cosine similarity of every pair
    assert torch.all(cos.max(dim=1).values > 0.97)
    assert torch.allclose(d.W.norm(dim=0), torch.ones(3), atol=1e-5)
    assert d.divergence < 1e-2
    loaded = Dictionary.load(d.save(tmp_path / "w.npz"))
    assert torch.equal(loaded.W, d.W) and loaded.settings == d.settings


def test_dictionary_refuses_another_stft():
    d = Dictionary(torch.ones(5, 2), DictionarySettings(stft={"sample_rate": 16000, "n_fft": 8}), 0)
    with pytest.raises(ValueError, match="sample_rate"):
        d.check_stft({"sample_rate": 44100, "n_fft": 8})


def test_noise_components_are_flagged_and_never_relevant():
    _, spec = _known_parts()
    d = learn_dictionary(spec, DictionarySettings(n_components=3, n_noise=2, max_iter=20))
    assert d.W.shape[1] == 5 and d.is_noise.tolist() == [False] * 3 + [True] * 2
    model = NMFInterpreter(
        SpectrogramCNN(4, channels=(4, 8)), ["block1", "block2"], d.W, 4, d.is_noise
    )
    e = model.explain(torch.randn(2, 16, 20))
    assert not e.maps["relevant"][:, d.is_noise].any()


def _model(k: int = 4, classes: int = 3) -> NMFInterpreter:
    torch.manual_seed(0)
    return NMFInterpreter(
        SpectrogramCNN(classes, channels=(4, 8)), ["block1", "block2"], torch.rand(12, k), classes
    )


def test_relevance_is_evidence_over_its_maximum():
    model = _model()
    with torch.no_grad():
        model.theta.weight.copy_(torch.tensor([[1.0, 2.0, -1.0, 0.5], [0, 0, 0, 0], [1, 1, 1, 1]]))
    z = torch.tensor([[1.0, 1.0, 1.0, 4.0]])
    # evidence for class 0: [1, 2, -1, 2] -> divided by its max 2
    assert torch.allclose(model.relevance(z, torch.tensor([0])), torch.tensor([[0.5, 1, -0.5, 1]]))
    # no positive evidence: left unnormalised rather than divided by <= 0
    assert torch.allclose(model.relevance(z, torch.tensor([1])), torch.zeros(1, 4))


def test_component_mask_is_each_components_share():
    model = _model(k=2)
    with torch.no_grad():
        model.W.copy_(torch.tensor([[1.0, 0.0]] * 6 + [[1.0, 1.0]] * 6))
    H = torch.ones(1, 2, 5)
    mask = model.component_mask(H, torch.tensor([[True, False]]), eps=0.0)
    assert torch.allclose(mask[0, :6], torch.ones(6, 5))  # only component 0 there
    assert torch.allclose(mask[0, 6:], torch.full((6, 5), 0.5))  # half of W H
    all_on = model.component_mask(H, torch.tensor([[True, True]]))
    assert torch.allclose(all_on, torch.ones_like(all_on), atol=1e-5)


def test_explain_shapes_and_unknown_layer():
    model = _model().eval()
    e = model.explain(torch.randn(3, 16, 24))
    assert e.grouping == "components" and e.attribution.shape == (3, 4)
    assert e.maps["mask"].shape == (3, 12, 24) and e.maps["H"].shape == (3, 4, 24)
    assert (e.maps["H"] >= 0).all() and (e.maps["mask"] >= 0).all() and (e.maps["mask"] <= 1).all()
    assert torch.equal(e.target, e.maps["clf_logits"].argmax(1))
    assert e.to_json(0, input_file="a.wav")["meta"]["input_file"] == "a.wav"
    with pytest.raises(ValueError, match="block9"):
        NMFInterpreter(SpectrogramCNN(3, channels=(4,)), ["block9"], torch.rand(12, 4), 3)


def test_unknown_regime_is_refused():
    # That the post-hoc classifier stays frozen is tested through the CLI, on the saved
    # checkpoints (tests/test_nmf_cli.py): Lightning's loops bypass module.train().
    with pytest.raises(ValueError, match="regime"):
        NMFInterpreterModule(_model(), regime="both")


def test_soft_cross_entropy_known_value():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    target = torch.tensor([[1.0, 0.0, 0.0]])
    assert soft_cross_entropy(logits, target).item() == pytest.approx(np.log(2), abs=1e-6)


def test_masking_through_the_shared_stft_reaches_the_classifier_unchanged():
    sr = 16000
    wave = torch.randn(2, sr) * 0.1
    logmel, stft = (
        LogMel(sr, n_fft=1024, hop_length=256, n_mels=32),
        Log1pSpectrogram(sr, 1024, 256),
    )
    model = NMFInterpreter(
        SpectrogramCNN(3, channels=(4, 8)), ["block1", "block2"], torch.rand(513, 6), 3
    ).eval()
    spec, x = stft(wave), logmel(wave)
    with torch.no_grad():
        kept = masked_probs(model.classifier, logmel, spec, torch.ones_like(spec))
        direct = torch.softmax(model.classifier(x), dim=1)
    assert torch.allclose(kept, direct, atol=1e-4)  # keep-everything == the original input


def test_random_control_picks_as_many_non_noise_components():
    relevant = torch.tensor([[True, True, False, False, False], [False, False, False, False, True]])
    noise = torch.tensor([False, False, False, True, True])
    out = random_components(relevant, noise, torch.Generator().manual_seed(0))
    assert out.sum(1).tolist() == [2, 1] and not out[:, noise].any()


def _time_model(k: int = 4, classes: int = 3) -> NMFInterpreter:
    torch.manual_seed(0)
    return NMFInterpreter(
        SpectrogramCNN(classes, channels=(4, 8)),
        ["block1", "block2"],
        torch.rand(12, k),
        classes,
        torch.tensor([False] * (k - 1) + [True]),
        relevance="time",
    )


def test_time_resolved_evidence_sums_exactly_to_the_heads_logit():
    model = _time_model().eval()
    x = torch.randn(3, 16, 20)
    with torch.no_grad():
        out = model(x)
        for c in range(3):
            target = torch.full((3,), c)
            e = model.evidence(out, target)
            assert e.shape == (3, 4, 20)
            assert torch.allclose(e.sum(dim=(1, 2)), out.logits[:, c], atol=1e-5)
        ex = model.explain(x, target=torch.tensor([0, 1, 2]))
    assert torch.allclose(
        ex.attribution.sum(dim=1), out.logits[torch.arange(3), [0, 1, 2]], atol=1e-5
    )


def test_time_relevance_keeps_frames_above_the_threshold_and_no_noise():
    model = _time_model()
    e = torch.zeros(1, 4, 5)
    e[0, 0] = torch.tensor([1.0, 0.5, 0.1, 0.0, -1.0])
    e[0, 3, 0] = 5.0  # a noise component: never kept, nor counted in the maximum
    rho = model.time_relevance(e, threshold=0.2)
    assert torch.allclose(rho[0, 0], torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0]))
    assert rho[0, 3].abs().sum() == 0 and rho[0, 1:3].abs().sum() == 0


def test_time_mask_weights_each_components_share_frame_by_frame():
    model = _time_model()
    H = torch.rand(2, 4, 6) + 0.1
    rho = torch.zeros(2, 4, 6)
    rho[:, 1, :3] = 1.0
    mask = model.component_mask(H, rho)
    share = torch.einsum("f,bt->bft", model.W[:, 1], H[:, 1]) / (model.reconstruct(H) + 1e-6)
    assert torch.allclose(mask[..., :3], share[..., :3], atol=1e-6)
    assert mask[..., 3:].abs().sum() == 0


def test_unknown_relevance_mode_is_refused():
    with pytest.raises(ValueError, match="interpreter.relevance"):
        NMFInterpreter(
            SpectrogramCNN(3, channels=(4, 8)), ["block1"], torch.rand(12, 4), 3, relevance="x"
        )
