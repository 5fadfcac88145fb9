"""Integrated Gradients adapted to audio (``evaluate.posthoc.ig_baselines``): each baseline
on known answers (completeness, silence, the noise floor, band stops), the waveform path
against its STFT-magnitude formulation, option errors, and the study CLI
(``evaluate.ig_study``) on a tiny black-box run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from captum.attr import IntegratedGradients
from conftest import ROOT
from posthoc_helpers import SR, single_thread, tiny  # noqa: F401

from evaluate.cli_errors import run_cli
from evaluate.ig_study import main, name_of, pick, variants
from evaluate.posthoc import build_explainer
from evaluate.posthoc.groupings import NMFComponents, Samples, TFBins, features_from_magnitude
from evaluate.posthoc.ig_baselines import (
    BASELINES,
    WAVEFORM_STARTS,
    ig_start,
    to_linear,
    waveform_path_ig,
)
from interp_models.audio.features import (
    LOGMEL_FLOOR,
    Log1pSpectrogram,
    LogFrequencySpectrogram,
    LogMel,
    Spectrogram,
)
from interp_models.blackbox.cnn import SpectrogramCNN

pytestmark = pytest.mark.usefixtures("single_thread")

VARIANTS = [(b, "input") for b in BASELINES] + [(b, "waveform") for b in WAVEFORM_STARTS]
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def setup():
    return tiny()


def _frontends():
    return [
        LogMel(SR, n_fft=256, hop_length=64, n_mels=16),
        Log1pSpectrogram(SR, n_fft=256, hop_length=64),
        Spectrogram(SR, n_fft=256, hop_length=64),
        LogFrequencySpectrogram(SR, n_fft=256, hop_length=64, bands_per_octave=4, f_min=200.0),
    ]


def _opts(**changes):
    return {**build_explainer("integrated_gradients", torch.nn.Identity()).opts, **changes}


def _logit(model, x, target):
    with torch.no_grad():
        return model(x).gather(1, target[:, None])[:, 0]


@pytest.mark.parametrize("frontend", _frontends(), ids=lambda f: type(f).__name__)
def test_silence_and_band_stop_are_front_ends_of_waveforms(setup, frontend):
    """silence = the front end of a zero waveform (log(LOGMEL_FLOOR) on log-mel, not the
    all-zero input); band_stop = the front end of the waveform scaled by the stop's gain."""
    x = frontend(setup.waves)
    silence = ig_start(frontend, x, _opts(baseline="silence"), SEEDS)
    torch.testing.assert_close(silence, frontend(torch.zeros_like(setup.waves)))
    stopped = ig_start(frontend, x, _opts(baseline="band_stop", stop_db=20.0), SEEDS)
    torch.testing.assert_close(stopped, frontend(0.1 * setup.waves), rtol=1e-4, atol=1e-4)
    zeros = ig_start(frontend, x, _opts(baseline="zeros"), SEEDS)
    # zero log-mel is loud (mel power 1); the other front ends map silence to 0
    assert torch.equal(zeros, silence) != isinstance(frontend, LogMel)


def test_silence_was_the_previous_baseline(setup):
    """Before the options, IG started from the grouping's baseline: the same silence."""
    s = setup
    view = TFBins(s.logmel).bind(s.x[:1]).view(s.spec_model)
    silence = ig_start(s.logmel, s.x[:1], _opts(baseline="silence"), [0])
    torch.testing.assert_close(silence, view.baseline)
    assert torch.allclose(view.baseline, torch.full_like(view.baseline, LOGMEL_FLOOR).log())


