"""Feature groupings: the units a post-hoc attribution is expressed in.

A grouping partitions what the model hears into groups and says how to *remove* a group:

* ``TFBins`` -- single time-frequency bins (of the model's input for spectrogram models,
  of an analysis STFT for waveform models);
* ``Bands`` -- frequency bands in Hz x equal time divisions (e.g. 8 bands x 16 divisions);
* ``NMFComponents`` -- the dictionary components of an NMF interpreter (Parekh et al.,
  NeurIPS 2022): a coalition ``S`` keeps the share ``sum_{k in S} w_k h_k / (W H)`` of each
  ``log1p|STFT|`` bin, mapped to the classifier's input (``LogMel.from_power`` for log-mel
  models, inverse STFT for waveform models), so post-hoc SHAP over components and the
  intrinsic NMF explanation speak in the same units;
* ``Samples`` -- waveform samples, or contiguous time segments of them.

``grouping.bind(x, wave)`` prepares one clip and returns a ``BoundGrouping`` with

* ``view(model)`` -- a ``GroupView``: the model as a function of an *interpretable input*
  (``domain``) on which captum runs. For spectrogram models and bins / bands the domain is
  the model input itself with a captum ``feature_mask``; otherwise it is the presence
  ``z`` of each group (all ones = the clip, zeros = the baseline) and the model sees
  ``compose(z)``;
* ``from_input_map(map, kind)`` -- an attribution map on the model input (Grad-CAM, LRP)
  aggregated to groups;
* ``to_map(attribution)`` -- groups spread back onto a time-frequency grid, mass-preserving
  (for figures, localization and listening).

Baselines (what "removed" means), documented once here:

* spectrogram models, bins / bands: the front end of *silence* (for ``LogMel`` the floor
  ``log(1e-6)`` in every bin, for ``log1p``/magnitude STFTs 0);
* waveform models: silence (zeros), reached by zeroing the STFT bins of the group and
  inverting with the input's phase;
* components: the component's share of each bin is removed, so the empty coalition is
  silence too.
* SHAP reference distributions (GradientShap, DeepLiftShap): silence plus white noise at
  -60 and -40 dBFS (seeded) through the front end; in the presence domain, all-absent plus
  Bernoulli(0.5) coalitions (the coalition distribution of SHAP's kernel).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import librosa
import torch
from torch import nn

from evaluate.posthoc.dft_lrp import energy_split, stft_lrp
from interp_models.audio.features import (
    FilterbankSpectrogram,
    Log1pSpectrogram,
    LogMel,
    Spectrogram,
)
from interp_models.explanation import grid_name
from interp_models.nmf.interpreter import NMFInterpreter

__all__ = [
    "REFERENCE_LEVELS_DB",
    "Bands",
    "BoundGrouping",
    "GroupView",
    "Grouping",
    "NMFComponents",
    "Samples",
    "TFBins",
    "features_from_magnitude",
    "mel_mask_to_stft",
    "mel_relevance_to_stft",
    "nnls_activations",
    "reference_waves",
]

REFERENCE_LEVELS_DB = (-60.0, -40.0)
"""RMS levels (dBFS) of the white-noise references added to silence for SHAP methods."""

_EPS = 1e-8


# ----------------------------------------------------------------------------- helpers


def reference_waves(
    n_samples: int,
    levels_db: Sequence[float] = REFERENCE_LEVELS_DB,
    seed: int = 0,
    channels: int | None = None,
) -> torch.Tensor:
    """Silence plus seeded white noise at each RMS level in ``levels_db``: (1 + L, N), or
    (1 + L, M, N) with independent noise per channel for ``channels=M``."""
    g = torch.Generator().manual_seed(seed)
    shape = (n_samples,) if channels is None else (channels, n_samples)
    noise = [torch.randn(shape, generator=g) * 10 ** (db / 20) for db in levels_db]
    return torch.stack([torch.zeros(shape), *noise])


def features_from_magnitude(frontend: nn.Module, magnitude: torch.Tensor) -> torch.Tensor:
    """A front end's output from an STFT magnitude ``|X|`` of its own STFT (no ISTFT)."""
    if isinstance(frontend, LogMel):
        return frontend.from_power(magnitude.square())
    if isinstance(frontend, Log1pSpectrogram):
        return torch.log1p(magnitude)
    if isinstance(frontend, Spectrogram):
        return magnitude
    raise TypeError(f"unsupported front end {type(frontend).__name__}")


