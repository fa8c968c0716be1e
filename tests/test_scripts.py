"""The command-line scripts, run the way a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren.runs import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # real subprocesses training real runs: a minute or more


def run(*args, check=True):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=check,
                          timeout=600)


def test_train_prior_runs_resumes_and_refuses_to_clobber(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(6, 20, 24, 3), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", images=images)
    out = tmp_path / "run"
    script = ROOT / "train" / "train_prior.py"
    run(script, "--preset", "tiny", "--data", tmp_path / "tiny.npz", "--set", "data.resolution=16", "--holdout", "2",
        "--steps", "4", "--batch-size", "3", "--out", out)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["value_dim"] == 3 and config["data"]["holdout"] == 2 and config["modality"] == "image"
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


def test_eval_and_inpaint_reload_what_training_wrote(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", images=images)
    out = tmp_path / "run"
    run(ROOT / "train" / "train_prior.py", "--preset", "tiny", "--data", tmp_path / "tiny.npz", "--set",
        "data.resolution=16", "--holdout", "2", "--steps", "3", "--batch-size", "2", "--out", out)
    run(ROOT / "evaluate" / "eval_prior.py", "--checkpoint", out / "checkpoint.pt", "--out", out / "eval.json")
    report = json.loads((out / "eval.json").read_text())
    assert report["signals"] == 2 and set(report["mse"]) == {"10", "100", "half", "full"}  # 1000 > 256 pixels
    assert set(report["baselines"]) == {"mean image", "interpolation"}
    assert report["mse_completed"]["full"] < 1e-12 and "| prior |" in (out / "eval.md").read_text()

    figure = tmp_path / "fig.png"
    run(ROOT / "evaluate" / "inpaint.py", "--checkpoint", out / "checkpoint.pt", "--context", "30", "--size", "40",
        "--out", figure)
    from PIL import Image

    with Image.open(figure) as written:
        assert written.size == (120, 80)  # 3 panels of 40 wide; 2 held-out images of 40 high
    bad = run(ROOT / "evaluate" / "inpaint.py", "--checkpoint", out / "checkpoint.pt", "--context", "999",
              "--out", tmp_path / "x.png", check=False)
    assert bad.returncode != 0 and "--context 999 must be between 1 and the 256 pixels" in bad.stderr
    no_posterior = run(ROOT / "evaluate" / "inpaint.py", "--checkpoint", out / "checkpoint.pt", "--uncertainty",
                       "--out", tmp_path / "x.png", check=False)
    assert no_posterior.returncode != 0 and "--uncertainty needs a prior with a posterior" in no_posterior.stderr
    wrong = run(ROOT / "evaluate" / "eval_prior.py", "--checkpoint", tmp_path / "tiny.npz", "--out", tmp_path / "e.json",
                check=False)
    assert wrong.returncode != 0 and "cannot read" in wrong.stderr and "as a hypersiren checkpoint" in wrong.stderr


def test_celeba_prepare_writes_loadable_arrays(tmp_path):
    from PIL import Image

    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    lines = []
    for i in range(1, 5):
        Image.fromarray(np.full((218, 178, 3), 40 * i, np.uint8)).save(folder / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {0 if i < 4 else 2}")
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    run(ROOT / "datasets" / "celeba" / "prepare.py", "--root", tmp_path / "celeba", "--resolution", "8",
        "--splits", "train", "test", "--out", tmp_path / "out")
    with np.load(tmp_path / "out" / "celeba8_train.npz") as f:
        train = f["images"]
    assert train.shape == (3, 8, 8, 3) and train.dtype == np.uint8 and abs(int(train[2].mean()) - 120) <= 2
    with np.load(tmp_path / "out" / "celeba8_test.npz") as f:
        assert f["images"].shape == (1, 8, 8, 3)
    run(ROOT / "datasets" / "celeba" / "prepare.py", "--root", tmp_path / "celeba", "--resolution", "8",
        "--splits", "train", "--shard-size", "2", "--out", tmp_path / "shards")
    parts = sorted((tmp_path / "shards" / "celeba8_train").iterdir())
    assert [p.name for p in parts] == ["part-00000.npy", "part-00001.npy"]
    np.testing.assert_array_equal(np.concatenate([np.load(p) for p in parts]), train)  # the .npz's images


def test_readme_demo_prior_beats_the_baselines_on_the_packaged_faces(tmp_path):
    """The README's main command, as a user runs it: `train/demo.py` on scikit-image's faces."""
    out = tmp_path / "demo"
    done = run(ROOT / "train" / "demo.py", "--cnp-budget", "3", "--context", "30", "--out", out)
    metrics = json.loads((out / "prior" / "metrics.json").read_text())
    assert metrics["seconds"] < 120 and metrics["steps"] == 0  # about 5 s on an idle 2-core CPU
    assert metrics["start"]["signals"] == 80 and metrics["start"]["fit_error"] < metrics["start"]["ppca_noise"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "prior")).Reload()
    assert "preview/context_prediction_truth" in events.Tags()["images"] and "start/noise" in events.Tags()["scalars"]
    report = json.loads((out / "eval.json").read_text())
    mean, interpolation = report["baselines"]["mean image"], report["baselines"]["interpolation"]
    # measured: 0.0169 vs 0.0269 (mean image) at 10 px; 0.0080 vs 0.0088 (interpolation) completed at 100 px
    assert report["mse"]["10"] < 0.75 * mean["mse"]["10"]
    assert report["mse_completed"]["100"] < interpolation["mse_completed"]["100"]
    assert report["mse"]["1000"] < 0.3 * mean["mse"]["1000"]
    assert report["mse"]["10"] < report["baselines"]["cnp"]["mse"]["10"]  # a CNP of a few seconds: far behind
    assert "| cnp |" in done.stdout and "| prior |" in (out / "eval.md").read_text()
    from PIL import Image

    with Image.open(out / "inpaint.png") as written:  # 4 faces: context | completion | truth | posterior std
        assert written.size == (4 * 128, 4 * 128) and "posterior std (white = " in done.stdout
    again = run(ROOT / "train" / "demo.py", "--cnp-budget", "0", "--out", out, check=False)
    assert again.returncode != 0 and "already exists and is not empty" in again.stderr
