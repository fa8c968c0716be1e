"""Faults of `train/train_prior.py`: kill -9 at random moments, SIGINT / SIGTERM, two runs into one folder,
an unwritable folder or full disk, a failed checkpoint write and a non-finite loss. Real subprocesses where
the fault is the process's (signals, exit status); the library in-process where a monkeypatch injects it."""

import errno
import importlib.util
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren import runs
from hypersiren.config import run_main
from hypersiren.prior import TrainConfig
from hypersiren.runs import CHECKPOINT, LOCK, RunFolderError, load_checkpoint, stop_requests

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "train" / "train_prior.py"
STEPS = 400
KILLS = 20
SMALL = ("data.resolution=8", "train.min_context=4", "train.max_context=16", "model.latent_dim=8", "model.rank=8",
         "model.encoder_hidden=16", "model.encoder_depth=2", "model.siren_hidden=16", "model.siren_depth=3",
         "model.head_hidden=16")  # the tiny preset, smaller: about 5 ms a step with a checkpoint every step
EVERY_STEP = ("--set", "train.checkpoint_every_steps=1")
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # as `one_thread` in this process: fast for tiny steps


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "faces.npz"
    np.savez(path, images=np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 1), dtype=np.uint8))
    return path


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_prior_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh(data: Path, out: Path, *extra) -> list[str]:
    """The arguments of a new run of `STEPS` steps into `out`."""
    sets = [arg for item in SMALL for arg in ("--set", item)]
    return ["--preset", "tiny", "--data", str(data), "--holdout", "0", "--batch-size", "2", "--image-every", "0",
            "--steps", str(STEPS), *sets, "--out", str(out), *map(str, extra)]


def train(script, *args) -> dict:
    """The script's `main`, in this process."""
    return script.main(script.parse_args([str(a) for a in args]))


def launch(*args, stderr) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, env=ONE_THREAD,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, env=ONE_THREAD,
                          capture_output=True, text=True, timeout=300)


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"the run ended (status {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after 120 s"
        time.sleep(0.005)


