"""Listenable explanations: a recording gated to the state spans that drove its decision."""

from __future__ import annotations

import numpy as np

from interp_models.heart.states import beat_index


def relevant_spans(beats: np.ndarray, mask: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """Which (beat, state) spans an explanation calls relevant, (n_beats, 4) bool.

    A state is relevant when its total contribution is positive and at least ``fraction``
    of the largest state's; within it, the beats whose own contribution is positive.
    """
    beats, mask = np.asarray(beats, dtype=float), np.asarray(mask, dtype=bool)
    if beats.shape != mask.shape or beats.ndim != 2:
        raise ValueError(f"beats {beats.shape} and mask {mask.shape} must be equal (n, 4)")
    totals = (beats * mask).sum(axis=0)
    top = totals.max(initial=0.0)
    if top <= 0:
        return np.zeros_like(mask)
    states = (totals > 0) & (totals >= fraction * top)
    return mask & (beats > 0) & states[None, :]


def gate(
    wave: np.ndarray,
    states: np.ndarray,
    relevant: np.ndarray,
    hop: int,
    sample_rate: int,
    ramp_s: float = 0.01,
) -> np.ndarray:
    """``wave`` with everything outside the relevant (beat, state) spans faded out.

    Parameters
    ----------
    wave : (N,) recording at ``sample_rate``.
    states : (T,) per-frame states; frame ``k`` covers samples ``[k hop, (k + 1) hop)``.
    relevant : (n_beats, 4) bool, e.g. from ``relevant_spans`` (beats numbered by
        ``interp_models.heart.states.beat_index``).
    ramp_s : length of the raised-cosine fades at span edges (no clicks).
    """
    wave = np.asarray(wave, dtype=np.float64)
    beats = beat_index(states)
    st = np.asarray(states, dtype=np.int64)
    keep = np.zeros(len(st), dtype=bool)
    ok = (beats >= 0) & (beats < relevant.shape[0])
    keep[ok] = relevant[beats[ok], st[ok] - 1]
    g = np.repeat(keep.astype(np.float64), hop)[: wave.size]
    g = np.pad(g, (0, wave.size - g.size))
    r = max(1, int(round(ramp_s * sample_rate)))
    if r > 1 and g.any():
        window = np.hanning(r + 2)[1:-1]
        g = np.clip(np.convolve(g, window / window.sum(), mode="same"), 0.0, 1.0)
    return wave * g
