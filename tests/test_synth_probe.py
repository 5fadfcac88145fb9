"""Probe music: determinism, balanced factors, each factor's musical property in the score
under a one-factor override (the rest of the clip unchanged), errors and the cache."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest

from interp_models.cache import generator_key
from interp_models.data.midlevel import QUALITIES
from interp_models.data.synth_probe import (
    INSTRUMENTS,
    PROBE_VERSION,
    ProbeConfig,
    compose_probe,
    probe_contrasts,
    probe_factors,
    probe_set,
    probe_setting,
    render_probe,
)

CFG = ProbeConfig(num_clips=12, seed=5)
CLIPS = range(CFG.num_clips)
MAJOR, MINOR = {0, 2, 4, 5, 7, 9, 11}, {0, 2, 3, 5, 7, 8, 10}
# The other factors held fixed where they would blur the measured property.
STEADY = {"rhythm_stability": 1}


def _score(index: int, **overrides: int):
    return compose_probe(CFG, index, overrides)


def _part(notes, part: str):
    return [n for n in notes if n.part == part]


def _semitones(note, index: int) -> int:
    """Equal-tempered pitch with the clip's detune removed (doubled voices round back)."""
    return int(round(note.pitch_midi - probe_setting(CFG, index).detune_cents / 100.0))


def _chords(notes, index: int) -> list[list[float]]:
    """Pitches of each chord hit (chord notes grouped by onset), the clip's detune removed."""
    detune = probe_setting(CFG, index).detune_cents / 100.0
    hits = defaultdict(list)
    for n in _part(notes, "chords"):
        hits[n.onset_s].append(n.pitch_midi - detune)
    return [sorted(v) for _, v in sorted(hits.items())]


def _interval_classes(pitches: list[float]) -> set[int]:
    return {int(round(abs(a - b))) % 12 for i, a in enumerate(pitches) for b in pitches[i + 1 :]}


def _grid_error_s(notes, index: int) -> np.ndarray:
    """Distance of each onset to the nearest 16th of the clip's tempo."""
    step = probe_setting(CFG, index).beat_s / 4.0
    pos = np.array([n.onset_s for n in notes]) / step
    return np.abs(pos - np.round(pos)) * step


def _offbeat_fraction(notes, index: int) -> float:
    beat = probe_setting(CFG, index).beat_s
    pos = np.round(np.array([n.onset_s for n in notes]) / (beat / 4.0)).astype(int)
    return float(np.mean(pos % 4 != 0))


# ------------------------------------------------------------------ audio and determinism


def test_render_is_deterministic_finite_and_peak_safe():
    a, b = render_probe(CFG, 3), render_probe(CFG, 3)
    assert a.shape == (CFG.num_samples,) and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert np.isfinite(a).all() and 0.0 < np.abs(a).max() <= 1.0
    other = render_probe(replace(CFG, seed=6), 3)
    assert not np.array_equal(a, other)
    assert not np.array_equal(a, render_probe(CFG, 4))


def test_loudness_within_range_and_override_changes_audio():
    for i in (0, 1, 2):
        x = render_probe(CFG, i)
        rms_db = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert -29.0 < rms_db < -15.5
    flipped = 1 - probe_factors(CFG)[0, QUALITIES.index("articulation")]
    y = render_probe(CFG, 0, {"articulation": int(flipped)})
    assert y.shape == (CFG.num_samples,) and not np.array_equal(render_probe(CFG, 0), y)


def test_config_shapes_and_validation():
    assert ProbeConfig().num_samples == 88200
    assert ProbeConfig(sample_rate=16000, clip_seconds=1.5).num_samples == 24000
    for field, value in [
        ("num_clips", 0),
        ("seed", -1),
        ("sample_rate", 8000),
        ("clip_seconds", 0.5),
        ("num_clips", 2.5),
    ]:
        with pytest.raises(ValueError, match=field):
            ProbeConfig(**{field: value})
    assert generator_key(ProbeConfig(clip_seconds=4), 1) == generator_key(ProbeConfig(), 1)


# ------------------------------------------------------------------ factors


def test_factors_balanced_independent_columns():
    f = probe_factors(CFG)
    assert f.shape == (12, 7) and f.dtype == np.int8
    assert set(np.unique(f)) <= {0, 1}
    assert (f.sum(axis=0) == 6).all()
    assert len({f[:, j].tobytes() for j in range(7)}) > 1
    assert np.array_equal(f, probe_factors(CFG))
    assert not np.array_equal(f, probe_factors(replace(CFG, seed=6)))


