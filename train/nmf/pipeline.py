"""The NMF-interpreter run: classifier, dictionary, interpreter, explanation metrics.

``nmf_posthoc`` (Parekh et al., NeurIPS 2022): the black-box classifier is trained first
in ``<run>/classifier/`` (or loaded from ``classifier_ckpt``), frozen, and the
interpreter trained on top in ``<run>/``. ``nmf_joint`` (arXiv 2305.07132): classifier and
interpreter trained together in ``<run>/``. ``nmf_faithful``: as post-hoc, with the
interpreter's own explanation mask trained to be faithful (``train.nmf.module``). All then
score explanations on the validation and test clips and export listenable examples to
``<run>/explanations/``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from evaluate.nmf.scoring import evaluate_split, export_examples, localization_status
from evaluate.runs import load_checkpoint
from interp_models.audio.feature_cache import waveform_digest
from interp_models.cache import cached_file, default_cache_dir, params_key
from interp_models.config import construct
from interp_models.nmf.dictionary import Dictionary, DictionarySettings, learn_dictionary
from interp_models.nmf.interpreter import LayerTaps, NMFInterpreter
from train.builders import fit_run_stage, hparams, stage_summary, supervised_module
from train.datamodules import ClipDataModule
from train.lmac.pipeline import fit_lmac, score_lmac
from train.loggers import log_results
from train.nmf.module import NMFInterpreterModule
from train.stages import fit_stage, score_checkpoint

log = logging.getLogger(__name__)

#: Each NMF pipeline's regime: L2I post-hoc and joint, and the faithful regime (the
#: interpreter's own mask trained with L-MAC's objective on the frozen classifier).
REGIMES = {"nmf_posthoc": "posthoc", "nmf_joint": "joint", "nmf_faithful": "faithful"}

_STFT_KEYS = ("sample_rate", "n_fft", "hop_length", "win_length", "center")


def check_frontends(dm: ClipDataModule) -> None:
    """The classifier's log-mel and the interpreter's STFT must share one STFT grid."""
    if "spec" not in dm.frontends:
        raise ValueError("data.features.spec: the NMF interpreter needs a log1p_stft front end")
    spec, x = dm.frontends["spec"].settings(), dm.frontends["x"].settings()
    if spec.get("kind") != "log1p_stft":
        raise ValueError(f"data.features.spec.kind: expected log1p_stft, got {spec.get('kind')}")
    diff = {k: (x.get(k), spec.get(k)) for k in _STFT_KEYS if x.get(k) != spec.get(k)}
    if diff:
        raise ValueError(f"data.features.x and data.features.spec use different STFTs: {diff}")


def load_classifier_checkpoint(module, path: str, cfg: DictConfig) -> None:
    """Load a black-box checkpoint, refusing one trained on other audio settings."""
    ckpt = load_checkpoint(path)  # a corrupt file is named
    trained = ckpt.get("hyper_parameters", {}).get("data", {})
    for key in ("sample_rate", "clip_seconds"):
        if key in trained and trained[key] != cfg.data[key]:
            raise ValueError(
                f"classifier_ckpt: trained with data.{key}={trained[key]}, "
                f"this run has {cfg.data[key]}"
            )
    x_cfg = OmegaConf.to_container(cfg.data.features.x, resolve=True)
    if "features" in trained and trained["features"].get("x") != x_cfg:
        raise ValueError(
            f"classifier_ckpt: trained on features {trained['features'].get('x')}, "
            f"this run has {x_cfg}"
        )
    module.load_state_dict(ckpt["state_dict"])


def learned_dictionary(cfg: DictConfig, dm: ClipDataModule, run_dir: Path) -> Dictionary:
    """Dictionary of the training clips' log1p |STFT|; cached by data and settings."""
    settings = DictionarySettings(
        **OmegaConf.to_container(cfg.interpreter.dictionary, resolve=True),
        stft=dm.frontends["spec"].settings(),
    )
    train_idx = dm.split_indices["train"]
    key = params_key({"waves": waveform_digest(dm.waves[train_idx]), "settings": settings})
    cache = Path(cfg.paths.cache_dir) if cfg.paths.cache_dir else default_cache_dir()

    def build(tmp: Path) -> None:
        log.info("learning the NMF dictionary (K=%d) with torchnmf", settings.n_components)
        learn_dictionary(dm.features["spec"][train_idx], settings).save(tmp)

    path = cached_file(cache / "nmf" / f"dictionary-{key}.npz", build)
    shutil.copyfile(path, run_dir / "dictionary.npz")  # the run keeps its own artifact
    return Dictionary.load(path)


def interpreter_module(
    cfg: DictConfig, dm: ClipDataModule, classifier, dictionary: Dictionary, regime: str
) -> NMFInterpreterModule:
    """The interpreter of ``cfg.interpreter`` on ``classifier`` and ``dictionary``, in its
    LightningModule."""
    icfg = cfg.interpreter
    model = NMFInterpreter(
        classifier,
        list(icfg.layers),
        dictionary.W,
        dm.num_outputs,
        dictionary.is_noise,
        branch_channels=icfg.branch_channels,
        hidden=icfg.hidden,
        relevance=icfg.get("relevance", "global"),
        baseline=icfg.get("baseline", "silence"),
    )
    optim = OmegaConf.to_container(icfg.optimizer, resolve=True)
    loss = OmegaConf.to_container(icfg.loss, resolve=True)
    # Only the faithful regime feeds masked spectrograms to the classifier.
    logmel = {"logmel": dm.frontends["x"]} if regime == "faithful" else {}
    return construct(
        NMFInterpreterModule,
        {**optim, **loss},
        "interpreter.optimizer/loss",
        model=model,
        regime=regime,
        threshold=icfg.relevance_threshold,
        hparams=hparams(cfg),
        **logmel,
    )


