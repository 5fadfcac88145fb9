"""Interpreter fidelity: does an interpreter reproduce the classifier it explains?

Parekh, Parekh, Mozharovskyi, d'Alché-Buc, Richard, "Listen to Interpret: Post-hoc
interpretability for audio networks with NMF", NeurIPS 2022. Both functions return
per-clip values, shape ``(B,)``.
"""

from __future__ import annotations

import torch

__all__ = ["reconstruction_error", "topk_agreement"]


def topk_agreement(
    interp_logits: torch.Tensor, clf_logits: torch.Tensor, k: int = 1
) -> torch.Tensor:
    """1.0 if the classifier's top-1 class is among the interpreter's top-``k``, else 0.0.

    Compared with the classifier's prediction, never with labels: fidelity measures how
    well the interpreter mimics the classifier, right or wrong. Logits or probabilities
    both work (only rankings matter). Ties are broken by the first class index.
    """
    if interp_logits.ndim != 2 or clf_logits.shape != interp_logits.shape:
        raise ValueError(
            "interp_logits and clf_logits must both be (B, C) with the same shape, "
            f"got {tuple(interp_logits.shape)} and {tuple(clf_logits.shape)}"
        )
    n_classes = interp_logits.shape[1]
    if not 1 <= k <= n_classes:
        raise ValueError(f"k must lie in [1, C={n_classes}], got {k}")
    pred = clf_logits.argmax(dim=1)
    # A stable sort makes the interpreter's top-k deterministic under ties.
    top = torch.sort(interp_logits, dim=1, descending=True, stable=True).indices[:, :k]
    dtype = interp_logits.dtype if interp_logits.is_floating_point() else torch.float32
    return (top == pred[:, None]).any(dim=1).to(dtype)


def reconstruction_error(recon: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Error of the interpreter's reconstruction ``R`` of the input spectrogram ``S``.

    Parameters
    ----------
    recon, target
        ``(B, F, T)`` (any ``(B, ...)`` works; all non-batch dims are reduced).

    Returns
    -------
    dict with ``mse`` (mean of ``(R - S)^2``) and ``relative``
    (``||R - S||^2 / ||S||^2``; falls back to ``mse`` for a clip where ``||S|| == 0``,
    e.g. digital silence), each of shape ``(B,)``.
    """
    if recon.ndim < 2 or recon.shape != target.shape:
        raise ValueError(
            "recon and target must be (B, ...) with the same shape, "
            f"got {tuple(recon.shape)} and {tuple(target.shape)}"
        )
    sq_err = (recon - target).flatten(1).square()
    mse = sq_err.mean(dim=1)
    energy = target.flatten(1).square().sum(dim=1)
    relative = torch.where(
        energy > 0, sq_err.sum(dim=1) / torch.where(energy > 0, energy, 1.0), mse
    )
    return {"mse": mse, "relative": relative}
