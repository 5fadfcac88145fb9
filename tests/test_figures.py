"""Tests for evaluate.reporting.figures: PNGs are written, readable and of the expected size."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from evaluate.reporting.figures import plot_component_explanation, plot_relevance_map

F, T, K = 32, 40, 12


@pytest.fixture()
def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "spec": np.log1p(rng.random((F, T)) * 5),
        "mask": rng.random((F, T)),
        "relevance": rng.random(K) / K,
        "W": rng.random((F, K)),
        "freqs_hz": np.linspace(0, 8000, F),
        "times_s": np.linspace(0, 1.0, T),
    }


def _check_png(path: Path, height: int, width: int) -> None:
    assert path.is_file() and path.stat().st_size > 10_000
    img = mpimg.imread(path)
    assert img.shape[:2] == (height, width)
    assert img.std() > 0.01  # not a blank canvas


@pytest.mark.parametrize("relevant", [[3, 7], []])
def test_component_explanation(tmp_path: Path, inputs, relevant: list[int]) -> None:
    out = tmp_path / "deep" / "dir" / "expl.png"
    path = plot_component_explanation(
        **inputs, relevant=relevant, title="clip 0: dog", path=out, class_names=["pred: dog"]
    )
    assert path == out
    _check_png(path, height=8 * 110, width=12 * 110)


def test_component_explanation_rejects_bad_shapes(tmp_path: Path, inputs) -> None:
    with pytest.raises(ValueError, match="W"):
        plot_component_explanation(
            **{**inputs, "W": inputs["W"][:, :3]}, relevant=[0], title="x", path=tmp_path / "a"
        )
    with pytest.raises(ValueError, match="relevant"):
        plot_component_explanation(**inputs, relevant=[K], title="x", path=tmp_path / "b.png")


def test_relevance_map(tmp_path: Path, inputs) -> None:
    rel = np.random.default_rng(1).standard_normal((F, T))
    path = plot_relevance_map(
        inputs["spec"], rel, inputs["freqs_hz"], inputs["times_s"], "saliency", tmp_path / "r.png"
    )
    _check_png(path, height=int(4.5 * 110), width=10 * 110)
    # An all-zero map must not break the symmetric colour limits.
    zero = plot_relevance_map(
        inputs["spec"],
        np.zeros((F, T)),
        inputs["freqs_hz"],
        inputs["times_s"],
        "zero",
        tmp_path / "z.png",
    )
    assert zero.is_file()
