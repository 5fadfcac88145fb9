"""Explain and score localization clips: the learned SRP's own explanation and every
post-hoc method on the multichannel black box, against the geometry of each clip.

Per test clip and method this measures

* the **perturbation** experiment (pixel flipping, Samek et al., IEEE TNNLS 2017, on the
  waveforms): the (microphone, segment) groups are set to silence most relevant first and
  the model's angular error is read at each fraction removed, against random orders; the
  figure is the area between the two curves (``deletion gap``, degrees: higher = removing
  what the explanation points at hurts localization sooner than chance);
* the **ground truth in time**: the share of |relevance| in each microphone's direct-path
  window ``[direct onset, first reflection)``, divided by the window's share of the
  samples (``direct enrichment``; 1 = chance);
* the **delays**: for post-hoc methods, the TDOA of every microphone pair estimated from
  the relevance traces (``evaluate.localization.metrics.tdoa_from_relevance``); for the
  learned SRP, the lag each pair contributed most with (its explanation *is* the delay it
  used). Share of pairs within one sample of the true TDOA.

Segment-level methods (KernelShap, occlusion: ``SEGMENTS`` segments per microphone)
cannot resolve delays of a few samples; their TDOA share is left empty, not guessed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluate.localization.metrics import (
    direct_path_share,
    perturbation_curve,
    perturbation_summary,
    segment_scores,
    tdoa_error,
    tdoa_from_relevance,
    tdoa_hit_rate,
)
from evaluate.posthoc import GROUPED
from evaluate.posthoc.groupings import Samples
from evaluate.reporting.skeleton import posthoc_explainers
from interp_models.audio.features import Spectrogram
from interp_models.localization.scoring import direction_scores

__all__ = [
    "FRACTIONS",
    "INTRINSIC",
    "ON_SRP",
    "SEGMENTS",
    "ClipScores",
    "analysis_stft",
    "array_explainers",
    "explain_clips",
    "score_clip",
]

INTRINSIC = "learned_srp"
#: post-hoc methods also run on the learned SRP itself (rows ``<method>@learned_srp``): the
#: deletion gap depends on the model as well as on the explanation (a model that localizes
#: from any frame loses little to any removal), so only rows on the same model compare
#: explanations alone
ON_SRP = ("integrated_gradients", "occlusion")
#: time segments per microphone for the sampling methods and the perturbation experiment
SEGMENTS = 16
#: fractions of the (microphone, segment) groups removed
FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
#: random removal orders per clip
N_RANDOM = 3


def analysis_stft(sample_rate: int) -> Spectrogram:
    """The STFT of the DFT-LRP views (32 ms windows, 8 ms hop)."""
    n_fft = int(2 ** round(np.log2(0.032 * sample_rate)))
    return Spectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4)


@dataclass
class ClipScores:
    """One clip's figures for every method (``scores[method][metric]``) and conditions."""

    row: int
    rt60_s: float
    snr_db: float
    azimuth_deg: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def array_explainers(
    methods: Sequence[str],
    model: nn.Module,
    sample_rate: int,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
):
    """``evaluate.reporting.skeleton.posthoc_explainers`` on microphone-array waveforms:
    the sampling methods on ``SEGMENTS`` segments per microphone, the others on every
    microphone's samples, with the DFT-LRP grid of ``analysis_stft``."""
    stft = analysis_stft(sample_rate)
    return posthoc_explainers(
        methods, model, None, Samples(SEGMENTS, stft), seed, options, fine=Samples(stft=stft)
    )


def _per_sample(e_attr: torch.Tensor, n: int) -> torch.Tensor:
    """(B, M, S) segment attributions spread evenly over their samples -> (B, M, N)."""
    if e_attr.shape[-1] == n:
        return e_attr
    seg = torch.arange(n) * e_attr.shape[-1] // n
    counts = torch.bincount(seg, minlength=e_attr.shape[-1]).to(e_attr)
    return (e_attr / counts)[..., seg]


def explain_posthoc(
    methods: Sequence[str],
    model: nn.Module,
    x: torch.Tensor,
    sample_rate: int,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, tuple[torch.Tensor, float]]:
    """Per-sample relevance (B, M, N) of the black box's prediction and seconds per clip,
    for every method (the sampling methods on ``SEGMENTS`` segments per microphone)."""
    out = {}
    for name, explainer, grouping in array_explainers(methods, model, sample_rate, seed, options):
        e = explainer.attribute(x, grouping=grouping)
        out[name] = (_per_sample(e.attribution.detach().cpu(), x.shape[-1]), e.seconds)
    return out


