"""The one type every explanation method returns, intrinsic or post-hoc."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Explanation:
    """Attributions for a batch of clips, in the units of one feature grouping.

    Attributes
    ----------
    attribution : (batch, *groups) relevance of each feature group for ``target``.
    grouping : what a group is: ``"components"`` (NMF dictionary), ``"tf_bins"`` (input
        spectrogram bins), ``"bands"`` (frequency bands x time divisions), ``"qualities"``
        (mid-level features), ``"states"`` (cardiac states / beats).
    target : (batch,) class (or output) explained.
    method : name of the method that produced it.
    n_evals : model evaluations (forward or forward+backward passes) it took per clip.
    seconds : wall time per clip.
    maps : extra per-clip tensors, e.g. ``"mask"`` (batch, freq, time) time-frequency
        mask of the relevant components, ``"relevant"`` (batch, K) bool.
    labels : optional names of the groups.
    """

    attribution: torch.Tensor
    grouping: str
    target: torch.Tensor
    method: str
    n_evals: int = 1
    seconds: float = 0.0
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.attribution)

    def to_json(self, i: int, **meta: Any) -> dict[str, Any]:
        """Clip ``i`` as a JSON-serialisable dict; ``meta`` adds e.g. input file, model."""
        attr = self.attribution[i].detach().cpu()
        out: dict[str, Any] = {
            **meta,
            "method": self.method,
            "grouping": self.grouping,
            "target": int(self.target[i]),
            "n_evals": self.n_evals,
            "seconds": self.seconds,
            "shape": list(attr.shape),
            "attribution": attr.flatten().tolist(),
        }
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out
