"""Unit tests of the training glue: tasks, config checking, sampler, data module, configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir

from interp_models.config import construct
from train.datamodules import ClipDataModule, EpochSeededSampler, build_datamodule
from train.heart.data import HeartDataModule
from train.tasks import BinaryTask, MulticlassTask, RegressionTask, build_task, summarise

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _compute(task, outputs, target):
    metrics = task.metrics()
    metrics.update(*task.prepare(outputs, target))
    return summarise(task, metrics.compute())


def test_multiclass_accuracy_on_a_known_case():
    outputs = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    target = torch.tensor([0, 1, 1, 1])
    values = _compute(MulticlassTask(2), outputs, target)
    assert values["acc"] == pytest.approx(0.5)
    assert values["balanced_acc"] == pytest.approx((1.0 + 1 / 3) / 2)


def test_binary_macc_is_mean_of_sensitivity_and_specificity():
    # 3 abnormal (2 detected), 2 normal (1 correctly rejected): Se 2/3, Sp 1/2.
    outputs = torch.tensor([[3.0], [2.0], [-1.0], [-2.0], [1.0]])
    target = torch.tensor([1, 1, 1, 0, 0])
    values = _compute(BinaryTask(), outputs, target)
    assert values["sensitivity"] == pytest.approx(2 / 3)
    assert values["specificity"] == pytest.approx(1 / 2)
    assert values["macc"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert BinaryTask().loss(outputs, target) > 0


def test_regression_pearson_is_per_output_then_averaged():
    target = torch.tensor([[1.0, 1.0], [2.0, 0.0], [3.0, -1.0], [4.0, 2.0]])
    outputs = torch.stack([target[:, 0] * 2 + 1, -target[:, 1]], dim=1)  # r = +1 and -1
    values = _compute(RegressionTask(2), outputs, target)
    assert values["pearson_0"] == pytest.approx(1.0, abs=1e-5)
    assert values["pearson_1"] == pytest.approx(-1.0, abs=1e-5)
    assert values["pearson_r"] == pytest.approx(0.0, abs=1e-5)
    assert values["rmse"] > 0


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="task: unknown task 'ranking'"):
        build_task("ranking", 3)


def test_construct_names_the_unknown_key():
    def factory(a: int, b: int = 2):
        return a + b

    assert construct(factory, {"a": 1}, "model.optimizer") == 3
    with pytest.raises(ValueError, match=r"model\.optimizer\.lrr: unknown config key"):
        construct(factory, {"a": 1, "lrr": 3}, "model.optimizer")


def test_epoch_seeded_sampler_depends_only_on_seed_and_epoch():
    a, b = EpochSeededSampler(50, seed=3), EpochSeededSampler(50, seed=3)
    a.set_epoch(4)
    torch.manual_seed(123)  # the global RNG must not matter
    b.set_epoch(4)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(5)
    assert list(a) != list(b)


def test_datamodule_never_hands_non_finite_input_to_a_model(tmp_path):
    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = ["filename,fold,target,category"]
    rng = np.random.default_rng(1)
    for i in range(10):
        name = f"{i % 5 + 1}-{i}-A-{i % 2}.wav"
        wave = rng.standard_normal(8000).astype(np.float32) * 0.1
        if i == 3:
            wave[100] = np.nan  # a float wav holding NaN
        if i == 4:
            wave[:] = 0.0  # silence is valid
        sf.write(root / "audio" / name, wave, 8000, subtype="FLOAT")
        rows.append(f"{name},{i % 5 + 1},{i % 2},c{i % 2}")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")

    kwargs = dict(root=str(root), sample_rate=8000, clip_seconds=1.0, batch_size=4)
    with pytest.raises(Exception, match="4-3-A-1.wav"):
        ClipDataModule(**kwargs).setup()
    dm = ClipDataModule(**kwargs, on_bad_file="skip", cache_dir=str(tmp_path / "cache"))
    dm.setup()
    assert [Path(p).name for p, _ in dm.skipped] == ["4-3-A-1.wav"]
    assert torch.isfinite(dm.features["x"]).all()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            assert torch.isfinite(batch["x"]).all()


def test_overlapping_folds_are_rejected():
    with pytest.raises(ValueError, match="data.train_folds and data.val_folds share folds"):
        ClipDataModule(train_folds=[1, 2], val_folds=[2])


def test_build_datamodule_wraps_the_data_class_and_names_unknown_keys():
    section = {"_target_": "interp_models.data.clips.EventClips", "batch_size": 7}
    dm = build_datamodule(section, None)
    assert type(dm) is ClipDataModule and dm.batch_size == 7 and dm.layout == "esc50"
    # Runs written before the data classes name the DataModules, by old and older paths.
    old = build_datamodule({"_target_": "train.heart_datamodule.HeartDataModule"}, None)
    assert type(old) is HeartDataModule and old.crop_frames == 500
    assert type(build_datamodule({}, None)) is ClipDataModule  # no _target_: clips
    with pytest.raises(ValueError, match=r"data\.batch_sise: unknown config key .*batch_size"):
        build_datamodule({**section, "batch_sise": 8}, None)
    with pytest.raises(ValueError, match=r"data\.layout: unknown layout"):
        build_datamodule({**section, "layout": "wav"}, None)


@pytest.mark.parametrize(
    "overrides",
    [
        ["config=blackbox_events"],
        ["config=blackbox_events", "data=esc50", "data.root=/x"],
        ["config=blackbox_events", "data=audiomnist", "data.root=/x"],
        ["config=blackbox_events", "trainer=gpu", "logger=csv"],
    ],
)
def test_configs_compose(overrides):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("fit", overrides=overrides)
    assert cfg.name == "blackbox_events" and cfg.model.net._target_.endswith("SpectrogramCNN")
    assert not math.isnan(cfg.model.optimizer.lr)
    if "data=audiomnist" in overrides:
        assert cfg.data.layout == "audiomnist" and cfg.data.sample_rate == 8000
    if "data=esc50" in overrides:
        assert cfg.data.clip_seconds == 5.0 and cfg.data.layout == "esc50"
