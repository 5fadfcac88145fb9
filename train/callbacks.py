"""Small Lightning callbacks used by every run."""

from __future__ import annotations

import lightning as L
from lightning.fabric.utilities.seed import seed_everything


class EpochSeed(L.Callback):
    """Make each training epoch's randomness a function of ``(seed, epoch)`` only.

    At every epoch start it re-seeds all RNGs (dropout, augmentation) and sets the epoch of
    the training sampler, so a run resumed from an end-of-epoch checkpoint reproduces the
    uninterrupted run exactly. The sampler epoch is set here rather than left to Lightning,
    which passes its count of *processed* epochs, a count that can lag the current epoch
    after a resume.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seed_everything(self.seed * 1_000 + trainer.current_epoch, workers=True, verbose=False)
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(trainer.current_epoch)
