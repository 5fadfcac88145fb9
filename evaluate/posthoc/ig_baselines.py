"""Integrated Gradients adapted to audio: where the path starts and which way it goes.

Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic attribution for deep networks",
ICML 2017) attributes ``f(x) - f(x')`` to the input features along a path from a baseline
``x'`` to the clip ``x``; the answer depends on both (Sturmfels, Lundberg, Lee,
"Visualizing the impact of feature attribution baselines", Distill 2020). For a model on a
log-mel input the all-zero tensor is no neutral start: ``log(mel + 1e-6) = 0`` is a mel
power of 1, far louder than the built-in clips. The starts offered here (``baseline=``):

``silence``
    the front end of a zero waveform (``log(LOGMEL_FLOOR)`` in every log-mel bin, 0 for
    ``log1p`` / magnitude STFTs, zeros for waveform models). What ``integrated_gradients``
    used before these options (the grouping's baseline).
``noise_floor``
    seeded stationary noise at the clip's own noise floor, rendered as a waveform and
    passed through the front end (``noise_floor_waves``): per band, the ``noise_quantile``
    (default 0.2, as ``interp_models.nmf.interpreter.noise_floor``) of the clip's power
    over time, read from the model input itself, so no waveform is needed; on average over
    time never above that floor in any band, hence quieter than the clip.
``blur``
    the clip blurred in time and frequency (Gaussian, ``blur_sigma`` bins, default one cell
    of the reports' 8 bands x 16 divisions): the blurred baseline of Sturmfels et al.
    (2020), the end point of the blur path of Xu, Venugopalan, Sundararajan, "Attribution
    in scale and space", CVPR 2020. Spectrogram inputs only.
``band_stop``
    the clip band-stopped by ``stop_db`` (default 40 dB) in every cell of the grouping.
    A per-cell baseline would make IG occlusion: when only cell ``g`` differs from ``x``,
    completeness gives cell ``g`` exactly ``f(x) - f(x with g removed)`` and every other
    cell nothing. IG moves every cell at once, so the per-cell baselines compose into one,
    the clip with every cell band-stopped; a full-depth stop in every cell is silence, so
    the stop has the finite depth of a real filter: the composite is the clip ``stop_db``
    down, i.e. the front end of the waveform scaled by ``10 ** (-stop_db / 20)``.
``zeros``
    the all-zero model input (captum's default), kept as the naive reference.

Paths (``path=``): ``input`` is the straight line in the model input (log-mel), captum's
``IntegratedGradients``. ``waveform`` is the straight line in the waveform, IG of the model
composed with its front end, with the path derivative split over the model's input bins by
the chain rule (so the attribution lies on the model's grid and completeness holds there).
Scaling a waveform by ``a`` scales its STFT, hence every front end's amplitude-linear
representation ``s`` (mel magnitude ``sqrt(fb |X|^2)``, ``|X|``, ``fb |X|``;
``to_linear``), by ``a``: from ``silence`` or ``band_stop`` the waveform path is a straight
line in ``s``, integrated by captum there (no waveform needed). From ``noise_floor`` it is
not (the clip and the noise add as complex STFTs), so ``waveform_path_ig`` integrates it
with captum's quadrature: ``sum_k w_k grad f(L(a_k)) * dL/da(a_k)``,
``L(a) = frontend(n + a (w - n))``, the tangent by forward-mode autodiff; it needs the
clips' waveforms. Both paths share their end points, so their totals agree; they split them
differently. For waveform models the input path is the waveform path.

The default of ``integrated_gradients`` (``blur`` on the ``input`` path; ``silence`` for
waveform inputs, which have no blur) was chosen on validation clips of the built-in events
by the rule fixed in ``evaluate.ig_study.RULE`` (README, "Integrated Gradients baselines
for audio"); test-split figures are reported there separately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from captum.attr import IntegratedGradients
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn
from torch.nn import functional as F

from interp_models.audio.features import (
    LOGMEL_FLOOR,
    FilterbankSpectrogram,
    Log1pSpectrogram,
    LogFrequencySpectrogram,
    LogMel,
    Spectrogram,
)

__all__ = [
    "BASELINES",
    "PATHS",
    "WAVEFORM_STARTS",
    "blurred",
    "check_options",
    "from_linear",
    "from_stft",
    "ig_start",
    "integrated_gradients",
    "noise_floor",
    "noise_floor_waves",
    "scaled",
    "stop_gain",
    "to_linear",
    "waveform_path_ig",
]

BASELINES = ("silence", "noise_floor", "blur", "band_stop", "zeros")
PATHS = ("input", "waveform")
#: Baselines that are waveforms, so a waveform path can start from them.
WAVEFORM_STARTS = ("silence", "noise_floor", "band_stop")
#: Default blur: one cell of the reports' grouping, (F / 8, T / 16) bins.
BLUR_CELLS = (8, 16)
#: Analysis STFT of a waveform model's noise floor when the grouping names none.
WAVE_STFT = {"n_fft": 512, "hop_length": 128}
#: Noise-floor sources per analysis bin (``_leakage``).
SUB_BINS = 4
_LEAKAGE: dict[tuple[int, int, str], torch.Tensor] = {}


def check_options(opts: Mapping[str, Any]) -> None:
    """Raise a one-line ``ValueError`` for an invalid IG baseline / path option."""
    baseline, path = opts["baseline"], opts["path"]
    if baseline not in BASELINES:
        raise ValueError(
            f"integrated_gradients: baseline must be one of {list(BASELINES)}, got {baseline!r}"
        )
    if path not in PATHS:
        raise ValueError(f"integrated_gradients: path must be one of {list(PATHS)}, got {path!r}")
    if path == "waveform" and baseline not in WAVEFORM_STARTS:
        raise ValueError(
            f"integrated_gradients: path='waveform' starts from a waveform; "
            f"baseline={baseline!r} is none (use one of {list(WAVEFORM_STARTS)})"
        )
    q = opts["noise_quantile"]
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
        raise ValueError(f"integrated_gradients: noise_quantile must lie in [0, 1], got {q!r}")
    stop = opts["stop_db"]
    if isinstance(stop, bool) or not isinstance(stop, int | float) or not stop > 0:
        raise ValueError(f"integrated_gradients: stop_db must be a positive number, got {stop!r}")
    sigma = opts["blur_sigma"]
    if sigma is not None and (
        not isinstance(sigma, Sequence)
        or len(sigma) != 2
        or not all(isinstance(s, int | float) and s > 0 for s in sigma)
    ):
        raise ValueError(
            f"integrated_gradients: blur_sigma must be None or two positive numbers "
            f"(frequency bins, frames), got {sigma!r}"
        )


# ----------------------------------------------------------------------------- amplitude


def _need_frontend(frontend: nn.Module | None) -> nn.Module:
    if frontend is None:
        raise ValueError(
            "integrated_gradients on a spectrogram input needs the model's front end "
            "(a TFBins / Bands grouping or build_explainer(..., frontend=...))"
        )
    return frontend


def to_linear(frontend: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """The input's amplitude-linear representation ``s``: ``frontend(a w) = from_linear(a s)``.

    ``LogMel``: the mel magnitude ``sqrt(fb |X|^2)``; ``LogFrequencySpectrogram``:
    ``fb |X|``; ``Log1pSpectrogram`` / ``Spectrogram``: ``|X|``; waveforms (2-D): themselves.
    """
    if x.dim() == 2:
        return x
    frontend = _need_frontend(frontend)
    if isinstance(frontend, LogMel):
        return (x.exp() - LOGMEL_FLOOR).clamp_min(0).sqrt()
    if isinstance(frontend, LogFrequencySpectrogram):
        return torch.expm1(x * math.log(10.0)).clamp_min(0)
    if isinstance(frontend, Log1pSpectrogram):
        return torch.expm1(x).clamp_min(0)
    if isinstance(frontend, Spectrogram):
        return x
    raise TypeError(f"unsupported front end {type(frontend).__name__}")


def from_linear(frontend: nn.Module | None, s: torch.Tensor) -> torch.Tensor:
    """The model input of an amplitude-linear representation (inverse of ``to_linear``)."""
    if s.dim() == 2:
        return s
    frontend = _need_frontend(frontend)
    if isinstance(frontend, LogMel):
        return torch.log(s.square() + LOGMEL_FLOOR)
    if isinstance(frontend, LogFrequencySpectrogram):
        return torch.log10(1.0 + s)
    if isinstance(frontend, Log1pSpectrogram):
        return torch.log1p(s)
    if isinstance(frontend, Spectrogram):
        return s
    raise TypeError(f"unsupported front end {type(frontend).__name__}")


def scaled(frontend: nn.Module | None, x: torch.Tensor, gain: float) -> torch.Tensor:
    """The front end of the clip's waveform scaled by ``gain``, from the input ``x`` alone
    (``gain=0``: silence)."""
    return from_linear(frontend, gain * to_linear(frontend, x))


def stop_gain(stop_db: float) -> float:
    """Amplitude gain of a ``stop_db`` band stop."""
    return 10.0 ** (-stop_db / 20.0)


class _FromLinear(nn.Module):
    """``model(from_linear(s))``: the model on the amplitude-linear domain."""

    def __init__(self, model: nn.Module, frontend: nn.Module | None):
        super().__init__()
        self.model, self.frontend = model, frontend

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.model(from_linear(self.frontend, s))


# ----------------------------------------------------------------------------- blur


def _gaussian(sigma: float, size: int, like: torch.Tensor) -> torch.Tensor:
    radius = max(1, min(int(math.ceil(3 * sigma)), size - 1))
    t = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur_axis(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian blur of (B, F, T) ``x`` along ``dim`` (1 or 2), edges replicated."""
    moved = x.movedim(dim, -1)
    shape = moved.shape
    flat = moved.reshape(-1, 1, shape[-1])
    kernel = _gaussian(sigma, shape[-1], x)
    pad = len(kernel) // 2
    out = F.conv1d(F.pad(flat, (pad, pad), mode="replicate"), kernel[None, None])
    return out.reshape(shape).movedim(-1, dim)


