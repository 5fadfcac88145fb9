"""The ``evaluate`` command lines share one argument parser: a declared option table."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluate.cli_args import (
    RUN,
    Option,
    choice,
    legacy_flags,
    names,
    number,
    parse_file_and_options,
    parse_options,
    whole_number,
)

OPTIONS = (
    RUN,
    Option("out"),
    Option("threshold", number, default=0.2),
    Option("n", whole_number, default=3),
    Option("target", choice("abnormal", "normal")),
)


def test_path_and_options_are_split_and_converted():
    path, opts = parse_file_and_options(["a.wav", "run=r", "out=o=1", "n=7"], OPTIONS, "usage")
    assert path == Path("a.wav")
    assert opts == {"run": "r", "out": "o=1", "threshold": 0.2, "n": 7, "target": None}


def test_repeatable_option_collects_a_list_and_defaults_to_empty():
    table = (Option("run", required=True, repeat=True), Option("methods", names, default=("a",)))
    assert parse_options(["run=x", "run=y", "methods=b,,c"], table, "u") == {
        "run": ["x", "y"],
        "methods": ("b", "c"),
    }
    assert parse_options([], (Option("run", repeat=True),), "u") == {"run": []}


def test_old_name_is_accepted_with_a_note(capsys):
    _, opts = parse_file_and_options(["a.wav", "ckpt=r"], OPTIONS, "usage")
    assert opts["run"] == "r"
    assert capsys.readouterr().err == "note: ckpt= is deprecated; use run=\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["a.wav", "run=r", "outt=o"], r"unknown option outt= \(accepted: \['n', 'out', "),
        (["a.wav"], "expected one recording and run=<run>"),
        (["a.wav", "b.wav", "run=r"], "expected one recording"),
        (["a.wav", "run=r", "threshold=high"], "threshold= must be a number, got 'high'"),
        (["a.wav", "run=r", "n=-1"], "n= must be a whole number, got '-1'"),
        (["a.wav", "run=r", "target=x"], "target= must be abnormal or normal, got 'x'"),
        (["a.wav", "run=r", "out=a", "out=b"], "out= given more than once"),
        (["a.wav", "ckpt=r", "run=r"], "run= given more than once"),
    ],
)
def test_bad_arguments_are_named(argv, message):
    with pytest.raises(SystemExit, match=message) as err:
        parse_file_and_options(argv, OPTIONS, "usage: ...", noun="recording")
    assert str(err.value).endswith("usage: ...") and err.value.code != 0


def test_no_file_expected():
    with pytest.raises(SystemExit, match="unexpected argument 'a.wav'"):
        parse_options(["a.wav", "run=r"], OPTIONS, "usage")
    with pytest.raises(SystemExit, match="^expected run=<run>"):
        parse_options(["out=o"], OPTIONS, "usage")


def test_allowed_keys_pass_through():
    opts = parse_options(["x.wav", "run=r", "seg=s"], (RUN,), "u", file="clip", allow=["seg"])
    assert opts == {"file": Path("x.wav"), "run": "r", "seg": "s"}
    with pytest.raises(SystemExit, match=r"accepted: \['run', 'seg'\]"):
        parse_options(["x.wav", "run=r", "colour=red"], (RUN,), "u", file="clip", allow=["seg"])


def test_help_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_options(["--help"], OPTIONS, "python -m x run=<run>")
    assert exit_.value.code == 0 and capsys.readouterr().out == "python -m x run=<run>\n"


def test_legacy_flags_become_options(capsys):
    argv = ["--out", "b", "--quick", "--run=r", "clips=3"]
    assert legacy_flags(argv, flags=("quick",)) == ["out=b", "quick=true", "run=r", "clips=3"]
    assert capsys.readouterr().err.count("is deprecated") == 3
    with pytest.raises(SystemExit, match="--clips expects a value"):
        legacy_flags(["--clips"])
