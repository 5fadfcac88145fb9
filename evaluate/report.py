"""Intrinsic versus post-hoc: the report of a finished run, by its family.

    python -m evaluate.report run=<run_dir> [run=<run_dir> ...] [blackbox=<run_dir>]
        [out=<dir>] [n_clips=N] [methods=a,b,...] [figure_clip=i] [n_random=R]

The run's ``pipeline`` names its family (``interp_models.families``), whose report hook
does the work: ``evaluate.nmf.report`` (one or more NMF runs; the black box is the run's
own classifier), ``evaluate.emotion.report`` and ``evaluate.heart.report`` (one run and the
black box trained beside it, ``blackbox=``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from evaluate.cli_errors import UsageError, run_cli
from evaluate.posthoc import COMPARED
from interp_models.families import family_of, hook

USAGE = (
    "python -m evaluate.report run=<run_dir> [run=<run_dir> ...] [blackbox=<run_dir>] "
    "[out=<dir>] [n_clips=N] [methods=a,b,...] [figure_clip=i] [n_random=R]"
)


def _parse(argv: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"run": [], "out": None, "n_clips": 20, "methods": COMPARED}
    opts.update(blackbox=None, figure_clip=0, n_random=4)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in opts:
            raise UsageError(f"evaluate.report: bad argument {arg!r}", USAGE)
        if key == "run":
            opts["run"].append(value)
        elif key in ("n_clips", "figure_clip", "n_random"):
            if not value.isdigit():
                raise UsageError(f"evaluate.report: {key}= must be a whole number, got {value!r}")
            opts[key] = int(value)
        elif key == "methods":
            opts[key] = tuple(m for m in value.split(",") if m)
        else:
            opts[key] = value
    if not opts["run"]:
        raise SystemExit("evaluate.report: give at least one run=<run_dir>")
    return opts


def _pipeline_of(run_dir: str | Path) -> str:
    path = Path(run_dir).expanduser() / "config.yaml"
    if not path.is_file():
        raise SystemExit(f"evaluate.report: {path} not found; run= must name a finished run")
    return str(yaml.safe_load(path.read_text()).get("pipeline", ""))


def main(argv: list[str] | None = None) -> dict[str, Path]:
    opts = _parse(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    family = family_of(_pipeline_of(opts["run"][0]))
    if family.report is None:
        raise SystemExit(
            f"evaluate.report: {opts['run'][0]} is a {family.name} run, which has no report "
            "of its own; give it as blackbox= beside the by-design run it is compared with"
        )
    paths = hook(family.report)(opts)
    print(
        f"[report] wrote {paths['html']} and {paths['md']} in {time.perf_counter() - start:.0f} s"
    )
    return paths


if __name__ == "__main__":
    run_cli(main)
