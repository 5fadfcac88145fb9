"""Robustness and randomisation sanity checks of every explanation a report compares.

Two checks, for the intrinsic explanation and every post-hoc method alike, on the first
few clips of the report (``sanity_clips``):

* **Average sensitivity** (Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (in)fidelity
  and sensitivity of explanations", NeurIPS 2019): the mean over ``n_draws`` noisy copies
  ``x + d``, ``d ~ U(-r s, r s)`` elementwise with ``s`` the clip's standard deviation in
  the input's own units, of ``||e(x + d) - e(x)|| / ||e(x)||``; copies that change the
  model's decision are left out (Quantus' default). Lower is more robust.
* **Cascading model-parameter randomisation** (Adebayo, Gilmer, Muelly, Goodfellow, Hardt,
  Kim, "Sanity checks for saliency maps", NeurIPS 2018): the explained model's blocks
  (groups of layers) are re-initialised one after another from the output down, and after
  each the Spearman rank correlation of |explanation| with the original is recorded. An
  explanation of the *model* must lose it; one that stays high depends on the input, not on
  what the model learned. Step 0 re-explains the unchanged model: 1 for a reproducible
  method (a known answer every report shows).

A family states what its explanations are compared in (the units the report scores them
in), what randomising means for its models and what the perturbation is
(:class:`SanityPlan`); :func:`run_sanity` computes both checks per clip,
:func:`sanity_blocks` and :func:`sanity_record` put a table, a figure (Spearman against the
number of blocks randomised, one line per method, the intrinsic in black) and the text in
the report. ``evaluate.reporting.skeleton.write_report`` calls the family's
``sanity_plan`` hook, so a family gets the section by implementing that one method.
Models are randomised in place and restored (``evaluate.metrics.robustness
.cascading_randomisation``), so explainers holding the model and hooks bound to it see
the randomised weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from evaluate.metrics.robustness import average_sensitivity, cascading_randomisation
from evaluate.metrics.statistics import mean_ci
from evaluate.reporting.format import Block, Heading, Image, Table, Text, fmt, save_figure

__all__ = [
    "DEFAULT_CLIPS",
    "DEFAULT_DRAWS",
    "DEFAULT_RADIUS",
    "CaseResult",
    "RandomBlock",
    "SanityBatch",
    "SanityCase",
    "SanityPlan",
    "SanityResult",
    "block",
    "run_sanity",
    "sanity_blocks",
    "sanity_figure",
    "sanity_record",
    "sanity_table",
    "top_down",
]

#: clips per report, noisy copies per clip, noise half-width in clip standard deviations
DEFAULT_CLIPS, DEFAULT_DRAWS, DEFAULT_RADIUS = 8, 5, 0.1
UNCHANGED = "none (unchanged model)"

Explain = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class RandomBlock:
    """One step of the cascade: ``randomise(model)`` re-initialises ``name`` in place."""

    name: str
    randomise: Callable[[nn.Module], None]


def reset_modules(model: nn.Module, paths: Sequence[str]) -> None:
    """``reset_parameters`` of every submodule under ``paths`` (Quantus' re-initialisation;
    batch norms also reset their running statistics)."""
    for path in paths:
        for module in model.get_submodule(path).modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def block(name: str, *paths: str) -> RandomBlock:
    """The block ``name`` made of the submodules ``paths`` (default: ``name`` itself)."""
    targets = paths or (name,)
    return RandomBlock(name, lambda model: reset_modules(model, targets))


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def top_down(model: nn.Module, prefix: str = "", expand: Sequence[str] = ()) -> list[RandomBlock]:
    """``model``'s children that hold parameters, output first (reverse registration order,
    which is the forward order of the models here), one block each.

    A model with a single such child is descended into (a wrapper); children named in
    ``expand`` are split into their own blocks (``top_down`` of the child). Parameters a
    module holds itself, outside any child, are not covered: a family adds its own
    :class:`RandomBlock` for them.
    """
    children = [(n, m) for n, m in model.named_children() if _has_parameters(m)]
    if len(children) == 1 and not expand:
        name, child = children[0]
        return top_down(child, f"{prefix}{name}.") or [block(f"{prefix}{name}")]
    blocks: list[RandomBlock] = []
    for name, child in reversed(children):
        if name in expand:
            blocks += top_down(child, f"{prefix}{name}.")
        else:
            blocks.append(block(f"{prefix}{name}"))
    return blocks


@dataclass
class SanityBatch:
    """Clips explained together: inputs, targets, the explanation of the model *as it is
    now* (``explain(inputs, target) -> (B, ...)``, in the units the report scores) and the
    model's decision (``predict(inputs) -> (B,)``; None: not a classifier, keep every copy).
    Clips of different shapes (recordings) are batches of one."""

    inputs: torch.Tensor
    target: torch.Tensor
    explain: Explain
    predict: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass
class SanityCase:
    """One explanation method on the model it explains, with the model's blocks from the
    output down; ``intrinsic``: the by-design explanation (drawn in black)."""

    name: str
    model: nn.Module
    blocks: Sequence[RandomBlock]
    batches: Sequence[SanityBatch]
    intrinsic: bool = False


@dataclass
class SanityPlan:
    """What a family checks, and what randomising and the perturbation mean for it (shown
    in the report). ``units``: what the explanations are compared in."""

    cases: list[SanityCase]
    randomised: str
    perturbation: str
    units: str = ""


# ----------------------------------------------------------------------------- running


@dataclass
class CaseResult:
    """Per-clip values of one case: ``sensitivity`` (n,), ``spearman`` (steps, n) with
    step 0 the unchanged model, ``steps`` their names."""

    name: str
    intrinsic: bool
    steps: list[str]
    sensitivity: np.ndarray
    spearman: np.ndarray
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class SanityResult:
    """Every case of ``plan`` checked with noise half-width ``radius`` (clip standard
    deviations) and ``n_draws`` noisy copies per clip."""

    plan: SanityPlan
    radius: float
    n_draws: int
    cases: list[CaseResult]


def _unchanged(model: nn.Module) -> None:
    """Step 0: nothing randomised."""


def run_case(
    case: SanityCase, radius: float, n_draws: int, seed: int = 0, log: Callable = print
) -> CaseResult:
    """Average sensitivity and the cascade of ``case`` on each of its batches."""
    start = time.perf_counter()
    steps = [RandomBlock(UNCHANGED, _unchanged), *case.blocks]
    sens, sims = [], []
    for k, b in enumerate(case.batches):
        original = b.explain(b.inputs, b.target).detach()
        scale = radius * b.inputs.detach().flatten(1).double().std(dim=1)
        sens.append(
            average_sensitivity(
                b.explain,
                b.inputs,
                b.target,
                scale.to(b.inputs.dtype),
                n_draws,
                generator=torch.Generator().manual_seed(seed + k),
                predict=b.predict,
                base=original,
            ).numpy()
        )
        curve = cascading_randomisation(
            b.explain,
            case.model,
            [(s.name, s.randomise) for s in steps],
            b.inputs,
            b.target,
            seed=seed,
            original=original,
        )
        sims.append(np.stack([v.numpy() for v in curve.values()]))
    result = CaseResult(
        case.name,
        case.intrinsic,
        [s.name for s in steps],
        np.concatenate(sens),
        np.concatenate(sims, axis=1),
        time.perf_counter() - start,
    )
    result.summary = summarise_case(result)
    log(f"[sanity] {case.name}: {result.seconds:.1f} s, {fmt(result.summary['sensitivity'])}")
    return result


def summarise_case(r: CaseResult) -> dict[str, Any]:
    """Means and 95% half-widths (``evaluate.metrics.statistics.mean_ci``) over clips."""
    out: dict[str, Any] = {"n_blocks": len(r.steps) - 1}
    for key, values in (
        ("sensitivity", r.sensitivity),
        ("spearman_unchanged", r.spearman[0]),
        ("spearman_top", r.spearman[min(1, len(r.steps) - 1)]),
        ("spearman_all", r.spearman[-1]),
    ):
        out[key], out[f"{key}_ci95"], out[f"{key}_n"] = mean_ci(values.tolist())
    curve = [mean_ci(v.tolist()) for v in r.spearman]
    out["curve"] = {s: {"mean": m, "ci95": c} for s, (m, c, _) in zip(r.steps, curve, strict=True)}
    return out


def run_sanity(
    plan: SanityPlan,
    radius: float = DEFAULT_RADIUS,
    n_draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    log: Callable = print,
) -> SanityResult:
    """Both checks for every case of ``plan`` (one after another, models restored)."""
    cases = [run_case(c, radius, n_draws, seed, log) for c in plan.cases]
    return SanityResult(plan, radius, n_draws, cases)


# ----------------------------------------------------------------------------- rendering


def _cell(s: dict[str, Any], key: str) -> str:
    value = s.get(key)
    if value is None or not math.isfinite(value):
        return "–"
    return fmt(value, s.get(f"{key}_ci95"))


def sanity_table(result: SanityResult) -> Table:
    """Method rows: average sensitivity, Spearman after the top block and after all."""
    rows = [
        [
            "method",
            "avg sensitivity (↓)",
            "Spearman, top block randomised (↓)",
            "Spearman, all randomised (↓)",
            "blocks",
            "Spearman, unchanged (= 1)",
        ]
    ]
    for r in result.cases:
        s = r.summary
        name = f"**`{r.name}`**" if r.intrinsic else f"`{r.name}`"
        rows.append(
            [
                name,
                _cell(s, "sensitivity"),
                _cell(s, "spearman_top"),
                _cell(s, "spearman_all"),
                str(s["n_blocks"]),
                _cell(s, "spearman_unchanged"),
            ]
        )
    n = max((len(r.sensitivity) for r in result.cases), default=0)
    caption = (
        f"Mean ± 95% half-width over {n} clips. Average sensitivity: relative change of the "
        f"explanation under {result.n_draws} noisy copies of each clip (noise half-width "
        f"{result.radius:g} x the clip's standard deviation; copies that change the decision "
        "left out). Spearman: rank correlation of |explanation| with the original after "
        "randomising the top block / every block; a model-dependent explanation falls "
        "towards 0. The last column re-explains the unchanged model."
    )
    return Table(rows, caption)


def sanity_figure(result: SanityResult, path: Path) -> Path:
    """Spearman against the number of blocks randomised, one line per method with its 95%
    band; the intrinsic explanation in black."""
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.subplots()
    for r in result.cases:
        curve = r.summary["curve"]
        mean = np.array([curve[s]["mean"] for s in r.steps], dtype=float)
        ci = np.nan_to_num(np.array([curve[s]["ci95"] for s in r.steps], dtype=float))
        x = np.arange(len(r.steps))
        style = {"color": "black", "lw": 2.5, "marker": "s"} if r.intrinsic else {"marker": "o"}
        (line,) = ax.plot(x, mean, label=r.name, ms=4, **style)
        ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.12, lw=0)
    ax.axhline(0, color="0.5", lw=0.6, ls=":")
    ax.set(
        xlabel="blocks randomised (cascading, from the output down)",
        ylabel="Spearman r with the original |explanation|",
        ylim=(-0.35, 1.05),
        title="Model-parameter randomisation",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def _orders(result: SanityResult) -> list[str]:
    """One line per distinct block order: which cases randomise which blocks."""
    orders: dict[tuple[str, ...], list[str]] = {}
    for r in result.cases:
        orders.setdefault(tuple(r.steps[1:]), []).append(r.name)
    return [
        f"{', '.join(f'`{n}`' for n in names)}: {' → '.join(f'`{b}`' for b in steps) or '–'}"
        for steps, names in orders.items()
    ]


def sanity_blocks(result: SanityResult, out: Path) -> list[Block]:
    """The report's section: what is done, the table, the figure, the block orders."""
    plan = result.plan
    text = [f"**Randomised**: {plan.randomised}", f"**Perturbation**: {plan.perturbation}"]
    if plan.units:
        text.append(f"**Compared in**: {plan.units}")
    return [
        Heading("Robustness and randomisation"),
        Text(
            "Average sensitivity (Yeh et al., NeurIPS 2019) and cascading model-parameter "
            "randomisation (Adebayo et al., NeurIPS 2018) of every explanation, the intrinsic "
            "one included, on the first clips of the report."
        ),
        Text(text, bullets=True),
        sanity_table(result),
        Image(sanity_figure(result, out / "sanity.png"), "Spearman against blocks randomised"),
        Text("Blocks, in the order they are randomised:"),
        Text(_orders(result), bullets=True),
    ]


def sanity_record(result: SanityResult) -> dict[str, Any]:
    """Everything measured, for ``report.json``."""
    plan = result.plan
    return {
        "randomised": plan.randomised,
        "perturbation": plan.perturbation,
        "units": plan.units,
        "radius_std": result.radius,
        "n_draws": result.n_draws,
        "methods": {
            r.name: {
                "intrinsic": r.intrinsic,
                "blocks": r.steps[1:],
                "seconds": r.seconds,
                "summary": r.summary,
                "per_clip": {
                    "sensitivity": r.sensitivity,
                    "spearman": dict(zip(r.steps, r.spearman, strict=True)),
                },
            }
            for r in result.cases
        },
    }
