"""The steps every intrinsic-versus-post-hoc report shares, written once.

A family's report (``evaluate.<family>.report``) is the same sequence of steps:

1. load its run pair and check that both were trained on the same data and splits
   (:func:`check_same_data`);
2. explain the same clips with the by-design model and with every post-hoc method on the
   black box (:func:`posthoc_explainers`: the same methods, sampling budgets and the
   "bands for the sampling methods, single bins for the others" rule everywhere);
3. score the explanations against the family's ground truth (the family's own part) and
   summarise them per method (``evaluate.metrics.statistics``);
4. open with one summary table (methods as rows, metrics as columns, best in bold, 95%
   confidence half-widths) and one cost-versus-score figure (:func:`summary_blocks`), then
   the family's own blocks;
5. check every explanation's robustness and its dependence on the model's parameters
   (average sensitivity, cascading randomisation: ``evaluate.reporting.sanity``) on the
   cases the family's ``sanity_plan`` names;
6. write ``report.md``, ``report.html``, ``report.json`` and log to W&B (:func:`finish`).

A family writes only what is its own, as a :class:`FamilyReport` (load its run pair,
explain intrinsically, score against its ground truth, its summary rows, its detail blocks,
its record and the cases of its sanity checks); :func:`write_report` runs the steps around
it.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from torch import nn

from evaluate.posthoc import COMPARED, GROUPED, build_explainer
from evaluate.posthoc.explainers import Explainer
from evaluate.posthoc.groupings import Grouping, TFBins
from evaluate.reporting.format import (
    Block,
    Heading,
    Image,
    Table,
    Text,
    fmt,
    log_blocks_to_wandb,
    save_figure,
    write_pages,
)
from evaluate.reporting.other_data import Column, other_data_blocks, other_data_rows
from evaluate.reporting.sanity import (
    DEFAULT_CLIPS,
    DEFAULT_DRAWS,
    DEFAULT_RADIUS,
    SanityPlan,
    run_sanity,
    sanity_blocks,
    sanity_record,
)
from evaluate.runs import OtherData, find_run_dir, open_data
from interp_models.families import current_name

__all__ = [
    "Column",
    "FamilyReport",
    "Metric",
    "ReportRequest",
    "check_same_data",
    "cost_figure",
    "finish",
    "jsonable",
    "other_data_section",
    "posthoc_explainers",
    "summary_blocks",
    "summary_table",
    "verdict_text",
    "write_report",
]


@dataclass(frozen=True)
class Metric:
    """One column of a report: ``key`` in the per-method summaries (``key_ci95`` beside it
    when it has a confidence half-width), how it reads and which way is better."""

    key: str
    title: str
    higher_is_better: bool
    what: str = ""
    percent: bool = False  # a proportion, shown as a percentage


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class ReportRequest:
    """What ``python -m evaluate.report`` asks a family's report hook for.

    Attributes
    ----------
    runs : the by-design run(s) (``run=``); only the NMF report takes several.
    blackbox : the separately trained black box (``blackbox=``), for the families that have
        one (``Family.blackbox``).
    out : output folder; default ``<first run>/report``.
    n_clips : how many test clips (recordings) are explained.
    methods : the post-hoc methods, the same in every report by default.
    figure_clip, n_random : the clip drawn in the figures; random orders per clip (NMF).
    data : other data to explain the runs on instead of their own test fold (``data=``,
        ``data.<key>=``, ``split=``); the default folder is then ``report-<its name>``.
    sanity : whether the robustness and randomisation checks run (``sanity=false`` skips).
    sanity_clips, sanity_draws, sanity_radius : the first clips of the report they run on,
        the noisy copies per clip and the noise half-width in clip standard deviations
        (``evaluate.reporting.sanity``).
    """

    runs: tuple[Path, ...]
    blackbox: Path | None = None
    out: Path | None = None
    n_clips: int = 20
    methods: tuple[str, ...] = field(default=COMPARED)
    figure_clip: int = 0
    n_random: int = 4
    data: OtherData | None = None
    sanity: bool = True
    sanity_clips: int = DEFAULT_CLIPS
    sanity_draws: int = DEFAULT_DRAWS
    sanity_radius: float = DEFAULT_RADIUS

    @property
    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        folder = f"report-{self.data.name}" if self.data else "report"
        return Path(self.runs[0]).expanduser().resolve() / folder

    def open_data(self, run: Any) -> Any:
        """The data ``run`` (a loaded run: ``config``, ``metrics``) is explained on: its
        own (``evaluate.runs.open_data``), or :attr:`data` read with its front end."""
        return open_data(run.config, self.data, getattr(run, "metrics", {}).get("data", {}))

    def single_run(self) -> Path:
        """The one ``run=`` of a family that compares one run with its black box."""
        if len(self.runs) != 1:
            raise SystemExit("evaluate.report: give one run= (and its blackbox=) for this family")
        return Path(self.runs[0]).expanduser().resolve()


def check_same_data(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    keys: Sequence[str],
    names: tuple[str, str],
    hint: str,
) -> None:
    """Raise ``ValueError`` naming both runs when their ``data.<key>`` settings differ.

    Parameters
    ----------
    a, b : the two runs' resolved configs.
    keys : the data settings that decide which clips and splits a run saw.
    names : how the error names the runs, e.g. ``("run=<dir>", "blackbox=<dir>")``.
    hint : what to do about it (the family's black-box config).
    """
    da, db = _current_target(a.get("data", {})), _current_target(b.get("data", {}))
    diff = [k for k in keys if da.get(k) != db.get(k)]
    if diff:
        details = "; ".join(f"data.{k}: {da.get(k)!r} vs {db.get(k)!r}" for k in diff)
        raise ValueError(
            f"{names[0]} and {names[1]} were not trained on the same data settings / splits "
            f"({details}); {hint}"
        )


def _current_target(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with today's name of its ``_target_``: a run written before the data classes
    names its DataModule, and is still the same data as a newer run's."""
    data = dict(data)
    if "_target_" in data:
        data["_target_"] = current_name(str(data["_target_"]))
    return data


# ----------------------------------------------------------------------------- explaining


def posthoc_explainers(
    methods: Sequence[str],
    net: nn.Module,
    frontend: nn.Module,
    bands: Grouping,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    fine: Grouping | None = None,
) -> Iterator[tuple[str, Explainer, Grouping]]:
    """``(name, explainer, grouping)`` for every post-hoc method on the black box ``net``.

    The sampling methods (``evaluate.posthoc.GROUPED``: KernelShap, Lime, occlusion) work on
    ``bands``, every other method on ``fine`` (default: single input bins, ``TFBins``), as
    in every report. ``options`` holds per-method settings (sampling budgets).
    """
    fine = TFBins(frontend) if fine is None else fine
    for name in methods:
        explainer = build_explainer(
            name, net, frontend=frontend, seed=seed, **(options or {}).get(name, {})
        )
        yield name, explainer, bands if name in GROUPED else fine


# ----------------------------------------------------------------------------- summary


def _cell(summary: Mapping[str, Any], metric: Metric) -> str:
    value = summary.get(metric.key)
    if value is None or not math.isfinite(float(value)):
        return "–"
    if f"{metric.key}_lo" in summary:  # an asymmetric interval (e.g. Wilson's)
        lo, hi = summary[f"{metric.key}_lo"], summary[f"{metric.key}_hi"]
        return f"{fmt(float(value))} [{fmt(float(lo))}, {fmt(float(hi))}]"
    ci = summary.get(f"{metric.key}_ci95")
    if metric.percent:
        return f"{value:.1%}" + (f" ± {ci:.1%}" if ci is not None else "")
    return fmt(float(value), None if ci is None else float(ci))


def _best(summaries: Mapping[str, Mapping[str, Any]], metric: Metric) -> str | None:
    values = {
        m: float(s[metric.key])
        for m, s in summaries.items()
        if s.get(metric.key) is not None and math.isfinite(float(s[metric.key]))
    }
    if not values:
        return None
    sign = 1 if metric.higher_is_better else -1
    return max(values, key=lambda m: sign * values[m])


def summary_table(
    summaries: Mapping[str, Mapping[str, Any]], metrics: Sequence[Metric], caption: str = ""
) -> Table:
    """Methods as rows, metrics as columns (mean ± 95% half-width), the best (and every
    method tied with it) in bold."""
    best = {m.key: _best(summaries, m) for m in metrics}
    top = {k: None if b is None else float(summaries[b][k]) for k, b in best.items()}
    header = ["method"] + [f"{m.title} ({'↑' if m.higher_is_better else '↓'})" for m in metrics]
    rows = [header]
    for method, summary in summaries.items():
        cells = []
        for metric in metrics:
            cell = _cell(summary, metric)
            value = summary.get(metric.key)
            is_best = cell != "–" and float(value) == top[metric.key]  # every tied best
            cells.append(f"**{cell}**" if is_best else cell)
        rows.append([f"`{method}`", *cells])
    return Table(rows, caption)


def cost_figure(
    summaries: Mapping[str, Mapping[str, Any]],
    score: Metric,
    path: Path,
    intrinsic: Sequence[str] = (),
    cost: str = "seconds",
) -> Path:
    """Seconds per explanation (log scale) against ``score``, one point per method, with
    the 95% half-width of the score as an error bar; by-design methods in black."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for method, s in summaries.items():
        x, y = s.get(cost), s.get(score.key)
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)) or x <= 0:
            continue
        own = method in intrinsic
        ax.errorbar(
            x,
            y,
            yerr=s.get(f"{score.key}_ci95") or 0.0,
            fmt="s" if own else "o",
            color="black" if own else None,
            capsize=3,
        )
        ax.annotate(method, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    arrow = "higher" if score.higher_is_better else "lower"
    ax.set(
        xscale="log",
        xlabel="seconds per explanation (CPU, log scale)",
        ylabel=f"{score.title} ({arrow} is better)",
        title="Cost versus score",
    )
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on log axes
    return save_figure(fig, path)


def summary_blocks(
    summaries: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[Metric],
    score: Metric,
    out: Path,
    intrinsic: Sequence[str] = (),
    caption: str = "",
) -> list[Block]:
    """The top of every report: the summary table and the cost-versus-score figure."""
    return [
        Heading("Summary"),
        summary_table(summaries, metrics, caption),
        Image(cost_figure(summaries, score, out / "cost.png", intrinsic), "cost versus score"),
    ]


def verdict_text(
    summaries: Mapping[str, Mapping[str, Any]],
    metric: Metric,
    intrinsic: str,
    by_design: Sequence[str] = (),
) -> str | None:
    """Who wins ``metric``, and whether ``intrinsic`` beats the best post-hoc method with
    non-overlapping 95% intervals; ``by_design`` names other intrinsic rows, which are
    not post-hoc competitors."""
    best = _best(summaries, metric)
    if best is None:
        return None
    text = f"**{metric.title}**: best is `{best}` ({fmt(summaries[best][metric.key])})."
    own = {intrinsic, *by_design}
    post = {m: s for m, s in summaries.items() if m not in own}
    best_post = _best(post, metric)
    if intrinsic not in summaries or best_post is None or metric.key not in summaries[intrinsic]:
        return text
    a, b = summaries[intrinsic][metric.key], post[best_post][metric.key]
    ca = summaries[intrinsic].get(f"{metric.key}_ci95", 0)
    cb = post[best_post].get(f"{metric.key}_ci95", 0)
    sign = 1 if metric.higher_is_better else -1
    if sign * (a - b) > 0:
        text += f" The intrinsic explanation beats the best post-hoc method `{best_post}`"
    elif a == b:
        text += f" The intrinsic explanation ties with the best post-hoc method `{best_post}`"
    else:
        text += (
            f" The intrinsic explanation does **not** beat the best post-hoc method `{best_post}`"
        )
    overlap = abs(a - b) <= ca + cb
    text += f" ({fmt(a)} vs {fmt(b)}"
    return text + (
        "; the 95% intervals overlap)." if overlap else "; the 95% intervals do not overlap)."
    )


# ----------------------------------------------------------------------------- writing


def jsonable(x: Any) -> Any:
    """``x`` with numpy values, tuples and paths made JSON types; NaN and inf become None
    (a metric that could not be scored), so ``report.json`` is strict JSON."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def finish(
    blocks: list[Block],
    out: Path,
    title: str,
    record: Mapping[str, Any],
    wandb_prefix: str,
    sample_rate: int,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``report.json`` (``record``, strict JSON) in
    ``out``, log the blocks to the active W&B run; returns the three paths."""
    paths = write_pages(blocks, out, title)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(jsonable(record), indent=1, allow_nan=False) + "\n")
    log_blocks_to_wandb(blocks, wandb_prefix, sample_rate)
    return {**paths, "json": json_path}


# ----------------------------------------------------------------------------- skeleton


class FamilyReport(ABC):
    """What a family contributes to its report; :func:`write_report` does the rest.

    Class attributes: ``title`` (the page's heading), ``intrinsic`` (the by-design
    explanation's row name), ``metrics`` (the summary table's columns), ``score`` (the
    metric of the cost figure), ``wandb_prefix``, ``other_data`` /
    ``blackbox_other_data`` (the columns of the table of the runs' figures on the data
    they were scored on by ``train.score``). ``files`` collects the figures and audio a
    report returns beside its pages; ``sample_rate`` is the rate of its audio.
    """

    title: str
    intrinsic: str
    metrics: tuple[Metric, ...]
    score: Metric
    wandb_prefix: str
    #: figures of the by-design run / the black box shown per dataset it was scored on
    other_data: tuple[Column, ...] = ()
    blackbox_other_data: tuple[Column, ...] = ()

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.files: dict[str, Path] = {}
        self.sample_rate = 16_000

    @abstractmethod
    def run(self, request: ReportRequest, out: Path, log: Callable[[str], None]) -> None:
        """Load and check the runs, explain the clips by design and post hoc
        (:func:`posthoc_explainers`), score them."""

    @abstractmethod
    def intro(self) -> list[Block]:
        """What is compared, on which clips, how (before the summary)."""

    @abstractmethod
    def summaries(self) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        """``(caption, {method: summary})`` per summary table (one per run compared)."""

    @abstractmethod
    def details(self, out: Path) -> list[Block]:
        """The family's own blocks after the summary: verdicts, detail tables, figures and
        audio (written under ``out``)."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """Everything measured, for ``report.json``."""

    def sanity_plan(self, request: ReportRequest) -> SanityPlan | None:
        """The explanations whose robustness and randomisation are checked (after
        :meth:`run`, on the first ``request.sanity_clips`` clips), with what randomising
        and the input perturbation mean for the family; None (the default): no checks."""
        return None


def other_data_section(
    family: FamilyReport, request: ReportRequest
) -> tuple[list[Block], dict[str, Any]]:
    """The runs' figures on their own test fold and on every dataset ``train.score``
    scored them on (blocks, and the rows for ``report.json``)."""
    runs = [(run, family.other_data, "The by-design run") for run in request.runs]
    if request.blackbox is not None:
        runs.append((request.blackbox, family.blackbox_other_data, "The black box"))
    blocks: list[Block] = []
    record: dict[str, Any] = {}
    for run, columns, caption in runs:
        if columns:
            run_dir = find_run_dir(run)
            blocks += other_data_blocks(run_dir, columns, caption)
            record[str(run_dir)] = other_data_rows(run_dir, columns)
    heading = Heading("In distribution and on data the models were not built on", 2)
    return ([heading, *blocks] if blocks else []), record


def data_note(data: OtherData) -> str:
    """What the report's clips are when the runs are explained on other data."""
    which = "every item" if data.split == "all" else "the test folds"
    changed = ", ".join(f"`{k}={v}`" for k, v in data.overrides.items())
    return (
        f"**Data: {which} of `{data.name}`**{f' ({changed})' if changed else ''}, read with "
        "each run's own front end: data the models were not trained on. Where the text says "
        "test clips or recordings, it means these."
    )


def write_report(
    family: FamilyReport, request: ReportRequest, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """Run ``family``'s report for ``request``: explain and score, then the title, its
    introduction, the summary (:func:`summary_blocks`), its details, the robustness and
    randomisation checks of its ``sanity_plan`` (``evaluate.reporting.sanity``); write the
    pages, ``report.json`` and W&B (:func:`finish`). Returns the paths (pages, JSON,
    files; ``sanity``: the figure of the checks)."""
    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    family.run(request, out, log)
    blocks: list[Block] = [Heading(family.title, 1), *family.intro()]
    if request.data is not None:
        blocks.append(Text(data_note(request.data)))
    for k, (caption, summaries) in enumerate(family.summaries()):
        top = summary_blocks(
            summaries,
            family.metrics,
            family.score,
            out if k == 0 else out / f"run{k}",
            [family.intrinsic],
            caption,
        )
        blocks += top if k == 0 else top[1:]
    other, record_other = other_data_section(family, request)
    blocks += other + family.details(out)
    record = {**family.record(), "other_data": record_other}
    plan = family.sanity_plan(request) if request.sanity else None
    if plan is not None and plan.cases:
        result = run_sanity(
            plan, request.sanity_radius, request.sanity_draws, seed=family.seed, log=log
        )
        blocks += sanity_blocks(result, out)
        record["sanity"] = sanity_record(result)
    paths = finish(blocks, out, family.title, record, family.wandb_prefix, family.sample_rate)
    sanity = {"sanity": out / "sanity.png"} if "sanity" in record else {}
    return {**paths, **family.files, **sanity}
