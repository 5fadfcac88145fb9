"""``benchmarks/results.md`` from the benchmark's results: tables, then the targets each
figure is held to, met or missed."""

from __future__ import annotations

from typing import Any

__all__ = ["explanation_markdown", "targets"]

INTRINSIC_TARGET = 1.2  # intrinsic explanation / its model's forward pass
LIMIT_TARGET = 1.5  # post-hoc method / its limit
RIVALS = {"kernel_shap": 100.0, "deeplift_shap": 10.0}  # intrinsic cheaper by at least


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def explanation_markdown(e: dict[str, Any]) -> list[str]:
    """One table per family: per batch size, ms per clip and the ratio to the limit."""
    batches = [str(b) for b in e["batches"]]
    head = " | ".join(f"batch {b}: ms/clip (x limit)" for b in batches)
    lines = [
        "## Explanation cost against its limit",
        "",
        "Per family: the intrinsic explanation against its model's own forward pass on the same "
        "batch; each post-hoc method of the reports on the family's black box against its "
        "**limit**, its model evaluations per clip times the per-row time of a forward pass "
        "(perturbation methods) or a forward + backward pass (gradient methods, LRP) on "
        "`min(evaluations x batch, rows per call)` rows, timed in the same run. Times are "
        "medians of repeated calls after a first call (shown apart with the construction); "
        "peak memory is one call at the largest batch above what was held before it.",
        "",
    ]
    for family, f in e["families"].items():
        lines += [
            f"### {family}",
            "",
            f"| method | evaluations / clip | rows / call | {head} | first call (s) | "
            f"peak MB, batch {batches[-1]} |",
            "| --- | --- | --- | " + " | ".join("---" for _ in batches) + " | --- | --- |",
        ]
        i = f["intrinsic"]
        cells = " | ".join(
            f"{_ms(i[b]['s_per_clip'])} ({i[b]['over_limit']:.2f}x)" for b in batches
        )
        lines.append(
            f"| **intrinsic** | 1 | batch | {cells} | | {_mb(i[batches[-1]]['peak_mb'])} |"
        )
        for name, v in f["posthoc"].items():
            if "error" in v:
                lines.append(f"| {name} | unavailable: {v['error'][:80]} |")
                continue
            cells = " | ".join(
                f"{_ms(v[b]['s_per_clip'])} ({v[b]['over_limit']:.2f}x)" for b in batches
            )
            lines.append(
                f"| {name} | {v[batches[-1]]['n_evals']} | {v[batches[-1]]['rows_per_call']} | "
                f"{cells} | {v[batches[0]]['first_call_s']:.3f} | "
                f"{_mb(v[batches[-1]].get('peak_mb'))} |"
            )
        fwd = " , ".join(
            f"batch {b}: {_ms(i[b]['forward_s_per_clip'])} ms, black box "
            f"{_ms(i[b]['blackbox_forward_s_per_clip'])} ms"
            for b in batches
        )
        lines += ["", f"Forward pass per clip of the by-design model ({fwd}).", ""]
    return lines + targets(e)


def targets(e: dict[str, Any]) -> list[str]:
    """The issue's targets, each met or missed with its figure."""
    batches = [str(b) for b in e["batches"]]
    lines = ["### Targets", ""]
    for family, f in e["families"].items():
        i = f["intrinsic"]
        worst = max(i[b]["over_limit"] for b in batches)
        lines.append(
            f"- {family}: intrinsic <= {INTRINSIC_TARGET}x its forward pass at every batch size: "
            f"{_verdict(worst <= INTRINSIC_TARGET)} (worst "
            f"{worst:.2f}x; " + ", ".join(f"{b}: {i[b]['over_limit']:.2f}x" for b in batches) + ")"
        )
        over = {
            name: max(v[b]["over_limit"] for b in batches)
            for name, v in f["posthoc"].items()
            if "error" not in v
        }
        missed = {m: r for m, r in over.items() if r > LIMIT_TARGET}
        lines.append(
            f"- {family}: post-hoc methods <= {LIMIT_TARGET}x their limit at every batch size: "
            + _verdict(not missed)
            + (
                " (missed: " + ", ".join(f"{m} {r:.2f}x" for m, r in missed.items()) + ")"
                if missed
                else ""
            )
        )
        for rival, factor in RIVALS.items():
            v = f["posthoc"].get(rival)
            if v is None or "error" in v:
                continue
            ratios = {b: v[b]["s_per_clip"] / i[b]["s_per_clip"] for b in batches}
            low = min(ratios.values())
            lines.append(
                f"- {family}: intrinsic >= {factor:.0f}x cheaper than {rival} per clip: "
                f"{_verdict(low >= factor)} ("
                + ", ".join(f"batch {b}: {r:.0f}x" for b, r in ratios.items())
                + ")"
            )
    return [*lines, ""]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"
