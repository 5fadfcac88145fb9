"""Segmentation-aware versus post-hoc: which cardiac state drives an abnormal decision?

    python -m evaluate.report run=<heart_segmentation run> blackbox=<blackbox_heart run>
        [n_clips=38] [methods=saliency,occlusion,...] [out=<dir>]

Dissanayake et al. ("Understanding the importance of heart sound segmentation for heart
anomaly detection", IEEE JBHI 2020) explained heart-sound classifiers with SHAP and
occlusion and summed the relevance inside S1, systole, S2 and diastole to ask which states
drive the decision. This report asks the same question of two models trained on the same
recordings and splits:

* the **intrinsic** explanation of the segmentation-aware model
  (``SegmentationAwareNet.explain``): its abnormality logit is an exact sum of one term per
  (beat, state), so the per-state values are the model's own arithmetic;
* **post-hoc** explanations of the black box (``SpectrogramCNN`` on the log-mel
  spectrogram of the first ``clip_seconds`` of each recording, ``config=blackbox_heart``)
  through ``evaluate.posthoc.build_explainer``: gradient methods and LRP on single log-mel
  bins, KernelShap / Lime / occlusion over a coarse grouping (``N_BANDS`` bands x
  time divisions of ``DIVISION_S``), every map summed over frequency and aggregated per
  (beat, state) with ``evaluate.heart.posthoc`` over the span the black box saw.

Both are aggregated on the run's Springer segmentation and on the ground-truth one, and
scored with ``evaluate.heart.metrics.state_hit_rate`` (the largest per-state value on the
generator's lesion state), the share of positive (beat, state) relevance on the lesion
state, and cost. Recordings: the first ``n_clips`` abnormal test recordings with a known
lesion that *both* models detect (the hit-rate set, the same recordings for every method);
every other abnormal test recording with a lesion is explained as well and reported in a
second table ("all abnormal"), so a method is not judged only where the models are right.
Normal recordings carry no lesion and are not explained. The report ends with the
robustness and randomisation checks (``evaluate.reporting.sanity``, :func:`sanity_plan`) of
every explanation per (beat, state) span, under noise on the waveform both models hear.

Outputs in ``out``: ``report.md`` and ``report.html`` (written from the same blocks by
``evaluate.reporting.format``), ``report.json`` (per-recording values), the figures and
the audio.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import nn

from evaluate.heart.explain import HeartRun, load_heart_run
from evaluate.heart.figures import STATE_COLOURS
from evaluate.heart.metrics import binary_scores, state_hit_rate
from evaluate.heart.posthoc import relevance_by_beat_state
from evaluate.heart.scoring import explain_recording
from evaluate.metrics.statistics import mcnemar_exact, mean_ci, wilson_interval
from evaluate.posthoc import COMPARED, GROUPED
from evaluate.posthoc.groupings import Bands
from evaluate.reporting import skeleton
from evaluate.reporting.format import (
    Audio,
    Block,
    Heading,
    Image,
    Table,
    Text,
    fmt,
    save_figure,
)
from evaluate.reporting.sanity import (
    RandomBlock,
    SanityBatch,
    SanityCase,
    SanityPlan,
    top_down,
)
from evaluate.reporting.skeleton import (
    Column,
    FamilyReport,
    Metric,
    ReportRequest,
    posthoc_explainers,
    write_report,
)
from evaluate.runs import LoadedRun, OtherData, load_run, open_data
from interp_models.audio.io import write_audio
from interp_models.cache import default_cache_dir
from interp_models.families import current_name
from interp_models.heart.listen import gate, relevant_spans
from interp_models.heart.model import SegmentationAwareNet
from interp_models.heart.springer import segment_recordings
from interp_models.heart.states import FRAME_RATE, STATE_NAMES, beat_index

__all__ = [
    "DEFAULT_METHODS",
    "INTRINSIC",
    "HeartReport",
    "check_same_data",
    "lesion_share",
    "load_blackbox_run",
    "report",
]

INTRINSIC = "segmentation_aware"
INTRINSIC_SEEN = "segmentation_aware (seen span)"
DURATION = "reference: state duration"
DEFAULT_METHODS = COMPARED  # the same post-hoc methods in every report
BAND_EDGES_HZ = (0.0, 150.0, 500.0)  # heart sounds / S3 below 150 Hz, murmurs above
N_BANDS = len(BAND_EDGES_HZ) - 1
DIVISION_S = 0.1  # time divisions shorter than S1 (~120 ms), so states can be told apart
#: Sampling budgets; large batches of perturbations (the black box is cheap per row).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "kernel_shap": {"n_samples": 400, "perturbations_per_eval": 100},
    "lime": {"n_samples": 400, "perturbations_per_eval": 100},
    "occlusion": {"perturbations_per_eval": 128},
}
SEGMENTATIONS = ("springer", "ground_truth")
#: The summary table's columns (hit-rate set, primary segmentation).
SUMMARY_METRICS = (
    Metric("hit_rate", "Hit rate [Wilson 95%]", True, "largest state = lesion state"),
    Metric("lesion_share", "Lesion share", True, "positive relevance on the lesion state"),
    Metric("seconds", "Seconds / recording", False, "CPU, one recording at a time"),
    Metric("n_evals", "Model evaluations", False, "per recording"),
)
#: Data settings two runs must share to be compared on the same recordings and splits.
DATA_KEYS = (
    "root",
    "synth",
    "sample_rate",
    "n_folds",
    "train_folds",
    "val_folds",
    "test_folds",
    "unsure",
    "on_bad_file",
)


# ----------------------------------------------------------------------------- statistics


def lesion_share(per_beat: np.ndarray, mask: np.ndarray, lesion_state: int) -> float:
    """Share of the positive (beat, state) relevance that lies in the lesion's state.

    Parameters
    ----------
    per_beat : (n_beats, 4) relevance per (beat, state) span, intrinsic or aggregated.
    mask : (n_beats, 4) bool, the spans that exist.
    lesion_state : 1..4.

    Returns
    -------
    ``sum_beats relu(r[:, lesion]) / sum relu(r)``; NaN when nothing is positive.
    """
    r = np.clip(np.where(np.asarray(mask, dtype=bool), per_beat, 0.0), 0.0, None)
    total = float(r.sum())
    if total <= 0:
        return float("nan")
    return float(r[:, lesion_state - 1].sum() / total)


# ----------------------------------------------------------------------------- runs


#: the ``data._target_`` of heart runs (old DataModule names map to it through ``current_name``)
HEART_DATA = "interp_models.data.heart.HeartRecordings"


def load_blackbox_run(run_dir: str | Path) -> LoadedRun:
    """The black box of a finished ``blackbox_heart`` run (``pipeline: supervised`` on a
    ``HeartRecordings`` with ``input: spectrogram``), through ``evaluate.runs.load_run``."""
    path = Path(run_dir).expanduser().resolve()
    cfg_file = path / "config.yaml"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"blackbox: {path} is not a finished run (no config.yaml)")
    cfg = yaml.safe_load(cfg_file.read_text())
    data = cfg.get("data", {})
    if (
        cfg.get("pipeline") != "supervised"
        or current_name(str(data.get("_target_", ""))) != HEART_DATA
        or data.get("input") != "spectrogram"
    ):
        raise ValueError(
            f"blackbox: {path} is not a heart-sound black-box run (expected pipeline supervised on "
            f"{HEART_DATA} with data.input=spectrogram, as config=blackbox_heart trains)"
        )
    run = load_run(path)
    return run


def check_same_data(
    heart_cfg: dict[str, Any], blackbox_cfg: dict[str, Any], heart_dir: Path, blackbox_dir: Path
) -> None:
    """Raise ``ValueError`` naming both runs when their data settings (``DATA_KEYS``:
    dataset, generator, rate, folds and splits) differ."""
    same_data = "train the black box with the same data overrides to compare their explanations"
    skeleton.check_same_data(
        heart_cfg,
        blackbox_cfg,
        DATA_KEYS,
        (f"run={heart_dir}", f"blackbox={blackbox_dir}"),
        same_data,
    )


def _springer_states(heart: HeartRun, dm) -> list[np.ndarray]:
    """Per-frame Springer states of every recording, from the run's own segmenter (the
    pipeline's cached segmentation when it is still in the cache)."""
    cache = heart.config.get("paths", {}).get("cache_dir")
    root = Path(cache) if cache else default_cache_dir()
    return segment_recordings(heart.segmenter, dm.waves, dm.n_frames, dm.hop, root)


