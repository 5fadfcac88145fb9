"""By-design versus post-hoc on music emotion: do the explanations point at what drove it?

    python -m evaluate.report run=<midlevel_emotion run> blackbox=<blackbox_emotion run>
        [run=<another A2Mid2E run> ...] [n_clips=20] [methods=saliency,occlusion,...] [out=<dir>]

The first ``run`` is the one explained; every further ``run`` (e.g. the selective regime,
``config=midlevel_emotion_selective``) joins the section on the quality units'
selectivity (``evaluate.emotion.selectivity_report``), so both regimes sit in one table.

Chowdhury, Vall, Haunschmid, Widmer ("Towards explainable music emotion recognition: the
route via mid-level features", ISMIR 2019) explain an emotion prediction by the model
itself: A2Mid2E predicts seven mid-level qualities and maps them linearly to eight
emotions, so ``effect = weight x predicted quality`` is the whole explanation. The built-in
music (``interp_models.data.synth_music``) knows the true mapping and, per clip, where each
quality's evidence sits in the time-frequency plane, so both sides can be checked against
the generator on the same test clips (the first ``n_clips`` test clips with every rating):

* **intrinsic** (the ``run``, A2Mid2E): its effects and relative effects; whether its
  largest effect is on the generator's top quality (``top_quality_agreement``); agreement
  of the learned 8 x 7 mapping with the true one (rank correlation, sign agreement);
* **post-hoc** (the ``blackbox``, A2E): each method of ``evaluate.posthoc`` explains one
  emotion per clip, the *explained emotion*: the (emotion, quality) pair with the largest
  |true effect| of the clip, i.e. the emotion the generator made most dependent on one
  quality. Gradient methods and LRP work on single log-frequency bins, KernelShap / Lime /
  occlusion on ``N_BANDS`` bands x ``N_DIVISIONS`` time divisions. Each map is scored by
  the share of its positive relevance inside that quality's evidence region
  (``evaluate.emotion.evidence.posthoc_evidence_share``) next to the region's area
  fraction, the share a uniform map gets (chance).
* **the bridge**: the intrinsic model's effect of that same quality, ``W[e, q] * q(x)``,
  is a function of the input too; explaining it with the *same* methods gives a
  time-frequency map of what the by-design model's quality unit listens to, scored with
  the same evidence share. This is the only number both sides share: the by-design
  explanation itself lives in quality space, not on the spectrogram.

The report ends with the robustness and randomisation checks (``evaluate.reporting.sanity``,
:func:`sanity_plan`) of A2Mid2E's effects (its mapping, then its backbone, randomised) and
of every post-hoc method on A2E.

Relevance is oriented by the sign of the true effect (a quality that lowers the emotion
should get relevance for *lowering* it): signed maps are multiplied by that sign (every
method here except saliency is linear in the explained output, so this equals explaining
the negated output); saliency (|gradient|) is unsigned and left as is.

Outputs in ``out``: ``report.md`` and ``report.html`` (``evaluate.reporting.format``),
``report.json`` (per-clip values), figures, and the listenable contrasts the training
pipeline wrote under ``<run>/explanations/<song_id>/`` (re-synthesised when missing).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from evaluate.emotion.evidence import (
    chance_levels,
    evidence_on_input_grid,
    posthoc_evidence_share,
    true_effects,
    true_mapping_z,
)
from evaluate.emotion.figures import plot_effect_bars, plot_mapping, plot_relative_effects
from evaluate.emotion.metrics import (
    mapping_agreement,
    top_quality_agreement,
)
from evaluate.emotion.runs import EmotionRun, load_emotion_run
from evaluate.emotion.selectivity_report import selectivity_section
from evaluate.metrics.localization import relevance_mass_inside
from evaluate.metrics.statistics import mean_ci
from evaluate.posthoc import COMPARED, INTENSITY
from evaluate.posthoc.groupings import Bands
from evaluate.reporting import skeleton
from evaluate.reporting.format import (
    Audio,
    Block,
    Heading,
    Image,
    Table,
    Text,
    fmt,
    save_figure,
)
from evaluate.reporting.sanity import SanityBatch, SanityCase, SanityPlan, top_down
from evaluate.reporting.skeleton import (
    Column,
    FamilyReport,
    Metric,
    ReportRequest,
    posthoc_explainers,
    write_report,
)
from interp_models.audio.io import write_audio
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.data.synth_music import SHIFT_FIELDS, SynthMusicConfig, synthesize_clip
from interp_models.emotion.models import A2E, MidLevelEmotionModel

__all__ = [
    "DATA_KEYS",
    "DEFAULT_METHODS",
    "EmotionReport",
    "check_same_data",
    "evidence_shares",
    "explained_pairs",
    "orient",
    "report",
]

DEFAULT_METHODS = COMPARED  # the same post-hoc methods in every report
N_BANDS, N_DIVISIONS = 8, 16
INTRINSIC = "a2mid2e (by design)"
#: The summary table's columns: evidence share for the maps, quality agreement for A2Mid2E.
SUMMARY_METRICS = (
    Metric("share", "Evidence share", True, percent=True),
    Metric("above_chance", "Clips above chance", True, percent=True),
    Metric("top_quality", "Top quality = generator's", True, percent=True),
    Metric("seconds", "Seconds / clip", False),
    Metric("n_evals", "Model evaluations", False),
)
#: ``data.*`` settings that must agree for two runs to have seen the same clips and splits.
DATA_KEYS = (
    "_target_",
    "root",
    "ratings",
    "ratings_audio",
    "num_clips",
    "data_seed",
    "emotion_noise",
    "annotation_noise",
    "nuisance_scale",
    *SHIFT_FIELDS,
    "sample_rate",
    "clip_seconds",
    "train_folds",
    "val_folds",
    "test_folds",
    "features",
)


# ----------------------------------------------------------------------------- units


def check_same_data(
    run_cfg: dict[str, Any], blackbox_cfg: dict[str, Any], run_dir: Path, blackbox_dir: Path
) -> None:
    """Raise ``ValueError`` naming both runs when their data settings (``DATA_KEYS``) differ.

    The comparison of Chowdhury et al. (ISMIR 2019) is between models trained on the same
    clips and splits; anything else compares datasets, not explanations.
    """
    hint = "train the black box (config=blackbox_emotion) with the same data overrides"
    names = (f"run={run_dir}", f"blackbox={blackbox_dir}")
    skeleton.check_same_data(run_cfg, blackbox_cfg, DATA_KEYS, names, hint)


def explained_pairs(true_eff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clip, the (emotion, quality) pair with the largest |true effect|, and its sign.

    Parameters
    ----------
    true_eff : (N, emotions, qualities) effects of the annotated qualities under the true
        mapping (``evaluate.emotion.evidence.true_effects``).

    Returns
    -------
    ``(emotion (N,), quality (N,), sign (N,) in {-1, +1})``: the emotion the generator made
    most dependent on a single quality (Chowdhury et al., ISMIR 2019, explain one emotion
    at a time), that quality, and whether it raises (+1) or lowers (-1) the rating.
    """
    eff = np.asarray(true_eff, dtype=float)
    if eff.ndim != 3:
        raise ValueError(f"true_eff must be (N, emotions, qualities), got {eff.shape}")
    flat = np.abs(eff).reshape(len(eff), -1).argmax(1)
    emotion, quality = np.unravel_index(flat, eff.shape[1:])
    value = eff[np.arange(len(eff)), emotion, quality]
    return emotion.astype(int), quality.astype(int), np.where(value < 0, -1, 1)


