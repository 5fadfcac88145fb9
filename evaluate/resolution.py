"""How the resolution of a band grouping changes post-hoc explanations and their scores.

    python -m evaluate.resolution run=<run> [methods=deeplift_shap,saliency,...]
        [bands=8,16] [divisions=16,32,64] [n_clips=20] [split=test] [out=<dir>]
        [device=auto|cpu|cuda] [seed=0]

On the first ``n_clips`` clips of the run's own ``split`` (the built-in event data: every
clip has a ground-truth event mask), each post-hoc ``method`` explains the classifier's
prediction over ``Bands`` of every resolution (``bands`` mel-spaced band counts x
``divisions`` time divisions; waveform runs: bands of an analysis STFT, as
``evaluate.attribute``), and every explanation is scored as the reports score them:

* faithfulness: deletion and insertion AUC (Petsiuk et al., "RISE", BMVC 2018) over the
  grouping's own bands, removed bands replaced by the grouping's baseline (the front end
  of silence), in 20 steps (``evaluate.metrics.perturbation_curves``, as the reports);
* localization: the share of positive relevance inside the ground-truth event mask
  (relevance mass accuracy, Arras et al., Information Fusion 2022;
  ``evaluate.metrics.relevance_mass_inside``), the band attribution spread over the bins
  of the grid the reports use (the run's log-mel grid; the analysis STFT's for waveform
  runs) and the mask taken on that grid (``evaluate.nmf.scoring.event_truths``);
* cost: seconds and model evaluations per clip.

A row ``random`` per resolution scores a uniformly random band attribution the same way
(chance). Means come with 95% normal-approximation half-widths over clips
(``evaluate.metrics.statistics.summarise``). Written to ``out`` (default
``<run>/resolution``): ``resolution.md`` (the table) and ``resolution.json`` (summaries and
per-clip values); the table is printed too.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluate.attribute import (
    ATTRIBUTION_METHODS,
    band_grouping,
    parse_divisions,
    positive_whole_number,
    resolve_device,
)
from evaluate.cli_args import RUN, Option, choice, names, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.metrics import perturbation_curves, relevance_mass_inside
from evaluate.metrics.statistics import summarise
from evaluate.nmf.scoring import event_truths
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import Bands
from evaluate.reporting.format import fmt, md_table
from evaluate.reporting.skeleton import jsonable
from evaluate.runs import LoadedRun, load_run, open_data

__all__ = ["COLUMNS", "DEFAULT_METHODS", "Resolution", "resolution_study", "resolution_table"]

USAGE = __doc__.split("\n\n")[1]
DEFAULT_METHODS = ("deeplift_shap", "saliency", "integrated_gradients", "kernel_shap")
RANDOM = "random"
#: (key, title, higher is better) of each scored column
COLUMNS = (
    ("deletion_auc", "deletion AUC", False),
    ("insertion_auc", "insertion AUC", True),
    ("mass_inside", "mass inside event mask", True),
    ("seconds", "s / clip", False),
    ("n_evals", "model evals / clip", False),
)


def _methods(text: str) -> tuple[str, ...]:
    chosen = names(text)
    unknown = [m for m in chosen if m not in ATTRIBUTION_METHODS]
    if not chosen or unknown:
        raise ValueError(f"must name methods among {list(ATTRIBUTION_METHODS)}")
    return chosen


OPTIONS = (
    RUN,
    Option("methods", _methods, default=DEFAULT_METHODS),
    Option("bands", parse_divisions, default=(8, 16)),
    Option("divisions", parse_divisions, default=(16, 32, 64)),
    Option("n_clips", positive_whole_number, default=20),
    Option("split", choice("test", "val"), default="test"),
    Option("out"),
    Option("device", choice("auto", "cpu", "cuda"), default="auto"),
    Option("seed", whole_number, default=0),
)


@dataclass
class Resolution:
    """One method at one resolution: per-clip scores and their summary."""

    method: str
    n_bands: int
    n_divisions: int
    per_clip: dict[str, list[float]] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, float]:
        return summarise(self.per_clip)


# ----------------------------------------------------------------------------- data


@dataclass
class _Clips:
    """The explained clips: model inputs, waves, targets, event masks and names."""

    x: torch.Tensor
    waves: torch.Tensor
    targets: torch.Tensor
    names: list[str]
    rows: np.ndarray
    data: Any


def _clips(run: LoadedRun, split: str, n_clips: int, device: torch.device) -> _Clips:
    dm = open_data(run.config, None, run.metrics["data"])
    rows = np.asarray(dm.split_indices[split][:n_clips])
    if len(rows) == 0:
        raise ValueError(f"split={split}: the run's {split} split is empty")
    x = dm.features["x"][rows].float().to(device)
    waves = torch.from_numpy(np.stack([np.asarray(dm.waves[int(j)]) for j in rows])).float()
    with torch.no_grad():
        targets = run.model(x).argmax(dim=1)  # the prediction, as every report explains
    stems = [Path(dm.records[int(j)].path).stem for j in rows]
    return _Clips(x, waves.to(device), targets, stems, rows, dm)


def _truth(clips: _Clips, grouping: Bands) -> torch.Tensor | None:
    """The event mask of every clip on the grid of ``grouping``'s maps (None: a clip has
    no mask, as on real data)."""
    bound = grouping.bind(clips.x[:1], clips.waves[:1])
    _, freqs, times = bound.to_map(torch.zeros(_group_shape(grouping), device=clips.x.device))
    truth = event_truths(clips.data, clips.rows, freqs.numpy(), times.numpy())
    return None if truth is None else truth[0].bool()


# ----------------------------------------------------------------------------- scoring


def score(
    model: torch.nn.Module,
    clips: _Clips,
    attribution: torch.Tensor,
    grouping: Bands,
    truth: torch.Tensor | None,
) -> dict[str, list[float]]:
    """Per-clip deletion and insertion AUC (over the grouping's bands, removed ones replaced
    by its baseline; 20 steps) and mass inside the event mask (``truth``, on the grouping's
    map grid) of a band ``attribution`` (clips, bands, divisions)."""
    out: dict[str, list[float]] = {"deletion_auc": [], "insertion_auc": [], "mass_inside": []}
    for i in range(len(clips.x)):
        bound = grouping.bind(clips.x[i : i + 1], clips.waves[i : i + 1])
        view = bound.view(model)
        target = int(clips.targets[i])
        curves = perturbation_curves(view.forward_groups, attribution[i], target, n_random=0)
        out["deletion_auc"].append(curves["deletion_auc"])
        out["insertion_auc"].append(curves["insertion_auc"])
        out["mass_inside"].append(_mass_inside(bound.to_map(attribution[i])[0], truth, i))
    return out


def _mass_inside(relevance: torch.Tensor, truth: torch.Tensor | None, i: int) -> float:
    """Relevance mass inside clip ``i``'s event mask; NaN where there is no mask."""
    if truth is None:
        return math.nan
    return float(relevance_mass_inside(relevance.float().cpu()[None], truth[i : i + 1])[0])


