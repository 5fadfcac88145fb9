"""Errors caused by what the user gave (a file, a key, a value), not by the code."""

from __future__ import annotations


class InputError(Exception):
    """Base of the package's errors about user input.

    Command lines (``evaluate.cli_errors``) report these as one ``error:`` line; the
    message must therefore name the offending file, key or value.
    """


class NoUsableDataError(InputError, RuntimeError):
    """A dataset has no file that could be used (every one missing, unreadable or too short)."""
