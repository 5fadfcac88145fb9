"""The ``explain`` command lines share one argument parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluate.cli_args import parse_file_and_options

KEYS = {"run", "out"}


def test_path_and_options_are_split():
    path, opts = parse_file_and_options(["a.wav", "run=r", "out=o=1"], KEYS, "run", "usage")
    assert path == Path("a.wav") and opts == {"run": "r", "out": "o=1"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["a.wav", "run=r", "outt=o"], r"unknown option outt= \(accepted: \['out', 'run'\]\)"),
        (["a.wav"], "expected one recording and run=<run>"),
        (["a.wav", "b.wav", "run=r"], "expected one recording"),
    ],
)
def test_bad_arguments_are_named(argv, message):
    with pytest.raises(SystemExit, match=message) as err:
        parse_file_and_options(argv, KEYS, "run", "usage: ...", noun="recording")
    assert str(err.value).endswith("usage: ...")
