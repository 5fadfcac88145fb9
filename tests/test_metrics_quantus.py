"""Our grouping-aware metrics against Quantus 0.6 on input-shaped explanations, where both
apply: PixelFlipping (deletion curve), FaithfulnessCorrelation, AvgSensitivity and MPRT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from posthoc_helpers import LinearSpec, single_thread  # noqa: F401

import evaluate.metrics as M  # registers the zennit stub Quantus needs
from evaluate.posthoc.groupings import GroupView
from interp_models.blackbox.cnn import SpectrogramCNN

quantus = pytest.importorskip("quantus")

pytestmark = pytest.mark.usefixtures("single_thread")

F_, T_ = 4, 6  # Quantus reads (B, C, T): dim 1 as channels, T_ must be even (2 per step)
BASE = -1.0


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(0)
    model = LinearSpec((F_, T_)).eval()
    x = torch.randn(2, F_, T_)
    y = model(x).argmax(1)
    a = (model.lin.weight[y].reshape(2, F_, T_) * (x - BASE)).detach()
    return model, x, y, a


def _view(model, x, i):
    base = torch.full((1, F_, T_), BASE)
    return GroupView(x[i : i + 1], base, base, model, None, (F_, T_))


def test_deletion_curve_matches_pixel_flipping(linear):
    model, x, y, a = linear
    pf = quantus.PixelFlipping(
        features_in_step=2, perturb_baseline=BASE, normalise=False, disable_warnings=True
    )
    q = np.asarray(
        pf(
            model=model,
            x_batch=x.numpy(),
            y_batch=y.numpy(),
            a_batch=a.numpy(),
            channel_first=True,
            softmax=True,
            device="cpu",
        )
    )
    for i in range(2):
        _, scores = M.deletion_curve(_view(model, x, i).forward_groups, a[i], int(y[i]), 12)
        np.testing.assert_allclose(scores[1:].numpy(), q[i], atol=1e-6)


def test_faithfulness_correlation_matches(linear):
    model, x, y, a = linear
    fc = quantus.FaithfulnessCorrelation(
        nr_runs=40,
        subset_size=5,
        perturb_baseline=BASE,
        disable_warnings=True,
        return_aggregate=False,
    )
    np.random.seed(0)  # noqa: NPY002  (Quantus draws from numpy's global RNG)
    q = fc(
        model=model,
        x_batch=x.numpy(),
        y_batch=y.numpy(),
        a_batch=a.numpy(),
        channel_first=True,
        softmax=False,
        device="cpu",
    )
    for i in range(2):
        ours = M.faithfulness_correlation(
            _view(model, x, i).forward_groups, a[i], int(y[i]), 40, 5, score="logit"
        )
        assert ours == pytest.approx(q[i], abs=1e-6) and ours == pytest.approx(1.0, abs=1e-6)


def _grad_x_input(model, inputs, targets, **kwargs):
    inputs, t = torch.as_tensor(inputs), torch.as_tensor(targets)
    return (model.lin.weight[t].reshape(-1, F_, T_) * inputs).detach().numpy()


def test_average_sensitivity_matches(linear):
    """Both are Monte-Carlo estimates of the same expectation (different noise draws)."""
    model, x, y, _ = linear
    np.random.seed(0)  # noqa: NPY002  (Quantus draws from numpy's global RNG)
    q = quantus.AvgSensitivity(nr_samples=200, lower_bound=0.1, disable_warnings=True)(
        model=model,
        x_batch=x.numpy(),
        y_batch=y.numpy(),
        a_batch=None,
        explain_func=_grad_x_input,
        channel_first=True,
        device="cpu",
    )
    ours = M.average_sensitivity(
        lambda i, t: torch.from_numpy(_grad_x_input(model, i, t)), x, y, 0.1, 200, model=model
    )
    np.testing.assert_allclose(ours.numpy(), q, rtol=0.05)


def test_model_parameter_randomisation_matches_mprt():
    torch.manual_seed(0)
    model = SpectrogramCNN(3, channels=(4, 8)).eval()
    x = torch.randn(2, 16, 20)
    y = model(x).argmax(1)

    def saliency(model, inputs, targets, **kwargs):
        inputs = torch.as_tensor(inputs).float().requires_grad_(True)
        return Saliency(model).attribute(inputs, target=torch.as_tensor(targets)).detach().numpy()

    q = quantus.MPRT(disable_warnings=True)(
        model=model,
        x_batch=x.numpy(),
        y_batch=y.numpy(),
        a_batch=None,
        explain_func=saliency,
        channel_first=True,
        device="cpu",
    )
    ours = M.model_parameter_randomisation(
        lambda m, i, t: torch.from_numpy(saliency(m, i, t)), model, x, y
    )
    assert list(ours) == [k for k in q if k != "original"]
    for layer, values in ours.items():
        np.testing.assert_allclose(values.numpy(), q[layer], atol=1e-6)
