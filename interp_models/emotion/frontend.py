"""Front ends of the emotion family; they live in ``interp_models.audio.features``.

The input representation of Chowdhury et al. (ISMIR 2019) is the log-frequency
spectrogram (``LogFrequencySpectrogram``, kind ``logfreq``; 22.05 kHz, frame 2048,
24 bands per octave, 20 Hz - 16 kHz, 31.25 frames/s), registered with the shared
``build_frontend`` like every other kind.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from interp_models.audio.features import LogFrequencySpectrogram, build_frontend, log_filterbank

__all__ = ["LogFrequencySpectrogram", "build_music_frontend", "log_filterbank"]


def build_music_frontend(kind: str, sample_rate: int, **kwargs: Any) -> nn.Module:
    """``interp_models.audio.features.build_frontend`` (``logfreq`` or any other kind)."""
    return build_frontend(kind, sample_rate=sample_rate, **kwargs)
