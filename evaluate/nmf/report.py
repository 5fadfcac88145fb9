"""Intrinsic versus post-hoc: one report comparing an NMF interpreter's explanations with
post-hoc methods on its classifier, on the same test clips and with the same metrics.

    python -m evaluate.report run=<run_dir> [run=<run_dir> ...] [out=<dir>] [n_clips=20]
        [methods=saliency,integrated_gradients,...] [figure_clip=0]

(A heart-sound or emotion run is handed to its family's report: ``evaluate.report``.)

For each run (``pipeline`` ``nmf_posthoc``, ``nmf_joint`` or ``nmf_faithful``) the first
``n_clips`` clips of the test split are explained for the classifier's predicted class by
(runs whose classifiers are bit-identical share one table, each interpreter a row)

* the **intrinsic** explanation, ``NMFInterpreter.explain``: its relevance map is the
  masked-in ``M * log1p|X|`` on the STFT grid, carried to the log-mel grid through the mel
  filterbank (each STFT bin's relevance shared among the mel bands covering it in
  proportion to the filter weights, so mass is preserved);
* each **post-hoc** method on ``model.classifier`` (the black box): KernelShap, Lime and
  occlusion over ``Bands(logmel, 8 bands, 16 divisions)``, the others on single log-mel bins;
  and the run's own L-MAC masker (``<run>/lmac/``, trained on the same frozen classifier)
  wherever the run has one, scored on what its mask keeps, as the intrinsic map is.

Every explanation is then scored in the same units:

* deletion / insertion AUC and faithfulness correlation over the common grouping, bands x
  divisions (bin-level maps summed into bands), groups replaced by the front end of silence
  (``evaluate.metrics.perturbation``);
* localization: positive relevance mass inside the ground-truth event mask / its bounding
  box on the log-mel grid (``relevance_mass_inside``);
* sparseness (Gini) and complexity (entropy) of the band attribution;
* cost: seconds and model evaluations per clip (one clip at a time for every method);
* robustness and randomisation (``evaluate.reporting.sanity``, :func:`sanity_plan`): average
  sensitivity to noise on the log-mel input and cascading randomisation, the interpreter's
  own layers first and then the classifier's, in the same bands, on the first clips.

Means come with normal-approximation 95% confidence half-widths over clips. Outputs, in
``out`` (default ``<first run>/report/``): ``report.html`` (self-contained: images and audio
as data URIs), ``report.md`` (tables, relative links to the PNG / WAV files beside it) and
``report.json`` (per-clip values). When a W&B run is active the tables, images and audio
are logged to it too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from evaluate.masking import stft_to_mel
from evaluate.metrics import (
    complexity,
    curve_auc,
    faithfulness_correlation,
    perturbation_curves,
    relevance_mass_inside,
    sparseness,
)
from evaluate.metrics.statistics import summarise
from evaluate.nmf.scoring import event_truths, explain_clip
from evaluate.posthoc import COMPARED, GROUPED
from evaluate.posthoc.audio import listenable
from evaluate.posthoc.groupings import Bands
from evaluate.posthoc.lmac import load_lmac
from evaluate.reporting.figures import plot_relevance_map
from evaluate.reporting.format import Audio, Block, Heading, Image, Table, Text, fmt, save_figure
from evaluate.reporting.sanity import SanityBatch, SanityCase, SanityPlan, top_down
from evaluate.reporting.skeleton import (
    Column,
    FamilyReport,
    Metric,
    ReportRequest,
    posthoc_explainers,
    verdict_text,
    write_report,
)
from evaluate.runs import LoadedRun, OtherData, load_run, open_data
from interp_models.audio.io import write_audio
from interp_models.data.clips import EventClips
from interp_models.families import FAMILIES
from interp_models.nmf.interpreter import NMFInterpreter

__all__ = ["DEFAULT_METHODS", "METRICS", "NMFReport", "evaluate_run", "report"]

INTRINSIC = "nmf_interpreter"
DEFAULT_METHODS = COMPARED  # the same post-hoc methods in every report
N_BANDS, N_DIVISIONS = 8, 16


METRICS = (
    Metric(
        "deletion_auc",
        "Deletion AUC",
        False,
        "probability of the class as the most relevant"
        " bands are removed first; lower is more faithful",
    ),
    Metric(
        "insertion_auc",
        "Insertion AUC",
        True,
        "probability as the most relevant bands are "
        "added to silence first; higher is more faithful",
    ),
    Metric(
        "faithfulness_corr",
        "Faithfulness correlation",
        True,
        "Pearson r between the relevance of random band subsets and the drop when they are removed",
    ),
    Metric(
        "mass_inside",
        "Localization: mass inside event mask",
        True,
        "share of positive relevance inside the ground-truth event mask (log-mel grid)",
    ),
    Metric(
        "mass_inside_box",
        "Localization: mass inside event box",
        True,
        "share of positive relevance inside the event's bounding box",
    ),
    Metric("sparseness", "Sparseness (Gini)", True, "Gini index of |band attribution|"),
    Metric(
        "complexity",
        "Complexity (entropy, nats)",
        False,
        "entropy of |band attribution| normalised; lower is simpler",
    ),
    Metric("seconds", "Seconds per clip", False, "wall time of one explanation (CPU)"),
    Metric("n_evals", "Model evaluations per clip", False, "model rows evaluated per explanation"),
)


# ----------------------------------------------------------------------------- data


def _run_data(run: LoadedRun, data: OtherData | None = None) -> EventClips:
    """The run's clips (``evaluate.runs.open_data``: features from the cache), or ``data``
    read with its front end, checked against the classes the run was trained on."""
    dm = open_data(run.config, data, run.metrics["data"])
    if dm.class_names != run.class_names:
        raise ValueError(f"{run.run_dir}: data classes {dm.class_names} != run {run.class_names}")
    return dm


# ----------------------------------------------------------------------------- evaluation


def _threshold(run: LoadedRun) -> float:
    return float(run.config["interpreter"].get("relevance_threshold", 0.2))


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def shares_classifier(run_dirs: Sequence[str | Path]) -> bool:
    """Whether several NMF runs explain one classifier, bit for bit (parameters and buffers)."""
    if len(run_dirs) < 2:
        return False
    first, *others = (load_run(r).model.classifier for r in run_dirs)
    return all(_same_state(first, other) for other in others)


@dataclass
class MethodResult:
    per_clip: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    curves: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    fractions: np.ndarray | None = None
    figure_map: np.ndarray | None = None  # relevance on the log-mel grid, figure clip
    figure_audio: np.ndarray | None = None


@dataclass
class RunResult:
    label: str
    run_dir: Path
    pipeline: str
    methods: dict[str, MethodResult]
    summary: dict[str, dict[str, float]]
    task: dict[str, float]
    clips: list[str]
    figure_clip: str
    figure_target: str
    figure_input: np.ndarray
    mel_freqs: np.ndarray
    mel_times: np.ndarray
    sample_rate: int
    figure_wave: np.ndarray
    nmf_dir: Path | None = None
    reference: dict[str, float] = field(default_factory=dict)
    masks: dict[str, dict[str, float]] = field(default_factory=dict)
    explained: Explained | None = None  # what the robustness checks explain again


@dataclass
class Explained:
    """The models, clips and targets of one report table (for ``sanity_plan``)."""

    classifier: torch.nn.Module
    interpreters: dict[str, tuple[NMFInterpreter, float]]  # row name -> (model, threshold)
    logmel: torch.nn.Module
    bands: Bands
    x: torch.Tensor
    spec: torch.Tensor
    waves: torch.Tensor
    targets: torch.Tensor
    methods: tuple[str, ...]
    options: dict[str, dict[str, Any]]


def _task_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """Task scores of the classifier and the interpreter head (test split)."""
    out: dict[str, float] = {}
    for key in ("acc", "balanced_acc"):
        value = metrics.get("classifier", {}).get("test", {}).get(key)
        if value is not None:
            out[f"classifier test {key}"] = float(value)
    interp = metrics.get("interpreter", {}).get("test", {})
    if "acc" in interp:
        out["interpreter head test acc"] = float(interp["acc"])
    expl = metrics.get("explanations", {}).get("test", {})
    for key in ("clf_acc", "interp_acc", "fidelity_top1", "FF", "mass_inside"):
        if key in expl:
            out[f"explanations.test {key}"] = float(expl[key])
    return out


def _score_clip(
    res: MethodResult,
    classifier,
    bands: Bands,
    x: torch.Tensor,
    band_attr: torch.Tensor,
    mel_map: torch.Tensor,
    target: int,
    truth: tuple[torch.Tensor, torch.Tensor] | None,
    n_random: int,
    seed: int,
) -> dict[str, float]:
    view = bands.bind(x).view(classifier)
    gen = torch.Generator().manual_seed(seed)
    curves = perturbation_curves(view.forward_groups, band_attr, target, 20, n_random, "prob", gen)
    res.fractions = curves["deletion"][0].numpy()
    res.curves["deletion"].append(curves["deletion"][1].numpy())
    res.curves["insertion"].append(curves["insertion"][1].numpy())
    values = {k: v for k, v in curves.items() if isinstance(v, float)}
    values["faithfulness_corr"] = faithfulness_correlation(
        view.forward_groups, band_attr, target, 50, 0.1, "prob", gen
    )
    values["sparseness"] = float(sparseness(band_attr[None])[0])
    values["complexity"] = float(complexity(band_attr[None])[0])
    if truth is not None:
        values["mass_inside"] = float(relevance_mass_inside(mel_map[None], truth[0][None])[0])
        values["mass_inside_box"] = float(relevance_mass_inside(mel_map[None], truth[1][None])[0])
    for key, value in values.items():
        res.per_clip[key].append(float(value))
    return values


def evaluate_run(
    run_dir: str | Path,
    methods: tuple[str, ...] = DEFAULT_METHODS,
    n_clips: int = 20,
    out_dir: Path | None = None,
    figure_clip: int = 0,
    n_random: int = 4,
    seed: int = 0,
    log=print,
    data: OtherData | None = None,
    also: Sequence[str | Path] = (),
) -> RunResult:
    """Explain the first ``n_clips`` test clips of a finished NMF-interpreter run (or of
    ``data``) with the intrinsic explanation and every post-hoc method in ``methods``;
    score them alike. ``also``: other NMF runs on the same classifier (bit-identical, e.g.
    trained with ``classifier_ckpt=``), whose interpreters join as rows
    ``nmf_interpreter_<regime>`` (numbered from 1 when a regime comes again), explaining the
    same targets."""
    run = load_run(run_dir)
    pipeline = run.config["pipeline"]
    if pipeline not in FAMILIES["nmf"].pipelines:
        raise ValueError(f"{run.run_dir}: pipeline {pipeline!r} is not an NMF-interpreter run")
    model = run.model
    classifier = model.classifier.eval()
    dm = _run_data(run, data)
    logmel, stft = dm.frontends["x"], dm.frontends["spec"]
    rows = dm.split_indices["test"][:n_clips]
    if len(rows) == 0:
        raise ValueError(f"{run.run_dir}: the test split is empty")
    figure_clip = min(figure_clip, len(rows) - 1)
    x_all = dm.features["x"][rows].float()
    spec_all = dm.features["spec"][rows].float()
    waves = torch.from_numpy(np.stack([np.asarray(dm.waves[int(j)]) for j in rows])).float()
    n_frames = x_all.shape[-1]
    mel_freqs = logmel.frequencies().cpu().numpy()
    mel_times = logmel.frame_times(n_frames).cpu().numpy()
    truth = event_truths(dm, rows, mel_freqs, mel_times)
    truth = None if truth is None else tuple(t.bool() for t in truth)
    bands = Bands(logmel, n_bands=N_BANDS, n_divisions=N_DIVISIONS)
    stems = [Path(dm.records[int(j)].path).stem for j in rows]
    results: dict[str, MethodResult] = {}
    reference: dict[str, list[float]] = defaultdict(list)

    # -- intrinsic, one clip at a time (as the post-hoc explainers)
    def intrinsic(name: str, interpreter, threshold: float, targets: list[int] | None):
        res = results[name] = MethodResult()
        explained = []
        for i in range(len(rows)):
            x, spec = x_all[i : i + 1], spec_all[i : i + 1]
            target = None if targets is None else torch.tensor([targets[i]])
            with torch.no_grad():
                e = interpreter.explain(x, target=target, threshold=threshold, spec=spec)
            explained.append(int(e.target[0]))
            kept = e.relevance  # M * log1p|X| on the STFT grid: what the explanation keeps
            mel_map = stft_to_mel(kept, logmel.mel_fb)[0]
            band_attr = bands.bind(x).from_input_map(mel_map[None])
            t_i = None if truth is None else (truth[0][i], truth[1][i])
            values = _score_clip(
                res, classifier, bands, x, band_attr, mel_map, explained[i], t_i, n_random, seed + i
            )
            res.per_clip["seconds"].append(e.seconds)
            res.per_clip["n_evals"].append(float(e.n_evals))
            if i == figure_clip:
                res.figure_map = mel_map.numpy()
            if targets is not None:
                continue
            reference["deletion_auc"].append(values["deletion_auc_random"])
            reference["insertion_auc"].append(values["insertion_auc_random"])
            if t_i is not None:  # "explain everything": the unmasked input's own mass
                everything = stft_to_mel(spec, logmel.mel_fb)[0]
                for key, region in (("mass_inside", t_i[0]), ("mass_inside_box", t_i[1])):
                    mass = relevance_mass_inside(everything[None], region[None])[0]
                    reference[key].append(float(mass))
        log(f"[report] {run.run_dir.name}: {name} done on {len(rows)} clips")
        return explained

    targets = intrinsic(INTRINSIC, model, _threshold(run), None)
    interpreters = {INTRINSIC: (model, _threshold(run))}
    extras = [load_run(other) for other in also]
    for extra in extras:  # interpreters of the same classifier: rows of this report
        if not _same_state(extra.model.classifier, classifier):
            raise ValueError(f"{extra.run_dir}: its classifier is not {run.run_dir}'s")
        name = f"{INTRINSIC}_{extra.config['pipeline'].removeprefix('nmf_')}"
        name = next(
            f"{name}{k or ''}" for k in range(len(extras) + 1) if f"{name}{k or ''}" not in results
        )
        intrinsic(name, extra.model.eval(), _threshold(extra), targets)
        interpreters[name] = (extra.model.eval(), _threshold(extra))
    target_t = torch.tensor(targets)

    # -- post-hoc, on the black box
    options = {}
    # the learned masker trained on this classifier (by this run or one in ``also``) joins in
    trained = next((r for r in [run, *extras] if "lmac" in r.metrics), None)
    if trained is not None:
        mel_fb = logmel.mel_fb
        masker = load_lmac(trained.run_dir, trained.config, trained.metrics, classifier, mel_fb)
        options["lmac"] = {"masker": masker}
        methods = (*[m for m in methods if m != "lmac"], "lmac")
    elif "lmac" in methods:
        log(f"[report] {run.run_dir.name}: no L-MAC stage in this run; lmac left out")
        methods = tuple(m for m in methods if m != "lmac")
    explainers = posthoc_explainers(methods, classifier, logmel, bands, seed, options)
    for name, explainer, grouping in explainers:
        e = explainer.attribute(x_all, target_t, grouping=grouping, waves=waves)
        res = results[name] = MethodResult()
        for i in range(len(rows)):
            x = x_all[i : i + 1]
            mel_map = e.maps["relevance_map"][i].float()
            if name in GROUPED:
                band_attr = e.attribution[i].float()
            else:
                band_attr = bands.bind(x).from_input_map(mel_map[None])
            t_i = None if truth is None else (truth[0][i], truth[1][i])
            _score_clip(
                res, classifier, bands, x, band_attr, mel_map, targets[i], t_i, n_random, seed + i
            )
        # per-clip cost is the batch mean (clips are explained one at a time)
        res.per_clip["seconds"] = [float(e.seconds)] * len(rows)
        res.per_clip["n_evals"] = [float(e.n_evals)] * len(rows)
        res.figure_map = e.maps["relevance_map"][figure_clip].float().numpy()
        audio = listenable(e, waves, grouping)
        res.figure_audio = audio[figure_clip].cpu().numpy()
        log(f"[report] {run.run_dir.name}: {name} done ({e.seconds:.3f} s/clip)")

    label = f"{run.config.get('name', 'run')}/{run.run_dir.name}"
    result = RunResult(
        label=label,
        run_dir=run.run_dir,
        pipeline=pipeline,
        methods=results,
        summary={m: summarise(dict(r.per_clip)) for m, r in results.items()},
        task=_task_scores(run.metrics),
        clips=stems,
        figure_clip=stems[figure_clip],
        figure_target=run.class_names[targets[figure_clip]],
        figure_input=x_all[figure_clip].numpy(),
        mel_freqs=mel_freqs,
        mel_times=mel_times,
        sample_rate=int(dm.sample_rate),
        figure_wave=waves[figure_clip].numpy(),
        reference=summarise(dict(reference)) if reference else {},
        masks=_mask_scores([run, *extras]),
        explained=Explained(
            classifier,
            interpreters,
            logmel,
            bands,
            x_all,
            spec_all,
            waves,
            target_t,
            tuple(methods),
            options,
        ),
    )
    threshold = _threshold(run)
    if out_dir is not None:  # the intrinsic explanation of the figure clip: bars + audio
        j = int(rows[figure_clip])
        result.nmf_dir = out_dir / "nmf"
        explain_clip(
            model,
            torch.from_numpy(np.asarray(dm.waves[j])),
            logmel,
            stft,
            result.nmf_dir,
            run.class_names,
            threshold,
            meta={
                "input_file": str(dm.records[j].path),
                "label": run.class_names[dm.records[j].target],
            },
        )
    return result


# ----------------------------------------------------------------------------- sanity


def _in_bands(bands: Bands, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, T) maps on the log-mel grid -> (B, bands, divisions), summed per band."""
    return torch.stack(
        [bands.bind(x[i : i + 1]).from_input_map(maps[i : i + 1].float()) for i in range(len(x))]
    )


