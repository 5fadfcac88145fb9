"""Figure of a per-state heart-sound explanation: the recording coloured by cardiac state,
lesion spans shaded, and the per-beat contributions stacked by state.

Built on ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot), like
``evaluate.reporting.figures``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from interp_models.heart.states import STATE_NAMES, AbnormalEvent, beat_index

STATE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def plot_state_explanation(
    wave: np.ndarray,
    sample_rate: int,
    states: np.ndarray,
    frame_rate: int,
    beats: np.ndarray,
    beat_mask: np.ndarray,
    title: str,
    path: str | Path,
    events: Sequence[AbnormalEvent] = (),
    max_seconds: float | None = 12.0,
) -> Path:
    """Two-panel PNG: waveform coloured by state, and stacked per-beat contributions.

    Parameters
    ----------
    wave : (N,) recording; states : (T,) per-frame states at ``frame_rate``.
    beats, beat_mask : (n_beats, 4) contributions (towards the explained class) and
        which spans exist, as in ``Explanation.maps``.
    events : lesion spans to shade (ground truth of the built-in data).
    max_seconds : plot only the first seconds (long recordings become unreadable).

    Returns
    -------
    The written path.
    """
    wave, states = np.asarray(wave, dtype=float), np.asarray(states)
    beats, beat_mask = np.asarray(beats, dtype=float), np.asarray(beat_mask, dtype=bool)
    if beats.shape != beat_mask.shape or beats.ndim != 2 or beats.shape[1] != 4:
        raise ValueError(f"beats {beats.shape} and beat_mask {beat_mask.shape} must be (n, 4)")
    hop = sample_rate // frame_rate
    end = wave.size if max_seconds is None else min(wave.size, int(max_seconds * sample_rate))
    t = np.arange(end) / sample_rate
    per_sample = np.repeat(states, hop)[:end]
    per_sample = np.pad(per_sample, (0, end - per_sample.size))

    fig = Figure(figsize=(12, 6), layout="constrained")
    ax_w, ax_b = fig.subplots(2, 1, sharex=True)
    for ev in events:
        if ev.start_s < t[-1]:
            ax_w.axvspan(ev.start_s, min(ev.end_s, t[-1]), color="red", alpha=0.12, lw=0)
    ax_w.plot(t, wave[:end], color="0.75", lw=0.4)
    for s, colour in enumerate(STATE_COLOURS, start=1):
        ax_w.plot(t, np.where(per_sample == s, wave[:end], np.nan), color=colour, lw=0.6)
    handles = [Patch(color=c, label=n) for c, n in zip(STATE_COLOURS, STATE_NAMES, strict=True)]
    if events:
        handles.append(Patch(color="red", alpha=0.2, label="lesion (ground truth)"))
    ax_w.legend(handles=handles, loc="upper right", fontsize="small", ncols=len(handles))
    ax_w.set(ylabel="amplitude", title="recording coloured by cardiac state")

    # One bar per beat at its first frame, positive and negative parts stacked separately.
    ids = beat_index(states)
    starts = np.array(
        [
            np.flatnonzero(ids == b)[0] / frame_rate if (ids == b).any() else np.nan
            for b in range(beats.shape[0])
        ]
    )
    widths = np.diff(np.append(starts, starts[-1] + 1.0)) * 0.8 if starts.size else starts
    shown = np.isfinite(starts) & (starts < t[-1])
    pos_base = np.zeros(beats.shape[0])
    neg_base = np.zeros(beats.shape[0])
    values = np.where(beat_mask, beats, 0.0)
    for s, colour in enumerate(STATE_COLOURS):
        v = values[:, s]
        base = np.where(v >= 0, pos_base, neg_base)
        ax_b.bar(
            starts[shown],
            v[shown],
            width=widths[shown],
            bottom=base[shown],
            align="edge",
            color=colour,
        )
        pos_base += np.clip(v, 0, None)
        neg_base += np.clip(v, None, 0)
    ax_b.axhline(0, color="k", lw=0.5)
    totals = values.sum(axis=0)
    ax_b.set(
        xlabel="time (s)",
        ylabel="contribution to logit",
        title="per-beat contributions; totals: "
        + ", ".join(f"{n} {v:+.2f}" for n, v in zip(STATE_NAMES, totals, strict=True)),
    )
    fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path
