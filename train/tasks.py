"""Task shapes: what a model's outputs mean, its loss, its metrics and the metric to select on.

One class per shape the model families need: multiclass sound events, binary heart-sound
abnormality (scored by MAcc, the PhysioNet/CinC 2016 mean of sensitivity and specificity)
and multi-output regression of emotion ratings (scored by Pearson r).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError, MetricCollection, PearsonCorrCoef
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryRecall,
    BinarySpecificity,
    MulticlassAccuracy,
)


class Task:
    """Base: subclasses set ``monitor``/``mode`` and implement ``loss`` and ``metrics``."""

    monitor: str
    mode: str

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        raise NotImplementedError

    def prepare(self, outputs: torch.Tensor, target: torch.Tensor):
        """(preds, target) in the form ``metrics()`` expects."""
        return outputs, target


@dataclass
class MulticlassTask(Task):
    num_classes: int
    monitor: str = "acc"
    mode: str = "max"

    def loss(self, outputs, target):
        return F.cross_entropy(outputs, target)

    def metrics(self):
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(self.num_classes, average="micro"),
                "balanced_acc": MulticlassAccuracy(self.num_classes, average="macro"),
            }
        )


@dataclass
class BinaryTask(Task):
    """Single-logit binary task; positive class = 1 (abnormal)."""

    monitor: str = "macc"
    mode: str = "max"

    def loss(self, outputs, target):
        return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), target.float())

    def metrics(self):
        return MetricCollection(
            {
                "sensitivity": BinaryRecall(),
                "specificity": BinarySpecificity(),
                "auroc": BinaryAUROC(),
            }
        )

    def prepare(self, outputs, target):
        return torch.sigmoid(outputs.squeeze(-1)), target.long()

    @staticmethod
    def add_derived(values: dict[str, float]) -> dict[str, float]:
        """MAcc = (Se + Sp) / 2, added to a computed metric dict."""
        values["macc"] = (values["sensitivity"] + values["specificity"]) / 2
        return values


@dataclass
class RegressionTask(Task):
    num_outputs: int
    monitor: str = "pearson_r"
    mode: str = "max"

    def loss(self, outputs, target):
        return F.mse_loss(outputs, target.float())

    def metrics(self):
        return MetricCollection(
            {
                "pearson": PearsonCorrCoef(num_outputs=self.num_outputs),
                "rmse": MeanSquaredError(squared=False, num_outputs=self.num_outputs),
            }
        )

    def prepare(self, outputs, target):
        return outputs.float(), target.float()


def build_task(name: str, num_outputs: int) -> Task:
    """Task named ``name`` (``multiclass``, ``binary``, ``regression``) with ``num_outputs``."""
    if name == "multiclass":
        return MulticlassTask(num_outputs)
    if name == "binary":
        return BinaryTask()
    if name == "regression":
        return RegressionTask(num_outputs)
    raise ValueError(f"task: unknown task {name!r}; expected multiclass, binary or regression")


def summarise(task: Task, computed: dict[str, torch.Tensor]) -> dict[str, float]:
    """Reduce computed metrics to scalars (mean over outputs for per-output metrics)."""
    out: dict[str, float] = {}
    for key, value in computed.items():
        value = value.detach().float().cpu()
        if value.numel() > 1:
            for i, v in enumerate(value.tolist()):
                out[f"{key}_{i}"] = v
        out[key if key != "pearson" else "pearson_r"] = value.mean().item()
    if isinstance(task, BinaryTask):
        out = BinaryTask.add_derived(out)
    return out