def _group_shape(grouping: Bands) -> tuple[int, int]:
    return len(grouping.edges_hz) - 1, grouping.n_divisions


def _explain(method: str, run: LoadedRun, clips: _Clips, grouping: Bands, seed: int):
    """(attribution, seconds per clip, model evaluations per clip) of ``method``;
    ``random``: a seeded uniformly random attribution (no cost)."""
    if method == RANDOM:
        g = torch.Generator().manual_seed(seed)
        shape = (len(clips.x), *_group_shape(grouping))
        return torch.rand(shape, generator=g).to(clips.x.device), 0.0, 0
    explainer = build_explainer(method, run.model, frontend=run.frontends["x"], seed=seed)
    e = explainer.attribute(clips.x, clips.targets, grouping=grouping, waves=clips.waves)
    return e.attribution.float(), float(e.seconds), int(e.n_evals)


def resolution_study(
    run: LoadedRun,
    methods: Sequence[str] = DEFAULT_METHODS,
    bands: Sequence[int] = (8, 16),
    divisions: Sequence[int] = (16, 32, 64),
    n_clips: int = 20,
    split: str = "test",
    seed: int = 0,
    log: Callable[[str], Any] = print,
) -> tuple[list[Resolution], list[str]]:
    """Explain and score the first ``n_clips`` clips of ``split`` with every method at every
    resolution (``bands`` x ``divisions``), plus the ``random`` reference; returns the
    results and the clip names."""
    device = next(run.model.parameters()).device
    run.frontends["x"] = run.frontends["x"].to(device)
    clips = _clips(run, split, n_clips, device)
    results = []
    for n_bands in bands:
        for n_div in divisions:
            grouping = band_grouping(run.frontends["x"], n_bands, n_div, seed)
            truth = _truth(clips, grouping)
            for method in (*methods, RANDOM):
                attr, seconds, n_evals = _explain(method, run, clips, grouping, seed)
                per_clip = score(run.model, clips, attr, grouping, truth)
                per_clip["seconds"] = [seconds] * len(attr)
                per_clip["n_evals"] = [float(n_evals)] * len(attr)
                results.append(Resolution(method, n_bands, n_div, per_clip))
                log(f"[resolution] {method} {n_bands}x{n_div}: done ({seconds:.3f} s/clip)")
    return results, clips.names


