"""Rebuild a trained model and its data from its run directory, without Lightning or
pickled code; or the run's model on other data (:class:`OtherData`)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from torch import nn

from interp_models.audio.features import build_frontend
from interp_models.audio.io import load_audio
from interp_models.config import construct
from interp_models.data.splits import SplitData
from interp_models.families import DEFAULT_DATA, FAMILIES, current_name, data_kind
from interp_models.localization.srp import array_geometry
from interp_models.nmf.dictionary import Dictionary
from interp_models.nmf.interpreter import NMFInterpreter

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
#: ``data.*`` keys that make the model's input: a run is always scored with its own.
FRONT_END = ("sample_rate", "clip_seconds", "features", "input")
#: what a run's labels are called in ``metrics.json`` -> ``data``
LABELS = ("class_names", "qualities", "emotions")


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    model: nn.Module
    frontends: dict[str, nn.Module]
    class_names: list[str]


def find_run_dir(path: str | Path) -> Path:
    """The finished run (``config.yaml`` + ``metrics.json``) holding ``path``: ``path`` itself
    or the nearest folder above it."""
    path = Path(path).expanduser().resolve()
    for candidate in [path, *path.parents]:
        if (candidate / "config.yaml").is_file() and (candidate / "metrics.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"run: {path} is not inside a finished run (config.yaml + metrics.json)"
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU.

    Raises
    ------
    ValueError naming the file if it is not a checkpoint of tensors (truncated, corrupt,
    not a checkpoint); ``FileNotFoundError`` if it does not exist.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    """The gist of torch.load's (long) error message."""
    text = str(exc).rpartition("WeightsUnpickler error:")[2]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0] if lines else f"{type(exc).__name__}: empty or truncated"


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Load the final model of the run holding ``path`` (a run dir or one of its ckpts).

    Checkpoints load with ``torch.load(weights_only=True)``: tensors only, no code.
    """
    run_dir = find_run_dir(path)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    names = metrics["data"]["class_names"]
    data = cfg["data"]
    frontends = {
        name: build_frontend(sample_rate=data["sample_rate"], **spec)
        for name, spec in data["features"].items()
    }
    # A binary task (heart sounds) trains one logit for the positive class, not one per class.
    n_outputs = 1 if cfg.get("task") == "binary" else len(names)
    localization = cfg["pipeline"] in FAMILIES["localization"].pipelines
    # A localization net is built for the run's array: <run>/array.json, which its pipeline
    # copied from the data (the geometry is in the checkpoint too, and checked on loading).
    geometry = (
        array_geometry(json.loads((run_dir / "array.json").read_text()), data["sample_rate"])
        if localization
        else {}
    )
    net = instantiate(cfg["model"]["net"], n_outputs=n_outputs, **geometry)
    if cfg["pipeline"] == "supervised" or localization:
        ckpt_file, prefix, model = metrics["best_checkpoint"], "net.", net
    elif cfg["pipeline"] in FAMILIES["nmf"].pipelines:
        icfg = cfg["interpreter"]
        dictionary = Dictionary.load(run_dir / "dictionary.npz")
        model = NMFInterpreter(
            net,
            icfg["layers"],
            dictionary.W,
            len(names),
            dictionary.is_noise,
            branch_channels=icfg["branch_channels"],
            hidden=icfg["hidden"],
            relevance=icfg.get("relevance", "global"),
            baseline=icfg.get("baseline", "silence"),
        )
        ckpt_file, prefix = metrics["interpreter"]["best_checkpoint"], "model."
    else:
        raise ValueError(f"pipeline {cfg['pipeline']!r} of {run_dir} cannot be loaded")
    ckpt_path = Path(path) if str(path).endswith(".ckpt") else run_dir / ckpt_file
    state = load_checkpoint(ckpt_path)["state_dict"]
    model.load_state_dict(
        {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    )
    return LoadedRun(run_dir, cfg, metrics, model.to(device).eval(), frontends, names)


def clip_samples(data: Mapping[str, Any]) -> int:
    """Samples of one clip of a run's data section (``clip_seconds`` at ``sample_rate``)."""
    return int(round(float(data["clip_seconds"]) * int(data["sample_rate"])))


def read_clip(path: str | Path, data: Mapping[str, Any], crop: bool = True) -> np.ndarray:
    """A user's audio file as a run's model hears it: any format, rate and channel count
    (``interp_models.audio.io.load_audio``), resampled to the run's ``sample_rate``, mixed
    down to mono, zero-padded at the end to the run's clip length and, with ``crop``, cut to
    it (the models were trained on clips of that length).

    Raises
    ------
    AudioReadError naming the file when it cannot be decoded.
    """
    wave = load_audio(path, int(data["sample_rate"]))
    n = clip_samples(data)
    if len(wave) < n:
        return np.pad(wave, (0, n - len(wave)))
    return wave[:n].copy() if crop else wave


