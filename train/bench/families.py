"""Training throughput of each model family, on its own training code and data.

For ``nmf`` (the post-hoc interpreter on a frozen classifier), ``emotion`` (A2Mid2E) and
``heart`` (the segmentation-aware classifier): the family's default experiment config is
composed with Hydra (``configs/``), its DataModule built by ``train.datamodules`` and its
LightningModule by the family's own builders (``train.builders``, the pipelines). Timed:

1. the training step: Lightning's automatic optimisation of one batch already on the
   device (``on_train_batch_start``, ``training_step``, ``optimizer_zero_grad``,
   ``backward``, ``optimizer_step`` with the optimizer of ``configure_optimizers``);
2. the input pipeline: a batch of the real train DataLoader (features cached as in
   training) fetched and moved to the device, against the step;
3. a training epoch (fetch + step) on 1x, 2x and 4x the training clips, the larger sets
   being the train set's items repeated.

Lightning's ``self.log`` calls inside the step are no-ops without a Trainer, so its
logging bookkeeping is the one part of a real step not timed.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Subset

from evaluate.bench.timing import sync, timeit
from interp_models.cache import default_cache_dir
from interp_models.heart.states import FRAME_RATE
from interp_models.nmf.dictionary import Dictionary, DictionarySettings
from train.builders import hparams, optimised_module, supervised_module
from train.datamodules import build_datamodule
from train.emotion.module import EmotionModule
from train.emotion.pipeline import build_augment, build_model
from train.heart.pipeline import heart_module
from train.nmf.pipeline import REGIMES, check_frontends, interpreter_module

__all__ = ["FAMILIES", "bench_family_training", "training_markdown"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
#: each family's default experiment (``configs/config/<name>.yaml``)
FAMILIES = {"nmf": "nmf_interpreter", "emotion": "midlevel_emotion", "heart": "heart_segmentation"}
#: quick mode: the tests' tiny built-in data (``tests/conftest.py``, ``tests/test_*_cli.py``)
QUICK_DATA = {
    "nmf": [
        "data.num_clips=80",
        "data.num_classes=4",
        "data.clip_seconds=1.0",
        "data.snr_db=[-3.0,15.0]",
        "data.max_class_distractors=0",
        "data.reverb_prob=0.0",
        "data.level_change_db=0.0",
    ],
    "emotion": ["data.num_clips=40", "data.clip_seconds=2.0"],
    "heart": ["data.synth.num_recordings=30", "data.synth.duration_s=[5.0,6.0]"],
}
QUICK_BATCH = 8
SCALES = (1, 2, 4)


def bench_family_training(
    family: str, device: torch.device, quick: bool, cache_dir: str | Path | None = None
) -> dict[str, Any]:
    """Step, input-pipeline and epoch-scaling figures of one family's real training.

    Parameters
    ----------
    family : ``nmf``, ``emotion`` or ``heart``.
    device : where the module trains and batches go.
    quick : the tests' tiny built-in data and batch 8, 5 timed steps and each epoch the
        median of 3 (seconds on CPU); else the config's data and batch size, 10 timed
        steps and one epoch of each size.
    cache_dir : generated data and features; default ``interp_models.cache.default_cache_dir()``.

    Returns
    -------
    ``family``, ``config``, ``batch``, ``train_clips``, ``setup_s`` (data generation or
    cache read, features, module), ``step_s`` (median), ``steps_per_s``, ``clips_per_s``,
    ``load_s_per_batch``, ``input_over_step``, ``input_bound``, ``scaling`` (``{"1x":
    {"clips", "epoch_s"}, "2x": ..., "4x": ..., "2x_over_1x", "4x_over_1x"}``) and ``note``.
    """
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {family!r}")
    device = torch.device(device)
    start = time.perf_counter()
    cfg = compose_config(family, quick, cache_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # as train.fit
    resolved = hparams(cfg)
    dm = build_datamodule(resolved["data"], resolved["paths"]["cache_dir"])
    dm.prepare_data()
    dm.setup()
    module, note = _BUILDERS[family](cfg, dm)
    module.to(device).train()
    setup_s = time.perf_counter() - start
    step = TrainingStep(module)
    train_set = dm.dataset("train")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")
        batch = step.to_device(next(iter(dm.train_dataloader())), device)
        step_s = timeit(lambda: step(batch), device, *((5, 2) if quick else (10, 3)))
        load_s = _load_time(dm.train_dataloader(), step, device, passes=1 if quick else 3)
        repeat = 3 if quick else 1  # tiny epochs: the median of three
        epochs = {f"{k}x": _epoch(dm, train_set, k, step, device, repeat) for k in SCALES}

    scaling: dict[str, Any] = dict(epochs)
    for k in SCALES[1:]:
        scaling[f"{k}x_over_1x"] = epochs[f"{k}x"]["epoch_s"] / epochs["1x"]["epoch_s"]
    return {
        "family": family,
        "config": FAMILIES[family],
        "quick": quick,
        "device": str(device),
        "batch": int(dm.batch_size),
        "train_clips": len(train_set),
        "setup_s": setup_s,
        "step_s": step_s,
        "steps_per_s": 1.0 / step_s,
        "clips_per_s": dm.batch_size / step_s,
        "load_s_per_batch": load_s,
        "input_over_step": load_s / step_s,
        "input_bound": load_s > step_s,
        "scaling": scaling,
        "note": note,
    }


def compose_config(family: str, quick: bool, cache_dir: str | Path | None = None) -> DictConfig:
    """The family's default experiment as ``python -m train.fit config=<name>`` composes it,
    with ``paths.cache_dir`` set, and the tiny data and batch 8 in quick mode."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    overrides = [f"config={FAMILIES[family]}", "logger=csv", f"paths.cache_dir={cache}"]
    if quick:
        overrides += [*QUICK_DATA[family], f"data.batch_size={QUICK_BATCH}"]
    with _hydra():
        return compose("fit", overrides=overrides)


