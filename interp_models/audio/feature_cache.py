"""Feature tensors computed once per (waveforms, front end) and cached on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from interp_models.cache import cached_array, params_key


def waveform_digest(waves: np.ndarray) -> str:
    """Content hash of a waveform array (shape, dtype and samples)."""
    h = hashlib.sha1(str((waves.shape, str(waves.dtype))).encode())
    h.update(np.ascontiguousarray(waves).data)
    return h.hexdigest()[:16]


@torch.no_grad()
def compute_features(
    frontend: nn.Module, waves: np.ndarray, batch_size: int = 64, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Run ``frontend`` over ``waves`` (N, samples) in batches; returns float32 (N, F, T)."""
    frontend = frontend.to(device)
    out = []
    for start in range(0, len(waves), batch_size):
        batch = torch.from_numpy(np.asarray(waves[start : start + batch_size])).to(device)
        out.append(frontend(batch).float().cpu().numpy())
    feats = np.concatenate(out, axis=0)
    if not np.isfinite(feats).all():
        raise FloatingPointError("front end produced non-finite features")
    return feats


def cached_features(
    frontend: nn.Module,
    waves: np.ndarray,
    cache_dir: Path | None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``compute_features`` memoised on disk under ``cache_dir/features``.

    The key covers the waveform content and ``frontend.settings()``, so a change of either
    recomputes; ``cache_dir=None`` disables caching.
    """
    if cache_dir is None:
        return compute_features(frontend, waves, device=device)
    key = params_key({"waves": waveform_digest(waves), "frontend": frontend.settings()})
    path = Path(cache_dir) / "features" / f"{key}.npy"
    return cached_array(path, lambda: compute_features(frontend, waves, device=device))
