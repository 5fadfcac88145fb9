"""The mid-level emotion run: ``pipeline: emotion``.

``emotion.variant`` picks one of the set-ups of Chowdhury et al. (ISMIR 2019):

- ``a2e``: the black box, CNN -> 8 emotions (``interp_models.emotion.models.A2E``);
- ``joint``: A2Mid2E, CNN -> 7 qualities -> linear -> 8 emotions, both outputs supervised
  with ``emotion.loss.quality`` / ``emotion.loss.emotion`` weights (paper: equal; here
  4 : 1 by default, chosen on validation emotion r);
- ``separate``: the quality predictor trained alone (monitor ``val/quality_r``), then the
  7 -> 8 linear map fitted by least squares (scikit-learn) on its predictions for the
  training clips, never on validation or test clips.

The joint variant can also be trained for selective quality units
(``config=midlevel_emotion_selective``): ``emotion.loss.contrast`` on one-quality re-renders
of the training clips (``data.contrasts_per_clip``) and ``emotion.augment`` (random spectral
tilt, EQ, gain and pitch shift of training batches, ``train.emotion.augment``).

Every variant trains with ``train.stages.fit_stage`` in the run directory (checkpoints,
resume, logs, best epoch by validation), saves the final model as ``model.pt`` (the
separate variant's fitted map included) and is then scored by
``evaluate.emotion.scoring.evaluate_model``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.linear_model import LinearRegression

from evaluate.emotion.scoring import evaluate_model, predict
from evaluate.runs import load_checkpoint
from interp_models.config import construct
from interp_models.emotion.models import A2E, MidLevelEmotionModel
from train.builders import fit_run_stage, optimised_module
from train.emotion.augment import SpectralAugment
from train.emotion.data import MusicDataModule
from train.emotion.module import EmotionModule
from train.stages import score_checkpoint

log = logging.getLogger(__name__)

VARIANTS = {"a2e": A2E, "joint": MidLevelEmotionModel, "separate": MidLevelEmotionModel}


def build_model(cfg: DictConfig, dm: MusicDataModule) -> torch.nn.Module:
    """``cfg.model.net`` checked against ``emotion.variant``, with the data's rating stats."""
    variant = cfg.emotion.variant
    if variant not in VARIANTS:
        raise ValueError(
            f"emotion.variant: unknown {variant!r}; expected one of {sorted(VARIANTS)}"
        )
    model = instantiate(cfg.model.net)
    if type(model) is not VARIANTS[variant]:
        raise ValueError(
            f"model.net: variant {variant!r} needs {VARIANTS[variant].__name__}, "
            f"got {type(model).__name__} (model.net._target_)"
        )
    model.set_stats({k: v.tolist() for k, v in dm.stats.items()})
    return model


def build_augment(cfg: DictConfig) -> SpectralAugment | None:
    """``emotion.augment`` as a ``SpectralAugment``; None when every amount is 0."""
    opts = OmegaConf.to_container(cfg.emotion.get("augment") or {}, resolve=True)
    augment = construct(SpectralAugment, opts, "emotion.augment")
    if not augment.active:
        return None
    kind = cfg.data.get("features", {}).get("x", {}).get("kind")
    if kind != "logfreq":
        raise ValueError(
            f"emotion.augment works on log-frequency features (data.features.x.kind: logfreq), "
            f"got {kind!r}"
        )
    return augment


