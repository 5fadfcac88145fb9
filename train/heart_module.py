"""Lightning glue for the segmentation-aware heart-sound classifier."""

from __future__ import annotations

import torch

from train.modules import SupervisedModule


class HeartModule(SupervisedModule):
    """``SupervisedModule`` whose net reads ``(wave, states, length)`` batches.

    Everything else (binary task, MAcc monitor, optimiser, epoch-wise learning rate,
    pickle-free hyper-parameters) is the supervised module's.
    """

    def forward(self, wave: torch.Tensor, states: torch.Tensor, length: torch.Tensor | None = None):
        return self.net(wave, states, length)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        y = batch["y"]
        outputs = self.net(batch["wave"], batch["states"], batch["length"])
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
