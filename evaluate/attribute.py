"""Post-hoc attributions for every audio file of a folder, at several resolutions.

    python -m evaluate.attribute run=<run> input_dir=<dir> method=<name> [bands=8]
        [divisions=16,32,64] [out=<dir>] [on_bad_file=skip|raise] [device=auto|cpu|cuda]
        [batch_size=16] [target=<class name or index>] [seed=0] [maps=true]

Every audio file under ``input_dir`` (recursively, in sorted order; ``.wav``, ``.flac``,
``.ogg``, ``.mp3``, ``.m4a``, ``.aiff``, ``.aif``) is read as the run's model hears it
(any rate and channel count: resampled, mixed down, padded or cut to the run's clip length;
``evaluate.runs.read_clip``) and explained with one post-hoc ``method``
(``evaluate.posthoc.METHODS`` but ``lmac``) for ``target`` (default: the model's
prediction) over ``Bands``: ``bands`` frequency bands (a count, mel-spaced from 0 Hz to
Nyquist, or comma-separated edges in Hz, ``0,500,2000,8000``) x ``divisions`` equal time
divisions, one explanation per value of ``divisions``. Spectrogram runs are grouped on
their own front end's grid; waveform runs (front end ``waveform``) on an analysis STFT
(1024-point Hann window, hop 256), a band being removed by zeroing its STFT bins and
inverting with the clip's phase.

Each file and resolution gives one JSON file, ``<out>/<path below input_dir without
suffix>.<method>.d<divisions>.json`` (default ``out``: ``<run>/attributions/<input_dir
name>``), in the package's explanation schema (``evaluate.posthoc.export``): attribution
(bands x divisions), band labels, the relevance map on the grid (``maps=false``: left
out), and ``meta``: ``input_file``, ``model`` (the run), ``grouping_spec``, ``class_name``
(explained), ``prediction``. Files that cannot be decoded are named in one line and
skipped (``on_bad_file=skip``) or end the command (``raise``); the last line counts them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evaluate.cli_args import (
    RUN,
    Option,
    boolean,
    choice,
    index_option,
    parse_options,
    whole_number,
)
from evaluate.cli_errors import run_cli
from evaluate.posthoc import METHODS, Bands, build_explainer
from evaluate.posthoc.export import write_explanation_json
from evaluate.runs import LoadedRun, clip_samples, load_run, read_clip
from interp_models.audio.features import Spectrogram, Waveform
from interp_models.audio.io import AudioReadError
from interp_models.data.midlevel import AUDIO_EXTENSIONS
from interp_models.errors import NoUsableDataError

__all__ = [
    "ATTRIBUTION_METHODS",
    "FolderResult",
    "analysis_frontend",
    "attribute_folder",
    "audio_files",
    "band_grouping",
    "parse_bands",
    "parse_divisions",
    "positive_whole_number",
]

USAGE = __doc__.split("\n\n")[1]
#: every post-hoc method but L-MAC, which needs a masker trained on the run's classifier
ATTRIBUTION_METHODS = tuple(m for m in METHODS if m != "lmac")
#: the analysis STFT of waveform runs' bands (that of the log-mel runs' front end)
WAVE_N_FFT, WAVE_HOP = 1024, 256

BandSpec = int | tuple[float, ...]


def parse_bands(text: str) -> BandSpec:
    """``"8"`` -> 8 bands; ``"0,500,2000,8000"`` -> those edges in Hz (at least two,
    ascending)."""
    if "," not in text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError("must be a band count >= 1 or comma-separated edges in Hz")
        return int(text)
    try:
        edges = tuple(float(e) for e in text.split(",") if e)
    except ValueError:
        raise ValueError("must be a band count or comma-separated edges in Hz") from None
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError("edges in Hz must be at least two ascending values")
    return edges


def parse_divisions(text: str) -> tuple[int, ...]:
    """``"16,32,64"`` -> (16, 32, 64): whole numbers >= 1, each once."""
    values = tuple(whole_number(v) for v in text.split(",") if v)
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ValueError("must be distinct whole numbers >= 1, comma-separated")
    return values


def positive_whole_number(text: str) -> int:
    """``"16"`` -> 16; 0 is refused."""
    value = whole_number(text)
    if value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


OPTIONS = (
    RUN,
    Option("input_dir", Path, required=True, metavar="<dir>"),
    Option("method", choice(*ATTRIBUTION_METHODS), required=True, metavar="<method>"),
    Option("bands", parse_bands, default=8),
    Option("divisions", parse_divisions, default=(16, 32, 64)),
    Option("out"),
    Option("on_bad_file", choice("skip", "raise"), default="skip"),
    Option("device", choice("auto", "cpu", "cuda"), default="auto"),
    Option("batch_size", positive_whole_number, default=16),
    Option("target"),
    Option("seed", whole_number, default=0),
    Option("maps", boolean, default=True),
)


# ----------------------------------------------------------------------------- groupings


def analysis_frontend(frontend: nn.Module) -> nn.Module:
    """The grid bands are cut from: a spectrogram run's own front end, or for a waveform run
    (``Waveform`` front end) an analysis STFT of ``WAVE_N_FFT`` / ``WAVE_HOP``."""
    if isinstance(frontend, Waveform):
        return Spectrogram(frontend.sample_rate, n_fft=WAVE_N_FFT, hop_length=WAVE_HOP)
    return frontend


def band_grouping(frontend: nn.Module, bands: BandSpec, n_divisions: int, seed: int = 0) -> Bands:
    """``Bands`` of a run's front end (see ``analysis_frontend``): ``bands`` mel-spaced bands
    (an int) or bands between the given edges in Hz, x ``n_divisions`` time divisions."""
    edges = None if isinstance(bands, int) else list(bands)
    n_bands = bands if isinstance(bands, int) else len(bands) - 1
    return Bands(analysis_frontend(frontend), edges, n_bands, n_divisions, seed=seed)


def check_groupings(groupings: Sequence[Bands], frontend: nn.Module, n_samples: int) -> None:
    """Bind every grouping to a silent clip of the run's length: bands without a frequency
    bin, or more divisions than frames, fail here (``ValueError``) before any file is read."""
    device = next(iter(frontend.buffers()), torch.zeros(0)).device
    x = frontend(torch.zeros(1, n_samples, device=device))
    for grouping in groupings:
        grouping.bind(x)


# ----------------------------------------------------------------------------- files


def audio_files(folder: Path) -> list[Path]:
    """Every audio file below ``folder`` (recursively, sorted).

    Raises
    ------
    ValueError : ``folder`` is not a directory or holds no audio file.
    """
    if not folder.is_dir():
        raise ValueError(f"input_dir: {folder} is not a directory")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )
    if not files:
        raise ValueError(f"input_dir: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {folder}")
    return files


def output_stem(out: Path, folder: Path, file: Path) -> Path:
    """``out / <file below folder, without its suffix>``."""
    return out / file.relative_to(folder).with_suffix("")


def _check_unique_stems(out: Path, folder: Path, files: Sequence[Path]) -> None:
    seen: dict[Path, Path] = {}
    for file in files:
        stem = output_stem(out, folder, file)
        if stem in seen:
            raise ValueError(
                f"input_dir: {seen[stem]} and {file} would write the same JSON files; rename one"
            )
        seen[stem] = file


def json_path(out: Path, folder: Path, file: Path, method: str, n_divisions: int) -> Path:
    """Where the explanation of ``file`` at ``n_divisions`` goes."""
    stem = output_stem(out, folder, file)
    return stem.with_name(f"{stem.name}.{method}.d{n_divisions}.json")


def read_batch(
    files: Sequence[Path], data: dict[str, Any], on_bad_file: str, skipped: list
) -> tuple[list[Path], torch.Tensor | None]:
    """The readable ``files`` and their waves (n, samples); unreadable ones are named on
    stderr and appended to ``skipped`` as (file, reason), or raised with ``"raise"``."""
    kept, waves = [], []
    for file in files:
        try:
            waves.append(read_clip(file, data))
        except AudioReadError as exc:
            if on_bad_file == "raise":
                raise
            tqdm.write(f"skipped {file}: {exc.reason}", file=sys.stderr)
            skipped.append((file, exc.reason))
            continue
        kept.append(file)
    return kept, torch.from_numpy(np.stack(waves)) if waves else None


# ----------------------------------------------------------------------------- explaining


@dataclass
class FolderResult:
    """What ``attribute_folder`` did: the JSON files of each input file (one per
    resolution), the files skipped (with the reason) and the output folder."""

    out: Path
    written: dict[Path, list[Path]] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class _Job:
    """One folder's explanation: the run, the method and the groupings, where to write."""

    run: LoadedRun
    explainer: Any
    groupings: list[Bands]
    folder: Path
    out: Path
    target: int | None
    maps: bool

    def explain(self, files: Sequence[Path], waves: torch.Tensor) -> dict[Path, list[Path]]:
        """Explain one batch of clips at every resolution and write their JSON files."""
        model, frontend = self.run.model, self.run.frontends["x"]
        with torch.no_grad():
            x = frontend(waves)
            predicted = model(x).argmax(dim=1)
        targets = predicted if self.target is None else torch.full_like(predicted, self.target)
        written: dict[Path, list[Path]] = {file: [] for file in files}
        for grouping in self.groupings:
            e = self.explainer.attribute(x, targets, grouping=grouping, waves=waves)
            for i, file in enumerate(files):
                path = json_path(self.out, self.folder, file, e.method, grouping.n_divisions)
                written[file].append(self._write(path, e, i, grouping, file, targets, predicted))
        return written

    def _write(self, path, e, i, grouping, file, targets, predicted) -> Path:
        names = self.run.class_names
        return write_explanation_json(
            path,
            e,
            i,
            grouping,
            input_file=str(file),
            model=str(self.run.run_dir),
            with_relevance=self.maps,
            class_name=names[int(targets[i])],
            prediction=names[int(predicted[i])],
        )


