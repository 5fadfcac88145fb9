"""The PhysioNet 2016 reader and the heart datamodule on a fixture in the real layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from interp_models.audio.io import AudioReadError
from interp_models.data.heart import collate_recordings
from interp_models.data.physionet2016 import (
    abnormal_state,
    read_events,
    read_physionet2016,
    read_segmentation,
)
from interp_models.heart.states import DIASTOLE, SYSTOLE, AbnormalEvent
from train.heart.data import HeartDataModule

# One cardiac cycle of 0.8 s as (duration, state); repeated to fill a recording.
CYCLE = [(0.12, 1), (0.2, 2), (0.1, 3), (0.38, 4)]


def _tsv(duration: float, lead_unlabelled: float = 0.0) -> str:
    rows, t = [], 0.0
    if lead_unlabelled:
        rows.append(f"0.000000\t{lead_unlabelled:.6f}\t0")
        t = lead_unlabelled
    while t < duration - 1e-9:
        for d, s in CYCLE:
            end = min(t + d, duration)
            rows.append(f"{t:.6f}\t{end:.6f}\t{s}")
            t = end
            if t >= duration - 1e-9:
                break
    return "\n".join(rows) + "\n"


@pytest.fixture
def physionet_root(tmp_path):
    """Two sets in the real layout: 2 kHz PCM wavs, REFERENCE.csv (one with an SQI column),
    CirCor-style .tsv segmentations for all but one record, one unsure label."""
    root = tmp_path / "training"
    rng = np.random.default_rng(0)
    labels = {
        "training-a": [("a0001", -1), ("a0002", 1), ("a0003", -1), ("a0004", 1), ("a0005", 0)],
        "training-b": [("b0001", 1), ("b0002", -1), ("b0003", 1), ("b0004", -1)],
    }
    for set_name, rows in labels.items():
        folder = root / set_name
        folder.mkdir(parents=True)
        sqi = set_name == "training-b"
        lines = [f"{n},{lab}" + (",1" if sqi else "") for n, lab in rows]
        (folder / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
        for name, _ in rows:
            duration = 3.2
            sf.write(folder / f"{name}.wav", 0.1 * rng.standard_normal(6400), 2000, "PCM_16")
            if name != "b0004":
                (folder / f"{name}.tsv").write_text(_tsv(duration, 0.1 if name == "a0002" else 0))
    (root / "training-a" / "a0002.events.tsv").write_text(
        "0.400000\t0.500000\tholosystolic_murmur\t2\n1.200000\t1.300000\tholosystolic_murmur\t2\n"
    )
    return root


def test_reader_lists_sets_labels_and_annotations(physionet_root):
    records, unsure = read_physionet2016(physionet_root, n_folds=2)
    assert unsure == ["training-a/a0005"]
    assert [r.name for r in records] == [
        "a0001",
        "a0002",
        "a0003",
        "a0004",
        "b0001",
        "b0002",
        "b0003",
        "b0004",
    ]
    assert [r.target for r in records] == [0, 1, 0, 1, 1, 0, 1, 0]
    # folds dealt round-robin per label: each fold gets 2 normal and 2 abnormal
    for fold in (1, 2):
        assert sorted(r.target for r in records if r.fold == fold) == [0, 0, 1, 1]
    assert records[-1].segmentation_path is None and records[0].segmentation_path is not None
    assert records[1].events_path is not None and records[0].events_path is None
    as_abnormal, _ = read_physionet2016(physionet_root, unsure="abnormal")
    assert len(as_abnormal) == 9
    one_set, _ = read_physionet2016(physionet_root / "training-b")
    assert len(one_set) == 4


def test_segmentation_and_events_are_read(physionet_root):
    seg = read_segmentation(physionet_root / "training-a" / "a0002.tsv")
    assert seg.state[0] == 0 and seg.start_s[1] == pytest.approx(0.1)
    frames = seg.to_frames(160)  # 3.2 s at 50 Hz
    assert frames[:5].tolist() == [0, 0, 0, 0, 0] and frames[5] == 1
    events = read_events(physionet_root / "training-a" / "a0002.events.tsv")
    assert events[0] == AbnormalEvent(0.4, 0.5, "holosystolic_murmur", SYSTOLE)
    assert abnormal_state(events) == SYSTOLE
    assert abnormal_state([AbnormalEvent(0, 1, "x", DIASTOLE)] + events) == DIASTOLE
    assert abnormal_state([]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a0001\n", "line 1: expected 'name,label'"),
        ("a0001,-1\na0002,2\n", "line 2: label '2'"),
        ("a0001,abnormal\n", "line 1: label 'abnormal'"),
        ("a0001,-1\na0001,1\n", "line 2: record 'a0001' listed twice"),
        ("\n", "no records"),
    ],
)
def test_bad_reference_names_file_and_line(tmp_path, content, message):
    (tmp_path / "training-z").mkdir()
    (tmp_path / "training-z" / "REFERENCE.csv").write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_physionet2016(tmp_path)
    assert "REFERENCE.csv" in str(err.value)


def test_missing_layout_and_unsure_policy(tmp_path, physionet_root):
    with pytest.raises(FileNotFoundError, match="REFERENCE.csv"):
        read_physionet2016(tmp_path / "..")
    with pytest.raises(ValueError, match="a0005.*unsure"):
        read_physionet2016(physionet_root, unsure="raise")
    with pytest.raises(ValueError, match="data.unsure"):
        read_physionet2016(physionet_root, unsure="maybe")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0.0\t0.1\n", "line 1: expected 3"),
        ("0.0\t0.1\t1\n0.1\tx\t2\n", "line 2: non-numeric"),
        ("0.0\t0.1\t7\n", "line 1: state '7'"),
        ("0.0\t0.1\t1\n0.2\t0.15\t2\n", "row 2: end 0.15 is not after start 0.2"),
        ("0.0\t0.3\t1\n0.2\t0.4\t2\n", "row 2: span starting at 0.2 overlaps"),
        ("", "empty segmentation"),
    ],
)
def test_bad_segmentation_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "x0001.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_segmentation(path)
    assert "x0001.tsv" in str(err.value)


def test_datamodule_reads_the_real_layout(physionet_root, tmp_path):
    dm = HeartDataModule(
        root=str(physionet_root),
        n_folds=4,
        train_folds=[1, 2],
        val_folds=[3],
        test_folds=[4],
        cache_dir=str(tmp_path / "cache"),
    )
    dm.prepare_data()
    dm.setup()
    assert len(dm.records) == 8 and all(len(w) == 3200 for w in dm.waves)  # 2 kHz -> 1 kHz
    assert dm.n_frames == [160] * 8
    assert dm.ground_truth[-1] is None and "ground_truth" not in dm.segmentations
    with pytest.raises(ValueError, match="b0004.wav"):  # which recording lacks a .tsv
        dm.use_segmentation("ground_truth")
    # Another segmentation can be added for all recordings and used.
    dm.add_segmentation("fixed", [np.tile([1] * 6 + [2] * 10 + [3] * 5 + [4] * 19, 4)] * 8)
    dm.use_segmentation("fixed")
    batch = next(iter(dm.loader("train")))
    assert batch["wave"].shape == (4, 3200) and batch["states"].shape == (4, 160)
    summary = dm.summary()
    json.dumps(summary)
    assert summary["num_recordings"] == 8 and summary["with_segmentation"] == 7
    assert summary["unsure_skipped"] == ["training-a/a0005"]
    names = [r.name for r in dm.records]
    assert dm.abnormal_states[names.index("a0002")] == SYSTOLE


def test_datamodule_bad_file_raises_or_is_skipped(physionet_root, tmp_path):
    (physionet_root / "training-b" / "b0002.wav").write_bytes(b"not audio")
    kw = {"root": str(physionet_root), "n_folds": 4, "train_folds": [1, 2], "val_folds": [3]}
    kw["test_folds"] = [4]
    with pytest.raises(AudioReadError, match="b0002.wav"):
        HeartDataModule(**kw).setup()
    dm = HeartDataModule(**kw, on_bad_file="skip")
    dm.setup()
    assert len(dm.records) == 7
    assert [s["path"].endswith("b0002.wav") for s in dm.summary()["skipped_files"]] == [True]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"input": "mfcc"}, "data.input"),
        ({"train_folds": [1], "val_folds": [1]}, "share folds"),
        ({"test_folds": [6]}, "outside 1..5"),
        ({"sample_rate": 1010}, "multiple of 50"),
        ({"synth": {"num_recordz": 3}}, "data.synth"),
        ({"train_crop_s": 1.0}, "train_crop_s"),
    ],
)
def test_datamodule_rejects_bad_settings_by_name(kw, message):
    with pytest.raises(ValueError, match=message):
        HeartDataModule(**kw)


def test_training_crops_depend_on_seed_epoch_and_recording_only(physionet_root):
    dm = HeartDataModule(
        root=str(physionet_root),
        n_folds=4,
        train_folds=[1, 2],
        val_folds=[3],
        test_folds=[4],
        train_crop_s=2.0,
    )
    dm.setup()
    dm.add_segmentation("fixed", [np.tile([1] * 6 + [2] * 10 + [3] * 5 + [4] * 19, 4)] * 8)
    ds = dm.dataset("train", "fixed")
    a, b, c = ds[(0, 3)], ds[(0, 3)], ds[(0, 4)]
    assert len(a["states"]) == 100 and len(a["wave"]) == 2000
    assert torch.equal(a["wave"], b["wave"]) and not torch.equal(a["wave"], c["wave"])
    assert len(ds[0]["wave"]) == 3200  # evaluation items are whole recordings
    batch = collate_recordings([ds[0], a])
    assert batch["length"].tolist() == [3200, 2000] and batch["states"][1, 100:].eq(0).all()
