"""Post-hoc explainers: every method x grouping on a tiny spectrogram CNN and a tiny
waveform CNN, completeness checks, exact answers on linear models, LRP conservation,
JSON export and listenable outputs."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from posthoc_helpers import N_CLASSES, LinearSpec, single_thread, tiny  # noqa: F401

from evaluate.posthoc import METHODS, build_explainer
from evaluate.posthoc.audio import listenable, masked_inversion, write_wavs
from evaluate.posthoc.dft_lrp import stft_lrp
from evaluate.posthoc.explainers import BATCHED, MAX_ROWS, rows_for_budget
from evaluate.posthoc.export import read_explanation_json, write_explanation_json
from evaluate.posthoc.groupings import (
    Bands,
    NMFComponents,
    Samples,
    TFBins,
    mel_mask_to_stft,
    nnls_activations,
)
from evaluate.posthoc.lrp import lrp_module
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.blackbox.wavecnn import WaveformCNN
from interp_models.nmf.interpreter import NMFInterpreter

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup():
    return tiny()


def _groupings(s, kind: str) -> dict:
    if kind == "spec":
        return {
            "tf_bins": TFBins(s.logmel),
            "bands": Bands(s.logmel, n_bands=4, n_divisions=4),
            "components": NMFComponents(s.W, s.log1p, frontend=s.logmel),
        }
    return {
        "samples": Samples(stft=s.stft),
        "segments": Samples(n_segments=8, stft=s.stft),
        "tf_bins": TFBins(s.stft),
        "bands": Bands(s.stft, n_bands=4, n_divisions=4),
        "components": NMFComponents(s.W, s.log1p),
    }


# Cheap settings: the point here is shapes and plumbing, not estimator quality.
FAST = {
    "integrated_gradients": {"n_steps": 4},
    "gradient_shap": {"n_samples": 4},
    "kernel_shap": {"n_samples": 12},
    "lime": {"n_samples": 12},
}
CASES = [
    (kind, g, m)
    for kind, gs in [
        ("spec", ["tf_bins", "bands", "components"]),
        ("wave", ["samples", "segments", "tf_bins", "bands", "components"]),
    ]
    for g in gs
    for m in METHODS
    if m != "lmac"  # needs a trained masker and its audio: tests/test_lmac.py
]


@pytest.mark.parametrize(("kind", "gname", "method"), CASES)
def test_every_method_and_grouping(setup, kind, gname, method):
    s = setup
    model, inputs = (s.spec_model, s.x[:1]) if kind == "spec" else (s.wave_model, s.waves[:1])
    grouping = _groupings(s, kind)[gname]
    opts = dict(FAST.get(method, {}))
    if method == "occlusion" and gname in ("samples", "tf_bins") and kind == "wave":
        opts["window"] = (256,) if gname == "samples" else (8, 8)
    e = build_explainer(method, model, **opts).attribute(
        inputs, grouping=grouping, waves=s.waves[:1]
    )
    bound = grouping.bind(inputs, s.waves[:1])
    group_shape = bound.view(model).group_shape
    assert e.attribution.shape == (1, *group_shape)
    assert torch.isfinite(e.attribution).all()
    assert e.method == method and e.grouping == grouping.name
    assert e.n_evals >= 1 and e.seconds > 0
    assert int(e.target[0]) == int(model(inputs).argmax(1)[0])
    rmap = e.maps["relevance_map"]
    assert rmap.shape == (1, len(e.maps["map_freqs_hz"]), len(e.maps["map_times_s"]))
    assert torch.isfinite(rmap).all()
    if method not in ("saliency", "grad_cam") and gname != "samples":
        # maps are mass-preserving spreads of the group attribution
        torch.testing.assert_close(
            rmap.sum(), e.attribution.sum(), rtol=1e-3, atol=1e-6 * e.attribution.abs().sum()
        )
    if method in ("saliency", "grad_cam"):
        assert (e.attribution >= -1e-6).all()


def test_batch_and_explicit_target(setup):
    s = setup
    e = build_explainer("saliency", s.spec_model, frontend=s.logmel).attribute(s.x, target=2)
    assert e.attribution.shape == (2, *s.x.shape[1:]) and e.grouping == "tf_bins"
    assert e.target.tolist() == [2, 2] and e.n_evals == 1


def test_sampling_methods_are_reproducible(setup):
    s = setup
    grouping = Bands(s.logmel, n_bands=4, n_divisions=4)
    for method in ("kernel_shap", "lime", "gradient_shap"):
        torch.manual_seed(123)
        a = build_explainer(method, s.spec_model, n_samples=8).attribute(s.x, grouping=grouping)
        state, np_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
        b = build_explainer(method, s.spec_model, n_samples=8).attribute(s.x, grouping=grouping)
        assert torch.equal(a.attribution, b.attribution)
        assert torch.equal(state, torch.random.get_rng_state())  # caller's RNG untouched
        assert np.array_equal(np_state[1], np.random.get_state()[1])  # noqa: NPY002
        c = build_explainer(method, s.spec_model, seed=1, n_samples=8).attribute(
            s.x, grouping=grouping
        )
        if method != "lime":  # Lime's lasso zeroes this untrained model's small effects
            assert not torch.equal(a.attribution, c.attribution)


def test_unknown_method_and_option_rejected(setup):
    with pytest.raises(ValueError, match="unknown method"):
        build_explainer("shapley", setup.spec_model)
    with pytest.raises(ValueError, match="n_stepz"):
        build_explainer("integrated_gradients", setup.spec_model, n_stepz=3)


def test_kernel_shap_refuses_too_many_groups(setup):
    s = setup
    with pytest.raises(ValueError, match="max_features"):
        build_explainer("kernel_shap", s.spec_model, max_features=10).attribute(
            s.x[:1], grouping=TFBins(s.logmel)
        )


@pytest.mark.parametrize(
    ("kind", "gname"),
    [
        ("spec", "tf_bins"),
        ("spec", "bands"),
        ("spec", "components"),
        ("wave", "samples"),
        ("wave", "tf_bins"),
        ("wave", "bands"),
        ("wave", "components"),
    ],
)
def test_integrated_gradients_completeness(setup, kind, gname):
    """IG attributions sum to f(clip) - f(baseline) in every grouping (Sundararajan 2017)."""
    s = setup
    model, inputs = (s.spec_model, s.x) if kind == "spec" else (s.wave_model, s.waves)
    grouping = _groupings(s, kind)[gname]
    e = build_explainer("integrated_gradients", model, n_steps=48, baseline="silence").attribute(
        inputs, grouping=grouping, waves=s.waves
    )
    for i in range(len(inputs)):
        view = grouping.bind(inputs[i : i + 1], s.waves[i : i + 1]).view(model)
        with torch.no_grad():
            ends = view.forward_groups(
                torch.stack([torch.ones(view.n_groups), torch.zeros(view.n_groups)])
            )
        t = int(e.target[i])
        delta = float(ends[0, t] - ends[1, t])
        assert float(e.attribution[i].sum()) == pytest.approx(delta, rel=2e-2, abs=1e-4)
        # all groups present is the clip itself
        with torch.no_grad():
            clip = float(model(inputs[i : i + 1])[0, t])
        assert float(ends[0, t]) == pytest.approx(clip, abs=1e-3)


def test_ig_over_stft_bins_equals_dft_lrp_of_ig_over_samples(setup):
    """Zeroing STFT bins scales a linear inverse-STFT layer, so IG over bin presence is the
    DFT-LRP of IG over samples (both with a silent baseline)."""
    s = setup
    ig = build_explainer("integrated_gradients", s.wave_model, n_steps=16)
    tf = ig.attribute(s.waves, grouping=TFBins(s.stft)).attribution.double()
    samples = ig.attribute(s.waves, grouping=Samples()).attribution
    carried = stft_lrp(s.waves.double(), samples.double(), s.stft.double())
    torch.testing.assert_close(tf, carried, rtol=1e-3, atol=1e-4 * float(carried.abs().max()))


def test_kernel_shap_exact_on_linear_model_over_bands(setup):
    """For f linear, the Shapley value of group g is sum_{i in g} w_i (x_i - b_i)."""
    s = setup
    shape = tuple(s.x.shape[1:])
    model = LinearSpec(shape).eval()
    grouping = Bands(s.logmel, n_bands=2, n_divisions=4)
    e = build_explainer("kernel_shap", model, n_samples=120).attribute(
        s.x, target=1, grouping=grouping
    )
    silence = grouping.bind(s.x[:1]).view(model).baseline
    contrib = model.lin.weight[1].reshape(shape) * (s.x - silence)
    view = grouping.bind(s.x[:1]).view(model)
    for i in range(2):
        expected = view.to_groups(contrib[i : i + 1].detach())
        torch.testing.assert_close(e.attribution[i], expected, rtol=1e-3, atol=1e-3)


def test_nmf_components_use_the_interpreter_activations(setup):
    s = setup
    W = s.W / s.W.norm(dim=0, keepdim=True)
    interp = NMFInterpreter(s.spec_model, ["block2"], W, N_CLASSES, hidden=8, branch_channels=4)
    interp.eval()
    grouping = NMFComponents(W, s.log1p, frontend=s.logmel, interpreter=interp)
    bound = grouping.bind(s.x[:1], s.waves[:1])
    with torch.no_grad():
        torch.testing.assert_close(bound.H, interp(s.x[:1]).H)
    e = build_explainer("kernel_shap", s.spec_model, n_samples=40).attribute(
        s.x[:1], grouping=grouping, waves=s.waves[:1]
    )
    assert e.attribution.shape == (1, 6) and e.labels == [f"k={k}" for k in range(6)]
    # the components grouping needs the waveform of spectrogram inputs
    with pytest.raises(ValueError, match="waveform"):
        grouping.bind(s.x[:1])


def test_nnls_activations_recover_known_h():
    g = torch.Generator().manual_seed(0)
    W = torch.rand(20, 3, generator=g)
    H = torch.rand(1, 3, 7, generator=g)
    fitted = nnls_activations(torch.einsum("fk,bkt->bft", W, H), W, n_iter=3000)
    torch.testing.assert_close(fitted, H, rtol=0.05, atol=0.02)


def test_lrp_view_and_conservation(setup):
    """The LRP view computes the model's function; with no biases, zennit's relevance sums
    to the target logit, and DFT-LRP keeps that sum on the time-frequency map."""
    s = setup
    torch.testing.assert_close(lrp_module(s.spec_model)(s.x), s.spec_model(s.x))
    torch.manual_seed(1)
    spec = SpectrogramCNN(N_CLASSES, channels=(4, 8)).eval()
    wave = WaveformCNN(N_CLASSES, channels=(4, 8), stem_channels=4, stem_kernel=16).eval()
    for model, inputs, grouping in [
        (spec, s.x, TFBins(s.logmel)),
        (wave, s.waves, Samples(stft=s.stft)),
    ]:
        torch.nn.init.zeros_(model.head.bias)
        e = build_explainer("lrp", model).attribute(inputs, grouping=grouping)
        logit = model(inputs).gather(1, e.target[:, None])[:, 0].detach()
        torch.testing.assert_close(e.attribution.flatten(1).sum(1), logit, rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(
            e.maps["relevance_map"].flatten(1).sum(1), logit, rtol=1e-3, atol=1e-6
        )


def test_json_export_round_trip(setup, tmp_path):
    s = setup
    grouping = Bands(s.logmel, n_bands=4, n_divisions=4)
    e = build_explainer("occlusion", s.spec_model).attribute(s.x, grouping=grouping)
    path = write_explanation_json(
        tmp_path / "clip1.json", e, 1, grouping, input_file="audio/clip1.wav", model="runs/x"
    )
    record = json.loads(path.read_text())
    for key in ("method", "target", "grouping", "attribution", "labels", "grid", "relevance"):
        assert key in record
    assert record["meta"]["input_file"] == "audio/clip1.wav" and record["meta"]["model"] == "runs/x"
    assert record["meta"]["grouping_spec"]["n_divisions"] == 4
    assert len(record["meta"]["grouping_spec"]["edges_hz"]) == 5
    assert len(record["labels"]) == 16 and "Hz x" in record["labels"][0]
    back, meta = read_explanation_json(path)
    torch.testing.assert_close(back.attribution[0], e.attribution[1])
    torch.testing.assert_close(back.relevance[0], e.maps["relevance_map"][1])
    assert back.method == "occlusion" and back.grouping == "bands" and back.grid == e.grid
    assert e.grid.name == "logmel"
    assert int(back.target[0]) == int(e.target[1]) and meta["input_file"] == "audio/clip1.wav"


def test_listenable_outputs_written(setup, tmp_path):
    s = setup
    cases = [
        (s.spec_model, s.x, TFBins(s.logmel)),
        (s.spec_model, s.x, NMFComponents(s.W, s.log1p, frontend=s.logmel)),
        (s.wave_model, s.waves, Samples(stft=s.stft)),
        (s.wave_model, s.waves, Bands(s.stft, n_bands=4, n_divisions=4)),
    ]
    for model, inputs, grouping in cases:
        e = build_explainer("lrp", model).attribute(inputs, grouping=grouping, waves=s.waves)
        audio = listenable(e, s.waves, grouping)
        assert audio.shape == s.waves.shape and torch.isfinite(audio).all()
        assert audio.abs().sum() > 0
        paths = write_wavs(tmp_path, e, s.waves, grouping, 8000, stems=["a", "b"])
        data, sr = sf.read(paths[0])
        assert sr == 8000 and data.shape == (s.waves.shape[1],)
    # waveform explanations can also be heard through their DFT-LRP time-frequency map
    e = build_explainer("lrp", s.wave_model).attribute(s.waves, grouping=Samples(stft=s.stft))
    tf_audio = listenable(e, s.waves, Samples(stft=s.stft), domain="tf")
    assert tf_audio.shape == s.waves.shape and torch.isfinite(tf_audio).all()


def test_full_mask_inverts_to_the_input(setup):
    s = setup
    stft = s.logmel.spectrogram
    spec = stft.stft(s.waves)
    ones_mel = torch.ones(2, s.logmel.n_mels, spec.shape[-1])
    covered = s.logmel.mel_fb.sum(0) > 0
    stft_mask = mel_mask_to_stft(ones_mel, s.logmel.mel_fb)
    torch.testing.assert_close(stft_mask[:, covered], torch.ones_like(stft_mask[:, covered]))
    back = masked_inversion(s.waves, torch.ones_like(spec.real), stft)
    torch.testing.assert_close(back, s.waves, atol=1e-5, rtol=1e-4)


def test_zennit_and_quantus_import_without_torchvision():
    """zennit is installed without its torchvision dependency; lightning must still import."""
    import lightning  # noqa: F401
    import quantus  # noqa: F401  (evaluate.posthoc registered the zennit stub first)
    import zennit.composites  # noqa: F401

    assert importlib.util.find_spec("torchvision") is None
    assert importlib.util.find_spec("torchaudio") is None


def test_waveform_cnn_shapes():
    model = WaveformCNN(5, channels=(8, 16)).eval()
    assert model.block_names == ["block1", "block2"]
    wave = torch.randn(3, 4000)
    assert model(wave).shape == (3, 5) and model.embed(wave).shape == (3, 16)
    assert model.feature_map(wave).dim() == 3
    with pytest.raises(ValueError, match="shorter"):
        model(torch.randn(1, model.min_samples - 1))
    with torch.no_grad():
        assert math.isfinite(float(model(wave).sum()))


class _RowCounter:
    """The largest number of rows the model's first layer sees in one call."""

    def __init__(self, model):
        self.calls = []
        first = next(m for m in model.modules() if not list(m.children()))
        self.handle = first.register_forward_pre_hook(
            lambda m, a: self.calls.append(int(a[0].shape[0]))
        )