def preset_section(preset: str, seed: int) -> dict[str, Any]:
    """``configs/data/<preset>.yaml`` composed by Hydra (its defaults list included),
    interpolations resolved with the run's ``seed``."""
    if not (CONFIGS / "data" / f"{preset}.yaml").is_file():
        known = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))
        raise ValueError(f"data: unknown preset {preset!r}; presets are {known}")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("fit", overrides=[f"data={preset}", f"seed={seed}"])
    return OmegaConf.to_container(cfg.data, resolve=True)


@dataclass(frozen=True)
class OtherData:
    """Data to apply a finished run to instead of its own (``train.score``, and
    ``evaluate.report data=...``).

    Attributes
    ----------
    preset : ``configs/data/<preset>.yaml``; None: the run's own ``data:`` section.
    overrides : ``data.<key>`` values on top (dotted keys reach nested ones,
        ``synth.seed``); the keys of :data:`FRONT_END` are always the run's.
    split : ``all`` (every item: the run was built on none of them) or ``test`` (the
        data's own test folds).
    """

    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    split: str = "all"

    @staticmethod
    def split_argv(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
        """``data.<key>=<value>`` arguments apart (values parsed as YAML) from the rest."""
        rest, overrides = [], {}
        for arg in argv:
            key, sep, value = arg.partition("=")
            if sep and key.startswith("data."):
                overrides[key.removeprefix("data.")] = yaml.safe_load(value) if value else None
            else:
                rest.append(arg)
        return rest, overrides

    @property
    def name(self) -> str:
        """A folder name for it: the preset, else the root folder's name, else ``own``;
        then any other override (``heart_synth_shifted+synth.seed=3``)."""
        root = self.overrides.get("root")
        base = self.preset or (Path(str(root)).expanduser().resolve().name if root else "own")
        changed = [f"{k}={v}" for k, v in self.overrides.items() if k != "root"]
        return "+".join([base, *changed]).replace("/", "_").replace(" ", "")

    def section(self, run_cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data:`` section: the preset (or the run's own), the overrides, then the
        run's front end.

        Raises
        ------
        ValueError : an override of a front-end key, or data of another kind.
        """
        own = dict(run_cfg["data"])
        seed = int(run_cfg.get("seed", 0))
        section = OmegaConf.create(preset_section(self.preset, seed) if self.preset else own)
        trained_on = OmegaConf.create(own)
        for key, value in self.overrides.items():
            trained = OmegaConf.select(trained_on, key)
            if key.split(".")[0] in FRONT_END and trained != value:
                raise ValueError(
                    f"data.{key}: the model's input is the run's own ({trained!r}); "
                    "a run is scored with the front end it was trained with"
                )
            OmegaConf.update(section, key, value, force_add=True)
        section = OmegaConf.to_container(section)
        kinds = [current_name(str(s.get("_target_", DEFAULT_DATA))) for s in (own, section)]
        if kinds[0] != kinds[1]:
            raise ValueError(f"data: {self.preset or 'it'} is {kinds[1]}; the run read {kinds[0]}")
        for key in FRONT_END:
            if key in own:
                section[key] = own[key]
        return section

    def select(self, dm: SplitData, run_data: Mapping[str, Any]) -> SplitData:
        """Check ``dm``'s labels against the run's (``metrics.json`` -> ``data``) and, for
        ``split="all"``, make its test split every item of every fold."""
        scored = dm.summary()
        for key in LABELS:
            if key in run_data and list(scored.get(key, [])) != list(run_data[key]):
                raise ValueError(
                    f"data: its {key} {list(scored.get(key, []))} differ from the run's "
                    f"{list(run_data[key])}"
                )
        if self.split == "all":
            every = np.concatenate([np.asarray(i) for i in dm.split_indices.values()])
            dm.split_indices["test"] = np.unique(every)
        return dm


def open_data(
    config: Mapping[str, Any],
    other: OtherData | None = None,
    run_data: Mapping[str, Any] | None = None,
) -> SplitData:
    """A run's data, rebuilt from its resolved config and set up (data and features come
    from the cache): the plain ``interp_models.data`` class its ``data._target_`` names.
    With ``other`` (and the run's ``metrics.json`` -> ``data`` as ``run_data``), that
    data instead, read with the run's front end (:class:`OtherData`).

    The reports read the data, they do not train on it: the loader keys of the DataModule
    (``interp_models.families.DATA``) are dropped, and ``train`` is never imported, also
    not for a run written before the data classes (old DataModule names map through
    ``interp_models.families.ALIASES``).

    Raises
    ------
    ValueError : ``data._target_`` still names a class under ``train``.
    """
    data = other.section(config) if other else dict(config["data"])
    target = current_name(str(data.pop("_target_", DEFAULT_DATA)))
    if target.split(".")[0] == "train":
        raise ValueError(f"data._target_: {target} is not a data class (interp_models.data)")
    kind = data_kind(target)
    for key in kind.loader_keys if kind else ():
        data.pop(key, None)
    cache_dir = config.get("paths", {}).get("cache_dir")
    opened = construct(get_class(target), data, "data", cache_dir=cache_dir)
    opened.prepare_data()
    opened.setup()
    return other.select(opened, run_data or {}) if other else opened
