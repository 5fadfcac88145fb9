"""End to end: ``config=heart_segmentation`` (both segmentations, a reused segmenter) and
``config=blackbox_heart`` on tiny built-in phonocardiograms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers import run_killed

TINY_HEART = [
    "data.synth.num_recordings=30",
    "data.synth.duration_s=[5.0,6.0]",
    "data.batch_size=8",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def heart_run(run_fit, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("heart") / "run"
    run_fit(
        "config=heart_segmentation",
        *TINY_HEART,
        "trainer.max_epochs=2",
        "model.net.channels=[8,8]",
        "evaluation.n_examples=2",
        f"hydra.run.dir={run_dir}",
    )
    return run_dir


def test_segmentation_aware_run_scores_segmenter_model_and_explanations(heart_run):
    m = _metrics(heart_run)
    assert m["segmentation"] == "springer" and m["data"]["splits"]["test"]["recordings"] == 6
    for split in ("val", "test"):
        assert m["segmenter"][split]["f1"] > 0.85, m["segmenter"][split]
    assert m["segmenter"]["trained_on"]["recordings"] == 18
    assert m["classifier"]["monitor"] == "val/macc"
    assert (heart_run / m["classifier"]["best_checkpoint"]).is_file()
    assert set(m["evaluation"]) == {"springer", "ground_truth"}
    for scores in m["evaluation"].values():
        assert {"macc", "sensitivity", "specificity"} <= set(scores["test"])
        assert 0.0 <= scores["test"]["macc"] <= 1.0
    assert set(m["explanation_reference"]) == {"S1", "systole", "S2", "diastole"}
    for name in ("segmenter.json", "reference.json", "config.yaml"):
        assert (heart_run / name).is_file()
    assert len(m["examples"]) == 2
    for example in m["examples"]:
        folder = Path(example["dir"])
        info = json.loads((folder / "explanation.json").read_text())
        extra = info["meta"]
        sign = 1 if extra["explained"] == "abnormal" else -1
        assert info["target"] == 0  # the one logit, whichever class is explained
        assert sum(info["attribution"]) + extra["bias"] == pytest.approx(
            sign * extra["logit"], abs=1e-5
        )
        assert np.allclose(np.sum(extra["beats"], axis=0), info["attribution"], atol=1e-5)
        assert info["grid"]["name"] == "frames"
        assert sum(info["relevance"]["values"]) == pytest.approx(sum(info["attribution"]), abs=1e-4)
        wave, sr = sf.read(folder / "explanation.wav")
        original, _ = sf.read(folder / "input.wav")
        assert sr == 1000 and wave.shape == original.shape
        assert (folder / "figure.png").stat().st_size > 10_000


def test_explain_cli_reloads_the_run_and_reproduces_its_explanation(heart_run, tmp_path):
    from evaluate.heart.explain import main

    example = Path(_metrics(heart_run)["examples"][0]["dir"])
    saved = json.loads((example / "explanation.json").read_text())
    recording = saved["meta"]["recording"]
    out = main([recording, f"run={heart_run}", f"out={tmp_path / 'a'}"])
    again = json.loads((out / "explanation.json").read_text())
    assert again["meta"]["logit"] == pytest.approx(saved["meta"]["logit"], abs=1e-4)
    assert np.allclose(again["attribution"], saved["attribution"], atol=1e-4)
    tsv = Path(recording).with_suffix(".tsv")  # the annotation, as seg=
    out = main([recording, f"run={heart_run}", f"seg={tsv}", f"out={tmp_path / 'b'}"])
    assert (out / "explanation.wav").is_file()
    with pytest.raises(SystemExit, match="unknown option"):
        main([recording, f"run={heart_run}", "colour=red"])


def test_ground_truth_override_reuses_a_saved_segmenter(run_fit, heart_run, tmp_path):
    run_dir = tmp_path / "gt"
    saved = heart_run / "segmenter.json"
    run_fit(
        "config=heart_segmentation",
        *TINY_HEART,
        "trainer.max_epochs=1",
        "model.net.channels=[8,8]",
        "evaluation.n_examples=1",
        "segmentation=ground_truth",
        f"segmenter.load={saved}",
        f"hydra.run.dir={run_dir}",
    )
    m = _metrics(run_dir)
    assert m["segmentation"] == "ground_truth" and list(m["evaluation"])[0] == "ground_truth"
    assert m["segmenter"]["loaded_from"] == str(saved)
    assert m["segmenter"]["test"] == _metrics(heart_run)["segmenter"]["test"]  # same segmenter


def test_blackbox_heart_trains_on_the_same_splits(run_fit, tmp_path):
    run_dir = tmp_path / "bb"
    run_fit(
        "config=blackbox_heart",
        *TINY_HEART,
        "trainer.max_epochs=1",
        "model.net.channels=[8]",
        f"hydra.run.dir={run_dir}",
    )
    m = _metrics(run_dir)
    assert m["monitor"] == "val/macc" and 0.0 <= m["test"]["macc"] <= 1.0
    assert m["data"]["input"] == "spectrogram"
    assert m["data"]["splits"]["test"] == {"recordings": 6, "abnormal": 3}


def test_bad_segmentation_name_and_data_are_rejected_by_key():
    from omegaconf import OmegaConf

    from train.heart.data import HeartDataModule
    from train.heart.pipeline import run

    cfg = OmegaConf.create({"segmentation": "manual"})
    with pytest.raises(ValueError, match="segmentation: expected one of .* got 'manual'"):
        run(cfg, Path("."), HeartDataModule(), None)
    with pytest.raises(ValueError, match="data.input=segments"):
        run(cfg, Path("."), HeartDataModule(input="spectrogram"), None)


def test_interrupted_heart_run_resumes_to_the_same_result(run_fit, tmp_path):
    args = ["config=heart_segmentation", *TINY_HEART, "trainer.max_epochs=3"]
    args += ["model.net.channels=[8,8]", "evaluation.n_examples=1"]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    run_fit(*args, f"hydra.run.dir={full}")
    last = run_killed(run_fit, args, crashed, epoch=1, batch=1)  # in the middle of epoch 2
    assert torch.load(last, weights_only=True)["epoch"] == 0

    run_fit(*args, f"ckpt_path={last}")
    a, b = _metrics(full), _metrics(crashed)
    assert a["classifier"]["val"] == b["classifier"]["val"]
    assert a["classifier"]["test"] == b["classifier"]["test"]
    assert a["evaluation"] == b["evaluation"]
