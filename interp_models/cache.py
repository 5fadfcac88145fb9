"""On-disk cache for generated data, decoded audio and feature tensors.

Entries are keyed by a hash of the parameters that produced them, built once under a
file lock and published atomically (written to a temporary name, then renamed), so
several processes starting at once never see a half-written entry and never build the
same entry twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

_COMPLETE = ".complete"


def default_cache_dir() -> Path:
    """Cache root: ``$INTERP_MODELS_CACHE`` or ``~/.cache/interp_models``."""
    env = os.environ.get("INTERP_MODELS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "interp_models"


def params_key(params: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit key of a JSON-serialisable parameter mapping."""
    blob = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _lock(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def cached_array(path: Path, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Load the ``.npy`` array at ``path``, building and saving it first if absent."""
    path = Path(path)
    with _lock(path):
        if not path.exists():
            array = np.ascontiguousarray(build())
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, array, allow_pickle=False)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return array
    return np.load(path, allow_pickle=False)


def cached_dir(path: Path, build: Callable[[Path], None]) -> Path:
    """Return directory ``path``, first filling it with ``build(tmp_dir)`` if absent.

    ``build`` writes into a fresh temporary directory which is renamed to ``path`` only
    once it returns, so an interrupted build leaves no partial entry behind.
    """
    path = Path(path)
    with _lock(path):
        if (path / _COMPLETE).exists():
            return path
        if path.exists():  # left over from a crash before the marker was written
            shutil.rmtree(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".tmp"))
        try:
            build(tmp)
            (tmp / _COMPLETE).write_text("ok\n")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return path


def cached_file(path: Path, build: Callable[[Path], None]) -> Path:
    """Return file ``path``, first writing it with ``build(tmp_path)`` if absent."""
    path = Path(path)
    with _lock(path):
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
            os.close(fd)
            try:
                build(Path(tmp))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    return path


def generator_key(config: Any, version: int) -> str:
    """Cache key of a data generator's dataclass ``config`` under its ``version``."""
    return params_key({**asdict(config), "generator_version": version})


def cached_dataset(
    name: str, key: str, build: Callable[[Path], Any], cache_dir: Path | None = None
) -> Path:
    """Directory ``<cache_dir>/<name>/<key>`` (``default_cache_dir()`` when ``cache_dir`` is
    None), filled once by ``build(tmp_dir)`` under a file lock (``cached_dir``)."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cached_dir(base / name / key, build)


def arrays_digest(arrays: list[np.ndarray]) -> str:
    """Content hash of a list of arrays (each one's shape, dtype and bytes)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.data)
    return h.hexdigest()[:16]
