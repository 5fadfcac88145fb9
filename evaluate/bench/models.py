"""What each family's benchmark times: its by-design model, the black box its report
explains post hoc, the front end and groupings of its report, and inputs of its built-in
data's shape. Sizes come from the family's default configs (``configs/``); weights are
untrained, because cost does not depend on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from evaluate.posthoc.groupings import Bands, Grouping, TFBins
from interp_models.audio.features import build_frontend
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.emotion.models import A2E, MidLevelEmotionModel
from interp_models.explanation import Explanation
from interp_models.heart.model import SegmentationAwareNet
from interp_models.heart.states import FRAME_RATE
from interp_models.nmf.interpreter import NMFInterpreter

__all__ = ["FAMILIES", "FamilyCase", "family_case", "nmf_models"]

SR, N_FFT, HOP = 16000, 1024, 256
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAMILIES = ("nmf", "emotion", "heart")


def _config(group: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / group / f"{name}.yaml").read_text())


def _net_kwargs(name: str) -> dict[str, Any]:
    net = dict(_config("model", name)["net"])
    net.pop("_target_")
    return net


@dataclass
class FamilyCase:
    """One family as the benchmark sees it.

    Attributes
    ----------
    family : the family's name.
    model : the by-design model; ``explain(batch)`` is its intrinsic explanation and
        ``forward(batch)`` its own forward pass (the explanation's limit).
    blackbox : the network the report's post-hoc methods explain (``Explainer``'s model).
    frontend : the black box's front end (groupings, references).
    groupings : ``"bins"`` (gradient methods, LRP) and ``"bands"`` (the sampling methods),
        as in the family's report.
    inputs : batch size -> ``{"x": black-box input, "model": by-design model's inputs}``.
    explain, forward : the by-design model's explanation and forward pass on ``inputs``.
    """

    family: str
    model: nn.Module
    blackbox: nn.Module
    frontend: nn.Module
    groupings: dict[str, Grouping]
    inputs: Callable[[int], dict[str, Any]]
    explain: Callable[[dict[str, Any]], Explanation]
    forward: Callable[[dict[str, Any]], Any]
    target: int | None = None  # the output explained (None: each clip's prediction)


def nmf_models(device: torch.device, n_classes: int = 10, k: int = 100):
    """The event classifier (``configs/model/cnn.yaml``) and an NMF interpreter on it."""
    torch.manual_seed(0)
    clf = SpectrogramCNN(n_classes, **_net_kwargs("cnn")).to(device).eval()
    interp = _config("interpreter", "nmf")
    layers = list(interp.get("layers", ["block2", "block3", "block4"]))
    model = NMFInterpreter(clf, layers, torch.rand(N_FFT // 2 + 1, k), n_classes)
    return clf, model.to(device).eval()


def _frontend(data: dict[str, Any], device: torch.device) -> nn.Module:
    settings = dict(data["features"]["x"])
    return build_frontend(settings.pop("kind"), sample_rate=data["sample_rate"], **settings).to(
        device
    )


def _waves(batch: int, n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(batch, n, generator=g)).to(device)


def _spectrogram_case(
    family: str, data: dict[str, Any], model: nn.Module, blackbox: nn.Module, forward, device
) -> FamilyCase:
    """A family whose by-design model and black box both take the front end's output;
    the sampling methods run on 8 bands x 16 time divisions, as in its report."""
    frontend = _frontend(data, device)
    n = int(round(data["clip_seconds"] * data["sample_rate"]))

    def inputs(batch: int) -> dict[str, Any]:
        with torch.no_grad():
            x = frontend(_waves(batch, n, device))
        return {"x": x, "model": x}

    return FamilyCase(
        family,
        model,
        blackbox,
        frontend,
        {"bins": TFBins(frontend), "bands": Bands(frontend, n_bands=8, n_divisions=16)},
        inputs,
        explain=lambda b: model.explain(b["model"]),
        forward=lambda b: forward(b["model"]),
    )


def _nmf(device: torch.device) -> FamilyCase:
    clf, model = nmf_models(device)
    data = _config("data", "synth_events")
    return _spectrogram_case("nmf", data, model, clf, model, device)


def _emotion(device: torch.device) -> FamilyCase:
    torch.manual_seed(0)
    kwargs = _net_kwargs("emotion_midlevel")
    model = MidLevelEmotionModel(**kwargs).to(device).eval()
    blackbox = A2E(**kwargs).to(device).eval().backbone  # what the report explains
    data = _config("data", "synth_music")
    return _spectrogram_case("emotion", data, model, blackbox, model.forward_both, device)


def _heart(device: torch.device) -> FamilyCase:
    from evaluate.heart.report import BAND_EDGES_HZ, DIVISION_S

    data = _config("data", "heart_synth")
    sr, seconds = int(data["sample_rate"]), float(data["clip_seconds"])
    frontend = _frontend(data, device)
    torch.manual_seed(0)
    model = SegmentationAwareNet(
        sample_rate=sr, frame_rate=FRAME_RATE, **_net_kwargs("heart_segmentation")
    )
    model = model.to(device).eval()
    blackbox_cfg = _config("config", "blackbox_heart")["model"]["net"]
    blackbox = SpectrogramCNN(1, **{**_net_kwargs("cnn"), **blackbox_cfg}).to(device).eval()
    n = int(round(seconds * sr))
    frames = n // (sr // FRAME_RATE)
    # a 75 bpm cycle of S1, systole, S2, diastole (states 1-4), as the segmenter labels frames
    cycle = torch.tensor([1] * 6 + [2] * 10 + [3] * 5 + [4] * 19)
    states = cycle.repeat(frames // len(cycle) + 1)[:frames].to(device)
    with torch.no_grad():
        n_frames = frontend(_waves(1, n, device)).shape[-1]
    n_div = max(1, min(n_frames, int(round(seconds / DIVISION_S))))

    def inputs(batch: int) -> dict[str, Any]:
        wave = _waves(batch, n, device)
        with torch.no_grad():
            x = frontend(wave)
        return {"x": x, "model": wave, "states": states.expand(batch, -1)}

    return FamilyCase(
        "heart",
        model,
        blackbox,
        frontend,
        {
            "bins": TFBins(frontend),
            "bands": Bands(frontend, edges_hz=BAND_EDGES_HZ, n_divisions=n_div),
        },
        inputs,
        explain=lambda b: model.explain(b["model"], states=b["states"]),
        forward=lambda b: model(b["model"], b["states"]),
        target=0,
    )


def family_case(family: str, device: torch.device) -> FamilyCase:
    """The benchmark's view of ``family`` (one of ``FAMILIES``) on ``device``."""
    builders = {"nmf": _nmf, "emotion": _emotion, "heart": _heart}
    if family not in builders:
        raise ValueError(f"families: unknown {family!r}; known: {list(builders)}")
    return builders[family](device)
