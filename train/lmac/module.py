"""LightningModule training an L-MAC masker on a frozen classifier (Paissan et al. 2024)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from evaluate.posthoc.lmac import LMAC
from train.masking import mask_objective
from train.modules import EpochMetricsSteps


class LMACModule(EpochMetricsSteps):
    """Trains ``LMAC.decoder``; the classifier stays frozen (weights and batch-norm
    statistics).

    Loss: ``mask_in * CE(f(M X), c) + mask_out * -log(1 - p_{f((1-M) X)}(c)) + mask_area *
    area(M)`` with c the classifier's prediction (``train.masking``; weights default to
    SpeechBrain's ESC-50 recipe, 4 / 0.2 / 0.4). The kept epoch is the one with the lowest
    validation loss, the objective itself. Logged per stage: the terms, ``fid_in`` (the
    masked-in input keeps the prediction), ``p_out`` (probability of the prediction on the
    masked-out input) and ``area`` (mean mask).
    """

    def __init__(
        self,
        model: LMAC,
        logmel: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        mask_in: float = 4.0,
        mask_out: float = 0.2,
        mask_area: float = 0.4,
        mask_area_kind: str = "mean",
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.model, self.logmel = model, logmel
        self.lr, self.weight_decay, self.scheduler = lr, weight_decay, scheduler
        self.weights = {"mask_in": mask_in, "mask_out": mask_out, "mask_area": mask_area}
        self.mask_options = {"area": mask_area_kind, "baseline": model.baseline}
        self.model.classifier.requires_grad_(False)
        self.save_hyperparameters(hparams or {})

    monitor = "val/loss"
    mode = "min"

    def frozen_modules(self) -> list[nn.Module]:
        return [self.model.classifier]

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        x, spec = batch["x"], batch["spec"]
        mask, logits = self.model(x)
        target = logits.argmax(dim=1).detach()
        terms, stats = mask_objective(
            self.model.classifier, self.logmel, spec, mask, target, **self.mask_options
        )
        loss = sum(self.weights[k] * v for k, v in terms.items())
        values = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}, **stats}
        values["area"] = terms["mask_area"]
        self.log_dict(
            {f"{stage}/{k}": v for k, v in values.items()},
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
            sync_dist=True,
        )
        return loss

    def _log_epoch(self, stage: str) -> None:
        """Every value is an epoch mean logged by ``_step``."""
