"""LightningModule glue: a plain ``nn.Module`` plus a task, trained on feature batches."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from train.schedule import apply_epoch_lr
from train.tasks import Task, summarise


class StagedSteps(L.LightningModule):
    """Routes Lightning's train / val / test steps to one ``_step(batch, stage)``, and keeps
    the parts named by ``frozen_modules()`` frozen while the others train."""

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        raise NotImplementedError

    def frozen_modules(self) -> list[nn.Module]:
        """Parts that must not change while this module trains (none by default)."""
        return []

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Lightning's loops restore every submodule's ``training`` flag directly after each
        # validation (``_ModuleMode``), bypassing any ``train()`` override, so eval mode is
        # re-asserted before every step: no batch-norm statistic or dropout mask moves.
        for part in self.frozen_modules():
            part.eval()

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")


class EpochMetricsSteps(StagedSteps):
    """``StagedSteps`` that score each stage once per epoch, with AdamW and the epoch-wise
    learning-rate schedule.

    Subclasses set ``lr``, ``weight_decay``, ``scheduler`` and implement
    ``_log_epoch(stage)``, called at the end of every train / val / test epoch.
    """

    lr: float
    weight_decay: float
    scheduler: str

    def _log_epoch(self, stage: str) -> None:
        raise NotImplementedError

    def on_train_epoch_end(self):
        self._log_epoch("train")

    def on_validation_epoch_end(self):
        self._log_epoch("val")

    def on_test_epoch_end(self):
        self._log_epoch("test")

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]  # frozen parts left out
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def on_train_epoch_start(self) -> None:
        apply_epoch_lr(self, self.lr, self.scheduler)


class SupervisedModule(EpochMetricsSteps):
    """Trains ``net`` on ``batch["x"] -> batch["y"]`` with ``task``'s loss and metrics.

    Metrics are logged as ``{stage}/{name}``; the checkpoint monitor is
    ``val/{task.monitor}``. Hyper-parameters are stored as plain containers so checkpoints
    load with ``torch.load(weights_only=True)``.
    """

    def __init__(
        self,
        net: nn.Module,
        task: Task,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.net = net
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.save_hyperparameters(hparams or {})
        # ModuleDict keys may not shadow nn.Module attributes such as ``train``.
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_metrics": task.metrics() for stage in ("train", "val", "test")}
        )

    @property
    def monitor(self) -> str:
        return f"val/{self.task.monitor}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The net's outputs for a batch (subclasses with other inputs override this)."""
        return self.net(batch["x"])

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        y = batch["y"]
        outputs = self._outputs(batch)
        loss = self.task.loss(outputs, y)
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage != "test",
            on_epoch=True,
            on_step=False,
            batch_size=len(y),
        )
        self.stage_metrics[f"{stage}_metrics"].update(*self.task.prepare(outputs.detach(), y))
        return loss

    def _log_epoch(self, stage: str) -> None:
        metrics = self.stage_metrics[f"{stage}_metrics"]
        values = summarise(self.task, metrics.compute())
        metrics.reset()
        self.log_dict(
            {f"{stage}/{k}": v for k, v in values.items()}, prog_bar=stage == "val", sync_dist=True
        )
