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
