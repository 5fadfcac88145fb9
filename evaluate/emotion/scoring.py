"""Scoring and explaining a trained emotion model on ``MusicClips`` (or its DataModule).

Everything a run of the family reports after training: regression metrics per split,
agreement of the learned mapping with the generator's, the model's explanations (effects,
relative effects, figures), listenable contrasts re-synthesised by the generator, and the
chance levels the post-hoc comparison will be measured against.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluate.emotion.evidence import chance_levels, true_effects, true_mapping_z
from evaluate.emotion.figures import plot_effect_bars, plot_mapping, plot_relative_effects
from evaluate.emotion.metrics import mapping_agreement, regression_report, top_quality_agreement
from evaluate.emotion.selectivity import (
    contrast_changes,
    contrast_summary,
    factor_auc,
    factor_summary,
    quality_predictor,
)
from interp_models.audio.io import write_audio
from interp_models.data.midlevel import QUALITIES
from interp_models.data.synth_music import SynthMusicConfig, synthesize_clip
from interp_models.data.synth_probe import ProbeConfig, probe_contrasts, probe_set
from interp_models.emotion.models import MidLevelEmotionModel
from interp_models.explanation import Explanation, write_explanation_json

log = logging.getLogger(__name__)


@torch.no_grad()
def predict(model: nn.Module, dm, split: str, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Standardised predictions and targets of ``split``: ``rows``, ``q_pred`` (None for a
    model without a quality layer), ``e_pred``, ``q``, ``e``."""
    model.eval()
    rows = dm.split_indices[split]
    q_pred, e_pred = [], []
    for start in range(0, len(rows), batch_size):
        x = dm.x[rows[start : start + batch_size]]
        if isinstance(model, MidLevelEmotionModel):
            q, e = model.forward_both(x)
            q_pred.append(q)
        else:
            e = model(x)
        e_pred.append(e)
    return {
        "rows": rows,
        "q_pred": torch.cat(q_pred).numpy() if q_pred else None,
        "e_pred": torch.cat(e_pred).numpy(),
        "q": dm.q[rows].numpy(),
        "e": dm.e[rows].numpy(),
    }


def _ratings(z: np.ndarray, dm, kind: str) -> np.ndarray:
    return z * dm.stats[f"{kind}_std"] + dm.stats[f"{kind}_mean"]


def split_metrics(pred: dict[str, np.ndarray], dm) -> tuple[dict[str, float], dict[str, float]]:
    """(means, per-output) Pearson r and RMSE in rating units for emotions and qualities."""
    means, per = {}, {}
    if np.isfinite(pred["e"]).any():
        m, p = regression_report(
            _ratings(pred["e_pred"], dm, "emotion"),
            _ratings(pred["e"], dm, "emotion"),
            dm.emotion_names,
            "emotion",
        )
        means |= m
        per |= {f"emotion/{k}": v for k, v in p.items()}
    if pred["q_pred"] is not None and np.isfinite(pred["q"]).any():
        m, p = regression_report(
            _ratings(pred["q_pred"], dm, "quality"),
            _ratings(pred["q"], dm, "quality"),
            dm.quality_names,
            "quality",
        )
        means |= m
        per |= {f"quality/{k}": v for k, v in p.items()}
    return means, per


def mapping_report(model: MidLevelEmotionModel, dm, near_zero: float) -> dict[str, Any]:
    """Learned mapping, and its agreement with the true one on built-in data."""
    learned = model.mapping.detach().cpu().numpy().astype(float)
    out: dict[str, Any] = {"learned": np.round(learned, 4).tolist()}
    true = true_mapping_z(dm)
    if true is None:
        out["agreement"] = "no true mapping (real data)"
        return out
    out["true"] = np.round(true, 4).tolist()
    out["agreement"] = mapping_agreement(learned, true, near_zero=near_zero)
    out["near_zero"] = f"|true weight| < {near_zero} * max|true weight| (not sign-scored)"
    return out


@torch.no_grad()
def explain_split(model: MidLevelEmotionModel, dm, split: str, batch_size: int = 64):
    """``model.explain`` over a split: effects (N, 8, 7), relative effects, default targets."""
    rows = dm.split_indices[split]
    eff, rel, tgt = [], [], []
    model.eval()
    for start in range(0, len(rows), batch_size):
        ex = model.explain(dm.x[rows[start : start + batch_size]])
        eff.append(ex.maps["effects"])
        rel.append(ex.maps["relative_effects"])
        tgt.append(ex.target)
    return rows, torch.cat(eff).numpy(), torch.cat(rel).numpy(), torch.cat(tgt).numpy()


def _features(dm, wave: np.ndarray) -> torch.Tensor:
    n = dm.num_samples
    wave = np.pad(wave[:n], (0, max(0, n - len(wave)))).astype(np.float32)
    return dm.frontend(torch.from_numpy(wave))