def test_setting_and_instruments_unchanged_by_overrides():
    for i in (0, 5):
        base = {n.part: n.instrument for n in _score(i)}
        assert set(base.values()) <= set(INSTRUMENTS)
        assert base == dict(
            zip(("melody", "chords", "bass"), probe_setting(CFG, i).instruments, strict=True)
        )
        for q in QUALITIES:
            for v in (0, 1):
                notes = _score(i, **{q: v})
                assert {n.part: n.instrument for n in notes} == base
    for q in sorted(set(QUALITIES) - {"rhythm_stability", "tonal_stability"}):
        for v in (0, 1):  # tempo and key unchanged: onsets on its grid, bass on I / IV / V
            notes = _score(5, **{q: v, "rhythm_stability": 1, "tonal_stability": 1})
            assert _grid_error_s(notes, 5).max() < 1e-9
            tonic = probe_setting(CFG, 5).tonic
            assert {(_semitones(n, 5) - tonic) % 12 for n in _part(notes, "bass")} <= {0, 5, 7}
    s = probe_setting(CFG, 0)
    assert 60 <= s.tempo_bpm <= 170 and abs(s.detune_cents) <= 50 and 0 <= s.tonic < 12
    assert 0.2 <= s.rt60_s <= 1.2 and 0.1 <= s.wet <= 0.4


def test_articulation_changes_only_durations():
    for i in CLIPS:
        stac, leg = _score(i, articulation=1), _score(i, articulation=0)
        assert [(n.onset_s, n.pitch_midi) for n in stac] == [(n.onset_s, n.pitch_midi) for n in leg]
        ratio = [a.duration_s / b.duration_s for a, b in zip(stac, leg, strict=True)]
        assert max(ratio) < 0.35
        assert max(n.attack_s for n in stac) < min(n.attack_s for n in leg)


def test_articulation_fills_or_leaves_the_interval():
    for value, lo, hi in ((1, 0.12, 0.32), (0, 0.93, 1.01)):
        fill = []
        for i in CLIPS:
            mel = _part(_score(i, articulation=value, melodiousness=1, **STEADY), "melody")
            fill += [
                a.duration_s / (b.onset_s - a.onset_s)
                for a, b in zip(mel[:-1], mel[1:], strict=True)
            ]
        assert lo < np.median(fill) < hi


def test_minorness_sets_the_third_of_every_chord():
    for i in CLIPS:
        onsets = [[n.onset_s for n in _score(i, minorness=v)] for v in (0, 1)]
        assert onsets[0] == onsets[1]
        for value, third in ((1, 3), (0, 4)):
            for chord in _chords(_score(i, minorness=value, dissonance=0), i):
                pcs = {int(round(p)) % 12 for p in chord}
                assert len(pcs) == 3
                roots = [r for r in pcs if pcs == {r, (r + third) % 12, (r + 7) % 12}]
                assert len(roots) == 1, (i, value, chord)


def test_dissonance_adds_clusters_and_detuned_voices():
    clash = {1, 6, 11}
    for i in CLIPS:
        plain, rough = _score(i, dissonance=0), _score(i, dissonance=1)
        assert _part(plain, "melody") == _part(rough, "melody")
        assert _part(plain, "bass") == _part(rough, "bass")
        for chord in _chords(plain, i):
            assert not _interval_classes(chord) & clash and len(chord) == 3
        for chord in _chords(rough, i):
            assert _interval_classes(chord) & clash
            cents = [abs(a - b) for a in chord for b in chord if 0.05 < abs(a - b) < 0.5]
            assert cents  # a doubled voice 10-25 cents off


def test_tonal_stability_keeps_the_melody_in_key():
    outside = []
    for i in CLIPS:
        tonic = probe_setting(CFG, i).tonic
        for minor, scale in ((0, MAJOR), (1, MINOR)):
            stable = _score(i, tonal_stability=1, minorness=minor)
            mel = [(_semitones(n, i) - tonic) % 12 for n in _part(stable, "melody")]
            assert set(mel) <= scale and mel[0] == 0 and mel[-1] == 0
            bass = [(_semitones(n, i) - tonic) % 12 for n in _part(stable, "bass")]
            assert set(bass) <= {0, 5, 7}
            chromatic = _score(i, tonal_stability=0, minorness=minor)
            pcs = [(_semitones(n, i) - tonic) % 12 for n in _part(chromatic, "melody")]
            outside.append(np.mean([p not in scale for p in pcs]))
            assert outside[-1] > 0
    assert np.mean(outside) > 0.4


