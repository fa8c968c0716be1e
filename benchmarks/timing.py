"""Shared timing for the benchmark scripts: interleaved rounds, medians, CUDA synchronised.

CUDA kernels run asynchronously: a call returns once its work is queued. Every timed region here
starts and ends with `synchronize(device)`, so a time covers the GPU's work, not just the launches.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on `device` (CUDA only; CPU work is already done when a call returns)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of `fn` takes, including the device work it queued."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    *,
    device: torch.device = torch.device("cpu"),
    warm_up: bool = True,
) -> dict[str, float]:
    """Median seconds of each function, timed one run of each per round so that slow drifts of a
    shared machine hit every implementation alike."""
    if warm_up:
        for fn in fns.values():
            fn()  # allocator, thread pool, lazy init, CUDA kernels' first launch
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}


def describe_device(device: torch.device) -> str:
    """One line for a table's header: what ran the benchmark."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