def orient(maps: torch.Tensor, sign: Sequence[int] | np.ndarray, method: str) -> torch.Tensor:
    """Relevance (N, F, T) for moving the output the way the true effect does.

    Signed maps are multiplied by ``sign`` per clip (the methods here are linear in the
    explained output, so this is the explanation of ``sign * output``); unsigned intensity
    maps (``INTENSITY``: saliency) are returned unchanged.
    """
    if method in INTENSITY:
        return maps
    s = torch.as_tensor(np.asarray(sign), dtype=maps.dtype, device=maps.device)
    if s.shape != maps.shape[:1]:
        raise ValueError(f"sign must have one value per map ({len(maps)}), got {tuple(s.shape)}")
    return maps * s.reshape(-1, *([1] * (maps.dim() - 1)))


def evidence_shares(relevance: torch.Tensor, masks: torch.Tensor) -> dict[str, np.ndarray]:
    """Per clip: ``share`` of positive relevance inside the evidence mask (NaN: nothing to
    score), ``chance`` (the mask's area fraction, what a uniform map gets) and
    ``above_chance`` (share > chance). Relevance mass accuracy (Arras et al. 2022) via
    ``evaluate.metrics.localization.relevance_mass_inside``."""
    share = relevance_mass_inside(relevance.float(), masks, nothing=float("nan")).double().numpy()
    chance = masks.flatten(1).double().mean(1).numpy()
    return {"share": share, "chance": chance, "above_chance": share > chance}


# ----------------------------------------------------------------------------- runs, data


def _load(run_dir: Path, blackbox_dir: Path | None) -> tuple[EmotionRun, EmotionRun | None]:
    mid = load_emotion_run(run_dir)
    if not isinstance(mid.model, MidLevelEmotionModel):
        raise ValueError(
            f"run={mid.run_dir} is not an A2Mid2E run (config=midlevel_emotion or "
            "midlevel_emotion_separate); pass the black box as blackbox="
        )
    if blackbox_dir is None:
        return mid, None
    bb = load_emotion_run(blackbox_dir)
    if not isinstance(bb.model, A2E):
        raise ValueError(f"blackbox={bb.run_dir} is not an A2E run (config=blackbox_emotion)")
    check_same_data(mid.config, bb.config, mid.run_dir, bb.run_dir)
    if mid.metrics["data"].get("splits") != bb.metrics["data"].get("splits"):
        raise ValueError(
            f"run={mid.run_dir} and blackbox={bb.run_dir} have different splits "
            f"({mid.metrics['data'].get('splits')} vs {bb.metrics['data'].get('splits')})"
        )
    return mid, bb


class _Plain(nn.Module):
    """Hides a network's class from ``lrp_module`` (which rebuilds plain ``SpectrogramCNN``
    pooling only); used for the band-pooled variant."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _explained_net(backbone: nn.Module) -> nn.Module:
    """The network post-hoc methods run on: A2E's backbone (its forward is the model's) or
    A2Mid2E's quality network; plain ``SpectrogramCNN`` as is, so LRP pools conservatively."""
    return backbone if type(backbone) is SpectrogramCNN else _Plain(backbone)


