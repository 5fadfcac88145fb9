"""The learned SRP-PHAT (``interp_models.localization.srp``) and its run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from evaluate.runs import load_run, open_data
from interp_models.data.localization import LocalizationClips
from interp_models.data.synth_localization import mic_positions, pair_indices
from interp_models.localization.srp import LearnedSRP, array_geometry

MICS = mic_positions(4, 0.1).tolist()


def _perturbed(net: LearnedSRP, seed: int = 0) -> LearnedSRP:
    """``net`` with every learned parameter moved off its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g) * (p.abs().mean() + 0.1))
    return net


@pytest.fixture(scope="module")
def free_field(tmp_path_factory):
    """Free-field noise bursts at 20-30 dB SNR (the built-in generator, 32 clips)."""
    dm = LocalizationClips(
        num_clips=32,
        rt60_s=(0.0,),
        snr_db=(20.0, 30.0),
        sources=("noise_burst",),
        cache_dir=str(tmp_path_factory.mktemp("srp_cache")),
    )
    dm.prepare_data()
    dm.setup()
    return dm


def test_logits_decompose_exactly_per_frame_pair_and_lag():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 2000)
    for dtype, rtol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        net = _perturbed(LearnedSRP(MICS, 8)).to(dtype)
        xs = x.to(dtype)
        logits = net(xs)
        contributions, bias = net.decompose(xs)
        n_frames = (2000 - 256) // 128 + 1
        assert contributions.shape == (3, 8, n_frames, 6, len(net.lags))
        total = bias + contributions.sum((-3, -2, -1))
        torch.testing.assert_close(total, logits, rtol=rtol, atol=rtol * logits.abs().max().item())
        target = torch.tensor([1, 5, 7])
        one, one_bias = net.decompose(xs, target)
        assert one.shape == (3, n_frames, 6, len(net.lags))
        torch.testing.assert_close(
            one_bias + one.sum((1, 2, 3)),
            logits.gather(1, target[:, None])[:, 0],
            rtol=rtol,
            atol=rtol * logits.abs().max().item(),
        )


def test_untrained_model_is_srp_phat_on_free_field_bursts(free_field):
    dm = free_field
    net = LearnedSRP(n_outputs=dm.num_outputs, **array_geometry(dm.array, dm.sample_rate))
    x = dm.features["x"]
    e = net.explain(x)
    accuracy = (e.target == dm.targets).float().mean().item()
    assert accuracy > 3 / dm.num_outputs  # chance is 1/16; SRP-PHAT gets nearly all
    assert accuracy >= 0.9
    # the delay each pair used is the measured TDOA (within a lag step + 1 sample)
    tdoa = np.stack([dm.truth(i).tdoa_s for i in range(len(x))])
    used = e.maps["delays_s"].numpy()
    assert used.shape == tdoa.shape == (len(x), len(pair_indices(4)))
    tolerance = (1 / net.upsample + 1) / dm.sample_rate
    assert np.abs(used - tdoa).max() <= tolerance


