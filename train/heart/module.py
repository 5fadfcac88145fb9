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

    def _outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch["wave"], batch["states"], batch["length"])
