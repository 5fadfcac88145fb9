"""The segmentation-aware heart-sound run (``config=heart_segmentation``).

1. Segmenter: the Springer LR-HSMM is trained on the training split's annotated
   recordings (or loaded from ``segmenter.load``), cached by data and settings, copied to
   ``<run>/segmenter.json``, and scored (S1/S2 F1, +/- 60 ms) on validation and test.
2. Every recording is segmented (cached); the classifier trains on ``segmentation``
   (``springer`` by default, ``ground_truth`` by override) with the best epoch chosen on
   validation MAcc.
3. The explanation baseline is set to the normal training recordings' mean evidence per
   state (``<run>/reference.json``; no logit changes). The best checkpoint is scored on
   both segmentations (MAcc, Se, Sp, and how often the
   largest per-state contribution lies on the lesion's state), and explanations of a few
   test recordings are exported to ``<run>/explanations/``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from evaluate.heart.metrics import sound_detection, sound_detection_by_rate
from evaluate.heart.scoring import evaluate_split, export_examples, normal_reference
from interp_models.cache import arrays_digest, cached_file, default_cache_dir, params_key
from interp_models.config import construct
from interp_models.heart.springer import (
    SpringerSegmenter,
    SpringerSettings,
    segment_recordings,
)
from interp_models.heart.states import FRAME_RATE, STATE_NAMES
from train.builders import fit_run_stage, optimised_module
from train.heart.data import HeartDataModule
from train.heart.module import HeartModule
from train.stages import score_checkpoint
from train.tasks import BinaryTask

log = logging.getLogger(__name__)

SEGMENTATIONS = ("springer", "ground_truth")


def _cache_root(cfg: DictConfig) -> Path:
    return Path(cfg.paths.cache_dir) if cfg.paths.cache_dir else default_cache_dir()


def segmenter_stage(
    cfg: DictConfig, dm: HeartDataModule, run_dir: Path
) -> tuple[SpringerSegmenter, dict[str, Any]]:
    """Train (cached) or load the Springer segmenter; keep a copy in the run directory."""
    scfg = OmegaConf.to_container(cfg.segmenter, resolve=True)
    load = scfg.pop("load", None)
    settings = construct(SpringerSettings, scfg, "segmenter")
    if settings.sample_rate != dm.sample_rate:
        raise ValueError(
            f"segmenter.sample_rate={settings.sample_rate} differs from "
            f"data.sample_rate={dm.sample_rate}"
        )
    if load:
        path = Path(load).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"segmenter.load: no segmenter file at {path}")
        segmenter = SpringerSegmenter.load(path)
        if segmenter.settings.sample_rate != dm.sample_rate:
            raise ValueError(
                f"segmenter.load: {path} works at {segmenter.settings.sample_rate} Hz, "
                f"data.sample_rate is {dm.sample_rate}"
            )
        info: dict[str, Any] = {"loaded_from": str(path)}
    else:
        train = [int(j) for j in dm.split_indices["train"] if dm.ground_truth[j] is not None]
        if not train:
            raise ValueError(
                "segmenter: no training recording has a segmentation (.tsv) to learn from; "
                "give a trained one with segmenter.load=<segmenter.json>"
            )
        waves = [dm.waves[j] for j in train]
        states = [dm.ground_truth[j] for j in train]
        key = params_key(
            {"waves": arrays_digest(waves), "states": arrays_digest(states), "settings": scfg}
        )

        def build(tmp: Path) -> None:
            log.info("training the Springer segmenter on %d recordings", len(train))
            SpringerSegmenter.fit(waves, states, settings).save(tmp)

        path = cached_file(_cache_root(cfg) / "springer" / f"segmenter-{key}.json", build)
        segmenter = SpringerSegmenter.load(path)
        info = {"trained_on": segmenter.training}
    shutil.copyfile(path, run_dir / "segmenter.json")
    info["file"] = "segmenter.json"
    return segmenter, info


def score_segmenter(dm: HeartDataModule, states: list[np.ndarray], split: str) -> dict:
    """S1/S2 detection F1 of ``states`` against the annotations of ``split``."""
    idx = [int(j) for j in dm.split_indices[split] if dm.ground_truth[j] is not None]
    if not idx:
        return {"recordings": 0}
    return sound_detection(((dm.ground_truth[j], states[j]) for j in idx), FRAME_RATE)


def heart_module(cfg: DictConfig, dm: HeartDataModule) -> HeartModule:
    """``cfg.model.net`` for ``dm``'s sample rate, in its LightningModule."""
    net = instantiate(cfg.model.net, sample_rate=dm.sample_rate, frame_rate=FRAME_RATE)
    return optimised_module(HeartModule, cfg, net=net, task=BinaryTask())


