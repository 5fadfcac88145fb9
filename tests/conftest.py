"""Shared fixtures: a per-session cache and runs directory, and the tiny CLI data config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.bench.families import QUICK_DATA

ROOT = Path(__file__).resolve().parents[1]

# Small enough for seconds per run on 2 CPU cores, big enough to learn something: the
# easy events (data=synth_events_easy's conditions, clip for clip), on which 80 clips teach.
# The same clips as the training benchmark's quick mode (``train.bench.families``).
TINY_DATA = [
    *QUICK_DATA["nmf"],
    "data.batch_size=8",
    "model.net.channels=[8,16]",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def run_fit(cache_dir):
    """Run ``python -m train.fit`` in a subprocess; returns the CompletedProcess."""

    def _run(*overrides: str, check: bool = True, multirun: bool = False, timeout: float = 300):
        env = {
            **os.environ,
            "INTERP_MODELS_CACHE": str(cache_dir),
            "WANDB_SILENT": "true",
            "PYTHONHASHSEED": "0",
        }
        cmd = [sys.executable, "-m", "train.fit", *(["-m"] if multirun else []), *overrides]
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
            )
        return proc

    return _run


@pytest.fixture(scope="session")
def tiny_event_run(run_fit, tmp_path_factory):
    """``tiny_event_run(config)``: a finished run of ``config`` (``blackbox_events`` or
    ``blackbox_events_waveform``) on the tiny events, trained once per session (6 epochs:
    enough to learn the easy classes) and shared by the tests that explain a trained model."""
    runs: dict[str, Path] = {}

    def _run(config: str = "blackbox_events") -> Path:
        if config not in runs:
            run_dir = tmp_path_factory.mktemp("tiny_runs") / config
            run_fit(
                f"config={config}",
                *TINY_DATA,
                "trainer.max_epochs=6",
                "logger=csv",
                f"hydra.run.dir={run_dir}",
            )
            runs[config] = run_dir
        return runs[config]

    return _run


#: tiny microphone-array data and training shared by the localization tests
TINY_LOCALIZATION = [
    "data.num_clips=40",
    "data.batch_size=8",
    "trainer.max_epochs=2",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="session")
def tiny_localization_run(run_fit, tmp_path_factory):
    """``tiny_localization_run(config)``: a finished run of ``blackbox_localization`` (a
    small WaveformCNN) or ``localization_srp`` on 40 built-in array clips, 2 epochs,
    trained once per session and shared by the localization tests."""
    runs: dict[str, Path] = {}
    extra = {"blackbox_localization": ["model.net.channels=[8,16]"], "localization_srp": []}

    def _run(config: str) -> Path:
        if config not in runs:
            run_dir = tmp_path_factory.mktemp("tiny_runs") / config
            run_fit(
                f"config={config}", *TINY_LOCALIZATION, *extra[config], f"hydra.run.dir={run_dir}"
            )
            runs[config] = run_dir
        return runs[config]

    return _run