def _analysis_stft(frontend: nn.Module) -> Spectrogram:
    """The STFT under a front end (``LogMel``, ``LogFrequencySpectrogram`` wrap one)."""
    if isinstance(frontend, FilterbankSpectrogram):
        return frontend.spectrogram
    if isinstance(frontend, Spectrogram):
        return frontend
    raise TypeError(f"unsupported front end {type(frontend).__name__}")


def _same_stft(a: Spectrogram, b: Spectrogram) -> bool:
    keys = ("sample_rate", "n_fft", "hop_length", "win_length", "center")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def mel_relevance_to_stft(
    relevance: torch.Tensor, power: torch.Tensor, mel_fb: torch.Tensor
) -> torch.Tensor:
    """Relevance of log-mel bins passed to the STFT power bins they sum (LRP-0 rule).

    ``mel = fb @ P``: bin ``f`` gets ``sum_m R_m fb[m, f] P_f / sum_f' fb[m, f'] P_f'``. The log
    is elementwise and monotone, so relevance passes it unchanged; conservation is exact
    wherever the mel power is non-zero.

    relevance (B, M, T), power (B, F, T), mel_fb (M, F) -> (B, F, T).
    """
    fb = mel_fb.to(device=power.device, dtype=power.dtype)
    mel = torch.einsum("mf,bft->bmt", fb, power)
    ratio = relevance / mel.clamp_min(1e-20)
    return power * torch.einsum("mf,bmt->bft", fb, ratio)


def mel_mask_to_stft(mask: torch.Tensor, mel_fb: torch.Tensor) -> torch.Tensor:
    """A [0, 1] mask on mel bands as a [0, 1] mask on STFT bins: the normalised transpose.

    ``M_f = sum_m fb[m, f] mask_m / sum_m fb[m, f]``: each STFT bin takes the filterbank-
    weighted mean of the bands that cover it; bins no band covers (outside ``f_min..f_max``)
    get 0. A mask of ones on every band is ones on every covered bin.

    mask (B, M, T), mel_fb (M, F) -> (B, F, T).
    """
    fb = mel_fb.to(device=mask.device, dtype=mask.dtype)
    cover = fb.sum(dim=0)
    out = torch.einsum("mf,bmt->bft", fb, mask)
    return torch.where(cover[None, :, None] > 0, out / cover.clamp_min(1e-20)[None, :, None], 0.0)


def nnls_activations(
    spec: torch.Tensor, W: torch.Tensor, n_iter: int = 200, eps: float = 1e-9
) -> torch.Tensor:
    """Non-negative H (B, K, T) minimising ``||spec - W H||^2`` for a fixed dictionary W.

    Lee & Seung multiplicative updates, ``H <- H * (W^T V) / (W^T W H)``, deterministic (start
    at a constant). Written by hand: torchnmf's ``fit`` also updates W and draws a random
    start. Used when no trained interpreter provides H.
    """
    W = W.to(spec)
    wtv = torch.einsum("fk,bft->bkt", W, spec).clamp_min(0)
    wtw = W.T @ W
    H = torch.full(
        (spec.shape[0], W.shape[1], spec.shape[2]),
        float(spec.mean().clamp_min(eps)) / max(float(W.sum(0).mean()), eps),
        dtype=spec.dtype,
        device=spec.device,
    )
    for _ in range(n_iter):
        H = H * wtv / (torch.einsum("kj,bjt->bkt", wtw, H) + eps)
    return H


def _partition_labels(freqs_edges: Sequence[float], time_edges: Sequence[float]) -> list[str]:
    return [
        f"{freqs_edges[b]:.0f}-{freqs_edges[b + 1]:.0f} Hz x "
        f"{time_edges[d]:.2f}-{time_edges[d + 1]:.2f} s"
        for b in range(len(freqs_edges) - 1)
        for d in range(len(time_edges) - 1)
    ]