@pytest.mark.parametrize("frontend", _frontends()[:2] + _frontends()[3:], ids=lambda f: f.kind)
def test_noise_floor_is_quieter_than_the_clip_in_every_band(setup, frontend):
    """On average over time the noise is at most the clip's 0.2-quantile power in every
    band, hence below the clip's mean power; it is seeded per clip."""
    x = frontend(setup.waves)
    noise = ig_start(frontend, x, _opts(baseline="noise_floor"), SEEDS)
    assert noise.shape == x.shape and torch.isfinite(noise).all()
    clip, heard = to_linear(frontend, x).double().square(), to_linear(frontend, noise).square()
    floor = torch.quantile(clip, 0.2, dim=-1)
    audible = floor > LOGMEL_FLOOR  # bands the clip has anything in
    assert audible.float().mean() > 0.5
    level = heard.double().mean(dim=-1)
    assert (level[audible] <= floor[audible] * (1 + 1e-3)).all()
    assert (level[audible] < clip.mean(dim=-1)[audible]).all()
    again = ig_start(frontend, x, _opts(baseline="noise_floor"), SEEDS)
    assert torch.equal(noise, again)
    other = ig_start(frontend, x, _opts(baseline="noise_floor"), [5, 6])
    assert not torch.equal(noise, other)


@pytest.mark.parametrize(("baseline", "path"), VARIANTS)
def test_completeness_of_every_variant(setup, baseline, path):
    """Attributions sum to f(x) - f(baseline) (Sundararajan 2017): within captum's own
    convergence delta on the input path (and equal to captum's attributions there), within
    2% on the waveform path."""
    s = setup
    e = build_explainer(
        "integrated_gradients",
        s.spec_model,
        n_steps=48,
        baseline=baseline,
        path=path,
    ).attribute(s.x, grouping=TFBins(s.logmel), waves=s.waves)
    start = ig_start(s.logmel, s.x, _opts(baseline=baseline), SEEDS)
    drop = _logit(s.spec_model, s.x, e.target) - _logit(s.spec_model, start, e.target)
    total = e.attribution.flatten(1).sum(1)
    if path == "input":
        attr, delta = IntegratedGradients(s.spec_model).attribute(
            s.x, start, target=e.target, n_steps=48, return_convergence_delta=True
        )
        torch.testing.assert_close(e.attribution, attr, rtol=1e-4, atol=1e-7)
        assert ((total - drop).abs() <= delta.abs() + 1e-6).all()
    else:
        assert ((total - drop).abs() <= 2e-2 * drop.abs() + 1e-4).all(), (total, drop)


def test_waveform_path_equals_the_stft_magnitude_formulation(setup):
    """Scaling the waveform by a scales |X| by a: IG along the waveform path from silence is
    IG over STFT magnitudes from 0 (``features_from_magnitude``). Per bin on a log1p-STFT
    model; per frame on a log-mel model (the mel split lies within each frame); the
    hand-written path integral from a zero waveform and captum over waveform samples agree."""
    s = setup
    magnitude = s.log1p.stft(s.waves).abs()
    target = torch.tensor([0, 1])

    def stft_ig(model, frontend):
        forward = _Composed(model, frontend)
        return IntegratedGradients(forward).attribute(
            magnitude.clone(), torch.zeros_like(magnitude), target=target, n_steps=24
        )

    def path_ig(model, frontend, x):
        return build_explainer(
            "integrated_gradients", model, n_steps=24, path="waveform"
        ).attribute(x, target, grouping=TFBins(frontend))

    torch.manual_seed(0)
    log1p_model = SpectrogramCNN(3, channels=(4, 8)).eval()
    x1 = s.log1p(s.waves)
    torch.testing.assert_close(
        path_ig(log1p_model, s.log1p, x1).attribution,
        stft_ig(log1p_model, s.log1p),
        rtol=1e-3,
        atol=1e-6,
    )
    on_mel = path_ig(s.spec_model, s.logmel, s.x).attribution
    on_stft = stft_ig(s.spec_model, s.logmel)
    torch.testing.assert_close(on_mel.sum(1), on_stft.sum(1), rtol=1e-3, atol=1e-6)
    hand = waveform_path_ig(
        s.spec_model, s.logmel, s.waves, torch.zeros_like(s.waves), target, n_steps=24
    )
    torch.testing.assert_close(hand, on_mel, rtol=1e-3, atol=1e-6)
    samples = IntegratedGradients(torch.nn.Sequential(s.logmel, s.spec_model)).attribute(
        s.waves.clone(), torch.zeros_like(s.waves), target=target, n_steps=24
    )
    torch.testing.assert_close(samples.sum(1), on_mel.flatten(1).sum(1), rtol=1e-3, atol=1e-6)


