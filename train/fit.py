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
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from train.callbacks import EpochSeed
from train.config_utils import construct
from train.datamodules import ClipDataModule
from train.loggers import build_loggers, finish
from train.modules import SupervisedModule
from train.tasks import build_task

log = logging.getLogger("train.fit")


def _run_dir(ckpt_path: str | None, default: str) -> str:
    """A resumed run (``ckpt_path=<run>/checkpoints/x.ckpt``) continues in ``<run>``."""
    if ckpt_path:
        ckpt = Path(ckpt_path).expanduser().resolve()
        if ckpt.parent.name == "checkpoints":
            return str(ckpt.parent.parent)
    return default


OmegaConf.register_new_resolver("run_dir", _run_dir, replace=True)


def run(cfg: DictConfig, callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the metrics written to ``metrics.json``."""
    run_dir = (
        Path(HydraConfig.get().runtime.output_dir)
        if HydraConfig.initialized()
        else Path(cfg.run_dir)
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    _write_rank_zero(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))

    if cfg.ckpt_path and not Path(cfg.ckpt_path).expanduser().is_file():
        raise FileNotFoundError(f"ckpt_path: no checkpoint at {cfg.ckpt_path}")
    L.seed_everything(cfg.seed, workers=True)

    dm = construct(
        ClipDataModule, resolved["data"], "data", cache_dir=resolved["paths"]["cache_dir"]
    )
    dm.prepare_data()
    dm.setup()
    task = build_task(cfg.task, dm.num_outputs)
    net = instantiate(cfg.model.net, n_outputs=dm.num_outputs)
    module = construct(
        SupervisedModule,
        resolved["model"]["optimizer"],
        "model.optimizer",
        net=net,
        task=task,
        hparams=resolved,
    )

    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-epoch={epoch:03d}",
        auto_insert_metric_name=False,
        monitor=module.monitor,
        mode=task.mode,
        save_top_k=1,
        save_last=True,
    )
    all_callbacks: list[Callback] = [checkpoint, EpochSeed(cfg.seed), *(callbacks or [])]
    all_callbacks += [instantiate(c) for c in cfg.callbacks.values()]
    if cfg.trainer.get("enable_progress_bar", True):
        all_callbacks.append(RichProgressBar())
    loggers = build_loggers(
        resolved["logger"], run_dir, name=f"{cfg.name}-{run_dir.name}", config=resolved
    )
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=all_callbacks, logger=loggers, default_root_dir=str(run_dir)
    )
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path, weights_only=True)
        best = checkpoint.best_model_path
        if not best:
            raise RuntimeError(f"no best checkpoint was saved: is {module.monitor} logged?")
        val = trainer.validate(
            module, datamodule=dm, ckpt_path=best, weights_only=True, verbose=False
        )[0]
        test = trainer.test(
            module, datamodule=dm, ckpt_path=best, weights_only=True, verbose=False
        )[0]
    finally:
        finish(loggers)

    metrics = {
        "config": cfg.name,
        "seed": cfg.seed,
        "monitor": module.monitor,
        "best_checkpoint": str(Path(best).relative_to(run_dir)),
        "best_epoch": int(Path(best).stem.split("=")[-1]),
        "epochs_trained": trainer.current_epoch,
        "val": _strip_prefix(val, "val/"),
        "test": _strip_prefix(test, "test/"),
        "data": {
            "root": str(dm.dataset_root()),
            "num_clips": len(dm.records),
            "num_classes": dm.num_outputs,
            "splits": {s: len(i) for s, i in dm.split_indices.items()},
            "skipped_files": [{"path": p, "reason": r} for p, r in dm.skipped],
        },
        "finished": datetime.now().isoformat(timespec="seconds"),
    }
    _write_rank_zero(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.info("run dir: %s", run_dir)
    log.info(
        "val %s = %.4f, test %s = %.4f",
        task.monitor,
        metrics["val"][task.monitor],
        task.monitor,
        metrics["test"][task.monitor],
    )
    return metrics


def _strip_prefix(values: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): float(v) for k, v in values.items()}


@rank_zero_only
def _write_rank_zero(path: Path, text: str) -> None:
    path.write_text(text)


@hydra.main(version_base="1.3", config_path="../configs", config_name="fit")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
