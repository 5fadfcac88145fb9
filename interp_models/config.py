"""Config helpers: build objects from config sections, naming any unknown key."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def construct(
    factory: Callable[..., T], section: Mapping[str, Any], prefix: str, **extra: Any
) -> T:
    """Call ``factory(**section, **extra)``, rejecting keys it does not accept.

    Raises
    ------
    ValueError naming the offending key as ``prefix.key`` and the accepted keys; a plain
    ``ValueError`` from ``factory`` (a bad value) gets ``prefix`` put in front, if its
    message does not start with it already.
    """
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not accepts_any:
        check_keys(section, params, prefix, hidden=extra)
    try:
        return factory(**section, **extra)
    except ValueError as exc:
        if type(exc) is not ValueError or str(exc).startswith(prefix):
            raise
        raise ValueError(f"{prefix}: {exc}") from exc


def check_keys(
    section: Mapping[str, Any], accepted: Collection[str], prefix: str, hidden: Collection[str] = ()
) -> None:
    """Reject a key of ``section`` that is not in ``accepted``.

    ``construct`` checks a factory's own parameters this way; call it directly when a
    factory forwards ``**kwargs`` (a DataModule passing its data class's keys on), so
    that a typo is still named rather than surfacing as a ``TypeError``.

    Raises
    ------
    ValueError naming the first unknown key as ``prefix.key`` and the accepted keys, less
    ``hidden`` (those the caller supplies itself).
    """
    unknown = sorted(set(section) - set(accepted))
    if unknown:
        allowed = ", ".join(k for k in accepted if k not in hidden)
        raise ValueError(f"{prefix}.{unknown[0]}: unknown config key (accepted: {allowed})")
