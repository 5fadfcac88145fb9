"""Experiment loggers: CSV always, W&B (offline by default) kept inside the run directory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

KINDS = ("wandb", "csv")


def build_loggers(cfg: dict[str, Any], run_dir: Path, name: str, config: dict) -> list[Logger]:
    """Loggers for a run.

    Parameters
    ----------
    cfg : the ``logger`` config: ``kind`` (``wandb`` or ``csv``), and for W&B ``project``,
        ``entity``, ``offline`` (``true``: no account or network needed), ``tags``.
    run_dir : every file a logger writes goes under it.
    name : run name shown in W&B.
    config : resolved run config, recorded by W&B.
    """
    cfg = dict(cfg)
    kind = cfg.pop("kind", "wandb")
    if kind not in KINDS:
        raise ValueError(f"logger.kind: unknown logger {kind!r}; expected one of {KINDS}")
    # One CSV version per invocation: a resumed run must not overwrite the earlier rows.
    loggers: list[Logger] = [CSVLogger(save_dir=run_dir, name="csv")]
    if kind == "csv":
        return loggers
    unknown = set(cfg) - {"project", "entity", "offline", "tags"}
    if unknown:
        raise ValueError(f"logger.{sorted(unknown)[0]}: unknown key for the wandb logger")
    wandb_root = run_dir / "wandb_files"
    # W&B otherwise scatters state over ~/.config, ~/.cache and the cwd.
    for var, sub in [
        ("WANDB_DIR", ""),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ]:
        (wandb_root / sub).mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(wandb_root / sub)
    offline = bool(cfg.get("offline", True))
    os.environ["WANDB_MODE"] = "offline" if offline else "online"
    os.environ.setdefault("WANDB_SILENT", "true")
    # A resumed run continues the same W&B run.
    id_file = run_dir / "wandb_id.txt"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:8])
    loggers.append(
        WandbLogger(
            project=cfg.get("project", "interp-models"),
            entity=cfg.get("entity"),
            name=name,
            id=id_file.read_text().strip(),
            resume="allow",
            save_dir=str(wandb_root),
            offline=offline,
            tags=list(cfg.get("tags") or []),
            config=config,
            log_model=False,
        )
    )
    return loggers


def finish(loggers: list[Logger]) -> None:
    """Close W&B so the next run in the same process starts a fresh one."""
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb

        wandb.finish()
