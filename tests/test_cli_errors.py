"""A bad file, key or value ends every command line with one ``error:`` line, no traceback;
``HYDRA_FULL_ERROR=1`` or ``debug=true`` brings the traceback back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, TINY_DATA
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from evaluate import bench, explain, report
from evaluate.cli_errors import UsageError, describe, pop_debug, run_cli

QUIET = {"HYDRA_FULL_ERROR": "", "INTERP_MODELS_CLI_SET_HYDRA_FULL_ERROR": ""}


def _error_line(stderr: str) -> str:
    """The one ``error:`` line that ends ``stderr``, which holds no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum("error:" in line for line in lines) == 1, stderr
    return lines[-1]


@pytest.fixture
def fit(run_fit, monkeypatch, tmp_path):
    """``python -m train.fit config=blackbox_events <overrides>``, expected to fail."""
    for key, value in QUIET.items():
        monkeypatch.setenv(key, value)

    def _fit(*overrides: str) -> subprocess.CompletedProcess:
        run_dir = f"hydra.run.dir={tmp_path / 'run'}"
        proc = run_fit("config=blackbox_events", run_dir, *overrides, check=False)
        assert proc.returncode == 1, proc.stderr
        return proc

    return _fit


def test_fit_unknown_key_is_named(fit):
    line = _error_line(fit("data.num_clipz=5").stderr)
    assert "'data.num_clipz'" in line and "+data.num_clipz=5" in line


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.on_bad_file=maybe", ["data.on_bad_file", "'maybe'"]),
        ("data.sample_rate=-1", ["data:", "sample_rate", "-1"]),
    ],
)
def test_fit_bad_value_is_named(fit, override, named):
    line = _error_line(fit(*TINY_DATA, override).stderr)
    assert all(word in line for word in named), line


def test_fit_missing_data_root_is_named(fit, tmp_path):
    line = _error_line(fit("data=esc50", f"data.root={tmp_path / 'nowhere'}").stderr)
    assert line == f"error: data.root: {tmp_path / 'nowhere'} is not a directory"


def test_fit_missing_checkpoint_is_named(fit, tmp_path, monkeypatch):
    missing = tmp_path / "gone.ckpt"
    line = _error_line(fit(f"ckpt_path={missing}").stderr)
    assert line == f"error: ckpt_path: no checkpoint at {missing}"

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    stderr = fit(f"ckpt_path={missing}").stderr
    assert "Traceback" in stderr and "FileNotFoundError: ckpt_path" in stderr


def test_fit_corrupt_checkpoint_is_named_and_debug_keeps_the_traceback(fit, tmp_path):
    corrupt = tmp_path / "last.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 half a checkpoint")
    line = _error_line(fit(f"ckpt_path={corrupt}").stderr)
    assert line.startswith(f"error: {corrupt}: not a readable checkpoint")
    stderr = fit(f"ckpt_path={corrupt}", "debug=true").stderr
    assert "Traceback" in stderr


def _cli(module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **QUIET, "WANDB_SILENT": "true", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip.wav"
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)
    return path


@pytest.mark.parametrize(
    ("module", "args", "named"),
    [
        ("evaluate.explain", ["{clip}", "run={missing}"], "run: {missing} is not inside"),
        ("evaluate.heart.explain", ["{bad}", "run={missing}"], "cannot read audio file '{bad}'"),
        ("evaluate.emotion.explain", ["{clip}", "run={missing}"], "run: {missing} is not"),
        ("evaluate.report", ["run={missing}"], "{missing}/config.yaml not found"),
        ("evaluate.bench", ["run={missing}"], "run: {missing} is not inside"),
    ],
)
def test_evaluate_cli_names_the_file(module, args, named, clip, tmp_path):
    bad = tmp_path.resolve() / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    paths = {"clip": clip, "missing": tmp_path.resolve() / "no_run", "bad": bad}
    proc = _cli(module, *(a.format(**paths) for a in args))
    assert proc.returncode == 1
    assert named.format(**paths) in _error_line(proc.stderr)


