"""Scoring and exporting explanations of the segmentation-aware heart-sound model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluate.heart.figures import plot_state_explanation
from evaluate.heart.metrics import binary_scores, state_hit_rate
from interp_models.audio.io import write_audio
from interp_models.explanation import write_explanation_json
from interp_models.heart.listen import gate, relevant_spans
from interp_models.heart.model import SegmentationAwareNet
from interp_models.heart.states import (
    FRAME_RATE,
    STATE_NAMES,
    AbnormalEvent,
    segments_from_states,
)


@torch.no_grad()
def normal_reference(
    model: SegmentationAwareNet, dm, segmentation: str, split: str = "train"
) -> torch.Tensor:
    """(4,) mean state evidence over the normal recordings of ``split`` (whole recordings):
    the explanation baseline to pass to ``model.set_reference``."""
    model.eval()
    rows = []
    for batch in dm.loader(split, segmentation):
        keep = batch["y"] == 0
        if keep.any():
            rows.append(
                model.state_evidence(
                    batch["wave"][keep], batch["states"][keep], batch["length"][keep]
                )
            )
    if not rows:
        raise ValueError(f"no normal recording in the {split} split to take a reference from")
    return torch.nanmean(torch.cat(rows), dim=0)


@torch.no_grad()
def predict(model: SegmentationAwareNet, dm, split: str, segmentation: str) -> dict[str, Any]:
    """Logits and abnormal-class explanations of every recording of ``split``.

    Returns arrays ``index``, ``target``, ``logit``, ``attribution`` (N, 4) (evidence for
    "abnormal" per state) and lists ``beats`` / ``beat_mask`` of per-beat (n_beats, 4).
    """
    model.eval()
    out: dict[str, list] = {k: [] for k in ("index", "target", "logit", "attribution")}
    out["beats"], out["beat_mask"] = [], []
    for batch in dm.loader(split, segmentation):
        exp = model.explain(
            batch["wave"], states=batch["states"], lengths=batch["length"], target=0, negate=False
        )
        out["index"].append(batch["index"].numpy())
        out["target"].append(batch["y"].numpy())
        out["logit"].append(exp.maps["logit"].numpy())
        out["attribution"].append(exp.attribution.numpy())
        for k in range(len(batch["index"])):
            rows = exp.maps["beat_mask"][k].any(-1).nonzero()  # drop the batch's padding beats
            n = int(rows.max()) + 1 if len(rows) else 0
            out["beats"].append(exp.maps["beats"][k, :n].numpy())
            out["beat_mask"].append(exp.maps["beat_mask"][k, :n].numpy())
    return {
        **{k: np.concatenate(out[k]) for k in ("index", "target", "logit", "attribution")},
        "beats": out["beats"],
        "beat_mask": out["beat_mask"],
    }


def _kind(dm, j: int) -> str:
    ev = dm.events[j]
    if ev:
        return ev[0].kind
    return "abnormal" if dm.records[j].target == 1 else "normal"


def evaluate_split(
    model: SegmentationAwareNet, dm, split: str, segmentation: str
) -> dict[str, float]:
    """PhysioNet 2016 scores and explanation hit rates of ``split`` on ``segmentation``.

    ``hit_rate`` is measured on the correctly detected abnormal recordings whose lesion
    state is known (built-in data): the share whose largest per-state contribution lies
    on the lesion's state; ``hit_rate_<kind>`` per lesion kind.
    """
    p = predict(model, dm, split, segmentation)
    pred = (p["logit"] > 0).astype(int)
    out: dict[str, float] = binary_scores(p["target"], pred)
    lesion = dm.abnormal_states[p["index"]]
    detected = (p["target"] == 1) & (pred == 1) & (lesion > 0)
    if detected.any():
        hits = state_hit_rate(p["attribution"][detected], lesion[detected])
        out["hit_rate"], out["hit_n"] = hits["hit_rate"], hits["n"]
        kinds = np.array([_kind(dm, int(j)) for j in p["index"]])
        top = np.argmax(p["attribution"], axis=1) + 1
        for kind in sorted(set(kinds[detected].tolist())):
            sel = detected & (kinds == kind)
            out[f"hit_rate_{kind}"] = float((top[sel] == lesion[sel]).mean())
    return out


@torch.no_grad()
def explain_recording(
    model: SegmentationAwareNet,
    wave: np.ndarray,
    states: np.ndarray,
    sample_rate: int,
    folder: Path,
    name: str,
    target: int | None = None,
    negate: bool | None = None,
    events: Sequence[AbnormalEvent] = (),
    fraction: float = 0.5,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Explain one recording and write ``figure.png``, ``input.wav``, ``explanation.wav``
    (the recording gated to its relevant state spans) and ``explanation.json`` to
    ``folder``; returns the JSON record.

    ``target`` and ``negate`` as ``SegmentationAwareNet.explain`` (default: the predicted
    class). The record is ``interp_models.explanation``'s schema; its ``meta`` holds
    ``meta`` plus ``explained`` ("abnormal" or "normal"), ``logit``,
    ``probability_abnormal``, ``bias``, ``top_state``, ``beats`` (n_beats, 4; 0 where no
    span), ``relevant_spans`` and ``segments`` ([start_s, end_s, state] rows).
    """
    model.eval()
    exp = model.explain(
        torch.from_numpy(np.asarray(wave, dtype=np.float32))[None],
        states=torch.from_numpy(np.asarray(states, dtype=np.int64))[None],
        target=target,
        negate=negate,
    )
    beats, mask = exp.maps["beats"][0].numpy(), exp.maps["beat_mask"][0].numpy()
    explained = int(not exp.maps["negated"][0])  # 1: "abnormal"
    prob = float(exp.maps["probability"][0])
    title = (
        f"{name}: P(abnormal) = {prob:.2f}, explaining '{'abnormal' if explained else 'normal'}'"
    )
    folder = Path(folder)
    plot_state_explanation(
        wave,
        sample_rate,
        states,
        FRAME_RATE,
        beats,
        mask,
        title,
        folder / "figure.png",
        events=events,
    )
    relevant = relevant_spans(beats, mask, fraction)
    hop = sample_rate // FRAME_RATE
    write_audio(folder / "input.wav", wave, sample_rate)
    write_audio(
        folder / "explanation.wav", gate(wave, states, relevant, hop, sample_rate), sample_rate
    )
    seg = segments_from_states(states, FRAME_RATE)
    path = write_explanation_json(
        folder / "explanation.json",
        exp,
        0,
        **(meta or {}),
        explained="abnormal" if explained else "normal",
        logit=float(exp.maps["logit"][0]),
        probability_abnormal=prob,
        bias=float(exp.maps["bias"][0]),
        top_state=STATE_NAMES[int(np.argmax(exp.attribution[0]))],
        beats=np.where(mask, beats, 0.0).tolist(),
        relevant_spans=relevant.tolist(),
        segments=[
            [float(a), float(z), int(s)]
            for a, z, s in zip(seg.start_s, seg.end_s, seg.state, strict=True)
        ],
    )
    return json.loads(path.read_text())