# ----------------------------------------------------------------------------- explaining


@dataclass
class Scored:
    """One method's explanation of one recording on one segmentation."""

    per_state: list[float]
    per_beat: list[list[float]]
    beat_mask: list[list[bool]]
    hit: bool
    lesion_share: float
    hit_mean: bool | None = None  # per-frame mean aggregation (post-hoc only)


@dataclass
class RecordingResult:
    index: int
    recording: str
    path: str
    kind: str
    lesion_state: int
    duration_s: float
    seen_s: float
    p_abnormal: dict[str, float]
    detected: dict[str, bool]
    primary: bool
    seconds: dict[str, float] = field(default_factory=dict)
    n_evals: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, Scored]] = field(default_factory=lambda: defaultdict(dict))
    frame_relevance: dict[str, np.ndarray] = field(default_factory=dict)  # figure only
    frame_times: np.ndarray | None = None


def _score(
    per_beat: np.ndarray, mask: np.ndarray, lesion: int, per_state_mean: np.ndarray | None = None
) -> Scored:
    per_state = np.where(mask, per_beat, 0.0).sum(axis=0)
    return Scored(
        per_state=per_state.tolist(),
        per_beat=np.where(mask, per_beat, 0.0).tolist(),
        beat_mask=np.asarray(mask, dtype=bool).tolist(),
        hit=bool(np.argmax(per_state) + 1 == lesion),
        lesion_share=lesion_share(per_beat, mask, lesion),
        hit_mean=None if per_state_mean is None else bool(np.argmax(per_state_mean) + 1 == lesion),
    )


def _aggregate(relevance: np.ndarray, times: np.ndarray, states: np.ndarray, lesion: int):
    per_beat, mask = relevance_by_beat_state(relevance, times, states, FRAME_RATE, "sum")
    means, mmask = relevance_by_beat_state(relevance, times, states, FRAME_RATE, "mean")
    per_state_mean = means.sum(axis=0) / np.maximum(mmask.sum(axis=0), 1)
    return _score(per_beat, mask, lesion, per_state_mean)


def _bands(frontend, n_frames: int, clip_seconds: float) -> Bands:
    """The grouping of the sampling methods: ``BAND_EDGES_HZ`` x ``DIVISION_S`` divisions."""
    n_div = max(1, min(n_frames, int(round(clip_seconds / DIVISION_S))))
    return Bands(frontend, edges_hz=BAND_EDGES_HZ, n_divisions=n_div)


def _kind(dm, j: int) -> str:
    ev = dm.events[j]
    return ev[0].kind if ev else ("abnormal" if dm.records[j].target == 1 else "normal")


@torch.no_grad()
def _intrinsic_predictions(model, dm, rows: np.ndarray, states: list[np.ndarray]) -> np.ndarray:
    logits = []
    for j in rows:
        w = torch.from_numpy(np.asarray(dm.waves[j], dtype=np.float32))[None]
        s = torch.from_numpy(np.asarray(states[j], dtype=np.int64))[None]
        logits.append(float(model(w, s)[0, 0]))
    return np.asarray(logits)


