"""Explain your own clip with a trained NMF-interpreter run.

    python -m evaluate.explain path/to/clip.wav run=<run dir or .ckpt> [out=<dir>]
        [target=<class name or index>] [threshold=0.2]

Writes ``input.wav``, ``explanation.wav`` (what the relevant components hear),
``figure.png`` and ``explanation.json`` to ``out`` (default
``<run>/explanations/user/<clip name>/``) and prints where they are.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from evaluate.cli_args import RUN, Option, index_option, number, parse_file_and_options
from evaluate.cli_errors import run_cli
from evaluate.nmf.scoring import explain_clip
from evaluate.runs import load_run, read_clip
from interp_models.audio.io import check_audio_file
from interp_models.nmf.interpreter import NMFInterpreter

USAGE = __doc__.split("\n\n")[1]
OPTIONS = (RUN, Option("out"), Option("target"), Option("threshold", number, default=0.2))


def parse(argv: list[str]) -> tuple[Path, dict[str, Any]]:
    return parse_file_and_options(argv, OPTIONS, USAGE)


def main(argv: list[str] | None = None) -> Path:
    clip, opts = parse(sys.argv[1:] if argv is None else argv)
    check_audio_file(clip)
    run = load_run(opts["run"])
    if not isinstance(run.model, NMFInterpreter):
        raise SystemExit(f"run: {run.run_dir} is not an NMF-interpreter run")
    wave = read_clip(clip, run.config["data"], crop=False)  # padded to the trained length
    target = index_option(opts, "target", run.class_names)
    threshold = opts["threshold"]
    out = Path(opts.get("out") or run.run_dir / "explanations" / "user" / clip.stem)
    record = explain_clip(
        run.model,
        torch.from_numpy(wave),
        run.frontends["x"],
        run.frontends["spec"],
        out,
        run.class_names,
        threshold=threshold,
        target=target,
        meta={"input_file": str(clip), "model": str(run.run_dir)},
    )
    extra = record["meta"]
    print(f"classifier prediction: {extra['classifier_prediction']}")
    print(
        f"explained class: {extra['class_name']}; relevant components: "
        f"{extra['relevant_components']}"
    )
    for name in ("explanation.wav", "figure.png", "explanation.json", "input.wav"):
        print(f"  {out / name}")
    return out


if __name__ == "__main__":
    run_cli(main)
