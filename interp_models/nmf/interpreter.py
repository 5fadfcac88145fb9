"""NMF-dictionary interpreter on a classifier's hidden layers (Listen to Interpret).

Parekh, Parekh, Mozharovskyi, Richard, d'Alché-Buc, "Listen to Interpret: Post-hoc
Interpretability for Audio Networks with NMF", NeurIPS 2022; the by-design (jointly
trained) variant follows arXiv 2305.07132. Written from the papers, no code copied.

The interpreter Psi maps the feature maps of named hidden layers to non-negative time
activations H (K x T) of a frozen dictionary W so that ``W H`` reconstructs the input's
``log1p |STFT|``; Theta attention-pools H over time into z (K) and predicts the classes
with a bias-free linear layer, so class evidence is ``z_k * theta_{c,k}`` per component.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from interp_models.explanation import Explanation, Grid


def _out_channels(module: nn.Module) -> int:
    """Output channels of a conv block: those of its last Conv2d / BatchNorm2d."""
    channels = [
        m.out_channels if isinstance(m, nn.Conv2d) else m.num_features
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.BatchNorm2d)
    ]
    if not channels:
        raise ValueError(f"cannot tell the output channels of {type(module).__name__}")
    return channels[-1]


class LayerTaps:
    """Forward hooks that keep the latest output of named submodules of a model."""

    def __init__(self, model: nn.Module, names: Sequence[str]):
        modules = self.resolve(model, names)
        self.names = list(names)
        self.outputs: dict[str, torch.Tensor] = {}
        self.channels = [_out_channels(m) for m in modules]
        for name, module in zip(names, modules, strict=True):
            module.register_forward_hook(self._hook(name))

    @staticmethod
    def resolve(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
        """The named submodules; an error lists the missing names and the top-level ones."""
        available = dict(model.named_modules())
        missing = [n for n in names if n not in available]
        if missing:
            top = [n for n in available if n and "." not in n]
            raise ValueError(f"interpreter.layers: no module named {missing} (top-level: {top})")
        return [available[n] for n in names]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            self.outputs[name] = output

        return hook

    def collect(self) -> list[torch.Tensor]:
        return [self.outputs.pop(n) for n in self.names]


def conv_branches(in_channels: Sequence[int], out: int) -> nn.ModuleList:
    """One 3x3 conv + batch norm + ReLU per tapped layer (its channels -> ``out``)."""
    return nn.ModuleList(
        nn.Sequential(nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU())
        for c in in_channels
    )


class Psi(nn.Module):
    """Hidden feature maps -> non-negative activations H (batch, K, T).

    One conv branch per tapped layer collapses frequency and is resampled to the
    spectrogram's T frames; the concatenated branches go through 1-D convolutions whose
    ReLU output is H (as in the paper's interpreter, smaller).
    """

    def __init__(
        self, in_channels: Sequence[int], n_components: int, branch: int = 64, hidden: int = 256
    ):
        super().__init__()
        self.branches = conv_branches(in_channels, branch)
        self.temporal = nn.Sequential(
            nn.Conv1d(branch * len(in_channels), hidden, 3, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(hidden, n_components, 1),
            nn.ReLU(),
        )

    def forward(self, feature_maps: list[torch.Tensor], n_frames: int) -> torch.Tensor:
        parts = []
        for branch, fmap in zip(self.branches, feature_maps, strict=True):
            y = branch(fmap).mean(dim=2)  # (B, branch, T_l)
            parts.append(F.interpolate(y, size=n_frames, mode="linear", align_corners=False))
        return self.temporal(torch.cat(parts, dim=1))


class AttentionPool(nn.Module):
    """Per-component softmax attention over time: z_k = sum_t a_kt h_kt."""

    def __init__(self, n_components: int):
        super().__init__()
        self.score = nn.Conv1d(n_components, n_components, 1, groups=n_components)

    def weights(self, H: torch.Tensor) -> torch.Tensor:
        """a_kt, softmax over time per component: (B, K, T)."""
        return torch.softmax(self.score(H), dim=-1)

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        return (self.weights(H) * H).sum(dim=-1)


RELEVANCE = ("global", "time")
BASELINES = ("silence", "floor")


def noise_floor(spec: torch.Tensor, quantile: float = 0.2) -> torch.Tensor:
    """Each clip's stationary background: per frequency, the ``quantile`` of ``log1p|X|``
    over time, (B, F, 1). Replacing a bin by it removes what stands above the background
    rather than leaving digital silence, which a classifier never heard in training."""
    return torch.quantile(spec, quantile, dim=-1, keepdim=True)


@dataclass
class InterpreterOutput:
    clf_logits: torch.Tensor  # (B, C) the classifier's
    logits: torch.Tensor  # (B, C) the interpreter head's
    H: torch.Tensor  # (B, K, T) activations
    z: torch.Tensor  # (B, K) pooled activations
    attention: torch.Tensor  # (B, K, T) pooling weights a_kt, z_k = sum_t a_kt h_kt


class NMFInterpreter(nn.Module):
    """A classifier plus its NMF interpreter.

    Parameters
    ----------
    classifier : a spectrogram classifier (e.g. ``SpectrogramCNN``), input (B, F_in, T).
    layers : names of the classifier modules to tap (``model.get_submodule`` names).
    W : (freq, K) non-negative dictionary over the STFT bins of ``log1p |X|``; frozen.
    n_classes : classifier outputs.
    is_noise : (K,) bool, components never reported as relevant.
    relevance : ``"global"``: one relevance per component, r_k = z_k theta_{c,k} / max
        (Parekh et al. 2022); ``"time"``: one per component and frame, the head's own
        evidence e_kt = theta_{c,k} a_kt h_kt, whose sum over k and t is exactly the head's
        logit for c (see ``evidence``). The faithful regime trains with ``"time"``.
    baseline : what a removed bin becomes: ``"silence"`` (L2I, L-MAC) or ``"floor"``, the
        clip's noise floor (``noise_floor``); the relevance map is what the explanation keeps
        above it, ``M * (log1p|X| - baseline)``, as attributions are taken relative to a
        reference (the faithful regime can train its mask against either).
    """

    def __init__(
        self,
        classifier: nn.Module,
        layers: Sequence[str],
        W: torch.Tensor,
        n_classes: int,
        is_noise: torch.Tensor | None = None,
        branch_channels: int = 64,
        hidden: int = 256,
        relevance: str = "global",
        baseline: str = "silence",
    ):
        super().__init__()
        if relevance not in RELEVANCE:
            raise ValueError(
                f"interpreter.relevance: expected one of {RELEVANCE}, got {relevance!r}"
            )
        if baseline not in BASELINES:
            raise ValueError(f"interpreter.baseline: expected one of {BASELINES}, got {baseline!r}")
        self.relevance_mode, self.baseline = relevance, baseline
        self.classifier = classifier
        self.taps = LayerTaps(classifier, layers)
        k = W.shape[1]
        self.register_buffer("W", W.detach().clone().float())
        noise = torch.zeros(k, dtype=torch.bool) if is_noise is None else is_noise.bool()
        self.register_buffer("is_noise", noise.clone())
        self.psi = Psi(self.taps.channels, k, branch_channels, hidden)
        self.pool = AttentionPool(k)
        self.theta = nn.Linear(k, n_classes, bias=False)

    @property
    def n_components(self) -> int:
        return self.W.shape[1]

    def forward(self, x: torch.Tensor) -> InterpreterOutput:
        clf_logits = self.classifier(x)
        H = self.psi(self.taps.collect(), n_frames=x.shape[-1])
        a = self.pool.weights(H)
        z = (a * H).sum(dim=-1)
        return InterpreterOutput(clf_logits, self.theta(z), H, z, a)

    def reconstruct(self, H: torch.Tensor) -> torch.Tensor:
        """W H: (B, freq, T) estimate of ``log1p |X|``."""
        return torch.einsum("fk,bkt->bft", self.W, H)

    def relevance(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """r_k = z_k theta_{c,k} / max_k z_k theta_{c,k} (Parekh et al. 2022, eq. 6)."""
        evidence = z * self.theta.weight[target]
        top = evidence.amax(dim=1, keepdim=True)
        return evidence / torch.where(top > 0, top, torch.ones_like(top))

    def evidence(self, out: InterpreterOutput, target: torch.Tensor) -> torch.Tensor:
        """e_kt = theta_{c,k} a_kt h_kt (B, K, T) for class ``target`` (B,).

        Under attention pooling the head's logit is ``sum_k theta_{c,k} sum_t a_kt h_kt``,
        so ``e.sum((1, 2))`` is exactly the head's logit for c: the explanation in time is
        the model's own computation, not an approximation of it.
        """
        return self.theta.weight[target].unsqueeze(-1) * out.attention * out.H

    def time_relevance(self, e: torch.Tensor, threshold: float) -> torch.Tensor:
        """rho_kt = clamp(relu(e_kt) / (threshold * max_{k,t} relu(e_kt)), 0, 1).

        A (component, frame) is fully kept once its evidence reaches ``threshold`` times the
        clip's largest, partly below (linearly, so a trained mask has a gradient); noise
        components never are.
        """
        pos = e.clamp(min=0) * (~self.is_noise).to(e.dtype)[None, :, None]
        top = pos.amax(dim=(1, 2), keepdim=True)
        return (pos / (threshold * top).clamp_min(1e-12)).clamp(max=1)

    def component_mask(
        self,
        H: torch.Tensor,
        selected: torch.Tensor,
        eps: float = 1e-6,
        full: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """M = sum_k s_k w_k h_k / (W H + eps), in [0, 1]: (B, freq, T).

        ``selected`` weighs components, (B, K) (bool: the relevant ones) or per frame
        (B, K, T) (``time_relevance``); ``full``: ``W H`` if already computed.
        """
        weights = selected.to(H.dtype)
        weights = weights.unsqueeze(-1) if weights.dim() == 2 else weights
        part = torch.einsum("fk,bkt->bft", self.W, H * weights)
        full = self.reconstruct(H) if full is None else full
        return (part / (full + eps)).clamp(0, 1)

    def explanation_mask(
        self,
        out: InterpreterOutput,
        target: torch.Tensor,
        threshold: float,
        full: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(attribution (B, K), relevant (B, K) bool, mask (B, freq, T)) for ``target``.

        ``"global"``: r_k and the mask of the components with r_k > threshold (noise
        components excluded); ``"time"``: the component totals sum_t e_kt (they sum to the
        head's logit), the components kept fully at some frame, and the mask weighted by
        rho_kt frame by frame. The faithful regime trains on exactly this mask.
        """
        if self.relevance_mode == "time":
            e = self.evidence(out, target)
            rho = self.time_relevance(e, threshold)
            mask = self.component_mask(out.H, rho, full=full)
            return e.sum(dim=-1), rho.amax(dim=-1) >= 1.0, mask
        rel = self.relevance(out.z, target)
        relevant = (rel > threshold) & ~self.is_noise
        return rel, relevant, self.component_mask(out.H, relevant, full=full)

    @torch.no_grad()
    def explain(
        self,
        inputs: torch.Tensor,
        *,
        target: torch.Tensor | int | None = None,
        threshold: float = 0.2,
        spec: torch.Tensor | None = None,
        grid: Grid | None = None,
    ) -> Explanation:
        """Component relevance for ``target`` (default: the classifier's prediction).

        Parameters
        ----------
        inputs : (B, F_in, T) the classifier's input (e.g. log-mel spectrograms).
        target : class per clip (or one for all), as for a post-hoc method on
            ``classifier``; default: the classifier's prediction.
        threshold : a component is relevant when its relevance r_k exceeds it (noise
            components never are); with ``relevance="time"``, the share of the clip's
            largest evidence from which a (component, frame) is kept fully.
        spec : (B, freq, T) ``log1p |X|`` of the clips on the dictionary's STFT grid; the
            relevance map is ``mask * spec`` (what the listenable explanation keeps;
            with ``baseline="floor"``, ``mask * (spec - floor)``, what it keeps above the
            clip's noise floor).
            Default: the model's own reconstruction ``W H`` stands in for it.
        grid : the dictionary's STFT grid with its axis values (e.g.
            ``spectrogram_grid(stft, T)``); default ``Grid.time_frequency("stft")``
            without values (cells are bin and frame indices).

        Returns
        -------
        ``Explanation`` over ``"components"``: ``attribution`` (B, K) relevance r_k
        (``"time"``: sum_t e_kt, which sums over k to the head's logit for the target);
        ``relevance`` (B, freq, T) ``mask * spec`` on ``grid`` (name ``"stft"``); maps
        ``mask`` (B, freq, T), the time-frequency mask of the relevant components,
        ``relevant`` (B, K), ``H`` (B, K, T), and the logits of the interpreter head
        (``logits``) and of the classifier (``clf_logits``).
        """
        start = time.perf_counter()
        out = self(inputs)
        if target is None:
            target = out.clf_logits.argmax(dim=1)
        target = torch.as_tensor(target, device=inputs.device).long().expand(len(inputs)).clone()
        full = self.reconstruct(out.H)  # W H: the mask's denominator, the default spec
        rel, relevant, mask = self.explanation_mask(out, target, threshold, full=full)
        spec = full if spec is None else spec.to(mask)
        if spec.shape != mask.shape:
            raise ValueError(f"spec {tuple(spec.shape)} must be (B, freq, T) {tuple(mask.shape)}")
        if self.baseline == "floor":
            spec = (spec - noise_floor(spec)).clamp(min=0)
        return Explanation(
            attribution=rel,
            grouping="components",
            target=target,
            method="nmf_interpreter",
            n_evals=1,
            seconds=(time.perf_counter() - start) / len(inputs),
            maps={
                "mask": mask,
                "relevant": relevant,
                "H": out.H,
                "logits": out.logits,
                "clf_logits": out.clf_logits,
            },
            labels=[f"k={k}" for k in range(self.n_components)],
            relevance=mask * spec,
            grid=Grid.time_frequency("stft") if grid is None else grid,
        )
