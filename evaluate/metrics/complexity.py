"""Compactness of an explanation: how few entries carry its mass.

Every function flattens all non-batch dimensions of its ``(B, ...)`` input, works on
absolute values and returns one value per clip, shape ``(B,)``. An all-zero clip gives 0.
"""

from __future__ import annotations

import math

import torch

__all__ = ["complexity", "hoyer_sparsity", "sparseness"]


def _abs_flat(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"{name} must be (B, ...) with at least 2 dims, got {tuple(x.shape)}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    a = x.flatten(1).abs()
    return a if a.is_floating_point() else a.to(torch.get_default_dtype())


def sparseness(relevance: torch.Tensor) -> torch.Tensor:
    """Gini index of ``|relevance|`` per clip, in [0, 1 - 1/n]; higher is sparser.

    Chalasani et al., "Concise explanations of neural networks using adversarial training",
    ICML 2020, as Quantus ``Sparseness`` (without its 1e-7 offset, so exact for hand cases):
    ``sum_i (2i - n - 1) a_(i) / (n * sum a)`` over the ascending-sorted ``a``, ``i`` from 1.
    """
    a = torch.sort(_abs_flat(relevance, "relevance"), dim=1).values
    n = a.shape[1]
    weights = 2 * torch.arange(1, n + 1, device=a.device, dtype=a.dtype) - n - 1
    total = a.sum(dim=1)
    gini = (weights * a).sum(dim=1) / (n * torch.where(total > 0, total, 1.0))
    return torch.where(total > 0, gini, 0.0)


def complexity(relevance: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``|R| / sum |R|`` per clip, in [0, ln n]; lower is simpler.

    Bhatt, Weller, Moura, "Evaluating and aggregating feature-based model explanations",
    IJCAI 2020, as Quantus ``Complexity``. ``0 ln 0`` is taken as 0.
    """
    a = _abs_flat(relevance, "relevance")
    total = a.sum(dim=1, keepdim=True)
    p = a / torch.where(total > 0, total, 1.0)
    # An all-zero clip gives p == 0 everywhere, hence entropy 0 with no special case.
    return torch.special.entr(p).sum(dim=1)


def hoyer_sparsity(x: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity ``(sqrt(n) - L1/L2) / (sqrt(n) - 1)`` per clip, in [0, 1].

    Hoyer, "Non-negative matrix factorization with sparseness constraints", JMLR 2004.
    Meant for NMF activations ``H`` of shape ``(B, K, T)``; 1 means a single active entry,
    0 means all entries equal. Degenerate cases: an all-zero clip gives 0; ``n == 1``
    (one entry per clip, where the measure is undefined) raises ``ValueError``.
    """
    a = _abs_flat(x, "x")
    n = a.shape[1]
    if n < 2:
        raise ValueError(f"hoyer_sparsity needs at least 2 entries per clip, got {n}")
    l1 = a.sum(dim=1)
    l2 = torch.linalg.vector_norm(a, dim=1)
    ratio = l1 / torch.where(l2 > 0, l2, 1.0)
    root = math.sqrt(n)
    # Rounding can push L1/L2 a hair outside [1, sqrt(n)]; clamp to keep the range.
    score = ((root - ratio) / (root - 1)).clamp(0.0, 1.0)
    return torch.where(l2 > 0, score, 0.0)
