"""Deletion / insertion curves and faithfulness correlation on models whose answer is known."""

from __future__ import annotations

import pytest
import torch
from posthoc_helpers import LinearSpec, single_thread, tiny  # noqa: F401

from evaluate.metrics import (
    curve_auc,
    deletion_curve,
    faithfulness_correlation,
    insertion_curve,
    perturbation_curves,
    perturbation_metrics,
)
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import Bands, GroupView, NMFComponents, TFBins

SHAPE = (4, 6)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def linear():
    """A linear model, a clip, a baseline, and the exact relevance w * (x - b) of class 1."""
    model = LinearSpec(SHAPE, seed=3).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, *SHAPE, generator=g)
    base = torch.full((1, *SHAPE), -1.0)
    view = GroupView(x, base, base, model, None, SHAPE)
    truth = (model.lin.weight[1].reshape(SHAPE) * (x[0] - base[0])).detach()
    return view, truth


def test_curve_end_points(linear):
    view, truth = linear
    with torch.no_grad():
        full, empty = view.forward(view.domain)[0, 1], view.forward(view.baseline)[0, 1]
    frac, scores = deletion_curve(view.forward_groups, truth, 1, n_steps=None, score="logit")
    assert frac[0] == 0 and frac[-1] == 1 and len(frac) == truth.numel() + 1
    assert float(scores[0]) == pytest.approx(float(full), abs=1e-5)
    assert float(scores[-1]) == pytest.approx(float(empty), abs=1e-5)
    frac, scores = insertion_curve(view.forward_groups, truth, 1, n_steps=6, score="logit")
    assert len(frac) == 7
    assert float(scores[0]) == pytest.approx(float(empty), abs=1e-5)
    assert float(scores[-1]) == pytest.approx(float(full), abs=1e-5)


def test_true_relevance_beats_random_order(linear):
    """For an additive model, removing the largest contributions first is the order with
    the lowest deletion curve and inserting them first the highest insertion curve."""
    view, truth = linear
    res = perturbation_curves(
        view.forward_groups, truth, 1, n_steps=None, n_random=8, score="logit"
    )
    assert res["deletion_auc"] < res["deletion_auc_random"]
    assert res["insertion_auc"] > res["insertion_auc_random"]
    g = torch.Generator().manual_seed(1)
    for _ in range(5):  # optimal among all orders, not just on average
        order = torch.randperm(truth.numel(), generator=g)
        other = deletion_curve(view.forward_groups, truth, 1, None, "logit", order=order)
        assert res["deletion_auc"] <= curve_auc(*other) + 1e-6
    # inverted relevance is the worst explanation
    worst = perturbation_curves(
        view.forward_groups, -truth, 1, n_steps=None, n_random=1, score="logit"
    )
    assert worst["deletion_auc"] > res["deletion_auc_random"]
    # probabilities: still lower than random
    prob = perturbation_curves(view.forward_groups, truth, 1, n_steps=12, n_random=8)
    assert prob["deletion_auc"] < prob["deletion_auc_random"]


def test_curve_auc_trapezoid():
    assert curve_auc(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 1.0, 0.0])) == 0.75


def test_faithfulness_correlation_known_answers(linear):
    view, truth = linear
    fc = faithfulness_correlation(
        view.forward_groups, truth, 1, n_runs=40, subset_size=5, score="logit"
    )
    assert fc == pytest.approx(1.0, abs=1e-6)
    anti = faithfulness_correlation(
        view.forward_groups, -truth, 1, n_runs=40, subset_size=5, score="logit"
    )
    assert anti == pytest.approx(-1.0, abs=1e-6)
    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(5))
    rand = faithfulness_correlation(
        view.forward_groups, noise, 1, n_runs=200, subset_size=0.25, score="logit"
    )
    assert abs(rand) < 0.4
    with pytest.raises(ValueError, match="subset_size"):
        faithfulness_correlation(view.forward_groups, truth, 1, subset_size=100)


def test_perturbation_metrics_over_groupings():
    """Batch metrics over bands and NMF components of a spectrogram CNN: one value per clip;
    integrated gradients beat the random order on deletion for the tiny CNN's own answer."""
    s = tiny()
    for grouping in (
        Bands(s.logmel, n_bands=4, n_divisions=4),
        NMFComponents(s.W, s.log1p, frontend=s.logmel),
    ):
        # IG from the metrics' removal baseline (silence), whose drop it decomposes
        ig = build_explainer("integrated_gradients", s.spec_model, n_steps=16, baseline="silence")
        e = ig.attribute(s.x, grouping=grouping, waves=s.waves)
        m = perturbation_metrics(
            s.spec_model,
            s.x,
            e,
            grouping,
            waves=s.waves,
            n_steps=8,
            n_random=2,
            n_runs=10,
            score="logit",
        )
        assert set(m) == {
            "deletion_auc",
            "insertion_auc",
            "deletion_auc_random",
            "insertion_auc_random",
            "faithfulness_corr",
        }
        assert all(v.shape == (2,) and torch.isfinite(v).all() for v in m.values())
        assert (m["deletion_auc"] < m["deletion_auc_random"]).all()


def test_perturbation_metrics_linear_model_on_bins():
    """On a linear model over log-mel bins, the exact relevance (IG = w * (x - b)) has the
    lowest deletion AUC and faithfulness correlation 1."""
    s = tiny()
    model = LinearSpec(tuple(s.x.shape[1:]), seed=2).eval()
    grouping = TFBins(s.logmel)
    ig = build_explainer("integrated_gradients", model, n_steps=4, baseline="silence")
    e = ig.attribute(s.x, grouping=grouping)
    m = perturbation_metrics(
        model, s.x, e, grouping, n_steps=16, n_random=3, n_runs=20, subset_size=0.05, score="logit"
    )
    assert (m["deletion_auc"] < m["deletion_auc_random"]).all()
    assert (m["insertion_auc"] > m["insertion_auc_random"]).all()
    torch.testing.assert_close(
        m["faithfulness_corr"], torch.ones(2, dtype=torch.float32), atol=1e-4, rtol=0
    )
