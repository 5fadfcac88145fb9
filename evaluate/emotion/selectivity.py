"""Do the mid-level quality units respond to their own quality, and to nothing else?

An A2Mid2E explanation ("sad because of low tonal stability") is only as true as its
units: the unit called tonal stability must move when tonal stability changes and stay
put when anything else does. Two measurements, both on clips whose musical factors are
known:

- **Contrast matrix** (re-renders): each clip is rendered twice with one quality set low
  and then high, everything else unchanged; ``C[j, k]`` is the mean change of predicted
  quality ``k`` (rating points) when quality ``j`` goes low -> high. A selective model
  has a large diagonal and a near-zero rest. *Dominance* of quality ``j`` is
  ``C[j, j]`` over the largest ``|off-diagonal|`` in its row (what else changing ``j``
  moves) and in its column (what else moves unit ``j``); we report both and score the
  stricter (their minimum), with bootstrap intervals over clips.
- **Factor AUC** (labelled factors, no re-renders needed): for binary factor ``f`` and
  predicted quality ``k``, the ROC AUC with which ``k`` separates ``f = 1`` from ``f = 0``.
  The diagonal should be near 1; off-diagonal cells near 0.5 (a cell near 0 or 1 means
  that unit follows another factor).

Both take the model as a function from waveforms to quality ratings, so they apply to
any renderer: the built-in generator (``synthesize_clip``) in distribution and shifted,
and the independent probe renderer (``interp_models.data.synth_probe``). Written here
(not in a library) because the measurement is specific to mid-level models; the idea is
the counterfactual test of concept units (Goyal et al., "Explaining classifiers with
causal concept effect (CaCE)", 2019), applied to the seven qualities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

__all__ = [
    "contrast_changes",
    "contrast_summary",
    "factor_auc",
    "factor_summary",
    "quality_predictor",
]

Render = Callable[[int, dict[str, float]], np.ndarray]
Predict = Callable[[np.ndarray], np.ndarray]


def contrast_changes(
    predict: Predict,
    render: Render,
    indices: Sequence[int],
    qualities: Sequence[str],
    levels: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Change of every predicted quality under one-quality re-renders.

    Parameters
    ----------
    predict : waveforms (n, samples) -> predicted qualities (n, 7) in rating points.
    render : ``render(index, {quality: level})`` -> waveform of clip ``index`` with that
        quality set, everything else as the clip has it.
    indices : the clips.
    qualities : names, in the model's output order.
    levels : (low, high) values given to the changed quality.

    Returns
    -------
    (n_clips, 7 changed, 7 read) array: prediction(high) - prediction(low).
    """
    low, high = levels
    out = np.zeros((len(indices), len(qualities), len(qualities)))
    for i, index in enumerate(indices):
        waves = [render(int(index), {q: v}) for q in qualities for v in (low, high)]
        pred = predict(np.stack(waves)).reshape(len(qualities), 2, len(qualities))
        out[i] = pred[:, 1] - pred[:, 0]
    return out


def _dominance(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per quality: diagonal, largest |off-diagonal| in its row and column, and ratios."""
    diag = np.diag(matrix)
    off = np.abs(matrix - np.diag(diag))
    row, col = off.max(1), off.max(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_row, by_col = diag / row, diag / col
    return {
        "diagonal": diag,
        "row_off": row,
        "col_off": col,
        "row_dominance": by_row,
        "col_dominance": by_col,
        "dominance": np.minimum(by_row, by_col),
    }


def contrast_summary(
    changes: np.ndarray, qualities: Sequence[str], n_boot: int = 1000, seed: int = 0
) -> dict:
    """Mean contrast matrix with 95% bootstrap half-widths, and dominance per quality.

    ``dominance`` (the stricter of row and column) carries a 95% percentile interval
    from resampling clips; ``min_dominance`` is the worst quality's.
    """
    n = len(changes)
    mean = changes.mean(0)
    rng = np.random.default_rng(seed)
    boots = np.stack([changes[rng.integers(n, size=n)].mean(0) for _ in range(n_boot)])
    dom = _dominance(mean)
    boot_dom = np.stack([_dominance(b)["dominance"] for b in boots])
    lo, hi = np.nanpercentile(boot_dom, [2.5, 97.5], axis=0)
    names = list(qualities)

    def per(values: np.ndarray) -> dict[str, float | None]:
        # None where the ratio is unbounded (nothing off the diagonal): JSON has no inf
        return {
            q: round(float(v), 4) if np.isfinite(v) else None
            for q, v in zip(names, values, strict=True)
        }

    return {
        "n_clips": n,
        "qualities": names,
        "matrix": np.round(mean, 4).tolist(),
        "matrix_ci95": np.round(1.96 * boots.std(0), 4).tolist(),
        "units": "rating points (1..10) of the read quality (column) per low -> high "
        "change of the rendered quality (row)",
        **{k: per(v) for k, v in dom.items()},
        "dominance_ci95": {
            q: [round(float(a), 3), round(float(b), 3)]
            for q, a, b in zip(names, lo, hi, strict=True)
        },
        "min_dominance": float(np.nanmin(dom["dominance"])),
        "min_row_dominance": float(np.nanmin(dom["row_dominance"])),
        "min_col_dominance": float(np.nanmin(dom["col_dominance"])),
    }


def factor_auc(predicted: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """ROC AUC of each predicted quality (column) for each binary factor (row).

    ``predicted`` (n, 7 qualities); ``factors`` (n, F) in {0, 1}, -1 where a clip's factor
    is not labelled. NaN where a factor has only one class among the labelled clips.
    """
    out = np.full((factors.shape[1], predicted.shape[1]), np.nan)
    for f in range(factors.shape[1]):
        ok = factors[:, f] >= 0
        y = factors[ok, f]
        if len(np.unique(y)) < 2:
            continue
        for k in range(predicted.shape[1]):
            out[f, k] = roc_auc_score(y, predicted[ok, k])
    return out


def factor_summary(auc: np.ndarray, factors: Sequence[str], qualities: Sequence[str]) -> dict:
    """The AUC table, each quality's own-factor AUC and its largest off-factor
    deviation from chance (``|AUC - 0.5|`` of that unit for any other factor)."""
    own, off = {}, {}
    for f, name in enumerate(factors):
        if name not in qualities:
            continue
        k = list(qualities).index(name)
        own[name] = round(float(auc[f, k]), 4)
        others = [abs(auc[g, k] - 0.5) for g in range(len(factors)) if g != f]
        off[name] = round(float(np.nanmax(others)), 4) if others else float("nan")
    return {
        "factors": list(factors),
        "qualities": list(qualities),
        "auc": np.round(auc, 4).tolist(),
        "own_factor_auc": own,
        "largest_off_factor_deviation": off,
        "min_own_factor_auc": float(min(own.values())) if own else float("nan"),
    }


def quality_predictor(model, frontend, num_samples: int) -> Predict:
    """``predict`` for an A2Mid2E ``model``: waveforms cut / padded to ``num_samples``,
    ``frontend`` features, predicted qualities in rating points."""

    @torch.no_grad()
    def predict(waves: np.ndarray) -> np.ndarray:
        waves = np.asarray(waves, dtype=np.float32)[:, :num_samples]
        waves = np.pad(waves, ((0, 0), (0, num_samples - waves.shape[1])))
        x = frontend(torch.from_numpy(waves))
        return model.to_ratings(model.eval().qualities(x), "quality").double().numpy()

    return predict
