"""End to end: the two NMF-interpreter regimes and single-clip explanation, on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, TINY_DATA

from tests.helpers import (
    assert_same_state,
    lexicographic_best,
    run_killed,
    state_under,
    validation_epochs,
)

NMF_TINY = [
    *TINY_DATA,
    "interpreter.dictionary.n_components=12",
    "interpreter.hidden=32",
    "interpreter.branch_channels=8",
    "interpreter.dictionary.max_iter=30",
    "interpreter.evaluation.n_examples=2",
    "interpreter.layers=[block1,block2]",
    "logger=csv",
]

EXPLANATION_METRICS = {
    "fidelity_top1",
    "fidelity_top3",
    "FF",
    "FF_random",
    "FidIn",
    "AI",
    "AD",
    "AG",
    "mass_inside",
    "iou",
    "recon_mse",
    "h_hoyer",
    "clf_acc",
}


def assert_explains_the_reported_classifier(run_dir: Path, m: dict) -> None:
    """The classifier inside every interpreter checkpoint is bit-identical (parameters and
    every buffer) to the classifier stage's kept checkpoint, the dictionary to the run's
    ``dictionary.npz``, and both stages report the same classifier test accuracy."""
    kept = state_under(run_dir / m["classifier"]["best_checkpoint"], "net.")
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        assert_same_state(kept, state_under(ckpt, "model.classifier."))
        W = state_under(ckpt, "model.")["W"]
        assert torch.equal(W, torch.as_tensor(np.load(run_dir / "dictionary.npz")["W"]))
    assert m["interpreter"]["test"]["clf_acc"] == pytest.approx(m["classifier"]["test"]["acc"])
    assert m["explanations"]["test"]["clf_acc"] == pytest.approx(m["classifier"]["test"]["acc"])


def assert_kept_epochs_follow_the_selection_rule(run_dir: Path, m: dict) -> None:
    """Each stage keeps the epoch best on its monitor, then on validation loss; the kept
    interpreter reconstructs its input better than zero does."""
    stages = [("interpreter", run_dir)]
    if "best_epoch" in m.get("classifier", {}):
        stages.append(("classifier", run_dir / "classifier"))
    if "lmac" in m:
        stages.append(("lmac", run_dir / "lmac"))
    for stage, stage_dir in stages:
        s = m[stage]
        rows = validation_epochs(stage_dir, s["epochs_trained"])
        mode = "min" if s["monitor"] == "val/loss" else "max"
        assert s["best_epoch"] == lexicographic_best(rows, s["monitor"], mode)
        assert s["monitor_value"] == pytest.approx(rows[s["best_epoch"]][s["monitor"]])
        assert s["tiebreak_value"] == pytest.approx(rows[s["best_epoch"]]["val/loss"])
    assert m["interpreter"]["val"]["recon_relative"] < 1.0
    if m["interpreter"]["monitor"] == "val/selection":
        assert m["interpreter"]["val"]["selection"] > 0.0


def assert_lmac_explains_the_frozen_classifier(run_dir: Path, m: dict) -> None:
    """The run's L-MAC stage: chosen on its validation loss, its classifier bit-identical to
    the kept one in every checkpoint, its masks scored on validation and test."""
    assert m["lmac"]["monitor"] == "val/loss"
    kept = state_under(run_dir / m["classifier"]["best_checkpoint"], "net.")
    for ckpt in (run_dir / "lmac" / "checkpoints").glob("*.ckpt"):
        assert_same_state(kept, state_under(ckpt, "model.classifier."))
    for split in ("val", "test"):
        scores = m["lmac"]["explanations"][split]
        assert {"FF", "FidIn", "AI", "AD", "AG", "mass_inside", "area"} <= set(scores)
        assert 0 <= scores["area"] <= 1 and scores["n_clips"] > 0


def test_posthoc_interpreter_run_and_explain_cli(run_fit, tmp_path, cache_dir):
    run_dir = tmp_path / "posthoc"
    run_fit(
        "config=nmf_interpreter",
        *NMF_TINY,
        "classifier_epochs=2",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["regime"] == "posthoc" and m["interpreter"]["monitor"] == "val/selection"
    assert m["classifier"]["monitor"] == "val/acc"
    assert_explains_the_reported_classifier(run_dir, m)
    assert_kept_epochs_follow_the_selection_rule(run_dir, m)
    assert_lmac_explains_the_frozen_classifier(run_dir, m)
    assert (run_dir / "classifier" / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (
        run_dir / "dictionary.npz"
    ).is_file()
    for split in ("val", "test"):
        assert EXPLANATION_METRICS <= set(m["explanations"][split])
        assert 0 <= m["explanations"][split]["mass_inside"] <= 1
    assert len(m["examples"]) == 2
    example = run_dir / "explanations" / m["examples"][0]["clip"]
    for name in ("input.wav", "explanation.wav", "figure.png", "explanation.json"):
        assert (example / name).stat().st_size > 0
    wave, sr = sf.read(example / "explanation.wav")
    assert sr == 16000 and len(wave) == 16000

    # A user's own clip: 44.1 kHz stereo, resampled, explained, written.
    clip = tmp_path / "mine.wav"
    original, _ = sf.read(example / "input.wav")
    sf.write(clip, __import__("numpy").stack([original, original], 1), 16000)
    out = tmp_path / "explained"
    proc = subprocess.run(
        [sys.executable, "-m", "evaluate.explain", str(clip), f"run={run_dir}", f"out={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "explanation.wav" in proc.stdout and (out / "figure.png").is_file()
    record = json.loads((out / "explanation.json").read_text())
    assert record["grouping"] == "components" and record["method"] == "nmf_interpreter"


def test_joint_interpreter_run(run_fit, tmp_path):
    run_dir = tmp_path / "joint"
    run_fit(
        "config=nmf_interpreter_joint",
        *NMF_TINY,
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["regime"] == "joint" and "classifier" not in m
    assert m["interpreter"]["monitor"] == "val/selection"
    assert_kept_epochs_follow_the_selection_rule(run_dir, m)
    assert {"acc", "clf_acc", "fidelity_top1"} <= set(m["interpreter"]["test"])
    assert not (run_dir / "classifier").exists()


def test_faithful_interpreter_run(run_fit, tmp_path):
    """The faithful regime: frozen classifier, time-resolved evidence, the interpreter's own
    mask trained with L-MAC's objective and chosen on the validation loss."""
    from evaluate.runs import load_run

    run_dir = tmp_path / "faithful"
    run_fit(
        "config=nmf_interpreter_faithful",
        *NMF_TINY,
        "classifier_epochs=1",
        "trainer.max_epochs=2",
        "lmac.enabled=false",
        f"hydra.run.dir={run_dir}",
    )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["regime"] == "faithful" and m["interpreter"]["monitor"] == "val/loss"
    assert "lmac" not in m and not (run_dir / "lmac").exists()
    assert_explains_the_reported_classifier(run_dir, m)
    assert_kept_epochs_follow_the_selection_rule(run_dir, m)
    assert {"loss_mask_in", "loss_mask_out", "loss_mask_area", "fid_in"} <= set(
        m["interpreter"]["val"]
    )
    assert EXPLANATION_METRICS <= set(m["explanations"]["test"])
    run = load_run(run_dir)
    assert run.model.relevance_mode == "time"
    x = torch.randn(2, 64, 63)
    with torch.no_grad():
        e = run.model.explain(x)
    head = e.maps["logits"].gather(1, e.target[:, None])[:, 0]
    assert torch.allclose(e.attribution.sum(dim=1), head, atol=1e-4)  # exact for its output


