"""Concept Relevance Propagation (``evaluate.posthoc.crp``) and ``python -m evaluate.concepts``.

Known answers: conditional heatmaps over all channels sum to the LRP heatmap
(conservation, exact by linearity); the unconditional pass is ``lrp_attribute``; a
channel's conditional heatmap is zero where the relevance is kept for no channel; on the
built-in events, a trained model's class channels pick reference clips of their class more
often than chance and their relevance sits inside the event mask more than the mask's share.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from evaluate.concepts import main
from evaluate.posthoc.crp import ConceptRelevance, conservation_error, relevance_maximisation
from evaluate.posthoc.lrp import lrp_attribute
from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.blackbox.wavecnn import WaveformCNN


def _perturbed_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Untrained models with non-trivial batch-norm statistics (so canonizers matter)."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


@pytest.mark.parametrize("waveform", [False, True])
def test_conditional_heatmaps_sum_to_the_lrp_heatmap(waveform):
    torch.manual_seed(0)
    if waveform:
        model = _perturbed_bn(WaveformCNN(5, channels=(8, 16), stem_channels=8, stem_kernel=16))
        x, layer = torch.randn(3, 4000), "block1"
    else:
        model = _perturbed_bn(SpectrogramCNN(5, channels=(8, 16, 32)))
        x, layer = torch.randn(3, 32, 40), "block2"
    target = torch.tensor([0, 2, 4])
    crp = ConceptRelevance(model, layer, rows_per_pass=7)  # several passes, uneven
    channel_rel, heat = crp.channel_relevance(x, target)
    assert torch.equal(heat, lrp_attribute(model, x, target))
    assert channel_rel.shape == (3, crp.n_channels(x))
    assert conservation_error(crp, x, target) < 1e-5
    per = crp.conditional_heatmaps(x, target, [1, 3])
    assert per.shape == (3, 2, *x.shape[1:])
    own = crp.per_clip_conditional(x, target, torch.tensor([1, 3, 3]))
    torch.testing.assert_close(own, torch.stack([per[0, 0], per[1, 1], per[2, 1]]))


def test_a_channel_without_relevance_has_an_empty_heatmap():
    """A channel whose activation is zero everywhere (its conv weights zeroed) passes no
    relevance down: its conditional heatmap is exactly zero."""
    model = _perturbed_bn(SpectrogramCNN(3, channels=(4, 8)))
    with torch.no_grad():
        model.block2.conv2.weight[5].zero_()
        model.block2.bn2.bias[5] = -1.0  # ReLU(-1) = 0 after the merged batch norm
        model.block2.bn2.running_mean[5] = 0.0
    x, target = torch.randn(2, 32, 24), torch.tensor([0, 1])
    crp = ConceptRelevance(model, "block2")
    heat = crp.conditional_heatmaps(x, target, [5])
    assert float(heat.abs().max()) == 0.0
    assert float(crp.channel_relevance(x, target)[0][:, 5].abs().max()) == 0.0


def test_relevance_maximisation_ranks_clips_by_channel_relevance():
    model = _perturbed_bn(SpectrogramCNN(3, channels=(4, 8)))
    x, labels = torch.randn(10, 32, 24), torch.tensor([0, 1, 2] * 3 + [0])
    crp = ConceptRelevance(model, "block2")
    scan = relevance_maximisation(crp, x, labels, batch_size=4)
    full, _ = crp.channel_relevance(x, labels)
    torch.testing.assert_close(scan.relevance, full)
    refs = scan.references(2, 3)
    assert torch.equal(refs, full[:, 2].argsort(descending=True)[:3])
    top, mean = scan.top_channels(0, 2)
    assert torch.equal(mean, full[labels == 0].mean(0)[top])
    assert scan.purity(2, 3, 0) == float((labels[refs] == 0).double().mean())
    with pytest.raises(ValueError, match="layer: the model has no module 'block9'"):
        ConceptRelevance(model, "block9")


@pytest.fixture(scope="module")
def trained_runs(tiny_event_run):
    """A tiny log-mel and a tiny waveform black box on the easy built-in events."""
    return {c: tiny_event_run(c) for c in ("blackbox_events", "blackbox_events_waveform")}


@pytest.mark.parametrize("config", ["blackbox_events", "blackbox_events_waveform"])
def test_concepts_cli_writes_audible_channels_that_know_their_class(trained_runs, config, tmp_path):
    out = main(
        [
            f"run={trained_runs[config]}",
            "top=2",
            "refs=4",
            "split=train",
            "n_clips=32",
            f"out={tmp_path}",
        ]
    )
    record = json.loads((out / "concepts.json").read_text())
    assert record["layer"] == "block2" and record["conservation_error"] < 1e-4
    assert [c["index"] for c in record["classes"]] == [0, 1, 2, 3]
    for cls in record["classes"]:
        assert len(cls["channels"]) == 2
        for ch in cls["channels"]:
            assert 0.0 <= ch["purity"] <= 1.0 and len(ch["references"]) == 4
            assert all(0.0 <= m <= 1.0 for m in ch["mass_inside"])
            for orig, audio in ch["wavs"]:
                assert sf.info(orig).frames == sf.info(audio).frames > 0
            assert Path(ch["figure"]).is_file()
    summary = record["summary"]
    assert summary["purity"] > summary["purity_chance"]
    assert summary["mass_inside"] > summary["mask_share"]
    html = (out / "report.html").read_text()
    assert html.count("<audio") == 4 * 2 * 4 * 2


def test_concepts_cli_names_bad_options(trained_runs, tmp_path):
    run = trained_runs["blackbox_events"]
    with pytest.raises(ValueError, match="layer: the model has no module 'nope'"):
        main([f"run={run}", "layer=nope", f"out={tmp_path}"])
    with pytest.raises(ValueError, match="class=zzz"):
        main([f"run={run}", "class=zzz", f"out={tmp_path}"])