def sanity_plan(ex: Explained, n_clips: int, radius: float, seed: int = 0) -> SanityPlan:
    """The robustness and randomisation checks of one table's explanations on its first
    ``n_clips`` clips: every interpreter (intrinsic) and every post-hoc method, compared in
    the report's common units, relevance per band."""
    x, spec, waves, target = ex.x[:n_clips], ex.spec[:n_clips], ex.waves[:n_clips], ex.targets
    target, clf = target[:n_clips], ex.classifier

    @torch.no_grad()
    def predict(inputs: torch.Tensor) -> torch.Tensor:
        return clf(inputs).argmax(dim=1)

    cases = []
    for name, (interpreter, threshold) in ex.interpreters.items():

        def intrinsic(inputs, t, interpreter=interpreter, threshold=threshold):
            e = interpreter.explain(inputs, target=t, threshold=threshold, spec=spec)
            return _in_bands(ex.bands, inputs, stft_to_mel(e.relevance, ex.logmel.mel_fb))

        blocks = top_down(interpreter, expand=("psi", "classifier"))
        batch = SanityBatch(x, target, intrinsic, predict)
        cases.append(SanityCase(name, interpreter, blocks, [batch], intrinsic=True))
    explainers = posthoc_explainers(ex.methods, clf, ex.logmel, ex.bands, seed, ex.options)
    for name, explainer, grouping in explainers:

        def posthoc(inputs, t, name=name, explainer=explainer, grouping=grouping):
            t = predict(inputs) if name == "lmac" else t  # L-MAC explains the prediction only
            e = explainer.attribute(inputs, t, grouping=grouping, waves=waves)
            if name in GROUPED:
                return e.attribution.float()
            return _in_bands(ex.bands, inputs, e.maps["relevance_map"])

        batch = SanityBatch(x, target, posthoc, predict)
        cases.append(SanityCase(name, clf, top_down(clf), [batch]))
    return SanityPlan(
        cases,
        randomised=(
            "for the post-hoc methods, the classifier (`model.classifier`, the black box) block "
            "by block from the output down: its linear head, each conv block (two conv + batch "
            "norm layers), the input batch norm. For the interpreter, first its own layers "
            "(theta, the attention pooling, Psi's temporal convolutions, Psi's per-layer "
            "branches), then the same classifier blocks: the interpreter explains the frozen "
            "classifier through its hidden layers, so the classifier is randomised too and the "
            "last point randomises everything the explanation depends on. The NMF dictionary W "
            "(fitted to the training clips, not learned with the networks) is kept. Every "
            "explanation keeps the class the unchanged classifier predicted (L-MAC: the "
            "prediction, the only class it explains)."
        ),
        perturbation=(
            f"uniform noise of half-width {radius:g} x the clip's standard deviation on the "
            "classifier's log-mel input (its own units); the interpreter's and L-MAC's maps "
            "keep the clean clip's `log1p|X|` factor, so only their masks respond. Noisy copies "
            "that change the classifier's predicted class are left out."
        ),
        units=(
            f"relevance per band ({N_BANDS} mel bands x {N_DIVISIONS} time divisions, bin maps "
            "summed into bands), the units of the perturbation metrics above."
        ),
    )