class _Composed(nn.Module):
    """``model(compose(z))`` as a module, so captum (DeepLift) hooks the model's layers."""

    def __init__(self, model: nn.Module, compose: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model = model
        self.compose = compose

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(self.compose(z))


# ----------------------------------------------------------------------------- views


@dataclass
class GroupView:
    """The model as a function of one clip's interpretable input.

    Attributes
    ----------
    domain : (1, *shape) what captum attributes to: the model input, or group presence z.
    baseline : (1, *shape) the clip with every group removed.
    references : (R, *shape) baseline distribution for GradientShap / DeepLiftShap.
    forward : module mapping a batch of ``domain``-shaped tensors to model outputs.
    feature_mask : (1, *shape) long group id of each domain element, or None when every
        element is its own group (then ``group_shape == shape``).
    group_shape : shape of the attribution in groups.
    """

    domain: torch.Tensor
    baseline: torch.Tensor
    references: torch.Tensor
    forward: nn.Module
    feature_mask: torch.Tensor | None
    group_shape: tuple[int, ...]

    @property
    def n_groups(self) -> int:
        return math.prod(self.group_shape)

    def to_groups(self, attr: torch.Tensor) -> torch.Tensor:
        """Per-element attribution (1, *shape) summed per group -> ``group_shape``."""
        if self.feature_mask is None:
            return attr.reshape(self.group_shape)
        out = torch.zeros(self.n_groups, dtype=attr.dtype, device=attr.device)
        out.index_add_(0, self.feature_mask.flatten(), attr.flatten())
        return out.reshape(self.group_shape)

    def shared_to_groups(self, attr: torch.Tensor) -> torch.Tensor:
        """Attribution repeated on every element of its group (captum ablations) -> groups."""
        if self.feature_mask is None:
            return attr.reshape(self.group_shape)
        ids = self.feature_mask.flatten()
        out = torch.zeros(self.n_groups, dtype=attr.dtype, device=attr.device)
        out.index_add_(0, ids, attr.flatten())
        count = torch.bincount(ids, minlength=self.n_groups).to(attr.dtype)
        return (out / count.clamp_min(1)).reshape(self.group_shape)

    def present(self, Z: torch.Tensor) -> torch.Tensor:
        """Domain inputs (N, *shape) keeping fraction ``Z[:, g]`` in [0, 1] of each group."""
        Z = Z.reshape(len(Z), -1).to(self.domain)
        if self.feature_mask is None:
            z = Z.reshape(len(Z), *self.domain.shape[1:])
        else:
            z = Z[:, self.feature_mask[0]]
        return self.baseline + (self.domain - self.baseline) * z

    def forward_groups(self, Z: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Model outputs (N, C) with only the groups in ``Z`` (N, G) present."""
        outs = [
            self.forward(self.present(Z[i : i + batch_size])) for i in range(0, len(Z), batch_size)
        ]
        return torch.cat(outs)


def _presence_view(model: nn.Module, compose, shape: tuple[int, ...], grouping, x) -> GroupView:
    """The view of a grouping whose groups are present (1) or absent (0): all present,
    none present, and ``grouping.n_references`` random presence patterns as references."""
    ones = torch.ones((1, *shape), device=x.device)
    refs = _presence_references(shape, grouping.n_references, grouping.seed)
    return GroupView(
        ones, torch.zeros_like(ones), refs.to(ones), _Composed(model, compose), None, shape
    )


def _presence_references(group_shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """All-absent plus ``n - 1`` Bernoulli(0.5) coalitions, seeded: (n, *group_shape)."""
    g = torch.Generator().manual_seed(seed)
    random = (torch.rand((max(n - 1, 1), *group_shape), generator=g) < 0.5).float()
    return torch.cat([torch.zeros((1, *group_shape)), random])


# ----------------------------------------------------------------------------- groupings


class BoundGrouping(ABC):
    """A grouping prepared for one clip (see the module docstring)."""

    grouping: Grouping
    x: torch.Tensor  # (1, ...) model input
    wave: torch.Tensor | None

    @abstractmethod
    def view(self, model: nn.Module) -> GroupView: ...

    @abstractmethod
    def from_input_map(self, attr: torch.Tensor, kind: str = "relevance") -> torch.Tensor:
        """(1, *input shape) map on the model input -> ``group_shape``.

        ``kind`` is ``"relevance"`` for conservative maps (LRP, x * g) and ``"intensity"``
        for maps that are not (Grad-CAM, |gradient|); it matters only where the map must be
        carried from waveform samples to an STFT grid (DFT-LRP or energy split).
        """

    @abstractmethod
    def to_map(
        self, attr: torch.Tensor, kind: str = "relevance"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Group attribution -> (map (F', T'), freqs_hz (F',), times_s (T')), mass-preserving;
        None where the grouping has no time-frequency grid (``Samples`` without ``stft``).

        ``kind`` as in ``from_input_map`` (used only by ``Samples``).
        """

    def labels(self) -> list[str] | None:
        return None

    @property
    def grid_name(self) -> str:
        """Name of the ``to_map`` grid (``interp_models.explanation.Grid``): ``"stft"``
        unless the map is on a spectrogram model's own front-end grid."""
        return "stft"


class Grouping(ABC):
    """Base class: ``name``, ``bind(x, wave)`` and ``describe()`` (for JSON export)."""

    name: str = ""

    @abstractmethod
    def bind(self, x: torch.Tensor, wave: torch.Tensor | None = None) -> BoundGrouping:
        """Prepare clip ``x`` (1, ...) -- the model input -- with its waveform (1, N)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description: kind, grid, edges, baseline."""

    @property
    def map_is_mel(self) -> bool:
        """Whether ``to_map`` grids are mel bands (listening maps them to STFT bins)."""
        return False

    def inversion(self) -> tuple[Spectrogram, torch.Tensor | None]:
        """STFT to invert ``to_map`` masks with, and the mel filterbank if the grid is mel."""
        raise NotImplementedError(f"{type(self).__name__} has no time-frequency map")


class _GridGrouping(Grouping):
    """Bins or bands on a time-frequency grid: the front end's (spectrogram models) or its
    STFT's (waveform models)."""

    def __init__(self, frontend: nn.Module, n_references: int = 8, seed: int = 0):
        self.frontend = frontend
        self.n_references = n_references
        self.seed = seed
        self._waveform_model = False

    @property
    def map_is_mel(self) -> bool:
        """Mel grid: a ``LogMel`` front end bound to a spectrogram model (last ``bind``)."""
        return isinstance(self.frontend, LogMel) and not self._waveform_model

    def inversion(self) -> tuple[Spectrogram, torch.Tensor | None]:
        stft = _analysis_stft(self.frontend)
        return stft, (self.frontend.mel_fb if self.map_is_mel else None)

    def _references(self, x: torch.Tensor) -> torch.Tensor:
        """The front end of silence and the noise references for clips shaped like ``x``,
        computed once per shape and device (every clip of a spectrogram model shares them)."""
        n_samples = (x.shape[-1] - 1) * _analysis_stft(self.frontend).hop_length
        key = (n_samples, x.device, x.dtype)
        cache = self.__dict__.setdefault("_reference_cache", {})
        if key not in cache:
            with torch.no_grad():
                cache[key] = self.frontend(reference_waves(n_samples, seed=self.seed).to(x))
        return cache[key]

    def _grid(self, waveform: bool, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        src = _analysis_stft(self.frontend) if waveform else self.frontend
        return src.frequencies().cpu(), src.frame_times(n_frames).cpu()

    @abstractmethod
    def _partition(
        self, freqs: torch.Tensor, times: torch.Tensor
    ) -> tuple[torch.Tensor | None, tuple[int, ...], list[str] | None]:
        """(F, T) group ids (None: one group per bin), group shape, labels."""

    def bind(self, x: torch.Tensor, wave: torch.Tensor | None = None) -> BoundGrouping:
        self._waveform_model = x.dim() == 2
        if self._waveform_model:
            return _WaveGridBound(self, x)
        return _SpecGridBound(self, x)


class _SpecGridBound(BoundGrouping):
    def __init__(self, grouping: _GridGrouping, x: torch.Tensor):
        if x.dim() != 3 or len(x) != 1:
            raise ValueError(f"bind one clip (1, F, T), got {tuple(x.shape)}")
        self.grouping, self.x, self.wave = grouping, x, None
        n_frames = x.shape[-1]
        self.freqs, self.times = grouping._grid(False, n_frames)
        if len(self.freqs) != x.shape[1]:
            raise ValueError(f"front end has {len(self.freqs)} bins but the input has {x.shape[1]}")
        refs = grouping._references(x)
        if refs.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"front end of silence has shape {tuple(refs.shape[1:])}, "
                f"the input {tuple(x.shape[1:])}: pass the model's front end"
            )
        self.silence, self.references = refs[:1], refs
        ids, self.group_shape, self._labels = grouping._partition(self.freqs, self.times)
        self.ids = None if ids is None else ids.to(x.device)

    def view(self, model: nn.Module) -> GroupView:
        mask = None if self.ids is None else self.ids[None]
        return GroupView(self.x, self.silence, self.references, model, mask, self.group_shape)

    def from_input_map(self, attr: torch.Tensor, kind: str = "relevance") -> torch.Tensor:
        return self.view(nn.Identity()).to_groups(attr)

    def to_map(self, attr: torch.Tensor, kind: str = "relevance"):
        return _spread(attr, self.ids, self.group_shape), self.freqs, self.times

    def labels(self) -> list[str] | None:
        return self._labels

    @property
    def grid_name(self) -> str:
        return grid_name(self.grouping.frontend)


class _WaveGridBound(BoundGrouping):
    """Waveform model: groups of analysis-STFT bins, removed by zeroing and inverting."""

    def __init__(self, grouping: _GridGrouping, x: torch.Tensor):
        if len(x) != 1:
            raise ValueError(f"bind one clip (1, N), got {tuple(x.shape)}")
        self.grouping, self.x, self.wave = grouping, x, x
        self.stft = _analysis_stft(grouping.frontend).to(x.device)
        spec = self.stft.stft(x)
        self.magnitude = spec.abs()
        self.phase = torch.polar(torch.ones_like(self.magnitude), spec.angle())
        self.freqs, self.times = grouping._grid(True, spec.shape[-1])
        ids, self.group_shape, self._labels = grouping._partition(self.freqs, self.times)
        self.ids = None if ids is None else ids.to(x.device)

    def _compose(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(len(z), -1)
        gain = z.reshape(len(z), *self.magnitude.shape[1:]) if self.ids is None else z[:, self.ids]
        mag = self.magnitude * gain
        return self.stft.istft(mag, self.phase.expand_as(mag), self.x.shape[-1])

    def view(self, model: nn.Module) -> GroupView:
        return _presence_view(model, self._compose, self.group_shape, self.grouping, self.x)

    def _tf(self, attr: torch.Tensor, kind: str) -> torch.Tensor:
        if kind == "relevance":
            return stft_lrp(self.x, attr, self.stft)
        return energy_split(self.x, attr, self.stft)

    def from_input_map(self, attr: torch.Tensor, kind: str = "relevance") -> torch.Tensor:
        tf = self._tf(attr, kind)[0]
        if self.ids is None:
            return tf.reshape(self.group_shape)
        out = torch.zeros(math.prod(self.group_shape), dtype=tf.dtype, device=tf.device)
        out.index_add_(0, self.ids.flatten(), tf.flatten())
        return out.reshape(self.group_shape)

    def to_map(self, attr: torch.Tensor, kind: str = "relevance"):
        return _spread(attr, self.ids, self.group_shape), self.freqs, self.times

    def labels(self) -> list[str] | None:
        return self._labels


def _spread(attr: torch.Tensor, ids: torch.Tensor | None, group_shape) -> torch.Tensor:
    """Group values spread evenly over their bins (mass-preserving) -> (F, T)."""
    if ids is None:
        return attr.reshape(group_shape)
    flat = attr.reshape(-1)
    count = torch.bincount(ids.flatten(), minlength=flat.numel()).to(flat.dtype)
    return (flat / count.clamp_min(1))[ids]


class TFBins(_GridGrouping):
    """Every time-frequency bin its own group.

    Parameters
    ----------
    frontend : the model's front end (spectrogram models: its input grid and silence) or,
        for waveform models, the STFT (or ``LogMel``, whose STFT is used) to analyse with.
    """

    name = "tf_bins"

    def _partition(self, freqs, times):
        return None, (len(freqs), len(times)), None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "frontend": self.frontend.settings(), "baseline": "silence"}


class Bands(_GridGrouping):
    """Frequency bands in Hz x equal time divisions.

    Parameters
    ----------
    frontend : as for ``TFBins``.
    edges_hz : band edges (ascending); bins outside the first / last edge join the first /
        last band. Default: ``n_bands`` bands equally spaced on the mel scale from 0 Hz to
        the Nyquist frequency.
    n_bands : used when ``edges_hz`` is None.
    n_divisions : equal time divisions of the clip (e.g. 16, 32, 64), at most one per frame.
    """

    name = "bands"

    def __init__(
        self,
        frontend: nn.Module,
        edges_hz: Sequence[float] | None = None,
        n_bands: int = 8,
        n_divisions: int = 16,
        n_references: int = 8,
        seed: int = 0,
    ):
        super().__init__(frontend, n_references, seed)
        nyquist = _analysis_stft(frontend).sample_rate / 2
        if edges_hz is None:
            edges_hz = librosa.mel_frequencies(n_bands + 1, fmin=0.0, fmax=nyquist).tolist()
        edges = [float(e) for e in edges_hz]
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"edges_hz must be >= 2 ascending values, got {edges}")
        if n_divisions < 1:
            raise ValueError(f"n_divisions must be >= 1, got {n_divisions}")
        self.edges_hz, self.n_divisions = edges, int(n_divisions)

    def _partition(self, freqs, times):
        n_bands = len(self.edges_hz) - 1
        if self.n_divisions > len(times):
            raise ValueError(
                f"n_divisions={self.n_divisions} exceeds the {len(times)} frames of the clip"
            )
        inner = torch.tensor(self.edges_hz[1:-1], dtype=freqs.dtype)
        band = torch.bucketize(freqs, inner, right=True)
        empty = sorted(set(range(n_bands)) - set(band.tolist()))
        if empty:
            raise ValueError(
                f"bands {empty} of edges {self.edges_hz} contain no frequency bin of this grid; "
                "use fewer or wider bands"
            )
        div = torch.arange(len(times)) * self.n_divisions // len(times)
        ids = band[:, None] * self.n_divisions + div[None, :]
        dt = float(times[1] - times[0]) if len(times) > 1 else 0.0
        t_edges = [max(float(times[0]) - dt / 2, 0.0)]
        for d in range(self.n_divisions):
            last = int(torch.nonzero(div == d).max())
            t_edges.append(float(times[last]) + dt / 2)
        return ids, (n_bands, self.n_divisions), _partition_labels(self.edges_hz, t_edges)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "frontend": self.frontend.settings(),
            "edges_hz": self.edges_hz,
            "n_divisions": self.n_divisions,
            "baseline": "silence",
        }


