"""Per-state aggregation of post-hoc relevance, so any attribution method is comparable
with the segmentation-aware model's intrinsic per-state contributions.

Dissanayake et al. ("Understanding the importance of heart sound segmentation for heart
anomaly detection", IEEE JBHI 2020) summed SHAP and occlusion relevance inside S1,
systole, S2 and diastole to ask which states drive a black box. Here any relevance over
time (per sample of the waveform, or per frame of a spectrogram, summed over frequency
first) is mapped onto a segmentation and summed per (beat, state); the result has the
shape of the intrinsic explanation's ``attribution`` (4,) and ``maps["beats"]``
(n_beats, 4), so ``evaluate.heart.metrics.state_hit_rate`` scores both the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from evaluate.heart.metrics import state_hit_rate
from interp_models.heart.states import N_STATES, beat_index


def relevance_by_beat_state(
    relevance: np.ndarray,
    times_s: np.ndarray,
    states: np.ndarray,
    frame_rate: float,
    reduce: str = "sum",
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance summed (or averaged) inside every (beat, state) span.

    Parameters
    ----------
    relevance : (T,) relevance over time, or (F, T) (summed over the first axis).
    times_s : (T,) time of each relevance column (sample times ``arange(N) / sr``, or a
        spectrogram's frame centres).
    states : (T_s,) per-frame states of the segmentation at ``frame_rate``; a relevance
        column takes the state of the frame holding its time (none past the end).
    reduce : ``sum`` (total relevance, the counterpart of additive attributions such as
        SHAP) or ``mean`` (per column, removing the effect of span length).

    Returns
    -------
    per_beat : (n_beats, 4) aggregated relevance; per-state totals are ``per_beat.sum(0)``.
    mask : (n_beats, 4) bool, spans holding at least one relevance column.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.ndim == 2:
        rel = rel.sum(axis=0)
    times_s = np.asarray(times_s, dtype=np.float64)
    if rel.ndim != 1 or rel.shape != times_s.shape:
        raise ValueError(f"relevance {np.shape(relevance)} does not match times {times_s.shape}")
    states = np.asarray(states)
    beats = beat_index(states)
    n_beats = int(beats.max()) + 1 if beats.size and beats.max() >= 0 else 0
    frame = np.floor(times_s * frame_rate + 1e-9).astype(np.int64)
    inside = (frame >= 0) & (frame < states.size)
    f = frame[inside]
    st, bt, r = states[f].astype(np.int64), beats[f], rel[inside]
    ok = (st > 0) & (bt >= 0)
    slot = bt[ok] * N_STATES + st[ok] - 1
    total = np.bincount(slot, weights=r[ok], minlength=n_beats * N_STATES)
    count = np.bincount(slot, minlength=n_beats * N_STATES)
    if reduce == "mean":
        total = total / np.maximum(count, 1)
    return total.reshape(n_beats, N_STATES), count.reshape(n_beats, N_STATES) > 0


def relevance_by_state(
    relevance: np.ndarray,
    times_s: np.ndarray,
    states: np.ndarray,
    frame_rate: float,
    reduce: str = "sum",
) -> np.ndarray:
    """(4,) relevance per state (S1, systole, S2, diastole); see ``relevance_by_beat_state``.

    With ``reduce="mean"`` each state's value is the mean over its beats of the per-span
    mean, the same averaging the intrinsic model applies to its evidence.
    """
    per_beat, mask = relevance_by_beat_state(relevance, times_s, states, frame_rate, reduce)
    if reduce == "sum":
        return per_beat.sum(axis=0)
    return per_beat.sum(axis=0) / np.maximum(mask.sum(axis=0), 1)


def posthoc_state_hits(
    explain: Callable[[int], tuple[np.ndarray, np.ndarray]],
    indices: Sequence[int],
    states: Sequence[np.ndarray],
    true_states: np.ndarray,
    frame_rate: float,
    reduce: str = "sum",
) -> dict[str, float]:
    """Hit rate of a post-hoc method: its largest per-state relevance on the lesion state.

    Parameters
    ----------
    explain : recording index -> ``(relevance, times_s)`` for the abnormal class (e.g. a
        SHAP or occlusion map of the black box, with its column times).
    indices : recordings to score -- the correctly detected abnormal ones of a split.
    states : per-frame segmentation of every recording (indexed like ``indices``).
    true_states : lesion state (1..4) of every recording.
    """
    per_state = []
    for i in indices:
        relevance, times_s = explain(int(i))
        per_state.append(relevance_by_state(relevance, times_s, states[i], frame_rate, reduce))
    if not per_state:
        return {"hit_rate": float("nan"), "n": 0}
    return state_hit_rate(np.stack(per_state), np.asarray(true_states)[list(indices)])
