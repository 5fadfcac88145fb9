"""DFT-LRP (Vielhaben et al., arXiv 2303.06365): conservation through the virtual inverse
DFT / STFT layers, and relevance landing on the frequency a linear model listens to."""

from __future__ import annotations

import pytest
import torch
from posthoc_helpers import single_thread  # noqa: F401

from evaluate.posthoc.dft_lrp import dft_lrp, energy_split, stft_lrp
from interp_models.audio.features import Spectrogram

SR = 8000

pytestmark = pytest.mark.usefixtures("single_thread")


def _signal(n: int = 3000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, generator=g, dtype=torch.float64)
    grad = torch.randn(2, n, generator=g, dtype=torch.float64)
    return x, x * grad  # relevance of the form x_n g_n (gradient x input, LRP-0)


def test_dft_lrp_conserves_relevance():
    x, relevance = _signal()
    freq = dft_lrp(x, relevance, eps=0.0)
    assert freq.shape == (2, 3000 // 2 + 1)
    torch.testing.assert_close(freq.sum(-1), relevance.sum(-1), rtol=1e-9, atol=1e-9)
    # the default stabiliser (1e-9 of the peak) absorbs only a negligible share
    torch.testing.assert_close(dft_lrp(x, relevance).sum(-1), relevance.sum(-1), rtol=1e-6, atol=0)


@pytest.mark.parametrize(("n_fft", "hop"), [(256, 64), (256, 100), (512, 128), (128, 128 // 2)])
def test_stft_lrp_conserves_relevance(n_fft, hop):
    """Sum over time-frequency bins == sum over time samples, for any hop (incl. odd COLA)."""
    x, relevance = _signal()
    stft = Spectrogram(SR, n_fft=n_fft, hop_length=hop).double()
    tf = stft_lrp(x, relevance, stft, eps=0.0)
    assert tf.shape == (2, n_fft // 2 + 1, 1 + 3000 // hop)
    torch.testing.assert_close(tf.sum((1, 2)), relevance.sum(-1), rtol=1e-9, atol=1e-9)


def test_relevance_lands_on_the_frequency_the_model_uses():
    """f(x) = <g, x> with g a 1 kHz tone: LRP-0 gives R_n = g_n x_n, and all of the DFT
    relevance sits in the 1 kHz bin, however much energy x has elsewhere."""
    n = 4000
    t = torch.arange(n, dtype=torch.float64) / SR
    weights = torch.cos(2 * torch.pi * 1000 * t)
    x = (0.5 * torch.cos(2 * torch.pi * 1000 * t + 0.3) + 2.0 * torch.sin(2 * torch.pi * 250 * t))[
        None
    ]
    freq = dft_lrp(x, weights * x, eps=0.0)[0]
    k = int(round(1000 * n / SR))
    assert float(freq[k]) == pytest.approx(float((weights * x).sum()), rel=1e-6)
    assert float(freq.abs().sum() - freq[k].abs()) < 1e-6 * float(freq[k].abs())
    # on the STFT grid it stays around 1 kHz, up to the Hann window's spectral leakage
    stft = Spectrogram(SR, n_fft=256, hop_length=64).double()
    tf = stft_lrp(x, weights * x, stft, eps=0.0)[0]
    band = (stft.frequencies() - 1000).abs() < 100
    assert float(tf[band].sum()) / float(tf.sum()) > 0.99


def test_zero_relevance_and_stabiliser():
    x, _ = _signal(1000)
    x[:, 10] = 0.0  # a silent sample with no relevance must not blow up
    zero = torch.zeros_like(x)
    stft = Spectrogram(SR, n_fft=128, hop_length=32).double()
    assert torch.equal(stft_lrp(x, zero, stft), torch.zeros(2, 65, 1 + 1000 // 32, dtype=x.dtype))
    with pytest.raises(ValueError, match="same shape"):
        dft_lrp(x, x[:, :-1])


def test_energy_split_keeps_each_frame_value():
    x, _ = _signal(1024)
    stft = Spectrogram(SR, n_fft=128, hop_length=64).double()
    time_map = torch.rand(2, 1024, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tf = energy_split(x, time_map, stft)
    centres = (torch.arange(tf.shape[-1]) * 64).clamp(max=1023)
    torch.testing.assert_close(tf.sum(1), time_map[:, centres])
    assert (tf >= 0).all()