@torch.no_grad()
def contrasts(
    model: MidLevelEmotionModel,
    dm,
    rows: np.ndarray,
    effects: np.ndarray,
    targets: np.ndarray,
    out_dir: Path,
    n_write: int,
) -> dict[str, Any]:
    """Re-synthesise clips with their most effective quality set low (0) and high (1).

    For each clip the quality with the largest |effect| on its explained emotion is set to
    0 and to 1 by the generator, everything else unchanged; the model's prediction on the
    two versions shows whether that quality really moves the emotion the way the
    explanation says (``direction_agreement``: the sign of the change equals the sign of
    the weight) and whether the model hears the change (``quality_moves``). The first
    ``n_write`` clips are written as ``<song_id>/{original,<quality>_low,_high}.wav`` with
    an effect figure and ``explanation.json`` (the clip's effects on the emotion; the
    record above under ``meta``).
    """
    config = SynthMusicConfig(**dm.generator["config"])
    weight = model.mapping.detach().cpu().numpy()
    records, agree, moves = [], [], []
    for k, row in enumerate(rows):
        song_id = dm.records[int(row)].song_id
        index, t = int(song_id) - 1, int(targets[k])
        j = int(np.abs(effects[k, t]).argmax())
        quality, emotion = dm.quality_names[j], dm.emotion_names[t]
        waves = {
            level: synthesize_clip(config, index, {quality: value}).mix
            for level, value in (("low", 0.0), ("high", 1.0))
        }
        x = torch.cat([_features(dm, w) for w in waves.values()])
        q, e = model.forward_both(x)
        e_rating = _ratings(e.numpy(), dm, "emotion")[:, t]
        change = float(e_rating[1] - e_rating[0])
        agree.append(np.sign(change) == np.sign(weight[t, j]))
        moves.append(bool(q[1, j] > q[0, j]))
        record = {
            "song_id": song_id,
            "emotion": emotion,
            "quality": quality,
            "effect_z": float(effects[k, t, j]),
            "weight_z": float(weight[t, j]),
            "prediction_low": float(e_rating[0]),
            "prediction_high": float(e_rating[1]),
            "direction_agrees": bool(agree[-1]),
            "quality_low_z": float(q[0, j]),
            "quality_high_z": float(q[1, j]),
        }
        if k < n_write:
            folder = out_dir / song_id
            write_audio(folder / "original.wav", dm.waves[int(row)], dm.sample_rate)
            for level, wave in waves.items():
                write_audio(folder / f"{quality}_{level}.wav", wave, dm.sample_rate)
            plot_effect_bars(
                effects[k, t],
                dm.quality_names,
                f"clip {song_id}: effects on {emotion}",
                folder / "effects.png",
                prediction=float(effects[k, t].sum() + model.emotion_head.bias[t]),
            )
            record["files"] = sorted(p.name for p in folder.iterdir())
            # the model's explanation of this clip (from explain_split), the contrast in meta
            explanation = Explanation(
                attribution=torch.as_tensor(effects[k : k + 1, t]),
                grouping="qualities",
                target=torch.tensor([t]),
                method="midlevel_linear",
                labels=list(dm.quality_names),
            )
            write_explanation_json(folder / "explanation.json", explanation, 0, **record)
        records.append(record)
    return {
        "n_clips": len(records),
        "direction_agreement": float(np.mean(agree)) if agree else float("nan"),
        "quality_moves": float(np.mean(moves)) if moves else float("nan"),
        "examples": [r for r in records[:n_write]],
    }


#: ``emotion.evaluation.selectivity`` of runs from before it existed (``train.score`` on them)
SELECTIVITY_DEFAULTS = {"n_clips": 40, "probe_clips": 96, "probe_contrast_clips": 24}