# ----------------------------------------------------------------------------- figures


def _curves_figure(result: RunResult, path: Path) -> Path:
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("deletion", "insertion"), strict=True):
        for name, res in result.methods.items():
            if not res.curves[kind]:
                continue
            mean = np.mean(np.stack(res.curves[kind]), axis=0)
            style = {"lw": 2.5, "color": "black"} if name == INTRINSIC else {"lw": 1.2}
            auc = curve_auc(torch.from_numpy(res.fractions), torch.from_numpy(mean))
            ax.plot(res.fractions, mean, label=f"{name} ({auc:.3f})", **style)
        ax.set(
            title=f"{kind} (mean over {len(result.clips)} clips)",
            xlabel=f"fraction of bands {'removed' if kind == 'deletion' else 'inserted'}",
            ylabel="probability of the explained class",
            ylim=(0, 1.02),
        )
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _figures(result: RunResult, out: Path) -> dict[str, Any]:
    """PNG and WAV files of one run under ``out``; returns their paths."""
    files: dict[str, Any] = {"maps": {}, "audio": {}}
    for name, res in result.methods.items():
        if res.figure_map is None:
            continue
        files["maps"][name] = plot_relevance_map(
            result.figure_input,
            res.figure_map,
            result.mel_freqs,
            result.mel_times,
            f"{name}: clip {result.figure_clip}, class '{result.figure_target}'",
            out / f"map_{name}.png",
        )
    files["curves"] = _curves_figure(result, out / "curves.png")
    audio_dir = out / "audio"
    input_wav = audio_dir / "input.wav"
    write_audio(input_wav, result.figure_wave, result.sample_rate)
    files["input_audio"] = input_wav
    if result.nmf_dir is not None:
        files["components"] = result.nmf_dir / "figure.png"
        files["audio"][INTRINSIC] = result.nmf_dir / "explanation.wav"
    for name, res in result.methods.items():
        if res.figure_audio is not None:
            path = audio_dir / f"{name}.wav"
            write_audio(path, res.figure_audio, result.sample_rate)
            files["audio"][name] = path
    return files


