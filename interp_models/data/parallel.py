"""Clip-by-clip dataset writing, optionally spread over spawned worker processes."""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

R = TypeVar("R")


def write_ranges(
    write_range: Callable[[tuple[Any, str, int, int]], list[R]],
    config: Any,
    root: Path,
    n: int,
    workers: int = 1,
) -> list[R]:
    """Rows of clips ``0..n-1``, in order: ``write_range((config, root, start, stop))``.

    Parameters
    ----------
    write_range : picklable (module-level) function writing clips ``start..stop-1``
        under ``root`` and returning one row per clip.
    config : the generator's configuration, passed through.
    root : dataset directory.
    n : number of clips.
    workers : > 1 spreads contiguous chunks over that many spawned processes (the caller's
        main module must then be guarded by ``if __name__ == "__main__"``).
    """
    if workers <= 1:
        return write_range((config, str(root), 0, n))
    # Contiguous chunks keep the order; spawn avoids forking a parent's thread pools.
    bounds = np.linspace(0, n, 4 * workers + 1).astype(int)
    chunks = [(config, str(root), a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with get_context("spawn").Pool(workers) as pool:
        return [r for chunk in pool.map(write_range, chunks) for r in chunk]
