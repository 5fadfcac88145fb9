"""Scores of heart-sound models: PhysioNet 2016 MAcc, S1/S2 detection F1, explanation hits.

- ``binary_scores``: sensitivity, specificity and MAcc = (Se + Sp) / 2, the (unweighted)
  score of the PhysioNet/CinC Challenge 2016 (Clifford et al., Physiol. Meas. 2017).
- ``sound_detection``: S1 and S2 detection as in Springer et al. (IEEE TBME 2016): a
  detected sound is a true positive when its centre lies within +/- 60 ms of the centre
  of an annotated sound of the same kind, each annotation matched at most once.
- ``sound_detection_by_rate``: the same per heart-rate band, the rate of a recording
  measured from its reference states (median S1-onset-to-S1-onset interval).
- ``state_hit_rate``: how often an explanation's largest per-state contribution falls on
  the state where the lesion is (the question Dissanayake et al., IEEE JBHI 2020, asked of
  SHAP and occlusion maps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from interp_models.heart.states import S1, S2, STATE_NAMES, sound_centres


def binary_scores(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Se, Sp, MAcc and counts of 0/1 labels (1 = abnormal); NaN when a class is absent."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    pos, neg = y_true == 1, y_true == 0
    se = float((y_pred[pos] == 1).mean()) if pos.any() else float("nan")
    sp = float((y_pred[neg] == 0).mean()) if neg.any() else float("nan")
    return {
        "sensitivity": se,
        "specificity": sp,
        "macc": (se + sp) / 2,
        "accuracy": float((y_true == y_pred).mean()) if y_true.size else float("nan"),
        "n_abnormal": int(pos.sum()),
        "n_normal": int(neg.sum()),
    }


def match_within(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> int:
    """Number of one-to-one matches between two sets of times at most ``tolerance`` apart.

    Pairs are taken closest first (greedy), which is optimal for points on a line when
    ``tolerance`` is below half the spacing of either set (sounds of one kind are at
    least ~250 ms apart, the tolerance is 60 ms).
    """
    reference, detected = np.sort(reference), np.sort(detected)
    if reference.size == 0 or detected.size == 0:
        return 0
    dist = np.abs(reference[:, None] - detected[None, :])
    ri, di = np.nonzero(dist <= tolerance)
    order = np.argsort(dist[ri, di], kind="stable")
    used_r, used_d = set(), set()
    for r, d in zip(ri[order], di[order], strict=True):
        if r not in used_r and d not in used_d:
            used_r.add(int(r))
            used_d.add(int(d))
    return len(used_r)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def sound_detection(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    frame_rate: float,
    tolerance_s: float = 0.06,
) -> dict[str, float]:
    """S1 / S2 detection F1 over recordings, pooled (micro-averaged) over sounds.

    Parameters
    ----------
    pairs : ``(reference_states, estimated_states)`` per recording, per-frame state
        sequences at ``frame_rate``. Sounds are the runs of state 1 (S1) and 3 (S2).
    tolerance_s : maximum centre-to-centre distance of a detection (Springer: 60 ms).

    Returns
    -------
    ``f1`` (S1 and S2 together), ``f1_s1``, ``f1_s2``, ``precision``, ``recall``, the
    counts ``tp``, ``fp``, ``fn``, and ``frame_accuracy`` (labelled frames only).
    """
    counts = {S1: [0, 0, 0], S2: [0, 0, 0]}
    correct = labelled = 0
    n = 0
    for ref, est in pairs:
        ref, est = np.asarray(ref), np.asarray(est)
        if ref.shape != est.shape:
            raise ValueError(f"recording {n}: reference {ref.shape} vs estimate {est.shape}")
        for sound in (S1, S2):
            r = sound_centres(ref, sound, frame_rate)
            d = sound_centres(est, sound, frame_rate)
            # detections inside unlabelled reference spans can be neither right nor wrong
            at = np.clip((d * frame_rate).astype(int), 0, max(ref.size - 1, 0))
            d = d[ref[at] != 0] if ref.size else d[:0]
            tp = match_within(r, d, tolerance_s)
            c = counts[sound]
            c[0], c[1], c[2] = c[0] + tp, c[1] + d.size - tp, c[2] + r.size - tp
        mask = ref > 0
        correct += int((ref[mask] == est[mask]).sum())
        labelled += int(mask.sum())
        n += 1
    tp = counts[S1][0] + counts[S2][0]
    fp = counts[S1][1] + counts[S2][1]
    fn = counts[S1][2] + counts[S2][2]
    return {
        "f1": _f1(tp, fp, fn),
        "f1_s1": _f1(*counts[S1]),
        "f1_s2": _f1(*counts[S2]),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "frame_accuracy": correct / labelled if labelled else float("nan"),
        "recordings": n,
    }


#: Heart-rate bands (bpm) of ``sound_detection_by_rate``: 40-60, 60-80, ..., 160-180.
RATE_BANDS: tuple[tuple[float, float], ...] = tuple((lo, lo + 20.0) for lo in range(40, 180, 20))


def heart_rate_from_states(states: np.ndarray, frame_rate: float) -> float:
    """Heart rate (bpm) of a per-frame state sequence: 60 over the median interval between
    S1 onsets (starts of runs of state 1; one at frame 0 is cut, so not counted). NaN with
    fewer than two onsets."""
    s = np.asarray(states)
    if s.size < 2:
        return float("nan")
    onsets = np.flatnonzero((s[1:] == S1) & (s[:-1] != S1)) + 1
    if onsets.size < 2:
        return float("nan")
    return float(60.0 * frame_rate / np.median(np.diff(onsets)))


def sound_detection_by_rate(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    frame_rate: float,
    bands: Sequence[tuple[float, float]] = RATE_BANDS,
    tolerance_s: float = 0.06,
) -> dict[str, dict[str, float]]:
    """``sound_detection`` per heart-rate band, for any annotated dataset.

    Parameters
    ----------
    pairs : ``(reference_states, estimated_states)`` per recording, as for
        ``sound_detection``; each recording's rate comes from its reference
        (``heart_rate_from_states``), never from the estimate.
    bands : ``(low, high)`` bpm; a recording falls in a band when ``low <= rate < high``
        (the last band also takes ``rate == high``).

    Returns
    -------
    One entry per band, keyed ``"<low>-<high>"`` (bpm, e.g. ``"40-60"``), with the keys of
    ``sound_detection`` plus ``rate_bpm`` (median rate of its recordings; NaN when the band
    is empty, as its F1 then is), and ``"all"``: every recording pooled, with
    ``outside_bands`` (recordings whose rate is in no band or not measurable).
    """
    pairs = [(np.asarray(r), np.asarray(e)) for r, e in pairs]
    bands = [(float(lo), float(hi)) for lo, hi in bands]
    for lo, hi in bands:
        if not lo < hi:
            raise ValueError(f"rate band must be (low, high) with low < high, got {(lo, hi)}")
    rates = np.array([heart_rate_from_states(r, frame_rate) for r, _ in pairs])
    out: dict[str, dict[str, float]] = {}
    placed = np.zeros(len(pairs), dtype=bool)
    for k, (lo, hi) in enumerate(bands):
        last = k == len(bands) - 1
        inside = (rates >= lo) & ((rates <= hi) if last else (rates < hi))
        placed |= inside
        scores = sound_detection(
            [pairs[i] for i in np.flatnonzero(inside)], frame_rate, tolerance_s
        )
        scores["rate_bpm"] = float(np.median(rates[inside])) if inside.any() else float("nan")
        out[f"{lo:g}-{hi:g}"] = scores
    out["all"] = {
        **sound_detection(pairs, frame_rate, tolerance_s),
        "outside_bands": int((~placed).sum()),
    }
    return out


def state_hit_rate(attribution: np.ndarray, true_state: np.ndarray) -> dict[str, float]:
    """How often the largest per-state attribution lies on the lesion's state.

    Parameters
    ----------
    attribution : (N, 4) evidence for the abnormal class per state (S1, systole, S2,
        diastole), e.g. ``Explanation.attribution`` of intrinsic or post-hoc methods
        aggregated with ``evaluate.heart.posthoc.relevance_by_state``.
    true_state : (N,) state (1..4) where the lesion of each recording lies.

    Returns
    -------
    ``hit_rate`` (NaN for no recording), ``n``, and ``hit_rate_<state>`` per lesion state
    present.
    """
    attribution, true_state = np.asarray(attribution, dtype=float), np.asarray(true_state)
    if attribution.ndim != 2 or attribution.shape[1] != len(STATE_NAMES):
        raise ValueError(f"attribution must be (N, 4), got {attribution.shape}")
    if true_state.shape != (attribution.shape[0],):
        raise ValueError(f"true_state must be ({attribution.shape[0]},), got {true_state.shape}")
    if ((true_state < 1) | (true_state > 4)).any():
        raise ValueError("true_state must be in 1..4")
    hits = np.argmax(attribution, axis=1) + 1 == true_state
    out: dict[str, float] = {
        "hit_rate": float(hits.mean()) if hits.size else float("nan"),
        "n": int(hits.size),
    }
    for s in sorted(set(true_state.tolist())):
        out[f"hit_rate_{STATE_NAMES[s - 1]}"] = float(hits[true_state == s].mean())
    return out
