"""Perturbation faithfulness in a grouping's units: deletion / insertion curves and their
AUC, and faithfulness correlation.

Every function works on one clip through ``forward_groups(Z)``: the model's outputs
``(N, C)`` for ``N`` presence vectors ``Z`` ``(N, G)`` in [0, 1] (1 keeps a group, 0
replaces it by the grouping's baseline), as given by ``GroupView.forward_groups`` of
``evaluate.posthoc.groupings``. Scores are the softmax probability of ``target`` (``score="prob"``)
or its logit.

* Deletion / insertion (Petsiuk, Das, Saenko, "RISE", BMVC 2018): groups are removed from
  the clip (deletion) or added to the baseline (insertion) most relevant first; the area
  under the score curve over the removed / inserted *fraction of groups* is low for a
  faithful explanation under deletion and high under insertion. Compared with the same
  curves in random orders (``*_random``).
* Faithfulness correlation (Bhatt, Weller, Moura, IJCAI 2020): Pearson correlation, over
  random subsets ``S`` of groups, between ``sum_{g in S} a_g`` and the score drop when
  ``S`` is removed.

Written by hand rather than taken from Quantus because Quantus perturbs model-input
features only, while these perturb groups (bands, NMF components, STFT bins of waveform
models) through the grouping's baseline; on single bins they agree with Quantus
``PixelFlipping`` and ``FaithfulnessCorrelation`` (checked in ``tests/test_metrics_quantus.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "curve_auc",
    "deletion_curve",
    "faithfulness_correlation",
    "insertion_curve",
    "perturbation_curves",
    "perturbation_metrics",
]

ForwardGroups = Callable[[torch.Tensor], torch.Tensor]


def _score(outputs: torch.Tensor, target: int, score: str) -> torch.Tensor:
    if score == "prob":
        return torch.softmax(outputs, dim=1)[:, target]
    if score == "logit":
        return outputs[:, target]
    raise ValueError(f"score must be 'prob' or 'logit', got {score!r}")


def _counts(n_groups: int, n_steps: int | None) -> torch.Tensor:
    """Numbers of groups removed / inserted at each step, 0 .. G (unique, ascending)."""
    if n_steps is None or n_steps >= n_groups:
        return torch.arange(n_groups + 1)
    return torch.unique(torch.round(torch.linspace(0, n_groups, n_steps + 1)).long())


def _order(attribution: torch.Tensor) -> torch.Tensor:
    return torch.sort(attribution.flatten(), descending=True, stable=True).indices


def _curve(
    forward_groups: ForwardGroups,
    order: torch.Tensor,
    target: int,
    n_steps: int | None,
    score: str,
    insert: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    n = order.numel()
    counts = _counts(n, n_steps)
    Z = torch.zeros((len(counts), n)) if insert else torch.ones((len(counts), n))
    for row, c in enumerate(counts.tolist()):
        Z[row, order[:c]] = 1.0 if insert else 0.0
    with torch.no_grad():
        values = _score(forward_groups(Z), target, score)
    return counts.float() / n, values.detach().cpu().float()


def deletion_curve(
    forward_groups: ForwardGroups,
    attribution: torch.Tensor,
    target: int,
    n_steps: int | None = 20,
    score: str = "prob",
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fractions removed, scores): groups removed most relevant first (or in ``order``)."""
    order = _order(attribution) if order is None else order
    return _curve(forward_groups, order, target, n_steps, score, insert=False)