@contextmanager
def _hydra() -> Iterator[None]:
    """Hydra initialised on ``configs/``; an already initialised Hydra is set aside and
    restored afterwards (the bench may run inside a Hydra app)."""
    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            yield
    finally:
        if saved is not None:
            gh.clear()
            gh.initialize(saved)


# ---------------------------------------------------------------------- family modules


def _nmf_module(cfg: DictConfig, dm: Any) -> tuple[L.LightningModule, str]:
    """The interpreter's LightningModule on the (untrained) classifier of ``cfg.model``,
    through ``train.nmf.pipeline.interpreter_module``; a random dictionary of the
    configured size stands in for the learned one."""
    check_frontends(dm)
    regime = REGIMES[cfg.pipeline]
    classifier = supervised_module(cfg, dm).net
    settings = DictionarySettings(
        n_components=int(cfg.interpreter.dictionary.n_components),
        n_noise=int(cfg.interpreter.dictionary.n_noise),
        stft=dm.frontends["spec"].settings(),
    )
    n_freq = dm.features["spec"].shape[1]
    g = torch.Generator().manual_seed(int(cfg.seed))
    W = torch.rand(n_freq, settings.n_components + settings.n_noise, generator=g)
    dictionary = Dictionary(W / W.norm(dim=0, keepdim=True), settings, math.nan)
    note = (
        f"{regime} interpreter step (the classifier frozen, untrained) on a random "
        f"non-negative dictionary of K={W.shape[1]} columns in place of the learned one; "
        "classifier training and dictionary learning are not timed"
    )
    return interpreter_module(cfg, dm, classifier, dictionary, regime), note


def _emotion_module(cfg: DictConfig, dm: Any) -> tuple[L.LightningModule, str]:
    """``EmotionModule`` as ``train.emotion.pipeline.run`` builds it (model, loss weights
    of ``emotion.variant``, contrast weight, augmentation)."""
    ecfg = cfg.emotion
    variant = ecfg.variant
    quality, emotion = float(ecfg.loss.quality), float(ecfg.loss.emotion)
    weights = {"a2e": (0.0, 1.0), "separate": (1.0, 0.0)}.get(variant, (quality, emotion))
    module = optimised_module(
        EmotionModule,
        cfg,
        model=build_model(cfg, dm),
        quality_weight=weights[0],
        emotion_weight=weights[1],
        contrast_weight=float(ecfg.loss.get("contrast", 0.0)),
        augment=build_augment(cfg),
    )
    return module, f"emotion.variant={variant} step (loss weights quality, emotion = {weights})"


def _heart_module(cfg: DictConfig, dm: Any) -> tuple[L.LightningModule, str]:
    """``train.heart.pipeline.heart_module`` on the data's ground-truth segmentation."""
    dm.use_segmentation("ground_truth")
    crop = (
        "whole recordings"
        if dm.crop_frames is None
        else (f"windows of at most {dm.crop_frames / FRAME_RATE:g} s")
    )
    note = (
        "classifier step on the data's ground-truth states (the same step as on Springer "
        f"states; the segmenter is not trained here); training items are {crop}, "
        "as in training"
    )
    return heart_module(cfg, dm), note


_BUILDERS: dict[str, Callable[[DictConfig, Any], tuple[L.LightningModule, str]]] = {
    "nmf": _nmf_module,
    "emotion": _emotion_module,
    "heart": _heart_module,
}


# ---------------------------------------------------------------------- the step