# ----------------------------------------------------------------------------- explaining


@dataclass
class MethodMaps:
    """One method on one model: oriented maps (N, F, T) on the input grid, per-clip cost."""

    maps: torch.Tensor
    seconds: float
    n_evals: float
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def explain_posthoc(
    net: nn.Module,
    frontend: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    sign: np.ndarray,
    methods: Sequence[str],
    seed: int = 0,
    log: Callable[[str], None] = print,
    label: str = "",
) -> dict[str, MethodMaps]:
    """Every method of ``methods`` on ``net`` for output ``target`` of each clip, oriented by
    ``sign``; maps on the model's input grid (band methods spread evenly over their bins)."""
    bands = Bands(frontend, n_bands=N_BANDS, n_divisions=N_DIVISIONS)
    out = {}
    for name, explainer, grouping in posthoc_explainers(methods, net, frontend, bands, seed):
        e = explainer.attribute(x, target, grouping=grouping)
        maps = orient(e.maps["relevance_map"].float(), sign, name)
        out[name] = MethodMaps(maps.detach(), float(e.seconds), float(e.n_evals))
        log(f"[emotion report] {label}{name}: {e.seconds:.3f} s/clip, {e.n_evals} evals/clip")
    return out


# ----------------------------------------------------------------------------- figures


def _maps_figure(
    x: np.ndarray,
    columns: dict[str, dict[str, np.ndarray]],
    mask: np.ndarray,
    freqs: np.ndarray,
    times: np.ndarray,
    title: str,
    path: Path,
) -> Path:
    """Input spectrogram, then one row per method with a panel per model; the evidence
    region of the driving quality outlined in black."""
    methods = list(next(iter(columns.values())))
    n_cols = len(columns)
    fig = Figure(figsize=(max(4.6 * n_cols, 8.0), 2.3 * (len(methods) + 1)))
    extent = (float(times[0]), float(times[-1]), 0, len(freqs))
    ticks = np.linspace(0, len(freqs) - 1, 5).astype(int)

    def panel(ax, image, label, cmap, vmin, vmax):
        ax.imshow(image, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                  extent=extent, interpolation="nearest")  # fmt: skip
        if mask.any():
            ax.contour(
                np.linspace(times[0], times[-1], mask.shape[1]),
                np.arange(mask.shape[0]) + 0.5,
                mask.astype(float),
                levels=[0.5],
                colors="k",
                linewidths=0.7,
            )
        ax.set_title(label, fontsize=8)
        ax.set_yticks(ticks + 0.5, [f"{freqs[t]:.0f}" for t in ticks], fontsize=6)
        ax.tick_params(axis="x", labelsize=6)

    ax = fig.add_subplot(len(methods) + 1, n_cols, 1)
    panel(ax, x, "input (log-frequency spectrogram), evidence outlined", "magma", None, None)
    ax.set_ylabel("Hz", fontsize=7)
    for r, method in enumerate(methods):
        for c, (model, maps) in enumerate(columns.items()):
            m = maps[method]
            vmax = float(np.abs(m).max()) or 1.0
            ax = fig.add_subplot(len(methods) + 1, n_cols, (r + 1) * n_cols + c + 1)
            panel(ax, m, f"{method}: {model}", "RdBu_r", -vmax, vmax)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _contrast_audio(
    run_dir: Path, dm, row: int, model: MidLevelEmotionModel, emotion: int, out: Path
) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    """The listenable contrast of clip ``row`` in ``out/audio/<song_id>/``: the pipeline's
    wavs from ``<run>/explanations/<song_id>/`` when present, else re-synthesised here for
    the quality with the largest |effect| on ``emotion`` (set to 0 and to 1 by the
    generator)."""
    song_id = dm.records[row].song_id
    folder = run_dir / "explanations" / song_id
    info_file = folder / "explanation.json"
    if info_file.is_file():
        info = (r := json.loads(info_file.read_text())).get("meta", r)  # schema 1 or older
        q = info["quality"]
        files = [("original", folder / "original.wav")]
        files += [(f"{q} {lvl}", folder / f"{q}_{lvl}.wav") for lvl in ("low", "high")]
        if all(p.is_file() for _, p in files):  # copied so the report folder is complete
            info["source"] = str(folder)
            copies = []
            for label, p in files:
                dest = out / "audio" / song_id / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
                copies.append((label, dest))
            return info, copies
    with torch.no_grad():
        q_pred, _ = model.forward_both(dm.x[row : row + 1])
    eff = (q_pred * model.mapping[emotion])[0]
    j = int(eff.abs().argmax())
    quality = dm.quality_names[j]
    config = SynthMusicConfig(**dm.generator["config"])
    folder = out / "audio" / song_id
    files = [("original", write_audio(folder / "original.wav", dm.waves[row], dm.sample_rate))]
    for level, value in (("low", 0.0), ("high", 1.0)):
        wave = synthesize_clip(config, int(song_id) - 1, {quality: value}).mix
        path = write_audio(folder / f"{quality}_{level}.wav", wave, dm.sample_rate)
        files.append((f"{quality} {level}", path))
    info = {
        "song_id": song_id,
        "emotion": dm.emotion_names[emotion],
        "quality": quality,
        "source": "re-synthesised by the report",
    }
    return info, [(label, Path(p)) for label, p in files]


