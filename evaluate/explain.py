"""Explain your own clip with a trained run of any family.

    python -m evaluate.explain path/to/clip.wav run=<run dir> [out=<dir>] [<family options>]

The run's ``pipeline`` (in its ``config.yaml``) names its family
(``interp_models.families``), whose explain command does the work and takes that family's
options besides ``run=`` and ``out=``:

- NMF interpreter (``evaluate.nmf.explain``): ``[target=<class name or index>]
  [threshold=0.2]``; ``run=`` may also name one checkpoint of the run;
- mid-level emotion (``evaluate.emotion.explain``): ``[emotion=<name or index>]``;
- heart sounds (``evaluate.heart.explain``): ``[seg=<segmentation.tsv>]
  [target=abnormal|normal] [fraction=0.5]``.

Each writes its files to ``out`` (default ``<run>/explanations/user/<clip name>/``) and
prints where they are. ``ckpt=`` is the old name of ``run=``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml

from evaluate.cli_args import RUN, Option, parse_options
from evaluate.cli_errors import run_cli
from evaluate.runs import find_run_dir
from interp_models.audio.io import check_audio_file
from interp_models.families import FAMILIES, family_of, hook

USAGE = __doc__.split("\n\n")[1]


def family_options() -> dict[str, tuple[Option, ...]]:
    """The options of each family's explain command (its module's ``OPTIONS``), by family."""
    return {
        f.name: importlib.import_module(f.explain.partition(":")[0]).OPTIONS
        for f in FAMILIES.values()
        if f.explain is not None
    }


def main(argv: list[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    keys = {o.name for options in family_options().values() for o in options}
    opts = parse_options(argv, (RUN,), USAGE, file="clip", allow=sorted(keys - {RUN.name}))
    check_audio_file(opts["file"])
    run_dir = find_run_dir(opts["run"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    family = family_of(config.get("pipeline", ""))
    if family.explain is None:
        raise SystemExit(
            f"run: {run_dir} is a {family.name} run, which has no intrinsic explanation "
            "(explain it post hoc: evaluate.posthoc)"
        )
    run_names = {RUN.name, *RUN.old_names}
    rest = [a for a in argv if "=" in a and a.partition("=")[0] not in run_names]
    return hook(family.explain)([str(opts["file"]), f"run={opts['run']}", *rest])


if __name__ == "__main__":
    run_cli(main)
