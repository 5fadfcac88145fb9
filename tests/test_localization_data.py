"""Multichannel loading, the localization clips and their black box through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from interp_models.audio.io import AudioReadError, load_audio
from interp_models.blackbox.wavecnn import WaveformCNN
from interp_models.data.localization import LocalizationClips

TINY = {"num_clips": 20, "rt60_s": (0.0, 0.3), "clip_seconds": 1.0}


def test_load_audio_keeps_the_channels_of_an_array_recording(tmp_path):
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, (22050, 3)).astype(np.float32)
    path = tmp_path / "array.wav"
    sf.write(path, wave, 22050, subtype="FLOAT")
    out = load_audio(path, 16000, 16000, channels=3)
    assert out.shape == (3, 16000) and out.dtype == np.float32
    same_rate = load_audio(path, 22050, 100, channels=3)
    np.testing.assert_array_equal(same_rate, wave[:100].T)
    assert load_audio(path, 22050).shape == (22050,)  # mono: the channels averaged
    with pytest.raises(AudioReadError, match=r"array\.wav.*has 3 channels, expected 4"):
        load_audio(path, 16000, channels=4)


def test_localization_clips_read_the_generated_layout(tmp_path):
    dm = LocalizationClips(**TINY, cache_dir=str(tmp_path))
    dm.prepare_data()
    dm.setup()
    x = dm.features["x"]
    assert x.shape == (20, 4, 16000) and x.dtype == torch.float32
    assert dm.class_names[1] == "22.5-45 deg" and dm.num_outputs == 16
    assert sum(dm.split_sizes().values()) == 20
    truth = dm.truth(3)
    assert truth.direction_bin == int(dm.targets[3]) and truth.tdoa_s.shape == (6,)
    item = dm.dataset("train")[0]
    assert item["x"].shape == (4, 16000)
    with pytest.raises(ValueError, match="data.features: localization clips have x: waveform"):
        LocalizationClips(features={"x": {"kind": "logmel"}})
    wrong = LocalizationClips(root=str(dm.dataset_root()), n_mics=2, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="data.n_mics: 2, but the array"):
        wrong.setup()


def test_multichannel_waveform_cnn_checks_its_input():
    net = WaveformCNN(8, channels=(8, 16), stem_channels=8, stem_kernel=32, in_channels=4)
    assert net(torch.randn(2, 4, 4000)).shape == (2, 8)
    with pytest.raises(ValueError, match=r"expected a \(batch, 4, samples\) waveform"):
        net(torch.randn(2, 3, 4000))


def test_blackbox_localization_trains_through_the_cli(tiny_localization_run):
    run_dir = tiny_localization_run("blackbox_localization")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2 and metrics["data"]["n_mics"] == 4
    assert 0.0 <= metrics["test"]["acc"] <= 1.0
    state = torch.load(run_dir / metrics["best_checkpoint"], weights_only=True)["state_dict"]
    assert state["net.stem.0.weight"].shape[1] == 4  # the stem sees all four microphones
