"""The README's real-dataset command lines, end to end, on fixtures in the real layouts.

Every documented layout runs with every experiment it fits, with only size-shrinking
overrides: AudioMNIST and ESC-50 with ``blackbox_events`` and ``nmf_interpreter`` (no STFT
or feature override, so a front end that does not follow the dataset's config fails here),
PhysioNet 2016 with ``heart_segmentation`` and ``blackbox_heart``, Mid-level + Soundtracks
with ``midlevel_emotion`` and ``blackbox_emotion``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

from evaluate.nmf.scoring import LOCALIZATION_METRICS
from interp_models.data.synth_music import SynthMusicConfig, generate_music
from interp_models.data.synth_pcg import SynthPCGConfig, generate_pcg

AUDIOMNIST_SR = 48000  # the real recordings' rate
ESC50_SR = 44100
ESC50_SECONDS = 5.0  # every real ESC-50 clip; esc50.yaml keeps 5 s

# Shrinks the runs only: no data.features.* (each dataset config's own STFT must work).
SMALL = [
    "model.net.channels=[8,16]",
    "data.batch_size=16",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
]
BLACKBOX_SMALL = ["trainer.max_epochs=2"]
NMF_SMALL = [  # one epoch per stage: these runs check that every step runs, not learning
    "classifier_epochs=1",
    "trainer.max_epochs=1",
    "interpreter.layers=[block1,block2]",
    "interpreter.dictionary.n_components=12",
    "interpreter.dictionary.max_iter=30",
    "interpreter.hidden=32",
    "interpreter.branch_channels=8",
    "interpreter.evaluation.n_examples=2",
]
LOCALIZATION = set(LOCALIZATION_METRICS)


def _harmonic_stack(f0: float, formant: float, seconds: float, sr: int, rng) -> np.ndarray:
    """A voiced-sound stand-in: harmonics of ``f0`` weighted around ``formant`` Hz, with a
    smooth onset and offset and a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    wave = np.zeros_like(t)
    for k in range(1, int(3000 / f0) + 1):
        weight = np.exp(-0.5 * ((k * f0 - formant) / 400.0) ** 2) + 0.2 / k
        wave += weight * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    envelope = np.sqrt(np.clip(np.sin(np.pi * t / t[-1]), 0.0, None))
    wave = wave * envelope / np.abs(wave).max()
    return 0.5 * wave + 0.005 * rng.standard_normal(t.size)


def make_audiomnist(root: Path, speakers: int = 10, seed: int = 0) -> Path:
    """``<root>/data/<speaker>/<digit>_<speaker>_<index>.wav`` (48 kHz mono PCM16) plus
    ``data/audioMNIST_meta.txt``, as in the real AudioMNIST; clips of 0.3-0.9 s.

    A digit is a pitch and a formant of its own; a speaker shifts both by a few percent.
    """
    rng = np.random.default_rng(seed)
    meta = {}
    for s in range(1, speakers + 1):
        spk = f"{s:02d}"
        (root / "data" / spk).mkdir(parents=True)
        voice = rng.uniform(0.96, 1.04)
        meta[spk] = {"gender": "female" if s % 2 else "male", "recordingroom": "fixture"}
        for digit in range(10):
            for take in range(1 + (s + digit) % 2):  # 1-2 takes
                f0 = 110.0 * 2 ** (digit / 8) * voice
                wave = _harmonic_stack(
                    f0, 600.0 + 180.0 * digit, rng.uniform(0.3, 0.9), AUDIOMNIST_SR, rng
                )
                path = root / "data" / spk / f"{digit}_{spk}_{take}.wav"
                sf.write(path, wave, AUDIOMNIST_SR, subtype="PCM_16")
    (root / "data" / "audioMNIST_meta.txt").write_text(json.dumps(meta, indent=1))
    return root


