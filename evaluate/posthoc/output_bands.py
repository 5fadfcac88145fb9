"""Post-hoc explanations of audio-out models: the output's band magnitudes as the outputs.

A waveform-to-waveform model (speech enhancement, denoising, source separation) has no
class to explain. ``OutputBands`` wraps it into a model with one scalar output per
*output band x time division*: the mean STFT magnitude of the model's output waveform in
that frequency band and time division,

    y[b, d] = mean_{(f, t) in band b x division d} |STFT(model(x))|[f, t],

so any post-hoc explainer (``evaluate.posthoc.build_explainer``) answers "which parts of
the input make this part of the output", with ``target = wrapper.output_index(b, d)``.
The partition of the output STFT is the one of ``evaluate.posthoc.groupings.Bands`` (Hz
edges, equal time divisions, bins outside the edges joining the first / last band), so an
output band means the same thing as an input band of that grouping.

Outputs are flattened band-major, ``(batch, n_bands * n_divisions)``: index
``b * n_divisions + d``; ``n_divisions=1`` gives one output per band over the whole clip,
``(batch, n_bands)``. Reading a dense output through a scalar sum over a region of it
is how segmentation models are explained with class-attribution methods (Vinogradova,
Dibrov, Myers, "Towards interpretable semantic segmentation via gradient-weighted class
activation mapping", AAAI 2020); here the regions are time-frequency bands of the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evaluate.posthoc.groupings import Bands
from interp_models.audio.features import Spectrogram

__all__ = ["OutputBands"]


class OutputBands(nn.Module):
    """A waveform-to-waveform model as a model of its output's band magnitudes.

    Parameters
    ----------
    model : maps waveforms (batch, samples) to waveforms (batch, samples') (a trailing
        channel dimension of 1, (batch, 1, samples'), is squeezed).
    sample_rate : the output's sample rate.
    edges_hz : output band edges in Hz (ascending); default ``n_bands`` bands equally
        spaced on the mel scale from 0 Hz to Nyquist, as ``Bands``.
    n_bands : used when ``edges_hz`` is None.
    n_divisions : equal time divisions of the output (1: the whole clip).
    n_fft, hop_length : the output's STFT (Hann window, centred frames).

    Attributes
    ----------
    stft : the output STFT (``interp_models.audio.features.Spectrogram``).
    edges_hz : the band edges used.
    """

    def __init__(
        self,
        model: nn.Module,
        sample_rate: int,
        edges_hz: Sequence[float] | None = None,
        n_bands: int = 8,
        n_divisions: int = 1,
        n_fft: int = 512,
        hop_length: int = 128,
    ) -> None:
        super().__init__()
        self.model = model
        self.stft = Spectrogram(sample_rate, n_fft=n_fft, hop_length=hop_length)
        self._bands = Bands(self.stft, edges_hz, n_bands, n_divisions)
        self.edges_hz = self._bands.edges_hz
        self.n_divisions = self._bands.n_divisions
        self._partitions: dict[int, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}

    @property
    def n_bands(self) -> int:
        return len(self.edges_hz) - 1

    @property
    def n_outputs(self) -> int:
        return self.n_bands * self.n_divisions

    def output_index(self, band: int, division: int = 0) -> int:
        """The output (a ``target``) of ``band`` in time ``division``."""
        if not (0 <= band < self.n_bands and 0 <= division < self.n_divisions):
            raise ValueError(
                f"band {band}, division {division} outside {self.n_bands} bands x "
                f"{self.n_divisions} divisions"
            )
        return band * self.n_divisions + division

    def band_of(self, frequency_hz: float) -> int:
        """The output band holding ``frequency_hz`` (below / above the edges: first / last)."""
        inner = torch.tensor(self.edges_hz[1:-1])
        return int(torch.bucketize(torch.tensor(float(frequency_hz)), inner, right=True))

    def labels(self, n_frames: int) -> list[str]:
        """``"<lo>-<hi> Hz x <t0>-<t1> s"`` of every output, for outputs of ``n_frames``."""
        return self._partition(n_frames, torch.device("cpu"))[2]

    def _partition(self, n_frames: int, device: torch.device):
        """(bin ids (F, T), bins per output (G,), labels) for ``n_frames`` frames, cached."""
        if n_frames not in self._partitions:
            freqs = self.stft.frequencies().cpu()
            times = self.stft.frame_times(n_frames).cpu()
            # Bands' own partition of a grid: the same band / division rule as the inputs'
            ids, _, labels = self._bands._partition(freqs, times)
            count = torch.bincount(ids.flatten(), minlength=self.n_outputs).float()
            self._partitions[n_frames] = (ids, count, labels)
        ids, count, labels = self._partitions[n_frames]
        return ids.to(device), count.to(device), labels

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, n_bands * n_divisions) mean output magnitudes."""
        out = self.model(wave)
        if out.dim() == 3 and out.shape[1] == 1:
            out = out[:, 0]
        magnitude = self.stft.to(out.device)(out)  # (B, F, T)
        ids, count, _ = self._partition(magnitude.shape[-1], out.device)
        flat = magnitude.flatten(1)
        sums = torch.zeros(len(flat), self.n_outputs, dtype=flat.dtype, device=flat.device)
        sums = sums.index_add(1, ids.flatten(), flat)
        return sums / count.to(flat.dtype)
