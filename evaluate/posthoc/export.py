"""Per-clip JSON export of post-hoc explanations, and reading them back.

The file is ``interp_models.explanation``'s one schema (the same as every intrinsic
explanation's); the post-hoc extras go under its ``meta``: ``input_file``, ``model`` and
``grouping_spec``, the grouping's description (band edges, divisions, STFT settings,
baseline), so a file says what every number is about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluate.posthoc.groupings import Grouping
from interp_models.explanation import Explanation
from interp_models.explanation import read_explanation_json as _read
from interp_models.explanation import write_explanation_json as _write

__all__ = ["explanation_record", "read_explanation_json", "write_explanation_json"]


def explanation_record(
    explanation: Explanation,
    i: int,
    grouping: Grouping,
    input_file: str | None = None,
    model: str | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """Clip ``i`` as a plain-JSON dict (``Explanation.to_json``), with ``input_file``,
    ``model``, ``grouping_spec`` and any ``meta`` under ``"meta"``."""
    return explanation.to_json(i, **_meta(grouping, input_file, model, meta))


def write_explanation_json(
    path: str | Path,
    explanation: Explanation,
    i: int,
    grouping: Grouping,
    input_file: str | None = None,
    model: str | None = None,
    **meta: Any,
) -> Path:
    """``interp_models.explanation.write_explanation_json`` with the meta of
    ``explanation_record``; returns the path."""
    return _write(path, explanation, i, **_meta(grouping, input_file, model, meta))


def read_explanation_json(path: str | Path) -> tuple[Explanation, dict[str, Any]]:
    """A one-clip ``Explanation`` and its ``meta`` (``input_file``, ``model``,
    ``grouping_spec``, ...) from a file written above (or by any other method)."""
    return _read(path)


def _meta(grouping: Grouping, input_file, model, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_file": input_file,
        "model": model,
        "grouping_spec": grouping.describe(),  # tensors become lists in to_json
        **meta,
    }
