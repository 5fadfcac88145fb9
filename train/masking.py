"""The masked-in / masked-out objective of L-MAC, shared by every mask-trained explainer.

Paissan, Ravanelli, Subakan, "Listenable Maps for Audio Classifiers", ICML 2024:
the classifier on the masked-in input keeps its prediction (cross-entropy to it), on the
masked-out input loses it, and a regulariser keeps the mask small. The paper subtracts
the masked-out cross-entropy, which is unbounded below; here the masked-out term is
``-log(1 - p_out(c))``, which is bounded below by 0 and has the same minimiser (the
class's probability on the masked-out input going to 0). Written from the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evaluate.masking import masked_logits, noise_floor
from interp_models.nmf.interpreter import BASELINES


def mask_objective(
    classifier: nn.Module,
    logmel: nn.Module,
    spec: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor,
    area: str = "mean",
    baseline: str = "silence",
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Loss terms and diagnostics of a mask ``mask`` (B, F, T) in [0, 1] on ``log1p|X|``.

    Returns ``(terms, stats)``: ``terms`` are ``mask_in`` (cross-entropy of the masked-in
    logits to ``target``, the classifier's own prediction), ``mask_out`` (mean
    ``-log(1 - p_out(target))``) and ``mask_area``: with ``area="mean"`` the mean of the
    mask (L-MAC's L1 regulariser), with ``area="energy"`` the share of ``log1p|X|`` it keeps,
    ``sum(M * S) / sum(S)`` per clip (a kept loud background bin costs more than a kept
    silent one: the quantity a listener hears and the localization metrics score).
    ``baseline="silence"`` removes a bin as L-MAC does (zero magnitude); ``"floor"``
    replaces it by the clip's noise floor (``evaluate.masking.noise_floor``), so a mask
    need not keep background only to spare the classifier an input of digital silence.
    ``stats`` (detached) are ``fid_in`` (share of clips whose masked-in input keeps
    ``target``) and ``p_out`` (mean probability of ``target`` when masked out).
    """
    floor = _fill(spec, baseline)
    logits_in = masked_logits(classifier, logmel, spec, mask, floor)
    logits_out = masked_logits(classifier, logmel, spec, 1 - mask, floor)
    p_out = torch.softmax(logits_out, dim=1).gather(1, target[:, None])[:, 0]
    terms = {
        "mask_in": F.cross_entropy(logits_in, target),
        "mask_out": -torch.log1p(-p_out.clamp(max=1 - 1e-6)).mean(),
        "mask_area": _area(mask, spec, area),
    }
    stats = {
        "fid_in": (logits_in.argmax(dim=1) == target).float().mean().detach(),
        "p_out": p_out.mean().detach(),
    }
    return terms, stats


AREAS = ("mean", "energy")


def _fill(spec: torch.Tensor, baseline: str) -> torch.Tensor | None:
    if baseline == "silence":
        return None
    if baseline == "floor":
        return noise_floor(spec)
    raise ValueError(f"baseline: expected one of {BASELINES}, got {baseline!r}")


def _area(mask: torch.Tensor, spec: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mean":
        return mask.mean()
    if kind == "energy":
        return ((mask * spec).sum(dim=(1, 2)) / spec.sum(dim=(1, 2)).clamp_min(1e-12)).mean()
    raise ValueError(f"mask_area_kind: expected one of {AREAS}, got {kind!r}")
