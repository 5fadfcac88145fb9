"""Test-only pieces importable from a training subprocess (cwd = repo root)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillAt(L.Callback):
    """SIGKILL the training process at (epoch, batch): a crash nothing can clean up after."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


def run_killed(run_fit, args: list[str], run_dir: Path, epoch: int, batch: int) -> Path:
    """Run ``train.fit`` with ``args`` in ``run_dir``, SIGKILLed at (epoch, batch) by
    ``KillAt``; check that it died there without writing ``metrics.json`` and return the
    ``last.ckpt`` to resume from."""
    proc = run_fit(
        *args,
        f"hydra.run.dir={run_dir}",
        "+callbacks.kill._target_=tests.helpers.KillAt",
        f"+callbacks.kill.epoch={epoch}",
        f"+callbacks.kill.batch={batch}",
        check=False,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not (run_dir / "metrics.json").exists()
    return run_dir / "checkpoints" / "last.ckpt"
