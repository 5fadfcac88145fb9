"""Config helpers: build objects from config sections, naming any unknown key."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
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
        unknown = sorted(set(section) - set(params))
        if unknown:
            allowed = ", ".join(k for k in params if k not in extra)
            raise ValueError(f"{prefix}.{unknown[0]}: unknown config key (accepted: {allowed})")
    try:
        return factory(**section, **extra)
    except ValueError as exc:
        if type(exc) is not ValueError or str(exc).startswith(prefix):
            raise
        raise ValueError(f"{prefix}: {exc}") from exc
