"""The install must never pull torchvision / torchaudio: only CUDA builds exist here and
they break ``import lightning`` (``operator torchvision::nms does not exist``)."""

import importlib.util


def test_torchvision_and_torchaudio_are_not_installed():
    assert importlib.util.find_spec("torchvision") is None
    assert importlib.util.find_spec("torchaudio") is None


def test_stack_imports_with_pinned_torch():
    import captum  # noqa: F401
    import hydra  # noqa: F401
    import lightning  # noqa: F401
    import torch
    import torchnmf  # noqa: F401
    import wandb  # noqa: F401

    assert torch.__version__.split("+")[0] == "2.13.0"
