"""Run folders: creation rules, a lock per run, atomic checkpoints, JSON files, and stopping on signals.

A run folder holds `config.json`, TensorBoard events, `checkpoint.pt` and `metrics.json`. An existing,
non-empty folder is an error unless the caller resumes or overwrites. Every file is written to a
temporary name in the same folder and renamed into place, so an interrupted write (a crash, kill -9, a
full disk) never replaces the last good file. While a run trains it holds `run.lock` (`run_lock`), so a
second run into the same folder is refused; `stop_requests` turns SIGINT / SIGTERM into a request that
the training loop honours after its current step.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from .io import load_torch_file

CHECKPOINT = "checkpoint.pt"
LOCK = "run.lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger(__name__)


class RunFolderError(OSError):
    """A run folder that cannot be used: a run that may still be running holds its lock, it is not
    writable, or a checkpoint could not be written (the previous one is kept)."""


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after writing its checkpoint. `exit_code` is 128 + the signal's
    number (130 for SIGINT, 143 for SIGTERM), the shell's status for a process ended by that signal."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step} with a checkpoint in {run_dir}; "
                         "pass --resume to continue it")
        self.signum, self.step, self.run_dir = signum, step, run_dir
        self.exit_code = 128 + signum


def prepare_run_dir(path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Create the run folder; refuse to reuse a non-empty one (its lock file aside) unless `resume` or
    `overwrite`, and to overwrite one that a run holds (`run_lock`). `RunFolderError` if it cannot be created."""
    if resume and overwrite:
        raise ValueError("prepare_run_dir: choose one of resume and overwrite, not both")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"run folder {path} is a file")
    used = path.is_dir() and any(p.name != LOCK for p in path.iterdir())
    if resume:
        if not (path / CHECKPOINT).is_file():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT} in {path}")
    elif used:
        if not overwrite:
            raise FileExistsError(f"run folder {path} already exists and is not empty; pass --resume to continue it "
                                  "or --overwrite to start over")
        _refuse_live_lock(path)
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _not_writable(path, error) from error
    return path


def _not_writable(path: Path, error: OSError) -> RunFolderError:
    return RunFolderError(f"run folder {path} is not writable: {error.strerror or error}")


def _lock_holder(lock: Path) -> tuple[str, bool] | None:
    """Who holds `lock` ("process 123", for messages) and whether it may still run; None when there is no lock.
    A process of another host cannot be checked from here, so it counts as running."""
    try:
        pid_text, host = lock.read_text().split()
        pid = int(pid_text)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable, or its writer has not written it yet
        return "an unknown process", True
    if host != socket.gethostname():
        return f"process {pid} on host {host}", True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid}", False
    except PermissionError:  # runs, as another user
        pass
    return f"process {pid}", True


def _refuse_live_lock(path: Path) -> str | None:
    """`RunFolderError` if a process that may still run holds the lock of `path`; else who left a stale lock
    there (None: no lock)."""
    holder = _lock_holder(path / LOCK)
    if holder is None:
        return None
    who, running = holder
    if running:
        raise RunFolderError(f"run folder {path} is in use by {who}: two runs cannot share a folder (if no run is "
                             f"using it, delete {path / LOCK})")
    return who


def _create_lock(lock: Path, content: str) -> bool:
    """Create `lock` holding `content` (O_CREAT | O_EXCL); False if it exists already."""
    try:
        f = open(lock, "x")
    except FileExistsError:
        return False
    try:
        with f:
            f.write(content)
    except BaseException:
        lock.unlink()
        raise
    return True


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold the run folder `path` for the block through `path/run.lock`, created exclusively with this process's
    id and host. A lock of a process that may still run (of this host and alive, or of another host) raises
    `RunFolderError` naming it; one left by an ended process of this host (kill -9, a crash) is taken over with
    a warning. Creating the lock is the check that the folder is writable (`RunFolderError` before any
    training). Temporary files of an interrupted write are removed once the lock is held; the lock is removed
    however the block ends."""
    lock, me = path / LOCK, f"{os.getpid()} {socket.gethostname()}\n"
    try:
        while not _create_lock(lock, me):
            stale = _refuse_live_lock(path)
            if stale is not None:
                log.warning("%s: taking over the stale lock of %s, which has ended", path, stale)
                lock.unlink(missing_ok=True)
    except RunFolderError:
        raise
    except OSError as error:
        raise _not_writable(path, error) from error
    for leftover in path.glob(".*.tmp"):  # atomic_write's, from a killed run
        leftover.unlink(missing_ok=True)
    try:
        yield
    finally:
        if lock.is_file() and lock.read_text() == me:
            lock.unlink()


@dataclass
class StopRequest:
    signum: int | None = None  # the first SIGINT / SIGTERM received, if any

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """For the block, the first SIGINT or SIGTERM is recorded in the yielded `StopRequest` instead of ending
    the process, so that a training loop can finish its step, write a checkpoint and stop. The handlers in
    place before come back at that first signal (a second Ctrl-C raises KeyboardInterrupt at once, the last
    checkpoint kept) and when the block ends. Python installs handlers only in the main thread; elsewhere this
    changes nothing and the request never fires."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def record(signum: int, frame) -> None:
        request.signum = signum
        restore()
        print(f"\n{signal.Signals(signum).name}: stopping after this step with a checkpoint (send it again to "
              "stop at once)", file=sys.stderr, flush=True)

    for s in STOP_SIGNALS:
        signal.signal(s, record)
    try:
        yield request
    finally:
        restore()


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
    return load_torch_file(path, "a hypersiren checkpoint")


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
