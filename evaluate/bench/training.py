"""Training cost: a training step of each model family against its plain classifier, the
input pipeline against the step, NMF dictionary learning, and epoch time and peak memory
against the data size."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import numpy as np
import torch

from evaluate.bench.models import HOP, N_FFT, SR, nmf_models
from evaluate.bench.timing import peak_rss, sync, timeit
from interp_models.audio.features import Log1pSpectrogram, LogMel
from interp_models.audio.io import load_audio
from interp_models.cache import default_cache_dir
from interp_models.data.esc50 import read_esc50
from interp_models.data.synth_events import SynthEventsConfig, ensure_events


def bench_training_step(device, batch: int) -> dict[str, Any]:
    """One optimisation step (forward, backward, update) of the post-hoc interpreter on a
    frozen classifier, and of the jointly trained pair, vs the classifier alone."""
    clf, interp = nmf_models(device)
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
    sync(device)
    start = time.perf_counter()
    with torch.enable_grad():
        model.fit(Vt, beta=2, max_iter=iters, tol=0)
    sync(device)
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


def _scaling_epoch(device_str: str, quick: bool, factor: int) -> dict[str, Any]:
    """One post-hoc interpreter training epoch on ``factor`` x the base clip count: its
    time and the peak memory of the process (CUDA: peak allocated by torch)."""
    device = torch.device(device_str)
    torch.manual_seed(0)
    _, interp = nmf_models(device)
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
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss()
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


def nmf_training_markdown(t: dict, n: dict, p: dict, s: dict) -> list[str]:
    """The NMF family's training sections: step, dictionary learning, input, scaling."""
    return [
        "## NMF interpreter training step",
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
        "## NMF input pipeline (uncached decoding)",
        "",
        f"Decode + resample + features: {p['load_features_clips_per_s']:.0f} clips/s; interpreter "
        f"training step: {p['train_step_clips_per_s']:.0f} clips/s; step time / load time = "
        f"**{p['input_over_step_throughput']:.2f}** ({p['note']}).",
        "",
        "## NMF interpreter scaling",
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
