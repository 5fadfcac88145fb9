"""One ``error:`` line, not a traceback, when a command line is given a bad file, key or value.

Every command line (``python -m train.fit`` and each ``python -m evaluate.*``) ends a
*user error* with one line on stderr, ``error: <message>``, and exit status 1 (2 for a
malformed command line). The message is the exception's own, which names the offending
file, key or value; newlines are collapsed.

User errors are the exceptions bad input raises: the package's ``InputError`` (e.g.
``AudioReadError``), ``OSError`` (missing or unreadable files), ``ValueError``,
``KeyError``, ``ImportError`` (a bad ``_target_``), ``yaml`` and unpickling errors (a
corrupt run file or checkpoint), every Hydra and OmegaConf error (config composition,
unknown keys, validation, interpolation), and ``SystemExit`` with a message. Everything
else (``RuntimeError``, ``TypeError``, ``AttributeError``, ``AssertionError``, ...) is
taken for a bug and keeps Python's traceback. This is a trade-off: a bug that happens to
raise ``ValueError`` is also reported in one line; ask for its traceback as below.

The full traceback of any error: ``HYDRA_FULL_ERROR=1`` in the environment (Hydra's own
convention, honoured by every command line here) or the option ``debug=true``
(``--debug`` also works for ``evaluate.bench``; ``train.fit`` accepts ``debug=true`` once
its config has a ``debug`` key).
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from interp_models.errors import InputError

T = TypeVar("T")

USER_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
    OSError,
    ValueError,
    KeyError,
    ImportError,
    yaml.YAMLError,
    pickle.UnpicklingError,
    HydraException,
    OmegaConfBaseException,
)
#: Set, with ``HYDRA_FULL_ERROR=1``, by ``run_hydra_cli`` itself (and inherited by the
#: DDP ranks it starts): Hydra then lets errors through to be reported in one line.
_SET_BY_CLI = "INTERP_MODELS_CLI_SET_HYDRA_FULL_ERROR"
_TRUE = {"1", "true", "yes", "on"}


class UsageError(SystemExit):
    """A malformed command line (exit status 2); ``str()`` is the message, then the usage."""

    def __init__(self, message: str, usage: str = "") -> None:
        usage = usage.strip()
        super().__init__(f"{message}\n{usage}" if usage else message)
        self.message, self.usage = message, usage


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are ``UsageError``s (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage().removeprefix("usage: "))


def traceback_requested() -> bool:
    """Whether the user set ``HYDRA_FULL_ERROR=1`` (not this module, for Hydra's sake)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and not os.environ.get(_SET_BY_CLI)


def describe(exc: BaseException) -> str:
    """``exc``'s message on one line, with the cause of a Hydra error."""
    if isinstance(exc, UsageError):
        text = f"{exc.message} (usage: {exc.usage})" if exc.usage else exc.message
    elif isinstance(exc, SystemExit):
        text = str(exc.code)
    elif isinstance(exc, KeyError) and not isinstance(exc, OmegaConfBaseException):
        key = exc.args[0] if exc.args else ""
        text = key if isinstance(key, str) and " " in key else f"missing key {key!r}"
    else:
        text = str(exc) or type(exc).__name__
    text = text.split("\nConfig search path:")[0]  # Hydra's, after a missing config
    if isinstance(exc, HydraException) and exc.__cause__ is not None:
        cause = str(exc.__cause__).strip()
        text += f" ({cause.splitlines()[0]})" if cause else ""
    return " ".join(text.split())


def _is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, SystemExit):
        return not isinstance(exc.code, int | None)
    return isinstance(exc, USER_ERRORS)


def _exit(exc: BaseException, prefix: str = "") -> NoReturn:
    sys.stdout.flush()
    print(f"error: {prefix}{describe(exc)}", file=sys.stderr, flush=True)
    raise SystemExit(2 if isinstance(exc, UsageError) else 1) from None


def _call(function: Callable[[], T], debug: bool = False, prefix: str = "") -> T:
    """``function()``, a user error ending the process with one line (unless debugging)."""
    if debug or traceback_requested():
        return function()
    try:
        return function()
    except (Exception, SystemExit) as exc:
        if not _is_user_error(exc):
            raise
        _exit(exc, prefix)


def pop_debug(argv: list[str]) -> bool:
    """Remove ``debug=<bool>`` / ``--debug`` from ``argv``; whether debugging was asked."""
    debug = False
    for arg in list(argv):
        key, sep, value = arg.partition("=")
        if (sep and key in ("debug", "+debug")) or arg == "--debug":
            argv.remove(arg)
            debug = value.lower() in _TRUE if sep else True
    return debug


def run_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> None:
    """Run ``main(argv)`` (default: ``sys.argv[1:]``) as a command line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = pop_debug(args)
    _call(lambda: main(args), debug)


def run_hydra_cli(main: Callable[[], Any]) -> None:
    """Run a ``hydra.main`` function as a command line; its task function should be
    decorated with ``hydra_task`` so errors inside a job are reported the same way."""
    debug = traceback_requested() or pop_debug(list(sys.argv[1:]))
    if not debug:
        # Hydra prints a (trimmed) traceback itself unless HYDRA_FULL_ERROR=1; with it,
        # config composition errors reach ``_call``.
        os.environ["HYDRA_FULL_ERROR"] = "1"
        os.environ[_SET_BY_CLI] = "1"
    _call(main, debug)


def hydra_task(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Decorate a Hydra task function: a user error in a job ends the process with one
    line, prefixed in a multirun by the job's number and overrides (later jobs do not
    run). The config's ``debug`` key, if any, keeps the traceback."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> T:
        return _call(lambda: task(cfg), bool(cfg.get("debug", False)), _job_prefix())

    return wrapper


def _job_prefix() -> str:
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return ""
    job = HydraConfig.get().job
    return f"job {job.num} ({' '.join(HydraConfig.get().overrides.task)}): "
