"""One-quality contrasts of the built-in music, for training quality units that are selective.

For a training clip ``i`` the generator re-renders it with one quality ``j`` moved to the
far end of its range (0 when the clip's value is above 0.5, else 1) and everything else
unchanged (``synthesize_clip(config, i, {j: v})``). The pair (original, re-render) says
what a selective model must do: its unit ``j`` moves by ``9 (v - q_j)`` rating points and
every other unit stays put. Training on such pairs is the counterfactual form of the
off-diagonal penalty asked for in the selectivity issue; it uses the training clips and
the training generator only, never a shifted set.

``contrast_set`` renders ``per_clip`` distinct qualities per clip (chosen by
``default_rng([seed, index, 7919])``) and caches the waveforms on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from interp_models.cache import cached_dataset, params_key
from interp_models.data.midlevel import QUALITIES, QUALITY_SCALE
from interp_models.data.parallel import write_ranges
from interp_models.data.synth_music import (
    GENERATOR_VERSION,
    SynthMusicConfig,
    clip_latents,
    synthesize_clip,
)

__all__ = ["CONTRAST_VERSION", "contrast_set", "contrast_plan"]

CONTRAST_VERSION = 1
_STREAM = 7919  # rng stream of the choice of qualities (apart from the generator's)


def contrast_plan(
    config: SynthMusicConfig, indices: Sequence[int], per_clip: int, seed: int = 0
) -> np.ndarray:
    """Rows ``(index, quality, old latent, new latent)`` of the contrasts to render."""
    if not 1 <= per_clip <= len(QUALITIES):
        raise ValueError(f"contrasts_per_clip must be in [1, {len(QUALITIES)}], got {per_clip}")
    rows = []
    for index in indices:
        qualities, _ = clip_latents(config, int(index))
        chosen = np.random.default_rng([seed, int(index), _STREAM]).permutation(len(QUALITIES))
        for j in chosen[:per_clip]:
            old = qualities[QUALITIES[j]]
            rows.append((int(index), int(j), old, 0.0 if old > 0.5 else 1.0))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _render_rows(args: tuple[SynthMusicConfig, str, int, int]) -> list[np.ndarray]:
    config, plan_path, start, stop = args
    plan = np.load(plan_path, allow_pickle=False)
    return [
        synthesize_clip(config, int(i), {QUALITIES[int(j)]: float(new)}).mix.astype(np.float32)
        for i, j, _, new in plan[start:stop]
    ]


def contrast_set(
    config: SynthMusicConfig,
    indices: Sequence[int],
    per_clip: int,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Rendered contrasts of clips ``indices``: (plan (n, 4), waveforms (n, samples)).

    ``plan`` rows are ``(clip index, quality index, old latent, new latent)``; the
    rating change of quality ``j`` is ``(new - old) * 9`` on the 1..10 scale.
    """
    plan = contrast_plan(config, indices, per_clip, seed)
    key = params_key(
        {
            "config": asdict(config),
            "generator_version": GENERATOR_VERSION,
            "version": CONTRAST_VERSION,
            "plan": plan.tolist(),
        }
    )

    def build(tmp: Path) -> None:
        np.save(tmp / "plan.npy", plan, allow_pickle=False)
        waves = write_ranges(_render_rows, config, tmp / "plan.npy", len(plan), workers)
        np.save(tmp / "waves.npy", np.stack(waves), allow_pickle=False)

    root = cached_dataset("music_contrasts", key, build, cache_dir)
    waves = np.load(root / "waves.npy", allow_pickle=False)
    return plan, waves


def rating_change(plan: np.ndarray) -> np.ndarray:
    """(n, 7) change of every quality rating a contrast makes: one entry, the rest 0."""
    span = QUALITY_SCALE[1] - QUALITY_SCALE[0]
    out = np.zeros((len(plan), len(QUALITIES)))
    out[np.arange(len(plan)), plan[:, 1].astype(int)] = (plan[:, 3] - plan[:, 2]) * span
    return out