def make_esc50(root: Path, n_classes: int = 3, per_fold: int = 2, seed: int = 0) -> Path:
    """``audio/<fold>-<src>-<take>-<target>.wav`` (44.1 kHz stereo PCM16, 5 s) and
    ``meta/esc50.csv``, as in ESC-50-master; no ``masks/`` (real data has no ground truth)."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    n = int(ESC50_SECONDS * ESC50_SR)
    src = 100000
    for fold in range(1, 6):
        for target in range(n_classes):
            for _ in range(per_fold):
                src += 1
                event = _harmonic_stack(
                    150.0 * 2.5**target,
                    500.0 + 1500.0 * target,
                    rng.uniform(1.0, 3.0),
                    ESC50_SR,
                    rng,
                )
                start = rng.integers(0, n - event.size)
                mono = 0.01 * rng.standard_normal(n)
                mono[start : start + event.size] += event
                stereo = np.stack([mono, 0.8 * mono], axis=1)
                name = f"{fold}-{src}-A-{target}.wav"
                sf.write(root / "audio" / name, stereo, ESC50_SR, subtype="PCM_16")
                rows.append(f"{name},{fold},{target},class{target},False,{src},A")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def audiomnist_root(tmp_path_factory) -> Path:
    return make_audiomnist(tmp_path_factory.mktemp("layouts") / "AudioMNIST")


@pytest.fixture(scope="module")
def esc50_root(tmp_path_factory) -> Path:
    return make_esc50(tmp_path_factory.mktemp("layouts") / "ESC-50-master")


def _fit(run_fit, run_dir: Path, *overrides: str) -> dict[str, Any]:
    """Run a README command line plus ``SMALL`` and ``overrides``; its ``metrics.json``."""
    run_fit(*overrides, *SMALL, f"hydra.run.dir={run_dir}")
    return json.loads((run_dir / "metrics.json").read_text())


def _readme(config: str, layout: str, root: Path) -> list[str]:
    """``python -m train.fit config=<config> data=<layout> data.root=<root>`` (README)."""
    return [f"config={config}", f"data={layout}", f"data.root={root}"]


def _check_data(m: dict[str, Any], root: Path, n_classes: int) -> None:
    """Every clip read, every split non-empty, no speaker / source recording in two splits."""
    data = m["data"]
    assert data["num_clips"] == len(list(root.rglob("*.wav"))) and data["skipped_files"] == []
    assert data["num_classes"] == n_classes
    assert min(data["splits"].values()) > 0, data["splits"]
    assert data["groups_shared_by_splits"] == []


def _train_losses(run_dir: Path) -> list[float]:
    """The per-epoch training loss of the run's CSV log."""
    with next(run_dir.rglob("metrics.csv")).open() as fh:
        return [float(r["train/loss"]) for r in csv.DictReader(fh) if r.get("train/loss")]


def _check_spec_follows_x(run_dir: Path) -> None:
    features = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["features"]
    x, spec = features["x"], features["spec"]
    assert (spec["n_fft"], spec["hop_length"]) == (x["n_fft"], x["hop_length"])


def _check_nmf(m: dict[str, Any]) -> None:
    """Both stages and the explanations ran; no ground truth, so no localization numbers."""
    assert {"classifier", "interpreter"} <= set(m) and "test" in m["classifier"]
    for split in ("val", "test"):
        scores = m["explanations"][split]
        assert scores["n_clips"] == m["data"]["splits"][split]
        assert 0 <= scores["fidelity_top1"] <= 1
        assert not LOCALIZATION & set(scores), "localization scored without ground truth"
    status = m["explanations"]["localization"]
    assert status["scored"] == {"val": False, "test": False}
    assert status["clips_without_mask"] == {s: m["data"]["splits"][s] for s in ("val", "test")}
    assert m["examples"], "no explanation exported"


def test_audiomnist_blackbox_events(run_fit, audiomnist_root, tmp_path):
    run_dir = tmp_path / "run"
    readme = _readme("blackbox_events", "audiomnist", audiomnist_root)
    m = _fit(run_fit, run_dir, *readme, *BLACKBOX_SMALL)
    _check_data(m, audiomnist_root, n_classes=10)
    assert m["data"]["groups_per_split"] == {"train": 6, "val": 2, "test": 2}  # speakers
    losses = _train_losses(run_dir)
    assert len(losses) == 2 and losses[1] < losses[0]


