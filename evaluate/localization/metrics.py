"""Scores of source-localization models and of their explanations, against the geometric
ground truth of ``interp_models.data.synth_localization`` (``ClipTruth``).

A model maps ``(B, M, N)`` microphone-array waveforms to ``(B, C)`` logits over ``C``
azimuth sectors of ``sector_deg`` degrees; an explanation gives one relevance per
microphone and sample, ``(M, N)`` per clip (LRP, IG, saliency, ...), or per (microphone,
segment), ``(M, S)``.

* ``angular_error_deg``: wrapped angle between a predicted sector's centre and the true
  azimuth.
* Ground truth in time: ``time_regions`` splits each microphone's samples into noise
  before the onset, the direct path alone, the reverberant part and the rest;
  ``direct_path_share`` says how much relevance falls in each (relevance mass accuracy,
  Arras, Osman, Samek, Information Fusion 2022, with each region's share of samples as
  chance); ``tdoa_from_relevance`` reads a delay per microphone pair off the relevance
  traces by GCC-PHAT (Knapp and Carter, IEEE Trans. ASSP 1976) and ``tdoa_error`` compares
  it with the true TDOA (``tdoa_hit_rate``: share within a sample).
* Perturbation (pixel flipping, Samek, Binder, Montavon, Lapuschkin, Müller, "Evaluating
  the visualization of what a deep neural network has learned", IEEE TNNLS 2017):
  ``perturbation_curve`` removes (microphone, segment) groups most relevant first and
  records the model's angular error; ``perturbation_summary`` compares the area under
  that curve with random orders.
* ``by_condition``: per-clip values grouped by reverberation time and SNR band, mean and
  95% interval.

The deletion curves of ``evaluate.metrics.perturbation`` score one target's probability
at evenly spaced counts through a grouping's ``forward_groups``; here the score is the
angular error of the arg-max sector at given fractions, so the curve is built here and
only its area (``curve_auc``) is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import torch

from evaluate.metrics.perturbation import curve_auc
from evaluate.metrics.statistics import mean_ci
from interp_models.audio.tdoa import gcc_phat
from interp_models.data.synth_localization import ClipTruth, pair_indices
from interp_models.localization.srp import angular_error_deg as wrapped_error

__all__ = [
    "REGIONS",
    "angular_error_deg",
    "by_condition",
    "direct_path_share",
    "perturbation_curve",
    "perturbation_faithfulness",
    "perturbation_summary",
    "region_bounds",
    "segment_bounds",
    "segment_scores",
    "tdoa_error",
    "tdoa_from_relevance",
    "tdoa_hit_rate",
    "time_regions",
]

#: The time regions of ``time_regions``, in order.
REGIONS = ("before", "direct", "reverberant", "after")
FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def _numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------- direction


def angular_error_deg(pred_bin: Any, azimuth_deg: Any, sector_deg: float) -> np.ndarray:
    """Absolute angle between the predicted sector's centre and the true azimuth.

    Parameters
    ----------
    pred_bin : predicted direction bin(s); sector ``k`` is centred on
        ``(k + 0.5) * sector_deg``.
    azimuth_deg : true azimuth(s) in degrees, broadcast against ``pred_bin``.
    sector_deg : width of one sector (``SynthLocalizationConfig.sector_deg``).

    Returns
    -------
    The error in degrees, in [0, 180], wrapped on the full circle (bin 15 of 16 and an
    azimuth of 1 degree are 12.25 degrees apart), float64 of the broadcast shape.
    """
    return wrapped_error((_numpy(pred_bin) + 0.5) * sector_deg, _numpy(azimuth_deg))


# --------------------------------------------------------------------------- time regions


def region_bounds(truth: ClipTruth, n_samples: int, sample_rate: int) -> np.ndarray:
    """(M, 3) integer sample boundaries ``b0 <= b1 <= b2`` of the regions of ``time_regions``.

    ``b0 = floor(direct_onset)``; ``b1 = min(floor(first_reflection), ceil(end))`` with
    ``end`` the arrival of the event's end by the direct path (``event_offset_s * sr``
    plus the microphone's direct delay); ``b2 = ceil(end + rt60_s * sr)``. All clipped to
    ``[0, n_samples]`` and made non-decreasing. ``sample_rate`` must be the rate the truth
    was generated at (its sample indices are at that rate).
    """
    onset = np.asarray(truth.direct_onset, dtype=np.float64)
    end = onset + (truth.event_offset_s - truth.event_onset_s) * sample_rate
    b0 = np.clip(np.floor(onset), 0, n_samples)
    b2 = np.clip(np.ceil(end + truth.rt60_s * sample_rate), b0, n_samples)
    reflection = np.asarray(truth.first_reflection, dtype=np.float64)
    b1 = np.clip(np.minimum(np.floor(reflection), np.ceil(end)), b0, b2)
    return np.stack([b0, b1, b2], axis=1).astype(np.int64)


def time_regions(truth: ClipTruth, n_samples: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Per-microphone boolean masks ``(M, N)`` of four disjoint regions covering the clip.

    With the boundaries of ``region_bounds``, per microphone:

    * ``before``: ``[0, b0)``, before the direct path of the onset arrives: sensor noise
      only;
    * ``direct``: ``[b0, b1)``, from the direct arrival to the first reflection's arrival
      (or, in the free field, to the direct arrival of the event's end): the direct path
      alone, whose delays across microphones are the TDOAs;
    * ``reverberant``: ``[b1, b2)``, from the first reflection until the event's end has
      arrived plus one RT60 of decay tail: direct path mixed with reflections (empty in the
      free field);
    * ``after``: ``[b2, N)``: noise and the last of the decay.

    The fractional-delay taps of the rendering start 16 samples before an arrival, but the
    source fades in over 10 ms, so nothing audible precedes ``b0``.
    """
    bounds = region_bounds(truth, n_samples, sample_rate)
    t = np.arange(n_samples)[None, :]
    edges = [np.zeros((len(bounds), 1), np.int64), *np.split(bounds, 3, axis=1)]
    edges.append(np.full((len(bounds), 1), n_samples))
    return {name: (t >= edges[k]) & (t < edges[k + 1]) for k, name in enumerate(REGIONS)}


