"""Tests for interp_models.audio.io: decoding any subtype, resampling, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from interp_models.audio.io import AudioReadError, check_audio_file, load_audio, write_audio


def _sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)])


def test_stereo_pcm16_44k_resampled_and_downmixed(tmp_path: Path) -> None:
    left = _sine(440.0, 44100, 1.0, amp=0.6)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_16")

    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 1
    assert abs(_peak_hz(wave, 16000) - 440.0) <= 2.0
    # mean over channels: a full-scale left channel and a silent right halve the peak
    assert np.max(np.abs(wave[100:-100])) == pytest.approx(0.3, abs=0.01)


def test_mono_float32_8k_upsampled_keeps_frequency(tmp_path: Path) -> None:
    path = tmp_path / "f32.wav"
    sf.write(path, _sine(1000.0, 8000, 1.0), 8000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert abs(len(wave) - 16000) <= 1
    assert abs(_peak_hz(wave, 16000) - 1000.0) <= 2.0
    assert np.isfinite(wave).all()


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "PCM_U8", "DOUBLE"])
def test_other_subtypes_decode_without_resampling(tmp_path: Path, subtype: str) -> None:
    ref = _sine(300.0, 16000, 0.25)
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, ref, 16000, subtype=subtype)
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32
    tol = 1e-2 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(wave, ref, atol=tol)


def test_flac_is_read(tmp_path: Path) -> None:
    ref = _sine(300.0, 16000, 0.25)
    path = tmp_path / "clip.flac"
    sf.write(path, ref, 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path, 16000), ref, atol=1e-3)


def test_pad_short_and_crop_long(tmp_path: Path) -> None:
    ref = _sine(200.0, 16000, 0.5)
    path = tmp_path / "clip.wav"
    sf.write(path, ref, 16000, subtype="FLOAT")

    padded = load_audio(path, 16000, num_samples=12000)
    assert padded.shape == (12000,)
    np.testing.assert_array_equal(padded[:8000], ref)
    assert not padded[8000:].any()

    cropped = load_audio(path, 16000, num_samples=3000)
    np.testing.assert_array_equal(cropped, ref[:3000])


def test_silence_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(4000, dtype=np.float32), 8000, subtype="PCM_16")
    wave = load_audio(path, 16000, num_samples=8000)
    assert wave.shape == (8000,)
    assert not wave.any()


def _corrupt(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _zero_frames(path: Path) -> None:
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000, subtype="PCM_16")


def _nan_float(path: Path) -> None:
    wave = _sine(100.0, 16000, 0.1)
    wave[10] = np.nan
    sf.write(path, wave, 16000, subtype="FLOAT")


def _inf_float(path: Path) -> None:
    wave = _sine(100.0, 16000, 0.1)
    wave[-1] = np.inf
    sf.write(path, wave, 16000, subtype="FLOAT")


@pytest.mark.parametrize(
    "make",
    [_corrupt, _zero_bytes, _zero_frames, _nan_float, _inf_float, None],
    ids=["corrupt", "zero_bytes", "zero_frames", "nan", "inf", "missing"],
)
def test_bad_files_raise_naming_the_file(tmp_path: Path, make) -> None:
    path = tmp_path / "bad_clip_123.wav"
    if make is not None:
        make(path)
    with pytest.raises(AudioReadError, match="bad_clip_123.wav") as info:
        load_audio(path, 16000)
    assert info.value.path == path
    assert info.value.reason


def test_write_audio_scales_loud_wave_and_round_trips(tmp_path: Path) -> None:
    loud = _sine(440.0, 16000, 0.25, amp=3.0)
    path = tmp_path / "sub" / "dir" / "loud.wav"
    write_audio(path, loud, 16000)
    info = sf.info(path)
    assert info.subtype == "PCM_16" and info.samplerate == 16000
    back = load_audio(path, 16000)
    assert np.max(np.abs(back)) == pytest.approx(0.99, abs=1e-3)
    np.testing.assert_allclose(back, loud * (0.99 / np.max(np.abs(loud))), atol=1e-3)

    quiet = _sine(440.0, 16000, 0.25, amp=0.5)
    write_audio(path, quiet, 16000)
    np.testing.assert_allclose(load_audio(path, 16000), quiet, atol=1e-4)


def test_write_audio_rejects_non_finite(tmp_path: Path) -> None:
    wave = np.zeros(100, dtype=np.float32)
    wave[3] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        write_audio(tmp_path / "x.wav", wave, 16000)
    assert not (tmp_path / "x.wav").exists()


def _truncate(path: Path, n_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:-n_bytes])


@pytest.mark.parametrize(("subtype", "width"), [("PCM_16", 2), ("FLOAT", 4)])
def test_truncated_wav_warns_and_gives_the_samples_present(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, subtype: str, width: int
) -> None:
    path = tmp_path / "cut_clip.wav"
    sf.write(path, _sine(440.0, 16000, 1.0), 16000, subtype=subtype)
    whole, _ = sf.read(path, dtype="float32")
    with caplog.at_level(logging.WARNING, logger="interp_models.audio.io"):
        assert len(load_audio(path, 16000)) == 16000
    assert not caplog.records  # a complete file is read silently

    _truncate(path, 1001)
    present = 16000 - -(-1001 // width)  # a partial last sample is dropped
    with caplog.at_level(logging.WARNING, logger="interp_models.audio.io"):
        wave = load_audio(path, 16000)
    np.testing.assert_array_equal(wave, whole[:present])
    [record] = caplog.records
    assert str(path) in record.getMessage()
    assert f"promises 16000 samples, the file holds {present}" in record.getMessage()


def test_truncated_wav_keeps_num_samples_padding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, _sine(440.0, 16000, 0.5), 16000, subtype="PCM_16")
    _truncate(path, 2000)  # 1000 of 8000 samples gone
    with caplog.at_level(logging.WARNING, logger="interp_models.audio.io"):
        wave = load_audio(path, 16000, num_samples=8000)
    assert wave.shape == (8000,) and not wave[7000:].any() and wave[:7000].any()
    assert "the file holds 7000" in caplog.text


def test_truncated_flac_is_read_up_to_the_break(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """libsndfile raises on a FLAC stream that breaks off; the frames before it are kept."""
    path = tmp_path / "cut.flac"
    sf.write(path, _sine(440.0, 16000, 2.0), 16000, subtype="PCM_16")
    whole, _ = sf.read(path, dtype="float32")
    _truncate(path, 2000)
    with caplog.at_level(logging.WARNING, logger="interp_models.audio.io"):
        wave = load_audio(path, 16000)
    assert 0 < len(wave) < 32000
    np.testing.assert_array_equal(wave, whole[: len(wave)])
    assert f"{path}: truncated: the header promises 32000 samples" in caplog.text
    assert f"the file holds {len(wave)}" in caplog.text


def test_wav_cut_inside_its_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "stub.wav"
    sf.write(path, _sine(440.0, 16000, 0.1), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:44])  # header only: no sample survives
    with pytest.raises(AudioReadError, match="stub.wav.*no audio frames of the 1600 promised"):
        load_audio(path, 16000)


@pytest.mark.parametrize("make", [_corrupt, _zero_bytes, None], ids=["corrupt", "empty", "missing"])
def test_check_audio_file_rejects_what_load_audio_would(tmp_path: Path, make) -> None:
    path = tmp_path / "clip.wav"
    if make is not None:
        make(path)
    with pytest.raises(AudioReadError, match="clip.wav"):
        check_audio_file(path)
    sf.write(path, _sine(440.0, 16000, 0.1), 16000)
    check_audio_file(path)