def selectivity(model: MidLevelEmotionModel, dm, settings: dict[str, Any]) -> dict[str, Any]:
    """How selective the quality units are (``evaluate.emotion.selectivity``).

    ``settings`` (``emotion.evaluation.selectivity``): ``n_clips`` test clips of ``dm``
    re-rendered by its own generator (built-in data only) -> ``contrasts``, and as many
    validation clips -> ``val_contrasts`` (what a regime is chosen on);
    ``probe_clips`` clips of the independent probe renderer
    (``interp_models.data.synth_probe``) -> ``probe_factors`` (factor AUC table), and the
    first ``probe_contrast_clips`` of them re-rendered per factor -> ``probe_contrasts``.
    """
    settings = {**SELECTIVITY_DEFAULTS, **settings}
    predict = quality_predictor(model, dm.frontend, dm.num_samples)
    names = dm.quality_names
    out: dict[str, Any] = {}
    n = int(settings.get("n_clips", 0))
    if dm.generator and n > 0:
        config = SynthMusicConfig(**dm.generator["config"])
        for key, split in (("contrasts", "test"), ("val_contrasts", "val")):
            rows = dm.split_indices.get(split, np.array([], dtype=int))[:n]
            if len(rows) == 0:  # e.g. data scored as a whole: no validation split
                continue
            indices = [int(dm.records[int(r)].song_id) - 1 for r in rows]
            changes = contrast_changes(
                predict, lambda i, o: synthesize_clip(config, i, o).mix, indices, names
            )
            out[key] = contrast_summary(changes, names)
            out[key]["clips"] = (
                f"the first {split} clips of this data, re-rendered by its generator"
            )
    n_probe = int(settings.get("probe_clips", 0))
    if n_probe > 0:
        config = ProbeConfig(
            num_clips=n_probe,
            sample_rate=dm.sample_rate,
            clip_seconds=dm.num_samples / dm.sample_rate,
        )
        waves, factors = probe_set(config, dm.cache_dir)
        pred = np.concatenate([predict(waves[i : i + 32]) for i in range(0, len(waves), 32)])
        out["probe_factors"] = factor_summary(factor_auc(pred, factors), names, names)
        out["probe_factors"]["n_clips"] = n_probe
        k = min(int(settings.get("probe_contrast_clips", 0)), n_probe)
        if k > 0:
            rendered = probe_contrasts(config, k, dm.cache_dir)  # (k, 7, 2, samples), cached

            def render(i: int, overrides: dict[str, float]) -> np.ndarray:
                ((quality, level),) = overrides.items()
                return rendered[i, QUALITIES.index(quality), int(level)]

            changes = contrast_changes(predict, render, range(k), names)
            out["probe_contrasts"] = contrast_summary(changes, names)
            out["probe_contrasts"]["clips"] = "probe clips re-rendered with one factor 0 and 1"
    return out


def evaluate_model(
    model: nn.Module,
    dm,
    run_dir: Path,
    settings: dict[str, Any],
    splits: tuple[str, ...] = ("val", "test"),
) -> dict[str, Any]:
    """Everything after training (see the module docstring); ``settings`` is the
    ``emotion.evaluation`` config: ``near_zero``, ``n_examples``, ``n_contrasts``,
    ``selectivity``. ``splits`` are scored (the explanations always on ``test``);
    figures go under ``run_dir/explanations``."""
    out: dict[str, Any] = {"per_output": {}}
    for split in splits:
        means, per = split_metrics(predict(model, dm, split), dm)
        out[split], out["per_output"][split] = means, per
    if not isinstance(model, MidLevelEmotionModel):
        out["explanations"] = "none intrinsic: a black box (post-hoc explainers, issue 4)"
        out["evidence"] = _evidence(dm)
        return out

    out["mapping"] = mapping_report(model, dm, settings["near_zero"])
    out["selectivity"] = selectivity(model, dm, settings.get("selectivity", {}))
    rows, eff, rel, targets = explain_split(model, dm, "test")
    fig_dir = run_dir / "explanations"
    figures = [
        plot_relative_effects(rel, dm.quality_names, dm.emotion_names, fig_dir / "relative.png"),
        plot_mapping(
            np.asarray(out["mapping"]["learned"]),
            np.asarray(out["mapping"]["true"]) if "true" in out["mapping"] else None,
            dm.quality_names,
            dm.emotion_names,
            fig_dir / "mapping.png",
        ),
    ]
    summary: dict[str, Any] = {
        "split": "test",
        "target": "per clip, the emotion with the highest standardised prediction",
        "mean_abs_relative_effect": {
            e: dict(
                zip(dm.quality_names, np.round(np.abs(rel[:, i]).mean(0), 4).tolist(), strict=True)
            )
            for i, e in enumerate(dm.emotion_names)
        },
        "figures": [str(p.relative_to(run_dir)) for p in figures],
    }
    if dm.generator:
        truth = true_effects(dm, rows)
        n, n_e, n_q = eff.shape
        summary["top_quality_agreement"] = top_quality_agreement(
            eff.reshape(n * n_e, n_q), truth.reshape(n * n_e, n_q)
        )
        k = min(settings["n_contrasts"], len(rows))
        summary["contrasts"] = contrasts(
            model, dm, rows[:k], eff[:k], targets[:k], fig_dir, settings["n_examples"]
        )
    else:
        for k in range(min(settings["n_examples"], len(rows))):
            t, song_id = int(targets[k]), dm.records[int(rows[k])].song_id
            plot_effect_bars(
                eff[k, t],
                dm.quality_names,
                f"clip {song_id}: effects on {dm.emotion_names[t]}",
                fig_dir / song_id / "effects.png",
            )
    out["explanations"] = summary
    out["evidence"] = _evidence(dm)
    return out


def _evidence(dm) -> dict[str, Any]:
    if not dm.generator:
        return {"status": "no evidence masks (real data)"}
    rows = dm.split_indices["test"]
    rows = rows[np.isfinite(dm.q[rows].numpy()).all(1)]
    return {
        "status": "post-hoc relevance share: python -m evaluate.report run=<A2Mid2E run> "
        "blackbox=<A2E run> (evaluate.emotion.report)",
        "chance_share_by_emotion": chance_levels(dm, rows, len(dm.emotion_names)),
    }
