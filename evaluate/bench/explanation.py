"""Explanation cost of every method of every family, beside what it must cost at least.

For each family (``evaluate.bench.models``) and batch size (1, 8, 32 clips per call):

* the intrinsic explanation (the by-design model's ``explain``) against its limit, the
  model's own forward pass on the same batch;
* every post-hoc method of the reports on the family's black box: the explainer's
  construction and its first call timed apart, then the median of repeated calls; its
  model evaluations per clip ``n_evals`` (counted by the explainer); its **limit**, those
  evaluations at the best per-row cost the device offers: ``n_evals`` x (forward pass)
  for perturbation methods, ``n_evals`` x (forward + backward pass) for gradient methods,
  and for LRP one forward + backward pass through its composite's rule hooks (the rules'
  own extra work is the method, not overhead), each pass timed in the same run on
  ``min(n_evals x batch, rows per call)`` rows; and at the largest batch, the peak memory
  of one call.

Ratios are taken within one run on one device: ``x limit`` (a method's time over its
limit), ``x intrinsic`` (over the intrinsic explanation of the same batch).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from evaluate.bench.models import FAMILIES, FamilyCase, family_case
from evaluate.bench.timing import peak_memory, sync, timeit
from evaluate.posthoc import COMPARED, GROUPED, build_explainer
from evaluate.posthoc.lrp import lrp_module, make_composite

__all__ = ["BATCHES", "bench_explanations", "bench_family"]

BATCHES = (1, 8, 32)
#: perturbation methods: only forward passes; every other method also back-propagates
FORWARD_ONLY = frozenset({"kernel_shap", "lime", "occlusion"})
#: smaller budgets for ``quick=true`` (tests): the same code path, a fraction of the time
QUICK_OPTIONS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 4},
    "gradient_shap": {"n_samples": 4},
    "kernel_shap": {"n_samples": 16},
}


class _Passes:
    """Forward and forward + backward times of a network per number of rows, cached."""

    def __init__(self, net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, device):
        self.net, self.x, self.target, self.device = net, x, target, device
        self._cache: dict[tuple[int, bool], float] = {}

    def seconds(self, rows: int, kind: str, repeat: int) -> float:
        """Median time of one pass over ``rows`` rows: ``"forward"``, ``"backward"`` (forward
        + backward to the input) or ``"lrp"`` (the same through zennit's rule hooks)."""
        key = (rows, kind)
        if key not in self._cache:
            reps = -(-rows // len(self.x))
            x = self.x.repeat(reps, *[1] * (self.x.dim() - 1))[:rows]
            t = self.target.repeat(reps)[:rows]
            rows_idx = torch.arange(rows, device=x.device)

            def forward() -> None:
                with torch.no_grad():
                    self.net(x)

            def forward_backward() -> None:
                xi = x.detach().requires_grad_(True)
                out = self.net(xi)
                torch.autograd.grad(out[rows_idx, t].sum(), xi)

            if kind == "lrp":
                self._cache[key] = self._lrp_pass(x, t, repeat)
            else:
                fn = forward_backward if kind == "backward" else forward
                self._cache[key] = timeit(fn, self.device, repeat=repeat, warmup=min(repeat, 2))
        return self._cache[key]

    def _lrp_pass(self, x: torch.Tensor, t: torch.Tensor, repeat: int) -> float:
        """Forward + backward through the LRP composite's rule hooks: what one LRP
        evaluation needs at least (zennit's z+ rule, for one, evaluates every layer again
        with its positive and negative weights in the backward pass)."""
        module = lrp_module(self.net).eval()
        composite = make_composite("epsilon_plus_flat", False, x)
        rows = torch.arange(len(x), device=x.device)
        with composite.context(module) as modified:

            def rule_pass() -> None:
                xi = x.detach().requires_grad_(True)
                out = modified(xi)
                torch.autograd.grad(out[rows, t].sum(), xi)

            return timeit(rule_pass, self.device, repeat=repeat, warmup=min(repeat, 2))


def _time_calls(fn, device, repeat: int, memory: bool) -> dict[str, Any]:
    """The first call, with ``memory`` one call measured for peak memory (untimed), then
    the median of ``repeat`` calls."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - start
    mem = peak_memory(fn, device) if memory else None
    return {"first_s": first, "peak_mb": mem, "s": timeit(fn, device, repeat=repeat, warmup=0)}


def bench_intrinsic(case: FamilyCase, batches, device, repeat: int) -> dict[str, Any]:
    """The intrinsic explanation against the model's own forward pass, per batch size."""
    return {str(b): _intrinsic_at(case, b, device, repeat, b == max(batches)) for b in batches}


def _intrinsic_at(case: FamilyCase, b: int, device, repeat: int, memory: bool) -> dict:
    inputs = case.inputs(b)
    with torch.no_grad():
        n, w = repeat * 5, min(repeat, 3)
        fwd = timeit(lambda: case.forward(inputs), device, repeat=n, warmup=w)
        exp = timeit(lambda: case.explain(inputs), device, repeat=n, warmup=w)
        bb = timeit(lambda: case.blackbox(inputs["x"]), device, repeat=n, warmup=w)
        mem = peak_memory(lambda: case.explain(inputs), device) if memory else None
    return {
        "forward_s_per_clip": fwd / b,
        "s_per_clip": exp / b,
        "blackbox_forward_s_per_clip": bb / b,
        "over_limit": exp / fwd,
        "over_blackbox_forward": exp / bb,
        **({"peak_mb": mem} if memory else {}),
    }


def bench_method(
    case: FamilyCase, name: str, batches, device, quick: bool, repeat: int, passes: _Passes
) -> dict[str, Any]:
    """One post-hoc method on the family's black box at each batch size."""
    opts = QUICK_OPTIONS.get(name, {}) if quick else {}
    grouping = case.groupings["bands" if name in GROUPED else "bins"]
    start = time.perf_counter()
    explainer = build_explainer(name, case.blackbox, frontend=case.frontend, **opts)
    construct = time.perf_counter() - start
    out: dict[str, Any] = {"construct_s": construct}
    for b in batches:
        x = case.inputs(b)["x"]
        target = _target(case, x)
        last: dict[str, Any] = {}

        def call(x=x, target=target, last=last) -> None:
            last["e"] = explainer.attribute(x, target, grouping=grouping)

        timing = _time_calls(call, device, repeat, memory=b == max(batches))
        n_evals, rows = int(last["e"].n_evals), explainer.rows_per_call(x)
        pass_rows = max(1, min(n_evals * b, rows))
        kind = "forward" if name in FORWARD_ONLY else "lrp" if name == "lrp" else "backward"
        limit = n_evals * passes.seconds(pass_rows, kind, repeat) / pass_rows
        out[str(b)] = {
            "s_per_clip": timing["s"] / b,
            "first_call_s": timing["first_s"],
            "n_evals": n_evals,
            "rows_per_call": rows,
            "limit_s_per_clip": limit,
            "over_limit": timing["s"] / b / limit,
            **({"peak_mb": timing["peak_mb"]} if b == max(batches) else {}),
        }
    return out


def _target(case: FamilyCase, x: torch.Tensor) -> torch.Tensor:
    if case.target is not None:
        return torch.full((len(x),), case.target, dtype=torch.long, device=x.device)
    with torch.no_grad():
        return case.blackbox(x).argmax(dim=1)


def bench_family(
    family: str,
    device: torch.device,
    quick: bool = False,
    methods: tuple[str, ...] = COMPARED,
    batches: tuple[int, ...] = BATCHES,
) -> dict[str, Any]:
    """Intrinsic and post-hoc explanation cost of ``family`` at each batch size."""
    case = family_case(family, device)
    x = case.inputs(max(batches))["x"]
    passes = _Passes(case.blackbox, x, _target(case, x), device)
    repeat = 1 if quick else 3
    out: dict[str, Any] = {
        "intrinsic": bench_intrinsic(case, batches, device, repeat),
        "posthoc": {},
    }
    for name in methods:
        try:
            out["posthoc"][name] = bench_method(case, name, batches, device, quick, repeat, passes)
        except Exception as err:  # report, don't hide, a method that fails
            out["posthoc"][name] = {"error": f"{type(err).__name__}: {err}"}
    _ratios(out, batches)
    return out


def _ratios(out: dict[str, Any], batches) -> None:
    """Each method's time per clip over the intrinsic explanation's, per batch size."""
    for values in out["posthoc"].values():
        for b in batches:
            if str(b) in values:
                intrinsic = out["intrinsic"][str(b)]["s_per_clip"]
                values[str(b)]["over_intrinsic"] = values[str(b)]["s_per_clip"] / intrinsic


def bench_explanations(
    device: torch.device,
    quick: bool = False,
    families: tuple[str, ...] = FAMILIES,
    methods: tuple[str, ...] = COMPARED,
) -> dict[str, Any]:
    """``bench_family`` for every family (quick: batch sizes 1 and 2)."""
    batches = (1, 2) if quick else BATCHES
    return {
        "batches": list(batches),
        "families": {f: bench_family(f, device, quick, methods, batches) for f in families},
    }
