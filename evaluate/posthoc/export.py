"""Per-clip JSON export of post-hoc explanations, and reading them back.

Built on ``Explanation.to_json`` (composition, not a change to it): the record adds the
grouping's description (band edges, divisions, STFT settings, baseline), the attribution's
group shape and the group labels, so a file says what every number is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from evaluate.posthoc.groupings import Grouping
from interp_models.explanation import Explanation

__all__ = ["explanation_record", "read_explanation_json", "write_explanation_json"]


def explanation_record(
    explanation: Explanation,
    i: int,
    grouping: Grouping,
    input_file: str | None = None,
    model: str | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """Clip ``i`` as a JSON-serialisable dict.

    Keys: ``input_file``, ``model``, ``method``, ``target``, ``grouping``,
    ``grouping_spec``, ``shape``, ``attribution`` (flattened, row-major), ``labels`` (band /
    region / component names where defined), ``n_evals``, ``seconds`` and any ``meta``.
    """
    record = explanation.to_json(i, input_file=input_file, model=model, **meta)
    record["grouping_spec"] = _jsonable(grouping.describe())
    return record


def write_explanation_json(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """``explanation_record(*args, **kwargs)`` written to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(explanation_record(*args, **kwargs), indent=1) + "\n")
    return path


def read_explanation_json(path: str | Path) -> tuple[Explanation, dict[str, Any]]:
    """A one-clip ``Explanation`` and the full record from a file written above."""
    record = json.loads(Path(path).read_text())
    attr = torch.tensor(record["attribution"], dtype=torch.float32).reshape(record["shape"])
    explanation = Explanation(
        attribution=attr[None],
        grouping=record["grouping"],
        target=torch.tensor([record["target"]]),
        method=record["method"],
        n_evals=record["n_evals"],
        seconds=record["seconds"],
        labels=record.get("labels"),
    )
    return explanation, record


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value