def stamp(path: Path) -> tuple[int, int] | None:
    """Which version of the file is at `path`: a rename puts a new inode there."""
    return (path.stat().st_ino, path.stat().st_mtime_ns) if path.exists() else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data, script) -> dict[str, torch.Tensor]:
    """The parameters after an uninterrupted run (checkpoints by time only)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    train(script, *fresh(data, out))
    return load_checkpoint(out / CHECKPOINT)["model"]


def assert_same_parameters(checkpoint: Path, reference: dict[str, torch.Tensor]) -> None:
    state = load_checkpoint(checkpoint)
    assert state["step"] == STEPS and state["model"].keys() == reference.keys()
    different = [name for name, value in state["model"].items() if not torch.equal(value, reference[name])]
    assert not different, f"not bit-identical to the uninterrupted run: {different}"


@pytest.mark.slow
def test_kill_9_at_20_random_moments_then_resume_ends_as_an_uninterrupted_run(tmp_path, data, reference):
    """Each launch is killed (a fixed seed draws the moments) either within 0.1 s of its first checkpoint, with
    a checkpoint every step (mid-step or mid-write), or at a random moment of its start-up (imports, data,
    lock); the next `--resume` takes over its stale lock."""
    rng = random.Random(12)
    out = tmp_path / "run"
    checkpoint = out / CHECKPOINT
    args, ready, steps = fresh(data, out, *EVERY_STEP), None, [0]
    for kill in range(KILLS):
        before = stamp(checkpoint)
        with (tmp_path / f"{kill}.err").open("w") as err:
            process, launched = launch(*args, stderr=err), time.monotonic()
        if ready is None or rng.random() < 0.5:
            wait_for(lambda: stamp(checkpoint) != before, process, "its first checkpoint")
            if ready is None:  # start-up time, measured on the first launch
                ready = time.monotonic() - launched
            time.sleep(rng.uniform(0, 0.1))
        else:
            time.sleep(rng.uniform(0, ready))
        process.kill()
        assert process.wait() == -signal.SIGKILL, (tmp_path / f"{kill}.err").read_text()
        steps.append(load_checkpoint(checkpoint)["step"])  # readable after every kill: never a torn file
        args = ["--out", out, "--resume"]
    assert steps == sorted(steps) and steps[-1] < STEPS, steps

    done = run_script(*args)
    assert done.returncode == 0 and "taking over the stale lock of process" in done.stderr, done.stderr
    assert_same_parameters(checkpoint, reference)
    assert not (out / LOCK).exists() and not list(out.glob(".*.tmp"))  # a killed write's temporary file: removed


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_with_a_checkpoint_and_resume_exactly(tmp_path, data, script, reference, signum,
                                                                      status):
    out, stderr = tmp_path / "run", tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        process = launch(*fresh(data, out), stderr=err)  # checkpoints by time only: the signal writes the one
    wait_for(lambda: f"step 10/{STEPS}" in stderr.read_text(), process, "its first progress line")
    process.send_signal(signum)
    assert process.wait(timeout=60) == status
    message, step = stderr.read_text(), load_checkpoint(out / CHECKPOINT)["step"]
    assert 0 < step < STEPS
    assert (f"train_prior.py: stopped by {signum.name} at step {step} with a checkpoint in {out}; pass --resume to "
            "continue it") in message
    assert "Traceback" not in message and not (out / LOCK).exists()
    train(script, "--out", out, "--resume")
    assert_same_parameters(out / CHECKPOINT, reference)


def test_stop_requests_record_the_first_signal_and_restore_the_handlers():
    before = {s: signal.getsignal(s) for s in runs.STOP_SIGNALS}
    with stop_requests() as stop:
        assert not stop.requested and signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]  # a second signal acts as before
    assert {s: signal.getsignal(s) for s in runs.STOP_SIGNALS} == before

    outside = []  # Python allows handlers only in the main thread: elsewhere nothing changes

    def elsewhere() -> None:
        with stop_requests() as request:
            outside.append(request.requested)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert outside == [False] and {s: signal.getsignal(s) for s in runs.STOP_SIGNALS} == before


@pytest.mark.slow
def test_a_run_holding_the_folder_keeps_other_runs_out(tmp_path, data, script):
    out = tmp_path / "run"
    train(script, *fresh(data, out), "--steps", 2)
    (out / LOCK).write_text(f"{os.getpid()} {socket.gethostname()}\n")  # held by this live process
    held = f"run folder {out} is in use by process {os.getpid()}: two runs cannot share a folder"
    refused = run_script("--out", out, "--resume")
    assert refused.returncode == 2 and f"train_prior.py: error: {held}" in refused.stderr
    assert "Traceback" not in refused.stderr
    contents = sorted(out.iterdir())
    with pytest.raises(RunFolderError, match=re.escape(held)):
        train(script, *fresh(data, out), "--overwrite")
    assert sorted(out.iterdir()) == contents  # --overwrite deleted nothing
    (out / LOCK).write_text(f"{os.getpid()} elsewhere\n")
    with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()} on host elsewhere"):
        train(script, "--out", out, "--resume")


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, data, script, caplog):
    out = tmp_path / "run"
    train(script, *fresh(data, out), "--steps", 2)
    assert not (out / LOCK).exists()
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    (out / LOCK).write_text(f"{ended.pid} {socket.gethostname()}\n")
    (out / f".{CHECKPOINT}.x1y2.tmp").write_bytes(b"half a checkpoint")  # a killed write's leftover
    with caplog.at_level(logging.WARNING, logger="hypersiren.runs"):
        train(script, "--out", out, "--resume", "--steps", 4)
    assert f"{out}: taking over the stale lock of process {ended.pid}, which has ended" in caplog.text
    assert load_checkpoint(out / CHECKPOINT)["step"] == 4
    assert not (out / LOCK).exists() and not list(out.glob(".*.tmp"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes through file permissions")
def test_an_unwritable_folder_fails_before_training(tmp_path, data):
    parent = tmp_path / "read_only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = run_script(*fresh(data, parent / "run"))
    finally:
        parent.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"train_prior.py: error: run folder {parent / 'run'} is not writable: Permission denied" in result.stderr


def test_a_full_disk_or_uncreatable_folder_fails_before_training(tmp_path, data, script, monkeypatch):
    def no_space(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(runs, "open", no_space, raising=False)  # the lock, the run's first file
        with pytest.raises(RunFolderError, match=re.escape(f"run folder {out} is not writable: No space left on")):
            train(script, *fresh(data, out))
    assert not any(out.iterdir())  # nothing written, nothing trained
    (tmp_path / "file").write_text("")
    with pytest.raises(RunFolderError, match="run folder .*file/run is not writable: Not a directory"):
        train(script, *fresh(data, tmp_path / "file" / "run"))


def test_a_failed_checkpoint_write_stops_the_run_and_keeps_the_previous_checkpoint(tmp_path, data, script,
                                                                                  monkeypatch):
    real_save = torch.save

    def save_on_a_disk_that_fills_at_step_3(state, f):
        if state["step"] == 3:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(state, f)

    monkeypatch.setattr(torch, "save", save_on_a_disk_that_fills_at_step_3)
    out = tmp_path / "run"
    with pytest.raises(RunFolderError, match=r"cannot write the checkpoint of step 3 to .*checkpoint.pt \(No space "
                                             r"left on device\); the previous one, if any, is kept"):
        train(script, *fresh(data, out, *EVERY_STEP))
    assert load_checkpoint(out / CHECKPOINT)["step"] == 2
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("events.")) == [CHECKPOINT, "config.json"]
    with pytest.raises(ValueError, match="checkpoint_every_steps must be >= 1 or None, got 0"):
        TrainConfig(checkpoint_every_steps=0)


def test_a_non_finite_loss_ends_the_script_naming_its_step_and_terms_and_keeps_the_last_good_checkpoint(
        tmp_path, data, script, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT)])
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as ended:  # parameters of 1e30 after one step
        run_main(script.main, script.parse_args(fresh(data, out, *EVERY_STEP, "--set", "train.lr=1e30")))
    message = capsys.readouterr().err.splitlines()[-1]
    bad = re.fullmatch(r"train_prior.py: error: loss became (nan|inf) at step (\d+) \(non-finite terms: mse\b.*\); "
                       rf"the last good checkpoint in {re.escape(str(out))} is kept", message)
    assert ended.value.code == 2 and bad, message
    assert load_checkpoint(out / CHECKPOINT)["step"] == int(bad[2]) - 1 > 0 and not (out / LOCK).exists()
