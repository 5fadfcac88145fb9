"""Small Lightning callbacks used by every run."""

from __future__ import annotations

import lightning as L
from lightning.fabric.utilities.seed import seed_everything


class EpochSeed(L.Callback):
    """Re-seed every RNG at the start of each training epoch from ``(seed, epoch)``.

    Randomness inside an epoch (dropout, augmentation) then depends only on the epoch, so a
    run resumed from an end-of-epoch checkpoint reproduces the uninterrupted run exactly.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seed_everything(self.seed * 1_000 + trainer.current_epoch, workers=True, verbose=False)