# ----------------------------------------------------------------------------- output


def resolution_table(results: Sequence[Resolution]) -> list[list[str]]:
    """Rows ``method | bands x divisions | <COLUMNS>`` (mean ± 95% half-width), by method in
    the order given, then resolution; header first."""
    header = ["method", "bands x divisions"]
    header += [f"{title} ({'↑' if up else '↓'})" for _, title, up in COLUMNS]
    order = list(dict.fromkeys(r.method for r in results))
    rows = [header]
    for r in sorted(results, key=lambda r: (order.index(r.method), r.n_bands, r.n_divisions)):
        s = r.summary
        cells = [_cell(s, key) for key, _, _ in COLUMNS]
        label = f"*{r.method}*" if r.method == RANDOM else f"`{r.method}`"
        rows.append([label, f"{r.n_bands} x {r.n_divisions}", *cells])
    return rows


def _cell(summary: dict[str, float], key: str) -> str:
    value = summary.get(key)
    if value is None or not math.isfinite(value):
        return "–"
    if key == "n_evals":
        return f"{value:.0f}"
    if key == "seconds":
        return f"{value:.3f}"
    return fmt(value, summary.get(f"{key}_ci95"))


def write_outputs(
    results: Sequence[Resolution], out: Path, run: LoadedRun, clips: list[str], opts: dict
) -> tuple[Path, Path, str]:
    """``resolution.md`` and ``resolution.json`` in ``out``; returns both and the table."""
    out.mkdir(parents=True, exist_ok=True)
    table = md_table(resolution_table(results))
    command = " ".join(
        ["python -m evaluate.resolution", f"run={run.run_dir}"]
        + [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in opts.items()]
    )
    md = [
        f"# Resolution study: {run.config.get('name', 'run')}/{run.run_dir.name}",
        "",
        f"`{command}`",
        "",
        f"{len(clips)} clips of the {opts['split']} split, each method explaining the "
        "classifier's prediction over mel-spaced bands x equal time divisions; deletion / "
        "insertion AUC over the grouping's own bands (removed "
        "bands: the front end of silence), mass inside the ground-truth event mask on the "
        "run's grid; mean ± 95% CI over clips; `random`: a random band attribution.",
        "",
        table,
        "",
    ]
    md_path, json_path = out / "resolution.md", out / "resolution.json"
    md_path.write_text("\n".join(md))
    record = {
        "run": str(run.run_dir),
        "command": command,
        "clips": clips,
        **opts,
        "results": [
            {
                "method": r.method,
                "n_bands": r.n_bands,
                "n_divisions": r.n_divisions,
                "summary": r.summary,
                "per_clip": r.per_clip,
            }
            for r in results
        ],
    }
    json_path.write_text(json.dumps(jsonable(record), indent=1, allow_nan=False) + "\n")
    return md_path, json_path, table


def main(argv: list[str] | None = None) -> Path:
    opts = parse_options(sys.argv[1:] if argv is None else argv, OPTIONS, USAGE)
    run = load_run(opts["run"], device=resolve_device(opts["device"]))
    study = {k: opts[k] for k in ("methods", "bands", "divisions", "n_clips", "split", "seed")}
    results, clips = resolution_study(
        run, log=lambda text: print(text, file=sys.stderr, flush=True), **study
    )
    out = Path(opts["out"]) if opts["out"] else run.run_dir / "resolution"
    md_path, json_path, table = write_outputs(results, out, run, clips, study)
    print(table)
    print(f"written: {md_path} and {json_path}")
    return md_path


if __name__ == "__main__":
    run_cli(main)
