"""LightningModule for the NMF interpreter, post-hoc (frozen classifier) or joint."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from evaluate.metrics.agreement import reconstruction_error
from interp_models.nmf.interpreter import NMFInterpreter
from train.masking import mask_objective
from train.modules import EpochMetricsSteps

REGIMES = ("posthoc", "joint", "faithful")


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``softmax(logits)`` against a probability target (L2I fidelity)."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class NMFInterpreterModule(EpochMetricsSteps):
    """Trains an ``NMFInterpreter``.

    ``posthoc``: the classifier is frozen (weights and batch-norm statistics); the loss is
    ``fidelity * softCE(interp, softmax(classifier)) + reconstruction * MSE(W H, log1p|X|)
    + sparsity * mean|H|`` (Parekh et al. 2022). ``joint`` (by design, arXiv 2305.07132):
    classifier and interpreter train together, the interpreter head is the model's
    prediction, so cross-entropy to the labels on it (and, weighted by ``classifier``, on
    the classifier head that feeds it) joins the loss. ``faithful`` (this package's third
    regime): the classifier is frozen as post-hoc, and the interpreter's own explanation
    mask (``NMFInterpreter.explanation_mask``, time-resolved with ``relevance="time"``) is
    trained with L-MAC's masked-in / masked-out objective (``train.masking``, weights
    ``mask_in``, ``mask_out``, ``mask_area``) on top of the L2I loss: the classifier on the
    kept share of ``log1p|X|`` must keep its prediction, on the rest lose it, with as
    little kept as possible. Its epoch is chosen on the validation loss (``mode="min"``),
    the objective itself, as L-MAC's recipe does.

    Logged per stage: ``fidelity_top1`` / ``fidelity_top3`` (agreement with the
    classifier's prediction, never the label), ``acc`` (interpreter head vs label),
    ``clf_acc``, ``recon_mse``, ``recon_relative`` (``||W H - S||^2 / ||S||^2`` per clip),
    ``h_l1``, and ``selection``, the checkpoint monitor: the head's agreement (fidelity
    top-1 post-hoc, label accuracy joint) times ``max(0, 1 - recon_relative)``, the share
    of the input the dictionary explains. An interpreter must do both jobs to be kept: one
    whose reconstruction is no better than zero scores 0 however faithful its head.
    """

    def __init__(
        self,
        model: NMFInterpreter,
        regime: str = "posthoc",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        fidelity: float = 1.0,
        reconstruction: float = 5.0,
        sparsity: float = 0.4,
        noise_sparsity: float | None = None,
        classifier: float = 1.0,
        mask_in: float = 1.0,
        mask_out: float = 1.0,
        mask_area: float = 1.0,
        mask_area_kind: str = "mean",
        logmel: nn.Module | None = None,
        threshold: float = 0.2,
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        if regime not in REGIMES:
            raise ValueError(f"interpreter.regime: expected one of {REGIMES}, got {regime!r}")
        self.model, self.regime = model, regime
        self.lr, self.weight_decay, self.scheduler = lr, weight_decay, scheduler
        self.weights = {
            "fidelity": fidelity,
            "reconstruction": reconstruction,
            "sparsity": sparsity,
            "classifier": classifier,
            "mask_in": mask_in,
            "mask_out": mask_out,
            "mask_area": mask_area,
        }
        if regime == "faithful" and logmel is None:
            raise ValueError("the faithful regime needs the classifier's front end (logmel=)")
        self.logmel, self.threshold = logmel, threshold
        self.mask_options = {"area": mask_area_kind, "baseline": model.baseline}
        if regime != "joint":
            self.model.classifier.requires_grad_(False)
        # Epoch means behind ``selection`` (torchmetrics: synced across DDP ranks).
        self.selection_parts = nn.ModuleDict(
            {
                f"{stage}_{part}": MeanMetric()
                for stage in ("train", "val", "test")
                for part in ("agreement", "recon_relative")
            }
        )
        self.save_hyperparameters(hparams or {})

    @property
    def monitor(self) -> str:
        return "val/loss" if self.regime == "faithful" else "val/selection"

    @property
    def mode(self) -> str:
        """How ``monitor`` is optimised: the faithful regime's loss is minimised."""
        return "min" if self.regime == "faithful" else "max"

    def frozen_modules(self) -> list[nn.Module]:
        return [] if self.regime == "joint" else [self.model.classifier]

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        x, spec, y = batch["x"], batch["spec"], batch["y"]
        out = self.model(x)
        noise = self.model.is_noise
        clf_probs = torch.softmax(out.clf_logits.detach(), dim=1)
        recon = self.model.reconstruct(out.H)
        losses = {
            "fidelity": soft_cross_entropy(out.logits, clf_probs),
            "reconstruction": F.mse_loss(recon, spec),
            # Separate weights for signal and noise components (same by default): a cheaper
            # noise part lets the background go to the components never reported relevant.
            "sparsity": out.H[:, ~noise].abs().mean() if (~noise).any() else out.H.new_zeros(()),
            "noise_sparsity": out.H[:, noise].abs().mean() if noise.any() else out.H.new_zeros(()),
        }
        if self.regime == "joint":
            losses["label"] = F.cross_entropy(out.logits, y)
            losses["classifier"] = F.cross_entropy(out.clf_logits, y)
        mask_stats: dict[str, torch.Tensor] = {}
        if self.regime == "faithful":
            target = out.clf_logits.argmax(dim=1)  # the frozen classifier's prediction
            _, _, mask = self.model.explanation_mask(out, target, self.threshold)
            terms, mask_stats = mask_objective(
                self.model.classifier, self.logmel, spec, mask, target, **self.mask_options
            )
            losses.update(terms)
        loss = sum(self.weights.get(k, 1.0) * v for k, v in losses.items())
        pred, clf_pred = out.logits.argmax(dim=1), out.clf_logits.argmax(dim=1)
        top3 = out.logits.topk(min(3, out.logits.shape[1]), dim=1).indices
        relative = reconstruction_error(recon.detach(), spec)["relative"]
        values = {
            "loss": loss,
            **{f"loss_{k}": v for k, v in losses.items()},
            "fidelity_top1": (pred == clf_pred).float().mean(),
            "fidelity_top3": (top3 == clf_pred[:, None]).any(dim=1).float().mean(),
            "acc": (pred == y).float().mean(),
            "clf_acc": (clf_pred == y).float().mean(),
            "recon_mse": losses["reconstruction"],
            "recon_relative": relative.mean(),
            "h_l1": out.H.abs().mean(),
            **mask_stats,
        }
        self.log_dict(
            {f"{stage}/{k}": v for k, v in values.items()},
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
            prog_bar=False,
            sync_dist=True,
        )
        agreement = (pred == (y if self.regime == "joint" else clf_pred)).float()
        self.selection_parts[f"{stage}_agreement"].update(agreement)
        self.selection_parts[f"{stage}_recon_relative"].update(relative)
        return loss

    def _log_epoch(self, stage: str) -> None:
        agreement = self.selection_parts[f"{stage}_agreement"]
        relative = self.selection_parts[f"{stage}_recon_relative"]
        if agreement.update_count == 0:
            return
        score = agreement.compute() * (1 - relative.compute()).clamp(min=0)
        agreement.reset()
        relative.reset()
        self.log(f"{stage}/selection", score, prog_bar=stage == "val")