class _Composed(torch.nn.Module):
    def __init__(self, model, frontend):
        super().__init__()
        self.model, self.frontend = model, frontend

    def forward(self, magnitude):
        return self.model(features_from_magnitude(self.frontend, magnitude))


@pytest.mark.parametrize(("baseline", "path"), [v for v in VARIANTS if v != ("silence", "input")])
def test_batched_equals_one_clip_at_a_time(setup, baseline, path):
    """Per-clip baselines (the noise is seeded by the clip's index) keep batching exact."""
    s = setup
    waves = torch.cat([s.waves, s.waves.flip(-1)])
    x = s.logmel(waves)
    runs = [
        build_explainer(
            "integrated_gradients",
            s.spec_model,
            internal_batch_size=size,
            n_steps=8,
            baseline=baseline,
            path=path,
        ).attribute(x, grouping=TFBins(s.logmel), waves=waves)
        for size in (1, 64)
    ]
    torch.testing.assert_close(runs[1].attribution, runs[0].attribution, rtol=1e-4, atol=1e-6)


def test_waveform_model_baselines(setup):
    """Waveform models: zeros is silence, the noise floor and band stop are waveforms,
    completeness holds; blur is for spectrograms."""
    s = setup
    grouping = Samples(stft=s.stft)
    for baseline in WAVEFORM_STARTS:
        e = build_explainer(
            "integrated_gradients", s.wave_model, n_steps=48, baseline=baseline
        ).attribute(s.waves, grouping=grouping)
        start = ig_start(s.stft, s.waves, _opts(baseline=baseline), SEEDS)
        assert start.shape == s.waves.shape
        drop = _logit(s.wave_model, s.waves, e.target) - _logit(s.wave_model, start, e.target)
        assert ((e.attribution.sum(1) - drop).abs() <= 2e-2 * drop.abs() + 1e-4).all()
    zeros = ig_start(s.stft, s.waves, _opts(baseline="zeros"), SEEDS)
    assert torch.equal(zeros, ig_start(s.stft, s.waves, _opts(baseline="silence"), SEEDS))
    # the default start (blur) is a spectrogram's: waveform inputs start from silence
    default, silent = (
        build_explainer("integrated_gradients", s.wave_model, n_steps=8, **opts)
        .attribute(s.waves, grouping=grouping)
        .attribution
        for opts in ({}, {"baseline": "silence"})
    )
    torch.testing.assert_close(default, silent)
    with pytest.raises(ValueError, match="spectrogram"):
        build_explainer("integrated_gradients", s.wave_model, baseline="blur").attribute(
            s.waves, grouping=grouping
        )


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"baseline": "white"}, "baseline must be one of"),
        ({"path": "mel"}, "path must be one of"),
        ({"path": "waveform", "baseline": "blur"}, "starts from a waveform"),
        ({"path": "waveform", "baseline": "zeros"}, "starts from a waveform"),
        ({"noise_quantile": 2}, "noise_quantile"),
        ({"stop_db": -3}, "stop_db"),
        ({"blur_sigma": (1.0,)}, "blur_sigma"),
    ],
)
def test_bad_options_are_rejected_in_one_line(setup, opts, match):
    with pytest.raises(ValueError, match=match) as info:
        build_explainer("integrated_gradients", setup.spec_model, **opts)
    assert "\n" not in str(info.value)


