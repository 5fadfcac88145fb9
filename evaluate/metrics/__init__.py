"""Explanation metrics: pure torch functions returning one value per clip, shape ``(B,)``."""

from evaluate.metrics.agreement import reconstruction_error, topk_agreement
from evaluate.metrics.complexity import complexity, hoyer_sparsity, sparseness
from evaluate.metrics.faithfulness import (
    average_drop,
    average_gain,
    average_increase,
    faithfulness_ff,
    fidelity_in,
    lmac_metrics,
)
from evaluate.metrics.localization import (
    mask_iou,
    pointing_game,
    relevance_mass_inside,
    relevance_rank_inside,
    topk_intersection,
)

__all__ = [
    "average_drop",
    "average_gain",
    "average_increase",
    "complexity",
    "faithfulness_ff",
    "fidelity_in",
    "hoyer_sparsity",
    "lmac_metrics",
    "mask_iou",
    "pointing_game",
    "reconstruction_error",
    "relevance_mass_inside",
    "relevance_rank_inside",
    "sparseness",
    "topk_agreement",
    "topk_intersection",
]
