"""The command-line scripts, run the way a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from hypersiren.runs import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run(*args, check=True):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=check,
                          timeout=600)


def test_train_prior_runs_resumes_and_refuses_to_clobber(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(6, 20, 24, 3), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", images=images)
    out = tmp_path / "run"
    script = ROOT / "train" / "train_prior.py"
    run(script, "--preset", "tiny", "--data", tmp_path / "tiny.npz", "--resolution", "16", "--holdout", "2",
        "--steps", "4", "--batch-size", "3", "--out", out)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["value_dim"] == 3 and config["holdout"] == 2
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4
    assert list(out.glob("events.out.tfevents.*"))

    run(script, "--out", out, "--resume", "--steps", "7")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 7 and load_checkpoint(out / "checkpoint.pt")["step"] == 7

    again = run(script, "--data", tmp_path / "tiny.npz", "--out", out, check=False)
    assert again.returncode != 0 and "already exists and is not empty" in again.stderr
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 7  # nothing lost
    bad = run(script, "--data", tmp_path / "missing.npz", "--out", tmp_path / "other", check=False)
    assert bad.returncode != 0 and "no image data at" in bad.stderr
    assert torch.is_tensor(load_checkpoint(out / "checkpoint.pt")["generator"])
