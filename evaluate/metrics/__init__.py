"""Explanation metrics, one value per clip, shape ``(B,)``.

Pure torch functions of tensors (faithfulness of masks, localization, complexity, agreement)
and functions of a model and a grouping (``perturbation``: deletion / insertion AUC,
faithfulness correlation; ``robustness``: average sensitivity, model-parameter
randomisation). Importing this package makes Quantus importable (``evaluate.zennit_compat``).
"""

from evaluate import zennit_compat  # noqa: F401  (before anything imports zennit / quantus)
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
from evaluate.metrics.perturbation import (
    curve_auc,
    deletion_curve,
    faithfulness_correlation,
    insertion_curve,
    perturbation_curves,
    perturbation_metrics,
)
from evaluate.metrics.robustness import (
    average_sensitivity,
    model_parameter_randomisation,
    randomisable_layers,
)

__all__ = [
    "average_drop",
    "average_gain",
    "average_increase",
    "average_sensitivity",
    "complexity",
    "curve_auc",
    "deletion_curve",
    "faithfulness_correlation",
    "faithfulness_ff",
    "fidelity_in",
    "hoyer_sparsity",
    "insertion_curve",
    "lmac_metrics",
    "mask_iou",
    "model_parameter_randomisation",
    "perturbation_curves",
    "perturbation_metrics",
    "pointing_game",
    "randomisable_layers",
    "reconstruction_error",
    "relevance_mass_inside",
    "relevance_rank_inside",
    "sparseness",
    "topk_agreement",
    "topk_intersection",
]
