"""DFT-LRP: waveform relevance in the frequency and time-frequency domains.

Vielhaben, Lapuschkin, Montavon, Samek, "Explainable AI for time series via virtual
inspection layers", Pattern Recognition 2024 (arXiv 2303.06365). Written from the paper.

A waveform model ``f(x)`` is read as ``f(T^{-1}(y))`` with ``y = T(x)`` the (short-time)
Fourier transform: the inverse transform is a *virtual* linear layer in front of the
model. Relevance ``R_n`` of the waveform samples (from LRP, or any attribution of the form
``x_n * g_n``) is passed through that layer with the LRP-epsilon rule,

    R_j = sum_n  c_{n j} * R_n / (x_n + eps * sign(x_n)),    x_n = sum_j c_{n j},

where ``c_{n j}`` is the contribution of the real and imaginary parts of coefficient ``j`` to
sample ``n`` (the relevances of the two parts are summed, as in the paper). Without bias,
``sum_j R_j = sum_n R_n`` up to the stabiliser: relevance is conserved.

For the inverse DFT and inverse STFT the sum over ``n`` is itself a (windowed) forward
transform of ``s_n = R_n / (x_n + eps)``, so both run in O(N log N):

* DFT: ``R_k = c_k / N * Re(Y_k * conj(rfft(s)_k))`` with ``c_k = 2`` except at DC and
  Nyquist (the one-sided spectrum of a real signal).
* STFT (``torch.istft``: window ``w``, overlap-add divided by ``env(n) = sum_t w(n - tH)^2``):
  ``R_{k,t} = c_k / N * Re(X_{k,t} * conj(STFT_w(s / env)_{k,t}))``.

Written by hand: neither zennit nor captum provide virtual inspection layers.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from interp_models.audio.features import Spectrogram

__all__ = ["dft_lrp", "energy_split", "stabilised_ratio", "stft_envelope", "stft_lrp"]


def stabilised_ratio(relevance: torch.Tensor, wave: torch.Tensor, eps: float) -> torch.Tensor:
    """``R_n / (x_n + eps * sign(x_n))`` with ``sign(0) = +1`` and ``eps`` relative to max |x|."""
    scale = wave.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12)
    sign = torch.where(wave >= 0, 1.0, -1.0).to(wave.dtype)
    return relevance / (wave + eps * scale * sign)


def _one_sided_weights(n_bins: int, n: int, dtype: torch.dtype, device) -> torch.Tensor:
    c = torch.full((n_bins,), 2.0, dtype=dtype, device=device)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c


def dft_lrp(wave: torch.Tensor, relevance: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Relevance of each DFT frequency bin of the whole clip.

    Parameters
    ----------
    wave, relevance : (B, N) waveform and the relevance of each of its samples.
    eps : stabiliser, relative to each clip's peak amplitude.

    Returns
    -------
    (B, N // 2 + 1) relevance per one-sided DFT bin (bin ``k`` is ``k * sr / N`` Hz); sums
    to ``relevance.sum(-1)`` up to the stabiliser.
    """
    _check(wave, relevance)
    n = wave.shape[-1]
    s = stabilised_ratio(relevance, wave, eps)
    spectrum = torch.fft.rfft(wave, dim=-1)
    c = _one_sided_weights(spectrum.shape[-1], n, wave.dtype, wave.device)
    return c / n * (spectrum * torch.fft.rfft(s, dim=-1).conj()).real


def stft_envelope(stft: Spectrogram, length: int, n_frames: int, like: torch.Tensor):
    """``env(n) = sum_t w(n - tH)^2`` at each of the ``length`` output samples of istft."""
    window = stft.window.to(device=like.device, dtype=like.dtype)
    left = (stft.n_fft - stft.win_length) // 2
    window = F.pad(window, (left, stft.n_fft - stft.win_length - left))
    total = stft.n_fft + stft.hop_length * (n_frames - 1)
    env = F.fold(
        window.square()[None, :, None].expand(1, -1, n_frames),
        output_size=(1, total),
        kernel_size=(1, stft.n_fft),
        stride=(1, stft.hop_length),
    )[0, 0, 0]
    start = stft.n_fft // 2 if stft.center else 0
    env = env[start : start + length]
    return F.pad(env, (0, length - env.shape[0]))


def stft_lrp(
    wave: torch.Tensor, relevance: torch.Tensor, stft: Spectrogram, eps: float = 1e-9
) -> torch.Tensor:
    """Relevance of each time-frequency bin of ``stft`` (the virtual inverse-STFT layer).

    Parameters
    ----------
    wave, relevance : (B, N) waveform and per-sample relevance.
    stft : the STFT whose inverse is the virtual layer (``center=True``, as every front end
        here); its grid is ``stft.frequencies()`` x ``stft.frame_times(T)``.
    eps : stabiliser, relative to each clip's peak amplitude.

    Returns
    -------
    (B, n_fft // 2 + 1, T) relevance; sums to ``relevance.sum(-1)`` up to the stabiliser
    (exactly where ``torch.istft(stft(x)) == x``, i.e. away from an all-zero envelope).
    """
    _check(wave, relevance)
    if not stft.center:
        raise ValueError("stft_lrp needs a centred STFT (center=True)")
    spec = stft.stft(wave)
    env = stft_envelope(stft, wave.shape[-1], spec.shape[-1], wave)
    s = stabilised_ratio(relevance, wave, eps)
    q = torch.where(env > 1e-11, s / env.clamp_min(1e-11), 0.0)
    c = _one_sided_weights(spec.shape[1], stft.n_fft, wave.dtype, wave.device)
    return c[:, None] / stft.n_fft * (spec * stft.stft(q).conj()).real


def energy_split(wave: torch.Tensor, time_map: torch.Tensor, stft: Spectrogram) -> torch.Tensor:
    """Spread a non-negative per-sample *intensity* map (e.g. Grad-CAM) over the STFT grid.

    A time-only map carries no frequency information and is not a relevance of the form
    ``x_n g_n``, so the epsilon rule does not apply to it. Each frame gets the map's value at
    its centre, shared among the frame's bins in proportion to their power:
    ``R_{k,t} = m(tH) |X_{k,t}|^2 / sum_k |X_{k,t}|^2``. Written by hand (no library does it).
    """
    _check(wave, time_map)
    power = stft(wave).square()
    centres = (torch.arange(power.shape[-1], device=wave.device) * stft.hop_length).clamp(
        max=wave.shape[-1] - 1
    )
    per_frame = time_map[:, centres]
    share = power / power.sum(dim=1, keepdim=True).clamp_min(1e-20)
    return share * per_frame[:, None, :]


def _check(wave: torch.Tensor, relevance: torch.Tensor) -> None:
    if wave.dim() != 2 or relevance.shape != wave.shape:
        raise ValueError(
            "wave and relevance must both be (batch, samples) with the same shape, got "
            f"{tuple(wave.shape)} and {tuple(relevance.shape)}"
        )
