"""Multi-process training through Lightning DDP (2 CPU processes, gloo), inside a multirun."""

from __future__ import annotations

import json

import torch
from conftest import TINY_DATA


def test_multirun_with_ddp_trains_each_job_once(run_fit, tmp_path):
    proc = run_fit(
        "config=blackbox_events",
        *TINY_DATA,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "logger=csv",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
        multirun=True,
    )
    log = proc.stdout + proc.stderr
    # Rank 1 of each job ran that job only: the sweep was launched once, each job once.
    assert log.count("Launching 2 jobs") == 1
    assert log.count("GLOBAL_RANK: 1") == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        metrics = json.loads((tmp_path / job / "metrics.json").read_text())
        assert metrics["seed"] == int(job) and 0 <= metrics["test"]["acc"] <= 1
        # Each rank saw half of the training clips per epoch; the checkpoint holds 1 epoch.
        ckpt = torch.load(tmp_path / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert ckpt["epoch"] == 0 and ckpt["global_step"] == 3  # 48 clips / 2 ranks / batch 8
