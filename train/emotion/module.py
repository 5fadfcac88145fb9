"""LightningModule for the emotion family: masked MSE on z-scored qualities and emotions.

One module trains all three set-ups of Chowdhury et al. (ISMIR 2019): ``A2E`` (emotion
loss only), A2Mid2E joint (``quality_weight * L_q + emotion_weight * L_e``; the paper uses
equal weights) and the first stage of A2Mid2E separate (quality loss only). Labels missing
for a clip (NaN) are left out of the loss and of the metrics. Metrics are computed once per
epoch on all of a split's predictions: mean and per-output Pearson r and RMSE in rating
units (``evaluate.emotion.metrics``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from evaluate.emotion.metrics import regression_report
from interp_models.emotion.models import MidLevelEmotionModel
from train.modules import EpochMetricsSteps


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the finite entries of ``target``; 0 (with a graph) when there are none."""
    ok = torch.isfinite(target)
    if not ok.any():
        return (pred * 0.0).sum()
    return (pred[ok] - target[ok]).square().mean()


class EmotionModule(EpochMetricsSteps):
    """Trains ``model`` (``A2E`` or ``MidLevelEmotionModel``) on ``{"x", "q", "e"}`` batches.

    The checkpoint monitor is ``val/emotion_r`` when the emotion loss is on, else
    ``val/quality_r`` (mean Pearson r; higher is better). ``contrast_weight`` > 0 adds
    ``contrast_loss`` on training batches that carry one-quality re-renders.
    """

    def __init__(
        self,
        model: nn.Module,
        quality_weight: float = 1.0,
        emotion_weight: float = 1.0,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        contrast_weight: float = 0.0,
        augment: nn.Module | None = None,
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.model = model
        self.mid = isinstance(model, MidLevelEmotionModel)
        if quality_weight < 0 or emotion_weight < 0 or quality_weight + emotion_weight == 0:
            raise ValueError(
                f"loss weights must be >= 0 and not both 0, got quality={quality_weight}, "
                f"emotion={emotion_weight}"
            )
        if quality_weight > 0 and not self.mid:
            raise ValueError("quality loss weight > 0 needs a model with a quality layer")
        if contrast_weight < 0 or (contrast_weight > 0 and not self.mid):
            raise ValueError(
                f"emotion.loss.contrast must be >= 0 and needs a quality layer, got "
                f"{contrast_weight} for {type(model).__name__}"
            )
        self.quality_weight, self.emotion_weight = quality_weight, emotion_weight
        self.contrast_weight = contrast_weight
        self.augment = augment  # train batches only (train.emotion.augment.SpectralAugment)
        self.lr, self.weight_decay, self.scheduler = lr, weight_decay, scheduler
        self.save_hyperparameters(hparams or {})
        self._collected: dict[str, list[tuple[torch.Tensor, ...]]] = {}

    @property
    def monitor(self) -> str:
        return "val/emotion_r" if self.emotion_weight > 0 else "val/quality_r"

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.mid:
            return self.model.forward_both(x)
        return None, self.model(x)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        if stage == "train" and self.augment is not None:
            keys = [k for k in ("x", "x_alt") if k in batch]
            augmented = self.augment(*(batch[k] for k in keys))
            batch = {**batch, **dict(zip(keys, augmented, strict=True))}
        q_pred, e_pred = self.outputs(batch["x"])
        loss = self.emotion_weight * masked_mse(e_pred, batch["e"])
        if q_pred is not None and self.quality_weight > 0:
            loss = loss + self.quality_weight * masked_mse(q_pred, batch["q"])
        n = len(batch["x"])
        if self.contrast_weight > 0 and "x_alt" in batch:
            contrast = self.contrast_loss(q_pred, batch["x_alt"], batch["d"])
            self.log(f"{stage}/contrast_loss", contrast, on_epoch=True, on_step=False, batch_size=n)
            loss = loss + self.contrast_weight * contrast
        self.log(f"{stage}/loss", loss, on_epoch=True, on_step=False, batch_size=n)
        q_pred = q_pred if q_pred is not None else torch.full_like(batch["q"], torch.nan)
        self._collected.setdefault(stage, []).append(
            tuple(t.detach().float().cpu() for t in (q_pred, batch["q"], e_pred, batch["e"]))
        )
        return loss

    def contrast_loss(
        self, q_pred: torch.Tensor, x_alt: torch.Tensor, change: torch.Tensor
    ) -> torch.Tensor:
        """MSE between how the predicted qualities move from a clip to its one-quality
        re-renders and how the qualities were moved: the changed one by ``change``, all
        the others by 0 (``interp_models.data.music_contrasts``)."""
        b, k = x_alt.shape[:2]
        q_alt = self.model.qualities(x_alt.flatten(0, 1)).view(b, k, -1)
        return (q_alt - q_pred[:, None] - change).square().mean()

    def _log_epoch(self, stage: str) -> None:
        parts = self._collected.pop(stage, [])
        if not parts:
            return
        q_pred, q, e_pred, e = (torch.cat(p) for p in zip(*parts, strict=True))
        if self.trainer.world_size > 1:  # every rank scores the whole split
            q_pred, q, e_pred, e = (
                self.all_gather(t).flatten(0, 1).cpu() for t in (q_pred, q, e_pred, e)
            )
        m = self.model
        values: dict[str, float] = {}
        if self.emotion_weight > 0:  # an untrained emotion layer is not worth scoring
            e_r = m.to_ratings(e_pred, "emotion").numpy()
            e_t = m.to_ratings(e, "emotion").numpy()
            if np.isfinite(e_t).any():
                means, per = regression_report(e_r, e_t, list(_names(m, "emotion")), "emotion")
                values |= means | {f"emotion/{k}": v for k, v in per.items()}
        if self.mid and torch.isfinite(q_pred).all():
            q_r = m.to_ratings(q_pred, "quality").numpy()
            q_t = m.to_ratings(q, "quality").numpy()
            if np.isfinite(q_t).any():
                means, per = regression_report(q_r, q_t, list(_names(m, "quality")), "quality")
                values |= means | {f"quality/{k}": v for k, v in per.items()}
        # NaN (no labels of a kind in the split) is not logged: it would poison the monitor.
        values = {k: v for k, v in values.items() if np.isfinite(v)}
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, prog_bar=False)


def _names(model: nn.Module, kind: str) -> list[str]:
    from interp_models.data.midlevel import EMOTIONS, QUALITIES

    default = EMOTIONS if kind == "emotion" else QUALITIES
    return list(getattr(model, f"{kind}_names", default))