# ----------------------------------------------------------------------------- tables


def _regression_tables(mid: EmotionRun, bb: EmotionRun | None) -> list[Block]:
    """Test-split Pearson r and RMSE (rating units) of both models, from metrics.json."""

    def per(run: EmotionRun | None, kind: str, name: str, stat: str) -> str:
        if run is None:
            return "-"
        v = run.metrics.get("per_output", {}).get("test", {}).get(f"{kind}/{stat}_{name}")
        return fmt(float(v)) if v is not None else "-"

    def mean(run: EmotionRun | None, key: str) -> str:
        v = None if run is None else run.metrics.get("test", {}).get(key)
        return fmt(float(v)) if v is not None else "-"

    rows = [["emotion", "r A2E", "r A2Mid2E", "RMSE A2E", "RMSE A2Mid2E"]]
    rows.append(
        [
            "**mean**",
            mean(bb, "emotion_r"),
            mean(mid, "emotion_r"),
            mean(bb, "emotion_rmse"),
            mean(mid, "emotion_rmse"),
        ]
    )
    for e in mid.emotions:
        rows.append(
            [
                e,
                per(bb, "emotion", e, "r"),
                per(mid, "emotion", e, "r"),
                per(bb, "emotion", e, "rmse"),
                per(mid, "emotion", e, "rmse"),
            ]
        )
    q_rows = [["quality", "r A2Mid2E", "RMSE A2Mid2E"]]
    q_rows.append(["**mean**", mean(mid, "quality_r"), mean(mid, "quality_rmse")])
    q_rows += [
        [q, per(mid, "quality", q, "r"), per(mid, "quality", q, "rmse")] for q in mid.qualities
    ]
    gap = ""
    if bb is not None and "emotion_r" in bb.metrics.get("test", {}):
        d = mid.metrics["test"]["emotion_r"] - bb.metrics["test"]["emotion_r"]
        gap = f" A2Mid2E - A2E mean r: {d:+.3f} (issue target: within 0.03)."
    return [
        Table(rows, "Emotions, whole test split (metrics.json of each run)." + gap),
        Table(q_rows, "Mid-level qualities predicted by A2Mid2E, whole test split."),
    ]


def verdict(
    posthoc: dict[str, dict[str, float]], bridge: dict[str, dict[str, float]], tqa: float
) -> str:
    """One plain sentence per side, from the method summaries (share, CI, chance)."""
    parts = []
    if posthoc:
        best = max(posthoc, key=lambda m: posthoc[m]["share"])
        s = posthoc[best]
        above = [m for m, v in posthoc.items() if v["share"] - v["share_ci95"] > v["chance"]]
        parts.append(
            f"Post-hoc explanations of the A2E black box put at most {s['share']:.0%} of their "
            f"positive relevance in the driving quality's evidence (`{best}`; a uniform map: "
            f"{s['chance']:.0%}); {len(above)} of {len(posthoc)} methods are above chance beyond "
            "their 95% interval."
        )
    if bridge:
        best_b = max(bridge, key=lambda m: bridge[m]["share"])
        b = bridge[best_b]
        text = (
            "The by-design model's own effect of that quality, explained the same way, puts "
            f"{b['share']:.0%} there (`{best_b}`)"
        )
        if posthoc:
            best = max(posthoc, key=lambda m: posthoc[m]["share"])
            diff = b["share"] - posthoc[best]["share"]
            ci = b["share_ci95"] + posthoc[best]["share_ci95"]
            if abs(diff) <= ci:
                text += ": no clear difference from the black box's best explanation"
            elif diff > 0:
                text += ": its quality units look at the evidence more than the black box does"
            else:
                text += ": no better than the black box's best explanation"
        parts.append(text + ".")
    parts.append(
        "In quality space the intrinsic explanation names the generator's most effective quality "
        f"for {tqa:.0%} of the explained clips (chance 1/7 = 14%); that, not a time-frequency map, "
        "is what A2Mid2E offers by design."
    )
    return " ".join(parts)


# ----------------------------------------------------------------------------- report


def _summaries(results: dict[str, MethodMaps]) -> dict[str, dict[str, float]]:
    out = {}
    for name, r in results.items():
        share, ci, n = mean_ci(r.scores["share"])
        ok = np.isfinite(r.scores["share"])
        out[name] = {
            "share": share,
            "share_ci95": ci,
            "chance": float(np.mean(r.scores["chance"][ok])) if ok.any() else float("nan"),
            "lift": share / float(np.mean(r.scores["chance"][ok])) if ok.any() else float("nan"),
            "above_chance": float(np.mean(r.scores["above_chance"][ok])) if ok.any() else 0.0,
            "n_clips": n,
            "seconds": r.seconds,
            "n_evals": r.n_evals,
        }
    return out


