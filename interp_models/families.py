"""The model families, by name: what trains a run, what explains and reports it.

One entry per family is all the wiring a new family needs (besides its packages under
``interp_models/``, ``train/`` and ``evaluate/``). A run's ``config.yaml`` names its
``pipeline``; :func:`family_of` turns that name into the family, and ``train.fit``,
``evaluate.explain`` and ``evaluate.report`` import the hooks named here (``module:function``
strings, so this module imports nothing above ``interp_models``).

:data:`DATA` does the same for the data classes a run's ``data._target_`` names: the plain
class under ``interp_models.data`` (what the reports open) and the DataModule of ``train/``
that training wraps it in.

Runs written by earlier versions name pipelines and classes by their old module paths;
:data:`ALIASES` maps them to today's names, so those runs still load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """How one model family plugs in.

    Attributes
    ----------
    name : the family's name (its package name under ``train/`` and ``evaluate/``).
    pipelines : the ``pipeline:`` values of its runs.
    train : ``module:function`` running one of its runs: ``(cfg, run_dir, datamodule,
        callbacks) -> metrics dict``.
    explain : ``module:function``, the ``evaluate.explain`` CLI for one of its runs
        (``argv -> output folder``), or None.
    score : ``module:function`` scoring a finished run on other data (``python -m
        train.score``): ``(cfg, run_dir, run_metrics, datamodule, out_dir, options) ->
        {stage: {"test": {...}}}``, the keys of the run's own test metrics.
    report : ``module:function``, its intrinsic-versus-post-hoc report
        (``evaluate.reporting.skeleton.ReportRequest -> {"md", "html", "json", ...}``), or
        None.
    blackbox : whether the report compares the run with a separately trained black box
        (``blackbox=``) rather than with the run's own classifier.
    """

    name: str
    pipelines: tuple[str, ...]
    train: str
    score: str
    explain: str | None = None
    report: str | None = None
    blackbox: bool = False


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "blackbox",
            ("supervised",),
            "train.pipelines:supervised",
            score="train.pipelines:score_supervised",
        ),
        Family(
            "nmf",
            ("nmf_posthoc", "nmf_joint", "nmf_faithful"),
            "train.nmf.pipeline:run_nmf",
            score="train.nmf.pipeline:score",
            explain="evaluate.nmf.explain:main",
            report="evaluate.nmf.report:report",
        ),
        Family(
            "emotion",
            ("emotion",),
            "train.emotion.pipeline:run",
            score="train.emotion.pipeline:score",
            explain="evaluate.emotion.explain:main",
            report="evaluate.emotion.report:report",
            blackbox=True,
        ),
        Family(
            "heart",
            ("heart",),
            "train.heart.pipeline:run",
            score="train.heart.pipeline:score",
            explain="evaluate.heart.explain:main",
            report="evaluate.heart.report:report",
            blackbox=True,
        ),
        Family(
            "localization",
            ("localization",),
            "train.localization.pipeline:run",
            score="train.localization.pipeline:score",
            explain=None,
            report="evaluate.localization.report:report",
            blackbox=True,
        ),
    )
}


@dataclass(frozen=True)
class DataKind:
    """A kind of data: the plain class a run's ``data._target_`` names (what the reports
    open, without Lightning) and the DataModule ``train.fit`` wraps it in.

    Attributes
    ----------
    data : dotted path of the class under ``interp_models.data``, as configs write it.
    datamodule : ``module:class`` of its Lightning DataModule in ``train/``.
    loader_keys : ``data.*`` keys only the DataModule's loaders read; the reports drop them.
    """

    data: str
    datamodule: str
    loader_keys: tuple[str, ...] = ("batch_size", "num_workers", "shuffle_seed")


DATA: dict[str, DataKind] = {
    d.data: d
    for d in (
        DataKind("interp_models.data.clips.EventClips", "train.datamodules:ClipDataModule"),
        DataKind(
            "interp_models.data.localization.LocalizationClips",
            "train.datamodules:LocalizationDataModule",
        ),
        DataKind("interp_models.data.music.MusicClips", "train.emotion.data:MusicDataModule"),
        DataKind(
            "interp_models.data.heart.HeartRecordings",
            "train.heart.data:HeartDataModule",
            ("batch_size", "num_workers", "shuffle_seed", "train_crop_s"),
        ),
    )
}
#: the data class of runs whose config has no ``data._target_``
DEFAULT_DATA = "interp_models.data.clips.EventClips"

# Names that runs written by earlier versions carry in their config.yaml: pipelines and
# DataModules before the family packages (2026-12), DataModules before data classes.
ALIASES: dict[str, str] = {
    "train.heart_pipeline.run": "heart",
    "train.emotion_pipeline.run": "emotion",
    "train.datamodules.ClipDataModule": "interp_models.data.clips.EventClips",
    "train.emotion.data.MusicDataModule": "interp_models.data.music.MusicClips",
    "train.emotion_data.MusicDataModule": "interp_models.data.music.MusicClips",
    "train.heart.data.HeartDataModule": "interp_models.data.heart.HeartRecordings",
    "train.heart_datamodule.HeartDataModule": "interp_models.data.heart.HeartRecordings",
}


def current_name(name: str) -> str:
    """Today's name for a pipeline or class name found in a run's config."""
    return ALIASES.get(name, name)


def family_of(pipeline: str) -> Family:
    """The family whose runs have ``pipeline: <pipeline>`` (old names accepted).

    Raises
    ------
    ValueError naming the pipeline and the known ones.
    """
    name = current_name(str(pipeline))
    for family in FAMILIES.values():
        if name in family.pipelines:
            return family
    known = sorted(p for f in FAMILIES.values() for p in f.pipelines)
    raise ValueError(f"pipeline: unknown {pipeline!r}; known pipelines are {known}")


def data_kind(target: str) -> DataKind | None:
    """The :data:`DATA` entry of a ``data._target_`` (old names accepted); ``None`` for a
    class of the user's own."""
    return DATA.get(current_name(str(target)))


def hook(target: str) -> Callable[..., Any]:
    """Import ``module:function`` (a hook named in :data:`FAMILIES`)."""
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)