def fit_linear_map(q_pred: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares 7 -> 8 map (with intercept) from predicted qualities to emotions on
    the rows with every emotion rated; returns (weight (8, 7), bias (8,), R^2)."""
    ok = np.isfinite(e).all(1)
    if ok.sum() <= q_pred.shape[1]:
        raise ValueError(
            f"separate variant: {int(ok.sum())} training clips with emotion ratings; "
            f"need more than {q_pred.shape[1]} to fit the linear map"
        )
    reg = LinearRegression().fit(q_pred[ok], e[ok])
    return reg.coef_, reg.intercept_, float(reg.score(q_pred[ok], e[ok]))


def run(cfg: DictConfig, run_dir: Path, dm: MusicDataModule, callbacks) -> dict[str, Any]:
    if not isinstance(dm, MusicDataModule):
        raise ValueError(
            "pipeline emotion needs data._target_: interp_models.data.music.MusicClips"
        )
    ecfg = cfg.emotion
    variant = ecfg.variant
    model = build_model(cfg, dm)
    if variant in ("joint", "separate"):
        dm.require("qualities", ("train", "val"))
    dm.require("emotions", ("train", "val", "test"))
    weights = (
        (1.0, 0.0)
        if variant == "separate"
        else (float(ecfg.loss.quality), float(ecfg.loss.emotion))
    )
    if variant == "a2e":
        weights = (0.0, 1.0)
    contrast = float(ecfg.loss.get("contrast", 0.0))
    if contrast > 0 and not getattr(dm, "contrasts_per_clip", 0):
        raise ValueError(
            "emotion.loss.contrast > 0 needs one-quality re-renders: set data.contrasts_per_clip"
        )
    augment = build_augment(cfg)
    module = optimised_module(
        EmotionModule,
        cfg,
        model=model,
        quality_weight=weights[0],
        emotion_weight=weights[1],
        contrast_weight=contrast,
        augment=augment,
    )
    out: dict[str, Any] = {
        "variant": variant,
        "loss_weights": {"quality": weights[0], "emotion": weights[1], "contrast": contrast},
        "augment": None
        if augment is None
        else {k: getattr(augment, k) for k in ("tilt_db", "eq_db", "gain_db", "shift_bands")},
        "training": fit_run_stage(cfg, module, dm, run_dir, callbacks),
    }
    if variant == "separate":
        train = predict(model, dm, "train")
        w, b, r2 = fit_linear_map(train["q_pred"], train["e"])
        with torch.no_grad():
            model.emotion_head.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            model.emotion_head.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        out["linear_map"] = {
            "fitted_on": "train split: predicted qualities -> emotion ratings (z)",
            "n_clips": int(np.isfinite(train["e"]).all(1).sum()),
            "r2_train": r2,
        }
    torch.save(
        {"state_dict": model.state_dict(), "class": type(model).__name__, "variant": variant},
        run_dir / "model.pt",
    )
    out["model_file"] = "model.pt"
    out.update(evaluate_model(model, dm, run_dir, OmegaConf.to_container(ecfg.evaluation)))
    return out


def score(
    cfg: DictConfig, run_dir: Path, run_metrics: dict, dm: MusicDataModule, out_dir: Path, opts
) -> dict[str, Any]:
    """The run's final model (``model.pt``) on ``dm``'s test split (``train.score``):
    Lightning's test loop, then ``evaluate_model``. The ratings are standardised with the
    run's training statistics, not the scored data's."""
    if not isinstance(dm, MusicDataModule):
        raise ValueError("data: an emotion run is scored on interp_models.data.music.MusicClips")
    dm.require("emotions", ("test",))
    model = instantiate(cfg.model.net)
    model.load_state_dict(load_checkpoint(run_dir / "model.pt")["state_dict"])
    names = ("quality_mean", "quality_std", "emotion_mean", "emotion_std")
    dm.use_stats({name: getattr(model, name).double().numpy() for name in names})
    weights = run_metrics["loss_weights"]
    module = optimised_module(
        EmotionModule,
        cfg,
        model=model,
        quality_weight=weights["quality"],
        emotion_weight=weights["emotion"],
    )
    out: dict[str, Any] = {"variant": run_metrics.get("variant")}
    out["training"] = {"test": score_checkpoint(module, dm, None, opts["device"])}
    settings = OmegaConf.to_container(cfg.emotion.evaluation)
    out.update(evaluate_model(model.eval(), dm, out_dir, settings, splits=("test",)))
    return out