def _summary_rows(
    post: dict[str, dict[str, float]], bridge: dict[str, dict[str, float]], tqa: float, ex
) -> dict[str, dict[str, float]]:
    """The summary table's rows: the intrinsic explanation, then both post-hoc sides."""
    rows = {INTRINSIC: {"top_quality": tqa, "seconds": float(ex.seconds), "n_evals": ex.n_evals}}
    rows.update({f"A2E: {m}": v for m, v in post.items()})
    rows.update({f"A2Mid2E quality: {m}": v for m, v in bridge.items()})
    return rows


class EmotionReport(FamilyReport):
    """The emotion family's part of the report (see the module docstring)."""

    title = "A2Mid2E (by design) versus post-hoc explanations of A2E"
    intrinsic = INTRINSIC
    metrics = SUMMARY_METRICS
    score = SUMMARY_METRICS[0]
    wandb_prefix = "emotion_report"
    other_data = (
        Column("emotion r", ("test", "emotion_r")),
        Column("quality r", ("test", "quality_r")),
        Column("emotion RMSE", ("test", "emotion_rmse")),
        Column("top-quality agreement", ("explanations", "top_quality_agreement")),
        Column("worst dominance", ("selectivity", "contrasts", "min_dominance")),
    )
    blackbox_other_data = (
        Column("emotion r", ("test", "emotion_r")),
        Column("emotion RMSE", ("test", "emotion_rmse")),
    )

    def run(self, request: ReportRequest, out: Path, log: Callable[[str], None]) -> None:
        self.start = time.perf_counter()
        methods = self.methods = tuple(request.methods)
        n_clips, seed = request.n_clips, self.seed
        first, *others = (Path(r).expanduser().resolve() for r in request.runs)
        self.mid, self.bb = _load(first, request.blackbox)
        self.others = [_load(r, None)[0].run_dir for r in others]  # selectivity rows only
        self.dm = request.open_data(self.mid)
        if not self.dm.generator:
            raise ValueError(
                f"run={self.mid.run_dir}: the emotion report scores explanations against the "
                "built-in generator's true mapping and evidence masks; this run used real data"
            )
        self.model = self.mid.model.eval()
        test = self.dm.split_indices["test"]
        labelled = np.isfinite(self.dm.q[test].numpy()).all(1) & np.isfinite(
            self.dm.e[test].numpy()
        ).all(1)
        self.rows = test[labelled][:n_clips]
        if len(self.rows) == 0:
            raise ValueError(f"run={self.mid.run_dir}: no test clip has every rating")
        self.x = self.dm.x[self.rows].float()
        self.n = len(self.rows)
        self.song_ids = [self.dm.records[int(r)].song_id for r in self.rows]
        self.truth = true_effects(self.dm, self.rows)
        self.emotion, self.quality, self.sign = explained_pairs(self.truth)
        idx = np.arange(self.n)

        # -- intrinsic: the model's own explanation, for every emotion and the explained one
        self.ex = self.model.explain(self.x, target=torch.as_tensor(self.emotion))
        self.eff = self.ex.maps["effects"].numpy()
        self.rel = self.ex.maps["relative_effects"].numpy()
        self.learned = self.model.mapping.detach().numpy().astype(float)
        self.true_w = true_mapping_z(self.dm)
        self.near_zero = float(
            self.mid.config.get("emotion", {}).get("evaluation", {}).get("near_zero", 0.1)
        )
        self.agreement = mapping_agreement(self.learned, self.true_w, near_zero=self.near_zero)
        n_e, n_q = self.eff.shape[1:]
        self.tqa_all = top_quality_agreement(
            self.eff.reshape(self.n * n_e, n_q), self.truth.reshape(self.n * n_e, n_q)
        )
        self.tqa = top_quality_agreement(self.eff[idx, self.emotion], self.truth[idx, self.emotion])
        self.model_top = np.abs(self.eff[idx, self.emotion]).argmax(1)
        self.effect_sign_ok = np.sign(self.eff[idx, self.emotion, self.quality]) == self.sign
        log(f"[emotion report] intrinsic: {self.n} clips, top-quality agreement {self.tqa:.2f}")

        # -- evidence of the driving quality on the input grid; per-emotion chance levels
        self.masks = evidence_on_input_grid(self.dm, self.rows)[
            torch.from_numpy(idx), torch.from_numpy(self.quality)
        ]
        self.chance_by_emotion = chance_levels(self.dm, self.rows, n_e)

        self._posthoc(methods, seed, log)
        self.sample_rate = int(self.dm.sample_rate)
        self._figures(out)
        self.sel_blocks, self.sel_record = selectivity_section(
            [self.mid.run_dir, *self.others], self.dm.quality_names, out
        )

    def _posthoc(self, methods: tuple[str, ...], seed: int, log: Callable[[str], None]) -> None:
        """Post-hoc maps of A2E (explained emotion) and of A2Mid2E's quality unit (the
        bridge), scored by their share in the driving quality's evidence."""
        self.frontend = self.dm.frontend
        self.posthoc: dict[str, MethodMaps] = {}
        if self.bb is not None:
            self.posthoc = explain_posthoc(
                _explained_net(self.bb.model.eval().backbone),
                self.frontend,
                self.x,
                torch.as_tensor(self.emotion),
                self.sign,
                methods,
                seed,
                log,
                "A2E ",
            )
        bridge_sign = self.sign * np.where(self.learned[self.emotion, self.quality] < 0, -1, 1)
        self.bridge = explain_posthoc(
            _explained_net(self.model.backbone),
            self.frontend,
            self.x,
            torch.as_tensor(self.quality),
            bridge_sign,
            methods,
            seed,
            log,
            "A2Mid2E quality ",
        )
        self.aggregate: dict[str, dict[str, dict[str, float]]] = {"posthoc": {}, "bridge": {}}
        for side, results in (("posthoc", self.posthoc), ("bridge", self.bridge)):
            for name, r in results.items():
                r.scores = evidence_shares(r.maps, self.masks)
                self.aggregate[side][name] = posthoc_evidence_share(
                    r.maps, self.dm, self.rows, self.emotion
                )
        self.post_sum, self.bridge_sum = _summaries(self.posthoc), _summaries(self.bridge)

    def _figures(self, out: Path) -> None:
        """The figures of one clip and its quality contrast (in ``self.files``)."""
        # -- figures (the figure clip: the first one with the pipeline's contrast wavs)
        fig_k = next(
            (
                k
                for k, s in enumerate(self.song_ids)
                if (self.mid.run_dir / "explanations" / s / "explanation.json").is_file()
            ),
            0,
        )
        self.fig_k = fig_k
        fig_row, fig_e, fig_q = (
            int(self.rows[fig_k]),
            int(self.emotion[fig_k]),
            int(self.quality[fig_k]),
        )
        self.files = figures = {
            "effects": plot_effect_bars(
                self.eff[fig_k, fig_e],
                self.dm.quality_names,
                f"clip {self.song_ids[fig_k]}: A2Mid2E effects on {self.dm.emotion_names[fig_e]}",
                out / "effects.png",
                prediction=float(self.ex.maps["emotions"][fig_k, fig_e]),
            ),
            "true_effects": plot_effect_bars(
                self.truth[fig_k, fig_e],
                self.dm.quality_names,
                f"clip {self.song_ids[fig_k]}: true effects (generator) on "
                f"{self.dm.emotion_names[fig_e]}",
                out / "true_effects.png",
            ),
            "relative": plot_relative_effects(
                self.rel, self.dm.quality_names, self.dm.emotion_names, out / "relative.png"
            ),
            "mapping": plot_mapping(
                self.learned,
                self.true_w,
                self.dm.quality_names,
                self.dm.emotion_names,
                out / "mapping.png",
            ),
        }
        columns: dict[str, dict[str, np.ndarray]] = {}
        if self.posthoc:
            columns[f"A2E {self.dm.emotion_names[fig_e]}"] = {
                m: r.maps[fig_k].numpy() for m, r in self.posthoc.items()
            }
        columns[f"A2Mid2E effect of {self.dm.quality_names[fig_q]}"] = {
            m: r.maps[fig_k].numpy() for m, r in self.bridge.items()
        }
        freqs = self.frontend.frequencies().numpy()
        times = self.frontend.frame_times(self.x.shape[-1]).numpy()
        figures["maps"] = _maps_figure(
            self.x[fig_k].numpy(),
            columns,
            self.masks[fig_k].numpy(),
            freqs,
            times,
            f"clip {self.song_ids[fig_k]}: relevance for {self.dm.emotion_names[fig_e]} "
            f"({'raised' if self.sign[fig_k] > 0 else 'lowered'} most by "
            f"{self.dm.quality_names[fig_q]}); black outline: its evidence",
            out / "maps.png",
        )
        self.contrast, self.audio = _contrast_audio(
            self.mid.run_dir, self.dm, fig_row, self.model, fig_e, out
        )

    def intro(self) -> list[Block]:
        mid = self.mid
        variant = mid.metrics.get("variant", mid.config.get("emotion", {}).get("variant"))
        return [
            Text(
                f"Run `{mid.run_dir}` (A2Mid2E, variant {variant}) and black box "
                f"`{self.bb.run_dir if self.bb else 'none given'}` (A2E), trained on the same "
                f"built-in music; {self.n} test clips. Chowdhury et al., ISMIR 2019: effect = "
                "weight x predicted quality; relative effect = effect / sum |effect|."
            ),
        ]

    def summaries(self) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        caption = (
            "Evidence share: positive relevance inside the driving quality's evidence (maps only: "
            "A2Mid2E explains in quality space, scored by its top quality). `A2E: m` is method m "
            "on the black box, `A2Mid2E quality: m` the same method on A2Mid2E's quality unit "
            "(the bridge). Details below."
        )
        return [(caption, _summary_rows(self.post_sum, self.bridge_sum, self.tqa, self.ex))]

    def details(self, out: Path) -> list[Block]:
        return [
            Heading("Prediction quality"),
            *_regression_tables(self.mid, self.bb),
            Heading("Learned mapping versus the generator's"),
            Table(
                [
                    [
                        "Spearman r",
                        "Pearson r",
                        "sign agreement",
                        "weights sign-scored",
                        "mean abs w, true near 0",
                    ],
                    [
                        fmt(self.agreement["spearman"]),
                        fmt(self.agreement["pearson"]),
                        f"{self.agreement['sign_agreement']:.1%}",
                        str(self.agreement["n_signed"]),
                        fmt(self.agreement["near_zero_abs"]),
                    ],
                ],
                "All 56 weights in standardised units; the sign is scored where |true w| >= "
                f"{self.near_zero} x max |true w| (target >= 90%); last column: mean |learned w| "
                "where the true weight is near zero.",
            ),
            Image(self.files["mapping"], "learned versus true mapping"),
            *self.sel_blocks,
            Heading("The intrinsic explanation"),
            Text(
                "Explained emotion per clip: the (emotion, quality) pair with the largest |true "
                "effect| (the generator's mapping times the clip's annotated qualities), so every "
                "side explains the same output of the same clip and the generator says which "
                "quality should carry it."
            ),
            Table(
                [
                    ["measure", "value"],
                    ["top quality = generator's, explained emotion", f"{self.tqa:.1%}"],
                    ["top quality = generator's, all 8 emotions", f"{self.tqa_all:.1%}"],
                    [
                        "sign of the effect of the generator's top quality agrees",
                        f"{float(np.mean(self.effect_sign_ok)):.1%}",
                    ],
                    ["seconds per clip", fmt(float(self.ex.seconds))],
                    ["model evaluations per clip", str(self.ex.n_evals)],
                ],
                "Chance for the top quality: 1/7.",
            ),
            Image(self.files["effects"], "effects of one clip"),
            Image(self.files["true_effects"], "true effects of one clip"),
            Image(self.files["relative"], "relative effects over the clips"),
            Heading("Where the explanations point: evidence share"),
            Text(
                "Share of positive (oriented) relevance inside the evidence region of the quality "
                "that drives the explained emotion; chance = the region's area fraction. The "
                "bridge column applies the same method to the by-design model's effect of that "
                "quality, W[e, q] x q(x): what its quality unit listens to. Band methods "
                f"(kernel_shap, lime, occlusion) work on {N_BANDS} bands x {N_DIVISIONS} "
                "divisions, the others on single bins."
            ),
            Table(_share_table(self.post_sum, self.bridge_sum), ""),
            Text(verdict(self.post_sum, self.bridge_sum, self.tqa)),
            Image(self.files["maps"], "relevance maps of one clip"),
            Table(
                [["emotion", "chance share"]]
                + [[e, f"{v:.1%}"] for e, v in self.chance_by_emotion.items()],
                "Chance level per emotion (area of its most effective quality's evidence, mean "
                "over these clips).",
            ),
            Heading("Listen: the most effective quality low and high"),
            Text(
                f"Clip {self.contrast['song_id']}: {self.contrast['quality']} set to 0 and to 1 by "
                "the generator, everything else unchanged (quality chosen by the model's largest "
                f"effect on {self.contrast['emotion']}; {self.contrast['source']})."
            ),
            Audio(self.audio),
            Heading("Per clip"),
            Table(
                _clip_table(
                    self.dm,
                    self.song_ids,
                    self.emotion,
                    self.quality,
                    self.truth,
                    self.eff,
                    self.model_top,
                    self.masks,
                ),
                "",
            ),
        ]

    def sanity_plan(self, request: ReportRequest) -> SanityPlan | None:
        n = min(request.sanity_clips, self.n)
        blackbox = None if self.bb is None else _explained_net(self.bb.model.eval().backbone)
        return sanity_plan(
            self.model,
            blackbox,
            self.frontend,
            self.x[:n],
            self.emotion[:n],
            self.methods,
            request.sanity_radius,
            self.seed,
        )

    def record(self) -> dict[str, Any]:
        per_clip = []
        for k in range(self.n):
            e_k, q_k = int(self.emotion[k]), int(self.quality[k])
            per_clip.append(
                {
                    "song_id": self.song_ids[k],
                    "explained_emotion": self.dm.emotion_names[e_k],
                    "true_top_quality": self.dm.quality_names[q_k],
                    "true_effect": float(self.truth[k, e_k, q_k]),
                    "model_top_quality": self.dm.quality_names[int(self.model_top[k])],
                    "effects": dict(
                        zip(self.dm.quality_names, self.eff[k, e_k].tolist(), strict=True)
                    ),
                    "relative_effects": dict(
                        zip(self.dm.quality_names, self.rel[k, e_k].tolist(), strict=True)
                    ),
                    "true_effects": dict(
                        zip(self.dm.quality_names, self.truth[k, e_k].tolist(), strict=True)
                    ),
                    "evidence_area": float(self.masks[k].float().mean()),
                    "posthoc_share": {
                        m: float(r.scores["share"][k]) for m, r in self.posthoc.items()
                    },
                    "bridge_share": {
                        m: float(r.scores["share"][k]) for m, r in self.bridge.items()
                    },
                }
            )
        record = {
            "run": str(self.mid.run_dir),
            "blackbox": str(self.bb.run_dir) if self.bb else None,
            "n_clips": self.n,
            "methods": list(self.methods),
            "explained_emotion_rule": "per clip, the (emotion, quality) with the largest "
            "|true effect|",
            "orientation": "signed maps x sign of the true effect (bridge: x sign of learned "
            "weight)",
            "regression": {
                "a2mid2e": {
                    "test": self.mid.metrics.get("test"),
                    "per_output": _test_per(self.mid),
                },
                "a2e": {"test": self.bb.metrics.get("test"), "per_output": _test_per(self.bb)}
                if self.bb
                else None,
            },
            "mapping": {"learned": self.learned, "true": self.true_w, "agreement": self.agreement},
            "selectivity": self.sel_record,
            "intrinsic": {
                "top_quality_agreement": self.tqa,
                "top_quality_agreement_all_emotions": self.tqa_all,
                "effect_sign_agreement": float(np.mean(self.effect_sign_ok)),
                "seconds": float(self.ex.seconds),
                "n_evals": self.ex.n_evals,
            },
            "evidence_share": {"posthoc": self.post_sum, "bridge": self.bridge_sum},
            "posthoc_evidence_share": self.aggregate,
            "chance_by_emotion": self.chance_by_emotion,
            "verdict": verdict(self.post_sum, self.bridge_sum, self.tqa),
            "contrast": self.contrast,
            "figure_clip": self.song_ids[self.fig_k],
            "per_clip": per_clip,
            "seconds": time.perf_counter() - self.start,
        }
        return record


