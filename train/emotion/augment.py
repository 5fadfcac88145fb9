"""Random equalisation, gain and pitch shift of log-frequency spectrograms, per clip.

Training-time augmentation for the emotion family: the mid-level qualities are about the
score (intervals, onsets, durations), not about the instrument's spectral envelope, the
level or the tuning, so a clip keeps its labels when its spectrum is tilted, its level
changed or its pitch moved by a fraction of a semitone. Applied to the magnitudes behind
``log10(1 + fb @ |X|)`` (``interp_models.audio.features.LogFrequencySpectrogram``), so a
gain is a gain and not an offset of the log. A clip and its one-quality re-renders get
the same draw, so their difference still says only what the re-render changed.

Written by hand: the operations are a few tensor lines on features already cached, and
the audio augmentation libraries work on waveforms (recomputing features every step).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SpectralAugment(nn.Module):
    """Per clip: a spectral tilt of up to ``tilt_db`` dB across the band axis plus a smooth
    random EQ curve of up to ``eq_db`` dB, a gain of up to ``gain_db`` dB, and a shift of
    up to ``shift_bands`` bands (fractional, linear interpolation) along the log-frequency
    axis. Zero everywhere: the identity."""

    def __init__(
        self,
        tilt_db: float = 0.0,
        eq_db: float = 0.0,
        gain_db: float = 0.0,
        shift_bands: float = 0.0,
        eq_points: int = 6,
    ):
        super().__init__()
        for name, value in (
            ("tilt_db", tilt_db),
            ("eq_db", eq_db),
            ("gain_db", gain_db),
            ("shift_bands", shift_bands),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.tilt_db, self.eq_db, self.gain_db = tilt_db, eq_db, gain_db
        self.shift_bands, self.eq_points = shift_bands, eq_points

    @property
    def active(self) -> bool:
        return any(v > 0 for v in (self.tilt_db, self.eq_db, self.gain_db, self.shift_bands))

    def _gain_db(self, b: int, n_bands: int, device) -> torch.Tensor:
        """(b, n_bands) gain curve in dB."""
        pos = torch.linspace(-1.0, 1.0, n_bands, device=device)
        u = lambda *shape: 2 * torch.rand(*shape, device=device) - 1  # noqa: E731
        curve = self.tilt_db * u(b, 1) * pos + self.gain_db * u(b, 1)
        if self.eq_db > 0:
            knots = self.eq_db * u(b, 1, self.eq_points)
            curve = curve + F.interpolate(knots, n_bands, mode="linear", align_corners=True)[:, 0]
        return curve

    def _shift(self, mag: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Move (b, ..., bands, frames) magnitudes by ``shift`` (b,) bands, edges held."""
        n = mag.shape[-2]
        src = torch.arange(n, device=mag.device) - shift.view(-1, *([1] * (mag.dim() - 2)))
        src = src.clamp(0, n - 1)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=n - 1)
        w = (src - lo).unsqueeze(-1)
        take = lambda idx: torch.gather(mag, -2, idx.unsqueeze(-1).expand_as(mag))  # noqa: E731
        return take(lo) * (1 - w) + take(hi) * w

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Augment log-frequency batches that share their first dimension (clips): ``x``
        (b, bands, frames) and optionally their re-renders (b, k, bands, frames), with one
        draw per clip."""
        b, n_bands = xs[0].shape[0], xs[0].shape[-2]
        gain = 10.0 ** (self._gain_db(b, n_bands, xs[0].device) / 20.0)
        shift = self.shift_bands * (2 * torch.rand(b, device=xs[0].device) - 1)
        out = []
        for x in xs:
            mag = 10.0**x - 1.0
            g = gain.view(b, *([1] * (x.dim() - 3)), n_bands, 1)
            mag = self._shift(mag * g, shift) if self.shift_bands > 0 else mag * g
            out.append(torch.log10(1.0 + mag.clamp_min(0.0)))
        return tuple(out)
