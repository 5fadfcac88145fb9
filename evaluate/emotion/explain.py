"""Explain your own music clip with a trained A2Mid2E run.

    python -m evaluate.explain path/to/clip.wav run=<run dir> [out=<dir>]
        [emotion=<name or index>]

Writes ``effects.png`` (effects of the seven qualities on the emotion) and
``explanation.json`` (``interp_models.explanation``'s schema: the effects on the emotion;
under ``meta`` predicted qualities and emotions on their rating scales, effects and
relative effects for every emotion) to ``out`` (default
``<run>/explanations/user/<clip name>/``) and prints where they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from evaluate.cli_args import RUN, Option, index_option, parse_file_and_options
from evaluate.cli_errors import run_cli
from evaluate.emotion.figures import plot_effect_bars
from evaluate.emotion.runs import load_emotion_run
from interp_models.audio.io import check_audio_file, load_audio
from interp_models.emotion.models import MidLevelEmotionModel
from interp_models.explanation import write_explanation_json

USAGE = __doc__.split("\n\n")[1]
OPTIONS = (RUN, Option("out"), Option("emotion"))


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    clip, opts = parse_file_and_options(argv, OPTIONS, USAGE)
    check_audio_file(clip)
    run = load_emotion_run(opts["run"])
    if not isinstance(run.model, MidLevelEmotionModel):
        raise SystemExit(f"run: {run.run_dir} is a black-box (A2E) run: no intrinsic explanation")
    data = run.config["data"]
    wave = load_audio(
        clip, data["sample_rate"], int(round(data["clip_seconds"] * data["sample_rate"]))
    )
    x = run.frontend(torch.from_numpy(wave))
    target = index_option(opts, "emotion", run.emotions)
    ex = run.model.explain(x, target=target)
    t = int(ex.target[0])
    out = Path(opts.get("out") or run.run_dir / "explanations" / "user" / clip.stem)
    plot_effect_bars(
        ex.attribution[0].numpy(),
        run.qualities,
        f"{clip.name}: effects on {run.emotions[t]}",
        out / "effects.png",
        prediction=float(ex.maps["emotions"][0, t]),
    )
    m = run.model
    meta = {
        "input_file": str(clip),
        "model": str(run.run_dir),
        "explained_emotion": run.emotions[t],
        "qualities": dict(
            zip(
                run.qualities,
                m.to_ratings(ex.maps["qualities"], "quality")[0].tolist(),
                strict=True,
            )
        ),
        "emotions": dict(
            zip(run.emotions, m.to_ratings(ex.maps["emotions"], "emotion")[0].tolist(), strict=True)
        ),
        "effects_z": {
            e: dict(zip(run.qualities, ex.maps["effects"][0, i].tolist(), strict=True))
            for i, e in enumerate(run.emotions)
        },
        "relative_effects": {
            e: dict(zip(run.qualities, ex.maps["relative_effects"][0, i].tolist(), strict=True))
            for i, e in enumerate(run.emotions)
        },
    }
    write_explanation_json(out / "explanation.json", ex, 0, **meta)
    top = max(meta["effects_z"][run.emotions[t]].items(), key=lambda kv: abs(kv[1]))
    print(f"explained emotion: {run.emotions[t]}; largest effect: {top[0]} ({top[1]:+.2f})")
    for name in ("effects.png", "explanation.json"):
        print(f"  {out / name}")
    return out


if __name__ == "__main__":
    run_cli(main)
