"""Localization of a time-frequency explanation against a ground-truth mask.

``relevance`` is a real ``(B, F, T)`` tensor, ``truth`` a bool ``(B, F, T)`` tensor marking
the bins where the class evidence really is (known for synthetic mixtures). Every function
returns one value per clip, shape ``(B,)``, in [0, 1]; higher is better.

Ties between equally relevant bins are broken by the first flattened (row-major, F then T)
index everywhere, so results are deterministic on any device.
"""

from __future__ import annotations

import torch

__all__ = [
    "mask_iou",
    "pointing_game",
    "relevance_mass_inside",
    "relevance_rank_inside",
    "topk_intersection",
]


def _check(relevance: torch.Tensor, truth: torch.Tensor, name: str = "relevance") -> None:
    if relevance.ndim != 3 or truth.shape != relevance.shape:
        raise ValueError(
            f"{name} and truth must both be (B, F, T) with the same shape, "
            f"got {tuple(relevance.shape)} and {tuple(truth.shape)}"
        )
    if truth.dtype != torch.bool:
        raise ValueError(f"truth must be a bool tensor, got {truth.dtype}")
    if relevance.is_floating_point() and not torch.isfinite(relevance).all():
        raise ValueError(f"{name} contains NaN or inf")


def _order(relevance: torch.Tensor) -> torch.Tensor:
    """Flattened bin indices per clip, most relevant first, ties by first index."""
    return torch.sort(relevance.flatten(1), dim=1, descending=True, stable=True).indices


def relevance_mass_inside(
    relevance: torch.Tensor, truth: torch.Tensor, nothing: float = 0.0
) -> torch.Tensor:
    """Relevance mass accuracy: positive relevance inside ``truth`` / all positive relevance.

    Arras, Osman, Samek, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of
    neural network explanations", Information Fusion 2022. Negative relevance (evidence
    *against* the class) is ignored, as in that paper. Its chance level is the area fraction
    of ``truth`` (what a uniform map gets).

    Parameters
    ----------
    relevance : (B, F, T) relevance on the grid of ``truth``.
    truth : (B, F, T) bool ground-truth region.
    nothing : the value of a clip with nothing to score: no positive relevance (the map
        points nowhere) or an empty ``truth``. 0 scores such a map as a miss (the NMF
        report, whose truth is never empty); NaN leaves the clip out of a mean (the emotion
        report, whose evidence region can be empty).

    Returns
    -------
    (B,) in [0, 1] (or ``nothing``), in the dtype of ``relevance`` (float32 for integers).
    """
    _check(relevance, truth)
    pos = relevance.flatten(1).clamp_min(0).double()
    total = pos.sum(dim=1)
    inside = (pos * truth.flatten(1)).sum(dim=1)
    ok = (total > 0) & truth.flatten(1).any(dim=1)
    share = torch.where(ok, inside / total.clamp_min(1e-300), nothing)
    return share.to(_float(relevance))


def relevance_rank_inside(relevance: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Relevance rank accuracy: fraction of the top-``K`` bins lying in ``truth``, ``K = |truth|``.

    Arras, Osman, Samek, "CLEVR-XAI", Information Fusion 2022.

    Degenerate case: an empty ``truth`` gives 0 (there is nothing to find; in our synthetic
    data the truth mask of an explained class is never empty).
    """
    _check(relevance, truth)
    flat_truth = truth.flatten(1)
    k = flat_truth.sum(dim=1)
    hits_sorted = flat_truth.gather(1, _order(relevance))
    rank = torch.arange(hits_sorted.shape[1], device=relevance.device)
    hits = (hits_sorted & (rank[None, :] < k[:, None])).sum(dim=1)
    return torch.where(k > 0, hits / k.clamp_min(1), 0.0).to(_float(relevance))


def pointing_game(relevance: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pointing game: 1.0 if the most relevant bin lies in ``truth``, else 0.0.

    Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016.
    Ties are broken by the first flattened index. An empty ``truth`` gives 0.
    """
    _check(relevance, truth)
    # torch.argmax documents that it returns the first maximal index.
    top = relevance.flatten(1).argmax(dim=1)
    return truth.flatten(1).gather(1, top[:, None])[:, 0].to(_float(relevance))


def topk_intersection(relevance: torch.Tensor, truth: torch.Tensor, k: int) -> torch.Tensor:
    """Fraction of the ``k`` most relevant bins that lie in ``truth``.

    Theiner, Müller-Budack, Ewerth, "Interpretable semantic photo geolocation", WACV 2022
    (arXiv 2021), as implemented by Quantus ``TopKIntersection``. The denominator is ``k``,
    so a ``truth`` smaller than ``k`` caps the score below 1.

    Raises ``ValueError`` unless ``1 <= k <= F * T``.
    """
    _check(relevance, truth)
    n = relevance.shape[1] * relevance.shape[2]
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, F*T={n}], got {k}")
    top = _order(relevance)[:, :k]
    return truth.flatten(1).gather(1, top).sum(dim=1).to(_float(relevance)) / k


def mask_iou(mask: torch.Tensor, truth: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Intersection over union of the binarised mask ``mask >= threshold`` with ``truth``.

    Degenerate case: both empty gives 0.0, not 1.0: an explanation that selects nothing
    should never score as perfect, and in our data the truth mask is never empty.
    """
    _check(mask, truth, name="mask")
    pred = (mask >= threshold).flatten(1)
    flat_truth = truth.flatten(1)
    inter = (pred & flat_truth).sum(dim=1)
    union = (pred | flat_truth).sum(dim=1)
    return torch.where(union > 0, inter / union.clamp_min(1), 0.0).to(_float(mask))


def _float(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()