def explain_recordings(
    heart: HeartRun,
    blackbox: LoadedRun,
    n_clips: int,
    methods: Sequence[str],
    seed: int = 0,
    log: Callable[[str], None] = print,
    data: OtherData | None = None,
) -> tuple[list[RecordingResult], dict[str, Any]]:
    """Explain the abnormal test recordings with the intrinsic and every post-hoc method
    (on ``data`` instead of the runs' own, if given).

    Returns the per-recording results (``primary`` marks the hit-rate set: the first
    ``n_clips`` detected by both models) and context for the report (data modules,
    segmentations, front end).
    """
    dm = open_data(heart.config, data)
    dm_bb = open_data(blackbox.config, data, blackbox.metrics["data"])
    for split in ("train", "val", "test"):
        a = [str(dm.records[j].path) for j in dm.split_indices[split]]
        b = [str(dm_bb.records[j].path) for j in dm_bb.split_indices[split]]
        if a != b:
            raise ValueError(
                f"run={heart.run_dir} and blackbox={blackbox.run_dir}: their {split} splits hold "
                "different recordings"
            )
    segs = {"springer": _springer_states(heart, dm)}
    if "ground_truth" in dm.segmentations:
        segs["ground_truth"] = dm.segmentations["ground_truth"]
    primary_seg = heart.config.get("segmentation", "springer")
    model, bb = heart.model.eval(), blackbox.model.eval()
    frontend = blackbox.frontends["x"]
    x_all = dm_bb.features["x"].float()
    clip_seconds = dm_bb.clip_samples / dm_bb.sample_rate

    test = np.asarray(dm.split_indices["test"], dtype=np.int64)
    lesion = np.asarray(dm.abnormal_states)
    p_int = 1 / (1 + np.exp(-_intrinsic_predictions(model, dm, test, segs[primary_seg])))
    with torch.no_grad():
        p_bb = torch.sigmoid(bb(x_all[test])[:, 0]).numpy()
    target = dm.targets[test].numpy()
    candidates = [k for k in range(len(test)) if target[k] == 1 and lesion[test[k]] > 0]
    both = [k for k in candidates if p_int[k] > 0.5 and p_bb[k] > 0.5]
    primary = set(both[:n_clips])
    # Test-split scores of both models, recomputed here on the same recordings.
    scores = {
        INTRINSIC: binary_scores(target, (p_int > 0.5).astype(int)),
        "blackbox": binary_scores(target, (p_bb > 0.5).astype(int)),
    }

    results: list[RecordingResult] = []
    for k in candidates:
        j = int(test[k])
        rec = dm.records[j]
        n = len(dm.waves[j])
        results.append(
            RecordingResult(
                index=j,
                recording=f"{rec.set_name}/{rec.name}",
                path=str(rec.path),
                kind=_kind(dm, j),
                lesion_state=int(lesion[j]),
                duration_s=n / dm.sample_rate,
                seen_s=min(n, dm_bb.clip_samples) / dm.sample_rate,
                p_abnormal={INTRINSIC: float(p_int[k]), "blackbox": float(p_bb[k])},
                detected={INTRINSIC: bool(p_int[k] > 0.5), "blackbox": bool(p_bb[k] > 0.5)},
                primary=k in primary,
            )
        )
    log(
        f"[heart report] {len(results)} abnormal test recordings with a lesion, {len(primary)} in "
        "the hit-rate set (detected by both models)"
    )
    hop = dm.sample_rate // FRAME_RATE

    # -- intrinsic: the model's own per-(beat, state) decomposition, one recording at a time
    for r in results:
        wave = torch.from_numpy(np.asarray(dm.waves[r.index], dtype=np.float32))[None]
        for seg_name, states in segs.items():
            st = torch.from_numpy(np.asarray(states[r.index], dtype=np.int64))[None]
            e = model.explain(wave, states=st, target=0, negate=False)
            beats, mask = e.maps["beats"][0].numpy(), e.maps["beat_mask"][0].numpy()
            r.scores[INTRINSIC][seg_name] = _score(beats, mask, r.lesion_state)
            if seg_name == primary_seg:
                r.seconds[INTRINSIC], r.n_evals[INTRINSIC] = e.seconds, float(e.n_evals)
                # the per-(beat, state) terms spread over their frames (grid "frames")
                r.frame_relevance[INTRINSIC] = e.relevance[0].double().numpy()
            # the same model on only the span the black box heard
            m = int(round(r.seen_s * FRAME_RATE))
            e = model.explain(wave[:, : m * hop], states=st[:, :m], target=0, negate=False)
            seen = e.maps["beats"][0].numpy(), e.maps["beat_mask"][0].numpy()
            r.scores[INTRINSIC_SEEN][seg_name] = _score(*seen, r.lesion_state)
            # reference: relevance 1 per frame -> per-state totals are state durations
            ones = np.ones(m)
            times = (np.arange(m) + 0.5) / FRAME_RATE
            r.scores[DURATION][seg_name] = _aggregate(ones, times, states[r.index], r.lesion_state)
        # Springer segmentation is part of the intrinsic explanation's cost.
        start = time.perf_counter()
        heart.segmenter.segment(np.asarray(dm.waves[r.index]))
        r.seconds["springer_segmentation"] = time.perf_counter() - start
    log(f"[heart report] {INTRINSIC} done")

    # -- post-hoc, on the black box, one recording at a time
    rows = [r.index for r in results]
    n_frames = x_all.shape[-1]
    times = frontend.frame_times(n_frames).cpu().numpy()
    bands = _bands(frontend, n_frames, clip_seconds)
    for name, explainer, grouping in posthoc_explainers(
        methods, bb, frontend, bands, seed, METHOD_OPTIONS
    ):
        for r, j in zip(results, rows, strict=True):
            e = explainer.attribute(x_all[j : j + 1], 0, grouping=grouping)
            rel = e.maps["relevance_map"][0].double().numpy()  # (F', T') on the log-mel grid
            frame_times = e.maps.get("map_times_s", torch.as_tensor(times)).double().numpy()
            r.seconds[name], r.n_evals[name] = float(e.seconds), float(e.n_evals)
            for seg_name, states in segs.items():
                r.scores[name][seg_name] = _aggregate(rel, frame_times, states[j], r.lesion_state)
            r.frame_relevance[name] = rel.sum(axis=0)
            r.frame_times = frame_times
        log(
            f"[heart report] {name} done "
            f"({np.mean([r.seconds[name] for r in results]) if results else 0:.3f} s/recording)"
        )
    context = {
        "dm": dm,
        "dm_bb": dm_bb,
        "segs": segs,
        "primary_seg": primary_seg,
        "clip_seconds": clip_seconds,
        "test_scores": scores,
        "n_test": len(test),
        "n_candidates": len(candidates),
        "n_both": len(both),
        "frontend": frontend,
        "bands": bands,
        "frame_times": times,
    }
    return results, context


# ----------------------------------------------------------------------------- summaries


