"""Built-in music: determinism, qualities set by parameters and audible, the true mapping,
the Mid-level / Soundtracks layout read back by the real loaders, evidence masks, cache;
the shift options (unseen tempi, instruments, keys, a room) and their config."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from interp_models.data.midlevel import EMOTIONS, QUALITIES, read_midlevel
from interp_models.data.music import MusicClips
from interp_models.data.synth_music import (
    INSTRUMENTS,
    NUISANCE_RANGES,
    NUISANCES,
    SHIFTED_INSTRUMENTS,
    Event,
    SynthMusicConfig,
    _note,
    cache_key,
    clip_latents,
    clip_ratings,
    compose,
    config_from_root,
    ensure_music,
    evidence_masks,
    load_evidence,
    normalised_nuisance,
    stft_magnitude,
    synthesize_clip,
    true_mapping,
)

CFG = SynthMusicConfig(num_clips=400, clip_seconds=3.0)
SMALL = SynthMusicConfig(num_clips=15, clip_seconds=1.5)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return ensure_music(SMALL, tmp_path_factory.mktemp("cache"))


def test_config_is_validated():
    with pytest.raises(ValueError, match="num_clips"):
        SynthMusicConfig(num_clips=0)
    with pytest.raises(ValueError, match="sample_rate"):
        SynthMusicConfig(sample_rate=8000)
    with pytest.raises(ValueError, match="unknown quality 'sadness'"):
        synthesize_clip(SMALL, 0, {"sadness": 1.0})
    with pytest.raises(ValueError, match="clip index"):
        synthesize_clip(SMALL, 15)


def test_clips_are_deterministic_and_distinct():
    a, b = synthesize_clip(SMALL, 3), synthesize_clip(SMALL, 3)
    assert np.array_equal(a.mix, b.mix) and np.array_equal(a.stems, b.stems)
    assert not np.allclose(a.mix[:20000], synthesize_clip(SMALL, 4).mix[:20000])
    assert np.isfinite(a.mix).all() and 0 < np.abs(a.mix).max() <= 0.99


def test_each_quality_sets_its_part_of_the_score_and_nothing_else():
    """Known answers of the realised score at the ends of each quality's range, and an
    override leaves every other part of the clip as it was."""
    for i in range(5):

        def stats(q, v, i=i):
            return compose(CFG, i, {q: v}).stats

        assert stats("minorness", 0.0)["minor_chord_fraction"] == 0.0
        assert stats("minorness", 1.0)["minor_chord_fraction"] == 1.0
        assert stats("dissonance", 0.0)["added_tones_per_chord"] == 0.0
        assert stats("dissonance", 1.0)["added_tones_per_chord"] == 3.0
        assert stats("tonal_stability", 1.0)["chromatic_note_fraction"] == 0.0
        assert stats("tonal_stability", 1.0)["chromatic_chord_fraction"] == 0.0
        assert stats("tonal_stability", 0.0)["chromatic_chord_fraction"] > 0.0
        assert stats("rhythm_stability", 1.0)["beat_interval_cv"] < 1e-9
        assert stats("rhythm_stability", 0.0)["beat_interval_cv"] > 0.02
        assert stats("rhythm_complexity", 0.0)["syncopated_fraction"] == 0.0
        assert stats("rhythm_complexity", 1.0)["syncopated_fraction"] > 0.3
        assert stats("melodiousness", 1.0)["melody_leap_fraction"] == 0.0
        assert stats("melodiousness", 0.0)["melody_leap_fraction"] > 0.5
        # Changing the mode rewrites chords and melody, never the drums.
        drums = [
            [e for e in compose(CFG, i, {"minorness": v}).events if e.part in ("kick", "snare")]
            for v in (0.0, 1.0)
        ]
        assert drums[0] == drums[1]


def _chroma(x: np.ndarray, sr: int, lo_hz: float = 100.0, hi_hz: float = 1000.0) -> np.ndarray:
    """(12, frames) pitch-class energy of ``x``, pitch class 0 = A."""
    mag = stft_magnitude(x, 4096, 1024) ** 2
    freqs = np.arange(mag.shape[0]) * sr / 4096
    ok = (freqs > lo_hz) & (freqs < hi_hz)
    pcs = np.rint(12 * np.log2(freqs[ok] / 440.0)).astype(int) % 12
    return np.stack([mag[ok][pcs == c].sum(0) for c in range(12)])


def _recognised_minor(clip, sr: int) -> list[bool]:
    """Template chord recognition (Fujishima, ICMC 1999) over each chord's span of the
    mix: is the best of the 24 major / minor triad templates a minor one?"""
    chroma = _chroma(clip.mix, sr)
    spans = sorted({(e.onset, e.duration) for e in clip.score.events if e.part == "pad"})
    out = []
    for onset, dur in spans:
        a, b = int(onset * sr / 1024) + 2, int((onset + dur) * sr / 1024) - 1
        if b <= a:
            continue
        c = chroma[:, a:b].sum(1)
        scores = []
        for root in range(12):
            for third, minor in ((4, False), (3, True)):
                template = np.zeros(12)
                template[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
                scores.append((float(template @ c), minor))
        out.append(max(scores)[1])
    return out


def test_minorness_and_articulation_are_audible_in_the_mix():
    minor = {0.0: [], 1.0: []}
    duty = {0.0: [], 1.0: []}
    for i in range(6):
        for v in minor:
            q = {"minorness": v, "dissonance": 0.0, "tonal_stability": 1.0}
            minor[v] += _recognised_minor(synthesize_clip(CFG, i, q), CFG.sample_rate)
        for a in duty:
            clip = synthesize_clip(CFG, i, {"articulation": a, "tonal_stability": 0.0})
            band = stft_magnitude(clip.mix)[20:200].sum(0)  # 430 Hz - 4.3 kHz
            duty[a].append(np.mean(band > 0.3 * band.max()))
    # A chord recogniser that knows nothing of the generator hears the mode.
    assert np.mean(minor[0.0]) <= 0.2 and np.mean(minor[1.0]) >= 0.8
    # Staccato leaves gaps between notes (only the soft pad holds; no drone here): fewer
    # loud frames.
    assert all(s < lg - 0.1 for s, lg in zip(duty[1.0], duty[0.0], strict=True))


def test_ratings_follow_the_stored_mapping():
    """Least squares on 400 clips' stored ratings recovers the true mapping."""
    q, e, n = [], [], []
    for i in range(CFG.num_clips):
        qr, er = clip_ratings(CFG, i)
        q.append(qr)
        e.append(er)
        n.append(normalised_nuisance(clip_latents(CFG, i)[1]))
    q, e, n = map(np.array, (q, e, n))
    assert q.min() >= 1 and q.max() <= 10 and e.min() >= 1 and e.max() <= 9
    truth = true_mapping(CFG)
    design = np.column_stack([np.ones(len(q)), q, n])
    coef = np.linalg.lstsq(design, e, rcond=None)[0]
    np.testing.assert_allclose(coef[1:8].T, truth["weights"], atol=0.03)
    np.testing.assert_allclose(coef[8:].T, truth["nuisance_weights"], atol=0.08)
    np.testing.assert_allclose(coef[0], truth["intercept"], atol=0.3)
    resid = e - design @ coef
    np.testing.assert_allclose(resid.std(0), CFG.emotion_noise, rtol=0.25)
    assert len(truth["ceiling_r_qualities"]) == len(EMOTIONS)
    assert all(
        a < b <= 1
        for a, b in zip(truth["ceiling_r_qualities"], truth["ceiling_r_all"], strict=True)
    )
    assert truth["nuisances"] == list(NUISANCES)


