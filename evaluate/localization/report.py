"""The localization family's report: a learned SRP-PHAT (by design) against post-hoc
explanations of a multichannel waveform CNN, on the geometry of every clip.

    python -m evaluate.report run=<localization_srp run> blackbox=<blackbox_localization run>

Both runs must have been trained on the same data and folds. The first ``n_clips`` test
clips are explained by the learned SRP itself (``LearnedSRP.explain``) and by every
post-hoc method on the black box (``evaluate.posthoc``, multichannel ``Samples``
groupings), and scored by ``evaluate.localization.study`` (perturbation, direct-path
window, delays), overall and per reverberation time and SNR. The page shows one clip's
relevance per microphone around the direct-path onset, the DFT-LRP views of LRP per
microphone, and the audible relevance per microphone (multichannel WAVs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from evaluate.localization.figures import curves_figure, onset_figure, views_figure
from evaluate.localization.metrics import by_condition
from evaluate.localization.study import (
    FRACTIONS,
    INTRINSIC,
    ON_SRP,
    SEGMENTS,
    analysis_stft,
    array_explainers,
    explain_clips,
)
from evaluate.metrics.statistics import mean_ci
from evaluate.posthoc.audio import positive_mask
from evaluate.reporting import skeleton
from evaluate.reporting.format import Audio, Block, Heading, Image, Table, Text, fmt
from evaluate.reporting.sanity import RandomBlock, SanityBatch, SanityCase, SanityPlan, top_down
from evaluate.reporting.skeleton import (
    Column,
    FamilyReport,
    Metric,
    ReportRequest,
    verdict_text,
    write_report,
)
from evaluate.runs import LoadedRun, load_run

__all__ = ["LocalizationReport", "report"]

#: the data settings that decide which clips and splits a run saw
DATA_KEYS = (
    "_target_",
    "root",
    "num_clips",
    "n_mics",
    "array_radius_m",
    "n_direction_bins",
    "distance_m",
    "rt60_s",
    "room_m",
    "snr_db",
    "image_order",
    "sources",
    "data_seed",
    "sample_rate",
    "clip_seconds",
    "train_folds",
    "val_folds",
    "test_folds",
)

METRICS = (
    Metric(
        "deletion_gap",
        "deletion gap (deg)",
        True,
        "area between the angular-error curves of most-relevant-first and random removal",
    ),
    Metric(
        "direct_enrichment",
        "direct-path enrichment",
        True,
        "share of |relevance| in the direct-path windows / their share of the samples",
    ),
    Metric("tdoa_hit", "TDOA within 1 sample", True, "share of microphone pairs", percent=True),
)
SNR_EDGES = (-10.0, 0.0, 15.0)


def _reinit(*names: str) -> Callable[[torch.nn.Module], None]:
    """Re-draw the learned SRP's parameters ``names`` from a normal distribution with each
    one's own mean and spread (its scale kept, what it learned gone)."""

    def randomise(model: torch.nn.Module) -> None:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name in names:
                p = getattr(model, name)
                spread = float(p.std()) if p.numel() > 1 else abs(float(p)) + 1e-3
                noise = torch.randn(p.shape, generator=g).to(p) * spread
                p.copy_(p.mean() + noise if p.numel() > 1 else noise)

    return randomise


#: the learned SRP's parameters from the output down
SRP_BLOCKS = (
    RandomBlock("readout (W, bias)", _reinit("weight", "bias")),
    RandomBlock("frame weighting (alpha, beta)", _reinit("alpha", "beta")),
    RandomBlock("frequency weighting", _reinit("freq_logit")),
)


def _check_runs(srp: LoadedRun, blackbox: LoadedRun) -> None:
    if srp.config.get("pipeline") != "localization":
        raise ValueError(f"run={srp.run_dir} is not a localization_srp run")
    if blackbox.config.get("pipeline") != "supervised" or "n_mics" not in blackbox.config["data"]:
        raise ValueError(
            f"blackbox={blackbox.run_dir} is not a blackbox_localization run (pipeline "
            "supervised on LocalizationClips)"
        )
    skeleton.check_same_data(
        srp.config,
        blackbox.config,
        DATA_KEYS,
        (f"run={srp.run_dir}", f"blackbox={blackbox.run_dir}"),
        "train the black box with the same data overrides (config=blackbox_localization)",
    )