def _mass(relevance: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(M + 1,) share of non-negative ``relevance`` inside ``mask`` per microphone and over
    all; NaN where there is no relevance."""
    inside = np.append((relevance * mask).sum(axis=1), (relevance * mask).sum())
    total = np.append(relevance.sum(axis=1), relevance.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def _shares(relevance: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-microphone and overall (last entry) shares, chance levels and enrichments."""
    out: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        chance = np.append(mask.mean(axis=1), mask.mean())
        out[f"share_{name}"] = _mass(np.abs(relevance), mask)
        out[f"positive_share_{name}"] = _mass(np.clip(relevance, 0, None), mask)
        out[f"chance_{name}"] = chance
        with np.errstate(divide="ignore", invalid="ignore"):
            for key in ("", "positive_"):
                ratio = out[f"{key}share_{name}"] / chance
                out[f"{key}enrichment_{name}"] = np.where(chance > 0, ratio, np.nan)
    return out


def direct_path_share(relevance: Any, truth: ClipTruth, sample_rate: int) -> dict[str, Any]:
    """How much of an explanation lies in each time region of ``time_regions``.

    Parameters
    ----------
    relevance : (M, N) relevance per microphone and sample (numpy or torch).
    truth : the clip's ``ClipTruth``.
    sample_rate : the rate the truth was generated at.

    Returns
    -------
    For each region ``r`` of ``REGIONS``, over all microphones together (floats):
    ``share_r`` the share of ``|relevance|`` in ``r``; ``positive_share_r`` the share of
    the positive relevance (Arras et al. 2022's relevance mass accuracy, as
    ``evaluate.metrics.localization.relevance_mass_inside`` but 0, not undefined, for an
    empty region); ``chance_r`` the region's share of samples (what a uniform map gets);
    ``enrichment_r = share_r / chance_r`` and ``positive_enrichment_r`` (1 is chance);
    the headline ``direct_enrichment`` (= ``enrichment_direct``). ``per_mic``: the
    ``*_r`` keys as (M,) arrays. Shares are NaN where there is no (positive) relevance,
    enrichments also where the region is empty (with RT60 0.4 s or more the decay tail
    often reaches the clip's end, leaving ``after`` empty).
    """
    rel = _numpy(relevance)
    shares = _shares(rel, time_regions(truth, rel.shape[1], sample_rate))
    out: dict[str, Any] = {key: float(v[-1]) for key, v in shares.items()}
    out["direct_enrichment"] = out["enrichment_direct"]
    out["per_mic"] = {key: v[:-1] for key, v in shares.items()}
    return out


# --------------------------------------------------------------------------- TDOA


def tdoa_from_relevance(
    relevance: Any,
    pairs: Sequence[tuple[int, int]] | None,
    max_lag_samples: float,
    upsample: int = 16,
) -> np.ndarray:
    """(P,) delay per microphone pair read off the relevance traces, in samples.

    GCC-PHAT (``interp_models.audio.tdoa.gcc_phat``; Knapp and Carter 1976) between the
    signed relevance traces of microphones ``i`` and ``j``: positive when ``j``'s trace is
    later, the convention of ``ClipTruth.tdoa_s``. Relevance of the LRP / IG kind is the
    input times a gradient and keeps the waveform's fine structure, which the phase
    transform turns into a sharp peak. Plain cross-correlation of ``|relevance|`` was
    tried as well: equally right on whole clips, but its peak is as broad as the
    envelope, and on relevance confined to the short direct-path windows (24-110 samples)
    it missed more pairs. Pass ``abs(relevance)`` for unsigned maps (saliency).

    Parameters
    ----------
    relevance : (M, N) relevance per microphone and sample.
    pairs : microphone pairs ``(i, j)``; ``None``: ``pair_indices(M)``, the truth's order.
    max_lag_samples : the largest delay searched, e.g. the array's diameter / c * rate.
    upsample : resolution of the search, ``1 / upsample`` samples.

    Returns
    -------
    float64 (P,); NaN for a pair with an all-zero trace.
    """
    rel = _numpy(relevance)
    pairs = pair_indices(len(rel)) if pairs is None else pairs
    return np.array(
        [
            gcc_phat(rel[i], rel[j], max_lag_samples, upsample)
            if rel[i].any() and rel[j].any()
            else np.nan
            for i, j in pairs
        ],
        dtype=np.float64,
    )


def tdoa_error(est_samples: Any, truth: ClipTruth, sample_rate: int) -> np.ndarray:
    """(P,) absolute error of estimated TDOAs (samples, pairs in ``pair_indices`` order)
    against ``truth.tdoa_s * sample_rate``; NaN where the estimate is NaN."""
    return np.abs(_numpy(est_samples) - np.asarray(truth.tdoa_s) * sample_rate)


def tdoa_hit_rate(errors: Any, tolerance: float = 1.0) -> float:
    """Share of pairs whose ``tdoa_error`` is within ``tolerance`` samples (NaN: a miss)."""
    err = _numpy(errors)
    return float(np.mean(np.nan_to_num(err, nan=np.inf) <= tolerance))


# --------------------------------------------------------------------------- perturbation


def segment_bounds(n_samples: int, n_segments: int) -> np.ndarray:
    """(S + 1,) boundaries of ``n_segments`` contiguous segments of nearly equal length."""
    if not 1 <= n_segments <= n_samples:
        raise ValueError(f"n_segments must lie in [1, {n_samples}], got {n_segments}")
    return np.round(np.linspace(0, n_samples, n_segments + 1)).astype(np.int64)


def segment_scores(relevance: Any, n_segments: int) -> np.ndarray:
    """(M, S) relevance summed over each of ``n_segments`` segments of ``segment_bounds``."""
    rel = _numpy(relevance)
    return np.add.reduceat(rel, segment_bounds(rel.shape[1], n_segments)[:-1], axis=1)


def _order(scores: np.ndarray, order: str, seed: int) -> np.ndarray:
    """Flattened (mic-major) group indices in removal order."""
    if order == "relevance":
        return np.argsort(-scores.ravel(), kind="stable")
    if order == "random":
        return np.random.default_rng(seed).permutation(scores.size)
    raise ValueError(f"order must be 'relevance' or 'random', got {order!r}")


def _keep_masks(counts: np.ndarray, ranked: np.ndarray, shape: tuple, n: int) -> torch.Tensor:
    """(F, M, N) float masks: 0 on the first ``count`` groups of ``ranked``, else 1."""
    bounds = segment_bounds(n, shape[1])
    group_of_sample = np.repeat(np.arange(shape[1]), np.diff(bounds))
    rank = np.empty(ranked.size, np.int64)
    rank[ranked] = np.arange(ranked.size)
    rank = rank.reshape(shape)[:, group_of_sample]  # (M, N) removal rank of each sample
    return torch.from_numpy(rank[None] >= counts[:, None, None]).float()


def _model_device(model: torch.nn.Module, x: torch.Tensor) -> torch.device:
    first = next(chain(model.parameters(), model.buffers()), None)
    return x.device if first is None else first.device


def _predict(
    model: torch.nn.Module, x: torch.Tensor, keep: torch.Tensor, base: torch.Tensor, bs: int
) -> np.ndarray:
    """Arg-max bins (F,) of ``x * keep + base * (1 - keep)``, ``bs`` inputs per call."""
    device = _model_device(model, x)
    x, base = x.to(device), base.to(device)
    preds = []
    with torch.no_grad():
        for chunk in torch.split(keep, bs):
            chunk = chunk.to(device=device, dtype=x.dtype)
            preds.append(model(x * chunk + base * (1 - chunk)).argmax(dim=1).cpu())
    return torch.cat(preds).numpy()


def _baseline(baseline: str | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        if baseline.shape != x.shape:
            raise ValueError(f"baseline {tuple(baseline.shape)} must match x {tuple(x.shape)}")
        return baseline.to(x.dtype)
    if baseline == "zeros":
        return torch.zeros_like(x)
    raise ValueError(f"baseline must be 'zeros' or an (M, N) tensor, got {baseline!r}")


def perturbation_curve(
    model: torch.nn.Module,
    x: torch.Tensor,
    scores: Any,
    azimuth_deg: float,
    sector_deg: float,
    fractions: Sequence[float] = FRACTIONS,
    order: str = "relevance",
    seed: int = 0,
    baseline: str | torch.Tensor = "zeros",
    batch_size: int = 16,
    n_segments: int = 32,
) -> dict[str, np.ndarray]:
    """Pixel flipping (Samek et al. 2017) on (microphone, segment) groups of one clip.

    The clip's samples are split into ``S`` contiguous segments per microphone
    (``segment_bounds``), ``G = M * S`` groups. At each fraction ``f`` the
    ``round(f * G)`` groups first in the order are set to the baseline and the model
    predicts a sector. The order is by descending *signed* relevance (evidence for the
    explained sector goes first, evidence against it last; ties by the first group,
    microphone-major), or a random permutation from ``seed``.

    Parameters
    ----------
    model : maps (B, M, N) to (B, C) logits; called in eval mode without gradients, on
        the device of its parameters, ``batch_size`` perturbed clips per call.
    x : (M, N) waveforms.
    scores : (M, S) relevance per (microphone, segment), or per sample when its width is
        ``N``, then summed into ``n_segments`` segments (``segment_scores``).
    azimuth_deg, sector_deg : the true azimuth and the sectors' width.
    fractions : fractions of groups removed, in [0, 1].
    baseline : ``"zeros"`` or an (M, N) tensor whose samples replace removed ones.

    Returns
    -------
    ``fractions`` (F,), ``removed`` (F,) groups removed, ``pred_bin`` (F,),
    ``error_deg`` (F,) angular error of the prediction, ``same_bin`` (F,) bool: the
    prediction equals the unperturbed one.
    """
    s = _numpy(scores)
    s = segment_scores(s, n_segments) if s.shape[1] == x.shape[-1] else s
    if s.shape[0] != x.shape[0]:
        raise ValueError(f"scores {s.shape} and x {tuple(x.shape)} differ in microphones")
    frac = np.asarray(fractions, dtype=np.float64)
    counts = np.rint(np.concatenate([[0.0], frac]) * s.size).astype(np.int64)
    keep = _keep_masks(counts, _order(s, order, seed), s.shape, x.shape[-1])
    model.eval()
    pred = _predict(model, x, keep, _baseline(baseline, x), batch_size)
    return {
        "fractions": frac,
        "removed": counts[1:],
        "pred_bin": pred[1:],
        "error_deg": angular_error_deg(pred[1:], azimuth_deg, sector_deg),
        "same_bin": pred[1:] == pred[0],
    }


def _areas(curve: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """Areas under the error curve and under the changed-prediction curve."""
    f = torch.as_tensor(curve["fractions"], dtype=torch.float64)
    err = torch.as_tensor(curve["error_deg"], dtype=torch.float64)
    changed = torch.as_tensor(~np.asarray(curve["same_bin"]), dtype=torch.float64)
    return curve_auc(f, err), curve_auc(f, changed)


def perturbation_summary(
    curves_rel: Mapping[str, np.ndarray], curves_rand: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, float]:
    """Faithfulness of one clip's explanation from its perturbation curves.

    Parameters
    ----------
    curves_rel : ``perturbation_curve`` in relevance order.
    curves_rand : ``perturbation_curve`` in random orders (several seeds), same fractions.

    Returns
    -------
    ``auc_relevance`` and ``auc_random`` (mean over seeds): trapezoidal areas under the
    angular-error curve over the fractions removed (degrees x fraction; divided by the
    fractions' span, 0.5 by default, it is the curve's average error); ``auc_difference =
    auc_relevance - auc_random``, the faithfulness figure: positive when removing the
    relevant parts first hurts more than removing random ones. ``changed_auc_*``: the
    same for the indicator that the predicted sector changed.
    """
    if not curves_rand:
        raise ValueError("curves_rand is empty: give at least one random-order curve")
    rel = _areas(curves_rel)
    rand = np.mean([_areas(c) for c in curves_rand], axis=0)
    return {
        "auc_relevance": rel[0],
        "auc_random": float(rand[0]),
        "auc_difference": rel[0] - float(rand[0]),
        "changed_auc_relevance": rel[1],
        "changed_auc_random": float(rand[1]),
        "changed_auc_difference": rel[1] - float(rand[1]),
    }


def perturbation_faithfulness(
    model: torch.nn.Module,
    x: torch.Tensor,
    scores: Any,
    azimuth_deg: float,
    sector_deg: float,
    n_random: int = 5,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """``perturbation_summary`` of one clip: the relevance-order curve against
    ``n_random`` random orders (seeds ``seed .. seed + n_random - 1``); ``kwargs`` go to
    ``perturbation_curve``. Adds the curves as ``curve_relevance`` and ``curves_random``."""
    args = (model, x, scores, azimuth_deg, sector_deg)
    rel = perturbation_curve(*args, order="relevance", **kwargs)
    rand = [
        perturbation_curve(*args, order="random", seed=seed + k, **kwargs) for k in range(n_random)
    ]
    return {**perturbation_summary(rel, rand), "curve_relevance": rel, "curves_random": rand}


# --------------------------------------------------------------------------- conditions


def _snr_band(snr: float, edges: Sequence[float]) -> tuple[int, str]:
    """(band index, label) of an SNR; index 0 and ``len(edges)`` are the bands outside."""
    k = int(np.searchsorted(edges, snr, side="right"))
    if k == len(edges) and snr == edges[-1]:
        k -= 1  # the top edge belongs to the last band
    if k == 0:
        return k, f"snr <{edges[0]:g} dB"
    if k == len(edges):
        return k, f"snr >{edges[-1]:g} dB"
    return k, f"snr {edges[k - 1]:g}..{edges[k]:g} dB"


def by_condition(
    values: Sequence[float],
    rt60: Sequence[float],
    snr: Sequence[float],
    snr_edges: Sequence[float] = (-10, 0, 15),
) -> dict[str, dict[str, float]]:
    """Per-clip values grouped by reverberation time and SNR band.

    Parameters
    ----------
    values, rt60, snr : one entry per clip (``ClipTruth.rt60_s`` and ``snr_db``).
    snr_edges : ascending band edges; bands are ``[lo, hi)``, the last one closed; SNRs
        outside get a band of their own (``"snr <-10 dB"``).

    Returns
    -------
    ``{"rt60=0.4 s, snr 0..15 dB": {"mean", "ci95", "n"}, ..., "all": ...}`` in order of
    RT60 then band, from ``evaluate.metrics.statistics.mean_ci`` (NaN values left out).
    """
    v, r, s = (np.asarray(a, dtype=np.float64) for a in (values, rt60, snr))
    if not v.shape == r.shape == s.shape:
        raise ValueError(f"values {v.shape}, rt60 {r.shape} and snr {s.shape} differ")
    edges = sorted(float(e) for e in snr_edges)
    groups: dict[tuple[float, int, str], list[float]] = {}
    for value, rt, db in zip(v, r, s, strict=True):
        band, label = _snr_band(db, edges)
        groups.setdefault((round(float(rt), 3), band, label), []).append(value)
    out = {}
    for key in sorted(groups):
        mean, ci, n = mean_ci(groups[key])
        out[f"rt60={key[0]:g} s, {key[2]}"] = {"mean": mean, "ci95": ci, "n": n}
    mean, ci, n = mean_ci(v.tolist())
    out["all"] = {"mean": mean, "ci95": ci, "n": n}
    return out
