"""How well a direction classifier localizes: sector accuracy and angular error, shared by
the training pipeline (``train.localization``) and the report (``evaluate.localization``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from interp_models.localization.srp import angular_error_deg, sector_centres_deg

__all__ = ["direction_scores"]


@torch.no_grad()
def direction_scores(
    net: nn.Module, data: Any, rows: Sequence[int], batch_size: int = 50
) -> dict[str, float]:
    """Accuracy and angular error (degrees: the predicted sector's centre against the
    clip's true azimuth, or the true sector's centre where the clip has no ground truth)
    of ``net`` on clips ``rows`` of ``data`` (``LocalizationClips``), in eval mode (the
    net's mode is restored)."""
    idx = np.asarray(rows, dtype=np.int64)
    if len(idx) == 0:
        return {"clips": 0}
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    x, y = data.features["x"][idx], data.targets[idx]
    logits = torch.cat(
        [net(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(idx), batch_size)]
    )
    net.train(was_training)
    pred = logits.argmax(1).numpy()
    centres = sector_centres_deg(data.num_outputs, float(data.array["sector_deg"]))
    truths = [data.truth(int(j)) for j in idx]
    true_az = np.array(
        [centres[int(t)] if tr is None else tr.azimuth_deg for t, tr in zip(y, truths, strict=True)]
    )
    err = angular_error_deg(centres[pred], true_az)
    return {
        "clips": len(idx),
        "acc": float((pred == y.numpy()).mean()),
        "mean_angular_error_deg": float(err.mean()),
        "median_angular_error_deg": float(np.median(err)),
    }
