"""One intrinsic contract and one explanation.json schema: every by-design model's
``explain(inputs, *, target=None, **options)``, the relevance map on a declared grid, and
a write -> read round trip for each family and for a post-hoc method."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from posthoc_helpers import single_thread, tiny  # noqa: F401

from evaluate.posthoc import build_explainer
from evaluate.posthoc.export import write_explanation_json as write_posthoc
from evaluate.posthoc.groupings import Bands
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.data.synth_pcg import SynthPCGConfig, synthesize_recording
from interp_models.emotion.models import MidLevelEmotionModel
from interp_models.explanation import (
    SCHEMA,
    VERSION,
    Explanation,
    Grid,
    read_explanation_json,
    spectrogram_grid,
    write_explanation_json,
)
from interp_models.heart.model import SegmentationAwareNet
from interp_models.heart.states import beat_index, segments_from_states
from interp_models.nmf.interpreter import NMFInterpreter

pytestmark = pytest.mark.usefixtures("single_thread")


def _strict_load(path) -> dict:
    """``json.loads`` that refuses NaN / Infinity: the file must be plain JSON."""

    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _round_trip(e: Explanation, i: int, path, **meta) -> tuple[Explanation, dict]:
    write_explanation_json(path, e, i, **meta)
    record = _strict_load(path)
    assert record["schema"] == SCHEMA and record["version"] == VERSION
    assert set(record) == {
        "schema",
        "version",
        "method",
        "grouping",
        "target",
        "n_evals",
        "seconds",
        "shape",
        "dtype",
        "attribution",
        "labels",
        "grid",
        "relevance",
        "meta",
    }
    back, back_meta = read_explanation_json(path)
    assert len(back) == 1
    assert torch.equal(back.attribution[0], e.attribution[i].detach().cpu())
    assert back.attribution.dtype == e.attribution.dtype
    assert back.method == e.method and back.grouping == e.grouping
    assert int(back.target[0]) == int(e.target[i]) and back.labels == e.labels
    assert back.n_evals == e.n_evals and back.seconds == pytest.approx(e.seconds)
    assert back.grid == e.grid
    if e.relevance is None:
        assert back.relevance is None and record["relevance"] is None
    else:
        assert torch.equal(back.relevance[0], e.relevance[i].detach().cpu())
    return back, back_meta


# ----------------------------------------------------------------------------- NMF


def _nmf() -> NMFInterpreter:
    torch.manual_seed(0)
    return NMFInterpreter(
        SpectrogramCNN(3, channels=(4, 8)), ["block1", "block2"], torch.rand(12, 4), 3
    ).eval()


def test_nmf_relevance_on_the_stft_grid_and_round_trip(tmp_path):
    model = _nmf()
    x, spec = torch.randn(2, 16, 10), torch.rand(2, 12, 10)
    e = model.explain(x, spec=spec)
    assert e.grid.name == "stft" and [a.unit for a in e.grid.axes] == ["Hz", "s"]
    torch.testing.assert_close(e.relevance, e.maps["mask"] * spec)
    # without spec, the model's own reconstruction W H stands in for log1p|X|
    own = model.explain(x)
    torch.testing.assert_close(own.relevance, own.maps["mask"] * model.reconstruct(own.maps["H"]))
    # target is keyword-only and means the classifier's output index
    fixed = model.explain(x, target=1)
    assert fixed.target.tolist() == [1, 1]
    with pytest.raises(TypeError):
        model.explain(x, torch.tensor([1, 1]))  # target is keyword-only
    with pytest.raises(ValueError, match="spec"):
        model.explain(x, spec=spec[:, :5])
    # a grid with axis values (what evaluate.nmf.scoring passes)
    freqs, times = torch.linspace(0, 4000, 12), torch.arange(10) * 0.032
    e = model.explain(x, spec=spec, grid=Grid.time_frequency("stft", freqs, times))
    back, meta = _round_trip(e, 1, tmp_path / "nmf.json", input_file="a.wav", relevant=[0, 2])
    assert meta == {"input_file": "a.wav", "relevant": [0, 2]}
    assert torch.equal(back.grid.axes[0].values, freqs.double())


def test_spectrogram_grid_names_the_front_end():
    s = tiny()
    g = spectrogram_grid(s.logmel, 5)
    assert g.name == "logmel" and len(g.axes[0].values) == 16 and len(g.axes[1].values) == 5
    assert spectrogram_grid(s.log1p, 5).name == "stft"


# ----------------------------------------------------------------------------- heart


@pytest.fixture(scope="module")
def heart():
    cfg = SynthPCGConfig(num_recordings=2, duration_s=(4.0, 4.0))
    rec = synthesize_recording(cfg, 0)
    wave = rec.mix[::2].astype(np.float32)  # 2 kHz -> 1 kHz
    states = segments_from_states(rec.states, 2000).to_frames(len(wave) // 20)
    torch.manual_seed(0)
    net = SegmentationAwareNet(kernel_size=3).eval()
    net.set_reference(torch.tensor([0.3, -0.2, 0.1, 0.5]))
    return net, torch.from_numpy(wave)[None], torch.from_numpy(states.astype(np.int64))[None]


def test_heart_target_is_the_one_logit_and_negate_explains_normal(heart):
    net, wave, states = heart
    logit = net(wave, states)[:, 0]
    abnormal = net.explain(wave, states=states, target=0, negate=False)
    normal = net.explain(wave, states=states, negate=True)
    assert abnormal.target.tolist() == normal.target.tolist() == [0]
    torch.testing.assert_close(abnormal.attribution.sum(1) + abnormal.maps["bias"], logit)
    torch.testing.assert_close(normal.attribution, -abnormal.attribution)
    torch.testing.assert_close(normal.relevance, -abnormal.relevance)
    assert normal.maps["negated"].tolist() == [True]
    with pytest.raises(ValueError, match="target"):
        net.explain(wave, states=states, target=1)
    with pytest.raises(TypeError):
        net.explain(wave, states)  # states is keyword-only


def test_heart_relevance_is_the_contributions_spread_over_frames(heart):
    from interp_models.heart.model import spread_over_frames

    net, wave, states = heart
    e = net.explain(wave, states=states, target=0, negate=False)
    beats = e.maps["beats"][0].numpy()
    expected = spread_over_frames(torch.from_numpy(beats)[None], states[:1])[0].numpy()
    np.testing.assert_allclose(e.relevance[0].numpy(), expected, rtol=1e-5, atol=1e-7)
    assert e.grid == Grid.frames((torch.arange(states.shape[1], dtype=torch.float64) + 0.5) / 50)
    # summing the frames of each (beat, state) span gives the per-beat contributions back
    b = beat_index(states[0].numpy())
    for k, s in [(1, 2), (2, 4)]:
        span = (b == k) & (states[0].numpy() == s)
        assert e.relevance[0].numpy()[span].sum() == pytest.approx(beats[k, s - 1], abs=1e-6)


def test_heart_round_trip(heart, tmp_path):
    net, wave, states = heart
    e = net.explain(wave, states=states, negate=True)
    back, meta = _round_trip(
        e, 0, tmp_path / "heart.json", explained="normal", beats=e.maps["beats"][0]
    )
    assert meta["explained"] == "normal"
    assert np.allclose(meta["beats"], e.maps["beats"][0].numpy())
    assert back.grid.name == "frames" and back.grid.axes[0].unit == "s"


# ----------------------------------------------------------------------------- emotion


def test_emotion_has_no_grid_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = MidLevelEmotionModel(channels=(4, 8)).eval()
    x = torch.randn(3, 24, 30)
    e = model.explain(x, target=torch.tensor([0, 5, 7]))
    assert e.relevance is None and e.grid is None  # qualities have no map of their own
    back, meta = _round_trip(e, 2, tmp_path / "emotion.json", effects=e.maps["effects"][2])
    assert int(back.target[0]) == 7 and np.array(meta["effects"]).shape == (8, 7)
    with pytest.raises(TypeError):
        model.explain(x, 2)  # target is keyword-only


# ----------------------------------------------------------------------------- post-hoc


def test_posthoc_round_trip_and_grid(tmp_path):
    s = tiny()
    grouping = Bands(s.logmel, n_bands=4, n_divisions=4)
    e = build_explainer("occlusion", s.spec_model).attribute(s.x, grouping=grouping)
    assert e.grid.name == "logmel" and e.relevance is e.maps["relevance_map"]
    assert e.relevance.shape[1:] == tuple(len(a.values) for a in e.grid.axes)
    assert torch.equal(e.grid.axes[0].values, e.maps["map_freqs_hz"])
    path = write_posthoc(tmp_path / "p.json", e, 0, grouping, input_file="a.wav")
    back, meta = read_explanation_json(path)
    assert meta["grouping_spec"]["n_divisions"] == 4 and meta["input_file"] == "a.wav"
    _round_trip(e, 1, tmp_path / "p1.json")
    write_explanation_json(tmp_path / "small.json", e, 0, with_relevance=False)
    small, _ = read_explanation_json(tmp_path / "small.json")
    assert small.relevance is None and small.grid is None


# ----------------------------------------------------------------------------- NaN


def test_nan_is_written_as_null_and_read_back(tmp_path):
    attr = torch.tensor([[1.0, math.nan, -math.inf], [0.0, 0.5, 2.0]])
    rel = torch.tensor([[[math.nan, 1.0]], [[0.0, 0.0]]])
    e = Explanation(
        attribution=attr,
        grouping="bands",
        target=torch.tensor([1, 0]),
        method="made_up",
        seconds=math.nan,
        relevance=rel,
        grid=Grid.time_frequency("logmel", torch.tensor([100.0]), torch.tensor([0.0, 0.5])),
    )
    path = write_explanation_json(tmp_path / "nan.json", e, 0, score=math.nan, n=np.int64(3))
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    record = _strict_load(path)
    assert record["attribution"] == [1.0, None, None]
    assert record["relevance"]["values"] == [None, 1.0]
    assert record["meta"] == {"score": None, "n": 3} and record["seconds"] is None
    back, _ = read_explanation_json(path)
    assert back.attribution[0, 0] == 1.0 and back.attribution[0, 1:].isnan().all()
    assert back.relevance[0, 0, 0].isnan() and back.relevance[0, 0, 1] == 1.0
    assert math.isnan(back.seconds)


def test_relevance_must_fit_its_grid():
    grid = Grid.time_frequency("stft", torch.arange(3.0), torch.arange(4.0))
    ok = dict(attribution=torch.zeros(1, 2), grouping="g", target=torch.zeros(1), method="m")
    with pytest.raises(ValueError, match="together"):
        Explanation(**ok, relevance=torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="values"):
        Explanation(**ok, relevance=torch.zeros(1, 3, 5), grid=grid)
    with pytest.raises(ValueError, match="axes"):
        Explanation(**ok, relevance=torch.zeros(1, 3), grid=grid)
    with pytest.raises(ValueError, match="schema"):
        Explanation.from_json({"schema": "something else"})
