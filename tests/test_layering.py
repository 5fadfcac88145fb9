"""The package's layering: ``interp_models`` <- ``evaluate`` <- ``train``, never upward.

Neither through imports nor through the dotted names code imports at run time
(``_target_`` values, hooks): only the registry ``interp_models/families.py`` names
``train`` hooks, and configs name data classes under ``interp_models``.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


#: a dotted name under ``train`` that code could import: the whole string is a module path
#: (``train.x.y``, ``train.x:f``), or it names a class (``... train.x.Class ...``)
TRAIN_NAME = re.compile(r"train(\.\w+)+(:\w+)?|.*\btrain(\.[a-z_]\w*)+\.[A-Z]\w*.*", re.DOTALL)
#: the registry: it names each family's ``train`` hooks, as strings
REGISTRY = ROOT / "interp_models" / "families.py"


def _train_names(path: Path) -> list[str]:
    """String constants of ``path`` naming something under ``train`` (docstrings aside:
    prose may mention where things live)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in prose
        and TRAIN_NAME.fullmatch(node.value)
    ]


@pytest.mark.parametrize("package", ["interp_models", "evaluate"])
def test_no_upward_names_in_strings(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): _train_names(path)
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != REGISTRY
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} names modules of train in strings: {offenders}"


def test_train_name_is_detected(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Docstrings may say train.datamodules.ClipDataModule."""\n'
        'A = "train.datamodules.ClipDataModule"\n'
        'B = "train.heart.pipeline:run"\n'
        'C = f"needs train.heart.data.HeartDataModule, got {A}"\n'
        'D = "python -m train.fit config=x"  # a command line, not an import\n'
    )
    assert _train_names(module) == [
        "train.datamodules.ClipDataModule",
        "train.heart.pipeline:run",
        "needs train.heart.data.HeartDataModule, got ",
    ]


def test_data_configs_name_interp_models_classes() -> None:
    from interp_models.families import DATA

    targets = {}
    for path in sorted((ROOT / "configs" / "data").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if "_target_" in cfg:  # the others inherit it through their defaults
            targets[path.name] = cfg["_target_"]
    assert targets, "no configs/data/*.yaml with a _target_"
    wrong = {
        k: v for k, v in targets.items() if not v.startswith("interp_models.") or v not in DATA
    }
    assert not wrong, f"data._target_ must be a data class of interp_models.families.DATA: {wrong}"


def test_data_table_matches_the_datamodules() -> None:
    """Every data class has a DataModule that subclasses it and takes exactly the loader
    keys the reports drop; every old DataModule name maps to a data class."""
    from hydra.utils import get_class

    from interp_models.families import ALIASES, DATA, DEFAULT_DATA, data_kind, hook

    assert DEFAULT_DATA in DATA
    for name, kind in DATA.items():
        data_class, dm_class = get_class(name), hook(kind.datamodule)
        assert data_class.__module__.startswith("interp_models.data.")
        assert issubclass(dm_class, data_class)
        own = [
            p for p, v in inspect.signature(dm_class).parameters.items() if v.kind != v.VAR_KEYWORD
        ]
        assert sorted(own) == sorted(kind.loader_keys), name
        assert not set(kind.loader_keys) & set(inspect.signature(data_class).parameters), name
    old = [k for k in ALIASES if k.rsplit(".", 1)[-1].endswith("DataModule")]
    assert len(old) == 5 and all(data_kind(k) is not None for k in old)


def test_reports_open_data_without_train_or_lightning(tmp_path: Path) -> None:
    """``evaluate.runs.open_data`` on a run written before the data classes (its
    ``data._target_`` names the old DataModule) imports neither ``train`` nor Lightning."""
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = ["filename,fold,target,category"]
    for i in range(10):
        name = f"{i % 5 + 1}-{i}-A-{i % 2}.wav"
        (root / "audio" / name).write_bytes(_wav(i))
        rows.append(f"{name},{i % 5 + 1},{i % 2},c{i % 2}")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    config = {
        "data": {
            "_target_": "train.datamodules.ClipDataModule",
            "root": str(root),
            "sample_rate": 8000,
            "clip_seconds": 0.5,
            "batch_size": 4,
            "num_workers": 0,
            "shuffle_seed": 3,
        },
        "paths": {"cache_dir": str(tmp_path / "cache")},
    }
    script = (
        "import sys\n"
        "from evaluate.runs import open_data\n"
        f"data = open_data({config!r})\n"
        "print(type(data).__module__, type(data).__name__, data.split_sizes())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('train', 'lightning')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "interp_models.data.clips EventClips {'train': 6, 'val': 2, 'test': 2}",
        "[]",
    ]


def _wav(seed: int) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    wave = np.random.default_rng(seed).standard_normal(4000).astype(np.float32) * 0.1
    sf.write(buf, wave, 8000, format="WAV")
    return buf.getvalue()
