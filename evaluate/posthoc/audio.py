"""Listenable explanations: every post-hoc explanation as audio.

* Time-frequency explanations (any model): the input's STFT magnitude is masked with the
  normalised positive relevance, ``M = relu(R) / max relu(R)`` in [0, 1], and inverted
  with the input's phase (as the listenable NMF explanation of Parekh et al. 2022 and
  L-MAC, Paissan et al. 2024). Relevance on log-mel bands is carried to STFT bins with
  the normalised transpose of the mel filterbank (``mel_mask_to_stft``).
* Waveform relevance (``Samples`` grouping): ``x * relu(R) / max relu(R)``, the input
  gated sample by sample by its normalised positive relevance. The rectification is on
  the relevance, not on the waveform: ``relu(x) * R`` would half-wave rectify the signal
  (an audible distortion) and let negative relevance flip its sign. Waveform models also
  get the time-frequency version above, from the DFT-LRP map of ``Samples(stft=...)``.

Written by hand: no library produces audio from attributions.
"""

from __future__ import annotations

from pathlib import Path

import torch

from evaluate.posthoc.groupings import Grouping, Samples, mel_mask_to_stft
from interp_models.audio.io import write_audio
from interp_models.explanation import Explanation

__all__ = ["audible_waveform", "listenable", "masked_inversion", "positive_mask", "write_wavs"]


def positive_mask(relevance: torch.Tensor) -> torch.Tensor:
    """``relu(R) / max relu(R)`` per clip, in [0, 1]; an all-non-positive clip gives 0."""
    pos = relevance.clamp_min(0)
    top = pos.flatten(1).amax(dim=1).reshape(-1, *([1] * (pos.dim() - 1)))
    return torch.where(top > 0, pos / torch.where(top > 0, top, 1.0), 0.0)


def audible_waveform(wave: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """``x * relu(R) / max relu(R)`` for (B, N) waveforms and per-sample relevance."""
    if wave.shape != relevance.shape:
        raise ValueError(f"wave {tuple(wave.shape)} and relevance {tuple(relevance.shape)} differ")
    return wave * positive_mask(relevance)


def masked_inversion(
    wave: torch.Tensor, mask: torch.Tensor, stft, mel_fb: torch.Tensor | None = None
) -> torch.Tensor:
    """Inverse STFT of ``mask * |X|`` with the phase of ``X = stft(wave)``: (B, N).

    ``mask`` (B, F, T) is on the STFT grid, or on mel bands when ``mel_fb`` (M, F) is given.
    """
    if mel_fb is not None:
        mask = mel_mask_to_stft(mask, mel_fb)
    spec = stft.stft(wave)
    if mask.shape != spec.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the STFT {tuple(spec.shape)}")
    magnitude = spec.abs()
    phase = torch.polar(torch.ones_like(magnitude), spec.angle())
    return stft.istft(magnitude * mask.to(magnitude), phase, wave.shape[-1])


@torch.no_grad()
def listenable(
    explanation: Explanation, waves: torch.Tensor, grouping: Grouping, domain: str = "auto"
) -> torch.Tensor:
    """Audio (B, N) of an explanation made with ``grouping`` on clips ``waves`` (B, N).

    ``domain``: ``"time"`` gates the waveform (``Samples`` groupings only), ``"tf"`` masks
    the STFT with the explanation's ``relevance_map``; ``"auto"`` is ``"time"`` for
    ``Samples`` and ``"tf"`` otherwise.
    """
    if domain not in ("auto", "time", "tf"):
        raise ValueError(f"domain must be auto, time or tf, got {domain!r}")
    waves = waves.reshape(len(explanation), -1)
    if domain == "time" and not isinstance(grouping, Samples):
        raise ValueError("domain='time' needs a Samples grouping")
    if isinstance(grouping, Samples) and domain != "tf":
        if grouping.n_segments is None:
            rel = explanation.attribution
        else:
            n = waves.shape[-1]
            ids = torch.arange(n, device=waves.device) * grouping.n_segments // n
            rel = explanation.attribution[:, ids]
        return audible_waveform(waves, rel.to(waves))
    if "relevance_map" not in explanation.maps:
        raise ValueError("the explanation has no relevance_map to listen to")
    stft, mel_fb = grouping.inversion()
    mask = positive_mask(explanation.maps["relevance_map"].to(waves))
    return masked_inversion(waves, mask, stft.to(waves.device), mel_fb)


def write_wavs(
    out_dir: str | Path,
    explanation: Explanation,
    waves: torch.Tensor,
    grouping: Grouping,
    sample_rate: int,
    stems: list[str] | None = None,
) -> list[Path]:
    """Write ``<stem>.<method>.<grouping>.wav`` per clip; returns the paths."""
    audio = listenable(explanation, waves, grouping).cpu().numpy()
    stems = stems or [f"clip{i}" for i in range(len(audio))]
    paths = []
    for stem, clip in zip(stems, audio, strict=True):
        path = Path(out_dir) / f"{stem}.{explanation.method}.{explanation.grouping}.wav"
        write_audio(path, clip, sample_rate)
        paths.append(path)
    return paths
