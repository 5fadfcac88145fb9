"""Import zennit (and Quantus, which imports zennit when it is installed) without torchvision.

zennit's top-level ``__init__`` imports ``zennit.torchvision`` (canonizers for torchvision's
ResNet blocks), which imports torchvision. The only torchvision builds this project's
package index has are CUDA builds whose ops break ``import lightning``
(``operator torchvision::nms does not exist``), so torchvision is never installed and zennit
is installed with ``--no-deps``. Registering an empty ``zennit.torchvision`` module before
the first ``import zennit`` lets everything else in zennit load: composites, rules,
canonizers and attributors do not use torchvision. Only zennit's ResNet canonizers are
missing, which no model here needs.

Import this module (``evaluate.metrics`` and ``evaluate.posthoc`` do) before ``import
quantus`` or ``import zennit``; importing either first fails with ``No module named
'torchvision'``.
"""

from __future__ import annotations

import sys
import types

__all__ = ["install"]


def install() -> None:
    """Register the ``zennit.torchvision`` placeholder (idempotent)."""
    if "zennit.torchvision" not in sys.modules:
        stub = types.ModuleType("zennit.torchvision")
        stub.__doc__ = "placeholder: torchvision is not installed (see evaluate.zennit_compat)"
        sys.modules["zennit.torchvision"] = stub


install()
