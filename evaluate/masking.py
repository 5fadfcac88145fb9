"""A classifier on a masked spectrogram, and masks moved between STFT and mel grids.

Mask explanations (the NMF interpreter's component mask M of Parekh et al. 2022, L-MAC's
decoder mask of Paissan et al. 2024) keep a share ``M`` in [0, 1] of each bin of
``log1p |X|``. As in L-MAC, the masked-in input is ``expm1(M * log1p|X|)``, the masked-out
input ``expm1((1 - M) * log1p|X|)``; both reach a log-mel classifier through the shared
STFT (``LogMel.from_power``), so no inverse-STFT round trip blurs the comparison.
"""

from __future__ import annotations

import torch
from torch import nn

from interp_models.nmf.interpreter import noise_floor

__all__ = ["masked_logits", "masked_probs", "mel_to_stft_matrix", "noise_floor", "stft_to_mel"]


def masked_logits(
    classifier: nn.Module,
    logmel: nn.Module,
    spec: torch.Tensor,
    keep: torch.Tensor,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier logits for ``log1p|X|`` (``spec``, (B, F, T)) scaled by ``keep`` per bin;
    with ``fill`` (broadcastable to ``spec``), what is not kept becomes ``fill`` instead of
    silence: ``keep * S + (1 - keep) * fill``."""
    kept = keep * spec if fill is None else keep * spec + (1 - keep) * fill
    return classifier(logmel.from_power(torch.expm1(kept).square()))


def masked_probs(
    classifier: nn.Module, logmel: nn.Module, spec: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """Softmax of ``masked_logits``."""
    return torch.softmax(masked_logits(classifier, logmel, spec, keep), dim=1)


def stft_to_mel(relevance: torch.Tensor, mel_fb: torch.Tensor) -> torch.Tensor:
    """Relevance (B, F, T) on STFT bins -> (B, M, T) on mel bands, mass-preserving.

    Bin ``f`` gives band ``m`` the share ``fb[m, f] / sum_m' fb[m', f]`` of its relevance;
    bins no band covers (outside ``f_min .. f_max``) are dropped.
    """
    fb = mel_fb.to(relevance)
    cover = fb.sum(dim=0, keepdim=True)
    share = torch.where(cover > 0, fb / cover.clamp_min(1e-20), 0.0)
    return torch.einsum("mf,bft->bmt", share, relevance)


def mel_to_stft_matrix(mel_fb: torch.Tensor) -> torch.Tensor:
    """(F, M) weights carrying a mask on mel bands to STFT bins.

    Bin ``f`` takes the filter-weighted mean ``sum_m fb[m, f] M_m / sum_m fb[m, f]`` of the
    band masks covering it, so a mask in [0, 1] stays in [0, 1]; bins no band covers get 0.
    """
    fb = mel_fb.float()
    cover = fb.sum(dim=0)
    return torch.where(cover[:, None] > 0, fb.T / cover.clamp_min(1e-20)[:, None], 0.0)
