"""Sound timing and peak memory: what every benchmark figure is built from.

A figure is the median of repeated calls after warm-up calls (first calls pay for lazy
initialisation, allocator growth and, on CUDA, kernel selection), with the device
synchronised around each call, so that ratios of two figures taken in one run compare
like with like.
"""

from __future__ import annotations

import ctypes
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["device_name", "peak_memory", "peak_rss", "sync", "timeit"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn: Callable[[], Any], device: torch.device, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_rss() -> int:
    """Peak resident memory of this process in bytes. Linux's ``VmHWM`` belongs to the
    process image and starts afresh at exec; ``ru_maxrss`` does not (a spawned child
    inherits its parent's peak), so it is only the fallback."""
    status = _status("VmHWM")
    if status is not None:
        return status
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status(key: str) -> int | None:
    path = Path("/proc/self/status")
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return None


def _return_freed_memory() -> None:
    """Hand the memory glibc keeps from freed blocks back to the system (``malloc_trim``),
    so that a call's peak resident memory is measured above what is in use, not above
    heap kept from earlier calls (which the call would reuse unseen)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_cpu_peak() -> bool:
    """Reset this process's peak resident memory (Linux >= 4.0: ``clear_refs`` value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Memory ``fn`` needs above what is held before it, in MiB; None where unmeasurable.

    CUDA: torch's peak allocation during the call minus the allocation before it. CPU: the
    process's peak resident set during the call (reset first) minus the resident set before
    it, which includes what torch's allocator and the libraries touch for the first time;
    call ``fn`` once before so that one-time costs are not counted.
    """
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    _return_freed_memory()
    if not _reset_cpu_peak():
        return None
    before = _status("VmRSS")
    fn()
    peak = _status("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 2**20