def sanity_plan(
    model: MidLevelEmotionModel,
    blackbox: nn.Module | None,
    frontend: nn.Module,
    x: torch.Tensor,
    emotion: np.ndarray,
    methods: Sequence[str],
    radius: float,
    seed: int = 0,
) -> SanityPlan:
    """The robustness and randomisation checks of A2Mid2E's effects and of every post-hoc
    method on A2E (``blackbox``: the network they run on), for the explained emotion of
    each clip of ``x``."""
    target = torch.as_tensor(emotion, dtype=torch.long)

    def effects(inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model.explain(inputs, target=t).attribution

    blocks = top_down(model, expand=("backbone",))
    cases = [SanityCase(INTRINSIC, model, blocks, [SanityBatch(x, target, effects)], True)]
    if blackbox is not None:
        bands = Bands(frontend, n_bands=N_BANDS, n_divisions=N_DIVISIONS)
        for name, explainer, grouping in posthoc_explainers(
            methods, blackbox, frontend, bands, seed
        ):

            def posthoc(inputs, t, explainer=explainer, grouping=grouping):
                return explainer.attribute(inputs, t, grouping=grouping).maps["relevance_map"]

            batch = SanityBatch(x, target, posthoc)
            cases.append(SanityCase(f"A2E: {name}", blackbox, top_down(blackbox), [batch]))
    return SanityPlan(
        cases,
        randomised=(
            "A2Mid2E: first its quality -> emotion mapping (`emotion_head`, the 8 x 7 weights "
            "whose products with the predicted qualities are the explanation), then its "
            "backbone from the output down: the quality layer (`backbone.head`), each conv "
            "block, the input batch norm. A2E (post-hoc): its backbone the same way, from its "
            "emotion layer down. The output standardisation (the training ratings' means and "
            "deviations) is a fixed affine map and is kept. The bridge (the same methods on "
            "A2Mid2E's quality unit) is not repeated here."
        ),
        perturbation=(
            f"uniform noise of half-width {radius:g} x the clip's standard deviation on the "
            "log-frequency spectrogram both models read; every noisy copy counts (the models "
            "regress ratings: there is no decision to change)."
        ),
        units=(
            "A2Mid2E: the effects of its 7 qualities on the explained emotion (its explanation, "
            "in quality space); post-hoc: the relevance map for the same emotion on the input "
            "grid (band methods spread over their bins), unoriented."
        ),
    )


def _test_per(run: EmotionRun) -> dict[str, float]:
    return run.metrics.get("per_output", {}).get("test", {})


def _share_table(
    post: dict[str, dict[str, float]], bridge: dict[str, dict[str, float]]
) -> list[list[str]]:
    rows = [
        [
            "method",
            "A2E share",
            "A2E clips > chance",
            "bridge: A2Mid2E quality share",
            "bridge clips > chance",
            "chance",
            "A2E s/clip",
            "A2E evals/clip",
        ]
    ]
    for m in bridge:
        p, b = post.get(m), bridge[m]
        rows.append(
            [
                f"`{m}`",
                fmt(p["share"], p["share_ci95"]) if p else "-",
                f"{p['above_chance']:.0%}" if p else "-",
                fmt(b["share"], b["share_ci95"]),
                f"{b['above_chance']:.0%}",
                fmt(b["chance"]),
                fmt(p["seconds"]) if p else "-",
                str(round(p["n_evals"])) if p else "-",
            ]
        )
    return rows


def _clip_table(dm, song_ids, emotion, quality, truth, eff, model_top, masks) -> list[list[str]]:
    rows = [
        [
            "clip",
            "explained emotion",
            "generator's top quality (true effect)",
            "A2Mid2E top quality",
            "A2Mid2E effect of the true top quality",
            "evidence area",
        ]
    ]
    for k, s in enumerate(song_ids):
        e, q = int(emotion[k]), int(quality[k])
        rows.append(
            [
                s,
                dm.emotion_names[e],
                f"{dm.quality_names[q]} ({truth[k, e, q]:+.2f})",
                dm.quality_names[int(model_top[k])],
                f"{eff[k, e, q]:+.2f}",
                f"{float(masks[k].float().mean()):.1%}",
            ]
        )
    return rows


def report(request: ReportRequest) -> dict[str, Path]:
    """The ``evaluate.report`` hook: this family's run (``run=``) against ``blackbox=``."""
    return write_report(EmotionReport(), request)