def resolve_device(name: str) -> str:
    """``auto``: ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one fails."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda: no CUDA device is available")
    return name


def attribute_folder(
    run: LoadedRun,
    folder: Path,
    method: str,
    bands: BandSpec = 8,
    divisions: Sequence[int] = (16, 32, 64),
    out: Path | None = None,
    on_bad_file: str = "skip",
    batch_size: int = 16,
    target: int | None = None,
    seed: int = 0,
    maps: bool = True,
    progress: bool = True,
) -> FolderResult:
    """Explain every audio file below ``folder`` with ``method`` on ``run``'s model, at each
    resolution ``bands`` x ``divisions``, and write one JSON per file and resolution.

    Files are read ``batch_size`` at a time and explained as one batch on the model's
    device (the deterministic methods of spectrogram models in one call, the others clip
    by clip; ``evaluate.posthoc.explainers``). Every resolution explains the same target:
    ``target``, or each clip's prediction.

    Raises
    ------
    ValueError : a bad folder, method or resolution (checked before any file is read).
    AudioReadError : an unreadable file with ``on_bad_file="raise"``.
    NoUsableDataError : no file could be read.
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method={method}: not one of {list(ATTRIBUTION_METHODS)}")
    folder = Path(folder)
    files = audio_files(folder)
    out = Path(out) if out is not None else run.run_dir / "attributions" / folder.resolve().name
    _check_unique_stems(out, folder, files)
    device = next(run.model.parameters()).device
    frontend = run.frontends["x"] = run.frontends["x"].to(device)
    groupings = [band_grouping(frontend, bands, d, seed) for d in divisions]
    check_groupings(groupings, frontend, clip_samples(run.config["data"]))
    explainer = build_explainer(method, run.model, frontend=frontend, seed=seed)
    job = _Job(run, explainer, groupings, folder, out, target, maps)
    result = FolderResult(out)
    with tqdm(total=len(files), unit="file", desc=method, disable=not progress) as bar:
        for lo in range(0, len(files), batch_size):
            batch = files[lo : lo + batch_size]
            kept, waves = read_batch(batch, run.config["data"], on_bad_file, result.skipped)
            if waves is not None:
                result.written.update(job.explain(kept, waves.to(device)))
            bar.update(len(batch))
    if not result.written:
        raise NoUsableDataError(f"input_dir: none of the {len(files)} audio files could be read")
    return result


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> FolderResult:
    opts = parse_options(sys.argv[1:] if argv is None else argv, OPTIONS, USAGE)
    run = load_run(opts["run"], device=resolve_device(opts["device"]))
    target = index_option(opts, "target", run.class_names)
    result = attribute_folder(
        run,
        opts["input_dir"],
        opts["method"],
        opts["bands"],
        opts["divisions"],
        None if opts["out"] is None else Path(opts["out"]),
        opts["on_bad_file"],
        opts["batch_size"],
        target,
        opts["seed"],
        opts["maps"],
    )
    n_json = sum(len(paths) for paths in result.written.values())
    print(
        f"{len(result.written)} files explained with {opts['method']} at divisions "
        f"{list(opts['divisions'])}: {n_json} JSON files in {result.out}; "
        f"{len(result.skipped)} unreadable file(s) skipped"
    )
    return result


if __name__ == "__main__":
    run_cli(main)