def test_explanation_shapes_and_sums(free_field):
    dm = free_field
    net = _perturbed(LearnedSRP(n_outputs=dm.num_outputs, **array_geometry(dm.array)), seed=1)
    x = dm.features["x"][:4]
    e = net.explain(x)
    n_frames, n_lags = (16000 - 256) // 128 + 1, len(net.lags)
    assert e.method == "learned_srp" and e.grouping == "pair_lags" and e.labels is None
    assert e.attribution.shape == (4, 6, n_lags) and e.relevance.shape == (4, n_frames)
    assert e.grid.name == "frames" and len(e.grid.axes[0].values) == n_frames
    assert e.grid.axes[0].values[0] == pytest.approx(128 / 16000)  # frame centre
    maps = e.maps
    assert maps["lags_s"].shape == (n_lags,) and maps["delays_s"].shape == (4, 6)
    assert maps["pairs"].tolist() == [list(p) for p in pair_indices(4)]
    assert maps["frame_weights"].shape == (4, n_frames)
    torch.testing.assert_close(maps["frame_weights"].sum(1), torch.ones(4))
    assert maps["per_sample"].shape == (4, 4, 16000)
    assert torch.equal(e.target, net(x).argmax(1))
    total = e.attribution.sum((1, 2))
    torch.testing.assert_close(e.relevance.sum(1), total, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(maps["per_sample"].sum((1, 2)), total, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(total + maps["bias"], maps["logit"], rtol=1e-5, atol=1e-4)
    # a frame's share lies on its hop region only, half of each pair's on each microphone
    only = torch.zeros(1, n_frames, 6)
    only[0, 3, 0] = 2.0  # frame 3, pair (0, 1)
    spread = net.spread_to_samples(only, 16000)[0]
    region = slice(64 + 3 * 128, 64 + 4 * 128)
    assert spread[0, region].sum() == pytest.approx(1.0) and spread[1].sum() == pytest.approx(1)
    assert spread[2:].abs().sum() == 0 and spread[0].sum() == pytest.approx(1.0)
    # another target: the same clips, that class's terms
    other = net.explain(x, target=2)
    assert other.target.tolist() == [2] * 4
    torch.testing.assert_close(other.maps["logit"], net(x)[:, 2])


def test_bad_input_and_bad_checkpoint_are_named():
    net = LearnedSRP(MICS, 16)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4000\)") as err:
        net(torch.randn(2, 3, 4000))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"got shape \(4, 16000\)"):
        net.explain(torch.randn(4, 16000))
    with pytest.raises(ValueError, match="target must be"):
        net.explain(torch.randn(1, 4, 1000), target=16)
    other = LearnedSRP(mic_positions(4, 0.05).tolist(), 16)
    with pytest.raises(RuntimeError, match="mic_positions: the checkpoint's array"):
        other.load_state_dict(net.state_dict())
    rebuilt = LearnedSRP(n_outputs=16, **LearnedSRP.geometry_from_state(net.state_dict()))
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(2, 4, 1000)
    torch.testing.assert_close(rebuilt(x), net(x))


def test_two_microphones_resolve_half_the_circle():
    net = LearnedSRP(mic_positions(2, 0.1).tolist(), 8, sector_deg=22.5)
    assert net.weight.shape[:2] == (8, 1)
    # mirror directions (theta, -theta) have the same delay: the geometry gives no more
    torch.testing.assert_close(
        net.delays_for(torch.tensor([30.0])), net.delays_for(torch.tensor([-30.0]))
    )


def test_localization_srp_trains_through_the_cli_and_reloads(tiny_localization_run):
    run_dir = tiny_localization_run("localization_srp")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["pipeline"] == "localization" and metrics["epochs_trained"] == 2
    for part in ("srp_phat_init", "localization"):
        assert set(metrics[part]) == {"val", "test"}
        assert 0 <= metrics[part]["test"]["mean_angular_error_deg"] <= 180
    assert json.loads((run_dir / "array.json").read_text())["n_direction_bins"] == 16
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    # the kept checkpoint reloads (evaluate.runs) to the model the run scored
    loaded = load_run(run_dir)
    assert isinstance(loaded.model, LearnedSRP)
    data = open_data(loaded.config)
    idx = data.split_indices["val"]
    with torch.no_grad():
        logits = loaded.model(data.features["x"][idx])
    loss = F.cross_entropy(logits, data.targets[idx]).item()
    assert loss == pytest.approx(metrics["val"]["loss"], rel=1e-4, abs=1e-5)
    acc = (logits.argmax(1) == data.targets[idx]).float().mean().item()
    assert acc == pytest.approx(metrics["val"]["acc"])
    # the checkpoint alone rebuilds it, geometry included
    state = torch.load(run_dir / metrics["best_checkpoint"], weights_only=True)["state_dict"]
    net = LearnedSRP(n_outputs=16, **LearnedSRP.geometry_from_state(state, "net."))
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k[:4] == "net."})
    with torch.no_grad():
        torch.testing.assert_close(net(data.features["x"][idx]), logits)