def test_options_that_need_what_is_missing(setup):
    s = setup
    ig = build_explainer("integrated_gradients", s.spec_model, path="waveform")
    with pytest.raises(ValueError, match="needs the clips' audio"):
        build_explainer(
            "integrated_gradients", s.spec_model, path="waveform", baseline="noise_floor"
        ).attribute(s.x, grouping=TFBins(s.logmel))
    assert torch.isfinite(ig.attribute(s.x, grouping=TFBins(s.logmel)).attribution).all()
    components = NMFComponents(s.W, s.log1p, frontend=s.logmel)
    with pytest.raises(ValueError, match="removes groups to silence"):
        build_explainer("integrated_gradients", s.spec_model, baseline="blur").attribute(
            s.x[:1], grouping=components, waves=s.waves[:1]
        )
    e = build_explainer("integrated_gradients", s.spec_model, n_steps=4).attribute(
        s.x[:1], grouping=components, waves=s.waves[:1]
    )
    assert torch.isfinite(e.attribution).all()


def test_pick_follows_the_rule():
    summaries = {
        "a": {"mass_inside": 0.5, "deletion_auc": 0.10},  # ranks 2 + 2
        "b": {"mass_inside": 0.6, "deletion_auc": 0.12},  # ranks 1 + 3
        "c": {"mass_inside": 0.4, "deletion_auc": 0.08},  # ranks 3 + 1
        "d": {"mass_inside": 0.9, "deletion_auc": 0.01},  # best, but not eligible
    }
    assert pick(summaries, ["a", "b", "c"]) == "c"  # tie at 4: lower deletion AUC
    summaries["c"] = dict(summaries["a"])  # equal values share ranks: the earlier wins
    assert pick(summaries, ["a", "b", "c"]) == "a" and pick(summaries, ["c", "b", "a"]) == "c"


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def tiny_run(tiny_event_run):
    return tiny_event_run("blackbox_events")


def _study(cache_dir, *args: str):
    return subprocess.run(
        [sys.executable, "-m", "evaluate.ig_study", *args],
        cwd=ROOT,
        env={  # one thread: tiny models on a shared 2-core machine (see single_thread)
            **os.environ,
            "INTERP_MODELS_CACHE": str(cache_dir),
            "WANDB_SILENT": "true",
            "OMP_NUM_THREADS": "1",
        },
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_study_cli_scores_every_variant(tiny_run, cache_dir, tmp_path):
    proc = _study(cache_dir, f"run={tiny_run}", "n_clips=2", "n_steps=4", f"out={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "ig_baselines.md").read_text()
    record = json.loads(
        (tmp_path / "ig_baselines.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"),
    )
    names = [name_of(v) for v in variants(False)]
    assert list(record["variants"]) == names and record["n_clips"] == 2
    for name in names:
        assert f"| {name} |" in md or f"| **{name}** |" in md or f"| {name} (needs" in md
        summary = record["variants"][name]["summary"]
        for key in ("mass_inside", "mass_inside_box", "deletion_auc", "insertion_auc"):
            assert 0.0 <= summary[key] <= 1.0, (name, key, summary[key])
        assert 0.0 <= summary["p_baseline"] <= 1.0 and summary["completeness_gap"] >= 0.0
        assert len(record["variants"][name]["per_clip"]["deletion_auc"]) == 2
    assert record["pick"] in names and not record["variants"][record["pick"]]["needs_waves"]
    assert "Rule (fixed before the study)" in md and "random order" in md


def test_study_cli_rejects_bad_options(capsys):
    """One ``error:`` line and exit status 2, before any run is read."""
    for argv, message in [
        (["run=nowhere", "split=train"], "split= must be val or test"),
        (["run=nowhere", "n_clipz=2"], "unknown option n_clipz="),
        (["split=val"], "expected run=<run>"),
    ]:
        with pytest.raises(SystemExit) as info:
            run_cli(main, argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and message in err, err
