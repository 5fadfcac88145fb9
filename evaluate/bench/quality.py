"""Cost next to quality: each method's seconds per clip beside its deletion AUC on a
trained NMF-interpreter run, through the report's own code."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def bench_quality_vs_cost(
    run_dir: str, n_clips: int, methods: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Cost and deletion AUC of the intrinsic explanation and every post-hoc method on a
    trained NMF-interpreter run's test clips, taken from ``evaluate.nmf.report.evaluate_run``
    (the same code and clips as the report; one clip at a time, on CPU)."""
    from evaluate.nmf.report import DEFAULT_METHODS, INTRINSIC, evaluate_run

    methods = DEFAULT_METHODS if methods is None else methods
    result = evaluate_run(run_dir, methods, n_clips, log=lambda *_: None)
    keys = ("seconds", "n_evals", "deletion_auc", "deletion_auc_ci95")
    out: dict[str, Any] = {
        "run": str(result.run_dir),
        "clips": len(result.clips),
        "intrinsic": INTRINSIC,
        "methods": {m: {k: s[k] for k in keys if k in s} for m, s in result.summary.items()},
        "random_deletion_auc": result.reference.get("deletion_auc"),
    }
    base = out["methods"][INTRINSIC]["seconds"]
    for values in out["methods"].values():
        values["over_intrinsic"] = values["seconds"] / base
    return out


def quality_markdown(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return [
            "Deletion AUC beside the cost needs a trained run: "
            "`python -m evaluate.bench run=<nmf_interpreter run dir>`.",
            "",
        ]
    lines = [
        "### Cost next to deletion AUC on a trained run",
        "",
        f"Run `{q['run']}`, first {q['clips']} test clips, explaining the predicted class one "
        "clip at a time on CPU (the code of `evaluate.nmf.report`). Deletion AUC: probability of "
        "the class as 8 mel bands x 16 time divisions are removed in the explanation's order "
        "(lower is better).",
        "",
        "| method | s / clip | model evaluations | x intrinsic | deletion AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, v in q["methods"].items():
        label = f"**{name} (intrinsic)**" if name == q["intrinsic"] else name
        auc = f"{v['deletion_auc']:.3f} ± {v.get('deletion_auc_ci95', 0):.3f}"
        lines.append(
            f"| {label} | {v['seconds']:.2e} | {v['n_evals']:.0f} | {v['over_intrinsic']:.1f} "
            f"| {auc} |"
        )
    if q.get("random_deletion_auc") is not None:
        lines.append(f"| *random order* | | | | {q['random_deletion_auc']:.3f} |")
    intrinsic = q["methods"][q["intrinsic"]]
    for rival, factor in (("kernel_shap", 100), ("deeplift_shap", 10)):
        v = q["methods"].get(rival)
        if v is None:
            continue
        cheaper = v["seconds"] / intrinsic["seconds"]
        as_good = intrinsic["deletion_auc"] <= v["deletion_auc"]
        lines.append(
            f"\nIntrinsic vs {rival}: **{cheaper:.0f}x cheaper** (target >= {factor}x), deletion "
            f"AUC {intrinsic['deletion_auc']:.3f} vs {v['deletion_auc']:.3f} "
            f"({'equal or better' if as_good else '**worse**'}; target: equal or better)."
        )
    return [*lines, ""]


def plot_cost_vs_deletion(q: dict[str, Any], path: Path) -> None:
    """Seconds per clip (log scale) against deletion AUC, one point per method; lower left
    is cheaper and more faithful. The random order's AUC is a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, v in q["methods"].items():
        intrinsic = name == q["intrinsic"]
        ax.errorbar(
            v["seconds"],
            v["deletion_auc"],
            yerr=v.get("deletion_auc_ci95", 0),
            fmt="*" if intrinsic else "o",
            ms=14 if intrinsic else 7,
            color="C3" if intrinsic else "C0",
            capsize=3,
        )
        ax.annotate(
            name,
            (v["seconds"], v["deletion_auc"]),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=8,
        )
    if q.get("random_deletion_auc") is not None:
        ax.axhline(q["random_deletion_auc"], ls="--", color="grey", lw=1, label="random order")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per clip (log scale, one clip at a time)")
    ax.set_ylabel("deletion AUC (lower is more faithful)")
    ax.set_title(f"Cost against deletion AUC, {q['clips']} test clips")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
