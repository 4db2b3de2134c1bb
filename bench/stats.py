"""Percentiles and summaries of repeated runs (nearest-rank; no interpolation surprises).

Every timing in the report is a median with its spread over at least three repeats: ``spread``
writes that the same way in every row ("median 46 ms (41-52 ms, 5 runs)").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``pct`` % of values at or below."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def seconds(value: float) -> str:
    """A duration for people: µs, ms or s with three significant digits."""
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def spread(
    values: Sequence[float], unit: Callable[[float], str] = seconds, what: str = "runs"
) -> str:
    """``median M (LOW-HIGH, N runs)``: the median and the range of the repeats."""
    low, high = min(values), max(values)
    return f"median {unit(median(values))} ({unit(low)} to {unit(high)}, {len(values)} {what})"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
