"""Rebuild a trained emotion model from its run directory (no Lightning, no pickled code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import instantiate
from torch import nn

from evaluate.runs import load_checkpoint
from interp_models.emotion.frontend import build_music_frontend


@dataclass
class EmotionRun:
    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    model: nn.Module
    frontend: nn.Module
    emotions: list[str]
    qualities: list[str]


def load_emotion_run(path: str | Path, device: str = "cpu") -> EmotionRun:
    """Load the final model (``model.pt``) of the emotion run holding ``path``.

    ``model.pt`` holds tensors only (``torch.load(weights_only=True)``), including the
    rating statistics and, for the separate variant, the fitted linear map.
    """
    path = Path(path).expanduser().resolve()
    run_dir = next((p for p in [path, *path.parents] if (p / "config.yaml").is_file()), None)
    if run_dir is None or not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"run: {path} is not inside a finished emotion run (model.pt)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = instantiate(cfg["model"]["net"])
    state = load_checkpoint(run_dir / "model.pt")
    model.load_state_dict(state["state_dict"])
    data = cfg["data"]
    frontend = build_music_frontend(sample_rate=data["sample_rate"], **data["features"]["x"])
    return EmotionRun(
        run_dir,
        cfg,
        metrics,
        model.to(device).eval(),
        frontend,
        metrics["data"]["emotions"],
        metrics["data"]["qualities"],
    )
