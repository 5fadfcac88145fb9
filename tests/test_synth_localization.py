"""The built-in localization data: geometry, rendering and on-disk layout.

Known answers: the TDOA computed from the stored positions equals the delay GCC-PHAT
measures between the rendered channels; each impulse response peaks at the direct path's
delay; the image method has (2N+1)(2N^2+2N+3)/3 images up to order N; clips are
byte-identical whoever makes them.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from interp_models.audio.tdoa import gcc_phat
from interp_models.data.synth_localization import (
    SPEED_OF_SOUND,
    SynthLocalizationConfig,
    generate_localization,
    image_sources,
    impulse_responses,
    load_truth,
    mic_positions,
    pair_indices,
    synthesise,
)

SR = 16000


def _measured_tdoa(mix: np.ndarray, config: SynthLocalizationConfig) -> np.ndarray:
    max_lag = 2 * config.array_radius_m / SPEED_OF_SOUND * SR + 1
    return np.array([gcc_phat(mix[i], mix[j], max_lag) for i, j in pair_indices(len(mix))])


@pytest.mark.parametrize(("rt60", "tolerance"), [(0.0, 0.1), (0.6, 1.0)])
def test_stored_tdoa_is_the_delay_in_the_rendered_signals(rt60, tolerance):
    """Free field: within 0.1 sample; reverberant (RT60 0.6 s): within one sample."""
    config = SynthLocalizationConfig(rt60_s=(rt60,), snr_db=(30.0, 30.0))
    for index in range(6):
        mix, truth = synthesise(config, index)
        expected = truth.tdoa_s * SR
        assert np.abs(_measured_tdoa(mix, config) - expected).max() < tolerance
        own = np.linalg.norm(truth.mic_pos - truth.source_pos, axis=1) / SPEED_OF_SOUND
        np.testing.assert_allclose(
            expected, np.array([own[j] - own[i] for i, j in pair_indices(4)]) * SR
        )


def test_impulse_response_peaks_at_the_direct_path_and_images_count():
    mics = np.array([[2.0, 2.0, 1.5], [2.1, 2.0, 1.5]])
    source = np.array([3.0, 2.5, 1.5])
    images, counts = image_sources(source, np.array([6.0, 5.0, 3.0]), order=0)
    h = impulse_responses(images, counts, 0.0, mics, SR, SPEED_OF_SOUND)
    delay = np.linalg.norm(mics - source, axis=1) / SPEED_OF_SOUND * SR
    for m in range(2):
        k = int(np.argmax(h[m]))
        y0, y1, y2 = h[m, k - 1 : k + 2]
        peak = k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)  # parabolic interpolation
        assert abs(peak - delay[m]) < 0.1
    for order in (1, 2, 3):
        images, counts = image_sources(source, np.array([6.0, 5.0, 3.0]), order)
        assert len(images) == (2 * order + 1) * (2 * order**2 + 2 * order + 3) // 3
        assert counts.max() == order and (counts == 0).sum() == 1


def test_truth_is_consistent_with_the_conditions():
    config = SynthLocalizationConfig(rt60_s=(0.3,), n_mics=3)
    for index in range(5):
        _, truth = synthesise(config, index)
        assert int(truth.azimuth_deg // config.sector_deg) == truth.direction_bin
        centre = truth.mic_pos.mean(axis=0)
        offset = truth.source_pos - centre
        assert np.isclose(np.linalg.norm(offset), truth.distance_m)
        assert np.isclose(np.degrees(np.arctan2(offset[1], offset[0])) % 360, truth.azimuth_deg)
        assert (truth.first_reflection > truth.direct_onset).all()
        np.testing.assert_allclose(truth.mic_pos - centre, mic_positions(3, 0.1), atol=1e-12)


def test_layout_on_disk_and_determinism(tmp_path):
    config = SynthLocalizationConfig(num_clips=6, rt60_s=(0.0, 0.3))
    root = generate_localization(config, tmp_path / "a")
    rows = list(csv.DictReader(open(root / "meta" / "localization.csv")))
    assert len(rows) == 6 and {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"}
    array = json.loads((root / "meta" / "array.json").read_text())
    assert len(array["mic_positions_m"]) == 4 and array["pairs"][0] == [0, 1]
    for row in rows:
        audio, rate = sf.read(root / "audio" / row["filename"], dtype="float32")
        assert rate == SR and audio.shape == (SR, 4)
        truth = load_truth(root / "truth" / row["filename"].replace(".wav", ".npz"))
        assert truth.direction_bin == int(row["direction_bin"]) and truth.tdoa_s.shape == (6,)
    again, _ = synthesise(config, 3)
    audio, _ = sf.read(root / "audio" / rows[3]["filename"], dtype="float32")
    np.testing.assert_array_equal(audio.T, again)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_mics": 5}, "n_mics must be 2, 3 or 4"),
        ({"distance_m": (1.0, 3.0)}, "does not fit the room_m"),
        ({"sources": ("speech",)}, "sources: unknown"),
        ({"rt60_s": (3.0,)}, "rt60_s must be"),
    ],
)
def test_bad_configs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthLocalizationConfig(**kwargs)
