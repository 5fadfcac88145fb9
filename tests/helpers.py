"""Test-only pieces importable from a training subprocess (cwd = repo root)."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import lightning as L
import torch


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


class RecordEpochs(L.Callback):
    """Append each training epoch's index to ``path`` when it starts (one per line)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_epoch_start(self, trainer, pl_module):
        with self.path.open("a") as f:
            f.write(f"{trainer.current_epoch}\n")


def validation_epochs(stage_dir: Path, n_epochs: int) -> dict[int, dict[str, float]]:
    """Validation metrics of each of the first ``n_epochs`` fitted epochs of a stage, read
    from its CSV logs (all versions, i.e. across a resume), first row per epoch."""
    rows: dict[int, dict[str, float]] = {}
    for log in sorted((stage_dir / "csv").glob("version_*/metrics.csv")):
        for row in csv.DictReader(log.open()):
            epoch = int(row["epoch"])
            if row.get("val/loss") and epoch < n_epochs and epoch not in rows:
                rows[epoch] = {k: float(v) for k, v in row.items() if k.startswith("val/") and v}
    assert sorted(rows) == list(range(n_epochs)), f"missing validation epochs: {sorted(rows)}"
    return rows


def lexicographic_best(rows: dict[int, dict[str, float]], monitor: str, mode: str = "max") -> int:
    """The epoch with the best ``monitor`` (highest, or lowest with ``mode="min"``), then the
    lowest ``val/loss``, then the earliest: the selection rule every stage promises (known
    answer for the logged values)."""
    sign = -1 if mode == "max" else 1
    return min(rows, key=lambda e: (sign * rows[e][monitor], rows[e]["val/loss"], e))


def state_under(ckpt: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The entries of a checkpoint's state dict below ``prefix``, with the prefix removed."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Bit-identical: the same keys (parameters and every buffer) and equal tensors."""
    assert a.keys() == b.keys() and a
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"changed: {changed}"
