"""Run folders: creation rules, atomic checkpoints and JSON files.

A run folder holds `config.json`, TensorBoard events, `checkpoint.pt` and `metrics.json`. An existing,
non-empty folder is an error unless the caller resumes or overwrites. Every file is written to a
temporary name in the same folder and renamed into place, so an interrupted write never replaces
the last good file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def prepare_run_dir(path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Create the run folder; refuse to reuse a non-empty one unless `resume` or `overwrite`."""
    if resume and overwrite:
        raise ValueError("prepare_run_dir: choose one of resume and overwrite, not both")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"run folder {path} is a file")
    used = path.is_dir() and any(path.iterdir())
    if resume:
        if not (path / CHECKPOINT).is_file():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT} in {path}")
    elif used:
        if not overwrite:
            raise FileExistsError(f"run folder {path} already exists and is not empty; pass --resume to continue it "
                                  "or --overwrite to start over")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """`torch.save` to a temporary file, then rename over `path`."""
    atomic_write(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"cannot read {path} as a hypersiren checkpoint: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}") from error


def load_kind(path: str | os.PathLike, kinds: str | tuple[str, ...], where: str, *, expected: str | None = None,
              hints: dict[str | None, str] | None = None) -> dict[str, Any]:
    """A checkpoint-like file's state, refused unless its "kind" entry is one of `kinds`: the message says
    `"{where}: {path} is a file of kind {kind!r}, expected {expected}"` (default: the kinds), followed by
    `hints[kind]` when given (e.g. how to load a file of that other kind)."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    state = load_checkpoint(path)
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in kinds:
        wanted = expected or " or ".join(map(repr, kinds))
        raise ValueError(f"{where}: {path} is a file of kind {kind!r}, expected {wanted}{(hints or {}).get(kind, '')}")
    return state


def write_json(path: str | os.PathLike, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())