def test_layout_is_read_by_the_real_loader(small_root):
    records = read_midlevel(small_root)
    assert [r.song_id for r in records] == [str(i) for i in range(1, 16)]
    for i, r in enumerate(records):
        qr, er = clip_ratings(SMALL, i)
        np.testing.assert_allclose(r.qualities, qr, atol=1e-4)  # written with 4 decimals
        np.testing.assert_allclose(r.emotions, er, atol=1e-4)
        assert r.path.name == f"{i + 1}.wav" and r.has_qualities and r.has_emotions
    assert sorted({r.fold for r in records}) == [1, 2, 3, 4, 5]
    assert all(sum(r.fold == f for r in records) == 3 for f in range(1, 6))
    info = json.loads((small_root / "meta" / "generator.json").read_text())
    assert info["true_mapping"]["qualities"] == list(QUALITIES)
    assert config_from_root(small_root) == SMALL
    header = (small_root / "soundtracks" / "mean_ratings_set1.csv").read_text().splitlines()[0]
    assert header == "Number," + ",".join(EMOTIONS) + ",TARGET"


def test_evidence_masks_mark_the_tagged_events(small_root):
    clip = synthesize_clip(SMALL, 2)
    masks = evidence_masks(clip)
    stored = load_evidence(small_root / "masks" / "3.npz")
    assert np.array_equal(stored.evidence, masks)
    assert masks.shape[0] == len(QUALITIES) and masks[QUALITIES.index("melodiousness")].any()
    # Without syncopation nothing is evidence of rhythm complexity.
    plain = synthesize_clip(SMALL, 2, {"rhythm_complexity": 0.0})
    assert not plain.stems[QUALITIES.index("rhythm_complexity")].any()
    assert not evidence_masks(plain)[QUALITIES.index("rhythm_complexity")].any()
    # The drum stem is evidence of rhythm stability, mostly at the drums' frequencies.
    grid = stored.on_grid(np.array([100.0, 20000.0]), np.array([0.5, 99.0]))
    assert grid.shape == (len(QUALITIES), 2, 2) and not grid[:, 1].any() and not grid[:, :, 1].any()


