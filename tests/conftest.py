"""Fixtures shared by the test files: a seeded generator, the devices to run on, float64 by default.

Tests marked `cuda` (directly, or through the "cuda" parameter of the `device` fixture) are skipped
where `torch.cuda.is_available()` is False; `pytest -m cuda` runs only them on a GPU machine.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import torch

NO_CUDA = "needs a CUDA device; torch.cuda.is_available() is False here"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each test using it runs on the CPU, and again on the GPU where there is one."""
    return torch.device(request.param)


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator seeded with 0: draw on the CPU, then `.to(device)`, so draws match across devices."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def float64() -> Iterator[torch.dtype]:
    """float64 as the default dtype for the test, restored afterwards even when the test fails."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(previous)
