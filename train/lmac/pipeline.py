"""The L-MAC stage of an NMF run: a learned post-hoc masker on the run's frozen classifier,
trained in ``<run>/lmac/`` (its own checkpoints and ``stage.json``; a resumed run skips it
once finished) and scored like the interpreter's explanation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from evaluate.nmf.scoring import evaluate_masker_split
from evaluate.posthoc.lmac import LMAC
from interp_models.config import construct
from train.builders import hparams, stage_summary
from train.lmac.module import LMACModule
from train.stages import fit_stage, score_checkpoint


def lmac_module(cfg: DictConfig, dm, classifier: nn.Module) -> LMACModule:
    """``cfg.lmac``'s masker on ``classifier`` in its LightningModule."""
    logmel = dm.frontends["x"]
    if not hasattr(logmel, "mel_fb"):
        raise ValueError(f"lmac: needs a log-mel input (data.features.x.kind), got {logmel.kind}")
    lcfg = cfg.lmac
    model = LMAC(
        classifier,
        list(lcfg.layers),
        logmel.mel_fb,
        hidden=lcfg.hidden,
        baseline=lcfg.get("baseline", "silence"),
    )
    options = {
        **OmegaConf.to_container(lcfg.optimizer, resolve=True),
        **OmegaConf.to_container(lcfg.loss, resolve=True),
    }
    return construct(
        LMACModule, options, "lmac.optimizer/loss", model=model, logmel=logmel, hparams=hparams(cfg)
    )


def explanation_scores(model: LMAC, dm, splits: tuple[str, ...], batch_size: int):
    return {split: evaluate_masker_split(model, dm, split, batch_size) for split in splits}


def fit_lmac(cfg: DictConfig, dm, classifier: nn.Module, run_dir: Path) -> dict[str, Any]:
    """Train (or reuse) the run's L-MAC stage and score its masks on validation and test."""
    module = lmac_module(cfg, dm, classifier)
    result = fit_stage(
        cfg,
        module,
        dm,
        run_dir / "lmac",
        name=f"{cfg.name}-{run_dir.name}-lmac",
        mode=module.mode,
        final=False,
        max_epochs=cfg.lmac.epochs,
    )
    out = stage_summary(result, run_dir)
    batch = cfg.interpreter.evaluation.batch_size
    out["explanations"] = explanation_scores(module.model.eval(), dm, ("val", "test"), batch)
    return out


def score_lmac(
    cfg: DictConfig, dm, classifier: nn.Module, run_dir: Path, kept: dict, device: str
) -> dict[str, Any]:
    """The run's kept L-MAC on ``dm``'s test split (``train.score``): Lightning's test loop
    on its checkpoint, then its mask scores."""
    module = lmac_module(cfg, dm, classifier)
    test = score_checkpoint(module, dm, run_dir / kept["best_checkpoint"], device)
    batch = cfg.interpreter.evaluation.batch_size
    scores = explanation_scores(module.model.eval(), dm, ("test",), batch)
    return {"test": test, "explanations": scores}
