"""Ground-truth time-frequency masks of sound events, and their transfer to other grids.

A mask file (``masks/<stem>.npz``, written by ``synth_events``) holds boolean arrays on
the bins of ``librosa.stft(y, n_fft, hop_length)`` -- bin ``k`` at ``k * sr / n_fft`` Hz,
frame ``t`` centred at ``t * hop_length / sr`` s -- plus the event's span and extent.
Explanations computed on another representation (log-mel, another hop) are scored after
``EventMask.on_grid`` samples the mask at that representation's band and frame centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class EventMask:
    """One clip's ground truth.

    Attributes
    ----------
    mask : bool (F, T), bins where the isolated event is within 30 dB of its own maximum.
    dominant : bool (F, T), ``mask`` bins where the event also out-weighs the rest of the
        clip (ideal binary mask); may be empty at low SNR.
    sample_rate, n_fft, hop_length : the STFT the masks live on (centred, Hann).
    onset_s, offset_s : event span in the clip.
    f_low_hz, f_high_hz : nominal frequency extent of the event.
    target : class index.
    duration_s : clip length.
    snr_db : event-to-rest energy ratio over the event span (NaN if not stored).
    """

    mask: np.ndarray
    dominant: np.ndarray
    sample_rate: int
    n_fft: int
    hop_length: int
    onset_s: float
    offset_s: float
    f_low_hz: float
    f_high_hz: float
    target: int
    duration_s: float
    snr_db: float = float("nan")

    @property
    def freqs_hz(self) -> np.ndarray:
        """Centre frequency of each mask row."""
        return np.arange(self.mask.shape[0]) * self.sample_rate / self.n_fft

    @property
    def times_s(self) -> np.ndarray:
        """Centre time of each mask column (``center=True`` frames)."""
        return np.arange(self.mask.shape[1]) * self.hop_length / self.sample_rate

    def on_grid(self, freqs_hz: np.ndarray, times_s: np.ndarray, which: str = "mask") -> np.ndarray:
        """Sample the mask at another grid's bin centres, by nearest neighbour.

        Parameters
        ----------
        freqs_hz : (F',) band centres, e.g. mel filter centres
            ``librosa.mel_frequencies(n_mels + 2, fmax=sr / 2)[1:-1]``.
        times_s : (T',) frame centres, e.g. ``np.arange(T') * hop / sr`` for centred frames.
        which : ``"mask"``, ``"dominant"`` or ``"box"`` (see ``box``).

        Returns
        -------
        bool (F', T'); False at frequencies outside [0, sr/2] and times outside
        [0, duration_s].  Nearest-neighbour sampling keeps a cell only if its centre lies
        in the mask, so a narrow line between two wide bands' centres can be missed.
        """
        if which not in ("mask", "dominant", "box"):
            raise ValueError(f"which must be 'mask', 'dominant' or 'box', got {which!r}")
        freqs = np.asarray(freqs_hz, dtype=float)
        times = np.asarray(times_s, dtype=float)
        if which == "box":
            return self.box(freqs, times)
        grid = self.mask if which == "mask" else self.dominant
        fi = np.rint(freqs * self.n_fft / self.sample_rate).astype(int)
        ti = np.rint(times * self.sample_rate / self.hop_length).astype(int)
        f_ok = (freqs >= 0) & (freqs <= self.sample_rate / 2)
        t_ok = (times >= 0) & (times <= self.duration_s)
        fi = np.clip(fi, 0, grid.shape[0] - 1)
        ti = np.clip(ti, 0, grid.shape[1] - 1)
        return grid[np.ix_(fi, ti)] & f_ok[:, None] & t_ok[None, :]

    def active_at(self, times_s: np.ndarray) -> np.ndarray:
        """bool (T',): whether any frequency of ``mask`` is on at each time (nearest frame),
        the event's ground truth for a waveform model's per-sample relevance."""
        times = np.asarray(times_s, dtype=float)
        active = self.mask.any(axis=0)
        ti = np.clip(
            np.rint(times * self.sample_rate / self.hop_length).astype(int), 0, len(active) - 1
        )
        return active[ti] & (times >= 0) & (times <= self.duration_s)

    def box(self, freqs_hz: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """The event's bounding region on a grid: [onset, offset] x [f_low, f_high].

        A coarser truth than ``mask``: a harmonic stack's box also holds the gaps between
        its harmonics, so explanations made of smooth spectral shapes (NMF components,
        mel bands) are not penalised for the gaps.
        """
        freqs = np.asarray(freqs_hz, dtype=float)
        times = np.asarray(times_s, dtype=float)
        f_in = (freqs >= self.f_low_hz) & (freqs <= self.f_high_hz)
        t_in = (times >= self.onset_s) & (times <= self.offset_s)
        return f_in[:, None] & t_in[None, :]


def load_event_mask(path: str | Path) -> EventMask:
    """Read a ``masks/<stem>.npz`` file (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        mask = z["mask"].astype(bool)
        sr, hop = int(z["sample_rate"]), int(z["hop_length"])
        duration = float(z["duration_s"]) if "duration_s" in z else (mask.shape[1] - 1) * hop / sr
        return EventMask(
            mask=mask,
            dominant=z["dominant"].astype(bool) if "dominant" in z else mask.copy(),
            sample_rate=sr,
            n_fft=int(z["n_fft"]),
            hop_length=hop,
            onset_s=float(z["onset_s"]),
            offset_s=float(z["offset_s"]),
            f_low_hz=float(z["f_low_hz"]),
            f_high_hz=float(z["f_high_hz"]),
            target=int(z["target"]),
            duration_s=duration,
            snr_db=float(z["snr_db"]) if "snr_db" in z else float("nan"),
        )