def test_audiomnist_nmf_interpreter(run_fit, audiomnist_root, tmp_path):
    run_dir = tmp_path / "run"
    readme = _readme("nmf_interpreter", "audiomnist", audiomnist_root)
    m = _fit(run_fit, run_dir, *readme, *NMF_SMALL)
    _check_data(m, audiomnist_root, n_classes=10)
    assert m["data"]["groups_per_split"] == {"train": 6, "val": 2, "test": 2}
    _check_spec_follows_x(run_dir)
    _check_nmf(m)


def test_esc50_blackbox_events(run_fit, esc50_root, tmp_path):
    readme = _readme("blackbox_events", "esc50", esc50_root)
    m = _fit(run_fit, tmp_path / "run", *readme, *BLACKBOX_SMALL)
    _check_data(m, esc50_root, n_classes=3)
    assert m["data"]["splits"] == {"train": 18, "val": 6, "test": 6}


def test_esc50_nmf_interpreter(run_fit, esc50_root, tmp_path):
    run_dir = tmp_path / "run"
    m = _fit(run_fit, run_dir, *_readme("nmf_interpreter", "esc50", esc50_root), *NMF_SMALL)
    _check_data(m, esc50_root, n_classes=3)
    _check_spec_follows_x(run_dir)
    _check_nmf(m)


def test_explicit_spec_stft_that_differs_from_x_is_refused(run_fit, audiomnist_root, tmp_path):
    readme = _readme("nmf_interpreter", "audiomnist", audiomnist_root)
    proc = run_fit(
        *readme,
        *SMALL,
        *NMF_SMALL,
        "data.features.spec.n_fft=1024",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert proc.returncode != 0
    assert "data.features.x and data.features.spec use different STFTs" in proc.stderr


# The other two documented layouts, written by the built-in generators (which write exactly
# these layouts) with the generators' own files removed, so only what a real copy has is read.
HEART_SMALL = {
    "heart_segmentation": ["trainer.max_epochs=1", "evaluation.n_examples=1"],
    "blackbox_heart": ["trainer.max_epochs=1"],
}


def _without(root: Path, *names: str) -> Path:
    """``root`` without the generator-only files and folders ``names``."""
    for name in names:
        path = root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return root


def test_physionet2016_layout_runs_both_heart_experiments(run_fit, tmp_path):
    config = SynthPCGConfig(num_recordings=30, duration_s=(5.0, 6.0))
    root = _without(generate_pcg(config, tmp_path / "training"), "generator.json")
    for name, small in HEART_SMALL.items():
        readme = [f"config={name}", f"data.root={root}"]  # the README's command line
        run_fit(*readme, *SMALL, *small, f"hydra.run.dir={tmp_path / name}")
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        assert m["data"]["num_recordings"] == 30 and m["data"]["skipped_files"] == []
        assert min(split["recordings"] for split in m["data"]["splits"].values()) > 0
    assert (tmp_path / "heart_segmentation" / "segmenter.json").is_file()


def test_midlevel_soundtracks_layout_runs_both_emotion_experiments(run_fit, tmp_path):
    root = generate_music(SynthMusicConfig(num_clips=40, clip_seconds=2.0), tmp_path / "ml")
    root = _without(root, "meta", "masks")
    ratings = root / "soundtracks" / "mean_ratings_set1.csv"
    for name in ("midlevel_emotion", "blackbox_emotion"):
        readme = [f"config={name}", "data=midlevel", f"data.root={root}"]
        readme += [f"data.ratings={ratings}", f"data.ratings_audio={root / 'audio'}"]
        probe = ["probe_clips=4", "probe_contrast_clips=1"]  # the probe, not the layout: small
        probe = [f"emotion.evaluation.selectivity.{p}" for p in probe]
        run_fit(*readme, *SMALL, *probe, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / name}")
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        assert "emotion_r" in m["test"]
        assert m["evidence"]["status"] == "no evidence masks (real data)"