class NMFComponents(Grouping):
    """Dictionary components present in the input (Parekh et al., NeurIPS 2022).

    A coalition ``z`` in [0, 1]^K keeps ``share_z = W (z * H) / (W H + eps)`` of every
    ``log1p|X|`` bin; the model hears ``expm1(share_z * log1p|X|)`` with the input's phase,
    through ``features_from_magnitude`` (spectrogram models) or the inverse STFT (waveform
    models). ``z = 1`` is the clip, ``z = 0`` silence.

    Parameters
    ----------
    W : (freq, K) dictionary over the bins of ``stft`` (e.g. ``NMFInterpreter.W``).
    stft : the STFT the dictionary was learned on (``Log1pSpectrogram``).
    frontend : the explained model's front end, when it is a spectrogram model; must share
        the STFT of ``stft`` (checked).
    interpreter : a trained ``NMFInterpreter`` whose ``H`` (from the log-mel input of the
        clip, ``frontend(wave)``) is used; without one, H is fitted to ``log1p|X|`` by
        non-negative least squares (``nnls_activations``).
    """

    name = "components"

    def __init__(
        self,
        W: torch.Tensor,
        stft: Spectrogram,
        frontend: nn.Module | None = None,
        interpreter: NMFInterpreter | None = None,
        n_references: int = 8,
        seed: int = 0,
        nnls_iter: int = 200,
    ):
        if W.dim() != 2 or W.shape[0] != stft.num_bins:
            raise ValueError(f"W must be ({stft.num_bins}, K) for this STFT, got {tuple(W.shape)}")
        if frontend is not None and not _same_stft(_analysis_stft(frontend), stft):
            raise ValueError(
                f"the model's front end ({frontend.settings()}) and the dictionary's STFT "
                f"({stft.settings()}) differ; components need the same STFT"
            )
        self.W, self.stft, self.frontend, self.interpreter = W.detach(), stft, frontend, interpreter
        self.n_references, self.seed, self.nnls_iter = n_references, seed, nnls_iter

    @property
    def n_components(self) -> int:
        return self.W.shape[1]

    def inversion(self) -> tuple[Spectrogram, torch.Tensor | None]:
        return self.stft, None

    def bind(self, x: torch.Tensor, wave: torch.Tensor | None = None) -> BoundGrouping:
        if x.dim() == 2:
            wave = x
        if wave is None:
            raise ValueError(
                "the components grouping needs the clip's waveform: attribute(..., waves=...)"
            )
        return _ComponentsBound(self, x, wave.reshape(1, -1).to(x.device))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "n_components": self.n_components,
            "stft": self.stft.settings(),
            "activations": "interpreter" if self.interpreter is not None else "nnls",
            "baseline": "all components absent (silence)",
        }


