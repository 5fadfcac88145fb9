"""Rebuild a trained model and its data from its run directory, without Lightning or
pickled code."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import get_class, instantiate
from torch import nn

from interp_models.audio.features import build_frontend
from interp_models.config import construct
from interp_models.data.splits import SplitData
from interp_models.families import DEFAULT_DATA, current_name, data_kind
from interp_models.nmf.dictionary import Dictionary
from interp_models.nmf.interpreter import NMFInterpreter


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
    net = instantiate(cfg["model"]["net"], n_outputs=n_outputs)
    if cfg["pipeline"] == "supervised":
        ckpt_file, prefix, model = metrics["best_checkpoint"], "net.", net
    elif cfg["pipeline"] in ("nmf_posthoc", "nmf_joint"):
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


def open_data(config: Mapping[str, Any]) -> SplitData:
    """A run's data, rebuilt from its resolved config and set up (data and features come
    from the cache): the plain ``interp_models.data`` class its ``data._target_`` names.

    The reports read the data, they do not train on it: the loader keys of the DataModule
    (``interp_models.families.DATA``) are dropped, and ``train`` is never imported, also
    not for a run written before the data classes (old DataModule names map through
    ``interp_models.families.ALIASES``).

    Raises
    ------
    ValueError : ``data._target_`` still names a class under ``train``.
    """
    data = dict(config["data"])
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
    return opened
