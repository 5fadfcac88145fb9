"""Build modules and summaries from a run config (shared by the pipelines)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from interp_models.config import construct
from train.datamodules import ClipDataModule
from train.modules import SupervisedModule
from train.stages import StageResult, fit_stage
from train.tasks import build_task

M = TypeVar("M", bound=L.LightningModule)


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as plain containers (checkpoints stay pickle-free)."""
    out = OmegaConf.to_container(cfg, resolve=True)
    out.pop("hydra", None)
    return out


def optimised_module(module_class: Callable[..., M], cfg: DictConfig, **kwargs: Any) -> M:
    """``module_class(**cfg.model.optimizer, **kwargs)`` with the run's ``hparams``;
    an unknown ``model.optimizer`` key is rejected by name."""
    optim = OmegaConf.to_container(cfg.model.optimizer, resolve=True)
    return construct(module_class, optim, "model.optimizer", **kwargs, hparams=hparams(cfg))


def supervised_module(cfg: DictConfig, dm: ClipDataModule) -> SupervisedModule:
    """``cfg.model.net`` on ``cfg.task`` with ``dm.num_outputs`` outputs."""
    task = build_task(cfg.task, dm.num_outputs)
    net = instantiate(cfg.model.net, n_outputs=dm.num_outputs)
    return optimised_module(SupervisedModule, cfg, net=net, task=task)


def stage_summary(result: StageResult, run_dir: Path) -> dict[str, Any]:
    """A stage's figures for ``metrics.json``; the checkpoint path relative to ``run_dir``."""
    return {
        "monitor": result.monitor,
        "best_checkpoint": str(Path(result.best_checkpoint).relative_to(run_dir.resolve())),
        "best_epoch": result.best_epoch,
        "monitor_value": result.monitor_value,
        "tiebreak": result.tiebreak,
        "tiebreak_value": result.tiebreak_value,
        "epochs_trained": result.epochs_trained,
        "val": result.val,
        "test": result.test,
    }


def fit_run_stage(
    cfg: DictConfig,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    run_dir: Path,
    callbacks: list | None = None,
    mode: str = "max",
) -> dict[str, Any]:
    """Fit the run's final stage in ``run_dir`` itself (``train.stages.fit_stage``, named
    ``<cfg.name>-<run>``) and return its ``stage_summary``."""
    result = fit_stage(
        cfg,
        module,
        datamodule,
        run_dir,
        name=f"{cfg.name}-{run_dir.name}",
        mode=mode,
        callbacks=callbacks,
    )
    return stage_summary(result, run_dir)
