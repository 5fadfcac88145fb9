"""``python -m train.score``: a finished run of every family scored on other data.

Each family's tiny run is trained once through ``train.fit``; scoring it on its own test
split must reproduce the test figures of its ``metrics.json`` key for key (the same
checkpoint through the same test loop), and scoring it on data it was not built on must
write ``<run>/scores/<name>/metrics.json`` with those keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_emotion_cli
from conftest import ROOT, TINY_DATA

from evaluate import report
from interp_models.data.synth_events import SynthEventsConfig, generate_events
from train import score

NMF_TINY = [
    *TINY_DATA,
    "config=nmf_interpreter",
    "interpreter.dictionary.n_components=12",
    "interpreter.hidden=32",
    "interpreter.branch_channels=8",
    "interpreter.dictionary.max_iter=30",
    "interpreter.evaluation.n_examples=1",
    "interpreter.layers=[block1,block2]",
    "classifier_epochs=2",
    "trainer.max_epochs=2",
    "logger=csv",
]
HEART_TINY = [
    "config=heart_segmentation",
    "data.synth.num_recordings=30",
    "data.synth.duration_s=[5.0,6.0]",
    "data.batch_size=8",
    "trainer.max_epochs=2",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
EMOTION_TINY = ["config=midlevel_emotion", *test_emotion_cli.TINY]
BLACKBOX_TINY = [*TINY_DATA, "config=blackbox_events", "trainer.max_epochs=2", "logger=csv"]
#: each family's test figures in metrics.json: paths to dicts of numbers
TEST_KEYS = {
    "nmf": [
        ("classifier", "test"),
        ("interpreter", "test"),
        ("explanations", "test"),
        ("lmac", "test"),  # the L-MAC stage, through its own test loop and mask scores
        ("lmac", "explanations", "test"),
    ],
    "heart": [
        ("segmenter", "test"),
        ("classifier", "test"),
        ("evaluation", "springer", "test"),
        ("evaluation", "ground_truth", "test"),
        ("explanations", "test"),
    ],
    "emotion": [
        ("training", "test"),
        ("test",),
        ("per_output", "test"),
        ("selectivity", "contrasts"),
        ("selectivity", "probe_factors"),
    ],
    "blackbox": [("test",)],
}
ARGS = {"nmf": NMF_TINY, "heart": HEART_TINY, "emotion": EMOTION_TINY, "blackbox": BLACKBOX_TINY}


@pytest.fixture(scope="module")
def runs(run_fit, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scored")
    for family, args in ARGS.items():
        run_fit(*args, f"hydra.run.dir={root / family}")
    return {family: root / family for family in ARGS}


def _score(cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INTERP_MODELS_CACHE": str(cache_dir), "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "train.score", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _at(tree: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        tree = tree[key]
    return tree


def _numbers(values: dict) -> dict[str, float]:
    return {k: v for k, v in values.items() if isinstance(v, int | float)}


@pytest.mark.parametrize("family", sorted(ARGS))
def test_own_test_split_reproduces_the_runs_test_metrics(runs, cache_dir, family):
    run_dir = runs[family]
    proc = _score(cache_dir, f"run={run_dir}", "split=test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(f"{family} on own (") and "=" in lines[0]
    ran = json.loads((run_dir / "metrics.json").read_text())
    scored = json.loads((run_dir / "scores" / "own" / "metrics.json").read_text())
    assert scored["split"] == "test" and scored["pipeline"] == ran["pipeline"]
    for path in TEST_KEYS[family]:
        expected, got = _numbers(_at(ran, path)), _numbers(_at(scored, path))
        assert set(got) == set(expected), path
        assert got == pytest.approx(expected, abs=1e-5), path


def test_nmf_run_on_a_shifted_preset_scores_every_clip(runs, cache_dir):
    run_dir = runs["nmf"]
    tiny = ["data.num_clips=40", "data.num_classes=4", "data.clip_seconds=1.0"]
    proc = _score(cache_dir, f"run={run_dir}", "data=synth_events_shifted", *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = "synth_events_shifted+num_clips=40+num_classes=4+clip_seconds=1.0"
    scored = json.loads((run_dir / "scores" / name / "metrics.json").read_text())
    ran = json.loads((run_dir / "metrics.json").read_text())
    assert scored["split"] == "all" and scored["data"]["num_clips"] == 40
    assert scored["explanations"]["test"]["n_clips"] == 40
    assert scored["data"]["root"] != ran["data"]["root"]  # other clips, not the run's
    assert scored["explanations"]["localization"]["scored"] == {"test": True}
    for path in TEST_KEYS["nmf"]:
        assert set(_numbers(_at(scored, path))) == set(_numbers(_at(ran, path)))


def test_nmf_run_on_a_dataset_folder(runs, cache_dir, tmp_path):
    """``data.root=<dir>``: a dataset on disk in the run's (ESC-50) layout."""
    folder = generate_events(
        SynthEventsConfig(num_clips=20, num_classes=4, clip_seconds=1.0, seed=11),
        tmp_path / "my_clips",
    )
    scored = score.main([f"run={runs['nmf']}", f"data.root={folder}"])
    assert scored == runs["nmf"] / "scores" / "my_clips" / "metrics.json"
    m = json.loads(scored.read_text())
    assert m["data"]["root"] == str(folder) and m["data"]["num_clips"] == 20
    assert 0.0 <= m["classifier"]["test"]["acc"] <= 1.0