def method_summary(results: Sequence[RecordingResult], method: str, seg: str) -> dict[str, Any]:
    """Hit rate (Wilson 95% interval), per lesion kind and state, lesion share and cost of
    ``method`` over ``results`` on segmentation ``seg``."""
    rows = [r for r in results if seg in r.scores.get(method, {})]
    out: dict[str, Any] = {"n": len(rows)}
    if not rows:
        out["hit_rate"] = float("nan")
        return out
    attr = np.array([r.scores[method][seg].per_state for r in rows])
    lesion = np.array([r.lesion_state for r in rows])
    hits = state_hit_rate(attr, lesion)
    k = int(round(hits["hit_rate"] * len(rows)))
    lo, hi = wilson_interval(k, len(rows))
    out.update(hits)
    out.update(hits=k, hit_rate_lo=lo, hit_rate_hi=hi)
    for kind in sorted({r.kind for r in rows}):
        sel = [r.scores[method][seg].hit for r in rows if r.kind == kind]
        out[f"hit_rate_{kind}"] = float(np.mean(sel))
        out[f"n_{kind}"] = len(sel)
    means = [r.scores[method][seg].hit_mean for r in rows]
    if all(m is not None for m in means):
        out["hit_rate_frame_mean"] = float(np.mean(means))
    share, share_ci, n_share = mean_ci([r.scores[method][seg].lesion_share for r in rows])
    out.update(lesion_share=share, lesion_share_ci95=share_ci, lesion_share_n=n_share)
    secs = [r.seconds[method] for r in rows if method in r.seconds]
    if secs:
        out["seconds"], out["seconds_ci95"], _ = mean_ci(secs)
        out["n_evals"] = float(np.mean([r.n_evals[method] for r in rows]))
    return out


