"""Built-in sound-event dataset: determinism, ESC-50 layout, exact masks, SNR, caching,
the harder conditions (class distractors, reverberation, level changes, backgrounds) and
the easy / default / shifted data configs."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from interp_models.data import synth_events as se
from interp_models.data.masks import load_event_mask
from interp_models.data.synth_events import (
    SynthEventsConfig,
    class_names,
    ensure_events,
    event_masks,
    generate_events,
    stft_magnitude,
    synthesize_clip,
)
from train.datamodules import build_datamodule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

SMALL = SynthEventsConfig(num_clips=48, clip_seconds=1.0)
STEM = re.compile(r"^(\d+)-(\d{6})-A-(\d+)$")
# Hann's main lobe spans +-2 bins and falls 30 dB at ~2.5: the mask may reach that far
# past the nominal extent of a tone.
LEAK_BINS = 3


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_events(SMALL, tmp_path_factory.mktemp("cache"))


def _read_csv(root: Path) -> list[dict[str, str]]:
    with open(root / "meta" / "esc50.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _band_features(
    x: np.ndarray, onset_s: float, offset_s: float, sr: int, floor_db: float | None = None
) -> np.ndarray:
    """Log energy in 24 log-spaced bands over each half of the event, and its spread in
    time: enough to tell sweeps' direction, modulations and spectral shape apart.
    ``floor_db``: band levels below this (re the loudest) are clipped to it."""
    power = stft_magnitude(x)[:, int(onset_s * sr / 128) : int(offset_s * sr / 128) + 1] ** 2
    freqs = np.arange(power.shape[0]) * sr / 512
    edges = np.geomspace(80, sr / 2, 25)
    pairs = zip(edges[:-1], edges[1:], strict=True)
    bands = np.stack([power[(freqs >= a) & (freqs < b)].sum(0) for a, b in pairs])
    db = 10 * np.log10(bands + 1e-10 * bands.max())
    db -= db.max()
    if floor_db is not None:
        db = np.maximum(db, floor_db)
    half = db.shape[1] // 2
    return np.concatenate([db[:, :half].mean(1), db[:, half:].mean(1), db.std(1)])


def test_config_checks_and_class_names() -> None:
    names = class_names(13)
    assert len(set(names)) == 13 and class_names(10) == names[:10]
    assert SynthEventsConfig(snr_db=[0, 10]).snr_db == (0.0, 10.0)  # normalised for the key
    for bad in (0, 14):
        with pytest.raises(ValueError, match="num_classes"):
            SynthEventsConfig(num_classes=bad)
        with pytest.raises(ValueError, match="num_classes"):
            class_names(bad)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    cfg = SynthEventsConfig(num_clips=24, clip_seconds=1.0, seed=3)
    a = generate_events(cfg, tmp_path / "a", workers=1)
    b = generate_events(cfg, tmp_path / "b", workers=2)  # other process split, same bytes
    c = generate_events(SynthEventsConfig(num_clips=24, clip_seconds=1.0, seed=4), tmp_path / "c")
    wavs = sorted(p.name for p in (a / "audio").iterdir())
    assert wavs == sorted(p.name for p in (b / "audio").iterdir())
    for name in wavs:
        assert (a / "audio" / name).read_bytes() == (b / "audio" / name).read_bytes()
        stem = name[:-4]
        with np.load(a / "masks" / f"{stem}.npz") as za, np.load(b / "masks" / f"{stem}.npz") as zb:
            assert set(za.files) == set(zb.files)
            for key in za.files:
                np.testing.assert_array_equal(za[key], zb[key])
    assert (a / "meta" / "esc50.csv").read_bytes() == (b / "meta" / "esc50.csv").read_bytes()
    # Same layout under another seed, different sound.
    assert wavs == sorted(p.name for p in (c / "audio").iterdir())
    assert (a / "audio" / wavs[0]).read_bytes() != (c / "audio" / wavs[0]).read_bytes()


def test_esc50_layout(small_root: Path) -> None:
    rows = _read_csv(small_root)
    with open(small_root / "meta" / "esc50.csv") as fh:
        assert fh.readline().strip() == "filename,fold,target,category,esc10,src_file,take"
    assert len(rows) == SMALL.num_clips
    names = class_names(SMALL.num_classes)
    for row in rows:
        fold, clip_id, target = STEM.match(row["filename"][:-4]).groups()
        assert row["filename"].endswith(".wav")
        assert (int(row["fold"]), int(row["target"])) == (int(fold), int(target))
        assert row["category"] == names[int(target)]
        assert (row["esc10"], row["src_file"], row["take"]) == ("False", clip_id, "A")
        info = sf.info(small_root / "audio" / row["filename"])
        assert (info.channels, info.samplerate, info.subtype) == (1, 16000, "PCM_16")
        assert info.frames == 16000
        assert (small_root / "masks" / (row["filename"][:-4] + ".npz")).is_file()
    assert len({r["src_file"] for r in rows}) == len(rows)
    per_class = Counter(int(r["target"]) for r in rows)
    assert set(per_class) == set(range(SMALL.num_classes))
    assert max(per_class.values()) - min(per_class.values()) <= 1
    for c in range(SMALL.num_classes):
        folds = Counter(int(r["fold"]) for r in rows if int(r["target"]) == c)
        assert set(folds) <= set(range(1, 6))
        assert max(folds.values()) - min(folds.get(f, 0) for f in range(1, 6)) <= 1
    meta = json.loads((small_root / "meta" / "generator.json").read_text())
    assert meta["version"] == se.GENERATOR_VERSION
    assert meta["config"]["num_clips"] == SMALL.num_clips
    assert [c["name"] for c in meta["classes"]] == names
    assert all(c["params"] for c in meta["classes"])


def test_stft_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    x = synthesize_clip(SMALL, 5).mix
    ref = np.abs(librosa.stft(x, n_fft=512, hop_length=128))
    np.testing.assert_allclose(stft_magnitude(x), ref, atol=1e-9 * ref.max() + 1e-12)


def test_masks_line_up_with_events(small_root: Path) -> None:
    for row in _read_csv(small_root):
        stem = row["filename"][:-4]
        m = load_event_mask(small_root / "masks" / f"{stem}.npz")
        y, sr = sf.read(small_root / "audio" / row["filename"])
        assert m.mask.shape == stft_magnitude(y).shape and m.target == int(row["target"])
        assert m.mask.any() and not (m.dominant & ~m.mask).any()
        fi, ti = np.nonzero(m.mask.any(1))[0], np.nonzero(m.mask.any(0))[0]
        hop_s, bin_hz = m.hop_length / sr, sr / m.n_fft
        assert m.onset_s - hop_s <= ti[0] * hop_s and ti[-1] * hop_s <= m.offset_s + hop_s
        assert 0 <= m.onset_s < m.offset_s <= m.duration_s
        assert m.f_low_hz - LEAK_BINS * bin_hz <= fi[0] * bin_hz
        assert fi[-1] * bin_hz <= m.f_high_hz + LEAK_BINS * bin_hz


def test_mask_is_where_the_sound_is(tmp_path: Path) -> None:
    cfg = SynthEventsConfig(num_clips=26, num_classes=13, clip_seconds=1.0, snr_db=(20.0, 25.0))
    root = generate_events(cfg, tmp_path)
    for row in _read_csv(root):
        stem = row["filename"][:-4]
        m = load_event_mask(root / "masks" / f"{stem}.npz")
        power = stft_magnitude(sf.read(root / "audio" / row["filename"])[0]) ** 2
        frames = m.mask.any(0)
        inside = power[m.mask].mean()
        outside = power[:, frames][~m.mask[:, frames]].mean()
        # Per-bin power in the mask vs the rest of the same frames: >= 20 dB apart.
        assert inside > 100 * outside, (row["category"], inside / outside)
        assert m.dominant.sum() > 0.5 * m.mask.sum()


def test_realised_snr_matches_draw() -> None:
    cfg = SynthEventsConfig(num_clips=40, num_classes=13, clip_seconds=1.0, max_distractors=3)
    snrs = []
    for i in range(cfg.num_clips):
        p = synthesize_clip(cfg, i)
        a, b = round(p.onset_s * p.sample_rate), round(p.offset_s * p.sample_rate)
        assert 0 <= a < b <= p.mix.size and not p.event[:a].any() and not p.event[b:].any()
        realised = 10 * np.log10(np.sum(p.event[a:b] ** 2) / np.sum(p.rest[a:b] ** 2))
        assert realised == pytest.approx(p.snr_db, abs=1e-6)
        assert cfg.snr_db[0] <= p.snr_db <= cfg.snr_db[1]
        np.testing.assert_array_equal(p.mix, p.event + p.rest)
        assert 0.3 - 1e-9 <= np.abs(p.mix).max() <= 0.9 + 1e-9
        assert 0.3 - 1e-9 <= p.offset_s - p.onset_s <= 1.0 + 1e-9
        snrs.append(p.snr_db)
    assert np.ptp(snrs) > 0.5 * (cfg.snr_db[1] - cfg.snr_db[0])  # really drawn per clip


def test_classes_are_distinct() -> None:
    cfg = SynthEventsConfig(num_clips=13 * 16, num_classes=13, clip_seconds=1.0)
    parts = [synthesize_clip(cfg, i) for i in range(cfg.num_clips)]
    x = np.stack([_band_features(p.event, p.onset_s, p.offset_s, p.sample_rate) for p in parts])
    y = np.array([p.target for p in parts])
    train = np.arange(y.size) < y.size // 2
    centroids = np.stack([x[train & (y == c)].mean(0) for c in range(13)])
    pred = np.argmin(((x[~train, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == y[~train]).mean() >= 0.9
    # No two classes share a template.
    dist = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
    spread = np.sqrt(((x[train] - centroids[y[train]]) ** 2).sum(-1)).mean()
    assert dist[~np.eye(13, dtype=bool)].min() > spread


def test_ensure_events_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = se.generate_events

    def counting(config: SynthEventsConfig, root: Path) -> Path:
        calls.append(root)
        return original(config, root)

    monkeypatch.setattr(se, "generate_events", counting)
    cfg = SynthEventsConfig(num_clips=12, clip_seconds=0.5)
    first = ensure_events(cfg, tmp_path)
    stamp = (first / "meta" / "esc50.csv").stat().st_mtime_ns
    assert ensure_events(cfg, tmp_path) == first and len(calls) == 1
    assert (first / "meta" / "esc50.csv").stat().st_mtime_ns == stamp
    assert first.parent.name == "synth_events" and first.name == se.cache_key(cfg)
    other = SynthEventsConfig(num_clips=12, clip_seconds=0.5, seed=1)
    assert ensure_events(other, tmp_path) != first

    # Two threads racing on a fresh entry: one build, one complete entry, no leftovers.
    calls.clear()
    racy = SynthEventsConfig(num_clips=12, clip_seconds=0.5, seed=7)
    out: list[Path] = []
    threads = [
        threading.Thread(target=lambda: out.append(ensure_events(racy, tmp_path / "r")))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2 and out[0] == out[1] and len(calls) == 1
    assert len(_read_csv(out[0])) == 12 and len(list((out[0] / "audio").iterdir())) == 12
    assert [p.name for p in out[0].parent.iterdir() if ".tmp" in p.name] == []


def test_on_grid_maps_to_coarser_grid(small_root: Path) -> None:
    librosa = pytest.importorskip("librosa")
    sr = SMALL.sample_rate
    mel_hz = librosa.mel_frequencies(64 + 2, fmax=sr / 2)[1:-1]
    for path in sorted((small_root / "masks").iterdir())[:12]:
        m = load_event_mask(path)
        # Identity grid gives the stored mask back.
        np.testing.assert_array_equal(m.on_grid(m.freqs_hz, m.times_s), m.mask)
        times = np.arange(int(m.duration_s * sr / 320) + 3) * 320 / sr  # 20 ms hop, past the end
        coarse = m.on_grid(mel_hz, times)
        assert coarse.shape == (64, times.size) and coarse.dtype == bool
        # Each cell is the stored bin nearest its centre.
        f_idx = np.rint(mel_hz * m.n_fft / sr).astype(int)
        t_idx = np.minimum(np.rint(times * sr / m.hop_length).astype(int), m.mask.shape[1] - 1)
        expect = m.mask[np.ix_(f_idx, t_idx)] & (times <= m.duration_s)[None]
        np.testing.assert_array_equal(coarse, expect)
        # Empty outside the event's span and (leakage-widened) extent.
        hop_s, bin_hz = m.hop_length / sr, sr / m.n_fft
        off_time = (times < m.onset_s - hop_s) | (times > m.offset_s + hop_s)
        off_freq = (mel_hz < m.f_low_hz - LEAK_BINS * bin_hz) | (
            mel_hz > m.f_high_hz + LEAK_BINS * bin_hz
        )
        assert not coarse[:, off_time].any() and not coarse[off_freq].any()
        assert not coarse[:, times > m.duration_s].any()
        assert not m.on_grid(np.array([-100.0, sr]), m.times_s).any()
        assert not (m.on_grid(mel_hz, times, which="dominant") & ~coarse).any()
    with pytest.raises(ValueError, match="which"):
        m.on_grid(mel_hz, times, which="other")


# --------------------------------------------------------------------------- version 1 kept

# sha256 (first 16 hex digits) of event, rest and mix bytes, computed with the version-1
# generator before the harder conditions were added, and its cache keys.
V1_DIGESTS = {
    (SynthEventsConfig(), 0): "1531a2bc20db7452",
    (SynthEventsConfig(), 1): "6eaf82b3af20f727",
    (SynthEventsConfig(), 7): "ad93c41a859bdea4",
    (
        SynthEventsConfig(
            num_classes=13, clip_seconds=1.0, max_distractors=3, snr_db=(-10.0, 5.0), seed=3
        ),
        12,
    ): "4dd31c847e98dbb7",
}
V1_KEYS = {SynthEventsConfig(): "d8dfdc653bf436d7"}
# Conditions on: as the default data config sets them (kept in step by test_data_configs).
HARD = SynthEventsConfig(
    snr_db=(-8.0, 10.0),
    max_class_distractors=2,
    class_distractor_level_db=(-10.0, -2.0),
    reverb_prob=0.5,
    level_change_db=12.0,
)


def _digest(p: se.ClipParts) -> str:
    h = hashlib.sha256()
    for a in (p.event, p.rest, p.mix):
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def test_defaults_reproduce_version_1() -> None:
    for (cfg, index), digest in V1_DIGESTS.items():
        parts = synthesize_clip(cfg, index)
        assert _digest(parts) == digest, (cfg, index)
        assert parts.background == "coloured" and parts.rt60_s == 0.0
        assert parts.class_distractors == () == parts.class_distractor_db
    for cfg, key in V1_KEYS.items():
        assert se.cache_key(cfg) == key
        # The later fields set to their defaults explicitly: same data, same key.
        same = replace(
            cfg,
            max_class_distractors=0,
            class_distractor_level_db=[-12, -3],
            reverb_prob=0,
            reverb_rt60_s=(0.2, 0.8),
            reverb_drr_db=(0, 10),
            level_change_db=0,
            backgrounds=["coloured"],
        )
        assert se.cache_key(same) == key
        for change in (
            {"max_class_distractors": 1},
            {"reverb_prob": 0.5},
            {"level_change_db": 6.0},
            {"backgrounds": ("rain",)},
            {"reverb_rt60_s": (0.3, 0.9)},
        ):
            assert se.cache_key(replace(cfg, **change)) != key, change
    assert se.GENERATOR_VERSION == 1


def test_hard_clips_are_deterministic() -> None:
    for i in (0, 3, 11):
        a, b = synthesize_clip(HARD, i), synthesize_clip(HARD, i)
        assert _digest(a) == _digest(b)
        assert (a.class_distractors, a.rt60_s) == (b.class_distractors, b.rt60_s)
        np.testing.assert_array_equal(a.mix, a.event + a.rest)
        assert 0.3 - 1e-9 <= np.abs(a.mix).max() <= 0.9 + 1e-9
    assert _digest(synthesize_clip(HARD, 0)) != _digest(synthesize_clip(SynthEventsConfig(), 0))


def test_class_distractors_are_weaker_events_of_other_classes() -> None:
    # Noise 40 dB under the event: ``rest`` is (almost) the class distractor alone.
    cfg = SynthEventsConfig(
        num_clips=80,
        clip_seconds=1.0,
        snr_db=(40.0, 40.0),
        max_distractors=0,
        max_class_distractors=1,
        class_distractor_level_db=(-10.0, -2.0),
    )
    parts = [synthesize_clip(cfg, i) for i in range(cfg.num_clips)]
    sr = cfg.sample_rate
    # Floored at -20 dB: the noise 30+ dB under a distractor does not count.
    feats = np.stack([_band_features(p.event, p.onset_s, p.offset_s, sr, -20) for p in parts])
    y = np.array([p.target for p in parts])
    centroids = np.stack([feats[y == c].mean(0) for c in range(cfg.num_classes)])
    hits, overlaps, with_one = 0, 0, 0
    for p in parts:
        assert len(p.class_distractors) <= 1
        if not p.class_distractors:
            continue
        with_one += 1
        (other,), (level,), ((a_s, b_s),) = (
            p.class_distractors,
            p.class_distractor_db,
            p.class_distractor_spans,
        )
        assert other != p.target and 0 <= other < cfg.num_classes
        assert -10.0 <= level <= -2.0
        a, b = round(a_s * sr), round(b_s * sr)
        e0, e1 = round(p.onset_s * sr), round(p.offset_s * sr)
        realised = 10 * np.log10(np.mean(p.rest[a:b] ** 2) / np.mean(p.event[e0:e1] ** 2))
        assert realised == pytest.approx(level, abs=0.1)
        assert realised < 0  # weaker than the class event
        # The mask is the class event's alone.
        mask, _ = event_masks(p.event, p.rest)
        assert mask.any() and not p.event[:e0].any() and not p.event[e1:].any()
        x = _band_features(p.rest, a_s, b_s, sr, -20)
        hits += int(np.argmin(((centroids - x) ** 2).sum(1)) == other)
        overlaps += int(a < e1 and e0 < b)
    assert 0.3 * len(parts) <= with_one <= 0.7 * len(parts)
    assert hits >= 0.8 * with_one  # sounds like its own class
    assert overlaps > 0  # free to overlap the class event


def test_room_impulse_response() -> None:
    rng = np.random.default_rng(0)
    sr, rt60, drr = 16000, 0.6, 4.0
    h = se._room_ir(sr, rt60, drr, rng)
    assert h[0] == 1.0 and h.size == int(np.ceil(rt60 * sr))
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr)
    w = int(0.1 * rt60 * sr)
    early, late = np.mean(h[1 : 1 + w] ** 2), np.mean(h[int(0.5 * rt60 * sr) :][:w] ** 2)
    assert 10 * np.log10(early / late) == pytest.approx(30.0, abs=2.0)  # 60 dB per RT60
    x = np.zeros(100)
    x[40] = 1.0
    y = se._convolve(x, h[:30], start=40)
    assert not y[:40].any()
    np.testing.assert_allclose(y[40:70], h[:30], atol=1e-12)


def test_reverberated_event_mask_covers_the_event() -> None:
    base = dict(clip_seconds=1.5, snr_db=(30.0, 30.0), max_distractors=0)
    dry_cfg = SynthEventsConfig(**base)
    wet_cfg = SynthEventsConfig(**base, reverb_prob=1.0, reverb_rt60_s=(0.4, 0.8))
    tails = 0
    for i in range(10):
        # Same draws up to the room: the same event, dry and reverberated.
        dry, wet = synthesize_clip(dry_cfg, i), synthesize_clip(wet_cfg, i)
        assert (dry.target, dry.onset_s, dry.offset_s) == (wet.target, wet.onset_s, wet.offset_s)
        assert 0.4 <= wet.rt60_s <= 0.8 and dry.rt60_s == 0.0
        a, b = round(wet.onset_s * wet.sample_rate), round(wet.offset_s * wet.sample_rate)
        assert not wet.event[:a].any()  # causal: nothing before the onset
        np.testing.assert_array_equal(wet.mix, wet.event + wet.rest)
        dry_mask, _ = event_masks(dry.event, dry.rest)
        wet_mask, _ = event_masks(wet.event, wet.rest)
        assert (dry_mask & wet_mask).sum() >= 0.9 * dry_mask.sum(), dry.category
        if b < wet.mix.size - 0.1 * wet.sample_rate:
            tails += 1
            assert np.any(wet.event[b:]) and not np.any(dry.event[b:])
            frames = np.nonzero(wet_mask.any(0))[0]
            assert frames[-1] > np.nonzero(dry_mask.any(0))[0][-1]  # rings on
    assert tails > 0


def test_level_change_and_backgrounds() -> None:
    env = se._level_envelope(1000, 12.0, np.random.default_rng(1))
    db = 20 * np.log10(env)
    assert -6.0 <= db.min() < db.max() <= 6.0
    # Linear in dB between the knots: the slope changes at the 3 inner knots only.
    assert (np.abs(np.diff(db, 2)) > 1e-9).sum() <= 6
    cfg = SynthEventsConfig(snr_db=(30.0, 30.0), max_distractors=0, level_change_db=12.0)
    p = synthesize_clip(cfg, 2)
    np.testing.assert_array_equal(p.mix, p.event + p.rest)
    # Background level over the clip no longer flat: the quarters' RMS spread.
    q = np.sqrt(np.mean(p.rest.reshape(4, -1) ** 2, axis=1))
    assert 20 * np.log10(q.max() / q.min()) > 1.0

    cfg = SynthEventsConfig(
        num_clips=12, snr_db=(40.0, 40.0), max_distractors=0, backgrounds=("rain", "drone")
    )
    seen = Counter()
    f = np.fft.rfftfreq(32000, 1 / 16000)
    for i in range(cfg.num_clips):
        p = synthesize_clip(cfg, i)
        seen[p.background] += 1
        power = np.abs(np.fft.rfft(p.rest)) ** 2
        low = power[f < 2100].sum() / power.sum()
        assert low > 0.9 if p.background == "drone" else low < 0.6, (p.background, low)
    assert set(seen) == {"rain", "drone"}


def test_conditions_are_stored(tmp_path: Path) -> None:
    cfg = replace(HARD, num_clips=6, clip_seconds=1.0, reverb_prob=1.0, backgrounds=("rain",))
    root = generate_events(cfg, tmp_path)
    meta = json.loads((root / "meta" / "generator.json").read_text())
    assert meta["config"]["max_class_distractors"] == 2 and meta["reverb"]["prob"] == 1.0
    assert list(meta["backgrounds"]) == ["rain"] and meta["level_change"]["db"] == 12.0
    for row in _read_csv(root):
        path = root / "masks" / (row["filename"][:-4] + ".npz")
        with np.load(path) as z:
            assert str(z["background"]) == "rain" and float(z["rt60_s"]) > 0
            assert z["class_distractors"].size == z["class_distractor_spans_s"].shape[0]
            assert (z["class_distractors"] != int(row["target"])).all()
        assert load_event_mask(path).mask.any()
    # Version-1 configs write version-1 mask files (no extra keys).
    with np.load(next((generate_events(SMALL, tmp_path / "v1") / "masks").iterdir())) as z:
        assert not {"background", "rt60_s", "class_distractors"} & set(z.files)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_class_distractors": -1}, "max_class_distractors"),
        ({"max_class_distractors": 1, "num_classes": 1}, "max_class_distractors"),
        ({"class_distractor_level_db": (-3.0, 0.0)}, "class_distractor_level_db"),
        ({"class_distractor_level_db": (-3.0, -6.0)}, "class_distractor_level_db"),
        ({"class_distractor_level_db": (-3.0,)}, "class_distractor_level_db"),
        ({"reverb_prob": 1.5}, "reverb_prob"),
        ({"reverb_rt60_s": (0.0, 0.5)}, "reverb_rt60_s"),
        ({"reverb_rt60_s": (0.8, 0.5)}, "reverb_rt60_s"),
        ({"reverb_drr_db": (5.0, 0.0)}, "reverb_drr_db"),
        ({"level_change_db": -1.0}, "level_change_db"),
        ({"backgrounds": ()}, "backgrounds"),
        ({"backgrounds": ("coloured", "traffic")}, "backgrounds"),
    ],
)
def test_new_fields_are_validated(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SynthEventsConfig(**change)


def _data_config(*overrides: str) -> SynthEventsConfig:
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("fit", overrides=["config=blackbox_events", *overrides])
    section = OmegaConf.to_container(cfg.data, resolve=True)
    return section, build_datamodule(section, None).synth


def test_data_configs() -> None:
    easy_section, easy = _data_config("data=synth_events_easy")
    hard_section, hard = _data_config()
    shifted_section, shifted = _data_config("data=synth_events_shifted", "data.root=null")
    # Easy: version 1 (what old runs' config.yaml, without the new keys, reopen).
    assert easy == SynthEventsConfig() and se.cache_key(easy) == V1_KEYS[SynthEventsConfig()]
    # Default: the hard task pinned above, all conditions on.
    assert hard == HARD
    assert hard.max_class_distractors and hard.reverb_prob and hard.level_change_db
    # Shifted: same task and front end, other clips, unseen backgrounds, harsher rooms.
    for key in ("num_classes", "sample_rate", "clip_seconds", "features", "layout"):
        assert shifted_section[key] == hard_section[key] == easy_section[key], key
    assert shifted.seed != hard.seed and shifted.num_clips == 500
    assert not set(shifted.backgrounds) & set(hard.backgrounds)
    assert shifted.snr_db[0] < hard.snr_db[0]
    assert shifted.reverb_prob >= hard.reverb_prob
    assert shifted.reverb_rt60_s[1] > hard.reverb_rt60_s[1]
    assert se.cache_key(shifted) != se.cache_key(hard)
