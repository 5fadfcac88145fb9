"""The package's layering: ``interp_models`` <- ``evaluate`` <- ``train``, never upward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: top-level modules each package must not import (directly or inside a function)
FORBIDDEN = {
    "interp_models": {"train", "evaluate", "lightning", "pytorch_lightning", "hydra", "wandb"},
    "evaluate": {"train"},
}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} imports upward: {offenders}"


def test_forbidden_import_is_detected(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from train.fit import main\n    import wandb.sdk\n")
    assert _imported_roots(module) == {"train", "wandb"}
