"""Layer-wise relevance propagation with zennit composites.

Bach et al., "On pixel-wise explanations for non-linear classifier decisions by layer-wise
relevance propagation", PLoS ONE 2015; composites and canonizers as in Anders et al.,
"Software for dataset-wide XAI: from local explanations to global insights with Zennit,
CoRelAy, and ViRelAy", arXiv 2106.13200.

zennit assigns a rule to each *module*; tensor operations in ``forward`` pass relevance as
a plain gradient, which is not conservative (``a + b`` hands the full relevance to both
terms). ``SpectrogramCNN`` pools with tensor operations (frequency mean, then time max +
time mean), so ``lrp_module`` rebuilds the same function from the model's own layers with
the pooling as modules: average pools (zennit's ``Norm`` rule, proportional), a max pool
(winner takes all) and zennit's ``Sum`` layer for max + mean. Other models (e.g.
``WaveformCNN``) are used as they are and should pool with modules.

Default composites:

* spectrogram models: ``EpsilonPlusFlat`` (flat rule on the first convolution, z+ on the
  other convolutions, epsilon on dense layers) with ``SequentialMergeBatchNorm``; the input
  batch norm, which follows no linear layer, gets zennit's ``Pass`` rule;
* waveform models (one channel, or the stacked channels of a microphone array): the same
  but with the epsilon rule on the first convolution, so every sample's relevance is a
  share of its own contribution ``x_n w`` -- what DFT-LRP's virtual inverse-DFT layer needs
  (the flat rule would give relevance to samples that are 0, and on a microphone array
  would spread it over the channels regardless of their signals, erasing the delays
  between them). Raw samples are signed and unbounded, so the z+ and box rules, made for
  non-negative or bounded pixels, do not suit that layer either.
"""

from __future__ import annotations

import torch
from torch import nn

from interp_models.blackbox.cnn import SpectrogramCNN

# isort: off
from evaluate import zennit_compat  # noqa: F401  (registers the stub zennit needs first)
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlusFlat,
)
from zennit.core import Composite
from zennit.layer import Sum
from zennit.rules import Epsilon
from zennit.types import Linear

# isort: on

__all__ = [
    "COMPOSITES",
    "SpectrogramCNNForLRP",
    "is_waveform_input",
    "lrp_attribute",
    "lrp_module",
    "make_composite",
]

COMPOSITES = ("epsilon_plus_flat", "epsilon_plus", "epsilon_alpha2_beta1_flat", "epsilon_gamma_box")


class SpectrogramCNNForLRP(nn.Module):
    """The function of a ``SpectrogramCNN``, with its pooling as modules (shares its layers)."""

    def __init__(self, net: SpectrogramCNN):
        super().__init__()
        self.input_norm = net.input_norm
        self.blocks = nn.ModuleList(getattr(net, name) for name in net.block_names)
        self.freq_pool = nn.AdaptiveAvgPool2d((1, None))
        self.time_max = nn.AdaptiveMaxPool1d(1)
        self.time_mean = nn.AdaptiveAvgPool1d(1)
        self.sum = Sum(dim=-1)
        self.dropout = net.dropout
        self.head = net.head

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(spec.unsqueeze(1))
        for block in self.blocks:
            x = block(x)
        x = self.freq_pool(x)[:, :, 0]
        pooled = torch.stack([self.time_max(x)[..., 0], self.time_mean(x)[..., 0]], dim=-1)
        return self.head(self.dropout(self.sum(pooled)))


def is_waveform_input(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``x`` holds waveforms: (B, N), or (B, M, N) for a multichannel model (one
    with ``in_channels`` = M > 1, e.g. ``WaveformCNN`` on a microphone array); any other
    3-D input is a spectrogram (B, F, T)."""
    if x.dim() == 2:
        return True
    channels = getattr(model, "in_channels", 1)
    return x.dim() == 3 and isinstance(channels, int) and channels > 1 and x.shape[1] == channels


def lrp_module(model: nn.Module) -> nn.Module:
    """The module zennit should hook: an LRP-ready view of known models, else the model."""
    if isinstance(model, SpectrogramCNN):
        return SpectrogramCNNForLRP(model)
    return model


def make_composite(
    name: str, waveform: bool, x: torch.Tensor | None = None, epsilon: float = 1e-6
) -> Composite:
    """A zennit composite by name (``COMPOSITES``); ``None``-like defaults documented above."""
    canonizers = [SequentialMergeBatchNorm()]
    first_eps = [(Linear, Epsilon(epsilon=epsilon))] if waveform else None
    if name == "epsilon_plus_flat":
        return EpsilonPlusFlat(epsilon=epsilon, canonizers=canonizers, first_map=first_eps)
    if name == "epsilon_plus":
        return EpsilonPlusFlat(
            epsilon=epsilon, canonizers=canonizers, first_map=[(Linear, Epsilon(epsilon=epsilon))]
        )
    if name == "epsilon_alpha2_beta1_flat":
        return EpsilonAlpha2Beta1Flat(epsilon=epsilon, canonizers=canonizers, first_map=first_eps)
    if name == "epsilon_gamma_box":
        if x is None:
            raise ValueError("epsilon_gamma_box needs the input to bound the first layer")
        low, high = float(x.min()), float(x.max())
        return EpsilonGammaBox(low=low, high=high, epsilon=epsilon, canonizers=canonizers)
    raise ValueError(f"unknown LRP composite {name!r}; valid: {COMPOSITES}")


def lrp_attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    composite: str | None = None,
    epsilon: float = 1e-6,
) -> torch.Tensor:
    """Relevance (same shape as ``x``) of ``target`` per input element.

    The output relevance is the target logit itself, so the input relevances sum to about
    ``f_c(x)`` (exactly, up to biases and stabilisers absorbing some).
    """
    waveform = is_waveform_input(model, x)
    name = composite or ("epsilon_plus" if waveform else "epsilon_plus_flat")
    module = lrp_module(model).eval()
    comp = make_composite(name, waveform, x, epsilon)
    x = x.detach().clone().requires_grad_(True)
    with comp.context(module) as modified:
        out = modified(x)
        rows = torch.arange(len(x), device=x.device)
        grad_out = torch.zeros_like(out)
        grad_out[rows, target] = out[rows, target].detach()
        (relevance,) = torch.autograd.grad(out, x, grad_out)
    return relevance.detach()