def _summary_rows(
    summaries: dict[str, dict[str, dict[str, Any]]], methods: Sequence[str], seg: str
) -> dict[str, dict[str, Any]]:
    """``method_summary`` values of segmentation ``seg`` under the summary table's keys."""
    rows = {}
    for m in methods:
        s = summaries[m][seg]
        rows[m] = {k: s[k] for k in ("hit_rate", "seconds", "n_evals") if k in s}
        if "hit_rate_lo" in s:
            rows[m].update(hit_rate_lo=s["hit_rate_lo"], hit_rate_hi=s["hit_rate_hi"])
        if s.get("lesion_share_n"):
            rows[m].update(lesion_share=s["lesion_share"], lesion_share_ci95=s["lesion_share_ci95"])
    return rows


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _hit_cell(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "–"
    interval = f"[{s['hit_rate_lo']:.2f}, {s['hit_rate_hi']:.2f}]"
    return f"{s['hit_rate']:.2f} {interval} ({s['hits']}/{s['n']})"


def verdict(results: Sequence[RecordingResult], methods: Sequence[str], seg: str) -> str:
    """One plain sentence: does the intrinsic hit rate beat the best post-hoc method's?"""
    rows = [r for r in results if r.primary]
    if not rows or not methods:
        return (
            "No verdict: no abnormal test recording with a known lesion was detected by both "
            "models (or no post-hoc method was run)."
        )
    ours = method_summary(rows, INTRINSIC, seg)
    post = {m: method_summary(rows, m, seg) for m in methods}
    best = max(methods, key=lambda m: (post[m]["hit_rate"], -methods.index(m)))
    a = [r.scores[INTRINSIC][seg].hit for r in rows]
    b = [r.scores[best][seg].hit for r in rows]
    p = mcnemar_exact(a, b)
    x, y = ours["hit_rate"], post[best]["hit_rate"]
    if x > y:
        answer = "**Yes**: the intrinsic hit rate is higher than"
    elif x == y:
        answer = "**No**: the intrinsic hit rate only equals"
    else:
        answer = "**No**: the intrinsic hit rate is lower than"
    sig = "significant" if p < 0.05 else "not significant"
    return (
        f"{answer} the best post-hoc method's on the {seg} segmentation: `{INTRINSIC}` {x:.2f} "
        f"({ours['hits']}/{ours['n']}) versus `{best}` on the black box {y:.2f} "
        f"({post[best]['hits']}/{post[best]['n']}); paired exact McNemar p = {p:.3g} ({sig} at "
        f"0.05, n = {len(rows)} recordings)."
    )


# ----------------------------------------------------------------------------- figures


def _state_bars_figure(r: RecordingResult, methods: Sequence[str], seg: str, path: Path) -> Path:
    """Per-state relevance of one recording under every method, side by side."""
    names = [INTRINSIC, *methods]
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        values = np.asarray(r.scores[name][seg].per_state)
        scale = np.abs(values).sum()
        shares = values / scale if scale > 0 else values
        bars = ax.bar(STATE_NAMES, shares, color=STATE_COLOURS)
        bars[r.lesion_state - 1].set_edgecolor("red")
        bars[r.lesion_state - 1].set_linewidth(2.5)
        ax.axhline(0, color="k", lw=0.5)
        hit = "hit" if r.scores[name][seg].hit else "miss"
        ax.set_title(f"{name}\n({hit})", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("share of |relevance|")
    fig.suptitle(
        f"{r.recording} ({r.kind}; lesion in {STATE_NAMES[r.lesion_state - 1]}, red outline): "
        f"per-state relevance for 'abnormal', {seg} segmentation; intrinsic over "
        f"{r.duration_s:.1f} s, post-hoc over the first {r.seen_s:.1f} s",
        fontsize=9,
    )
    return save_figure(fig, path)


def _time_figure(
    r: RecordingResult, wave: np.ndarray, states: np.ndarray, sr: int, methods, path: Path
) -> Path:
    """Relevance over time (summed over frequency) of every method with the states shaded."""
    names = [INTRINSIC, *methods]
    end = int(r.seen_s * sr)
    fig = Figure(figsize=(12, 1.3 * (len(names) + 1) + 0.5), layout="constrained")
    axes = fig.subplots(len(names) + 1, 1, sharex=True)
    spans = []
    st = np.asarray(states)[: int(r.seen_s * FRAME_RATE)]
    change = np.flatnonzero(np.diff(st)) + 1
    for a, z in zip(np.r_[0, change], np.r_[change, st.size], strict=True):
        if st[a] > 0:
            spans.append((a / FRAME_RATE, z / FRAME_RATE, int(st[a])))
    t = np.arange(end) / sr
    axes[0].plot(t, wave[:end], color="0.3", lw=0.4)
    axes[0].set_ylabel("wave", fontsize=8)
    for ax, name in zip(axes[1:], names, strict=True):
        if name == INTRINSIC:
            v = r.frame_relevance[name][: st.size]
            tt = (np.arange(v.size) + 0.5) / FRAME_RATE
        else:
            v, tt = r.frame_relevance[name], r.frame_times
        top = np.abs(v).max()
        ax.plot(tt, v / top if top > 0 else v, color="k", lw=0.8)
        ax.axhline(0, color="k", lw=0.3)
        ax.set_ylabel(name, fontsize=7, rotation=0, ha="right")
        ax.set_yticks([])
    for ax in axes:
        for a, z, s in spans:
            ax.axvspan(a, z, color=STATE_COLOURS[s - 1], alpha=0.15, lw=0)
    handles = [
        Patch(color=c, alpha=0.3, label=n) for c, n in zip(STATE_COLOURS, STATE_NAMES, strict=True)
    ]
    axes[0].legend(handles=handles, loc="upper right", fontsize=7, ncols=4)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(
        f"{r.recording}: relevance for 'abnormal' over the span the black box saw (each row "
        "scaled to its largest |value|; intrinsic: per-span contribution spread over its frames)",
        fontsize=9,
    )
    return save_figure(fig, path)


def _hit_rate_figure(summaries: dict[str, dict[str, dict[str, Any]]], path: Path) -> Path:
    """Hit rate per method on each segmentation with Wilson 95% intervals."""
    names = list(summaries)
    segs = list(next(iter(summaries.values())))
    fig = Figure(figsize=(max(6, 1.1 * len(names) + 2), 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(segs)
    x = np.arange(len(names))
    for k, seg in enumerate(segs):
        rate = np.array([summaries[m][seg].get("hit_rate", np.nan) for m in names])
        lo = np.array([summaries[m][seg].get("hit_rate_lo", np.nan) for m in names])
        hi = np.array([summaries[m][seg].get("hit_rate_hi", np.nan) for m in names])
        err = np.nan_to_num(np.vstack([rate - lo, hi - rate]))
        ax.bar(x + (k - (len(segs) - 1) / 2) * width, rate, width, yerr=err, capsize=3, label=seg)
    ax.axhline(0.25, color="0.5", ls=":", lw=1, label="chance (1 of 4 states)")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="hit rate (largest state = lesion state)")
    ax.set_title("Hit rate on the hit-rate set (Wilson 95% intervals)", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- sanity


def _reset_heads(net: SegmentationAwareNet) -> None:
    """The per-state evidence heads and the bias of a ``SegmentationAwareNet``,
    re-initialised as at construction (they are its own parameters, outside any child)."""
    if net.head_hidden > 0:
        nn.init.normal_(net.head_in, std=net.n_features**-0.5)
        net.head_in_bias.zero_()
        nn.init.normal_(net.state_weights, std=net.head_hidden**-0.5)
    else:
        nn.init.normal_(net.state_weights, std=0.1)
    net.bias.zero_()


def _reset_standardisation(net: SegmentationAwareNet) -> None:
    """The span standardisation's running statistics back to mean 0, variance 1."""
    net.standardize.running_mean.zero_()
    net.standardize.running_var.fill_(1.0)


def intrinsic_blocks(net: SegmentationAwareNet) -> list[RandomBlock]:
    """The learned parts of the segmentation-aware model, from the output down."""
    return [
        RandomBlock("state evidence heads + bias", _reset_heads),
        RandomBlock("span standardisation statistics", _reset_standardisation),
        *top_down(net.cnn, "cnn."),
    ]


def _span_values(per_beat: torch.Tensor | np.ndarray, mask) -> torch.Tensor:
    """(1, spans) values of the (beat, state) spans that exist."""
    values = torch.as_tensor(np.asarray(per_beat, dtype=np.float64))
    return values[torch.as_tensor(np.asarray(mask, dtype=bool))][None]


def _intrinsic_batch(model: SegmentationAwareNet, wave: np.ndarray, states) -> SanityBatch:
    st = torch.from_numpy(np.asarray(states, dtype=np.int64))[None]

    @torch.no_grad()
    def explain(inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        contributions, _, valid = model.decompose(inputs, st)
        return _span_values(contributions[0].double().numpy(), valid[0].numpy())

    @torch.no_grad()
    def predict(inputs: torch.Tensor) -> torch.Tensor:
        return (model(inputs, st)[:, 0] > 0).long()

    inputs = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
    return SanityBatch(inputs, torch.zeros(1, dtype=torch.long), explain, predict)


def _posthoc_batch(explainer, grouping, bb, ctx, wave, states) -> SanityBatch:
    """The black box hears the first ``clip_seconds`` of the (noisy) recording through its
    log-mel front end; its map is summed per (beat, state) over that span."""
    frontend, n = ctx["frontend"], int(ctx["dm_bb"].clip_samples)
    seen = torch.from_numpy(np.asarray(wave[:n], dtype=np.float32))[None]

    def features(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return frontend(torch.nn.functional.pad(inputs, (0, n - inputs.shape[-1])))

    def explain(inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = explainer.attribute(features(inputs), t, grouping=grouping)
        rel = e.maps["relevance_map"][0].double().numpy()
        times = e.maps.get("map_times_s", torch.as_tensor(ctx["frame_times"])).double().numpy()
        return _span_values(*relevance_by_beat_state(rel, times, states, FRAME_RATE, "sum"))

    @torch.no_grad()
    def predict(inputs: torch.Tensor) -> torch.Tensor:
        return (bb(features(inputs))[:, 0] > 0).long()

    return SanityBatch(seen, torch.zeros(1, dtype=torch.long), explain, predict)


def sanity_plan(
    model: SegmentationAwareNet,
    bb: nn.Module,
    recordings: Sequence[RecordingResult],
    ctx: dict[str, Any],
    methods: Sequence[str],
    radius: float,
    seed: int = 0,
) -> SanityPlan:
    """The robustness and randomisation checks of the intrinsic per-(beat, state)
    contributions and of every post-hoc method's per-span relevance, recording by recording
    (recordings differ in length), on the primary segmentation."""
    dm, states = ctx["dm"], ctx["segs"][ctx["primary_seg"]]
    waves = {r.index: np.asarray(dm.waves[r.index]) for r in recordings}
    batches = [_intrinsic_batch(model, waves[r.index], states[r.index]) for r in recordings]
    cases = [SanityCase(INTRINSIC, model, intrinsic_blocks(model), batches, intrinsic=True)]
    explainers = posthoc_explainers(
        methods, bb, ctx["frontend"], ctx["bands"], seed, METHOD_OPTIONS
    )
    for name, explainer, grouping in explainers:
        batches = [
            _posthoc_batch(explainer, grouping, bb, ctx, waves[r.index], states[r.index])
            for r in recordings
        ]
        cases.append(SanityCase(name, bb, top_down(bb), batches))
    return SanityPlan(
        cases,
        randomised=(
            f"`{INTRINSIC}`: its learned parts from the output down: the per-state evidence "
            "heads and the bias (re-initialised as at construction), the span "
            "standardisation's running statistics (back to mean 0, variance 1), then the "
            "shared per-frame CNN's convolutions from the top. Not randomised, because they "
            "are not learned with the network: the spectrogram front end (a fixed STFT "
            "measured from the recording's own floor), the explanation reference (each "
            "state's mean evidence over normal training recordings, kept as measured with "
            "the trained weights) and the Springer segmentation (its own model, fitted to the "
            "training recordings): the segmentation decides which (beat, state) spans exist "
            "and does not depend on the network's weights at all. Black box (post-hoc): its "
            "head, each conv block, the input batch norm."
        ),
        perturbation=(
            f"uniform noise of half-width {radius:g} x the recording's standard deviation on "
            "the waveform (sample values, the input both models share): the segmentation-aware "
            "model hears the whole noisy recording on the clean recording's segmentation, the "
            f"black box the log-mel features of its first {ctx['clip_seconds']:.1f} s. Noisy "
            "copies that flip a model's decision (the sign of its abnormal logit) are left out."
        ),
        units=(
            f"relevance per (beat, state) span of the {ctx['primary_seg']} segmentation: the "
            "intrinsic model's own per-span terms of its logit over the whole recording, each "
            "post-hoc map summed over frequency and per span over the span the black box saw."
        ),
    )


# ----------------------------------------------------------------------------- report


def _model_scores(heart: HeartRun, blackbox: LoadedRun) -> list[list[str]]:
    """MAcc / Se / Sp of both models on the test split, from their metrics.json."""
    hm = json.loads((heart.run_dir / "metrics.json").read_text())
    rows = [["model", "test MAcc", "Se", "Sp", "source (metrics.json)"]]
    for seg, by_split in hm.get("evaluation", {}).items():
        s = by_split.get("test", {})
        if s:
            rows.append(
                [
                    f"{INTRINSIC} ({seg} segmentation)",
                    _pct(s["macc"]),
                    _pct(s["sensitivity"]),
                    _pct(s["specificity"]),
                    f"evaluation.{seg}.test",
                ]
            )
    s = blackbox.metrics.get("test", {})
    if s:
        rows.append(
            [
                f"black box ({blackbox.config['model']['net']['_target_'].rsplit('.', 1)[-1]})",
                _pct(s.get("macc", float("nan"))),
                _pct(s.get("sensitivity", float("nan"))),
                _pct(s.get("specificity", float("nan"))),
                "test",
            ]
        )
    return rows


class HeartReport(FamilyReport):
    """The heart-sound family's part of the report (see the module docstring)."""

    title = "Segmentation-aware model versus post-hoc explanations"
    intrinsic = INTRINSIC
    metrics = SUMMARY_METRICS
    score = SUMMARY_METRICS[0]
    wandb_prefix = "heart_report"
    other_data = (
        Column("S1/S2 F1", ("segmenter", "test", "f1")),
        Column("MAcc (Springer)", ("evaluation", "springer", "test", "macc")),
        Column("MAcc (true segmentation)", ("evaluation", "ground_truth", "test", "macc")),
        Column("hit rate", ("explanations", "test", "hit_rate")),
        Column("detected abnormal", ("explanations", "test", "hit_n")),
    )
    blackbox_other_data = (
        Column("MAcc", ("test", "macc")),
        Column("sensitivity", ("test", "sensitivity")),
        Column("specificity", ("test", "specificity")),
        Column("AUROC", ("test", "auroc")),
    )

    def run(self, request: ReportRequest, out: Path, log: Callable[[str], None]) -> None:
        if request.blackbox is None:
            raise SystemExit(
                "evaluate.report: a heart_segmentation run is compared with its black box: give "
                "blackbox=<blackbox_heart run dir> (python -m train.fit config=blackbox_heart)"
            )
        self.start = time.perf_counter()
        methods = self.methods = tuple(request.methods)
        n_clips = self.n_clips = request.n_clips
        self.heart = load_heart_run(request.single_run())
        self.blackbox = load_blackbox_run(request.blackbox)
        check_same_data(
            self.heart.config, self.blackbox.config, self.heart.run_dir, self.blackbox.run_dir
        )
        self.results, self.ctx = explain_recordings(
            self.heart, self.blackbox, n_clips, methods, self.seed, log, request.data
        )
        self.segs = list(self.ctx["segs"])
        self.pseg = self.ctx["primary_seg"]
        self.primary = [r for r in self.results if r.primary]
        self.all_names = [INTRINSIC, INTRINSIC_SEEN, *methods]
        self.by_set = {
            "primary": {
                m: {s: method_summary(self.primary, m, s) for s in self.segs}
                for m in self.all_names
            },
            "all_abnormal": {
                m: {s: method_summary(self.results, m, s) for s in self.segs}
                for m in self.all_names
            },
        }
        self.reference = {
            "primary": {s: method_summary(self.primary, DURATION, s) for s in self.segs},
            "all_abnormal": {s: method_summary(self.results, DURATION, s) for s in self.segs},
        }
        self.springer_cost = mean_ci([r.seconds.get("springer_segmentation") for r in self.results])
        self.sample_rate = int(self.heart.sample_rate)

    def intro(self) -> list[Block]:
        blocks: list[Block] = []
        blocks.append(
            Text(
                f"Intrinsic: `{self.heart.run_dir}` (`{INTRINSIC}`, trained on the {self.pseg} "
                f"segmentation). Black box: `{self.blackbox.run_dir}` (log-mel CNN on the first "
                f"{self.ctx['clip_seconds']:.1f} s of each recording, no segmentation), same data "
                "and splits (checked). Post-hoc methods on the black box: "
                f"{', '.join(f'`{m}`' for m in self.methods)}; "
                f"{', '.join(sorted(GROUPED & set(self.methods))) or 'grouped methods'} over "
                f"{N_BANDS} bands ({', '.join(f'{e:g}' for e in BAND_EDGES_HZ)} Hz) x "
                f"{DIVISION_S * 1000:.0f} ms time divisions, the others on log-mel bins. Every map "
                "explains the 'abnormal' logit, is summed over frequency and then per (beat, "
                "state) over the frames the black box saw (as Dissanayake et al., IEEE JBHI 2020, "
                "summed SHAP and occlusion relevance per state); the intrinsic values are the "
                "model's own per-(beat, state) terms of its logit, over the whole recording. "
                f"`{INTRINSIC_SEEN}` is the same model run on only the span the black box saw."
            )
        )
        blocks.append(
            Text(
                f"Recordings: the test split holds {self.ctx['n_test']} recordings, "
                f"{self.ctx['n_candidates']} abnormal with a known lesion; {self.ctx['n_both']} of "
                f"them are detected by both models, and the first {len(self.primary)} "
                f"(n_clips={self.n_clips}) form the **hit-rate set**, the same recordings for "
                f"every method. All {len(self.results)} abnormal ones are explained and scored in "
                "a second table. Normal recordings carry no lesion to point at and are not "
                "explained."
            )
        )
        return blocks

    def summaries(self) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        top = _summary_rows(
            self.by_set["primary"], [INTRINSIC, INTRINSIC_SEEN, *self.methods], self.pseg
        )
        top[INTRINSIC]["seconds"] = top[INTRINSIC].get("seconds", 0.0) + self.springer_cost[0]
        caption = (
            f"Hit-rate set, {self.pseg} segmentation; seconds of `{INTRINSIC}` include its "
            "Springer segmentation. Details below."
        )
        return [(caption, top)]

    def _figures(self, out: Path) -> tuple[RecordingResult | None, list[tuple[str, Path]]]:
        """The figures and listenable explanations of one recording (in ``self.files``)."""
        # ---- figures and audio
        files: dict[str, Path] = {}
        fig_rec = self.primary[0] if self.primary else (self.results[0] if self.results else None)
        audio_items: list[tuple[str, Path]] = []
        if fig_rec is not None:
            dm = self.ctx["dm"]
            wave = np.asarray(dm.waves[fig_rec.index])
            states = self.ctx["segs"][self.pseg][fig_rec.index]
            files["state_bars"] = _state_bars_figure(
                fig_rec, self.methods, self.pseg, out / "state_bars.png"
            )
            files["time"] = _time_figure(
                fig_rec, wave, states, dm.sample_rate, self.methods, out / "relevance_time.png"
            )
            folder = out / "intrinsic"
            explain_recording(
                self.heart.model,
                wave,
                states,
                dm.sample_rate,
                folder,
                f"{fig_rec.recording} ({fig_rec.kind}, {self.pseg} segmentation)",
                target=0,
                negate=False,
                events=dm.events[fig_rec.index] or (),
                fraction=float(
                    self.heart.config.get("evaluation", {}).get("relevant_fraction", 0.5)
                ),
            )
            files["intrinsic_figure"] = folder / "figure.png"
            audio_items = [
                ("recording (whole)", folder / "input.wav"),
                (f"{INTRINSIC}: gated to its relevant state spans", folder / "explanation.wav"),
            ]
            # Post-hoc explanations made listenable the same way, over the span they saw.
            hop = dm.sample_rate // FRAME_RATE
            m = int(round(fig_rec.seen_s * FRAME_RATE))
            seen_wave, seen_states = wave[: m * hop], np.asarray(states)[:m]
            fraction = float(self.heart.config.get("evaluation", {}).get("relevant_fraction", 0.5))
            for name in self.methods:
                sc = fig_rec.scores[name][self.pseg]
                beats = np.asarray(sc.per_beat)
                mask = np.asarray(sc.beat_mask)
                n_b = int(beat_index(seen_states).max()) + 1 if m else 0
                rel = relevant_spans(beats[:n_b], mask[:n_b], fraction)
                path = out / "audio" / f"{name}.wav"
                write_audio(
                    path, gate(seen_wave, seen_states, rel, hop, dm.sample_rate), dm.sample_rate
                )
                audio_items.append((f"{name}: gated (first {fig_rec.seen_s:.1f} s)", path))
        hit_names = [INTRINSIC, *self.methods]
        if self.results:
            files["hit_rates"] = _hit_rate_figure(
                {m: self.by_set["primary"][m] for m in hit_names}
                if self.primary
                else {m: self.by_set["all_abnormal"][m] for m in hit_names},
                out / "hit_rates.png",
            )
        self.files = files
        return fig_rec, audio_items

    def _hit_table(self, key: str) -> list[list[str]]:
        """Hit rates per segmentation and lesion kind, lesion share and cost, per method,
        on the hit-rate set (``primary``) or every abnormal recording (``all_abnormal``)."""
        kinds = sorted({r.kind for r in (self.primary if key == "primary" else self.results)})
        header = ["method", *[f"hit rate, {s}" for s in self.segs]]
        header += [f"{k} ({self.pseg})" for k in kinds]
        header += [f"hit rate, per-frame mean ({self.pseg})", f"lesion share ({self.pseg})"]
        header += ["seconds / recording", "model evaluations"]
        rows = [header]
        for m in self.all_names:
            s = self.by_set[key][m]
            p = s[self.pseg]
            row = [f"`{m}`", *[_hit_cell(s[g]) for g in self.segs]]
            row += [
                f"{p[f'hit_rate_{k}']:.2f} ({p[f'n_{k}']})" if f"hit_rate_{k}" in p else "–"
                for k in kinds
            ]
            row.append(_pct(p.get("hit_rate_frame_mean", float("nan"))))
            row.append(
                fmt(p["lesion_share"], p["lesion_share_ci95"]) if p.get("lesion_share_n") else "–"
            )
            if "seconds" in p:
                secs = p["seconds"] + (self.springer_cost[0] if m == INTRINSIC else 0.0)
                row += [fmt(secs), f"{p['n_evals']:.0f}"]
            else:
                row += ["–", "–"]
            rows.append(row)
        ref = self.reference[key]
        rows.append(
            [
                f"*{DURATION}*",
                *[_hit_cell(ref[g]) for g in self.segs],
                *["–"] * (len(header) - 1 - len(self.segs)),
            ]
        )
        return rows

    def details(self, out: Path) -> list[Block]:
        fig_rec, audio_items = self._figures(out)
        files = self.files
        blocks: list[Block] = [
            Heading("Verdict"),
            Text(verdict(self.results, list(self.methods), self.pseg)),
        ]
        if self.pseg != "ground_truth" and "ground_truth" in self.segs:
            blocks.append(
                Text(
                    "On the ground-truth segmentation: "
                    + verdict(self.results, list(self.methods), "ground_truth")
                )
            )
        blocks += [Heading("Models (test split)"), Table(_model_scores(self.heart, self.blackbox))]

        caption = (
            "Hit rate: share of recordings whose largest per-state value (sum over the beats) "
            "lies on the generator's lesion state, with the Wilson 95% interval and hits/n; per "
            f"lesion kind on the {self.pseg} segmentation. Per-frame mean: post-hoc relevance "
            "averaged per frame in each span, then over beats (removes the advantage of long "
            "states). Lesion share: share of the positive (beat, state) relevance on the lesion "
            f"state, mean ± 95% half-width. Seconds include, for `{INTRINSIC}`, the Springer "
            f"segmentation of the recording ({fmt(self.springer_cost[0])} s on average); CPU, one "
            f"recording at a time. *{DURATION}*: each state's duration as its relevance (what "
            "'point at the longest state' scores)."
        )
        blocks += [
            Heading("Hit rates: recordings detected by both models"),
            Table(self._hit_table("primary"), caption),
        ]
        if "hit_rates" in files:
            blocks.append(Image(files["hit_rates"], "hit rates"))
        notes = [
            f"`{INTRINSIC}` hears the whole recording, the black box only its first "
            f"{self.ctx['clip_seconds']:.1f} s: compare with `{INTRINSIC_SEEN}` for the same span.",
            "Removed groups (occlusion, KernelShap) and the integration baselines are the front "
            "end of silence, so occluding a heart sound can *raise* the abnormal logit (silence "
            "where S1 should be is abnormal too).",
        ]
        if "kernel_shap" in self.methods:
            n_groups = N_BANDS * int(round(self.ctx["clip_seconds"] / DIVISION_S))
            notes.append(
                f"`kernel_shap` estimates {n_groups} group values from "
                f"{METHOD_OPTIONS['kernel_shap']['n_samples']} coalitions: a noisy estimate at "
                "this budget (raising it raises its cost proportionally)."
            )
        blocks += [Text(notes, bullets=True)]
        blocks += [
            Heading("Hit rates: all abnormal test recordings (detected or not)"),
            Table(self._hit_table("all_abnormal")),
        ]
        if fig_rec is not None:
            blocks += [
                Heading(f"One recording: `{fig_rec.recording}` ({fig_rec.kind})"),
                Image(files["state_bars"], "per-state relevance by method"),
                Image(files["time"], "relevance over time by method"),
                Text(
                    "The intrinsic explanation: the recording coloured by state, lesion shaded, "
                    "and the per-beat contributions to the logit."
                ),
                Image(files["intrinsic_figure"], "intrinsic explanation"),
                Text(
                    "Listen: the whole recording, the intrinsic explanation (the recording gated "
                    "to the state spans whose contribution is at least "
                    f"{self.heart.config.get('evaluation', {}).get('relevant_fraction', 0.5)} of "
                    "the largest state's), and each post-hoc explanation gated the same way from "
                    "its per-(beat, state) relevance."
                ),
                Audio(audio_items),
            ]
        return blocks

    def sanity_plan(self, request: ReportRequest) -> SanityPlan | None:
        """The first ``sanity_clips`` (at most ``n_clips``) recordings of the hit-rate set,
        then of the other abnormal recordings explained when the set is smaller."""
        ordered = self.primary + [r for r in self.results if not r.primary]
        chosen = ordered[: min(request.sanity_clips, request.n_clips)]
        if not chosen:
            return None
        return sanity_plan(
            self.heart.model,
            self.blackbox.model.eval(),
            chosen,
            self.ctx,
            self.methods,
            request.sanity_radius,
            self.seed,
        )

    def record(self) -> dict[str, Any]:
        raw = {
            "run": str(self.heart.run_dir),
            "blackbox": str(self.blackbox.run_dir),
            "n_clips": self.n_clips,
            "methods": list(self.methods),
            "segmentations": self.segs,
            "primary_segmentation": self.pseg,
            "grouping": {
                "band_edges_hz": list(BAND_EDGES_HZ),
                "division_s": DIVISION_S,
                "methods": sorted(GROUPED & set(self.methods)),
            },
            "seen_seconds": self.ctx["clip_seconds"],
            "test_scores_recomputed": self.ctx["test_scores"],
            "summary": self.by_set,
            "reference_state_duration": self.reference,
            "springer_segmentation_seconds": self.springer_cost[0],
            "verdict": verdict(self.results, list(self.methods), self.pseg),
            "seconds_total": time.perf_counter() - self.start,
            "recordings": [
                {
                    "index": r.index,
                    "recording": r.recording,
                    "path": r.path,
                    "kind": r.kind,
                    "lesion_state": STATE_NAMES[r.lesion_state - 1],
                    "duration_s": r.duration_s,
                    "seen_s": r.seen_s,
                    "p_abnormal": r.p_abnormal,
                    "detected": r.detected,
                    "hit_rate_set": r.primary,
                    "seconds": r.seconds,
                    "n_evals": r.n_evals,
                    "methods": {
                        m: {
                            seg: {
                                "per_state": dict(zip(STATE_NAMES, sc.per_state, strict=True)),
                                "per_beat": sc.per_beat,
                                "beat_mask": sc.beat_mask,
                                "hit": sc.hit,
                                "hit_frame_mean": sc.hit_mean,
                                "lesion_share": sc.lesion_share,
                            }
                            for seg, sc in by_seg.items()
                        }
                        for m, by_seg in r.scores.items()
                    },
                }
                for r in self.results
            ],
        }
        return raw


def report(request: ReportRequest) -> dict[str, Path]:
    """The ``evaluate.report`` hook: this family's run (``run=``) against ``blackbox=``."""
    return write_report(HeartReport(), request)