class _ComponentsBound(BoundGrouping):
    def __init__(self, grouping: NMFComponents, x: torch.Tensor, wave: torch.Tensor):
        self.grouping, self.x, self.wave = grouping, x, wave
        stft = grouping.stft.to(x.device)
        spec = stft.stft(wave)
        self.magnitude = spec.abs()
        self.phase = torch.polar(torch.ones_like(self.magnitude), spec.angle())
        self.log_spec = torch.log1p(self.magnitude)
        W = grouping.W.to(self.log_spec)
        with torch.no_grad():
            if grouping.interpreter is not None:
                interp_in = grouping.frontend(wave) if grouping.frontend is not None else x
                H = grouping.interpreter(interp_in).H.to(self.log_spec)
            else:
                H = nnls_activations(self.log_spec, W, grouping.nnls_iter)
        if H.shape[-1] != self.log_spec.shape[-1]:
            raise ValueError(f"H has {H.shape[-1]} frames, the STFT {self.log_spec.shape[-1]}")
        self.W, self.H = W, H
        self.parts = torch.einsum("fk,bkt->bkft", W, H)[0]  # (K, F, T) w_k h_k
        self.total = self.parts.sum(0, keepdim=True) + _EPS  # (1, F, T)
        n_frames = self.log_spec.shape[-1]
        self.freqs, self.times = stft.frequencies().cpu(), stft.frame_times(n_frames).cpu()
        self._stft = stft

    def share(self, z: torch.Tensor) -> torch.Tensor:
        """(N, K) presence -> (N, F, T) share of each bin kept."""
        return (torch.einsum("fk,nkt->nft", self.W, z[:, :, None] * self.H) / self.total).clamp(
            0, 1
        )

    def _compose(self, z: torch.Tensor) -> torch.Tensor:
        mag = torch.expm1(self.share(z.reshape(len(z), -1)) * self.log_spec)
        if self.x.dim() == 2:
            return self._stft.istft(mag, self.phase.expand_as(mag), self.x.shape[-1])
        return features_from_magnitude(self.grouping.frontend, mag)

    def view(self, model: nn.Module) -> GroupView:
        if self.x.dim() == 3 and self.grouping.frontend is None:
            raise ValueError("spectrogram models need NMFComponents(..., frontend=<model's>)")
        shape = (self.grouping.n_components,)
        return _presence_view(model, self._compose, shape, self.grouping, self.x)

    def from_input_map(self, attr: torch.Tensor, kind: str = "relevance") -> torch.Tensor:
        """Input-grid map -> STFT-bin relevance -> each component's share of each bin."""
        if self.x.dim() == 2:
            tf = (
                stft_lrp(self.wave, attr, self._stft)
                if kind == "relevance"
                else energy_split(self.wave, attr, self._stft)
            )
        elif isinstance(self.grouping.frontend, LogMel):
            tf = mel_relevance_to_stft(attr, self.magnitude.square(), self.grouping.frontend.mel_fb)
        else:
            tf = attr
        return torch.einsum("kft,ft->k", self.parts / self.total, tf[0])

    def to_map(self, attr: torch.Tensor, kind: str = "relevance"):
        density = self.parts / self.parts.sum(dim=(1, 2), keepdim=True).clamp_min(_EPS)
        return torch.einsum("k,kft->ft", attr.to(density), density), self.freqs, self.times

    def labels(self) -> list[str]:
        return [f"k={k}" for k in range(self.grouping.n_components)]


