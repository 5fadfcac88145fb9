"""Segmentation-aware heart-sound classifier whose logit is a sum of per-(beat, state) terms.

A 1 kHz recording becomes feature frames at the segmentation's 50 Hz: by default the log
power spectrogram (32 ms Hann window, up to 500 Hz) measured from the recording's own
floor and passed through a shared per-frame CNN; alternatively (``frontend="subbands"``)
the four sub-bands of Potes et al. ("Ensemble of feature-based and deep learning-based
classifiers for detection of abnormal heart sounds", CinC 2016: 25-45, 45-80, 80-200,
200-400 Hz) through a strided 1-D CNN. Inside every (beat, state) span the frames are
pooled (mean and max), standardised with that state's statistics, and scored by that
state's small evidence network ``e_s``. The abnormality logit is

    logit = b + sum_s mean_{beats k holding s} e_s(pool(span k, s))

so it decomposes *exactly* into one contribution per (beat, state): the per-state and
per-beat explanations are the model's own arithmetic, not an approximation of it. Each
contribution is measured from a reference -- the mean evidence of that state over normal
training recordings (``set_reference``) -- whose total joins ``b`` in the baseline, as
SHAP measures attributions from a background expectation; the logit does not change.
A span's evidence depends on its own frames (the spectrogram window reaches 16 ms
beyond them) and, through the floor, on the recording's overall level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from interp_models.explanation import Explanation, Grid
from interp_models.heart.dsp import firwin_bank
from interp_models.heart.states import N_STATES, S1, STATE_NAMES

POTES_BANDS: tuple[tuple[float, float], ...] = ((25, 45), (45, 80), (80, 200), (200, 400))


def beat_index_torch(states: torch.Tensor) -> torch.Tensor:
    """Batched ``interp_models.heart.states.beat_index``: (B, T) states -> (B, T) beats,
    -1 where unlabelled; a beat starts at every S1 onset, a leading partial cycle is beat 0."""
    prev = F.pad(states[:, :-1], (1, 0), value=-1)
    onset = (states == S1) & (prev != S1)
    beats = torch.cumsum(onset.long(), dim=1)
    labelled = states > 0
    first = torch.argmax(labelled.long(), dim=1)  # first labelled frame (0 if none)
    starts_with_s1 = onset.gather(1, first[:, None]).long()
    return torch.where(labelled, beats - starts_with_s1, torch.full_like(beats, -1))


def spread_over_frames(per_beat: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """(B, n_beats, 4) span values spread evenly over their frames -> (B, T) per frame.

    The inverse of ``evaluate.heart.posthoc.relevance_by_beat_state`` (``reduce="sum"``) on
    frame centres: summing the result per (beat, state) span gives ``per_beat`` back;
    unlabelled frames (and beats beyond ``n_beats``) get 0. It puts the intrinsic
    contributions on the time axis of post-hoc relevance.
    """
    states = states.long()
    b, n_beats = per_beat.shape[:2]
    beats = beat_index_torch(states)
    ok = (states > 0) & (beats >= 0) & (beats < n_beats)
    slot = torch.where(ok, beats * N_STATES + states - 1, torch.zeros_like(beats))
    count = per_beat.new_zeros(b, n_beats * N_STATES).scatter_add_(1, slot, ok.to(per_beat.dtype))
    flat = per_beat.reshape(b, -1)
    spread = flat.gather(1, slot) / count.gather(1, slot).clamp_min(1)
    return torch.where(ok, spread, torch.zeros_like(spread))


class MaskedStandardize(nn.Module):
    """Per-(state, feature) standardisation of pooled span features, ignoring empty spans.

    Like batch normalisation without the affine part, but statistics are taken over
    the (beat, state) spans that exist: batch statistics while training, running
    averages (momentum ``momentum``) in evaluation.
    """

    def __init__(
        self,
        n_states: int,
        n_features: int,
        momentum: float = 0.1,
        eps: float = 1e-4,
    ):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(n_states, n_features))
        self.register_buffer("running_var", torch.ones(n_states, n_features))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, Nb, S, F), valid (B, Nb, S) bool -> standardised x (0 where not valid)."""
        if self.training:
            w = valid.to(x.dtype)[..., None]
            n = w.sum(dim=(0, 1)).clamp_min(1.0)  # (S, 1)
            mean = (x * w).sum(dim=(0, 1)) / n
            var = ((x - mean) ** 2 * w).sum(dim=(0, 1)) / n
            with torch.no_grad():
                seen = (valid.sum(dim=(0, 1)) > 1)[:, None]  # states present in this batch
                m = self.momentum
                self.running_mean.copy_(
                    torch.where(seen, (1 - m) * self.running_mean + m * mean, self.running_mean)
                )
                self.running_var.copy_(
                    torch.where(seen, (1 - m) * self.running_var + m * var, self.running_var)
                )
        else:
            mean, var = self.running_mean, self.running_var
        z = (x - mean) / torch.sqrt(var + self.eps)
        return z * valid.to(x.dtype)[..., None]


