"""Post-hoc explainers on multichannel waveform models (a microphone array, (B, M, N)):
one relevance per microphone and sample / segment, through the usual ``attribute()``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluate.posthoc import COMPARED, build_explainer
from evaluate.posthoc.dft_lrp import stft_lrp
from evaluate.posthoc.groupings import Samples
from evaluate.posthoc.lrp import is_waveform_input, lrp_attribute
from interp_models.audio.features import Spectrogram
from interp_models.blackbox.wavecnn import WaveformCNN

M, N, C = 3, 2048, 4
STFT = Spectrogram(sample_rate=8000, n_fft=128, hop_length=64)


class WindowModel(nn.Module):
    """Logits from one microphone's samples in one window only (a known answer): class c
    is ``w_c . x[mic, lo:hi]``, so every other sample is irrelevant to every class. The
    map is an ``nn.Linear``, so zennit gives it a rule (the waveform first layer's epsilon)."""

    in_channels = M

    def __init__(self, mic: int = 1, lo: int = 512, hi: int = 768):
        super().__init__()
        self.mic, self.lo, self.hi = mic, lo, hi
        self.head = nn.Linear(hi - lo, C, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(
                torch.randn(C, hi - lo, generator=torch.Generator().manual_seed(0))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[:, self.mic, self.lo : self.hi])


def _clips(n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.3 * torch.randn(n, M, N, generator=g)


def _wavecnn() -> WaveformCNN:
    torch.manual_seed(0)
    net = WaveformCNN(
        C, channels=(8, 8), stem_channels=8, stem_kernel=32, stem_stride=2, in_channels=M
    )
    net.train()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for _ in range(3):
            net(_clips(4))
    return net.eval()


def test_waveform_input_is_told_from_a_spectrogram():
    assert is_waveform_input(_wavecnn(), _clips())
    assert not is_waveform_input(nn.Linear(3, 3), torch.zeros(2, 3, 10))  # a (B, F, T) input
    assert is_waveform_input(nn.Linear(3, 3), torch.zeros(2, 10))


@pytest.mark.parametrize("method", [*COMPARED, "grad_cam"])
def test_every_method_gives_relevance_per_microphone(method):
    net, x = _wavecnn(), _clips()
    segments = method in ("kernel_shap", "occlusion")
    grouping = Samples(n_segments=8, stft=STFT) if segments else Samples(stft=STFT)
    opts = {"n_samples": 40} if method == "kernel_shap" else {}
    e = build_explainer(method, net, **opts).attribute(x, target=1, grouping=grouping)
    assert e.attribution.shape == ((2, M, 8) if segments else (2, M, N))
    assert torch.isfinite(e.attribution).all()
    assert e.relevance.shape[0] == 2 and e.grid.name == "stft"  # DFT-LRP view, mics summed
    assert e.grouping == ("segments" if segments else "samples")


def test_segments_of_each_microphone_are_their_own_groups():
    x = _clips(1)
    bound = Samples(n_segments=4).bind(x)
    view = bound.view(nn.Identity())
    assert view.group_shape == (M, 4)
    assert view.feature_mask.shape == (1, M, N)
    assert view.feature_mask[0, 2, 0] == 8 and view.feature_mask[0, 0, -1] == 3
    assert view.references.shape == (3, M, N)
    # the noise references differ between microphones (independent sensor noise)
    assert not torch.allclose(view.references[1, 0], view.references[1, 1])
    per_group = bound.from_input_map(x)
    assert torch.allclose(per_group.sum(-1), x[0].sum(-1), atol=1e-4)


@pytest.mark.parametrize("method", ["integrated_gradients", "lrp", "deeplift_shap", "occlusion"])
def test_known_answer_relevance_only_where_the_model_listens(method):
    """Only microphone 1's samples 512..767 reach the output: every method must put all
    relevance there; IG and LRP, being complete / conservative on a linear model, give
    exactly x * w there."""
    model, x = WindowModel().eval(), _clips()
    grouping = Samples(n_segments=8) if method == "occlusion" else Samples()
    e = build_explainer(method, model).attribute(x, target=2, grouping=grouping)
    a = e.attribution
    if method == "occlusion":  # segment 2 of microphone 1 (samples 512..767) holds it all
        outside = a.clone()
        outside[:, 1, 2] = 0
        assert outside.abs().max() < 1e-6 and a[:, 1, 2].abs().min() > 0
        return
    inside = torch.zeros(N, dtype=torch.bool)
    inside[512:768] = True
    assert a[:, [0, 2]].abs().max() < 1e-6
    assert a[:, 1, ~inside].abs().max() < 1e-6
    if method in ("integrated_gradients", "lrp"):
        expected = x[:, 1, 512:768] * model.head.weight[2].detach()
        assert torch.allclose(a[:, 1, inside], expected, atol=1e-5)


def test_lrp_conserves_on_a_multichannel_cnn_and_dft_view_sums_per_microphone():
    net, x = _wavecnn(), _clips()
    t = torch.tensor([0, 3])
    rel = lrp_attribute(net, x, t)
    assert rel.shape == x.shape
    # the DFT-LRP view of each microphone holds that microphone's relevance
    bound = Samples(stft=STFT).bind(x[:1])
    maps, freqs, times = bound.channel_maps(rel[0])
    assert maps.shape[:2] == (M, len(freqs)) and maps.shape[2] == len(times)
    assert torch.allclose(maps.sum((1, 2)), rel[0].sum(-1), rtol=1e-3, atol=1e-6)
    direct = stft_lrp(x[0], rel[0], STFT)
    assert torch.allclose(direct, maps, atol=1e-6)


def test_multichannel_ig_rejects_starts_that_need_a_front_end():
    net, x = _wavecnn(), _clips(1)
    e = build_explainer("integrated_gradients", net, baseline="blur")
    with pytest.raises(ValueError, match="multichannel waveforms"):
        e.attribute(x, target=0)
    # IG from silence is complete: relevances sum to f(x) - f(0)
    ig = build_explainer("integrated_gradients", net, n_steps=64).attribute(x, target=0)
    with torch.no_grad():
        gap = net(x)[0, 0] - net(torch.zeros_like(x))[0, 0]
    assert torch.allclose(ig.attribution.sum(), gap, rtol=0.05, atol=1e-4)
