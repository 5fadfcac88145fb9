"""One argument parser for the ``evaluate`` command lines: ``[file] key=value ...``.

Each command declares its options as a table of :class:`Option` (name, converter, default,
required, repeatable, old names) and gets a dict back::

    OPTIONS = (RUN, Option("out"), Option("threshold", number, default=0.2))
    clip, opts = parse_file_and_options(argv, OPTIONS, USAGE)   # explain: one clip
    opts = parse_options(argv, OPTIONS, USAGE)                  # report, bench: no file

Every run is named by ``run=`` (:data:`RUN`); the old ``ckpt=`` is still accepted, with a
one-line note on stderr. A malformed command line raises :class:`UsageError` (one line,
exit status 2) naming the unknown key, the missing argument or the bad value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluate.cli_errors import UsageError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One ``name=value`` option of a command line.

    Attributes
    ----------
    name : the key.
    convert : turns the text into the value; a ``ValueError`` saying what the value must
        be (``"must be a number"``) becomes ``UsageError("<name>= must be ..., got '<text>'")``.
    default : the value when the option is not given (a repeatable option: ``[]`` if None).
    required : whether the command line must give it.
    repeat : whether it may be given more than once (the value is then a list).
    metavar : how the value is shown in a "missing" message (``run=<run>``).
    old_names : earlier names of the option, still accepted with a note on stderr.
    """

    name: str
    convert: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    repeat: bool = False
    metavar: str = "<value>"
    old_names: tuple[str, ...] = ()


#: The run a command works on (a run directory, or a checkpoint inside one).
RUN = Option("run", required=True, metavar="<run>", old_names=("ckpt",))


def whole_number(text: str) -> int:
    """``"12"`` -> 12 (digits only)."""
    if not text.isdigit():
        raise ValueError("must be a whole number")
    return int(text)


def number(text: str) -> float:
    """``"0.2"`` -> 0.2."""
    try:
        return float(text)
    except ValueError:
        raise ValueError("must be a number") from None


def boolean(text: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0``."""
    if text.lower() not in _TRUE | _FALSE:
        raise ValueError("must be true or false")
    return text.lower() in _TRUE


def names(text: str) -> tuple[str, ...]:
    """``"a,b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(name for name in text.split(",") if name)


def choice(*values: str) -> Callable[[str], str]:
    """A converter accepting exactly ``values``."""

    def convert(text: str) -> str:
        if text not in values:
            raise ValueError(f"must be {' or '.join(values)}")
        return text

    return convert


def deprecation_note(old: str, new: str) -> None:
    """The one stderr line saying that ``old=`` is now ``new=``."""
    print(f"note: {old}= is deprecated; use {new}=", file=sys.stderr, flush=True)


def parse_options(
    argv: Sequence[str],
    options: Sequence[Option],
    usage: str,
    file: str | None = None,
    allow: Sequence[str] = (),
) -> dict[str, Any]:
    """``argv`` (``key=value`` options, and one file if ``file`` names it) as a dict.

    The dict holds every declared option (its default when not given) and, with ``file``,
    the file as a ``Path`` under the key ``"file"``. ``allow`` names further keys that are
    passed through as strings (a dispatcher parsing for a command it hands on to).

    Raises
    ------
    UsageError (a ``SystemExit``, status 2) naming an unknown option (with the accepted
    ones), an argument that is not ``key=value``, an option given twice, a value that does
    not convert, or what is missing (``expected one clip and run=<run>``); ``usage`` is
    appended. ``-h`` / ``--help`` prints the usage and exits with status 0.
    """
    table = {o.name: o for o in options}
    renamed = {old: o.name for o in options for old in o.old_names}
    files: list[str] = []
    given: dict[str, list[str]] = {}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(usage.strip())
            raise SystemExit(0)
        key, sep, value = arg.partition("=")
        if not sep:
            if file is None:
                raise UsageError(f"unexpected argument {arg!r}", usage)
            files.append(arg)
            continue
        if key in renamed:
            deprecation_note(key, renamed[key])
            key = renamed[key]
        if key not in table and key not in allow:
            accepted = sorted({*table, *allow})
            raise UsageError(f"unknown option {key}= (accepted: {accepted})", usage)
        given.setdefault(key, []).append(value)
    missing = [o for o in options if o.required and o.name not in given]
    if (file is not None and len(files) != 1) or missing:
        wanted = [f"one {file}"] if file is not None else []
        wanted += [f"{o.name}={o.metavar}" for o in options if o.required]
        raise UsageError(f"expected {' and '.join(wanted)}", usage)
    opts: dict[str, Any] = {"file": Path(files[0])} if file is not None else {}
    for key, values in given.items():
        option = table.get(key)
        if option is None:  # allowed, passed through
            opts[key] = values[-1]
            continue
        if len(values) > 1 and not option.repeat:
            raise UsageError(f"{key}= given more than once", usage)
        converted = [_convert(option, value, usage) for value in values]
        opts[key] = converted if option.repeat else converted[0]
    for option in options:
        if option.name not in opts:
            default = option.default
            opts[option.name] = list(default or []) if option.repeat else default
    return opts


def _convert(option: Option, value: str, usage: str) -> Any:
    try:
        return option.convert(value)
    except ValueError as exc:
        raise UsageError(f"{option.name}= {exc}, got {value!r}", usage) from None


def parse_file_and_options(
    argv: Sequence[str], options: Sequence[Option], usage: str, noun: str = "clip"
) -> tuple[Path, dict[str, Any]]:
    """``parse_options`` for a command taking one ``noun`` (a clip, a recording): the file
    and the options."""
    opts = parse_options(argv, options, usage, file=noun)
    return opts.pop("file"), opts


def legacy_flags(argv: Sequence[str], flags: Sequence[str] = ()) -> list[str]:
    """``--key value`` / ``--key=value`` (and each bare ``--flag`` in ``flags``) rewritten as
    ``key=value`` (``flag=true``), with a note on stderr: the argparse form a command had
    before it took ``key=value`` options."""
    out: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--") or arg in ("--", "--help"):
            out.append(arg)
            continue
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if key in flags:
                value = "true"
            elif args:
                value = args.pop(0)
            else:
                raise UsageError(f"{arg} expects a value; write {key}=<value>")
        print(f"note: {arg.split('=')[0]} is deprecated; use {key}=", file=sys.stderr)
        out.append(f"{key}={value}")
    return out


def index_option(opts: Mapping[str, Any], key: str, names: Sequence[str]) -> int | None:
    """``opts[key]``, a name in ``names`` or an index into it, as an index (None if absent).

    Checked once the run is loaded (the names are the run's classes).

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
