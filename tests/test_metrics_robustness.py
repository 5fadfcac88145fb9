"""Average sensitivity and model-parameter randomisation on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from posthoc_helpers import LinearSpec, single_thread, tiny  # noqa: F401

from evaluate.metrics import (
    average_sensitivity,
    model_parameter_randomisation,
    randomisable_layers,
)
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import Bands, Samples, TFBins

pytestmark = pytest.mark.usefixtures("single_thread")


def test_average_sensitivity_known_answers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 400, generator=g) + 3.0
    target = torch.tensor([0, 1])
    # the gradient of a linear model does not depend on x: saliency has sensitivity 0
    saliency = build_explainer("saliency", LinearSpec((400,)).eval())

    def explain(inputs, t):
        return saliency.attribute(inputs, t, grouping=Samples()).attribution

    sens = average_sensitivity(explain, x, target, radius=0.1, n_samples=3)
    torch.testing.assert_close(sens, torch.zeros(2, dtype=torch.float64))
    # e(x) = x: ||d|| / ||x|| with d ~ U(-r, r), E||d||^2 = n r^2 / 3
    r = 0.2
    sens = average_sensitivity(lambda inputs, t: inputs, x, target, radius=r, n_samples=50)
    expected = math.sqrt(x[0].numel() * r**2 / 3) / x.flatten(1).norm(dim=1)
    torch.testing.assert_close(sens, expected.double(), rtol=0.02, atol=0)


class _FlipsOnAnyNoise(torch.nn.Module):
    """Class 1 at x == 0, class 0 as soon as any input moves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.abs().flatten(1).sum(1) * 1e3, torch.full((len(x),), 1e-9)], 1)


def test_average_sensitivity_skips_changed_predictions():
    x, target = torch.zeros(2, 5), torch.tensor([1, 1])
    kept = average_sensitivity(lambda i, t: i + 1, x, target, 0.1, 4)
    assert torch.isfinite(kept).all() and (kept > 0).all()
    skipped = average_sensitivity(lambda i, t: i + 1, x, target, 0.1, 4, model=_FlipsOnAnyNoise())
    assert torch.isnan(skipped).all()


def test_randomisation_changes_model_explanations():
    """Saliency, integrated gradients and LRP explain the model: cascading randomisation
    destroys their rank correlation with the original explanation. An explanation that
    ignores the model (the input's own magnitude) keeps correlation 1 -- the check works."""
    s = tiny()
    x, target = s.x, s.spec_model(s.x).argmax(1)
    grouping = Bands(s.logmel, n_bands=4, n_divisions=8)
    layers = randomisable_layers(s.spec_model)
    assert layers[0] == "head" and layers[-1] == "input_norm"
    state = {k: v.clone() for k, v in s.spec_model.state_dict().items()}
    for method, opts in [("saliency", {}), ("integrated_gradients", {"n_steps": 8}), ("lrp", {})]:

        def explain(model, inputs, t, method=method, opts=opts):
            return (
                build_explainer(method, model, **opts)
                .attribute(inputs, t, grouping=TFBins(s.logmel))
                .attribution
            )

        sims = model_parameter_randomisation(explain, s.spec_model, x, target)
        assert list(sims) == layers
        assert all(v.shape == (2,) for v in sims.values())
        assert (sims[layers[-1]] < 0.6).all(), (method, sims[layers[-1]])

    def in_groups(model, inputs, t):
        return (
            build_explainer("occlusion", model).attribute(inputs, t, grouping=grouping).attribution
        )

    sims = model_parameter_randomisation(in_groups, s.spec_model, x, target, max_layers=3)
    assert len(sims) == 3 and all(torch.isfinite(v).all() for v in sims.values())

    sims = model_parameter_randomisation(lambda m, i, t: i, s.spec_model, x, target)
    assert all(torch.allclose(v, torch.ones(2, dtype=v.dtype)) for v in sims.values())
    # the explained model itself is left untouched
    for k, v in s.spec_model.state_dict().items():
        assert torch.equal(v, state[k])


@pytest.mark.parametrize("absolute", [True, False])
def test_randomisation_of_identical_model_is_one(absolute):
    """A layer without parameters to reset leaves nothing changed: similarity 1."""
    model = torch.nn.Sequential(torch.nn.ReLU())
    sims = model_parameter_randomisation(
        lambda m, i, t: m(i) + i, model, torch.randn(2, 5), torch.zeros(2), absolute=absolute
    )
    assert sims == {}
