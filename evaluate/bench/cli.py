"""Benchmarks: every figure a ratio of timings taken in the same run, on one device.

    python -m evaluate.bench [device=cpu|cuda] [out=benchmarks] [quick=true]
        [families=nmf,emotion,heart] [run=<trained NMF-interpreter run> [clips=20]]

Writes ``<out>/results.md`` and ``<out>/results.json`` (and with ``run=``,
``<out>/cost_vs_deletion.png``). Sections: explanation cost of every method of every
family at batch sizes 1, 8 and 32 against its limit (``evaluate.bench.explanation``);
with ``run=``, cost next to deletion AUC on that run's test clips; training throughput of
the NMF family's interpreter training step, dictionary learning, input pipeline and
scaling (``evaluate.bench.training``). Every family's training throughput is
``python -m train.bench`` (it runs the families' LightningModules, which ``evaluate`` does
not import). ``quick=true`` runs the same code at
small sizes (the tests). The options were ``--device``, ``--out``, ``--quick``, ``--run``
and ``--clips``; those still work, with a note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from evaluate.bench.explanation import bench_explanations
from evaluate.bench.models import FAMILIES
from evaluate.bench.quality import bench_quality_vs_cost, plot_cost_vs_deletion, quality_markdown
from evaluate.bench.report import explanation_markdown
from evaluate.bench.timing import device_name
from evaluate.bench.training import (
    bench_input_pipeline,
    bench_nmf,
    bench_scaling,
    bench_training_step,
    nmf_training_markdown,
)
from evaluate.cli_args import Option, boolean, legacy_flags, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.runs import load_run

__all__ = ["main", "to_markdown"]


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Device: **{results['device']}**; torch {results['torch']}; command: "
        f"`{results['command']}`.",
        "Each figure is a ratio of timings taken in the same run (medians after warm-up).",
        "",
        *explanation_markdown(results["explanation"]),
        *quality_markdown(results.get("quality")),
    ]
    if results.get("quality"):
        lines += ["![cost against deletion AUC](cost_vs_deletion.png)", ""]
    lines += [
        "Training throughput of every family: `python -m train.bench` (`benchmarks/training.md`).",
        "",
    ]
    if "nmf_training" in results:
        t = results["nmf_training"]
        lines += nmf_training_markdown(t["step"], t["dictionary"], t["input"], t["scaling"])
    return "\n".join(lines)


def _device(name: str) -> torch.device:
    """``device=``: a torch device this machine has."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError("must be a torch device (cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("must be cpu: CUDA is not available on this machine")
    return device


def _families(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"must be a comma-separated list of {', '.join(FAMILIES)}")
    return names


USAGE = __doc__.split("\n\n")[1]
OPTIONS = (
    Option("device", _device),  # default: cuda if available, else cpu
    Option("out", default="benchmarks"),
    Option("quick", boolean, default=False),  # small sizes (for tests)
    Option("families", _families, default=FAMILIES),
    Option("run"),  # a trained NMF-interpreter run: adds deletion AUC to the costs
    Option("clips", whole_number, default=20),  # test clips for run=
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = legacy_flags(sys.argv[1:] if argv is None else argv, flags=("quick",))
    args = SimpleNamespace(**parse_options(argv, OPTIONS, USAGE))
    if args.run:
        load_run(args.run)  # a bad run= fails now, not after the other sections
    device = args.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m evaluate.bench" + (" quick=true" if args.quick else "")
    if args.families != FAMILIES:
        command += f" families={','.join(args.families)}"
    if args.run:
        command += f" run={args.run} clips={args.clips}"
    results: dict[str, Any] = {
        "device": device_name(device),
        "torch": torch.__version__,
        "command": command,
        "explanation": bench_explanations(device, args.quick, args.families),
        "quality": bench_quality_vs_cost(args.run, args.clips) if args.run else None,
    }
    if "nmf" in args.families:
        batch = 8 if args.quick else 32
        results["nmf_training"] = {
            "step": bench_training_step(device, batch),
            "dictionary": bench_nmf(device, args.quick),
            "input": bench_input_pipeline(device, batch, args.quick),
            "scaling": bench_scaling(device, args.quick),
        }
    if results["quality"]:
        plot_cost_vs_deletion(results["quality"], out / "cost_vs_deletion.png")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(to_markdown(results))
    print((out / "results.md").read_text())
    return results


if __name__ == "__main__":
    run_cli(main)