class TrainingStep:
    """One training step of ``module`` as Lightning's automatic optimisation runs it.

    ``on_train_batch_start``, then ``optimizer_step`` with the closure ``training_step``
    -> ``optimizer_zero_grad`` -> ``backward``, on the first optimizer of
    ``configure_optimizers``. Modules with manual optimisation need a Trainer and are
    refused.
    """

    def __init__(self, module: L.LightningModule):
        if not module.automatic_optimization:
            raise ValueError(f"{type(module).__name__}: manual optimisation needs a Trainer")
        self.module, self.optimizer = module, _first_optimizer(module.configure_optimizers())
        self.batch_idx = 0

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """``batch`` on ``device`` through the module's own transfer hook."""
        return self.module.transfer_batch_to_device(batch, device, 0)

    def __call__(self, batch: Any) -> None:
        module, optimizer, i = self.module, self.optimizer, self.batch_idx
        module.on_train_batch_start(batch, i)

        def closure() -> torch.Tensor:
            loss = module.training_step(batch, i)
            module.optimizer_zero_grad(0, i, optimizer)
            module.backward(loss)
            return loss

        module.optimizer_step(0, i, optimizer, closure)
        self.batch_idx += 1


def _first_optimizer(conf: Any) -> torch.optim.Optimizer:
    """The optimizer of a ``configure_optimizers`` return value (an optimizer, a list or
    tuple, or a dict with ``optimizer``)."""
    while not isinstance(conf, torch.optim.Optimizer):
        if isinstance(conf, dict):
            conf = conf["optimizer"]
        elif isinstance(conf, Sequence) and conf:
            conf = conf[0]
        else:
            raise TypeError(f"configure_optimizers returned no optimizer: {conf!r}")
    return conf


# ---------------------------------------------------------------------- input and epochs


class _Repeated(Subset):
    """``Subset`` of ``times`` copies of ``dataset``'s items that also passes on the
    heart family's ``(position, epoch)`` training items (``EpochTaggedSampler``)."""

    def __init__(self, dataset: Dataset, times: int):
        super().__init__(dataset, np.tile(np.arange(len(dataset)), times).tolist())

    def __getitem__(self, item: int | tuple[int, int]) -> Any:
        if isinstance(item, tuple):
            position, epoch = item
            return self.dataset[(self.indices[position], epoch)]
        return self.dataset[self.indices[item]]

    def __getitems__(self, items: list) -> list:
        return [self[item] for item in items]


def _load_time(loader: DataLoader, step: TrainingStep, device: torch.device, passes: int) -> float:
    """Seconds per batch to fetch a batch of ``loader`` and move it to ``device``: the
    median over ``passes`` whole passes of each pass's mean, after one unmeasured pass."""
    per_batch = []
    for measured in [False] + [True] * passes:
        start, n = time.perf_counter(), 0
        for batch in loader:
            step.to_device(batch, device)
            n += 1
        sync(device)
        if measured:
            per_batch.append((time.perf_counter() - start) / n)
    return float(np.median(per_batch))


def _epoch(
    dm: Any,
    train_set: Dataset,
    times: int,
    step: TrainingStep,
    device: torch.device,
    repeat: int = 1,
) -> dict[str, float | int]:
    """Seconds of one training epoch (fetch, transfer, step) over ``times`` copies of the
    train set, through the family's own loader settings (``dm.make_loader``); the median
    of ``repeat`` epochs."""
    dataset = _Repeated(train_set, times)
    loader = dm.make_loader(dataset, shuffle=True)
    seconds = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        for batch in loader:
            step(step.to_device(batch, device))
        sync(device)
        seconds.append(time.perf_counter() - start)
    return {"clips": len(dataset), "epoch_s": float(np.median(seconds))}


# ---------------------------------------------------------------------- markdown


def training_markdown(results: dict[str, dict]) -> list[str]:
    """A "Training throughput" section: step and input figures, then epoch time against
    data size, one row per family of ``results`` (``bench_family_training`` outputs)."""
    lines = [
        "## Training throughput",
        "",
        "Each family's own training step (forward, loss, backward, optimizer step) on a "
        "batch already on the device (median after warm-up), against fetching a batch "
        "from its train loader; input/step above 1 means training is input-bound.",
        "",
        "| family | batch | step ms | steps/s | clips/s | load ms/batch | input/step "
        "| input-bound? |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['batch']} | {1e3 * r['step_s']:.1f} | {r['steps_per_s']:.2f} "
            f"| {r['clips_per_s']:.1f} | {1e3 * r['load_s_per_batch']:.2f} "
            f"| {r['input_over_step']:.3f} | {'yes' if r['input_bound'] else 'no'} |"
        )
    lines += [
        "",
        "One training epoch (fetch + step) on 1x, 2x and 4x the training clips (the train "
        "set repeated); linear scaling gives ratios 2 and 4.",
        "",
        "| family | clips 1x | epoch s 1x | epoch s 2x | epoch s 4x | 2x/1x | 4x/1x |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        s = r["scaling"]
        lines.append(
            f"| {name} | {s['1x']['clips']} | {s['1x']['epoch_s']:.2f} "
            f"| {s['2x']['epoch_s']:.2f} | {s['4x']['epoch_s']:.2f} "
            f"| {s['2x_over_1x']:.2f} | {s['4x_over_1x']:.2f} |"
        )
    notes = [f"- {name}: {r['note']}" for name, r in results.items() if r.get("note")]
    if notes:
        lines += ["", *notes]
    return [*lines, ""]
