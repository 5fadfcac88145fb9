"""Learning-rate schedule as a pure function of the epoch."""

from __future__ import annotations

import math

import lightning as L


def apply_epoch_lr(module: L.LightningModule, base_lr: float, schedule: str) -> float:
    """Set the optimizer's learning rate for the current epoch and return it.

    ``cosine``: cosine annealing from ``base_lr`` to 0 over ``max_epochs`` (Loshchilov &
    Hutter, ICLR 2017); ``none``: constant. Stateless on purpose: Lightning saves the
    end-of-epoch checkpoint before it steps epoch schedulers, so a stateful scheduler would
    be one step behind in a resumed run.
    """
    if schedule not in ("cosine", "none"):
        raise ValueError(f"scheduler: expected 'cosine' or 'none', got {schedule!r}")
    lr = base_lr
    if schedule == "cosine":
        progress = module.current_epoch / max(1, module.trainer.max_epochs)
        lr *= 0.5 * (1 + math.cos(math.pi * progress))
    for group in module.optimizers().optimizer.param_groups:
        group["lr"] = lr
    module.log("lr", lr, on_step=False, on_epoch=True)
    return lr