def evaluation(net, dm: HeartDataModule, segmentation: str, splits: tuple[str, ...]) -> dict:
    """The model scored on every segmentation available (``segmentation`` first, the one
    it runs on), and the explanation hit rates on ``segmentation``."""
    sources = [segmentation] + [
        s for s in SEGMENTATIONS if s != segmentation and s in dm.segmentations
    ]
    scores = {
        src: {split: evaluate_split(net, dm, split, src) for split in splits} for src in sources
    }
    hits = {
        split: {k: v for k, v in scores[segmentation][split].items() if k.startswith("hit_")}
        for split in splits
    }
    return {"evaluation": scores, "explanations": hits}


def _check_segments(dm) -> None:
    if not isinstance(dm, HeartDataModule) or dm.input != "segments":
        raise ValueError(
            "data: the heart_segmentation pipeline needs data._target_: "
            "interp_models.data.heart.HeartRecordings with data.input=segments"
        )


def score_segmenter_by_rate(dm: HeartDataModule, states: list[np.ndarray], split: str) -> dict:
    """``score_segmenter`` per heart-rate band (rates from the annotations; an empty band's
    figures are NaN, written as ``null``)."""
    idx = [int(j) for j in dm.split_indices[split] if dm.ground_truth[j] is not None]
    return sound_detection_by_rate(((dm.ground_truth[j], states[j]) for j in idx), FRAME_RATE)


def run(cfg: DictConfig, run_dir: Path, dm: HeartDataModule, callbacks) -> dict[str, Any]:
    _check_segments(dm)
    if cfg.segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation: expected one of {SEGMENTATIONS}, got {cfg.segmentation!r}")
    segmenter, info = segmenter_stage(cfg, dm, run_dir)
    states = segment_recordings(segmenter, dm.waves, dm.n_frames, dm.hop, _cache_root(cfg))
    dm.add_segmentation("springer", states)
    out: dict[str, Any] = {"segmentation": cfg.segmentation}
    out["segmenter"] = {
        **info,
        **{s: score_segmenter(dm, dm.segmentations["springer"], s) for s in ("val", "test")},
    }
    dm.use_segmentation(cfg.segmentation)

    module = heart_module(cfg, dm)
    net = module.net
    out["classifier"] = fit_run_stage(cfg, module, dm, run_dir, callbacks, mode="max")

    # Explanation baseline: the normal training recordings' mean evidence per state.
    net.set_reference(normal_reference(net, dm, cfg.segmentation, "train"))
    reference = dict(zip(STATE_NAMES, net.reference.tolist(), strict=True))
    (run_dir / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")
    out["explanation_reference"] = reference

    out.update(evaluation(net.eval(), dm, cfg.segmentation, ("val", "test")))
    ecfg = cfg.evaluation
    out["examples"] = export_examples(
        net,
        dm,
        "test",
        cfg.segmentation,
        run_dir / "explanations",
        n=ecfg.n_examples,
        fraction=ecfg.relevant_fraction,
    )
    return out


def score(
    cfg: DictConfig, run_dir: Path, run_metrics: dict, dm: HeartDataModule, out_dir: Path, opts
) -> dict[str, Any]:
    """The run's segmenter and kept classifier on ``dm``'s test split (``train.score``).

    The classifier runs on the run's own Springer segmenter's states (``segmentation``
    ``springer``, the default) or on the data's annotations (``ground_truth``), and is
    scored on both where the data has annotations. S1/S2 detection is also reported per
    heart-rate band.
    """
    _check_segments(dm)
    segmentation = opts.get("segmentation") or "springer"
    segmenter = SpringerSegmenter.load(run_dir / "segmenter.json")
    states = segment_recordings(segmenter, dm.waves, dm.n_frames, dm.hop, _cache_root(cfg))
    dm.add_segmentation("springer", states)
    if segmentation not in dm.segmentations:
        raise ValueError(
            f"segmentation={segmentation}: the data has no annotations (.tsv) to run on"
        )
    dm.use_segmentation(segmentation)
    out: dict[str, Any] = {"segmentation": segmentation}
    out["segmenter"] = {
        "file": "segmenter.json",
        "test": score_segmenter(dm, states, "test"),
        "test_by_heart_rate": score_segmenter_by_rate(dm, states, "test"),
    }
    module = heart_module(cfg, dm)
    ckpt = run_dir / run_metrics["classifier"]["best_checkpoint"]
    out["classifier"] = {"test": score_checkpoint(module, dm, ckpt, opts["device"])}
    reference = run_metrics["explanation_reference"]
    module.net.set_reference(torch.tensor([reference[name] for name in STATE_NAMES]))
    out.update(evaluation(module.net.eval(), dm, segmentation, ("test",)))
    return out
