"""Runs written before the family packages still load, explain and train.

``tests/fixtures/old_runs/`` holds three tiny runs written by the code of commit 76d99f9
(the layout before ``evaluate/<family>/`` and ``train/<family>/``; their ``config.yaml``
names e.g. ``pipeline: train.heart_pipeline.run``), the explanations that code's explain
commands wrote for ``inputs/`` (``expected/``) and how they were made (``README.md``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT
from hydra.utils import get_class

from evaluate import explain
from evaluate.emotion.runs import load_emotion_run
from evaluate.heart.explain import load_heart_run
from evaluate.runs import load_run
from interp_models.emotion.models import MidLevelEmotionModel
from interp_models.families import current_name, family_of
from interp_models.heart.model import SegmentationAwareNet
from interp_models.nmf.interpreter import NMFInterpreter
from tests.helpers import assert_same_state, state_under
from train import score

FIXTURES = ROOT / "tests" / "fixtures" / "old_runs"
INPUTS = FIXTURES / "inputs"
FAMILY = {"nmf_interpreter": "nmf", "midlevel_emotion": "emotion", "heart_segmentation": "heart"}


@pytest.fixture
def old_run(request, tmp_path) -> Path:
    """A copy of the fixture run ``request.param`` (nothing writes into the fixtures)."""
    return Path(shutil.copytree(FIXTURES / request.param, tmp_path / request.param))


def _expected(name: str) -> dict:
    return json.loads((FIXTURES / "expected" / f"{name}.json").read_text())


def test_every_fixture_run_is_tested():
    runs = {p.parent.name for p in FIXTURES.glob("*/config.yaml")}
    assert runs == set(FAMILY)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_old_names_in_the_config_resolve(name):
    cfg = yaml.safe_load((FIXTURES / name / "config.yaml").read_text())
    assert family_of(cfg["pipeline"]).name == FAMILY[name]
    assert isinstance(get_class(current_name(cfg["data"]["_target_"])), type)


@pytest.mark.parametrize("old_run", ["nmf_interpreter"], indirect=True)
def test_nmf_run_loads(old_run):
    run = load_run(old_run)
    assert isinstance(run.model, NMFInterpreter) and len(run.class_names) == 4
    assert run.model.W.shape[1] == 12 and set(run.frontends) == {"x", "spec"}


@pytest.mark.parametrize("old_run", ["midlevel_emotion"], indirect=True)
def test_emotion_run_loads(old_run):
    run = load_emotion_run(old_run)
    assert isinstance(run.model, MidLevelEmotionModel)
    assert len(run.qualities) == 7 and "sad" in run.emotions


@pytest.mark.parametrize("old_run", ["heart_segmentation"], indirect=True)
def test_heart_run_loads(old_run):
    run = load_heart_run(old_run)
    assert isinstance(run.model, SegmentationAwareNet) and run.sample_rate == 1000
    assert run.segmenter.settings.sample_rate == 1000


def _explain(tmp_path: Path, *argv: str) -> dict:
    """``evaluate.explain`` on ``argv``: its ``explanation.json``, with the family's own
    fields (kept under ``meta`` by today's schema) at the top level, as the old code wrote
    them."""
    out = explain.main([*argv, f"out={tmp_path / 'out'}"])
    record = json.loads((out / "explanation.json").read_text())
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    return {**meta, **record}


@pytest.mark.parametrize("old_run", ["nmf_interpreter"], indirect=True)
def test_nmf_run_explains_as_before(old_run, tmp_path):
    got = _explain(tmp_path, str(INPUTS / "clip.wav"), f"run={old_run}")
    old = _expected("nmf")
    for key in ("class_name", "classifier_prediction", "relevant_components", "labels"):
        assert got[key] == old[key], key
    assert np.allclose(got["attribution"], old["attribution"], atol=1e-4)


@pytest.mark.parametrize("old_run", ["midlevel_emotion"], indirect=True)
def test_emotion_run_explains_as_before(old_run, tmp_path, capsys):
    got = _explain(tmp_path, str(INPUTS / "clip.wav"), f"ckpt={old_run}", "emotion=sad")
    assert "ckpt= is deprecated" in capsys.readouterr().err  # the old option, still accepted
    old = _expected("emotion")
    assert got["explained_emotion"] == old["explained_emotion"] == "sad"
    for key in ("qualities", "emotions"):
        assert got[key] == pytest.approx(old[key], abs=1e-4), key
    for emotion, effects in old["effects_z"].items():
        assert got["effects_z"][emotion] == pytest.approx(effects, abs=1e-4), emotion


@pytest.mark.parametrize("old_run", ["heart_segmentation"], indirect=True)
@pytest.mark.parametrize("seg", [False, True])
def test_heart_run_explains_as_before(old_run, tmp_path, seg):
    extra = [f"seg={INPUTS / 'recording.tsv'}"] if seg else []
    got = _explain(tmp_path, str(INPUTS / "recording.wav"), f"run={old_run}", *extra)
    old = _expected("heart_seg" if seg else "heart")
    assert got["labels"] == old["labels"]
    for key in ("logit", "probability_abnormal", "bias"):
        assert got[key] == pytest.approx(old[key], abs=1e-4), key
    assert np.allclose(got["attribution"], old["attribution"], atol=1e-4)


@pytest.mark.parametrize("old_run", ["nmf_interpreter"], indirect=True)
def test_fit_takes_the_old_runs_classifier(old_run, run_fit, tmp_path):
    """``classifier_ckpt=`` an old run's kept classifier: a tiny interpreter (1 epoch,
    data settings of the old run) trains on it and keeps it untouched."""
    ckpt = old_run / "classifier" / "checkpoints" / "best-epoch000.ckpt"
    run_dir = tmp_path / "new"
    run_fit(
        "config=nmf_interpreter",
        "data.num_clips=40",
        "data.num_classes=4",
        "data.clip_seconds=1.0",
        "data.batch_size=8",
        "model.net.channels=[8,16]",
        "interpreter.dictionary.n_components=12",
        "interpreter.dictionary.max_iter=10",
        "interpreter.hidden=32",
        "interpreter.branch_channels=8",
        "interpreter.evaluation.n_examples=0",
        "interpreter.layers=[block1,block2]",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=csv",
        f"classifier_ckpt={ckpt}",
        f"hydra.run.dir={run_dir}",
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["classifier"] == {"checkpoint": str(ckpt)}
    frozen = state_under(run_dir / "checkpoints" / "last.ckpt", "model.classifier.")
    assert_same_state(state_under(ckpt, "net."), frozen)


#: the test figures of each old run's metrics.json that ``train.score`` must reproduce
SCORED = {
    "nmf_interpreter": [("classifier", "test"), ("interpreter", "test"), ("explanations", "test")],
    "heart_segmentation": [("segmenter", "test"), ("classifier", "test"), ("explanations", "test")],
    "midlevel_emotion": [("test",), ("training", "test")],
}


@pytest.mark.parametrize("old_run", sorted(FAMILY), indirect=True)
def test_old_run_scored_on_its_own_test_fold_gives_its_test_figures(old_run, cache_dir):
    """``python -m train.score`` reads a run written before the family packages (old
    pipeline and DataModule names) and reproduces its test figures key for key."""
    cfg = yaml.safe_load((old_run / "config.yaml").read_text())
    cfg["paths"]["cache_dir"] = str(cache_dir)  # its data is regenerated here, not in /tmp
    (old_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    scored = json.loads(score.main([f"run={old_run}", "split=test"]).read_text())
    ran = json.loads((old_run / "metrics.json").read_text())
    for path in SCORED[old_run.name]:
        expected, got = ran, scored
        for key in path:
            expected, got = expected[key], got[key]
        numbers = {k: v for k, v in expected.items() if isinstance(v, int | float)}
        assert {k: got[k] for k in numbers} == pytest.approx(numbers, abs=1e-5), path
