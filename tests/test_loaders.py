"""Tests for the ESC-50 / AudioMNIST readers and the cached waveform loader."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from interp_models.audio.io import AudioReadError
from interp_models.data.audiomnist import read_audiomnist
from interp_models.data.esc50 import read_esc50
from interp_models.data.records import ClipRecord
from interp_models.data.waveforms import load_waveforms

SR = 8000
N = 4000

ESC_ROWS = [
    # filename, fold, target, category, esc10, src_file, take
    ("1-100-A-0.wav", 1, 0, "dog", "True", "100", "A"),
    ("1-100-B-0.wav", 1, 0, "dog", "True", "100", "B"),
    ("2-200-A-1.wav", 2, 1, "rooster", "False", "200", "A"),
    ("3-300-A-2.wav", 3, 2, "rain", "False", "300", "A"),
    ("1-050-A-2.wav", 1, 2, "rain", "False", "050", "A"),
]


def _tone(freq: float, seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def _make_esc50(root: Path, columns: tuple[str, ...] | None = None) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    header = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
    keep = [header.index(c) for c in (columns or header)]
    with (root / "meta" / "esc50.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([header[i] for i in keep])
        for row in ESC_ROWS:
            writer.writerow([row[i] for i in keep])
    for i, row in enumerate(ESC_ROWS):
        wave = _tone(200.0 * (i + 1), 0.5, 44100, seed=i)
        if i % 2:  # every other clip stereo
            wave = np.stack([wave, 0.5 * wave], axis=1)
        sf.write(root / "audio" / row[0], wave, 44100, subtype="PCM_16")
    (root / "masks").mkdir()
    np.savez(root / "masks" / "2-200-A-1.npz", mask=np.ones((2, 2)))
    return root


def _make_audiomnist(root: Path, speakers: int = 7, digits: int = 3, takes: int = 2) -> Path:
    for s in range(1, speakers + 1):
        spk = f"{s:02d}"
        folder = root / "data" / spk
        folder.mkdir(parents=True)
        for d in range(digits):
            for k in range(takes):
                wave = _tone(300.0 + 50 * d, 0.1, 48000, seed=100 * s + 10 * d + k)
                sf.write(folder / f"{d}_{spk}_{k}.wav", wave, 48000, subtype="PCM_16")
    (root / "data" / "audioMNIST_meta.txt").write_text("{}")
    (root / "data" / "01" / "notes.wav").write_bytes(b"junk")  # wrong name pattern
    return root


def test_read_esc50(tmp_path: Path) -> None:
    root = _make_esc50(tmp_path / "esc")
    records, names = read_esc50(root)
    assert names == ["dog", "rooster", "rain"]
    assert [r.path.name for r in records] == sorted(row[0] for row in ESC_ROWS)
    by_name = {r.path.name: r for r in records}
    rec = by_name["2-200-A-1.wav"]
    assert rec == ClipRecord(
        path=root / "audio" / "2-200-A-1.wav",
        target=1,
        fold=2,
        label="rooster",
        group="200",
        mask_path=root / "masks" / "2-200-A-1.npz",
    )
    assert by_name["1-100-A-0.wav"].mask_path is None
    assert by_name["1-100-A-0.wav"].group == by_name["1-100-B-0.wav"].group == "100"
    assert all(names[r.target] == r.label for r in records)


def test_read_esc50_without_src_file_groups_by_stem(tmp_path: Path) -> None:
    root = _make_esc50(tmp_path / "esc", columns=("filename", "fold", "target", "category"))
    records, _ = read_esc50(root)
    assert [r.group for r in records] == [r.path.stem for r in records]


def test_read_esc50_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="esc50.csv"):
        read_esc50(tmp_path / "nowhere")
    root = _make_esc50(tmp_path / "esc", columns=("filename", "fold", "category"))
    with pytest.raises(ValueError, match=r"esc50\.csv.*'target'"):
        read_esc50(root)


def test_read_audiomnist_speaker_folds(tmp_path: Path) -> None:
    root = _make_audiomnist(tmp_path / "am")
    records, names = read_audiomnist(root, n_folds=3)
    assert names == [str(d) for d in range(10)]
    assert len(records) == 7 * 3 * 2
    assert {r.fold for r in records} == {1, 2, 3}
    fold_of: dict[str, int] = {}
    for r in records:
        assert fold_of.setdefault(r.group, r.fold) == r.fold  # one fold per speaker
        assert r.label == str(r.target) and r.path.name.startswith(f"{r.target}_{r.group}_")
    assert fold_of == {"01": 1, "02": 2, "03": 3, "04": 1, "05": 2, "06": 3, "07": 1}


def test_read_audiomnist_without_data_dir_and_empty(tmp_path: Path) -> None:
    root = _make_audiomnist(tmp_path / "am", speakers=2, digits=1, takes=1)
    records, _ = read_audiomnist(root / "data", n_folds=5)
    assert [r.group for r in records] == ["01", "02"]
    (tmp_path / "empty" / "01").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="empty"):
        read_audiomnist(tmp_path / "empty")


def test_load_waveforms_esc50_and_audiomnist(tmp_path: Path) -> None:
    records, _ = read_esc50(_make_esc50(tmp_path / "esc"))
    waves, kept, skipped = load_waveforms(records, SR, N)
    assert waves.shape == (len(records), N) and waves.dtype == np.float32
    assert kept == records and skipped == []
    assert np.isfinite(waves).all() and np.abs(waves).max() > 0.1

    records, _ = read_audiomnist(_make_audiomnist(tmp_path / "am", speakers=2))
    waves, kept, _ = load_waveforms(records, SR, N)
    assert waves.shape == (len(records), N)
    # 0.1 s clips are zero-padded to N samples
    assert not waves[:, int(0.1 * SR) + 8 :].any()


def _with_bad_files(tmp_path: Path) -> list[ClipRecord]:
    records, _ = read_esc50(_make_esc50(tmp_path / "esc"))
    audio = tmp_path / "esc" / "audio"
    (audio / "corrupt.wav").write_bytes(np.random.default_rng(1).bytes(2048))
    (audio / "empty.wav").write_bytes(b"")
    bad = [
        ClipRecord(audio / name, 0, 1, "dog") for name in ("corrupt.wav", "empty.wav", "gone.wav")
    ]
    # interleave so order preservation is tested
    return [records[0], bad[0], records[1], bad[1], records[2], bad[2], *records[3:]]


def test_load_waveforms_raise_vs_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = _with_bad_files(tmp_path)
    with pytest.raises(AudioReadError, match="corrupt.wav"):
        load_waveforms(records, SR, N, on_bad_file="raise")

    with caplog.at_level(logging.WARNING, logger="interp_models.data.waveforms"):
        waves, kept, skipped = load_waveforms(records, SR, N, on_bad_file="skip")
    assert "skipped 3" in caplog.text
    assert [Path(p).name for p, _ in skipped] == ["corrupt.wav", "empty.wav", "gone.wav"]
    assert all(reason for _, reason in skipped)
    good = [r for r in records if r.path.name not in {"corrupt.wav", "empty.wav", "gone.wav"}]
    assert kept == good and waves.shape == (len(good), N)
    alone, _, _ = load_waveforms([good[1]], SR, N)
    np.testing.assert_array_equal(waves[1], alone[0])

    with pytest.raises(ValueError, match="data.on_bad_file"):
        load_waveforms(records, SR, N, on_bad_file="ignore")
    with pytest.raises(RuntimeError, match="all 2"):
        load_waveforms(records[1:4:2], SR, N, on_bad_file="skip")


def test_load_waveforms_cache(tmp_path: Path) -> None:
    records = _with_bad_files(tmp_path)
    cache = tmp_path / "cache"
    first = load_waveforms(records, SR, N, on_bad_file="skip", cache_dir=cache)
    assert len(list(cache.glob("waves-*.npy"))) == 1
    assert len(list(cache.glob("waves-*.json"))) == 1

    second = load_waveforms(records, SR, N, on_bad_file="skip", cache_dir=cache)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1] and first[2] == second[2]
    assert len(list(cache.glob("waves-*.npy"))) == 1  # a hit, not a new entry

    # "raise" is a different key, and a failed build leaves no entry behind
    with pytest.raises(AudioReadError):
        load_waveforms(records, SR, N, on_bad_file="raise", cache_dir=cache)
    assert len(list(cache.glob("waves-*.npy"))) == 1

    # editing a file (new content, new mtime) invalidates the entry
    target = records[0].path
    sf.write(target, np.zeros(100, dtype=np.float32), 44100, subtype="PCM_16")
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_waveforms(records, SR, N, on_bad_file="skip", cache_dir=cache)
    assert len(list(cache.glob("waves-*.npy"))) == 2
    assert not third[0][0].any() and first[0][0].any()
    np.testing.assert_array_equal(third[0][1:], first[0][1:])
    assert np.isfinite(third[0]).all()