def insertion_curve(
    forward_groups: ForwardGroups,
    attribution: torch.Tensor,
    target: int,
    n_steps: int | None = 20,
    score: str = "prob",
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fractions inserted, scores): groups added to the baseline most relevant first."""
    order = _order(attribution) if order is None else order
    return _curve(forward_groups, order, target, n_steps, score, insert=True)


def curve_auc(fractions: torch.Tensor, scores: torch.Tensor) -> float:
    """Trapezoidal area under a curve on [0, 1]."""
    return float(torch.trapezoid(scores, fractions))


def perturbation_curves(
    forward_groups: ForwardGroups,
    attribution: torch.Tensor,
    target: int,
    n_steps: int | None = 20,
    n_random: int = 4,
    score: str = "prob",
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Deletion and insertion AUC of the explanation and, averaged over ``n_random``
    random orders, of chance: keys ``deletion_auc``, ``insertion_auc``,
    ``deletion_auc_random``, ``insertion_auc_random`` and the curves (``deletion``,
    ``insertion``: (fractions, scores))."""
    generator = generator or torch.Generator().manual_seed(0)
    n = attribution.numel()
    deletion = deletion_curve(forward_groups, attribution, target, n_steps, score)
    insertion = insertion_curve(forward_groups, attribution, target, n_steps, score)
    rand_del, rand_ins = [], []
    for _ in range(n_random):
        order = torch.randperm(n, generator=generator)
        rand_del.append(curve_auc(*_curve(forward_groups, order, target, n_steps, score, False)))
        rand_ins.append(curve_auc(*_curve(forward_groups, order, target, n_steps, score, True)))
    return {
        "deletion_auc": curve_auc(*deletion),
        "insertion_auc": curve_auc(*insertion),
        "deletion_auc_random": sum(rand_del) / max(len(rand_del), 1),
        "insertion_auc_random": sum(rand_ins) / max(len(rand_ins), 1),
        "deletion": deletion,
        "insertion": insertion,
    }


def faithfulness_correlation(
    forward_groups: ForwardGroups,
    attribution: torch.Tensor,
    target: int,
    n_runs: int = 50,
    subset_size: int | float = 0.1,
    score: str = "prob",
    generator: torch.Generator | None = None,
) -> float:
    """Pearson r between the attribution summed over random group subsets and the score
    drop when they are removed (Bhatt et al. 2020); ``subset_size`` is a count or, below
    1, a fraction of the groups. 0.0 when either side is constant."""
    generator = generator or torch.Generator().manual_seed(0)
    a = attribution.flatten().double().cpu()
    n = a.numel()
    k = int(round(subset_size * n)) if isinstance(subset_size, float) else int(subset_size)
    if not 1 <= k <= n:
        raise ValueError(f"subset_size gives {k} groups; need 1 <= k <= {n}")
    Z = torch.ones((n_runs + 1, n))
    sums = torch.zeros(n_runs, dtype=torch.float64)
    for r in range(n_runs):
        idx = torch.randperm(n, generator=generator)[:k]
        Z[r + 1, idx] = 0.0
        sums[r] = a[idx].sum()
    with torch.no_grad():
        values = _score(forward_groups(Z), target, score).double().cpu()
    drops = values[0] - values[1:]
    return _pearson(sums, drops)


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x - x.mean(), y - y.mean()
    denom = float(x.norm() * y.norm())
    return float((x * y).sum()) / denom if denom > 0 else 0.0


def perturbation_metrics(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    explanation,
    grouping,
    waves: torch.Tensor | None = None,
    n_steps: int | None = 20,
    n_random: int = 4,
    n_runs: int = 50,
    subset_size: int | float = 0.1,
    score: str = "prob",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Per-clip (B,) ``deletion_auc``, ``insertion_auc``, their ``*_random`` references and
    ``faithfulness_corr`` of an ``Explanation`` made with ``grouping`` on ``inputs``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, list[float]] = {}
    for i in range(len(inputs)):
        wave = None if waves is None else waves[i : i + 1]
        view = grouping.bind(inputs[i : i + 1], wave).view(model)
        attr, target = explanation.attribution[i], int(explanation.target[i])
        curves = perturbation_curves(
            view.forward_groups, attr, target, n_steps, n_random, score, generator
        )
        for key, value in curves.items():
            if isinstance(value, float):
                out.setdefault(key, []).append(value)
        out.setdefault("faithfulness_corr", []).append(
            faithfulness_correlation(
                view.forward_groups, attr, target, n_runs, subset_size, score, generator
            )
        )
    return {k: torch.tensor(v) for k, v in out.items()}
