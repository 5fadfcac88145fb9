"""The event's bounding box on an arbitrary grid."""

import numpy as np

from interp_models.data.masks import EventMask


def test_box_covers_exactly_the_event_span_and_band():
    m = EventMask(
        mask=np.zeros((257, 10), bool),
        dominant=np.zeros((257, 10), bool),
        sample_rate=16000,
        n_fft=512,
        hop_length=128,
        onset_s=0.5,
        offset_s=1.0,
        f_low_hz=1000.0,
        f_high_hz=2000.0,
        target=0,
        duration_s=2.0,
    )
    freqs = np.array([500.0, 1000.0, 1500.0, 2000.0, 2500.0])
    times = np.array([0.25, 0.5, 0.75, 1.0, 1.25])
    box = m.on_grid(freqs, times, which="box")
    expected = np.zeros((5, 5), bool)
    expected[1:4, 1:4] = True
    assert np.array_equal(box, expected)
