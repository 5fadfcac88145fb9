"""Built-in music: determinism, qualities set by parameters and audible, the true mapping,
the Mid-level / Soundtracks layout read back by the real loaders, evidence masks, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp_models.data.midlevel import EMOTIONS, QUALITIES, read_midlevel
from interp_models.data.synth_music import (
    NUISANCES,
    SynthMusicConfig,
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