# ----------------------------------------------------------------------------- writing


def _tables(results: list[RunResult]) -> dict[str, list[list[str]]]:
    """Per metric: header + rows (method, one 'mean ± ci95' column per run)."""
    methods: list[str] = []
    for r in results:
        methods += [m for m in r.methods if m not in methods]
    tables = {}
    for metric in METRICS:
        header = ["method", *[r.label for r in results]]
        rows = []
        for m in methods:
            cells = []
            for r in results:
                s = r.summary.get(m, {})
                cells.append(
                    fmt(s[metric.key], s[f"{metric.key}_ci95"]) if metric.key in s else "–"
                )
            rows.append([m, *cells])
        refs = [r.reference for r in results]
        if any(metric.key in ref for ref in refs):
            label = "random order" if "auc" in metric.key else "input itself (explain everything)"
            rows.append(
                [
                    f"*reference: {label}*",
                    *[
                        fmt(ref[metric.key], ref[f"{metric.key}_ci95"])
                        if metric.key in ref
                        else "–"
                        for ref in refs
                    ],
                ]
            )
        if all(cell == "–" for row in rows for cell in row[1:]):
            continue
        tables[metric.key] = [header, *rows]
    return tables


#: L-MAC's metrics as published (SpeechBrain README, ESC-50 out-of-domain mixtures,
#: CNN14; ``../shared/ANCHORS.md``): a reference on a harder, real task, not a like-for-like row.
PUBLISHED_MASKS = {
    "L-MAC (published, ESC-50, CNN14)": {
        "AI": 61.62,
        "AD": 3.83,
        "AG": 33.48,
        "FF": 0.40,
        "FidIn": 0.82,
    },
    "L2I (published, ESC-50, CNN14)": {
        "AI": 6.75,
        "AD": 25.93,
        "AG": 1.25,
        "FF": 0.26,
        "FidIn": 0.01,
    },
}
MASK_KEYS = ("AI", "AD", "AG", "FF", "FidIn", "mass_inside", "area")


