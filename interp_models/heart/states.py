"""The four cardiac states and the conversions between their representations.

A segmentation is stored as spans ``(start_s, end_s, state)`` -- the rows of a CirCor
``.tsv`` file (Oliveira et al., "The CirCor DigiScope dataset", IEEE JBHI 2022) -- and
used as one state per sample (audio rate) or per frame (the 50 Hz rate of Springer et
al., IEEE TBME 2016). States: 0 unlabelled, 1 S1, 2 systole, 3 S2, 4 diastole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNLABELLED, S1, SYSTOLE, S2, DIASTOLE = 0, 1, 2, 3, 4
#: Names of states 1..4 (index ``state - 1``).
STATE_NAMES: tuple[str, ...] = ("S1", "systole", "S2", "diastole")
N_STATES = 4
#: Frame rate of segmentations (Springer et al. 2016 work on 50 Hz envelopes).
FRAME_RATE = 50


@dataclass(frozen=True)
class Segmentation:
    """Spans of cardiac states, in seconds, sorted and non-overlapping.

    Attributes
    ----------
    start_s, end_s : (n,) float span bounds, ``start_s < end_s``.
    state : (n,) int in 0..4.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    state: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    def to_rate(self, n: int, rate: float) -> np.ndarray:
        """State of each of ``n`` samples at ``rate`` Hz (int8), sampled at their centres.

        Sample ``i`` covers ``[i / rate, (i + 1) / rate)`` and takes the state of the span
        holding its centre; samples no span covers are 0.
        """
        out = np.zeros(n, dtype=np.int8)
        centres = (np.arange(n) + 0.5) / rate
        # Spans are sorted, so the candidate span of a centre is the last one starting before it.
        k = np.searchsorted(self.start_s, centres, side="right") - 1
        ok = (k >= 0) & (centres < self.end_s[np.clip(k, 0, None)])
        out[ok] = self.state[k[ok]]
        return out

    def to_frames(self, n_frames: int, frame_rate: float = FRAME_RATE) -> np.ndarray:
        """State of each frame at ``frame_rate`` (see ``to_rate``)."""
        return self.to_rate(n_frames, frame_rate)


@dataclass(frozen=True)
class AbnormalEvent:
    """One lesion occurrence (murmur, extra sound): span in seconds, kind, and the state
    it lies in -- where a faithful explanation of an abnormal decision should point."""

    start_s: float
    end_s: float
    kind: str
    state: int


def segments_from_states(states: np.ndarray, rate: float) -> Segmentation:
    """Run-length spans of a per-sample (or per-frame) state sequence at ``rate`` Hz.

    Runs of state 0 are kept as unlabelled spans, so ``to_rate`` inverts this exactly.
    """
    states = np.asarray(states)
    if states.ndim != 1:
        raise ValueError(f"states must be 1-D, got shape {states.shape}")
    if states.size == 0:
        empty = np.zeros(0)
        return Segmentation(empty, empty, np.zeros(0, dtype=np.int8))
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [states.size]])
    return Segmentation(starts / rate, ends / rate, states[starts].astype(np.int8))


def beat_index(states: np.ndarray) -> np.ndarray:
    """Beat number of each sample of a state sequence (-1 where unlabelled).

    A beat starts at every S1 onset (a sample in S1 whose predecessor is not). Samples
    before the first S1 onset (a cycle cut by the start of the recording) form beat 0,
    so beats are numbered 0, 1, ... without gaps.
    """
    states = np.asarray(states)
    prev = np.concatenate([[-1], states[:-1]])
    onset = (states == S1) & (prev != S1)
    beats = np.cumsum(onset)
    labelled = np.flatnonzero(states != UNLABELLED)
    if labelled.size and onset[labelled[0]]:
        beats = beats - 1  # no partial cycle before the first S1
    return np.where(states == UNLABELLED, -1, beats).astype(np.int64)


def sound_centres(states: np.ndarray, state: int, rate: float) -> np.ndarray:
    """Centre times (s) of every run of ``state`` in a state sequence at ``rate`` Hz."""
    seg = segments_from_states(states, rate)
    keep = seg.state == state
    return (seg.start_s[keep] + seg.end_s[keep]) / 2


def check_segmentation(seg: Segmentation, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` if spans are unsorted, empty, overlapping
    or carry a state outside 0..4."""
    if not (len(seg.start_s) == len(seg.end_s) == len(seg.state)):
        raise ValueError(f"{source}: start, end and state columns differ in length")
    bad = np.flatnonzero(seg.end_s <= seg.start_s)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{source}, row {i + 1}: end {seg.end_s[i]} is not after start {seg.start_s[i]}"
        )
    bad = np.flatnonzero((seg.state < 0) | (seg.state > N_STATES))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{source}, row {i + 1}: state {seg.state[i]} is not in 0..4")
    # Tolerate rounding of the written times (CirCor writes 6 decimals).
    bad = np.flatnonzero(seg.start_s[1:] < seg.end_s[:-1] - 1e-6)
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(
            f"{source}, row {i + 1}: span starting at {seg.start_s[i]} overlaps or precedes "
            f"the previous one (ending at {seg.end_s[i - 1]}); rows must be sorted"
        )