def export_examples(
    model: SegmentationAwareNet,
    dm,
    split: str,
    segmentation: str,
    out_dir: Path,
    n: int = 6,
    fraction: float = 0.5,
) -> list[dict[str, Any]]:
    """Write figure, gated wav, input wav and JSON for ``n`` recordings of ``split``.

    One recording per lesion kind first (the lowest index of each), then normal ones;
    chosen by label only, so failures are shown as they come.
    """
    idx = dm.split_indices[split]
    by_kind: dict[str, list[int]] = {}
    for j in idx:
        by_kind.setdefault(_kind(dm, int(j)), []).append(int(j))
    chosen: list[int] = []
    for kind in sorted(k for k in by_kind if k != "normal"):
        chosen.append(by_kind[kind][0])
    chosen += [j for j in by_kind.get("normal", []) if j not in chosen]
    records: list[dict[str, Any]] = []
    for j in sorted(chosen[:n]):
        rec, kind = dm.records[j], _kind(dm, j)
        folder = Path(out_dir) / f"{rec.set_name}-{rec.name}"
        label = "abnormal" if rec.target else "normal"
        info = explain_recording(
            model,
            dm.waves[j],
            dm.segmentations[segmentation][j],
            dm.sample_rate,
            folder,
            f"{rec.name} ({kind}, label {label}, {segmentation} segmentation)",
            events=dm.events[j] or (),
            fraction=fraction,
            meta={
                "recording": str(rec.path),
                "label": int(rec.label),
                "kind": kind,
                "segmentation": segmentation,
            },
        )
        records.append(
            {
                "recording": f"{rec.set_name}/{rec.name}",
                "kind": kind,
                "probability_abnormal": round(info["meta"]["probability_abnormal"], 4),
                "top_state": info["meta"]["top_state"],
                "dir": str(folder),
            }
        )
    return records
