"""Readers of the Mid-level Perceptual Features and Soundtracks layouts, on fixtures written
in the released layouts (mp3 audio, spaces in the header, ';'-separated metadata), and the
datamodule built on them."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from interp_models.data.midlevel import (
    EMOTIONS,
    QUALITIES,
    assign_folds,
    read_midlevel,
    read_soundtracks_ratings,
)
from interp_models.data.music import MusicClips
from train.emotion.data import MusicDataModule

SR = 22050
# The released annotations.csv: spaces after the commas, "melody", and its own column order.
ANN_HEADER = (
    "song_id, melody, articulation, rhythm_complexity, rhythm_stability, dissonance, "
    "tonal_stability, minorness"
)
ARTISTS = ["Alpha", "Beta", "Alpha", "Gamma", "Delta", "Beta", "Eps", "Zeta", "Eta", "Theta"]


def _tone(freq: float, seconds: float = 1.1, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.3 * np.sin(2 * np.pi * freq * t)


def _write(path: Path, freq: float, fmt: str = "MP3") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = np.stack([_tone(freq), _tone(freq * 1.5)], 1)  # stereo, 44.1 kHz
    sf.write(path, wave, 44100, format=fmt)


def _quality_row(i: int) -> list[float]:
    # values by released column order: mel, art, rcomp, rstab, diss, tstab, minor
    return [1 + i, 2 + i, 3 + i, 4 + i, 5 + i, 6 + i, 7 + i * 0.5]


@pytest.fixture(scope="module")
def _midlevel_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template") / "MidlevelFeatures"
    lines = [ANN_HEADER]
    meta = ["song id;Source;Artist;Album"]
    for i in range(10):
        sid = 101 + i
        lines.append(f"{sid}, " + ", ".join(f"{v:.2f}" for v in _quality_row(i)))
        meta.append(f"{sid};jamendo;{ARTISTS[i]};X")
        _write(root / "audio" / f"{sid}.mp3", 200 + 30 * i)
    (root / "metadata_annotations").mkdir(parents=True)
    (root / "metadata_annotations" / "annotations.csv").write_text("\n".join(lines) + "\n")
    (root / "metadata_annotations" / "metadata.csv").write_text("\n".join(meta) + "\n")
    return root


@pytest.fixture(scope="module")
def _soundtracks_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "soundtracks"
    rows = ["Number,valence,energy,tension,anger,fear,happy,sad,tender,TARGET"]
    for n in range(1, 6):
        rows.append(f"{n}," + ",".join(f"{1 + n + 0.1 * k:.2f}" for k in range(8)) + ",HAPPY")
        _write(folder / "Set1" / "Set1" / f"{n:03d}.mp3", 300 + 20 * n)
    (folder / "mean_ratings_set1.csv").write_text("\n".join(rows) + "\n")
    return folder


# Encoding mp3 is slow: each test gets a fresh copy of fixtures written once per module.
@pytest.fixture
def midlevel_root(_midlevel_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_midlevel_template, tmp_path / "MidlevelFeatures"))


@pytest.fixture
def soundtracks(_soundtracks_template: Path, tmp_path: Path) -> tuple[Path, Path]:
    folder = Path(shutil.copytree(_soundtracks_template, tmp_path / "soundtracks"))
    return folder / "mean_ratings_set1.csv", folder / "Set1"


def test_real_layouts_are_read_by_name_not_position(midlevel_root, soundtracks):
    ratings, audio = soundtracks
    records = read_midlevel(midlevel_root, ratings, audio)
    mid = [r for r in records if r.source == "midlevel"]
    st = [r for r in records if r.source == "soundtracks"]
    assert [r.song_id for r in mid] == [str(101 + i) for i in range(10)]
    assert [r.song_id for r in st] == [f"st{n}" for n in range(1, 6)]
    released = ["melodiousness", "articulation", "rhythm_complexity", "rhythm_stability"]
    released += ["dissonance", "tonal_stability", "minorness"]
    for i, r in enumerate(mid):
        by_name = dict(zip(released, _quality_row(i), strict=True))
        assert r.qualities == pytest.approx(tuple(by_name[q] for q in QUALITIES))
        assert r.has_qualities and not r.has_emotions and r.path.suffix == ".mp3"
    assert st[1].emotions == pytest.approx(tuple(3 + 0.1 * k for k in range(8)))
    assert all(math.isnan(v) for v in st[0].qualities) and st[0].has_emotions
    # Clips of one artist share a fold.
    folds = {r.song_id: r.fold for r in mid}
    assert folds["101"] == folds["103"] and folds["102"] == folds["106"]
    assert mid[0].group == "artist:Alpha"


def test_fold_assignment_is_balanced_and_stable():
    folds = assign_folds([f"g{i}" for i in range(23)], 5)
    counts = np.bincount(list(folds.values()), minlength=6)[1:]
    assert counts.max() - counts.min() <= 1
    assert assign_folds([f"g{i}" for i in range(23)][::-1], 5) == folds


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace(" dissonance,", " harmony,"), "'dissonance' is missing"),
        (lambda t: t.replace("103, 3.00", "103, x3"), "annotations.csv, line 4: column 'melody'"),
        (lambda t: t + "101, 1, 1, 1, 1, 1, 1, 1\n", "song id 101 appears twice"),
        (lambda t: t.replace("105, 5.00", "105, nan"), "line 6: column 'melody': non-finite"),
    ],
)
def test_bad_annotations_are_reported_with_file_and_line(midlevel_root, mutate, message):
    path = midlevel_root / "metadata_annotations" / "annotations.csv"
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ValueError, match=message):
        read_midlevel(midlevel_root)


def test_missing_files_are_named(midlevel_root, soundtracks):
    ratings, audio = soundtracks
    (midlevel_root / "audio" / "104.mp3").unlink()
    with pytest.raises(FileNotFoundError, match="song_id 104"):
        read_midlevel(midlevel_root)
    _write(midlevel_root / "audio" / "104.mp3", 300)
    (audio / "Set1" / "003.mp3").unlink()
    with pytest.raises(FileNotFoundError, match="Soundtracks excerpt 3"):
        read_midlevel(midlevel_root, ratings, audio)
    # Without separate audio, every rated Number must be a song id of the dataset.
    with pytest.raises(ValueError, match="not song ids"):
        read_midlevel(midlevel_root, ratings)
    with pytest.raises(FileNotFoundError, match="annotations.csv"):
        read_midlevel(midlevel_root.parent)


def test_bad_ratings_are_reported(soundtracks):
    ratings, _ = soundtracks
    text = ratings.read_text()
    ratings.write_text(text.replace("tender", "calm"))
    with pytest.raises(ValueError, match="'tender' is missing"):
        read_soundtracks_ratings(ratings)
    ratings.write_text(text.replace("\n3,", "\n2,"))
    with pytest.raises(ValueError, match="Number 2 appears twice"):
        read_soundtracks_ratings(ratings)
    ratings.write_text(text)
    assert sorted(read_soundtracks_ratings(ratings)) == [1, 2, 3, 4, 5]


def test_datamodule_masks_missing_labels_and_standardises_on_train(
    midlevel_root, soundtracks, tmp_path
):
    ratings, audio = soundtracks
    dm = MusicDataModule(
        root=str(midlevel_root),
        ratings=str(ratings),
        ratings_audio=str(audio),
        clip_seconds=1.0,
        train_folds=[1, 2, 3],
        val_folds=[4],
        test_folds=[5],
        batch_size=4,
        features={"x": {"kind": "logfreq", "bands_per_octave": 6, "f_min": 60.0}},
        cache_dir=str(tmp_path / "cache"),
    )
    dm.prepare_data()
    dm.setup()
    assert dm.x.shape[0] == 15 and torch.isfinite(dm.x).all()
    train = dm.split_indices["train"]
    q = dm.q[train].numpy()
    labelled = np.isfinite(q).all(1)
    np.testing.assert_allclose(q[labelled].mean(0), 0.0, atol=1e-5)
    # Soundtracks clips have no qualities, mid-level clips no emotions: NaN, masked later.
    for row, record in enumerate(dm.records):
        assert torch.isfinite(dm.q[row]).all() == record.has_qualities
        assert torch.isfinite(dm.e[row]).all() == record.has_emotions
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"x", "q", "e", "index"} and batch["e"].shape[1] == len(EMOTIONS)
    summary = dm.summary()
    assert summary["num_clips"] == 15 and not summary["builtin"]
    assert sum(v["emotions"] for v in summary["labelled"].values()) == 5


def test_music_clips_reject_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="share folds"):
        MusicClips(train_folds=[1, 2], val_folds=[2])
    with pytest.raises(ValueError, match="need data.root"):
        MusicClips(ratings="x.csv")
    with pytest.raises(ValueError, match="unknown frontend kind"):
        MusicClips(features={"x": {"kind": "cqt"}})
    with pytest.raises(FileNotFoundError, match="not a directory"):
        MusicClips(root=str(tmp_path / "nope")).prepare_data()
