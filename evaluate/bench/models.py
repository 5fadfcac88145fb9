"""The models each family's benchmark times, untrained (cost does not depend on the
weights), at the sizes of the family's default config and built-in data."""

from __future__ import annotations

import torch

from interp_models.blackbox.cnn import SpectrogramCNN
from interp_models.nmf.interpreter import NMFInterpreter

SR, N_FFT, HOP = 16000, 1024, 256


def nmf_models(device: torch.device, n_classes: int = 10, k: int = 100):
    """The event classifier (``configs/model/cnn.yaml``) and an NMF interpreter on it."""
    torch.manual_seed(0)
    clf = SpectrogramCNN(n_classes).to(device).eval()
    layers = ["block2", "block3", "block4"]
    interp = NMFInterpreter(clf, layers, torch.rand(N_FFT // 2 + 1, k), n_classes)
    return clf, interp.to(device).eval()
