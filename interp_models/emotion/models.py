"""A2E and A2Mid2E: emotion from audio directly, or through seven mid-level qualities.

Chowdhury, Vall, Haunschmid, Widmer, "Towards explainable music emotion recognition: the
route via mid-level features", ISMIR 2019. Both models share the backbone design of
``interp_models.blackbox.cnn.SpectrogramCNN`` (its ``embed()`` is the pooled embedding),
with ``n_bands`` > 1 the ``BandPooledCNN`` variant that keeps coarse frequency bands in
the embedding (same blocks, same taps):

- ``A2E``: embedding -> Linear -> 8 emotions (the black box);
- ``MidLevelEmotionModel`` (A2Mid2E): embedding -> Linear -> 7 qualities -> Linear -> 8
  emotions. The second layer is the whole path from qualities to emotions, so the effect
  of quality ``j`` on emotion ``i`` is exactly ``W[i, j] * quality_j`` and the prediction is
  ``bias_i + sum_j effect_ij``: an explanation that is the model, not an estimate of it.

Both work in standardised units (targets z-scored with training-split statistics, kept as
buffers so a checkpoint carries them): a quality at its average level has no effect, and
``to_ratings`` maps outputs back to the datasets' rating scales.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.data.midlevel import EMOTIONS, QUALITIES
from interp_models.explanation import Explanation


class BandPooledCNN(SpectrogramCNN):
    """``SpectrogramCNN`` whose embedding keeps ``n_bands`` coarse frequency bands.

    ``SpectrogramCNN.embed`` averages the last feature map over frequency, which makes
    it nearly blind to register: it cannot tell a bass drone from a melody line, or the
    level of the drums relative to the pitched parts. Here the last map is average-pooled
    to ``n_bands`` bands (about 1.5 octaves each on a log-frequency input) before the same
    time max + mean, so the embedding is ``channels[-1] * n_bands`` wide. The blocks, and
    so every tap an interpreter or explainer uses, are unchanged.
    """

    def __init__(
        self,
        n_outputs: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        n_bands: int = 4,
    ):
        super().__init__(n_outputs, channels, dropout)
        if n_bands < 1:
            raise ValueError(f"n_bands must be >= 1, got {n_bands}")
        self.n_bands = n_bands
        self.embedding_dim = channels[-1] * n_bands
        self.head = nn.Linear(self.embedding_dim, n_outputs)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.feature_map(spec)
        x = F.adaptive_avg_pool2d(x, (self.n_bands, x.shape[-1]))
        x = x.amax(dim=3) + x.mean(dim=3)
        return torch.flatten(x, 1)


def backbone(
    n_outputs: int, channels: Sequence[int], dropout: float, n_bands: int
) -> SpectrogramCNN:
    """``SpectrogramCNN`` (``n_bands=1``: the frequency-mean embedding) or ``BandPooledCNN``."""
    if n_bands == 1:
        return SpectrogramCNN(n_outputs, channels, dropout)
    return BandPooledCNN(n_outputs, channels, dropout, n_bands)


class _Standardised(nn.Module):
    """Buffers with the rating statistics the model's z-units refer to."""

    def _init_stats(self, n_qualities: int, n_emotions: int) -> None:
        self.register_buffer("quality_mean", torch.zeros(n_qualities))
        self.register_buffer("quality_std", torch.ones(n_qualities))
        self.register_buffer("emotion_mean", torch.zeros(n_emotions))
        self.register_buffer("emotion_std", torch.ones(n_emotions))

    def set_stats(self, stats: dict[str, Sequence[float]]) -> None:
        """Set ``quality_mean``, ``quality_std``, ``emotion_mean``, ``emotion_std``."""
        for name in ("quality_mean", "quality_std", "emotion_mean", "emotion_std"):
            if name in stats:
                buf = getattr(self, name)
                value = torch.as_tensor(stats[name], dtype=buf.dtype)
                if value.shape != buf.shape:
                    raise ValueError(f"{name}: expected shape {tuple(buf.shape)}, got {value}")
                buf.copy_(value)

    def to_ratings(self, z: torch.Tensor, kind: str = "emotion") -> torch.Tensor:
        """Standardised outputs back on the rating scale (``kind``: emotion or quality)."""
        if kind not in ("emotion", "quality"):
            raise ValueError(f"kind must be 'emotion' or 'quality', got {kind!r}")
        return z * getattr(self, f"{kind}_std") + getattr(self, f"{kind}_mean")


