"""The one type every explanation method returns, intrinsic or post-hoc, and its JSON file.

Every method -- the by-design models' ``explain(inputs, *, target=None, **options)`` and
the post-hoc explainers' ``attribute(inputs, target, grouping)`` -- returns an
``Explanation``: an ``attribution`` per feature group, and, where the method defines
one, a ``relevance`` map on a declared ``Grid`` (STFT, log-mel or frame grid), so reports,
listenable audio and JSON export can treat all methods alike.

One clip of an ``Explanation`` is written to / read from one JSON schema
(``write_explanation_json`` / ``read_explanation_json``, schema ``SCHEMA`` version
``VERSION``)::

    {
      "schema": "interp_models.explanation", "version": 1,
      "method": "nmf_interpreter", "grouping": "components", "target": 3,
      "n_evals": 1, "seconds": 0.004,
      "shape": [K], "dtype": "float32", "attribution": [...],   # flattened, row-major
      "labels": ["k=0", ...] | null,
      "grid": null | {"name": "stft", "axes": [{"name": "frequency", "unit": "Hz",
                                                "values": [...] | null}, ...]},
      "relevance": null | {"shape": [F, T], "dtype": "float32", "values": [...]},
      "meta": {...}       # everything else: input file, model, family-specific extras
    }

The file is plain JSON (RFC 8259): non-finite numbers (NaN, +-inf) are written as
``null`` and read back as NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "SCHEMA",
    "VERSION",
    "Axis",
    "Explanation",
    "Grid",
    "grid_name",
    "read_explanation_json",
    "spectrogram_grid",
    "write_explanation_json",
]

SCHEMA = "interp_models.explanation"
VERSION = 1


@dataclass(eq=False)
class Axis:
    """One axis of a ``Grid``: ``name`` (``"frequency"``, ``"time"``), ``unit`` (``"Hz"``,
    ``"s"``) and ``values`` (n,), the coordinate of each cell (bin centre frequency, frame
    centre time), or None where the producer does not know them (then cells are indices)."""

    name: str
    unit: str
    values: torch.Tensor | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Axis):
            return NotImplemented
        if (self.name, self.unit) != (other.name, other.unit):
            return False
        if self.values is None or other.values is None:
            return self.values is None and other.values is None
        return torch.equal(self.values.double().cpu(), other.values.double().cpu())


@dataclass(eq=False)
class Grid:
    """The grid an ``Explanation.relevance`` map lives on.

    ``name``: ``"stft"`` (linear-frequency STFT bins), ``"logmel"`` (mel bands),
    ``"logfreq"`` (log-frequency bands) or ``"frames"`` (time frames only, e.g. the 50 Hz
    cardiac-state frames). ``axes``: one ``Axis`` per map dimension after the batch one,
    e.g. ``(frequency [Hz], time [s])`` or ``(time [s],)``.
    """

    name: str
    axes: tuple[Axis, ...]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self.name == other.name and tuple(self.axes) == tuple(other.axes)

    @classmethod
    def time_frequency(
        cls, name: str, freqs_hz: torch.Tensor | None = None, times_s: torch.Tensor | None = None
    ) -> Grid:
        """A (frequency [Hz], time [s]) grid."""
        return cls(
            name, (Axis("frequency", "Hz", _vector(freqs_hz)), Axis("time", "s", _vector(times_s)))
        )

    @classmethod
    def frames(cls, times_s: torch.Tensor | None = None, name: str = "frames") -> Grid:
        """A (time [s],) grid of frames."""
        return cls(name, (Axis("time", "s", _vector(times_s)),))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "axes": [
                {"name": a.name, "unit": a.unit, "values": _plain(a.values)} for a in self.axes
            ],
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Grid:
        return cls(
            record["name"],
            tuple(
                Axis(a["name"], a["unit"], None if a["values"] is None else _tensor(a["values"]))
                for a in record["axes"]
            ),
        )


def grid_name(frontend: Any) -> str:
    """Grid name of a front end's output: ``"logmel"`` (``LogMel``), ``"logfreq"``
    (``LogFrequencySpectrogram``), else ``"stft"``."""
    from interp_models.audio.features import LogFrequencySpectrogram, LogMel

    if isinstance(frontend, LogMel):
        return "logmel"
    if isinstance(frontend, LogFrequencySpectrogram):
        return "logfreq"
    return "stft"


def spectrogram_grid(frontend: Any, n_frames: int) -> Grid:
    """The (frequency [Hz], time [s]) grid of ``frontend``'s output with ``n_frames``
    frames (``frontend.frequencies()``, ``frontend.frame_times(n_frames)``)."""
    return Grid.time_frequency(
        grid_name(frontend), frontend.frequencies(), frontend.frame_times(n_frames)
    )


@dataclass
class Explanation:
    """Attributions for a batch of clips, in the units of one feature grouping.

    Attributes
    ----------
    attribution : (batch, *groups) relevance of each feature group for ``target``.
    grouping : what a group is: ``"components"`` (NMF dictionary), ``"tf_bins"`` (input
        spectrogram bins), ``"bands"`` (frequency bands x time divisions), ``"qualities"``
        (mid-level features), ``"states"`` (cardiac states / beats), ``"samples"`` /
        ``"segments"`` (waveform samples / time segments).
    target : (batch,) output index explained: the same index for a by-design model's
        ``explain`` and for a post-hoc method on the corresponding black box (for the
        one-logit heart models 0 is "abnormal").
    method : name of the method that produced it.
    n_evals : model evaluations (forward or forward+backward passes) it took per clip.
    seconds : wall time per clip.
    maps : extra per-clip tensors of the method, e.g. ``"mask"`` (batch, freq, time)
        time-frequency mask of the relevant NMF components, ``"relevant"`` (batch, K) bool.
    labels : optional names of the groups.
    relevance : optional (batch, *grid shape) relevance map on ``grid``, where the method
        defines one (None otherwise, e.g. for mid-level qualities, which have no
        time-frequency map of their own).
    grid : the ``Grid`` of ``relevance`` (None when ``relevance`` is None).
    """

    attribution: torch.Tensor
    grouping: str
    target: torch.Tensor
    method: str
    n_evals: int = 1
    seconds: float = 0.0
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: list[str] | None = None
    relevance: torch.Tensor | None = None
    grid: Grid | None = None

    def __post_init__(self) -> None:
        if (self.relevance is None) != (self.grid is None):
            raise ValueError("relevance and grid go together: give both or neither")
        if self.relevance is not None and self.grid is not None:
            shape = tuple(self.relevance.shape[1:])
            if len(shape) != len(self.grid.axes):
                raise ValueError(
                    f"relevance {tuple(self.relevance.shape)} does not fit grid "
                    f"{self.grid.name!r} with {len(self.grid.axes)} axes (after the batch one)"
                )
            for n, axis in zip(shape, self.grid.axes, strict=True):
                if axis.values is not None and len(axis.values) != n:
                    raise ValueError(
                        f"grid {self.grid.name!r} axis {axis.name!r} has {len(axis.values)} "
                        f"values, the relevance map {n} cells"
                    )

    def __len__(self) -> int:
        return len(self.attribution)

    def to_json(self, i: int, /, with_relevance: bool = True, **meta: Any) -> dict[str, Any]:
        """Clip ``i`` as a plain-JSON dict in the module's schema; ``meta`` (input file,
        model, family-specific extras; tensors and arrays become lists) goes under
        ``"meta"``. ``with_relevance=False`` leaves the relevance map out (``null``)."""
        attr = self.attribution[i].detach().cpu()
        rel = None
        if with_relevance and self.relevance is not None:
            r = self.relevance[i].detach().cpu()
            rel = {"shape": list(r.shape), "dtype": _dtype_name(r), "values": _plain(r.flatten())}
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "method": self.method,
            "grouping": self.grouping,
            "target": int(self.target[i]),
            "n_evals": int(self.n_evals),
            "seconds": _plain(float(self.seconds)),
            "shape": list(attr.shape),
            "dtype": _dtype_name(attr),
            "attribution": _plain(attr.flatten()),
            "labels": None if self.labels is None else [str(s) for s in self.labels],
            "grid": None if rel is None or self.grid is None else self.grid.to_json(),
            "relevance": rel,
            "meta": _plain(meta),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> tuple[Explanation, dict[str, Any]]:
        """A one-clip ``Explanation`` and the ``meta`` dict from a ``to_json`` record."""
        if record.get("schema") != SCHEMA:
            raise ValueError(f"not an explanation record (schema {record.get('schema')!r})")
        if record.get("version") != VERSION:
            raise ValueError(
                f"explanation schema version {record.get('version')!r}, expected {VERSION}"
            )
        attr = _tensor(record["attribution"], record.get("dtype")).reshape(record["shape"])
        rel, grid = record.get("relevance"), record.get("grid")
        if rel is not None:
            rel = _tensor(rel["values"], rel.get("dtype")).reshape(rel["shape"])[None]
        explanation = cls(
            attribution=attr[None],
            grouping=record["grouping"],
            target=torch.tensor([int(record["target"])]),
            method=record["method"],
            n_evals=int(record["n_evals"]),
            seconds=math.nan if record["seconds"] is None else float(record["seconds"]),
            labels=record.get("labels"),
            relevance=rel,
            grid=None if rel is None or grid is None else Grid.from_json(grid),
        )
        return explanation, dict(record.get("meta") or {})


def write_explanation_json(
    path: str | Path, explanation: Explanation, i: int, /, with_relevance: bool = True, **meta: Any
) -> Path:
    """Write clip ``i`` of ``explanation`` (``Explanation.to_json``) to ``path``, creating
    its folder; returns the path. Plain JSON: non-finite numbers are written as ``null``
    (``allow_nan=False`` guards it). ``with_relevance=False`` leaves the relevance map and
    its grid out (``null``), e.g. to keep a file small."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = explanation.to_json(i, with_relevance=with_relevance, **meta)
    path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def read_explanation_json(path: str | Path) -> tuple[Explanation, dict[str, Any]]:
    """The one-clip ``Explanation`` and its ``meta`` from a file ``write_explanation_json``
    wrote (``null`` numbers come back as NaN)."""
    return Explanation.from_json(json.loads(Path(path).read_text()))


# ----------------------------------------------------------------------------- helpers


def _vector(values: Any) -> torch.Tensor | None:
    return None if values is None else torch.as_tensor(values).detach().cpu().flatten()


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _tensor(values: list[Any], dtype: str | None = None) -> torch.Tensor:
    """A flat list (``null`` = NaN) as a tensor of ``dtype`` (default float64)."""
    dt = getattr(torch, dtype) if dtype else torch.float64
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}")
    if dt.is_floating_point or not values:
        return torch.tensor([math.nan if v is None else v for v in values], dtype=torch.float64).to(
            dt
        )
    return torch.tensor(values, dtype=dt)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON: tensors / arrays / tuples -> lists, numpy scalars and paths
    -> Python values, non-finite floats -> None, dict keys -> str."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.dim() == 0 else value.tolist()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
