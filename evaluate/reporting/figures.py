"""Figures of explanations: component explanations of NMF-based models, relevance maps.

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas rather than pyplot, so
they never touch the global backend or pyplot's figure registry: safe in worker processes
and headless runs, and nothing is left open once the function returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

__all__ = ["plot_component_explanation", "plot_relevance_map"]

_DPI = 110
_HIGHLIGHT = "tab:red"
_PLAIN = "tab:gray"


def _check_axes(name: str, image: np.ndarray, freqs_hz: np.ndarray, times_s: np.ndarray) -> None:
    if image.shape != (freqs_hz.shape[0], times_s.shape[0]):
        raise ValueError(
            f"{name} must be (F, T) = ({freqs_hz.shape[0]}, {times_s.shape[0]}) to match "
            f"freqs_hz and times_s, got {image.shape}"
        )


def _extent(freqs_hz: np.ndarray, times_s: np.ndarray) -> tuple[float, float, float, float]:
    # A single frame or bin would give a zero-width extent, which imshow rejects.
    t0, t1 = float(times_s[0]), float(times_s[-1])
    f0, f1 = float(freqs_hz[0]) / 1000, float(freqs_hz[-1]) / 1000
    return t0, t1 if t1 > t0 else t0 + 1e-3, f0, f1 if f1 > f0 else f0 + 1e-3


def _spectrogram(
    fig: Figure,
    ax: Axes,
    image: np.ndarray,
    extent: tuple[float, float, float, float],
    title: str,
    vmax: float,
    cmap: str = "magma",
) -> None:
    im = ax.imshow(
        image, origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=0.0, vmax=vmax
    )
    ax.set(title=title, xlabel="time (s)", ylabel="frequency (kHz)")
    fig.colorbar(im, ax=ax)


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write a pyplot-free figure as PNG at the figures' resolution."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI)
    return path


def plot_component_explanation(
    spec: np.ndarray,
    mask: np.ndarray,
    relevance: np.ndarray,
    W: np.ndarray,
    freqs_hz: np.ndarray,
    times_s: np.ndarray,
    relevant: Sequence[int],
    title: str,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    top: int = 10,
) -> Path:
    """Four-panel PNG explaining one decision by its relevant dictionary components.

    Parameters
    ----------
    spec
        ``(F, T)`` log1p magnitude of the input.
    mask
        ``(F, T)`` time-frequency mask in [0, 1] of the relevant components.
    relevance
        ``(K,)`` normalised component relevance for the explained class.
    W
        ``(F, K)`` dictionary of spectral shapes.
    freqs_hz, times_s
        ``(F,)`` bin centre frequencies and ``(T,)`` frame times.
    relevant
        Indices of the relevant components (may be empty).
    title
        Figure title.
    path
        Output PNG; parent directories are created.
    class_names
        Optional names shown as a second title line, e.g. ``["pred: dog", "true: dog"]``.
    top
        Number of components in the relevance bar chart.

    Returns
    -------
    The written path. Panels: (a) input, (b) ``spec * mask``, (c) the ``top`` components by
    relevance with relevant ones highlighted, (d) spectral shapes of the relevant components.
    """
    spec, mask = np.asarray(spec, dtype=float), np.asarray(mask, dtype=float)
    relevance, W = np.asarray(relevance, dtype=float), np.asarray(W, dtype=float)
    freqs_hz, times_s = np.asarray(freqs_hz, dtype=float), np.asarray(times_s, dtype=float)
    _check_axes("spec", spec, freqs_hz, times_s)
    _check_axes("mask", mask, freqs_hz, times_s)
    n_comp = relevance.shape[0]
    if relevance.ndim != 1 or W.shape != (freqs_hz.shape[0], n_comp):
        raise ValueError(
            f"relevance must be (K,) and W (F, K) = ({freqs_hz.shape[0]}, K), "
            f"got {relevance.shape} and {W.shape}"
        )
    relevant = [int(k) for k in relevant]
    if any(not 0 <= k < n_comp for k in relevant):
        raise ValueError(f"relevant indices must lie in [0, {n_comp}), got {relevant}")

    fig = Figure(figsize=(12, 8), layout="constrained")
    (ax_in, ax_mask), (ax_bar, ax_w) = fig.subplots(2, 2)
    extent = _extent(freqs_hz, times_s)
    # One colour scale for (a) and (b) so what the mask removes reads as darkening.
    vmax = max(float(spec.max()), 1e-12)
    _spectrogram(fig, ax_in, spec, extent, "(a) input (log1p magnitude)", vmax)
    _spectrogram(fig, ax_mask, spec * mask, extent, "(b) input x relevant-component mask", vmax)

    order = np.argsort(-relevance, kind="stable")[: max(1, min(top, n_comp))]
    chosen = set(relevant)
    ax_bar.bar(
        np.arange(order.size),
        relevance[order],
        color=[_HIGHLIGHT if k in chosen else _PLAIN for k in order],
    )
    ax_bar.set_xticks(np.arange(order.size), [f"k={k}" for k in order], rotation=45)
    ax_bar.set(title=f"(c) top {order.size} components by relevance", ylabel="relevance")

    ax_w.set(title="(d) spectral shapes of relevant components", xlabel="frequency (kHz)")
    ax_w.set_xlim(extent[2], extent[3])
    if relevant:
        for k in relevant:
            ax_w.plot(freqs_hz / 1000, W[:, k], label=f"k={k}")
        ax_w.set_ylabel("W[:, k]")
        ax_w.legend(fontsize="small", ncols=1 + len(relevant) // 8)
    else:
        ax_w.text(
            0.5, 0.5, "no relevant component", ha="center", va="center", transform=ax_w.transAxes
        )

    sup = title if not class_names else f"{title}\n{', '.join(map(str, class_names))}"
    fig.suptitle(sup)
    return save_png(fig, path)


def plot_relevance_map(
    spec: np.ndarray,
    relevance: np.ndarray,
    freqs_hz: np.ndarray,
    times_s: np.ndarray,
    title: str,
    path: str | Path,
) -> Path:
    """Spectrogram in grey with a post-hoc relevance map overlaid; returns the PNG path.

    ``spec`` and ``relevance`` are ``(F, T)``. The overlay uses a diverging colormap with
    limits symmetric about 0, so positive and negative evidence read at equal strength.
    """
    spec, relevance = np.asarray(spec, dtype=float), np.asarray(relevance, dtype=float)
    freqs_hz, times_s = np.asarray(freqs_hz, dtype=float), np.asarray(times_s, dtype=float)
    _check_axes("spec", spec, freqs_hz, times_s)
    _check_axes("relevance", relevance, freqs_hz, times_s)

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    extent = _extent(freqs_hz, times_s)
    ax.imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="gray_r")
    # An all-zero map would give vmin == vmax; any positive limit draws it as neutral.
    lim = max(float(np.abs(relevance).max()), 1e-12)
    # Opacity grows with |relevance| so irrelevant bins leave the spectrogram visible.
    alpha = 0.85 * np.abs(relevance) / lim
    ax.imshow(
        relevance,
        origin="lower",
        aspect="auto",
        extent=extent,
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        alpha=alpha,
    )
    # The colorbar gets an opaque mappable: a per-pixel alpha would make it meaningless.
    im = ScalarMappable(norm=Normalize(-lim, lim), cmap="RdBu_r")
    fig.colorbar(im, ax=ax, label="relevance")
    ax.set(title=title, xlabel="time (s)", ylabel="frequency (kHz)")
    return save_png(fig, path)
