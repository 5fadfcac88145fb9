"""End to end: ``python -m train.fit`` runs the three emotion set-ups on tiny built-in music."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from evaluate.emotion.explain import main as explain_main
from evaluate.emotion.runs import load_emotion_run
from interp_models.emotion.models import A2E, MidLevelEmotionModel
from train.emotion.pipeline import build_model

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.num_clips=40",
    "data.clip_seconds=2.0",
    "data.batch_size=8",
    "model.net.channels=[4,8]",
    "trainer.max_epochs=2",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    # emotion.* keys need ++: a multirun validates overrides against the primary config
    # (blackbox_events, no emotion group) first.
    "++emotion.evaluation.selectivity.n_clips=2",
    "++emotion.evaluation.selectivity.probe_clips=8",
    "++emotion.evaluation.selectivity.probe_contrast_clips=1",
]
CONFIGS = ("midlevel_emotion", "midlevel_emotion_separate", "blackbox_emotion")


@pytest.fixture(scope="module")
def runs(run_fit, tmp_path_factory) -> dict[str, Path]:
    """One multirun over the three experiments (one interpreter start, one data build)."""
    sweep = tmp_path_factory.mktemp("emotion_runs")
    run_fit(f"config={','.join(CONFIGS)}", *TINY, f"hydra.sweep.dir={sweep}", multirun=True)
    return {name: sweep / str(i) for i, name in enumerate(CONFIGS)}


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_three_variants_train_and_report(runs):
    for name, run_dir in runs.items():
        m = _metrics(run_dir)
        assert m["config"] == name and (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert (run_dir / m["training"]["best_checkpoint"]).is_file()
        assert m["data"]["splits"] == {"train": 24, "val": 8, "test": 8} and m["data"]["builtin"]
        for split in ("val", "test"):
            assert -1 <= m[split]["emotion_r"] <= 1 and m[split]["emotion_rmse"] > 0
            per = m["per_output"][split]
            assert {f"emotion/r_{e}" for e in m["data"]["emotions"]} <= set(per)
        assert 0 <= m["evidence"]["chance_share_by_emotion"]["valence"] <= 1
    joint, separate, a2e = (_metrics(runs[n]) for n in CONFIGS)
    assert joint["training"]["monitor"] == "val/emotion_r"
    assert separate["training"]["monitor"] == "val/quality_r"
    assert a2e["training"]["monitor"] == "val/emotion_r" and "quality_r" not in a2e["test"]
    assert separate["linear_map"]["n_clips"] == 24
    for m in (joint, separate):
        assert -1 <= m["test"]["quality_r"] <= 1
        agree = m["mapping"]["agreement"]
        assert 0 <= agree["sign_agreement"] <= 1 and agree["n_signed"] > 40
        assert np.array(m["mapping"]["learned"]).shape == (8, 7)
        ex = m["explanations"]
        assert (
            0 <= ex["top_quality_agreement"] <= 1 and ex["contrasts"]["n_clips"] == 8
        )  # the whole test split
    example = joint["explanations"]["contrasts"]["examples"][0]
    folder = runs["midlevel_emotion"] / "explanations" / example["song_id"]
    names = {"original.wav", f"{example['quality']}_low.wav", f"{example['quality']}_high.wav"}
    assert names <= {p.name for p in folder.iterdir()} and (folder / "effects.png").is_file()
    assert (runs["midlevel_emotion"] / "explanations" / "mapping.png").is_file()


def test_separate_map_is_the_least_squares_fit_and_runs_reload(runs):
    run = load_emotion_run(runs["midlevel_emotion_separate"])
    assert isinstance(run.model, MidLevelEmotionModel)
    m = _metrics(run.run_dir)
    np.testing.assert_allclose(
        run.model.mapping.detach().numpy(), m["mapping"]["learned"], atol=1e-4
    )
    assert isinstance(load_emotion_run(runs["blackbox_emotion"]).model, A2E)
    # A user's clip explained with the joint run.
    clip = next((runs["midlevel_emotion"] / "explanations").glob("*/original.wav"))
    out = explain_main([str(clip), f"run={runs['midlevel_emotion']}", "emotion=sad"])
    record = json.loads((out / "explanation.json").read_text())
    extra = record["meta"]
    assert extra["explained_emotion"] == "sad" and set(extra["qualities"]) == set(run.qualities)
    assert record["labels"] == run.qualities and record["grid"] is None
    with pytest.raises(SystemExit, match="black-box"):
        explain_main([str(clip), f"run={runs['blackbox_emotion']}"])


def test_variant_and_model_must_match():
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("fit", overrides=["config=blackbox_emotion", "emotion.variant=joint"])
        with pytest.raises(
            ValueError, match="model.net: variant 'joint' needs MidLevelEmotionModel"
        ):
            build_model(cfg, dm=None)
        cfg = compose("fit", overrides=["config=midlevel_emotion", "emotion.variant=both"])
        with pytest.raises(ValueError, match="emotion.variant: unknown 'both'"):
            build_model(cfg, dm=None)


def test_selective_regime_trains_on_contrasts_and_scores_selectivity(run_fit, tmp_path):
    """``config=midlevel_emotion_selective`` through the CLI: the training batches carry the
    one-quality re-renders (the contrast loss is logged by Lightning's loop), the config's
    spectral augmentation is on, and ``metrics.json`` holds the selectivity on the run's
    own test clips and on the independent probe renderer."""
    run_dir = tmp_path / "selective"
    run_fit(
        "config=midlevel_emotion_selective",
        *TINY,
        "data.contrasts_per_clip=1",
        f"hydra.run.dir={run_dir}",
    )
    m = _metrics(run_dir)
    assert m["loss_weights"]["contrast"] == 1.0
    assert m["augment"] == {"tilt_db": 6.0, "eq_db": 4.0, "gain_db": 6.0, "shift_bands": 1.0}
    logged = (run_dir / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "train/contrast_loss" in logged.split(",")
    sel = m["selectivity"]
    assert sel["contrasts"]["n_clips"] == 2 and np.array(sel["contrasts"]["matrix"]).shape == (7, 7)
    assert set(sel["contrasts"]["dominance"]) == set(m["data"]["qualities"])
    assert sel["probe_factors"]["n_clips"] == 8 and np.array(sel["probe_factors"]["auc"]).shape == (
        7,
        7,
    )
    assert sel["probe_contrasts"]["n_clips"] == 1
    # contrasts need the built-in generator's re-renders; a weight without them is refused
    proc = run_fit(
        "config=midlevel_emotion_selective",
        *TINY,
        "data.contrasts_per_clip=0",
        f"hydra.run.dir={tmp_path / 'refused'}",
        check=False,
    )
    assert proc.returncode != 0 and "data.contrasts_per_clip" in proc.stderr
