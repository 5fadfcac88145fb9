"""Every W&B sweep file is valid, and a trial drawn from it runs through the CLI.

The command is expanded offline exactly as the W&B agent does it
(``wandb.sdk.launch.sweeps.utils.create_sweep_command_args`` plus the agent's macros).
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY_DATA
from hydra import compose, initialize_config_dir
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))
METHODS = {"grid", "random", "bayes"}
FAST = {  # extra overrides so a trial runs for a few steps
    "blackbox_events": [*TINY_DATA, "trainer.max_epochs=1", "logger=csv"],
    "nmf_interpreter": [
        *TINY_DATA,
        "trainer.max_epochs=1",
        "classifier_epochs=1",
        "logger=csv",
        "interpreter.layers=[block1,block2]",
        "interpreter.dictionary.max_iter=20",
        "interpreter.evaluation.n_examples=1",
    ],
    "midlevel_emotion": [
        "data.num_clips=40",
        "data.clip_seconds=2.0",
        "trainer.max_epochs=1",
        "logger=csv",
        "emotion.evaluation.selectivity.n_clips=1",
        "emotion.evaluation.selectivity.probe_clips=4",
        "emotion.evaluation.selectivity.probe_contrast_clips=1",
    ],
    "heart_segmentation": [
        "data.synth.num_recordings=30",
        "data.synth.duration_s=[5.0,6.0]",
        "trainer.max_epochs=1",
        "evaluation.n_examples=1",
        "logger=csv",
    ],
}


def draw(spec: dict, rng: random.Random):
    """One value of a sweep parameter, as the random search would draw it."""
    if "values" in spec:
        return rng.choice(spec["values"])
    if "value" in spec:
        return spec["value"]
    lo, hi = spec["min"], spec["max"]
    dist = spec.get("distribution", "int_uniform" if isinstance(lo, int) else "uniform")
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "int_uniform":
        return rng.randint(lo, hi)
    assert dist == "uniform", dist
    return rng.uniform(lo, hi)


def expand(sweep: dict, params: dict) -> list[str]:
    """The agent's command: its macros replaced (wandb_agent.Agent._run_job)."""
    variables = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    variables.update(env=["/usr/bin/env"], interpreter=[sys.executable], program=[sweep["program"]])
    command = []
    for chunk in sweep["command"]:
        if chunk.startswith("${") and chunk.endswith("}"):
            command += variables[chunk[2:-1]]
        else:
            command.append(chunk)
    return command


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_is_valid(path: Path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in METHODS
    assert sweep["metric"]["goal"] in {"minimize", "maximize"}
    assert (ROOT / sweep["program"]).is_file()
    assert sweep["command"][:4] == ["${env}", "${interpreter}", "-m", "train.fit"]
    assert "${args_no_hyphens}" in sweep["command"]
    experiment = next(c.split("=", 1)[1] for c in sweep["command"] if c.startswith("config="))
    # Every swept key exists in the experiment's config (a typo would fail every trial).
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("fit", overrides=[f"config={experiment}"])
    from omegaconf import OmegaConf

    for key, spec in sweep["parameters"].items():
        assert OmegaConf.select(cfg, key, default="__missing__") != "__missing__", key
        assert {"values", "value", "min"} & set(spec), key


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_a_drawn_trial_runs(path: Path, tmp_path, cache_dir):
    import os
    import subprocess

    sweep = yaml.safe_load(path.read_text())
    rng = random.Random(0)
    params = {k: draw(v, rng) for k, v in sweep["parameters"].items()}
    command = expand(sweep, params)
    assert command[:4] == ["/usr/bin/env", sys.executable, "-m", "train.fit"]
    assert all(f"{k}=" in " ".join(command) for k in params)
    run_dir = tmp_path / "trial"
    fast = [o for o in FAST[path.stem] if o.split("=", 1)[0] not in params]  # trial values win
    command += [*fast, f"hydra.run.dir={run_dir}"]
    command = [c for c in command if c != "logger.offline=false"]  # no account here
    env = {**os.environ, "INTERP_MODELS_CACHE": str(cache_dir)}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    for key, value in params.items():
        node = resolved
        for part in key.split("."):
            node = node[part]
        assert node == pytest.approx(value)
    goal_key = sweep["metric"]["name"].split("/")
    node = metrics
    for part in goal_key:
        node = node[part]
    assert isinstance(node, float)
