"""The localization report through ``python -m evaluate.report``: a learned SRP run against
its multichannel black box, both trained through the CLI on the same tiny array data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from evaluate.localization.report import LocalizationReport
from evaluate.reporting.skeleton import ReportRequest, write_report

METHODS = ("lrp", "integrated_gradients", "occlusion")


@pytest.fixture(scope="module")
def runs(tiny_localization_run):
    return tiny_localization_run("localization_srp"), tiny_localization_run("blackbox_localization")


def test_report_scores_every_method_against_the_geometry(runs, tmp_path, monkeypatch, cache_dir):
    from evaluate.report import main

    monkeypatch.setenv("INTERP_MODELS_CACHE", str(cache_dir))
    srp, bb = runs
    out = tmp_path / "report"
    paths = main(
        [
            f"run={srp}",
            f"blackbox={bb}",
            "n_clips=4",
            f"methods={','.join(METHODS)}",
            f"out={out}",
            "sanity_clips=2",
            "sanity_draws=2",
        ]
    )
    for key in ("md", "html", "json", "onset", "curves", "views", "sanity"):
        assert Path(paths[key]).is_file(), key
    record = json.loads(paths["json"].read_text())
    same_model = ["integrated_gradients@learned_srp", "occlusion@learned_srp"]
    assert record["methods"] == ["learned_srp", *METHODS, *same_model]
    assert len(record["clips"]) == 4
    summary = record["summary"]
    for method in record["methods"]:
        assert np.isfinite(summary[method]["deletion_gap"]), method
        assert summary[method]["direct_enrichment"] >= 0, method
    # the learned SRP's explanation is the delay it used: SRP-PHAT's delays are right
    assert summary["learned_srp"]["tdoa_hit"] >= 0.5
    # segment-level occlusion cannot resolve a delay of a few samples: left empty
    assert "tdoa_hit" not in summary["occlusion"]
    assert "tdoa_hit" not in summary["occlusion@learned_srp"]
    # every clip has a perturbation curve that starts at the unperturbed error
    for clip in record["clips"]:
        for method in record["methods"]:
            curve = clip["curves"][method]
            assert len(curve["relevance"]) == len(record["fractions"])
            assert curve["relevance"][0] == pytest.approx(curve["random"][0])
    # audible relevance: one channel per microphone
    assert sf.info(str(out / "lrp_audible.wav")).channels == 4
    md = paths["md"].read_text()
    assert "## Per reverberation time and SNR" in md and "## Robustness and randomisation" in md
    assert "`learned_srp`" in md and "On the same model" in md


def test_report_refuses_runs_trained_on_other_data(runs, tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("INTERP_MODELS_CACHE", str(cache_dir))
    srp, bb = runs
    other = tmp_path / "other"
    shutil.copytree(bb, other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["data"]["data_seed"] = 7
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    request = ReportRequest((srp,), other, tmp_path / "r", 2, ("lrp",))
    with pytest.raises(ValueError, match="data.data_seed"):
        write_report(LocalizationReport(), request)
    with pytest.raises(ValueError, match="not a localization_srp run"):
        write_report(LocalizationReport(), ReportRequest((bb,), bb, tmp_path / "r", 2, ("lrp",)))
