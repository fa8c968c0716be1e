"""Checks shared by the file readers: the file exists, holds plain data only (no pickled Python objects:
they could run code when read), and what it held is non-empty and finite."""

from __future__ import annotations

import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

# numpy's refusals under allow_pickle=False: an object array, and a file that is not .npy/.npz (maybe a pickle)
_NUMPY_OBJECTS, _NUMPY_NOT_ARRAYS = "Object arrays cannot be loaded", "contains pickled (object) data"


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


def _refusal(path: Path | str) -> str:
    """The message refusing a file that holds pickled Python objects."""
    return (f"refusing to load {path}: it carries pickled Python objects that are not plain tensors or arrays, "
            "and unpickling them could run arbitrary code; hypersiren never writes such files, so this one comes "
            "from elsewhere or was altered")


def _pickled(path: Path) -> bool:
    """Whether `path` is a zip archive (torch's format: a pickle inside) or starts with a whole pickle, judged
    by reading its opcodes (`pickletools`), never by running them."""
    if zipfile.is_zipfile(path):
        return True
    try:
        with open(path, "rb") as f:
            for _ in pickletools.genops(f):
                pass
    except Exception:  # pickletools raises several types for bytes that are not a pickle
        return False
    return True


def load_torch_file(path: Path, what: str) -> Any:
    """`torch.load(path, weights_only=True)` onto the CPU. ValueError naming `path` when the file carries
    pickled Python objects (refused unread: none of their code runs) or cannot be read as `what`."""
    try:
        with warnings.catch_warnings():  # torch warns of a plain pickle's protocol before refusing it
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        if isinstance(error, pickle.UnpicklingError) and _pickled(path):
            raise ValueError(_refusal(path)) from error
        line = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(f"cannot read {path} as {what}: {type(error).__name__}: {line}") from error


@contextmanager
def open_numpy_file(path: Path, caller: str, what: str = "a numpy .npy or .npz file") -> Iterator[Any]:
    """`np.load(path, allow_pickle=False)` as a context: the array of an `.npy`, the open archive of an `.npz`.
    A read that fails, inside the block too, raises ValueError naming `caller` and `path`: object arrays and
    pickles are refused unread, anything else cannot be read as `what`. The block's own errors pass through."""
    try:
        loaded = np.load(path, allow_pickle=False)
        with loaded if isinstance(loaded, np.lib.npyio.NpzFile) else nullcontext(loaded) as opened:
            yield opened
    except ValueError as error:
        if _NUMPY_OBJECTS in str(error) or (_NUMPY_NOT_ARRAYS in str(error) and _pickled(path)):
            raise ValueError(f"{caller}: {_refusal(path)}") from error
        if _NUMPY_NOT_ARRAYS in str(error):
            raise ValueError(f"{caller}: cannot read {path} as {what}: not an .npy or .npz file") from error
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{caller}: cannot read {path} as {what}: {error}") from error