class LocalizationReport(FamilyReport):
    """The localization family's part of the report (see the module docstring)."""

    title = "Learned SRP-PHAT versus post-hoc explanations of a microphone-array CNN"
    intrinsic = INTRINSIC
    metrics = METRICS
    score = METRICS[0]
    wandb_prefix = "localization_report"
    other_data = (
        Column("accuracy", ("test", "acc")),
        Column("balanced accuracy", ("test", "balanced_acc")),
    )
    blackbox_other_data = other_data

    def run(self, request: ReportRequest, out: Path, log: Callable[[str], None]) -> None:
        if request.blackbox is None:
            raise SystemExit(
                "evaluate.report: a localization_srp run is compared with its black box: give "
                "blackbox=<blackbox_localization run dir>"
            )
        start = time.perf_counter()
        self.srp = load_run(request.single_run())
        self.blackbox = load_run(request.blackbox)
        _check_runs(self.srp, self.blackbox)
        self.data = request.open_data(self.srp)
        test = self.data.split_indices["test"]
        self.rows = [int(r) for r in test[: request.n_clips]]
        self.methods = tuple(request.methods)
        self.sample_rate = int(self.data.array["sample_rate"])
        self.results, self.keep = explain_clips(
            self.srp.model, self.blackbox.model, self.data, self.rows, self.methods, self.seed, log
        )
        self.names = [INTRINSIC, *self.methods]
        self.names += [f"{m}@{INTRINSIC}" for m in ON_SRP if m in self.methods]
        self.summary = {m: self._summary(m) for m in self.names}
        self.seconds_total = time.perf_counter() - start

    def _summary(self, method: str) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": self.keep["seconds"][method]}
        for key in ("deletion_gap", "direct_enrichment", "tdoa_hit", "tdoa_error"):
            values = [r.scores[method].get(key, float("nan")) for r in self.results]
            mean, ci, n = mean_ci(values)
            if n:
                out[key], out[f"{key}_ci95"] = mean, ci
        return out

    def intro(self) -> list[Block]:
        acc = self.keep["accuracy"]
        return [
            Text(
                f"By design: the learned SRP-PHAT of `{self.srp.run_dir}` (its logits are an "
                "explicit sum of per-frame, per-pair, per-lag contributions of learned "
                "GCC-PHAT cross-correlations; its explanation is the delay each microphone pair "
                f"used). Black box: the multichannel waveform CNN of `{self.blackbox.run_dir}`, "
                f"explained post hoc. {len(self.rows)} test clips; on them the learned SRP "
                f"is right in {acc[INTRINSIC]['accuracy']:.1%} (mean angular error "
                f"{acc[INTRINSIC]['angular_error_deg']:.1f} deg), the black box in "
                f"{acc['blackbox']['accuracy']:.1%} "
                f"({acc['blackbox']['angular_error_deg']:.1f} deg)."
            ),
            Text(
                [
                    "**Deletion gap**: (microphone, segment) groups "
                    f"({SEGMENTS} segments per microphone) set to silence most relevant first "
                    f"at fractions {', '.join(f'{f:g}' for f in FRACTIONS)}; the area under the "
                    "angular-error curve minus that of random orders (degrees; higher: the "
                    "explanation found what the model localizes with). Each explanation is "
                    "scored on the model it explains.",
                    "**Direct-path enrichment**: share of |relevance| in each microphone's "
                    "direct-path window (direct onset to first reflection) divided by the "
                    "window's share of the samples; 1 is chance.",
                    "**TDOA within 1 sample**: post-hoc, the delay of each pair estimated from "
                    "the relevance traces; the learned SRP, the lag its explanation gives for "
                    "the pair. Segment-level methods cannot resolve it (empty).",
                ],
                bullets=True,
            ),
        ]

    def summaries(self) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        caption = (
            f"{len(self.rows)} test clips; mean ± 95% half-width. `{INTRINSIC}` and the rows "
            f"`<method>@{INTRINSIC}` (post hoc on the same model) explain the learned SRP, the "
            "others the black box."
        )
        return [(caption, self.summary)]

    def _condition_table(self, key: str, title: str) -> Table:
        rt60 = np.array([r.rt60_s for r in self.results])
        snr = np.array([r.snr_db for r in self.results])
        groups = None
        rows: list[list[str]] = []
        for m in self.names:
            values = np.array([r.scores[m].get(key, np.nan) for r in self.results], dtype=float)
            cells = by_condition(values, rt60, snr, SNR_EDGES)
            if groups is None:
                groups = list(cells)
                rows.append(["method", *groups])
            rows.append([f"`{m}`", *(fmt(cells[g]["mean"], cells[g]["ci95"]) for g in groups)])
        return Table(rows, f"{title} per reverberation time and SNR (clips per cell in the JSON)")

    def details(self, out: Path) -> list[Block]:
        blocks: list[Block] = [Heading("Verdict", 2)]
        lines = [verdict_text(self.summary, m, INTRINSIC) for m in METRICS]
        blocks.append(Text([t for t in lines if t], bullets=True))
        same = {m: v for m, v in self.summary.items() if m == INTRINSIC or "@" in m}
        if len(same) > 1:
            lines = [verdict_text(same, m, INTRINSIC) for m in METRICS]
            blocks += [
                Text(
                    "On the same model (the learned SRP explained by itself and post hoc), "
                    "where the deletion gap compares explanations alone:"
                ),
                Text([t for t in lines if t], bullets=True),
            ]
        blocks += [
            Heading("Per reverberation time and SNR", 2),
            self._condition_table("deletion_gap", "Deletion gap (deg)"),
            self._condition_table("direct_enrichment", "Direct-path enrichment"),
            self._condition_table("tdoa_hit", "TDOA within 1 sample"),
        ]
        keep, figures = self.keep, {}
        truth = self.data.truth(keep["row"])
        shown = [INTRINSIC, *[m for m in ("lrp", "integrated_gradients") if m in self.methods]]
        figures["onset"] = onset_figure(
            keep["x"], {m: keep[m] for m in shown}, truth, self.sample_rate, out / "onset.png"
        )
        figures["curves"] = curves_figure(self.results, self.names, FRACTIONS, out / "curves.png")
        blocks += [
            Heading("Perturbation curves", 2),
            Image(figures["curves"], "angular error against the fraction removed"),
            Heading(f"One clip (test row {keep['row']}) around the direct-path onset", 2),
            Image(figures["onset"], "relevance per microphone around the onset"),
        ]
        if "lrp" in self.methods:
            figures["views"] = views_figure(
                keep["x"], keep["lrp"], analysis_stft(self.sample_rate), out / "lrp_views.png"
            )
            blocks += [
                Text("LRP's relevance per microphone in time-frequency (DFT-LRP)."),
                Image(figures["views"], "DFT-LRP views per microphone"),
            ]
        blocks += self._audio(out, shown)
        self.files.update(figures)
        return blocks

    def _audio(self, out: Path, methods: list[str]) -> list[Block]:
        """The clip and, per method, each microphone gated by its normalised positive
        relevance (one channel per microphone, the maximum over all of them)."""
        x = self.keep["x"]
        items = [("input (one channel per microphone)", self._wav(out / "input.wav", x))]
        for m in methods:
            gate = positive_mask(self.keep[m].reshape(1, -1)).reshape(x.shape)
            items.append((f"{m}: audible relevance", self._wav(out / f"{m}_audible.wav", x * gate)))
        return [Heading("Listen", 2), Audio(items)]

    def _wav(self, path: Path, wave: torch.Tensor) -> Path:
        w = wave.detach().cpu().numpy().T
        peak = float(np.abs(w).max())
        sf.write(path, w / peak * 0.99 if peak > 0.99 else w, self.sample_rate, subtype="PCM_16")
        self.files[path.stem] = path
        return path

    def sanity_plan(self, request: ReportRequest) -> SanityPlan | None:
        """Both checks on the first ``sanity_clips`` clips of the report, in per-sample
        relevance per microphone."""
        rows = self.rows[: min(request.sanity_clips, len(self.rows))]
        if not rows:
            return None
        x = self.data.features["x"][rows].float()
        srp, bb = self.srp.model, self.blackbox.model.eval()

        def predict(model):
            return lambda inputs: model(inputs).argmax(1)

        def own(inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return srp.explain(inputs, target=t).maps["per_sample"]

        target = srp(x).argmax(1).detach()
        cases = [
            SanityCase(
                INTRINSIC, srp, SRP_BLOCKS, [SanityBatch(x, target, own, predict(srp))], True
            )
        ]
        bb_target = bb(x).argmax(1).detach()
        for name, explainer, grouping in array_explainers(
            self.methods, bb, self.sample_rate, self.seed
        ):

            def explain(inputs, t, explainer=explainer, grouping=grouping):
                return explainer.attribute(inputs, t, grouping=grouping).attribution

            batch = SanityBatch(x, bb_target, explain, predict(bb))
            cases.append(SanityCase(name, bb, top_down(bb), [batch]))
        return SanityPlan(
            cases,
            randomised=(
                f"`{INTRINSIC}`: its learned parameters from the output down, each re-drawn "
                "from a normal distribution with its own mean and spread: the readout over "
                "(pair, lag) and the biases, the frame weighting (alpha, beta), the frequency "
                "weighting of every pair. Not randomised: the array geometry and the GCC-PHAT "
                "itself, which are not learned. Black box: its head, each conv block, the stem."
            ),
            perturbation=(
                f"uniform noise of half-width {request.sanity_radius:g} x the clip's standard "
                "deviation on every microphone's samples; copies that change the predicted "
                "sector are left out."
            ),
            units=(
                "relevance per microphone and sample (per segment for the sampling methods): "
                "the learned SRP's per-frame contributions spread over their samples, each "
                "pair's half to each of its microphones."
            ),
        )

    def record(self) -> dict[str, Any]:
        return {
            "run": str(self.srp.run_dir),
            "blackbox": str(self.blackbox.run_dir),
            "rows": self.rows,
            "methods": list(self.names),
            "accuracy": self.keep["accuracy"],
            "summary": self.summary,
            "fractions": list(FRACTIONS),
            "segments_per_mic": SEGMENTS,
            "clips": [
                {
                    "row": r.row,
                    "rt60_s": r.rt60_s,
                    "snr_db": r.snr_db,
                    "azimuth_deg": r.azimuth_deg,
                    "scores": r.scores,
                    "curves": r.curves,
                }
                for r in self.results
            ],
            "seconds_total": self.seconds_total,
        }


def report(request: ReportRequest) -> dict[str, Path]:
    """The ``evaluate.report`` hook: a ``localization_srp`` run against ``blackbox=``."""
    return write_report(LocalizationReport(), request)