class SegmentationAwareNet(nn.Module):
    """Abnormality classifier on a recording and its per-frame cardiac states.

    Parameters
    ----------
    sample_rate : input rate (Hz), a multiple of ``frame_rate``.
    frame_rate : rate of the state sequence (Springer segmentation: 50 Hz).
    frontend : ``spectrogram`` -- log power STFT (``n_fft``-sample Hann window, one frame
        per state frame) up to ``max_hz``, then a 1-D CNN over time with frequency bins
        as channels; or ``subbands`` -- the four sub-bands of Potes et al. (``bands``,
        fixed ``n_taps`` FIR filters) through a strided 1-D CNN down to ``frame_rate``.
    channels, kernel_size : the shared CNN (ReLU after each conv); ``strides`` (subbands
        only) must multiply to ``sample_rate / frame_rate``.
    floor_quantile : each recording's frames are measured from its own floor, this
        quantile over its labelled frames (per frequency bin / feature); ``None`` skips it.
    head_hidden : hidden units of each state's evidence MLP (0: a linear map).
    dropout : on the standardised span features while training.
    n_outputs : must be 1 (one abnormality logit); accepted for config compatibility.
    """

    def __init__(
        self,
        sample_rate: int = 1000,
        frame_rate: int = 50,
        frontend: str = "spectrogram",
        n_fft: int = 32,
        max_hz: float = 500.0,
        bands: Sequence[Sequence[float]] = POTES_BANDS,
        n_taps: int = 201,
        channels: Sequence[int] = (32, 32),
        strides: Sequence[int] | None = None,
        kernel_size: int = 1,
        floor_quantile: float | None = 0.2,
        head_hidden: int = 16,
        dropout: float = 0.1,
        n_outputs: int = 1,
    ):
        super().__init__()
        if n_outputs != 1:
            raise ValueError(f"n_outputs must be 1 (one abnormality logit), got {n_outputs}")
        if sample_rate % frame_rate:
            raise ValueError(f"sample_rate {sample_rate} is not a multiple of {frame_rate}")
        if frontend not in ("spectrogram", "subbands"):
            raise ValueError(f"frontend must be spectrogram or subbands, got {frontend!r}")
        self.hop = sample_rate // frame_rate
        self.sample_rate, self.frame_rate = int(sample_rate), int(frame_rate)
        self.frontend = frontend
        layers: list[nn.Module] = []
        if frontend == "spectrogram":
            self.n_fft = int(n_fft)
            freqs = torch.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
            self.n_bins = int((freqs <= max_hz).sum())
            self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
            strides = [1] * len(channels)
            in_ch = self.n_bins
        else:
            strides = list(strides or [])
            prod = 1
            for st in strides:
                prod *= int(st)
            if prod != self.hop or len(strides) != len(channels):
                raise ValueError(
                    f"strides {strides} must multiply to sample_rate / frame_rate = "
                    f"{self.hop} and match channels {list(channels)} in length"
                )
            self.bands = tuple((float(lo), float(hi)) for lo, hi in bands)
            taps = firwin_bank(self.bands, sample_rate, n_taps)
            # Fixed filters: derived from the settings, so not part of the checkpoint.
            self.register_buffer(
                "fir", torch.as_tensor(taps, dtype=torch.float32)[:, None, :], persistent=False
            )
            in_ch = len(self.bands)
        for out_ch, stride in zip(channels, strides, strict=True):
            layers += [
                nn.Conv1d(in_ch, out_ch, kernel_size, stride=int(stride), padding=kernel_size // 2),
                nn.ReLU(),
            ]
            in_ch = out_ch
        self.cnn = nn.Sequential(*layers)
        self.floor_quantile = floor_quantile
        self.n_features = 2 * in_ch  # mean and max pooling
        self.standardize = MaskedStandardize(N_STATES, self.n_features)
        self.dropout = nn.Dropout(dropout)
        self.head_hidden = int(head_hidden)
        if self.head_hidden > 0:  # one small MLP per state
            self.head_in = nn.Parameter(torch.empty(N_STATES, self.n_features, self.head_hidden))
            nn.init.normal_(self.head_in, std=self.n_features**-0.5)
            self.head_in_bias = nn.Parameter(torch.zeros(N_STATES, self.head_hidden))
            self.state_weights = nn.Parameter(torch.empty(N_STATES, self.head_hidden))
            nn.init.normal_(self.state_weights, std=self.head_hidden**-0.5)
        else:  # one linear map per state
            self.state_weights = nn.Parameter(torch.empty(N_STATES, self.n_features))
            nn.init.normal_(self.state_weights, std=0.1)
        self.bias = nn.Parameter(torch.zeros(()))
        # Explanation baseline: mean evidence of each state over reference (normal
        # training) beats, set by ``set_reference``; it moves evidence between the bias
        # and the states without changing any logit.
        self.register_buffer("reference", torch.zeros(N_STATES))

    # ------------------------------------------------------------------ features

    def _minus_floor(self, x: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, T) minus its per-channel ``floor_quantile`` over labelled frames.

        In the log domain this divides by the recording's own floor, so a murmur counts
        as loud *for its recording*, whatever the background noise.
        """
        if self.floor_quantile is None:
            return x
        masked = x.masked_fill((states <= 0)[:, None, :], float("nan"))
        floor = torch.nanquantile(masked, self.floor_quantile, dim=2, keepdim=True)
        return x - torch.nan_to_num(floor)

    def _run_cnn(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The CNN with positions past each recording's end (``valid`` (B,) long) zeroed
        before and after every layer, as a conv's own zero padding would have them: a
        recording gives the same features alone or zero-padded in a batch."""

        def mask(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            return x * (torch.arange(x.shape[-1], device=x.device)[None, :] < n[:, None])[:, None]

        x = mask(x, valid)
        for layer in self.cnn:
            x = layer(x)
            if isinstance(layer, nn.Conv1d):
                stride = layer.stride[0]
                valid = (valid + stride - 1) // stride  # outputs centred inside the input
            else:
                x = mask(x, valid)
        return x

    def frame_features(
        self, wave: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N) waveforms and (B, T) states -> (B, C, T) feature frames, frame ``k``
        centred on the centre of state frame ``k`` (sample ``k hop + hop / 2``).

        Each recording is first scaled to unit RMS over its ``lengths`` valid samples, so
        the recording gain carries no information.
        """
        if wave.dim() != 2:
            raise ValueError(f"expected (batch, samples) waveforms, got {tuple(wave.shape)}")
        n, t = wave.shape[1], states.shape[1]
        if lengths is None:
            lengths = torch.full((wave.shape[0],), n, device=wave.device)
        valid = torch.arange(n, device=wave.device)[None, :] < lengths[:, None]
        wave = wave * valid
        rms = torch.sqrt((wave**2).sum(1) / lengths.clamp_min(1) + 1e-12)
        x = (wave / rms[:, None])[:, self.hop // 2 :]  # centred frames start half a hop in
        if self.frontend == "spectrogram":
            spec = torch.stft(
                x,
                self.n_fft,
                self.hop,
                window=self.window,
                center=True,
                pad_mode="constant",
                return_complex=True,
            )[:, : self.n_bins]
            logpow = torch.log(spec.real.square() + spec.imag.square() + 1e-6)
            logpow = F.pad(logpow, (0, max(0, t - logpow.shape[-1])))[..., :t]
            logpow = self._minus_floor(logpow, states)
            return self._run_cnn(logpow, lengths // self.hop)
        bands = F.conv1d(x[:, None, :], self.fir, padding=self.fir.shape[-1] // 2)
        feats = torch.log(self._run_cnn(bands, lengths - self.hop // 2) + 1e-3)
        feats = F.pad(feats, (0, max(0, t - feats.shape[-1])))[..., :t]
        return self._minus_floor(feats, states)

    def span_evidence(
        self, wave: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw evidence of every (beat, state) span and which spans exist.

        Returns
        -------
        evidence : (B, n_beats, 4) each span's state-head output (0 where no span).
        valid : (B, n_beats, 4) bool.
        """
        states = states.long()
        feats = self.frame_features(wave, states, lengths)
        b, c, t = feats.shape
        beats = beat_index_torch(states)
        n_beats = max(int(beats.max().item()) + 1, 1)
        slots = n_beats * N_STATES
        ids = torch.where(beats >= 0, beats * N_STATES + states - 1, torch.full_like(beats, slots))
        idx = ids[:, None, :].expand(b, c, t)
        sums = feats.new_zeros(b, c, slots + 1).scatter_add_(2, idx, feats)
        counts = feats.new_zeros(b, slots + 1).scatter_add_(1, ids, torch.ones_like(feats[:, 0]))
        maxes = feats.new_zeros(b, c, slots + 1).scatter_reduce_(
            2, idx, feats, reduce="amax", include_self=False
        )
        mean = sums / counts[:, None, :].clamp_min(1.0)
        pooled = torch.cat([mean, maxes], dim=1)[..., :slots]  # drop the unlabelled slot
        pooled = pooled.reshape(b, self.n_features, n_beats, N_STATES).permute(0, 2, 3, 1)
        valid = (counts[:, :slots] > 0).reshape(b, n_beats, N_STATES)
        z = self.dropout(self.standardize(pooled, valid))
        if self.head_hidden > 0:
            h = torch.relu(torch.einsum("bnsf,sfh->bnsh", z, self.head_in) + self.head_in_bias)
            evidence = (h * self.state_weights).sum(-1)
        else:
            evidence = (z * self.state_weights).sum(-1)
        return evidence * valid, valid

    def decompose(
        self, wave: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logit as ``baseline + contributions.sum((1, 2))``, exactly.

        Each state's evidence is averaged over the beats holding it (recordings of any
        length, and cycles cut at the edges, weigh the same) and measured from the
        state's ``reference`` evidence, which moves to the baseline.

        Returns
        -------
        contributions : (B, n_beats, 4) per-(beat, state) terms.
        baseline : (B,) ``bias`` plus the reference evidence of the states present.
        valid : (B, n_beats, 4) bool.
        """
        evidence, valid = self.span_evidence(wave, states, lengths)
        n_per_state = valid.sum(1, keepdim=True)
        present = (n_per_state[:, 0] > 0).to(evidence.dtype)  # (B, 4)
        contributions = (evidence - self.reference) * valid / n_per_state.clamp_min(1)
        baseline = self.bias + (self.reference * present).sum(-1)
        return contributions, baseline, valid

    def state_evidence(
        self, wave: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 4) raw evidence of each state averaged over its beats (NaN if absent)."""
        evidence, valid = self.span_evidence(wave, states, lengths)
        n = valid.sum(1).to(evidence.dtype)
        return torch.where(n > 0, evidence.sum(1) / n.clamp_min(1), float("nan"))

    def set_reference(self, reference: torch.Tensor) -> None:
        """Measure contributions from ``reference`` (4,) state evidence, e.g. the mean
        ``state_evidence`` of normal training recordings, so a state that sounds like a
        normal one contributes ~0 (the role of SHAP's background expectation)."""
        reference = torch.as_tensor(reference, dtype=self.reference.dtype)
        if reference.shape != (N_STATES,) or not torch.isfinite(reference).all():
            raise ValueError(f"reference must be 4 finite values, got {reference.tolist()}")
        self.reference.copy_(reference)

    def forward(
        self, wave: torch.Tensor, states: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Abnormality logit (B, 1) of waveforms (B, N) with per-frame states (B, T)."""
        contributions, baseline, _ = self.decompose(wave, states, lengths)
        return (baseline + contributions.sum(dim=(1, 2)))[:, None]

    @torch.no_grad()
    def explain(
        self,
        inputs: torch.Tensor,
        *,
        states: torch.Tensor,
        lengths: torch.Tensor | None = None,
        target: torch.Tensor | int | None = None,
        negate: torch.Tensor | bool | None = None,
    ) -> Explanation:
        """The model's own decomposition of its decision, per state and per beat.

        Parameters
        ----------
        inputs : (B, N) waveforms, as ``forward``'s ``wave``.
        states, lengths : as ``forward``.
        target : output index; the model has one logit, "abnormal", so only 0 (the same
            index a post-hoc method uses on a one-logit black box); default 0.
        negate : explain "normal" instead: the contributions, baseline and relevance are
            negated (evidence *against* the logit). A bool for every clip or (B,) bool;
            default (None) the predicted class: negated where the logit is <= 0.

        Returns
        -------
        ``Explanation`` with grouping ``"states"``, ``attribution`` (B, 4) per-state
        evidence (S1, systole, S2, diastole), ``relevance`` (B, T) the per-(beat, state)
        contributions spread evenly over their frames on grid ``"frames"`` (frame
        centres ``(k + 1/2) / frame_rate`` s; 0 on unlabelled frames), and ``maps``:
        ``beats`` (B, n_beats, 4) per-beat contributions, ``beat_mask`` (B, n_beats, 4),
        ``bias`` (B,), ``negated`` (B,) bool, ``logit`` (B,) and ``probability`` (B,) of
        "abnormal". For every clip ``attribution.sum() + bias == logit`` (times -1 where
        negated), and ``relevance`` sums per (beat, state) span to ``beats``.
        """
        start = time.perf_counter()
        states = states.long()
        contributions, baseline, valid = self.decompose(inputs, states, lengths)
        logit = baseline + contributions.sum(dim=(1, 2))
        target = torch.as_tensor(0 if target is None else target, device=logit.device)
        target = target.long().expand_as(logit).clone()
        if (target != 0).any():
            raise ValueError(
                f"target must be 0 (the one abnormality logit; negate=True explains "
                f"'normal'), got {target.tolist()}"
            )
        if negate is None:
            negate = logit <= 0
        negate = torch.as_tensor(negate, device=logit.device).bool().expand_as(logit).clone()
        sign = 1 - 2 * negate.to(logit.dtype)
        beats = contributions * sign[:, None, None]
        return Explanation(
            attribution=beats.sum(1),
            grouping="states",
            target=target,
            method="segmentation_aware",
            n_evals=1,
            seconds=(time.perf_counter() - start) / max(len(logit), 1),
            maps={
                "beats": beats,
                "beat_mask": valid,
                "bias": sign * baseline,
                "negated": negate,
                "logit": logit,
                "probability": torch.sigmoid(logit),
            },
            labels=list(STATE_NAMES),
            relevance=spread_over_frames(beats, states),
            grid=Grid.frames(
                (torch.arange(states.shape[1], dtype=torch.float64) + 0.5) / self.frame_rate
            ),
        )