def explain_intrinsic(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """The learned SRP's own explanation of its prediction: per-sample relevance, the
    delay each pair used (samples) and seconds per clip."""
    start = time.perf_counter()
    e = model.explain(x)
    seconds = (time.perf_counter() - start) / max(len(x), 1)
    delays = e.maps["delays_s"].detach().cpu().numpy() * model.sample_rate
    return {"relevance": e.maps["per_sample"].detach().cpu(), "delays": delays, "seconds": seconds}


def score_clip(
    model: nn.Module,
    x: torch.Tensor,
    relevance: torch.Tensor,
    truth: Any,
    array: dict[str, Any],
    seed: int,
    delays: np.ndarray | None = None,
    resolves_delays: bool = True,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The figures of one explanation of one clip (see the module docstring).

    ``x`` (M, N) the clip, ``relevance`` (M, N); ``delays`` (P,) in samples: the
    explanation's own delays (the learned SRP), else estimated from ``relevance`` when
    ``resolves_delays``.
    """
    sr, sector = int(array["sample_rate"]), float(array["sector_deg"])
    rel = relevance.numpy() if torch.is_tensor(relevance) else np.asarray(relevance)
    share = direct_path_share(rel, truth, sr)
    scores = {"direct_enrichment": float(share["direct_enrichment"])}
    pairs = [tuple(p) for p in array["pairs"]]
    if delays is None and resolves_delays:
        mics = np.asarray(array["mic_positions_m"])
        aperture = max(np.linalg.norm(mics[i] - mics[j]) for i, j in pairs)
        delays = tdoa_from_relevance(rel, pairs, aperture / array["speed_of_sound"] * sr + 1)
    if delays is not None:
        err = tdoa_error(np.asarray(delays), truth, sr)
        scores["tdoa_hit"] = tdoa_hit_rate(err)
        scores["tdoa_error"] = float(np.nanmean(err)) if np.isfinite(err).any() else np.nan
    seg = segment_scores(torch.as_tensor(rel), SEGMENTS)
    common = {"azimuth_deg": float(truth.azimuth_deg), "sector_deg": sector}
    by_relevance = perturbation_curve(
        model, x, seg, fractions=FRACTIONS, order="relevance", seed=seed, **common
    )
    randoms = [
        perturbation_curve(
            model, x, seg, fractions=FRACTIONS, order="random", seed=seed + k, **common
        )
        for k in range(N_RANDOM)
    ]
    summary = perturbation_summary(by_relevance, randoms)
    scores["deletion_gap"] = float(summary["auc_difference"])
    scores["error_unperturbed"] = float(by_relevance["error_deg"][0])
    curves = {
        "relevance": [float(v) for v in by_relevance["error_deg"]],
        "random": [
            float(np.mean([r["error_deg"][k] for r in randoms])) for k in range(len(FRACTIONS))
        ],
    }
    return scores, curves


def explain_clips(
    srp: nn.Module,
    blackbox: nn.Module,
    data: Any,
    rows: Sequence[int],
    methods: Sequence[str],
    seed: int = 0,
    log: Callable[[str], None] = print,
    batch: int = 8,
) -> tuple[list[ClipScores], dict[str, Any]]:
    """Explain clips ``rows`` of ``data`` (``LocalizationClips``) by design and post hoc,
    score them; returns the per-clip scores and what the figures need (the first clip's
    relevances, predictions, seconds per method)."""
    array, sr = data.array, int(data.array["sample_rate"])
    results: list[ClipScores] = []
    on_srp = [m for m in ON_SRP if m in methods]
    seconds: dict[str, list[float]] = {
        INTRINSIC: [],
        **{m: [] for m in methods},
        **{f"{m}@{INTRINSIC}": [] for m in on_srp},
    }
    keep: dict[str, Any] = {}
    for lo in range(0, len(rows), batch):
        part = list(rows[lo : lo + batch])
        x = data.features["x"][part].float()
        own = explain_intrinsic(srp, x)
        post = explain_posthoc(methods, blackbox, x, sr, seed + lo)
        same = explain_posthoc(on_srp, srp, x, sr, seed + lo)
        post.update({f"{m}@{INTRINSIC}": v for m, v in same.items()})
        seconds[INTRINSIC].append(own["seconds"])
        for m in post:
            seconds[m].append(post[m][1])
        if lo == 0:
            keep = {"x": x[0], "row": part[0], INTRINSIC: own["relevance"][0]}
            keep.update({m: post[m][0][0] for m in methods})
            keep["delays"] = own["delays"][0]
        for i, row in enumerate(part):
            truth = data.truth(row)
            clip = ClipScores(
                row, float(truth.rt60_s), float(truth.snr_db), float(truth.azimuth_deg)
            )
            s, c = score_clip(
                srp, x[i], own["relevance"][i], truth, array, seed + row, own["delays"][i]
            )
            clip.scores[INTRINSIC], clip.curves[INTRINSIC] = s, c
            for m in post:
                base = m.partition("@")[0]
                s, c = score_clip(
                    srp if "@" in m else blackbox,
                    x[i],
                    post[m][0][i],
                    truth,
                    array,
                    seed + row,
                    resolves_delays=base not in GROUPED,
                )
                clip.scores[m], clip.curves[m] = s, c
            results.append(clip)
        log(f"localization report: {len(results)}/{len(rows)} clips explained")
    keep["seconds"] = {m: float(np.mean(v)) for m, v in seconds.items()}
    keep["accuracy"] = {
        INTRINSIC: _accuracy(srp, data, rows),
        "blackbox": _accuracy(blackbox, data, rows),
    }
    return results, keep


def _accuracy(model: nn.Module, data: Any, rows: Sequence[int]) -> dict[str, float]:
    """Sector accuracy and mean angular error (degrees) of ``model`` on clips ``rows``."""
    scores = direction_scores(model, data, rows)
    return {"accuracy": scores["acc"], "angular_error_deg": scores["mean_angular_error_deg"]}