def explanation_scores(
    cfg: DictConfig, model: NMFInterpreter, dm: ClipDataModule, splits: tuple[str, ...]
) -> dict[str, Any]:
    """``evaluate.nmf.scoring.evaluate_split`` of each split, and whether localization was
    scored (only where every clip has a ground-truth mask)."""
    icfg = cfg.interpreter
    out: dict[str, Any] = {
        split: evaluate_split(
            model,
            dm,
            split,
            threshold=icfg.relevance_threshold,
            batch_size=icfg.evaluation.batch_size,
            seed=cfg.seed,
        )
        for split in splits
    }
    out["localization"] = localization_status(dm, splits)
    return out


def run_nmf(cfg: DictConfig, run_dir: Path, dm: ClipDataModule, callbacks) -> dict[str, Any]:
    check_frontends(dm)
    out: dict[str, Any] = {"regime": REGIMES[cfg.pipeline]}
    if out["regime"] == "joint":
        classifier = instantiate(cfg.model.net, n_outputs=dm.num_outputs)
    else:
        clf_module = supervised_module(cfg, dm)
        LayerTaps.resolve(clf_module.net, list(cfg.interpreter.layers))  # fail before training
        if cfg.classifier_ckpt:
            load_classifier_checkpoint(clf_module, cfg.classifier_ckpt, cfg)
            out["classifier"] = {"checkpoint": str(cfg.classifier_ckpt)}
        else:
            result = fit_stage(
                cfg,
                clf_module,
                dm,
                run_dir / "classifier",
                name=f"{cfg.name}-{run_dir.name}-classifier",
                max_epochs=cfg.classifier_epochs,
                final=False,
            )
            out["classifier"] = stage_summary(result, run_dir)
        classifier = clf_module.net
        if cfg.lmac.enabled:  # the baseline to beat, on the same frozen classifier
            out["lmac"] = fit_lmac(cfg, dm, classifier, run_dir)

    dictionary = learned_dictionary(cfg, dm, run_dir)
    out["dictionary"] = {
        "file": "dictionary.npz",
        "divergence_per_frame": dictionary.divergence,
        "n_components": int(dictionary.W.shape[1]),
    }
    module = interpreter_module(cfg, dm, classifier, dictionary, out["regime"])
    model = module.model
    out["interpreter"] = fit_run_stage(cfg, module, dm, run_dir, callbacks, mode=module.mode)

    model.eval()
    icfg, ecfg = cfg.interpreter, cfg.interpreter.evaluation
    out["explanations"] = explanation_scores(cfg, model, dm, ("val", "test"))
    out["examples"] = export_examples(
        model,
        dm,
        "test",
        run_dir / "explanations",
        n=ecfg.n_examples,
        threshold=icfg.relevance_threshold,
    )
    media = [
        (f"explanations/{ex['clip']}/{name}", Path(ex["dir"]) / f"{name}.{ext}")
        for ex in out["examples"]
        for name, ext in (("figure", "png"), ("explanation", "wav"), ("input", "wav"))
    ]
    # Scalars go to the W&B summary with the rest of metrics.json (train/fit.py).
    log_results(hparams(cfg)["logger"], run_dir, f"{cfg.name}-{run_dir.name}", {}, media)
    return out


def score(
    cfg: DictConfig, run_dir: Path, run_metrics: dict, dm: ClipDataModule, out_dir: Path, opts
) -> dict[str, Any]:
    """The run's kept classifier and interpreter on ``dm``'s test split (``train.score``):
    both through Lightning's test loop on their checkpoints, then the explanation metrics."""
    check_frontends(dm)
    device = opts["device"]
    out: dict[str, Any] = {"regime": REGIMES[cfg.pipeline]}
    if out["regime"] == "joint":
        classifier = instantiate(cfg.model.net, n_outputs=dm.num_outputs)
    else:
        clf_module = supervised_module(cfg, dm)
        kept = run_metrics["classifier"]
        # a classifier trained in this run, or the classifier_ckpt it was given
        ckpt = kept.get("checkpoint") or run_dir / kept["best_checkpoint"]
        out["classifier"] = {"test": score_checkpoint(clf_module, dm, ckpt, device)}
        classifier = clf_module.net
        if "lmac" in run_metrics:
            out["lmac"] = score_lmac(cfg, dm, classifier, run_dir, run_metrics["lmac"], device)
    module = interpreter_module(
        cfg, dm, classifier, Dictionary.load(run_dir / "dictionary.npz"), out["regime"]
    )
    ckpt = run_dir / run_metrics["interpreter"]["best_checkpoint"]
    out["interpreter"] = {"test": score_checkpoint(module, dm, ckpt, device)}
    out["explanations"] = explanation_scores(cfg, module.model.eval(), dm, ("test",))
    return out