class A2E(_Standardised):
    """Black-box emotion CNN: spectrogram (batch, freq, time) -> (batch, 8) emotions (z)."""

    def __init__(
        self,
        n_emotions: int = len(EMOTIONS),
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        n_bands: int = 1,
        n_qualities: int = len(QUALITIES),
    ):
        super().__init__()
        self.backbone = backbone(n_emotions, channels, dropout, n_bands)
        self.n_emotions = n_emotions
        self._init_stats(n_qualities, n_emotions)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        return self.backbone.embed(spec)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.backbone(spec)


class MidLevelEmotionModel(_Standardised):
    """A2Mid2E: spectrogram -> 7 mid-level qualities -> one linear layer -> 8 emotions.

    ``forward`` returns the emotions (so post-hoc explainers can treat it like ``A2E``);
    ``forward_both`` returns (qualities, emotions); ``explain`` gives the effects.
    """

    def __init__(
        self,
        n_qualities: int = len(QUALITIES),
        n_emotions: int = len(EMOTIONS),
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
        n_bands: int = 1,
        quality_names: Sequence[str] = QUALITIES,
        emotion_names: Sequence[str] = EMOTIONS,
    ):
        super().__init__()
        if len(quality_names) != n_qualities or len(emotion_names) != n_emotions:
            raise ValueError("quality_names / emotion_names must match n_qualities / n_emotions")
        # The backbone's own head is the embedding -> 7 quality layer.
        self.backbone = backbone(n_qualities, channels, dropout, n_bands)
        self.emotion_head = nn.Linear(n_qualities, n_emotions)
        self.quality_names, self.emotion_names = list(quality_names), list(emotion_names)
        self.n_qualities, self.n_emotions = n_qualities, n_emotions
        self._init_stats(n_qualities, n_emotions)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        return self.backbone.embed(spec)

    def qualities(self, spec: torch.Tensor) -> torch.Tensor:
        """Predicted mid-level qualities (batch, 7), standardised."""
        return self.backbone(spec)

    def forward_both(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.qualities(spec)
        return q, self.emotion_head(q)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.forward_both(spec)[1]

    @property
    def mapping(self) -> torch.Tensor:
        """The learned (8, 7) quality -> emotion weights (standardised units)."""
        return self.emotion_head.weight

    @staticmethod
    def effects(qualities: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Effect of each quality on each emotion, ``W[i, j] * q_j``: (batch, 8, 7)."""
        return qualities[:, None, :] * weight[None, :, :]

    @staticmethod
    def relative_effects(effects: torch.Tensor) -> torch.Tensor:
        """``effect / sum_j |effect_j|`` per (clip, emotion); 0 where every effect is 0."""
        total = effects.abs().sum(-1, keepdim=True)
        return torch.where(total > 0, effects / total.clamp_min(1e-12), torch.zeros_like(effects))

    @torch.no_grad()
    def explain(
        self, inputs: torch.Tensor, *, target: torch.Tensor | int | None = None
    ) -> Explanation:
        """Effects of the qualities on emotion ``target`` for each clip.

        Parameters
        ----------
        inputs : (batch, freq, time) spectrograms.
        target : emotion index per clip (or one for all), the same output index as for a
            post-hoc method on ``forward`` (or on ``A2E``); default: each clip's emotion
            with the highest standardised prediction (the one most above its average).

        Returns
        -------
        ``Explanation`` over ``"qualities"``: ``attribution`` (batch, 7) effects on the
        target, in standardised emotion units, summing with ``maps["bias"]`` to the
        prediction. ``maps``: ``effects`` and ``relative_effects`` (batch, 8, 7) for every
        emotion, ``qualities`` (batch, 7) and ``emotions`` (batch, 8) predictions (z),
        ``bias`` (batch,) of the target. ``relevance`` and ``grid`` are None: a quality is
        a property of the whole clip, with no time-frequency map of its own (post-hoc
        methods on ``qualities`` can give one).
        """
        start = time.perf_counter()
        q, e = self.forward_both(inputs)
        if target is None:
            target = e.argmax(dim=1)
        target = torch.as_tensor(target, device=inputs.device).long().expand(len(inputs)).clone()
        if ((target < 0) | (target >= self.n_emotions)).any():
            raise ValueError(f"target must be in [0, {self.n_emotions}), got {target.tolist()}")
        eff = self.effects(q, self.emotion_head.weight)
        rows = torch.arange(len(inputs), device=inputs.device)
        return Explanation(
            attribution=eff[rows, target],
            grouping="qualities",
            target=target,
            method="midlevel_linear",
            n_evals=1,
            seconds=(time.perf_counter() - start) / max(1, len(inputs)),
            maps={
                "effects": eff,
                "relative_effects": self.relative_effects(eff),
                "qualities": q,
                "emotions": e,
                "bias": self.emotion_head.bias[target],
            },
            labels=list(self.quality_names),
        )
