"""Score and export NMF-interpreter explanations on a dataset split.

Faithfulness follows L-MAC's definitions (Paissan et al., ICML 2024): the classifier
sees the input *masked in* (only the relevant components' share of each time-frequency
bin, mask M of Parekh et al. 2022) and *masked out* (1 - M), both mapped back to its
log-mel input through the shared STFT, so no inverse STFT round trip is involved.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluate.masking import masked_probs, noise_floor
from evaluate.metrics import (
    faithfulness_ff,
    hoyer_sparsity,
    lmac_metrics,
    mask_iou,
    reconstruction_error,
    relevance_mass_inside,
    topk_agreement,
)
from evaluate.metrics.statistics import summarise
from evaluate.reporting.figures import plot_component_explanation
from interp_models.audio.io import write_audio
from interp_models.data.masks import load_event_mask
from interp_models.explanation import Explanation, spectrogram_grid, write_explanation_json
from interp_models.nmf.interpreter import NMFInterpreter

log = logging.getLogger(__name__)


def random_components(relevant: torch.Tensor, is_noise: torch.Tensor, gen: torch.Generator):
    """As many random non-noise components per clip as ``relevant`` selects (FF control)."""
    out = torch.zeros_like(relevant)
    candidates = torch.nonzero(~is_noise.cpu()).flatten()
    for i, n in enumerate(relevant.sum(dim=1).tolist()):
        pick = candidates[torch.randperm(len(candidates), generator=gen)[: int(n)]]
        out[i, pick.to(out.device)] = True
    return out


LOCALIZATION_METRICS = (
    "mass_inside",
    "mass_inside_box",
    "input_mass_inside",
    "input_mass_inside_box",
    "mask_mass_inside",
    "energy_inside",
    "iou",
)
"""Scored only where every clip of a split has a ground-truth event mask."""


def clips_without_mask(dm, split: str) -> int:
    """Clips of ``split`` with no ground-truth event mask (``masks/<stem>.npz``)."""
    return sum(dm.records[int(j)].mask_path is None for j in dm.split_indices[split])


def localization_status(dm, splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """What ``metrics.json`` says about localization: scored or not, and why.

    Real ESC-50 / AudioMNIST have no event masks, so their localization metrics are left
    out rather than reported as numbers no ground truth backs.
    """
    missing = {split: clips_without_mask(dm, split) for split in splits}
    return {
        "scored": {split: n == 0 for split, n in missing.items()},
        "metrics": list(LOCALIZATION_METRICS),
        "ground_truth": "masks/<stem>.npz (the built-in data has them; real datasets do not)",
        "clips_without_mask": missing,
    }


def event_truths(dm, rows: np.ndarray, freqs: np.ndarray, times: np.ndarray):
    """(event mask, event box) of each clip on the (freqs, times) grid, or None."""
    paths = [dm.records[int(j)].mask_path for j in rows]
    if any(p is None for p in paths):
        return None
    masks = [load_event_mask(p) for p in paths]
    return tuple(
        torch.from_numpy(np.stack([m.on_grid(freqs, times, which=w) for m in masks]))
        for w in ("mask", "box")
    )


def _split_batches(dm, split: str, batch_size: int, device):
    """``(x, spec, y, truth)`` per batch of ``split``; ``truth`` is (event mask, event box)
    on the STFT grid, or None for the whole split when any clip lacks a mask: a mean over
    the masked clips only would describe another subset."""
    stft = dm.frontends["spec"]
    rows_all = dm.split_indices[split]
    n_frames = dm.features["spec"].shape[-1]
    freqs, times = stft.frequencies().cpu().numpy(), stft.frame_times(n_frames).cpu().numpy()
    missing = clips_without_mask(dm, split)
    if missing:
        log.info(
            "%s: %d of %d clips have no ground-truth event mask; localization not scored",
            split,
            missing,
            len(rows_all),
        )
    for start in range(0, len(rows_all), batch_size):
        rows = rows_all[start : start + batch_size]
        truth = None if missing else event_truths(dm, rows, freqs, times)
        yield (
            dm.features["x"][rows].to(device),
            dm.features["spec"][rows].to(device),
            dm.targets[rows].to(device),
            None if truth is None else tuple(t.to(device) for t in truth),
        )


def mask_scores(
    classifier,
    logmel,
    spec: torch.Tensor,
    mask: torch.Tensor,
    p_full: torch.Tensor,
    truth,
    baseline: str = "silence",
) -> dict[str, torch.Tensor]:
    """Per-clip scores of a mask explanation ``mask`` (B, F, T) on ``log1p|X|`` (``spec``).

    L-MAC's AI / AD / AG / Fid-In on the masked-in input and FF on the masked-out one
    (``evaluate.masking``; removed bins are silence, as in L-MAC's definitions whatever
    the explanation's ``baseline``), and, given ``truth`` (event mask, event box),
    localization of what the mask keeps, ``M * log1p|X|`` (with ``baseline="floor"``, above
    the clip's noise floor: the explanation's relevance map) in ``mass_inside`` and
    ``mass_inside_box``, next to the input's own share of the same
    (``input_mass_inside*``); ``mask_mass_inside`` scores the mask alone,
    ``energy_inside`` the masked-in linear energy, ``iou`` the mask >= 0.5.
    """
    values = lmac_metrics(
        p_full,
        masked_probs(classifier, logmel, spec, mask),
        masked_probs(classifier, logmel, spec, 1 - mask),
    )
    values["area"] = mask.mean(dim=(1, 2))
    if truth is not None:
        content = spec if baseline == "silence" else (spec - noise_floor(spec)).clamp(min=0)
        kept = mask * content  # the explanation's relevance map (figure panel b)
        for name, region in zip(("", "_box"), truth, strict=True):
            values[f"mass_inside{name}"] = relevance_mass_inside(kept, region)
            values[f"input_mass_inside{name}"] = relevance_mass_inside(content, region)
        values["mask_mass_inside"] = relevance_mass_inside(mask, truth[0])
        masked_in = torch.expm1(mask * spec).square()
        values["energy_inside"] = relevance_mass_inside(masked_in, truth[0])
        values["iou"] = mask_iou(mask, truth[0], threshold=0.5)
    return values


@torch.no_grad()
def evaluate_split(
    model: NMFInterpreter,
    dm,
    split: str,
    threshold: float = 0.2,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, float]:
    """Explanation metrics of ``split``: fidelity, L-MAC faithfulness, localization, NMF fit.

    Faithfulness and localization are ``mask_scores`` of the explanation's mask; the
    control ``FF_random`` removes as many random components as the explanation keeps. A
    split with any clip lacking a ground-truth mask (real datasets have none) gets no
    localization metric.
    """
    device = model.W.device
    logmel = dm.frontends["x"].to(device)
    gen = torch.Generator().manual_seed(seed)
    per_clip: dict[str, list[float]] = defaultdict(list)
    for x, spec, y, truth in _split_batches(dm, split, batch_size, device):
        e = model.explain(x, threshold=threshold)
        H, mask, relevant = e.maps["H"], e.maps["mask"], e.maps["relevant"]
        clf_logits, logits = e.maps["clf_logits"], e.maps["logits"]
        p_full = torch.softmax(clf_logits, dim=1)
        values = mask_scores(model.classifier, logmel, spec, mask, p_full, truth, model.baseline)
        control = model.component_mask(H, random_components(relevant, model.is_noise, gen))
        p_control = masked_probs(model.classifier, logmel, spec, 1 - control)
        values["FF_random"] = faithfulness_ff(p_full, p_control)
        values["fidelity_top1"] = topk_agreement(logits, clf_logits, 1)
        values["fidelity_top3"] = topk_agreement(logits, clf_logits, min(3, logits.shape[1]))
        values["clf_acc"] = (clf_logits.argmax(1) == y).float()
        values["interp_acc"] = (logits.argmax(1) == y).float()
        recon = reconstruction_error(model.reconstruct(H), spec)
        values["recon_mse"], values["recon_relative"] = recon["mse"], recon["relative"]
        values["h_hoyer"] = hoyer_sparsity(H)
        values["h_l1"] = H.abs().mean(dim=(1, 2))
        values["n_relevant"] = relevant.sum(dim=1).float()
        for key, v in values.items():
            per_clip[key].extend(v.float().cpu().tolist())
    return summarise(per_clip)


@torch.no_grad()
def evaluate_masker_split(masker, dm, split: str, batch_size: int = 32) -> dict[str, float]:
    """``mask_scores`` of a learned masker (``evaluate.posthoc.lmac.LMAC``) on ``split``,
    explaining the classifier's prediction, as ``evaluate_split`` scores the interpreter."""
    device = next(masker.parameters()).device
    logmel = dm.frontends["x"].to(device)
    per_clip: dict[str, list[float]] = defaultdict(list)
    for x, spec, y, truth in _split_batches(dm, split, batch_size, device):
        mask, logits = masker(x)
        p_full = torch.softmax(logits, dim=1)
        values = mask_scores(masker.classifier, logmel, spec, mask, p_full, truth, masker.baseline)
        values["clf_acc"] = (logits.argmax(1) == y).float()
        for key, v in values.items():
            per_clip[key].extend(v.float().cpu().tolist())
    return summarise(per_clip)


@torch.no_grad()
def explain_clip(
    model: NMFInterpreter,
    wave: torch.Tensor,
    logmel,
    stft,
    out_dir: Path,
    class_names,
    threshold: float = 0.2,
    target: int | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Explain one waveform and write ``input.wav``, ``explanation.wav``, ``figure.png``,
    ``explanation.json`` to ``out_dir``; returns the JSON record. The listenable
    explanation is the inverse STFT of the masked ``log1p|X|`` with the input's phase
    (Parekh et al. 2022).

    The record is ``interp_models.explanation``'s schema, with the relevance map
    ``mask * log1p|X|`` on the STFT grid; its ``meta`` holds ``meta`` plus
    ``class_name`` (explained), ``classifier_prediction``, ``relevant_components``
    (by decreasing relevance) and ``files``.
    """
    device = model.W.device
    wave = wave.reshape(1, -1).float().to(device)
    X = stft.to(device).stft(wave)
    spec = torch.log1p(X.abs())
    x = logmel.to(device)(wave)
    tgt = None if target is None else torch.tensor([target], device=device)
    grid = spectrogram_grid(stft, spec.shape[-1])
    e: Explanation = model.explain(x, target=tgt, threshold=threshold, spec=spec, grid=grid)
    mask = e.maps["mask"]
    phase = torch.polar(torch.ones_like(X.abs()), X.angle())
    listen = stft.invert(mask * spec, phase, length=wave.shape[-1])
    out_dir.mkdir(parents=True, exist_ok=True)
    sr = stft.sample_rate
    write_audio(out_dir / "input.wav", wave[0].cpu().numpy(), sr)
    write_audio(out_dir / "explanation.wav", listen[0].cpu().numpy(), sr)
    rel = e.attribution[0].cpu().numpy()
    relevant = torch.nonzero(e.maps["relevant"][0]).flatten().cpu().tolist()
    relevant.sort(key=lambda k: -rel[k])
    explained = int(e.target[0])
    pred = int(e.maps["clf_logits"][0].argmax())
    plot_component_explanation(
        spec[0].cpu().numpy(),
        mask[0].cpu().numpy(),
        rel,
        model.W.cpu().numpy(),
        stft.frequencies().cpu().numpy(),
        stft.frame_times(spec.shape[-1]).cpu().numpy(),
        relevant,
        title=f"{(meta or {}).get('input_file', 'clip')}: why '{class_names[explained]}'",
        path=out_dir / "figure.png",
        class_names=[
            f"classifier: {class_names[pred]}",
            f"interpreter: {class_names[int(e.maps['logits'][0].argmax())]}",
        ],
    )
    path = write_explanation_json(
        out_dir / "explanation.json",
        e,
        0,
        **(meta or {}),
        class_name=class_names[explained],
        classifier_prediction=class_names[pred],
        relevant_components=relevant,
        files={
            k: f"{k}.{ext}"
            for k, ext in [("input", "wav"), ("explanation", "wav"), ("figure", "png")]
        },
    )
    return json.loads(path.read_text())


def export_examples(
    model: NMFInterpreter, dm, split: str, out_dir: Path, n: int = 10, threshold: float = 0.2
) -> list[dict[str, Any]]:
    """Explain the first clip of each class in ``split`` (up to ``n`` clips)."""
    seen: set[int] = set()
    exported = []
    for j in dm.split_indices[split]:
        rec = dm.records[int(j)]
        if rec.target in seen or len(exported) >= n:
            continue
        seen.add(rec.target)
        stem = Path(rec.path).stem
        record = explain_clip(
            model,
            torch.from_numpy(np.asarray(dm.waves[int(j)])),
            dm.frontends["x"],
            dm.frontends["spec"],
            out_dir / stem,
            dm.class_names,
            threshold,
            meta={"input_file": str(rec.path), "label": dm.class_names[rec.target]},
        )
        exported.append(
            {
                "clip": stem,
                "dir": str(out_dir / stem),
                "explained": record["meta"]["class_name"],
                "relevant_components": record["meta"]["relevant_components"],
            }
        )
    return exported
