"""Figures of the localization report: relevance per microphone around the direct-path
onset, perturbation curves, and DFT-LRP views per microphone (matplotlib ``Figure``, no
pyplot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from evaluate.posthoc.dft_lrp import stft_lrp
from evaluate.reporting.format import save_figure
from interp_models.audio.features import Spectrogram

__all__ = ["curves_figure", "onset_figure", "views_figure"]

#: the onset view: this long before the earliest direct onset, and after it (seconds)
BEFORE_S, AFTER_S = 0.004, 0.016


def onset_figure(
    x: torch.Tensor,
    relevances: Mapping[str, torch.Tensor],
    truth: Any,
    sample_rate: int,
    path: Path,
) -> Path:
    """One row per microphone: the waveform and each method's relevance (scaled to the
    method's peak over all microphones) around the source's onset, the direct-path window
    ``[direct onset, first reflection)`` of that microphone shaded."""
    x = x.detach().cpu().numpy()
    n_mics = x.shape[0]
    lo = max(0, int(np.min(truth.direct_onset) - BEFORE_S * sample_rate))
    hi = min(x.shape[1], int(np.min(truth.direct_onset) + AFTER_S * sample_rate))
    t = np.arange(lo, hi) / sample_rate * 1e3
    fig = Figure(figsize=(10, 1.8 * n_mics), layout="constrained")
    axes = fig.subplots(n_mics, 1, sharex=True, squeeze=False)[:, 0]
    for m, ax in enumerate(axes):
        ax.axvspan(
            truth.direct_onset[m] / sample_rate * 1e3,
            min(truth.first_reflection[m], hi) / sample_rate * 1e3,
            color="0.85",
            label="direct-path window" if m == 0 else None,
        )
        ax.plot(t, x[m, lo:hi] / (np.abs(x[:, lo:hi]).max() + 1e-12), color="0.5", lw=0.6)
        for k, (name, rel) in enumerate(relevances.items()):
            r = np.asarray(rel.detach().cpu() if torch.is_tensor(rel) else rel)
            peak = np.abs(r[:, lo:hi]).max() + 1e-12
            ax.plot(t, r[m, lo:hi] / peak, lw=0.9, label=name if m == 0 else None, color=f"C{k}")
        ax.set_ylabel(f"mic {m}")
    axes[0].legend(fontsize=7, ncol=len(relevances) + 1, loc="upper right")
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle("Relevance per microphone around the onset (each method scaled to its peak)")
    return save_figure(fig, path)


def curves_figure(
    results: Sequence[Any], methods: Sequence[str], fractions: Sequence[float], path: Path
) -> Path:
    """Mean angular error against the fraction of groups removed, most relevant first
    (solid) and in random order (dashed), one colour per method."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for k, m in enumerate(methods):
        rel = np.mean([r.curves[m]["relevance"] for r in results], axis=0)
        rnd = np.mean([r.curves[m]["random"] for r in results], axis=0)
        colour = "black" if k == 0 else f"C{k - 1}"
        ax.plot(fractions, rel, "-o", color=colour, ms=3, label=m)
        ax.plot(fractions, rnd, "--", color=colour, lw=0.8)
    ax.set(
        xlabel="fraction of (microphone, segment) groups set to silence",
        ylabel="mean angular error (deg)",
        title="Removing the most relevant first (solid) or at random (dashed)",
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def views_figure(x: torch.Tensor, relevance: torch.Tensor, stft: Spectrogram, path: Path) -> Path:
    """DFT-LRP (Frommholz et al. 2023) of one method's per-sample relevance, one
    time-frequency panel per microphone, on a shared symmetric colour scale."""
    x, relevance = x.detach().cpu().float(), torch.as_tensor(relevance).float()
    tf = stft_lrp(x, relevance, stft).numpy()
    freqs, times = stft.frequencies().numpy(), stft.frame_times(tf.shape[-1]).numpy()
    peak = np.abs(tf).max() + 1e-12
    fig = Figure(figsize=(10, 2.2 * len(tf)), layout="constrained")
    axes = fig.subplots(len(tf), 1, sharex=True, squeeze=False)[:, 0]
    for m, ax in enumerate(axes):
        mesh = ax.pcolormesh(
            times, freqs / 1e3, tf[m], cmap="RdBu_r", vmin=-peak, vmax=peak, shading="auto"
        )
        ax.set_ylabel(f"mic {m}\nkHz")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(mesh, ax=list(axes), shrink=0.6, label="relevance")
    return save_figure(fig, path)
