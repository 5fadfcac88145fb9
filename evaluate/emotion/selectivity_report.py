"""The emotion report's section on the quality units' selectivity.

Reads what the run's own ``metrics.json`` and every ``train.score`` on other data
(``<run>/scores/<name>/metrics.json``) recorded under ``selectivity``
(``evaluate.emotion.scoring.selectivity``): the re-render contrast matrices, the probe's
factor AUC table and its contrasts. Nothing is re-measured here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluate.emotion.figures import _short, plot_selectivity
from evaluate.reporting.format import Block, Heading, Image, Table, Text
from evaluate.reporting.other_data import scored_datasets

__all__ = ["DOMINANCE_TARGET", "AUC_TARGET", "selectivity_section"]

DOMINANCE_TARGET = 3.0  # off the generator: diagonal >= 3x the largest off-diagonal
AUC_TARGET = 0.9  # off the generator: each quality separates its own factor


def _cell(value: float | None) -> str:
    return "∞" if value is None else f"{value:.1f}"


def _entries(run_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(data label, kind, record)`` for every contrast / probe record of the run."""
    out, probe = [], []
    for label, metrics in scored_datasets(run_dir):
        sel = metrics.get("selectivity") or {}
        if "contrasts" in sel:
            out.append((label, "contrasts", sel["contrasts"]))
        if not probe and "probe_factors" in sel:  # the same probe whatever was scored
            kinds = ("probe_contrasts", "probe_factors")
            probe = [("probe renderer", k, sel[k]) for k in kinds if k in sel]
    return out + probe


def _rows(runs, qualities: Sequence[str]) -> list[list[str]]:
    head = ["run", "data", "measure", "clips", *[_short(q) for q in qualities], "worst"]
    rows = [head]
    for name, entries, _ in runs:
        for label, kind, rec in entries:
            if kind == "probe_factors":
                own = rec["own_factor_auc"]
                values = [f"{own[q]:.2f}" if q in own else "–" for q in qualities]
                worst, measure = f"{rec['min_own_factor_auc']:.2f}", "own-factor AUC"
            else:
                values = [_cell(rec["dominance"][q]) for q in qualities]
                worst, measure = f"{rec['min_dominance']:.1f}", "dominance"
            rows.append([name, label, measure, str(rec["n_clips"]), *values, worst])
    return rows


INTRO = (
    "Each clip rendered twice, one quality set low (0) then high (1), everything else "
    "unchanged: a row of the matrix is the mean change of every predicted quality (rating "
    "points, 1..10). Dominance of a quality = its diagonal over the largest |off-diagonal| "
    "in its row (what else changing it moves) and in its column (what else moves its unit), "
    "the smaller of the two ratios; ∞: nothing off the diagonal. The probe is an "
    "independently written renderer (other instruments, no drums, other keys, tempi, mix "
    "and room; `interp_models.data.synth_probe`) with labelled binary factors; own-factor "
    "AUC: how well a quality's unit separates its own factor. Targets off the generator: "
    f"dominance >= {DOMINANCE_TARGET:g} and own-factor AUC >= {AUC_TARGET:g} for every "
    "quality."
)


def _figures(name: str, entries, qualities: Sequence[str], out: Path) -> dict[str, Path]:
    files = {}
    contrast = [
        (f"{label}: contrasts ({rec['n_clips']} clips)", np.array(rec["matrix"]))
        for label, kind, rec in entries
        if kind != "probe_factors"
    ]
    if contrast:
        files["contrasts"] = plot_selectivity(contrast, qualities, out / f"selectivity-{name}.png")
    probe = [rec for _, kind, rec in entries if kind == "probe_factors"]
    if probe:
        files["probe_auc"] = plot_selectivity(
            [(f"{name}, probe: AUC - 0.5", np.array(probe[0]["auc"]) - 0.5)],
            qualities,
            out / f"selectivity-{name}-probe-auc.png",
            row_label="labelled factor (1 vs 0)",
            col_label="predicted quality (ROC AUC - 0.5)",
        )
    return files


def selectivity_section(
    run_dirs: Sequence[Path], qualities: Sequence[str], out: Path
) -> tuple[list[Block], dict[str, Any]]:
    """Blocks (table, matrix figures) and the record of the section for one or more
    A2Mid2E runs (e.g. the current and the selective regime); empty when none recorded
    a selectivity (runs from before it existed)."""
    runs, names = [], set()
    for run_dir in run_dirs:
        entries = _entries(run_dir)
        if entries:
            metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
            name = str(metrics.get("config") or Path(run_dir).name)
            name = name if name not in names else f"{name}-{len(names)}"
            names.add(name)
            runs.append((name, entries, run_dir))
    if not runs:
        return [], {}
    caption = (
        "Score other data with `python -m train.score run=<run> data=synth_music_shifted` "
        "to add its rows."
    )
    blocks: list[Block] = [
        Heading("Are the quality units selective?"),
        Text(INTRO),
        Table(_rows(runs, qualities), caption),
    ]
    record: dict[str, Any] = {}
    for name, entries, run_dir in runs:
        files = _figures(name, entries, qualities, out)
        blocks += [Image(path, f"{name}: {kind}") for kind, path in files.items()]
        record[name] = {
            "run": str(run_dir),
            "entries": [{"data": label, "kind": kind, **rec} for label, kind, rec in entries],
            "figures": {k: v.name for k, v in files.items()},
        }
    return blocks, record
