"""Non-negative spectral dictionary W (freq x K) learned with torchnmf.

As in Listen-to-Interpret (Parekh et al., NeurIPS 2022) the dictionary is learned on
``log1p |STFT|`` frames of the training clips, its columns are unit-L2 normalised and it
stays frozen while the interpreter trains. Optional *noise* components are learned on the
quietest frames only, so background gets components of its own that explanations can
leave out (the SONYC-UST setting of the paper's journal version, arXiv 2305.07132).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchnmf.nmf import NMF


@dataclass(frozen=True)
class DictionarySettings:
    """Everything that determines a learned dictionary (all of it enters the cache key)."""

    n_components: int = 100
    n_noise: int = 0
    beta: float = 2.0  # beta-divergence: 2 Euclidean, 1 Kullback-Leibler, 0 Itakura-Saito
    max_iter: int = 200
    max_frames: int = 20_000
    noise_quantile: float = 0.2  # frames below this energy quantile learn the noise part
    seed: int = 0
    stft: dict[str, Any] = field(default_factory=dict)  # settings() of the front end


@dataclass
class Dictionary:
    """A learned dictionary with the settings it was made with.

    Attributes
    ----------
    W : (freq, K) non-negative, unit-L2 columns; the last ``settings.n_noise`` are noise.
    settings : how it was learned, including the STFT it must be used with.
    divergence : final beta-divergence per frame of the fit (a quality figure).
    """

    W: torch.Tensor
    settings: DictionarySettings
    divergence: float

    @property
    def is_noise(self) -> torch.Tensor:
        k = self.W.shape[1]
        flags = torch.zeros(k, dtype=torch.bool)
        if self.settings.n_noise:
            flags[k - self.settings.n_noise :] = True
        return flags

    def check_stft(self, stft_settings: dict[str, Any]) -> None:
        """Raise if ``stft_settings`` differ from the STFT the dictionary was learned on."""
        keys = ("sample_rate", "n_fft", "hop_length", "win_length", "kind")
        diff = {
            k: (self.settings.stft.get(k), stft_settings.get(k))
            for k in keys
            if self.settings.stft.get(k) != stft_settings.get(k)
        }
        if diff:
            raise ValueError(
                f"dictionary was learned on another STFT than the interpreter's input: {diff} "
                "(learned, given)"
            )

    def save(self, path: Path) -> Path:
        """Write ``.npz`` (no pickle): W, settings as JSON, divergence."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            W=self.W.cpu().numpy(),
            settings=np.array(json.dumps(asdict(self.settings))),
            divergence=np.array(self.divergence),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> Dictionary:
        with np.load(path, allow_pickle=False) as f:
            settings = DictionarySettings(**json.loads(str(f["settings"])))
            return cls(torch.from_numpy(f["W"].copy()), settings, float(f["divergence"]))


def _fit_nmf(frames: torch.Tensor, rank: int, beta: float, max_iter: int) -> torch.Tensor:
    """W (freq, rank) of ``frames`` (n, freq) ~= H W^T; torchnmf's multiplicative updates."""
    model = NMF(frames.shape, rank=rank).to(frames.device)
    # torchnmf's fit differentiates to get its update terms, so it needs autograd even when
    # called from inside a no-grad context (Lightning hooks, evaluation).
    with torch.enable_grad():
        model.fit(frames, beta=beta, max_iter=max_iter, tol=1e-5)
    return model.W.detach()


def _beta_divergence(v: torch.Tensor, v_hat: torch.Tensor, beta: float) -> float:
    eps = 1e-8
    v, v_hat = v.clamp_min(eps), v_hat.clamp_min(eps)
    if beta == 2:
        d = 0.5 * (v - v_hat) ** 2
    elif beta == 1:
        d = v * torch.log(v / v_hat) - v + v_hat
    elif beta == 0:
        d = v / v_hat - torch.log(v / v_hat) - 1
    else:
        d = (v**beta + (beta - 1) * v_hat**beta - beta * v * v_hat ** (beta - 1)) / (
            beta * (beta - 1)
        )
    return float(d.sum() / v.shape[0])


def learn_dictionary(spectrograms: torch.Tensor, settings: DictionarySettings) -> Dictionary:
    """Learn W from non-negative spectrograms (N, freq, T), e.g. log1p |STFT| of train clips.

    Frames are pooled over clips and (deterministically) subsampled to ``max_frames``.
    With ``n_noise > 0`` the quietest ``noise_quantile`` of frames learn ``n_noise``
    components and the others ``n_components``; W is ``[signal | noise]``.
    """
    if spectrograms.dim() != 3 or (spectrograms < 0).any():
        raise ValueError("spectrograms must be non-negative (N, freq, T)")
    frames = spectrograms.permute(0, 2, 1).reshape(-1, spectrograms.shape[1]).float()
    g = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # torchnmf draws its random init from the global RNG
        energy = frames.sum(1)
        if settings.n_noise:
            quiet = energy <= torch.quantile(energy, settings.noise_quantile)
            parts = [(frames[~quiet], settings.n_components), (frames[quiet], settings.n_noise)]
        else:
            parts = [(frames, settings.n_components)]
        ws = []
        for part, rank in parts:
            if len(part) > settings.max_frames:
                part = part[torch.randperm(len(part), generator=g)[: settings.max_frames]]
            ws.append(_fit_nmf(part, rank, settings.beta, settings.max_iter))
    W = torch.cat(ws, dim=1)
    W = W / W.norm(dim=0, keepdim=True).clamp_min(1e-8)
    # Divergence of the unit-norm dictionary with activations refit by least squares is
    # what the interpreter can reach at best; report it on a frame sample.
    sample = frames[torch.randperm(len(frames), generator=g)[: settings.max_frames]]
    H = torch.linalg.lstsq(W, sample.T).solution.clamp_min(0)
    divergence = _beta_divergence(sample, (W @ H).T, settings.beta)
    return Dictionary(W.cpu(), settings, divergence)
