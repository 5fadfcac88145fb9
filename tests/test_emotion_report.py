"""The emotion family's report: A2Mid2E (by design) versus post-hoc explanations of A2E
(Chowdhury et al., ISMIR 2019), end to end on tiny runs, and its new pieces on known
answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evaluate.emotion.report import (
    check_same_data,
    evidence_shares,
    explained_pairs,
    orient,
)
from evaluate.report import main as report_main
from tests.test_emotion_cli import TINY

CONFIGS = ("midlevel_emotion", "blackbox_emotion")


@pytest.fixture(scope="module")
def pair(run_fit, tmp_path_factory) -> dict[str, Path]:
    """A tiny A2Mid2E run and its A2E black box, one multirun (same data, one build)."""
    sweep = tmp_path_factory.mktemp("emotion_report_runs")
    run_fit(f"config={','.join(CONFIGS)}", *TINY, f"hydra.sweep.dir={sweep}", multirun=True)
    return {name: sweep / str(i) for i, name in enumerate(CONFIGS)}


def test_report_end_to_end(pair, tmp_path):
    out = tmp_path / "report"
    second = shutil.copytree(pair["midlevel_emotion"], tmp_path / "second")
    paths = report_main(
        [
            f"run={pair['midlevel_emotion']}",
            f"blackbox={pair['blackbox_emotion']}",
            f"run={second}",  # a second A2Mid2E run: its selectivity joins the table
            f"out={out}",
            "n_clips=3",
            "methods=saliency,occlusion",
            "sanity_clips=2",
            "sanity_draws=2",
        ]
    )
    for key in ("md", "html", "json", "maps", "mapping", "relative", "effects"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    record = json.loads(paths["json"].read_text())
    assert record["n_clips"] == 3 and len(record["per_clip"]) == 3
    assert set(record["evidence_share"]["posthoc"]) == {"saliency", "occlusion"}
    for side in ("posthoc", "bridge"):
        for s in record["evidence_share"][side].values():
            assert s["share"] is None or 0 <= s["share"] <= 1
            assert 0 < s["chance"] < 1 and s["seconds"] > 0 and s["n_evals"] >= 1
    occ = record["evidence_share"]["posthoc"]["occlusion"]
    assert occ["n_evals"] >= 8 * 16  # one evaluation per band x division at least
    intrinsic = record["intrinsic"]
    for key in ("top_quality_agreement", "top_quality_agreement_all_emotions"):
        assert 0 <= intrinsic[key] <= 1
    agreement = record["mapping"]["agreement"]
    assert -1 <= agreement["spearman"] <= 1 and 0 <= agreement["sign_agreement"] <= 1
    assert np.array(record["mapping"]["learned"]).shape == (8, 7)
    clip = record["per_clip"][0]
    assert clip["explained_emotion"] in record["chance_by_emotion"]
    assert abs(clip["true_effect"]) == max(abs(v) for v in clip["true_effects"].values())
    assert abs(sum(abs(v) for v in clip["relative_effects"].values()) - 1) < 1e-4
    # The pipeline's listenable contrast is reused, and the pages carry everything.
    assert record["contrast"]["source"].endswith(record["contrast"]["song_id"])
    md = paths["md"].read_text()
    assert "sign agreement" in md and "bridge" in md and md.count(".wav") == 3
    html = paths["html"].read_text()
    assert html.count("data:image/png") >= 5 and html.count("data:audio/wav") == 3
    # Selectivity of both runs: own test fold and the probe, as their metrics.json say.
    sel = record["selectivity"]
    assert set(sel) == {"midlevel_emotion", "midlevel_emotion-1"}
    own = json.loads((pair["midlevel_emotion"] / "metrics.json").read_text())["selectivity"]
    kinds = {e["kind"]: e for e in sel["midlevel_emotion"]["entries"]}
    assert set(kinds) == {"contrasts", "probe_contrasts", "probe_factors"}
    assert kinds["contrasts"]["matrix"] == own["contrasts"]["matrix"]
    assert "Are the quality units selective?" in md and md.count("| midlevel_emotion") >= 6
    # Robustness and randomisation of the effects and of every post-hoc method on A2E.
    assert paths["sanity"].is_file() and "## Robustness and randomisation" in md
    sanity = record["sanity"]
    assert set(sanity["methods"]) == {"a2mid2e (by design)", "A2E: saliency", "A2E: occlusion"}
    for name, m in sanity["methods"].items():
        s = m["summary"]
        assert all(np.isfinite(s[k]) for k in ("sensitivity", "spearman_top", "spearman_all"))
        assert s["spearman_unchanged"] == 1.0, name  # the unchanged model: the same ranks
        assert len(m["per_clip"]["sensitivity"]) == 2
    own = sanity["methods"]["a2mid2e (by design)"]["blocks"]
    assert own[:2] == ["emotion_head", "backbone.head"] and own[-1] == "backbone.input_norm"
    assert sanity["methods"]["A2E: saliency"]["blocks"][0] == "head"


def test_refuses_runs_on_different_data(pair, tmp_path):
    other = tmp_path / "other_blackbox"
    shutil.copytree(pair["blackbox_emotion"], other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["data"]["data_seed"] = 1
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="not trained on the same data.*data_seed"):
        report_main([f"run={pair['midlevel_emotion']}", f"blackbox={other}", "n_clips=1"])


def test_check_same_data_ignores_loader_settings():
    a = {"data": {"num_clips": 40, "data_seed": 0, "batch_size": 8}}
    check_same_data(a, {"data": {"num_clips": 40, "data_seed": 0, "batch_size": 32}}, "a", "b")
    with pytest.raises(ValueError, match="data.num_clips: 40 vs 80"):
        check_same_data(a, {"data": {"num_clips": 80, "data_seed": 0}}, Path("a"), Path("b"))


def test_evidence_share_known_answers():
    mask = torch.zeros(3, 4, 5, dtype=torch.bool)
    mask[:, :1, :] = True  # area 0.25
    inside = torch.where(mask, 1.0, 0.0)
    uniform = torch.ones(3, 4, 5)
    out = evidence_shares(torch.stack([inside[0], (~mask[1]).float(), uniform[2]]), mask)
    np.testing.assert_allclose(out["share"], [1.0, 0.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(out["chance"], [0.25, 0.25, 0.25])
    assert out["above_chance"].tolist() == [True, False, False]
    # Negative relevance is ignored; nothing positive -> NaN (not scored).
    neg = evidence_shares(-inside[:1] + 2 * (~mask[:1]).float(), mask[:1])
    assert neg["share"][0] == 0.0
    assert np.isnan(evidence_shares(-uniform[:1], mask[:1])["share"][0])


def test_explained_pairs_and_orientation():
    eff = np.zeros((2, 8, 7))
    eff[0, 3, 5], eff[0, 1, 1] = -0.9, 0.5
    eff[1, 7, 0], eff[1, 2, 6] = 0.4, 0.3
    emotion, quality, sign = explained_pairs(eff)
    assert emotion.tolist() == [3, 7] and quality.tolist() == [5, 0] and sign.tolist() == [-1, 1]
    maps = torch.ones(2, 3, 4)
    flipped = orient(maps, sign, "occlusion")
    assert flipped[0].max() == -1 and flipped[1].min() == 1
    assert torch.equal(orient(maps, sign, "saliency"), maps)  # |gradient| is unsigned
