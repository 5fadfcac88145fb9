"""Which checkpoints a stage keeps: the last finished epoch, and the best one on validation.

Lightning's ``ModelCheckpoint`` does not fit either need. With ``save_top_k=1`` and a
monitor it writes ``last.ckpt`` only when it also writes a new best, so ``last.ckpt`` is
the best epoch and an interrupted run retrains every epoch after it; and it compares the
monitor alone, strictly, so a saturated monitor (validation accuracy 1.0 from epoch 1)
keeps the first epoch that reached it. ``EpochCheckpoints`` writes ``last.ckpt`` after
every finished epoch and keeps the best epoch by ``(monitor, tie-break)`` compared
lexicographically: among epochs equal on the monitor, the better tie-break (by default the
lower validation loss) wins, and only a strictly better key replaces the kept epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

LAST = "last.ckpt"


def _value(metrics: dict[str, Any], name: str | None, mode: str) -> float:
    """A logged metric as a float; missing or NaN counts as the worst value."""
    worst = -math.inf if mode == "max" else math.inf
    if name is None or name not in metrics:
        return worst
    value = float(metrics[name])
    return worst if math.isnan(value) else value


def _sign(mode: str) -> float:
    if mode not in ("max", "min"):
        raise ValueError(f"checkpoint mode: expected 'max' or 'min', got {mode!r}")
    return 1.0 if mode == "max" else -1.0


class EpochCheckpoints(Checkpoint):
    """``last.ckpt`` after every finished epoch, ``best-epochNNN.ckpt`` by validation.

    Parameters
    ----------
    dirpath : folder of the checkpoints.
    monitor, mode : the validation metric that chooses the kept epoch, and its direction.
    tiebreak, tiebreak_mode : decides between epochs equal on ``monitor`` (default: the
        lower ``val/loss``); ``None`` keeps the earliest of equal epochs.

    Both files are written at the end of each training epoch, after that epoch's validation
    (as ``ModelCheckpoint`` does with one validation per epoch), so a run resumed from
    ``last.ckpt`` starts the next epoch; an epoch without validation updates only
    ``last.ckpt``. The kept epoch and its values are part of the callback's state, saved in
    every checkpoint, so a resumed run goes on comparing against the same best.
    """

    def __init__(
        self,
        dirpath: str | Path,
        monitor: str,
        mode: str = "max",
        tiebreak: str | None = "val/loss",
        tiebreak_mode: str = "min",
    ):
        self.dirpath = Path(dirpath)
        self.monitor, self.mode = monitor, mode
        self.tiebreak, self.tiebreak_mode = tiebreak, tiebreak_mode
        self._signs = (_sign(mode), _sign(tiebreak_mode))
        self.best: dict[str, Any] = {}  # epoch, path, monitor and tie-break values
        self._validated_epoch: int | None = None  # the last epoch whose validation ran

    @property
    def best_model_path(self) -> str:
        return self.best.get("path", "")

    @property
    def last_model_path(self) -> str:
        return str(self.dirpath / LAST)

    def _key(self, monitor: float, tiebreak: float) -> tuple[float, float]:
        return (self._signs[0] * monitor, self._signs[1] * tiebreak)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the module's own epoch-end hook (Lightning calls checkpoint callbacks last),
        # as ModelCheckpoint does: a run resumed from here starts the next epoch afresh.
        if self._validated_epoch == trainer.current_epoch:
            self._consider(trainer)
        trainer.save_checkpoint(self.last_model_path, weights_only=False)

    def _consider(self, trainer: L.Trainer) -> None:
        """Keep this epoch if its (monitor, tie-break) beats the kept one's."""
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise KeyError(f"checkpoint monitor {self.monitor!r} was not logged in validation")
        monitor = _value(metrics, self.monitor, self.mode)
        tiebreak = _value(metrics, self.tiebreak, self.tiebreak_mode)
        better = not self.best or self._key(monitor, tiebreak) > self._key(
            self.best["monitor_value"], self.best["tiebreak_value"]
        )
        # Every rank must take the same decision: each then joins save_checkpoint's barrier.
        if trainer.strategy.reduce_boolean_decision(better, all=True):
            self._save_best(trainer, monitor, tiebreak)

    def _save_best(self, trainer: L.Trainer, monitor: float, tiebreak: float) -> None:
        previous = self.best_model_path
        path = self.dirpath / f"best-epoch{trainer.current_epoch:03d}.ckpt"
        self.best = {
            "epoch": trainer.current_epoch,
            "path": str(path),
            "monitor_value": monitor,
            "tiebreak_value": tiebreak,
        }
        trainer.save_checkpoint(path, weights_only=False)  # full state: resumable too
        if previous and previous != str(path):
            trainer.strategy.remove_checkpoint(previous)

    def summary(self) -> dict[str, Any]:
        """The kept epoch, what chose it and its values (``None`` if not logged)."""

        def finite(value: float | None) -> float | None:
            return value if value is not None and math.isfinite(value) else None

        return {
            "best_epoch": self.best.get("epoch"),
            "monitor": self.monitor,
            "monitor_value": finite(self.best.get("monitor_value")),
            "tiebreak": self.tiebreak,
            "tiebreak_value": finite(self.best.get("tiebreak_value")),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "monitor": self.monitor, "tiebreak": self.tiebreak}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if (state_dict.get("monitor"), state_dict.get("tiebreak")) != (self.monitor, self.tiebreak):
            return  # chosen by another rule: this run starts its own comparison
        self.best = dict(state_dict.get("best", {}))