def blurred(x: torch.Tensor, sigma: Sequence[float] | None = None) -> torch.Tensor:
    """``x`` (B, F, T) blurred by a Gaussian of ``sigma`` = (frequency bins, frames);
    default one cell of an 8 x 16 grid, ``(F / 8, T / 16)``."""
    if x.dim() != 3:
        raise ValueError("integrated_gradients: baseline='blur' needs spectrogram inputs (B, F, T)")
    if sigma is None:
        sigma = (x.shape[1] / BLUR_CELLS[0], x.shape[2] / BLUR_CELLS[1])
    return _blur_axis(_blur_axis(x, float(sigma[0]), 1), float(sigma[1]), 2)


# ----------------------------------------------------------------------------- noise floor


def _analysis(frontend: nn.Module | None, x: torch.Tensor) -> Spectrogram:
    if x.dim() == 2:
        if isinstance(frontend, Spectrogram):
            return frontend
        return Spectrogram(16000, **WAVE_STFT)  # the sample rate plays no part here
    frontend = _need_frontend(frontend)
    return frontend.spectrogram if isinstance(frontend, FilterbankSpectrogram) else frontend


def _leakage(stft: Spectrogram, like: torch.Tensor) -> torch.Tensor:
    """(F, S) expected power at analysis bin ``k`` of stationary noise of unit power per bin
    spread over source ``s``: the frequencies within ``1 / SUB_BINS`` bin of ``s / SUB_BINS``
    bins (what ``noise_floor_waves`` renders). ``|W|^2`` of the analysis window averaged
    over the source's width, normalised so that white noise reads 1 in every inner bin.
    Sources finer than a bin let a noise floor hold a line (a tone) between bins as the
    clip does, instead of a bin-wide band leaking into the bands beside it."""
    key = (stft.n_fft, stft.win_length, str(like.device))
    if key not in _LEAKAGE:
        window = stft.window.to(device=like.device, dtype=torch.float64)
        n_fft, n_bins, q = stft.n_fft, stft.num_bins, SUB_BINS
        fine = 3 * q  # response resolution: 1 / (3 q) bin, three taps per source
        padded = torch.zeros(n_fft * fine, dtype=torch.float64, device=like.device)
        padded[(n_fft - len(window)) // 2 : (n_fft - len(window)) // 2 + len(window)] = window
        response = torch.fft.fft(padded).abs().square()
        k = torch.arange(n_bins, device=like.device)[:, None, None] * fine
        src = torch.arange((n_bins - 1) * q + 1, device=like.device)[None, :, None] * 3
        taps = torch.arange(-1, 2, device=like.device)[None, None, :]
        leak = response[(k - src - taps) % len(response)].mean(-1)
        _LEAKAGE[key] = leak / leak[n_bins // 2].sum()
    return _LEAKAGE[key].to(like.dtype)


def _fit_power(levels: torch.Tensor, response: torch.Tensor, n_iter: int = 150) -> torch.Tensor:
    """Non-negative noise power per bin ``P`` (B, F) with ``P @ response.T`` equal to the
    band levels (B, M): multiplicative updates for the generalised KL divergence with the
    response fixed (Lee & Seung, NIPS 2000), started from the flat spectrum in each band.
    KL weighs every band by its own level, so a quiet band beside a loud one keeps its
    level instead of the loud band's leakage; bins no band hears get 0."""
    cover = response.sum(dim=0)
    flat = (levels / response.sum(dim=1).clamp_min(1e-30)) @ response
    power = torch.where(cover > 0, flat / cover.clamp_min(1e-30), 0.0)
    power = power + 1e-12 * power.amax(dim=-1, keepdim=True) * (cover > 0)
    target = levels.clamp_min(1e-30)
    for _ in range(n_iter):
        ratio = target / (power @ response.T).clamp_min(1e-30)
        power = power * (ratio @ response) / cover.clamp_min(1e-30)
    return power


def _band_power(frontend: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """Power (B, M, T) in each band of the input grid (analysis-STFT bins of waveforms;
    ``LogFrequencySpectrogram``: the squared band mean of ``|X|``), float64."""
    x = x.double()
    if x.dim() == 2:
        return _analysis(frontend, x).to(x.device).double()(x).square()
    s = to_linear(frontend, x)
    if isinstance(frontend, LogFrequencySpectrogram):
        return (s / frontend.fb.to(x).sum(dim=1)[:, None]).square()
    return s.square()


def _response(frontend: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """(M, S) band power of unit noise power in each source (``_leakage``)."""
    leak = _leakage(_analysis(frontend, x), x.double())
    if x.dim() == 2 or not isinstance(frontend, FilterbankSpectrogram):
        return leak
    if isinstance(frontend, LogMel):  # the mel power fb |X|^2
        return frontend.mel_fb.to(leak) @ leak
    fb = frontend.fb.to(leak)  # LogFrequencySpectrogram: band mean
    return (fb / fb.sum(dim=1, keepdim=True)) @ leak


def noise_floor_waves(
    frontend: nn.Module | None,
    x: torch.Tensor,
    quantile: float = 0.2,
    seeds: Sequence[int] = (0,),
    n_samples: int | None = None,
) -> torch.Tensor:
    """Stationary noise at each clip's noise floor, as waveforms (B, N).

    The target of band ``m`` is the ``quantile`` over time of the clip's power in it
    (``_band_power``). White Gaussian noise (seeded per clip by ``seeds[i]``) is shaped
    over its whole length in one FFT by the source powers fitted to those targets through
    the analysis window's leakage and the front end's filterbank (``_fit_power``): one FFT,
    not a frame-by-frame STFT filter, so resynthesis adds no leakage of its own. The fit
    cannot always be exact (a tone on a bin centre leaks less than any noise band), so the
    noise is then lowered as a whole until no band's mean power over time is above its
    target: on average the noise is never louder than the clip's floor in any band, hence
    quieter than the clip. ``n_samples`` defaults to the
    clip's length (waveforms) or ``(T - 1) * hop`` (spectrograms: ``T`` frames).
    """
    stft = _analysis(frontend, x).to(x.device)
    if n_samples is None:
        n_samples = x.shape[-1] if x.dim() == 2 else (x.shape[-1] - 1) * stft.hop_length
    if len(seeds) != len(x):
        raise ValueError(f"need one seed per clip: {len(seeds)} seeds for {len(x)} clips")
    white = torch.stack(
        [torch.randn(n_samples, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    ).to(device=x.device, dtype=torch.float64)
    target = torch.quantile(_band_power(frontend, x.detach()), quantile, dim=-1)
    power = _fit_power(target.float(), _response(frontend, x).float()).double()  # (B, sources)
    energy = stft.window.to(white).square().sum()  # E|STFT bin|^2 of unit white noise
    fine = torch.fft.rfftfreq(n_samples, device=x.device, dtype=white.dtype)  # cycles/sample
    nearest = torch.round(fine * stft.n_fft * SUB_BINS).long().clamp_max(power.shape[-1] - 1)
    gain = (power[:, nearest] / energy).sqrt()
    noise = torch.fft.irfft(torch.fft.rfft(white) * gain, n=n_samples)
    heard = noise.to(x.dtype)
    if x.dim() == 3:
        heard = _need_frontend(frontend).to(x.device)(heard)
    level = _band_power(frontend, heard).mean(dim=-1)
    excess = (level / target.clamp_min(LOGMEL_FLOOR)).amax(dim=-1).clamp_min(1.0)
    return (noise / excess.sqrt()[:, None]).to(x.dtype)


def noise_floor(
    frontend: nn.Module | None,
    x: torch.Tensor,
    quantile: float = 0.2,
    seeds: Sequence[int] = (0,),
) -> torch.Tensor:
    """The model input of ``noise_floor_waves`` (the waveforms themselves for waveform
    models)."""
    waves = noise_floor_waves(frontend, x, quantile, seeds)
    if x.dim() == 2:
        return waves
    with torch.no_grad():
        out = _need_frontend(frontend).to(x.device)(waves)
    if out.shape != x.shape:
        raise ValueError(
            f"the front end of the noise has shape {tuple(out.shape)}, the input "
            f"{tuple(x.shape)}: pass the model's front end"
        )
    return out.to(x.dtype)


# ----------------------------------------------------------------------------- IG


def ig_start(
    frontend: nn.Module | None,
    x: torch.Tensor,
    opts: Mapping[str, Any],
    seeds: Sequence[int],
) -> torch.Tensor:
    """The baseline ``x'`` (B, ...) on the model input for ``opts["baseline"]``; clip ``i``'s
    noise is drawn with ``seeds[i]``. Every path starts here (a waveform path at the
    waveform whose front end this is)."""
    kind = opts["baseline"]
    with torch.no_grad():
        if kind == "zeros":
            return torch.zeros_like(x)
        if kind == "silence":
            return scaled(frontend, x, 0.0)
        if kind == "band_stop":
            return scaled(frontend, x, stop_gain(opts["stop_db"]))
        if kind == "blur":
            return blurred(x, opts["blur_sigma"])
        if kind == "noise_floor":
            return noise_floor(frontend, x, opts["noise_quantile"], seeds)
    raise ValueError(f"integrated_gradients: unknown baseline {kind!r}")


def integrated_gradients(
    model: nn.Module,
    frontend: nn.Module | None,
    x: torch.Tensor,
    target: torch.Tensor | int,
    opts: Mapping[str, Any],
    rows: int,
    seeds: Sequence[int],
    waves: torch.Tensor | None = None,
) -> torch.Tensor:
    """IG of ``model`` at clips ``x`` (B, ...) on the model input grid, for the baseline and
    path of ``opts`` (``n_steps``, ``method`` as captum's), with at most about ``rows`` model
    rows per call. ``waves`` (B, N): the clips' audio, needed by the waveform path from the
    noise floor only."""
    start = ig_start(frontend, x, opts, seeds)
    n_steps, method = opts["n_steps"], opts["method"]
    if opts["path"] == "input" or x.dim() == 2:  # a waveform model's input is the waveform
        return IntegratedGradients(model).attribute(
            x.detach().clone().requires_grad_(True),
            baselines=start,
            target=target,
            n_steps=n_steps,
            method=method,
            internal_batch_size=max(rows, len(x)),
        )
    if opts["baseline"] == "noise_floor":
        if waves is None:
            raise ValueError(
                "integrated_gradients: path='waveform' from baseline='noise_floor' needs "
                "the clips' audio (attribute(..., waves=...))"
            )
        noise = noise_floor_waves(frontend, x, opts["noise_quantile"], seeds, waves.shape[-1])
        return waveform_path_ig(model, frontend, waves, noise, target, n_steps, method, rows)
    # silence / band_stop: the waveform path g w -> w is a straight line in to_linear's domain
    gain = 0.0 if opts["baseline"] == "silence" else stop_gain(opts["stop_db"])
    s = to_linear(frontend, x).detach()
    return IntegratedGradients(_FromLinear(model, frontend)).attribute(
        s.clone().requires_grad_(True),
        baselines=gain * s,
        target=target,
        n_steps=n_steps,
        method=method,
        internal_batch_size=max(rows, len(x)),
    )


def from_stft(frontend: nn.Module, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """The front end's output from its own complex STFT ``re + i im`` (B, F, T):
    ``frontend(w) == from_stft(frontend, X.real, X.imag)`` for ``X = stft(w)``."""
    power = re.square() + im.square()
    if isinstance(frontend, LogMel):
        return frontend.from_power(power)
    magnitude = power.sqrt()
    if isinstance(frontend, LogFrequencySpectrogram):
        return torch.log10(1.0 + torch.matmul(frontend.fb.to(magnitude), magnitude))
    if isinstance(frontend, Log1pSpectrogram):
        return torch.log1p(magnitude)
    if isinstance(frontend, Spectrogram):
        return magnitude
    raise TypeError(f"unsupported front end {type(frontend).__name__}")


def waveform_path_ig(
    model: nn.Module,
    frontend: nn.Module,
    waves: torch.Tensor,
    start: torch.Tensor,
    target: torch.Tensor | int,
    n_steps: int = 32,
    method: str = "gausslegendre",
    rows: int = 64,
) -> torch.Tensor:
    """IG of ``model(frontend(w))`` along the straight waveform path ``start -> waves``
    (B, N), split over the model's input bins by the chain rule:
    ``sum_k w_k grad f(L_k) * dL/da(a_k)``, ``L_k = frontend(start + a_k (waves - start))``,
    with captum's quadrature (``method``). The STFT is linear, so the path is
    ``S + a_k D`` in the STFT (``S``, ``D`` the STFTs of ``start`` and ``waves - start``,
    computed once) and the tangent ``dL/da`` is the forward-mode derivative of
    ``from_stft`` in the direction ``D`` (``torch.func.jvp``). Completeness holds on the
    input grid up to the quadrature error.

    Returns (B, *frontend output shape).
    """
    step_sizes, alphas = approximation_parameters(method)
    sizes, points = step_sizes(n_steps), alphas(n_steps)
    stft = frontend.spectrogram if isinstance(frontend, FilterbankSpectrogram) else frontend
    stft = stft.to(waves.device)
    b = len(waves)
    t = torch.as_tensor(target, device=waves.device).long().reshape(-1).expand(b)
    s0, d = stft.stft(start.detach()), stft.stft((waves - start).detach())
    per_call = max(1, rows // b)
    total: torch.Tensor | None = None
    for lo in range(0, n_steps, per_call):
        a = torch.tensor(points[lo : lo + per_call], dtype=waves.dtype, device=waves.device)
        w = torch.tensor(sizes[lo : lo + per_call], dtype=waves.dtype, device=waves.device)
        path = (s0[None] + a[:, None, None, None] * d[None]).flatten(0, 1)
        tangent = d.repeat(len(a), 1, 1)
        with torch.no_grad():
            feats, dfeats = torch.func.jvp(
                lambda re, im: from_stft(frontend, re, im),
                (path.real, path.imag),
                (tangent.real, tangent.imag),
            )
        feats = feats.detach().requires_grad_(True)
        out = model(feats).gather(1, t.repeat(len(a))[:, None]).sum()
        (grad,) = torch.autograd.grad(out, feats)
        part = (grad * dfeats).reshape(len(a), b, *feats.shape[1:])
        part = (part * w.reshape(-1, *[1] * (part.dim() - 1))).sum(0)
        total = part if total is None else total + part
    assert total is not None
    return total.detach()