def test_cache_is_keyed_by_parameters(small_root, tmp_path):
    again = ensure_music(SMALL, small_root.parent.parent)
    assert again == small_root
    other = ensure_music(SynthMusicConfig(num_clips=2, clip_seconds=1.0, seed=1), tmp_path)
    assert other != small_root and len(list((other / "audio").iterdir())) == 2


# --------------------------------------------------------------------------- shift options

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "data"
LOADER_KEYS = ("batch_size", "num_workers", "shuffle_seed")
SHIFT = {
    "tempo_ranges": [[50.0, 68.0], [156.0, 190.0]],
    "instruments": list(SHIFTED_INSTRUMENTS),
    "bass_instrument": "ks_string",
    "pad_instrument": "drawbar",
    "transpose_ranges": [[-5.7, -5.3], [5.3, 5.7]],
    "reverb_seconds": 1.2,
    "reverb_wet": 0.35,
}
SHIFTED = SynthMusicConfig(num_clips=15, clip_seconds=1.5, seed=101, **SHIFT)


def _digest(clip) -> str:
    """The clip as written (16-bit mix and stems) and its score: robust to last-bit float
    differences between machines, not to any change of the synthesis."""
    h = hashlib.sha256()
    h.update(np.rint(clip.mix * 32767).astype(np.int16).tobytes())
    h.update(np.rint(clip.stems * 32767).astype(np.int16).tobytes())
    for e in clip.score.events:
        h.update(
            f"{e.part} {e.tags} {e.onset:.9f} {e.duration:.9f} {e.pitch:.6f} {e.gain:.9f}".encode()
        )
    return h.hexdigest()[:16]


def test_defaults_reproduce_the_data_from_before_the_shift_options(small_root):
    """Digests and cache keys computed with the generator before the shift options
    existed: the defaults (and the defaults spelt out, as read back from JSON) change
    nothing, so old caches and runs keep their data."""
    default = SynthMusicConfig()
    assert _digest(synthesize_clip(default, 0)) == "ba8ab5de2eb979e0"
    assert _digest(synthesize_clip(default, 7)) == "0a39df3656fe08b6"
    small = SynthMusicConfig(num_clips=15, clip_seconds=1.5, seed=3)
    assert _digest(synthesize_clip(small, 11, {"minorness": 1.0})) == "ef91cab74b6c43fa"
    assert cache_key(default) == "b2480b4bedf52803"
    assert cache_key(SMALL) == "ef8a35aa60e04308"
    spelt = SynthMusicConfig(
        num_clips=15,
        clip_seconds=1.5,
        tempo_ranges=[[75, 145]],
        instruments=list(INSTRUMENTS),
        bass_instrument="pluck",
        pad_instrument="organ",
        reverb_seconds=0,
    )
    assert spelt == SMALL and cache_key(spelt) == cache_key(SMALL)
    info = json.loads((small_root / "meta" / "generator.json").read_text())
    assert not set(SHIFT) & set(info["config"])
    header = (small_root / "meta" / "clips.csv").read_text().splitlines()[0].split(",")
    assert "transpose" not in header


def test_shifted_tempi_lie_outside_the_training_range():
    default = SynthMusicConfig(num_clips=40, seed=101)
    shifted = SynthMusicConfig(num_clips=40, seed=101, tempo_ranges=SHIFT["tempo_ranges"])
    tempi = []
    for i in range(40):
        q, n = clip_latents(shifted, i)
        q0, n0 = clip_latents(default, i)
        assert q == q0 and n["loudness"] == n0["loudness"]  # only the tempo draw moves
        assert 50 <= n["tempo"] <= 68 or 156 <= n["tempo"] <= 190
        tempi.append(n["tempo"])
    lo, hi = NUISANCE_RANGES["tempo"]
    assert min(tempi) < 68 and max(tempi) > 156  # both sides of the training range
    score = compose(shifted, 0)
    assert score.stats["tempo_bpm"] == tempi[0]
    # The ratings' tempo term extrapolates the training mapping (|normalised tempo| > 1).
    assert abs(normalised_nuisance(clip_latents(shifted, 0)[1])[0]) > 1
    assert not lo <= tempi[0] <= hi


