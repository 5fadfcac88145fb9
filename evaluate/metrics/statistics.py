"""Summary statistics every report uses: means with confidence half-widths, binomial
intervals and paired tests.

Written by hand because they are a few lines each and the reports need them on plain
per-clip lists (scipy's versions need array plumbing and give no Wilson interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mcnemar_exact", "mean_ci", "summarise", "wilson_interval"]


def summarise(per_clip: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Mean and 95% normal-approximation confidence half-width of each per-clip metric.

    Returns ``{key: mean, key_ci95: half-width, ..., "n_clips": n}``; the half-width is
    ``1.96 s / sqrt(n)`` (0 for a single clip).
    """
    out: dict[str, float] = {}
    for key, values in per_clip.items():
        v = np.asarray(values, dtype=np.float64)
        out[key] = float(v.mean())
        out[f"{key}_ci95"] = float(1.96 * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    out["n_clips"] = len(next(iter(per_clip.values()))) if per_clip else 0
    return out


def mean_ci(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, 95% normal-approximation half-width and count of the finite values.

    Values that are None or not finite (a clip a metric cannot score) are left out;
    ``(nan, nan, 0)`` when none is left.
    """
    v = np.asarray([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0
    ci = 1.96 * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else 0.0
    return float(v.mean()), float(ci), int(v.size)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n`` (95% for ``z = 1.96``).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n
    successes (Wilson, J. Am. Stat. Assoc. 1927). ``(nan, nan)`` for ``n = 0``.
    """
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value of paired successes ``a`` and ``b`` (same items).

    Only discordant pairs count: under the null each is equally likely to favour ``a`` or
    ``b``, so the p-value is the two-sided binomial(n_discordant, 1/2) tail (McNemar,
    Psychometrika 1947). 1.0 when there is no discordant pair.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired results differ in shape: {a.shape} vs {b.shape}")
    n01, n10 = int((~a & b).sum()), int((a & ~b).sum())
    n = n01 + n10
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n01, n10) + 1)) / 2**n
    return float(min(1.0, 2 * tail))
