"""What one run does, by ``pipeline`` name: one or more stages, then scoring.

- ``supervised``: train one model on the data's task (the black boxes).
- ``nmf_posthoc`` / ``nmf_joint``: see ``train.nmf_pipeline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from train.builders import stage_summary, supervised_module
from train.datamodules import ClipDataModule
from train.nmf_pipeline import run_nmf
from train.stages import fit_stage


def supervised(cfg: DictConfig, run_dir: Path, dm: ClipDataModule, callbacks) -> dict[str, Any]:
    module = supervised_module(cfg, dm)
    result = fit_stage(
        cfg,
        module,
        dm,
        run_dir,
        name=f"{cfg.name}-{run_dir.name}",
        mode=module.task.mode,
        resume=cfg.ckpt_path,
        callbacks=callbacks,
    )
    summary = stage_summary(result)
    summary["best_checkpoint"] = str(Path(result.best_checkpoint).relative_to(run_dir.resolve()))
    return summary


PIPELINES = {"supervised": supervised, "nmf_posthoc": run_nmf, "nmf_joint": run_nmf}
