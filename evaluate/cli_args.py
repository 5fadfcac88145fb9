"""Arguments of the ``explain`` command lines: one input file and ``key=value`` options."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from evaluate.cli_errors import UsageError


def parse_file_and_options(
    argv: Sequence[str], keys: Collection[str], required: str, usage: str, noun: str = "clip"
) -> tuple[Path, dict[str, str]]:
    """Split ``path key=value ...`` into the path and the options.

    Raises
    ------
    UsageError (a ``SystemExit``) naming an unknown option (with the accepted ones), or
    saying that exactly one ``noun`` and the ``required`` option are expected; ``usage`` is
    appended to either.
    """
    paths = [a for a in argv if "=" not in a]
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = sorted(set(opts) - set(keys))
    if unknown:
        raise UsageError(f"unknown option {unknown[0]}= (accepted: {sorted(keys)})", usage)
    if len(paths) != 1 or required not in opts:
        raise UsageError(f"expected one {noun} and {required}=<run>", usage)
    return Path(paths[0]), opts


def float_option(opts: Mapping[str, str], key: str, default: float) -> float:
    """``opts[key]`` (or ``default``) as a float; ValueError naming ``key=`` otherwise."""
    try:
        return float(opts.get(key, default))
    except ValueError:
        raise ValueError(f"{key}= must be a number, got {opts[key]!r}") from None


def index_option(opts: Mapping[str, str], key: str, names: Sequence[str]) -> int | None:
    """``opts[key]``, a name in ``names`` or an index into it, as an index (None if absent).

    Raises
    ------
    ValueError naming ``key=``, the value and the accepted names.
    """
    value = opts.get(key)
    if value is None:
        return None
    if value.isdigit() and int(value) < len(names):
        return int(value)
    if value in names:
        return list(names).index(value)
    raise ValueError(f"{key}={value}: not one of {list(names)} or an index below {len(names)}")
