"""Checks shared by the file readers: the file exists, holds plain data only (no pickled Python objects:
they could run code when read), and what it held is non-empty and finite."""

from __future__ import annotations

import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

# numpy's refusals under allow_pickle=False: an object array, and a file that is not .npy/.npz (maybe a pickle)
_NUMPY_OBJECTS, _NUMPY_NOT_ARRAYS = "Object arrays cannot be loaded", "contains pickled (object) data"
_MAPPED_OBJECTS = "Python objects in dtype"  # numpy's refusal to memory-map an object array
FLOAT32_MAX = float(np.finfo(np.float32).max)


def existing_file(path: str | os.PathLike, caller: str) -> Path:
    """`path` as a `Path`; FileNotFoundError naming `caller` when no file is there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: no file at {path}")
    return path


def real_numbers(array: np.ndarray, path: Path | str, caller: str, what: str = "its values") -> np.ndarray:
    """`array` unchanged; ValueError naming `caller` and `path` unless it holds real numbers (bool, integer
    or floating point: not complex, text, dates or records)."""
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: expected real numbers for {what} in {path}, got dtype {array.dtype}")
    return array


def finite_samples(array: np.ndarray, path: Path | str, caller: str) -> np.ndarray:
    """`array` unchanged; ValueError naming `caller` and `path` when it is empty, not real numbers, or holds
    NaN, inf or values beyond float32's range (every reader returns float32)."""
    real_numbers(array, path, caller)
    if array.size == 0:
        raise ValueError(f"{caller}: {path} holds no samples")
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise ValueError(f"{caller}: {path} contains {bad} non-finite values (NaN or inf)")
    largest = float(np.abs(array).max())  # a Python float: float16 cannot hold the bound
    if largest > FLOAT32_MAX:
        raise ValueError(f"{caller}: {path} holds values up to {largest:.3g} in size, beyond float32's range "
                         f"({FLOAT32_MAX:.3g})")
    return array


def error_text(error: BaseException) -> str:
    """`Type: first line of the message` of an error a file-format package raised: one line for our messages."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


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
        raise ValueError(f"cannot read {path} as {what}: {error_text(error)}") from error


def _unreadable(error: Exception, path: Path, caller: str, what: str, part: str = "") -> ValueError:
    """The ValueError for a numpy file (or its array `part`) that `np.load` could not read: a refusal for
    object arrays and pickles, else what numpy found wrong (a truncated file, a bad header, ...)."""
    text = str(error)
    if _NUMPY_OBJECTS in text or _MAPPED_OBJECTS in text or (_NUMPY_NOT_ARRAYS in text and _pickled(path)):
        return ValueError(f"{caller}: {_refusal(path)}")
    if _NUMPY_NOT_ARRAYS in text:
        return ValueError(f"{caller}: cannot read {path} as {what}: not an .npy or .npz file")
    return ValueError(f"{caller}: cannot read {part}{path} as {what}: {error_text(error)}")


class NumpyArchive:
    """An open `.npz` as `open_numpy_file` yields it: `files`, `key in archive` and `archive[key]`. Reading an
    array that is truncated, corrupt or of objects raises ValueError naming the file and the array."""

    def __init__(self, npz: np.lib.npyio.NpzFile, path: Path, caller: str, what: str):
        self._npz, self._path, self._caller, self._what = npz, path, caller, what

    @property
    def files(self) -> list[str]:
        return self._npz.files

    def __contains__(self, key: str) -> bool:
        return key in self._npz.files

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._npz.files:
            raise KeyError(f"{self._caller}: {self._path} has no array {key!r}; it has {sorted(self._npz.files)}")
        try:
            return self._npz[key]
        except Exception as error:  # numpy and zipfile raise several types for a damaged member
            raise _unreadable(error, self._path, self._caller, self._what, f"array {key!r} of ") from error


@contextmanager
def open_numpy_file(path: Path, caller: str, what: str = "a numpy .npy or .npz file") -> Iterator[Any]:
    """`np.load(path, allow_pickle=False)` as a context: the array of an `.npy`, or a `NumpyArchive` of an
    `.npz`. A read that fails (opening the file, or an array of the archive inside the block) raises
    ValueError naming `caller` and `path`: object arrays and pickles are refused unread, anything else cannot
    be read as `what`. The block's own errors pass through."""
    with open(path, "rb") as file:  # ours to close: numpy leaves its own open when a zip turns out unreadable
        try:
            loaded = np.load(file, allow_pickle=False)
        except Exception as error:  # numpy, zipfile and zlib raise several types for a file that is not an array
            raise _unreadable(error, path, caller, what) from error
        archive = isinstance(loaded, np.lib.npyio.NpzFile)
        if Path(path).suffix.lower() in (".npy", ".npz") and archive != (Path(path).suffix.lower() == ".npz"):
            found = "an .npz archive" if archive else "a single .npy array"
            raise ValueError(f"{caller}: cannot read {path} as {what}: it holds {found}, which its suffix does not say")
        if not archive:
            yield loaded
            return
        with loaded:
            yield NumpyArchive(loaded, path, caller, what)


def memory_mapped(path: Path, caller: str, what: str = "a numpy .npy file") -> np.ndarray:
    """The array of an `.npy` file mapped read-only (`np.load(path, mmap_mode="r", allow_pickle=False)`): only
    its header is read here, its values as they are indexed. ValueError naming `caller` and `path` for a file
    that cannot be mapped: an `.npz` archive, a truncated or damaged file, an array of Python objects (refused
    unread)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # numpy raises several types for a file that is not an array
        raise _unreadable(error, path, caller, what) from error
    if not isinstance(array, np.ndarray):
        array.close()
        raise ValueError(f"{caller}: cannot memory-map {path}: it is an .npz archive, which is read whole; save its "
                         "array with np.save as an .npy file to stream it")
    return array
