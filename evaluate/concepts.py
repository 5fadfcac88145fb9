"""Audible neurons: the channels of a layer most relevant for a class, with reference
clips, heatmaps and audio (Concept Relevance Propagation, ``evaluate.posthoc.crp``).

    python -m evaluate.concepts run=<run> [layer=<name>] [class=<name or index>] [top=3]
        [refs=6] [split=val] [n_clips=<max clips scanned>] [composite=<name>] [out=<dir>]

For a classifier run (``blackbox_events``: ``SpectrogramCNN`` on log-mel;
``blackbox_events_waveform``: ``WaveformCNN`` on samples; or an NMF run, whose frozen
classifier is explained) it

1. scans the clips of ``split`` (each explained for its own label) for the relevance of
   every channel of ``layer`` (default: the last block);
2. for each class (``class=``, default every class) keeps the ``top`` channels of highest
   mean relevance over that class's clips;
3. for each channel, its ``refs`` reference clips (relevance maximisation), the channel's
   conditional heatmap on each, and the heatmap made audible: the input's STFT masked
   by the heatmap with the input's phase (spectrogram models), or the waveform gated by
   it sample by sample (waveform models) (``evaluate.posthoc.audio``);
4. checks the known answers: conservation (conditional heatmaps of all channels sum to
   the LRP heatmap), purity (share of a channel's reference clips of its class, against
   the class's share of the split) and localization (the share of the conditional
   heatmap's positive relevance inside the clip's event mask, against the mask's share of
   the clip, and against the unconditional heatmap's).

Writes ``report.html`` (listen there), ``report.md``, ``concepts.json``, and per channel
``<class>/ch<k>/`` with ``ref<i>.wav`` (the sonified channel), ``ref<i>.orig.wav`` and
``heatmaps.png``; default folder ``<run>/concepts/<layer>``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from evaluate.cli_args import RUN, Option, choice, index_option, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.metrics import relevance_mass_inside
from evaluate.posthoc.audio import audible_waveform, masked_inversion, positive_mask
from evaluate.posthoc.crp import (
    ConceptRelevance,
    RelevanceScan,
    conservation_error,
    relevance_maximisation,
)
from evaluate.posthoc.groupings import TFBins
from evaluate.posthoc.lrp import COMPOSITES
from evaluate.reporting.format import (
    Audio,
    Block,
    Heading,
    Image,
    Table,
    Text,
    fmt,
    save_figure,
    write_pages,
)
from evaluate.reporting.skeleton import jsonable
from evaluate.runs import find_run_dir, load_run, open_data
from interp_models.audio.io import write_audio
from interp_models.data.masks import load_event_mask
from interp_models.nmf.interpreter import NMFInterpreter

USAGE = __doc__.split("\n\n")[1]
OPTIONS = (
    RUN,
    Option("layer"),
    Option("class"),
    Option("top", whole_number, default=3),
    Option("refs", whole_number, default=6),
    Option("split", choice("train", "val", "test"), default="val"),
    Option("n_clips", whole_number),
    Option("composite", choice(*COMPOSITES)),
    Option("out"),
    Option("device", default="cpu"),
)


@dataclass
class Study:
    """What one run's concept study works on."""

    model: nn.Module
    frontend: nn.Module
    x: torch.Tensor  # (N, ...) model inputs of the scanned clips
    waves: torch.Tensor  # (N, samples)
    labels: torch.Tensor  # (N,)
    masks: list[Any] | None  # EventMask per clip, or None (data without masks)
    class_names: list[str]
    sample_rate: int

    @property
    def waveform(self) -> bool:
        return self.x.dim() == 2


def classifier_of(model: nn.Module) -> nn.Module:
    """The classifier CRP explains: the run's model, or an NMF run's frozen classifier."""
    return model.classifier if isinstance(model, NMFInterpreter) else model


