"""Post-hoc explainers with one call shape, captum-like.

    explainer = build_explainer("kernel_shap", model, n_samples=200)
    e = explainer.attribute(inputs, target, grouping=Bands(logmel, n_divisions=16), waves=w)

Every method returns an ``Explanation`` in the grouping's units (``e.attribution`` is
``(batch, *group_shape)``), with ``n_evals`` (model rows evaluated per clip), ``seconds``
per clip, and maps: ``relevance_map`` (batch, F', T') on the grouping's time-frequency grid
(``map_freqs_hz``, ``map_times_s``), and for methods computed on the model input,
``input_attribution`` (batch, *input shape). The same map is the explanation's
``relevance``, on ``grid`` (``"logmel"`` / ``"logfreq"`` / ``"stft"``: the front end's grid
for spectrogram models, the analysis STFT's for waveform models and NMF components).

Methods (all from captum 0.9 except LRP, from zennit, and L-MAC, a learned masker written
from its paper; it needs ``masker=`` (``evaluate.posthoc.lmac.load_lmac``) and ``waves=``):

============================  ==============================================  ==========
name                          captum / zennit                                  runs on
============================  ==============================================  ==========
``saliency``                  ``Saliency`` (abs gradient; Simonyan 2014)       view
``integrated_gradients``      ``IntegratedGradients`` (Sundararajan 2017)      view
``gradient_shap``             ``GradientShap`` (Lundberg & Lee 2017)           view
``deeplift_shap``             ``DeepLiftShap`` (Shrikumar 2017; Lundberg 2017) view
``kernel_shap``               ``KernelShap`` (Lundberg & Lee 2017)             view
``lime``                      ``Lime`` + ``SkLearnLasso`` (Ribeiro 2016)       view
``occlusion``                 ``FeatureAblation`` per group, or ``Occlusion``  view
                              with a sliding ``window`` (Zeiler & Fergus 2014)
``grad_cam``                  ``LayerGradCam`` upsampled (Selvaraju 2017)      input map
``lrp``                       zennit composites (see ``evaluate.posthoc.lrp``) input map
``lmac``                      a trained L-MAC masker (``evaluate.posthoc.lmac``) input map
============================  ==============================================  ==========

Integrated Gradients takes its start and path as options: ``baseline="silence" |
"noise_floor" | "blur" | "band_stop" | "zeros"`` and ``path="input" | "waveform"`` (with
``noise_quantile``, ``blur_sigma``, ``stop_db``; see ``evaluate.posthoc.ig_baselines``); they
apply where IG runs on the model input (bins / bands of spectrogram models, samples of
waveform models), while presence domains (NMF components, STFT groups of waveform models)
always integrate from all groups absent, which is silence. The default, chosen on validation
clips of the built-in events (``evaluate.ig_study``), is the blurred clip on the input path;
waveform inputs, which have no blur, start from silence unless told otherwise.

"view" methods run on the grouping's ``GroupView`` (see ``evaluate.posthoc.groupings``): on the
model input with a feature mask (spectrogram bins / bands, waveform samples / segments) or
on group presence ``z`` (NMF components; STFT bins / bands of waveform models). "input
map" methods produce a map on the model input that the grouping aggregates (sums per
group; for components through the mel filterbank and each component's share; for waveform
models through DFT-LRP).

Batching and memory. Deterministic methods (``BATCHED``) explain the clips of a spectrogram
model on bins or bands in batches (the result does not depend on the batch: every clip has
the same grouping, baseline and references), the others one clip at a time (their per-clip
seeding, the per-clip phase of waveform views and component views need it). Every
method's model calls are bounded to ``internal_batch_size`` rows (inputs, steps, samples,
references or coalitions), by default chosen from ``memory_budget_mb`` and the model's
activation size per row (``rows_for_budget``), so that IG, GradientShap and KernelShap run
on a GPU without running out of memory (captum #245, #538, #1350) and fill it otherwise:
KernelShap and Lime evaluate their coalitions, occlusion its groups, in batches of that
size. ``n_evals`` and ``seconds`` are per clip (a batch's time over its clips).
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from captum.attr import (
    DeepLiftShap,
    FeatureAblation,
    GradientShap,
    IntegratedGradients,
    KernelShap,
    LayerAttribution,
    LayerGradCam,
    Lime,
    Occlusion,
    Saliency,
)
from torch import nn

from evaluate.masking import noise_floor, stft_to_mel
from evaluate.posthoc.groupings import (
    REFERENCE_LEVELS_DB,
    Bands,
    BoundGrouping,
    Grouping,
    GroupView,
    Samples,
    TFBins,
)
from evaluate.posthoc.ig_baselines import WAVEFORM_STARTS
from evaluate.posthoc.ig_baselines import check_options as _check_ig
from evaluate.posthoc.ig_baselines import integrated_gradients as _ig
from evaluate.posthoc.lrp import is_waveform_input, lrp_attribute
from interp_models.explanation import Explanation, Grid

__all__ = ["METHODS", "Explainer", "build_explainer", "rows_for_budget"]

METHODS = (
    "saliency",
    "integrated_gradients",
    "gradient_shap",
    "deeplift_shap",
    "kernel_shap",
    "lime",
    "occlusion",
    "grad_cam",
    "lrp",
    "lmac",
)

#: The methods every report compares with the intrinsic explanation, in report order: the
#: gradient family, perturbation (occlusion), LRP and KernelShap (lime and grad_cam on request).
COMPARED = (
    "saliency",
    "integrated_gradients",
    "gradient_shap",
    "deeplift_shap",
    "occlusion",
    "lrp",
    "kernel_shap",
)

#: Methods that remove groups of features: reports run them over a coarse grouping
#: (bands x time divisions) rather than single bins, where they would cost one model
#: evaluation per bin.
GROUPED = frozenset({"kernel_shap", "lime", "occlusion"})

_GRADIENT = {"saliency", "integrated_gradients", "gradient_shap", "deeplift_shap"}

#: Deterministic methods, explained in batches of clips (see the module docstring).
BATCHED = frozenset(
    {"saliency", "integrated_gradients", "deeplift_shap", "occlusion", "lrp", "grad_cam"}
)

#: Options every method takes: rows per model call (``"auto"``: from the memory budget) and
#: the budget in MiB (None: half the free memory of a GPU, ``CPU_BUDGET_MB`` on a CPU).
COMMON: dict[str, Any] = {"internal_batch_size": "auto", "memory_budget_mb": None}
CPU_BUDGET_MB = 1024
MAX_ROWS = 1024

#: Methods whose maps are unsigned intensities, not relevances of the form x_n * g_n (see
#: from_input_map).
INTENSITY = frozenset({"saliency", "grad_cam"})

_DEFAULTS: dict[str, dict[str, Any]] = {
    "saliency": {},
    # baseline / path: see evaluate.posthoc.ig_baselines. The default (blur, input; silence
    # on waveform inputs) was chosen by evaluate.ig_study.RULE on 20 validation clips of the
    # built-in events (README, "Integrated Gradients baselines for audio"); until then silence
    "integrated_gradients": {
        "n_steps": 32,
        "method": "gausslegendre",
        "baseline": "blur",
        "path": "input",
        "noise_quantile": 0.2,
        "blur_sigma": None,
        "stop_db": 40.0,
    },
    "gradient_shap": {"n_samples": 32, "stdevs": 0.0},
    "deeplift_shap": {},
    # perturbations_per_eval None: as many coalitions per model call as internal_batch_size
    "kernel_shap": {"n_samples": 200, "perturbations_per_eval": None, "max_features": 4096},
    "lime": {"n_samples": 200, "perturbations_per_eval": None, "alpha": 0.01, "max_features": 4096},
    "occlusion": {
        "window": None,
        "strides": None,
        "perturbations_per_eval": None,
        "max_features": 4096,
    },
    "grad_cam": {"layer": None},
    "lrp": {"composite": None, "epsilon": 1e-6},
    "lmac": {"masker": None},
}


class _Counter:
    """Counts model rows evaluated: a forward pre-hook on the model's last leaf module
    (the output layer of the models here), which every forward reaches once, whether the
    model is called directly, through captum's DeepLift hooks or through the LRP view."""

    def __init__(self, model: nn.Module):
        self.rows = 0
        leaves = [m for m in model.modules() if not list(m.children())]
        self._handle = (leaves[-1] if leaves else model).register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        if args and torch.is_tensor(args[0]):
            self.rows += int(args[0].shape[0])

    def close(self) -> None:
        self._handle.remove()