@pytest.mark.parametrize("method", sorted(BATCHED))
def test_batched_methods_equal_one_clip_at_a_time(setup, method):
    """Deterministic methods explain a batch of clips as they explain each clip alone."""
    s = setup
    x = torch.cat([s.x, s.x.flip(-1)])  # 4 different clips
    for grouping in (TFBins(s.logmel), Bands(s.logmel, n_bands=4, n_divisions=4)):
        one = build_explainer(method, s.spec_model, internal_batch_size=1)
        batched = build_explainer(method, s.spec_model, internal_batch_size=64)
        a = one.attribute(x, grouping=grouping)
        b = batched.attribute(x, grouping=grouping)
        torch.testing.assert_close(b.attribution, a.attribution, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b.relevance, a.relevance, rtol=1e-4, atol=1e-6)
        assert b.n_evals == pytest.approx(a.n_evals, abs=1)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "lmac"])
def test_model_calls_never_exceed_internal_batch_size(setup, method):
    """``internal_batch_size`` bounds the rows of every model call (the memory promise),
    for the sampling methods too (GradientShap, which captum cannot bound, in pieces)."""
    s = setup
    grouping = Bands(s.logmel, n_bands=4, n_divisions=4)
    x = torch.cat([s.x, s.x.flip(-1)])
    counter = _RowCounter(s.spec_model)
    opts = {"n_samples": 20} if method in ("kernel_shap", "lime", "gradient_shap") else {}
    try:
        e = build_explainer(method, s.spec_model, internal_batch_size=8, **opts).attribute(
            x,
            grouping=grouping
            if method in ("kernel_shap", "lime", "occlusion")
            else TFBins(s.logmel),
        )
    finally:
        counter.handle.remove()
    assert e.attribution.shape[0] == 4 and torch.isfinite(e.attribution).all()
    assert max(counter.calls) <= 8, counter.calls


def test_rows_per_call_follow_the_memory_budget(setup):
    s = setup
    small = rows_for_budget(s.spec_model, s.x, budget_mb=1)
    large = rows_for_budget(s.spec_model, s.x, budget_mb=64)
    assert 1 <= small < large <= MAX_ROWS
    auto = build_explainer("saliency", s.spec_model, memory_budget_mb=1)
    assert auto.rows_per_call(s.x) == small
    with pytest.raises(ValueError, match="internal_batch_size"):
        build_explainer("saliency", s.spec_model, internal_batch_size=0).attribute(s.x)
