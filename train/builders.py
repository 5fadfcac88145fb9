"""Build modules and summaries from a run config (shared by the pipelines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from train.config_utils import construct
from train.datamodules import ClipDataModule
from train.modules import SupervisedModule
from train.stages import StageResult
from train.tasks import build_task


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as plain containers (checkpoints stay pickle-free)."""
    out = OmegaConf.to_container(cfg, resolve=True)
    out.pop("hydra", None)
    return out


def supervised_module(cfg: DictConfig, dm: ClipDataModule) -> SupervisedModule:
    """``cfg.model.net`` on ``cfg.task`` with ``dm.num_outputs`` outputs."""
    task = build_task(cfg.task, dm.num_outputs)
    net = instantiate(cfg.model.net, n_outputs=dm.num_outputs)
    optim = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    return construct(
        SupervisedModule, optim, "model.optimizer", net=net, task=task, hparams=hparams(cfg)
    )


def stage_summary(result: StageResult, run_dir: Path) -> dict[str, Any]:
    """A stage's figures for ``metrics.json``; the checkpoint path relative to ``run_dir``."""
    return {
        "monitor": result.monitor,
        "best_checkpoint": str(Path(result.best_checkpoint).relative_to(run_dir.resolve())),
        "best_epoch": result.best_epoch,
        "epochs_trained": result.epochs_trained,
        "val": result.val,
        "test": result.test,
    }
