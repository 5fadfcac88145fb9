"""End-to-end tests of ``python -m train.fit`` on tiny built-in data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from conftest import TINY_DATA

from tests.helpers import lexicographic_best, run_killed, validation_epochs


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_short_fit_writes_a_complete_run_dir(run_fit, tmp_path):
    run_dir = tmp_path / "run"
    run_fit(
        "config=blackbox_events", *TINY_DATA, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"
    )

    m = _metrics(run_dir)
    assert m["monitor"] == "val/acc"
    assert set(m["val"]) >= {"acc", "loss", "balanced_acc"} and set(m["test"]) >= {"acc", "loss"}
    assert 0.0 <= m["test"]["acc"] <= 1.0
    assert m["data"]["splits"] == {"train": 48, "val": 16, "test": 16}
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / m["best_checkpoint"]).is_file()
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["data"]["num_clips"] == 80 and cfg["paths"]["cache_dir"]  # resolved values
    assert (run_dir / "csv" / "version_0" / "metrics.csv").is_file()
    assert (run_dir / "fit.log").is_file()
    # W&B ran offline and kept every file inside the run directory.
    assert list((run_dir / "wandb_files").rglob("offline-run-*"))
    # Checkpoints load without unpickling code.
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["name"] == "blackbox_events"


def test_unknown_override_is_rejected_with_its_name(run_fit):
    proc = run_fit("config=blackbox_events", "data.num_clipz=5", check=False)
    assert proc.returncode != 0
    assert "num_clipz" in proc.stderr


def test_unknown_experiment_is_rejected(run_fit):
    proc = run_fit("config=no_such_experiment", check=False)
    assert proc.returncode != 0
    assert "no_such_experiment" in proc.stderr


# Constant lr 0.05 on tiny data: validation accuracy rises, falls and ties, so the best
# epoch (6) comes well before the end and epochs tie on the monitor (known from the log).
UNSTABLE = [*TINY_DATA, "logger=csv", "model.optimizer.lr=0.05", "model.optimizer.scheduler=none"]


def test_killed_run_resumes_from_its_last_epoch_not_its_best(run_fit, tmp_path):
    args = [*UNSTABLE, "trainer.max_epochs=10"]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    run_fit(*args, f"hydra.run.dir={full}")
    rows = validation_epochs(full, 10)
    assert lexicographic_best({e: r for e, r in rows.items() if e < 8}, "val/acc") < 7

    last = run_killed(run_fit, args, crashed, epoch=8, batch=2)  # best epoch long past
    assert torch.load(last, weights_only=True)["epoch"] == 7  # the last finished epoch
    best = next((crashed / "checkpoints").glob("best-epoch*.ckpt"))
    assert torch.load(best, weights_only=True)["epoch"] < 7  # ... kept apart from the best

    record = tmp_path / "resumed_epochs.txt"
    resume = [
        "+callbacks.count._target_=tests.helpers.RecordEpochs",
        f"+callbacks.count.path={record}",
    ]
    run_fit(*args, f"ckpt_path={last}", *resume)  # continues in the crashed run's directory
    assert record.read_text().split() == ["8", "9"]  # only the epochs that were left
    a, b = _metrics(full), _metrics(crashed)
    assert a["val"] == b["val"] and a["test"] == b["test"]
    assert a["best_epoch"] == b["best_epoch"] == lexicographic_best(rows, "val/acc")


def test_epochs_tied_on_the_monitor_are_decided_by_validation_loss(run_fit, tmp_path):
    run_dir = tmp_path / "run"
    cosine = [*UNSTABLE, "model.optimizer.scheduler=cosine", "trainer.max_epochs=6"]
    run_fit(*cosine, f"hydra.run.dir={run_dir}")
    m = _metrics(run_dir)
    rows = validation_epochs(run_dir, m["epochs_trained"])
    top = max(r["val/acc"] for r in rows.values())
    tied = sorted(e for e, r in rows.items() if r["val/acc"] == top)
    assert len(tied) >= 2  # the best accuracy is reached twice (epochs 3 and 5 here) ...
    assert rows[tied[-1]]["val/loss"] < rows[tied[0]]["val/loss"]  # ... later with less loss
    assert m["best_epoch"] == lexicographic_best(rows, "val/acc") == tied[-1]
    kept = rows[m["best_epoch"]]
    assert m["monitor_value"] == top
    assert (m["tiebreak"], m["tiebreak_value"]) == ("val/loss", kept["val/loss"])
    assert m["val"]["loss"] == kept["val/loss"]  # the reported figures are the kept epoch's


def test_multirun_gives_each_job_its_own_run_dir(run_fit, tmp_path):
    run_fit(
        "config=blackbox_events",
        *TINY_DATA,
        "trainer.max_epochs=1",
        "logger=csv",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
        multirun=True,
    )
    seeds = sorted(_metrics(tmp_path / str(i))["seed"] for i in range(2))
    assert seeds == [0, 1]


def test_real_esc50_layout_with_a_bad_file_is_skipped_and_counted(run_fit, tmp_path):
    root = tmp_path / "ESC-50-master"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    t = np.arange(44100) / 44100
    for i in range(20):
        fold, target = i % 5 + 1, i % 2
        name = f"{fold}-{1000 + i}-A-{target}.wav"
        tone = np.sin(2 * np.pi * (300 if target == 0 else 2000) * t)
        stereo = np.stack([tone, tone], 1) * 0.3 + 0.01 * rng.standard_normal((len(t), 2))
        sf.write(root / "audio" / name, stereo, 44100, subtype="PCM_16")
        rows.append(f"{name},{fold},{target},{'low' if target == 0 else 'high'},False,{1000 + i},A")
    (root / "audio" / "1-1000-A-0.wav").write_bytes(b"not a wav at all")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")

    run_dir = tmp_path / "run"
    base = [
        "config=blackbox_events",
        f"data.root={root}",
        "data.clip_seconds=1.0",
        "model.net.channels=[8]",
        "trainer.max_epochs=1",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_fit(*base, check=False)
    assert proc.returncode != 0 and "1-1000-A-0.wav" in proc.stderr

    run_fit(*base, "data.on_bad_file=skip")
    m = _metrics(run_dir)
    assert [Path(s["path"]).name for s in m["data"]["skipped_files"]] == ["1-1000-A-0.wav"]
    assert m["data"]["num_clips"] == 19 and m["data"]["num_classes"] == 2