def test_classifier_checkpoint_from_other_audio_settings_is_refused(run_fit, tmp_path):
    bb = tmp_path / "bb"
    run_fit(
        "config=blackbox_events",
        *TINY_DATA,
        "trainer.max_epochs=1",
        "logger=csv",
        f"hydra.run.dir={bb}",
    )
    ckpt = bb / "checkpoints" / "last.ckpt"
    proc = run_fit(
        "config=nmf_interpreter",
        *NMF_TINY,
        f"classifier_ckpt={ckpt}",
        "data.features.x.n_mels=32",
        f"hydra.run.dir={tmp_path / 'r'}",
        check=False,
    )
    assert proc.returncode != 0 and "classifier_ckpt" in proc.stderr
    run_fit(
        "config=nmf_interpreter",
        *NMF_TINY,
        f"classifier_ckpt={ckpt}",
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path / 'ok'}",
    )
    m = json.loads((tmp_path / "ok" / "metrics.json").read_text())
    assert m["classifier"] == {"checkpoint": str(ckpt)}
    frozen = state_under(tmp_path / "ok" / "checkpoints" / "last.ckpt", "model.classifier.")
    assert_same_state(state_under(ckpt, "net."), frozen)  # the given classifier, untouched


def test_killed_interpreter_stage_resumes_without_retraining_the_classifier(run_fit, tmp_path):
    run_dir = tmp_path / "killed"
    args = [
        "config=nmf_interpreter",
        *NMF_TINY,
        "classifier_epochs=1",
        "lmac.epochs=1",
        "trainer.max_epochs=3",
    ]
    last = run_killed(run_fit, args, run_dir, epoch=1, batch=1)  # interpreter's 2nd epoch
    classifier_done = run_dir / "classifier" / "stage.json"
    lmac_done = run_dir / "lmac" / "stage.json"
    stamps = [classifier_done.stat().st_mtime_ns, lmac_done.stat().st_mtime_ns]
    assert not (run_dir / "stage.json").exists()

    run_fit(*args, f"ckpt_path={last}")
    m = json.loads((run_dir / "metrics.json").read_text())
    # finished stages reused, not retrained
    assert [classifier_done.stat().st_mtime_ns, lmac_done.stat().st_mtime_ns] == stamps
    assert m["interpreter"]["epochs_trained"] == 3 and "test" in m["explanations"]
