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
    run_id, offline = _wandb_env(cfg, run_dir)
    loggers.append(
        WandbLogger(
            project=cfg.get("project", "interp-models"),
            entity=cfg.get("entity"),
            name=name,
            id=run_id,
            resume="allow",
            save_dir=str(run_dir / "wandb_files"),
            offline=offline,
            tags=list(cfg.get("tags") or []),
            config=config,
            log_model=False,
        )
    )
    return loggers


def _wandb_env(cfg: dict[str, Any], run_dir: Path) -> tuple[str, bool]:
    """Point every W&B directory into ``run_dir``; returns (run id, offline)."""
    unknown = set(cfg) - {"kind", "project", "entity", "offline", "tags"}
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
    # One W&B run per run (stage) directory: a resumed run continues it. Under a sweep
    # agent, the run id is the one the agent assigned (WANDB_RUN_ID).
    id_file = run_dir / "wandb_id.txt"
    if not id_file.exists():
        id_file.write_text(os.environ.get("WANDB_RUN_ID") or uuid.uuid4().hex[:8])
    return id_file.read_text().strip(), offline


def log_results(
    cfg: dict[str, Any],
    run_dir: Path,
    name: str,
    scalars: dict[str, float],
    media: list[tuple[str, Path]] = (),
) -> None:
    """Add end-of-run results (explanation metrics, figures ``.png``, audio ``.wav``) to the
    run directory's W&B run; a no-op for the CSV logger (``metrics.json`` has them)."""
    cfg = dict(cfg)
    if cfg.get("kind", "wandb") != "wandb":
        return
    import wandb

    run_id, offline = _wandb_env(cfg, run_dir)
    run = wandb.init(
        project=cfg.get("project", "interp-models"),
        entity=cfg.get("entity"),
        id=run_id,
        resume="allow",
        name=name,
        dir=str(run_dir / "wandb_files"),
        mode="offline" if offline else "online",
    )
    run.summary.update(scalars)
    logged = {}
    for key, path in media:
        path = Path(path)
        logged[key] = wandb.Audio(str(path)) if path.suffix == ".wav" else wandb.Image(str(path))
    if logged:
        run.log(logged)
    run.finish()


def finish(loggers: list[Logger]) -> None:
    """Close W&B so the next run in the same process starts a fresh one."""
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb

        wandb.finish()
