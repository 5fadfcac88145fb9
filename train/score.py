"""Score a finished run on another dataset: ``python -m train.score run=<run> ...``.

The first question after training is "does my model hold on these recordings?". This
command answers it without retraining: it loads the run's kept model (checkpoints with
``weights_only=True``: no pickled code), reads the other dataset through the run's own
reader, resampling and front end, applies the model, and writes
``<run>/scores/<name>/metrics.json`` with the same keys as the run's test metrics --
the classifier's figures come from Lightning's own test loop on the kept checkpoint,
the explanation figures from the family's scoring, wherever the data carries ground truth.

The other dataset is the run's ``data:`` section, or the preset ``data=<name>``
(``configs/data/<name>.yaml``), with ``data.<key>=<value>`` overrides; the keys that make
the model's input (sample rate, clip length, front end) are always the run's. Every item
of the dataset is scored (``split=all``, the default: the model was built on none of
them) or only its test folds (``split=test``). Class names that differ from the run's are
an error.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from omegaconf import OmegaConf

from evaluate.cli_args import RUN, Option, choice, parse_options
from evaluate.cli_errors import UsageError, run_cli
from evaluate.reporting.skeleton import jsonable
from evaluate.runs import OtherData, find_run_dir
from interp_models.families import family_of, hook
from train.datamodules import build_datamodule

USAGE = """usage: python -m train.score run=<run> [data=<preset>] [data.<key>=<value> ...]
                              [name=<label>] [split=all|test] [segmentation=springer|ground_truth]
                              [device=cpu|cuda]
Scores the run's kept model on another dataset (every item of it with split=all) and
writes <run>/scores/<name>/metrics.json with the keys of the run's test metrics.
  data=<preset>   configs/data/<preset>.yaml (default: the run's own data section)
  data.root=<dir> a dataset in the run's layout (e.g. data.root=/data/ESC-50-master)
  name=<label>    folder under <run>/scores (default: the preset, the root's name, or 'own')
  segmentation=   heart runs: the run's Springer segmenter (default) or the annotations
"""

OPTIONS = (
    RUN,
    Option("data", metavar="<preset>"),
    Option("name"),
    Option("split", choice("all", "test"), default="all"),
    Option("segmentation", choice("springer", "ground_truth")),
    Option("device", choice("cpu", "cuda"), default="cpu"),
)


def score(argv: list[str]) -> Path:
    """Parse ``argv``, score the run, write its ``metrics.json``; returns that file."""
    argv, overrides = OtherData.split_argv(argv)
    opts = parse_options(argv, OPTIONS, USAGE)
    other = OtherData(opts["data"], overrides, opts["split"])
    run_dir = find_run_dir(opts["run"])
    run_cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    family = family_of(run_cfg["pipeline"])
    name = opts["name"] or other.name
    if "/" in name or name in ("", ".", ".."):
        raise UsageError(f"name= must be a folder name, got {name!r}", USAGE)
    section = other.section(run_cfg)
    L.seed_everything(int(run_cfg.get("seed", 0)), workers=True, verbose=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no restore notes
    dm = build_datamodule(section, run_cfg.get("paths", {}).get("cache_dir"))
    dm.prepare_data()
    dm.setup()
    other.select(dm, run_metrics["data"])
    out_dir = run_dir / "scores" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = OmegaConf.create({**run_cfg, "data": section})
    figures = hook(family.score)(cfg, run_dir, run_metrics, dm, out_dir, opts)
    result = {
        "run": str(run_dir),
        "config": run_cfg.get("name"),
        "pipeline": run_cfg["pipeline"],
        "name": name,
        "split": opts["split"],
        "n_items": len(dm.split_indices["test"]),
        "data_overrides": {"preset": opts["data"], **overrides},
        **figures,
        "data": dm.summary(),
        "scored": datetime.now().isoformat(timespec="seconds"),
    }
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(jsonable(result), indent=2) + "\n")
    print(f"{run_dir.name} on {name} ({len(dm.split_indices['test'])} items): {summary(figures)}")
    print(f"  scores: {path}", flush=True)
    return path


def summary(figures: dict[str, Any]) -> str:
    """One line: the first figures of each stage's test metrics (no CIs, losses,
    per-output or per-class values)."""
    stages = [("test", figures["test"])] if isinstance(figures.get("test"), dict) else []
    stages += [
        (stage, values["test"])
        for stage, values in figures.items()
        if stage != "per_output"
        and isinstance(values, dict)
        and isinstance(values.get("test"), dict)
    ]
    parts = []
    for stage, test in stages:
        keep = [
            f"{k}={v:.3f}"
            for k, v in test.items()
            if isinstance(v, float)
            and not k.endswith(("_ci95", "_lo", "_hi"))
            and "loss" not in k
            and "/" not in k
            and not re.search(r"_\d+$", k)  # per-output values
        ]
        parts.append(f"{stage}: " + ", ".join(keep[:4]))
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> Path:
    return score(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run_cli(main)