def _mask_scores(runs: list[LoadedRun]) -> dict[str, dict[str, float]]:
    """Test-fold mask scores from each run's ``metrics.json``: its interpreter, its L-MAC."""
    out = {}
    for run in runs:
        label = f"{run.config.get('name', 'run')}/{run.run_dir.name}"
        interpreter = run.metrics.get("explanations", {}).get("test", {})
        out[f"{INTRINSIC} ({run.config['pipeline']}, `{label}`)"] = interpreter
        out[f"lmac of `{label}`"] = (
            run.metrics.get("lmac", {}).get("explanations", {}).get("test", {})
        )
    return out


def mask_table(results: list[RunResult]) -> list[list[str]]:
    """L-MAC's metrics of every mask explanation (each run's interpreter and its L-MAC),
    from ``metrics.json`` (the whole test fold), with the published rows."""
    rows = [["explanation", *MASK_KEYS]]
    for r in results:
        for name, scores in r.masks.items():
            if scores:
                rows.append(
                    [
                        name,
                        *[
                            fmt(scores[k], scores.get(f"{k}_ci95")) if k in scores else "–"
                            for k in MASK_KEYS
                        ],
                    ]
                )
    for name, scores in PUBLISHED_MASKS.items():
        rows.append([f"*{name}*", *[fmt(scores[k]) if k in scores else "–" for k in MASK_KEYS]])
    return rows


