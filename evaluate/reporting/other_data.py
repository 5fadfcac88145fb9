"""A run's figures on the data it was built for and on data it was not, side by side.

``python -m train.score run=<run> data=<preset>`` writes ``<run>/scores/<name>/metrics.json``
with the keys of the run's own test metrics. A report reads them back here: one row for
the run's own test fold (its ``metrics.json``), then one per scored dataset, and the
columns its family names (:class:`Column`), task and explanation figures alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluate.reporting.format import Table, Text, fmt

HINT = (
    "Score it on other data with `python -m train.score run=<run> data=<preset>` "
    "(e.g. the shifted built-in sets `synth_events_shifted`, `heart_synth_shifted`, "
    "`synth_music_shifted`); each scored set adds a row here."
)


@dataclass(frozen=True)
class Column:
    """A figure of the table: its heading and where it is in ``metrics.json``
    (``("classifier", "test", "acc")``); a ``<key>_ci95`` beside it is shown as ``±``."""

    label: str
    path: tuple[str, ...]


def _at(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _items(metrics: dict[str, Any]) -> int | None:
    """How many clips / recordings a ``metrics.json`` was scored on."""
    if "n_items" in metrics:
        return int(metrics["n_items"])
    test = _at(metrics, ("data", "splits", "test"))
    return int(test["recordings"] if isinstance(test, dict) else test) if test else None


def scored_datasets(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(label, metrics)``: the run's own test fold, then every ``scores/<name>/``."""
    run_dir = Path(run_dir)
    rows = [("own test fold", json.loads((run_dir / "metrics.json").read_text()))]
    for path in sorted((run_dir / "scores").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        rows.append((f"{path.parent.name} ({metrics.get('split', 'all')})", metrics))
    return rows


def cell(metrics: dict[str, Any], column: Column) -> str:
    value = _at(metrics, column.path)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    ci = _at(metrics, (*column.path[:-1], f"{column.path[-1]}_ci95"))
    return fmt(float(value), float(ci) if isinstance(ci, int | float) else None)


def other_data_rows(run_dir: Path, columns: Sequence[Column]) -> list[dict[str, Any]]:
    """The table as records (for ``report.json``): dataset, items, and each column."""
    return [
        {
            "data": label,
            "root": _at(metrics, ("data", "root")),
            "items": _items(metrics),
            **{c.label: _at(metrics, c.path) for c in columns},
        }
        for label, metrics in scored_datasets(run_dir)
    ]


def other_data_blocks(run_dir: Path, columns: Sequence[Column], caption: str) -> list:
    """A caption and the table: one row per dataset the run was scored on."""
    datasets = scored_datasets(run_dir)
    table = [["data", "items", *(c.label for c in columns)]]
    for label, metrics in datasets:
        items = _items(metrics)
        table.append([label, "–" if items is None else str(items)])
        table[-1] += [cell(metrics, c) for c in columns]
    text = f"{caption} (`{Path(run_dir).name}`): its own test fold and the data it was scored on."
    return [Text(text if len(datasets) > 1 else f"{text} {HINT}"), Table(table)]
