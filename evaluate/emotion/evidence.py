"""Ground truth for explanations of emotion models on the built-in music.

The generator knows both *why* a clip is rated as it is (the true mapping times the
clip's qualities: the true effects) and *where* each quality's evidence sits in the
time-frequency plane (``masks/<song_id>.npz``). Together they tell, for a clip and an
emotion, which quality drove the rating most and where a faithful time-frequency
explanation should put its relevance.

``posthoc_evidence_share`` is the hook for post-hoc explanations of the A2E black box
(issue 4: SHAP / LRP / gradients on ``interp_models.emotion.models.A2E``): it takes any
(N, F, T) relevance on the model's input grid and returns the share of positive relevance
that falls in the evidence of the most effective quality, next to its chance level.
``evaluate.emotion.report`` uses it to compare those explanations with A2Mid2E's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from evaluate.emotion.metrics import standardise_mapping
from evaluate.metrics.localization import relevance_mass_inside
from interp_models.data.synth_music import load_evidence


def true_mapping_z(dm) -> np.ndarray | None:
    """The generator's (8, 7) mapping in the datamodule's standardised units, or None
    when the data is not built-in."""
    if not dm.generator:
        return None
    weights = np.asarray(dm.generator["true_mapping"]["weights"], dtype=float)
    return standardise_mapping(weights, dm.stats["quality_std"], dm.stats["emotion_std"])


def true_effects(dm, rows: Sequence[int]) -> np.ndarray:
    """(N, 8, 7) effects of the annotated qualities under the true mapping (z units).

    Raises
    ------
    ValueError
        Real data (no true mapping) or a clip without quality annotations.
    """
    w = true_mapping_z(dm)
    if w is None:
        raise ValueError("true effects need the built-in data (meta/generator.json)")
    q = dm.q[np.asarray(rows)].numpy().astype(float)
    if not np.isfinite(q).all():
        raise ValueError("true effects need quality annotations for every clip")
    return q[:, None, :] * w[None, :, :]


def evidence_on_input_grid(dm, rows: Sequence[int]) -> torch.Tensor:
    """(N, 7, F, T) bool evidence masks of clips ``rows`` on the model input's grid."""
    root = dm.dataset_root()
    n_frames = dm.x.shape[-1]
    freqs = dm.frontend.frequencies().numpy()
    times = dm.frontend.frame_times(n_frames).numpy()
    out = []
    for row in rows:
        masks = load_evidence(root / "masks" / f"{dm.records[int(row)].song_id}.npz")
        out.append(masks.on_grid(freqs, times))
    return torch.from_numpy(np.stack(out))


def most_effective_evidence(
    dm, rows: Sequence[int], emotion: int | Sequence[int]
) -> tuple[np.ndarray, torch.Tensor]:
    """Per clip: the quality with the largest |true effect| on ``emotion`` and its
    evidence mask on the input grid, ``(quality index (N,), bool (N, F, T))``."""
    rows = np.asarray(rows)
    emotion = np.broadcast_to(np.asarray(emotion), rows.shape)
    eff = true_effects(dm, rows)[np.arange(len(rows)), emotion]
    top = np.abs(eff).argmax(1)
    masks = evidence_on_input_grid(dm, rows)
    return top, masks[torch.arange(len(rows)), torch.from_numpy(top)]


def posthoc_evidence_share(
    relevance: torch.Tensor, dm, rows: Sequence[int], emotion: int | Sequence[int]
) -> dict[str, float]:
    """Aggregate share of a post-hoc explanation's relevance in the driving quality's
    evidence, over clips ``rows`` explained for ``emotion``.

    Returns ``share`` (mean over clips with a non-empty mask and some positive
    relevance), ``chance`` (mean area fraction of those masks: what a uniform map gets)
    and ``n_clips`` scored.
    """
    top, masks = most_effective_evidence(dm, rows, emotion)
    share = relevance_mass_inside(relevance.float(), masks, nothing=float("nan"))
    ok = torch.isfinite(share)
    area = masks.flatten(1).float().mean(1)
    return {
        "share": float(share[ok].mean()) if ok.any() else float("nan"),
        "chance": float(area[ok].mean()) if ok.any() else float("nan"),
        "n_clips": int(ok.sum()),
    }


def chance_levels(dm, rows: Sequence[int], n_emotions: int) -> dict[str, float]:
    """Mean area fraction of the most effective quality's evidence per emotion: the share
    a uniform relevance map would get (the baseline post-hoc explanations must beat)."""
    out = {}
    masks_all = evidence_on_input_grid(dm, rows)
    eff = true_effects(dm, rows)
    for i in range(n_emotions):
        top = np.abs(eff[:, i]).argmax(1)
        masks = masks_all[torch.arange(len(rows)), torch.from_numpy(top)]
        out[dm.emotion_names[i]] = float(masks.flatten(1).float().mean())
    return out
