"""Explain your own heart-sound recording with a trained ``heart_segmentation`` run.

    python -m evaluate.explain path/to/recording.wav run=<run dir>
        [seg=<segmentation.tsv>] [out=<dir>] [target=abnormal|normal] [fraction=0.5]

The recording is resampled to the run's rate and segmented by the run's Springer
segmenter (``segmenter.json``) unless ``seg=`` gives a CirCor-style segmentation. Writes
``figure.png``, ``explanation.wav`` (the recording gated to its relevant state spans),
``input.wav`` and ``explanation.json`` to ``out`` (default
``<run>/explanations/user/<recording name>/``) and prints the decision and the
per-state contributions.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import instantiate

from evaluate.cli_args import RUN, Option, choice, number, parse_file_and_options
from evaluate.cli_errors import run_cli
from evaluate.heart.scoring import explain_recording
from evaluate.runs import load_checkpoint
from interp_models.audio.io import check_audio_file, load_audio
from interp_models.data.physionet2016 import read_segmentation
from interp_models.heart.model import SegmentationAwareNet
from interp_models.heart.springer import SpringerSegmenter
from interp_models.heart.states import FRAME_RATE, STATE_NAMES

USAGE = __doc__.split("\n\n")[1]
OPTIONS = (
    RUN,
    Option("seg"),
    Option("out"),
    Option("target", choice("abnormal", "normal")),
    Option("fraction", number, default=0.5),
)


@dataclass
class HeartRun:
    run_dir: Path
    config: dict[str, Any]
    model: SegmentationAwareNet
    segmenter: SpringerSegmenter
    sample_rate: int


def load_heart_run(run_dir: str | Path) -> HeartRun:
    """The selected model (best checkpoint, explanation reference) and segmenter of a
    finished ``heart_segmentation`` run; checkpoints load with ``weights_only=True``."""
    run_dir = Path(run_dir).expanduser().resolve()
    files = [run_dir / f for f in ("config.yaml", "metrics.json", "segmenter.json")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"run: {run_dir} is not a finished heart run (no {missing[0]})")
    cfg = yaml.safe_load(files[0].read_text())
    metrics = json.loads(files[1].read_text())
    if "classifier" not in metrics or "explanation_reference" not in metrics:
        raise ValueError(f"run: {run_dir} is not a heart_segmentation run")
    sr = int(cfg["data"]["sample_rate"])
    net = instantiate(cfg["model"]["net"], sample_rate=sr, frame_rate=FRAME_RATE)
    ckpt = load_checkpoint(run_dir / metrics["classifier"]["best_checkpoint"])
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k[:4] == "net."}
    net.load_state_dict(state, strict=False)  # the reference is set below, not stored
    ref = metrics["explanation_reference"]
    net.set_reference(torch.tensor([ref[name] for name in STATE_NAMES]))
    net.eval()
    return HeartRun(run_dir, cfg, net, SpringerSegmenter.load(files[2]), sr)


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    recording, opts = parse_file_and_options(argv, OPTIONS, USAGE, noun="recording")
    target, fraction = opts["target"], opts["fraction"]
    check_audio_file(recording)
    run = load_heart_run(opts["run"])
    wave = load_audio(recording, run.sample_rate)
    n_frames = len(wave) // (run.sample_rate // FRAME_RATE)
    if opts["seg"] is not None:
        states = read_segmentation(opts["seg"]).to_frames(n_frames)
        source = str(opts["seg"])
    else:
        states = run.segmenter.segment(wave)
        source = "springer"
    out = Path(opts.get("out") or run.run_dir / "explanations" / "user" / recording.stem)
    info = explain_recording(
        run.model,
        wave,
        states,
        run.sample_rate,
        out,
        recording.stem,
        negate=None if target is None else target == "normal",
        fraction=fraction,
        meta={"recording": str(recording), "model": str(run.run_dir), "segmentation": source},
    )
    extra = info["meta"]
    print(f"P(abnormal) = {extra['probability_abnormal']:.3f}; explaining {extra['explained']}")
    for name, value in zip(STATE_NAMES, info["attribution"], strict=True):
        print(f"  {name:9s} {value:+.3f}")
    print(f"  baseline  {extra['bias']:+.3f}")
    for name in ("figure.png", "explanation.wav", "explanation.json", "input.wav"):
        print(f"  {out / name}")
    return out


if __name__ == "__main__":
    run_cli(main)
