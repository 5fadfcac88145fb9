"""What one run does, by ``pipeline`` name: one or more stages, then scoring.

The built-in pipelines belong to the families of ``interp_models.families``:
``supervised`` (a black box), ``nmf_posthoc`` / ``nmf_joint`` (``train.nmf.pipeline``),
``emotion`` (``train.emotion.pipeline``), ``heart`` (``train.heart.pipeline``). Any
``package.module.function`` with the same signature plugs in as well.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import get_method
from omegaconf import DictConfig

from interp_models.families import FAMILIES, family_of, hook
from train.builders import fit_run_stage, supervised_module
from train.datamodules import ClipDataModule
from train.stages import score_checkpoint


def supervised(cfg: DictConfig, run_dir: Path, dm: ClipDataModule, callbacks) -> dict[str, Any]:
    module = supervised_module(cfg, dm)
    return fit_run_stage(cfg, module, dm, run_dir, callbacks, mode=module.task.mode)


def score_supervised(cfg: DictConfig, run_dir: Path, run_metrics, dm, out_dir, opts) -> dict:
    """A black box's kept checkpoint on ``dm``'s test split (``train.score``)."""
    ckpt = run_dir / run_metrics["best_checkpoint"]
    return {"test": score_checkpoint(supervised_module(cfg, dm), dm, ckpt, opts["device"])}


def resolve_pipeline(name: str) -> Callable[..., dict[str, Any]]:
    """A family's pipeline by name, or any ``module.function`` with the same signature
    ``(cfg, run_dir, datamodule, callbacks) -> metrics dict``."""
    try:
        return hook(family_of(name).train)
    except ValueError:
        if "." not in name:
            known = sorted(p for f in FAMILIES.values() for p in f.pipelines)
            raise ValueError(f"pipeline: unknown {name!r}; built-ins are {known}") from None
    try:
        return get_method(name)
    except Exception as err:
        raise ValueError(f"pipeline: cannot import {name!r}: {err}") from err
