"""End to end: the intrinsic-versus-post-hoc report on a tiny NMF-interpreter run, and its
HTML rendered in headless Chromium (images decode, audio elements load)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from test_nmf_cli import NMF_TINY

METHODS = ("saliency", "occlusion")
N_CLIPS = 2


@pytest.fixture(scope="module")
def report(run_fit, tmp_path_factory, cache_dir):
    """A tiny post-hoc NMF run (one epoch per stage) and its report; returns the out dir."""
    base = tmp_path_factory.mktemp("report")
    run_dir = base / "run"
    run_fit(
        "config=nmf_interpreter",
        *NMF_TINY,
        "classifier_epochs=1",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run_dir}",
    )
    out = base / "out"
    write_report(
        cache_dir,
        f"run={run_dir}",
        f"out={out}",
        f"methods={','.join(METHODS)}",
        "sanity_clips=1",
        "sanity_draws=2",
    )
    return out


def write_report(cache_dir, *args: str) -> None:
    """``python -m evaluate.report`` on ``N_CLIPS`` clips with one random order."""
    proc = subprocess.run(
        [sys.executable, "-m", "evaluate.report", *args, f"n_clips={N_CLIPS}", "n_random=1"],
        cwd=ROOT,
        env={**os.environ, "INTERP_MODELS_CACHE": str(cache_dir), "WANDB_SILENT": "true"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_report_tables_and_files(report):
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    methods = ("nmf_interpreter", *METHODS, "lmac")  # the run's own L-MAC joins in
    tables = md.split("## Tables", 1)[1].split("## Figures", 1)[0]
    sections = [s for s in tables.split("### ")[1:]]
    titles = [s.splitlines()[0] for s in sections]
    for title in ("Deletion AUC", "Insertion AUC", "Localization: mass inside event mask"):
        assert title in titles
    for title in ("Sparseness (Gini)", "Complexity (entropy, nats)", "Seconds per clip"):
        assert title in titles
    for section in sections:  # every table has a row for every method, mean ± CI
        for method in methods:
            assert re.search(rf"^\| {method} \| -?[\d.e+-]+ ± [\d.e+-]+ \|$", section, re.M), (
                method,
                section,
            )
    assert "The intrinsic explanation" in md and "best is `" in md
    assert "classifier test acc" in md
    # L-MAC's metrics of both mask explanations, beside the published rows
    masks = md.split("## Mask explanations", 1)[1].split("## ", 1)[0]
    for row in ("nmf_interpreter (nmf_posthoc,", "lmac of", "L-MAC (published", "L2I (published"):
        assert f"| {row}" in masks or f"| *{row}" in masks, (row, masks)
    # relative links in the Markdown point at files written beside it
    links = re.findall(r"\]\(([^)]+\.(?:png|wav))\)", md)
    assert len(links) >= 1 + 1 + len(methods) + 1 + len(methods)
    for link in links:
        assert (report / link).stat().st_size > 0, link
    # the HTML is self-contained
    assert "src='data:image/png;base64," in html and "src='data:audio/wav;base64," in html
    assert not re.search(r"src='(?!data:)", html)
    for method in methods:
        assert method in html


def test_report_checks_robustness_and_randomisation(report):
    """Every method, the interpreter included, has finite sensitivity and Spearman values;
    re-explaining the unchanged model gives Spearman 1; the interpreter's cascade runs
    through its own layers, then the classifier's."""
    md = (report / "report.md").read_text()
    section = md.split("## Robustness and randomisation", 1)[1]
    assert "![Spearman against blocks randomised](sanity.png)" in section
    assert (report / "sanity.png").stat().st_size > 0
    sanity = json.loads((report / "report.json").read_text())["sanity"]
    methods = ("nmf_interpreter", *METHODS, "lmac")
    assert set(sanity["methods"]) == set(methods)
    for method in methods:
        s = sanity["methods"][method]["summary"]
        for key in ("sensitivity", "spearman_top", "spearman_all"):
            assert s[key] is not None and math.isfinite(s[key]), (method, key, s)
        assert s["spearman_unchanged"] == 1.0, method
        assert re.search(rf"^\| (\*\*)?`{method}`(\*\*)? \| [\d.e+-]+ ± ", section, re.M), method
    blocks = sanity["methods"]["nmf_interpreter"]["blocks"]
    assert blocks[:4] == ["theta", "pool", "psi.temporal", "psi.branches"]
    assert blocks[4:] == [f"classifier.{b}" for b in sanity["methods"]["saliency"]["blocks"]]
    assert "0.1 x the clip's standard deviation on the classifier's log-mel input" in section


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_html_renders_in_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: see .ci/run)")
        pytest.skip("chromium not installed (apt-get install chromium); CI is not set")
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        (report / "report.html").as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "<body" in dom, proc.stderr[-3000:]
    body = re.search(r"<body([^>]*)>", dom).group(1)
    counts = {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(\d+)"', body)}
    n_methods = 1 + len(METHODS) + 1  # the intrinsic explanation, the methods, L-MAC
    assert counts.get("images-total", 0) >= n_methods + 2, (counts, proc.stderr[-2000:])
    assert counts["images-loaded"] == counts["images-total"], counts
    assert counts["audio-total"] == 1 + n_methods, counts
    assert counts["audio-loaded"] == counts["audio-total"], counts


def test_bench_puts_deletion_auc_beside_the_cost(report):
    """``python -m evaluate.bench run=``: cost and deletion AUC from the report's own code."""
    from evaluate.bench.quality import bench_quality_vs_cost, quality_markdown

    q = bench_quality_vs_cost(str(report.parent / "run"), N_CLIPS, methods=("saliency",))
    assert q["clips"] == N_CLIPS
    assert set(q["methods"]) == {"nmf_interpreter", "saliency", "lmac"}  # the run's L-MAC too
    intrinsic = q["methods"]["nmf_interpreter"]
    assert intrinsic["over_intrinsic"] == 1.0 and intrinsic["n_evals"] == 1
    for values in q["methods"].values():
        assert 0.0 <= values["deletion_auc"] <= 1.0 and values["seconds"] > 0
    table = "\n".join(quality_markdown(q))
    assert "| **nmf_interpreter (intrinsic)** |" in table and "| saliency |" in table


def test_bench_scaling_epoch_reports_time_and_memory_of_its_size():
    """One size of ``make bench``'s scaling section (run in-process here; the bench gives
    each size a fresh process so that peak memory is per size)."""
    from evaluate.bench.training import _scaling_epoch

    out = _scaling_epoch("cpu", True, 1)
    assert out["clips"] == 64 and out["epoch_s"] > 0
    assert out["peak_memory_mb"] > 0


def test_interpreters_of_one_classifier_share_one_table(run_fit, report, tmp_path, cache_dir):
    """A faithful interpreter trained on the post-hoc run's classifier: one report, the
    post-hoc methods run once, both interpreters are rows, the verdicts compare the first."""
    posthoc = report.parent / "run"
    m = json.loads((posthoc / "metrics.json").read_text())
    faithful = tmp_path / "faithful"
    run_fit(
        "config=nmf_interpreter_faithful",
        *NMF_TINY,
        f"classifier_ckpt={posthoc / m['classifier']['best_checkpoint']}",
        "trainer.max_epochs=1",
        "lmac.enabled=false",
        f"hydra.run.dir={faithful}",
    )
    out = tmp_path / "out"
    write_report(
        cache_dir, f"run={faithful}", f"run={posthoc}", f"out={out}", "methods=saliency", "sanity=0"
    )
    md = (out / "report.md").read_text()
    assert "Robustness and randomisation" not in md  # sanity=0 skips the checks
    deletion = md.split("### Deletion AUC", 1)[1].split("### ", 1)[0]
    for method in ("nmf_interpreter", "nmf_interpreter_posthoc", "saliency", "lmac"):
        # one column: the runs share the classifier, so the table is one run's
        assert re.search(rf"^\| {method} \| -?[\d.e+-]+ ± [\d.e+-]+ \|$", deletion, re.M), method
    masks = md.split("## Mask explanations", 1)[1].split("## ", 1)[0]
    assert (
        "| nmf_interpreter (nmf_faithful," in masks and "| nmf_interpreter (nmf_posthoc," in masks
    )
    record = json.loads((out / "report.json").read_text())
    assert len(record["runs"]) == 1 and "nmf_interpreter_posthoc" in record["runs"][0]["summary"]