@dataclass
class Samples(Grouping):
    """Waveform samples (``n_segments=None``) or equal contiguous time segments of them.

    Single-channel clips (1, N) have groups (N,) or (n_segments,); multichannel clips
    (1, M, N) of a microphone array, one group per channel and sample or segment: (M, N) or
    (M, n_segments), so every method gives a relevance per microphone over time.

    ``stft`` (optional) is the grid of ``to_map``: per-sample relevance is carried to it by
    DFT-LRP (``stft_lrp``, each channel through its own STFT, the channels' maps summed;
    ``channel_maps`` keeps them apart), so waveform explanations have a time-frequency map
    too.
    """

    n_segments: int | None = None
    stft: Spectrogram | None = None
    n_references: int = 8
    seed: int = 0

    @property
    def name(self) -> str:  # type: ignore[override]
        return "samples" if self.n_segments is None else "segments"

    def inversion(self) -> tuple[Spectrogram, torch.Tensor | None]:
        if self.stft is None:
            raise ValueError("Samples(stft=...) is needed for a time-frequency map")
        return self.stft, None

    def bind(self, x: torch.Tensor, wave: torch.Tensor | None = None) -> BoundGrouping:
        if x.dim() not in (2, 3) or len(x) != 1:
            raise ValueError(
                f"Samples groups waveform inputs (1, N) or (1, channels, N), got {tuple(x.shape)}"
            )
        return _SamplesBound(self, x)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "n_segments": self.n_segments,
            "stft": None if self.stft is None else self.stft.settings(),
            "baseline": "silence (zeros)",
        }


