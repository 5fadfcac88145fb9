"""Concept Relevance Propagation: what single channels of a layer contribute, made audible.

Achtibat, Dreyer, Eisenbraun, Bosse, Wiegand, Samek, Lapuschkin, "From attribution maps to
human-understandable explanations through Concept Relevance Propagation", Nature Machine
Intelligence 2023. Written here on zennit, as zennit-crp does it (zennit-crp itself pins
zennit <= 0.4.6 and torch < 2, so it cannot be installed with this stack):

* **conditional relevance**: the LRP backward pass of ``evaluate.posthoc.lrp`` (the same
  composites, starting from the target logit) with the relevance at the output of one
  layer zeroed for every channel but the chosen one. The input relevance of that pass is
  the channel's *conditional heatmap*; LRP is linear in the relevance it starts from, so
  the conditional heatmaps of all channels of a layer sum to the unconditional heatmap
  (:func:`conservation_error` checks it);
* **channel relevance**: the relevance arriving at each channel of the layer (summed over
  its time / frequency positions), one unconditional pass;
* **relevance maximisation**: the clips of a split on which a channel is most relevant
  (each clip explained for its own label), its *reference clips*; they are localised with
  the channel's conditional heatmap on each (zennit-crp issue #11).

Several channels are conditioned in one backward pass by repeating the clips, one row per
(clip, channel), as zennit-crp's batched conditions do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from evaluate.posthoc.lrp import lrp_module, make_composite

__all__ = ["ConceptRelevance", "conservation_error", "relevance_maximisation"]


class ConceptRelevance:
    """CRP for one layer of a model (``SpectrogramCNN``, ``WaveformCNN`` or any module).

    Parameters
    ----------
    model : the classifier; explained in eval mode, never modified.
    layer : the name of the conditioned module (``model.get_submodule(layer)``, e.g.
        ``"block3"``); its output is ``(batch, channels, ...)``.
    composite : a name of ``evaluate.posthoc.lrp.COMPOSITES``; default as ``lrp_attribute``
        (``epsilon_plus_flat`` for spectrograms, ``epsilon_plus`` for waveforms).
    epsilon : the epsilon rule's stabiliser.
    rows_per_pass : at most this many (clip, channel) rows per backward pass (memory).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        composite: str | None = None,
        epsilon: float = 1e-6,
        rows_per_pass: int = 64,
    ):
        try:
            self.layer = model.get_submodule(layer)
        except AttributeError:
            names = [n for n, m in model.named_children()]
            raise ValueError(
                f"layer: the model has no module {layer!r}; try one of {names}"
            ) from None
        self.model, self.layer_name = model.eval(), layer
        self.composite, self.epsilon = composite, epsilon
        self.rows_per_pass = max(int(rows_per_pass), 1)
        self._module = lrp_module(model).eval()

    def n_channels(self, x: torch.Tensor) -> int:
        """Channels of the layer's output for inputs shaped like ``x``."""
        out = {}
        handle = self.layer.register_forward_hook(lambda m, i, o: out.setdefault("o", o))
        with torch.no_grad():
            self._module(x[:1])
        handle.remove()
        return int(out["o"].shape[1])

    def channel_relevance(
        self, x: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unconditional pass: ``(channel relevance (B, C), input heatmap like x)``."""
        seen: dict[str, torch.Tensor] = {}

        def record(grad: torch.Tensor) -> None:  # None: the relevance passes unchanged
            seen["relevance"] = grad.detach()

        heat = self._backward(x, target, record)
        return seen["relevance"].flatten(2).sum(dim=2), heat

    def conditional_heatmaps(
        self, x: torch.Tensor, target: torch.Tensor, channels: Sequence[int] | torch.Tensor
    ) -> torch.Tensor:
        """``(B, K, *x.shape[1:])``: the heatmap of each clip conditioned on each of the
        ``K`` channels (relevance at the layer kept for that channel only)."""
        channels = torch.as_tensor(channels, dtype=torch.long).reshape(-1)
        b, k = len(x), len(channels)
        rows = torch.arange(b * k)
        clip, chan = rows // k, channels[rows % k]
        parts = []
        for lo in range(0, b * k, self.rows_per_pass):
            sel = slice(lo, lo + self.rows_per_pass)
            parts.append(self._conditioned(x[clip[sel]], target[clip[sel]], chan[sel]))
        return torch.cat(parts).reshape(b, k, *x.shape[1:])

    def per_clip_conditional(
        self, x: torch.Tensor, target: torch.Tensor, channel: torch.Tensor
    ) -> torch.Tensor:
        """Heatmaps like ``x``, clip ``i`` conditioned on its own ``channel[i]``."""
        parts = [
            self._conditioned(
                x[lo : lo + self.rows_per_pass],
                target[lo : lo + self.rows_per_pass],
                channel[lo : lo + self.rows_per_pass],
            )
            for lo in range(0, len(x), self.rows_per_pass)
        ]
        return torch.cat(parts)

    def _conditioned(
        self, x: torch.Tensor, target: torch.Tensor, chan: torch.Tensor
    ) -> torch.Tensor:
        def keep_one(grad: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros(grad.shape[:2], dtype=grad.dtype, device=grad.device)
            mask[torch.arange(len(grad)), chan.to(grad.device)] = 1.0
            return grad * mask.reshape(*mask.shape, *([1] * (grad.dim() - 2)))

        return self._backward(x, target, keep_one)

    def _backward(self, x: torch.Tensor, target: torch.Tensor, on_relevance) -> torch.Tensor:
        """One LRP pass starting from the target logit, ``on_relevance`` applied to the
        relevance (zennit's gradient) at the layer's output; returns the input relevance."""
        waveform = x.dim() == 2
        name = self.composite or ("epsilon_plus" if waveform else "epsilon_plus_flat")
        comp = make_composite(name, waveform, x, self.epsilon)
        x = x.detach().clone().requires_grad_(True)
        with comp.context(self._module) as modified, self._hook(on_relevance):
            out = modified(x)
            start = torch.zeros_like(out)
            rows = torch.arange(len(x), device=x.device)
            start[rows, target.to(x.device)] = out[rows, target.to(x.device)].detach()
            (relevance,) = torch.autograd.grad(out, x, start)
        return relevance.detach()

    @contextmanager
    def _hook(self, on_relevance) -> Iterator[None]:
        def forward_hook(module, inputs, output):
            if output.requires_grad:
                output.register_hook(on_relevance)

        handle = self.layer.register_forward_hook(forward_hook)
        try:
            yield
        finally:
            handle.remove()


def conservation_error(crp: ConceptRelevance, x: torch.Tensor, target: torch.Tensor) -> float:
    """``max |sum_c heatmap_c - heatmap| / max |heatmap|`` over the clips of ``x``: how far
    the conditional heatmaps of all channels are from summing to the unconditional one."""
    _, heat = crp.channel_relevance(x, target)
    total = crp.conditional_heatmaps(x, target, range(crp.n_channels(x))).sum(dim=1)
    return float((total - heat).abs().max() / heat.abs().max().clamp_min(1e-30))


@dataclass
class RelevanceScan:
    """Channel relevance of every clip of a split, each explained for its own label.

    Attributes
    ----------
    relevance : (N, C) relevance of each channel on each clip.
    labels : (N,) the clips' labels (the explained target).
    rows : (N,) the clips' indices in the dataset.
    """

    relevance: torch.Tensor
    labels: torch.Tensor
    rows: torch.Tensor

    def top_channels(self, label: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``n`` channels with the highest mean relevance over the clips of ``label``
        (a class's concepts), and those means."""
        own = self.relevance[self.labels == label]
        if not len(own):
            raise ValueError(f"class: no clip of class {label} in the scanned split")
        mean = own.mean(dim=0)
        top = mean.argsort(descending=True)[:n]
        return top, mean[top]

    def references(self, channel: int, k: int) -> torch.Tensor:
        """Positions (into ``rows``) of the ``k`` clips where ``channel`` is most relevant
        (relevance maximisation; ties broken by position)."""
        order = torch.sort(self.relevance[:, channel], descending=True, stable=True).indices
        return order[:k]

    def purity(self, channel: int, k: int, label: int) -> float:
        """Share of the ``k`` reference clips of ``channel`` whose label is ``label``."""
        return float((self.labels[self.references(channel, k)] == label).double().mean())


def relevance_maximisation(
    crp: ConceptRelevance,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    rows: torch.Tensor | None = None,
    batch_size: int = 32,
) -> RelevanceScan:
    """Scan ``inputs`` (N, ...) on the model's device: the relevance of every channel of
    ``crp``'s layer on each clip, explained for its own label."""
    parts = [
        crp.channel_relevance(inputs[lo : lo + batch_size], labels[lo : lo + batch_size])[0].cpu()
        for lo in range(0, len(inputs), batch_size)
    ]
    rows = torch.arange(len(inputs)) if rows is None else torch.as_tensor(rows)
    return RelevanceScan(torch.cat(parts), labels.cpu(), rows)
