"""Robustness and randomisation sanity checks of an explanation method.

* Average sensitivity (Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (in)fidelity and
  sensitivity of explanations", NeurIPS 2019), as Quantus ``AvgSensitivity``: the mean over
  noisy copies ``x + d``, ``d ~ U(-r, r)`` elementwise, of ``||e(x + d) - e(x)|| / ||e(x)||``
  (Frobenius norms); noisy copies that change the model's prediction are skipped, as
  Quantus does by default. Lower is more robust.
* Model-parameter randomisation (Adebayo et al., "Sanity checks for saliency maps",
  NeurIPS 2018), as Quantus ``MPRT``: layers are re-initialised one after another from the
  output down (cascading, ``reset_parameters`` after ``torch.manual_seed(seed + 1)``, the
  same layers and seeding as Quantus), and after each the Spearman rank correlation
  between the original and the new explanation (absolute values) is recorded. A method
  that explains the *model* must lose that correlation.

Written here (not called from Quantus) because these work on explanations in any grouping
(bands, NMF components), which Quantus cannot take -- it expects attributions shaped like
the model input; on input-shaped explanations they match Quantus (checked in
``tests/test_metrics_quantus.py``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

__all__ = ["average_sensitivity", "model_parameter_randomisation", "randomisable_layers"]

ExplainFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def average_sensitivity(
    explain: ExplainFn,
    inputs: torch.Tensor,
    target: torch.Tensor,
    radius: float,
    n_samples: int = 10,
    model: nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-clip (B,) average sensitivity of ``explain(inputs, target) -> (B, ...)``.

    ``radius`` is the half-width of the uniform noise added to ``inputs`` (in the input's
    units: log-mel values, or waveform amplitude). With ``model``, noisy copies whose
    predicted class differs from the clean one are left out (NaN if all are).
    """
    generator = generator or torch.Generator().manual_seed(0)
    base = explain(inputs, target).flatten(1).double()
    denom = base.norm(dim=1)
    ratios = torch.full((len(inputs), n_samples), float("nan"), dtype=torch.float64)
    pred = None
    if model is not None:
        with torch.no_grad():
            pred = model(inputs).argmax(dim=1)
    for s in range(n_samples):
        noise = (torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype) * 2 - 1) * radius
        noisy = inputs + noise.to(inputs.device)
        attr = explain(noisy, target).flatten(1).double()
        ratio = (attr - base).norm(dim=1) / torch.where(denom > 0, denom, 1.0)
        if pred is not None:
            with torch.no_grad():
                same = model(noisy).argmax(dim=1) == pred
            ratio = torch.where(same.cpu(), ratio.cpu(), float("nan"))
        ratios[:, s] = ratio.cpu()
    with warnings.catch_warnings():  # all noisy copies skipped: NaN, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        return torch.from_numpy(np.nanmean(ratios.numpy(), axis=1))


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the modules with ``reset_parameters``, output first (Quantus' top-down)."""
    return [name for name, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]


def model_parameter_randomisation(
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor,
    seed: int = 42,
    absolute: bool = True,
    max_layers: int | None = None,
) -> dict[str, torch.Tensor]:
    """Spearman correlation (B,) between the explanation of ``model`` and of copies with
    layers randomised cumulatively from the output down; keys are layer names in order.

    ``explain(model, inputs, target) -> (B, ...)``; ``max_layers`` stops early. The model
    itself is never modified (a deep copy is randomised).
    """
    model.eval()
    original = explain(model, inputs, target).flatten(1).detach().double().cpu()
    randomised = copy.deepcopy(model).eval()
    modules = dict(randomised.named_modules())
    out: dict[str, torch.Tensor] = {}
    for name in randomisable_layers(randomised)[:max_layers]:
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG untouched
            torch.manual_seed(seed + 1)
            modules[name].reset_parameters()
        attr = explain(randomised, inputs, target).flatten(1).detach().double().cpu()
        out[name] = torch.tensor(
            [_spearman(a, b, absolute) for a, b in zip(original, attr, strict=True)]
        )
    return out


def _spearman(a: torch.Tensor, b: torch.Tensor, absolute: bool) -> float:
    if absolute:
        a, b = a.abs(), b.abs()
    if float(a.std()) == 0 or float(b.std()) == 0:
        return 0.0
    return float(spearmanr(a.numpy(), b.numpy()).statistic)
