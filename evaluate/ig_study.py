"""Which start and path for Integrated Gradients on audio? Every variant on one split.

    python -m evaluate.ig_study run=<black-box run> [n_clips=20] [split=val|test]
        [out=<dir>] [n_steps=32] [seed=0]

Every IG variant of ``evaluate.posthoc.ig_baselines`` (baseline x path; waveform models:
the baselines that are waveforms, on their one path) explains the run's prediction on the
first ``n_clips`` clips of ``split`` (single input bins, ``TFBins``; for waveform models
samples carried to an STFT by DFT-LRP) and is scored as the reports score every method
(``evaluate.nmf.report``):

* localization: positive relevance mass inside the ground-truth event mask and its box
  (``relevance_mass_inside``, Arras et al. 2022), on the map's grid;
* faithfulness: deletion and insertion AUC over 8 bands x 16 divisions, removed bands
  replaced by silence (the reports' ``Bands`` grouping; Petsiuk et al. 2018), and the
  deletion AUC when removed bands become the clip's noise floor instead (spectrogram
  models; a check that silence removal does not favour the silence baseline);
* diagnostics: the target's probability at the baseline, completeness gap
  ``|sum(a) - (f(x) - f(x'))| / |f(x) - f(x')|`` (logit), seconds per clip.

Means with 95% half-widths over clips (``evaluate.metrics.statistics``). Written to
``out`` (default ``<run>/ig_baselines/<split>/``): ``ig_baselines.md`` and
``ig_baselines.json`` (per-clip values; strict JSON, ``null`` for what has no value).

The default of ``integrated_gradients`` was chosen with :data:`RULE`, fixed before the
study was run, on the validation split of the built-in events; the test split reports it.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluate.cli_args import RUN, Option, choice, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.metrics import perturbation_curves, relevance_mass_inside
from evaluate.metrics.statistics import summarise
from evaluate.nmf.scoring import event_truths
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import Bands, Samples, TFBins
from evaluate.posthoc.ig_baselines import BASELINES, WAVEFORM_STARTS, ig_start
from evaluate.runs import load_run, open_data
from interp_models.audio.features import Spectrogram, Waveform

__all__ = ["RULE", "main", "markdown", "paired", "pick", "study", "variants"]

USAGE = """\
python -m evaluate.ig_study run=<black-box run> [n_clips=20] [split=val|test] [out=<dir>]
    [n_steps=32] [seed=0]"""
OPTIONS = (
    RUN,
    Option("n_clips", whole_number, 20),
    Option("split", choice("val", "test"), "val"),
    Option("out"),
    Option("n_steps", whole_number, 32),
    Option("seed", whole_number, 0),
)

N_BANDS, N_DIVISIONS = 8, 16
#: Analysis STFT of waveform models (maps, masks and bands on its grid).
WAVE_STFT = {"n_fft": 1024, "hop_length": 256}

RULE = (
    "on the validation split, rank the variants by mean mass inside the event mask "
    "(higher is better) and by mean deletion AUC with silence removal (lower is better); "
    "the default is the variant with the lowest sum of the two ranks among those that "
    "need no waveform (so it serves every caller); ties go to the lower deletion AUC, "
    "then to the earlier variant in the table (silence / input, the previous default, first)"
)
#: The metrics the rule ranks by, and the previous default the table compares with.
RULE_METRICS = ("mass_inside", "deletion_auc")
PREVIOUS = "silence / input"
#: Variants that need the clips' audio (not eligible as the default).
NEEDS_WAVES = frozenset({("noise_floor", "waveform")})


def variants(waveform_model: bool) -> list[tuple[str, str]]:
    """(baseline, path) of every variant: spectrogram models every baseline on the input
    path and the waveform starts on the waveform path; waveform models the waveform starts
    (``zeros`` is silence there, ``blur`` is defined on spectrograms)."""
    if waveform_model:
        return [(b, "input") for b in WAVEFORM_STARTS]
    return [(b, "input") for b in BASELINES] + [(b, "waveform") for b in WAVEFORM_STARTS]


def name_of(variant: tuple[str, str]) -> str:
    return f"{variant[0]} / {variant[1]}"


def pick(summaries: dict[str, dict[str, float]], eligible: Sequence[str]) -> str:
    """The variant :data:`RULE` chooses among ``eligible`` (names, in table order)."""

    def ranks(key: str, higher: bool) -> dict[str, int]:
        """1 + the number of variants strictly better (equal values share a rank)."""
        sign = -1.0 if higher else 1.0
        value = {n: sign * summaries[n][key] for n in eligible}
        return {n: 1 + sum(value[m] < value[n] for m in eligible) for n in eligible}

    mass, deletion = ranks("mass_inside", True), ranks("deletion_auc", False)
    return min(
        eligible,
        key=lambda n: (mass[n] + deletion[n], summaries[n]["deletion_auc"], eligible.index(n)),
    )


# ----------------------------------------------------------------------------- data


def _clips(run, split: str, n_clips: int):
    dm = open_data(run.config)
    rows = dm.split_indices[split][:n_clips]
    if len(rows) == 0:
        raise ValueError(f"{run.run_dir}: the {split} split is empty")
    x = dm.features["x"][rows].float()
    waves = torch.from_numpy(np.stack([np.asarray(dm.waves[int(j)]) for j in rows])).float()
    stems = [Path(dm.records[int(j)].path).stem for j in rows]
    return dm, rows, x, waves, stems


def _grid(frontend: nn.Module, x: torch.Tensor, waves: torch.Tensor):
    """(map grid's freqs, times) and the grouping explained: the front end's grid for
    spectrogram models, an analysis STFT's (DFT-LRP) for waveform models."""
    if x.dim() == 2:
        stft = Spectrogram(int(frontend.sample_rate), **WAVE_STFT)
        n_frames = stft(waves[:1]).shape[-1]
        grid = stft.frequencies().numpy(), stft.frame_times(n_frames).numpy()
        return grid, Samples(stft=stft), stft
    grid = frontend.frequencies().cpu().numpy(), frontend.frame_times(x.shape[-1]).cpu().numpy()
    return grid, TFBins(frontend), frontend


# ----------------------------------------------------------------------------- scoring


def _clip_scores(
    model: nn.Module,
    bands: Bands,
    x: torch.Tensor,
    input_attr: torch.Tensor,
    rel_map: torch.Tensor,
    target: int,
    truth: tuple[torch.Tensor, torch.Tensor],
    noise_removal: torch.Tensor | None,
) -> dict[str, float]:
    """One clip's localization and deletion / insertion scores (``x`` (1, ...))."""
    bound = bands.bind(x)
    band_attr = bound.from_input_map(input_attr[None])
    view = bound.view(model)
    curves = perturbation_curves(view.forward_groups, band_attr, target, 20, 0, "prob")
    values = {"deletion_auc": curves["deletion_auc"], "insertion_auc": curves["insertion_auc"]}
    if noise_removal is not None:
        noisy = replace(view, baseline=noise_removal)
        values["deletion_auc_noise"] = perturbation_curves(
            noisy.forward_groups, band_attr, target, 20, 0, "prob"
        )["deletion_auc"]
    for key, region in zip(("mass_inside", "mass_inside_box"), truth, strict=True):
        values[key] = float(relevance_mass_inside(rel_map[None], region[None])[0])
    return values


def _reference(model, bands, x_all, targets, truth, seed: int) -> dict[str, list[float]]:
    """Chance: random deletion / insertion orders and the mask's area (a uniform map)."""
    out: dict[str, list[float]] = defaultdict(list)
    for i in range(len(x_all)):
        view = bands.bind(x_all[i : i + 1]).view(model)
        gen = torch.Generator().manual_seed(seed + i)
        attr = torch.zeros(view.group_shape)
        curves = perturbation_curves(view.forward_groups, attr, int(targets[i]), 20, 2, "prob", gen)
        out["deletion_auc"].append(curves["deletion_auc_random"])
        out["insertion_auc"].append(curves["insertion_auc_random"])
        out["mass_inside"].append(float(truth[0][i].float().mean()))
        out["mass_inside_box"].append(float(truth[1][i].float().mean()))
    return out


def _score_variant(ctx: dict[str, Any], variant: tuple[str, str], n_steps: int, seed: int):
    """Explain every clip with one variant and score it: per-clip values."""
    model, frontend, x_all, waves = ctx["model"], ctx["frontend"], ctx["x"], ctx["waves"]
    targets, truth = ctx["targets"], ctx["truth"]
    explainer = build_explainer(
        "integrated_gradients",
        model,
        frontend=None if x_all.dim() == 2 else frontend,
        seed=seed,
        n_steps=n_steps,
        baseline=variant[0],
        path=variant[1],
    )
    e = explainer.attribute(x_all, targets, grouping=ctx["grouping"], waves=waves)
    seeds = [seed + i for i in range(len(x_all))]
    start = ig_start(ctx["ig_frontend"], x_all, explainer.opts, seeds)
    with torch.no_grad():
        f_x, f_start = model(x_all), model(start)
    per_clip: dict[str, list[float]] = defaultdict(list)
    for i in range(len(x_all)):
        t = int(targets[i])
        values = _clip_scores(
            model,
            ctx["bands"],
            x_all[i : i + 1],
            e.maps["input_attribution"][i],
            e.maps["relevance_map"][i].float(),
            t,
            (truth[0][i], truth[1][i]),
            None if ctx["noise"] is None else ctx["noise"][i : i + 1],
        )
        drop = float(f_x[i, t] - f_start[i, t])
        gap = abs(float(e.attribution[i].sum()) - drop)
        values["completeness_gap"] = gap / abs(drop) if drop != 0 else float("nan")
        values["p_baseline"] = float(torch.softmax(f_start[i], dim=0)[t])
        values["seconds"] = float(e.seconds)
        for key, value in values.items():
            per_clip[key].append(value)
    return per_clip


# ----------------------------------------------------------------------------- study


def study(
    run_dir: str | Path,
    split: str = "val",
    n_clips: int = 20,
    n_steps: int = 32,
    seed: int = 0,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score every IG variant on ``split`` of a black-box run; write the Markdown and JSON
    files and return the JSON record."""
    run = load_run(run_dir)
    if run.config["pipeline"] != "supervised":
        raise ValueError(f"{run.run_dir}: not a black-box run (pipeline {run.config['pipeline']})")
    frontend = run.frontends["x"]
    model = run.model.eval()
    dm, rows, x_all, waves, stems = _clips(run, split, n_clips)
    waveform_model = isinstance(frontend, Waveform) or x_all.dim() == 2
    (freqs, times), grouping, band_frontend = _grid(frontend, x_all, waves)
    truth = event_truths(dm, rows, freqs, times)
    if truth is None:
        raise ValueError(
            f"{run.run_dir}: the {split} clips have no ground-truth event masks; the study "
            "scores localization on the built-in events"
        )
    truth = tuple(t.bool() for t in truth)
    with torch.no_grad():
        targets = model(x_all).argmax(1)
    ig_frontend = grouping.stft if waveform_model else frontend
    defaults = build_explainer("integrated_gradients", model).opts
    noise = None
    if not waveform_model:  # removal to the clip's noise floor (the noise_floor baseline)
        opts = {**defaults, "baseline": "noise_floor"}
        noise = ig_start(frontend, x_all, opts, [seed + i for i in range(len(x_all))])
    ctx = {
        "model": model,
        "frontend": frontend,
        "ig_frontend": ig_frontend,
        "x": x_all,
        "waves": waves,
        "targets": targets,
        "truth": truth,
        "grouping": grouping,
        "bands": Bands(band_frontend, n_bands=N_BANDS, n_divisions=N_DIVISIONS),
        "noise": noise,
    }
    results: dict[str, Any] = {}
    for variant in variants(waveform_model):
        per_clip = _score_variant(ctx, variant, n_steps, seed)
        results[name_of(variant)] = {
            "baseline": variant[0],
            "path": variant[1],
            "needs_waves": variant in NEEDS_WAVES,
            "summary": summarise(per_clip),
            "per_clip": dict(per_clip),
        }
        s = results[name_of(variant)]["summary"]
        log(
            f"[ig_study] {name_of(variant)}: mass inside {s['mass_inside']:.3f}, "
            f"deletion AUC {s['deletion_auc']:.3f}, {s['seconds']:.3f} s/clip"
        )
    reference = _reference(model, ctx["bands"], x_all, targets, truth, seed)
    eligible = [n for n, r in results.items() if not r["needs_waves"]]
    chosen = pick({n: r["summary"] for n, r in results.items()}, eligible)
    record: dict[str, Any] = {
        "run": str(run.run_dir),
        "split": split,
        "n_clips": len(rows),
        "n_steps": n_steps,
        "seed": seed,
        "model_input": frontend.settings(),
        "grouping": grouping.describe(),
        "deletion_grouping": ctx["bands"].describe(),
        "rule": RULE,
        "pick": chosen,
        "current_default": name_of((defaults["baseline"], defaults["path"])),
        "variants": results,
        "reference": {"summary": summarise(reference), "per_clip": dict(reference)},
        "clips": stems,
        "command": _command(run.run_dir, split, len(rows), n_steps, seed),
    }
    record["paired_vs_previous_default"] = paired(record)
    out = Path(out) if out else run.run_dir / "ig_baselines" / split
    out.mkdir(parents=True, exist_ok=True)
    (out / "ig_baselines.json").write_text(json.dumps(_strict(record), indent=1, allow_nan=False))
    (out / "ig_baselines.md").write_text(markdown(record))
    log(f"[ig_study] pick by the rule: {chosen}; wrote {out / 'ig_baselines.md'}")
    return record


def _command(run_dir: Path, split: str, n_clips: int, n_steps: int, seed: int) -> str:
    try:
        shown = run_dir.relative_to(Path.cwd())
    except ValueError:
        shown = run_dir
    return (
        f"python -m evaluate.ig_study run={shown} split={split} n_clips={n_clips}"
        f" n_steps={n_steps} seed={seed}"
    )


def paired(record: dict[str, Any], against: str = PREVIOUS) -> dict[str, dict[str, float]]:
    """Per variant, the mean and 95% half-width of its per-clip difference from ``against``
    (the same clips) in the two metrics of the rule."""
    base = record["variants"][against]["per_clip"]
    out = {}
    for name, r in record["variants"].items():
        diffs = {
            key: [a - b for a, b in zip(r["per_clip"][key], base[key], strict=True)]
            for key in RULE_METRICS
        }
        out[name] = summarise(diffs)
    return out


def _strict(value: Any) -> Any:
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- markdown

COLUMNS = (
    ("mass_inside", "mass inside event mask ↑"),
    ("mass_inside_box", "mass inside event box ↑"),
    ("deletion_auc", "deletion AUC ↓ (silence)"),
    ("deletion_auc_noise", "deletion AUC ↓ (noise floor)"),
    ("insertion_auc", "insertion AUC ↑"),
    ("p_baseline", "p(target) at baseline"),
    ("completeness_gap", "completeness gap"),
    ("seconds", "s / clip"),
)


def _cell(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    if value is None or not math.isfinite(value):
        return ""
    ci = summary.get(f"{key}_ci95")
    if key == "seconds" or ci is None:
        return f"{value:.3f}"
    return f"{value:.3f} ± {ci:.3f}"


def markdown(record: dict[str, Any]) -> str:
    """The study as Markdown: settings, the table (with paired differences from the
    previous default), the rule and its pick."""
    keys = [k for k, _ in COLUMNS if any(k in r["summary"] for r in record["variants"].values())]
    titles = [dict(COLUMNS)[k] for k in keys]
    diffs = paired(record) if PREVIOUS in record["variants"] else {}
    if diffs:
        titles += ["Δ mass inside (paired)", "Δ deletion AUC (paired)"]
    lines = [
        f"# Integrated Gradients baselines and paths ({record['split']} split)",
        "",
        f"`{record['command']}`",
        "",
        f"Run `{record['run']}`, first {record['n_clips']} clips of the {record['split']} "
        f"split, the model's predicted class, {record['n_steps']} Gauss-Legendre steps; "
        "mean ± 95% half-width over clips. Deletion / insertion over 8 bands x 16 "
        "divisions; localization on the map's grid. Δ: per-clip difference from "
        f"{PREVIOUS} (the default before this study) on the same clips.",
        "",
        "| variant | " + " | ".join(titles) + " |",
        "| --- |" + " --- |" * len(titles),
    ]
    for name, r in record["variants"].items():
        label = f"**{name}**" if name == record["pick"] else name
        label += " (needs audio)" if r["needs_waves"] else ""
        cells = [_cell(r["summary"], k) for k in keys]
        if diffs:
            cells += ["" if name == PREVIOUS else _cell(diffs[name], k) for k in RULE_METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ref = [_cell(record["reference"]["summary"], k) for k in keys]
    ref += [""] * (len(titles) - len(keys))
    lines.append("| random order / uniform map | " + " | ".join(ref) + " |")
    lines += [
        "",
        f"Rule (fixed before the study): {record['rule']}.",
        "",
        f"Pick by the rule on this split: **{record['pick']}**"
        + ("" if record["split"] == "val" else " (reported only: the default is chosen on val)")
        + f"; default of `integrated_gradients`: {record['current_default']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> dict[str, Any]:
    opts = parse_options(argv, OPTIONS, USAGE)
    if opts["n_clips"] < 1 or opts["n_steps"] < 1:
        raise ValueError("n_clips= and n_steps= must be at least 1")
    return study(
        opts["run"],
        split=opts["split"],
        n_clips=opts["n_clips"],
        n_steps=opts["n_steps"],
        seed=opts["seed"],
        out=opts["out"],
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )


if __name__ == "__main__":
    run_cli(main)