def test_shifted_instruments_are_new_models():
    shifted = SynthMusicConfig(num_clips=40, instruments=SHIFT["instruments"])
    drawn = {x for i in range(40) for x in compose(shifted, i).instruments}
    assert drawn == set(SHIFTED_INSTRUMENTS) and not drawn & set(INSTRUMENTS)
    sr, f0 = 22050, 440.0
    freqs = np.fft.rfftfreq(sr, 1 / sr)  # 1 Hz bins over 1 s

    def spectrum(instrument, start=0.0, length=0.5):
        ev = Event(0.0, 1.0, 69.0, 1.0, "melody", attack=0.005, release=0.05)
        x = _note(ev, instrument, 1.2, sr, {})
        seg = x[int(start * sr) : int((start + length) * sr)]
        return np.abs(np.fft.rfft(seg * np.hanning(seg.size), sr))

    def level(spec, hz):
        return spec[int(hz) - 3 : int(hz) + 4].max()

    organ = spectrum("drawbar")  # the 16' drawbar: a partial an octave below the note
    assert level(organ, f0 / 2) > 0.1 * organ.max()
    assert level(spectrum("organ"), f0 / 2) < 1e-3 * organ.max()
    bell = spectrum("fm_bell")  # inharmonic sidebands f0 + n * 1.4 f0 (2.4 f0, 3.8 f0)
    assert level(bell, 2.4 * f0) > 0.1 * bell.max()
    assert level(bell, 2.0 * f0) < 0.1 * level(bell, 2.4 * f0)
    # Karplus-Strong: high harmonics die away faster than the fundamental.
    early, late = spectrum("ks_string", 0.0, 0.1), spectrum("ks_string", 0.5, 0.1)
    high = freqs > 2500

    def share(s):
        return (s[high] ** 2).sum() / (s**2).sum()

    assert share(late) < 0.5 * share(early)
    # In a clip: the same score, other sounds.
    dry = SynthMusicConfig(num_clips=15, clip_seconds=1.5)
    timbre = SynthMusicConfig(
        num_clips=15, clip_seconds=1.5, instruments=["fm_bell"], bass_instrument="ks_string"
    )
    a, b = synthesize_clip(dry, 2), synthesize_clip(timbre, 2)
    assert a.score.events == b.score.events
    assert b.score.instruments == ("fm_bell", "fm_bell")
    assert not np.allclose(a.mix, b.mix, atol=1e-3)


def test_shifted_keys_lie_off_the_training_keys():
    dry = SynthMusicConfig(num_clips=15, clip_seconds=1.5)
    moved = SynthMusicConfig(
        num_clips=15, clip_seconds=1.5, transpose_ranges=SHIFT["transpose_ranges"]
    )
    for i in range(6):
        a, b = compose(dry, i), compose(moved, i)
        assert 5.3 <= abs(b.transpose) <= 5.7 and a.transpose == 0.0
        assert a.stats == b.stats and a.key == b.key  # the same composition ...
        for ea, eb in zip(a.events, b.events, strict=True):  # ... every pitch moved
            shift = 0.0 if ea.part in ("kick", "snare", "hat") else b.transpose
            assert eb.pitch == pytest.approx(ea.pitch + shift, abs=1e-9)
        # The tonic (57 + key) sits 30-70 cents between the 12 training keys.
        tonic = 57 + b.key + b.transpose
        assert 0.3 - 1e-9 <= tonic % 1 <= 0.7 + 1e-9
    # Audible: the loudest partial of a drone-dominated clip is off the equal-tempered grid.
    q = {"tonal_stability": 1.0, "dissonance": 0.0, "melodiousness": 0.0}
    for config, off_grid, i in (
        (dry, False, 2),
        (dry, False, 4),
        (moved, True, 2),
        (moved, True, 4),
    ):
        x = synthesize_clip(config, i, q).mix
        spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        freqs = np.fft.rfftfreq(x.size, 1 / config.sample_rate)
        band = (freqs > 200) & (freqs < 1000)
        semis = 12 * np.log2(freqs[band][spec[band].argmax()] / 440.0)
        assert (abs(semis - round(semis)) > 0.25) == off_grid


