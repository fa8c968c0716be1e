"""Checks shared by the file readers: the file exists, and what it held is non-empty and finite."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def existing_file(path: str | os.PathLike, caller: str) -> Path:
    """`path` as a `Path`; FileNotFoundError naming `caller` when no file is there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: no file at {path}")
    return path


def finite_samples(array: np.ndarray, path: Path | str, caller: str) -> np.ndarray:
    """`array` unchanged; ValueError naming `caller` and `path` when it is empty or holds NaN / inf."""
    if array.size == 0:
        raise ValueError(f"{caller}: {path} holds no samples")
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise ValueError(f"{caller}: {path} contains {bad} non-finite values (NaN or inf)")
    return array