def test_tonal_stability_starts_and_ends_on_the_tonic_chord():
    for i in CLIPS:
        tonic = probe_setting(CFG, i).tonic
        chords = _chords(_score(i, tonal_stability=1, dissonance=0), i)
        for chord in (chords[0], chords[-1]):
            assert {0, 7} <= {(_round(p) - tonic) % 12 for p in chord}
        chords = _chords(_score(i, tonal_stability=0, dissonance=0), i)
        for chord in (chords[0], chords[-1]):
            assert not {0, 7} <= {(_round(p) - tonic) % 12 for p in chord}


def _round(pitch: float) -> int:
    return int(round(pitch))


def _together(notes) -> int:
    """Melody onsets within 1 ms of a chord or bass onset."""
    others = np.array([n.onset_s for n in notes if n.part != "melody"])
    return sum(np.abs(others - n.onset_s).min() < 1e-3 for n in _part(notes, "melody"))


def test_melodiousness_steps_versus_leaps():
    steps, leaps = [], []
    for i in CLIPS:
        smooth = [
            n.pitch_midi for n in _part(_score(i, melodiousness=1, tonal_stability=1), "melody")
        ]
        jagged = [
            n.pitch_midi for n in _part(_score(i, melodiousness=0, tonal_stability=1), "melody")
        ]
        steps += list(np.abs(np.diff(smooth)))
        leaps += list(np.abs(np.diff(jagged)))
    assert np.mean(np.array(steps) <= 2.01) > 0.6
    assert np.mean(np.array(leaps) >= 6.99) > 0.6 and max(steps) < 7


def test_melodiousness_rests_fragment_the_melody():
    counts = {0: 0, 1: 0}
    for i in CLIPS:
        for v in (0, 1):
            counts[v] += len(_part(_score(i, melodiousness=v, rhythm_complexity=1), "melody"))
    assert counts[0] < 0.8 * counts[1]


def test_rhythm_stability_grid_versus_drift_and_jitter():
    drift, together = [], np.zeros(2)
    for i in CLIPS:
        steady = _score(i, rhythm_stability=1)
        assert _grid_error_s(steady, i).max() < 1e-9
        loose = _score(i, rhythm_stability=0)
        drift.append(_grid_error_s(loose, i).mean())
        together += _together(steady), _together(loose)
    assert min(drift) >= 0.01
    assert together[1] < 0.2 * together[0]  # the parts no longer land together


def test_rhythm_complexity_offbeat_onsets():
    for i in CLIPS:
        assert _offbeat_fraction(_score(i, rhythm_complexity=0, **STEADY), i) == 0.0
        assert _offbeat_fraction(_score(i, rhythm_complexity=1, **STEADY), i) > 0.3


# ------------------------------------------------------------------ errors and cache


def test_bad_overrides_and_index_raise():
    with pytest.raises(ValueError, match="loudness"):
        compose_probe(CFG, 0, {"loudness": 1})
    with pytest.raises(ValueError, match="minorness"):
        render_probe(CFG, 0, {"minorness": 2})
    with pytest.raises(ValueError, match="dissonance"):
        compose_probe(CFG, 0, {"dissonance": 0.5})
    for bad in (-1, CFG.num_clips):
        with pytest.raises(ValueError, match="index"):
            render_probe(CFG, bad)
        with pytest.raises(ValueError, match="index"):
            probe_setting(CFG, bad)


def test_probe_set_cached(tmp_path):
    cfg = ProbeConfig(num_clips=4, seed=1, clip_seconds=1.0)
    waves, factors = probe_set(cfg, cache_dir=tmp_path)
    assert waves.shape == (4, cfg.num_samples) and waves.dtype == np.float32
    assert factors.dtype == np.int8 and np.array_equal(factors, probe_factors(cfg))
    assert np.array_equal(waves[2], render_probe(cfg, 2))
    root = tmp_path / "synth_probe" / generator_key(cfg, PROBE_VERSION)
    assert (root / "waves.npy").is_file() and (root / "factors.npy").is_file()
    again, factors2 = probe_set(cfg, cache_dir=tmp_path)
    assert np.array_equal(again, waves) and np.array_equal(factors2, factors)


def test_probe_contrasts_are_the_one_factor_re_renders_and_cached(tmp_path):
    cfg = ProbeConfig(num_clips=4, seed=1, clip_seconds=1.0)
    waves = probe_contrasts(cfg, 1, cache_dir=tmp_path)
    assert waves.shape == (1, 7, 2, cfg.num_samples)
    j = QUALITIES.index("minorness")
    for v in (0, 1):
        assert np.array_equal(waves[0, j, v], render_probe(cfg, 0, {"minorness": v}))
    assert np.array_equal(probe_contrasts(cfg, 1, cache_dir=tmp_path), waves)
    with pytest.raises(ValueError, match="n_clips"):
        probe_contrasts(cfg, 5, cache_dir=tmp_path)
