"""Training-throughput bench: each family's quick run on CPU (structure and positivity
only; no timing is asserted) and its markdown section."""

from __future__ import annotations

import math

import pytest
import torch

from train.bench.families import (
    FAMILIES,
    bench_family_training,
    training_markdown,
)


@pytest.fixture(scope="module")
def results(cache_dir) -> dict[str, dict]:
    """The quick bench of every family, on the session's tiny cached data."""
    return {
        f: bench_family_training(f, torch.device("cpu"), quick=True, cache_dir=cache_dir)
        for f in FAMILIES
    }


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_quick_bench_figures(results: dict[str, dict], family: str) -> None:
    r = results[family]
    assert r["family"] == family and r["config"] == FAMILIES[family] and r["quick"]
    assert r["batch"] == 8 and r["train_clips"] > 0
    for key in ("step_s", "steps_per_s", "clips_per_s", "load_s_per_batch", "input_over_step"):
        assert _positive(r[key]), (key, r[key])
    assert r["steps_per_s"] == pytest.approx(1 / r["step_s"])
    assert r["clips_per_s"] == pytest.approx(8 / r["step_s"])
    assert r["input_over_step"] == pytest.approx(r["load_s_per_batch"] / r["step_s"])
    assert isinstance(r["input_bound"], bool)
    assert r["input_bound"] == (r["input_over_step"] > 1)
    scaling = r["scaling"]
    for k in (1, 2, 4):
        assert scaling[f"{k}x"]["clips"] == k * r["train_clips"]
        assert _positive(scaling[f"{k}x"]["epoch_s"])
    for k in (2, 4):
        ratio = scaling[f"{k}x_over_1x"]
        assert _positive(ratio)
        assert ratio == pytest.approx(scaling[f"{k}x"]["epoch_s"] / scaling["1x"]["epoch_s"])
    assert isinstance(r["note"], str) and r["note"]


def test_training_markdown(results: dict[str, dict]) -> None:
    lines = training_markdown(results)
    assert lines[0] == "## Training throughput"
    for family in FAMILIES:
        rows = [line for line in lines if line.startswith(f"| {family} |")]
        assert len(rows) == 2, rows  # one in the throughput table, one in the epoch table
        assert len(rows[0].split("|")) == 10 and len(rows[1].split("|")) == 9
        assert rows[0].rstrip().endswith(("| yes |", "| no |"))


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="family"):
        bench_family_training("blackbox", torch.device("cpu"), quick=True)


def test_train_bench_command_quick_writes_its_tables(tmp_path, cache_dir, monkeypatch):
    """``python -m train.bench quick=true families=heart``: the whole command."""
    import importlib
    import json

    monkeypatch.setenv("INTERP_MODELS_CACHE", str(cache_dir))
    cli = importlib.import_module("train.bench.__main__")
    out = tmp_path / "bench"
    results = cli.main(["quick=true", "families=heart", f"out={out}"])
    assert "## Training throughput" in (out / "training.md").read_text()
    assert set(json.loads((out / "training.json").read_text())["families"]) == {"heart"}
    assert results["families"]["heart"]["steps_per_s"] > 0
