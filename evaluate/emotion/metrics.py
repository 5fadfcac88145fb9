"""Metrics of the mid-level emotion family: regression quality, mapping agreement, evidence.

All functions take numpy arrays, ignore NaN targets (a clip without that label), and
return plain floats / arrays so they go straight into ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr


def pearson_per_output(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson r of each column over the rows where ``target`` is finite, shape (K,).

    NaN for a column with fewer than 2 labelled rows or a constant prediction / target.
    """
    pred, target = _check(pred, target)
    out = np.full(pred.shape[1], np.nan)
    for k in range(pred.shape[1]):
        ok = np.isfinite(target[:, k])
        if ok.sum() < 2:
            continue
        p, t = pred[ok, k] - pred[ok, k].mean(), target[ok, k] - target[ok, k].mean()
        denom = np.sqrt((p * p).sum() * (t * t).sum())
        if denom > 0:
            out[k] = float((p * t).sum() / denom)
    return out


def rmse_per_output(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Root-mean-square error of each column over its labelled rows, shape (K,)."""
    pred, target = _check(pred, target)
    out = np.full(pred.shape[1], np.nan)
    for k in range(pred.shape[1]):
        ok = np.isfinite(target[:, k])
        if ok.any():
            out[k] = float(np.sqrt(np.mean((pred[ok, k] - target[ok, k]) ** 2)))
    return out


def _check(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(f"pred and target must be (N, K) alike, got {pred.shape}, {target.shape}")
    if not np.isfinite(pred).all():
        raise ValueError("pred contains NaN or inf")
    return pred, target


def regression_report(
    pred: np.ndarray, target: np.ndarray, names: Sequence[str], prefix: str
) -> tuple[dict[str, float], dict[str, float]]:
    """(means, per-output) dicts: ``{prefix}_r``, ``{prefix}_rmse`` and ``r_<name>``,
    ``rmse_<name>``; ``pred`` and ``target`` in the units RMSE should be reported in."""
    r, rmse = pearson_per_output(pred, target), rmse_per_output(pred, target)
    means = {f"{prefix}_r": _nanmean(r), f"{prefix}_rmse": _nanmean(rmse)}
    per = {f"r_{n}": float(v) for n, v in zip(names, r, strict=True)}
    per |= {f"rmse_{n}": float(v) for n, v in zip(names, rmse, strict=True)}
    return means, per


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def mapping_agreement(
    learned: np.ndarray, true: np.ndarray, near_zero: float = 0.1
) -> dict[str, float]:
    """How well a learned quality -> emotion weight matrix matches the true one.

    Parameters
    ----------
    learned, true : (emotions, qualities) weights in the same (standardised) units.
    near_zero : true weights with ``|w| < near_zero * max|w|`` count as zero: their sign
        is not scored.

    Returns
    -------
    ``spearman`` (rank correlation over all weights), ``pearson``, ``sign_agreement``
    (fraction of the non-near-zero true weights whose learned sign matches),
    ``n_signed`` (how many were scored), ``near_zero_abs`` (mean |learned| where the
    true weight is near zero, NaN if none).
    """
    learned, true = np.asarray(learned, dtype=float), np.asarray(true, dtype=float)
    if learned.shape != true.shape or learned.ndim != 2:
        raise ValueError(f"learned and true must be 2-D alike, got {learned.shape}, {true.shape}")
    big = np.abs(true) >= near_zero * np.abs(true).max()
    a, b = learned.ravel(), true.ravel()
    return {
        "spearman": float(spearmanr(a, b).statistic),
        "pearson": float(np.corrcoef(a, b)[0, 1]),
        "sign_agreement": float(np.mean(np.sign(learned[big]) == np.sign(true[big]))),
        "n_signed": int(big.sum()),
        "near_zero_abs": float(np.abs(learned[~big]).mean()) if (~big).any() else float("nan"),
    }


def standardise_mapping(
    weights: np.ndarray, quality_std: np.ndarray, emotion_std: np.ndarray
) -> np.ndarray:
    """Weights in rating units (emotion points per quality point) -> standardised units:
    ``W_z[i, j] = W[i, j] * std_q[j] / std_e[i]``, the units a model on z-scores learns."""
    w = np.asarray(weights, dtype=float)
    return w * np.asarray(quality_std)[None, :] / np.asarray(emotion_std)[:, None]


def top_quality_agreement(learned_effects: np.ndarray, true_effects: np.ndarray) -> float:
    """Fraction of clips whose largest |effect| is on the same quality in both (N, 7)."""
    a, b = np.asarray(learned_effects), np.asarray(true_effects)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"effects must be (N, Q) alike, got {a.shape}, {b.shape}")
    return float(np.mean(np.abs(a).argmax(1) == np.abs(b).argmax(1)))
