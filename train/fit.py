"""Training entry point: ``python -m train.fit config=<experiment> [key=value ...]``.

Each run gets its own directory (``hydra.run.dir``) holding the resolved config, the
checkpoints (``last.ckpt`` and the best by the validation monitor), ``metrics.json`` with
the final validation and test metrics of the best checkpoint, and the logs (CSV, W&B
offline files, ``fit.log``). ``ckpt_path=<run>/checkpoints/last.ckpt`` resumes that run in
its own directory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, read_write

from evaluate.cli_errors import hydra_task, run_hydra_cli
from evaluate.runs import load_checkpoint
from train.builders import hparams
from train.datamodules import build_datamodule
from train.loggers import log_results
from train.pipelines import resolve_pipeline

log = logging.getLogger("train.fit")


def _run_dir(ckpt_path: str | None, default: str) -> str:
    """A resumed run continues in the run directory holding ``ckpt_path``."""
    if ckpt_path:
        for parent in Path(ckpt_path).expanduser().resolve().parents:
            if (parent / "config.yaml").is_file():
                return str(parent)
    return default


OmegaConf.register_new_resolver("run_dir", _run_dir, replace=True)


def run(cfg: DictConfig, callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Train and evaluate one configuration; returns what is written to ``metrics.json``."""
    if HydraConfig.initialized():
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        _pin_job_for_ddp_children(run_dir)
    else:
        run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = hparams(cfg)
    _write_rank_zero(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))
    pipeline = resolve_pipeline(cfg.pipeline)
    if cfg.ckpt_path and not Path(cfg.ckpt_path).expanduser().is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {cfg.ckpt_path}")
    if cfg.ckpt_path:
        load_checkpoint(Path(cfg.ckpt_path).expanduser())  # a corrupt file: named, here
    L.seed_everything(cfg.seed, workers=True)

    dm = build_datamodule(resolved["data"], resolved["paths"]["cache_dir"])
    dm.prepare_data()
    dm.setup()
    metrics = {
        "config": cfg.name,
        "pipeline": cfg.pipeline,
        "seed": cfg.seed,
        **pipeline(cfg, run_dir, dm, callbacks),
        "data": dm.summary(),
        "finished": datetime.now().isoformat(timespec="seconds"),
    }
    _write_rank_zero(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    # Final (best-checkpoint) figures into the W&B summary, where sweeps read their metric.
    log_results(resolved["logger"], run_dir, f"{cfg.name}-{run_dir.name}", _flatten(metrics))
    _report(run_dir, metrics)
    return metrics


def _pin_job_for_ddp_children(run_dir: Path) -> None:
    """Make Lightning's DDP launcher start ranks > 0 on *this* job in *this* directory.

    The launcher re-runs ``sys.argv`` plus ``hydra.run.dir=<HydraConfig run.dir>``; in a
    multirun that would re-run the whole sweep, in a new directory.
    """
    run_cfg = HydraConfig.instance().cfg.hydra.run
    with read_write(run_cfg):
        run_cfg.dir = str(run_dir)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        sys.argv = [sys.argv[0], *HydraConfig.get().overrides.task]


@rank_zero_only
def _report(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Tell the user where the results are (printed, so it shows without logging set up)."""
    lines = [f"run directory: {run_dir}", f"  metrics:      {run_dir / 'metrics.json'}"]
    for stage in ("classifier", "interpreter"):
        if isinstance(metrics.get(stage), dict) and "test" in metrics[stage]:
            lines.append(f"  {stage} test: {_short(metrics[stage]['test'])}")
    if "test" in metrics and isinstance(metrics["test"], dict):
        lines.append(f"  test: {_short(metrics['test'])}")
    if metrics.get("examples"):
        lines.append(f"  explanations: {run_dir / 'explanations'} (wav + png per clip)")
        lines.append(f"  explanation metrics (test): {_short(metrics['explanations']['test'])}")
    print("\n".join(lines), flush=True)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves as ``a/b/c`` keys."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def _short(values: dict[str, float]) -> str:
    keep = {k: v for k, v in values.items() if not k.endswith("_ci95") and "loss_" not in k}
    return ", ".join(f"{k}={v:.3f}" for k, v in keep.items())


@rank_zero_only
def _write_rank_zero(path: Path, text: str) -> None:
    path.write_text(text)


@hydra.main(version_base="1.3", config_path="../configs", config_name="fit")
@hydra_task
def main(cfg: DictConfig) -> None:
    environ = dict(os.environ)
    try:
        run(cfg)
    finally:
        # A multirun's next job must start its own DDP group: Lightning leaves this one up
        # and its rank variables in the environment (LOCAL_RANK there makes the next job
        # believe its ranks were launched externally, and wait for them forever).
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            if key in environ:
                os.environ[key] = environ[key]
            else:
                os.environ.pop(key, None)


if __name__ == "__main__":
    run_hydra_cli(main)
