"""Figures of the mid-level emotion family (matplotlib ``Figure`` + Agg, no pyplot state).

- ``plot_effect_bars``: one clip's effects of the seven qualities on one emotion;
- ``plot_relative_effects``: box plots of relative effects over a set of clips, one panel
  per emotion (the presentation of Chowdhury et al., ISMIR 2019, Fig. 5);
- ``plot_mapping``: the learned 8 x 7 quality -> emotion matrix next to the true one;
- ``plot_selectivity``: 7 x 7 quality-selectivity matrices (re-render contrasts, factor AUC).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from evaluate.reporting.figures import save_png

__all__ = ["plot_effect_bars", "plot_mapping", "plot_relative_effects", "plot_selectivity"]


def _short(name: str) -> str:
    return name.replace("rhythm_", "rhy. ").replace("tonal_", "tonal ").replace("_", " ")


def plot_effect_bars(
    effects: np.ndarray,
    qualities: Sequence[str],
    title: str,
    path: str | Path,
    prediction: float | None = None,
) -> Path:
    """Horizontal bars of the effects (7,) of each quality on one emotion for one clip;
    positive effects raise the rating, negative ones lower it."""
    effects = np.asarray(effects, dtype=float)
    if effects.shape != (len(qualities),):
        raise ValueError(f"effects must be ({len(qualities)},), got {effects.shape}")
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    y = np.arange(len(qualities))
    colors = ["tab:red" if v > 0 else "tab:blue" for v in effects]
    ax.barh(y, effects, color=colors)
    ax.set_yticks(y, [_short(q) for q in qualities])
    ax.invert_yaxis()
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("effect = weight x quality (standardised emotion units)")
    if prediction is not None:
        title = f"{title}\nprediction {prediction:+.2f} (z) = bias + sum of effects"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def plot_relative_effects(
    relative: np.ndarray, qualities: Sequence[str], emotions: Sequence[str], path: str | Path
) -> Path:
    """Box plots of relative effects (N, 8, 7) over N clips, one panel per emotion."""
    relative = np.asarray(relative, dtype=float)
    if relative.ndim != 3 or relative.shape[1:] != (len(emotions), len(qualities)):
        raise ValueError(
            f"relative must be (N, {len(emotions)}, {len(qualities)}), got {relative.shape}"
        )
    cols = 4
    rows = int(np.ceil(len(emotions) / cols))
    fig = Figure(figsize=(3.4 * cols, 3.0 * rows))
    for i, emotion in enumerate(emotions):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.boxplot(relative[:, i, :], orientation="horizontal", showfliers=False)
        ax.set_yticks(np.arange(1, len(qualities) + 1), [_short(q) for q in qualities], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0.0, color="k", lw=0.6)
        ax.set_xlim(-1, 1)
        ax.set_title(emotion, fontsize=9)
    fig.suptitle(f"relative effects over {len(relative)} clips", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_mapping(
    learned: np.ndarray,
    true: np.ndarray | None,
    qualities: Sequence[str],
    emotions: Sequence[str],
    path: str | Path,
) -> Path:
    """Heat maps of the learned (8, 7) weights and, when known, the true ones, on one
    colour scale (both in standardised units)."""
    mats = [("learned", np.asarray(learned, dtype=float))]
    if true is not None:
        mats.append(("true (generator)", np.asarray(true, dtype=float)))
    for name, m in mats:
        if m.shape != (len(emotions), len(qualities)):
            raise ValueError(f"{name} must be ({len(emotions)}, {len(qualities)}), got {m.shape}")
    vmax = max(float(np.abs(m).max()) for _, m in mats) or 1.0
    fig = Figure(figsize=(5.2 * len(mats), 4.2))
    for k, (name, m) in enumerate(mats):
        ax = fig.add_subplot(1, len(mats), k + 1)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(
            range(len(qualities)), [_short(q) for q in qualities], rotation=45, ha="right"
        )
        ax.set_yticks(range(len(emotions)), list(emotions))
        ax.set_title(name, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_png(fig, path)


def plot_selectivity(
    panels: Sequence[tuple[str, np.ndarray]],
    qualities: Sequence[str],
    path: str | Path,
    row_label: str = "quality changed low -> high",
    col_label: str = "predicted quality (change, rating points)",
) -> Path:
    """Heat maps of 7 x 7 selectivity matrices side by side (``evaluate.emotion.selectivity``):
    ``(title, matrix)`` per panel; rows the changed quality (or labelled factor), columns
    the predicted quality; one colour scale per panel, symmetric about 0."""
    fig = Figure(figsize=(4.6 * len(panels), 4.4))
    labels = [_short(q) for q in qualities]
    for k, (title, m) in enumerate(panels):
        m = np.asarray(m, dtype=float)
        ax = fig.add_subplot(1, len(panels), k + 1)
        vmax = float(np.nanmax(np.abs(m))) or 1.0
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                f"{v:.1f}" if abs(v) >= 0.95 else f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=6,
            )
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(col_label, fontsize=7)
        ax.set_ylabel(row_label if k == 0 else "", fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_png(fig, path)
