"""Shared timing for the benchmark scripts: interleaved rounds, medians."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int, *, warm_up: bool = True) -> dict[str, float]:
    """Median seconds of each function, timed one run of each per round so that slow drifts of a
    shared machine hit every implementation alike."""
    if warm_up:
        for fn in fns.values():
            fn()  # allocator, thread pool, lazy init
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
