"""The report skeleton: summary table, cost figure, strict JSON, run-pair check."""

import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from evaluate.metrics.statistics import mean_ci, summarise
from evaluate.reporting.format import Heading, Table
from evaluate.reporting.skeleton import (
    Metric,
    check_same_data,
    cost_figure,
    finish,
    jsonable,
    summary_table,
    verdict_text,
)

AUC = Metric("auc", "Deletion AUC", False)
HIT = Metric("hit", "Hit rate", True)
SUMMARIES = {
    "intrinsic": {"auc": 0.10, "auc_ci95": 0.01, "hit": 0.9, "hit_lo": 0.7, "hit_hi": 0.97},
    "saliency": {"auc": 0.20, "auc_ci95": 0.02, "hit": 0.9, "seconds": 0.01},
    "lime": {"auc": float("nan"), "hit": 0.5, "seconds": 1.0},
}


def test_summary_table_bolds_every_tied_best_and_shows_intervals():
    rows = summary_table(SUMMARIES, [AUC, HIT]).rows
    assert rows[0] == ["method", "Deletion AUC (↓)", "Hit rate (↑)"]
    assert rows[1] == ["`intrinsic`", "**0.100 ± 0.010**", "**0.900 [0.700, 0.970]**"]
    assert rows[2] == ["`saliency`", "0.200 ± 0.020", "**0.900**"]  # tied best hit rate
    assert rows[3] == ["`lime`", "–", "0.500"]  # NaN: not scored, never best


def test_verdict_names_the_winner_and_the_overlap():
    text = verdict_text(SUMMARIES, AUC, "intrinsic")
    assert "best is `intrinsic`" in text and "beats the best post-hoc method `saliency`" in text
    assert "do not overlap" in text
    assert "ties with" in verdict_text(SUMMARIES, HIT, "intrinsic")


def test_cost_figure_is_a_png(tmp_path):
    summaries = {m: {**s, "seconds": s.get("seconds", 0.1)} for m, s in SUMMARIES.items()}
    path = cost_figure(summaries, HIT, tmp_path / "cost.png", intrinsic=["intrinsic"])
    assert imread(path).shape[0] > 100


def test_finish_writes_strict_json_and_pages(tmp_path):
    record = {"a": float("nan"), "b": np.float32(1.5), "c": (np.arange(2), tmp_path)}
    paths = finish([Heading("t", 1), Table([["x"], ["1"]])], tmp_path, "t", record, "r", 16000)
    raw = json.loads(paths["json"].read_text())  # strict: NaN would not parse back as null
    assert raw == {"a": None, "b": 1.5, "c": [[0, 1], str(tmp_path)]}
    assert "| x |" in paths["md"].read_text() and "<table>" in paths["html"].read_text()
    assert jsonable({1: [math.inf]}) == {"1": [None]}


def test_check_same_data_names_both_runs_and_the_key():
    a = {"data": {"root": "x", "seed": 0}}
    check_same_data(
        a,
        {"data": {"root": "x", "seed": 0, "batch_size": 8}},
        ["root", "seed"],
        ("run=a", "blackbox=b"),
        "hint",
    )
    with pytest.raises(ValueError, match=r"run=a and blackbox=b .*data.seed: 0 vs 1.*; hint"):
        check_same_data(
            a, {"data": {"root": "x", "seed": 1}}, ["root", "seed"], ("run=a", "blackbox=b"), "hint"
        )


def test_statistics_known_answers():
    s = summarise({"v": [1.0, 2.0, 3.0]})
    assert s["v"] == 2.0 and s["v_ci95"] == pytest.approx(1.96 / math.sqrt(3))
    assert s["n_clips"] == 3
    assert mean_ci([1.0, None, float("nan"), 3.0]) == (2.0, pytest.approx(1.96), 2)
    assert all(math.isnan(v) for v in mean_ci([None])[:2])


# ----------------------------------------------------------------------------- sanity checks


def _sanity_model():
    import torch

    from interp_models.blackbox.cnn import SpectrogramCNN

    torch.manual_seed(0)
    model = SpectrogramCNN(3, channels=(4, 8)).eval()
    x = torch.randn(3, 16, 20) + 2.0
    return model, x, model(x).argmax(1)


def test_top_down_blocks_output_first_and_through_wrappers():
    from torch import nn

    from evaluate.reporting.sanity import top_down

    model, _, _ = _sanity_model()
    assert [b.name for b in top_down(model)] == ["head", "block2", "block1", "input_norm"]
    wrapped = nn.Sequential(model)  # a wrapper with one child is descended into
    assert [b.name for b in top_down(wrapped)][0] == "0.head"
    assert [b.name for b in top_down(nn.Sequential(nn.Linear(2, 2)))] == ["0"]  # a leaf
    outer = nn.ModuleDict({"net": model, "out": nn.Linear(3, 1)})
    names = [b.name for b in top_down(outer, expand=("net",))]
    assert names == ["out", "net.head", "net.block2", "net.block1", "net.input_norm"]


def test_sanity_known_answers_and_the_model_is_restored(tmp_path):
    """An explanation that ignores the model (the input itself) keeps Spearman 1 at every
    block and has the average sensitivity of uniform noise, sqrt(n/3) r s / ||x||; saliency
    loses its correlation as the model is randomised; re-explaining the unchanged model
    gives 1; the model is left as it was."""
    import torch

    from evaluate.reporting.sanity import (
        SanityBatch,
        SanityCase,
        SanityPlan,
        run_sanity,
        sanity_blocks,
        sanity_record,
        top_down,
    )

    model, x, target = _sanity_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def saliency(inputs, t):
        inputs = inputs.detach().requires_grad_(True)
        out = model(inputs)[torch.arange(len(t)), t].sum()
        return torch.autograd.grad(out, inputs)[0].abs()

    def predict(inputs):
        return model(inputs).argmax(1)

    blocks = top_down(model)
    plan = SanityPlan(
        [
            SanityCase("input", model, blocks, [SanityBatch(x, target, lambda i, t: i)], True),
            SanityCase("saliency", model, blocks, [SanityBatch(x, target, saliency, predict)]),
        ],
        "every block",
        "uniform noise",
    )
    result = run_sanity(plan, radius=0.2, n_draws=40)
    ignores, sal = result.cases
    assert np.allclose(ignores.spearman, 1.0) and ignores.spearman.shape == (5, 3)
    expected = np.sqrt(x[0].numel() / 3) * 0.2 * x.flatten(1).std(1) / x.flatten(1).norm(dim=1)
    np.testing.assert_allclose(ignores.sensitivity, expected.numpy(), rtol=0.05)
    assert np.allclose(sal.spearman[0], 1.0)  # the unchanged model: the same explanation
    assert sal.summary["spearman_all"] < 0.8 and np.isfinite(sal.sensitivity).all()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    blocks_out = sanity_blocks(result, tmp_path)
    table = next(b for b in blocks_out if isinstance(b, Table))
    assert [row[0] for row in table.rows[1:]] == ["**`input`**", "`saliency`"]
    assert imread(tmp_path / "sanity.png").shape[0] > 100
    record = json.loads(json.dumps(jsonable(sanity_record(result)), allow_nan=False))
    assert record["methods"]["input"]["summary"]["spearman_all"] == 1.0
    assert record["methods"]["saliency"]["blocks"] == ["head", "block2", "block1", "input_norm"]
