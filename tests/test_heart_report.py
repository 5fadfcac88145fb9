"""The heart-sound report: segmentation-aware model versus post-hoc explanations of the
black box, per cardiac state (Dissanayake et al., IEEE JBHI 2020), end to end on tiny
built-in phonocardiograms, plus the helpers with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluate.heart.posthoc import relevance_by_beat_state
from evaluate.heart.report import (
    INTRINSIC,
    _aggregate,
    check_same_data,
    lesion_share,
)
from evaluate.metrics.statistics import mcnemar_exact, wilson_interval
from interp_models.heart.model import spread_over_frames
from interp_models.heart.states import DIASTOLE, FRAME_RATE, S1, S2, SYSTOLE
from tests.test_heart_cli import TINY_HEART

# Two beats at 50 Hz: S1 6 frames, systole 15, S2 5, diastole 24 (1 s each).
BEAT = [S1] * 6 + [SYSTOLE] * 15 + [S2] * 5 + [DIASTOLE] * 24
STATES = np.array(BEAT * 2)


# ----------------------------------------------------------------------------- units


def test_relevance_entirely_in_systole_hits_systole_not_diastole():
    times = (np.arange(STATES.size) + 0.5) / FRAME_RATE
    relevance = np.where(STATES == SYSTOLE, 1.0, 0.0)
    scored = _aggregate(relevance, times, STATES, SYSTOLE)
    assert scored.hit and scored.hit_mean
    assert scored.per_state == pytest.approx([0.0, 30.0, 0.0, 0.0])
    assert scored.lesion_share == pytest.approx(1.0)
    assert not _aggregate(relevance, times, STATES, DIASTOLE).hit
    # negative relevance elsewhere does not move positive mass off the lesion state
    relevance[STATES == DIASTOLE] = -5.0
    assert _aggregate(relevance, times, STATES, SYSTOLE).lesion_share == pytest.approx(1.0)


def test_relevance_on_a_finer_grid_aggregates_by_the_frame_holding_each_time():
    # 4 columns per 20 ms frame (e.g. a 200 Hz spectrogram): each column counts once
    times = (np.arange(4 * STATES.size) + 0.5) / (4 * FRAME_RATE)
    relevance = np.repeat(np.where(STATES == S2, 0.25, 0.0), 4)
    per_beat, mask = relevance_by_beat_state(relevance, times, STATES, FRAME_RATE)
    assert per_beat[:, S2 - 1] == pytest.approx([5.0, 5.0]) and mask.all()


def test_spread_over_frames_inverts_per_beat_aggregation():
    per_beat = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 2.0]])
    frames = spread_over_frames(torch.tensor(per_beat)[None], torch.tensor(STATES)[None])[0]
    frames = frames.numpy()
    times = (np.arange(STATES.size) + 0.5) / FRAME_RATE
    again, mask = relevance_by_beat_state(frames, times, STATES, FRAME_RATE)
    assert np.allclose(again, per_beat) and mask.all()


def test_lesion_share_counts_positive_span_relevance_only():
    beats = np.array([[1.0, 3.0, -4.0, 0.0], [0.0, 1.0, 0.0, -2.0]])
    mask = np.ones_like(beats, dtype=bool)
    assert lesion_share(beats, mask, SYSTOLE) == pytest.approx(4.0 / 5.0)
    assert lesion_share(beats, mask, S2) == 0.0
    assert np.isnan(lesion_share(-np.abs(beats), mask, SYSTOLE))
    mask[0, 1] = False  # a span that does not exist contributes nothing
    assert lesion_share(beats, mask, SYSTOLE) == pytest.approx(1.0 / 2.0)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_mcnemar_exact_uses_discordant_pairs():
    a = [True] * 6 + [True] * 4 + [False] * 3
    b = [False] * 6 + [True] * 4 + [False] * 3
    assert mcnemar_exact(a, b) == pytest.approx(2 / 2**6)  # 6 discordant, all one way
    assert mcnemar_exact(a, a) == 1.0
    assert mcnemar_exact([True, False], [False, True]) == 1.0
    with pytest.raises(ValueError, match="shape"):
        mcnemar_exact([True], [True, False])


def test_runs_on_other_data_are_refused_naming_both():
    a = {"data": {"synth": {"num_recordings": 30}, "test_folds": [5]}}
    b = {"data": {"synth": {"num_recordings": 40}, "test_folds": [5]}}
    with pytest.raises(ValueError, match=r"run=/r/heart and blackbox=/r/bb .*data\.synth"):
        check_same_data(a, b, Path("/r/heart"), Path("/r/bb"))
    check_same_data(a, {"data": {**a["data"], "input": "spectrogram"}}, Path("a"), Path("b"))


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def runs(run_fit, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("heart_report")
    heart, bb = root / "heart", root / "bb"
    run_fit(
        "config=heart_segmentation",
        *TINY_HEART,
        "trainer.max_epochs=2",
        "model.net.channels=[8,8]",
        "evaluation.n_examples=1",
        f"hydra.run.dir={heart}",
    )
    run_fit(
        "config=blackbox_heart",
        *TINY_HEART,
        "trainer.max_epochs=2",
        "model.net.channels=[8]",
        f"hydra.run.dir={bb}",
    )
    return heart, bb


def test_report_compares_intrinsic_and_posthoc_per_state(runs, tmp_path, monkeypatch, cache_dir):
    from evaluate.heart.explain import load_heart_run
    from evaluate.report import main
    from interp_models.audio.io import load_audio
    from interp_models.data.physionet2016 import read_segmentation

    monkeypatch.setenv("INTERP_MODELS_CACHE", str(cache_dir))
    heart, bb = runs
    out = tmp_path / "report"
    paths = main(
        [
            f"run={heart}",
            f"blackbox={bb}",
            "n_clips=3",
            "methods=saliency,occlusion",
            f"out={out}",
            "sanity_clips=2",
            "sanity_draws=2",
        ]
    )
    for key in ("md", "html", "json", "state_bars", "hit_rates", "time"):
        assert Path(paths[key]).is_file(), key
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "## Verdict" in md and "<h2>Verdict</h2>" in html
    assert "![per-state relevance by method](state_bars.png)" in md
    assert html.count("data:audio/wav;base64,") == 4  # recording, intrinsic, 2 post-hoc
    report = json.loads(paths["json"].read_text())
    assert report["methods"] == ["saliency", "occlusion"]
    assert report["recordings"], "tiny data has abnormal test recordings"
    for table in ("primary", "all_abnormal"):
        for method in (INTRINSIC, "saliency", "occlusion"):
            for seg in ("springer", "ground_truth"):
                s = report["summary"][table][method][seg]
                if s["n"]:
                    assert 0.0 <= s["hit_rate"] <= 1.0, (table, method, seg, s)
                    assert s["hit_rate_lo"] <= s["hit_rate"] <= s["hit_rate_hi"]
    assert report["summary"]["all_abnormal"][INTRINSIC]["springer"]["n"] == len(
        report["recordings"]
    )
    assert sum(r["hit_rate_set"] for r in report["recordings"]) <= 3

    # The intrinsic per-state values are the model's own explanation, recomputed here.
    run = load_heart_run(heart)
    hop = run.sample_rate // FRAME_RATE
    for rec in report["recordings"]:
        wave = load_audio(rec["path"], run.sample_rate)
        states = read_segmentation(Path(rec["path"]).with_suffix(".tsv")).to_frames(
            len(wave) // hop
        )
        e = run.model.explain(
            torch.from_numpy(wave.astype(np.float32))[None],
            states=torch.from_numpy(states.astype(np.int64))[None],
            target=0,
            negate=False,
        )
        values = list(rec["methods"][INTRINSIC]["ground_truth"]["per_state"].values())
        assert np.allclose(values, e.attribution[0].numpy(), atol=1e-5)
        for method in ("saliency", "occlusion"):
            assert rec["seconds"][method] > 0 and rec["n_evals"][method] >= 1
            per_beat = np.array(rec["methods"][method]["springer"]["per_beat"])
            per_state = list(rec["methods"][method]["springer"]["per_state"].values())
            assert np.allclose(per_beat.sum(0), per_state)

    # Robustness and randomisation: every method on the first two recordings, per span.
    assert Path(paths["sanity"]).is_file() and "## Robustness and randomisation" in md
    sanity = report["sanity"]
    assert set(sanity["methods"]) == {INTRINSIC, "saliency", "occlusion"}
    for name, m in sanity["methods"].items():
        s = m["summary"]
        for key in ("sensitivity", "spearman_top", "spearman_all"):
            assert s[key] is not None and np.isfinite(s[key]), (name, key)
        assert s["spearman_unchanged"] == 1.0, name
    assert sanity["methods"][INTRINSIC]["blocks"] == [
        "state evidence heads + bias",
        "span standardisation statistics",
        "cnn.2",
        "cnn.0",
    ]
    assert "Springer segmentation" in sanity["randomised"] and "waveform" in sanity["perturbation"]


def test_report_refuses_a_blackbox_trained_on_other_data(runs, tmp_path):
    import yaml

    from evaluate.heart.report import HeartReport
    from evaluate.reporting.skeleton import ReportRequest, write_report

    heart, bb = runs
    other = tmp_path / "bb_other"
    other.mkdir()
    cfg = yaml.safe_load((bb / "config.yaml").read_text())
    cfg["data"]["test_folds"] = [4]
    cfg["data"]["val_folds"] = [5]
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    (other / "metrics.json").write_text((bb / "metrics.json").read_text())
    (other / "checkpoints").symlink_to(bb / "checkpoints")
    with pytest.raises(ValueError, match=rf"run={heart} and blackbox={other}.*test_folds"):
        write_report(HeartReport(), ReportRequest((heart,), other, tmp_path, 3, ("saliency",)))
    with pytest.raises(ValueError, match="not a heart-sound black-box run"):
        write_report(HeartReport(), ReportRequest((heart,), heart, tmp_path, 3, ("saliency",)))
