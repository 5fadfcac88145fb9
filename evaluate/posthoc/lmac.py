"""L-MAC, a learned post-hoc masker: Listenable Maps for Audio Classifiers.

Paissan, Ravanelli, Subakan, ICML 2024 (arXiv 2403.13086). Written from the paper; the
masking domain (a mask on ``log1p |X|``, ``expm1`` before the classifier's filterbank)
follows SpeechBrain's ESC-50 interpretability recipe, read, not copied.

A decoder reads the frozen classifier's hidden feature maps (the layers the NMF
interpreter taps) and outputs a mask in [0, 1] on the classifier's mel grid, carried to
the STFT bins through the filterbank (``evaluate.masking.mel_to_stft_matrix``). It is
trained (``train.lmac``) so that the classifier on the masked-in input keeps its prediction
and on the masked-out input loses it, with a small mask (``train.masking``). Like the
paper's, the mask explains the classifier's prediction, one forward pass per clip.

The explanation is what the mask keeps, ``M * log1p|X|``, carried to the log-mel grid as the
NMF interpreter's is (``evaluate.masking.stft_to_mel``), so both are scored alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from evaluate.masking import mel_to_stft_matrix
from evaluate.runs import load_checkpoint
from interp_models.nmf.interpreter import BASELINES, LayerTaps, conv_branches


class MaskDecoder(nn.Module):
    """Hidden feature maps -> a mask (B, n_mels, T) in [0, 1] on the input's grid.

    One conv branch per tapped layer, each resampled (bilinear) to the input's
    (mel bands, frames) grid, concatenated, then 2-D convolutions and a sigmoid.
    """

    def __init__(self, in_channels: Sequence[int], hidden: int = 32):
        super().__init__()
        self.branches = conv_branches(in_channels, hidden)
        self.head = nn.Sequential(
            nn.Conv2d(hidden * len(in_channels), hidden, 3, padding=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, feature_maps: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        parts = [
            F.interpolate(branch(f), size=size, mode="bilinear", align_corners=False)
            for branch, f in zip(self.branches, feature_maps, strict=True)
        ]
        return torch.sigmoid(self.head(torch.cat(parts, dim=1)))[:, 0]


class LMAC(nn.Module):
    """A spectrogram classifier and its L-MAC mask decoder.

    Parameters
    ----------
    classifier : log-mel classifier (e.g. ``SpectrogramCNN``), input (B, n_mels, T).
    layers : classifier modules whose outputs the decoder reads.
    mel_fb : (n_mels, n_fft // 2 + 1) the classifier front end's filterbank.
    hidden : decoder channels.
    baseline : what a removed bin becomes, ``"silence"`` (the paper's) or ``"floor"`` (the
        clip's noise floor); the explanation is what the mask keeps above it.
    """

    def __init__(
        self,
        classifier: nn.Module,
        layers: Sequence[str],
        mel_fb: torch.Tensor,
        hidden: int = 32,
        baseline: str = "silence",
    ):
        super().__init__()
        if baseline not in BASELINES:
            raise ValueError(f"lmac.baseline: expected one of {BASELINES}, got {baseline!r}")
        self.classifier, self.baseline = classifier, baseline
        self.taps = LayerTaps(classifier, layers)
        self.decoder = MaskDecoder(self.taps.channels, hidden)
        self.register_buffer("to_stft", mel_to_stft_matrix(mel_fb), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask on the STFT bins (B, n_fft // 2 + 1, T), the classifier's logits)."""
        logits = self.classifier(x)
        mel_mask = self.decoder(self.taps.collect(), tuple(x.shape[-2:]))
        return torch.einsum("fm,bmt->bft", self.to_stft.to(mel_mask), mel_mask), logits


def load_lmac(
    run_dir: Path, config: dict, metrics: dict, classifier: nn.Module, mel_fb: torch.Tensor
) -> LMAC:
    """The L-MAC stage of a finished run on ``classifier`` (the run's own): the decoder of
    the checkpoint kept on validation (``metrics["lmac"]["best_checkpoint"]``, relative to
    the run), loaded as weights only, no pickled code."""
    if "lmac" not in metrics:
        raise ValueError(f"{run_dir}: this run trained no L-MAC (lmac.enabled=false?)")
    stage = config["lmac"]
    model = LMAC(
        classifier,
        stage["layers"],
        mel_fb,
        hidden=stage["hidden"],
        baseline=stage.get("baseline", "silence"),
    )
    state = load_checkpoint(Path(run_dir) / metrics["lmac"]["best_checkpoint"])["state_dict"]
    prefix = "model.decoder."
    model.decoder.load_state_dict(
        {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    )
    return model.eval()
