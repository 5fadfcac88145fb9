"""One training stage: a LightningModule fitted in its own directory, then scored.

A run is one or more stages (the NMF post-hoc pipeline trains the classifier, then the
interpreter). Each stage keeps ``checkpoints/last.ckpt`` and the best checkpoint by a
*validation* monitor, resumes from its own ``last.ckpt`` when the run is resumed, and
records ``stage.json`` when done so a resumed run skips it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, RichProgressBar
from omegaconf import DictConfig

from evaluate.runs import load_checkpoint
from train.callbacks import EpochSeed
from train.checkpoints import EpochCheckpoints
from train.loggers import build_loggers, finish


@dataclass
class StageResult:
    """A finished stage: the kept checkpoint, what chose it, and its scores."""

    best_checkpoint: str
    best_epoch: int
    epochs_trained: int
    monitor: str
    val: dict[str, float]
    test: dict[str, float]
    # The kept epoch's validation values; None in a stage.json written before they were.
    monitor_value: float | None = None
    tiebreak: str | None = None
    tiebreak_value: float | None = None


def _strip(values: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): float(v) for k, v in values.items()}


def _resume_from(ckpt_path: str | None, stage_dir: Path, final: bool) -> str | None:
    """Where a resumed run continues this stage: the given checkpoint if it belongs to the
    stage (or, for the final stage, to no run at all), else the stage's own ``last.ckpt``."""
    if not ckpt_path:
        return None
    ckpt = Path(ckpt_path).expanduser().resolve()
    checkpoints = (stage_dir / "checkpoints").resolve()
    if ckpt.parent == checkpoints:
        return str(ckpt)
    if final and not any((p / "config.yaml").is_file() for p in ckpt.parents):
        return str(ckpt)  # a checkpoint file from elsewhere continues the final stage
    last = checkpoints / "last.ckpt"
    return str(last) if last.exists() else None


def fit_stage(
    cfg: DictConfig,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    stage_dir: Path,
    name: str,
    mode: str = "max",
    final: bool = True,
    max_epochs: int | None = None,
    callbacks: list[Callback] | None = None,
    tiebreak: str | None = "val/loss",
) -> StageResult:
    """Train ``module`` (monitor ``module.monitor``) in ``stage_dir``, or reuse a finished stage.

    The kept epoch is the best on ``module.monitor`` (``mode``); among epochs equal on it,
    the lower ``tiebreak`` (validation loss) wins (``train.checkpoints.EpochCheckpoints``).
    With ``cfg.ckpt_path`` set (a resumed run), the stage continues from its own
    ``last.ckpt``, written after every finished epoch; ``final`` marks the run's last
    stage, which alone may continue from a checkpoint file that belongs to no run directory.

    The best checkpoint's validation and test metrics are returned; the test split is
    evaluated only here, once, on the checkpoint chosen on validation.
    """
    done = stage_dir / "stage.json"
    if done.exists():  # finished in an earlier attempt of this run: reuse its best weights
        result = StageResult(**json.loads(done.read_text()))
        state = load_checkpoint(result.best_checkpoint)
        module.load_state_dict(state["state_dict"])
        return result
    stage_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = EpochCheckpoints(
        stage_dir / "checkpoints", monitor=module.monitor, mode=mode, tiebreak=tiebreak
    )
    all_callbacks: list[Callback] = [checkpoint, EpochSeed(cfg.seed), *(callbacks or [])]
    all_callbacks += [instantiate(c) for c in cfg.callbacks.values()]
    if cfg.trainer.get("enable_progress_bar", True):
        all_callbacks.append(RichProgressBar())
    resolved: dict[str, Any] = dict(module.hparams)
    loggers = build_loggers(
        resolved.get("logger", {"kind": "csv"}), stage_dir, name=name, config=resolved
    )
    overrides = {"max_epochs": max_epochs} if max_epochs is not None else {}
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=all_callbacks,
        logger=loggers,
        default_root_dir=str(stage_dir),
        **overrides,
    )
    ckpt_path = _resume_from(cfg.ckpt_path, stage_dir, final)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        best = checkpoint.best_model_path
        if not best:
            raise RuntimeError(f"no best checkpoint was saved: is {module.monitor} logged?")
        kw = {"datamodule": datamodule, "ckpt_path": best, "weights_only": True, "verbose": False}
        val = trainer.validate(module, **kw)[0]
        test = trainer.test(module, **kw)[0]
    finally:
        finish(loggers)
    chosen = checkpoint.summary()
    result = StageResult(
        best_checkpoint=str(Path(best).resolve()),
        best_epoch=chosen["best_epoch"],
        epochs_trained=trainer.current_epoch,
        monitor=module.monitor,
        val=_strip(val, "val/"),
        test=_strip(test, "test/"),
        monitor_value=chosen["monitor_value"],
        tiebreak=chosen["tiebreak"],
        tiebreak_value=chosen["tiebreak_value"],
    )
    if trainer.is_global_zero:
        done.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


def score_checkpoint(
    module: L.LightningModule, dm, ckpt_path: str | Path | None, device: str = "cpu"
) -> dict[str, float]:
    """``trainer.test`` of ``module`` (weights from ``ckpt_path``, loaded by Lightning with
    ``weights_only=True``; None: as it is) on ``dm``'s test split, ``test/`` stripped."""
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    kw = {"ckpt_path": str(ckpt_path), "weights_only": True} if ckpt_path else {}
    values = trainer.test(module, datamodule=dm, verbose=False, **kw)[0]
    return {k.removeprefix("test/"): float(v) for k, v in values.items()}