def open_study(run_path: str, split: str, n_clips: int | None, device: str) -> Study:
    """Load the run and the clips of ``split`` (the first ``n_clips``)."""
    run = load_run(run_path, device=device)
    if run.config.get("task", "multiclass") != "multiclass":
        raise ValueError(
            f"run: {run.run_dir} is a {run.config.get('task')} run; CRP here "
            "explains classifiers (one logit per class)"
        )
    dm = open_data(run.config)
    rows = np.asarray(dm.split_indices[split])[:n_clips]
    paths = [dm.records[int(j)].mask_path for j in rows]
    masks = None if any(p is None for p in paths) else [load_event_mask(p) for p in paths]
    return Study(
        classifier_of(run.model).eval(),
        run.frontends["x"],
        dm.features["x"][rows].to(device),
        torch.as_tensor(np.asarray(dm.waves[rows]), dtype=torch.float32).to(device),
        dm.targets[rows],
        masks,
        list(run.class_names),
        int(run.config["data"]["sample_rate"]),
    )


def default_layer(model: nn.Module) -> str:
    """The last of the model's ``block_names`` (both black boxes name their blocks)."""
    names = getattr(model, "block_names", None)
    if not names:
        raise ValueError("layer: this model names no blocks; give layer=<module name>")
    return names[-1]


# ----------------------------------------------------------------------------- scoring


def truth_on_input(study: Study, i: int) -> torch.Tensor | None:
    """Clip ``i``'s event mask on the model input's grid (mel x frames, or samples)."""
    if study.masks is None:
        return None
    mask = study.masks[i]
    if study.waveform:
        times = np.arange(study.x.shape[-1]) / study.sample_rate
        return torch.from_numpy(mask.active_at(times))
    freqs = study.frontend.frequencies().cpu().numpy()
    times = study.frontend.frame_times(study.x.shape[-1]).cpu().numpy()
    return torch.from_numpy(mask.on_grid(freqs, times))


def localization(study: Study, rows: torch.Tensor, heat: torch.Tensor) -> dict[str, list[float]]:
    """Per clip: positive relevance mass inside the event mask, and the mask's share."""
    truths = [truth_on_input(study, int(i)) for i in rows]
    if any(t is None for t in truths):
        return {}
    truth = torch.stack(truths).reshape(len(truths), -1, truths[0].shape[-1])  # (B, F or 1, T)
    mass = relevance_mass_inside(heat.cpu().reshape(truth.shape), truth)
    share = truth.flatten(1).double().mean(dim=1)
    return {"mass_inside": mass.tolist(), "mask_share": share.tolist()}


def event_span(study: Study, i: int) -> tuple[float, float] | None:
    """The event's onset and offset of clip ``i`` in the input's time cells."""
    if study.masks is None:
        return None
    mask = study.masks[i]
    if study.waveform:
        scale = study.sample_rate
    else:
        scale = study.sample_rate / TFBins(study.frontend).inversion()[0].hop_length
    return mask.onset_s * scale, mask.offset_s * scale


