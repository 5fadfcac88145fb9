"""Arguments of the ``explain`` command lines: one input file and ``key=value`` options."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path


def parse_file_and_options(
    argv: Sequence[str], keys: Collection[str], required: str, usage: str, noun: str = "clip"
) -> tuple[Path, dict[str, str]]:
    """Split ``path key=value ...`` into the path and the options.

    Raises
    ------
    SystemExit naming an unknown option (with the accepted ones), or saying that exactly one
    ``noun`` and the ``required`` option are expected; ``usage`` is appended to either.
    """
    paths = [a for a in argv if "=" not in a]
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = sorted(set(opts) - set(keys))
    if unknown:
        raise SystemExit(f"unknown option {unknown[0]}= (accepted: {sorted(keys)})\n{usage}")
    if len(paths) != 1 or required not in opts:
        raise SystemExit(f"expected one {noun} and {required}=<run>\n{usage}")
    return Path(paths[0]), opts
