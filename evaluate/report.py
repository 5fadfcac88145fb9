"""Intrinsic versus post-hoc: the report of a finished run, by its family.

    python -m evaluate.report run=<run_dir> [run=<run_dir> ...] [blackbox=<run_dir>]
        [out=<dir>] [n_clips=N] [methods=a,b,...] [figure_clip=i] [n_random=R]
        [data=<preset>] [data.<key>=<value> ...] [split=all|test]
        [sanity=true|false] [sanity_clips=8] [sanity_draws=5] [sanity_radius=0.1]

The run's ``pipeline`` names its family (``interp_models.families``), whose report hook
does the work: ``evaluate.nmf.report`` (one or more NMF runs; the black box is the run's
own classifier), ``evaluate.emotion.report`` and ``evaluate.heart.report`` (one run and the
black box trained beside it, ``blackbox=``).

``data=<preset>`` / ``data.<key>=<value>`` explain the runs on other data, read with each
run's own front end (``evaluate.runs.OtherData``, as ``python -m train.score``): every
item of it (``split=all``, the default) or its test folds; the report goes to
``<run>/report-<name>``.

Every report ends with the robustness and randomisation checks of every explanation
(``evaluate.reporting.sanity``: average sensitivity under ``sanity_draws`` noisy copies of
half-width ``sanity_radius`` clip standard deviations, cascading model-parameter
randomisation) on its first ``sanity_clips`` clips; ``sanity=false`` skips them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from evaluate.cli_args import Option, boolean, choice, names, number, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.posthoc import COMPARED
from evaluate.reporting.sanity import DEFAULT_CLIPS, DEFAULT_DRAWS, DEFAULT_RADIUS
from evaluate.reporting.skeleton import ReportRequest
from evaluate.runs import OtherData
from interp_models.families import family_of, hook

USAGE = (
    "python -m evaluate.report run=<run_dir> [run=<run_dir> ...] [blackbox=<run_dir>] "
    "[out=<dir>] [n_clips=N] [methods=a,b,...] [figure_clip=i] [n_random=R] "
    "[data=<preset>] [data.<key>=<value> ...] [split=all|test] "
    "[sanity=true|false] [sanity_clips=N] [sanity_draws=N] [sanity_radius=R]"
)


OPTIONS = (
    Option("run", required=True, repeat=True, metavar="<run_dir>"),
    Option("blackbox"),
    Option("out"),
    Option("n_clips", whole_number, default=20),
    Option("methods", names, default=COMPARED),
    Option("figure_clip", whole_number, default=0),
    Option("n_random", whole_number, default=4),
    Option("data", metavar="<preset>"),
    Option("split", choice("all", "test"), default="all"),
    Option("sanity", boolean, default=True),
    Option("sanity_clips", whole_number, default=DEFAULT_CLIPS),
    Option("sanity_draws", whole_number, default=DEFAULT_DRAWS),
    Option("sanity_radius", number, default=DEFAULT_RADIUS),
)


def _parse(argv: list[str]) -> dict[str, Any]:
    argv, overrides = OtherData.split_argv(argv)
    opts = parse_options(argv, OPTIONS, USAGE)
    other = opts["data"] is not None or overrides
    opts["data"] = OtherData(opts["data"], overrides, opts["split"]) if other else None
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
    request = ReportRequest(
        runs=tuple(Path(r) for r in opts["run"]),
        blackbox=Path(opts["blackbox"]) if opts["blackbox"] else None,
        out=Path(opts["out"]) if opts["out"] else None,
        n_clips=opts["n_clips"],
        methods=tuple(opts["methods"]),
        figure_clip=opts["figure_clip"],
        n_random=opts["n_random"],
        data=opts["data"],
        sanity=opts["sanity"],
        sanity_clips=opts["sanity_clips"],
        sanity_draws=opts["sanity_draws"],
        sanity_radius=opts["sanity_radius"],
    )
    paths = hook(family.report)(request)
    print(
        f"[report] wrote {paths['html']} and {paths['md']} in {time.perf_counter() - start:.0f} s"
    )
    return paths


if __name__ == "__main__":
    run_cli(main)