def test_evaluate_cli_old_option_names_still_work_with_a_note(clip, tmp_path):
    """``ckpt=`` (explain) and ``--run`` (bench) were the names before ``run=``."""
    missing = tmp_path.resolve() / "no_run"
    for module, args in (
        ("evaluate.explain", [str(clip), f"ckpt={missing}"]),
        ("evaluate.bench", ["--run", str(missing)]),
    ):
        proc = _cli(module, *args)
        assert proc.returncode == 1
        assert f"run: {missing} is not inside" in _error_line(proc.stderr)
        assert "is deprecated; use run=" in proc.stderr.splitlines()[0]


def test_evaluate_cli_traceback_on_request(clip, tmp_path):
    proc = _cli("evaluate.explain", str(clip), f"run={tmp_path}", HYDRA_FULL_ERROR="1")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "FileNotFoundError: run:" in proc.stderr


def _main_error(capsys, main, argv: list[str]) -> tuple[int, str]:
    """Exit status and ``error:`` line of ``run_cli(main, argv)``, in this process."""
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, argv)
    return exit_.value.code, _error_line(capsys.readouterr().err)


@pytest.fixture
def quiet(monkeypatch):
    for key in QUIET:
        monkeypatch.delenv(key, raising=False)


def test_explain_missing_clip_fails_before_the_model_loads(quiet, capsys, tmp_path):
    code, line = _main_error(capsys, explain.main, [str(tmp_path / "x.wav"), "run=nowhere"])
    assert code == 1
    assert line == f"error: cannot read audio file '{tmp_path / 'x.wav'}': file does not exist"


def test_explain_names_a_run_without_an_explain_command(quiet, capsys, clip, tmp_path):
    (tmp_path / "config.yaml").write_text("pipeline: supervised\n")
    (tmp_path / "metrics.json").write_text("{}\n")
    code, line = _main_error(capsys, explain.main, [str(clip), f"run={tmp_path}"])
    assert code == 1
    assert line.startswith(f"error: run: {tmp_path.resolve()} is a blackbox run, which has no")


@pytest.mark.parametrize(
    ("main", "argv", "named"),
    [
        (explain.main, ["a.wav", "run=r", "treshold=1"], "unknown option treshold="),
        (explain.main, ["a.wav"], "expected one clip and run=<run>"),
        (report.main, ["run=r", "n_clips=ten"], "n_clips= must be a whole number, got 'ten'"),
        (report.main, ["run=r", "nclips=1"], "unknown option nclips="),
        (report.main, ["n_clips=1"], "expected run=<run_dir>"),
        (bench.main, ["clips=x"], "clips= must be a whole number, got 'x'"),
        (bench.main, ["--clips", "x"], "clips= must be a whole number, got 'x'"),
        (bench.main, ["device=gpu0"], "device= must be a torch device (cpu, cuda, cuda:1), got"),
    ],
)
def test_usage_errors_exit_2_with_the_usage(quiet, capsys, main, argv, named):
    code, line = _main_error(capsys, main, argv)
    assert code == 2 and named in line


def test_debug_option_keeps_the_traceback(quiet, clip, tmp_path):
    with pytest.raises(FileNotFoundError, match="run:"):
        run_cli(explain.main, [str(clip), f"run={tmp_path}", "debug=true"])


def test_bugs_keep_their_traceback(quiet):
    def main(argv: list[str]) -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_cli(main, [])


def test_describe_makes_one_line_naming_the_key():
    cause = ConfigKeyError("Key 'num_clipz' is not in struct\n    full_key: data.num_clipz")
    exc = ConfigCompositionException("Could not override 'data.num_clipz'.\nTo append ...")
    exc.__cause__ = cause
    assert describe(exc) == (
        "Could not override 'data.num_clipz'. To append ... (Key 'num_clipz' is not in struct)"
    )
    assert describe(KeyError("sample_rate")) == "missing key 'sample_rate'"
    assert describe(KeyError("monitor 'x' was not logged")) == "monitor 'x' was not logged"
    assert describe(UsageError("bad x=", "prog\n  [x=1]\n")) == "bad x= (usage: prog [x=1])"
    assert describe(SystemExit("run: r is not\n a run")) == "run: r is not a run"


def test_pop_debug():
    argv = ["a.wav", "debug=true", "run=r"]
    assert pop_debug(argv) and argv == ["a.wav", "run=r"]
    assert not pop_debug(argv := ["debug=false"]) and argv == []
    assert pop_debug(argv := ["--debug", "x"]) and argv == ["x"]
    assert not pop_debug(["debugger=1"])
