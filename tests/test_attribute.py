"""Post-hoc attributions for a folder of files at several resolutions (``evaluate.attribute``),
the resolution study (``evaluate.resolution``) and audio-out models (``OutputBands``).

One tiny log-mel black box is trained through ``train.fit``; the waveform run is the same
run with an untrained ``WaveformCNN`` in its place (what is tested there is reading,
grouping and writing, which do not depend on the weights). The denoiser is trained here,
in a few seconds, on tone bursts in white noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from posthoc_helpers import single_thread  # noqa: F401
from torch import nn

from evaluate import attribute, resolution
from evaluate.cli_errors import run_cli
from evaluate.posthoc import Bands, Samples, build_explainer
from evaluate.posthoc.export import read_explanation_json
from evaluate.posthoc.output_bands import OutputBands
from interp_models.audio.features import Spectrogram
from interp_models.audio.io import AudioReadError
from interp_models.blackbox.wavecnn import WaveformCNN

pytestmark = pytest.mark.usefixtures("single_thread")

DIVISIONS = (8, 16, 32)  # the tiny data's 1 s clips have 63 frames: 64 divisions do not fit
WAVE_NET = {
    "_target_": "interp_models.blackbox.wavecnn.WaveformCNN",
    "channels": [4, 8],
    "stem_channels": 4,
    "stem_kernel": 16,
}


@pytest.fixture(scope="module")
def spec_run(tiny_event_run) -> Path:
    return tiny_event_run("blackbox_events")


@pytest.fixture(scope="module")
def wave_run(spec_run, tmp_path_factory) -> Path:
    """The tiny run as a waveform run: ``waveform`` front end, a seeded ``WaveformCNN``."""
    run_dir = tmp_path_factory.mktemp("attribute") / "waveform"
    (run_dir / "checkpoints").mkdir(parents=True)
    config = yaml.safe_load((spec_run / "config.yaml").read_text())
    config["data"]["features"] = {"x": {"kind": "waveform"}}
    config["model"]["net"] = WAVE_NET
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = json.loads((spec_run / "metrics.json").read_text())
    metrics["best_checkpoint"] = "checkpoints/net.ckpt"
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    torch.manual_seed(0)
    kwargs = {k: v for k, v in WAVE_NET.items() if k != "_target_"}
    net = WaveformCNN(len(metrics["data"]["class_names"]), **kwargs).eval()
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state}, run_dir / "checkpoints" / "net.ckpt")
    return run_dir


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Clips at other rates, lengths and channel counts, one in a subfolder, one corrupt,
    and a file that is not audio."""
    root = tmp_path_factory.mktemp("user_clips")
    rng = np.random.default_rng(0)
    t = np.arange(33075) / 22050
    sf.write(root / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22050)  # 1.5 s: cut
    (root / "sub").mkdir()
    stereo = 0.1 * rng.standard_normal((22050, 2))
    sf.write(root / "sub" / "b.flac", stereo, 44100)  # 0.5 s stereo: mixed down, padded
    sf.write(root / "c.wav", (8000 * rng.standard_normal(16000)).astype(np.int16), 16000)
    (root / "d_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "notes.txt").write_text("not audio")
    return root


def _error(capsys, main, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exit_.value.code, lines[-1]


# ----------------------------------------------------------------------------- attribute


def test_folder_at_three_resolutions(spec_run, folder, tmp_path, capsys):
    out = tmp_path / "out"
    divisions = ",".join(map(str, DIVISIONS))
    args = [f"run={spec_run}", f"input_dir={folder}", "method=deeplift_shap", f"out={out}"]
    result = attribute.main([*args, f"divisions={divisions}", "batch_size=2"])
    captured = capsys.readouterr()
    corrupt = folder / "d_corrupt.wav"
    assert f"skipped {corrupt}: " in captured.err
    assert "3 files explained" in captured.out and "1 unreadable file(s) skipped" in captured.out
    assert result.skipped[0][0] == corrupt and len(result.written) == 3
    stems = {"a": folder / "a.wav", "sub/b": folder / "sub" / "b.flac", "c": folder / "c.wav"}
    attributions = {}
    for stem, source in stems.items():
        for d in DIVISIONS:
            e, meta = read_explanation_json(out / f"{stem}.deeplift_shap.d{d}.json")
            assert e.attribution.shape == (1, 8, d) and e.method == "deeplift_shap"
            assert meta["input_file"] == str(source) and meta["model"] == str(spec_run)
            spec = meta["grouping_spec"]
            assert spec["kind"] == "bands" and spec["n_divisions"] == d
            assert len(spec["edges_hz"]) == 9 and spec["frontend"]["kind"] == "logmel"
            assert e.relevance.shape == (1, 64, 63) and e.grid.name == "logmel"
            assert meta["class_name"] == meta["prediction"]  # target: the prediction
            attributions[stem, d] = e.attribution[0]
    # DeepLiftShap attributes log-mel bins; bands only sum them, and the divisions nest
    # (16 halves each of 8): coarser resolutions are sums of finer ones
    for stem in stems:
        fine, coarse = attributions[stem, 16], attributions[stem, 8]
        torch.testing.assert_close(fine.reshape(8, 8, 2).sum(-1), coarse, rtol=1e-4, atol=1e-6)


def test_bad_file_is_fatal_with_raise(spec_run, folder, tmp_path, capsys):
    argv = [f"run={spec_run}", f"input_dir={folder}", "method=saliency", f"out={tmp_path}"]
    with pytest.raises(AudioReadError, match="d_corrupt.wav"):
        attribute.main([*argv, "on_bad_file=raise", "divisions=8"])
    code, line = _error(capsys, attribute.main, [*argv, "on_bad_file=raise", "divisions=8"])
    assert code == 1 and line.startswith("error: cannot read audio file") and "d_corrupt" in line


@pytest.mark.parametrize(
    ("extra", "status", "named"),
    [
        (["divison=8"], 2, "unknown option divison="),
        (["bands=0"], 2, "bands= must be a band count"),
        (["bands=800,100"], 2, "bands= edges in Hz must be at least two ascending values"),
        (["divisions=8,8"], 2, "divisions= must be distinct whole numbers"),
        (["on_bad_file=ignore"], 2, "on_bad_file= must be skip or raise"),
        (["divisions=64"], 1, "n_divisions=64 exceeds the 63 frames of the clip"),
        (["target=no_such_class"], 1, "target=no_such_class: not one of"),
    ],
)
def test_bad_options_are_one_line_errors(spec_run, folder, tmp_path, capsys, extra, status, named):
    argv = [f"run={spec_run}", f"input_dir={folder}", "method=saliency", f"out={tmp_path}"]
    code, line = _error(capsys, attribute.main, [*argv, *extra])
    assert code == status and named in line
    assert not list(tmp_path.rglob("*.json"))  # refused before anything is written


def test_bad_method_and_folder_are_named(spec_run, folder, tmp_path, capsys):
    code, line = _error(
        capsys, attribute.main, [f"run={spec_run}", f"input_dir={folder}", "method=lmac"]
    )
    assert code == 2 and "method= must be saliency or" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [f"run={spec_run}", f"input_dir={empty}", "method=saliency"]
    code, line = _error(capsys, attribute.main, argv)
    assert code == 1 and "input_dir: no audio files" in line and str(empty) in line


def test_waveform_run_is_explained_on_bands_of_its_stft(wave_run, folder, tmp_path, capsys):
    out = tmp_path / "wave"
    argv = [f"run={wave_run}", f"input_dir={folder}", "method=saliency", f"out={out}"]
    result = attribute.main([*argv, "bands=0,1000,4000,8000", "divisions=4,8", "maps=false"])
    assert len(result.written) == 3 and len(result.skipped) == 1
    for d in (4, 8):
        e, meta = read_explanation_json(out / f"sub/b.saliency.d{d}.json")
        assert e.attribution.shape == (1, 3, d) and e.relevance is None
        spec = meta["grouping_spec"]
        assert spec["edges_hz"] == [0.0, 1000.0, 4000.0, 8000.0]
        assert spec["frontend"]["kind"] == "stft" and spec["frontend"]["n_fft"] == 1024
        assert torch.isfinite(e.attribution).all() and (e.attribution >= 0).all()


# ----------------------------------------------------------------------------- resolution


def test_resolution_study_scores_every_method_at_every_resolution(spec_run, tmp_path, capsys):
    out = tmp_path / "study"
    argv = [f"run={spec_run}", "methods=saliency,deeplift_shap", "bands=4,8", "divisions=4,8"]
    path = resolution.main([*argv, "n_clips=3", f"out={out}"])
    printed = capsys.readouterr().out
    record = json.loads((out / "resolution.json").read_text())
    cells = {(r["method"], r["n_bands"], r["n_divisions"]): r for r in record["results"]}
    expected = {
        (m, b, d) for m in ("saliency", "deeplift_shap", "random") for b in (4, 8) for d in (4, 8)
    }
    assert set(cells) == expected and len(record["clips"]) == 3
    for (method, b, d), r in cells.items():
        s = r["summary"]
        assert s["n_clips"] == 3 and len(r["per_clip"]["deletion_auc"]) == 3
        for key in ("deletion_auc", "insertion_auc", "mass_inside"):
            assert 0.0 <= s[key] <= 1.0 and s[f"{key}_ci95"] >= 0.0
        row = f"| {'*random*' if method == 'random' else f'`{method}`'} | {b} x {d} |"
        assert row in printed and row in path.read_text()
    assert cells["saliency", 4, 4]["summary"]["n_evals"] == 1


# ----------------------------------------------------------------------------- audio out

SR, N = 8000, 1024


def _bursts(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean): a quarter-clip sine burst (300-3500 Hz, random onset) in white noise."""
    t = torch.arange(N) / SR
    f = 300 + 3200 * torch.rand(n, 1, generator=g)
    start = torch.randint(0, N - N // 4, (n, 1), generator=g)
    idx = torch.arange(N)[None]
    on = ((idx >= start) & (idx < start + N // 4)).float()
    phase = 2 * torch.pi * torch.rand(n, 1, generator=g)
    clean = 0.5 * on * torch.sin(2 * torch.pi * f * t + phase)
    return clean + 0.3 * torch.randn(n, N, generator=g), clean


def _trained_denoiser() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Unflatten(1, (1, N)),
        nn.Conv1d(1, 8, 33, padding=16),
        nn.ReLU(),
        nn.Conv1d(8, 8, 17, padding=8),
        nn.ReLU(),
        nn.Conv1d(8, 1, 17, padding=8),
        nn.Flatten(1),
    )
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(200):
        noisy, clean = _bursts(8, g)
        loss = (net(noisy) - clean).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_output_bands_of_an_identity_model_are_the_input_bands():
    wrapped = OutputBands(nn.Identity(), SR, n_bands=8, n_divisions=4, n_fft=128, hop_length=32)
    t = torch.arange(N) / SR
    wave = torch.zeros(1, N)
    wave[0, 256:512] = torch.sin(2 * torch.pi * 2500 * t[256:512])  # division 1
    out = wrapped(wave)
    assert out.shape == (1, 32) and len(wrapped.labels(33)) == 32
    assert int(out.argmax()) == wrapped.output_index(wrapped.band_of(2500), 1)
    single = OutputBands(nn.Identity(), SR, edges_hz=[0, 2000, 4000], n_fft=128, hop_length=32)
    assert single(wave).shape == (1, 2) and single.band_of(2500) == 1
    with pytest.raises(ValueError, match="band 2, division 0 outside 2 bands"):
        single.output_index(2)


def test_denoiser_output_band_is_explained_by_the_same_input_band():
    """Known answer: a trained denoiser passes the tone; the magnitude of its output in the
    tone's band during the tone comes from the input's tone band during the tone."""
    net = _trained_denoiser()
    noisy, clean = _bursts(32, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (net(noisy) - clean).square().mean() < (noisy - clean).square().mean() / 3
    t = torch.arange(N) / SR
    x = 0.3 * torch.randn(1, N, generator=torch.Generator().manual_seed(2))
    x[0, 512:768] += 0.5 * torch.sin(2 * torch.pi * 1000 * t[512:768])  # division 2 of 4
    wrapped = OutputBands(net, SR, n_bands=8, n_divisions=4, n_fft=128, hop_length=32)
    band = wrapped.band_of(1000)
    target = wrapped.output_index(band, 2)
    grouping = Bands(Spectrogram(SR, n_fft=128, hop_length=32), n_bands=8, n_divisions=4)
    for method in ("integrated_gradients", "saliency"):
        explainer = build_explainer(method, wrapped)
        attr = explainer.attribute(x, target, grouping=grouping).attribution[0]
        positive = attr.clamp_min(0)
        assert divmod(int(attr.argmax()), 4) == (band, 2), method
        assert positive[band, 2] / positive.sum() > 0.5, method  # 1 group of 32
        segments = explainer.attribute(x, target, grouping=Samples(n_segments=8)).attribution[0]
        share = segments.clamp_min(0)
        assert share[4:6].sum() / share.sum() > 0.9, method  # the tone's samples 512-768