class _SamplesBound(BoundGrouping):
    def __init__(self, grouping: Samples, x: torch.Tensor):
        self.grouping, self.x, self.wave = grouping, x, x
        n = x.shape[-1]
        self.channels = x.shape[1] if x.dim() == 3 else None
        lead = () if self.channels is None else (self.channels,)
        if grouping.n_segments is None:
            self.ids, self.group_shape = None, (*lead, n)
            return
        if not 1 <= grouping.n_segments <= n:
            raise ValueError(f"n_segments must lie in [1, {n}], got {grouping.n_segments}")
        ids = torch.arange(n, device=x.device) * grouping.n_segments // n
        if self.channels is not None:  # channel c's segments are groups c * S ... c * S + S - 1
            offsets = torch.arange(self.channels, device=x.device)[:, None]
            ids = offsets * grouping.n_segments + ids[None]
        self.ids, self.group_shape = ids, (*lead, grouping.n_segments)

    def view(self, model: nn.Module) -> GroupView:
        refs = reference_waves(self.x.shape[-1], seed=self.grouping.seed, channels=self.channels)
        refs = refs.to(self.x)
        mask = None if self.ids is None else self.ids[None]
        return GroupView(self.x, refs[:1], refs, model, mask, self.group_shape)

    def from_input_map(self, attr: torch.Tensor, kind: str = "relevance") -> torch.Tensor:
        return self.view(nn.Identity()).to_groups(attr)

    def per_sample(self, attr: torch.Tensor) -> torch.Tensor:
        """Group attribution spread evenly over its samples: (channels, N), or (1, N)."""
        return _spread(attr, self.ids, self.group_shape).reshape(-1, self.x.shape[-1]).to(self.x)

    def channel_maps(self, attr: torch.Tensor, kind: str = "relevance"):
        """(channels, F', T') maps, one per channel (see ``to_map``), freqs, times."""
        if self.grouping.stft is None:
            return None
        stft = self.grouping.stft.to(self.x.device)
        wave, per_sample = self.x.reshape(-1, self.x.shape[-1]), self.per_sample(attr)
        split = stft_lrp if kind == "relevance" else energy_split
        tf = split(wave, per_sample, stft)
        return tf, stft.frequencies().cpu(), stft.frame_times(tf.shape[-1]).cpu()

    def to_map(self, attr: torch.Tensor, kind: str = "relevance"):
        maps = self.channel_maps(attr, kind)
        return None if maps is None else (maps[0].sum(0), *maps[1:])
