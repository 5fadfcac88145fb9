"""The learned SRP-PHAT run (``config=localization_srp``, ``pipeline: localization``).

1. The net (``cfg.model.net``, ``interp_models.localization.srp.LearnedSRP``) is built
   with ``n_outputs`` and the array geometry of the data (``dm.array``, the dataset's
   ``meta/array.json``; the clips' sample rate), so a recorded dataset with its own array
   trains as it is. The array is copied to ``<run>/array.json`` (``evaluate.runs.load_run``
   rebuilds the net from it); the geometry is also in every checkpoint.
2. The untrained net is SRP-PHAT: it is scored first, on validation and test
   (``srp_phat_init``: accuracy, mean and median angular error), as the reference.
3. It is trained like a black box (``train.builders.fit_run_stage``: checkpoints, resume,
   W&B / CSV logs, the kept epoch chosen on validation accuracy), and the kept
   checkpoint's angular errors are added (``localization``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from interp_models.localization.scoring import direction_scores
from interp_models.localization.srp import array_geometry
from train.builders import fit_run_stage, optimised_module
from train.modules import SupervisedModule
from train.stages import score_checkpoint
from train.tasks import build_task


def _check_data(dm) -> None:
    if not hasattr(dm, "array"):
        raise ValueError(
            "data: the localization pipeline needs microphone-array data "
            "(data._target_: interp_models.data.localization.LocalizationClips)"
        )


def localization_module(cfg: DictConfig, dm) -> SupervisedModule:
    """``cfg.model.net`` for ``dm``'s classes and array, in a ``SupervisedModule``."""
    _check_data(dm)
    task = build_task(cfg.task, dm.num_outputs)
    geometry = array_geometry(dm.array, dm.sample_rate)
    net = instantiate(cfg.model.net, n_outputs=dm.num_outputs, **geometry)
    return optimised_module(SupervisedModule, cfg, net=net, task=task)


def localization_scores(net, dm, split: str) -> dict[str, float]:
    """Accuracy and angular errors of ``net`` on ``split`` (``direction_scores``)."""
    return direction_scores(net, dm, dm.split_indices[split])


@rank_zero_only
def _write_array(run_dir: Path, array: dict[str, Any]) -> None:
    (run_dir / "array.json").write_text(json.dumps(array, indent=2) + "\n")


def run(cfg: DictConfig, run_dir: Path, dm, callbacks) -> dict[str, Any]:
    module = localization_module(cfg, dm)
    _write_array(run_dir, dm.array)
    init = {split: localization_scores(module.net, dm, split) for split in ("val", "test")}
    out = fit_run_stage(cfg, module, dm, run_dir, callbacks, mode=module.task.mode)
    # fit_stage leaves the kept (best-on-validation) weights in the module
    out["localization"] = {s: localization_scores(module.net, dm, s) for s in ("val", "test")}
    out["srp_phat_init"] = init
    return out


def score(cfg: DictConfig, run_dir: Path, run_metrics, dm, out_dir, opts) -> dict[str, Any]:
    """The run's kept checkpoint on ``dm``'s test split (``train.score``), with its
    angular errors."""
    module = localization_module(cfg, dm)
    ckpt = run_dir / run_metrics["best_checkpoint"]
    test = score_checkpoint(module, dm, ckpt, opts["device"])  # loads the kept weights
    return {"test": test, "localization": {"test": localization_scores(module.net, dm, "test")}}
