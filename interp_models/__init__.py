"""Intrinsically interpretable audio models, their black-box counterparts and built-in data.

Nothing in this package imports Lightning, Hydra or W&B: every model is a plain
``torch.nn.Module`` usable from a notebook.
"""

__version__ = "0.1.0"
