"""Benchmarks: every figure a ratio of two timings taken in the same run, on one device.

    python -m evaluate.bench [device=cpu|cuda] [out=benchmarks] [quick=true]
        [run=<trained NMF-interpreter run> [clips=20]]

Writes ``<out>/results.md`` and ``<out>/results.json``. Sections: explanation cost per clip
(intrinsic NMF explanation vs a classifier forward pass and vs each post-hoc method; with
``run=``, also cost next to deletion AUC on that run's test clips), training step of
interpreter + classifier vs the classifier alone, NMF dictionary learning with torchnmf vs
scikit-learn, input pipeline vs model step, and epoch time / peak memory at 1x, 2x, 4x the
dataset size. Timings are medians of repeats after a warm-up; models are untrained (cost
does not depend on the weights) except in the ``run=`` section. The options were
``--device``, ``--out``, ``--quick``, ``--run`` and ``--clips``; those still work, with a note.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from evaluate.cli_args import Option, boolean, legacy_flags, parse_options, whole_number
from evaluate.cli_errors import run_cli
from evaluate.runs import load_run
from interp_models.audio.features import Log1pSpectrogram, LogMel
from interp_models.audio.io import load_audio
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.cache import default_cache_dir
from interp_models.data.esc50 import read_esc50
from interp_models.data.synth_events import SynthEventsConfig, ensure_events
from interp_models.nmf.interpreter import NMFInterpreter

SR, N_FFT, HOP = 16000, 1024, 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn: Callable[[], Any], device: torch.device, repeat: int = 5, warmup: int = 1):
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _models(device: torch.device, n_classes: int = 10, k: int = 100):
    torch.manual_seed(0)
    clf = SpectrogramCNN(n_classes).to(device).eval()
    interp = (
        NMFInterpreter(
            clf, ["block2", "block3", "block4"], torch.rand(N_FFT // 2 + 1, k), n_classes
        )
        .to(device)
        .eval()
    )
    return clf, interp


def bench_explanation_cost(device, batch: int, quick: bool) -> dict[str, Any]:
    """Intrinsic explanation vs one classifier forward pass, per clip."""
    clf, interp = _models(device)
    x = torch.randn(batch, 64, 126, device=device)
    with torch.no_grad():
        forward = timeit(lambda: clf(x), device, repeat=25, warmup=3)
        intrinsic = timeit(lambda: interp.explain(x), device, repeat=25, warmup=3)
    out = {
        "clips": batch,
        "forward_s_per_clip": forward / batch,
        "intrinsic_s_per_clip": intrinsic / batch,
        "intrinsic_over_forward": intrinsic / forward,
    }
    out["one_clip"] = bench_one_clip(clf, x[:1], device)
    out["posthoc"] = bench_posthoc(clf, interp, x[: max(2, batch // 8)], device, quick)
    return out


def bench_one_clip(clf, x, device) -> dict[str, float]:
    """One clip at a time: each mask explanation (the L2I interpreter, the faithful one with
    time-resolved relevance, L-MAC's masker) over one classifier forward pass."""
    from evaluate.posthoc.lmac import LMAC

    layers, W = ["block2", "block3", "block4"], torch.rand(N_FFT // 2 + 1, 100)
    n = clf.head.out_features
    mel_fb = LogMel(SR, N_FFT, HOP, x.shape[1]).mel_fb
    models = {
        "intrinsic": NMFInterpreter(clf, layers, W, n),
        "faithful": NMFInterpreter(clf, layers, W, n, relevance="time"),
        "lmac": LMAC(clf, layers, mel_fb),
    }
    with torch.no_grad():
        forward = timeit(lambda: clf(x), device, repeat=50, warmup=5)
        out = {"forward_s": forward}
        for name, model in models.items():
            model = model.to(device).eval()
            call = model.explain if name != "lmac" else model
            seconds = timeit(lambda call=call: call(x), device, repeat=50, warmup=5)
            out[f"{name}_over_forward"] = seconds / forward
    return out


def bench_posthoc(clf, interp, x, device, quick: bool) -> dict[str, Any]:
    """Each post-hoc method's cost per clip and model evaluations, relative to the intrinsic
    explanation of the same clips. KernelShap and occlusion run over 8 bands x 16 time
    divisions, the gradient methods over single log-mel bins."""
    from evaluate.posthoc import build_explainer
    from evaluate.posthoc.groupings import Bands

    frontend = LogMel(SR, N_FFT, HOP, x.shape[1]).to(device)
    bands = Bands(frontend, n_bands=8, n_divisions=16)  # perturbation methods: 128 groups
    with torch.no_grad():
        target = clf(x).argmax(1)
        intrinsic = timeit(lambda: interp.explain(x), device, repeat=3) / len(x)
    methods = [
        "saliency",
        "integrated_gradients",
        "gradient_shap",
        "deeplift_shap",
        "lrp",
        "occlusion",
        "kernel_shap",
    ]
    out: dict[str, Any] = {}
    for name in methods:
        start = time.perf_counter()
        try:
            grouping = bands if name in ("kernel_shap", "occlusion") else None
            e = build_explainer(name, clf, frontend=frontend).attribute(
                x, target, grouping=grouping
            )
        except Exception as err:  # report, don't hide, a method that fails
            out[name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        _sync(device)
        seconds = (time.perf_counter() - start) / len(x)
        out[name] = {
            "s_per_clip": seconds,
            "n_evals": e.n_evals,
            "over_intrinsic": seconds / intrinsic,
        }
    return out


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


def bench_training_step(device, batch: int) -> dict[str, Any]:
    """One optimisation step (forward, backward, update) of the post-hoc interpreter on a
    frozen classifier, and of the jointly trained pair, vs the classifier alone."""
    clf, interp = _models(device)
    x = torch.randn(batch, 64, 126, device=device)
    spec = torch.rand(batch, N_FFT // 2 + 1, 126, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    clf.train()
    interp.train()
    opt_c = torch.optim.AdamW(clf.parameters(), 1e-3)

    def classifier_step():
        opt_c.zero_grad()
        torch.nn.functional.cross_entropy(clf(x), y).backward()
        opt_c.step()

    def interpreter_step(frozen: bool):
        clf.requires_grad_(not frozen)
        params = [p for p in interp.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, 1e-3)

        def step():
            opt.zero_grad()
            out = interp(x)
            loss = (
                torch.nn.functional.mse_loss(interp.reconstruct(out.H), spec)
                + torch.nn.functional.cross_entropy(out.logits, y)
                + out.H.abs().mean()
            )
            if not frozen:
                loss = loss + torch.nn.functional.cross_entropy(out.clf_logits, y)
            loss.backward()
            opt.step()

        return step

    base = timeit(classifier_step, device)
    posthoc = timeit(interpreter_step(frozen=True), device)
    joint = timeit(interpreter_step(frozen=False), device)
    clf.requires_grad_(True)
    return {
        "batch": batch,
        "classifier_s": base,
        "posthoc_interpreter_s": posthoc,
        "joint_s": joint,
        "posthoc_over_classifier": posthoc / base,
        "joint_over_classifier": joint / base,
    }


def bench_nmf(device, quick: bool) -> dict[str, Any]:
    """torchnmf vs scikit-learn NMF (both multiplicative updates, Frobenius) on one matrix."""
    from sklearn.decomposition import NMF as SkNMF
    from torchnmf.nmf import NMF

    rng = np.random.default_rng(0)
    frames, bins, rank, iters = (2000, 257, 20, 100) if quick else (6000, 513, 100, 200)
    V = rng.random((frames, rank)) @ rng.random((rank, bins)) + 0.01 * rng.random((frames, bins))
    V = V.astype(np.float32)

    def frob(approx):
        return float(np.linalg.norm(V - approx) ** 2 / 2)

    start = time.perf_counter()
    sk = SkNMF(
        rank,
        solver="mu",
        beta_loss="frobenius",
        max_iter=iters,
        tol=0,
        init="random",
        random_state=0,
    )
    W_sk = sk.fit_transform(V)
    sk_s = time.perf_counter() - start
    sk_div = frob(W_sk @ sk.components_)

    torch.manual_seed(0)
    Vt = torch.from_numpy(V).to(device)
    model = NMF(Vt.shape, rank=rank).to(device)
    _sync(device)
    start = time.perf_counter()
    with torch.enable_grad():
        model.fit(Vt, beta=2, max_iter=iters, tol=0)
    _sync(device)
    tn_s = time.perf_counter() - start
    tn_div = frob(model().detach().cpu().numpy())
    return {
        "matrix": [frames, bins],
        "rank": rank,
        "iterations": iters,
        "sklearn_s": sk_s,
        "torchnmf_s": tn_s,
        "torchnmf_over_sklearn": tn_s / sk_s,
        "sklearn_divergence": sk_div,
        "torchnmf_divergence": tn_div,
    }


def bench_input_pipeline(device, batch: int, quick: bool) -> dict[str, Any]:
    """Clips/s of decoding + resampling + log-mel (uncached) vs clips/s of a training step."""
    root = ensure_events(SynthEventsConfig(num_clips=100), default_cache_dir())
    records, _ = read_esc50(root)
    records = records[: 32 if quick else 96]
    logmel = LogMel(SR, N_FFT, HOP, 64).to(device)
    stft = Log1pSpectrogram(SR, N_FFT, HOP).to(device)

    def load_all():
        for r in records:
            wave = torch.from_numpy(load_audio(r.path, SR, 2 * SR)).to(device)
            logmel(wave)
            stft(wave)

    load_s = timeit(load_all, device, repeat=3) / len(records)
    step = bench_training_step(device, batch)
    step_s = step["posthoc_interpreter_s"] / batch
    return {
        "load_features_clips_per_s": 1 / load_s,
        "train_step_clips_per_s": 1 / step_s,
        "input_over_step_throughput": step_s / load_s,
        "note": "features are cached after the first epoch, so later epochs skip loading",
    }


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes. Linux's ``VmHWM`` belongs to the
    process image and starts afresh at exec; ``ru_maxrss`` does not (a spawned child
    inherits its parent's peak), so it is only the fallback."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _scaling_epoch(device_str: str, quick: bool, factor: int) -> dict[str, Any]:
    """One post-hoc interpreter training epoch on ``factor`` x the base clip count: its
    time and the peak memory of the process (CUDA: peak allocated by torch)."""
    device = torch.device(device_str)
    torch.manual_seed(0)
    _, interp = _models(device)
    interp.train()
    interp.classifier.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in interp.parameters() if p.requires_grad], 1e-3)
    base, batch = (64, 16) if quick else (192, 32)
    n = base * factor
    x = torch.randn(n, 64, 126, device=device)
    spec = torch.rand(n, N_FFT // 2 + 1, 126, device=device)

    def epoch():
        for i in range(0, n, batch):
            opt.zero_grad()
            o = interp(x[i : i + batch])
            torch.nn.functional.mse_loss(interp.reconstruct(o.H), spec[i : i + batch]).backward()
            opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timeit(epoch, device, repeat=3, warmup=1)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _peak_rss()
    return {"clips": n, "epoch_s": seconds, "peak_memory_mb": peak / 2**20}


def bench_scaling(device, quick: bool) -> dict[str, Any]:
    """Epoch time (post-hoc interpreter training) at 1x, 2x, 4x the clips; peak memory.

    On the CPU each size runs in a fresh spawned process, because a process's peak resident
    memory (``ru_maxrss``) never goes down: measured in one process, every size would report
    the largest peak seen so far. On CUDA, torch's peak-allocation counter is reset instead.
    """
    out: dict[str, Any] = {}
    if device.type == "cpu":
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            for factor in (1, 2, 4):
                out[f"{factor}x"] = pool.apply(_scaling_epoch, (str(device), quick, factor))
        out["memory"] = "peak resident memory of a fresh process per size"
    else:
        for factor in (1, 2, 4):
            out[f"{factor}x"] = _scaling_epoch(str(device), quick, factor)
        out["memory"] = "peak memory allocated by torch on the device"
    out["2x_over_1x"] = out["2x"]["epoch_s"] / out["1x"]["epoch_s"]
    out["4x_over_1x"] = out["4x"]["epoch_s"] / out["1x"]["epoch_s"]
    return out


def to_markdown(results: dict[str, Any]) -> str:
    dev = results["device"]
    e, t, n, p, s = (
        results[k] for k in ("explanation", "training_step", "nmf", "input", "scaling")
    )
    lines = [
        "# Benchmarks",
        "",
        f"Device: **{dev}**; torch {results['torch']}; command: `{results['command']}`.",
        "Each figure is a ratio of timings taken in the same run (medians after warm-up).",
        "",
        "## Explanation cost per clip",
        "",
        "| method | s / clip | model evaluations | x intrinsic |",
        "| --- | --- | --- | --- |",
        f"| classifier forward pass | {e['forward_s_per_clip']:.2e} | 1 | "
        f"{1 / e['intrinsic_over_forward']:.2f} |",
        f"| **NMF interpreter (intrinsic)** | {e['intrinsic_s_per_clip']:.2e} | 1 | 1 |",
    ]
    for name, v in e["posthoc"].items():
        if "error" in v:
            lines.append(f"| {name} | unavailable: {v['error'][:60]} | | |")
        else:
            lines.append(
                f"| {name} | {v['s_per_clip']:.2e} | {v['n_evals']} | {v['over_intrinsic']:.1f} |"
            )
    lines += [
        "",
        f"Intrinsic explanation / classifier forward: **{e['intrinsic_over_forward']:.2f}x** "
        "(target <= 1.5x).",
        "",
        f"One clip at a time (classifier forward {e['one_clip']['forward_s'] * 1e3:.2f} ms): "
        + ", ".join(
            f"{name} **{e['one_clip'][f'{name}_over_forward']:.2f}x**"
            for name in ("intrinsic", "faithful", "lmac")
        )
        + " a forward pass (target for the faithful interpreter <= 1.5x).",
        "",
        *quality_markdown(results.get("quality")),
        "## Training step",
        "",
        f"Batch {t['batch']}: post-hoc interpreter step / classifier step = "
        f"**{t['posthoc_over_classifier']:.2f}x**; joint / classifier = "
        f"**{t['joint_over_classifier']:.2f}x** (target <= 1.5x).",
        "",
        "## NMF dictionary learning",
        "",
        f"Matrix {n['matrix'][0]} x {n['matrix'][1]}, rank {n['rank']}, {n['iterations']} "
        f"iterations: torchnmf / scikit-learn time = **{n['torchnmf_over_sklearn']:.2f}x**; "
        f"final Frobenius divergence {n['torchnmf_divergence']:.4g} (torchnmf) vs "
        f"{n['sklearn_divergence']:.4g} (scikit-learn).",
        "",
        "## Input pipeline",
        "",
        f"Decode + resample + features: {p['load_features_clips_per_s']:.0f} clips/s; interpreter "
        f"training step: {p['train_step_clips_per_s']:.0f} clips/s; step time / load time = "
        f"**{p['input_over_step_throughput']:.2f}** ({p['note']}).",
        "",
        "## Scaling",
        "",
        "| clips | epoch (s) | peak memory (MB) |",
        "| --- | --- | --- |",
        *[
            f"| {s[k]['clips']} | {s[k]['epoch_s']:.2f} | {s[k]['peak_memory_mb']:.0f} |"
            for k in ("1x", "2x", "4x")
        ],
        "",
        f"Epoch time 2x / 1x = **{s['2x_over_1x']:.2f}**, 4x / 1x = **{s['4x_over_1x']:.2f}** "
        f"(linear: 2 and 4). Memory: {s.get('memory', 'peak')}.",
        "",
    ]
    return "\n".join(lines)


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


def _device(name: str) -> torch.device:
    """``device=``: a torch device this machine has."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError("must be a torch device (cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("must be cpu: CUDA is not available on this machine")
    return device


USAGE = __doc__.split("\n\n")[1]
OPTIONS = (
    Option("device", _device),  # default: cuda if available, else cpu
    Option("out", default="benchmarks"),
    Option("quick", boolean, default=False),  # small sizes (for tests)
    Option("run"),  # a trained NMF-interpreter run: adds deletion AUC to the costs
    Option("clips", whole_number, default=20),  # test clips for run=
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = legacy_flags(sys.argv[1:] if argv is None else argv, flags=("quick",))
    args = SimpleNamespace(**parse_options(argv, OPTIONS, USAGE))
    if args.run:
        load_run(args.run)  # a bad run= fails now, not after the other sections
    device = args.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = 8 if args.quick else 32
    results = {
        "device": device_name(device),
        "torch": torch.__version__,
        "command": "python -m evaluate.bench"
        + (" quick=true" if args.quick else "")
        + (f" run={args.run} clips={args.clips}" if args.run else ""),
        "explanation": bench_explanation_cost(device, batch, args.quick),
        "quality": bench_quality_vs_cost(args.run, args.clips) if args.run else None,
        "training_step": bench_training_step(device, batch),
        "nmf": bench_nmf(device, args.quick),
        "input": bench_input_pipeline(device, batch, args.quick),
        "scaling": bench_scaling(device, args.quick),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(to_markdown(results))
    print((out / "results.md").read_text())
    return results


if __name__ == "__main__":
    run_cli(main)