def test_room_fills_the_gaps_and_keeps_loudness():
    dry = SynthMusicConfig(num_clips=15, clip_seconds=1.5)
    room = SynthMusicConfig(num_clips=15, clip_seconds=1.5, reverb_seconds=1.2, reverb_wet=0.35)
    duty = {dry: [], room: []}
    for i in range(3):
        for config in duty:
            clip = synthesize_clip(config, i, {"articulation": 1.0, "tonal_stability": 0.0})
            band = stft_magnitude(clip.mix)[20:200].sum(0)
            duty[config].append(np.mean(band > 0.3 * band.max()))
            rms_db = 10 * np.log10(np.mean(clip.mix**2))
            assert rms_db == pytest.approx(clip.score.nuisance["loudness"], abs=0.01) or (
                np.abs(clip.mix).max() == pytest.approx(0.99)
            )
    assert np.mean(duty[room]) > np.mean(duty[dry]) + 0.05


def test_shifted_data_is_deterministic_and_written(tmp_path):
    a, b = synthesize_clip(SHIFTED, 4), synthesize_clip(SHIFTED, 4)
    assert np.array_equal(a.mix, b.mix) and np.array_equal(a.stems, b.stems)
    assert np.isfinite(a.mix).all() and 0 < np.abs(a.mix).max() <= 0.99
    # An override changes its quality only; the shift draws stay.
    c = synthesize_clip(SHIFTED, 4, {"minorness": 1.0})
    assert c.score.transpose == a.score.transpose and c.score.nuisance == a.score.nuisance
    small = SynthMusicConfig(num_clips=3, clip_seconds=1.0, seed=101, **SHIFT)
    root = ensure_music(small, tmp_path)
    assert config_from_root(root) == small and cache_key(small) != cache_key(SMALL)
    info = json.loads((root / "meta" / "generator.json").read_text())
    assert info["config"]["tempo_ranges"] == SHIFT["tempo_ranges"]
    with open(root / "meta" / "clips.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["transpose"]) for r in rows] == [
        round(compose(small, i).transpose, 6) for i in range(3)
    ]
    assert all(r["melody_instrument"] in SHIFTED_INSTRUMENTS for r in rows)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("tempo_ranges", [[150, 140]], "tempo_ranges"),
        ("tempo_ranges", [[10, 60]], "tempo_ranges"),
        ("tempo_ranges", "fast", "tempo_ranges"),
        ("tempo_ranges", [], "tempo_ranges"),
        ("instruments", ["kazoo"], "instruments: unknown instrument 'kazoo'"),
        ("instruments", [], "instruments"),
        ("instruments", "piano", "instruments"),
        ("bass_instrument", "kazoo", "bass_instrument"),
        ("pad_instrument", "kazoo", "pad_instrument"),
        ("transpose_ranges", [[0, 13]], "transpose_ranges"),
        ("transpose_ranges", [[1, 2, 3]], "transpose_ranges"),
        ("reverb_seconds", -1, "reverb_seconds"),
        ("reverb_wet", 2, "reverb_wet"),
    ],
)
def test_shift_options_are_validated(field, value, match):
    with pytest.raises(ValueError, match=match):
        SynthMusicConfig(**{field: value})


def test_shifted_config_file_and_music_clips():
    base = OmegaConf.to_container(OmegaConf.load(CONFIGS / "synth_music.yaml"))
    shifted = OmegaConf.to_container(OmegaConf.load(CONFIGS / "synth_music_shifted.yaml"))
    assert set(shifted) == set(base) | set(SHIFT)
    for key in ("_target_", "sample_rate", "clip_seconds", "features", "root", "emotion_noise"):
        assert shifted[key] == base[key]
    assert shifted["data_seed"] != base["data_seed"] and shifted["num_clips"] == 500
    kwargs = {k: v for k, v in shifted.items() if k not in ("_target_", *LOADER_KEYS)}
    data = MusicClips(**kwargs)
    config = data.synth
    assert config.seed == shifted["data_seed"] and config.num_clips == 500
    lo, hi = NUISANCE_RANGES["tempo"]
    assert all(b < lo or a > hi for a, b in config.tempo_ranges)
    assert not set(config.instruments) & set(INSTRUMENTS)
    assert config.bass_instrument not in INSTRUMENTS and config.pad_instrument not in INSTRUMENTS
    # No transposition in the ranges is a whole number of semitones (a training key).
    assert all(
        a // 1 == b // 1 and 0.25 <= a % 1 <= b % 1 <= 0.75 for a, b in config.transpose_ranges
    )
    # Old runs' data settings lack the shift keys: the same data as before.
    old = {k: v for k, v in base.items() if k not in ("_target_", *LOADER_KEYS)}
    assert MusicClips(**old).synth == SynthMusicConfig(num_clips=2000)
    with pytest.raises(ValueError, match="data.tempo_ranges"):
        MusicClips(root="/somewhere", tempo_ranges=[[50, 60]])