def _run_blocks(r: RunResult, f: dict[str, Any]) -> list[Block]:
    """The figures and audio of one run."""
    blocks: list[Block] = [
        Heading(f"`{r.label}`: clip `{r.figure_clip}` (class '{r.figure_target}')", 3),
        Audio([("input", f["input_audio"]), *f["audio"].items()]),
    ]
    if "components" in f:
        blocks += [
            Heading("Intrinsic explanation: components", 4),
            Image(f["components"], "components"),
        ]
    blocks += [Heading("Deletion and insertion curves", 4), Image(f["curves"], "curves")]
    blocks.append(Heading("The same clip explained by each method", 4))
    blocks += [Image(path, name) for name, path in f["maps"].items()]
    return blocks


class NMFReport(FamilyReport):
    """The NMF family's part of the report: one or more runs, each its own black box."""

    title = "Intrinsic (NMF interpreter) versus post-hoc explanations"
    intrinsic = INTRINSIC
    metrics = METRICS
    score = METRICS[0]
    wandb_prefix = "report"
    other_data = (
        Column("classifier accuracy", ("classifier", "test", "acc")),
        Column("interpreter accuracy", ("interpreter", "test", "acc")),
        Column("fidelity top-1", ("explanations", "test", "fidelity_top1")),
        Column("FF", ("explanations", "test", "FF")),
        Column("AI", ("explanations", "test", "AI")),
        Column("AD", ("explanations", "test", "AD")),
        Column("mass inside event mask", ("explanations", "test", "mass_inside")),
        Column("input's own share", ("explanations", "test", "input_mass_inside")),
    )

    def run(self, request: ReportRequest, out: Path, log: Callable[[str], None]) -> None:
        if request.blackbox:
            raise SystemExit(
                "evaluate.report: blackbox= is for heart-sound and emotion runs; an "
                "NMF run's own classifier is its black box"
            )
        self.n_clips, self.methods = request.n_clips, tuple(request.methods)
        # Runs on one classifier (bit-identical) share one table: the post-hoc methods run
        # once, every run's interpreter is a row.
        runs = list(request.runs)
        plan = [(runs[0], runs[1:])] if shares_classifier(runs) else [(r, []) for r in runs]
        self.results = [
            evaluate_run(
                primary,
                self.methods,
                self.n_clips,
                out_dir=out / f"run{k}",
                figure_clip=request.figure_clip,
                n_random=request.n_random,
                seed=self.seed,
                log=log,
                data=request.data,
                also=also,
            )
            for k, (primary, also) in enumerate(plan)
        ]
        self.sample_rate = self.results[0].sample_rate

    def intro(self) -> list[Block]:
        runs = ", ".join(f"`{r.label}` ({r.pipeline})" for r in self.results)
        return [
            Text(
                f"Runs: {runs}. Clips: the first {self.n_clips} of the test split of each run; "
                "every method explains the classifier's predicted class. Post-hoc methods run "
                "on the run's classifier (`model.classifier`, the black box): "
                f"{', '.join(f'`{m}`' for m in self.methods)}; KernelShap / Lime / occlusion "
                f"over {N_BANDS} mel bands x {N_DIVISIONS} time divisions, the others on "
                "log-mel bins; `lmac`, where the run trained one, is its L-MAC masker (a "
                "learned post-hoc method on the same frozen classifier), scored on what its "
                "mask keeps, `M * log1p|X|`, like the interpreter. "
                "The intrinsic explanation is the relevance map `M * log1p|X|` of "
                "`NMFInterpreter.explain`, carried to the log-mel grid through the mel "
                f"filterbank. Perturbation metrics use the same {N_BANDS} x {N_DIVISIONS} bands "
                "for every method (bin maps summed into bands; removed bands = front end of "
                "silence). Values: mean ± 95% confidence half-width over clips. Cost is "
                "measured on CPU, one clip at a time."
            )
        ]

    def summaries(self) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        return [(f"`{r.label}`", r.summary) for r in self.results]

    def details(self, out: Path) -> list[Block]:
        results = self.results
        blocks: list[Block] = [Heading("Verdicts")]
        for r in results:
            if len(results) > 1:
                blocks.append(Heading(f"`{r.label}`", 3))
            own = [m for m in r.methods if m.startswith(f"{INTRINSIC}_")]
            lines = [verdict_text(r.summary, m, INTRINSIC, own) for m in METRICS]
            blocks.append(Text([v for v in lines if v], bullets=True))
        task_keys = sorted({k for r in results for k in r.task})
        task = [[k, *[fmt(r.task[k]) if k in r.task else "–" for r in results]] for k in task_keys]
        blocks += [
            Heading("Task scores (metrics.json)"),
            Table([["score", *[r.label for r in results]], *task]),
            Heading("Mask explanations on the whole test fold (L-MAC's metrics)"),
            Table(
                mask_table(results),
                "AI, AD, AG, Fid-In on the masked-in input, FF on the masked-out input "
                "(L-MAC's definitions), mass of the relevance map (what the mask keeps of "
                "`log1p|X|`, above the noise floor for `baseline: floor`) inside the event "
                "mask and the mask's mean, from each run's metrics.json (its test fold, not "
                "only the clips above); published rows are on ESC-50 mixtures with CNN14.",
            ),
            Heading("Tables"),
        ]
        metric_by_key = {m.key: m for m in METRICS}
        for key, table in _tables(results).items():
            metric = metric_by_key[key]
            better = "higher is better" if metric.higher_is_better else "lower is better"
            blocks += [Heading(metric.title, 3), Table(table, f"{metric.what} ({better}).")]
        blocks.append(Heading("Figures and audio"))
        for k, r in enumerate(results):
            blocks += _run_blocks(r, _figures(r, out / f"run{k}"))
        return blocks

    def sanity_plan(self, request: ReportRequest) -> SanityPlan | None:
        """The first table's explanations (the first run's interpreters, its classifier)."""
        ex = self.results[0].explained
        if ex is None:
            return None
        return sanity_plan(ex, request.sanity_clips, request.sanity_radius, self.seed)

    def record(self) -> dict[str, Any]:
        return {
            "n_clips": self.n_clips,
            "methods": list(self.methods),
            "grouping": {"bands": N_BANDS, "divisions": N_DIVISIONS},
            "runs": [
                {
                    "label": r.label,
                    "run_dir": str(r.run_dir),
                    "pipeline": r.pipeline,
                    "clips": r.clips,
                    "task": r.task,
                    "summary": r.summary,
                    "reference": r.reference,
                    "masks": r.masks,
                    "per_clip": {m: dict(res.per_clip) for m, res in r.methods.items()},
                }
                for r in self.results
            ],
        }


def report(request: ReportRequest) -> dict[str, Path]:
    """The ``evaluate.report`` hook: one NMF report over every ``run=``."""
    return write_report(NMFReport(), request)
