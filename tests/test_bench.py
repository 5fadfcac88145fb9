"""``make bench``'s explanation-cost section in quick mode: every family, its intrinsic
explanation and post-hoc methods timed against their limits (no timing is asserted)."""

from __future__ import annotations

import json

import pytest
import torch

from evaluate.bench.explanation import bench_explanations
from evaluate.bench.models import FAMILIES, family_case
from evaluate.bench.report import explanation_markdown

METHODS = ("saliency", "lrp", "kernel_shap")
EXPECTED_EVALS = {"saliency": 1, "lrp": 1}


@pytest.fixture(scope="module")
def results():
    return bench_explanations(torch.device("cpu"), quick=True, methods=METHODS)


def test_every_family_has_its_intrinsic_explanation_and_methods_against_limits(results):
    for family, f in results["families"].items():
        for b in ("1", "2"):
            i = f["intrinsic"][b]
            assert i["s_per_clip"] > 0 and i["forward_s_per_clip"] > 0, family
            assert i["over_limit"] == pytest.approx(i["s_per_clip"] / i["forward_s_per_clip"])
        assert f["intrinsic"]["2"]["peak_mb"] is not None  # measured at the largest batch
        assert set(f["posthoc"]) == set(METHODS), f["posthoc"]
        for name, v in f["posthoc"].items():
            assert "error" not in v, (family, name, v)
            for b in ("1", "2"):
                row = v[b]
                assert row["n_evals"] == EXPECTED_EVALS.get(name, row["n_evals"]), (name, row)
                assert row["limit_s_per_clip"] > 0 and row["rows_per_call"] >= 1
                assert row["over_limit"] == pytest.approx(
                    row["s_per_clip"] / row["limit_s_per_clip"]
                )
            assert v["2"]["peak_mb"] is not None and "peak_mb" not in v["1"]
        # KernelShap evaluates its 16 coalitions (and the clip) in batches, not one by one
        assert f["posthoc"]["kernel_shap"]["1"]["n_evals"] >= 16


def test_markdown_states_every_target_met_or_missed(results):
    text = "\n".join(explanation_markdown(results))
    json.dumps(results)  # results.json is plain JSON
    for family in FAMILIES:
        assert f"### {family}" in text
        assert f"- {family}: intrinsic <= 1.2x its forward pass" in text
        assert f"- {family}: intrinsic >= 100x cheaper than kernel_shap" in text
    for name in METHODS:
        assert f"| {name} |" in text


def test_family_cases_explain_with_the_uniform_explanation():
    """What the bench times is each family's real ``explain`` and the report's black box."""
    for family in FAMILIES:
        case = family_case(family, torch.device("cpu"))
        inputs = case.inputs(2)
        e = case.explain(inputs)
        assert len(e) == 2 and e.n_evals == 1
        with torch.no_grad():
            assert case.blackbox(inputs["x"]).shape[0] == 2


def test_bench_command_quick_writes_results(tmp_path):
    """``python -m evaluate.bench quick=true families=heart``: the whole command."""
    from evaluate.bench import main

    out = tmp_path / "bench"
    results = main(["quick=true", "families=heart", f"out={out}"])
    text = (out / "results.md").read_text()
    assert "## Explanation cost against its limit" in text and "### heart" in text
    assert "python -m train.bench" in text  # training throughput: its own command
    assert json.loads((out / "results.json").read_text())["command"] == results["command"]
