"""Faithfulness of a mask explanation, as defined for L-MAC.

Paissan, Subakan, Ravanelli et al., "Listenable Maps for Audio Classifiers", ICML 2024
(the definitions used by the SpeechBrain ``ESC50/interpret`` recipe).

Every function takes class *probabilities* ``(B, C)`` (already softmaxed) of the classifier
on the full input (``p_full``), on the masked-in input (only what the explanation keeps,
``p_in``) and on the masked-out input (the explanation removed, ``p_out``), and returns one
value per clip, shape ``(B,)``.

The explained class ``c`` is the classifier's own prediction ``argmax p_full`` unless a
``target`` is given, never the dataset label by default: the metrics ask whether the
explanation accounts for what the classifier decided. A ``(B, 1)`` tensor is rejected
because an argmax over one column is always 0, which silently measures nothing.
"""

from __future__ import annotations

import torch

__all__ = [
    "average_drop",
    "average_gain",
    "average_increase",
    "faithfulness_ff",
    "fidelity_in",
    "lmac_metrics",
]

# Softmax outputs can exceed [0, 1] by rounding only; logits exceed it by far more.
_PROB_TOL = 1e-4


def _check_probs(p_full: torch.Tensor, other: torch.Tensor, other_name: str) -> None:
    if p_full.ndim != 2 or other.shape != p_full.shape or p_full.shape[1] < 2:
        raise ValueError(
            f"p_full and {other_name} must both be (B, C) class probabilities with C >= 2, "
            f"got {tuple(p_full.shape)} and {tuple(other.shape)}"
        )
    for name, p in (("p_full", p_full), (other_name, other)):
        if p.numel() and (p.min() < -_PROB_TOL or p.max() > 1 + _PROB_TOL):
            raise ValueError(f"{name} must hold probabilities in [0, 1] (softmax the logits)")


def _explained_class(p_full: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if target is None:
        # torch.argmax returns the first maximal index, so ties are deterministic.
        return p_full.argmax(dim=1)
    if target.shape != (p_full.shape[0],) or target.dtype != torch.long:
        raise ValueError(
            f"target must be a long tensor of shape ({p_full.shape[0]},), "
            f"got {target.dtype} {tuple(target.shape)}"
        )
    if target.numel() and (target.min() < 0 or target.max() >= p_full.shape[1]):
        raise ValueError(f"target indices must lie in [0, {p_full.shape[1]})")
    return target.to(p_full.device)


def _pick(p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return p.gather(1, c[:, None])[:, 0]


def average_increase(
    p_full: torch.Tensor, p_in: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Average Increase (AI): ``100 * [o > p]`` per clip.

    ``p = p_full[c]``, ``o = p_in[c]``. Higher is better: keeping only the explanation
    made the classifier *more* confident.

    Returns
    -------
    Tensor ``(B,)`` of 0.0 or 100.0.
    """
    _check_probs(p_full, p_in, "p_in")
    c = _explained_class(p_full, target)
    return 100.0 * (_pick(p_in, c) > _pick(p_full, c)).to(p_full.dtype)


def average_drop(
    p_full: torch.Tensor, p_in: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Average Drop (AD): ``100 * relu(p - o) / p`` per clip; lower is better.

    Degenerate case: ``p == 0`` (possible only with an explicit ``target``) gives 0, since
    there is no confidence to drop.
    """
    _check_probs(p_full, p_in, "p_in")
    c = _explained_class(p_full, target)
    p, o = _pick(p_full, c), _pick(p_in, c)
    drop = torch.relu(p - o) / torch.where(p > 0, p, torch.ones_like(p))
    return 100.0 * torch.where(p > 0, drop, torch.zeros_like(p))


def average_gain(
    p_full: torch.Tensor, p_in: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Average Gain (AG): ``100 * relu(o - p) / (1 - p)`` per clip; higher is better.

    Degenerate case: ``p == 1`` exactly gives 0 (no headroom left to gain).
    """
    _check_probs(p_full, p_in, "p_in")
    c = _explained_class(p_full, target)
    p, o = _pick(p_full, c), _pick(p_in, c)
    headroom = 1.0 - p
    gain = torch.relu(o - p) / torch.where(headroom > 0, headroom, torch.ones_like(p))
    return 100.0 * torch.where(headroom > 0, gain, torch.zeros_like(p))


def faithfulness_ff(
    p_full: torch.Tensor, p_out: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Faithfulness (FF): ``p_full[c] - p_out[c]`` per clip, in [-1, 1]; higher is better.

    Removing a faithful explanation should lower the confidence in ``c``.
    """
    _check_probs(p_full, p_out, "p_out")
    c = _explained_class(p_full, target)
    return _pick(p_full, c) - _pick(p_out, c)


def fidelity_in(p_full: torch.Tensor, p_in: torch.Tensor) -> torch.Tensor:
    """Input fidelity (Fid-In): ``1.0`` if ``argmax p_in == argmax p_full``, else ``0.0``."""
    _check_probs(p_full, p_in, "p_in")
    return (p_in.argmax(dim=1) == p_full.argmax(dim=1)).to(p_full.dtype)


def lmac_metrics(
    p_full: torch.Tensor,
    p_in: torch.Tensor,
    p_out: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All L-MAC metrics at once: keys ``AI``, ``AD``, ``AG``, ``FidIn`` and, given
    ``p_out``, ``FF``; each value has shape ``(B,)``."""
    out = {
        "AI": average_increase(p_full, p_in, target),
        "AD": average_drop(p_full, p_in, target),
        "AG": average_gain(p_full, p_in, target),
        "FidIn": fidelity_in(p_full, p_in),
    }
    if p_out is not None:
        out["FF"] = faithfulness_ff(p_full, p_out, target)
    return out
