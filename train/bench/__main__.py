"""Training throughput of every family against its input pipeline.

    python -m train.bench [device=cpu|cuda] [out=benchmarks] [quick=true]
        [families=nmf,emotion,heart]

Writes ``<out>/training.md`` and ``<out>/training.json`` (``train.bench.families``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from evaluate.bench.cli import OPTIONS as BENCH_OPTIONS
from evaluate.bench.timing import device_name
from evaluate.cli_args import parse_options
from evaluate.cli_errors import run_cli
from train.bench.families import bench_family_training, training_markdown

USAGE = __doc__.split("\n\n")[1]
OPTIONS = tuple(o for o in BENCH_OPTIONS if o.name in ("device", "out", "quick", "families"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = SimpleNamespace(**parse_options(sys.argv[1:] if argv is None else argv, OPTIONS, USAGE))
    device = args.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {
        "device": device_name(device),
        "torch": torch.__version__,
        "command": "python -m train.bench" + (" quick=true" if args.quick else ""),
        "families": {f: bench_family_training(f, device, args.quick) for f in args.families},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        [
            "# Training benchmarks",
            "",
            f"Device: **{results['device']}**; torch {results['torch']}; command: "
            f"`{results['command']}`.",
            "",
            *training_markdown(results["families"]),
        ]
    )
    (out / "training.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "training.md").write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    run_cli(main)
