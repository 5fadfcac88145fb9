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
  :func:`cascading_randomisation` is the same check over *blocks* (groups of layers, or
  parameters a model owns directly, each with its own re-initialisation), randomised in
  place and restored afterwards, for models with many layers or that a deep copy cannot
  carry (forward hooks bound to the original, parameters shared with other explainers).

Written here (not called from Quantus) because these work on explanations in any grouping
(bands, NMF components), which Quantus cannot take -- it expects attributions shaped like
the model input; on input-shaped explanations they match Quantus (checked in
``tests/test_metrics_quantus.py``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

__all__ = [
    "average_sensitivity",
    "cascading_randomisation",
    "model_parameter_randomisation",
    "randomisable_layers",
]

ExplainFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PredictFn = Callable[[torch.Tensor], torch.Tensor]


def average_sensitivity(
    explain: ExplainFn,
    inputs: torch.Tensor,
    target: torch.Tensor,
    radius: float | torch.Tensor,
    n_samples: int = 10,
    model: nn.Module | None = None,
    generator: torch.Generator | None = None,
    predict: PredictFn | None = None,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-clip (B,) average sensitivity of ``explain(inputs, target) -> (B, ...)``.

    ``radius`` is the half-width of the uniform noise added to ``inputs`` (in the input's
    units: log-mel values, or waveform amplitude), one for every clip or (B,) one per clip.
    With ``model`` (its class is ``model(x).argmax(1)``) or ``predict`` (``predict(x) ->
    (B,)`` labels, e.g. the sign of a single logit), noisy copies whose predicted label
    differs from the clean one are left out (NaN if all are). ``base``: the explanation of
    ``inputs`` when already computed.
    """
    generator = generator or torch.Generator().manual_seed(0)
    if predict is None and model is not None:
        predict = lambda x: model(x).argmax(dim=1)  # noqa: E731
    base = explain(inputs, target) if base is None else base
    base = base.flatten(1).double()
    denom = base.norm(dim=1)
    ratios = torch.full((len(inputs), n_samples), float("nan"), dtype=torch.float64)
    radius = torch.as_tensor(radius, dtype=inputs.dtype, device=inputs.device)
    radius = radius.reshape(-1, *[1] * (inputs.dim() - 1)) if radius.dim() else radius
    pred = None
    if predict is not None:
        with torch.no_grad():
            pred = predict(inputs)
    for s in range(n_samples):
        noise = torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype) * 2 - 1
        noisy = inputs + noise.to(inputs.device) * radius
        attr = explain(noisy, target).flatten(1).double()
        ratio = (attr - base).norm(dim=1) / torch.where(denom > 0, denom, 1.0)
        if pred is not None:
            with torch.no_grad():
                same = predict(noisy) == pred
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


def cascading_randomisation(
    explain: ExplainFn,
    model: nn.Module,
    blocks: Sequence[tuple[str, Callable[[nn.Module], None]]],
    inputs: torch.Tensor,
    target: torch.Tensor,
    seed: int = 42,
    absolute: bool = True,
    original: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018) by blocks.

    Parameters
    ----------
    explain : ``explain(inputs, target) -> (B, ...)``, an explanation of ``model`` *as it
        is when called* (it holds the model; the blocks are randomised in place).
    model : the explained model; its state (parameters and buffers) is restored afterwards,
        also when ``explain`` raises.
    blocks : ``(name, randomise)`` from the output down; ``randomise(model)`` re-initialises
        one block in place and is applied cumulatively, each under
        ``torch.manual_seed(seed + 1 + k)`` (the caller's RNG is left untouched).
    original : the explanation of the unchanged model, when already computed.

    Returns
    -------
    ``{block name: (B,) Spearman rank correlation}`` between the original explanation and the
    one after randomising that block and every block above it (absolute values by default,
    as :func:`model_parameter_randomisation`).
    """
    was_training = model.training
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if original is None:
        original = explain(inputs, target)
    original = original.flatten(1).detach().double().cpu()
    out: dict[str, torch.Tensor] = {}
    try:
        for k, (name, randomise) in enumerate(blocks):
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(seed + 1 + k)
                randomise(model)
            attr = explain(inputs, target).flatten(1).detach().double().cpu()
            out[name] = torch.tensor(
                [_spearman(a, b, absolute) for a, b in zip(original, attr, strict=True)]
            )
    finally:
        model.load_state_dict(state)
        model.train(was_training)
    return out


def _spearman(a: torch.Tensor, b: torch.Tensor, absolute: bool) -> float:
    if torch.equal(a, b):  # the same explanation (constant ones included): rank-identical
        return 1.0
    if absolute:
        a, b = a.abs(), b.abs()
    if float(a.std()) == 0 or float(b.std()) == 0:
        return 0.0
    return float(spearmanr(a.numpy(), b.numpy()).statistic)
