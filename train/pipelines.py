"""What one run does, by ``pipeline`` name: one or more stages, then scoring.

- ``supervised``: train one model on the data's task (the black boxes).
- ``nmf_posthoc`` / ``nmf_joint``: see ``train.nmf_pipeline``.
- any ``package.module.function`` with the same signature (how model families plug in).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import get_method
from omegaconf import DictConfig

from train.builders import fit_run_stage, supervised_module
from train.datamodules import ClipDataModule
from train.nmf_pipeline import run_nmf


def supervised(cfg: DictConfig, run_dir: Path, dm: ClipDataModule, callbacks) -> dict[str, Any]:
    module = supervised_module(cfg, dm)
    return fit_run_stage(cfg, module, dm, run_dir, callbacks, mode=module.task.mode)


PIPELINES = {"supervised": supervised, "nmf_posthoc": run_nmf, "nmf_joint": run_nmf}


def resolve_pipeline(name: str) -> Callable[..., dict[str, Any]]:
    """A built-in pipeline by name, or any ``module.function`` with the same signature
    ``(cfg, run_dir, datamodule, callbacks) -> metrics dict``."""
    if name in PIPELINES:
        return PIPELINES[name]
    if "." in name:
        try:
            return get_method(name)
        except Exception as err:
            raise ValueError(f"pipeline: cannot import {name!r}: {err}") from err
    raise ValueError(f"pipeline: unknown {name!r}; built-ins are {sorted(PIPELINES)}")