def test_heart_run_on_other_recordings_both_segmentations(runs, cache_dir):
    run_dir = runs["heart"]
    for seg in ("springer", "ground_truth"):
        path = score.main(
            [f"run={run_dir}", "data.synth.seed=5", f"segmentation={seg}", f"name=seed5_{seg}"]
        )
        m = json.loads(path.read_text())
        assert m["segmentation"] == seg and m["data"]["num_recordings"] == 30
        assert list(m["evaluation"]) == [seg, *({"springer", "ground_truth"} - {seg})]
        assert 0.0 <= m["segmenter"]["test"]["f1"] <= 1.0


def test_emotion_run_standardises_with_the_runs_statistics(runs, cache_dir):
    run_dir = runs["emotion"]
    m = json.loads(score.main([f"run={run_dir}", "data.data_seed=9", "name=seed9"]).read_text())
    ran = json.loads((run_dir / "metrics.json").read_text())
    assert m["data"]["rating_stats_train"] == ran["data"]["rating_stats_train"]
    assert set(m["test"]) == set(ran["test"]) and m["data"]["num_clips"] == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data.sample_rate=22050"], "data.sample_rate: the model's input is the run's own"),
        (["data.num_classes=3"], "class_names ['low_harmonic', 'high_harmonic', 'up_chirp']"),
        (["data=synth_music"], "synth_music is interp_models.data.music.MusicClips"),
        (["data=no_such_data"], "unknown preset 'no_such_data'"),
    ],
)
def test_data_that_does_not_fit_the_run_is_refused_by_name(runs, args, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        score.main([f"run={runs['nmf']}", *args])


def test_bad_command_line_is_one_line(runs, cache_dir, tmp_path):
    proc = _score(cache_dir, f"run={runs['blackbox']}", "data.num_classes=3")
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: data: its class_names")
    proc = _score(cache_dir, f"run={tmp_path}")
    assert proc.returncode == 1 and "not inside a finished run" in proc.stderr


def test_report_explains_the_run_on_other_data_and_lists_every_scored_set(runs, tmp_path):
    """``evaluate.report data=...``: the report's clips are the other data's; its table of
    the run's figures has a row for its own test fold and one per ``scores/<name>``."""
    run_dir = runs["nmf"]
    score.main([f"run={run_dir}", "data.data_seed=4", "data.num_clips=20"])
    paths = report.main(
        [f"run={run_dir}", "data.data_seed=4", "data.num_clips=20", "n_clips=2", "methods=saliency"]
    )
    assert paths["md"] == run_dir / "report-own+data_seed=4+num_clips=20" / "report.md"
    text = paths["md"].read_text()
    assert "**Data: every item of `own+data_seed=4+num_clips=20`**" in text
    rows = json.loads(paths["json"].read_text())["other_data"][str(run_dir)]
    assert rows[0]["data"] == "own test fold"
    ours = [r for r in rows if r["data"] == "own+data_seed=4+num_clips=20 (all)"]
    assert len(ours) == 1 and ours[0]["items"] == 20