def audible(study: Study, rows: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """The heatmaps as audio (B, samples): waveform gating, or the STFT masked with the
    input's phase (mel heatmaps carried to STFT bins)."""
    waves = study.waves[rows]
    if study.waveform:
        return audible_waveform(waves, heat.to(waves))
    stft, mel_fb = TFBins(study.frontend).inversion()
    return masked_inversion(waves, positive_mask(heat.to(waves)), stft.to(waves.device), mel_fb)


# ----------------------------------------------------------------------------- one channel


def channel_files(
    study: Study, crp: ConceptRelevance, scan: RelevanceScan, channel: int, refs: int, folder: Path
) -> dict[str, Any]:
    """Reference clips of ``channel``: heatmaps, audio and localization, written to
    ``folder``; returns the record."""
    pos = scan.references(channel, refs)
    rows, labels = scan.rows[pos], scan.labels[pos]
    x = study.x[rows]
    heat = crp.per_clip_conditional(x, labels.to(x.device), torch.full_like(labels, channel))
    _, full = crp.channel_relevance(x, labels.to(x.device))
    folder.mkdir(parents=True, exist_ok=True)
    audio = audible(study, rows, heat).cpu().numpy()
    wavs = []
    for i, (row, clip) in enumerate(zip(rows.tolist(), audio, strict=True)):
        write_audio(folder / f"ref{i}.wav", clip, study.sample_rate)
        write_audio(folder / f"ref{i}.orig.wav", study.waves[row].cpu().numpy(), study.sample_rate)
        wavs.append((folder / f"ref{i}.orig.wav", folder / f"ref{i}.wav"))
    names = [study.class_names[int(c)] for c in labels]
    figure = heatmap_figure(study, rows, heat, names, folder / "heatmaps.png")
    loc, loc_full = localization(study, rows, heat), localization(study, rows, full)
    return {
        "channel": channel,
        "references": rows.tolist(),
        "reference_labels": names,
        "relevance": scan.relevance[pos, channel].tolist(),
        **loc,
        "lrp_mass_inside": loc_full.get("mass_inside"),
        "figure": figure,
        "wavs": wavs,
    }


def heatmap_figure(
    study: Study, rows: torch.Tensor, heat: torch.Tensor, names: list[str], path: Path
) -> Path:
    """Input (top) and the channel's conditional heatmap (bottom) of each reference clip."""
    n = len(rows)
    fig = Figure(figsize=(2.2 * n + 0.5, 3.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for j in range(n):
        inp, rel = study.x[rows[j]].cpu().numpy(), heat[j].cpu().numpy()
        lim = float(np.abs(rel).max()) or 1.0
        if study.waveform:
            axes[0, j].plot(inp, lw=0.3)
            axes[1, j].plot(rel, lw=0.3, color="crimson")
        else:
            axes[0, j].imshow(inp, origin="lower", aspect="auto", cmap="magma")
            axes[1, j].imshow(rel, origin="lower", aspect="auto", cmap="bwr", vmin=-lim, vmax=lim)
        span = event_span(study, int(rows[j]))
        for ax in axes[:, j] if span else ():
            ax.axvspan(*span, color="green", alpha=0.15, lw=0)
        axes[0, j].set_title(f"#{int(rows[j])} {names[j]}", fontsize=7)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input (event shaded)" if study.masks else "input", fontsize=7)
    axes[1, 0].set_ylabel("conditional\nheatmap", fontsize=7)
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- the study


def study_class(
    study: Study,
    crp: ConceptRelevance,
    scan: RelevanceScan,
    label: int,
    top: int,
    refs: int,
    out: Path,
) -> dict[str, Any]:
    """The ``top`` channels of class ``label`` with their reference clips and purity."""
    channels, mean = scan.top_channels(label, top)
    name = study.class_names[label]
    records = []
    for channel, value in zip(channels.tolist(), mean.tolist(), strict=True):
        rec = channel_files(study, crp, scan, channel, refs, out / _slug(name) / f"ch{channel}")
        rec["mean_relevance"] = value
        rec["purity"] = scan.purity(channel, refs, label)
        records.append(rec)
    share = float((scan.labels == label).double().mean())
    return {"class": name, "index": label, "class_share": share, "channels": records}


def run_study(opts: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    study = open_study(opts["run"], opts["split"], opts["n_clips"], opts["device"])
    layer = opts["layer"] or default_layer(study.model)
    crp = ConceptRelevance(study.model, layer, opts["composite"])
    run_dir = find_run_dir(opts["run"])
    out = Path(opts["out"] or run_dir / "concepts" / layer)
    labels = _classes(opts, study.class_names)  # checked before the scan
    scan = relevance_maximisation(crp, study.x, study.labels.to(study.x.device))
    classes = [study_class(study, crp, scan, c, opts["top"], opts["refs"], out) for c in labels]
    check = study.x[:4], study.labels[:4].to(study.x.device)  # every channel: one pass each
    record = {
        "run": str(run_dir),
        "layer": layer,
        "split": opts["split"],
        "n_clips": len(study.x),
        "n_channels": int(scan.relevance.shape[1]),
        "composite": opts["composite"]
        or ("epsilon_plus" if study.waveform else "epsilon_plus_flat"),
        "conservation_error": conservation_error(crp, *check),
        "classes": classes,
        "summary": summarise(classes),
    }
    return record, out


def summarise(classes: list[dict[str, Any]]) -> dict[str, float]:
    """Means over every studied channel: purity against its chance (the class's share),
    and the localization shares (NaN without event masks)."""
    channels = [(c, ch) for c in classes for ch in c["channels"]]
    out = {
        "purity": float(np.mean([ch["purity"] for _, ch in channels])),
        "purity_chance": float(np.mean([c["class_share"] for c, _ in channels])),
    }
    for key in ("mass_inside", "mask_share", "lrp_mass_inside"):
        values = [v for _, ch in channels for v in (ch.get(key) or [])]
        out[key] = float(np.nanmean(values)) if values else float("nan")
    return out


def _classes(opts: dict[str, Any], names: list[str]) -> list[int]:
    if opts["class"] in (None, "all"):
        return list(range(len(names)))
    return [index_option(opts, "class", names)]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


# ----------------------------------------------------------------------------- pages


def summary_rows(record: dict[str, Any]) -> list[list[str]]:
    rows = [
        [
            "class",
            "channel",
            "mean relevance",
            "purity (class share)",
            "mass in event mask",
            "mask share",
            "LRP mass in mask",
        ]
    ]
    for c in record["classes"]:
        for ch in c["channels"]:
            rows.append(
                [
                    c["class"],
                    str(ch["channel"]),
                    fmt(ch["mean_relevance"]),
                    f"{ch['purity']:.0%} ({c['class_share']:.0%})",
                    *(_mean(ch.get(k)) for k in ("mass_inside", "mask_share", "lrp_mass_inside")),
                ]
            )
    return rows


def _mean(values: list[float] | None) -> str:
    return "–" if not values else f"{np.nanmean(values):.2f}"


def summary_text(summary: dict[str, float]) -> str:
    text = (
        f"Over every channel above: purity {summary['purity']:.0%} "
        f"(chance {summary['purity_chance']:.0%})"
    )
    if np.isfinite(summary["mass_inside"]):
        text += (
            f"; {summary['mass_inside']:.2f} of the conditional relevance inside the event "
            f"mask, which covers {summary['mask_share']:.2f} of the input "
            f"(the unconditional LRP heatmap: {summary['lrp_mass_inside']:.2f})"
        )
    return text + "."


def blocks(record: dict[str, Any]) -> list[Block]:
    out: list[Block] = [
        Heading(f"Audible neurons: layer `{record['layer']}`", 1),
        Text(
            [
                f"Run `{record['run']}`; {record['n_clips']} clips of the `{record['split']}` "
                f"split scanned, each explained for its own label ({record['composite']} LRP).",
                f"Conservation: the conditional heatmaps of all {record['n_channels']} channels "
                f"sum to the LRP heatmap within {record['conservation_error']:.1e} (relative).",
                "Purity: share of a channel's reference clips of its class (the class's share "
                "of the split in brackets). Mass in event mask: share of the channel's "
                "positive conditional relevance inside the clip's event mask (chance: the "
                "mask share); LRP: the same for the unconditional heatmap.",
            ],
            bullets=True,
        ),
        Table(summary_rows(record)),
        Text(summary_text(record["summary"])),
    ]
    for c in record["classes"]:
        out.append(Heading(f"{c['class']}", 2))
        for ch in c["channels"]:
            out += [
                Heading(f"channel {ch['channel']} (purity {ch['purity']:.0%})", 3),
                Image(Path(ch["figure"]), f"channel {ch['channel']} reference clips"),
                Audio(
                    [
                        (f"#{r} {lab} {kind}", Path(p))
                        for r, lab, pair in zip(
                            ch["references"], ch["reference_labels"], ch["wavs"], strict=True
                        )
                        for kind, p in zip(("original", "channel"), pair, strict=True)
                    ]
                ),
            ]
    return out


def main(argv: list[str] | None = None) -> Path:
    opts = parse_options(list(sys.argv[1:] if argv is None else argv), OPTIONS, USAGE)
    record, out = run_study(opts)
    pages = write_pages(blocks(record), out, f"Audible neurons ({record['layer']})")
    (out / "concepts.json").write_text(json.dumps(jsonable(record), indent=1) + "\n")
    print(f"concepts: {pages['html']}")
    return out


if __name__ == "__main__":
    run_cli(main)