class Explainer:
    """One post-hoc method bound to a model; use ``build_explainer``.

    Parameters
    ----------
    name : one of ``METHODS``.
    model : the classifier (``SpectrogramCNN``, ``WaveformCNN`` or any module mapping
        ``(batch, F, T)`` or ``(batch, N)`` to outputs); put in eval mode.
    frontend : the model's front end; sets the default grouping of spectrogram models
        (``TFBins(frontend)``).
    seed : sampling methods (GradientShap, KernelShap, Lime) draw clip ``i`` with torch's and
        numpy's global RNGs seeded with ``seed + i``, both restored afterwards: results are
        reproducible and the caller's RNG state is left untouched.
    opts : method options, see ``_DEFAULTS`` (e.g. ``n_samples``, ``n_steps``, ``window``,
        ``layer``, ``composite``); unknown keys are rejected.
    """

    def __init__(
        self, name: str, model: nn.Module, frontend: nn.Module | None = None, seed: int = 0, **opts
    ):
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; valid: {list(METHODS)}")
        valid = {**COMMON, **_DEFAULTS[name]}
        unknown = sorted(set(opts) - set(valid))
        if unknown:
            raise ValueError(f"{name}: unknown option(s) {unknown}; valid: {sorted(valid)}")
        self.name, self.model, self.frontend, self.seed = name, model, frontend, seed
        self.opts = {**valid, **opts}
        self._given = frozenset(opts)
        if name == "integrated_gradients":
            o = self.opts
            if "baseline" not in opts and o["path"] == "waveform" and o["baseline"] != "silence":
                o["baseline"] = "silence"  # the default start (blur) is no waveform
            _check_ig(o)
        size = self.opts["internal_batch_size"]
        if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{name}: internal_batch_size must be 'auto' or >= 1, got {size!r}")
        self._rows: int | None = None

    def default_grouping(self, inputs: torch.Tensor) -> Grouping:
        if is_waveform_input(self.model, inputs):
            return Samples()
        if self.frontend is None:
            raise ValueError("pass grouping=... (or build_explainer(..., frontend=<front end>))")
        return TFBins(self.frontend)

    def rows_per_call(self, inputs: torch.Tensor) -> int:
        """Rows per model call: ``internal_batch_size``, or (``"auto"``) as many as
        ``memory_budget_mb`` holds (``rows_for_budget``, measured once per explainer)."""
        size = self.opts["internal_batch_size"]
        if size != "auto":
            return size
        if self._rows is None:
            self._rows = rows_for_budget(self.model, inputs[:1], self.opts["memory_budget_mb"])
        return self._rows

    def attribute(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor | int | None = None,
        grouping: Grouping | None = None,
        waves: torch.Tensor | None = None,
    ) -> Explanation:
        """Explain ``target`` (default: the model's prediction) for each clip of ``inputs``.

        Parameters
        ----------
        inputs : (B, F, T) spectrograms, (B, N) waveforms or (B, M, N) the waveforms of M
            microphones (a model with ``in_channels`` = M), the model's input.
        target : (B,) or an int for every clip.
        grouping : the units of the attribution (default: bins / samples).
        waves : (B, N) waveforms of spectrogram inputs; needed by ``NMFComponents``.
        """
        self.model.eval()
        grouping = grouping or self.default_grouping(inputs)
        if inputs.dim() not in (2, 3):
            raise ValueError(
                f"inputs must be (B, F, T), (B, N) or (B, M, N), got {tuple(inputs.shape)}"
            )
        target = self._targets(inputs, target)
        rows = self.rows_per_call(inputs)
        step = self._clips_per_call(inputs, grouping, rows)
        results: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
        total_rows, total_time, bound = 0, 0.0, None
        for lo in range(0, len(inputs), step):
            x, t = inputs[lo : lo + step], target[lo : lo + step]
            wave = None if waves is None else waves[lo : lo + step].to(inputs.device)
            counter = _Counter(self.model)
            start = time.perf_counter()
            try:
                if step > 1:
                    bound = grouping.bind(x[:1])
                    results += self._batch(bound, x, t, rows, lo, wave)
                else:
                    with _seeded(self.seed + lo):
                        bound = grouping.bind(x, wave)
                        results.append(self._clip(bound, x, int(t[0]), wave, rows, lo))
            finally:
                counter.close()
            total_time += time.perf_counter() - start
            total_rows += counter.rows
        return self._explanation(results, bound, grouping, target, total_rows, total_time)

    def _targets(self, inputs: torch.Tensor, target: torch.Tensor | int | None) -> torch.Tensor:
        if target is None:
            with torch.no_grad():
                return self.model(inputs).argmax(dim=1)
        if isinstance(target, int):
            return torch.full((len(inputs),), target, dtype=torch.long, device=inputs.device)
        return torch.as_tensor(target, device=inputs.device).long()

    def _clips_per_call(self, inputs: torch.Tensor, grouping: Grouping, rows: int) -> int:
        """Clips explained per call: 1, or for ``BATCHED`` methods on a spectrogram model's
        bins or bands, as many as ``rows`` model rows allow."""
        batchable = (
            self.name in BATCHED
            and inputs.dim() == 3
            and not is_waveform_input(self.model, inputs)
            and isinstance(grouping, (TFBins, Bands))
            and not (self.name == "lrp" and self.opts["composite"] == "epsilon_gamma_box")
            and not (self.name == "occlusion" and self.opts["window"] is not None)
        )
        if not batchable:
            return 1
        # DeepLiftShap: the input and each reference (silence, the noise levels) per clip
        per_clip = 2 * (1 + len(REFERENCE_LEVELS_DB)) if self.name == "deeplift_shap" else 1
        return max(1, min(len(inputs), rows // per_clip))

    def _explanation(self, results, bound, grouping, target, total_rows, total_time):
        n = max(len(results), 1)
        maps: dict[str, Any] = {}
        map_grid = "stft"
        kind = "intensity" if self.name in INTENSITY else "relevance"
        for attr, extra in results:
            grid = bound.to_map(attr, kind)
            if grid is not None:  # None: Samples without an STFT, no time-frequency map
                extra["relevance_map"] = grid[0]
                maps["map_freqs_hz"], maps["map_times_s"] = grid[1], grid[2]
                map_grid = bound.grid_name
            for key, value in extra.items():
                maps.setdefault(key, []).append(value.detach())
        stacked = {k: torch.stack(v) if isinstance(v, list) else v for k, v in maps.items()}
        relevance = stacked.get("relevance_map")
        return Explanation(
            attribution=torch.stack([attr.detach() for attr, _ in results]),
            grouping=grouping.name,
            target=target,
            method=self.name,
            n_evals=round(total_rows / n),
            seconds=total_time / n,
            maps=stacked,
            labels=None if bound is None else bound.labels(),
            relevance=relevance,
            grid=None
            if relevance is None
            else Grid.time_frequency(map_grid, stacked["map_freqs_hz"], stacked["map_times_s"]),
        )

    # ------------------------------------------------------------------ per batch / clip

    def _batch(
        self,
        bound: BoundGrouping,
        x: torch.Tensor,
        target: torch.Tensor,
        rows: int,
        offset: int = 0,
        wave: torch.Tensor | None = None,
    ):
        """``BATCHED`` methods on clips ``x`` (n, F, T) sharing ``bound``'s grouping; clip
        ``i`` is clip ``offset + i`` of the call (its seed)."""
        if self.name in ("grad_cam", "lrp"):
            kind = "intensity" if self.name == "grad_cam" else "relevance"
            if self.name == "grad_cam":
                maps = self._grad_cam(x, target)
            else:
                o = self.opts
                maps = lrp_attribute(self.model, x, target, o["composite"], o["epsilon"])
            return [(bound.from_input_map(m[None], kind), {"input_attribution": m}) for m in maps]
        one = bound.view(self.model)
        attr = self._on_view(replace(one, domain=x), target, rows, bound, offset, wave)
        shared = self.name == "occlusion"
        return [
            (
                one.shared_to_groups(a[None]) if shared else one.to_groups(a[None]),
                {"input_attribution": a},
            )
            for a in attr
        ]

    def _clip(
        self, bound: BoundGrouping, x: torch.Tensor, target: int, wave, rows: int, offset: int = 0
    ):
        if self.name == "lmac":
            kept = self._lmac(x, target, wave)
            return bound.from_input_map(kept, "relevance"), {"input_attribution": kept[0]}
        if self.name == "grad_cam":
            cam = self._grad_cam(x, target)
            return bound.from_input_map(cam, "intensity"), {"input_attribution": cam[0]}
        if self.name == "lrp":
            t = torch.tensor([target], device=x.device)
            rel = lrp_attribute(self.model, x, t, self.opts["composite"], self.opts["epsilon"])
            return bound.from_input_map(rel, "relevance"), {"input_attribution": rel[0]}
        view = bound.view(self.model)
        attr = self._on_view(view, target, rows, bound, offset, wave)
        if self.name in ("kernel_shap", "lime"):  # return_input_shape=False: (1, n_groups)
            return attr.reshape(view.group_shape), {}
        extra = {"input_attribution": attr[0]} if view.forward is self.model else {}
        if self.name == "occlusion" and self.opts["window"] is None:
            return view.shared_to_groups(attr), extra
        return view.to_groups(attr), extra

    def _check_size(self, view: GroupView) -> None:
        if view.n_groups > self.opts["max_features"]:
            raise ValueError(
                f"{self.name} over {view.n_groups} groups exceeds max_features="
                f"{self.opts['max_features']}: use a coarser grouping (Bands, segments) "
                "or raise max_features"
            )

    def _on_view(
        self,
        view: GroupView,
        target: int | torch.Tensor,
        rows: int,
        bound: BoundGrouping | None = None,
        offset: int = 0,
        wave: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """captum's method on ``view`` (one clip, or a batch of clips for ``BATCHED``), with
        at most about ``rows`` model rows per call."""
        o, f = self.opts, view.forward
        x = view.domain.detach().clone().requires_grad_(self.name in _GRADIENT)
        per_eval = o.get("perturbations_per_eval") or max(1, rows // len(x))
        if self.name == "saliency":
            return Saliency(f).attribute(x, target=target, abs=True)
        if self.name == "integrated_gradients":
            return self._integrated_gradients(view, x, target, rows, bound, offset, wave)
        if self.name == "gradient_shap":
            return _gradient_shap(f, x, view.references, target, o, rows)
        if self.name == "deeplift_shap":
            with warnings.catch_warnings():  # captum announces its temporary ReLU hooks
                warnings.filterwarnings("ignore", "Setting forward, backward hooks")
                return DeepLiftShap(f).attribute(x, baselines=view.references, target=target)
        if self.name in ("kernel_shap", "lime"):
            self._check_size(view)
            method = (
                KernelShap(f)
                if self.name == "kernel_shap"
                else Lime(f, interpretable_model=_lasso(o["alpha"]))
            )
            return method.attribute(
                x,
                baselines=view.baseline,
                target=target,
                feature_mask=view.feature_mask,
                n_samples=o["n_samples"],
                perturbations_per_eval=min(per_eval, o["n_samples"]),
                return_input_shape=False,
            )
        if self.name == "occlusion":
            if o["window"] is not None:
                if view.feature_mask is not None:
                    raise ValueError("occlusion window= works on bins / samples groupings only")
                window = tuple(o["window"])
                return Occlusion(f).attribute(
                    x,
                    sliding_window_shapes=window,
                    strides=tuple(o["strides"] or window),
                    baselines=view.baseline,
                    target=target,
                    perturbations_per_eval=per_eval,
                )
            self._check_size(view)
            return FeatureAblation(f).attribute(
                x,
                baselines=view.baseline,
                target=target,
                feature_mask=view.feature_mask,
                perturbations_per_eval=min(per_eval, view.n_groups),
            )
        raise AssertionError(self.name)

    def _integrated_gradients(self, view, x, target, rows, bound, offset, wave) -> torch.Tensor:
        """IG from ``baseline`` along ``path`` (``evaluate.posthoc.ig_baselines``) where it
        runs on the model input; on a presence domain (NMF components, STFT groups of
        waveform models) from all groups absent, which is silence."""
        o = self.opts
        if view.forward is not self.model:
            if "baseline" in self._given and o["baseline"] != "silence":
                raise ValueError(
                    f"integrated_gradients: baseline={o['baseline']!r} needs a grouping on the "
                    "model input (TFBins / Bands of a spectrogram model, Samples); this one "
                    "removes groups to silence"
                )
            return IntegratedGradients(view.forward).attribute(
                x,
                baselines=view.baseline,
                target=target,
                n_steps=o["n_steps"],
                method=o["method"],
                internal_batch_size=max(rows, len(x)),
            )
        if x.dim() == 2 and "baseline" not in self._given and o["baseline"] not in WAVEFORM_STARTS:
            o = {**o, "baseline": "silence"}  # the default start is a spectrogram's
        if x.dim() == 3 and isinstance(bound.grouping, Samples):
            return self._multichannel_ig(x, target, rows)
        grouping = bound.grouping
        frontend = getattr(grouping, "frontend", None)
        frontend = getattr(grouping, "stft", None) if frontend is None else frontend
        seeds = [self.seed + offset + i for i in range(len(x))]
        return _ig(self.model, frontend, x, target, o, rows, seeds, wave)

    def _multichannel_ig(self, x: torch.Tensor, target, rows: int) -> torch.Tensor:
        """IG of a microphone-array model (B, M, N) on its samples, from silence (zeros; the
        default) or the clip attenuated by ``stop_db`` (``band_stop``: every band stopped);
        the other starts need a front end, which such a model has not."""
        o = self.opts
        kind = o["baseline"] if "baseline" in self._given else "silence"
        if kind not in ("silence", "zeros", "band_stop") or o["path"] != "input":
            raise ValueError(
                f"integrated_gradients on multichannel waveforms: baseline={kind!r}, "
                f"path={o['path']!r} is not available; use baseline='silence' or 'band_stop'"
            )
        gain = 10.0 ** (-o["stop_db"] / 20.0) if kind == "band_stop" else 0.0
        return IntegratedGradients(self.model).attribute(
            x,
            baselines=gain * x.detach(),
            target=target,
            n_steps=o["n_steps"],
            method=o["method"],
            internal_batch_size=max(rows, len(x)),
        )

    def _lmac(self, x: torch.Tensor, target: int, wave: torch.Tensor | None) -> torch.Tensor:
        """What L-MAC's mask keeps of ``log1p|X|``, on the log-mel grid (1, n_mels, T)."""
        masker = self.opts["masker"]
        if masker is None or wave is None:
            raise ValueError("lmac needs masker=<trained LMAC> and waves=<the clips' audio>")
        if self.frontend is None or not hasattr(self.frontend, "mel_fb"):
            raise ValueError("lmac needs the classifier's log-mel front end (frontend=)")
        with torch.no_grad():
            mask, logits = masker(x)
        if int(logits.argmax(dim=1)[0]) != target:
            raise ValueError("lmac explains the classifier's prediction only; got another target")
        stft = self.frontend.spectrogram.stft(wave.reshape(1, -1).to(x))
        spec = torch.log1p(stft.abs())[..., : mask.shape[-1]]
        if masker.baseline == "floor":  # what the mask keeps above the clip's noise floor
            spec = (spec - noise_floor(spec)).clamp(min=0)
        return stft_to_mel(mask * spec, self.frontend.mel_fb)

    def _grad_cam(self, x: torch.Tensor, target: int) -> torch.Tensor:
        layer_name = self.opts["layer"] or getattr(self.model, "block_names", [None])[-1]
        if layer_name is None:
            raise ValueError("grad_cam needs layer=<module name> for this model")
        layer = self.model.get_submodule(layer_name)
        cam = LayerGradCam(self.model, layer).attribute(x, target=target, relu_attributions=True)
        if not is_waveform_input(self.model, x):  # (1, 1, F', T') -> input grid
            return LayerAttribution.interpolate(cam, tuple(x.shape[1:]), "bilinear")[:, 0]
        cam = LayerAttribution.interpolate(cam, x.shape[-1], "linear")[:, 0]
        # a microphone array's channels share one time axis: the same intensity on each
        return cam if x.dim() == 2 else cam[:, None].expand_as(x).contiguous()


@contextmanager
def _seeded(seed: int):
    """Seed torch's and numpy's global RNGs (captum draws from both) and restore them after."""
    np_state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002  (captum's GradientShap uses np.random)
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002


def _gradient_shap(f, x, references, target, opts: dict[str, Any], rows: int) -> torch.Tensor:
    """captum's ``GradientShap`` in calls of at most ``rows`` samples, averaged by their
    sizes (its expected gradients are a mean over samples; captum has no internal batch
    size for it). One call, as captum alone, when ``n_samples <= rows``."""
    n, stdevs = opts["n_samples"], opts["stdevs"]
    sizes = [min(rows, n - i) for i in range(0, n, max(rows, 1))]
    total = None
    for k in sizes:
        part = GradientShap(f).attribute(
            x, baselines=references, target=target, n_samples=k, stdevs=stdevs
        )
        total = part * (k / n) if total is None else total + part * (k / n)
    return total


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the input and of every leaf module's output for input ``x`` (forward hooks)."""
    sizes = [x.numel() * x.element_size()]

    def hook(module, args, out):
        if torch.is_tensor(out):
            sizes.append(out.numel() * out.element_size())

    leaves = [m for m in model.modules() if not list(m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(sizes)


def rows_for_budget(model: nn.Module, x: torch.Tensor, budget_mb: float | None = None) -> int:
    """Model rows per call that fit ``budget_mb`` MiB (default: half the free memory of a
    GPU, ``CPU_BUDGET_MB`` on a CPU), between 1 and ``MAX_ROWS``.

    One row costs its activations (``activation_bytes`` of one clip ``x[:1]``) three times:
    kept for the backward pass, their gradients, and the method's copies of the inputs.
    """
    if budget_mb is None:
        if x.device.type == "cuda":
            budget_mb = torch.cuda.mem_get_info(x.device)[0] / 2 / 2**20
        else:
            budget_mb = CPU_BUDGET_MB
    per_row = 3 * activation_bytes(model, x[:1])
    return int(max(1, min(MAX_ROWS, budget_mb * 2**20 // per_row)))


def _lasso(alpha: float):
    from captum._utils.models.linear_model import SkLearnLasso

    return SkLearnLasso(alpha=alpha)


def build_explainer(
    name: str, model: nn.Module, frontend: nn.Module | None = None, seed: int = 0, **opts
) -> Explainer:
    """An ``Explainer`` for method ``name`` (see ``METHODS``) on ``model``."""
    return Explainer(name, model, frontend=frontend, seed=seed, **opts)
